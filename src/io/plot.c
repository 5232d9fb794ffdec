/* Line/scatter plots and heat maps rendered with cairo into PNG files (see mmcr/plot.h). */
#include "mmcr/plot.h"

#include "mmcr/io.h"

#include <cairo.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846
#define FONT "DejaVu Sans"
#define MAX_TICKS 128
#ifndef RTLD_DEFAULT /* POSIX.1-2024; older C libraries define it only as an extension */
#define RTLD_DEFAULT ((void *)0)
#endif

typedef struct plot_series {
    char *label;
    double *x, *y, *yerr; /* one allocation: x, then y, then yerr */
    size_t n;
    mmcr_plot_line line;
    mmcr_plot_marker marker;
    mmcr_plot_color color;
    double line_width, marker_size;
} plot_series;

typedef struct plot_ref {
    mmcr_plot_ref kind;
    double a, b;
    char *label;
} plot_ref;

struct mmcr_plot {
    int w, h;
    char *title, *xlabel, *ylabel;
    mmcr_plot_scale xscale, yscale;
    double xlim[2], ylim[2];
    int xfixed, yfixed;
    mmcr_plot_legend legend;
    plot_series *s;
    size_t ns, scap;
    plot_ref *r;
    size_t nr, rcap;
    int has_hm;
    mmcr_plot_heatmap hm; /* z and labels point to owned copies below */
    double *hm_z;
    char **hm_rl, **hm_cl;
    char *hm_cbar;
};

