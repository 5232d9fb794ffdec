/* Plot module: PNG output (signature, size, pixels of the data), errors for data a log axis
 * cannot show, empty series, heat maps, atomic replacement. */
#include <cairo.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmcr/plot.h"
#include "test_util.h"

static char dir[256];

static void path_in(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static int has_png_signature(const char *path) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char buf[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, 8, f);
    fclose(f);
    return n == 8 && memcmp(buf, sig, 8) == 0;
}

/* Pixels within `tol` of colour c. */
static long count_color(const char *path, mmcr_plot_color c, int tol, int *w, int *h) {
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return -1;
    }
    cairo_surface_flush(s);
    *w = cairo_image_surface_get_width(s);
    *h = cairo_image_surface_get_height(s);
    int stride = cairo_image_surface_get_stride(s);
    const unsigned char *d = cairo_image_surface_get_data(s);
    int R = (int)lround(255 * c.r), G = (int)lround(255 * c.g), B = (int)lround(255 * c.b);
    long n = 0;
    for (int y = 0; y < *h; y++)
        for (int x = 0; x < *w; x++) {
            uint32_t px;
            memcpy(&px, d + (size_t)y * stride + 4 * (size_t)x, 4);
            int r = (px >> 16) & 255, g = (px >> 8) & 255, b = px & 255;
            if (abs(r - R) <= tol && abs(g - G) <= tol && abs(b - B) <= tol) n++;
        }
    cairo_surface_destroy(s);
    return n;
}

static int tmp_files_left(void) {
    DIR *dd = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (dd && (e = readdir(dd)))
        if (strstr(e->d_name, ".tmp.")) n++;
    if (dd) closedir(dd);
    return n;
}

static void test_line_plot(void) {
    char path[512];
    path_in(path, sizeof path, "lines.png");
    mmcr_err err;
    mmcr_plot *p = mmcr_plot_create(640, 420, &err);
    CHECK(p != NULL);
    CHECK(mmcr_plot_set_labels(p, "title", "x", "y", &err) == MMCR_OK);
    double x[20], y[20], e[20];
    for (int i = 0; i < 20; i++) {
        x[i] = i;
        y[i] = i * i - 50.0;
        e[i] = 3.0;
    }
    mmcr_plot_color red = {0.9, 0.0, 0.0};
    mmcr_plot_series s = {.label = "parabola", .x = x, .y = y, .yerr = e, .n = 20, .marker = MMCR_MARKER_CIRCLE,
                          .color = &red, .line_width = 3};
    CHECK(mmcr_plot_add_series(p, &s, &err) == MMCR_OK);
    mmcr_plot_series empty = {.label = "empty", .n = 0};
    CHECK(mmcr_plot_add_series(p, &empty, &err) == MMCR_OK);
    CHECK(mmcr_plot_add_ref(p, MMCR_REF_VERTICAL, 5.0, 0, "x = 5", &err) == MMCR_OK);
    CHECK(mmcr_plot_add_ref(p, MMCR_REF_LINE, 2.0, -10.0, NULL, &err) == MMCR_OK);
    CHECK(mmcr_plot_write_png(p, path, &err) == MMCR_OK);
    CHECK(has_png_signature(path));
    int w = 0, h = 0;
    long nred = count_color(path, red, 40, &w, &h);
    CHECK(w == 640 && h == 420);
    CHECK_MSG(nred > 500, "only %ld red pixels", nred);
    /* Writing again replaces the file and leaves no temporary behind. */
    CHECK(mmcr_plot_write_png(p, path, &err) == MMCR_OK);
    CHECK(tmp_files_left() == 0);
    mmcr_plot_destroy(&p);
    CHECK(p == NULL);
    mmcr_plot_destroy(&p); /* no-op */
}

