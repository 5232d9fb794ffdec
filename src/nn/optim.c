/* SGD, LARS (Barlow Twins / original MMCR form), Adam and AdamW over one flat parameter buffer,
 * with torch.optim's update order (docs/semantics.md). Per-element arithmetic is float32 with
 * the scalar hyper-parameters rounded to float, as torch does for float tensors. */
#include "mmcr/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LARS norms are summed over fixed chunks, then the chunk sums in order: the result does not
 * depend on the number of threads. */
#define LARS_CHUNK 16384
/* Below this many elements a loop runs on one thread (fork/join would cost more). */
#define OMP_MIN 32768

typedef struct lars_chunk {
    int tensor;
    size_t start, len;
} lars_chunk;

struct mmcr_optim {
    mmcr_optim_config cfg;
    size_t n;
    long step;
    size_t nstate;
    float *state;
    /* LARS */
    int ntensors;
    mmcr_tensor_info *tensors;
    int nchunks;
    lars_chunk *chunks;
    double *chunk_pp, *chunk_dd; /* per chunk: sum p^2, sum dp^2 */
    float *q;                    /* per tensor trust ratio of the current step */
};

void mmcr_optim_config_default(mmcr_optim_config *c, mmcr_optim_kind kind) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->momentum = 0.9;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->lars_eta = 1e-3;
    c->exclude_1d = 1;
    switch (kind) {
    case MMCR_OPTIM_SGD: /* the original linear-evaluation setting */
        c->lr = 0.3;
        c->weight_decay = 1e-6;
        break;
    case MMCR_OPTIM_LARS: /* original ImageNet pretraining: 0.6 per 256 images */
        c->lr = 0.6;
        c->weight_decay = 1e-6;
        break;
    case MMCR_OPTIM_ADAM: /* original CIFAR/STL pretraining */
        c->lr = 1e-3;
        c->weight_decay = 1e-6;
        break;
    case MMCR_OPTIM_ADAMW: /* torch's default decoupled decay */
        c->lr = 1e-3;
        c->weight_decay = 1e-2;
        break;
    }
}

static int cmp_offset(const void *a, const void *b) {
    const mmcr_tensor_info *x = *(const mmcr_tensor_info *const *)a, *y = *(const mmcr_tensor_info *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static mmcr_status check_config(const mmcr_optim_config *c, size_t nparams, mmcr_err *err) {
    if (nparams == 0) return mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: no parameters");
    if (!isfinite(c->lr) || !isfinite(c->weight_decay) || c->weight_decay < 0)
        return mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: lr must be finite and weight_decay finite and >= 0");
    switch (c->kind) {
    case MMCR_OPTIM_SGD:
    case MMCR_OPTIM_LARS:
        if (!(c->momentum >= 0 && c->momentum < 1))
            return mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: momentum %g is outside [0, 1)", c->momentum);
        if (c->kind == MMCR_OPTIM_SGD && c->nesterov && c->momentum == 0)
            return mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: Nesterov momentum needs momentum > 0");
        if (c->kind == MMCR_OPTIM_LARS && !(c->lars_eta > 0 && isfinite(c->lars_eta)))
            return mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: LARS trust coefficient eta %g must be > 0", c->lars_eta);
        return MMCR_OK;
    case MMCR_OPTIM_ADAM:
    case MMCR_OPTIM_ADAMW:
        if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
            return mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: Adam betas (%g, %g) must lie in [0, 1)", c->beta1, c->beta2);
        if (!(c->eps > 0 && isfinite(c->eps)))
            return mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: Adam eps %g must be > 0", c->eps);
        return MMCR_OK;
    }
    return mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: unknown kind %d", (int)c->kind);
}

/* Copies the table, checks bounds and overlaps, and cuts every tensor into chunks. */
static mmcr_status plan_lars(mmcr_optim *o, const mmcr_tensor_info *tensors, int ntensors, mmcr_err *err) {
    if (!tensors || ntensors <= 0)
        return mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: LARS needs the parameter table (per-tensor norms)");
    o->tensors = malloc((size_t)ntensors * sizeof *o->tensors);
    const mmcr_tensor_info **sorted = malloc((size_t)ntensors * sizeof *sorted);
    if (!o->tensors || !sorted) {
        free(sorted);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "optimiser: out of memory for the parameter table");
    }
    memcpy(o->tensors, tensors, (size_t)ntensors * sizeof *o->tensors);
    o->ntensors = ntensors;
    size_t nchunks = 0;
    for (int i = 0; i < ntensors; i++) {
        const mmcr_tensor_info *t = &tensors[i];
        if (t->offset > o->n || t->size > o->n - t->offset) {
            free(sorted);
            return mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: tensor '%.96s' (offset %zu, size %zu) lies outside the %zu parameters",
                                t->name, t->offset, t->size, o->n);
        }
        sorted[i] = t;
        nchunks += (t->size + LARS_CHUNK - 1) / LARS_CHUNK;
    }
    qsort(sorted, (size_t)ntensors, sizeof *sorted, cmp_offset);
    for (int i = 1; i < ntensors; i++) {
        if (sorted[i - 1]->offset + sorted[i - 1]->size > sorted[i]->offset) {
            mmcr_status st = mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: tensors '%.96s' and '%.96s' overlap", sorted[i - 1]->name,
                                          sorted[i]->name);
            free(sorted);
            return st;
        }
    }
    free(sorted);
    if (nchunks > (size_t)INT32_MAX) return mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: too many parameters");
    o->nchunks = (int)nchunks;
    o->chunks = malloc((nchunks ? nchunks : 1) * sizeof *o->chunks);
    o->chunk_pp = malloc((nchunks ? nchunks : 1) * sizeof(double));
    o->chunk_dd = malloc((nchunks ? nchunks : 1) * sizeof(double));
    o->q = malloc((size_t)ntensors * sizeof(float));
    if (!o->chunks || !o->chunk_pp || !o->chunk_dd || !o->q)
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "optimiser: out of memory for the LARS plan");
    size_t c = 0;
    for (int i = 0; i < ntensors; i++)
        for (size_t s = 0; s < tensors[i].size; s += LARS_CHUNK) {
            size_t left = tensors[i].size - s;
            o->chunks[c++] = (lars_chunk){i, tensors[i].offset + s, left < LARS_CHUNK ? left : LARS_CHUNK};
        }
    MMCR_ASSERT(c == nchunks);
    return MMCR_OK;
}

