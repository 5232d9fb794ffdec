/* 2-D convolution through oneDNN (the CPU kernel library PyTorch uses), for the model's
 * encoder. Measured on the demo step's layer shapes (16-128 channels, 20x20 down to 3x3):
 * oneDNN's direct JIT kernels run forward + both backward passes about 3x faster than
 * im2col + OpenBLAS sgemm, whose packing and 9x lowering copies dominate at these sizes
 * (docs/performance.md).
 *
 * The caller's activations are either CNHW planes (oneDNN tag "bacd": logical N,C,H,W stored
 * C-major) or, when every channel count is a multiple of the block B, the blocked layout the
 * kernels themselves choose ("aBcd16b" for the AVX-512 kernels, "aBcd8b" for the AVX2 ones; the
 * context asks oneDNN which), so that the model's activations never leave it and no reorder runs
 * between layers (the reorders cost about a quarter of the conv time in the demo step, and a
 * 16-to-8 reorder around every layer a fifth of the step on an AVX2 machine). Whatever differs
 * from the kernel's choice is reordered. All such copies live in per-context scratch slots
 * shared by every layer; each layer keeps a small cache of primitives keyed by batch size
 * and thread count, built on first use of that pair (the training step reuses one entry, so the
 * step itself allocates nothing after the first). Weight gradients and accumulated input
 * gradients go through a reorder with a "sum" post-op, which adds instead of overwriting.
 *
 * When the primitives for a shape cannot be built (no kernel, out of memory) the call returns -1
 * before touching any output and the caller uses the im2col path for that call. */
#include "nn/nn_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#ifdef MMCR_HAVE_ONEDNN

#include <oneapi/dnnl/dnnl.h>

enum { SLOT_SRC, SLOT_DST, SLOT_DST2, SLOT_DSRC, SLOT_W, SLOT_DW, SLOT_PAD, NSLOTS };

#define CACHE_ENTRIES 4

struct nn_dnnl {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    void *slot[NSLOTS];
    size_t slot_bytes[NSLOTS];
    int blk; /* the kernels' activation block (16, 8) or 0 */
};

/* A primitive with its user-mode scratchpad (NULL when it needs none). */
typedef struct prim {
    dnnl_primitive_t p;
    dnnl_memory_t pad;
} prim;

/* One side of a kernel argument: the memory in the kernel's layout (handle set per call) and
 * the reorder between it and the user's plain buffer; reorder.p NULL means same layout. */
typedef struct port {
    dnnl_memory_t mem;
    prim reorder;
    prim reorder_sum; /* out-ports that may accumulate: kernel layout -> user, adding */
    int slot;
} port;

typedef struct entry {
    int n, threads;
    unsigned long used;
    dnnl_memory_t u_src, u_dst, u_w, u_dsrc, u_ddst, u_dw; /* user buffers, handles set per call */
    prim fwd, bwd_data, bwd_w;
    port f_src, f_w, f_dst;        /* forward */
    port d_ddst, d_w, d_dsrc;      /* backward data */
    port w_src, w_ddst, w_dw;      /* backward weights */
} entry;

struct nn_dnnl_conv {
    nn_dnnl *ctx;
    mmcr_conv2d_desc d;
    int h, w, ho, wo;
    int src_blk, dst_blk; /* the caller's layouts: blocked with this block, or 0: CNHW */
    unsigned long clock;
    entry e[CACHE_ENTRIES];
};

#define TRY(x)                                                                                                 \
    do {                                                                                                       \
        if ((x) != dnnl_success) goto fail;                                                                    \
    } while (0)

/* Which blocked activation layout do the forward kernels pick for a typical layer (32 -> 32
 * channels, 3x3, 8x8)? 16 on AVX-512 machines, 8 on AVX2 ones; 0 when neither. */
