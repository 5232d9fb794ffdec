/* Tokenizer, vocabulary, token ids and the text encoder: forward against a double reference,
 * backward against finite differences of L = sum r_i y_i (fixed random r), with and without the
 * hidden layer, repeated tokens, and gradient accumulation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/multimodal.h"
#include "test_util.h"

typedef struct tok_list {
    char tok[16][MMCR_TOKEN_MAX + 1];
    int n;
} tok_list;

static void collect(const char *t, size_t len, void *user) {
    tok_list *l = user;
    if (l->n < 16) {
        memcpy(l->tok[l->n], t, len + 1);
        l->n++;
    }
}

static void test_tokenizer(void) {
    tok_list l = {0};
    int n = mmcr_tokenize("Hello, World! it's 3D-art\tCAFÉ  café...", collect, &l);
    CHECK(n == 8 && l.n == 8);
    const char *want[8] = {"hello", "world", "it", "s", "3d", "art", "caf\xc3\x89", "caf\xc3\xa9"};
    for (int i = 0; i < 8 && i < l.n; i++) CHECK_MSG(strcmp(l.tok[i], want[i]) == 0, "token %d: '%s'", i, l.tok[i]);
    CHECK(mmcr_tokenize("", NULL, NULL) == 0);
    CHECK(mmcr_tokenize(" ,;:!? \"'()[]{}-_/", NULL, NULL) == 0);
    /* A long word is cut to MMCR_TOKEN_MAX bytes, never inside a UTF-8 sequence. */
    char longw[200];
    memset(longw, 'a', sizeof longw);
    longw[MMCR_TOKEN_MAX - 1] = (char)0xc3; /* a 2-byte sequence straddling the limit */
    longw[MMCR_TOKEN_MAX] = (char)0xa9;
    longw[199] = '\0';
    l.n = 0;
    CHECK(mmcr_tokenize(longw, collect, &l) == 1);
    CHECK_MSG(strlen(l.tok[0]) == MMCR_TOKEN_MAX - 1, "cut length %zu", strlen(l.tok[0]));
}

static void test_vocab(void) {
    const char *texts[4] = {"the red apple", "The green apple!", "a red car", "the the"};
    mmcr_vocab *v = NULL;
    mmcr_err err = {{0}};
    CHECK(mmcr_vocab_build(&v, texts, 4, 1, 0, &err) == MMCR_OK);
    /* counts: the 4, apple 2, red 2, a 1, car 1, green 1 -> ids by count, ties by bytes. */
    CHECK(mmcr_vocab_size(v) == 7);
    const char *order[7] = {MMCR_VOCAB_UNK, "the", "apple", "red", "a", "car", "green"};
    for (int i = 0; i < 7; i++) CHECK_MSG(strcmp(mmcr_vocab_token(v, i), order[i]) == 0, "id %d", i);
    CHECK(mmcr_vocab_lookup(v, "red") == 3 && mmcr_vocab_lookup(v, "blue") == 0 && mmcr_vocab_lookup(v, "the") == 1);
    CHECK(mmcr_vocab_token(v, 7) == NULL);

    const char *enc_texts[3] = {"Red apple, blue apple", "...", "green"};
    mmcr_token_ids ids;
    CHECK(mmcr_vocab_encode(v, enc_texts, 3, &ids, &err) == MMCR_OK);
    CHECK(ids.n == 3 && ids.offsets[0] == 0 && ids.offsets[1] == 4 && ids.offsets[2] == 5 && ids.offsets[3] == 6);
    CHECK(ids.ids[0] == 3 && ids.ids[1] == 2 && ids.ids[2] == 0 && ids.ids[3] == 2);
    CHECK(ids.ids[4] == 0); /* a text without tokens gets one <unk> */
    CHECK(ids.ids[5] == 6);
    mmcr_token_ids_free(&ids);
    mmcr_vocab_destroy(&v);
    CHECK(v == NULL);

    CHECK(mmcr_vocab_build(&v, texts, 4, 2, 0, &err) == MMCR_OK);
    CHECK(mmcr_vocab_size(v) == 4); /* <unk> the apple red */
    mmcr_vocab_destroy(&v);
    CHECK(mmcr_vocab_build(&v, texts, 4, 1, 3, &err) == MMCR_OK);
    CHECK(mmcr_vocab_size(v) == 3 && strcmp(mmcr_vocab_token(v, 2), "apple") == 0);
    mmcr_vocab_destroy(&v);

    const char *good[3] = {MMCR_VOCAB_UNK, "x", "y"}, *dup[3] = {MMCR_VOCAB_UNK, "x", "x"}, *nounk[2] = {"x", "y"};
    CHECK(mmcr_vocab_from_list(&v, good, 3, &err) == MMCR_OK && mmcr_vocab_lookup(v, "y") == 2);
    mmcr_vocab_destroy(&v);
    CHECK(mmcr_vocab_from_list(&v, dup, 3, &err) == MMCR_ERR_FORMAT && v == NULL);
    CHECK(strstr(err.msg, "twice") != NULL);
    CHECK(mmcr_vocab_from_list(&v, nounk, 2, &err) == MMCR_ERR_FORMAT && v == NULL);
}

