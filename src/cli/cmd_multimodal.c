/* mmcr multimodal: image-text training and evaluation, MMCR against CLIP.
 *   train    one run (options: mmcr_mm_options), prints the held-out results as JSON
 *   eval     a checkpoint on held-out pairs (the checkpoint's own split unless --test-tsv)
 *   compare  the grid methods x batch sizes x seeds, resumable; markdown table + PNG plots
 *   export   the emoji split as two pair files (train.tsv, test.tsv) */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "mmcr/multimodal.h"
#include "mmcr/plot.h"

typedef struct mm_cli {
    mmcr_mm_config mm;
    /* eval */
    char checkpoint[MMCR_OPT_STRLEN];
    /* compare */
    char batches[MMCR_OPT_STRLEN], seeds[MMCR_OPT_STRLEN];
    char runs_dir[MMCR_OPT_STRLEN], table[MMCR_OPT_STRLEN], img_dir[MMCR_OPT_STRLEN], img_link[MMCR_OPT_STRLEN];
    /* export */
    char out_dir[MMCR_OPT_STRLEN];
} mm_cli;

#define XOFF(f) offsetof(mm_cli, f)
static const mmcr_option eval_extra[] = {
    {"checkpoint", MMCR_OPT_STRING, XOFF(checkpoint), "", 0, 0, NULL,
     "checkpoint.safetensors written by 'mmcr multimodal train' (required)"},
};
static const mmcr_option compare_extra[] = {
    {"batches", MMCR_OPT_STRING, XOFF(batches), "32,64,128,256", 0, 0, NULL, "batch sizes P (comma-separated, up to 8)"},
    {"seeds", MMCR_OPT_STRING, XOFF(seeds), "0,1,2", 0, 0, NULL, "seeds (comma-separated, up to 8)"},
    {"runs-dir", MMCR_OPT_STRING, XOFF(runs_dir), "runs/multimodal-compare", 0, 0, NULL,
     "one folder per run (<method>-b<P>-s<seed>); runs with a results.json are not redone"},
    {"table", MMCR_OPT_STRING, XOFF(table), "docs/multimodal-results.md", 0, 0, NULL, "markdown table to write"},
    {"img-dir", MMCR_OPT_STRING, XOFF(img_dir), "docs/img", 0, 0, NULL, "folder for the PNG plots"},
    {"img-link", MMCR_OPT_STRING, XOFF(img_link), "img", 0, 0, NULL,
     "how the table links to --img-dir (relative to the table's folder)"},
};
static const mmcr_option export_extra[] = {
    {"out-dir", MMCR_OPT_STRING, XOFF(out_dir), "", 0, 0, NULL, "folder for train.tsv and test.tsv (required)"},
};

/* The training options (shifted into mm_cli) followed by the extras of a subcommand. */
static mmcr_option *build_table(const mmcr_option *extra, int n_extra, int *n) {
    int nmm;
    const mmcr_option *mm = mmcr_mm_options(&nmm);
    mmcr_option *t = calloc((size_t)(nmm + n_extra), sizeof *t);
    if (!t) return NULL;
    for (int i = 0; i < nmm; i++) {
        t[i] = mm[i];
        t[i].offset += offsetof(mm_cli, mm);
    }
    for (int i = 0; i < n_extra; i++) t[nmm + i] = extra[i];
    *n = nmm + n_extra;
    return t;
}

static int parse_list(const char *opt, const char *s, int *out, int max, int lo) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || v < lo || v > INT_MAX) {
            fprintf(stderr, "mmcr multimodal: --%s '%s': expected comma-separated integers >= %d\n", opt, s, lo);
            return -1;
        }
        if (n == max) {
            fprintf(stderr, "mmcr multimodal: --%s: at most %d values\n", opt, max);
            return -1;
        }
        out[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (n == 0) fprintf(stderr, "mmcr multimodal: --%s is empty\n", opt);
    return n ? n : -1;
}

