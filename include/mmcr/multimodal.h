/* Image-text pairs: image decoding (PNG, JPEG), the pair-file reader, the emoji data set, a
 * bag-of-words text encoder, the CLIP objective, retrieval / zero-shot evaluation and the
 * multimodal training engine that compares MMCR with CLIP (docs/multimodal.md).
 *
 * Layers: image decoding, pairs and emoji in data/; tokenizer and text encoder in nn/; the CLIP
 * loss in loss/; retrieval metrics in eval/; training, evaluation and the comparison grid in
 * dist/. */
#ifndef MMCR_MULTIMODAL_H
#define MMCR_MULTIMODAL_H

#include <stdio.h>

#include "mmcr/config.h"
#include "mmcr/core.h"
#include "mmcr/data.h"
#include "mmcr/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================= images (src/data/image_decode.c) ======================= */

/* A decoded image: 3 planes (R, G, B), each h x w, uint8 (the data layer's C x H x W layout). */
typedef struct mmcr_image {
    int c, h, w; /* c is always 3 */
    uint8_t *pixels;
} mmcr_image;

/* Decodes PNG (libpng: palette, gray, 1-16 bit, alpha, interlaced) or JPEG (libjpeg-turbo:
 * gray, YCbCr, CMYK) from memory; the format is told by the magic bytes, not the name.
 * Transparency is composited onto white (out = a*c + (1-a)*255); 16-bit samples are rounded
 * to 8 bits. what names the source in messages. Corrupt or truncated data is MMCR_ERR_FORMAT
 * with the decoder's message, never an exit. On failure *img is empty. */
mmcr_status mmcr_image_decode(mmcr_image *img, const void *data, size_t len, const char *what, mmcr_err *err);
/* Reads a whole file and decodes it (MMCR_ERR_IO when it cannot be read). */
mmcr_status mmcr_image_load(mmcr_image *img, const char *path, mmcr_err *err);
void mmcr_image_free(mmcr_image *img);
/* Largest side of an image the decoders accept (larger ones are MMCR_ERR_FORMAT). */
#define MMCR_IMAGE_MAX_SIDE 16384

/* Square resize of a c x h x w uint8 image into dst (c x s x s): a non-square image is first
 * centred on a white square (letterbox, nothing is cut off), then resampled separably per
 * axis: exact area averaging when shrinking (64 -> 32 averages 2 x 2 blocks), bilinear with
 * half-pixel centres when enlarging. Allocates its weights per call (not a hot path). */
mmcr_status mmcr_image_resize_square(const uint8_t *src, int c, int h, int w, uint8_t *dst, int s, mmcr_err *err);

/* ======================= image-text pairs (src/data/pairs.c) ======================= */

/* n pairs: images resized to S x S (RGB) in a data set whose labels (optional) index
 * class_names, one caption per image, and where each image came from. */
typedef struct mmcr_pairs {
    mmcr_dataset images; /* n x 3 x S x S; labels NULL when the source has no classes */
    char **captions;     /* n UTF-8 strings, never empty */
    char **sources;      /* n: resolved image path */
    int num_classes;
    char **class_names;  /* num_classes, sorted by byte value */
} mmcr_pairs;

/* Pair file (docs/multimodal.md, "Pair files"): UTF-8 text, one pair per line,
 *   path<TAB>caption[<TAB>label]
 * '#' in the first column starts a comment line; blank lines are ignored; an optional header
 * line whose first two fields are "path" and "caption" is skipped; a trailing CR is removed.
 * Captions are taken verbatim (quotes are ordinary characters; a caption cannot contain a tab
 * or a newline). Relative paths are resolved against the folder of the pair file. Either every
 * pair has a label or none does. Errors name the file and the line: a missing tab, too many
 * fields, an empty path, caption or label, an image that cannot be read or decoded. */
mmcr_status mmcr_pairs_load_tsv(mmcr_pairs *out, const char *path, int image_size, const mmcr_logger *log,
                                mmcr_err *err);
