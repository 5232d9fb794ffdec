/* Learning-rate schedules as multipliers of the base lr (docs/semantics.md). */
#include <math.h>
#include <string.h>

#include "mmcr/optim.h"

/* math.h defines M_PI only with XSI extensions, which this build does not request. */
#define PI_D 3.14159265358979323846

void mmcr_schedule_default(mmcr_schedule *s, mmcr_sched_kind kind, long total_steps) {
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->total_steps = total_steps;
    s->warmup_steps = 0;
    s->final_factor = 0.001;
    s->pct_start = 0.3;
    s->div_factor = 25.0;
    s->final_div_factor = 1e4;
}

mmcr_status mmcr_schedule_check(const mmcr_schedule *s, mmcr_err *err) {
    switch (s->kind) {
    case MMCR_SCHED_CONSTANT: return MMCR_OK;
    case MMCR_SCHED_COSINE:
        if (s->total_steps < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "schedule: total_steps %ld must be >= 1", s->total_steps);
        if (s->warmup_steps < 0) return mmcr_err_set(err, MMCR_ERR_ARG, "schedule: warmup_steps %ld must be >= 0", s->warmup_steps);
        if (!(s->final_factor >= 0 && s->final_factor <= 1))
            return mmcr_err_set(err, MMCR_ERR_ARG, "schedule: final_factor %g must lie in [0, 1]", s->final_factor);
        return MMCR_OK;
    case MMCR_SCHED_ONECYCLE:
        if (s->total_steps < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "schedule: total_steps %ld must be >= 1", s->total_steps);
        if (!(s->pct_start > 0 && s->pct_start <= 1))
            return mmcr_err_set(err, MMCR_ERR_ARG, "schedule: pct_start %g must lie in (0, 1]", s->pct_start);
        if (!(s->div_factor > 0 && isfinite(s->div_factor)) || !(s->final_div_factor > 0 && isfinite(s->final_div_factor)))
            return mmcr_err_set(err, MMCR_ERR_ARG, "schedule: div_factor %g and final_div_factor %g must be > 0", s->div_factor,
                                s->final_div_factor);
        return MMCR_OK;
    }
    return mmcr_err_set(err, MMCR_ERR_ARG, "schedule: unknown kind %d", (int)s->kind);
}

/* torch's _annealing_cos, in its own operation order. */
static double anneal_cos(double start, double end, double pct) {
    double cos_out = cos(PI_D * pct) + 1.0;
    return end + (start - end) / 2.0 * cos_out;
}

static double cosine_factor(const mmcr_schedule *s, long step) {
    if (s->warmup_steps > 0 && step < s->warmup_steps) return (double)step / (double)s->warmup_steps;
    long span = s->total_steps - s->warmup_steps;
    double frac = span > 0 ? (double)(step - s->warmup_steps) / (double)span : 1.0;
    if (frac > 1.0) frac = 1.0;
    double ff = s->final_factor;
    return ff + (1.0 - ff) * (1.0 + cos(PI_D * frac)) / 2.0;
}

/* torch.optim.lr_scheduler.OneCycleLR, three_phase=False, anneal 'cos', with max_lr = 1:
 * phase 1 ends at step pct_start*T - 1 (a real number), rising from 1/div to 1; phase 2 ends
 * at T - 1, falling to 1/(div*final_div). Steps >= T - 1 give the final value (torch would
 * overshoot at step T and raise beyond it). */
static double onecycle_factor(const mmcr_schedule *s, long step) {
    const double initial = 1.0 / s->div_factor, min_lr = initial / s->final_div_factor;
    const double end1 = s->pct_start * (double)s->total_steps - 1.0, end2 = (double)(s->total_steps - 1);
    const double x = (double)step;
    if (end1 > 0 && x <= end1) return anneal_cos(initial, 1.0, x / end1);
    /* Phase 2 starts from end1 even when end1 <= 0 (a rising phase shorter than one step: step 0
     * is already past the peak, as in torch; torch divides by zero at end1 == 0, we start at
     * the peak). */
    if (end2 - end1 <= 0) return min_lr;
    double pct = (x - end1) / (end2 - end1);
    if (pct > 1.0) pct = 1.0;
    return anneal_cos(1.0, min_lr, pct);
}

double mmcr_schedule_factor(const mmcr_schedule *s, long step) {
    if (step < 0) step = 0;
    switch (s->kind) {
    case MMCR_SCHED_CONSTANT: return 1.0;
    case MMCR_SCHED_COSINE: return cosine_factor(s, step);
    case MMCR_SCHED_ONECYCLE: return onecycle_factor(s, step);
    }
    return 1.0;
}
