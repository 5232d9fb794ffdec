/* PNG (libpng) and JPEG (libjpeg-turbo) decoding into 3 x H x W uint8 planes, transparency
 * composited onto white, and the square resize used for training images.
 *
 * Both decoders report errors through longjmp from their error callbacks; everything that has
 * to survive the jump lives in a context struct reached through a pointer, never in locals of
 * the function that called setjmp. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
/* jpeglib.h needs size_t and FILE declared first. */
#include <jpeglib.h>
#include <png.h>

#include "mmcr/multimodal.h"

void mmcr_image_free(mmcr_image *img) {
    if (!img) return;
    mmcr_free(img->pixels);
    memset(img, 0, sizeof *img);
}

static mmcr_status alloc_image(mmcr_image *img, int h, int w, const char *what, mmcr_err *err) {
    if (h < 1 || w < 1 || h > MMCR_IMAGE_MAX_SIDE || w > MMCR_IMAGE_MAX_SIDE)
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': image size %d x %d is outside [1, %d]", what, w, h,
                            MMCR_IMAGE_MAX_SIDE);
    img->pixels = mmcr_alloc((size_t)3 * (size_t)h * (size_t)w);
    if (!img->pixels) return mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory for a %d x %d image", what, w, h);
    img->c = 3;
    img->h = h;
    img->w = w;
    return MMCR_OK;
}

/* a*c + (1-a)*255 with a = alpha/255, rounded. */
static inline uint8_t over_white(unsigned c, unsigned a) { return (uint8_t)((c * a + 255u * (255u - a) + 127u) / 255u); }

/* ---------------- PNG ---------------- */

typedef struct png_ctx {
    const uint8_t *data;
    size_t len, pos;
    const char *what;
    jmp_buf jb;
    char msg[200];
    png_structp png;
    png_infop info;
    uint8_t *rows; /* decoded interleaved rows */
    png_bytep *row_ptrs;
} png_ctx;

static void png_err_fn(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    longjmp(c->jb, 1);
}

static void png_warn_fn(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* warnings (e.g. a bad iCCP chunk) do not stop decoding */
}

static void png_read_fn(png_structp png, png_bytep out, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) png_error(png, "file is truncated");
    memcpy(out, c->data + c->pos, n);
    c->pos += n;
}

