/* Tokenizer, vocabulary and the bag-of-words text encoder (mean of token embeddings, then an
 * MLP into the shared embedding space). Everything the forward/backward pass touches is
 * allocated at create time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/multimodal.h"

/* ---------------- tokenizer ---------------- */

static int is_word_byte(unsigned char c) {
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Drops a UTF-8 sequence cut by the length limit, so stored tokens stay valid UTF-8. */
static size_t trim_utf8(const char *t, size_t len) {
    size_t p = len;
    while (p > 0 && ((unsigned char)t[p - 1] & 0xC0) == 0x80) p--;
    if (p == 0) return len;
    unsigned char lead = (unsigned char)t[p - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return (p - 1) + need > len ? p - 1 : len;
}

int mmcr_tokenize(const char *text, void (*fn)(const char *tok, size_t len, void *user), void *user) {
    char buf[MMCR_TOKEN_MAX + 1];
    size_t len = 0;
    int ntok = 0, in_word = 0, cut = 0;
    for (const unsigned char *p = (const unsigned char *)text;; p++) {
        unsigned char c = *p;
        if (c && is_word_byte(c)) {
            in_word = 1;
            if (len < MMCR_TOKEN_MAX) buf[len++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
            else cut = 1;
            continue;
        }
        if (in_word) {
            if (cut) len = trim_utf8(buf, len);
            buf[len] = '\0';
            if (len > 0) {
                if (fn) fn(buf, len, user);
                ntok++;
            }
            len = 0;
            in_word = cut = 0;
        }
        if (!c) break;
    }
    return ntok;
}

/* ---------------- vocabulary ---------------- */

struct mmcr_vocab {
    int n;
    char **tok;
    int *table; /* open addressing, -1 = empty */
    size_t mask;
};

static uint64_t hash_str(const char *s) {
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static size_t table_size_for(size_t n) {
    size_t s = 16;
    while (s < 2 * n + 2) s <<= 1;
    return s;
}

void mmcr_vocab_destroy(mmcr_vocab **pv) {
    if (!pv || !*pv) return;
    mmcr_vocab *v = *pv;
    if (v->tok)
        for (int i = 0; i < v->n; i++) free(v->tok[i]);
    free(v->tok);
    free(v->table);
    free(v);
    *pv = NULL;
}

int mmcr_vocab_size(const mmcr_vocab *v) { return v->n; }

const char *mmcr_vocab_token(const mmcr_vocab *v, int id) { return id >= 0 && id < v->n ? v->tok[id] : NULL; }

int mmcr_vocab_lookup(const mmcr_vocab *v, const char *word) {
    for (size_t h = hash_str(word) & v->mask;; h = (h + 1) & v->mask) {
        int id = v->table[h];
        if (id < 0) return 0;
        if (strcmp(v->tok[id], word) == 0) return id;
    }
}

/* Takes ownership of tok[0..n) (strings from malloc); fails on duplicates. */
static mmcr_status vocab_index(mmcr_vocab **out, char **tok, int n, mmcr_err *err) {
    mmcr_vocab *v = calloc(1, sizeof *v);
    size_t ts = table_size_for((size_t)n);
    int *table = v ? malloc(sizeof(int) * ts) : NULL;
    if (!v || !table) {
        for (int i = 0; i < n; i++) free(tok[i]);
        free(tok);
        free(v);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for a vocabulary of %d tokens", n);
    }
    for (size_t i = 0; i < ts; i++) table[i] = -1;
    v->n = n;
    v->tok = tok;
    v->table = table;
    v->mask = ts - 1;
    for (int i = 0; i < n; i++) {
        size_t h = hash_str(tok[i]) & v->mask;
        while (table[h] >= 0) {
            if (strcmp(tok[table[h]], tok[i]) == 0) {
                mmcr_status st = mmcr_err_set(err, MMCR_ERR_FORMAT, "vocabulary token '%.60s' appears twice", tok[i]);
                mmcr_vocab_destroy(&v);
                return st;
            }
            h = (h + 1) & v->mask;
        }
        table[h] = i;
    }
    *out = v;
    return MMCR_OK;
}

mmcr_status mmcr_vocab_from_list(mmcr_vocab **out, const char *const *tokens, int n, mmcr_err *err) {
    *out = NULL;
    if (n < 1 || strcmp(tokens[0], MMCR_VOCAB_UNK) != 0)
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "a vocabulary must start with the token '%s'", MMCR_VOCAB_UNK);
    char **tok = calloc((size_t)n, sizeof(char *));
    if (!tok) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for a vocabulary of %d tokens", n);
    for (int i = 0; i < n; i++) {
        size_t l = strlen(tokens[i]);
        if (l == 0 || (i > 0 && l > MMCR_TOKEN_MAX)) {
            for (int j = 0; j < i; j++) free(tok[j]);
            free(tok);
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "vocabulary token %d is empty or longer than %d bytes", i,
                                MMCR_TOKEN_MAX);
        }
        tok[i] = malloc(l + 1);
        if (!tok[i]) {
            for (int j = 0; j < i; j++) free(tok[j]);
            free(tok);
            return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for a vocabulary");
        }
        memcpy(tok[i], tokens[i], l + 1);
    }
    return vocab_index(out, tok, n, err);
}

/* Word counts while building. */
typedef struct counter {
    char **word;
    long *count;
    size_t cap, n; /* cap is a power of two */
    int oom;
} counter;

static int counter_grow(counter *c) {
    size_t cap = c->cap ? c->cap * 2 : 1024;
    char **w = calloc(cap, sizeof(char *));
    long *k = calloc(cap, sizeof(long));
    if (!w || !k) {
        free(w);
        free(k);
        return 0;
    }
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->word[i]) continue;
        size_t h = hash_str(c->word[i]) & (cap - 1);
        while (w[h]) h = (h + 1) & (cap - 1);
        w[h] = c->word[i];
        k[h] = c->count[i];
    }
    free(c->word);
    free(c->count);
    c->word = w;
    c->count = k;
    c->cap = cap;
    return 1;
}

