/* Loader: each image's pixels encode its index (the llm.c trick), so every batch can be decoded
 * and checked: coverage per epoch, datum-major views, determinism, exact resume, drop_last. */
#include "mmcr/data.h"
#include "test_util.h"

#include <string.h>

enum { N = 103, C = 3, S = 6, P = 10, K = 4 };

/* Constant images: channel 0 = i % 256, channel 1 = i / 256, channel 2 = 7. Crops, flips and
 * blurs keep a constant image constant, so every view still says which image it came from. */
static void make_index_set(mmcr_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    ds->n = N;
    ds->c = C;
    ds->h = 9;
    ds->w = 7;
    ds->num_classes = 10;
    const size_t plane = 9 * 7;
    ds->pixels = mmcr_alloc((size_t)N * C * plane);
    ds->labels = mmcr_alloc(N * sizeof(int32_t));
    for (int i = 0; i < N; i++) {
        ds->labels[i] = i % 10;
        memset(ds->pixels + ((size_t)i * C + 0) * plane, i % 256, plane);
        memset(ds->pixels + ((size_t)i * C + 1) * plane, i / 256, plane);
        memset(ds->pixels + ((size_t)i * C + 2) * plane, 7, plane);
    }
}

static void make_random_set(mmcr_dataset *ds, int n) {
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->c = C;
    ds->h = 11;
    ds->w = 10;
    ds->pixels = mmcr_alloc((size_t)n * C * 110);
    mmcr_rng r;
    mmcr_rng_seed(&r, 99, 0, 0, 0);
    for (size_t i = 0; i < (size_t)n * C * 110; i++) ds->pixels[i] = (uint8_t)mmcr_rng_below(&r, 256);
}

/* Decodes one view (mean 0, std 1); -1 when the view is not a constant index image. */
static int decode_view(const float *v) {
    const int plane = S * S;
    int a = (int)lrintf(v[0] * 255.0f), b = (int)lrintf(v[plane] * 255.0f);
    for (int k = 0; k < plane; k++) {
        if (fabsf(v[k] * 255.0f - a) > 1e-3f || fabsf(v[plane + k] * 255.0f - b) > 1e-3f ||
            fabsf(v[2 * plane + k] * 255.0f - 7.0f) > 1e-3f)
            return -1;
    }
    return a + 256 * b;
}

static void aug_geometric(mmcr_aug_config *a) {
    mmcr_aug_config_none(a, S);
    a->crop_p = 1.0f;
    a->flip_p = 0.5f;
    a->blur_p = 0.5f;
}

typedef struct saved_batch {
    float images[P * K * C * S * S];
    int32_t labels[P];
    uint32_t index[P];
    int n;
    long epoch, step;
} saved_batch;

static void save(saved_batch *s, const mmcr_batch *b) {
    memset(s, 0, sizeof *s);
    memcpy(s->images, b->images, (size_t)b->n * K * C * S * S * sizeof(float));
    if (b->labels) memcpy(s->labels, b->labels, (size_t)b->n * sizeof(int32_t));
    memcpy(s->index, b->index, (size_t)b->n * sizeof(uint32_t));
    s->n = b->n;
    s->epoch = b->epoch;
    s->step = b->step_in_epoch;
}

static int same_batch(const saved_batch *s, const mmcr_batch *b) {
    saved_batch t;
    save(&t, b);
    return memcmp(s, &t, sizeof t) == 0;
}

