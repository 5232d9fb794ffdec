/* One MMCR pretraining run: the step is forward (all P*K views as one batch, so BN statistics
 * cover every view), MMCR loss on the full batch, backward, optimiser update. Everything is
 * allocated before the first step; the step itself allocates nothing. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dist/checkpoint.h"
#include "mmcr/io.h"
#include "mmcr/loss.h"
#include "mmcr/optim.h"
#include "mmcr/train.h"

enum { BUDGET_PROBE_STEPS = 20 };

static const char *const dataset_names[] = {"fashion-mnist", "mnist", "cifar10", "cifar100"};

mmcr_status mmcr_train_load_dataset(const mmcr_train_config *cfg, const char *split, mmcr_dataset *ds,
                                    mmcr_err *err) {
    mmcr_status st;
    int train = strcmp(split, "train") == 0;
    memset(ds, 0, sizeof *ds);
    if (cfg->dataset <= 1) {
        st = mmcr_dataset_load_mnist_dir(ds, cfg->data_dir, split, err);
    } else {
        char paths[6][MMCR_OPT_STRLEN + 32];
        const char *list[7] = {0};
        int cifar100 = cfg->dataset == 3, n = 0;
        if (cifar100) {
            snprintf(paths[0], sizeof paths[0], "%s/%s.bin", cfg->data_dir, train ? "train" : "test");
            n = 1;
        } else if (train) {
            for (int i = 0; i < 5; i++) snprintf(paths[i], sizeof paths[i], "%s/data_batch_%d.bin", cfg->data_dir, i + 1);
            n = 5;
        } else {
            snprintf(paths[0], sizeof paths[0], "%s/test_batch.bin", cfg->data_dir);
            n = 1;
        }
        for (int i = 0; i < n; i++) list[i] = paths[i];
        st = mmcr_dataset_load_cifar(ds, list, cifar100, err);
    }
    if (st != MMCR_OK) return st;
    static const int classes[] = {10, 10, 10, 100};
    if (ds->labels && ds->num_classes > classes[cfg->dataset]) {
        int n = ds->num_classes;
        mmcr_dataset_free(ds);
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "%s split of '%s': labels go up to %d, but %s has %d classes",
                            split, cfg->data_dir, n - 1, dataset_names[cfg->dataset], classes[cfg->dataset]);
    }
    if (train && cfg->train_subset > 0 && cfg->train_subset < ds->n) ds->n = cfg->train_subset;
    return MMCR_OK;
}

void mmcr_train_aug_config(const mmcr_train_config *cfg, int channels, const float *mean, const float *std,
                           mmcr_aug_config *a) {
    mmcr_aug_config_none(a, cfg->image_size);
    a->crop_p = 1.0f;
    a->crop_scale[0] = (float)cfg->crop_scale_min;
    a->crop_scale[1] = (float)cfg->crop_scale_max;
    a->crop_ratio[0] = (float)cfg->crop_ratio_min;
    a->crop_ratio[1] = (float)cfg->crop_ratio_max;
    a->flip_p = (float)cfg->flip_p;
    a->jitter_p = (float)cfg->jitter_p;
    a->brightness = (float)cfg->brightness;
    a->contrast = (float)cfg->contrast;
    a->saturation = (float)cfg->saturation;
    a->hue = (float)cfg->hue;
    a->gray_p = (float)cfg->gray_p;
    a->blur_p = (float)cfg->blur_p;
    a->blur_sigma[0] = (float)cfg->blur_sigma_min;
    a->blur_sigma[1] = (float)cfg->blur_sigma_max;
    a->solarize_p = (float)cfg->solarize_p;
    a->erase_p = (float)cfg->erase_p;
    a->erase_scale[0] = (float)cfg->erase_scale_min;
    a->erase_scale[1] = (float)cfg->erase_scale_max;
    for (int c = 0; c < channels && c < 3; c++) {
        a->mean[c] = mean[c];
        a->std[c] = std[c];
    }
}

int mmcr_train_eval_image_size(const mmcr_train_config *cfg) {
    static const int native[] = {28, 28, 32, 32}; /* fashion-mnist|mnist|cifar10|cifar100 */
    if (cfg->eval_image_size > 0) return cfg->eval_image_size;
    return cfg->dataset >= 0 && cfg->dataset < 4 ? native[cfg->dataset] : cfg->image_size;
}