static void count_token(const char *tok, size_t len, void *user) {
    counter *c = user;
    if (c->oom) return;
    if (2 * (c->n + 1) > c->cap && !counter_grow(c)) {
        c->oom = 1;
        return;
    }
    size_t h = hash_str(tok) & (c->cap - 1);
    while (c->word[h]) {
        if (strcmp(c->word[h], tok) == 0) {
            c->count[h]++;
            return;
        }
        h = (h + 1) & (c->cap - 1);
    }
    c->word[h] = malloc(len + 1);
    if (!c->word[h]) {
        c->oom = 1;
        return;
    }
    memcpy(c->word[h], tok, len + 1);
    c->count[h] = 1;
    c->n++;
}

typedef struct word_count {
    char *word;
    long count;
} word_count;

static int cmp_word_count(const void *a, const void *b) {
    const word_count *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->word, y->word);
}

mmcr_status mmcr_vocab_build(mmcr_vocab **out, const char *const *texts, int n, int min_count, int max_size,
                             mmcr_err *err) {
    *out = NULL;
    if (n < 0 || min_count < 1 || max_size < 0 || max_size == 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "vocabulary: bad arguments (n %d, min_count %d, max_size %d)", n,
                            min_count, max_size);
    counter c = {0};
    for (int i = 0; i < n && !c.oom; i++) mmcr_tokenize(texts[i], count_token, &c);
    word_count *wc = c.oom ? NULL : malloc(sizeof *wc * (c.n + 1));
    if (!wc) {
        for (size_t i = 0; i < c.cap; i++) free(c.word[i]);
        free(c.word);
        free(c.count);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory while counting words");
    }
    size_t m = 0;
    for (size_t i = 0; i < c.cap; i++)
        if (c.word[i]) wc[m++] = (word_count){c.word[i], c.count[i]};
    qsort(wc, m, sizeof *wc, cmp_word_count);
    size_t keep = 0;
    while (keep < m && wc[keep].count >= min_count) keep++;
    if (max_size > 0 && keep > (size_t)max_size - 1) keep = (size_t)max_size - 1;
    char **tok = calloc(keep + 1, sizeof(char *));
    const char *unk = MMCR_VOCAB_UNK;
    if (tok) tok[0] = malloc(strlen(unk) + 1);
    if (!tok || !tok[0]) {
        for (size_t i = 0; i < m; i++) free(wc[i].word);
        free(wc);
        free(tok);
        free(c.word);
        free(c.count);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the vocabulary");
    }
    strcpy(tok[0], unk);
    for (size_t i = 0; i < m; i++) {
        if (i < keep) tok[i + 1] = wc[i].word;
        else free(wc[i].word);
    }
    free(wc);
    free(c.word);
    free(c.count);
    return vocab_index(out, tok, (int)keep + 1, err);
}

