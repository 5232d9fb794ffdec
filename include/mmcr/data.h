/* Data: data-set readers, per-view augmentations and a read-ahead batch loader.
 *
 * A data set is held in memory as uint8 pixels, each image C x H x W (planar). The loader
 * produces float batches of P data x K views, datum-major (the K views of datum 0 first),
 * each view C x S x S, already normalised ((x/255 - mean[c]) / std[c]).
 * Randomness: view k of datum i in epoch e draws from the stream (seed, e, i, k), so batches
 * are the same whatever the thread schedule. */
#ifndef MMCR_DATA_H
#define MMCR_DATA_H

#include "mmcr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mmcr_dataset {
    int n, c, h, w;
    uint8_t *pixels; /* n * c * h * w */
    int32_t *labels; /* n, or NULL when unlabelled */
    int num_classes;
} mmcr_dataset;
/* IDX (MNIST/Fashion-MNIST) pair, plain or gzip (detected by magic, not by name). */
mmcr_status mmcr_dataset_load_idx(mmcr_dataset *ds, const char *images_path, const char *labels_path, mmcr_err *err);
/* dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; split "train" or "test". */
mmcr_status mmcr_dataset_load_mnist_dir(mmcr_dataset *ds, const char *dir, const char *split, mmcr_err *err);
/* CIFAR binary files: cifar100 = 0 -> 1 label byte, 1 -> coarse + fine (fine used). Several
 * files may be concatenated by passing them as a NULL-terminated list. */
mmcr_status mmcr_dataset_load_cifar(mmcr_dataset *ds, const char *const *paths, int cifar100, mmcr_err *err);
/* Copy of the rows idx[0..n) (for subsets / splits). */
mmcr_status mmcr_dataset_subset(mmcr_dataset *out, const mmcr_dataset *src, const uint32_t *idx, int n, mmcr_err *err);
void mmcr_dataset_free(mmcr_dataset *ds);
/* Per-channel mean and std of pixels/255 over the whole set (c values each). */
void mmcr_dataset_stats(const mmcr_dataset *ds, float *mean, float *std);

typedef struct mmcr_aug_config {
    int out_size;                 /* S */
    float crop_p;                 /* probability of a random resized crop (else the full image, resized) */
    float crop_scale[2];          /* area fraction range, default (0.08, 1) */
    float crop_ratio[2];          /* aspect ratio range, default (3/4, 4/3) */
    float flip_p;                 /* horizontal flip */
    float jitter_p;               /* colour jitter applied with this probability */
    float brightness, contrast, saturation, hue; /* torchvision ColorJitter ranges */
    float gray_p;                 /* random grayscale (RGB only) */
    float blur_p;                 /* Gaussian blur, sigma ~ U[blur_sigma] */
    float blur_sigma[2];
    float solarize_p;             /* invert pixels >= 0.5 */
    float erase_p;                /* random erasing (after normalisation, value 0) */
    float erase_scale[2];         /* default (0.02, 0.33) */
    float erase_ratio[2];         /* default (0.3, 3.3) */
    float mean[3], std[3];        /* normalisation */
    /* Added by the data layer (zero = the default, so zero-initialised configs keep working): */
    int interp;                   /* MMCR_INTERP_BILINEAR (0) or MMCR_INTERP_BICUBIC, PIL-style antialiased */
    int blur_kernel;              /* odd Gaussian kernel size; 0: 2*ceil(3*sigma)+1 per draw */
} mmcr_aug_config;
enum { MMCR_INTERP_BILINEAR = 0, MMCR_INTERP_BICUBIC = 1 };
/* No augmentation at all: full image, normalised (evaluation transform). Sets mean 0 and std 1
 * (identity) and the torchvision default ranges (crop scale/ratio, blur sigma 0.1-2, erase
 * scale/ratio), so callers set only the probabilities and mean/std they need. */
void mmcr_aug_config_none(mmcr_aug_config *a, int out_size);
/* Range checks for a config used with c-channel images (c = 1 or 3); the error names the field. */
mmcr_status mmcr_aug_config_check(const mmcr_aug_config *a, int c, mmcr_err *err);
/* Presets. cifar: the MMCR CIFAR recipe (crop 0.08-1, flip 0.5, jitter 0.4/0.4/0.4/0.1 p 0.8,
 * grayscale 0.2, CIFAR-10 mean/std). byol: the ImageNet pair, prime = 0 -> T (blur 1.0, no
 * solarisation), prime = 1 -> T' (blur 0.1, solarisation 0.2); bicubic, ImageNet mean/std. */
