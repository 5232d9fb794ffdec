/* Multimodal training: the image encoder (ResNet + projector of nn.h) and the text encoder map
 * a pair into the same D-dimensional space; MMCR treats the image (and optional augmented image
 * views) and the caption as the K views of one datum, CLIP contrasts images with captions over
 * the batch. Same encoders, optimiser, schedule and data order for both methods.
 *
 * Everything a step touches is allocated before the first step. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mmcr/io.h"
#include "mmcr/json.h"
#include "mmcr/loss.h"
#include "mmcr/multimodal.h"
#include "mmcr/optim.h"

#define OFF(f) offsetof(mmcr_mm_config, f)

static const mmcr_option mm_options[] = {
    {"data", MMCR_OPT_CHOICE, OFF(data), "emoji", 0, 0, "emoji|tsv",
     "emoji: the gemojione set with a hashed held-out split; tsv: --train-tsv and --test-tsv pair files"},
    {"emoji-dir", MMCR_OPT_STRING, OFF(emoji_dir), MMCR_EMOJI_DEFAULT_DIR, 0, 0, NULL,
     "folder holding config/index.json and assets/png/ (Debian package ruby-gemojione)"},
    {"train-tsv", MMCR_OPT_STRING, OFF(train_tsv), "", 0, 0, NULL, "training pair file (path<TAB>caption[<TAB>label])"},
    {"test-tsv", MMCR_OPT_STRING, OFF(test_tsv), "", 0, 0, NULL, "held-out pair file (labels enable zero-shot)"},
    {"test-fraction", MMCR_OPT_DOUBLE, OFF(test_fraction), "0.2", 0.01, 0.99, NULL,
     "emoji: share of entries held out (by a hash of the emoji's key)"},
    {"image-size", MMCR_OPT_INT, OFF(image_size), "32", 4, 512, NULL, "side of the square images (resized on load)"},
    {"width", MMCR_OPT_INT, OFF(width), "8", 1, 1024, NULL, "ResNet base width (64 = standard ResNet-18)"},
    {"blocks", MMCR_OPT_INT, OFF(blocks), "1", 1, 16, NULL, "basic blocks per ResNet stage (2 = ResNet-18)"},
    {"proj-hidden", MMCR_OPT_INT, OFF(proj_hidden), "256", 0, 65536, NULL, "image projector hidden width (0 = linear)"},
    {"dim", MMCR_OPT_INT, OFF(dim), "64", 1, 65536, NULL, "D: shared embedding dimension of both encoders"},
    {"text-embed", MMCR_OPT_INT, OFF(text_embed), "64", 1, 65536, NULL, "token embedding width"},
    {"text-hidden", MMCR_OPT_INT, OFF(text_hidden), "256", 0, 65536, NULL, "text MLP hidden width (0 = linear)"},
    {"min-count", MMCR_OPT_INT, OFF(min_count), "1", 1, 1000000, NULL,
     "words seen fewer times in the training captions map to <unk>"},
    {"method", MMCR_OPT_CHOICE, OFF(method), "mmcr", 0, 0, "mmcr|clip",
     "objective: MMCR on (image, caption) views, or CLIP's symmetric InfoNCE"},
    {"image-views", MMCR_OPT_INT, OFF(image_views), "1", 1, 64, NULL,
     "MMCR: augmented image views per datum (K = image views + 1 caption); needs --augment when > 1"},
    {"augment", MMCR_OPT_BOOL, OFF(augment), "0", 0, 1, NULL, "random resized crops and flips of the image views"},
    {"crop-scale-min", MMCR_OPT_DOUBLE, OFF(crop_scale_min), "0.5", 0.01, 1, NULL, "--augment: smallest crop area"},
    {"flip-p", MMCR_OPT_DOUBLE, OFF(flip_p), "0", 0, 1, NULL, "--augment: horizontal flip probability"},
    {"lambda", MMCR_OPT_DOUBLE, OFF(lambda), "0", 0, 1e6, NULL, "MMCR: weight of the local nuclear-norm term"},
    {"log-scale-init", MMCR_OPT_DOUBLE, OFF(log_scale_init), "2.6592600369327779", 0, 4.6051701859880914, NULL,
     "CLIP: initial log logit scale (log(1/0.07)); clamped to [0, log 100]"},
    {"learn-scale", MMCR_OPT_BOOL, OFF(learn_scale), "1", 0, 1, NULL, "CLIP: train the temperature"},
    {"batch", MMCR_OPT_INT, OFF(batch), "128", 2, 65536, NULL, "P: pairs per step"},
    {"epochs", MMCR_OPT_DOUBLE, OFF(epochs), "15", 0.001, 1e6, NULL, "passes over the training pairs"},
    {"optimizer", MMCR_OPT_CHOICE, OFF(optimizer), "adam", 0, 0, "adam|adamw|sgd|lars", "optimiser (both encoders)"},
    {"lr", MMCR_OPT_DOUBLE, OFF(lr), "2e-3", 0, 1e3, NULL, "peak learning rate (cosine schedule)"},
    {"weight-decay", MMCR_OPT_DOUBLE, OFF(weight_decay), "1e-5", 0, 10, NULL, "weight decay (not on the temperature)"},
    {"momentum", MMCR_OPT_DOUBLE, OFF(momentum), "0.9", 0, 0.99999, NULL, "SGD/LARS momentum, Adam beta1"},
    {"warmup-epochs", MMCR_OPT_DOUBLE, OFF(warmup_epochs), "1", 0, 1e6, NULL, "linear warm-up before the cosine decay"},
    {"seed", MMCR_OPT_INT, OFF(seed), "0", 0, 2147483647, NULL, "initialisation, shuffling and augmentation seed"},
    {"threads", MMCR_OPT_INT, OFF(threads), "0", 0, 4096, NULL, "threads (0: all cores)"},
    {"prompt", MMCR_OPT_STRING, OFF(prompt), "an emoji of {}", 0, 0, NULL,
     "zero-shot prompt; {} is replaced by the class name"},
    {"out", MMCR_OPT_STRING, OFF(out), "runs/multimodal", 0, 0, NULL,
     "run folder: config.json, metrics.jsonl, results.json, checkpoint.safetensors"},
    {"log-every", MMCR_OPT_INT, OFF(log_every), "20", 1, 1000000000, NULL, "steps between progress lines"},
    {"quiet", MMCR_OPT_BOOL, OFF(quiet), "0", 0, 1, NULL, "no progress lines"},
    {"save-checkpoint", MMCR_OPT_BOOL, OFF(save_checkpoint), "1", 0, 1, NULL, "write checkpoint.safetensors"},
};

const mmcr_option *mmcr_mm_options(int *n) {
    *n = (int)(sizeof mm_options / sizeof mm_options[0]);
    return mm_options;
}

static const char *method_name(int m) { return m == MMCR_MM_METHOD_CLIP ? "clip" : "mmcr"; }

/* ---------------- data ---------------- */

