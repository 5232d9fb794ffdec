/* MMCR pretraining engine: one training run (model + projector, MMCR loss on the full batch,
 * optimiser, schedule, read-ahead loader, metrics, atomic checkpoints, exact resume). */
#ifndef MMCR_TRAIN_H
#define MMCR_TRAIN_H

#include "mmcr/config.h"
#include "mmcr/core.h"
#include "mmcr/data.h"
#include "mmcr/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values of mmcr_train_config.conv (the order of the --conv choices). */
enum { MMCR_TRAIN_CONV_AUTO = 0, MMCR_TRAIN_CONV_ONEDNN = 1, MMCR_TRAIN_CONV_GEMM = 2 };

typedef struct mmcr_train_config {
    /* data */
    int dataset;                     /* index into "fashion-mnist|mnist|cifar10|cifar100" */
    char data_dir[MMCR_OPT_STRLEN];
    int train_subset;                /* use only the first N training images (0 = all) */
    int image_size;
    int eval_image_size;             /* side the frozen encoder sees in evaluation; 0 = the data set's */
    int bn_recalibrate;              /* images for the final batch-norm recalibration at that size; 0 = none */
    /* model */
    int width, proj_hidden, proj_out, proj_bias;
    /* objective */
    int batch;                        /* P images per step */
    int views;                        /* K */
    double lambda;
    /* optimisation */
    int optimizer;                    /* index into "sgd|lars|adam|adamw" */
    double lr, momentum, weight_decay;
    int nesterov;
    int schedule;                     /* index into "constant|cosine|onecycle" */
    double warmup_epochs, final_lr_factor, pct_start;
    double epochs;                    /* fractional epochs allowed */
    int max_steps;                    /* 0 = from epochs */
    double time_budget;               /* seconds; 0 = none. Schedule length stays the planned one. */
    int stop_at;                      /* stop (with a checkpoint) once this step is reached; 0 = run to the end */
    /* augmentations */
    double crop_scale_min, crop_scale_max, crop_ratio_min, crop_ratio_max;
    double flip_p, jitter_p, brightness, contrast, saturation, hue, gray_p;
    double blur_p, blur_sigma_min, blur_sigma_max, solarize_p;
    double erase_p, erase_scale_min, erase_scale_max;
    /* run */
    int seed;
    int threads;
    int conv; /* convolution kernels: MMCR_TRAIN_CONV_* */
    char out[MMCR_OPT_STRLEN];        /* run directory */
    int log_every, checkpoint_every;  /* steps */
    int resume;
    int quiet;
} mmcr_train_config;

/* The option table that defines every training option (flags, config files, --help). */
const mmcr_option *mmcr_train_options(int *n);

typedef struct mmcr_train_summary {
    long steps;
    double seconds;
    double final_loss, final_ppe, final_mean_centroid_norm2;
    double images_per_second;
} mmcr_train_summary;

/* Runs (or resumes) a training run into cfg->out. Progress goes to the logger at INFO level. */
mmcr_status mmcr_train_run(const mmcr_train_config *cfg, const mmcr_logger *log,
                           mmcr_train_summary *summary, mmcr_err *err);

/* Side of the images a frozen encoder of this run is evaluated on: eval_image_size, or the data
 * set's own (28 for MNIST and Fashion-MNIST, 32 for CIFAR). */
int mmcr_train_eval_image_size(const mmcr_train_config *cfg);

/* Re-estimates the batch-norm running statistics of a trained encoder at the run's evaluation
 * image size: the plain average of the batch statistics (training mode) of the first n_images
 * images of ds (evaluation transform: whole image at that size, normalised with mean/std; no
 * labels) in equal batches of `chunk`, parameters frozen. Only the buffers of `model` change.
 * Pretraining ends with it when --bn-recalibrate > 0 and the sizes differ (src/dist/bn_recalibrate.c). */
mmcr_status mmcr_train_recalibrate_bn(const mmcr_train_config *cfg, mmcr_model *model, const mmcr_dataset *ds,
                                      const float *mean, const float *std, int n_images, int chunk, mmcr_err *err);

/* Model configuration implied by a training configuration and data set shape. */
void mmcr_train_model_config(const mmcr_train_config *cfg, int in_channels, mmcr_model_config *mc);

/* Loads the configured data set's split ("train" or "test"), honouring train_subset for "train". */
mmcr_status mmcr_train_load_dataset(const mmcr_train_config *cfg, const char *split, mmcr_dataset *ds, mmcr_err *err);
/* The augmentation pipeline of a configuration (normalisation from mean/std). */
void mmcr_train_aug_config(const mmcr_train_config *cfg, int channels, const float *mean, const float *std,
                           mmcr_aug_config *aug);

/* Checkpoints: model params + BN buffers (+ optimiser state, step, RNG/loader position and the
 * effective configuration as metadata). load_model restores only what a frozen encoder needs,
 * sized for the run's evaluation images (for_eval: --eval-image-size) or for its training views. */
mmcr_status mmcr_checkpoint_load_model(const char *path, mmcr_model **model, int max_batch, int for_eval,
                                       mmcr_train_config *cfg_out, float *mean_out, float *std_out,
                                       mmcr_err *err);

/* Frozen-encoder features of images [0, ds->n) with the evaluation transform (no augmentation,
 * normalised with mean/std), BN in eval mode: out is n x feature_dim (project == 0) or n x D. */
mmcr_status mmcr_extract_features(mmcr_model *model, const mmcr_dataset *ds, const float *mean, const float *std,
                                  int image_size, int chunk, int project, float *out, const mmcr_logger *log,
                                  mmcr_err *err);

#ifdef __cplusplus
}
#endif
#endif