void mmcr_aug_config_cifar(mmcr_aug_config *a, int out_size);
void mmcr_aug_config_byol(mmcr_aug_config *a, int out_size, int prime);
/* Augment one image src (c x h x w uint8, c = 1 or 3) into dst (c x S x S float, normalised).
 * Allocates a workspace per call; hot loops use mmcr_augment_ws. */
void mmcr_augment(const mmcr_aug_config *a, mmcr_rng *rng, const uint8_t *src, int c, int h, int w, float *dst);

/* What one draw decided (sampling is separate from applying, so tests and logs can see it). */
typedef struct mmcr_aug_params {
    int crop_x, crop_y, crop_w, crop_h; /* source region resized to S x S (the full image if no crop) */
    int cropped;                        /* the random resized crop was drawn (crop_p) */
    int flip;
    int jitter;                         /* colour jitter applied */
    int jitter_order[4];                /* 0 brightness, 1 contrast, 2 saturation, 3 hue */
    float brightness, contrast, saturation, hue; /* factors (1, 1, 1, 0 = identity) */
    int gray;
    float blur_sigma;                   /* 0: no blur */
    int blur_radius;                    /* kernel size 2*radius+1 */
    int solarize;
    int erase;                          /* an erase box was found (erase_p and 10 attempts) */
    int erase_x, erase_y, erase_w, erase_h;
} mmcr_aug_params;
void mmcr_aug_sample(const mmcr_aug_config *a, mmcr_rng *rng, int c, int h, int w, mmcr_aug_params *p);
/* Bytes of scratch memory mmcr_aug_apply / mmcr_augment_ws need for images up to c x h x w. */
size_t mmcr_aug_workspace_bytes(const mmcr_aug_config *a, int c, int h, int w);
void mmcr_aug_apply(const mmcr_aug_config *a, const mmcr_aug_params *p, const uint8_t *src, int c, int h, int w,
                    float *dst, void *work);
/* mmcr_augment with a caller-owned workspace of mmcr_aug_workspace_bytes (no allocation). */
void mmcr_augment_ws(const mmcr_aug_config *a, mmcr_rng *rng, const uint8_t *src, int c, int h, int w,
                     float *dst, void *work);
/* Evaluation transform of images [start, start+count) into dst (count x c x S x S): only the
 * deterministic part of a is used (full image resized to S x S, normalised); the random stages
 * are ignored whatever their probabilities. */
void mmcr_dataset_to_float(const mmcr_dataset *ds, int start, int count, const mmcr_aug_config *a, float *dst);

typedef struct mmcr_loader_config {
    int batch;      /* P data per batch */
    int views;      /* K */
    uint64_t seed;
    int shuffle;    /* reshuffle every epoch (stream (seed, epoch, 2^64-1, 2^64-1)) */
    int drop_last;  /* only full batches (training) */
    /* Added by the data layer (zero = the default): */
    int workers;    /* OpenMP threads the read-ahead thread uses to augment; <= 0 means 1 */
    const mmcr_aug_config *aug_odd; /* non-NULL: odd views (k = 1, 3, ...) use this transform
                                       (the T / T' pair of the ImageNet recipe); copied at create */
} mmcr_loader_config;
typedef struct mmcr_batch {
    float *images;   /* P*K x c x S x S, datum-major */
    int32_t *labels; /* P (per datum) or NULL */
    uint32_t *index; /* P dataset indices */
    int n;           /* data in this batch (P unless the last one without drop_last) */
    long epoch, step_in_epoch;
} mmcr_batch;
typedef struct mmcr_loader mmcr_loader;
/* Starts a background thread that prepares the next batch while the caller computes.
 * ds must stay alive and unchanged until destroy; aug and cfg are copied. Fails when c is not
 * 1 or 3, when batch/views < 1, or when drop_last leaves no batch. */
mmcr_status mmcr_loader_create(mmcr_loader **out, const mmcr_dataset *ds, const mmcr_aug_config *aug,
                               const mmcr_loader_config *cfg, mmcr_err *err);
/* Blocks until a batch is ready; the batch stays valid until the next call. */
const mmcr_batch *mmcr_loader_next(mmcr_loader *l);
/* Position for checkpoints: batches already delivered. set_position restarts the read-ahead
 * (and invalidates the batch last returned); position and set_position are called from the
 * thread that calls next. */
long mmcr_loader_position(const mmcr_loader *l);
void mmcr_loader_set_position(mmcr_loader *l, long batches_done);
long mmcr_loader_batches_per_epoch(const mmcr_loader *l);
void mmcr_loader_destroy(mmcr_loader **l);

#ifdef __cplusplus
}
#endif
#endif