mmcr_status mmcr_mm_load_data(const mmcr_mm_config *cfg, mmcr_pairs *train, mmcr_pairs *test,
                              const mmcr_logger *log, mmcr_err *err) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (cfg->data == MMCR_MM_DATA_EMOJI)
        return mmcr_emoji_load(train, test, cfg->emoji_dir, cfg->image_size, cfg->test_fraction, NULL, log, err);
    if (!cfg->train_tsv[0] || !cfg->test_tsv[0])
        return mmcr_err_set(err, MMCR_ERR_ARG, "--data tsv needs both --train-tsv and --test-tsv");
    mmcr_status st = mmcr_pairs_load_tsv(train, cfg->train_tsv, cfg->image_size, log, err);
    if (st == MMCR_OK) st = mmcr_pairs_load_tsv(test, cfg->test_tsv, cfg->image_size, log, err);
    if (st != MMCR_OK) mmcr_pairs_free(train);
    return st;
}

/* ---------------- shared pieces ---------------- */

static void model_config(const mmcr_mm_config *cfg, mmcr_model_config *mc) {
    mmcr_model_config_default(mc);
    mc->in_channels = 3;
    mc->image_size = cfg->image_size;
    mc->width = cfg->width;
    for (int i = 0; i < 4; i++) mc->blocks[i] = cfg->blocks;
    mc->proj_hidden = cfg->proj_hidden;
    mc->proj_out = cfg->dim;
}

static void aug_config(const mmcr_mm_config *cfg, const float *mean, const float *std, mmcr_aug_config *a) {
    mmcr_aug_config_none(a, cfg->image_size);
    if (cfg->augment) {
        a->crop_p = 1.0f;
        a->crop_scale[0] = (float)cfg->crop_scale_min;
        a->crop_scale[1] = 1.0f;
        a->flip_p = (float)cfg->flip_p;
    }
    for (int c = 0; c < 3; c++) {
        a->mean[c] = mean[c];
        a->std[c] = std[c] > 1e-6f ? std[c] : 1.0f;
    }
}

