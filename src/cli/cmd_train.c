/* mmcr train: MMCR pretraining (options: src/dist/train_options.c). */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "mmcr/train.h"

int cmd_train(int argc, char **argv) {
    mmcr_train_config cfg;
    int nopt;
    const mmcr_option *opts = mmcr_train_options(&nopt);
    int rc = cli_parse("train", "[--key value ...] [--config FILE]", opts, nopt, &cfg, argc, argv, NULL, 0, NULL);
    if (rc >= 0) return rc;
    mmcr_logger lg = cli_logger();
    mmcr_err err = {{0}};
    mmcr_train_summary sum = {0};
    mmcr_status st = mmcr_train_run(&cfg, &lg, &sum, &err);
    if (st != MMCR_OK) return cli_fail("train", st, &err);
    char esc[2 * MMCR_OPT_STRLEN];
    mmcr_json_escape(esc, sizeof esc, cfg.out);
    printf("{\"steps\":%ld,\"seconds\":%.3f,\"final_loss\":%.9g,\"final_ppe\":%.9g,\"mean_centroid_norm2\":%.9g,"
           "\"images_per_s\":%.6g,\"checkpoint\":\"%s/checkpoint.safetensors\"}\n",
           sum.steps, sum.seconds, sum.final_loss, sum.final_ppe, sum.final_mean_centroid_norm2,
           sum.images_per_second, esc);
    return 0;
}