void mmcr_token_ids_free(mmcr_token_ids *t) {
    if (!t) return;
    mmcr_free(t->offsets);
    mmcr_free(t->ids);
    memset(t, 0, sizeof *t);
}

typedef struct encode_ctx {
    const mmcr_vocab *v;
    int32_t *ids; /* NULL in the counting pass */
    int64_t pos;
} encode_ctx;

static void encode_token(const char *tok, size_t len, void *user) {
    (void)len;
    encode_ctx *e = user;
    if (e->ids) e->ids[e->pos] = mmcr_vocab_lookup(e->v, tok);
    e->pos++;
}

mmcr_status mmcr_vocab_encode(const mmcr_vocab *v, const char *const *texts, int n, mmcr_token_ids *out,
                              mmcr_err *err) {
    memset(out, 0, sizeof *out);
    if (n < 0) return mmcr_err_set(err, MMCR_ERR_ARG, "encode: negative text count %d", n);
    out->offsets = mmcr_alloc_or_err(sizeof(int64_t) * ((size_t)n + 1), err, "token offsets");
    if (!out->offsets) return MMCR_ERR_NOMEM;
    encode_ctx e = {v, NULL, 0};
    for (int i = 0; i < n; i++) {
        int64_t before = e.pos;
        mmcr_tokenize(texts[i], encode_token, &e);
        if (e.pos == before) e.pos++; /* the lone <unk> of a text without tokens */
        out->offsets[i + 1] = e.pos;
    }
    out->ids = mmcr_alloc_or_err(sizeof(int32_t) * (size_t)(e.pos ? e.pos : 1), err, "token ids");
    if (!out->ids) {
        mmcr_token_ids_free(out);
        return MMCR_ERR_NOMEM;
    }
    e.ids = out->ids;
    e.pos = 0;
    for (int i = 0; i < n; i++) {
        int64_t before = e.pos;
        mmcr_tokenize(texts[i], encode_token, &e);
        if (e.pos == before) out->ids[e.pos++] = 0;
    }
    out->n = n;
    return MMCR_OK;
}

/* ---------------- encoder ---------------- */

enum { T_EMBED, T_FC1_W, T_FC1_B, T_FC2_W, T_FC2_B };

struct mmcr_text_encoder {
    mmcr_text_config cfg;
    int max_batch;
    size_t nparams;
    float *params, *grads;
    mmcr_tensor_info tensors[5];
    int tidx[5]; /* tensor number of each role, -1 when absent */
    int ntensors;
    /* activations of the last forward */
    float *h0, *h1, *y, *dh1, *dh0;
    const mmcr_token_ids *tok;
    uint32_t *rows;
    int last_n;
};

static void add_tensor(mmcr_text_encoder *t, int role, const char *name, int ndim, int d0, int d1, int is_1d) {
    mmcr_tensor_info *ti = &t->tensors[t->ntensors];
    memset(ti, 0, sizeof *ti);
    snprintf(ti->name, sizeof ti->name, "%s", name);
    ti->ndim = ndim;
    ti->shape[0] = d0;
    ti->shape[1] = ndim > 1 ? d1 : 0;
    ti->size = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    ti->offset = t->nparams;
    ti->is_1d = is_1d;
    /* 16-float alignment of every tensor, as the image model. */
    t->nparams += (ti->size + 15) & ~(size_t)15;
    t->tidx[role] = t->ntensors++;
}