mmcr_plot_color mmcr_plot_palette(int i) {
    static const unsigned char pal[10][3] = {
        {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
        {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
    int k = ((i % 10) + 10) % 10;
    mmcr_plot_color c = {pal[k][0] / 255.0, pal[k][1] / 255.0, pal[k][2] / 255.0};
    return c;
}

/* ---------------------------------------------------------------- object management */

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = mmcr_alloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

mmcr_plot *mmcr_plot_create(int width, int height, mmcr_err *err) {
    if (width < 100 || width > 10000 || height < 100 || height > 10000) {
        mmcr_err_set(err, MMCR_ERR_ARG, "plot size %d x %d outside [100, 10000] pixels", width, height);
        return NULL;
    }
    mmcr_plot *p = mmcr_alloc_or_err(sizeof *p, err, "a plot");
    if (!p) return NULL;
    p->w = width;
    p->h = height;
    p->xscale = p->yscale = MMCR_PLOT_LINEAR;
    p->legend = MMCR_LEGEND_AUTO;
    return p;
}

static void free_heatmap(mmcr_plot *p) {
    if (p->hm_rl)
        for (int i = 0; i < p->hm.rows; i++) mmcr_free(p->hm_rl[i]);
    if (p->hm_cl)
        for (int i = 0; i < p->hm.cols; i++) mmcr_free(p->hm_cl[i]);
    mmcr_free(p->hm_rl);
    mmcr_free(p->hm_cl);
    mmcr_free(p->hm_z);
    mmcr_free(p->hm_cbar);
    p->hm_rl = p->hm_cl = NULL;
    p->hm_z = NULL;
    p->hm_cbar = NULL;
    p->has_hm = 0;
}

void mmcr_plot_destroy(mmcr_plot **pp) {
    if (!pp || !*pp) return;
    mmcr_plot *p = *pp;
    for (size_t i = 0; i < p->ns; i++) {
        mmcr_free(p->s[i].label);
        mmcr_free(p->s[i].x);
    }
    for (size_t i = 0; i < p->nr; i++) mmcr_free(p->r[i].label);
    mmcr_free(p->s);
    mmcr_free(p->r);
    mmcr_free(p->title);
    mmcr_free(p->xlabel);
    mmcr_free(p->ylabel);
    free_heatmap(p);
    mmcr_free(p);
    *pp = NULL;
}

static mmcr_status set_str(char **dst, const char *src, mmcr_err *err) {
    char *c = NULL;
    if (src && !(c = dup_str(src))) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory copying a plot label");
    mmcr_free(*dst);
    *dst = c;
    return MMCR_OK;
}

mmcr_status mmcr_plot_set_labels(mmcr_plot *p, const char *title, const char *xlabel, const char *ylabel,
                                 mmcr_err *err) {
    mmcr_status st = set_str(&p->title, title, err);
    if (st == MMCR_OK) st = set_str(&p->xlabel, xlabel, err);
    if (st == MMCR_OK) st = set_str(&p->ylabel, ylabel, err);
    return st;
}

void mmcr_plot_set_scale(mmcr_plot *p, mmcr_plot_scale x, mmcr_plot_scale y) {
    p->xscale = x;
    p->yscale = y;
}

static void set_lim(double *lim, int *fixed, double lo, double hi) {
    *fixed = isfinite(lo) && isfinite(hi) && lo < hi;
    lim[0] = lo;
    lim[1] = hi;
}
void mmcr_plot_set_xlim(mmcr_plot *p, double lo, double hi) { set_lim(p->xlim, &p->xfixed, lo, hi); }
void mmcr_plot_set_ylim(mmcr_plot *p, double lo, double hi) { set_lim(p->ylim, &p->yfixed, lo, hi); }
void mmcr_plot_set_legend(mmcr_plot *p, mmcr_plot_legend where) { p->legend = where; }

/* Grows *arr (element size `sz`) to hold at least n + 1 elements. */
static int grow(void **arr, size_t *cap, size_t n, size_t sz) {
    if (n < *cap) return 1;
    size_t nc = *cap ? 2 * *cap : 8;
    void *na = mmcr_alloc(nc * sz);
    if (!na) return 0;
    if (*arr) memcpy(na, *arr, n * sz);
    mmcr_free(*arr);
    *arr = na;
    *cap = nc;
    return 1;
}

mmcr_status mmcr_plot_add_series(mmcr_plot *p, const mmcr_plot_series *s, mmcr_err *err) {
    const char *name = s->label && s->label[0] ? s->label : "(unlabelled)";
    if (s->n > 0 && (!s->x || !s->y))
        return mmcr_err_set(err, MMCR_ERR_ARG, "plot series '%s': %zu points but no x or y data", name, s->n);
    if (s->n > ((size_t)1 << 40)) return mmcr_err_set(err, MMCR_ERR_ARG, "plot series '%s' is too long", name);
    if (s->yerr)
        for (size_t i = 0; i < s->n; i++)
            if (s->yerr[i] < 0.0)
                return mmcr_err_set(err, MMCR_ERR_ARG, "plot series '%s': negative error bar %g at index %zu", name,
                                    s->yerr[i], i);
    if ((int)s->line < MMCR_LINE_SOLID || s->line > MMCR_LINE_NONE || (int)s->marker < MMCR_MARKER_NONE ||
        s->marker > MMCR_MARKER_PLUS)
        return mmcr_err_set(err, MMCR_ERR_ARG, "plot series '%s': unknown line or marker style", name);
    if (!grow((void **)&p->s, &p->scap, p->ns, sizeof *p->s))
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory adding a plot series");
    plot_series *d = &p->s[p->ns];
    memset(d, 0, sizeof *d);
    size_t per = s->n ? s->n : 1;
    d->x = mmcr_alloc(3 * per * sizeof(double));
    d->label = s->label && s->label[0] ? dup_str(s->label) : NULL;
    if (!d->x || (s->label && s->label[0] && !d->label)) {
        mmcr_free(d->x);
        mmcr_free(d->label);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory copying plot series '%s'", name);
    }
    d->y = d->x + per;
    d->n = s->n;
    if (s->n) {
        memcpy(d->x, s->x, s->n * sizeof(double));
        memcpy(d->y, s->y, s->n * sizeof(double));
    }
    if (s->yerr) {
        d->yerr = d->y + per;
        memcpy(d->yerr, s->yerr, s->n * sizeof(double));
    }
    d->line = s->line;
    d->marker = s->marker;
    d->color = s->color ? *s->color : mmcr_plot_palette((int)p->ns);
    d->line_width = s->line_width > 0 ? s->line_width : 2.0;
    d->marker_size = s->marker_size > 0 ? s->marker_size : 7.0;
    p->ns++;
    return MMCR_OK;
}

mmcr_status mmcr_plot_add_ref(mmcr_plot *p, mmcr_plot_ref kind, double a, double b, const char *label,
                              mmcr_err *err) {
    if (kind != MMCR_REF_VERTICAL && kind != MMCR_REF_HORIZONTAL && kind != MMCR_REF_LINE)
        return mmcr_err_set(err, MMCR_ERR_ARG, "unknown reference line kind %d", (int)kind);
    if (!isfinite(a) || (kind == MMCR_REF_LINE && !isfinite(b)))
        return mmcr_err_set(err, MMCR_ERR_ARG, "reference line with non-finite coefficients");
    if (!grow((void **)&p->r, &p->rcap, p->nr, sizeof *p->r))
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory adding a reference line");
    plot_ref *r = &p->r[p->nr];
    r->kind = kind;
    r->a = a;
    r->b = b;
    r->label = label && label[0] ? dup_str(label) : NULL;
    if (label && label[0] && !r->label) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory copying a label");
    p->nr++;
    return MMCR_OK;
}

mmcr_status mmcr_plot_set_heatmap(mmcr_plot *p, const mmcr_plot_heatmap *h, mmcr_err *err) {
    if (h->rows < 1 || h->cols < 1 || h->rows > 1000 || h->cols > 1000)
        return mmcr_err_set(err, MMCR_ERR_ARG, "heat map of %d x %d cells (each side must be in [1, 1000])", h->rows,
                            h->cols);
    if (!h->z) return mmcr_err_set(err, MMCR_ERR_ARG, "heat map without values");
    if (h->annotate != MMCR_ANNOT_NONE && (h->digits < 0 || h->digits > 12))
        return mmcr_err_set(err, MMCR_ERR_ARG, "heat map annotation digits %d outside [0, 12]", h->digits);
    free_heatmap(p);
    size_t nz = (size_t)h->rows * (size_t)h->cols;
    p->hm = *h;
    p->hm_z = mmcr_alloc(nz * sizeof(double));
    p->hm_rl = mmcr_alloc((size_t)h->rows * sizeof(char *));
    p->hm_cl = mmcr_alloc((size_t)h->cols * sizeof(char *));
    int ok = p->hm_z && p->hm_rl && p->hm_cl;
    char num[32];
    for (int i = 0; ok && i < h->rows; i++) {
        snprintf(num, sizeof num, "%d", i);
        ok = (p->hm_rl[i] = dup_str(h->row_labels && h->row_labels[i] ? h->row_labels[i] : num)) != NULL;
    }
    for (int i = 0; ok && i < h->cols; i++) {
        snprintf(num, sizeof num, "%d", i);
        ok = (p->hm_cl[i] = dup_str(h->col_labels && h->col_labels[i] ? h->col_labels[i] : num)) != NULL;
    }
    if (ok && h->colorbar_label) ok = (p->hm_cbar = dup_str(h->colorbar_label)) != NULL;
    if (!ok) {
        free_heatmap(p);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory copying a heat map");
    }
    memcpy(p->hm_z, h->z, nz * sizeof(double));
    p->hm.z = p->hm_z;
    p->hm.row_labels = (const char *const *)p->hm_rl;
    p->hm.col_labels = (const char *const *)p->hm_cl;
    p->hm.colorbar_label = p->hm_cbar;
    p->has_hm = 1;
    return MMCR_OK;
}

/* ---------------------------------------------------------------- axes and ticks */

typedef struct axis {
    mmcr_plot_scale scale;
    double lo, hi;   /* data units */
    double tlo, thi; /* transformed (log10 for log axes) */
    double plo, phi; /* pixels of lo and hi (phi < plo for a y axis) */
} axis;

static double ax_t(const axis *a, double v) { return a->scale == MMCR_PLOT_LOG10 ? log10(v) : v; }

static double ax_px(const axis *a, double v) {
    return a->plo + (ax_t(a, v) - a->tlo) / (a->thi - a->tlo) * (a->phi - a->plo);
}

static void ax_set(axis *a, mmcr_plot_scale sc, double lo, double hi) {
    a->scale = sc;
    a->lo = lo;
    a->hi = hi;
    a->tlo = ax_t(a, lo);
    a->thi = ax_t(a, hi);
}

typedef struct tick {
    double v;
    int major;
    char txt[48]; /* label (major ticks); with sup[0] != 0 it is the base of a power */
    char sup[24]; /* exponent drawn as a superscript */
} tick;

/* A leading '-' is typeset as U+2212 (minus sign). */
static void put_num(char *out, size_t cap, const char *ascii) {
    if (ascii[0] == '-')
        snprintf(out, cap, "\xe2\x88\x92%s", ascii + 1);
    else
        snprintf(out, cap, "%s", ascii);
}

static int add_tick(tick *t, int n, double v, int major) {
    if (n >= MAX_TICKS) return n;
    memset(&t[n], 0, sizeof t[n]);
    t[n].v = v;
    t[n].major = major;
    return n + 1;
}

/* Linear ticks: steps of 1, 2 or 5 times a power of ten, about `target` of them. */
static int ticks_linear(double lo, double hi, int target, tick *t) {
    double raw = (hi - lo) / target;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    double step = (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * mag;
    double i0 = ceil(lo / step - 1e-9), i1 = floor(hi / step + 1e-9);
    int dec = (int)fmax(0.0, -floor(log10(step) + 1e-9));
    double maxabs = fmax(fabs(lo), fabs(hi));
    int sci = maxabs >= 1e6 || maxabs < 1e-3;
    int n = 0;
    for (double i = i0; i <= i1 && n < MAX_TICKS; i += 1.0) {
        double v = i * step;
        if (fabs(v) < 1e-9 * step) v = 0.0;
        n = add_tick(t, n, v, 1);
        char buf[40];
        if (v == 0.0)
            snprintf(buf, sizeof buf, "0");
        else if (sci)
            snprintf(buf, sizeof buf, "%.3g", v);
        else
            snprintf(buf, sizeof buf, "%.*f", dec, v);
        put_num(t[n - 1].txt, sizeof t[n - 1].txt, buf);
    }
    return n;
}

/* Log ticks: decades labelled as powers of ten (every `stride`-th when there are many), the
 * 2..9 multiples as minor ticks; under 2.5 decades, 1-2-5 multiples labelled as numbers, and
 * for a range too narrow for those, linear ticks. */
static int ticks_log(double lo, double hi, int target, tick *t) {
    double l0 = log10(lo), l1 = log10(hi);
    int e0 = (int)ceil(l0 - 1e-9), e1 = (int)floor(l1 + 1e-9);
    int ndec = e1 - e0 + 1;
    int n = 0;
    if (l1 - l0 >= 2.5) {
        int stride = 1;
        while ((ndec + stride - 1) / stride > target + 1) stride++;
        for (int e = (int)floor(l0); e <= e1 && n < MAX_TICKS; e++) {
            double base = pow(10.0, e);
            int lab = (((e % stride) + stride) % stride) == 0;
            if (base >= lo * (1 - 1e-12)) {
                n = add_tick(t, n, base, lab);
                if (lab) {
                    snprintf(t[n - 1].txt, sizeof t[n - 1].txt, "10");
                    char buf[16];
                    snprintf(buf, sizeof buf, "%d", e);
                    put_num(t[n - 1].sup, sizeof t[n - 1].sup, buf);
                }
            }
            if (stride == 1 && ndec <= 8)
                for (int k = 2; k <= 9; k++) {
                    double v = k * base;
                    if (v >= lo && v <= hi) n = add_tick(t, n, v, 0);
                }
        }
        return n;
    }
    /* Narrow range: 1-2-5 multiples, or all multiples when that gives too few. */
    static const int m125[] = {1, 2, 5};
    for (int pass = 0; pass < 2; pass++) {
        n = 0;
        for (int e = (int)floor(l0) - 1; e <= (int)ceil(l1) && n < MAX_TICKS; e++) {
            double base = pow(10.0, e);
            for (int k = 1; k <= 9; k++) {
                double v = k * base;
                if (v < lo * (1 - 1e-12) || v > hi * (1 + 1e-12)) continue;
                int major = pass == 1 || k == m125[0] || k == m125[1] || k == m125[2];
                n = add_tick(t, n, v, major);
                if (major) {
                    char buf[40];
                    snprintf(buf, sizeof buf, "%.*f", e < 0 ? -e : 0, v);
                    if (e >= 6 || e <= -5) snprintf(buf, sizeof buf, "%g", v);
                    put_num(t[n - 1].txt, sizeof t[n - 1].txt, buf);
                }
            }
        }
        int nmaj = 0;
        for (int i = 0; i < n; i++) nmaj += t[i].major;
        if (nmaj >= 3) return n;
    }
    return ticks_linear(lo, hi, target, t);
}

static int make_ticks(const axis *a, int target, tick *t) {
    return a->scale == MMCR_PLOT_LOG10 ? ticks_log(a->lo, a->hi, target, t) : ticks_linear(a->lo, a->hi, target, t);
}

/* ---------------------------------------------------------------- text */

typedef struct fonts {
    double s; /* scale factor relative to a 900 x 600 figure */
    double title, label, tick, legend;
} fonts;

static void set_font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_w(cairo_t *cr, const char *s, double size, int bold) {
    cairo_text_extents_t e;
    set_font(cr, size, bold);
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* Width of a tick label, including a superscript exponent. */
static double tick_w(cairo_t *cr, const tick *t, double size) {
    double w = text_w(cr, t->txt, size, 0);
    if (t->sup[0]) w += text_w(cr, t->sup, 0.72 * size, 0) + 0.05 * size;
    return w;
}

/* Draws s with its anchor at (x, y): ha 0/0.5/1 = left/centre/right, va 0/0.5/1 =
 * top/middle/bottom of the capital letters (descenders hang below "bottom"). */
static void text_at(cairo_t *cr, double x, double y, const char *s, double size, int bold, double ha, double va) {
    if (!s || !s[0]) return;
    double w = text_w(cr, s, size, bold);
    double cap = 0.73 * size;
    cairo_move_to(cr, x - ha * w, y - va * cap + cap);
    cairo_show_text(cr, s);
}

static void tick_label_at(cairo_t *cr, double x, double y, const tick *t, double size, double ha, double va) {
    double w = tick_w(cr, t, size);
    double cap = 0.73 * size;
    double x0 = x - ha * w;
    double base = y - va * cap + cap;
    if (t->sup[0]) base += 0.18 * size * (1.0 - va); /* room for the raised exponent */
    set_font(cr, size, 0);
    cairo_move_to(cr, x0, base);
    cairo_show_text(cr, t->txt);
    if (t->sup[0]) {
        double bw = text_w(cr, t->txt, size, 0);
        set_font(cr, 0.72 * size, 0);
        cairo_move_to(cr, x0 + bw + 0.05 * size, base - 0.45 * size);
        cairo_show_text(cr, t->sup);
    }
}

/* Rotated by -90 degrees (reads bottom to top), centred at (x, y). */
static void text_vertical(cairo_t *cr, double x, double y, const char *s, double size, int bold) {
    if (!s || !s[0]) return;
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -PI / 2);
    text_at(cr, 0, 0, s, size, bold, 0.5, 0.5);
    cairo_restore(cr);
}

/* ---------------------------------------------------------------- styles */

static void set_color(cairo_t *cr, mmcr_plot_color c, double shade) {
    cairo_set_source_rgb(cr, c.r * shade, c.g * shade, c.b * shade);
}

static void set_dash(cairo_t *cr, mmcr_plot_line l, double lw, double s) {
    if (l == MMCR_LINE_DASHED) {
        double d[2] = {7 * s, 4 * s};
        cairo_set_dash(cr, d, 2, 0);
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
    } else if (l == MMCR_LINE_DOTTED) {
        double d[2] = {0.01, 2.2 * lw};
        cairo_set_dash(cr, d, 2, 0);
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    } else {
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    }
}

static void draw_marker(cairo_t *cr, double x, double y, mmcr_plot_marker m, double size, mmcr_plot_color c) {
    double r = 0.5 * size;
    cairo_new_path(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    switch (m) {
    case MMCR_MARKER_CIRCLE: cairo_arc(cr, x, y, r, 0, 2 * PI); break;
    case MMCR_MARKER_SQUARE: cairo_rectangle(cr, x - 0.88 * r, y - 0.88 * r, 1.76 * r, 1.76 * r); break;
    case MMCR_MARKER_TRIANGLE:
        cairo_move_to(cr, x, y - 1.15 * r);
        cairo_line_to(cr, x + 1.0 * r, y + 0.6 * r);
        cairo_line_to(cr, x - 1.0 * r, y + 0.6 * r);
        cairo_close_path(cr);
        break;
    case MMCR_MARKER_DIAMOND:
        cairo_move_to(cr, x, y - 1.2 * r);
        cairo_line_to(cr, x + 0.85 * r, y);
        cairo_line_to(cr, x, y + 1.2 * r);
        cairo_line_to(cr, x - 0.85 * r, y);
        cairo_close_path(cr);
        break;
    case MMCR_MARKER_CROSS:
    case MMCR_MARKER_PLUS: {
        double q = m == MMCR_MARKER_CROSS ? 0.8 * r : 1.05 * r;
        if (m == MMCR_MARKER_CROSS) {
            cairo_move_to(cr, x - q, y - q);
            cairo_line_to(cr, x + q, y + q);
            cairo_move_to(cr, x - q, y + q);
            cairo_line_to(cr, x + q, y - q);
        } else {
            cairo_move_to(cr, x - q, y);
            cairo_line_to(cr, x + q, y);
            cairo_move_to(cr, x, y - q);
            cairo_line_to(cr, x, y + q);
        }
        set_color(cr, c, 1.0);
        cairo_set_line_width(cr, fmax(1.5, 0.28 * size));
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
        cairo_stroke(cr);
        return;
    }
    default: return;
    }
    set_color(cr, c, 1.0);
    cairo_fill_preserve(cr);
    set_color(cr, c, 0.6);
    cairo_set_line_width(cr, fmax(0.8, 0.12 * size));
    cairo_stroke(cr);
}

/* ---------------------------------------------------------------- data ranges */

static int usable(double v, mmcr_plot_scale sc) { return isfinite(v) && (sc == MMCR_PLOT_LINEAR || v > 0); }

/* Errors for values that a log axis cannot show; non-finite values are gaps, not errors. */
static mmcr_status check_log_data(const mmcr_plot *p, mmcr_err *err) {
    for (size_t i = 0; i < p->ns; i++) {
        const plot_series *s = &p->s[i];
        const char *name = s->label ? s->label : "(unlabelled)";
        for (size_t j = 0; j < s->n; j++) {
            if (p->xscale == MMCR_PLOT_LOG10 && isfinite(s->x[j]) && s->x[j] <= 0)
                return mmcr_err_set(err, MMCR_ERR_ARG, "plot series '%s': x = %g at index %zu cannot go on a log10 axis",
                                    name, s->x[j], j);
            if (p->yscale == MMCR_PLOT_LOG10 && isfinite(s->y[j]) && s->y[j] <= 0)
                return mmcr_err_set(err, MMCR_ERR_ARG, "plot series '%s': y = %g at index %zu cannot go on a log10 axis",
                                    name, s->y[j], j);
        }
    }
    for (size_t i = 0; i < p->nr; i++) {
        const plot_ref *r = &p->r[i];
        if ((r->kind == MMCR_REF_VERTICAL && p->xscale == MMCR_PLOT_LOG10 && r->a <= 0) ||
            (r->kind == MMCR_REF_HORIZONTAL && p->yscale == MMCR_PLOT_LOG10 && r->a <= 0))
            return mmcr_err_set(err, MMCR_ERR_ARG, "reference line at %g cannot go on a log10 axis", r->a);
    }
    if ((p->xfixed && p->xscale == MMCR_PLOT_LOG10 && p->xlim[0] <= 0) ||
        (p->yfixed && p->yscale == MMCR_PLOT_LOG10 && p->ylim[0] <= 0))
        return mmcr_err_set(err, MMCR_ERR_ARG, "axis limits must be > 0 on a log10 axis");
    return MMCR_OK;
}

/* Data range of one axis (with a small margin), or the fixed limits. */
static void data_range(const mmcr_plot *p, int is_y, double *lo, double *hi) {
    mmcr_plot_scale sc = is_y ? p->yscale : p->xscale;
    if (is_y ? p->yfixed : p->xfixed) {
        *lo = is_y ? p->ylim[0] : p->xlim[0];
        *hi = is_y ? p->ylim[1] : p->xlim[1];
        return;
    }
    double a = INFINITY, b = -INFINITY;
    for (size_t i = 0; i < p->ns; i++) {
        const plot_series *s = &p->s[i];
        for (size_t j = 0; j < s->n; j++) {
            if (!isfinite(s->x[j]) || !isfinite(s->y[j])) continue;
            double v = is_y ? s->y[j] : s->x[j];
            if (!usable(v, sc)) continue;
            a = fmin(a, v);
            b = fmax(b, v);
            if (is_y && s->yerr && isfinite(s->yerr[j])) {
                double l = v - s->yerr[j], u = v + s->yerr[j];
                if (usable(l, sc)) a = fmin(a, l);
                if (usable(u, sc)) b = fmax(b, u);
            }
        }
    }
    for (size_t i = 0; i < p->nr; i++) {
        const plot_ref *r = &p->r[i];
        if ((r->kind == MMCR_REF_VERTICAL && !is_y) || (r->kind == MMCR_REF_HORIZONTAL && is_y))
            if (usable(r->a, sc)) {
                a = fmin(a, r->a);
                b = fmax(b, r->a);
            }
    }
    if (!(a <= b)) { /* no data */
        a = sc == MMCR_PLOT_LOG10 ? 1.0 : 0.0;
        b = sc == MMCR_PLOT_LOG10 ? 10.0 : 1.0;
    }
    if (sc == MMCR_PLOT_LOG10) {
        double la = log10(a), lb = log10(b);
        if (lb - la < 1e-9) {
            la -= 0.5;
            lb += 0.5;
        }
        double m = 0.04 * (lb - la);
        *lo = pow(10.0, la - m);
        *hi = pow(10.0, lb + m);
    } else {
        if (b - a <= 1e-12 * fmax(1.0, fabs(a))) {
            double d = a == 0 ? 0.5 : 0.1 * fabs(a);
            a -= d;
            b += d;
        }
        double m = 0.04 * (b - a);
        *lo = a - m;
        *hi = b + m;
    }
}

/* ---------------------------------------------------------------- legend */

typedef struct legend_entry {
    const char *label;
    mmcr_plot_line line;
    mmcr_plot_marker marker;
    mmcr_plot_color color;
    double lw, ms;
    int is_ref;
} legend_entry;

static int legend_entries(const mmcr_plot *p, legend_entry *e, int max) {
    int n = 0;
    for (size_t i = 0; i < p->ns && n < max; i++)
        if (p->s[i].label) {
            const plot_series *s = &p->s[i];
            e[n++] = (legend_entry){s->label, s->line, s->marker, s->color, s->line_width, s->marker_size, 0};
        }
    mmcr_plot_color grey = {0.35, 0.35, 0.35};
    for (size_t i = 0; i < p->nr && n < max; i++)
        if (p->r[i].label) e[n++] = (legend_entry){p->r[i].label, MMCR_LINE_DASHED, MMCR_MARKER_NONE, grey, 1.3, 0, 1};
    return n;
}

/* Occupancy grid of the drawn data (4-pixel cells) to place the legend where it covers least. */
typedef struct occ {
    int gw, gh;
    double x0, y0;
    unsigned char *g;
} occ;

static void occ_mark(occ *o, double x, double y, double r) {
    int i0 = (int)floor((x - r - o->x0) / 4), i1 = (int)floor((x + r - o->x0) / 4);
    int j0 = (int)floor((y - r - o->y0) / 4), j1 = (int)floor((y + r - o->y0) / 4);
    for (int j = j0 < 0 ? 0 : j0; j <= j1 && j < o->gh; j++)
        for (int i = i0 < 0 ? 0 : i0; i <= i1 && i < o->gw; i++) o->g[(size_t)j * o->gw + i] = 1;
}

static void occ_segment(occ *o, double xa, double ya, double xb, double yb, double r) {
    double len = hypot(xb - xa, yb - ya);
    int steps = (int)fmin(4000.0, ceil(len / 2.0));
    for (int k = 0; k <= steps; k++) {
        double t = steps ? (double)k / steps : 0.0;
        occ_mark(o, xa + t * (xb - xa), ya + t * (yb - ya), r);
    }
}

static long occ_count(const occ *o, double x, double y, double w, double h) {
    long c = 0;
    int i0 = (int)floor((x - o->x0) / 4), i1 = (int)floor((x + w - o->x0) / 4);
    int j0 = (int)floor((y - o->y0) / 4), j1 = (int)floor((y + h - o->y0) / 4);
    for (int j = j0 < 0 ? 0 : j0; j <= j1 && j < o->gh; j++)
        for (int i = i0 < 0 ? 0 : i0; i <= i1 && i < o->gw; i++) c += o->g[(size_t)j * o->gw + i];
    return c;
}

/* ---------------------------------------------------------------- line/scatter figure */

typedef struct area {
    double l, t, r, b;
} area;

static void draw_refs(cairo_t *cr, const mmcr_plot *p, const axis *ax, const axis *ay, double s, occ *o) {
    for (size_t i = 0; i < p->nr; i++) {
        const plot_ref *r = &p->r[i];
        cairo_new_path(cr);
        if (r->kind == MMCR_REF_VERTICAL) {
            double x = ax_px(ax, r->a);
            cairo_move_to(cr, x, ay->plo);
            cairo_line_to(cr, x, ay->phi);
            if (o) occ_segment(o, x, ay->plo, x, ay->phi, 2);
        } else if (r->kind == MMCR_REF_HORIZONTAL) {
            double y = ax_px(ay, r->a);
            cairo_move_to(cr, ax->plo, y);
            cairo_line_to(cr, ax->phi, y);
            if (o) occ_segment(o, ax->plo, y, ax->phi, y, 2);
        } else {
            int pen = 0;
            double px = 0, py = 0;
            for (int k = 0; k <= 400; k++) {
                double t = ax->tlo + (ax->thi - ax->tlo) * k / 400.0;
                double x = ax->scale == MMCR_PLOT_LOG10 ? pow(10.0, t) : t;
                double y = r->a * x + r->b;
                if (!usable(y, ay->scale)) {
                    pen = 0;
                    continue;
                }
                double X = ax_px(ax, x), Y = ax_px(ay, y);
                if (Y < -1e5 || Y > 1e5) {
                    pen = 0;
                    continue;
                }
                if (pen) {
                    cairo_line_to(cr, X, Y);
                    if (o) occ_segment(o, px, py, X, Y, 2);
                } else {
                    cairo_move_to(cr, X, Y);
                }
                pen = 1;
                px = X;
                py = Y;
            }
        }
        cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
        cairo_set_line_width(cr, 1.3 * s);
        set_dash(cr, MMCR_LINE_DASHED, 1.3 * s, s);
        cairo_stroke(cr);
    }
}

static void draw_series(cairo_t *cr, const plot_series *sr, const axis *ax, const axis *ay, double s, occ *o) {
    double lw = sr->line_width * s, ms = sr->marker_size * s;
    /* Error bars under the line and markers. */
    if (sr->yerr) {
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
        cairo_set_line_width(cr, fmax(1.0, 0.6 * lw));
        set_color(cr, sr->color, 0.8);
        for (size_t j = 0; j < sr->n; j++) {
            double x = sr->x[j], y = sr->y[j], e = sr->yerr[j];
            if (!isfinite(x) || !isfinite(y) || !isfinite(e) || e <= 0) continue;
            double X = ax_px(ax, x);
            double lo = y - e;
            double Ylo = usable(lo, ay->scale) ? ax_px(ay, lo) : ay->plo + 10;
            double Yhi = ax_px(ay, y + e);
            double cap = 0.45 * fmax(ms, 6 * s);
            cairo_move_to(cr, X, Ylo);
            cairo_line_to(cr, X, Yhi);
            cairo_move_to(cr, X - cap, Ylo);
            cairo_line_to(cr, X + cap, Ylo);
            cairo_move_to(cr, X - cap, Yhi);
            cairo_line_to(cr, X + cap, Yhi);
            if (o) occ_segment(o, X, Ylo, X, Yhi, 2);
        }
        cairo_stroke(cr);
    }
    if (sr->line != MMCR_LINE_NONE) {
        int pen = 0;
        double px = 0, py = 0;
        cairo_new_path(cr);
        for (size_t j = 0; j < sr->n; j++) {
            if (!isfinite(sr->x[j]) || !isfinite(sr->y[j])) {
                pen = 0;
                continue;
            }
            double X = ax_px(ax, sr->x[j]), Y = ax_px(ay, sr->y[j]);
            if (pen) {
                cairo_line_to(cr, X, Y);
                if (o) occ_segment(o, px, py, X, Y, 0.5 * lw + 1);
            } else {
                cairo_move_to(cr, X, Y);
            }
            pen = 1;
            px = X;
            py = Y;
        }
        set_color(cr, sr->color, 1.0);
        cairo_set_line_width(cr, lw);
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
        set_dash(cr, sr->line, lw, s);
        cairo_stroke(cr);
    }
    if (sr->marker != MMCR_MARKER_NONE)
        for (size_t j = 0; j < sr->n; j++) {
            if (!isfinite(sr->x[j]) || !isfinite(sr->y[j])) continue;
            double X = ax_px(ax, sr->x[j]), Y = ax_px(ay, sr->y[j]);
            draw_marker(cr, X, Y, sr->marker, ms, sr->color);
            if (o) occ_mark(o, X, Y, 0.6 * ms);
        }
}

static void legend_sample(cairo_t *cr, const legend_entry *e, double x, double y, double len, double s) {
    if (e->line != MMCR_LINE_NONE) {
        cairo_new_path(cr);
        cairo_move_to(cr, x, y);
        cairo_line_to(cr, x + len, y);
        set_color(cr, e->color, 1.0);
        cairo_set_line_width(cr, e->lw * s);
        set_dash(cr, e->line, e->lw * s, s);
        cairo_stroke(cr);
    }
    if (e->marker != MMCR_MARKER_NONE) draw_marker(cr, x + 0.5 * len, y, e->marker, e->ms * s, e->color);
}

static void draw_legend(cairo_t *cr, const mmcr_plot *p, const area *A, const fonts *f, const occ *o,
                        double out_x) {
    legend_entry ents[64];
    int ne = legend_entries(p, ents, 64);
    if (ne == 0 || p->legend == MMCR_LEGEND_NONE) return;
    double s = f->s, fs = f->legend;
    double pad = 8 * s, sample = 34 * s, gap = 8 * s, row = 1.55 * fs;
    double tw = 0;
    for (int i = 0; i < ne; i++) tw = fmax(tw, text_w(cr, ents[i].label, fs, 0));
    double bw = pad + sample + gap + tw + pad, bh = 2 * pad + ne * row - 0.4 * fs;
    double off = 10 * s;
    double x, y;
    if (p->legend == MMCR_LEGEND_OUTSIDE_RIGHT) {
        x = out_x;
        y = A->t;
    } else {
        double cx[6] = {A->r - off - bw, A->l + off, A->l + off, A->r - off - bw, 0.5 * (A->l + A->r - bw),
                        0.5 * (A->l + A->r - bw)};
        double cy[6] = {A->t + off, A->t + off, A->b - off - bh, A->b - off - bh, A->t + off, A->b - off - bh};
        int pick = 0;
        switch (p->legend) {
        case MMCR_LEGEND_UPPER_RIGHT: pick = 0; break;
        case MMCR_LEGEND_UPPER_LEFT: pick = 1; break;
        case MMCR_LEGEND_LOWER_LEFT: pick = 2; break;
        case MMCR_LEGEND_LOWER_RIGHT: pick = 3; break;
        default: {
            long best = -1;
            for (int k = 0; k < 6; k++) {
                long c = o ? occ_count(o, cx[k], cy[k], bw, bh) : 0;
                if (best < 0 || c < best) {
                    best = c;
                    pick = k;
                }
            }
        }
        }
        x = cx[pick];
        y = cy[pick];
    }
    cairo_new_path(cr);
    cairo_rectangle(cr, x, y, bw, bh);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.92);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_set_line_width(cr, 1.0);
    cairo_set_dash(cr, NULL, 0, 0);
    cairo_stroke(cr);
    for (int i = 0; i < ne; i++) {
        double yc = y + pad + (i + 0.5) * row - 0.2 * fs;
        legend_sample(cr, &ents[i], x + pad, yc, sample, s);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        set_font(cr, fs, 0);
        text_at(cr, x + pad + sample + gap, yc, ents[i].label, fs, 0, 0.0, 0.5);
    }
}

static double legend_width(cairo_t *cr, const mmcr_plot *p, const fonts *f) {
    legend_entry ents[64];
    int ne = legend_entries(p, ents, 64);
    if (ne == 0) return 0;
    double tw = 0;
    for (int i = 0; i < ne; i++) tw = fmax(tw, text_w(cr, ents[i].label, f->legend, 0));
    return 8 * f->s + 34 * f->s + 8 * f->s + tw + 8 * f->s;
}

static mmcr_status render_xy(cairo_t *cr, const mmcr_plot *p, const fonts *f, mmcr_err *err) {
    mmcr_status st = check_log_data(p, err);
    if (st != MMCR_OK) return st;
    double s = f->s, pad = 12 * s, tl = 6 * s;
    axis ax, ay;
    double lo, hi;
    data_range(p, 0, &lo, &hi);
    ax_set(&ax, p->xscale, lo, hi);
    data_range(p, 1, &lo, &hi);
    ax_set(&ay, p->yscale, lo, hi);
    tick tx[MAX_TICKS], ty[MAX_TICKS];
    int ntx = make_ticks(&ax, p->w >= 700 ? 8 : 5, tx);
    int nty = make_ticks(&ay, p->h >= 450 ? 7 : 4, ty);

    double ytw = 0, has_sup_x = 0;
    for (int i = 0; i < nty; i++)
        if (ty[i].major) ytw = fmax(ytw, tick_w(cr, &ty[i], f->tick));
    for (int i = 0; i < ntx; i++)
        if (tx[i].major && tx[i].sup[0]) has_sup_x = 1;
    int outside = p->legend == MMCR_LEGEND_OUTSIDE_RIGHT;
    double lw = outside ? legend_width(cr, p, f) : 0;
    area A;
    A.l = pad + (p->ylabel ? 1.3 * f->label + 0.6 * pad : 0) + ytw + tl + 5 * s;
    A.t = pad + (p->title ? 1.5 * f->title : 0.6 * f->tick);
    A.r = p->w - pad - (lw > 0 ? lw + pad : 0);
    /* Room for half of the last x label hanging past the right edge. */
    double last_half = 0;
    for (int i = 0; i < ntx; i++)
        if (tx[i].major) last_half = 0.5 * tick_w(cr, &tx[i], f->tick);
    if (lw == 0) A.r -= fmax(0, last_half - pad + 4 * s);
    A.b = p->h - pad - (p->xlabel ? 1.5 * f->label : 0) - (1.3 + 0.3 * has_sup_x) * f->tick - tl - 6 * s;
    if (A.r - A.l < 40 || A.b - A.t < 40)
        return mmcr_err_set(err, MMCR_ERR_ARG, "plot of %d x %d pixels is too small for its labels", p->w, p->h);
    ax.plo = A.l;
    ax.phi = A.r;
    ay.plo = A.b;
    ay.phi = A.t;

    /* Grid at major ticks. */
    cairo_set_line_width(cr, 1.0);
    cairo_set_dash(cr, NULL, 0, 0);
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    for (int i = 0; i < ntx; i++)
        if (tx[i].major) {
            double X = round(ax_px(&ax, tx[i].v)) + 0.5;
            cairo_move_to(cr, X, A.t);
            cairo_line_to(cr, X, A.b);
        }
    for (int i = 0; i < nty; i++)
        if (ty[i].major) {
            double Y = round(ax_px(&ay, ty[i].v)) + 0.5;
            cairo_move_to(cr, A.l, Y);
            cairo_line_to(cr, A.r, Y);
        }
    cairo_stroke(cr);

    /* Data, clipped to the axes. */
    occ o = {0};
    o.x0 = A.l;
    o.y0 = A.t;
    o.gw = (int)((A.r - A.l) / 4) + 1;
    o.gh = (int)((A.b - A.t) / 4) + 1;
    o.g = mmcr_alloc((size_t)o.gw * (size_t)o.gh);
    occ *op = o.g ? &o : NULL;
    cairo_save(cr);
    cairo_rectangle(cr, A.l, A.t, A.r - A.l, A.b - A.t);
    cairo_clip(cr);
    draw_refs(cr, p, &ax, &ay, s, op);
    for (size_t i = 0; i < p->ns; i++) draw_series(cr, &p->s[i], &ax, &ay, s, op);
    cairo_restore(cr);

    /* Frame, ticks, labels. */
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    cairo_set_line_width(cr, 1.0);
    cairo_set_dash(cr, NULL, 0, 0);
    cairo_rectangle(cr, round(A.l) + 0.5, round(A.t) + 0.5, round(A.r) - round(A.l), round(A.b) - round(A.t));
    cairo_stroke(cr);
    for (int i = 0; i < ntx; i++) {
        double X = round(ax_px(&ax, tx[i].v)) + 0.5;
        double len = tx[i].major ? tl : 0.55 * tl;
        cairo_move_to(cr, X, round(A.b) + 0.5);
        cairo_line_to(cr, X, round(A.b) + 0.5 + len);
    }
    for (int i = 0; i < nty; i++) {
        double Y = round(ax_px(&ay, ty[i].v)) + 0.5;
        double len = ty[i].major ? tl : 0.55 * tl;
        cairo_move_to(cr, round(A.l) + 0.5, Y);
        cairo_line_to(cr, round(A.l) + 0.5 - len, Y);
    }
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    for (int i = 0; i < ntx; i++)
        if (tx[i].major) tick_label_at(cr, ax_px(&ax, tx[i].v), A.b + tl + 5 * s, &tx[i], f->tick, 0.5, 0.0);
    for (int i = 0; i < nty; i++)
        if (ty[i].major) tick_label_at(cr, A.l - tl - 4 * s, ax_px(&ay, ty[i].v), &ty[i], f->tick, 1.0, 0.5);
    if (p->xlabel) text_at(cr, 0.5 * (A.l + A.r), p->h - pad, p->xlabel, f->label, 0, 0.5, 1.0);
    if (p->ylabel) text_vertical(cr, pad + 0.5 * f->label, 0.5 * (A.t + A.b), p->ylabel, f->label, 0);
    if (p->title) text_at(cr, 0.5 * (A.l + A.r), pad, p->title, f->title, 1, 0.5, 0.0);
    draw_legend(cr, p, &A, f, op, A.r + pad);
    mmcr_free(o.g);
    return MMCR_OK;
}

/* ---------------------------------------------------------------- heat map */

/* Perceptually uniform blue-green-yellow map (viridis anchors, linear in between). */
static mmcr_plot_color colormap(double t) {
    static const unsigned char c[9][3] = {{68, 1, 84},    {72, 40, 120},  {62, 73, 137},  {49, 104, 142}, {38, 130, 142},
                                          {31, 158, 137}, {53, 183, 121}, {110, 206, 88}, {253, 231, 37}};
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    double u = t * 8;
    int i = (int)floor(u);
    if (i > 7) i = 7;
    double w = u - i;
    mmcr_plot_color r = {((1 - w) * c[i][0] + w * c[i + 1][0]) / 255.0, ((1 - w) * c[i][1] + w * c[i + 1][1]) / 255.0,
                         ((1 - w) * c[i][2] + w * c[i + 1][2]) / 255.0};
    return r;
}

static mmcr_status render_heatmap(cairo_t *cr, const mmcr_plot *p, const fonts *f, mmcr_err *err) {
    const mmcr_plot_heatmap *h = &p->hm;
    size_t nz = (size_t)h->rows * (size_t)h->cols;
    double zmin = INFINITY, zmax = -INFINITY;
    for (size_t i = 0; i < nz; i++) {
        double z = h->z[i];
        if (!isfinite(z)) continue;
        if (h->log_color && z <= 0)
            return mmcr_err_set(err, MMCR_ERR_ARG, "heat map cell (%zu, %zu) = %g cannot be coloured on a log scale",
                                i / (size_t)h->cols, i % (size_t)h->cols, z);
        zmin = fmin(zmin, z);
        zmax = fmax(zmax, z);
    }
    if (h->vmin < h->vmax) {
        zmin = h->vmin;
        zmax = h->vmax;
        if (h->log_color && zmin <= 0) return mmcr_err_set(err, MMCR_ERR_ARG, "heat map log colour range must be > 0");
    }
    if (!(zmin <= zmax)) { /* every cell empty */
        zmin = h->log_color ? 1 : 0;
        zmax = h->log_color ? 10 : 1;
    }
    if (zmax - zmin <= 1e-12 * fmax(1.0, fabs(zmin))) {
        if (h->log_color) {
            zmin /= 2;
            zmax *= 2;
        } else {
            zmin -= 0.5;
            zmax += 0.5;
        }
    }
    axis cb;
    ax_set(&cb, h->log_color ? MMCR_PLOT_LOG10 : MMCR_PLOT_LINEAR, zmin, zmax);
    tick tc[MAX_TICKS];
    int ntc = make_ticks(&cb, 6, tc);

    double s = f->s, pad = 12 * s, tl = 5 * s;
    double rlw = 0, clh = 1.3 * f->tick, ctw = 0;
    for (int i = 0; i < h->rows; i++) rlw = fmax(rlw, text_w(cr, h->row_labels[i], f->tick, 0));
    for (int i = 0; i < ntc; i++)
        if (tc[i].major) ctw = fmax(ctw, tick_w(cr, &tc[i], f->tick));
    double cbw = 22 * s;
    area A;
    A.l = pad + (p->ylabel ? 1.3 * f->label + 0.6 * pad : 0) + rlw + 8 * s;
    A.t = pad + (p->title ? 1.5 * f->title : 0.6 * f->tick);
    A.r = p->w - pad - (p->hm_cbar ? 1.3 * f->label + 0.4 * pad : 0) - ctw - tl - 6 * s - cbw - 18 * s;
    A.b = p->h - pad - (p->xlabel ? 1.5 * f->label : 0) - clh - 8 * s;
    if (A.r - A.l < 20 || A.b - A.t < 20)
        return mmcr_err_set(err, MMCR_ERR_ARG, "heat map of %d x %d pixels is too small for its labels", p->w, p->h);
    double cw = (A.r - A.l) / h->cols, ch = (A.b - A.t) / h->rows;

    /* Cells, separated by thin white lines, and their annotations. */
    double afs = fmin(f->tick, 0.42 * ch);
    if (h->annotate != MMCR_ANNOT_NONE) {
        double maxw = 0;
        char buf[64];
        for (size_t i = 0; i < nz; i++) {
            if (!isfinite(h->z[i])) continue;
            snprintf(buf, sizeof buf, h->annotate == MMCR_ANNOT_FIXED ? "%.*f" : "%#.*g", h->digits, h->z[i]);
            maxw = fmax(maxw, text_w(cr, buf, afs, 0));
        }
        if (maxw > 0.9 * cw) afs *= 0.9 * cw / maxw;
    }
    for (int i = 0; i < h->rows; i++)
        for (int j = 0; j < h->cols; j++) {
            double z = h->z[(size_t)i * h->cols + j];
            double x = A.l + j * cw, y = A.t + i * ch;
            mmcr_plot_color c = {0.85, 0.85, 0.85};
            if (isfinite(z)) {
                double t = (ax_t(&cb, fmin(fmax(z, zmin), zmax)) - cb.tlo) / (cb.thi - cb.tlo);
                c = colormap(t);
            }
            cairo_rectangle(cr, x, y, cw, ch);
            set_color(cr, c, 1.0);
            cairo_fill_preserve(cr);
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_set_line_width(cr, fmin(1.5 * s, 0.08 * fmin(cw, ch)));
            cairo_stroke(cr);
            if (h->annotate != MMCR_ANNOT_NONE && afs >= 6 && isfinite(z)) {
                char buf[64];
                snprintf(buf, sizeof buf, h->annotate == MMCR_ANNOT_FIXED ? "%.*f" : "%#.*g", h->digits, z);
                char txt[72];
                put_num(txt, sizeof txt, buf);
                double lum = 0.299 * c.r + 0.587 * c.g + 0.114 * c.b;
                if (lum > 0.55)
                    cairo_set_source_rgb(cr, 0.05, 0.05, 0.05);
                else
                    cairo_set_source_rgb(cr, 1, 1, 1);
                set_font(cr, afs, 0);
                text_at(cr, x + 0.5 * cw, y + 0.5 * ch, txt, afs, 0, 0.5, 0.5);
            }
        }
    /* Row and column labels, shrunk to fit their cells. */
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    for (int i = 0; i < h->rows; i++) {
        double fs = fmin(f->tick, 0.8 * ch);
        text_at(cr, A.l - 6 * s, A.t + (i + 0.5) * ch, h->row_labels[i], fs, 0, 1.0, 0.5);
    }
    for (int j = 0; j < h->cols; j++) {
        double fs = f->tick, w = text_w(cr, h->col_labels[j], fs, 0);
        if (w > 0.95 * cw) fs *= 0.95 * cw / w;
        text_at(cr, A.l + (j + 0.5) * cw, A.b + 6 * s, h->col_labels[j], fs, 0, 0.5, 0.0);
    }
    /* Colour bar with its own ticks. */
    double bx = A.r + 18 * s;
    cb.plo = A.b;
    cb.phi = A.t;
    cairo_pattern_t *g = cairo_pattern_create_linear(0, A.b, 0, A.t);
    for (int k = 0; k <= 64; k++) {
        mmcr_plot_color c = colormap(k / 64.0);
        cairo_pattern_add_color_stop_rgb(g, k / 64.0, c.r, c.g, c.b);
    }
    cairo_rectangle(cr, bx, A.t, cbw, A.b - A.t);
    cairo_set_source(cr, g);
    cairo_fill(cr);
    cairo_pattern_destroy(g);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, round(bx) + 0.5, round(A.t) + 0.5, round(cbw), round(A.b) - round(A.t));
    for (int i = 0; i < ntc; i++) {
        double Y = round(ax_px(&cb, tc[i].v)) + 0.5;
        cairo_move_to(cr, bx + cbw, Y);
        cairo_line_to(cr, bx + cbw + (tc[i].major ? tl : 0.55 * tl), Y);
    }
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    for (int i = 0; i < ntc; i++)
        if (tc[i].major) tick_label_at(cr, bx + cbw + tl + 4 * s, ax_px(&cb, tc[i].v), &tc[i], f->tick, 0.0, 0.5);
    if (p->hm_cbar) text_vertical(cr, p->w - pad - 0.5 * f->label, 0.5 * (A.t + A.b), p->hm_cbar, f->label, 0);
    if (p->xlabel) text_at(cr, 0.5 * (A.l + A.r), p->h - pad, p->xlabel, f->label, 0, 0.5, 1.0);
    if (p->ylabel) text_vertical(cr, pad + 0.5 * f->label, 0.5 * (A.t + A.b), p->ylabel, f->label, 0);
    if (p->title) text_at(cr, 0.5 * (p->w), pad, p->title, f->title, 1, 0.5, 0.0);
    return MMCR_OK;
}

/* ---------------------------------------------------------------- output */

static cairo_status_t write_chunk(void *closure, const unsigned char *data, unsigned int len) {
    return fwrite(data, 1, len, (FILE *)closure) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* Through mmcr_atomic_*: temp file next to the target, fsync, rename, so an interrupted write
 * never leaves a half-written PNG in place of the previous one. */
static mmcr_status write_surface(cairo_surface_t *surf, const char *path, mmcr_err *err) {
    mmcr_atomic_file af;
    mmcr_status st = mmcr_atomic_open(&af, path, err);
    if (st != MMCR_OK) return st;
    cairo_status_t cs = cairo_surface_write_to_png_stream(surf, write_chunk, af.f);
    if (cs != CAIRO_STATUS_SUCCESS) {
        mmcr_atomic_abort(&af);
        return mmcr_err_set(err, MMCR_ERR_IO, "cannot write '%s': %s", path, cairo_status_to_string(cs));
    }
    return mmcr_atomic_commit(&af, err);
}

mmcr_status mmcr_plot_write_png(const mmcr_plot *p, const char *path, mmcr_err *err) {
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, p->w, p->h);
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surf);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "cannot create a %d x %d image", p->w, p->h);
    }
    cairo_t *cr = cairo_create(surf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    fonts f;
    f.s = fmin(fmax(sqrt((double)p->w * p->h / (900.0 * 600.0)), 0.6), 4.0);
    f.title = 19 * f.s;
    f.label = 16 * f.s;
    f.tick = 13.5 * f.s;
    f.legend = 13.5 * f.s;
    mmcr_status st = p->has_hm ? render_heatmap(cr, p, &f, err) : render_xy(cr, p, &f, err);
    if (st == MMCR_OK && cairo_status(cr) != CAIRO_STATUS_SUCCESS)
        st = mmcr_err_set(err, MMCR_ERR_NUMERIC, "drawing '%s' failed: %s", path, cairo_status_to_string(cairo_status(cr)));
    cairo_destroy(cr);
    cairo_surface_flush(surf);
    if (st == MMCR_OK) st = write_surface(surf, path, err);
    cairo_surface_destroy(surf);
    return st;
}

/* cairo keeps font faces (holding fontconfig patterns) in process-wide caches, and fontconfig
 * keeps its configuration; both look like leaks to LeakSanitizer. FcFini is looked up at run
 * time because libmmcr links cairo only (fontconfig comes in as cairo's dependency). */
void mmcr_plot_release_caches(void) {
    cairo_debug_reset_static_data();
    void (*fc_fini)(void) = NULL;
    void *sym = dlsym(RTLD_DEFAULT, "FcFini");
    memcpy(&fc_fini, &sym, sizeof fc_fini); /* object to function pointer, as POSIX allows */
    if (fc_fini) fc_fini();
}
