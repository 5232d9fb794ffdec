/* A resumable grid of short pretraining runs (mmcr/sweep.h, docs/analyses.md).
 *
 * Layout of the sweep directory:
 *   sweep.json              base configuration (training options with the grid fields blanked,
 *                           and the evaluation settings); a restart with other options is refused
 *   runs/<name>/            one training run (config.json, metrics.jsonl, checkpoint.safetensors)
 *   runs/<name>/result.json the run's result, written atomically: its existence means "done"
 *   results.jsonl           one line per finished run; rebuilt from the result.json files at the
 *                           start of every invocation, then appended to as runs finish
 * The PPE of a run is measured after training on fresh batches (same P, new data, the run's own
 * augmentations), because the random-matrix floor behind the P = D ridge is a property of
 * i.i.d. batches of size P (paper-notes.md §2.6, §7 claim 5). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmcr/eval.h"
#include "mmcr/io.h"
#include "mmcr/json.h"
#include "mmcr/loss.h"
#include "mmcr/sweep.h"

#define PATH_CAP (MMCR_OPT_STRLEN + 128)

void mmcr_sweep_run_name(char *buf, size_t cap, int p, int d, int k, int steps, int width, int seed) {
    snprintf(buf, cap, "P%d_D%d_K%d_steps%d_w%d_seed%d", p, d, k, steps, width, seed);
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void put_num(FILE *f, const char *key, double v) {
    char buf[64];
    mmcr_format_double(buf, sizeof buf, v);
    fprintf(f, ",\"%s\":%s", key, buf);
}

/* ---- sweep.json: the base configuration, to refuse mixing different sweeps in one folder ---- */

static char *base_config_json(const mmcr_sweep_config *cfg) {
    mmcr_train_config b = cfg->base;
    /* Fields the grid sets per run, and fields that do not change results. */
    b.batch = b.proj_out = b.views = b.max_steps = b.width = b.seed = 0;
    b.epochs = 0, b.time_budget = 0, b.stop_at = 0, b.resume = 0, b.quiet = 0, b.threads = 0, b.conv = 0;
    b.log_every = b.checkpoint_every = 0;
    b.out[0] = '\0';
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    int nopt;
    const mmcr_option *opts = mmcr_train_options(&nopt);
    fputs("{\"train\": ", f);
    mmcr_options_json(f, opts, nopt, &b);
    fprintf(f, ", \"eval\": {\"eval_batches\": %d, \"eval_seed\": %d, \"eval_split\": \"%s\", \"bn\": \"%s\", "
            "\"downstream\": %d, \"eval_train\": %d, \"eval_test\": %d, \"knn_k\": %d, \"probe_epochs\": %d",
            cfg->eval_batches, cfg->eval_seed, cfg->eval_split ? "test" : "train", cfg->bn_train ? "train" : "eval",
            cfg->eval, cfg->eval_train, cfg->eval_test, cfg->knn_k, cfg->probe_epochs);
    put_num(f, "knn_t", cfg->knn_t);
    fputs("}}\n", f);
    fclose(f);
    return text;
}