/* `multimodal eval` shares the training table, but the checkpoint defines the model and the data
 * split: a training option given here would be ignored, so it is refused instead. */
static int eval_check_options(const mmcr_option *opts, int n, const mm_cli *c) {
    static const char *const applies[] = {"checkpoint", "data", "test-tsv", "threads", "quiet"};
    mm_cli d;
    mmcr_err err = {{0}};
    memset(&d, 0, sizeof d);
    if (mmcr_options_defaults(opts, n, &d, &err) != MMCR_OK) {
        fprintf(stderr, "mmcr multimodal eval: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        int ok = 0;
        for (size_t j = 0; j < sizeof applies / sizeof applies[0]; j++) ok |= !strcmp(opts[i].name, applies[j]);
        if (ok) continue;
        const char *a = (const char *)c + opts[i].offset, *b = (const char *)&d + opts[i].offset;
        int same;
        if (opts[i].type == MMCR_OPT_STRING) same = !strcmp(a, b);
        else if (opts[i].type == MMCR_OPT_DOUBLE) same = !memcmp(a, b, sizeof(double));
        else same = !memcmp(a, b, sizeof(int));
        if (!same) {
            fprintf(stderr,
                    "mmcr multimodal eval: option --%s does not apply to eval (the checkpoint defines the model and "
                    "its data; eval takes --checkpoint, --data tsv --test-tsv FILE, --threads)\n",
                    opts[i].name);
            return 2;
        }
    }
    return -1;
}

static void usage(FILE *f) {
    fprintf(f, "usage: mmcr multimodal <train|eval|compare|export> [options]\n\n"
               "  train    train MMCR or CLIP on image-text pairs and evaluate on the held-out pairs\n"
               "  eval     evaluate a checkpoint (--checkpoint FILE) on held-out pairs\n"
               "  compare  MMCR and CLIP at several batch sizes and seeds: table + plots (resumable)\n"
               "  export   write the emoji split as pair files (--out-dir DIR)\n\n"
               "Run 'mmcr multimodal <sub> --help' for the options.\n");
}

int cmd_multimodal(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    const mmcr_option *extra = NULL;
    int n_extra = 0;
    const char *cmd = NULL, *use = NULL;
    if (!strcmp(sub, "train")) {
        cmd = "multimodal train";
        use = "[--method mmcr|clip] [--batch P] [--key value ...] [--config FILE]";
    } else if (!strcmp(sub, "eval")) {
        extra = eval_extra;
        n_extra = 1;
        cmd = "multimodal eval";
        use = "--checkpoint FILE [--data tsv --test-tsv FILE]";
    } else if (!strcmp(sub, "compare")) {
        extra = compare_extra;
        n_extra = (int)(sizeof compare_extra / sizeof compare_extra[0]);
        cmd = "multimodal compare";
        use = "[--batches 32,64,128,256] [--seeds 0,1,2] [training options]";
    } else if (!strcmp(sub, "export")) {
        extra = export_extra;
        n_extra = 1;
        cmd = "multimodal export";
        use = "--out-dir DIR [--emoji-dir DIR] [--test-fraction F]";
    } else {
        fprintf(stderr, "mmcr multimodal: unknown subcommand '%s'\n", sub);
        usage(stderr);
        return 2;
    }
    int n;
    mmcr_option *opts = build_table(extra, n_extra, &n);
    if (!opts) {
        fprintf(stderr, "mmcr multimodal: out of memory\n");
        return 1;
    }
    mm_cli c;
    memset(&c, 0, sizeof c);
    int rc = cli_parse(cmd, use, opts, n, &c, argc - 1, argv + 1, NULL, 0, NULL);
    if (rc < 0 && !strcmp(sub, "eval")) rc = eval_check_options(opts, n, &c);
    free(opts);
    if (rc >= 0) return rc;
    mmcr_logger lg = cli_logger();
    mmcr_err err = {{0}};
    mmcr_status st = MMCR_OK;
    mmcr_pairs train = {0}, test = {0};
    if (!strcmp(sub, "train")) {
        if (c.mm.quiet) lg.fn = NULL;
        st = mmcr_mm_load_data(&c.mm, &train, &test, &lg, &err);
        mmcr_mm_metrics m;
        if (st == MMCR_OK) st = mmcr_mm_train(&c.mm, &train, &test, &lg, &m, &err);
        if (st == MMCR_OK) mmcr_mm_print_results(stdout, &c.mm, &test, &m);
    } else if (!strcmp(sub, "eval")) {
        if (!c.checkpoint[0]) {
            fprintf(stderr, "mmcr multimodal eval: --checkpoint is required\n");
            return 2;
        }
        /* The checkpoint's data settings, unless pair files are given here. */
        mmcr_mm_config ck;
        st = mmcr_mm_checkpoint_config(c.checkpoint, &ck, &err);
        if (st == MMCR_OK) {
            if (c.mm.data == MMCR_MM_DATA_TSV && c.mm.test_tsv[0]) {
                ck.data = MMCR_MM_DATA_TSV;
                snprintf(ck.test_tsv, sizeof ck.test_tsv, "%s", c.mm.test_tsv);
                st = mmcr_pairs_load_tsv(&test, ck.test_tsv, ck.image_size, &lg, &err);
            } else {
                st = mmcr_mm_load_data(&ck, &train, &test, &lg, &err);
            }
        }
        mmcr_set_threads(c.mm.threads);
        mmcr_mm_metrics m;
        if (st == MMCR_OK) st = mmcr_mm_eval_checkpoint(c.checkpoint, &test, &lg, &m, &err);
        if (st == MMCR_OK) {
            m.final_loss = NAN;
            mmcr_mm_print_results(stdout, &ck, &test, &m);
        }
    } else if (!strcmp(sub, "compare")) {
        mmcr_mm_compare_config cc;
        memset(&cc, 0, sizeof cc);
        cc.n_batches = parse_list("batches", c.batches, cc.batches, 8, 2);
        cc.n_seeds = parse_list("seeds", c.seeds, cc.seeds, 8, 0);
        if (cc.n_batches < 0 || cc.n_seeds < 0) return 2;
        snprintf(cc.runs_dir, sizeof cc.runs_dir, "%s", c.runs_dir);
        snprintf(cc.table, sizeof cc.table, "%s", c.table);
        snprintf(cc.img_dir, sizeof cc.img_dir, "%s", c.img_dir);
        snprintf(cc.img_link, sizeof cc.img_link, "%s", c.img_link);
        st = mmcr_mm_compare(&c.mm, &cc, &lg, &err);
        if (st == MMCR_OK) printf("{\"table\":\"%s\",\"img_dir\":\"%s\"}\n", cc.table, cc.img_dir);
        mmcr_plot_release_caches();
    } else {
        if (!c.out_dir[0]) {
            fprintf(stderr, "mmcr multimodal export: --out-dir is required\n");
            return 2;
        }
        c.mm.data = MMCR_MM_DATA_EMOJI;
        st = mmcr_mm_load_data(&c.mm, &train, &test, &lg, &err);
        char p[MMCR_OPT_STRLEN + 32];
        if (st == MMCR_OK) {
            snprintf(p, sizeof p, "%s/train.tsv", c.out_dir);
            st = mmcr_pairs_write_tsv(&train, p, &err);
        }
        if (st == MMCR_OK) {
            snprintf(p, sizeof p, "%s/test.tsv", c.out_dir);
            st = mmcr_pairs_write_tsv(&test, p, &err);
        }
        if (st == MMCR_OK)
            printf("{\"train\":\"%s/train.tsv\",\"n_train\":%d,\"test\":\"%s/test.tsv\",\"n_test\":%d}\n", c.out_dir,
                   train.images.n, c.out_dir, test.images.n);
    }
    mmcr_pairs_free(&train);
    mmcr_pairs_free(&test);
    if (st != MMCR_OK) return cli_fail(cmd, st, &err);
    return 0;
}