mmcr_status mmcr_optim_create(mmcr_optim **out, const mmcr_optim_config *cfg, size_t nparams,
                              const mmcr_tensor_info *tensors, int ntensors, mmcr_err *err) {
    *out = NULL;
    mmcr_status st = check_config(cfg, nparams, err);
    if (st != MMCR_OK) return st;
    mmcr_optim *o = calloc(1, sizeof *o);
    if (!o) return mmcr_err_set(err, MMCR_ERR_NOMEM, "optimiser: out of memory");
    o->cfg = *cfg;
    o->n = nparams;
    switch (cfg->kind) {
    case MMCR_OPTIM_SGD: o->nstate = cfg->momentum != 0 ? nparams : 0; break;
    case MMCR_OPTIM_LARS: o->nstate = nparams; break;
    case MMCR_OPTIM_ADAM:
    case MMCR_OPTIM_ADAMW:
        if (nparams > SIZE_MAX / 2 / sizeof(float)) {
            free(o);
            return mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: too many parameters");
        }
        o->nstate = 2 * nparams;
        break;
    }
    if (o->nstate) {
        if (o->nstate > SIZE_MAX / sizeof(float)) st = mmcr_err_set(err, MMCR_ERR_ARG, "optimiser: too many parameters");
        else if (!(o->state = mmcr_alloc_or_err(o->nstate * sizeof(float), err, "optimiser state"))) st = MMCR_ERR_NOMEM;
    }
    if (st == MMCR_OK && cfg->kind == MMCR_OPTIM_LARS) st = plan_lars(o, tensors, ntensors, err);
    if (st != MMCR_OK) {
        mmcr_optim_destroy(&o);
        return st;
    }
    *out = o;
    return MMCR_OK;
}

void mmcr_optim_destroy(mmcr_optim **po) {
    if (!po || !*po) return;
    mmcr_optim *o = *po;
    mmcr_free(o->state);
    free(o->tensors);
    free(o->chunks);
    free(o->chunk_pp);
    free(o->chunk_dd);
    free(o->q);
    free(o);
    *po = NULL;
}

size_t mmcr_optim_state_floats(const mmcr_optim *o) { return o->nstate; }
float *mmcr_optim_state(mmcr_optim *o) { return o->state; }
long mmcr_optim_get_step(const mmcr_optim *o) { return o->step; }
void mmcr_optim_set_step(mmcr_optim *o, long step) { o->step = step; }

/* torch.optim.SGD: d = g + wd*p; buf = d on the first step, else m*buf + d (dampening 0);
 * d = nesterov ? d + m*buf : buf; p -= lr*d. */
static void sgd_step(mmcr_optim *o, float *restrict p, const float *restrict g, double lr) {
    const float wd = (float)o->cfg.weight_decay, m = (float)o->cfg.momentum, nlr = (float)-lr;
    const int nesterov = o->cfg.nesterov, first = o->step == 0;
    float *restrict buf = o->state;
    const size_t n = o->n;
    if (m == 0.0f) {
#pragma omp parallel for schedule(static) if (n > OMP_MIN)
        for (size_t i = 0; i < n; i++) {
            float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
            p[i] = p[i] + nlr * d;
        }
        return;
    }
#pragma omp parallel for schedule(static) if (n > OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        float b = first ? d : buf[i] * m + d;
        buf[i] = b;
        if (nesterov) d = d + m * b;
        else d = b;
        p[i] = p[i] + nlr * d;
    }
}