/* Writes pairs in the same format (header line, absolute or as-stored paths, labels when
 * present), atomically. A caption holding a tab or newline is an error naming the pair. */
mmcr_status mmcr_pairs_write_tsv(const mmcr_pairs *p, const char *path, mmcr_err *err);
/* Copy of pairs idx[0..n) (class list shared by value). */
mmcr_status mmcr_pairs_subset(mmcr_pairs *out, const mmcr_pairs *src, const uint32_t *idx, int n, mmcr_err *err);
void mmcr_pairs_free(mmcr_pairs *p);
/* Index of a class name, or -1. */
int mmcr_pairs_class_index(const mmcr_pairs *p, const char *name);

/* ======================= emoji data set (src/data/emoji.c) ======================= */

/* The gemojione emoji set (Debian package ruby-gemojione): folder holding config/index.json
 * and assets/png/<UNICODE>.png (64 x 64). */
#define MMCR_EMOJI_DEFAULT_DIR "/usr/share/rubygems-integration/all/gems/gemojione-3.3.0"

typedef struct mmcr_emoji_info {
    int entries;         /* objects in index.json */
    int skipped_missing; /* entries without a PNG (skipped) */
    int skipped_bad;     /* entries without a usable name/category or with an unreadable PNG (skipped) */
    int n_train, n_test;
} mmcr_emoji_info;

/* Builds pairs from the emoji index: caption = "<name>, <keyword>, <keyword>, ..." (the name
 * then every keyword), label = category (class list from all usable entries, sorted). The
 * split is deterministic and independent of order and of other entries: an entry is held out
 * when FNV-1a-64(key) mod 10^6 < test_fraction * 10^6 (key = its index.json member name).
 * Entries in each part keep the index order. */
mmcr_status mmcr_emoji_load(mmcr_pairs *train, mmcr_pairs *test, const char *dir, int image_size,
                            double test_fraction, mmcr_emoji_info *info, const mmcr_logger *log, mmcr_err *err);
/* The split rule on its own (1: held out). */
int mmcr_emoji_is_test(const char *key, double test_fraction);

/* ======================= tokenizer and text encoder (src/nn/text_encoder.c) ======================= */

/* Tokenizer: ASCII letters are lower-cased; ASCII whitespace, control characters and ASCII
 * punctuation separate tokens and are dropped; digits and bytes >= 0x80 (UTF-8) are word
 * characters. Tokens longer than MMCR_TOKEN_MAX bytes are cut to that length. */
#define MMCR_TOKEN_MAX 48
/* Calls fn(token, length, user) for each token of text (token is lower-cased, NUL-terminated,
 * valid during the call); returns the number of tokens. */
int mmcr_tokenize(const char *text, void (*fn)(const char *tok, size_t len, void *user), void *user);

typedef struct mmcr_vocab mmcr_vocab;
#define MMCR_VOCAB_UNK "<unk>" /* id 0: every word not in the vocabulary */
/* Vocabulary of the words of texts[0..n) seen at least min_count times; ids by decreasing
 * count, ties by byte order; at most max_size entries including <unk> (0: no limit). */
mmcr_status mmcr_vocab_build(mmcr_vocab **out, const char *const *texts, int n, int min_count, int max_size,
                             mmcr_err *err);
/* Vocabulary from an explicit token list (tokens[0] must be "<unk>"; no duplicates). */
mmcr_status mmcr_vocab_from_list(mmcr_vocab **out, const char *const *tokens, int n, mmcr_err *err);
void mmcr_vocab_destroy(mmcr_vocab **v);
int mmcr_vocab_size(const mmcr_vocab *v);
const char *mmcr_vocab_token(const mmcr_vocab *v, int id);
/* Id of an already lower-cased word (0 for unknown words). */
int mmcr_vocab_lookup(const mmcr_vocab *v, const char *word);

/* Token ids of n texts, packed: text i has ids[offsets[i] .. offsets[i+1]). A text without any
 * token gets the single id 0 (<unk>), so every text has at least one token. */
