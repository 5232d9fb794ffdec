/* mmcr eval: linear probe, weighted kNN and the 1%-label probe on frozen features of a
 * checkpoint's encoder, of the same architecture at random initialisation (--reinit), or of
 * raw pixels (--raw-pixels). Reports test top-1 as one JSON object. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "mmcr/eval.h"
#include "mmcr/io.h"
#include "mmcr/train.h"

typedef struct eval_config {
    char checkpoint[MMCR_OPT_STRLEN];
    int reinit, raw_pixels, project;
    int dataset;
    char data_dir[MMCR_OPT_STRLEN];
    int seed, threads, chunk;
    int knn_k;
    double knn_t;
    int labels_per_class;
    int probe_epochs;
    char out[MMCR_OPT_STRLEN];
} eval_config;

#define OFF(f) offsetof(eval_config, f)
static const mmcr_option eval_options[] = {
    {"checkpoint", MMCR_OPT_STRING, OFF(checkpoint), "", 0, 0, NULL, "checkpoint of the encoder to evaluate"},
    {"reinit", MMCR_OPT_BOOL, OFF(reinit), "0", 0, 1, NULL,
     "evaluate the checkpoint's architecture at random initialisation (--seed)"},
    {"raw-pixels", MMCR_OPT_BOOL, OFF(raw_pixels), "0", 0, 1, NULL, "evaluate normalised raw pixels (no encoder)"},
    {"project", MMCR_OPT_BOOL, OFF(project), "0", 0, 1, NULL, "use projector embeddings instead of backbone features"},
    {"dataset", MMCR_OPT_CHOICE, OFF(dataset), "fashion-mnist", 0, 0, "fashion-mnist|mnist|cifar10|cifar100",
     "data set for --raw-pixels (a checkpoint records its own)"},
    {"data-dir", MMCR_OPT_STRING, OFF(data_dir), "", 0, 0, NULL,
     "data folder (default: the checkpoint's, or the data set's standard folder)"},
    {"seed", MMCR_OPT_INT, OFF(seed), "0", 0, 2147483647, NULL, "seed (random init, splits)"},
    {"threads", MMCR_OPT_INT, OFF(threads), "0", 0, 1024, NULL, "threads (0 = all cores)"},
    {"chunk", MMCR_OPT_INT, OFF(chunk), "500", 1, 65536, NULL, "images per forward pass"},
    {"knn-k", MMCR_OPT_INT, OFF(knn_k), "200", 1, 100000, NULL, "kNN: neighbours"},
    {"knn-t", MMCR_OPT_DOUBLE, OFF(knn_t), "0.5", 1e-6, 1e6, NULL, "kNN: temperature of the exp(sim/T) weights"},
    {"labels-per-class", MMCR_OPT_INT, OFF(labels_per_class), "60", 0, 100000, NULL,
     "low-label probe: labelled training images per class (60 = 1% of Fashion-MNIST; 0 = skip)"},
    {"probe-epochs", MMCR_OPT_INT, OFF(probe_epochs), "100", 1, 10000, NULL,
     "linear probe: maximum epochs (the count is chosen on the validation split)"},
    {"out", MMCR_OPT_STRING, OFF(out), "", 0, 0, NULL, "also write the JSON result to this file"},
};

static const char *const default_dirs[] = {"/usr/share/datasets/fashion-mnist", "/usr/share/datasets/mnist", "",
                                           ""};
static const char *const encoder_names[] = {"pretrained", "random-init", "raw-pixels"};

int cmd_eval(int argc, char **argv) {
    eval_config ec;
    int n = (int)(sizeof eval_options / sizeof eval_options[0]);
    int rc = cli_parse("eval", "(--checkpoint FILE [--reinit] | --raw-pixels) [options]", eval_options, n, &ec, argc,
                       argv, NULL, 0, NULL);
    if (rc >= 0) return rc;
    if (ec.raw_pixels && ec.checkpoint[0]) {
        fprintf(stderr, "mmcr eval: --raw-pixels and --checkpoint exclude each other\n");
        return 2;
    }
    if (!ec.raw_pixels && !ec.checkpoint[0]) {
        fprintf(stderr, "mmcr eval: give --checkpoint FILE or --raw-pixels (see 'mmcr eval --help')\n");
        return 2;
    }
    mmcr_set_threads(ec.threads);
    mmcr_logger lg = cli_logger();
    mmcr_err err = {{0}};
    mmcr_status st = MMCR_OK;
    mmcr_model *model = NULL;
    mmcr_train_config tc;
    int nto;
    const mmcr_option *topts = mmcr_train_options(&nto);
    float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    mmcr_dataset tr = {0}, te = {0};
    float *ftr = NULL, *fte = NULL, *fsub = NULL;
    int32_t *ysub = NULL;
    uint32_t *idx = NULL;
    const double t0 = mmcr_now();

    if (ec.raw_pixels) {
        mmcr_options_defaults(topts, nto, &tc, &err);
        tc.dataset = ec.dataset;
        snprintf(tc.data_dir, sizeof tc.data_dir, "%s", ec.data_dir[0] ? ec.data_dir : default_dirs[ec.dataset]);
    } else {
        st = mmcr_checkpoint_load_model(ec.checkpoint, &model, ec.chunk, 1, &tc, mean, std, &err);
        if (st != MMCR_OK) goto done;
        if (ec.data_dir[0]) snprintf(tc.data_dir, sizeof tc.data_dir, "%s", ec.data_dir);
        if (ec.reinit) mmcr_model_init(model, (uint64_t)ec.seed);
    }
    tc.train_subset = 0; /* evaluation always uses the whole training set */
    st = mmcr_train_load_dataset(&tc, "train", &tr, &err);
    if (st == MMCR_OK) st = mmcr_train_load_dataset(&tc, "test", &te, &err);
    if (st != MMCR_OK) goto done;
    if (!tr.labels || !te.labels) {
        st = mmcr_err_set(&err, MMCR_ERR_FORMAT, "the data set has no labels");
        goto done;
    }
    if (ec.raw_pixels) mmcr_dataset_stats(&tr, mean, std);
    int size = ec.raw_pixels ? tr.h : mmcr_train_eval_image_size(&tc);
    int dim = ec.raw_pixels ? tr.c * tr.h * tr.w
                            : (ec.project ? mmcr_model_embed_dim(model) : mmcr_model_feature_dim(model));
    ftr = mmcr_alloc_or_err(sizeof(float) * (size_t)tr.n * (size_t)dim, &err, "training features");
    fte = mmcr_alloc_or_err(sizeof(float) * (size_t)te.n * (size_t)dim, &err, "test features");
    if (!ftr || !fte) {
        st = MMCR_ERR_NOMEM;
        goto done;
    }
    if (ec.raw_pixels) {
        mmcr_aug_config a;
        mmcr_aug_config_none(&a, size);
        for (int c = 0; c < tr.c && c < 3; c++) a.mean[c] = mean[c], a.std[c] = std[c];
        mmcr_dataset_to_float(&tr, 0, tr.n, &a, ftr);
        mmcr_dataset_to_float(&te, 0, te.n, &a, fte);
    } else {
        mmcr_logf(&lg, MMCR_LOG_INFO, "extracting %s features of %d + %d images", encoder_names[ec.reinit], tr.n, te.n);
        st = mmcr_extract_features(model, &tr, mean, std, size, ec.chunk, ec.project, ftr, &lg, &err);
        if (st == MMCR_OK) st = mmcr_extract_features(model, &te, mean, std, size, ec.chunk, ec.project, fte, &lg, &err);
        if (st != MMCR_OK) goto done;
    }
    const double t_feat = mmcr_now();
    int ncls = tr.num_classes > te.num_classes ? tr.num_classes : te.num_classes;
    mmcr_probe_config pc;
    mmcr_probe_config_default(&pc);
    pc.epochs = ec.probe_epochs;
    pc.seed = (uint64_t)ec.seed;
    mmcr_probe_result lin = {0}, low = {0};
    mmcr_logf(&lg, MMCR_LOG_INFO, "linear probe on %d x %d features", tr.n, dim);
    st = mmcr_linear_probe(ftr, tr.labels, tr.n, fte, te.labels, te.n, dim, ncls, &pc, &lg, &lin, &err);
    if (st != MMCR_OK) goto done;
    double knn = 0;
    if (ec.knn_k > tr.n) ec.knn_k = tr.n; /* report the k that was used */
    mmcr_logf(&lg, MMCR_LOG_INFO, "kNN (k=%d, T=%g)", ec.knn_k, ec.knn_t);
    st = mmcr_knn(ftr, tr.labels, tr.n, fte, te.labels, te.n, dim, ncls, ec.knn_k, ec.knn_t, &knn, &err);
    if (st != MMCR_OK) goto done;
    int nsub = 0;
    if (ec.labels_per_class > 0) {
        idx = malloc(sizeof *idx * (size_t)ncls * (size_t)ec.labels_per_class);
        if (!idx) {
            st = mmcr_err_set(&err, MMCR_ERR_NOMEM, "out of memory");
            goto done;
        }
        st = mmcr_subset_per_class(tr.labels, tr.n, ncls, ec.labels_per_class, (uint64_t)ec.seed, idx, &nsub, &err);
        if (st != MMCR_OK) goto done;
        fsub = mmcr_alloc_or_err(sizeof(float) * (size_t)nsub * (size_t)dim, &err, "low-label features");
        ysub = malloc(sizeof *ysub * (size_t)nsub);
        if (!fsub || !ysub) {
            st = MMCR_ERR_NOMEM;
            goto done;
        }
        for (int i = 0; i < nsub; i++) {
            memcpy(fsub + (size_t)i * (size_t)dim, ftr + (size_t)idx[i] * (size_t)dim, sizeof(float) * (size_t)dim);
            ysub[i] = tr.labels[idx[i]];
        }
        mmcr_logf(&lg, MMCR_LOG_INFO, "low-label probe on %d labelled images", nsub);
        /* A few hundred rows in batches of 256 would give ~3 Adam steps per epoch. */
        mmcr_probe_config lowc = pc;
        if (nsub < 20 * lowc.batch) lowc.batch = nsub / 20 > 16 ? nsub / 20 : 16;
        st = mmcr_linear_probe(fsub, ysub, nsub, fte, te.labels, te.n, dim, ncls, &lowc, &lg, &low, &err);
        if (st != MMCR_OK) goto done;
    }
    const double t1 = mmcr_now();
    char json[2048];
    char ck[2 * MMCR_OPT_STRLEN];
    mmcr_json_escape(ck, sizeof ck, ec.raw_pixels ? "" : ec.checkpoint);
    snprintf(json, sizeof json,
             "{\"encoder\":\"%s\",\"checkpoint\":\"%s\",\"feature_dim\":%d,\"n_train\":%d,\"n_test\":%d,"
             "\"linear_top1\":%.6f,\"linear_top1_se\":%.6f,\"linear_l2\":%.3g,\"linear_epochs\":%d,"
             "\"knn_top1\":%.6f,\"knn_k\":%d,\"knn_t\":%g,\"low_label_per_class\":%d,\"low_label_top1\":%.6f,"
             "\"feature_seconds\":%.2f,\"seconds\":%.2f}",
             encoder_names[ec.raw_pixels ? 2 : ec.reinit ? 1 : 0], ck, dim, tr.n, te.n, lin.test_top1,
             lin.test_top1_se, lin.chosen_l2, lin.chosen_epochs, knn, ec.knn_k, ec.knn_t, ec.labels_per_class,
             ec.labels_per_class > 0 ? low.test_top1 : -1.0, t_feat - t0, t1 - t0);
    printf("%s\n", json);
    if (ec.out[0]) {
        mmcr_atomic_file af;
        st = mmcr_atomic_open(&af, ec.out, &err);
        if (st == MMCR_OK) {
            fprintf(af.f, "%s\n", json);
            st = mmcr_atomic_commit(&af, &err);
        }
    }
done:
    mmcr_model_destroy(&model);
    mmcr_dataset_free(&tr);
    mmcr_dataset_free(&te);
    mmcr_free(ftr), mmcr_free(fte), mmcr_free(fsub);
    free(ysub), free(idx);
    if (st != MMCR_OK) return cli_fail("eval", st, &err);
    return 0;
}
