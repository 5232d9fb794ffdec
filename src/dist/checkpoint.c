/* Checkpoint layout (docs/formats.md): one safetensors tensor per model parameter and BN
 * buffer under its PyTorch-style name, "optimizer.state" (flat F32), and metadata:
 * format=mmcr-checkpoint, version=1, step, optimizer.step, data.channels, data.mean, data.std,
 * and config.<option> for every training option. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/checkpoint.h"
#include "mmcr/io.h"

#define META_MAX 160

static void format_option(char *buf, size_t cap, const mmcr_option *o, const void *cfg) {
    const char *p = (const char *)cfg + o->offset;
    switch (o->type) {
    case MMCR_OPT_INT:
    case MMCR_OPT_BOOL: snprintf(buf, cap, "%d", *(const int *)p); break;
    case MMCR_OPT_DOUBLE: snprintf(buf, cap, "%.17g", *(const double *)p); break;
    case MMCR_OPT_STRING: snprintf(buf, cap, "%s", p); break;
    case MMCR_OPT_CHOICE: {
        /* Write the choice's name, not its index, so the file reads well. */
        int idx = *(const int *)p, i = 0;
        const char *c = o->choices;
        while (i < idx && (c = strchr(c, '|')) != NULL) c++, i++;
        size_t len = c ? strcspn(c, "|") : 0;
        snprintf(buf, cap, "%.*s", (int)len, c ? c : "");
        break;
    }
    }
}

mmcr_status mmcr_checkpoint_save(const char *path, const mmcr_train_config *cfg, mmcr_model *model, mmcr_optim *opt,
                                 long step, const float *mean, const float *std, int channels, mmcr_err *err) {
    int np = mmcr_model_num_tensors(model), nb = mmcr_model_num_buffer_tensors(model);
    int nt = np + nb + 1;
    mmcr_st_tensor *t = calloc((size_t)nt, sizeof *t);
    int nopt;
    const mmcr_option *opts = mmcr_train_options(&nopt);
    int nmeta_pairs = 8 + nopt;
    char (*vals)[MMCR_OPT_STRLEN] = calloc((size_t)nmeta_pairs, sizeof *vals);
    char (*keys)[96] = calloc((size_t)nmeta_pairs, sizeof *keys);
    const char **meta = calloc((size_t)(2 * nmeta_pairs + 1), sizeof *meta);
    if (!t || !vals || !keys || !meta) {
        free(t), free(vals), free(keys), free(meta);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory writing checkpoint '%s'", path);
    }
    int n = 0;
    const float *params = mmcr_model_params(model), *bufs = mmcr_model_buffers(model);
    for (int i = 0; i < np + nb; i++) {
        const mmcr_tensor_info *ti = i < np ? mmcr_model_tensor(model, i) : mmcr_model_buffer_tensor(model, i - np);
        mmcr_st_tensor *s = &t[n++];
        snprintf(s->name, sizeof s->name, "%s", ti->name);
        s->dtype = MMCR_F32;
        s->ndim = ti->ndim;
        for (int d = 0; d < ti->ndim; d++) s->shape[d] = ti->shape[d];
        s->data = (i < np ? params : bufs) + ti->offset;
        s->nbytes = ti->size * sizeof(float);
    }
    if (opt && mmcr_optim_state_floats(opt) > 0) {
        mmcr_st_tensor *s = &t[n++];
        snprintf(s->name, sizeof s->name, "optimizer.state");
        s->dtype = MMCR_F32;
        s->ndim = 1;
        s->shape[0] = (int64_t)mmcr_optim_state_floats(opt);
        s->data = mmcr_optim_state(opt);
        s->nbytes = mmcr_optim_state_floats(opt) * sizeof(float);
    }
    int m = 0;
#define META(k, ...)                                                  \
    do {                                                              \
        snprintf(keys[m], sizeof keys[m], "%s", k);                   \
        snprintf(vals[m], sizeof vals[m], __VA_ARGS__);               \
        m++;                                                          \
    } while (0)
    META("format", "mmcr-checkpoint");
    META("version", "1");
    META("step", "%ld", step);
    META("optimizer.step", "%ld", opt ? mmcr_optim_get_step(opt) : 0L);
    META("data.channels", "%d", channels);
    META("data.mean", "%.9g,%.9g,%.9g", mean[0], channels > 1 ? mean[1] : 0.f, channels > 2 ? mean[2] : 0.f);
    META("data.std", "%.9g,%.9g,%.9g", std[0], channels > 1 ? std[1] : 1.f, channels > 2 ? std[2] : 1.f);
#undef META
    for (int i = 0; i < nopt; i++) {
        snprintf(keys[m], sizeof keys[m], "config.%s", opts[i].name);
        format_option(vals[m], sizeof vals[m], &opts[i], cfg);
        m++;
    }
    for (int i = 0; i < m; i++) {
        meta[2 * i] = keys[i];
        meta[2 * i + 1] = vals[i];
    }
    meta[2 * m] = NULL;
    mmcr_status st = mmcr_safetensors_write(path, t, n, meta, err);
    free(t), free(vals), free(keys), free(meta);
    return st;
}