typedef struct mmcr_token_ids {
    int n;
    int64_t *offsets; /* n + 1 */
    int32_t *ids;
} mmcr_token_ids;
mmcr_status mmcr_vocab_encode(const mmcr_vocab *v, const char *const *texts, int n, mmcr_token_ids *out,
                              mmcr_err *err);
void mmcr_token_ids_free(mmcr_token_ids *t);

/* Text encoder: e = mean of the token embeddings (V x E table), then an MLP into D:
 *   hidden > 0: y = W2 relu(W1 e + b1) + b2;   hidden == 0: y = W2 e + b2.
 * Parameters in one flat buffer (tensors "embed" V x E, "fc1.weight", "fc1.bias",
 * "fc2.weight", "fc2.bias"), gradients in the same layout; allocated once for max_batch. */
typedef struct mmcr_text_config {
    int vocab_size;
    int embed_dim; /* E */
    int hidden;    /* 0: no hidden layer */
    int out_dim;   /* D */
} mmcr_text_config;
typedef struct mmcr_text_encoder mmcr_text_encoder;
mmcr_status mmcr_text_encoder_create(mmcr_text_encoder **out, const mmcr_text_config *cfg, int max_batch,
                                     mmcr_err *err);
void mmcr_text_encoder_destroy(mmcr_text_encoder **t);
const mmcr_text_config *mmcr_text_encoder_config(const mmcr_text_encoder *t);
/* Embeddings N(0, 1) (as torch.nn.Embedding); linear layers U(-1/sqrt(in), 1/sqrt(in)) for
 * weights and biases (as torch.nn.Linear); stream (seed, 0x7e47, tensor, 0). */
void mmcr_text_encoder_init(mmcr_text_encoder *t, uint64_t seed);
size_t mmcr_text_encoder_num_params(const mmcr_text_encoder *t);
float *mmcr_text_encoder_params(mmcr_text_encoder *t);
float *mmcr_text_encoder_grads(mmcr_text_encoder *t);
int mmcr_text_encoder_num_tensors(const mmcr_text_encoder *t);
const mmcr_tensor_info *mmcr_text_encoder_tensor(const mmcr_text_encoder *t, int i);
void mmcr_text_encoder_zero_grad(mmcr_text_encoder *t);
/* Forward n <= max_batch texts: rows idx[0..n) of tok (idx NULL: rows 0..n-1). Token ids must
 * lie in [0, vocab_size) (MMCR_ERR_ARG otherwise). *embed (n x D) points into the encoder's
 * memory, valid until the next forward. */
mmcr_status mmcr_text_encoder_forward(mmcr_text_encoder *t, const mmcr_token_ids *tok, const uint32_t *idx, int n,
                                      const float **embed, mmcr_err *err);
/* Backward from dL/d(embed) (n x D) of the last forward; accumulates into the gradients. */
void mmcr_text_encoder_backward(mmcr_text_encoder *t, const float *d_embed);

/* ======================= CLIP objective (src/loss/clip_loss.c) ======================= */

/* Symmetric InfoNCE over the n x n cosine similarities S = norm(a) norm(b)^T (rows normalised by
 * max(||row||, 1e-12), as the MMCR loss), logits = exp(t) S with t the learnable log scale:
 *   loss = (CE(logits, diag) + CE(logits^T, diag)) / 2,  CE averaged over the n rows.
 * CLIP initialises t = log(1/0.07) and clamps it to [0, log 100] after every update. Sums in
 * double; the gradient is computed by forward. */
#define MMCR_CLIP_LOG_SCALE_INIT 2.6592600369327779 /* log(1/0.07) */
#define MMCR_CLIP_LOG_SCALE_MAX 4.6051701859880914  /* log(100) */
typedef struct mmcr_clip_result {
    int n;
    double loss, loss_i2t, loss_t2i;
    double scale;            /* exp(t) */
    double acc_i2t, acc_t2i; /* in-batch top-1 (ties count as misses) */
    double mean_pos_sim;     /* mean diagonal cosine */
    long first_bad_row;      /* on MMCR_ERR_NONFINITE: first non-finite row (a rows first, then b), else -1 */
} mmcr_clip_result;
typedef struct mmcr_clip_loss mmcr_clip_loss;
mmcr_status mmcr_clip_loss_create(mmcr_clip_loss **out, int max_n, int d, mmcr_err *err);
void mmcr_clip_loss_destroy(mmcr_clip_loss **l);
/* a (image) and b (text): n x d row-major, n in [1, max_n]. */
mmcr_status mmcr_clip_loss_forward_f32(mmcr_clip_loss *l, const float *a, const float *b, int n, double log_scale,
                                       mmcr_clip_result *res, mmcr_err *err);