void mmcr_train_model_config(const mmcr_train_config *cfg, int in_channels, mmcr_model_config *mc) {
    mmcr_model_config_default(mc);
    mc->in_channels = in_channels;
    mc->image_size = cfg->image_size;
    mc->width = cfg->width;
    mc->proj_hidden = cfg->proj_hidden;
    mc->proj_out = cfg->proj_out;
    mc->proj_bias = cfg->proj_bias;
}

static mmcr_status check_config(const mmcr_train_config *cfg, mmcr_err *err) {
    if (cfg->crop_scale_min > cfg->crop_scale_max)
        return mmcr_err_set(err, MMCR_ERR_ARG, "option --crop-scale-min (%g) exceeds --crop-scale-max (%g)",
                            cfg->crop_scale_min, cfg->crop_scale_max);
    if (cfg->crop_ratio_min > cfg->crop_ratio_max)
        return mmcr_err_set(err, MMCR_ERR_ARG, "option --crop-ratio-min exceeds --crop-ratio-max");
    if (cfg->erase_scale_min > cfg->erase_scale_max)
        return mmcr_err_set(err, MMCR_ERR_ARG, "option --erase-scale-min exceeds --erase-scale-max");
    if (cfg->blur_sigma_min > cfg->blur_sigma_max)
        return mmcr_err_set(err, MMCR_ERR_ARG, "option --blur-sigma-min exceeds --blur-sigma-max");
    if (cfg->epochs <= 0 && cfg->max_steps <= 0)
        return mmcr_err_set(err, MMCR_ERR_ARG, "options --epochs and --max-steps are both 0: nothing to train");
    return MMCR_OK;
}

/* On resume, metrics lines past the checkpoint's step would be duplicated: keep only the lines
 * up to that step, rewriting the file atomically. */
static mmcr_status trim_metrics(const char *path, long upto_step, mmcr_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return MMCR_OK;
    mmcr_atomic_file af;
    mmcr_status st = mmcr_atomic_open(&af, path, err);
    if (st != MMCR_OK) {
        fclose(f);
        return st;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        const char *s = strstr(line, "\"step\":");
        long step = s ? strtol(s + 7, NULL, 10) : 0;
        if (step <= upto_step) fputs(line, af.f);
    }
    fclose(f);
    return mmcr_atomic_commit(&af, err);
}

static void fmt_eta(char *buf, size_t cap, double s) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else
        snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
}

/* What a failed run leaves behind, for the error message. */
static const char *ckpt_note(const char *ckpt, char *buf, size_t cap) {
    struct stat sb;
    if (stat(ckpt, &sb) == 0)
        snprintf(buf, cap, "the last checkpoint '%s' is intact", ckpt);
    else
        snprintf(buf, cap, "no checkpoint had been written yet");
    return buf;
}

static int grads_finite(const float *g, size_t n) {
    /* A NaN/Inf anywhere makes the sum non-finite; one pass, no branch per element. */
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * 0.0;
    return isfinite(s);
}

