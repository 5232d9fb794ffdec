/* Read-ahead batch loader: one background thread fills a batch slot while the caller trains on
 * the other (double buffering).
 *
 * Batch b (counted from 0 across epochs) is fully determined by (seed, b): epoch e = b / bpe,
 * the epoch's order is the identity or, when shuffling, a Fisher-Yates permutation drawn from
 * the stream (seed, e, 2^64-1, 2^64-1); view k of dataset image i in epoch e draws from the
 * stream (seed, e, i, k). Nothing depends on timing or on the number of worker threads, so a
 * loader moved with set_position yields exactly the batches an uninterrupted one would. */
#include "mmcr/data.h"

#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_EMPTY, SLOT_FILLING, SLOT_READY, SLOT_HELD };

typedef struct loader_slot {
    mmcr_batch b;
    int state;
    long pos;
} loader_slot;

struct mmcr_loader {
    const mmcr_dataset *ds;
    mmcr_aug_config aug, aug_odd;
    int has_odd;
    mmcr_loader_config cfg;
    int workers;
    long bpe;
    size_t view_floats; /* c * S * S */

    loader_slot slots[2];
    void **work; /* one augmentation workspace per worker thread */
    uint32_t *perm;
    long perm_epoch; /* epoch perm belongs to; only the worker touches perm */

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long deliver_pos; /* next batch handed to the caller */
    long produce_pos; /* next batch the worker starts */
    _Atomic long generation; /* bumped by set_position: fills of an older generation are dropped */
    _Atomic int quit;
};

#define PERM_STREAM UINT64_MAX

static void build_perm(mmcr_loader *l, long epoch) {
    const int n = l->ds->n;
    for (int i = 0; i < n; i++) l->perm[i] = (uint32_t)i;
    if (l->cfg.shuffle) {
        mmcr_rng r;
        mmcr_rng_seed(&r, l->cfg.seed, (uint64_t)epoch, PERM_STREAM, PERM_STREAM);
        mmcr_rng_shuffle_u32(&r, l->perm, (size_t)n);
    }
    l->perm_epoch = epoch;
}

/* Fills slot with batch pos. Returns 0 when abandoned (set_position or destroy meanwhile). */
static int fill_batch(mmcr_loader *l, loader_slot *slot, long pos, long gen) {
    const mmcr_dataset *ds = l->ds;
    const long epoch = pos / l->bpe, step = pos % l->bpe;
    if (l->perm_epoch != epoch) build_perm(l, epoch);
    const int P = l->cfg.batch, K = l->cfg.views;
    const long start = step * P;
    const int n = (int)((long)ds->n - start < P ? (long)ds->n - start : P);
    MMCR_ASSERT(n >= 1);
    mmcr_batch *b = &slot->b;
    for (int d = 0; d < n; d++) {
        uint32_t idx = l->perm[start + d];
        b->index[d] = idx;
        if (b->labels) b->labels[d] = ds->labels[idx];
    }
    b->n = n;
    b->epoch = epoch;
    b->step_in_epoch = step;

    const size_t img = (size_t)ds->c * ds->h * ds->w;
    const int views = n * K;
    const int nw = l->workers;
    _Atomic int abandoned = 0;
#pragma omp parallel for num_threads(nw) if (nw > 1) schedule(dynamic, 2)
    for (int v = 0; v < views; v++) {
        if (atomic_load_explicit(&abandoned, memory_order_relaxed)) continue;
        if (atomic_load(&l->quit) || atomic_load(&l->generation) != gen) {
            atomic_store(&abandoned, 1);
            continue;
        }
        const int d = v / K, k = v % K;
        const uint32_t idx = b->index[d];
        mmcr_rng r;
        mmcr_rng_seed(&r, l->cfg.seed, (uint64_t)epoch, idx, (uint64_t)k);
        const mmcr_aug_config *a = (l->has_odd && (k & 1)) ? &l->aug_odd : &l->aug;
        mmcr_augment_ws(a, &r, ds->pixels + (size_t)idx * img, ds->c, ds->h, ds->w,
                        b->images + (size_t)v * l->view_floats, l->work[nw > 1 ? omp_get_thread_num() : 0]);
    }
    return !atomic_load(&abandoned);
}