/* The part that may longjmp; returns 0 on success. Results in c->rows (h x w x channels). */
static int png_decode_inner(png_ctx *c, int *h, int *w, int *channels) {
    if (setjmp(c->jb)) return 1;
    png_set_read_fn(c->png, c, png_read_fn);
    png_set_user_limits(c->png, MMCR_IMAGE_MAX_SIDE, MMCR_IMAGE_MAX_SIDE);
    png_read_info(c->png, c->info);
    png_uint_32 pw = png_get_image_width(c->png, c->info), ph = png_get_image_height(c->png, c->info);
    int color = png_get_color_type(c->png, c->info);
    int depth = png_get_bit_depth(c->png, c->info);
    /* Everything to 8-bit RGB(A): palette -> RGB, low-depth gray -> 8 bit, tRNS -> alpha,
     * 16 bit -> 8 bit rounded, gray -> RGB. */
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(c->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(c->png);
    if (png_get_valid(c->png, c->info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(c->png);
    if (depth == 16) png_set_scale_16(c->png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(c->png);
    png_set_interlace_handling(c->png);
    png_read_update_info(c->png, c->info);
    int ch = png_get_channels(c->png, c->info);
    size_t rowbytes = png_get_rowbytes(c->png, c->info);
    if ((ch != 3 && ch != 4) || rowbytes != (size_t)pw * (size_t)ch) {
        snprintf(c->msg, sizeof c->msg, "unsupported PNG layout (%d channels after conversion)", ch);
        return 1;
    }
    c->rows = mmcr_alloc(rowbytes * ph);
    c->row_ptrs = mmcr_alloc(sizeof *c->row_ptrs * ph);
    if (!c->rows || !c->row_ptrs) {
        snprintf(c->msg, sizeof c->msg, "out of memory");
        return 1;
    }
    for (png_uint_32 y = 0; y < ph; y++) c->row_ptrs[y] = c->rows + (size_t)y * rowbytes;
    png_read_image(c->png, c->row_ptrs);
    png_read_end(c->png, NULL);
    *h = (int)ph;
    *w = (int)pw;
    *channels = ch;
    return 0;
}

static mmcr_status decode_png(mmcr_image *img, const uint8_t *data, size_t len, const char *what, mmcr_err *err) {
    png_ctx *c = calloc(1, sizeof *c);
    if (!c) return mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory", what);
    c->data = data;
    c->len = len;
    c->what = what;
    mmcr_status st = MMCR_OK;
    c->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_err_fn, png_warn_fn);
    if (c->png) c->info = png_create_info_struct(c->png);
    if (!c->png || !c->info) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': cannot create the PNG decoder", what);
        goto done;
    }
    int h = 0, w = 0, ch = 0;
    if (png_decode_inner(c, &h, &w, &ch)) {
        st = mmcr_err_set(err, strcmp(c->msg, "out of memory") ? MMCR_ERR_FORMAT : MMCR_ERR_NOMEM,
                          "'%s': corrupt or unsupported PNG: %s", what, c->msg);
        goto done;
    }
    st = alloc_image(img, h, w, what, err);
    if (st != MMCR_OK) goto done;
    const size_t plane = (size_t)h * (size_t)w;
    for (size_t i = 0; i < plane; i++) {
        const uint8_t *p = c->rows + i * (size_t)ch;
        unsigned a = ch == 4 ? p[3] : 255u;
        for (int k = 0; k < 3; k++) img->pixels[(size_t)k * plane + i] = a == 255u ? p[k] : over_white(p[k], a);
    }
done:
    if (c->png) png_destroy_read_struct(&c->png, c->info ? &c->info : NULL, NULL);
    mmcr_free(c->rows);
    mmcr_free(c->row_ptrs);
    free(c);
    return st;
}

/* ---------------- JPEG ---------------- */

typedef struct jpeg_ctx {
    struct jpeg_error_mgr pub; /* first member: libjpeg hands back this pointer */
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX + 8];
    int warnings;
    struct jpeg_decompress_struct d;
    int created;
    uint8_t *row; /* one scanline */
    mmcr_image *img;
} jpeg_ctx;

static void jpeg_error_exit_fn(j_common_ptr cinfo) {
    jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, c->msg);
    longjmp(c->jb, 1);
}

/* Level -1 is a corrupt-data warning (e.g. premature end of data): libjpeg would fill the rest
 * with grey and carry on; we keep the first message and fail after decoding. */
static void jpeg_emit_fn(j_common_ptr cinfo, int level) {
    jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
    if (level < 0) {
        if (c->warnings++ == 0) (*cinfo->err->format_message)(cinfo, c->msg);
    }
}

static void jpeg_output_fn(j_common_ptr cinfo) { (void)cinfo; }

static int jpeg_decode_inner(jpeg_ctx *c, const uint8_t *data, size_t len, const char *what, mmcr_err *err,
                             mmcr_status *st) {
    if (setjmp(c->jb)) return 1;
    jpeg_create_decompress(&c->d);
    c->created = 1;
    jpeg_mem_src(&c->d, data, (unsigned long)len);
    jpeg_read_header(&c->d, TRUE);
    const int cmyk = c->d.jpeg_color_space == JCS_CMYK || c->d.jpeg_color_space == JCS_YCCK;
    const int gray = c->d.jpeg_color_space == JCS_GRAYSCALE;
    c->d.out_color_space = cmyk ? JCS_CMYK : gray ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&c->d);
    const int w = (int)c->d.output_width, h = (int)c->d.output_height, nc = c->d.output_components;
    *st = alloc_image(c->img, h, w, what, err);
    if (*st != MMCR_OK) return 2;
    c->row = mmcr_alloc((size_t)w * (size_t)nc);
    if (!c->row) {
        *st = mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory", what);
        return 2;
    }
    const size_t plane = (size_t)h * (size_t)w;
    /* Adobe CMYK JPEGs store inverted ink values; with the marker, r = c * k / 255. */
    const int inverted = c->d.saw_Adobe_marker;
    while (c->d.output_scanline < c->d.output_height) {
        const size_t y = c->d.output_scanline;
        JSAMPROW rp = c->row;
        jpeg_read_scanlines(&c->d, &rp, 1);
        for (int x = 0; x < w; x++) {
            const uint8_t *p = c->row + (size_t)x * (size_t)nc;
            size_t o = y * (size_t)w + (size_t)x;
            if (nc == 1) {
                c->img->pixels[o] = c->img->pixels[plane + o] = c->img->pixels[2 * plane + o] = p[0];
            } else if (nc == 4) {
                unsigned k = inverted ? p[3] : 255u - p[3];
                for (int q = 0; q < 3; q++) {
                    unsigned v = inverted ? p[q] : 255u - p[q];
                    c->img->pixels[(size_t)q * plane + o] = (uint8_t)((v * k + 127u) / 255u);
                }
            } else {
                for (int q = 0; q < 3; q++) c->img->pixels[(size_t)q * plane + o] = p[q];
            }
        }
    }
    jpeg_finish_decompress(&c->d);
    return 0;
}