mmcr_status mmcr_text_encoder_create(mmcr_text_encoder **out, const mmcr_text_config *cfg, int max_batch,
                                     mmcr_err *err) {
    *out = NULL;
    if (cfg->vocab_size < 1 || cfg->embed_dim < 1 || cfg->hidden < 0 || cfg->out_dim < 1 || max_batch < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG,
                            "text encoder: bad sizes (vocabulary %d, embedding %d, hidden %d, output %d, batch %d)",
                            cfg->vocab_size, cfg->embed_dim, cfg->hidden, cfg->out_dim, max_batch);
    mmcr_text_encoder *t = calloc(1, sizeof *t);
    if (!t) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the text encoder");
    t->cfg = *cfg;
    t->max_batch = max_batch;
    for (int i = 0; i < 5; i++) t->tidx[i] = -1;
    const int E = cfg->embed_dim, H = cfg->hidden, D = cfg->out_dim;
    add_tensor(t, T_EMBED, "embed", 2, cfg->vocab_size, E, 0);
    if (H > 0) {
        add_tensor(t, T_FC1_W, "fc1.weight", 2, H, E, 0);
        add_tensor(t, T_FC1_B, "fc1.bias", 1, H, 0, 1);
    }
    add_tensor(t, T_FC2_W, "fc2.weight", 2, D, H > 0 ? H : E, 0);
    add_tensor(t, T_FC2_B, "fc2.bias", 1, D, 0, 1);
    const size_t nb = (size_t)max_batch;
    t->params = mmcr_alloc(sizeof(float) * t->nparams);
    t->grads = mmcr_alloc(sizeof(float) * t->nparams);
    t->h0 = mmcr_alloc(sizeof(float) * nb * (size_t)E);
    t->dh0 = mmcr_alloc(sizeof(float) * nb * (size_t)E);
    t->h1 = mmcr_alloc(sizeof(float) * nb * (size_t)(H > 0 ? H : 1));
    t->dh1 = mmcr_alloc(sizeof(float) * nb * (size_t)(H > 0 ? H : 1));
    t->y = mmcr_alloc(sizeof(float) * nb * (size_t)D);
    t->rows = mmcr_alloc(sizeof(uint32_t) * nb);
    if (!t->params || !t->grads || !t->h0 || !t->dh0 || !t->h1 || !t->dh1 || !t->y || !t->rows) {
        mmcr_text_encoder_destroy(&t);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the text encoder");
    }
    *out = t;
    return MMCR_OK;
}

void mmcr_text_encoder_destroy(mmcr_text_encoder **pt) {
    if (!pt || !*pt) return;
    mmcr_text_encoder *t = *pt;
    mmcr_free(t->params);
    mmcr_free(t->grads);
    mmcr_free(t->h0);
    mmcr_free(t->dh0);
    mmcr_free(t->h1);
    mmcr_free(t->dh1);
    mmcr_free(t->y);
    mmcr_free(t->rows);
    free(t);
    *pt = NULL;
}

const mmcr_text_config *mmcr_text_encoder_config(const mmcr_text_encoder *t) { return &t->cfg; }
size_t mmcr_text_encoder_num_params(const mmcr_text_encoder *t) { return t->nparams; }
float *mmcr_text_encoder_params(mmcr_text_encoder *t) { return t->params; }
float *mmcr_text_encoder_grads(mmcr_text_encoder *t) { return t->grads; }
int mmcr_text_encoder_num_tensors(const mmcr_text_encoder *t) { return t->ntensors; }
const mmcr_tensor_info *mmcr_text_encoder_tensor(const mmcr_text_encoder *t, int i) {
    return i >= 0 && i < t->ntensors ? &t->tensors[i] : NULL;
}
void mmcr_text_encoder_zero_grad(mmcr_text_encoder *t) { memset(t->grads, 0, sizeof(float) * t->nparams); }

static float *param(mmcr_text_encoder *t, int role) {
    return t->tidx[role] >= 0 ? t->params + t->tensors[t->tidx[role]].offset : NULL;
}
static float *grad(mmcr_text_encoder *t, int role) {
    return t->tidx[role] >= 0 ? t->grads + t->tensors[t->tidx[role]].offset : NULL;
}

void mmcr_text_encoder_init(mmcr_text_encoder *t, uint64_t seed) {
    memset(t->params, 0, sizeof(float) * t->nparams);
    for (int i = 0; i < t->ntensors; i++) {
        const mmcr_tensor_info *ti = &t->tensors[i];
        float *p = t->params + ti->offset;
        mmcr_rng r;
        mmcr_rng_seed(&r, seed, 0x7e47u, (uint64_t)i, 0);
        if (i == t->tidx[T_EMBED]) {
            for (size_t k = 0; k < ti->size; k++) p[k] = (float)mmcr_rng_normal(&r);
        } else {
            /* fan_in of the layer: the weight's second dimension (the bias shares its layer's). */
            const mmcr_tensor_info *w = ti->is_1d ? &t->tensors[i - 1] : ti;
            double bound = 1.0 / sqrt((double)w->shape[1]);
            for (size_t k = 0; k < ti->size; k++) p[k] = (float)(bound * (2.0 * mmcr_rng_uniform(&r) - 1.0));
        }
    }
}

