/* The emoji pair builder on a crafted miniature of the gemojione layout (missing PNGs skipped
 * and counted, captions, classes, split rule) and, when installed, on the real package. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/mm_test_images.h"
#include "mmcr/multimodal.h"
#include "test_util.h"

static char dir[256];

static const char *path_of(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static void crafted(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/config", dir);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/assets", dir);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/assets/png", dir);
    mkdir(p, 0777);
    const char *index =
        "{\n"
        " \"grin\": {\"unicode\": \"1f600\", \"name\": \"grinning face\", \"category\": \"people\",\n"
        "            \"keywords\": [\"happy\", \"smile\"]},\n"
        " \"apple\": {\"unicode\": \"1F34E\", \"name\": \"red apple\", \"category\": \"food\", \"keywords\": []},\n"
        " \"ghost\": {\"unicode\": \"1F47B\", \"name\": \"ghost\", \"category\": \"people\", \"keywords\": [\"boo\"]},\n"
        " \"nopng\": {\"unicode\": \"1F999\", \"name\": \"no picture\", \"category\": \"symbols\", \"keywords\": []},\n"
        " \"noname\": {\"unicode\": \"1F47C\", \"category\": \"people\"},\n"
        " \"car\": {\"unicode\": \"1F697\", \"name\": \"automobile\", \"category\": \"travel\", \"keywords\": [\"car\"]}\n"
        "}\n";
    write_file(path_of("config/index.json"), index, strlen(index));
    CHECK(write_solid_png(path_of("assets/png/1F600.png"), 8, 8, 250, 200, 0) == 0);
    CHECK(write_solid_png(path_of("assets/png/1F34E.png"), 8, 8, 220, 0, 0) == 0);
    CHECK(write_solid_png(path_of("assets/png/1F47B.png"), 8, 8, 240, 240, 240) == 0);
    CHECK(write_solid_png(path_of("assets/png/1F47C.png"), 8, 8, 0, 0, 0) == 0);
    CHECK(write_solid_png(path_of("assets/png/1F697.png"), 8, 8, 0, 0, 200) == 0);

    mmcr_pairs tr, te;
    mmcr_emoji_info info;
    mmcr_err err = {{0}};
    /* A fraction that puts some keys on each side for this key set. */
    double frac = 0.5;
    int ntest = 0;
    const char *keys[4] = {"grin", "apple", "ghost", "car"};
    for (int i = 0; i < 4; i++) ntest += mmcr_emoji_is_test(keys[i], frac);
    if (ntest == 0 || ntest == 4) frac = 0.8;
    mmcr_status st = mmcr_emoji_load(&tr, &te, dir, 4, frac, &info, NULL, &err);
    CHECK_MSG(st == MMCR_OK, "%s", err.msg);
    if (st != MMCR_OK) return;
    CHECK(info.entries == 6 && info.skipped_missing == 1 && info.skipped_bad == 1);
    CHECK(info.n_train + info.n_test == 4 && tr.images.n == info.n_train && te.images.n == info.n_test);
    /* Classes from the usable entries only (the missing "symbols" entry contributes none). */
    CHECK(tr.num_classes == 3 && strcmp(tr.class_names[0], "food") == 0 && strcmp(tr.class_names[1], "people") == 0 &&
          strcmp(tr.class_names[2], "travel") == 0);
    CHECK(te.num_classes == 3);
    /* Each pair went to the side the rule says, captions are "name, keywords". */
    int found = 0;
    const mmcr_pairs *sides[2] = {&tr, &te};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < sides[s]->images.n; i++) {
            const char *c = sides[s]->captions[i];
            if (strcmp(c, "grinning face, happy, smile") == 0) {
                found++;
                CHECK(mmcr_emoji_is_test("grin", frac) == s);
                CHECK(sides[s]->images.labels[i] == 1);
                CHECK(sides[s]->images.pixels[0] == 250); /* red plane of the 4 x 4 resize */
            }
            if (strcmp(c, "red apple") == 0) {
                found++;
                CHECK(mmcr_emoji_is_test("apple", frac) == s);
                CHECK(sides[s]->images.labels[i] == 0);
            }
        }
    CHECK(found == 2);
    mmcr_pairs_free(&tr);
    mmcr_pairs_free(&te);

    /* Bad inputs. */
    CHECK(mmcr_emoji_load(&tr, &te, dir, 4, 0.0, NULL, NULL, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_emoji_load(&tr, &te, path_of("nowhere"), 4, 0.2, NULL, NULL, &err) == MMCR_ERR_IO);
    CHECK_MSG(strstr(err.msg, "index.json") != NULL, "%s", err.msg);
    write_file(path_of("config/index.json"), "[1, 2", 5);
    CHECK(mmcr_emoji_load(&tr, &te, dir, 4, 0.2, NULL, NULL, &err) == MMCR_ERR_FORMAT);
    write_file(path_of("config/index.json"), "[1, 2]", 6);
    CHECK(mmcr_emoji_load(&tr, &te, dir, 4, 0.2, NULL, NULL, &err) == MMCR_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "object") != NULL, "%s", err.msg);
}

static void split_rule(void) {
    /* Deterministic, monotone in the fraction, close to the fraction over many keys. */
    int n = 0, mono = 1;
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "key%d", i);
        int a = mmcr_emoji_is_test(key, 0.2), b = mmcr_emoji_is_test(key, 0.3);
        n += a;
        mono &= !a || b;
        CHECK_MSG(a == mmcr_emoji_is_test(key, 0.2), "not deterministic");
    }
    CHECK(mono);
    CHECK_MSG(n > 3700 && n < 4300, "held out %d of 20000 at 0.2", n);
}

static void real_package(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/config/index.json", MMCR_EMOJI_DEFAULT_DIR);
    if (access(p, R_OK) != 0) {
        printf("ruby-gemojione not installed: real-data check skipped\n");
        return;
    }
    mmcr_pairs tr, te;
    mmcr_emoji_info info;
    mmcr_err err = {{0}};
    double t0 = mmcr_now();
    mmcr_status st = mmcr_emoji_load(&tr, &te, MMCR_EMOJI_DEFAULT_DIR, 32, 0.2, &info, NULL, &err);
    double dt = mmcr_now() - t0;
    CHECK_MSG(st == MMCR_OK, "%s", err.msg);
    if (st != MMCR_OK) return;
    printf("gemojione: %d entries, %d missing PNG, %d unusable, %d train, %d test, %d classes, %.2f s\n", info.entries,
           info.skipped_missing, info.skipped_bad, info.n_train, info.n_test, tr.num_classes, dt);
    CHECK(info.entries >= 1700);
    CHECK(info.n_train + info.n_test + info.skipped_missing + info.skipped_bad == info.entries);
    double f = (double)info.n_test / (info.n_train + info.n_test);
    CHECK_MSG(f > 0.17 && f < 0.23, "held-out fraction %.3f", f);
    CHECK(tr.num_classes >= 8 && tr.num_classes <= MMCR_MM_MAX_CLASSES);
    CHECK(mmcr_pairs_class_index(&tr, "flags") >= 0 && mmcr_pairs_class_index(&tr, "food") >= 0);
    CHECK(tr.images.h == 32 && tr.images.c == 3);
    mmcr_pairs_free(&tr);
    mmcr_pairs_free(&te);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/mmcr_emoji_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    crafted();
    split_rule();
    real_package();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("test_emoji");
}
