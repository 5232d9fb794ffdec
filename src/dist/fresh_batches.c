/* Embeddings of fresh augmented batches with a frozen model (mmcr/sweep.h). */
#include <string.h>

#include "mmcr/sweep.h"

mmcr_status mmcr_embed_fresh_batches(mmcr_model *model, const mmcr_dataset *ds, const mmcr_aug_config *aug, int p,
                                     int k, int n_batches, uint64_t seed, int bn_train, int max_batch, float *out,
                                     mmcr_err *err) {
    if (p < 1 || k < 1 || n_batches < 1 || max_batch < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "fresh batches need P, K, batches >= 1 (P=%d, K=%d, batches=%d)", p, k,
                            n_batches);
    if (ds->n < p)
        return mmcr_err_set(err, MMCR_ERR_ARG, "the data set has %d images, fewer than one batch of P = %d", ds->n, p);
    const int views = p * k;
    if (bn_train && max_batch < views)
        return mmcr_err_set(err, MMCR_ERR_ARG, "batch-statistics BN needs the model to take %d views at once (it takes %d)",
                            views, max_batch);
    const int d = mmcr_model_embed_dim(model);
    mmcr_loader *loader = NULL;
    mmcr_loader_config lc = {.batch = p, .views = k, .seed = seed, .shuffle = 1, .drop_last = 1};
    mmcr_status st = mmcr_loader_create(&loader, ds, aug, &lc, err);
    if (st != MMCR_OK) return st;
    const size_t view_floats = (size_t)ds->c * (size_t)aug->out_size * (size_t)aug->out_size;
    for (int b = 0; b < n_batches && st == MMCR_OK; b++) {
        const mmcr_batch *bt = mmcr_loader_next(loader);
        float *dst = out + (size_t)b * views * d;
        const int chunk = bn_train ? views : max_batch;
        for (int s = 0; s < views; s += chunk) {
            const int n = views - s < chunk ? views - s : chunk;
            const float *feat, *emb;
            st = mmcr_model_forward(model, bt->images + (size_t)s * view_floats, n, bn_train, 1, &feat, &emb);
            if (st != MMCR_OK) {
                st = mmcr_err_set(err, st, "forward pass failed on fresh batch %d", b);
                break;
            }
            memcpy(dst + (size_t)s * d, emb, sizeof(float) * (size_t)n * d);
        }
    }
    mmcr_loader_destroy(&loader);
    return st;
}
