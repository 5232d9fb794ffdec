/* The table of every training option: one place for defaults, ranges, help and parsing. */
#include <stddef.h>

#include "mmcr/train.h"

#define OFF(f) offsetof(mmcr_train_config, f)
#define BIG 1e18

/* The defaults are the demo recipe (docs/recipe.md explains how it was chosen). */
static const mmcr_option train_options[] = {
    {"dataset", MMCR_OPT_CHOICE, OFF(dataset), "fashion-mnist", 0, 0, "fashion-mnist|mnist|cifar10|cifar100",
     "training data set"},
    {"data-dir", MMCR_OPT_STRING, OFF(data_dir), "/usr/share/datasets/fashion-mnist", 0, 0, NULL,
     "folder holding the data set files (IDX .gz files, or CIFAR .bin files)"},
    {"train-subset", MMCR_OPT_INT, OFF(train_subset), "0", 0, BIG, NULL,
     "use only the first N training images (0 = all)"},
    {"image-size", MMCR_OPT_INT, OFF(image_size), "20", 4, 512, NULL,
     "side of the square training views (random resized crops are resized to it)"},
    {"eval-image-size", MMCR_OPT_INT, OFF(eval_image_size), "0", 0, 512, NULL,
     "side of the whole images the frozen encoder sees in evaluation (0 = the data set's own: 28 for (Fashion-)MNIST, "
     "32 for CIFAR); the network is fully convolutional, so views smaller than the evaluation images are cheaper and "
     "can be better (FixRes)"},
    {"bn-recalibrate", MMCR_OPT_INT, OFF(bn_recalibrate), "10000", 0, 1000000000, NULL,
     "when the evaluation size differs from --image-size, the run ends by re-estimating the batch-norm running "
     "statistics at the evaluation size on this many training images (no labels, weights frozen); 0 = never"},
    {"width", MMCR_OPT_INT, OFF(width), "16", 1, 1024, NULL, "ResNet-18 base width (64 = standard)"},
    {"proj-hidden", MMCR_OPT_INT, OFF(proj_hidden), "512", 0, 65536, NULL, "projector hidden width (0 = linear)"},
    {"proj-out", MMCR_OPT_INT, OFF(proj_out), "128", 1, 65536, NULL, "embedding dimension D"},
    {"proj-bias", MMCR_OPT_BOOL, OFF(proj_bias), "0", 0, 1, NULL, "biases in the projector's linear layers"},
    {"batch", MMCR_OPT_INT, OFF(batch), "64", 1, 65536, NULL, "P: images (data) per step"},
    {"views", MMCR_OPT_INT, OFF(views), "4", 1, 256, NULL, "K: augmented views per image"},
    {"lambda", MMCR_OPT_DOUBLE, OFF(lambda), "0", 0, 1e6, NULL, "weight of the local (per-datum) nuclear-norm term"},
    {"optimizer", MMCR_OPT_CHOICE, OFF(optimizer), "adam", 0, 0, "sgd|lars|adam|adamw", "optimiser"},
    {"lr", MMCR_OPT_DOUBLE, OFF(lr), "2e-3", 0, 1e3, NULL, "base (peak) learning rate"},
    {"momentum", MMCR_OPT_DOUBLE, OFF(momentum), "0.9", 0, 0.99999, NULL, "SGD/LARS momentum, Adam beta1"},
    {"weight-decay", MMCR_OPT_DOUBLE, OFF(weight_decay), "1e-6", 0, 10, NULL, "weight decay"},
    {"nesterov", MMCR_OPT_BOOL, OFF(nesterov), "0", 0, 1, NULL, "Nesterov momentum (SGD)"},
    {"schedule", MMCR_OPT_CHOICE, OFF(schedule), "onecycle", 0, 0, "constant|cosine|onecycle",
     "learning-rate schedule"},
    {"warmup-epochs", MMCR_OPT_DOUBLE, OFF(warmup_epochs), "0", 0, 1e6, NULL, "cosine: linear warm-up length"},
    {"final-lr-factor", MMCR_OPT_DOUBLE, OFF(final_lr_factor), "0.001", 0, 1, NULL, "cosine: final lr / base lr"},
    {"pct-start", MMCR_OPT_DOUBLE, OFF(pct_start), "0.3", 0.001, 0.999, NULL, "one-cycle: fraction of steps rising"},
    {"epochs", MMCR_OPT_DOUBLE, OFF(epochs), "2.5", 0, 1e6, NULL, "training length in epochs (fractions allowed)"},
    {"max-steps", MMCR_OPT_INT, OFF(max_steps), "0", 0, BIG, NULL, "training length in steps (overrides epochs)"},
    {"time-budget", MMCR_OPT_DOUBLE, OFF(time_budget), "0", 0, 1e9, NULL,
     "fit the run into this many seconds: after 20 steps the schedule is re-planned to the steps that fit "
     "(never more than planned); 0 = no limit"},
    {"stop-at", MMCR_OPT_INT, OFF(stop_at), "0", 0, BIG, NULL,
     "stop (with a checkpoint) at this step without changing the schedule; 0 = run to the end"},
    {"crop-scale-min", MMCR_OPT_DOUBLE, OFF(crop_scale_min), "0.3", 0.001, 1, NULL, "random resized crop: min area"},
    {"crop-scale-max", MMCR_OPT_DOUBLE, OFF(crop_scale_max), "1", 0.001, 1, NULL, "random resized crop: max area"},
    {"crop-ratio-min", MMCR_OPT_DOUBLE, OFF(crop_ratio_min), "0.75", 0.01, 100, NULL, "crop: min aspect ratio"},
    {"crop-ratio-max", MMCR_OPT_DOUBLE, OFF(crop_ratio_max), "1.3333333333333333", 0.01, 100, NULL,
     "crop: max aspect ratio"},
    {"flip-p", MMCR_OPT_DOUBLE, OFF(flip_p), "0.5", 0, 1, NULL, "horizontal flip probability"},
    {"jitter-p", MMCR_OPT_DOUBLE, OFF(jitter_p), "0.8", 0, 1, NULL, "colour jitter probability"},
    {"brightness", MMCR_OPT_DOUBLE, OFF(brightness), "0.4", 0, 10, NULL, "colour jitter: brightness"},
    {"contrast", MMCR_OPT_DOUBLE, OFF(contrast), "0.4", 0, 10, NULL, "colour jitter: contrast"},
    {"saturation", MMCR_OPT_DOUBLE, OFF(saturation), "0", 0, 10, NULL, "colour jitter: saturation (RGB)"},
    {"hue", MMCR_OPT_DOUBLE, OFF(hue), "0", 0, 0.5, NULL, "colour jitter: hue (RGB)"},
    {"gray-p", MMCR_OPT_DOUBLE, OFF(gray_p), "0", 0, 1, NULL, "random grayscale probability (RGB)"},
    {"blur-p", MMCR_OPT_DOUBLE, OFF(blur_p), "0", 0, 1, NULL, "Gaussian blur probability"},
    {"blur-sigma-min", MMCR_OPT_DOUBLE, OFF(blur_sigma_min), "0.1", 0.001, 100, NULL, "blur: min sigma"},
    {"blur-sigma-max", MMCR_OPT_DOUBLE, OFF(blur_sigma_max), "2", 0.001, 100, NULL, "blur: max sigma"},
    {"solarize-p", MMCR_OPT_DOUBLE, OFF(solarize_p), "0", 0, 1, NULL, "solarisation probability"},
    {"erase-p", MMCR_OPT_DOUBLE, OFF(erase_p), "0.5", 0, 1, NULL, "random erasing probability"},
    {"erase-scale-min", MMCR_OPT_DOUBLE, OFF(erase_scale_min), "0.02", 0.0001, 1, NULL, "erasing: min area"},
    {"erase-scale-max", MMCR_OPT_DOUBLE, OFF(erase_scale_max), "0.33", 0.0001, 1, NULL, "erasing: max area"},
    {"seed", MMCR_OPT_INT, OFF(seed), "0", 0, 2147483647, NULL, "seed of every random stream"},
    {"threads", MMCR_OPT_INT, OFF(threads), "0", 0, 1024, NULL, "threads (0 = all cores)"},
    {"conv", MMCR_OPT_CHOICE, OFF(conv), "auto", 0, 0, "auto|onednn|gemm",
     "convolution kernels: oneDNN, or im2col + OpenBLAS sgemm (same results to float rounding); auto = oneDNN when "
     "available"},
    {"out", MMCR_OPT_STRING, OFF(out), "runs/train", 0, 0, NULL, "run directory (config, metrics, checkpoints)"},
    {"log-every", MMCR_OPT_INT, OFF(log_every), "10", 1, BIG, NULL, "steps between metric lines"},
    {"checkpoint-every", MMCR_OPT_INT, OFF(checkpoint_every), "500", 1, BIG, NULL, "steps between checkpoints"},
    {"resume", MMCR_OPT_BOOL, OFF(resume), "0", 0, 1, NULL, "continue from OUT/checkpoint.safetensors"},
    {"quiet", MMCR_OPT_BOOL, OFF(quiet), "0", 0, 1, NULL, "no progress line"},
};

const mmcr_option *mmcr_train_options(int *n) {
    *n = (int)(sizeof train_options / sizeof train_options[0]);
    return train_options;
}