mmcr_status mmcr_text_encoder_forward(mmcr_text_encoder *t, const mmcr_token_ids *tok, const uint32_t *idx, int n,
                                      const float **embed, mmcr_err *err) {
    if (n < 1 || n > t->max_batch)
        return mmcr_err_set(err, MMCR_ERR_ARG, "text encoder: batch of %d texts, allowed 1..%d", n, t->max_batch);
    const int E = t->cfg.embed_dim, H = t->cfg.hidden, D = t->cfg.out_dim, V = t->cfg.vocab_size;
    const float *emb = param(t, T_EMBED);
    for (int i = 0; i < n; i++) {
        uint32_t r = idx ? idx[i] : (uint32_t)i;
        if (r >= (uint32_t)tok->n)
            return mmcr_err_set(err, MMCR_ERR_ARG, "text encoder: text %u is outside the %d encoded texts", r, tok->n);
        int64_t a = tok->offsets[r], b = tok->offsets[r + 1];
        float *h = t->h0 + (size_t)i * (size_t)E;
        memset(h, 0, sizeof(float) * (size_t)E);
        for (int64_t k = a; k < b; k++) {
            int32_t id = tok->ids[k];
            if (id < 0 || id >= V)
                return mmcr_err_set(err, MMCR_ERR_ARG, "text encoder: token id %d of text %u is outside the vocabulary "
                                    "(%d tokens)", (int)id, r, V);
            const float *e = emb + (size_t)id * (size_t)E;
            for (int j = 0; j < E; j++) h[j] += e[j];
        }
        const float inv = b > a ? 1.0f / (float)(b - a) : 0.0f;
        for (int j = 0; j < E; j++) h[j] *= inv;
        t->rows[i] = r;
    }
    if (H > 0) {
        mmcr_linear_forward(t->h1, t->h0, param(t, T_FC1_W), param(t, T_FC1_B), n, E, H);
        mmcr_relu_forward(t->h1, t->h1, (size_t)n * (size_t)H);
        mmcr_linear_forward(t->y, t->h1, param(t, T_FC2_W), param(t, T_FC2_B), n, H, D);
    } else {
        mmcr_linear_forward(t->y, t->h0, param(t, T_FC2_W), param(t, T_FC2_B), n, E, D);
    }
    t->tok = tok;
    t->last_n = n;
    *embed = t->y;
    return MMCR_OK;
}

void mmcr_text_encoder_backward(mmcr_text_encoder *t, const float *d_embed) {
    MMCR_ASSERT(t->tok != NULL && t->last_n > 0);
    const int n = t->last_n, E = t->cfg.embed_dim, H = t->cfg.hidden, D = t->cfg.out_dim;
    if (H > 0) {
        mmcr_linear_backward(t->dh1, grad(t, T_FC2_W), grad(t, T_FC2_B), d_embed, t->h1, param(t, T_FC2_W), n, H, D);
        mmcr_relu_backward(t->dh1, t->dh1, t->h1, (size_t)n * (size_t)H);
        mmcr_linear_backward(t->dh0, grad(t, T_FC1_W), grad(t, T_FC1_B), t->dh1, t->h0, param(t, T_FC1_W), n, E, H);
    } else {
        mmcr_linear_backward(t->dh0, grad(t, T_FC2_W), grad(t, T_FC2_B), d_embed, t->h0, param(t, T_FC2_W), n, E, D);
    }
    /* The mean spreads dh0 evenly over the text's tokens (a repeated token gets it repeatedly). */
    float *demb = grad(t, T_EMBED);
    for (int i = 0; i < n; i++) {
        int64_t a = t->tok->offsets[t->rows[i]], b = t->tok->offsets[t->rows[i] + 1];
        const float inv = b > a ? 1.0f / (float)(b - a) : 0.0f;
        const float *g = t->dh0 + (size_t)i * (size_t)E;
        for (int64_t k = a; k < b; k++) {
            float *e = demb + (size_t)t->tok->ids[k] * (size_t)E;
            for (int j = 0; j < E; j++) e[j] += inv * g[j];
        }
    }
}