static void *worker_main(void *arg) {
    mmcr_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        loader_slot *slot = NULL;
        while (!atomic_load(&l->quit)) {
            for (int i = 0; i < 2 && !slot; i++)
                if (l->slots[i].state == SLOT_EMPTY) slot = &l->slots[i];
            if (slot) break;
            pthread_cond_wait(&l->cv, &l->mu);
        }
        if (atomic_load(&l->quit)) break;
        const long pos = l->produce_pos++;
        const long gen = atomic_load(&l->generation);
        slot->state = SLOT_FILLING;
        pthread_mutex_unlock(&l->mu);

        int ok = fill_batch(l, slot, pos, gen);

        pthread_mutex_lock(&l->mu);
        if (ok && gen == atomic_load(&l->generation)) {
            slot->pos = pos;
            slot->state = SLOT_READY;
        } else {
            slot->state = SLOT_EMPTY;
        }
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void loader_free(mmcr_loader *l) {
    for (int i = 0; i < 2; i++) {
        mmcr_free(l->slots[i].b.images);
        mmcr_free(l->slots[i].b.labels);
        mmcr_free(l->slots[i].b.index);
    }
    if (l->work)
        for (int i = 0; i < l->workers; i++) mmcr_free(l->work[i]);
    free(l->work);
    mmcr_free(l->perm);
    free(l);
}

mmcr_status mmcr_loader_create(mmcr_loader **out, const mmcr_dataset *ds, const mmcr_aug_config *aug,
                               const mmcr_loader_config *cfg, mmcr_err *err) {
    *out = NULL;
    if (!ds || ds->n < 1 || !ds->pixels || ds->h < 1 || ds->w < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "loader: the data set is empty");
    if (cfg->batch < 1 || cfg->views < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "loader: batch (%d) and views (%d) must be >= 1", cfg->batch,
                            cfg->views);
    mmcr_status st = mmcr_aug_config_check(aug, ds->c, err);
    if (!st && cfg->aug_odd) st = mmcr_aug_config_check(cfg->aug_odd, ds->c, err);
    if (st) return st;
    if (cfg->aug_odd && cfg->aug_odd->out_size != aug->out_size)
        return mmcr_err_set(err, MMCR_ERR_ARG, "loader: the odd-view transform has output size %d, not %d",
                            cfg->aug_odd->out_size, aug->out_size);
    const long bpe = cfg->drop_last ? ds->n / cfg->batch : (ds->n + cfg->batch - 1) / cfg->batch;
    if (bpe < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "loader: %d images give no full batch of %d (drop_last)", ds->n,
                            cfg->batch);

    mmcr_loader *l = calloc(1, sizeof *l);
    if (!l) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory creating the loader");
    l->ds = ds;
    l->aug = *aug;
    l->cfg = *cfg;
    l->cfg.aug_odd = NULL; /* the copy below is what counts */
    if (cfg->aug_odd) {
        l->aug_odd = *cfg->aug_odd;
        l->has_odd = 1;
    }
    l->workers = cfg->workers < 1 ? 1 : (cfg->workers > 256 ? 256 : cfg->workers);
    l->bpe = bpe;
    l->perm_epoch = -1;
    const int S = aug->out_size;
    l->view_floats = (size_t)ds->c * S * S;
    const size_t per_batch = (size_t)cfg->batch * cfg->views;
    if (per_batch > SIZE_MAX / sizeof(float) / l->view_floats) {
        free(l);
        return mmcr_err_set(err, MMCR_ERR_ARG, "loader: batch %d x %d views of %d x %d x %d floats is too large",
                            cfg->batch, cfg->views, ds->c, S, S);
    }
    st = MMCR_OK;
    for (int i = 0; i < 2 && !st; i++) {
        mmcr_batch *b = &l->slots[i].b;
        b->images = mmcr_alloc_or_err(per_batch * l->view_floats * sizeof(float), err, "loader batch");
        b->index = mmcr_alloc_or_err((size_t)cfg->batch * sizeof *b->index, err, "loader batch indices");
        if (ds->labels) b->labels = mmcr_alloc_or_err((size_t)cfg->batch * sizeof *b->labels, err, "loader labels");
        if (!b->images || !b->index || (ds->labels && !b->labels)) st = MMCR_ERR_NOMEM;
        l->slots[i].state = SLOT_EMPTY;
        l->slots[i].pos = -1;
    }
    size_t wsb = mmcr_aug_workspace_bytes(&l->aug, ds->c, ds->h, ds->w);
    if (l->has_odd) {
        size_t w2 = mmcr_aug_workspace_bytes(&l->aug_odd, ds->c, ds->h, ds->w);
        if (w2 > wsb) wsb = w2;
    }
    if (!st) {
        l->work = calloc((size_t)l->workers, sizeof *l->work);
        if (!l->work) st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory creating the loader");
        for (int i = 0; !st && i < l->workers; i++)
            if (!(l->work[i] = mmcr_alloc_or_err(wsb, err, "augmentation workspace"))) st = MMCR_ERR_NOMEM;
    }
    if (!st && !(l->perm = mmcr_alloc_or_err((size_t)ds->n * sizeof *l->perm, err, "loader permutation")))
        st = MMCR_ERR_NOMEM;
    if (st) {
        loader_free(l);
        return st;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    atomic_init(&l->generation, 0);
    atomic_init(&l->quit, 0);
    int rc = pthread_create(&l->thread, NULL, worker_main, l);
    if (rc != 0) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        loader_free(l);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "cannot start the loader thread: %s", strerror(rc));
    }
    l->thread_started = 1;
    *out = l;
    return MMCR_OK;
}

const mmcr_batch *mmcr_loader_next(mmcr_loader *l) {
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < 2; i++)
        if (l->slots[i].state == SLOT_HELD) l->slots[i].state = SLOT_EMPTY;
    pthread_cond_broadcast(&l->cv);
    loader_slot *got = NULL;
    for (;;) {
        for (int i = 0; i < 2 && !got; i++)
            if (l->slots[i].state == SLOT_READY && l->slots[i].pos == l->deliver_pos) got = &l->slots[i];
        if (got) break;
        pthread_cond_wait(&l->cv, &l->mu);
    }
    got->state = SLOT_HELD;
    l->deliver_pos++;
    pthread_mutex_unlock(&l->mu);
    return &got->b;
}

long mmcr_loader_position(const mmcr_loader *l) { return l->deliver_pos; }

void mmcr_loader_set_position(mmcr_loader *l, long batches_done) {
    MMCR_ASSERT(batches_done >= 0);
    pthread_mutex_lock(&l->mu);
    atomic_fetch_add(&l->generation, 1);
    l->deliver_pos = l->produce_pos = batches_done;
    for (int i = 0; i < 2; i++)
        if (l->slots[i].state == SLOT_READY || l->slots[i].state == SLOT_HELD) l->slots[i].state = SLOT_EMPTY;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

long mmcr_loader_batches_per_epoch(const mmcr_loader *l) { return l->bpe; }

void mmcr_loader_destroy(mmcr_loader **lp) {
    if (!lp || !*lp) return;
    mmcr_loader *l = *lp;
    if (l->thread_started) {
        pthread_mutex_lock(&l->mu);
        atomic_store(&l->quit, 1);
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
    }
    loader_free(l);
    *lp = NULL;
}
