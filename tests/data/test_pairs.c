/* Pair files: the documented format (header, comments, blank lines, CRLF, quotes, labels,
 * relative paths), the round trip through mmcr_pairs_write_tsv, and clear errors naming the
 * file and line for bad rows, missing and corrupt images. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/mm_test_images.h"
#include "mmcr/multimodal.h"
#include "test_util.h"

static char dir[256];

static void put(const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_file(p, text, strlen(text));
}

static const char *path_of(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* Loads name and expects failure st with all of the fragments in the message. */
static void expect_error(const char *name, mmcr_status want, const char *frag1, const char *frag2) {
    mmcr_pairs p;
    mmcr_err err = {{0}};
    mmcr_status st = mmcr_pairs_load_tsv(&p, path_of(name), 8, NULL, &err);
    CHECK_MSG(st == want, "%s: status %d (%s)", name, (int)st, err.msg);
    CHECK_MSG(strstr(err.msg, name) != NULL, "%s: message does not name the file: %s", name, err.msg);
    CHECK_MSG(!frag1 || strstr(err.msg, frag1), "%s: '%s' not in: %s", name, frag1, err.msg);
    CHECK_MSG(!frag2 || strstr(err.msg, frag2), "%s: '%s' not in: %s", name, frag2, err.msg);
    CHECK(p.images.n == 0 && p.captions == NULL);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/mmcr_pairs_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char sub[300];
    snprintf(sub, sizeof sub, "%s/img", dir);
    mkdir(sub, 0777);
    CHECK(write_solid_png(path_of("img/red.png"), 4, 4, 255, 0, 0) == 0);
    CHECK(write_solid_png(path_of("img/blue.png"), 6, 3, 0, 0, 255) == 0);
    CHECK(write_solid_png(path_of("green.png"), 2, 2, 0, 255, 0) == 0);
    put("corrupt.png", "\x89PNG\r\n\x1a\n this is not a real PNG stream");

    /* A well-formed file with every feature of the format. */
    char good[2048];
    snprintf(good, sizeof good,
             "# a comment line\n"
             "path\tcaption\tlabel\n"
             "\n"
             "img/red.png\tA \"red\" square, isn't it?\tcolour\r\n"
             "   \n"
             "%s/green.png\tgreen  # not a comment\tcolour\n"
             "img/blue.png\tblue wide image\tshape\n",
             dir);
    put("good.tsv", good);
    mmcr_pairs p;
    mmcr_err err = {{0}};
    mmcr_status st = mmcr_pairs_load_tsv(&p, path_of("good.tsv"), 8, NULL, &err);
    CHECK_MSG(st == MMCR_OK, "%s", err.msg);
    if (st == MMCR_OK) {
        CHECK(p.images.n == 3 && p.images.c == 3 && p.images.h == 8 && p.images.w == 8);
        CHECK(strcmp(p.captions[0], "A \"red\" square, isn't it?") == 0);
        CHECK(strcmp(p.captions[1], "green  # not a comment") == 0);
        CHECK(p.num_classes == 2 && strcmp(p.class_names[0], "colour") == 0 && strcmp(p.class_names[1], "shape") == 0);
        CHECK(p.images.labels[0] == 0 && p.images.labels[1] == 0 && p.images.labels[2] == 1);
        CHECK(strcmp(p.sources[0], path_of("img/red.png")) == 0);
        CHECK(strcmp(p.sources[1], path_of("green.png")) == 0);
        const uint8_t *r = p.images.pixels, *g = p.images.pixels + 3 * 64, *b = p.images.pixels + 6 * 64;
        CHECK(r[0] == 255 && r[64] == 0 && r[128] == 0);
        CHECK(g[0] == 0 && g[64] == 255);
        /* blue 6 x 3 is letterboxed: top row white, middle row blue. */
        CHECK(b[0] == 255 && b[128] == 255);
        CHECK(b[4 * 8 + 4] == 0 && b[128 + 4 * 8 + 4] == 255);

        /* Round trip. */
        CHECK(mmcr_pairs_write_tsv(&p, path_of("out.tsv"), &err) == MMCR_OK);
        mmcr_pairs q;
        CHECK(mmcr_pairs_load_tsv(&q, path_of("out.tsv"), 8, NULL, &err) == MMCR_OK);
        CHECK(q.images.n == 3);
        int same = q.images.n == 3;
        for (int i = 0; same && i < 3; i++)
            same = strcmp(q.captions[i], p.captions[i]) == 0 && q.images.labels[i] == p.images.labels[i];
        CHECK(same);
        CHECK(memcmp(q.images.pixels, p.images.pixels, 3 * 3 * 64) == 0);
        mmcr_pairs_free(&q);

        /* Subset keeps captions and labels. */
        uint32_t idx[2] = {2, 0};
        CHECK(mmcr_pairs_subset(&q, &p, idx, 2, &err) == MMCR_OK);
        CHECK(q.images.n == 2 && strcmp(q.captions[0], "blue wide image") == 0 && q.images.labels[0] == 1);
        CHECK(q.num_classes == 2);
        mmcr_pairs_free(&q);
        /* A caption with a tab cannot be written. */
        char *saved = p.captions[0];
        p.captions[0] = (char *)"bad\tcaption";
        CHECK(mmcr_pairs_write_tsv(&p, path_of("bad_out.tsv"), &err) == MMCR_ERR_ARG);
        p.captions[0] = saved;
        mmcr_pairs_free(&p);
    }
    CHECK(p.images.n == 0 && p.captions == NULL);
    mmcr_pairs_free(&p); /* twice is harmless */

    /* Without labels. */
    put("nolabel.tsv", "img/red.png\tred\ngreen.png\tgreen\n");
    CHECK(mmcr_pairs_load_tsv(&p, path_of("nolabel.tsv"), 4, NULL, &err) == MMCR_OK);
    CHECK(p.images.n == 2 && p.images.labels == NULL && p.num_classes == 0);
    mmcr_pairs_free(&p);

    /* Errors: each names the file and the line. */
    put("notab.tsv", "# c\nimg/red.png\tred\nimg/red.png red\n");
    expect_error("notab.tsv", MMCR_ERR_FORMAT, ":3:", "no tab");
    put("empty_caption.tsv", "img/red.png\tred\nimg/red.png\t\n");
    expect_error("empty_caption.tsv", MMCR_ERR_FORMAT, ":2:", "empty caption");
    put("blank_caption.tsv", "path\tcaption\nimg/red.png\t   \t\n");
    expect_error("blank_caption.tsv", MMCR_ERR_FORMAT, ":2:", "empty");
    put("space_caption.tsv", "img/red.png\t  \n");
    expect_error("space_caption.tsv", MMCR_ERR_FORMAT, ":1:", "empty caption");
    put("empty_path.tsv", "\tcaption\n");
    expect_error("empty_path.tsv", MMCR_ERR_FORMAT, ":1:", "empty image path");
    put("fields.tsv", "img/red.png\ta\tb\tc\n");
    expect_error("fields.tsv", MMCR_ERR_FORMAT, ":1:", "4 tab-separated fields");
    put("mixed.tsv", "img/red.png\ta\tx\ngreen.png\tb\n");
    expect_error("mixed.tsv", MMCR_ERR_FORMAT, ":2:", "label");
    put("missing.tsv", "img/red.png\tred\n# gap\nimg/nothere.png\tmissing\n");
    expect_error("missing.tsv", MMCR_ERR_IO, ":3:", "nothere.png");
    put("corrupt.tsv", "img/red.png\tred\ncorrupt.png\tbroken\n");
    expect_error("corrupt.tsv", MMCR_ERR_FORMAT, ":2:", "corrupt.png");
    put("text_image.tsv", "good.tsv\tnot an image\n");
    expect_error("text_image.tsv", MMCR_ERR_FORMAT, ":1:", "not a PNG or JPEG");
    put("only_comments.tsv", "# nothing\n\npath\tcaption\n");
    expect_error("only_comments.tsv", MMCR_ERR_FORMAT, "no pairs", NULL);
    put("nul.tsv", "img/red.png\tr\0d\n");
    {
        /* put() stops at the NUL: write it explicitly. */
        const char t[] = "img/red.png\tr\0d\n";
        write_file(path_of("nul.tsv"), t, sizeof t - 1);
    }
    expect_error("nul.tsv", MMCR_ERR_FORMAT, ":1:", "NUL");
    CHECK(mmcr_pairs_load_tsv(&p, path_of("does_not_exist.tsv"), 8, NULL, &err) == MMCR_ERR_IO);
    CHECK(strstr(err.msg, "does_not_exist.tsv") != NULL);
    CHECK(mmcr_pairs_load_tsv(&p, path_of("good.tsv"), 0, NULL, &err) == MMCR_ERR_ARG);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("test_pairs");
}