/* Reference forward in double for text row r. */
static void ref_forward(mmcr_text_encoder *t, const mmcr_token_ids *tok, uint32_t r, double *y) {
    const mmcr_text_config *c = mmcr_text_encoder_config(t);
    const float *p = mmcr_text_encoder_params(t);
    const mmcr_tensor_info *te = mmcr_text_encoder_tensor(t, 0);
    double h0[64] = {0}, h1[64] = {0};
    int64_t a = tok->offsets[r], b = tok->offsets[r + 1];
    for (int64_t k = a; k < b; k++)
        for (int j = 0; j < c->embed_dim; j++) h0[j] += p[te->offset + (size_t)tok->ids[k] * c->embed_dim + j];
    for (int j = 0; j < c->embed_dim; j++) h0[j] /= (double)(b - a);
    const double *x = h0;
    int in = c->embed_dim, ti = 1;
    if (c->hidden > 0) {
        const mmcr_tensor_info *w = mmcr_text_encoder_tensor(t, 1), *bb = mmcr_text_encoder_tensor(t, 2);
        for (int o = 0; o < c->hidden; o++) {
            double s = p[bb->offset + o];
            for (int i = 0; i < in; i++) s += p[w->offset + (size_t)o * in + i] * h0[i];
            h1[o] = s > 0 ? s : 0;
        }
        x = h1;
        in = c->hidden;
        ti = 3;
    }
    const mmcr_tensor_info *w = mmcr_text_encoder_tensor(t, ti), *bb = mmcr_text_encoder_tensor(t, ti + 1);
    for (int o = 0; o < c->out_dim; o++) {
        double s = p[bb->offset + o];
        for (int i = 0; i < in; i++) s += p[w->offset + (size_t)o * in + i] * x[i];
        y[o] = s;
    }
}

static double weighted_loss(mmcr_text_encoder *t, const mmcr_token_ids *tok, const uint32_t *idx, int n,
                            const double *r) {
    const float *y;
    mmcr_err err;
    MMCR_ASSERT(mmcr_text_encoder_forward(t, tok, idx, n, &y, &err) == MMCR_OK);
    int D = mmcr_text_encoder_config(t)->out_dim;
    double s = 0;
    for (int i = 0; i < n * D; i++) s += r[i] * (double)y[i];
    return s;
}

