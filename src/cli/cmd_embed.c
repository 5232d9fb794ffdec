/* mmcr embed: backbone features (or projector embeddings) of a data split as .npy. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "mmcr/io.h"
#include "mmcr/train.h"

typedef struct embed_config {
    char checkpoint[MMCR_OPT_STRLEN];
    int split; /* train|test */
    int project, reinit, seed, threads, chunk, limit;
    char data_dir[MMCR_OPT_STRLEN];
    char out[MMCR_OPT_STRLEN];
    char labels_out[MMCR_OPT_STRLEN];
} embed_config;

#define OFF(f) offsetof(embed_config, f)
static const mmcr_option embed_options[] = {
    {"checkpoint", MMCR_OPT_STRING, OFF(checkpoint), "", 0, 0, NULL, "checkpoint of the encoder (required)"},
    {"split", MMCR_OPT_CHOICE, OFF(split), "test", 0, 0, "train|test", "which split of the checkpoint's data set"},
    {"project", MMCR_OPT_BOOL, OFF(project), "0", 0, 1, NULL, "projector embeddings (D) instead of backbone features"},
    {"reinit", MMCR_OPT_BOOL, OFF(reinit), "0", 0, 1, NULL, "same architecture at random initialisation (--seed)"},
    {"seed", MMCR_OPT_INT, OFF(seed), "0", 0, 2147483647, NULL, "seed for --reinit"},
    {"threads", MMCR_OPT_INT, OFF(threads), "0", 0, 1024, NULL, "threads (0 = all cores)"},
    {"chunk", MMCR_OPT_INT, OFF(chunk), "500", 1, 65536, NULL, "images per forward pass"},
    {"limit", MMCR_OPT_INT, OFF(limit), "0", 0, 2147483647, NULL, "only the first N images (0 = all)"},
    {"data-dir", MMCR_OPT_STRING, OFF(data_dir), "", 0, 0, NULL, "data folder (default: the checkpoint's)"},
    {"out", MMCR_OPT_STRING, OFF(out), "", 0, 0, NULL, "output .npy (N x dim float32) (required)"},
    {"labels-out", MMCR_OPT_STRING, OFF(labels_out), "", 0, 0, NULL, "also write the labels (N int32) here"},
};

int cmd_embed(int argc, char **argv) {
    embed_config ec;
    int n = (int)(sizeof embed_options / sizeof embed_options[0]);
    int rc = cli_parse("embed", "--checkpoint FILE --out X.npy [options]", embed_options, n, &ec, argc, argv, NULL, 0,
                       NULL);
    if (rc >= 0) return rc;
    if (!ec.checkpoint[0] || !ec.out[0]) {
        fprintf(stderr, "mmcr embed: --checkpoint and --out are required (see 'mmcr embed --help')\n");
        return 2;
    }
    if (ec.labels_out[0] && strcmp(ec.labels_out, ec.out) == 0) {
        fprintf(stderr, "mmcr embed: --labels-out must differ from --out ('%s')\n", ec.out);
        return 2;
    }
    mmcr_set_threads(ec.threads);
    mmcr_logger lg = cli_logger();
    mmcr_err err = {{0}};
    mmcr_model *model = NULL;
    mmcr_train_config tc;
    float mean[3], std[3], *feat = NULL;
    mmcr_dataset ds = {0};
    mmcr_status st = mmcr_checkpoint_load_model(ec.checkpoint, &model, ec.chunk, 1, &tc, mean, std, &err);
    if (st != MMCR_OK) goto done;
    if (ec.reinit) mmcr_model_init(model, (uint64_t)ec.seed);
    if (ec.data_dir[0]) snprintf(tc.data_dir, sizeof tc.data_dir, "%s", ec.data_dir);
    tc.train_subset = 0;
    st = mmcr_train_load_dataset(&tc, ec.split ? "test" : "train", &ds, &err);
    if (st != MMCR_OK) goto done;
    if (ec.limit > 0 && ec.limit < ds.n) ds.n = ec.limit;
    int dim = ec.project ? mmcr_model_embed_dim(model) : mmcr_model_feature_dim(model);
    feat = mmcr_alloc_or_err(sizeof(float) * (size_t)ds.n * (size_t)dim, &err, "features");
    if (!feat) {
        st = MMCR_ERR_NOMEM;
        goto done;
    }
    st = mmcr_extract_features(model, &ds, mean, std, mmcr_train_eval_image_size(&tc), ec.chunk, ec.project, feat, &lg, &err);
    if (st != MMCR_OK) goto done;
    int64_t shape[2] = {ds.n, dim};
    st = mmcr_npy_write(ec.out, MMCR_F32, 2, shape, feat, &err);
    if (st == MMCR_OK && ec.labels_out[0] && ds.labels)
        st = mmcr_npy_write(ec.labels_out, MMCR_I32, 1, shape, ds.labels, &err);
    if (st == MMCR_OK) {
        char esc[2 * MMCR_OPT_STRLEN];
        mmcr_json_escape(esc, sizeof esc, ec.out);
        printf("{\"out\":\"%s\",\"n\":%d,\"dim\":%d}\n", esc, ds.n, dim);
    }
done:
    mmcr_free(feat);
    mmcr_dataset_free(&ds);
    mmcr_model_destroy(&model);
    if (st != MMCR_OK) return cli_fail("embed", st, &err);
    return 0;
}