/* Adam (L2 decay added to the gradient) and AdamW (decoupled p *= 1 - lr*wd), torch order:
 * m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). */
static void adam_step(mmcr_optim *o, float *restrict p, const float *restrict g, double lr) {
    const size_t n = o->n;
    const double t = (double)(o->step + 1);
    const double bc1 = 1.0 - pow(o->cfg.beta1, t), bc2 = 1.0 - pow(o->cfg.beta2, t);
    const float b1 = (float)o->cfg.beta1, b2 = (float)o->cfg.beta2;
    const float omb1 = (float)(1.0 - o->cfg.beta1), omb2 = (float)(1.0 - o->cfg.beta2);
    const float neg_step = (float)-(lr / bc1), bc2s = (float)sqrt(bc2), eps = (float)o->cfg.eps;
    const int decoupled = o->cfg.kind == MMCR_OPTIM_ADAMW;
    const float wd = (float)o->cfg.weight_decay;
    const float shrink = (float)(1.0 - lr * o->cfg.weight_decay);
    float *restrict m = o->state, *restrict v = o->state + n;
#pragma omp parallel for schedule(static) if (n > OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i], pi = p[i];
        if (decoupled) {
            if (wd != 0.0f) pi = pi * shrink;
        } else if (wd != 0.0f) {
            gi = gi + wd * pi;
        }
        float mi = m[i] * b1 + omb1 * gi;
        float vi = v[i] * b2 + omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2s + eps;
        p[i] = pi + neg_step * (mi / denom);
    }
}

static int lars_excluded(const mmcr_optim *o, int t) { return o->cfg.exclude_1d && o->tensors[t].is_1d; }

/* LARS as in the original MMCR code (Barlow Twins' optimiser), per tensor:
 * dp = g (+ wd*p unless excluded); q = eta*||p||/||dp|| (1 if either norm is 0; no scaling if
 * excluded); mu = m*mu + q*dp; p -= lr*mu. Excluded = 1-D tensors when exclude_1d. */
static void lars_step(mmcr_optim *o, float *restrict p, const float *restrict g, double lr) {
    const float wd = (float)o->cfg.weight_decay, m = (float)o->cfg.momentum, nlr = (float)-lr;
    const int nch = o->nchunks;
    const lars_chunk *ch = o->chunks;
    float *restrict mu = o->state;
    int big = o->n > OMP_MIN;

#pragma omp parallel for schedule(static) if (big)
    for (int c = 0; c < nch; c++) {
        double pp = 0, dd = 0;
        if (!lars_excluded(o, ch[c].tensor)) {
            const size_t s = ch[c].start, e = s + ch[c].len;
            for (size_t i = s; i < e; i++) {
                float d = g[i] + wd * p[i];
                pp += (double)p[i] * p[i];
                dd += (double)d * d;
            }
        }
        o->chunk_pp[c] = pp;
        o->chunk_dd[c] = dd;
    }
    /* Chunks are stored tensor by tensor, so one pass sums them in a fixed order. */
    int c = 0;
    for (int t = 0; t < o->ntensors; t++) {
        double pp = 0, dd = 0;
        for (; c < nch && ch[c].tensor == t; c++) pp += o->chunk_pp[c], dd += o->chunk_dd[c];
        double pn = sqrt(pp), dn = sqrt(dd);
        o->q[t] = (lars_excluded(o, t) || !(pn > 0) || !(dn > 0)) ? 1.0f : (float)(o->cfg.lars_eta * pn / dn);
    }

#pragma omp parallel for schedule(static) if (big)
    for (int k = 0; k < nch; k++) {
        const int t = ch[k].tensor;
        const int excl = lars_excluded(o, t);
        const float q = o->q[t], w = excl ? 0.0f : wd;
        const size_t s = ch[k].start, e = s + ch[k].len;
        for (size_t i = s; i < e; i++) {
            float d = g[i] + w * p[i];
            if (!excl) d = d * q;
            float u = mu[i] * m + d;
            mu[i] = u;
            p[i] = p[i] + nlr * u;
        }
    }
}

void mmcr_optim_step(mmcr_optim *o, float *params, const float *grads, double lr) {
    switch (o->cfg.kind) {
    case MMCR_OPTIM_SGD: sgd_step(o, params, grads, lr); break;
    case MMCR_OPTIM_LARS: lars_step(o, params, grads, lr); break;
    case MMCR_OPTIM_ADAM:
    case MMCR_OPTIM_ADAMW: adam_step(o, params, grads, lr); break;
    }
    o->step++;
}