/* Gradients of the last forward: written (not accumulated) into da, db (n x d); *d_log_scale. */
void mmcr_clip_loss_backward_f32(const mmcr_clip_loss *l, float *da, float *db, double *d_log_scale);
/* CLIP's clamp of the log scale into [0, log 100]. */
double mmcr_clip_clamp_log_scale(double t);

/* ======================= retrieval metrics (src/eval/retrieval.c) ======================= */

/* Everything on rows normalised by max(||row||, 1e-12) and cosine similarity.
 * Recall@k: the share of queries whose partner (same row index) is among the k best
 * candidates; ties are pessimistic (rank = number of other candidates scoring >= the partner),
 * so collapsed embeddings score chance, not 100 %. Chance recall@k is k / n. */
mmcr_status mmcr_retrieval_recall(const float *img, const float *txt, int n, int d, const int *ks, int nk,
                                  double *i2t, double *t2i, mmcr_err *err);
/* Zero-shot classification: each image goes to the class whose prompt embedding (class_emb,
 * num_classes x d) is most similar (lowest index on ties). per_class (num_classes, NaN for a
 * class with no image; may be NULL), overall accuracy, and pred (n, may be NULL). */
mmcr_status mmcr_zero_shot(const float *img, const int32_t *labels, int n, const float *class_emb, int num_classes,
                           int d, int32_t *pred, double *per_class, double *overall, mmcr_err *err);
/* Modality gap ||mean_i norm(img_i) - mean_i norm(txt_i)||. */
mmcr_status mmcr_modality_gap(const float *img, const float *txt, int n, int d, double *gap, mmcr_err *err);
/* PPE of the multimodal centroid matrix: mu_i = (norm(img_i) + norm(txt_i)) / 2, M (n x d),
 * ppe = (bound - ||M||_*) / bound with bound = sqrt(n min(n, d)). */
mmcr_status mmcr_multimodal_ppe(const float *img, const float *txt, int n, int d, double *ppe, double *nuclear,
                                mmcr_err *err);

/* ======================= training engine (src/dist/multimodal.c) ======================= */

enum { MMCR_MM_METHOD_MMCR = 0, MMCR_MM_METHOD_CLIP = 1 };
enum { MMCR_MM_DATA_EMOJI = 0, MMCR_MM_DATA_TSV = 1 };

typedef struct mmcr_mm_config {
    /* data */
    int data;                          /* "emoji|tsv" */
    char emoji_dir[MMCR_OPT_STRLEN];
    char train_tsv[MMCR_OPT_STRLEN], test_tsv[MMCR_OPT_STRLEN];
    double test_fraction;              /* emoji split */
    int image_size;
    /* image encoder (ResNet of nn.h + projector) */
    int width, blocks, proj_hidden, dim; /* blocks per stage (the same for the 4 stages) */
    /* text encoder */
    int text_embed, text_hidden, min_count;
    /* objective */
    int method;                        /* "mmcr|clip" */
    int image_views;                   /* image views per datum (MMCR: K = image_views + 1) */
    int augment;                       /* random crops/flips of the image views */
    double crop_scale_min, flip_p;
    double lambda;                     /* MMCR local term */
    double log_scale_init;             /* CLIP */
    int learn_scale;                   /* CLIP: the log scale is trained */
    /* optimisation */
    int batch;
    double epochs;
    int optimizer;                     /* "adam|adamw|sgd|lars" */
    double lr, weight_decay, momentum, warmup_epochs;
    int seed, threads;
    /* evaluation */
    char prompt[MMCR_OPT_STRLEN];      /* "{}" is replaced by the class name */
    /* run */
    char out[MMCR_OPT_STRLEN];
    int log_every;
    int quiet;
    int save_checkpoint;
} mmcr_mm_config;
const mmcr_option *mmcr_mm_options(int *n);

