/* Small figure renderer on cairo for the analyses: one panel with a title, axis labels, nice
 * ticks on linear or log10 axes, several series (lines, markers, error bars) with a legend,
 * reference lines, or a heat map with a colour bar and per-cell annotations. PNG output is
 * written atomically (temp file in the same folder, fsync, rename).
 *
 * Usage: create, set labels/scales, add series (their data are copied), write_png, destroy.
 * Text uses the cairo toy API with the "DejaVu Sans" face (Debian fonts-dejavu-core). */
#ifndef MMCR_PLOT_H
#define MMCR_PLOT_H

#include <stddef.h>

#include "mmcr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mmcr_plot mmcr_plot;

typedef enum mmcr_plot_scale { MMCR_PLOT_LINEAR, MMCR_PLOT_LOG10 } mmcr_plot_scale;
/* Zero is the default of each enum, so a zero-initialised series is a solid line. */
typedef enum mmcr_plot_line { MMCR_LINE_SOLID, MMCR_LINE_DASHED, MMCR_LINE_DOTTED, MMCR_LINE_NONE } mmcr_plot_line;
typedef enum mmcr_plot_marker {
    MMCR_MARKER_NONE,
    MMCR_MARKER_CIRCLE,
    MMCR_MARKER_SQUARE,
    MMCR_MARKER_TRIANGLE,
    MMCR_MARKER_DIAMOND,
    MMCR_MARKER_CROSS,
    MMCR_MARKER_PLUS
} mmcr_plot_marker;
typedef enum mmcr_plot_legend {
    MMCR_LEGEND_AUTO, /* the inside corner (or top/bottom centre) that covers the fewest data */
    MMCR_LEGEND_UPPER_RIGHT,
    MMCR_LEGEND_UPPER_LEFT,
    MMCR_LEGEND_LOWER_LEFT,
    MMCR_LEGEND_LOWER_RIGHT,
    MMCR_LEGEND_OUTSIDE_RIGHT, /* in a margin right of the axes: never covers data */
    MMCR_LEGEND_NONE
} mmcr_plot_legend;

typedef struct mmcr_plot_color {
    double r, g, b; /* 0..1 */
} mmcr_plot_color;
/* Ten distinguishable colours, cycled by index. */
mmcr_plot_color mmcr_plot_palette(int i);

typedef struct mmcr_plot_series {
    const char *label;            /* legend entry; NULL or "" keeps the series out of the legend */
    const double *x, *y;          /* n points; a non-finite x or y skips the point and breaks the line */
    const double *yerr;           /* NULL, or n symmetric error-bar half-widths (>= 0; non-finite: none) */
    size_t n;                     /* 0 is allowed: the series draws nothing (its legend entry stays) */
    mmcr_plot_line line;
    mmcr_plot_marker marker;
    const mmcr_plot_color *color; /* NULL: the next palette colour */
    double line_width;            /* pixels at 900x600; 0: 2 */
    double marker_size;           /* pixels at 900x600; 0: 7 */
} mmcr_plot_series;

typedef enum mmcr_plot_ref {
    MMCR_REF_VERTICAL,   /* x = a */
    MMCR_REF_HORIZONTAL, /* y = a */
    MMCR_REF_LINE        /* y = a * x + b in data units (on log-log axes a = 1, b = 0 is the diagonal) */
} mmcr_plot_ref;

typedef enum mmcr_plot_annot { MMCR_ANNOT_NONE, MMCR_ANNOT_FIXED, MMCR_ANNOT_SIG } mmcr_plot_annot;

typedef struct mmcr_plot_heatmap {
    const double *z;                /* rows x cols, row-major; row 0 at the top; NaN: empty (grey) cell */
    int rows, cols;
    const char *const *row_labels;  /* rows strings, or NULL for 0, 1, ... */
    const char *const *col_labels;  /* cols strings, or NULL */
    mmcr_plot_annot annotate;       /* per-cell text: none, "%.*f" or "%.*g" with `digits` */
    int digits;
    const char *colorbar_label;     /* may be NULL */
    double vmin, vmax;              /* colour range; vmin >= vmax (e.g. both 0): the data range */
    int log_color;                  /* colour by log10(z): every finite z must be > 0 */
} mmcr_plot_heatmap;

/* width, height in pixels, each in [100, 10000]. NULL on failure (err says why). */
mmcr_plot *mmcr_plot_create(int width, int height, mmcr_err *err);
/* Frees the figure and sets *p = NULL; no-op on NULL. */
void mmcr_plot_destroy(mmcr_plot **p);

/* Each string may be NULL (none); copied. */
mmcr_status mmcr_plot_set_labels(mmcr_plot *p, const char *title, const char *xlabel, const char *ylabel,
                                 mmcr_err *err);
void mmcr_plot_set_scale(mmcr_plot *p, mmcr_plot_scale x, mmcr_plot_scale y);
/* Fixed axis limits; lo >= hi or non-finite values restore automatic limits. */
void mmcr_plot_set_xlim(mmcr_plot *p, double lo, double hi);
void mmcr_plot_set_ylim(mmcr_plot *p, double lo, double hi);
void mmcr_plot_set_legend(mmcr_plot *p, mmcr_plot_legend where);

/* Copies the data. MMCR_ERR_ARG for n > 0 with NULL x or y, or a negative error bar. */
mmcr_status mmcr_plot_add_series(mmcr_plot *p, const mmcr_plot_series *s, mmcr_err *err);
/* A thin dashed grey reference line; label (may be NULL) goes into the legend. */
mmcr_status mmcr_plot_add_ref(mmcr_plot *p, mmcr_plot_ref kind, double a, double b, const char *label,
                              mmcr_err *err);
/* Turns the figure into a heat map (series and reference lines are then not drawn); copies. */
mmcr_status mmcr_plot_set_heatmap(mmcr_plot *p, const mmcr_plot_heatmap *h, mmcr_err *err);

/* Renders and writes the PNG atomically. MMCR_ERR_ARG when data cannot be drawn on the
 * chosen axes (e.g. a value <= 0 on a log10 axis, naming the series and index), MMCR_ERR_IO
 * when the file cannot be written. */
mmcr_status mmcr_plot_write_png(const mmcr_plot *p, const char *path, mmcr_err *err);

/* Releases cairo's process-wide font and surface caches so leak checkers see a clean exit.
 * Call at most once, at the end of the program, when no plot is being drawn. */
void mmcr_plot_release_caches(void);

#ifdef __cplusplus
}
#endif
#endif