/* "an emoji of {}" with every {} replaced by name. */
static void make_prompt(char *out, size_t cap, const char *tmpl, const char *name) {
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 1 < cap;) {
        if (p[0] == '{' && p[1] == '}') {
            o += (size_t)snprintf(out + o, cap - o, "%s", name);
            if (o >= cap) o = cap - 1;
            p += 2;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

#define EVAL_CHUNK 64

/* Trained state shared by training and checkpoint evaluation. */
typedef struct mm_state {
    mmcr_mm_config cfg;
    mmcr_model *model;
    mmcr_text_encoder *text;
    mmcr_vocab *vocab;
    float mean[3], std[3];
    float log_scale;
    int max_batch; /* images per model forward */
} mm_state;

static void state_free(mm_state *s) {
    mmcr_model_destroy(&s->model);
    mmcr_text_encoder_destroy(&s->text);
    mmcr_vocab_destroy(&s->vocab);
}

static mmcr_status state_create(mm_state *s, int text_batch, mmcr_err *err) {
    mmcr_model_config mc;
    model_config(&s->cfg, &mc);
    mmcr_status st = mmcr_model_create(&s->model, &mc, s->max_batch, err);
    if (st != MMCR_OK) return st;
    mmcr_text_config tc = {.vocab_size = mmcr_vocab_size(s->vocab), .embed_dim = s->cfg.text_embed,
                           .hidden = s->cfg.text_hidden, .out_dim = s->cfg.dim};
    return mmcr_text_encoder_create(&s->text, &tc, text_batch, err);
}

/* Embeddings of every pair of p and of the class prompts, then the metrics. */
static mmcr_status evaluate(mm_state *s, const mmcr_pairs *p, const mmcr_logger *log, mmcr_mm_metrics *m,
                            mmcr_err *err) {
    const double t0 = mmcr_now();
    const int n = p->images.n, D = s->cfg.dim, S = s->cfg.image_size;
    /* Fixed chunks, so evaluation after training and from a checkpoint do the same arithmetic. */
    const int chunk = EVAL_CHUNK, text_chunk = EVAL_CHUNK;
    memset(m, 0, sizeof *m);
    if (n < 2) return mmcr_err_set(err, MMCR_ERR_ARG, "evaluation needs at least 2 held-out pairs (got %d)", n);
    if (p->images.h != S || p->images.c != 3)
        return mmcr_err_set(err, MMCR_ERR_ARG, "held-out images are %dx%d, the model expects %dx%d", p->images.h,
                            p->images.w, S, S);
    mmcr_aug_config aug;
    aug_config(&s->cfg, s->mean, s->std, &aug);
    float *img = mmcr_alloc(sizeof(float) * (size_t)n * (size_t)D);
    float *txt = mmcr_alloc(sizeof(float) * (size_t)n * (size_t)D);
    float *x = mmcr_alloc(sizeof(float) * (size_t)chunk * 3 * (size_t)S * (size_t)S);
    int nc = p->images.labels ? p->num_classes : 0;
    float *cls = mmcr_alloc(sizeof(float) * (size_t)(nc ? nc : 1) * (size_t)D);
    char **prompts = calloc((size_t)(nc ? nc : 1), sizeof(char *));
    mmcr_token_ids tok = {0}, ptok = {0};
    mmcr_status st = MMCR_OK;
    if (!img || !txt || !x || !cls || !prompts) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the evaluation of %d pairs", n);
        goto done;
    }
    if (nc > MMCR_MM_MAX_CLASSES) {
        st = mmcr_err_set(err, MMCR_ERR_ARG, "%d classes; zero-shot supports at most %d", nc, MMCR_MM_MAX_CLASSES);
        goto done;
    }
    for (int i = 0; i < n; i += chunk) {
        int c = n - i < chunk ? n - i : chunk;
        mmcr_dataset_to_float(&p->images, i, c, &aug, x);
        const float *feat, *emb;
        st = mmcr_model_forward(s->model, x, c, 0, 1, &feat, &emb);
        if (st != MMCR_OK) {
            mmcr_err_set(err, st, "image encoder forward failed during evaluation");
            goto done;
        }
        memcpy(img + (size_t)i * (size_t)D, emb, sizeof(float) * (size_t)c * (size_t)D);
    }
    st = mmcr_vocab_encode(s->vocab, (const char *const *)p->captions, n, &tok, err);
    if (st != MMCR_OK) goto done;
    for (int i = 0; i < n; i += text_chunk) {
        int c = n - i < text_chunk ? n - i : text_chunk;
        uint32_t idx[EVAL_CHUNK];
        for (int k = 0; k < c; k++) idx[k] = (uint32_t)(i + k);
        const float *emb;
        st = mmcr_text_encoder_forward(s->text, &tok, idx, c, &emb, err);
        if (st != MMCR_OK) goto done;
        memcpy(txt + (size_t)i * (size_t)D, emb, sizeof(float) * (size_t)c * (size_t)D);
    }
    static const int ks[3] = {1, 5, 10};
    st = mmcr_retrieval_recall(img, txt, n, D, ks, 3, m->r_i2t, m->r_t2i, err);
    if (st != MMCR_OK) goto done;
    for (int q = 0; q < 3; q++) m->chance[q] = fmin(1.0, (double)ks[q] / n);
    st = mmcr_multimodal_ppe(img, txt, n, D, &m->ppe, &m->nuclear, err);
    if (st == MMCR_OK) st = mmcr_modality_gap(img, txt, n, D, &m->modality_gap, err);
    if (st != MMCR_OK) goto done;
    m->zero_shot = NAN;
    for (int c = 0; c < MMCR_MM_MAX_CLASSES; c++) m->zero_shot_per_class[c] = NAN;
    if (nc > 0) {
        for (int c = 0; c < nc; c++) {
            char buf[2 * MMCR_OPT_STRLEN];
            make_prompt(buf, sizeof buf, s->cfg.prompt, p->class_names[c]);
            prompts[c] = malloc(strlen(buf) + 1);
            if (!prompts[c]) {
                st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the prompts");
                goto done;
            }
            strcpy(prompts[c], buf);
        }
        st = mmcr_vocab_encode(s->vocab, (const char *const *)prompts, nc, &ptok, err);
        for (int i = 0; st == MMCR_OK && i < nc; i += text_chunk) {
            int c = nc - i < text_chunk ? nc - i : text_chunk;
            uint32_t idx[EVAL_CHUNK];
            for (int k = 0; k < c; k++) idx[k] = (uint32_t)(i + k);
            const float *emb;
            st = mmcr_text_encoder_forward(s->text, &ptok, idx, c, &emb, err);
            if (st == MMCR_OK) memcpy(cls + (size_t)i * (size_t)D, emb, sizeof(float) * (size_t)c * (size_t)D);
        }
        if (st == MMCR_OK)
            st = mmcr_zero_shot(img, p->images.labels, n, cls, nc, D, NULL, m->zero_shot_per_class, &m->zero_shot,
                                err);
        if (st != MMCR_OK) goto done;
    }
    m->n_test = n;
    m->num_classes = nc;
    m->eval_seconds = mmcr_now() - t0;
    mmcr_logf(log, MMCR_LOG_INFO,
              "held-out (%d pairs): recall@1/5/10 image->text %.3f/%.3f/%.3f, text->image %.3f/%.3f/%.3f (chance "
              "%.3f/%.3f/%.3f); zero-shot %.3f; PPE %.4f; modality gap %.4f", n, m->r_i2t[0], m->r_i2t[1],
              m->r_i2t[2], m->r_t2i[0], m->r_t2i[1], m->r_t2i[2], m->chance[0], m->chance[1], m->chance[2],
              m->zero_shot, m->ppe, m->modality_gap);
done:
    if (prompts)
        for (int c = 0; c < nc; c++) free(prompts[c]);
    free(prompts);
    mmcr_token_ids_free(&tok);
    mmcr_token_ids_free(&ptok);
    mmcr_free(img);
    mmcr_free(txt);
    mmcr_free(x);
    mmcr_free(cls);
    return st;
}

/* ---------------- results.json ---------------- */

static void put_num(FILE *f, const char *key, double v, int comma) {
    char b[64];
    mmcr_format_double(b, sizeof b, v);
    fprintf(f, "%s\"%s\": %s", comma ? ",\n  " : "\n  ", key, b);
}

void mmcr_mm_print_results(FILE *f, const mmcr_mm_config *cfg, const mmcr_pairs *test, const mmcr_mm_metrics *m) {
    fprintf(f, "{\n  \"method\": \"%s\",\n  \"batch\": %d,\n  \"seed\": %d", method_name(cfg->method), cfg->batch,
            cfg->seed);
    put_num(f, "epochs", cfg->epochs, 1);
    fprintf(f, ",\n  \"n_test\": %d,\n  \"steps\": %ld", m->n_test, m->steps);
    static const char *names[3] = {"1", "5", "10"};
    for (int q = 0; q < 3; q++) {
        char k[32];
        snprintf(k, sizeof k, "recall%s_i2t", names[q]);
        put_num(f, k, m->r_i2t[q], 1);
        snprintf(k, sizeof k, "recall%s_t2i", names[q]);
        put_num(f, k, m->r_t2i[q], 1);
        snprintf(k, sizeof k, "chance%s", names[q]);
        put_num(f, k, m->chance[q], 1);
    }
    put_num(f, "zero_shot", m->zero_shot, 1);
    put_num(f, "ppe", m->ppe, 1);
    put_num(f, "nuclear_norm", m->nuclear, 1);
    put_num(f, "modality_gap", m->modality_gap, 1);
    put_num(f, "final_loss", m->final_loss, 1);
    put_num(f, "logit_scale", m->scale, 1);
    put_num(f, "train_seconds", m->train_seconds, 1);
    put_num(f, "eval_seconds", m->eval_seconds, 1);
    fprintf(f, ",\n  \"zero_shot_per_class\": {");
    for (int c = 0; test && c < m->num_classes && c < test->num_classes; c++) {
        char esc[512], b[64];
        mmcr_json_escape(esc, sizeof esc, test->class_names[c]);
        mmcr_format_double(b, sizeof b, m->zero_shot_per_class[c]);
        fprintf(f, "%s\"%s\": %s", c ? ", " : "", esc, b);
    }
    fprintf(f, "}\n}\n");
}

mmcr_status mmcr_mm_write_results(const char *path, const mmcr_mm_config *cfg, const mmcr_pairs *test,
                                  const mmcr_mm_metrics *m, mmcr_err *err) {
    mmcr_atomic_file af;
    mmcr_status st = mmcr_atomic_open(&af, path, err);
    if (st != MMCR_OK) return st;
    mmcr_mm_print_results(af.f, cfg, test, m);
    return mmcr_atomic_commit(&af, err);
}

static double json_num(const mmcr_json *root, const char *key) {
    const mmcr_json *v = mmcr_json_get(root, key);
    return v && v->type == MMCR_JSON_NUMBER ? v->number : NAN;
}

mmcr_status mmcr_mm_read_results(const char *path, mmcr_mm_metrics *m, mmcr_err *err) {
    memset(m, 0, sizeof *m);
    mmcr_json *root = NULL;
    mmcr_status st = mmcr_json_parse_file(&root, path, err);
    if (st != MMCR_OK) return st;
    if (root->type != MMCR_JSON_OBJECT) {
        mmcr_json_free(&root);
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': not a results object", path);
    }
    static const char *names[3] = {"1", "5", "10"};
    for (int q = 0; q < 3; q++) {
        char k[32];
        snprintf(k, sizeof k, "recall%s_i2t", names[q]);
        m->r_i2t[q] = json_num(root, k);
        snprintf(k, sizeof k, "recall%s_t2i", names[q]);
        m->r_t2i[q] = json_num(root, k);
        snprintf(k, sizeof k, "chance%s", names[q]);
        m->chance[q] = json_num(root, k);
    }
    m->n_test = (int)json_num(root, "n_test");
    m->steps = (long)json_num(root, "steps");
    m->zero_shot = json_num(root, "zero_shot");
    m->ppe = json_num(root, "ppe");
    m->nuclear = json_num(root, "nuclear_norm");
    m->modality_gap = json_num(root, "modality_gap");
    m->final_loss = json_num(root, "final_loss");
    m->scale = json_num(root, "logit_scale");
    m->train_seconds = json_num(root, "train_seconds");
    m->eval_seconds = json_num(root, "eval_seconds");
    const mmcr_json *pc = mmcr_json_get(root, "zero_shot_per_class");
    for (int c = 0; c < MMCR_MM_MAX_CLASSES; c++) m->zero_shot_per_class[c] = NAN;
    if (pc && pc->type == MMCR_JSON_OBJECT) {
        m->num_classes = (int)(pc->n < MMCR_MM_MAX_CLASSES ? pc->n : MMCR_MM_MAX_CLASSES);
        for (int c = 0; c < m->num_classes; c++)
            m->zero_shot_per_class[c] = pc->items[c].type == MMCR_JSON_NUMBER ? pc->items[c].number : NAN;
    }
    int ok = isfinite(m->r_i2t[2]) && isfinite(m->r_t2i[2]) && m->n_test > 0;
    mmcr_json_free(&root);
    if (!ok) return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': incomplete results (no recall or n_test)", path);
    return MMCR_OK;
}

/* ---------------- checkpoint ---------------- */

#define CKPT_FORMAT "mmcr-multimodal"

static mmcr_status save_checkpoint(const char *path, mm_state *s, mmcr_err *err) {
    int np = mmcr_model_num_tensors(s->model), nb = mmcr_model_num_buffer_tensors(s->model);
    int ntx = mmcr_text_encoder_num_tensors(s->text);
    int nt = np + nb + ntx + 1;
    mmcr_st_tensor *t = calloc((size_t)nt, sizeof *t);
    char *cfg_json = NULL, *vocab = NULL;
    size_t cfg_len = 0;
    mmcr_status st = MMCR_OK;
    if (!t) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory writing '%s'", path);
    int n = 0;
    for (int i = 0; i < np + nb; i++) {
        const mmcr_tensor_info *ti = i < np ? mmcr_model_tensor(s->model, i) : mmcr_model_buffer_tensor(s->model, i - np);
        mmcr_st_tensor *x = &t[n++];
        snprintf(x->name, sizeof x->name, "image.%s", ti->name);
        x->dtype = MMCR_F32;
        x->ndim = ti->ndim;
        for (int d = 0; d < ti->ndim; d++) x->shape[d] = ti->shape[d];
        x->data = (i < np ? mmcr_model_params(s->model) : mmcr_model_buffers(s->model)) + ti->offset;
        x->nbytes = ti->size * sizeof(float);
    }
    for (int i = 0; i < ntx; i++) {
        const mmcr_tensor_info *ti = mmcr_text_encoder_tensor(s->text, i);
        mmcr_st_tensor *x = &t[n++];
        snprintf(x->name, sizeof x->name, "text.%s", ti->name);
        x->dtype = MMCR_F32;
        x->ndim = ti->ndim;
        for (int d = 0; d < ti->ndim; d++) x->shape[d] = ti->shape[d];
        x->data = mmcr_text_encoder_params(s->text) + ti->offset;
        x->nbytes = ti->size * sizeof(float);
    }
    mmcr_st_tensor *ls = &t[n++];
    snprintf(ls->name, sizeof ls->name, "log_scale");
    ls->dtype = MMCR_F32;
    ls->ndim = 1;
    ls->shape[0] = 1;
    ls->data = &s->log_scale;
    ls->nbytes = sizeof(float);
    /* Configuration as JSON; vocabulary one token per line. */
    FILE *mf = open_memstream(&cfg_json, &cfg_len);
    if (!mf) {
        free(t);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory writing '%s'", path);
    }
    int nopt;
    const mmcr_option *opts = mmcr_mm_options(&nopt);
    mmcr_options_json(mf, opts, nopt, &s->cfg);
    fclose(mf);
    size_t vl = 1;
    const int V = mmcr_vocab_size(s->vocab);
    for (int i = 0; i < V; i++) vl += strlen(mmcr_vocab_token(s->vocab, i)) + 1;
    vocab = malloc(vl);
    if (!vocab) st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory writing '%s'", path);
    if (st == MMCR_OK) {
        size_t o = 0;
        for (int i = 0; i < V; i++) o += (size_t)sprintf(vocab + o, "%s%s", i ? "\n" : "", mmcr_vocab_token(s->vocab, i));
        vocab[o] = '\0';
        char mean[128], sd[128];
        snprintf(mean, sizeof mean, "%.9g,%.9g,%.9g", s->mean[0], s->mean[1], s->mean[2]);
        snprintf(sd, sizeof sd, "%.9g,%.9g,%.9g", s->std[0], s->std[1], s->std[2]);
        const char *meta[] = {"format", CKPT_FORMAT, "version", "1", "config", cfg_json, "vocab", vocab,
                              "data.mean", mean, "data.std", sd, NULL};
        st = mmcr_safetensors_write(path, t, n, meta, err);
    }
    free(t);
    free(cfg_json);
    free(vocab);
    return st;
}

/* Applies a JSON object of options (as mmcr_options_json writes it) onto cfg. */
static mmcr_status config_from_json(mmcr_mm_config *cfg, const char *text, const char *what, mmcr_err *err) {
    mmcr_json *root = NULL;
    mmcr_status st = mmcr_json_parse(&root, text, strlen(text), what, err);
    if (st != MMCR_OK) return st;
    int nopt;
    const mmcr_option *opts = mmcr_mm_options(&nopt);
    st = mmcr_options_defaults(opts, nopt, cfg, err);
    for (size_t i = 0; st == MMCR_OK && root->type == MMCR_JSON_OBJECT && i < root->n; i++) {
        const mmcr_json *v = &root->items[i];
        char val[MMCR_OPT_STRLEN];
        if (v->type == MMCR_JSON_STRING) snprintf(val, sizeof val, "%s", v->str);
        else if (v->type == MMCR_JSON_BOOL) snprintf(val, sizeof val, "%s", v->boolean ? "1" : "0");
        else if (v->type == MMCR_JSON_NUMBER && v->is_int) snprintf(val, sizeof val, "%lld", (long long)v->integer);
        else if (v->type == MMCR_JSON_NUMBER) mmcr_format_double(val, sizeof val, v->number);
        else continue;
        st = mmcr_options_set(opts, nopt, cfg, root->keys[i], val, err);
    }
    if (st == MMCR_OK && root->type != MMCR_JSON_OBJECT)
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "%s: the configuration is not a JSON object", what);
    mmcr_json_free(&root);
    return st;
}

