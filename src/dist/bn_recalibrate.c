/* Batch-norm recalibration at the evaluation image size. A network trained on small random
 * crops (--image-size) and evaluated on whole images at a larger size (--eval-image-size) sees
 * other activation statistics at evaluation time; the running statistics estimated during
 * training no longer match them (Touvron et al. 2019, "Fixing the train-test resolution
 * discrepancy"). Re-estimating them on unlabelled training images, parameters frozen, is the
 * last step of pretraining; evaluation then changes nothing in the encoder. */
#include <string.h>

#include "mmcr/train.h"

mmcr_status mmcr_train_recalibrate_bn(const mmcr_train_config *cfg, mmcr_model *model, const mmcr_dataset *ds,
                                      const float *mean, const float *std, int n_images, int chunk, mmcr_err *err) {
    if (!cfg || !model || !ds || n_images < 1 || chunk < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "batch-norm recalibration: bad arguments");
    if (n_images > ds->n) n_images = ds->n;
    if (chunk > n_images) chunk = n_images;
    /* Equal-sized batches, so the average of the batch means is the mean over all used images. */
    const int batches = n_images / chunk;
    const int size = mmcr_train_eval_image_size(cfg);
    mmcr_model_config mc;
    mmcr_train_model_config(cfg, ds->c, &mc);
    mc.image_size = size;
    mmcr_model *m = NULL;
    mmcr_status st = mmcr_model_create(&m, &mc, chunk, err);
    if (st != MMCR_OK) return st;
    if (mmcr_model_num_params(m) != mmcr_model_num_params(model) ||
        mmcr_model_num_buffers(m) != mmcr_model_num_buffers(model)) {
        mmcr_model_destroy(&m);
        return mmcr_err_set(err, MMCR_ERR_ARG, "batch-norm recalibration: the model does not match the configuration");
    }
    const size_t view = (size_t)ds->c * (size_t)size * (size_t)size;
    float *img = mmcr_alloc_or_err(sizeof(float) * view * (size_t)chunk, err, "recalibration images");
    if (!img) {
        mmcr_model_destroy(&m);
        return MMCR_ERR_NOMEM;
    }
    memcpy(mmcr_model_params(m), mmcr_model_params(model), sizeof(float) * mmcr_model_num_params(model));
    mmcr_model_reset_bn_stats(m);
    mmcr_aug_config a;
    mmcr_aug_config_none(&a, size);
    for (int c = 0; c < ds->c && c < 3; c++) a.mean[c] = mean[c], a.std[c] = std[c];
    for (int b = 0; b < batches && st == MMCR_OK; b++) {
        mmcr_dataset_to_float(ds, b * chunk, chunk, &a, img);
        mmcr_model_set_bn_momentum(m, 1.0f / (float)(b + 1)); /* running = average of batches 1..b+1 */
        const float *feat, *emb;
        st = mmcr_model_forward(m, img, chunk, 1, 1, &feat, &emb);
        if (st != MMCR_OK) mmcr_err_set(err, st, "batch-norm recalibration: forward pass failed");
    }
    if (st == MMCR_OK)
        memcpy(mmcr_model_buffers(model), mmcr_model_buffers(m), sizeof(float) * mmcr_model_num_buffers(model));
    mmcr_free(img);
    mmcr_model_destroy(&m);
    return st;
}