/* Names the first member that differs between two sweep.json texts. */
static void first_difference(const char *a, const char *b, char *out, size_t cap) {
    mmcr_json *ja = NULL, *jb = NULL;
    snprintf(out, cap, "(unknown)");
    if (mmcr_json_parse(&ja, a, strlen(a), "sweep.json", NULL) != MMCR_OK ||
        mmcr_json_parse(&jb, b, strlen(b), "sweep.json", NULL) != MMCR_OK)
        goto done;
    for (size_t s = 0; s < ja->n; s++) {
        const mmcr_json *sa = &ja->items[s], *sb = mmcr_json_get(jb, ja->keys[s]);
        if (!sb || sa->type != MMCR_JSON_OBJECT) continue;
        for (size_t i = 0; i < sa->n; i++) {
            const mmcr_json *x = &sa->items[i], *y = mmcr_json_get(sb, sa->keys[i]);
            int same = y && x->type == y->type;
            if (same && x->type == MMCR_JSON_NUMBER) same = x->number == y->number;
            if (same && x->type == MMCR_JSON_STRING) same = strcmp(x->str, y->str) == 0;
            if (same && x->type == MMCR_JSON_BOOL) same = x->boolean == y->boolean;
            if (!same) {
                snprintf(out, cap, "%s.%s", ja->keys[s], sa->keys[i]);
                goto done;
            }
        }
    }
done:
    mmcr_json_free(&ja);
    mmcr_json_free(&jb);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (len + 1 < cap) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb, cap *= 2;
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

static mmcr_status check_sweep_json(const mmcr_sweep_config *cfg, mmcr_err *err) {
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/sweep.json", cfg->out);
    char *want = base_config_json(cfg);
    if (!want) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
    mmcr_status st = MMCR_OK;
    char *have = read_text(path);
    if (have) {
        if (strcmp(have, want) != 0) {
            char what[256];
            first_difference(have, want, what, sizeof what);
            st = mmcr_err_set(err, MMCR_ERR_ARG,
                              "'%s' holds a sweep made with other options (first difference: %s); use another --out "
                              "or the same options", path, what);
        }
    } else {
        mmcr_atomic_file af;
        st = mmcr_atomic_open(&af, path, err);
        if (st == MMCR_OK) {
            fputs(want, af.f);
            st = mmcr_atomic_commit(&af, err);
        }
    }
    free(have);
    free(want);
    return st;
}

/* ---- results.jsonl: rebuilt from runs/<name>/result.json ---- */

typedef struct result_line {
    int key[6];
    char *text;
} result_line;

static int cmp_lines(const void *a, const void *b) {
    const result_line *x = a, *y = b;
    for (int i = 0; i < 6; i++)
        if (x->key[i] != y->key[i]) return x->key[i] < y->key[i] ? -1 : 1;
    return 0;
}

static mmcr_status rebuild_results(const char *out, mmcr_err *err) {
    char runs[PATH_CAP], path[PATH_CAP * 2];
    snprintf(runs, sizeof runs, "%s/runs", out);
    DIR *dir = opendir(runs);
    if (!dir) return mmcr_err_set(err, MMCR_ERR_IO, "cannot read folder '%s': %s", runs, strerror(errno));
    result_line *lines = NULL;
    size_t n = 0, cap = 0;
    mmcr_status st = MMCR_OK;
    struct dirent *de;
    static const char *const keys[6] = {"P", "D", "K", "steps", "width", "seed"};
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s/result.json", runs, de->d_name);
        char *text = read_text(path);
        if (!text) continue;
        mmcr_json *j = NULL;
        if (mmcr_json_parse(&j, text, strlen(text), path, NULL) != MMCR_OK) {
            free(text); /* not written by us (result.json is atomic): ignore it */
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            result_line *nl = realloc(lines, cap * sizeof *nl);
            if (!nl) {
                free(text);
                mmcr_json_free(&j);
                st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
                break;
            }
            lines = nl;
        }
        for (int i = 0; i < 6; i++) {
            int64_t v = 0;
            mmcr_json_int64(mmcr_json_get(j, keys[i]), &v);
            lines[n].key[i] = (int)v;
        }
        size_t len = strlen(text);
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) text[--len] = '\0';
        lines[n++].text = text;
        mmcr_json_free(&j);
    }
    closedir(dir);
    if (st == MMCR_OK) {
        if (n > 1) qsort(lines, n, sizeof *lines, cmp_lines);
        snprintf(path, sizeof path, "%s/results.jsonl", out);
        mmcr_atomic_file af;
        st = mmcr_atomic_open(&af, path, err);
        if (st == MMCR_OK) {
            for (size_t i = 0; i < n; i++) fprintf(af.f, "%s\n", lines[i].text);
            st = mmcr_atomic_commit(&af, err);
        }
    }
    for (size_t i = 0; i < n; i++) free(lines[i].text);
    free(lines);
    return st;
}

static mmcr_status append_result(const char *out, const char *line, mmcr_err *err) {
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/results.jsonl", out);
    FILE *f = fopen(path, "a");
    if (!f) return mmcr_err_set(err, MMCR_ERR_IO, "cannot append to '%s': %s", path, strerror(errno));
    fputs(line, f);
    fputc('\n', f);
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad) return mmcr_err_set(err, MMCR_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    return MMCR_OK;
}

/* ---- one run ---- */