static int parse3(const char *s, float *v) {
    return s && sscanf(s, "%f,%f,%f", &v[0], &v[1], &v[2]) == 3;
}

static mmcr_status load_checkpoint(const char *path, mm_state *s, mmcr_err *err) {
    memset(s, 0, sizeof *s);
    mmcr_safetensors f;
    mmcr_status st = mmcr_safetensors_read(&f, path, err);
    if (st != MMCR_OK) return st;
    const char *fmt = mmcr_safetensors_meta(&f, "format"), *cj = mmcr_safetensors_meta(&f, "config");
    const char *voc = mmcr_safetensors_meta(&f, "vocab");
    char **toks = NULL;
    char *vcopy = NULL;
    if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0 || !cj || !voc) {
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s' is not a multimodal checkpoint (metadata format=%s); write one "
                          "with 'mmcr multimodal train'", path, fmt ? fmt : "missing");
        goto done;
    }
    st = config_from_json(&s->cfg, cj, path, err);
    if (st != MMCR_OK) goto done;
    if (!parse3(mmcr_safetensors_meta(&f, "data.mean"), s->mean) || !parse3(mmcr_safetensors_meta(&f, "data.std"), s->std)) {
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': missing or bad data.mean / data.std metadata", path);
        goto done;
    }
    /* Vocabulary: split the newline-separated list. */
    vcopy = malloc(strlen(voc) + 1);
    int nv = 1;
    for (const char *p = voc; *p; p++) nv += *p == '\n';
    toks = calloc((size_t)nv, sizeof(char *));
    if (!vcopy || !toks) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory reading '%s'", path);
        goto done;
    }
    strcpy(vcopy, voc);
    int k = 0;
    for (char *p = vcopy, *q; p; p = q) {
        q = strchr(p, '\n');
        if (q) *q++ = '\0';
        toks[k++] = p;
    }
    st = mmcr_vocab_from_list(&s->vocab, (const char *const *)toks, k, err);
    if (st != MMCR_OK) goto done;
    s->max_batch = EVAL_CHUNK;
    st = state_create(s, EVAL_CHUNK, err);
    if (st != MMCR_OK) goto done;
    /* Every tensor by name, with its size checked. */
    int np = mmcr_model_num_tensors(s->model), nb = mmcr_model_num_buffer_tensors(s->model);
    int ntx = mmcr_text_encoder_num_tensors(s->text);
    for (int i = 0; i < np + nb + ntx + 1 && st == MMCR_OK; i++) {
        char name[160];
        float *dst;
        size_t size;
        if (i < np + nb) {
            const mmcr_tensor_info *ti = i < np ? mmcr_model_tensor(s->model, i) : mmcr_model_buffer_tensor(s->model, i - np);
            snprintf(name, sizeof name, "image.%s", ti->name);
            dst = (i < np ? mmcr_model_params(s->model) : mmcr_model_buffers(s->model)) + ti->offset;
            size = ti->size;
        } else if (i < np + nb + ntx) {
            const mmcr_tensor_info *ti = mmcr_text_encoder_tensor(s->text, i - np - nb);
            snprintf(name, sizeof name, "text.%s", ti->name);
            dst = mmcr_text_encoder_params(s->text) + ti->offset;
            size = ti->size;
        } else {
            snprintf(name, sizeof name, "log_scale");
            dst = &s->log_scale;
            size = 1;
        }
        const mmcr_st_tensor *x = mmcr_safetensors_find(&f, name);
        if (!x || x->dtype != MMCR_F32 || x->nbytes != size * sizeof(float))
            st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': tensor '%s' is missing or has the wrong size", path, name);
        else
            memcpy(dst, x->data, x->nbytes);
    }
