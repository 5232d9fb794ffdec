/* Feature extraction with a frozen encoder: evaluation transform, BN in eval mode, chunks of
 * at most `chunk` images so memory stays bounded. Nothing in the model changes. */
#include <string.h>

#include "mmcr/train.h"

mmcr_status mmcr_extract_features(mmcr_model *model, const mmcr_dataset *ds, const float *mean, const float *std,
                                  int image_size, int chunk, int project, float *out, const mmcr_logger *log,
                                  mmcr_err *err) {
    const int dim = project ? mmcr_model_embed_dim(model) : mmcr_model_feature_dim(model);
    const size_t view = (size_t)ds->c * (size_t)image_size * (size_t)image_size;
    float *buf = mmcr_alloc_or_err(sizeof(float) * view * (size_t)chunk, err, "feature-extraction batch");
    if (!buf) return MMCR_ERR_NOMEM;
    mmcr_aug_config a;
    mmcr_aug_config_none(&a, image_size);
    for (int c = 0; c < ds->c && c < 3; c++) {
        a.mean[c] = mean[c];
        a.std[c] = std[c];
    }
    const double t0 = mmcr_now();
    double last_log = t0;
    for (int start = 0; start < ds->n; start += chunk) {
        int n = ds->n - start < chunk ? ds->n - start : chunk;
        mmcr_dataset_to_float(ds, start, n, &a, buf);
        const float *feat, *emb;
        mmcr_status st = mmcr_model_forward(model, buf, n, 0, project, &feat, &emb);
        if (st != MMCR_OK) {
            mmcr_free(buf);
            return mmcr_err_set(err, st, "feature extraction failed at image %d", start);
        }
        memcpy(out + (size_t)start * (size_t)dim, project ? emb : feat, sizeof(float) * (size_t)n * (size_t)dim);
        double now = mmcr_now();
        if (now - last_log > 5.0) {
            last_log = now;
            double rate = (double)(start + n) / (now - t0);
            mmcr_logf(log, MMCR_LOG_INFO, "features %d/%d  %.0f img/s  ETA %.0fs", start + n, ds->n, rate,
                      (double)(ds->n - start - n) / rate);
        }
    }
    mmcr_free(buf);
    return MMCR_OK;
}