static int probe_block(dnnl_engine_t engine) {
    dnnl_dims_t sdims = {2, 32, 8, 8}, wdims = {32, 32, 3, 3}, strides = {1, 1}, pad = {1, 1};
    dnnl_memory_desc_t s_any, w_any, d_any, b16, b8;
    dnnl_convolution_desc_t fd;
    dnnl_primitive_desc_t pd = NULL;
    int blk = 0;
    if (dnnl_memory_desc_init_by_tag(&s_any, 4, sdims, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&w_any, 4, wdims, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&d_any, 4, sdims, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&b16, 4, sdims, dnnl_f32, dnnl_aBcd16b) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&b8, 4, sdims, dnnl_f32, dnnl_aBcd8b) != dnnl_success ||
        dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &s_any, &w_any,
                                           NULL, &d_any, strides, pad, pad) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &fd, NULL, engine, NULL) != dnnl_success)
        return 0;
    const dnnl_memory_desc_t *src = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    if (src && dnnl_memory_desc_equal(src, &b16))
        blk = 16;
    else if (src && dnnl_memory_desc_equal(src, &b8))
        blk = 8;
    dnnl_primitive_desc_destroy(pd);
    return blk;
}

nn_dnnl *nn_dnnl_create(void) {
    nn_dnnl *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (dnnl_engine_create(&c->engine, dnnl_cpu, 0) != dnnl_success) {
        free(c);
        return NULL;
    }
    if (dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(c->engine);
        free(c);
        return NULL;
    }
    c->blk = probe_block(c->engine);
    return c;
}

int nn_dnnl_block(const nn_dnnl *c) { return c ? c->blk : 0; }

void nn_dnnl_destroy(nn_dnnl *c) {
    if (!c) return;
    for (int i = 0; i < NSLOTS; i++) mmcr_free(c->slot[i]);
    dnnl_stream_destroy(c->stream);
    dnnl_engine_destroy(c->engine);
    free(c);
}

/* Grows a scratch slot (only while building primitives, never inside a call that computes). */
static int slot_reserve(nn_dnnl *c, int s, size_t bytes) {
    if (bytes <= c->slot_bytes[s]) return 0;
    void *p = mmcr_alloc(bytes);
    if (!p) return -1;
    mmcr_free(c->slot[s]);
    c->slot[s] = p;
    c->slot_bytes[s] = bytes;
    return 0;
}

static void prim_destroy(prim *p) {
    if (p->p) dnnl_primitive_destroy(p->p);
    if (p->pad) dnnl_memory_destroy(p->pad);
    p->p = NULL;
    p->pad = NULL;
}

/* Makes the primitive and its scratchpad memory (the scratchpad is user-managed: slot SLOT_PAD). */
static int prim_make(nn_dnnl *c, prim *out, const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (bytes) {
        if (slot_reserve(c, SLOT_PAD, bytes)) return -1;
        if (dnnl_memory_create(&out->pad, smd, c->engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
    }
    if (dnnl_primitive_create(&out->p, pd) != dnnl_success) return -1;
    return 0;
}

static dnnl_primitive_attr_t attr_new(int sum) {
    dnnl_primitive_attr_t a = NULL;
    if (dnnl_primitive_attr_create(&a) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user) != dnnl_success) goto fail;
    if (sum) {
        dnnl_post_ops_t po = NULL;
        if (dnnl_post_ops_create(&po) != dnnl_success) goto fail;
        dnnl_status_t s1 = dnnl_post_ops_append_sum(po, 1.0f);
        dnnl_status_t s2 = s1 == dnnl_success ? dnnl_primitive_attr_set_post_ops(a, po) : s1;
        dnnl_post_ops_destroy(po);
        if (s2 != dnnl_success) goto fail;
    }
    return a;
fail:
    dnnl_primitive_attr_destroy(a);
    return NULL;
}

static int reorder_make(nn_dnnl *c, prim *out, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                        int sum) {
    dnnl_primitive_attr_t a = attr_new(sum);
    if (!a) return -1;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, from, c->engine, to, c->engine, a);
    dnnl_primitive_attr_destroy(a);
    if (s != dnnl_success) return -1;
    int r = prim_make(c, out, pd);
    dnnl_primitive_desc_destroy(pd);
    return r;
}

/* Port for a kernel argument of layout kmd whose user buffer has layout umd. in: user -> kernel.
 * always_mem: keep a kernel-layout memory even when the layouts agree (accumulating outputs). */