done:
    free(toks);
    free(vcopy);
    mmcr_safetensors_free(&f);
    if (st != MMCR_OK) state_free(s);
    return st;
}

mmcr_status mmcr_mm_checkpoint_config(const char *path, mmcr_mm_config *cfg, mmcr_err *err) {
    mmcr_safetensors f;
    mmcr_status st = mmcr_safetensors_read(&f, path, err);
    if (st != MMCR_OK) return st;
    const char *fmt = mmcr_safetensors_meta(&f, "format"), *cj = mmcr_safetensors_meta(&f, "config");
    if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0 || !cj)
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s' is not a multimodal checkpoint (metadata format=%s)", path,
                          fmt ? fmt : "missing");
    else
        st = config_from_json(cfg, cj, path, err);
    mmcr_safetensors_free(&f);
    return st;
}

mmcr_status mmcr_mm_eval_checkpoint(const char *path, const mmcr_pairs *test, const mmcr_logger *log,
                                    mmcr_mm_metrics *out, mmcr_err *err) {
    mm_state s;
    mmcr_status st = load_checkpoint(path, &s, err);
    if (st != MMCR_OK) return st;
    st = evaluate(&s, test, log, out, err);
    if (st == MMCR_OK) out->scale = exp((double)s.log_scale);
    state_free(&s);
    return st;
}

