/* Training checkpoints (safetensors): parameters, BN buffers, optimiser state, step and the
 * effective configuration (as metadata), written atomically. */
#ifndef MMCR_DIST_CHECKPOINT_H
#define MMCR_DIST_CHECKPOINT_H

#include "mmcr/optim.h"
#include "mmcr/train.h"

mmcr_status mmcr_checkpoint_save(const char *path, const mmcr_train_config *cfg, mmcr_model *model,
                                 mmcr_optim *opt, long step, const float *mean, const float *std, int channels,
                                 mmcr_err *err);
/* Restores parameters, buffers, optimiser state and step into objects built from cfg. */
mmcr_status mmcr_checkpoint_restore(const char *path, const mmcr_train_config *cfg, mmcr_model *model,
                                    mmcr_optim *opt, long *step, mmcr_err *err);

#endif