static mmcr_status decode_jpeg(mmcr_image *img, const uint8_t *data, size_t len, const char *what, mmcr_err *err) {
    jpeg_ctx *c = calloc(1, sizeof *c);
    if (!c) return mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory", what);
    c->d.err = jpeg_std_error(&c->pub);
    c->pub.error_exit = jpeg_error_exit_fn;
    c->pub.emit_message = jpeg_emit_fn;
    c->pub.output_message = jpeg_output_fn;
    c->img = img;
    mmcr_status st = MMCR_OK;
    int r = jpeg_decode_inner(c, data, len, what, err, &st);
    if (r == 1)
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': corrupt or unsupported JPEG: %s", what, c->msg);
    else if (r == 0 && c->warnings)
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': corrupt JPEG data: %s", what, c->msg);
    if (c->created) jpeg_destroy_decompress(&c->d);
    mmcr_free(c->row);
    if (st != MMCR_OK) mmcr_image_free(img);
    free(c);
    return st;
}

/* ---------------- entry points ---------------- */

mmcr_status mmcr_image_decode(mmcr_image *img, const void *data, size_t len, const char *what, mmcr_err *err) {
    memset(img, 0, sizeof *img);
    const uint8_t *b = data;
    if (!what) what = "image";
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && memcmp(b, png_sig, 8) == 0) return decode_png(img, b, len, what, err);
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return decode_jpeg(img, b, len, what, err);
    if (len == 0) return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': empty file, not an image", what);
    return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': not a PNG or JPEG file (unknown signature)", what);
}

mmcr_status mmcr_image_load(mmcr_image *img, const char *path, mmcr_err *err) {
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) return mmcr_err_set(err, MMCR_ERR_IO, "cannot open image '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return mmcr_err_set(err, MMCR_ERR_IO, "'%s' is not a regular file", path);
    }
    /* 1 GiB is far beyond any image the decoders accept; refuse before allocating. */
    if (sb.st_size > ((off_t)1 << 30)) {
        fclose(f);
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': file too large for an image (%lld bytes)", path,
                            (long long)sb.st_size);
    }
    size_t len = (size_t)sb.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory", path);
    }
    size_t got = fread(buf, 1, len, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || got != len) {
        free(buf);
        return mmcr_err_set(err, MMCR_ERR_IO, "cannot read image '%s'", path);
    }
    mmcr_status st = mmcr_image_decode(img, buf, len, path, err);
    free(buf);
    return st;
}

/* ---------------- resize ---------------- */

/* Separable resampling weights from n_in samples to n_out: output i reads taps[i] input samples
 * from start[i] with the weights at w + i * max_taps. */
typedef struct resample {
    int n_out, max_taps;
    int *start, *taps;
    float *w;
} resample;

