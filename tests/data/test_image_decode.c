/* PNG/JPEG decoding (every PNG colour type, bit depth, alpha over white, interlacing), corrupt
 * and truncated files (errors, no crash), and the square resize. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "data/mm_test_images.h"
#include "mmcr/multimodal.h"
#include "test_util.h"

static int px(const mmcr_image *im, int ch, int y, int x) {
    return im->pixels[((size_t)ch * im->h + (size_t)y) * im->w + (size_t)x];
}

static void test_png_rgb_rgba(void) {
    /* 3 x 2 RGB. */
    unsigned char rgb[2 * 3 * 3];
    for (int i = 0; i < 18; i++) rgb[i] = (unsigned char)(i * 13 + 1);
    mem_buf m;
    CHECK(png_encode_rgb(&m, 3, 2, 0, rgb) == 0);
    mmcr_image im;
    mmcr_err err = {{0}};
    CHECK(mmcr_image_decode(&im, m.data, m.len, "rgb.png", &err) == MMCR_OK);
    CHECK(im.c == 3 && im.h == 2 && im.w == 3);
    int ok = 1;
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            for (int c = 0; c < 3; c++) ok &= px(&im, c, y, x) == rgb[(y * 3 + x) * 3 + c];
    CHECK_MSG(ok, "RGB pixels differ");
    mmcr_image_free(&im);
    free(m.data);

    /* RGBA: opaque, fully transparent (-> white), half transparent (-> blend with white). */
    unsigned char rgba[3 * 4] = {10, 20, 30, 255, 10, 20, 30, 0, 0, 100, 200, 128};
    CHECK(png_encode_rgb(&m, 3, 1, 1, rgba) == 0);
    CHECK(mmcr_image_decode(&im, m.data, m.len, "rgba.png", &err) == MMCR_OK);
    CHECK(px(&im, 0, 0, 0) == 10 && px(&im, 1, 0, 0) == 20 && px(&im, 2, 0, 0) == 30);
    CHECK(px(&im, 0, 0, 1) == 255 && px(&im, 1, 0, 1) == 255 && px(&im, 2, 0, 1) == 255);
    /* a = 128/255: 0 -> 127 (127.0), 100 -> 177 (177.2), 200 -> 227 (227.3) */
    CHECK_MSG(px(&im, 0, 0, 2) == 127 && px(&im, 1, 0, 2) == 177 && px(&im, 2, 0, 2) == 227, "blend %d %d %d",
              px(&im, 0, 0, 2), px(&im, 1, 0, 2), px(&im, 2, 0, 2));
    mmcr_image_free(&im);
    free(m.data);
}