static int port_make(nn_dnnl *c, port *pt, const dnnl_memory_desc_t *kmd, const dnnl_memory_desc_t *umd, int in,
                     int slot, int accumulating) {
    memset(pt, 0, sizeof *pt);
    pt->slot = slot;
    const int same = dnnl_memory_desc_equal(kmd, umd);
    if (same && !accumulating) return 0;
    if (slot_reserve(c, slot, dnnl_memory_desc_get_size(kmd))) return -1;
    if (dnnl_memory_create(&pt->mem, kmd, c->engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
    if (!same && (in ? reorder_make(c, &pt->reorder, umd, kmd, 0) : reorder_make(c, &pt->reorder, kmd, umd, 0)))
        return -1;
    if (accumulating && reorder_make(c, &pt->reorder_sum, kmd, umd, 1)) return -1;
    return 0;
}

static void port_destroy(port *pt) {
    prim_destroy(&pt->reorder);
    prim_destroy(&pt->reorder_sum);
    if (pt->mem) dnnl_memory_destroy(pt->mem);
    pt->mem = NULL;
}

static void entry_destroy(entry *e) {
    prim_destroy(&e->fwd);
    prim_destroy(&e->bwd_data);
    prim_destroy(&e->bwd_w);
    port *ports[] = {&e->f_src, &e->f_w, &e->f_dst, &e->d_ddst, &e->d_w, &e->d_dsrc, &e->w_src, &e->w_ddst, &e->w_dw};
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) port_destroy(ports[i]);
    dnnl_memory_t *us[] = {&e->u_src, &e->u_dst, &e->u_w, &e->u_dsrc, &e->u_ddst, &e->u_dw};
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++)
        if (*us[i]) dnnl_memory_destroy(*us[i]);
    memset(e, 0, sizeof *e);
}

static const dnnl_memory_desc_t *md(const_dnnl_primitive_desc_t pd, dnnl_query_t q) {
    return dnnl_primitive_desc_query_md(pd, q, 0);
}

static dnnl_format_tag_t user_tag(int blk) {
    return blk == 16 ? dnnl_aBcd16b : blk == 8 ? dnnl_aBcd8b : dnnl_bacd;
}