/* Loads the configured pairs (emoji split or the two pair files). */
mmcr_status mmcr_mm_load_data(const mmcr_mm_config *cfg, mmcr_pairs *train, mmcr_pairs *test,
                              const mmcr_logger *log, mmcr_err *err);

#define MMCR_MM_MAX_CLASSES 64
typedef struct mmcr_mm_metrics {
    int n_test, num_classes;
    double r_i2t[3], r_t2i[3];         /* recall@1, @5, @10 */
    double chance[3];                  /* k / n_test */
    double zero_shot;                  /* overall accuracy (NaN without labels) */
    double zero_shot_per_class[MMCR_MM_MAX_CLASSES];
    double ppe, nuclear, modality_gap;
    double final_loss, scale;          /* last training step; scale = exp(t) (CLIP) */
    long steps;
    double train_seconds, eval_seconds;
} mmcr_mm_metrics;

/* Trains one run on train (shuffled per epoch with stream (seed, epoch)), evaluates it on test
 * and writes into cfg->out: config.json, metrics.jsonl, results.json and (save_checkpoint)
 * checkpoint.safetensors. cfg->out empty: nothing is written. */
mmcr_status mmcr_mm_train(const mmcr_mm_config *cfg, const mmcr_pairs *train, const mmcr_pairs *test,
                          const mmcr_logger *log, mmcr_mm_metrics *out, mmcr_err *err);
/* The training configuration stored in a checkpoint written by mmcr_mm_train. */
mmcr_status mmcr_mm_checkpoint_config(const char *path, mmcr_mm_config *cfg, mmcr_err *err);
/* Evaluates a checkpoint written by mmcr_mm_train on pairs (loaded at the checkpoint's
 * --image-size). */
mmcr_status mmcr_mm_eval_checkpoint(const char *path, const mmcr_pairs *test, const mmcr_logger *log,
                                    mmcr_mm_metrics *out, mmcr_err *err);
/* results.json of a run (written by mmcr_mm_train) back into metrics; MMCR_ERR_IO if absent. */
mmcr_status mmcr_mm_read_results(const char *path, mmcr_mm_metrics *m, mmcr_err *err);
/* The results JSON (results.json's content) to a stream. */
void mmcr_mm_print_results(FILE *f, const mmcr_mm_config *cfg, const mmcr_pairs *test, const mmcr_mm_metrics *m);
mmcr_status mmcr_mm_write_results(const char *path, const mmcr_mm_config *cfg, const mmcr_pairs *test,
                                  const mmcr_mm_metrics *m, mmcr_err *err);

/* ======================= comparison grid (src/dist/multimodal_compare.c) ======================= */

typedef struct mmcr_mm_compare_config {
    int batches[8], n_batches;
    int seeds[8], n_seeds;
    char runs_dir[MMCR_OPT_STRLEN];  /* one sub-folder per run: <method>-b<P>-s<seed> */
    char table[MMCR_OPT_STRLEN];     /* markdown table (written atomically) */
    char img_dir[MMCR_OPT_STRLEN];   /* PNG plots, multimodal-<metric>.png */
    char img_link[MMCR_OPT_STRLEN];  /* how the table refers to img_dir (relative link) */
} mmcr_mm_compare_config;
/* Runs every (method, batch, seed) whose results.json is missing (so an interrupted grid
 * resumes), then writes the table of mean +- std (sample std over seeds) and the plots. */
mmcr_status mmcr_mm_compare(const mmcr_mm_config *base, const mmcr_mm_compare_config *cc, const mmcr_logger *log,
                            mmcr_err *err);

#ifdef __cplusplus
}
#endif
#endif
