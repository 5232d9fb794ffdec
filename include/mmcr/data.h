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
} mmcr_aug_config;
/* No augmentation at all: full image, normalised (evaluation transform). */
void mmcr_aug_config_none(mmcr_aug_config *a, int out_size);
/* Augment one image src (c x h x w uint8) into dst (c x S x S float, normalised). */
void mmcr_augment(const mmcr_aug_config *a, mmcr_rng *rng, const uint8_t *src, int c, int h, int w, float *dst);
/* Evaluation transform of images [start, start+count) into dst (count x c x S x S). */
void mmcr_dataset_to_float(const mmcr_dataset *ds, int start, int count, const mmcr_aug_config *a, float *dst);

typedef struct mmcr_loader_config {
    int batch;      /* P data per batch */
    int views;      /* K */
    uint64_t seed;
    int shuffle;    /* reshuffle every epoch (stream (seed, epoch)) */
    int drop_last;  /* only full batches (training) */
} mmcr_loader_config;
typedef struct mmcr_batch {
    float *images;   /* P*K x c x S x S, datum-major */
    int32_t *labels; /* P (per datum) or NULL */
    uint32_t *index; /* P dataset indices */
    int n;           /* data in this batch (P unless the last one without drop_last) */
    long epoch, step_in_epoch;
} mmcr_batch;
typedef struct mmcr_loader mmcr_loader;
/* Starts a background thread that prepares the next batch while the caller computes. */
mmcr_status mmcr_loader_create(mmcr_loader **out, const mmcr_dataset *ds, const mmcr_aug_config *aug,
                               const mmcr_loader_config *cfg, mmcr_err *err);
/* Blocks until a batch is ready; the batch stays valid until the next call. */
const mmcr_batch *mmcr_loader_next(mmcr_loader *l);
/* Position for checkpoints: batches already delivered. set_position restarts the read-ahead. */
long mmcr_loader_position(const mmcr_loader *l);
void mmcr_loader_set_position(mmcr_loader *l, long batches_done);
long mmcr_loader_batches_per_epoch(const mmcr_loader *l);
void mmcr_loader_destroy(mmcr_loader **l);

#ifdef __cplusplus
}
#endif
#endif