static void test_png_palette_gray_16bit(void) {
    mem_buf m;
    mmcr_image im;
    mmcr_err err = {{0}};
    /* 4-bit palette with a tRNS entry: index 2 is transparent. */
    png_color pal[3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    unsigned char trans[3] = {255, 255, 0};
    unsigned char row[2] = {0x01, 0x20}; /* pixels 0, 1, 2, 0 (4 bits each) */
    CHECK(png_encode(&m, 4, 1, PNG_COLOR_TYPE_PALETTE, 4, 0, row, 2, pal, 3, trans, 3) == 0);
    CHECK(mmcr_image_decode(&im, m.data, m.len, "pal.png", &err) == MMCR_OK);
    CHECK(px(&im, 0, 0, 0) == 255 && px(&im, 1, 0, 0) == 0);
    CHECK(px(&im, 1, 0, 1) == 255 && px(&im, 0, 0, 1) == 0);
    CHECK(px(&im, 0, 0, 2) == 255 && px(&im, 1, 0, 2) == 255 && px(&im, 2, 0, 2) == 255); /* transparent -> white */
    mmcr_image_free(&im);
    free(m.data);

    /* 1-bit gray: 1 0 1 1 0 0 0 1 -> 255 / 0. */
    unsigned char g1 = 0xB1;
    CHECK(png_encode(&m, 8, 1, PNG_COLOR_TYPE_GRAY, 1, 0, &g1, 1, NULL, 0, NULL, 0) == 0);
    CHECK(mmcr_image_decode(&im, m.data, m.len, "g1.png", &err) == MMCR_OK);
    int expect[8] = {255, 0, 255, 255, 0, 0, 0, 255}, ok = 1;
    for (int x = 0; x < 8; x++) ok &= px(&im, 0, 0, x) == expect[x] && px(&im, 2, 0, x) == expect[x];
    CHECK_MSG(ok, "1-bit gray");
    mmcr_image_free(&im);
    free(m.data);

    /* 16-bit gray + alpha (big-endian samples): value 0x8080 (-> 128), opaque; value 0, alpha 0. */
    unsigned char ga16[8] = {0x80, 0x80, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00};
    CHECK(png_encode(&m, 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0, ga16, 8, NULL, 0, NULL, 0) == 0);
    CHECK(mmcr_image_decode(&im, m.data, m.len, "ga16.png", &err) == MMCR_OK);
    CHECK_MSG(px(&im, 0, 0, 0) == 128 && px(&im, 1, 0, 0) == 128, "16-bit gray %d", px(&im, 0, 0, 0));
    CHECK(px(&im, 0, 0, 1) == 255);
    mmcr_image_free(&im);
    free(m.data);

    /* 16-bit RGB, interlaced, 9 x 9 so that all Adam7 passes are used. */
    enum { W = 9 };
    unsigned char rgb16[W * W * 6];
    for (int i = 0; i < W * W; i++)
        for (int c = 0; c < 3; c++) {
            int v = (i * 7 + c * 50) % 256;
            rgb16[i * 6 + 2 * c] = (unsigned char)v;
            rgb16[i * 6 + 2 * c + 1] = (unsigned char)v;
        }
    CHECK(png_encode(&m, W, W, PNG_COLOR_TYPE_RGB, 16, 1, rgb16, W * 6, NULL, 0, NULL, 0) == 0);
    CHECK(mmcr_image_decode(&im, m.data, m.len, "rgb16i.png", &err) == MMCR_OK);
    ok = im.w == W && im.h == W;
    for (int i = 0; ok && i < W * W; i++)
        for (int c = 0; c < 3; c++) ok &= px(&im, c, i / W, i % W) == (i * 7 + c * 50) % 256;
    CHECK_MSG(ok, "16-bit interlaced RGB");
    mmcr_image_free(&im);
    free(m.data);
}

static void test_jpeg(void) {
    enum { W = 16, H = 8 };
    unsigned char rgb[W * H * 3], gray[W * H];
    for (int i = 0; i < W * H; i++) {
        rgb[3 * i] = 200;
        rgb[3 * i + 1] = 40;
        rgb[3 * i + 2] = 90;
        gray[i] = 77;
    }
    mem_buf m;
    mmcr_image im;
    mmcr_err err = {{0}};
    jpeg_encode(&m, W, H, 3, rgb, 95);
    CHECK(mmcr_image_decode(&im, m.data, m.len, "a.jpg", &err) == MMCR_OK);
    CHECK(im.w == W && im.h == H);
    CHECK_MSG(abs(px(&im, 0, 3, 5) - 200) <= 3 && abs(px(&im, 1, 3, 5) - 40) <= 3 && abs(px(&im, 2, 3, 5) - 90) <= 3,
              "jpeg colour %d %d %d", px(&im, 0, 3, 5), px(&im, 1, 3, 5), px(&im, 2, 3, 5));
    mmcr_image_free(&im);
    /* Truncated JPEG: an error naming the source, not grey fill and not an exit. */
    CHECK(mmcr_image_decode(&im, m.data, m.len / 2, "cut.jpg", &err) == MMCR_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "cut.jpg") != NULL, "%s", err.msg);
    CHECK(im.pixels == NULL);
    /* Garbage after the SOI marker. */
    unsigned char junk[64];
    memcpy(junk, m.data, 4);
    for (int i = 4; i < 64; i++) junk[i] = (unsigned char)(i * 37);
    CHECK(mmcr_image_decode(&im, junk, sizeof junk, "junk.jpg", &err) == MMCR_ERR_FORMAT);
    free(m.data);

    jpeg_encode(&m, W, H, 1, gray, 95);
    CHECK(mmcr_image_decode(&im, m.data, m.len, "g.jpg", &err) == MMCR_OK);
    CHECK(abs(px(&im, 0, 1, 1) - 77) <= 2 && px(&im, 0, 1, 1) == px(&im, 1, 1, 1) && px(&im, 1, 1, 1) == px(&im, 2, 1, 1));
    mmcr_image_free(&im);
    free(m.data);
}

static void test_corrupt_png(void) {
    unsigned char rgb[8 * 8 * 3];
    for (int i = 0; i < (int)sizeof rgb; i++) rgb[i] = (unsigned char)(i * 5);
    mem_buf m;
    mmcr_image im;
    mmcr_err err = {{0}};
    CHECK(png_encode_rgb(&m, 8, 8, 0, rgb) == 0);
    /* Every truncation length: an error, never a crash. */
    int all_err = 1;
    for (size_t cut = 0; cut < m.len - 12; cut += 3) {
        mmcr_status st = mmcr_image_decode(&im, m.data, cut, "cut.png", &err);
        all_err &= st == MMCR_ERR_FORMAT && im.pixels == NULL;
        if (st == MMCR_OK) mmcr_image_free(&im);
    }
    CHECK_MSG(all_err, "a truncated PNG decoded");
    mmcr_image_decode(&im, m.data, m.len / 2, "cut.png", &err);
    CHECK_MSG(strstr(err.msg, "cut.png") && strstr(err.msg, "PNG"), "%s", err.msg);
    /* A flipped byte inside the IDAT data: CRC error. */
    unsigned char *bad = malloc(m.len);
    memcpy(bad, m.data, m.len);
    bad[m.len - 20] ^= 0x55;
    CHECK(mmcr_image_decode(&im, bad, m.len, "crc.png", &err) == MMCR_ERR_FORMAT);
    /* Not an image at all / empty. */
    CHECK(mmcr_image_decode(&im, "hello world", 11, "t.txt", &err) == MMCR_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "t.txt") && strstr(err.msg, "signature"), "%s", err.msg);
    CHECK(mmcr_image_decode(&im, "", 0, "e.png", &err) == MMCR_ERR_FORMAT);
    free(bad);
    free(m.data);
    /* Missing file: I/O error naming it. */
    CHECK(mmcr_image_load(&im, "/nonexistent/dir/x.png", &err) == MMCR_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent/dir/x.png") != NULL);
}