typedef struct train_tail {
    double loss, ppe, c2, seconds, ppe_tail;
} train_tail;

/* The last metrics line, and the mean PPE of the lines in the last 10 % of the steps. */
static void read_train_tail(const char *run_dir, long steps, train_tail *t) {
    t->loss = t->ppe = t->c2 = t->seconds = t->ppe_tail = NAN;
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[4096];
    double tail_sum = 0;
    int tail_n = 0;
    while (fgets(line, sizeof line, f)) {
        mmcr_json *j = NULL;
        if (mmcr_json_parse(&j, line, strlen(line), path, NULL) != MMCR_OK) continue;
        const mmcr_json *s = mmcr_json_get(j, "step"), *l = mmcr_json_get(j, "loss"), *p = mmcr_json_get(j, "ppe"),
                        *c = mmcr_json_get(j, "mean_centroid_norm2"), *e = mmcr_json_get(j, "elapsed_s");
        if (s && l && p && c && e) {
            t->loss = l->number, t->ppe = p->number, t->c2 = c->number, t->seconds = e->number;
            if (s->number > 0.9 * (double)steps) tail_sum += p->number, tail_n++;
        }
        mmcr_json_free(&j);
    }
    fclose(f);
    if (tail_n) t->ppe_tail = tail_sum / tail_n;
}

typedef struct eval_data {
    mmcr_dataset fresh;           /* the split the fresh batches come from */
    mmcr_dataset bank, test;      /* downstream evaluation (eval != none) */
} eval_data;

typedef struct run_eval {
    double ppe, ppe_se, c2, flops_per_view, seconds;
    double knn, probe;
} run_eval;

static mmcr_status evaluate_run(const mmcr_sweep_config *cfg, const eval_data *ed, const char *ckpt, int P, int K,
                                run_eval *re, mmcr_err *err) {
    const double t0 = mmcr_now();
    re->knn = re->probe = NAN;
    const int views = P * K;
    const int max_batch = cfg->bn_train ? views : (views < 1024 ? views : 1024);
    mmcr_model *model = NULL;
    mmcr_train_config tc;
    float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    mmcr_loss *loss = NULL;
    float *emb = NULL, *ftr = NULL, *fte = NULL;
    double *ppe = NULL;
    mmcr_status st = mmcr_checkpoint_load_model(ckpt, &model, max_batch, 0, &tc, mean, std, err);
    if (st != MMCR_OK) return st;
    const int D = mmcr_model_embed_dim(model);
    const int B = cfg->eval_batches;
    re->flops_per_view = mmcr_model_forward_flops(model);
    mmcr_aug_config aug;
    mmcr_train_aug_config(&tc, ed->fresh.c, mean, std, &aug);
    emb = mmcr_alloc_or_err(sizeof(float) * (size_t)B * views * D, err, "fresh-batch embeddings");
    ppe = malloc(sizeof(double) * (size_t)B);
    if (!emb || !ppe) {
        st = MMCR_ERR_NOMEM;
        goto done;
    }
    st = mmcr_embed_fresh_batches(model, &ed->fresh, &aug, P, K, B, (uint64_t)cfg->eval_seed, cfg->bn_train, max_batch,
                                  emb, err);
    if (st != MMCR_OK) goto done;
    st = mmcr_loss_create(&loss, P, K, D, 0.0, err);
    if (st != MMCR_OK) goto done;
    mmcr_loss_set_compute_grad(loss, 0);
    double s = 0, s2 = 0, c2 = 0;
    for (int b = 0; b < B; b++) {
        mmcr_loss_result r;
        st = mmcr_loss_forward_f32(loss, emb + (size_t)b * views * D, &r, err);
        if (st != MMCR_OK) goto done;
        ppe[b] = r.ppe;
        s += r.ppe;
        c2 += r.mean_centroid_norm2;
    }
    re->ppe = s / B;
    re->c2 = c2 / B;
    for (int b = 0; b < B; b++) s2 += (ppe[b] - re->ppe) * (ppe[b] - re->ppe);
    re->ppe_se = B > 1 ? sqrt(s2 / (B - 1) / B) : NAN;

    if (cfg->eval != MMCR_SWEEP_EVAL_NONE) {
        const int fd = mmcr_model_feature_dim(model);
        mmcr_model_destroy(&model);
        /* Reload with a capacity suited to feature extraction (chunks of 256 images). */
        st = mmcr_checkpoint_load_model(ckpt, &model, 256, 1, NULL, NULL, NULL, err);
        if (st != MMCR_OK) goto done;
        ftr = mmcr_alloc_or_err(sizeof(float) * (size_t)ed->bank.n * fd, err, "bank features");
        fte = mmcr_alloc_or_err(sizeof(float) * (size_t)ed->test.n * fd, err, "test features");
        if (!ftr || !fte) {
            st = MMCR_ERR_NOMEM;
            goto done;
        }
        st = mmcr_extract_features(model, &ed->bank, mean, std, mmcr_train_eval_image_size(&tc), 256, 0, ftr, NULL, err);
        if (st == MMCR_OK) st = mmcr_extract_features(model, &ed->test, mean, std, mmcr_train_eval_image_size(&tc), 256, 0, fte, NULL, err);
        if (st != MMCR_OK) goto done;
        const int ncls = ed->bank.num_classes > ed->test.num_classes ? ed->bank.num_classes : ed->test.num_classes;
        if (cfg->eval & MMCR_SWEEP_EVAL_KNN) {
            const int kk = cfg->knn_k < ed->bank.n ? cfg->knn_k : ed->bank.n;
            st = mmcr_knn(ftr, ed->bank.labels, ed->bank.n, fte, ed->test.labels, ed->test.n, fd, ncls, kk, cfg->knn_t,
                          &re->knn, err);
            if (st != MMCR_OK) goto done;
        }
        if (cfg->eval & MMCR_SWEEP_EVAL_PROBE) {
            mmcr_probe_config pc;
            mmcr_probe_config_default(&pc);
            pc.epochs = cfg->probe_epochs;
            pc.seed = (uint64_t)cfg->eval_seed;
            mmcr_probe_result pr = {0};
            st = mmcr_linear_probe(ftr, ed->bank.labels, ed->bank.n, fte, ed->test.labels, ed->test.n, fd, ncls, &pc,
                                   NULL, &pr, err);
            if (st != MMCR_OK) goto done;
            re->probe = pr.test_top1;
        }
    }
done:
    re->seconds = mmcr_now() - t0;
    mmcr_model_destroy(&model);
    mmcr_loss_destroy(&loss);
    mmcr_free(emb), mmcr_free(ftr), mmcr_free(fte);
    free(ppe);
    return st;
}