static void test_log_axes(void) {
    char path[512];
    path_in(path, sizeof path, "log.png");
    mmcr_err err;
    mmcr_plot *p = mmcr_plot_create(500, 400, &err);
    mmcr_plot_set_scale(p, MMCR_PLOT_LOG10, MMCR_PLOT_LOG10);
    double x[5] = {1e-3, 1e-1, 1.0, 1e1, 1e3}, y[5] = {1e-4, 1e-2, 0.15, 1e-2, 1e-4};
    double e[5] = {1.0, 0.0, 0.01, 0.0, 0.0}; /* a bar reaching below zero is clipped, not an error */
    mmcr_plot_series s = {.label = "peak", .x = x, .y = y, .yerr = e, .n = 5, .marker = MMCR_MARKER_SQUARE};
    CHECK(mmcr_plot_add_series(p, &s, &err) == MMCR_OK);
    CHECK(mmcr_plot_add_ref(p, MMCR_REF_LINE, 1.0, 0.0, "diagonal", &err) == MMCR_OK);
    CHECK(mmcr_plot_write_png(p, path, &err) == MMCR_OK);
    CHECK(has_png_signature(path));

    /* Non-positive data on a log axis: an error naming the series, and no file. */
    char bad[512];
    path_in(bad, sizeof bad, "bad_log.png");
    double ybad[5] = {1e-4, 0.0, 0.15, -1.0, 1e-4};
    mmcr_plot_series sb = {.label = "broken", .x = x, .y = ybad, .n = 5};
    CHECK(mmcr_plot_add_series(p, &sb, &err) == MMCR_OK);
    err.msg[0] = 0;
    CHECK(mmcr_plot_write_png(p, bad, &err) == MMCR_ERR_ARG);
    CHECK(strstr(err.msg, "broken") != NULL && strstr(err.msg, "log") != NULL);
    CHECK(access(bad, F_OK) != 0);
    /* The same data on linear axes is fine. */
    mmcr_plot_set_scale(p, MMCR_PLOT_LOG10, MMCR_PLOT_LINEAR);
    CHECK(mmcr_plot_write_png(p, bad, &err) == MMCR_OK);
    /* A vertical reference at x <= 0 on a log x axis is an error too. */
    CHECK(mmcr_plot_add_ref(p, MMCR_REF_VERTICAL, -2.0, 0, NULL, &err) == MMCR_OK);
    CHECK(mmcr_plot_write_png(p, bad, &err) == MMCR_ERR_ARG);
    mmcr_plot_destroy(&p);

    /* Fixed limits: log limits must be positive. */
    p = mmcr_plot_create(300, 300, &err);
    mmcr_plot_set_scale(p, MMCR_PLOT_LINEAR, MMCR_PLOT_LOG10);
    mmcr_plot_set_ylim(p, -1.0, 10.0);
    CHECK(mmcr_plot_write_png(p, bad, &err) == MMCR_ERR_ARG);
    mmcr_plot_set_ylim(p, 0.5, 0.6); /* narrower than one 1-2-5 step */
    CHECK(mmcr_plot_write_png(p, bad, &err) == MMCR_OK);
    mmcr_plot_destroy(&p);
}

static void test_empty_and_gaps(void) {
    char path[512];
    path_in(path, sizeof path, "empty.png");
    mmcr_err err;
    /* No series at all: empty axes. */
    mmcr_plot *p = mmcr_plot_create(300, 200, &err);
    CHECK(mmcr_plot_write_png(p, path, &err) == MMCR_OK);
    CHECK(has_png_signature(path));
    mmcr_plot_set_scale(p, MMCR_PLOT_LOG10, MMCR_PLOT_LOG10);
    mmcr_plot_series empty = {.label = "nothing", .n = 0, .marker = MMCR_MARKER_CIRCLE};
    CHECK(mmcr_plot_add_series(p, &empty, &err) == MMCR_OK);
    CHECK(mmcr_plot_write_png(p, path, &err) == MMCR_OK);
    mmcr_plot_destroy(&p);
    /* Non-finite points are gaps; a single point and a constant series get a usable range. */
    p = mmcr_plot_create(400, 300, &err);
    double x[4] = {0, 1, NAN, 3}, y[4] = {1, INFINITY, 2, 2};
    mmcr_plot_series s = {.label = "gaps", .x = x, .y = y, .n = 4};
    CHECK(mmcr_plot_add_series(p, &s, &err) == MMCR_OK);
    double x1 = 5, y1 = 5;
    mmcr_plot_series one = {.x = &x1, .y = &y1, .n = 1, .marker = MMCR_MARKER_DIAMOND, .line = MMCR_LINE_NONE};
    CHECK(mmcr_plot_add_series(p, &one, &err) == MMCR_OK);
    CHECK(mmcr_plot_write_png(p, path, &err) == MMCR_OK);
    mmcr_plot_destroy(&p);
}