static void test_encoder(int hidden) {
    /* Texts with repeated tokens inside one text and across texts. */
    const int32_t ids[] = {1, 2, 2, 5, 0, 3, 4, 1, 1, 1, 6, 2};
    const int64_t offs[] = {0, 4, 6, 10, 12};
    mmcr_token_ids tok = {4, (int64_t *)offs, (int32_t *)ids};
    mmcr_text_config cfg = {.vocab_size = 7, .embed_dim = 5, .hidden = hidden, .out_dim = 4};
    mmcr_text_encoder *t = NULL;
    mmcr_err err = {{0}};
    CHECK(mmcr_text_encoder_create(&t, &cfg, 4, &err) == MMCR_OK);
    if (!t) return;
    mmcr_text_encoder_init(t, 42);
    CHECK(mmcr_text_encoder_num_tensors(t) == (hidden ? 5 : 3));
    uint32_t idx[4] = {2, 0, 3, 0}; /* row 0 appears twice */
    const int n = 4, D = cfg.out_dim;
    const float *y;
    CHECK(mmcr_text_encoder_forward(t, &tok, idx, n, &y, &err) == MMCR_OK);
    double yr[8], maxd = 0;
    for (int i = 0; i < n; i++) {
        ref_forward(t, &tok, idx[i], yr);
        for (int o = 0; o < D; o++) maxd = fmax(maxd, fabs(yr[o] - y[i * D + o]));
    }
    CHECK_MSG(maxd < 1e-5, "forward differs from the reference by %g", maxd);

    double r[16];
    mmcr_rng rng;
    mmcr_rng_seed(&rng, 7, 1, 2, 3);
    for (int i = 0; i < n * D; i++) r[i] = mmcr_rng_normal(&rng);
    float dy[16];
    for (int i = 0; i < n * D; i++) dy[i] = (float)r[i];
    mmcr_text_encoder_zero_grad(t);
    weighted_loss(t, &tok, idx, n, r);
    mmcr_text_encoder_backward(t, dy);
    const size_t np = mmcr_text_encoder_num_params(t);
    float *g = malloc(sizeof(float) * np);
    memcpy(g, mmcr_text_encoder_grads(t), sizeof(float) * np);
    /* Central differences on every parameter of every tensor. */
    float *p = mmcr_text_encoder_params(t);
    int bad = 0, checked = 0;
    for (int ti = 0; ti < mmcr_text_encoder_num_tensors(t); ti++) {
        const mmcr_tensor_info *info = mmcr_text_encoder_tensor(t, ti);
        for (size_t k = 0; k < info->size; k++) {
            size_t q = info->offset + k;
            float save = p[q];
            const float h = 1e-2f;
            p[q] = save + h;
            double lp = weighted_loss(t, &tok, idx, n, r);
            p[q] = save - h;
            double lm = weighted_loss(t, &tok, idx, n, r);
            p[q] = save;
            double fd = (lp - lm) / (2.0 * h);
            checked++;
            if (fabs(fd - g[q]) > 2e-3 + 2e-3 * fabs(fd)) {
                if (bad++ < 5) fprintf(stderr, "%s[%zu]: analytic %g, numeric %g\n", info->name, k, g[q], fd);
            }
        }
    }
    CHECK_MSG(bad == 0, "hidden %d: %d of %d gradients differ from finite differences", hidden, bad, checked);
    /* Accumulation: a second backward doubles the gradients. */
    mmcr_text_encoder_backward(t, dy);
    const float *g2 = mmcr_text_encoder_grads(t);
    double maxr = 0;
    for (size_t q = 0; q < np; q++) maxr = fmax(maxr, fabs(g2[q] - 2 * g[q]));
    CHECK_MSG(maxr < 1e-5, "backward does not accumulate (%g)", maxr);
    mmcr_text_encoder_zero_grad(t);
    double zs = 0;
    for (size_t q = 0; q < np; q++) zs += fabs(mmcr_text_encoder_grads(t)[q]);
    CHECK(zs == 0);

    /* Errors. */
    CHECK(mmcr_text_encoder_forward(t, &tok, idx, 5, &y, &err) == MMCR_ERR_ARG);
    uint32_t out_of_range = 4;
    CHECK(mmcr_text_encoder_forward(t, &tok, &out_of_range, 1, &y, &err) == MMCR_ERR_ARG);
    int32_t bad_ids[] = {9};
    int64_t bad_offs[] = {0, 1};
    mmcr_token_ids badtok = {1, bad_offs, bad_ids};
    CHECK(mmcr_text_encoder_forward(t, &badtok, NULL, 1, &y, &err) == MMCR_ERR_ARG);
    CHECK(strstr(err.msg, "vocabulary") != NULL);
    free(g);
    mmcr_text_encoder_destroy(&t);
    CHECK(t == NULL);
}

static void test_init(void) {
    mmcr_text_config cfg = {.vocab_size = 300, .embed_dim = 32, .hidden = 64, .out_dim = 16};
    mmcr_text_encoder *a = NULL, *b = NULL;
    mmcr_err err;
    CHECK(mmcr_text_encoder_create(&a, &cfg, 8, &err) == MMCR_OK);
    CHECK(mmcr_text_encoder_create(&b, &cfg, 8, &err) == MMCR_OK);
    mmcr_text_encoder_init(a, 5);
    mmcr_text_encoder_init(b, 5);
    CHECK(memcmp(mmcr_text_encoder_params(a), mmcr_text_encoder_params(b), sizeof(float) * mmcr_text_encoder_num_params(a)) == 0);
    /* Embedding ~ N(0, 1); fc1 weights within 1/sqrt(32). */
    const mmcr_tensor_info *e = mmcr_text_encoder_tensor(a, 0), *w = mmcr_text_encoder_tensor(a, 1);
    const float *p = mmcr_text_encoder_params(a);
    double m = 0, s2 = 0, mx = 0;
    for (size_t k = 0; k < e->size; k++) {
        m += p[e->offset + k];
        s2 += (double)p[e->offset + k] * p[e->offset + k];
    }
    m /= (double)e->size;
    s2 = s2 / (double)e->size - m * m;
    for (size_t k = 0; k < w->size; k++) mx = fmax(mx, fabs(p[w->offset + k]));
    CHECK_MSG(fabs(m) < 0.05 && fabs(s2 - 1) < 0.05, "embedding mean %g var %g", m, s2);
    CHECK(mx <= 1.0 / sqrt(32.0) + 1e-7 && mx > 0.8 / sqrt(32.0));
    mmcr_text_encoder_init(b, 6);
    CHECK(memcmp(mmcr_text_encoder_params(a), mmcr_text_encoder_params(b), sizeof(float) * mmcr_text_encoder_num_params(a)) != 0);
    mmcr_text_encoder_destroy(&a);
    mmcr_text_encoder_destroy(&b);
    CHECK(mmcr_text_encoder_create(&a, &cfg, 0, &err) == MMCR_ERR_ARG);
}

int main(void) {
    mmcr_set_threads(1);
    test_tokenizer();
    test_vocab();
    test_encoder(6);
    test_encoder(0);
    test_init();
    return test_finish("test_text_encoder");
}