static mmcr_status load_eval_data(const mmcr_sweep_config *cfg, eval_data *ed, mmcr_err *err) {
    memset(ed, 0, sizeof *ed);
    mmcr_train_config tc = cfg->base;
    mmcr_status st = mmcr_train_load_dataset(&tc, cfg->eval_split ? "test" : "train", &ed->fresh, err);
    if (st != MMCR_OK) return st;
    if (cfg->eval == MMCR_SWEEP_EVAL_NONE) return MMCR_OK;
    tc.train_subset = 0;
    st = mmcr_train_load_dataset(&tc, "train", &ed->bank, err);
    if (st == MMCR_OK) st = mmcr_train_load_dataset(&tc, "test", &ed->test, err);
    if (st != MMCR_OK) return st;
    if (!ed->bank.labels || !ed->test.labels)
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "downstream evaluation needs labels; the data set has none");
    /* The first N images of each split (the readers keep the file order). */
    if (cfg->eval_train > 0 && cfg->eval_train < ed->bank.n) ed->bank.n = cfg->eval_train;
    if (cfg->eval_test > 0 && cfg->eval_test < ed->test.n) ed->test.n = cfg->eval_test;
    return MMCR_OK;
}

static mmcr_status check_axes(const mmcr_sweep_config *cfg, mmcr_err *err) {
    const mmcr_sweep_axis *ax[6] = {&cfg->p, &cfg->d, &cfg->k, &cfg->steps, &cfg->width, &cfg->seed};
    static const char *const names[6] = {"P", "D", "K", "steps", "width", "seed"};
    for (int a = 0; a < 6; a++) {
        if (ax[a]->n < 1 || ax[a]->n > MMCR_SWEEP_MAX_AXIS)
            return mmcr_err_set(err, MMCR_ERR_ARG, "sweep axis --%s needs 1 to %d values", names[a], MMCR_SWEEP_MAX_AXIS);
        for (int i = 0; i < ax[a]->n; i++)
            if (ax[a]->v[i] < (a == 5 ? 0 : 1))
                return mmcr_err_set(err, MMCR_ERR_ARG, "sweep axis --%s: value %d out of range", names[a], ax[a]->v[i]);
    }
    if (cfg->eval_batches < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "option --eval-batches must be >= 1");
    if (!cfg->out[0]) return mmcr_err_set(err, MMCR_ERR_ARG, "option --out: the sweep directory is required");
    return MMCR_OK;
}