static void test_coverage_and_layout(int shuffle, int drop_last) {
    mmcr_dataset ds;
    make_index_set(&ds);
    mmcr_aug_config a;
    aug_geometric(&a);
    mmcr_loader_config cfg = {.batch = P, .views = K, .seed = 1234, .shuffle = shuffle, .drop_last = drop_last};
    mmcr_loader *l;
    mmcr_err err;
    CHECK(mmcr_loader_create(&l, &ds, &a, &cfg, &err) == MMCR_OK);
    const long bpe = mmcr_loader_batches_per_epoch(l);
    CHECK(bpe == (drop_last ? N / P : (N + P - 1) / P));
    int layout_ok = 1, labels_ok = 1, meta_ok = 1, order_ok = 1;
    uint32_t first[3][N];
    for (int e = 0; e < 3; e++) {
        int seen[N] = {0};
        int total = 0;
        for (long s = 0; s < bpe; s++) {
            const mmcr_batch *b = mmcr_loader_next(l);
            meta_ok &= b->epoch == e && b->step_in_epoch == s;
            meta_ok &= b->n == ((drop_last || s < bpe - 1) ? P : N - P * (int)(bpe - 1));
            for (int d = 0; d < b->n; d++) {
                uint32_t idx = b->index[d];
                first[e][total] = idx;
                if (idx < N) seen[idx]++;
                total++;
                labels_ok &= b->labels[d] == (int32_t)(idx % 10);
                for (int k = 0; k < K; k++) /* datum-major: views d*K .. d*K+K-1 */
                    layout_ok &= decode_view(b->images + ((size_t)d * K + k) * C * S * S) == (int)idx;
                if (!shuffle) order_ok &= idx == (uint32_t)(s * P + d);
            }
        }
        int once = 1, missing = 0;
        for (int i = 0; i < N; i++) {
            once &= seen[i] <= 1;
            missing += seen[i] == 0;
        }
        CHECK(once);
        CHECK(missing == (drop_last ? N % P : 0));
        CHECK(total == (drop_last ? N - N % P : N));
        CHECK(mmcr_loader_position(l) == (e + 1) * bpe);
    }
    CHECK(layout_ok);
    CHECK(labels_ok);
    CHECK(meta_ok);
    CHECK(order_ok);
    if (shuffle) CHECK(memcmp(first[0], first[1], sizeof first[0]) != 0); /* a new order each epoch */
    mmcr_loader_destroy(&l);
    CHECK(l == NULL);
    mmcr_dataset_free(&ds);
}

static void test_determinism_and_resume(void) {
    mmcr_dataset ds;
    make_random_set(&ds, 57);
    mmcr_aug_config a, odd;
    mmcr_aug_config_cifar(&a, S);
    a.blur_p = 0.5f;
    a.erase_p = 0.3f;
    mmcr_aug_config_cifar(&odd, S);
    odd.solarize_p = 0.5f;
    mmcr_loader_config cfg = {.batch = P, .views = K, .seed = 77, .shuffle = 1, .drop_last = 1, .workers = 1,
                              .aug_odd = &odd};
    mmcr_err err;
    mmcr_loader *l1, *l2, *l3;
    CHECK(mmcr_loader_create(&l1, &ds, &a, &cfg, &err) == MMCR_OK);
    cfg.workers = 2; /* the thread count must not matter */
    CHECK(mmcr_loader_create(&l2, &ds, &a, &cfg, &err) == MMCR_OK);
    cfg.seed = 78;
    CHECK(mmcr_loader_create(&l3, &ds, &a, &cfg, &err) == MMCR_OK);
    cfg.seed = 77;
    const long bpe = mmcr_loader_batches_per_epoch(l1);
    CHECK(bpe == 5);
    enum { T = 17 };
    static saved_batch ref[T];
    int same = 1, differ = 0, views_differ = 1, stream_ok = 1;
    for (int t = 0; t < T; t++) {
        const mmcr_batch *b1 = mmcr_loader_next(l1), *b2 = mmcr_loader_next(l2), *b3 = mmcr_loader_next(l3);
        save(&ref[t], b1);
        same &= same_batch(&ref[t], b2);
        differ += !same_batch(&ref[t], b3);
        /* The views of a datum differ, and view k is the documented stream (seed, e, i, k). */
        const size_t vf = (size_t)C * S * S;
        for (int d = 0; d < b1->n; d++) {
            views_differ &= memcmp(b1->images + d * K * vf, b1->images + (d * K + 1) * vf, vf * sizeof(float)) != 0;
            for (int k = 0; k < K; k++) {
                float want[C * S * S];
                mmcr_rng r;
                mmcr_rng_seed(&r, 77, (uint64_t)b1->epoch, b1->index[d], (uint64_t)k);
                mmcr_augment((k & 1) ? &odd : &a, &r, ds.pixels + (size_t)b1->index[d] * C * 110, C, 11, 10, want);
                stream_ok &= memcmp(want, b1->images + (d * K + k) * vf, sizeof want) == 0;
            }
        }
    }
    CHECK(same);
    CHECK(differ == T);
    CHECK(views_differ);
    CHECK(stream_ok);
    CHECK(mmcr_loader_position(l1) == T);

    /* Resume: a fresh loader moved to position 6 yields batches 6.. exactly. */
    mmcr_loader *r;
    CHECK(mmcr_loader_create(&r, &ds, &a, &cfg, &err) == MMCR_OK);
    mmcr_loader_set_position(r, 6);
    CHECK(mmcr_loader_position(r) == 6);
    int resumed = 1;
    for (int t = 6; t < T; t++) resumed &= same_batch(&ref[t], mmcr_loader_next(r));
    CHECK(resumed);
    /* Moving a running loader backwards (its read-ahead is discarded), then forwards. */
    mmcr_loader_set_position(l1, 3);
    int back = 1;
    for (int t = 3; t < 9; t++) back &= same_batch(&ref[t], mmcr_loader_next(l1));
    CHECK(back);
    mmcr_loader_set_position(l1, 14);
    CHECK(same_batch(&ref[14], mmcr_loader_next(l1)));
    CHECK(mmcr_loader_position(l1) == 15);
    /* Repeated set_position while the worker may be mid-batch. */
    for (int t = 0; t < 50; t++) mmcr_loader_set_position(r, t % 7);
    CHECK(same_batch(&ref[49 % 7], mmcr_loader_next(r)));

    mmcr_loader_destroy(&l1);
    mmcr_loader_destroy(&l2);
    mmcr_loader_destroy(&l3);
    mmcr_loader_destroy(&r);
    mmcr_loader_destroy(&r); /* NULL: no-op */
    mmcr_dataset_free(&ds);
}