static mmcr_status copy_tensor(const mmcr_safetensors *st, const char *path, const char *name, float *dst,
                               size_t size, mmcr_err *err) {
    const mmcr_st_tensor *s = mmcr_safetensors_find(st, name);
    if (!s)
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "checkpoint '%s' has no tensor '%s' (was it written by another "
                            "model configuration?)", path, name);
    if (s->dtype != MMCR_F32 || s->nbytes != size * sizeof(float))
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "checkpoint '%s': tensor '%s' has %zu bytes, expected %zu F32 values",
                            path, name, s->nbytes, size);
    memcpy(dst, s->data, size * sizeof(float));
    return MMCR_OK;
}

static mmcr_status check_format(const mmcr_safetensors *st, const char *path, mmcr_err *err) {
    const char *f = mmcr_safetensors_meta(st, "format"), *v = mmcr_safetensors_meta(st, "version");
    if (!f || strcmp(f, "mmcr-checkpoint") != 0)
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s' is a safetensors file but not an mmcr checkpoint", path);
    if (!v || strcmp(v, "1") != 0)
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "checkpoint '%s' has version %s; this mmcr reads version 1", path,
                            v ? v : "(none)");
    return MMCR_OK;
}

static mmcr_status restore_model(const mmcr_safetensors *st, const char *path, mmcr_model *model, mmcr_err *err) {
    for (int i = 0; i < mmcr_model_num_tensors(model); i++) {
        const mmcr_tensor_info *ti = mmcr_model_tensor(model, i);
        mmcr_status s = copy_tensor(st, path, ti->name, mmcr_model_params(model) + ti->offset, ti->size, err);
        if (s != MMCR_OK) return s;
    }
    for (int i = 0; i < mmcr_model_num_buffer_tensors(model); i++) {
        const mmcr_tensor_info *ti = mmcr_model_buffer_tensor(model, i);
        mmcr_status s = copy_tensor(st, path, ti->name, mmcr_model_buffers(model) + ti->offset, ti->size, err);
        if (s != MMCR_OK) return s;
    }
    return MMCR_OK;
}

/* Options that may change when a run is resumed: where and how it runs and reports, and how long
 * it trains. Everything else defines the run, so a change would silently make a different one.
 * (The convolution kernels, like the thread count, change results only by float rounding.) */
static int may_change_on_resume(const char *name) {
    static const char *const ok[] = {"data-dir", "threads", "conv", "out", "resume", "log-every", "checkpoint-every",
                                     "quiet", "time-budget", "stop-at", "max-steps", "epochs"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(name, ok[i]) == 0) return 1;
    return 0;
}

static mmcr_status check_same_config(const mmcr_safetensors *st, const char *path, const mmcr_train_config *cfg,
                                     mmcr_err *err) {
    int nopt;
    const mmcr_option *opts = mmcr_train_options(&nopt);
    for (int i = 0; i < nopt; i++) {
        if (may_change_on_resume(opts[i].name)) continue;
        char key[128], now[MMCR_OPT_STRLEN];
        snprintf(key, sizeof key, "config.%s", opts[i].name);
        const char *then = mmcr_safetensors_meta(st, key);
        format_option(now, sizeof now, &opts[i], cfg);
        if (then && strcmp(then, now) != 0)
            return mmcr_err_set(err, MMCR_ERR_ARG,
                                "--resume: option --%s is %s but the run in '%s' used %s (resuming must not change "
                                "the run; start a new --out instead)", opts[i].name, now, path, then);
    }
    return MMCR_OK;
}