mmcr_status mmcr_sweep_run(const mmcr_sweep_config *cfg, const mmcr_logger *log, mmcr_sweep_summary *sum,
                           mmcr_err *err) {
    mmcr_sweep_summary local = {0};
    if (!sum) sum = &local;
    memset(sum, 0, sizeof *sum);
    mmcr_status st = check_axes(cfg, err);
    if (st != MMCR_OK) return st;
    char runs[PATH_CAP];
    snprintf(runs, sizeof runs, "%s/runs", cfg->out);
    st = mmcr_make_dirs(runs, err);
    if (st == MMCR_OK) st = check_sweep_json(cfg, err);
    if (st == MMCR_OK) st = rebuild_results(cfg->out, err);
    if (st != MMCR_OK) return st;
    eval_data ed;
    st = load_eval_data(cfg, &ed, err);
    if (st != MMCR_OK) goto out;

    const double t0 = mmcr_now();
    sum->total = cfg->p.n * cfg->d.n * cfg->k.n * cfg->steps.n * cfg->width.n * cfg->seed.n;
    int index = 0;
    /* Cheap axes outside: a partial sweep already covers the whole P x D table at the first steps. */
    for (int is = 0; is < cfg->steps.n; is++)
        for (int iw = 0; iw < cfg->width.n; iw++)
            for (int ik = 0; ik < cfg->k.n; ik++)
                for (int ie = 0; ie < cfg->seed.n; ie++)
                    for (int ip = 0; ip < cfg->p.n; ip++)
                        for (int id = 0; id < cfg->d.n; id++) {
                            index++;
                            const int P = cfg->p.v[ip], D = cfg->d.v[id], K = cfg->k.v[ik];
                            const int steps = cfg->steps.v[is], W = cfg->width.v[iw], seed = cfg->seed.v[ie];
                            char name[160], dir[PATH_CAP * 2], rpath[PATH_CAP * 3], ckpt[PATH_CAP * 3];
                            mmcr_sweep_run_name(name, sizeof name, P, D, K, steps, W, seed);
                            snprintf(dir, sizeof dir, "%s/%s", runs, name);
                            snprintf(rpath, sizeof rpath, "%s/result.json", dir);
                            snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
                            if (file_exists(rpath)) {
                                sum->skipped++;
                                continue;
                            }
                            if (cfg->max_new_runs > 0 && sum->finished + sum->failed >= cfg->max_new_runs) {
                                mmcr_logf(log, MMCR_LOG_INFO, "stopping after %d new runs (--max-runs); run again "
                                          "to continue", cfg->max_new_runs);
                                goto finished;
                            }
                            mmcr_train_config tc = cfg->base;
                            tc.batch = P, tc.proj_out = D, tc.views = K, tc.max_steps = steps, tc.width = W;
                            tc.seed = seed, tc.stop_at = 0, tc.time_budget = 0, tc.quiet = 1;
                            if (strlen(dir) >= sizeof tc.out) {
                                st = mmcr_err_set(err, MMCR_ERR_ARG, "run folder '%s' is too long", dir);
                                goto out;
                            }
                            memcpy(tc.out, dir, strlen(dir) + 1);
                            tc.resume = file_exists(ckpt);
                            mmcr_logf(log, MMCR_LOG_INFO, "run %d/%d %s%s", index, sum->total, name,
                                      tc.resume ? " (continuing from its checkpoint)" : "");
                            mmcr_train_summary ts;
                            mmcr_err rerr = {{0}};
                            mmcr_status rs = mmcr_train_run(&tc, NULL, &ts, &rerr);
                            if (rs != MMCR_OK && tc.resume && rs != MMCR_ERR_NONFINITE) {
                                mmcr_logf(log, MMCR_LOG_WARN, "%s: cannot continue (%s); starting it again", name,
                                          rerr.msg);
                                tc.resume = 0;
                                rs = mmcr_train_run(&tc, NULL, &ts, &rerr);
                            }
                            if (rs == MMCR_ERR_IO || rs == MMCR_ERR_NOMEM) {
                                /* The environment, not the run: stop, so a restart can finish it. */
                                st = mmcr_err_set(err, rs, "%s: %s", name, rerr.msg);
                                goto out;
                            }
                            run_eval re = {0};
                            if (rs == MMCR_OK) rs = evaluate_run(cfg, &ed, ckpt, P, K, &re, &rerr);
                            train_tail tt;
                            read_train_tail(dir, steps, &tt);
                            char *line = NULL;
                            size_t llen = 0;
                            FILE *f = open_memstream(&line, &llen);
                            if (!f) {
                                st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
                                goto out;
                            }
                            fprintf(f, "{\"run\":\"%s\",\"P\":%d,\"D\":%d,\"K\":%d,\"steps\":%d,\"width\":%d,\"seed\":%d",
                                    name, P, D, K, steps, W, seed);
                            fprintf(f, ",\"status\":\"%s\"", rs == MMCR_OK ? "ok" : "failed");
                            if (rs != MMCR_OK) {
                                char esc[1100];
                                mmcr_json_escape(esc, sizeof esc, rerr.msg);
                                fprintf(f, ",\"error\":\"%s\"", esc);
                            }
                            put_num(f, "compute", (double)steps * P * K);
                            put_num(f, "flops", rs == MMCR_OK ? 3.0 * re.flops_per_view * P * K * (double)steps : NAN);
                            put_num(f, "ppe", rs == MMCR_OK ? re.ppe : NAN);
                            put_num(f, "ppe_se", rs == MMCR_OK ? re.ppe_se : NAN);
                            put_num(f, "centroid_norm2", rs == MMCR_OK ? re.c2 : NAN);
                            fprintf(f, ",\"eval_batches\":%d", cfg->eval_batches);
                            put_num(f, "train_loss", tt.loss);
                            put_num(f, "train_ppe", tt.ppe);
                            put_num(f, "train_ppe_tail", tt.ppe_tail);
                            put_num(f, "train_centroid_norm2", tt.c2);
                            put_num(f, "train_seconds", tt.seconds);
                            put_num(f, "eval_seconds", re.seconds);
                            if (cfg->eval & MMCR_SWEEP_EVAL_KNN) put_num(f, "knn_top1", re.knn);
                            if (cfg->eval & MMCR_SWEEP_EVAL_PROBE) put_num(f, "probe_top1", re.probe);
                            fputs("}", f);
                            fclose(f);
                            mmcr_atomic_file af;
                            st = mmcr_atomic_open(&af, rpath, err);
                            if (st == MMCR_OK) {
                                fprintf(af.f, "%s\n", line);
                                st = mmcr_atomic_commit(&af, err);
                            }
                            if (st == MMCR_OK) st = append_result(cfg->out, line, err);
                            free(line);
                            if (st != MMCR_OK) goto out;
                            if (rs == MMCR_OK) {
                                sum->finished++;
                                mmcr_logf(log, MMCR_LOG_INFO,
                                          "%s: PPE %.4f +- %.4f on %d fresh batches (training %.4f), |mu|^2 %.3f, "
                                          "%.0f s + %.0f s", name, re.ppe, re.ppe_se, cfg->eval_batches, tt.ppe, re.c2,
                                          tt.seconds, re.seconds);
                            } else {
                                sum->failed++;
                                mmcr_logf(log, MMCR_LOG_WARN, "%s failed: %s (recorded; not retried)", name, rerr.msg);
                            }
                        }
finished:
    sum->seconds = mmcr_now() - t0;
    st = MMCR_OK;
out:
    mmcr_dataset_free(&ed.fresh);
    mmcr_dataset_free(&ed.bank);
    mmcr_dataset_free(&ed.test);
    return st;
}