static int resample_plan(resample *r, int n_in, int n_out) {
    const double scale = (double)n_in / (double)n_out;
    r->n_out = n_out;
    r->max_taps = scale > 1.0 ? (int)ceil(scale) + 1 : 2;
    r->start = malloc(sizeof(int) * (size_t)n_out);
    r->taps = malloc(sizeof(int) * (size_t)n_out);
    r->w = calloc((size_t)n_out * (size_t)r->max_taps, sizeof(float));
    if (!r->start || !r->taps || !r->w) return 0;
    for (int i = 0; i < n_out; i++) {
        float *wi = r->w + (size_t)i * (size_t)r->max_taps;
        if (scale > 1.0) {
            /* Area average: output i covers [i*scale, (i+1)*scale) of the input. */
            double lo = i * scale, hi = (i + 1) * scale;
            int j0 = (int)floor(lo), j1 = (int)ceil(hi);
            if (j1 > n_in) j1 = n_in;
            int t = 0;
            for (int j = j0; j < j1 && t < r->max_taps; j++) {
                double a = fmax(lo, (double)j), b = fmin(hi, (double)j + 1.0);
                wi[t++] = (float)((b - a) / scale);
            }
            r->start[i] = j0;
            r->taps[i] = t;
        } else if (n_in == n_out) {
            r->start[i] = i;
            r->taps[i] = 1;
            wi[0] = 1.0f;
        } else {
            /* Bilinear with half-pixel centres, clamped at the border. */
            double x = (i + 0.5) * scale - 0.5;
            if (x < 0) x = 0;
            int j0 = (int)floor(x);
            if (j0 > n_in - 1) j0 = n_in - 1;
            double f = x - j0;
            r->start[i] = j0;
            if (j0 + 1 < n_in) {
                r->taps[i] = 2;
                wi[0] = (float)(1.0 - f);
                wi[1] = (float)f;
            } else {
                r->taps[i] = 1;
                wi[0] = 1.0f;
            }
        }
    }
    return 1;
}

static void resample_free(resample *r) {
    free(r->start);
    free(r->taps);
    free(r->w);
}

mmcr_status mmcr_image_resize_square(const uint8_t *src, int c, int h, int w, uint8_t *dst, int s, mmcr_err *err) {
    if (c < 1 || h < 1 || w < 1 || s < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "resize: bad sizes (c %d, %d x %d -> %d)", c, w, h, s);
    const int m = h > w ? h : w;
    const int oy = (m - h) / 2, ox = (m - w) / 2;
    const size_t sq = (size_t)m * (size_t)m;
    uint8_t *pad = NULL;
    const uint8_t *img = src;
    if (h != w) {
        pad = malloc((size_t)c * sq);
        if (!pad) return mmcr_err_set(err, MMCR_ERR_NOMEM, "resize: out of memory");
        memset(pad, 255, (size_t)c * sq);
        for (int k = 0; k < c; k++)
            for (int y = 0; y < h; y++)
                memcpy(pad + (size_t)k * sq + (size_t)(y + oy) * m + ox, src + ((size_t)k * h + y) * w, (size_t)w);
        img = pad;
    }
    resample r = {0};
    float *tmp = malloc(sizeof(float) * (size_t)c * (size_t)m * (size_t)s);
    if (!tmp || !resample_plan(&r, m, s)) {
        free(pad);
        free(tmp);
        resample_free(&r);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "resize: out of memory");
    }
    /* Horizontal pass: (c, m, m) -> (c, m, s); vertical: (c, m, s) -> (c, s, s). */
    for (int k = 0; k < c; k++)
        for (int y = 0; y < m; y++) {
            const uint8_t *row = img + (size_t)k * sq + (size_t)y * m;
            float *o = tmp + ((size_t)k * m + y) * s;
            for (int i = 0; i < s; i++) {
                const float *wi = r.w + (size_t)i * r.max_taps;
                float acc = 0;
                for (int t = 0; t < r.taps[i]; t++) acc += wi[t] * (float)row[r.start[i] + t];
                o[i] = acc;
            }
        }
    for (int k = 0; k < c; k++)
        for (int i = 0; i < s; i++) {
            const float *wi = r.w + (size_t)i * r.max_taps;
            uint8_t *o = dst + ((size_t)k * s + i) * s;
            for (int x = 0; x < s; x++) {
                float acc = 0;
                for (int t = 0; t < r.taps[i]; t++) acc += wi[t] * tmp[((size_t)k * m + r.start[i] + t) * s + x];
                float v = acc + 0.5f;
                o[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    free(pad);
    free(tmp);
    resample_free(&r);
    return MMCR_OK;
}
