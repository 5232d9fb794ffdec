/* Optimisers over the flat parameter buffer, with torch.optim semantics (docs/semantics.md),
 * and learning-rate schedules. */
#ifndef MMCR_OPTIM_H
#define MMCR_OPTIM_H

#include "mmcr/core.h"
#include "mmcr/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mmcr_optim_kind { MMCR_OPTIM_SGD, MMCR_OPTIM_LARS, MMCR_OPTIM_ADAM, MMCR_OPTIM_ADAMW } mmcr_optim_kind;

typedef struct mmcr_optim_config {
    mmcr_optim_kind kind;
    double lr;           /* base learning rate; the schedule multiplies it */
    double momentum;     /* SGD/LARS, 0.9 */
    int nesterov;        /* SGD */
    double weight_decay; /* SGD/Adam: L2 added to the gradient; AdamW: decoupled */
    double beta1, beta2, eps; /* Adam/AdamW: 0.9, 0.999, 1e-8 */
    double lars_eta;     /* trust coefficient, 0.001 */
    int exclude_1d;      /* LARS: 1-D tensors get no weight decay and no adaptation (default 1) */
} mmcr_optim_config;
void mmcr_optim_config_default(mmcr_optim_config *c, mmcr_optim_kind kind);

typedef struct mmcr_optim mmcr_optim;
/* tensors: the parameter table (for per-tensor LARS norms and 1-D exclusion); required for
 * LARS (tensors must lie inside [0, nparams) and not overlap; elements outside every tensor are
 * padding and LARS leaves them alone), ignored (may be NULL) for SGD/Adam/AdamW, which update
 * the flat buffer. Everything is allocated here; mmcr_optim_step never allocates. */
mmcr_status mmcr_optim_create(mmcr_optim **out, const mmcr_optim_config *cfg, size_t nparams,
                              const mmcr_tensor_info *tensors, int ntensors, mmcr_err *err);
void mmcr_optim_destroy(mmcr_optim **o);
/* One update with learning rate lr (already scheduled). */
void mmcr_optim_step(mmcr_optim *o, float *params, const float *grads, double lr);
/* Optimiser state for checkpoints: nstate floats (momentum / first and second moments) + step.
 * Layout: SGD with momentum and LARS: the momentum buffer (nparams); SGD without momentum:
 * nothing; Adam/AdamW: first moments (nparams) then second moments (nparams). The step counts
 * completed updates: Adam's bias correction uses it, and SGD copies the gradient into its
 * buffer when it is 0 (as torch does on the first step). */
size_t mmcr_optim_state_floats(const mmcr_optim *o);
float *mmcr_optim_state(mmcr_optim *o);
long mmcr_optim_get_step(const mmcr_optim *o);
void mmcr_optim_set_step(mmcr_optim *o, long step);

typedef enum mmcr_sched_kind { MMCR_SCHED_CONSTANT, MMCR_SCHED_COSINE, MMCR_SCHED_ONECYCLE } mmcr_sched_kind;
typedef struct mmcr_schedule {
    mmcr_sched_kind kind;
    long total_steps;
    long warmup_steps;  /* linear warm-up from 0 (cosine) */
    double final_factor; /* cosine floor as a fraction of the base lr (e.g. 0.001) */
    double pct_start;    /* one-cycle: fraction of steps rising (torch OneCycleLR, cos anneal) */
    double div_factor, final_div_factor; /* one-cycle: 25, 1e4 as torch */
} mmcr_schedule;
/* Multiplier of the base lr at step (0-based). Steps past the end keep the final value.
 * cosine: step < warmup: step/warmup; then f + (1-f)(1+cos(pi*t))/2, t = (step-warmup)/(total-warmup).
 * one-cycle: torch OneCycleLR (cos, two phases) divided by max_lr; step 0 gives 1/div_factor. */
double mmcr_schedule_factor(const mmcr_schedule *s, long step);
/* Defaults for kind (warm-up 0, final_factor 0.001, pct_start 0.3, div 25, final_div 1e4). */
void mmcr_schedule_default(mmcr_schedule *s, mmcr_sched_kind kind, long total_steps);
/* Checks the fields (total_steps >= 1, 0 <= warmup, final_factor in [0, 1], pct_start in (0, 1],
 * div factors > 0); err names the bad field. */
mmcr_status mmcr_schedule_check(const mmcr_schedule *s, mmcr_err *err);

#ifdef __cplusplus
}
#endif
#endif