static void test_bad_arguments(void) {
    mmcr_err err;
    CHECK(mmcr_plot_create(50, 400, &err) == NULL);
    CHECK(mmcr_plot_create(400, 20000, NULL) == NULL);
    mmcr_plot *p = mmcr_plot_create(400, 300, &err);
    double x[2] = {0, 1}, y[2] = {0, 1}, e[2] = {0.1, -0.1};
    mmcr_plot_series s = {.label = "s", .x = x, .y = y, .yerr = e, .n = 2};
    CHECK(mmcr_plot_add_series(p, &s, &err) == MMCR_ERR_ARG);
    mmcr_plot_series nox = {.label = "s", .x = NULL, .y = y, .n = 2};
    CHECK(mmcr_plot_add_series(p, &nox, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_plot_add_ref(p, MMCR_REF_HORIZONTAL, NAN, 0, NULL, &err) == MMCR_ERR_ARG);
    /* Unwritable target: an I/O error, not a crash. */
    s.yerr = NULL;
    CHECK(mmcr_plot_add_series(p, &s, &err) == MMCR_OK);
    CHECK(mmcr_plot_write_png(p, "/nonexistent-folder-for-mmcr-tests/x.png", &err) == MMCR_ERR_IO);
    mmcr_plot_destroy(&p);
}

static void test_heatmap(void) {
    char path[512];
    path_in(path, sizeof path, "heat.png");
    mmcr_err err;
    mmcr_plot *p = mmcr_plot_create(600, 450, &err);
    CHECK(mmcr_plot_set_labels(p, "PPE", "D", "P", &err) == MMCR_OK);
    double z[6] = {0.15, 0.03, 0.001, 0.03, NAN, 0.03};
    const char *rows[2] = {"64", "256"}, *cols[3] = {"64", "256", "1024"};
    mmcr_plot_heatmap h = {.z = z, .rows = 2, .cols = 3, .row_labels = rows, .col_labels = cols,
                           .annotate = MMCR_ANNOT_FIXED, .digits = 3, .colorbar_label = "PPE", .log_color = 1};
    CHECK(mmcr_plot_set_heatmap(p, &h, &err) == MMCR_OK);
    CHECK(mmcr_plot_write_png(p, path, &err) == MMCR_OK);
    CHECK(has_png_signature(path));
    /* The top of the colour map (yellow) and the bottom (dark purple) both appear. */
    int w, hh;
    mmcr_plot_color yellow = {253 / 255.0, 231 / 255.0, 37 / 255.0}, purple = {68 / 255.0, 1 / 255.0, 84 / 255.0};
    CHECK(count_color(path, yellow, 10, &w, &hh) > 1000);
    CHECK(count_color(path, purple, 10, &w, &hh) > 1000);
    /* Log colours need positive values. */
    z[1] = 0.0;
    CHECK(mmcr_plot_set_heatmap(p, &h, &err) == MMCR_OK);
    CHECK(mmcr_plot_write_png(p, path, &err) == MMCR_ERR_ARG);
    h.log_color = 0;
    CHECK(mmcr_plot_set_heatmap(p, &h, &err) == MMCR_OK);
    CHECK(mmcr_plot_write_png(p, path, &err) == MMCR_OK);
    h.rows = 0;
    CHECK(mmcr_plot_set_heatmap(p, &h, &err) == MMCR_ERR_ARG);
    h.rows = 2;
    h.digits = 40;
    CHECK(mmcr_plot_set_heatmap(p, &h, &err) == MMCR_ERR_ARG);
    mmcr_plot_destroy(&p);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/mmcr_plot_XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_line_plot();
    test_log_axes();
    test_empty_and_gaps();
    test_bad_arguments();
    test_heatmap();
    /* Clean up the folder. */
    DIR *dd = opendir(dir);
    struct dirent *e;
    char p[600];
    while (dd && (e = readdir(dd)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (dd) closedir(dd);
    rmdir(dir);
    mmcr_plot_release_caches();
    return test_finish("test_plot");
}