/* ---------------- training ---------------- */

static int finite_all(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * 0.0;
    return isfinite(s);
}

static mmcr_status check_config(const mmcr_mm_config *cfg, const mmcr_pairs *train, const mmcr_pairs *test,
                                mmcr_err *err) {
    if (cfg->method == MMCR_MM_METHOD_CLIP && cfg->image_views != 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "--image-views %d: CLIP uses one image view (extra views are for MMCR)",
                            cfg->image_views);
    if (cfg->image_views > 1 && !cfg->augment)
        return mmcr_err_set(err, MMCR_ERR_ARG, "--image-views %d without --augment gives identical views",
                            cfg->image_views);
    if (train->images.n < cfg->batch)
        return mmcr_err_set(err, MMCR_ERR_ARG, "--batch %d is larger than the %d training pairs", cfg->batch,
                            train->images.n);
    if (train->images.h != cfg->image_size || test->images.h != cfg->image_size || train->images.c != 3)
        return mmcr_err_set(err, MMCR_ERR_ARG, "pairs were loaded at %d px, --image-size is %d", train->images.h,
                            cfg->image_size);
    if (cfg->out[0] && strlen(cfg->out) > MMCR_OPT_STRLEN - 40)
        return mmcr_err_set(err, MMCR_ERR_ARG, "--out '%s' is too long", cfg->out);
    return MMCR_OK;
}