static int entry_build(nn_dnnl_conv *cv, entry *e, int n, int threads) {
    nn_dnnl *c = cv->ctx;
    const mmcr_conv2d_desc *d = &cv->d;
    dnnl_primitive_desc_t fwd_pd = NULL, bd_pd = NULL, bw_pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    memset(e, 0, sizeof *e);
    dnnl_dims_t sdims = {n, d->cin, cv->h, cv->w}, wdims = {d->cout, d->cin, d->k, d->k};
    dnnl_dims_t ddims = {n, d->cout, cv->ho, cv->wo}, strides = {d->stride, d->stride};
    dnnl_dims_t pl = {d->pad, d->pad}, pr = {d->pad, d->pad};
    dnnl_memory_desc_t s_any, w_any, d_any, s_user, w_user, d_user;
    TRY(dnnl_memory_desc_init_by_tag(&s_any, 4, sdims, dnnl_f32, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&w_any, 4, wdims, dnnl_f32, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&d_any, 4, ddims, dnnl_f32, dnnl_format_tag_any));
    /* bacd = CNHW; aBcd16b / aBcd8b = (N, C/B, H, W, B); abcd = OIHW weights. */
    TRY(dnnl_memory_desc_init_by_tag(&s_user, 4, sdims, dnnl_f32, user_tag(cv->src_blk)));
    TRY(dnnl_memory_desc_init_by_tag(&w_user, 4, wdims, dnnl_f32, dnnl_abcd));
    TRY(dnnl_memory_desc_init_by_tag(&d_user, 4, ddims, dnnl_f32, user_tag(cv->dst_blk)));

    dnnl_convolution_desc_t fd, bdd, bwd;
    attr = attr_new(0);
    if (!attr) goto fail;
    TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &s_any, &w_any,
                                           NULL, &d_any, strides, pl, pr));
    TRY(dnnl_primitive_desc_create(&fwd_pd, &fd, attr, c->engine, NULL));
    TRY(dnnl_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &s_any, &w_any, &d_any, strides,
                                                 pl, pr));
    TRY(dnnl_primitive_desc_create(&bd_pd, &bdd, attr, c->engine, fwd_pd));
    TRY(dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &s_any, &w_any, NULL, &d_any,
                                                    strides, pl, pr));
    TRY(dnnl_primitive_desc_create(&bw_pd, &bwd, attr, c->engine, fwd_pd));

    TRY(dnnl_memory_create(&e->u_src, &s_user, c->engine, DNNL_MEMORY_NONE));
    TRY(dnnl_memory_create(&e->u_dsrc, &s_user, c->engine, DNNL_MEMORY_NONE));
    TRY(dnnl_memory_create(&e->u_dst, &d_user, c->engine, DNNL_MEMORY_NONE));
    TRY(dnnl_memory_create(&e->u_ddst, &d_user, c->engine, DNNL_MEMORY_NONE));
    TRY(dnnl_memory_create(&e->u_w, &w_user, c->engine, DNNL_MEMORY_NONE));
    TRY(dnnl_memory_create(&e->u_dw, &w_user, c->engine, DNNL_MEMORY_NONE));

    if (prim_make(c, &e->fwd, fwd_pd) || prim_make(c, &e->bwd_data, bd_pd) || prim_make(c, &e->bwd_w, bw_pd))
        goto fail;
    if (port_make(c, &e->f_src, md(fwd_pd, dnnl_query_src_md), &s_user, 1, SLOT_SRC, 0) ||
        port_make(c, &e->f_w, md(fwd_pd, dnnl_query_weights_md), &w_user, 1, SLOT_W, 0) ||
        port_make(c, &e->f_dst, md(fwd_pd, dnnl_query_dst_md), &d_user, 0, SLOT_DST, 0) ||
        port_make(c, &e->d_ddst, md(bd_pd, dnnl_query_diff_dst_md), &d_user, 1, SLOT_DST, 0) ||
        port_make(c, &e->d_w, md(bd_pd, dnnl_query_weights_md), &w_user, 1, SLOT_W, 0) ||
        port_make(c, &e->d_dsrc, md(bd_pd, dnnl_query_diff_src_md), &s_user, 0, SLOT_DSRC, 1) ||
        port_make(c, &e->w_src, md(bw_pd, dnnl_query_src_md), &s_user, 1, SLOT_SRC, 0) ||
        port_make(c, &e->w_dw, md(bw_pd, dnnl_query_diff_weights_md), &w_user, 0, SLOT_DW, 1))
        goto fail;
    /* Backward weights may want diff_dst in another layout than backward data: a second slot. */
    if (dnnl_memory_desc_equal(md(bw_pd, dnnl_query_diff_dst_md), md(bd_pd, dnnl_query_diff_dst_md))) {
        memset(&e->w_ddst, 0, sizeof e->w_ddst);
        e->w_ddst.slot = -1; /* share d_ddst */
    } else if (port_make(c, &e->w_ddst, md(bw_pd, dnnl_query_diff_dst_md), &d_user, 1, SLOT_DST2, 0)) {
        goto fail;
    }
    e->n = n;
    e->threads = threads;
    dnnl_primitive_desc_destroy(fwd_pd);
    dnnl_primitive_desc_destroy(bd_pd);
    dnnl_primitive_desc_destroy(bw_pd);
    dnnl_primitive_attr_destroy(attr);
    return 0;
fail:
    if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
    if (bd_pd) dnnl_primitive_desc_destroy(bd_pd);
    if (bw_pd) dnnl_primitive_desc_destroy(bw_pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    entry_destroy(e);
    return -1;
}