mmcr_status mmcr_train_run(const mmcr_train_config *cfg, const mmcr_logger *log, mmcr_train_summary *summary,
                           mmcr_err *err) {
    mmcr_status st = check_config(cfg, err);
    if (st != MMCR_OK) return st;
    mmcr_set_threads(cfg->threads);
    mmcr_dataset ds = {0};
    mmcr_loader *loader = NULL;
    mmcr_model *model = NULL;
    mmcr_loss *loss = NULL;
    mmcr_optim *opt = NULL;
    float *d_embed = NULL;
    FILE *metrics = NULL;
    char path[MMCR_OPT_STRLEN + 64];

    st = mmcr_make_dirs(cfg->out, err);
    if (st != MMCR_OK) return st;
    st = mmcr_train_load_dataset(cfg, "train", &ds, err);
    if (st != MMCR_OK) return st;
    if (ds.n < cfg->batch) {
        st = mmcr_err_set(err, MMCR_ERR_ARG, "option --batch (%d) is larger than the training set (%d images)",
                          cfg->batch, ds.n);
        goto done;
    }
    /* --eval-image-size 0 means the images' own side: resolve it here, so the checkpoint (and the
     * resume check) record the size the encoder is evaluated at. */
    mmcr_train_config resolved = *cfg;
    if (resolved.eval_image_size <= 0) resolved.eval_image_size = ds.h;
    cfg = &resolved;
    float mean[3] = {0}, std[3] = {1, 1, 1};
    mmcr_dataset_stats(&ds, mean, std);
    mmcr_aug_config aug;
    mmcr_train_aug_config(cfg, ds.c, mean, std, &aug);
    mmcr_loader_config lc = {.batch = cfg->batch, .views = cfg->views, .seed = (uint64_t)cfg->seed, .shuffle = 1,
                             .drop_last = 1};
    st = mmcr_loader_create(&loader, &ds, &aug, &lc, err);
    if (st != MMCR_OK) goto done;

    mmcr_model_config mc;
    mmcr_train_model_config(cfg, ds.c, &mc);
    const int nviews = cfg->batch * cfg->views;
    st = mmcr_model_create(&model, &mc, nviews, err);
    if (st != MMCR_OK) goto done;
    /* --conv auto keeps the model's choice (oneDNN when this build has it and it starts). */
    if (cfg->conv != MMCR_TRAIN_CONV_AUTO &&
        mmcr_model_set_conv_backend(model, cfg->conv == MMCR_TRAIN_CONV_GEMM ? MMCR_CONV_GEMM : MMCR_CONV_ONEDNN) !=
            MMCR_OK) {
        st = mmcr_err_set(err, MMCR_ERR_ARG,
                          "option --conv onednn: oneDNN kernels are not available (libmmcr was built without oneDNN "
                          "or its CPU engine did not start); use --conv auto or gemm");
        goto done;
    }
    mmcr_model_init(model, (uint64_t)cfg->seed);
    const int D = mmcr_model_embed_dim(model);
    st = mmcr_loss_create(&loss, cfg->batch, cfg->views, D, cfg->lambda, err);
    if (st != MMCR_OK) goto done;
    mmcr_optim_kind kinds[] = {MMCR_OPTIM_SGD, MMCR_OPTIM_LARS, MMCR_OPTIM_ADAM, MMCR_OPTIM_ADAMW};
    mmcr_optim_config oc;
    mmcr_optim_config_default(&oc, kinds[cfg->optimizer]);
    oc.lr = cfg->lr;
    oc.weight_decay = cfg->weight_decay;
    if (cfg->optimizer <= 1) {
        oc.momentum = cfg->momentum;
        oc.nesterov = cfg->nesterov;
    } else {
        oc.beta1 = cfg->momentum;
    }
    int ntensors = mmcr_model_num_tensors(model);
    mmcr_tensor_info *tinfo = malloc(sizeof *tinfo * (size_t)ntensors);
    if (!tinfo) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < ntensors; i++) tinfo[i] = *mmcr_model_tensor(model, i);
    st = mmcr_optim_create(&opt, &oc, mmcr_model_num_params(model), tinfo, ntensors, err);
    free(tinfo);
    if (st != MMCR_OK) goto done;
    d_embed = mmcr_alloc_or_err(sizeof(float) * (size_t)nviews * (size_t)D, err, "embedding gradients");
    if (!d_embed) {
        st = MMCR_ERR_NOMEM;
        goto done;
    }

    const long per_epoch = mmcr_loader_batches_per_epoch(loader);
    long total = cfg->max_steps > 0 ? cfg->max_steps : (long)ceil(cfg->epochs * (double)per_epoch);
    mmcr_schedule sched = {0};
    sched.kind = cfg->schedule == 0 ? MMCR_SCHED_CONSTANT : cfg->schedule == 1 ? MMCR_SCHED_COSINE : MMCR_SCHED_ONECYCLE;
    sched.total_steps = total;
    sched.warmup_steps = (long)(cfg->warmup_epochs * (double)per_epoch);
    sched.final_factor = cfg->final_lr_factor;
    sched.pct_start = cfg->pct_start;
    sched.div_factor = 25;
    sched.final_div_factor = 1e4;

    long step = 0;
    char ckpt[MMCR_OPT_STRLEN + 64];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", cfg->out);
    snprintf(path, sizeof path, "%s/metrics.jsonl", cfg->out);
    if (cfg->resume) {
        struct stat sb;
        if (stat(ckpt, &sb) != 0) {
            st = mmcr_err_set(err, MMCR_ERR_IO, "--resume: no checkpoint at '%s'", ckpt);
            goto done;
        }
        st = mmcr_checkpoint_restore(ckpt, cfg, model, opt, &step, err);
        if (st != MMCR_OK) goto done;
        mmcr_loader_set_position(loader, step);
        st = trim_metrics(path, step, err);
        if (st != MMCR_OK) goto done;
        if (step >= total) {
            st = mmcr_err_set(err, MMCR_ERR_ARG,
                              "--resume: the checkpoint '%s' is at step %ld, already at or past the planned %ld "
                              "steps; raise --max-steps or --epochs to train longer", ckpt, step, total);
            goto done;
        }
        mmcr_logf(log, MMCR_LOG_INFO, "resuming from '%s' at step %ld", ckpt, step);
    } else {
        remove(path);
    }
    /* The effective configuration, so every run directory is self-describing. */
    {
        char cpath[MMCR_OPT_STRLEN + 64];
        snprintf(cpath, sizeof cpath, "%s/config.json", cfg->out);
        mmcr_atomic_file af;
        st = mmcr_atomic_open(&af, cpath, err);
        if (st != MMCR_OK) goto done;
        int nopt;
        const mmcr_option *opts = mmcr_train_options(&nopt);
        mmcr_options_json(af.f, opts, nopt, cfg);
        fputc('\n', af.f);
        st = mmcr_atomic_commit(&af, err);
        if (st != MMCR_OK) goto done;
    }
    metrics = fopen(path, "a");
    if (!metrics) {
        st = mmcr_err_set(err, MMCR_ERR_IO, "cannot open '%s' for appending: %s", path, strerror(errno));
        goto done;
    }
    mmcr_logf(log, MMCR_LOG_INFO,
              "training on %s: %d images %dx%dx%d, P=%d K=%d D=%d, %ld steps (%ld per epoch), %zu parameters, "
              "%d threads, %s convolutions", dataset_names[cfg->dataset], ds.n, ds.c, ds.h, ds.w, cfg->batch, cfg->views,
              D, total, per_epoch, mmcr_model_num_params(model), mmcr_get_threads(),
              mmcr_conv_backend_name(mmcr_model_get_conv_backend(model)));

    const double t0 = mmcr_now();
    double t_window = t0;
    long step_window = step;
    const long start_step = step;
    mmcr_loss_result res = {0};
    double rate = 0;
    char note[MMCR_OPT_STRLEN + 96];
    while (step < total) {
        const mmcr_batch *b = mmcr_loader_next(loader);
        const float *feat, *emb;
        mmcr_model_zero_grad(model);
        st = mmcr_model_forward(model, b->images, nviews, 1, 1, &feat, &emb);
        if (st != MMCR_OK) {
            /* The only refusal left here: training-mode batch norm needs two values per channel. */
            st = mmcr_err_set(err, MMCR_ERR_ARG,
                              "options --batch %d x --views %d: %d views of %dx%d leave batch norm fewer than two "
                              "values per channel at the network's last stage (use more views, a larger batch or "
                              "a larger --image-size)", cfg->batch, cfg->views, nviews, ds.h, ds.w);
            goto done;
        }
        st = mmcr_loss_forward_f32(loss, emb, &res, err);
        if (st == MMCR_ERR_NONFINITE) {
            st = mmcr_err_set(err, MMCR_ERR_NONFINITE,
                              "step %ld: the embeddings of row %ld are not finite (training diverged; no update was "
                              "made; %s; try a lower --lr)",
                              step + 1, res.first_bad_row, ckpt_note(ckpt, note, sizeof note));
            goto done;
        }
        if (st != MMCR_OK) goto done;
        mmcr_loss_backward_f32(loss, d_embed);
        mmcr_model_backward(model, d_embed);
        if (!grads_finite(mmcr_model_grads(model), mmcr_model_num_params(model))) {
            st = mmcr_err_set(err, MMCR_ERR_NONFINITE,
                              "step %ld: non-finite parameter gradient (no update was made; %s)", step + 1,
                              ckpt_note(ckpt, note, sizeof note));
            goto done;
        }
        /* --time-budget: after a short measurement, shorten the plan so that the whole schedule
         * (warm-up, decay) completes within the budget instead of being cut off mid-way. */
        if (cfg->time_budget > 0 && !cfg->resume && step == start_step + BUDGET_PROBE_STEPS) {
            double per_step = (mmcr_now() - t0) / (double)BUDGET_PROBE_STEPS;
            long fit = (long)(cfg->time_budget / per_step);
            if (fit <= step) fit = step + 1; /* over budget already: this step is the schedule's last */
            if (fit < total) {
                mmcr_logf(log, MMCR_LOG_INFO, "--time-budget %.0f s: %.2f s/step, planning %ld of the %ld steps "
                          "(%.2f epochs)", cfg->time_budget, per_step, fit, total, (double)fit / (double)per_epoch);
                total = fit;
                sched.total_steps = total;
            }
        }
        const double lr = cfg->lr * mmcr_schedule_factor(&sched, step);
        mmcr_optim_step(opt, mmcr_model_params(model), mmcr_model_grads(model), lr);
        step++;

        const int last = step == total;
        const double now = mmcr_now();
        /* The budget is a plan, not a hard stop, except far past it (a much slower machine). */
        const int out_of_time = (cfg->time_budget > 0 && now - t0 >= 1.5 * cfg->time_budget) ||
                                (cfg->stop_at > 0 && step >= cfg->stop_at);
        if (step % cfg->log_every == 0 || last || out_of_time) {
            rate = (double)(step - step_window) * nviews / (now - t_window + 1e-12);
            t_window = now;
            step_window = step;
            fprintf(metrics,
                    "{\"step\":%ld,\"epoch\":%.4f,\"loss\":%.9g,\"ppe\":%.9g,\"global_nuclear_norm\":%.9g,"
                    "\"local_term\":%.9g,\"mean_centroid_norm2\":%.9g,\"lr\":%.9g,\"images_per_s\":%.6g,"
                    "\"elapsed_s\":%.3f}\n",
                    step, (double)step / (double)per_epoch, res.loss, res.ppe, res.global_nuclear_norm,
                    res.local_term, res.mean_centroid_norm2, lr, rate, now - t0);
            fflush(metrics);
            char eta[32];
            double per_step = (now - t0) / (double)(step - start_step);
            fmt_eta(eta, sizeof eta, per_step * (double)(total - step));
            if (!cfg->quiet)
                mmcr_logf(log, MMCR_LOG_INFO, "step %ld/%ld  epoch %.2f  loss %.4f  ppe %.4f  |mu|^2 %.3f  lr %.2e  "
                          "%.0f img/s  ETA %s", step, total, (double)step / (double)per_epoch, res.loss, res.ppe,
                          res.mean_centroid_norm2, lr, rate, eta);
        }
        if (last && cfg->bn_recalibrate > 0 && mmcr_train_eval_image_size(cfg) != cfg->image_size) {
            const double tr = mmcr_now();
            st = mmcr_train_recalibrate_bn(cfg, model, &ds, mean, std, cfg->bn_recalibrate, 250, err);
            if (st != MMCR_OK) goto done;
            mmcr_logf(log, MMCR_LOG_INFO, "batch-norm statistics re-estimated at %dx%d on %d training images (%.1f s)",
                      mmcr_train_eval_image_size(cfg), mmcr_train_eval_image_size(cfg),
                      cfg->bn_recalibrate < ds.n ? cfg->bn_recalibrate : ds.n, mmcr_now() - tr);
        }
        if (step % cfg->checkpoint_every == 0 || last || out_of_time) {
            st = mmcr_checkpoint_save(ckpt, cfg, model, opt, step, mean, std, ds.c, err);
            if (st != MMCR_OK) goto done;
        }
        if (out_of_time) {
            mmcr_logf(log, MMCR_LOG_INFO, "stopping at step %ld/%ld (--time-budget or --stop-at); checkpoint "
                      "written, continue with --resume", step, total);
            break;
        }
    }
    if (summary) {
        summary->steps = step;
        summary->seconds = mmcr_now() - t0;
        summary->final_loss = res.loss;
        summary->final_ppe = res.ppe;
        summary->final_mean_centroid_norm2 = res.mean_centroid_norm2;
        summary->images_per_second = (double)(step - start_step) * nviews / (summary->seconds + 1e-12);
    }
    st = MMCR_OK;
done:
    if (metrics) fclose(metrics);
    mmcr_free(d_embed);
    mmcr_optim_destroy(&opt);
    mmcr_loss_destroy(&loss);
    mmcr_model_destroy(&model);
    mmcr_loader_destroy(&loader);
    mmcr_dataset_free(&ds);
    return st;
}