mmcr_status mmcr_mm_train(const mmcr_mm_config *cfg, const mmcr_pairs *train, const mmcr_pairs *test,
                          const mmcr_logger *log, mmcr_mm_metrics *out, mmcr_err *err) {
    mmcr_status st = check_config(cfg, train, test, err);
    if (st != MMCR_OK) return st;
    mmcr_set_threads(cfg->threads);
    const double t_start = mmcr_now();
    mm_state s;
    memset(&s, 0, sizeof s);
    s.cfg = *cfg;
    mmcr_token_ids tok = {0};
    mmcr_loader *loader = NULL;
    mmcr_loss *mloss = NULL;
    mmcr_clip_loss *closs = NULL;
    mmcr_optim *opt_img = NULL, *opt_txt = NULL, *opt_scale = NULL;
    mmcr_tensor_info *tinfo = NULL;
    float *y = NULL, *dy = NULL, *d_img = NULL, *d_txt = NULL;
    FILE *metrics = NULL;
    char path[MMCR_OPT_STRLEN + 64];
    const int P = cfg->batch, V = cfg->image_views, K = V + 1, D = cfg->dim;
    const int is_clip = cfg->method == MMCR_MM_METHOD_CLIP;

    if (cfg->out[0]) {
        st = mmcr_make_dirs(cfg->out, err);
        if (st != MMCR_OK) return st;
    }
    st = mmcr_vocab_build(&s.vocab, (const char *const *)train->captions, train->images.n, cfg->min_count, 0, err);
    if (st != MMCR_OK) goto done;
    st = mmcr_vocab_encode(s.vocab, (const char *const *)train->captions, train->images.n, &tok, err);
    if (st != MMCR_OK) goto done;
    mmcr_dataset_stats(&train->images, s.mean, s.std);
    mmcr_aug_config aug;
    aug_config(cfg, s.mean, s.std, &aug);
    mmcr_loader_config lc = {.batch = P, .views = V, .seed = (uint64_t)cfg->seed, .shuffle = 1, .drop_last = 1};
    st = mmcr_loader_create(&loader, &train->images, &aug, &lc, err);
    if (st != MMCR_OK) goto done;
    s.max_batch = P * V > EVAL_CHUNK ? P * V : EVAL_CHUNK;
    st = state_create(&s, P > EVAL_CHUNK ? P : EVAL_CHUNK, err);
    if (st != MMCR_OK) goto done;
    mmcr_model_init(s.model, (uint64_t)cfg->seed);
    mmcr_text_encoder_init(s.text, (uint64_t)cfg->seed);
    s.log_scale = (float)mmcr_clip_clamp_log_scale(cfg->log_scale_init);

    if (is_clip) st = mmcr_clip_loss_create(&closs, P, D, err);
    else st = mmcr_loss_create(&mloss, P, K, D, cfg->lambda, err);
    if (st != MMCR_OK) goto done;

    static const mmcr_optim_kind kinds[4] = {MMCR_OPTIM_ADAM, MMCR_OPTIM_ADAMW, MMCR_OPTIM_SGD, MMCR_OPTIM_LARS};
    mmcr_optim_config oc;
    mmcr_optim_config_default(&oc, kinds[cfg->optimizer]);
    oc.lr = cfg->lr;
    oc.weight_decay = cfg->weight_decay;
    if (cfg->optimizer >= 2) oc.momentum = cfg->momentum;
    else oc.beta1 = cfg->momentum;
    {
        int nt = mmcr_model_num_tensors(s.model);
        tinfo = malloc(sizeof *tinfo * (size_t)nt);
        if (!tinfo) {
            st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int i = 0; i < nt; i++) tinfo[i] = *mmcr_model_tensor(s.model, i);
        st = mmcr_optim_create(&opt_img, &oc, mmcr_model_num_params(s.model), tinfo, nt, err);
        if (st != MMCR_OK) goto done;
        mmcr_tensor_info txt_t[8];
        int ntt = mmcr_text_encoder_num_tensors(s.text);
        for (int i = 0; i < ntt; i++) txt_t[i] = *mmcr_text_encoder_tensor(s.text, i);
        st = mmcr_optim_create(&opt_txt, &oc, mmcr_text_encoder_num_params(s.text), txt_t, ntt, err);
        if (st != MMCR_OK) goto done;
        if (is_clip && cfg->learn_scale) {
            /* The temperature: Adam-family update without weight decay, as CLIP. */
            mmcr_optim_config sc = oc;
            sc.weight_decay = 0;
            if (sc.kind == MMCR_OPTIM_LARS) sc.kind = MMCR_OPTIM_SGD;
            st = mmcr_optim_create(&opt_scale, &sc, 1, NULL, 0, err);
            if (st != MMCR_OK) goto done;
        }
    }
    y = mmcr_alloc(sizeof(float) * (size_t)P * (size_t)K * (size_t)D);
    dy = mmcr_alloc(sizeof(float) * (size_t)P * (size_t)K * (size_t)D);
    d_img = mmcr_alloc(sizeof(float) * (size_t)P * (size_t)V * (size_t)D);
    d_txt = mmcr_alloc(sizeof(float) * (size_t)P * (size_t)D);
    if (!y || !dy || !d_img || !d_txt) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the embedding buffers");
        goto done;
    }

    const long per_epoch = mmcr_loader_batches_per_epoch(loader);
    const long total = (long)ceil(cfg->epochs * (double)per_epoch);
    mmcr_schedule sched;
    mmcr_schedule_default(&sched, MMCR_SCHED_COSINE, total > 0 ? total : 1);
    sched.warmup_steps = (long)(cfg->warmup_epochs * (double)per_epoch);
    if (sched.warmup_steps >= sched.total_steps) sched.warmup_steps = sched.total_steps - 1;
    if (cfg->out[0]) {
        snprintf(path, sizeof path, "%s/config.json", cfg->out);
        mmcr_atomic_file af;
        st = mmcr_atomic_open(&af, path, err);
        if (st != MMCR_OK) goto done;
        int nopt;
        const mmcr_option *opts = mmcr_mm_options(&nopt);
        mmcr_options_json(af.f, opts, nopt, cfg);
        st = mmcr_atomic_commit(&af, err);
        if (st != MMCR_OK) goto done;
        snprintf(path, sizeof path, "%s/metrics.jsonl", cfg->out);
        metrics = fopen(path, "w");
        if (!metrics) {
            st = mmcr_err_set(err, MMCR_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
            goto done;
        }
    }
    mmcr_logf(log, MMCR_LOG_INFO,
              "multimodal %s: %d training pairs, vocabulary %d words, P=%d, K=%d (%d image view%s + caption), D=%d, "
              "%ld steps (%ld per epoch), image encoder %zu parameters, text encoder %zu, %d threads",
              method_name(cfg->method), train->images.n, mmcr_vocab_size(s.vocab), P, is_clip ? 2 : K, V,
              V > 1 ? "s" : "", D, total, per_epoch, mmcr_model_num_params(s.model),
              mmcr_text_encoder_num_params(s.text), mmcr_get_threads());

    const double t0 = mmcr_now();
    double last_loss = NAN;
    for (long step = 0; step < total; step++) {
        const mmcr_batch *b = mmcr_loader_next(loader);
        const float *feat, *emb, *temb;
        mmcr_model_zero_grad(s.model);
        mmcr_text_encoder_zero_grad(s.text);
        st = mmcr_model_forward(s.model, b->images, P * V, 1, 1, &feat, &emb);
        if (st != MMCR_OK) {
            mmcr_err_set(err, st, "step %ld: image encoder forward failed", step);
            goto done;
        }
        st = mmcr_text_encoder_forward(s.text, &tok, b->index, P, &temb, err);
        if (st != MMCR_OK) goto done;
        double loss = 0, extra = 0, extra2 = 0, dt = 0;
        if (is_clip) {
            mmcr_clip_result cr;
            st = mmcr_clip_loss_forward_f32(closs, emb, temb, P, (double)s.log_scale, &cr, err);
            if (st != MMCR_OK) {
                if (st == MMCR_ERR_NONFINITE)
                    mmcr_err_set(err, st, "step %ld: non-finite embeddings (training diverged; try a lower --lr)", step);
                goto done;
            }
            mmcr_clip_loss_backward_f32(closs, d_img, d_txt, &dt);
            loss = cr.loss;
            extra = cr.acc_i2t;
            extra2 = cr.scale;
        } else {
            /* Datum-major rows: the V image views of datum i, then its caption. */
            for (int i = 0; i < P; i++) {
                for (int v = 0; v < V; v++)
                    memcpy(y + ((size_t)i * K + v) * D, emb + ((size_t)i * V + v) * D, sizeof(float) * (size_t)D);
                memcpy(y + ((size_t)i * K + V) * D, temb + (size_t)i * D, sizeof(float) * (size_t)D);
            }
            mmcr_loss_result lr;
            st = mmcr_loss_forward_f32(mloss, y, &lr, err);
            if (st != MMCR_OK) {
                if (st == MMCR_ERR_NONFINITE)
                    mmcr_err_set(err, st, "step %ld: non-finite embeddings (training diverged; try a lower --lr)", step);
                goto done;
            }
            mmcr_loss_backward_f32(mloss, dy);
            for (int i = 0; i < P; i++) {
                for (int v = 0; v < V; v++)
                    memcpy(d_img + ((size_t)i * V + v) * D, dy + ((size_t)i * K + v) * D, sizeof(float) * (size_t)D);
                memcpy(d_txt + (size_t)i * D, dy + ((size_t)i * K + V) * D, sizeof(float) * (size_t)D);
            }
            loss = lr.loss;
            extra = lr.ppe;
            extra2 = lr.mean_centroid_norm2;
        }
        mmcr_model_backward(s.model, d_img);
        mmcr_text_encoder_backward(s.text, d_txt);
        if (!finite_all(mmcr_model_grads(s.model), mmcr_model_num_params(s.model)) ||
            !finite_all(mmcr_text_encoder_grads(s.text), mmcr_text_encoder_num_params(s.text)) || !isfinite(dt)) {
            st = mmcr_err_set(err, MMCR_ERR_NONFINITE, "step %ld: non-finite gradient (try a lower --lr)", step);
            goto done;
        }
        const double lr = cfg->lr * mmcr_schedule_factor(&sched, step);
        mmcr_optim_step(opt_img, mmcr_model_params(s.model), mmcr_model_grads(s.model), lr);
        mmcr_optim_step(opt_txt, mmcr_text_encoder_params(s.text), mmcr_text_encoder_grads(s.text), lr);
        if (opt_scale) {
            float g = (float)dt;
            mmcr_optim_step(opt_scale, &s.log_scale, &g, lr);
            s.log_scale = (float)mmcr_clip_clamp_log_scale((double)s.log_scale);
        }
        last_loss = loss;
        const long done_steps = step + 1;
        if (done_steps % cfg->log_every == 0 || done_steps == total) {
            const double now = mmcr_now();
            if (metrics) {
                fprintf(metrics, "{\"step\":%ld,\"epoch\":%.4f,\"loss\":%.9g,\"%s\":%.9g,\"%s\":%.9g,\"lr\":%.9g,"
                        "\"elapsed_s\":%.3f}\n", done_steps, (double)done_steps / (double)per_epoch, loss,
                        is_clip ? "batch_acc_i2t" : "ppe", extra, is_clip ? "logit_scale" : "mean_centroid_norm2",
                        extra2, lr, now - t0);
                fflush(metrics);
            }
            if (!cfg->quiet)
                mmcr_logf(log, MMCR_LOG_INFO, "step %ld/%ld  epoch %.2f  loss %.4f  %s %.3f  %s %.3f  lr %.2e  %.1f s",
                          done_steps, total, (double)done_steps / (double)per_epoch, loss,
                          is_clip ? "batch acc" : "ppe", extra, is_clip ? "scale" : "|mu|^2", extra2, lr, now - t0);
        }
    }
    mmcr_mm_metrics m;
    const double train_s = mmcr_now() - t_start;
    st = evaluate(&s, test, log, &m, err);
    if (st != MMCR_OK) goto done;
    m.final_loss = last_loss;
    m.scale = is_clip ? exp((double)s.log_scale) : NAN;
    m.steps = total;
    m.train_seconds = train_s;
    if (cfg->out[0]) {
        if (cfg->save_checkpoint) {
            snprintf(path, sizeof path, "%s/checkpoint.safetensors", cfg->out);
            st = save_checkpoint(path, &s, err);
            if (st != MMCR_OK) goto done;
        }
        snprintf(path, sizeof path, "%s/results.json", cfg->out);
        st = mmcr_mm_write_results(path, cfg, test, &m, err);
        if (st != MMCR_OK) goto done;
    }
    if (out) *out = m;
done:
    if (metrics) fclose(metrics);
    mmcr_free(y);
    mmcr_free(dy);
    mmcr_free(d_img);
    mmcr_free(d_txt);
    free(tinfo);
    mmcr_optim_destroy(&opt_img);
    mmcr_optim_destroy(&opt_txt);
    mmcr_optim_destroy(&opt_scale);
    mmcr_loss_destroy(&mloss);
    mmcr_clip_loss_destroy(&closs);
    mmcr_loader_destroy(&loader);
    mmcr_token_ids_free(&tok);
    state_free(&s);
    return st;
}