nn_dnnl_conv *nn_dnnl_conv_create(nn_dnnl *ctx, const mmcr_conv2d_desc *d, int h, int w, int src_blk,
                                  int dst_blk) {
    if (!ctx) return NULL;
    if ((src_blk && src_blk != 8 && src_blk != 16) || (dst_blk && dst_blk != 8 && dst_blk != 16)) return NULL;
    if ((src_blk && d->cin % src_blk) || (dst_blk && d->cout % dst_blk)) return NULL;
    nn_dnnl_conv *cv = calloc(1, sizeof *cv);
    if (!cv) return NULL;
    cv->src_blk = src_blk;
    cv->dst_blk = dst_blk;
    cv->ctx = ctx;
    cv->d = *d;
    cv->h = h;
    cv->w = w;
    cv->ho = mmcr_conv_out(h, d->k, d->stride, d->pad);
    cv->wo = mmcr_conv_out(w, d->k, d->stride, d->pad);
    return cv;
}

void nn_dnnl_conv_destroy(nn_dnnl_conv *cv) {
    if (!cv) return;
    for (int i = 0; i < CACHE_ENTRIES; i++) entry_destroy(&cv->e[i]);
    free(cv);
}

/* The cache entry for batch n at the current thread count (oneDNN kernels partition work for
 * the thread count they were built with); builds it, evicting the least recently used. */
static entry *entry_get(nn_dnnl_conv *cv, int n) {
    const int threads = omp_get_max_threads();
    entry *victim = &cv->e[0];
    for (int i = 0; i < CACHE_ENTRIES; i++) {
        entry *e = &cv->e[i];
        if (e->n == n && e->threads == threads) {
            e->used = ++cv->clock;
            return e;
        }
        if (e->n == 0 || (victim->n != 0 && e->used < victim->used)) victim = e;
    }
    entry_destroy(victim);
    if (entry_build(cv, victim, n, threads)) return NULL;
    victim->used = ++cv->clock;
    return victim;
}

int nn_dnnl_conv_prepare(nn_dnnl_conv *cv, int n) { return entry_get(cv, n) ? 0 : -1; }

static int exec(nn_dnnl *c, const prim *p, int nargs, dnnl_exec_arg_t *args) {
    dnnl_exec_arg_t all[8];
    for (int i = 0; i < nargs; i++) all[i] = args[i];
    if (p->pad) {
        if (dnnl_memory_set_data_handle(p->pad, c->slot[SLOT_PAD]) != dnnl_success) return -1;
        all[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->pad};
    }
    return dnnl_primitive_execute(p->p, c->stream, nargs, all) == dnnl_success ? 0 : -1;
}

static int set(dnnl_memory_t m, const void *p) {
    return dnnl_memory_set_data_handle(m, (void *)p) == dnnl_success ? 0 : -1;
}

/* In-port: the memory the kernel reads (the user's own when the layouts agree). */
static dnnl_memory_t port_in(nn_dnnl *c, const port *pt, dnnl_memory_t user, int *err) {
    if (!pt->reorder.p) return user;
    if (set(pt->mem, c->slot[pt->slot])) *err = 1;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, pt->mem}};
    if (!*err && exec(c, &pt->reorder, 2, a)) *err = 1;
    return pt->mem;
}

/* Out-port: the memory the kernel writes; port_out_finish moves it to the user's buffer. */
static dnnl_memory_t port_out(nn_dnnl *c, const port *pt, dnnl_memory_t user, int accumulate, int *err) {
    if (!pt->reorder.p && !accumulate) return user;
    if (set(pt->mem, c->slot[pt->slot])) *err = 1;
    return pt->mem;
}

static void port_out_finish(nn_dnnl *c, const port *pt, dnnl_memory_t user, int accumulate, int *err) {
    const prim *r = accumulate ? &pt->reorder_sum : &pt->reorder;
    if (*err || !r->p) return;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, pt->mem}, {DNNL_ARG_TO, user}};
    if (exec(c, r, 2, a)) *err = 1;
}

int nn_dnnl_conv_forward(nn_dnnl_conv *cv, float *y, const float *x, const float *wt, int n) {
    entry *e = entry_get(cv, n);
    if (!e) return -1;
    nn_dnnl *c = cv->ctx;
    int err = set(e->u_src, x) || set(e->u_w, wt) || set(e->u_dst, y);
    dnnl_memory_t src = port_in(c, &e->f_src, e->u_src, &err);
    dnnl_memory_t w = port_in(c, &e->f_w, e->u_w, &err);
    dnnl_memory_t dst = port_out(c, &e->f_dst, e->u_dst, 0, &err);
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}};
    if (!err && exec(c, &e->fwd, 3, a)) err = 1;
    port_out_finish(c, &e->f_dst, e->u_dst, 0, &err);
    if (dnnl_stream_wait(c->stream) != dnnl_success) err = 1;
    /* The primitives were built for exactly these shapes: failing now is a broken invariant. */
    MMCR_ASSERT(!err);
    return 0;
}