static void test_lifecycle_and_errors(void) {
    mmcr_dataset ds;
    make_random_set(&ds, 40);
    mmcr_aug_config a;
    mmcr_aug_config_cifar(&a, 8);
    mmcr_loader_config cfg = {.batch = 8, .views = 3, .seed = 5, .shuffle = 1, .drop_last = 0, .workers = 2};
    mmcr_err err;
    mmcr_loader *l;
    /* Destroy right after create, and mid-epoch with the read-ahead running. */
    for (int i = 0; i < 20; i++) {
        CHECK(mmcr_loader_create(&l, &ds, &a, &cfg, &err) == MMCR_OK);
        for (int j = 0; j < i % 4; j++) mmcr_loader_next(l);
        mmcr_loader_destroy(&l);
    }
    /* Unlabelled data: labels NULL; bigger than needed batch without drop_last: one short batch. */
    cfg.batch = 64;
    CHECK(mmcr_loader_create(&l, &ds, &a, &cfg, &err) == MMCR_OK);
    CHECK(mmcr_loader_batches_per_epoch(l) == 1);
    const mmcr_batch *b = mmcr_loader_next(l);
    CHECK(b->n == 40 && b->labels == NULL);
    mmcr_loader_destroy(&l);
    /* ... but with drop_last there is no batch at all. */
    cfg.drop_last = 1;
    CHECK(mmcr_loader_create(&l, &ds, &a, &cfg, &err) == MMCR_ERR_ARG && l == NULL);
    cfg.drop_last = 0;
    cfg.views = 0;
    CHECK(mmcr_loader_create(&l, &ds, &a, &cfg, &err) == MMCR_ERR_ARG);
    cfg.views = 2;
    a.flip_p = -0.1f;
    CHECK(mmcr_loader_create(&l, &ds, &a, &cfg, &err) == MMCR_ERR_ARG && strstr(err.msg, "flip_p"));
    a.flip_p = 0.5f;
    mmcr_aug_config odd = a;
    odd.out_size = 9;
    cfg.aug_odd = &odd;
    CHECK(mmcr_loader_create(&l, &ds, &a, &cfg, &err) == MMCR_ERR_ARG);
    mmcr_dataset_free(&ds);
}

int main(void) {
    test_coverage_and_layout(1, 0);
    test_coverage_and_layout(1, 1);
    test_coverage_and_layout(0, 0);
    test_determinism_and_resume();
    test_lifecycle_and_errors();
    return test_finish("test_loader");
}
