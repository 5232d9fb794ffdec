/* Test helpers: encode small PNG / JPEG images in memory or to files with libpng and
 * libjpeg, so the decoder tests need no binary fixtures. */
#ifndef MMCR_MM_TEST_IMAGES_H
#define MMCR_MM_TEST_IMAGES_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* jpeglib.h needs size_t and FILE first. */
#include <jpeglib.h>
#include <png.h>

typedef struct mem_buf {
    unsigned char *data;
    size_t len, cap;
} mem_buf;

static inline void mem_write_fn(png_structp png, png_bytep d, size_t n) {
    mem_buf *b = png_get_io_ptr(png);
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        unsigned char *nd = realloc(b->data, cap);
        if (!nd) png_error(png, "oom");
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, d, n);
    b->len += n;
}
static inline void mem_flush_fn(png_structp png) { (void)png; }

/* Encodes rows (h rows of rowbytes as libpng expects for color_type/bit_depth; 16-bit samples
 * big-endian). palette/trans optional. Returns 0 on success. */
static inline int png_encode(mem_buf *out, int w, int h, int color_type, int bit_depth, int interlace,
                      const unsigned char *rows, size_t rowbytes, const png_color *palette, int npal,
                      const unsigned char *trans, int ntrans) {
    memset(out, 0, sizeof *out);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return 1;
    }
    png_set_write_fn(png, out, mem_write_fn, mem_flush_fn);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bit_depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, npal);
    if (trans) png_set_tRNS(png, info, trans, ntrans, NULL);
    png_write_info(png, info);
    png_bytep *rp = malloc(sizeof(png_bytep) * (size_t)h);
    for (int y = 0; y < h; y++) rp[y] = (png_bytep)(rows + (size_t)y * rowbytes);
    png_write_image(png, rp);
    png_write_end(png, NULL);
    free(rp);
    png_destroy_write_struct(&png, &info);
    return 0;
}

/* 8-bit RGB (alpha 0) or RGBA (alpha 1) interleaved pixels -> PNG bytes. */
static inline int png_encode_rgb(mem_buf *out, int w, int h, int alpha, const unsigned char *px) {
    return png_encode(out, w, h, alpha ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, 8, 0, px,
                      (size_t)w * (alpha ? 4 : 3), NULL, 0, NULL, 0);
}

/* Interleaved RGB (components 3) or gray (1) -> JPEG bytes at the given quality. */
static inline int jpeg_encode(mem_buf *out, int w, int h, int components, const unsigned char *px, int quality) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&c, &buf, &len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = components;
    c.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = (JSAMPROW)(px + (size_t)c.next_scanline * (size_t)w * (size_t)components);
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    out->data = buf; /* malloc'd by libjpeg-turbo's memory destination: free() */
    out->len = len;
    out->cap = len;
    return 0;
}

static inline int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) != 0 || w != len;
}

/* A w x h RGB PNG of one colour, written to path. */
static inline int write_solid_png(const char *path, int w, int h, unsigned char r, unsigned char g, unsigned char b) {
    unsigned char *px = malloc((size_t)w * (size_t)h * 3);
    for (int i = 0; i < w * h; i++) {
        px[3 * i] = r;
        px[3 * i + 1] = g;
        px[3 * i + 2] = b;
    }
    mem_buf m;
    int rc = png_encode_rgb(&m, w, h, 0, px);
    if (!rc) rc = write_file(path, m.data, m.len);
    free(m.data);
    free(px);
    return rc;
}

#endif