int nn_dnnl_conv_backward(nn_dnnl_conv *cv, float *dx, float *dwt, const float *dy, const float *x,
                          const float *wt, int n, int accumulate_dx) {
    entry *e = entry_get(cv, n);
    if (!e) return -1;
    nn_dnnl *c = cv->ctx;
    int err = set(e->u_src, x) || set(e->u_ddst, dy) || set(e->u_w, wt) || set(e->u_dw, dwt);
    if (dx && set(e->u_dsrc, dx)) err = 1;
    /* diff_dst once for both kernels when they agree on its layout. */
    dnnl_memory_t ddst = port_in(c, &e->d_ddst, e->u_ddst, &err);
    dnnl_memory_t ddst_w = e->w_ddst.slot < 0 ? ddst : port_in(c, &e->w_ddst, e->u_ddst, &err);
    /* Weights gradient: into scratch, then added to dwt. */
    dnnl_memory_t src = port_in(c, &e->w_src, e->u_src, &err);
    dnnl_memory_t dw = port_out(c, &e->w_dw, e->u_dw, 1, &err);
    dnnl_exec_arg_t aw[3] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst_w}, {DNNL_ARG_DIFF_WEIGHTS, dw}};
    if (!err && exec(c, &e->bwd_w, 3, aw)) err = 1;
    port_out_finish(c, &e->w_dw, e->u_dw, 1, &err);
    if (dx) {
        dnnl_memory_t w = port_in(c, &e->d_w, e->u_w, &err);
        dnnl_memory_t dsrc = port_out(c, &e->d_dsrc, e->u_dsrc, accumulate_dx, &err);
        dnnl_exec_arg_t ad[3] = {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dsrc}};
        if (!err && exec(c, &e->bwd_data, 3, ad)) err = 1;
        port_out_finish(c, &e->d_dsrc, e->u_dsrc, accumulate_dx, &err);
    }
    if (dnnl_stream_wait(c->stream) != dnnl_success) err = 1;
    MMCR_ASSERT(!err);
    return 0;
}

int nn_dnnl_available(void) { return 1; }

#else /* built without oneDNN: every call falls back to im2col + GEMM */

struct nn_dnnl {
    int unused;
};
struct nn_dnnl_conv {
    int unused;
};
nn_dnnl *nn_dnnl_create(void) { return NULL; }
void nn_dnnl_destroy(nn_dnnl *c) { (void)c; }
int nn_dnnl_block(const nn_dnnl *c) {
    (void)c;
    return 0;
}
nn_dnnl_conv *nn_dnnl_conv_create(nn_dnnl *ctx, const mmcr_conv2d_desc *d, int h, int w, int src_blk,
                                  int dst_blk) {
    (void)ctx, (void)d, (void)h, (void)w, (void)src_blk, (void)dst_blk;
    return NULL;
}
int nn_dnnl_conv_prepare(nn_dnnl_conv *cv, int n) {
    (void)cv, (void)n;
    return -1;
}
void nn_dnnl_conv_destroy(nn_dnnl_conv *cv) { (void)cv; }
int nn_dnnl_conv_forward(nn_dnnl_conv *cv, float *y, const float *x, const float *wt, int n) {
    (void)cv, (void)y, (void)x, (void)wt, (void)n;
    return -1;
}
int nn_dnnl_conv_backward(nn_dnnl_conv *cv, float *dx, float *dwt, const float *dy, const float *x,
                          const float *wt, int n, int accumulate_dx) {
    (void)cv, (void)dx, (void)dwt, (void)dy, (void)x, (void)wt, (void)n, (void)accumulate_dx;
    return -1;
}
int nn_dnnl_available(void) { return 0; }

#endif