static void test_resize(void) {
    mmcr_err err = {{0}};
    /* 4 x 4 -> 2 x 2 averages 2 x 2 blocks exactly. */
    uint8_t src[3 * 16], dst[3 * 4];
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 16; i++) src[c * 16 + i] = (uint8_t)(c * 60 + i * 4);
    CHECK(mmcr_image_resize_square(src, 3, 4, 4, dst, 2, &err) == MMCR_OK);
    /* block (0,0): pixels 0,1,4,5 -> mean index 2.5 -> 10 (+ c*60) */
    CHECK(dst[0] == 10 && dst[1] == 18 && dst[2] == 42 && dst[3] == 50);
    CHECK(dst[4] == 70);
    /* 3 -> 2: area weights (1, .5) / 1.5 and (.5, 1) / 1.5. */
    uint8_t s3[9] = {0, 30, 90, 0, 30, 90, 0, 30, 90}, d2[4];
    CHECK(mmcr_image_resize_square(s3, 1, 3, 3, d2, 2, &err) == MMCR_OK);
    CHECK_MSG(d2[0] == 10 && d2[1] == 70 && d2[2] == 10, "%d %d", d2[0], d2[1]);
    /* Constant images stay constant whatever the scale. */
    uint8_t k[25], big[49];
    memset(k, 123, sizeof k);
    CHECK(mmcr_image_resize_square(k, 1, 5, 5, big, 7, &err) == MMCR_OK);
    int ok = 1;
    for (int i = 0; i < 49; i++) ok &= big[i] == 123;
    CHECK(ok);
    /* Enlarge 2 -> 4 bilinear, half-pixel centres: 0, 255 -> 0, 64, 191, 255. */
    uint8_t s2[4] = {0, 255, 0, 255}, d4[16];
    CHECK(mmcr_image_resize_square(s2, 1, 2, 2, d4, 4, &err) == MMCR_OK);
    CHECK_MSG(d4[0] == 0 && d4[1] == 64 && d4[2] == 191 && d4[3] == 255, "%d %d %d %d", d4[0], d4[1], d4[2], d4[3]);
    /* Non-square: a 2 x 4 (h x w) black image is centred on white: rows 0 and 3 white. */
    uint8_t rect[8], sq[16];
    memset(rect, 0, sizeof rect);
    CHECK(mmcr_image_resize_square(rect, 1, 2, 4, sq, 4, &err) == MMCR_OK);
    CHECK(sq[0] == 255 && sq[3] == 255 && sq[4] == 0 && sq[11] == 0 && sq[12] == 255 && sq[15] == 255);
    CHECK(mmcr_image_resize_square(rect, 1, 0, 4, sq, 4, &err) == MMCR_ERR_ARG);
}

/* One real emoji (Debian ruby-gemojione), when installed: 64 x 64, transparent corner -> white. */
static void test_real_emoji(void) {
    const char *path = MMCR_EMOJI_DEFAULT_DIR "/assets/png/1F4AF.png";
    if (access(path, R_OK) != 0) {
        printf("ruby-gemojione not installed: real-emoji check skipped\n");
        return;
    }
    mmcr_image im;
    mmcr_err err = {{0}};
    CHECK(mmcr_image_load(&im, path, &err) == MMCR_OK);
    CHECK(im.w == 64 && im.h == 64);
    CHECK(px(&im, 0, 0, 0) == 255 && px(&im, 1, 0, 0) == 255 && px(&im, 2, 0, 0) == 255);
    /* The "100" symbol is red: some pixel is clearly red. */
    int red = 0;
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++) red |= px(&im, 0, y, x) > 200 && px(&im, 1, y, x) < 120;
    CHECK(red);
    mmcr_image_free(&im);
}

int main(void) {
    test_png_rgb_rgba();
    test_png_palette_gray_16bit();
    test_jpeg();
    test_corrupt_png();
    test_resize();
    test_real_emoji();
    return test_finish("test_image_decode");
}