mmcr_status mmcr_checkpoint_restore(const char *path, const mmcr_train_config *cfg, mmcr_model *model,
                                    mmcr_optim *opt, long *step, mmcr_err *err) {
    mmcr_safetensors st;
    mmcr_status s = mmcr_safetensors_read(&st, path, err);
    if (s != MMCR_OK) return s;
    s = check_format(&st, path, err);
    if (s == MMCR_OK) s = check_same_config(&st, path, cfg, err);
    if (s == MMCR_OK) s = restore_model(&st, path, model, err);
    if (s == MMCR_OK && opt && mmcr_optim_state_floats(opt) > 0)
        s = copy_tensor(&st, path, "optimizer.state", mmcr_optim_state(opt), mmcr_optim_state_floats(opt), err);
    if (s == MMCR_OK) {
        const char *v = mmcr_safetensors_meta(&st, "step");
        const char *ov = mmcr_safetensors_meta(&st, "optimizer.step");
        *step = v ? strtol(v, NULL, 10) : 0;
        if (opt) mmcr_optim_set_step(opt, ov ? strtol(ov, NULL, 10) : *step);
    }
    mmcr_safetensors_free(&st);
    return s;
}

static void parse_triple(const char *s, float *out, float dflt) {
    for (int i = 0; i < 3; i++) out[i] = dflt;
    if (!s) return;
    char *end;
    for (int i = 0; i < 3; i++) {
        out[i] = strtof(s, &end);
        if (*end != ',') break;
        s = end + 1;
    }
}

mmcr_status mmcr_checkpoint_load_model(const char *path, mmcr_model **model, int max_batch, int for_eval,
                                       mmcr_train_config *cfg_out,
                                       float *mean_out, float *std_out, mmcr_err *err) {
    mmcr_safetensors st;
    *model = NULL;
    mmcr_status s = mmcr_safetensors_read(&st, path, err);
    if (s != MMCR_OK) return s;
    s = check_format(&st, path, err);
    mmcr_train_config cfg;
    int nopt;
    const mmcr_option *opts = mmcr_train_options(&nopt);
    if (s == MMCR_OK) s = mmcr_options_defaults(opts, nopt, &cfg, err);
    for (int i = 0; s == MMCR_OK && i < nopt; i++) {
        char key[128];
        snprintf(key, sizeof key, "config.%s", opts[i].name);
        const char *v = mmcr_safetensors_meta(&st, key);
        if (v) s = mmcr_options_set(opts, nopt, &cfg, opts[i].name, v, err);
    }
    const char *ch = mmcr_safetensors_meta(&st, "data.channels");
    int channels = ch ? (int)strtol(ch, NULL, 10) : 1;
    if (s == MMCR_OK && (channels != 1 && channels != 3))
        s = mmcr_err_set(err, MMCR_ERR_FORMAT, "checkpoint '%s': bad data.channels", path);
    if (s == MMCR_OK) {
        mmcr_model_config mc;
        mmcr_train_model_config(&cfg, channels, &mc);
        if (for_eval) mc.image_size = mmcr_train_eval_image_size(&cfg); /* parameters do not depend on it */
        s = mmcr_model_create(model, &mc, max_batch, err);
    }
    if (s == MMCR_OK) s = restore_model(&st, path, *model, err);
    if (s == MMCR_OK) {
        if (cfg_out) *cfg_out = cfg;
        if (mean_out) parse_triple(mmcr_safetensors_meta(&st, "data.mean"), mean_out, 0.f);
        if (std_out) parse_triple(mmcr_safetensors_meta(&st, "data.std"), std_out, 1.f);
    } else {
        mmcr_model_destroy(model);
    }
    mmcr_safetensors_free(&st);
    return s;
}
