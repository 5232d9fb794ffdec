/* Grids of short pretraining runs (mmcr sweep) and embeddings of fresh batches with a frozen
 * model (mmcr geometry, the sweep's evaluation). docs/analyses.md describes both. */
#ifndef MMCR_SWEEP_H
#define MMCR_SWEEP_H

#include "mmcr/core.h"
#include "mmcr/data.h"
#include "mmcr/nn.h"
#include "mmcr/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Raw projector outputs of n_batches fresh batches: each batch is P data x K views drawn by a
 * loader over ds with the augmentation aug (shuffled with seed, data without replacement inside
 * an epoch, so consecutive batches hold different data while the data set lasts). out holds
 * n_batches * P * K * D floats, each batch datum-major as the loss takes it.
 * bn_train = 0: BN uses its running statistics (the network is one fixed function, so the rows
 * are i.i.d.), the views are forwarded in chunks of at most max_batch images (the model's
 * capacity). bn_train = 1: BN normalises with the statistics of the batch's P*K views, as in
 * training (needs max_batch >= P*K; the model's running statistics are updated).
 * MMCR_ERR_ARG when ds has fewer than P images. */
mmcr_status mmcr_embed_fresh_batches(mmcr_model *model, const mmcr_dataset *ds, const mmcr_aug_config *aug, int p,
                                     int k, int n_batches, uint64_t seed, int bn_train, int max_batch, float *out,
                                     mmcr_err *err);

#define MMCR_SWEEP_MAX_AXIS 64

typedef struct mmcr_sweep_axis {
    int n;
    int v[MMCR_SWEEP_MAX_AXIS];
} mmcr_sweep_axis;

typedef enum mmcr_sweep_eval {
    MMCR_SWEEP_EVAL_NONE = 0,
    MMCR_SWEEP_EVAL_KNN = 1,
    MMCR_SWEEP_EVAL_PROBE = 2,
    MMCR_SWEEP_EVAL_BOTH = 3
} mmcr_sweep_eval;

typedef struct mmcr_sweep_config {
    /* every training option; batch, proj_out, views, max_steps, width, seed, out, resume and
     * stop_at are set per run from the grid */
    mmcr_train_config base;
    mmcr_sweep_axis p, d, k, steps, width, seed;
    char out[MMCR_OPT_STRLEN];  /* sweep directory: runs/<name>/, results.jsonl, sweep.json */
    /* evaluation of each finished run on fresh batches */
    int eval_batches;           /* batches of P data, PPE averaged over them */
    int eval_seed;              /* loader seed of the evaluation batches (the same for every run) */
    int eval_split;             /* 0: training split, 1: test split */
    int bn_train;               /* see mmcr_embed_fresh_batches */
    int eval;                   /* mmcr_sweep_eval: downstream accuracy of the backbone features */
    int eval_train, eval_test;  /* images of the kNN bank / probe training set, and of the test set */
    int knn_k;
    double knn_t;
    int probe_epochs;
    int max_new_runs;           /* stop after this many newly finished runs (0: no limit) */
} mmcr_sweep_config;

typedef struct mmcr_sweep_summary {
    int total, skipped, finished, failed;
    double seconds;
} mmcr_sweep_summary;

/* Runs every grid point not finished yet. A run is finished when runs/<name>/result.json exists
 * (written atomically after its evaluation); its line is then in results.jsonl. An interrupted
 * run continues from its checkpoint. sweep.json records the base configuration: a sweep
 * directory made with different base options is refused (the error names the first option that
 * differs). A failed run (e.g. diverged) is logged, recorded with "failed" in its result and not
 * retried. */
mmcr_status mmcr_sweep_run(const mmcr_sweep_config *cfg, const mmcr_logger *log, mmcr_sweep_summary *sum,
                           mmcr_err *err);

/* "P64_D128_K2_steps300_w4_seed0" */
void mmcr_sweep_run_name(char *buf, size_t cap, int p, int d, int k, int steps, int width, int seed);

#ifdef __cplusplus
}
#endif
#endif
