#include "cli/common.h"

#include <stdio.h>
#include <string.h>

static void log_stderr(void *user, mmcr_log_level level, const char *msg) {
    (void)user;
    if (level == MMCR_LOG_DEBUG) return;
    fprintf(stderr, "[mmcr] %s%s\n", level >= MMCR_LOG_WARN ? "warning: " : "", msg);
}

mmcr_logger cli_logger(void) {
    mmcr_logger lg = {log_stderr, NULL};
    return lg;
}

int cli_parse(const char *cmd, const char *usage, const mmcr_option *opts, int n, void *cfg, int argc, char **argv,
              char **positional, int max_pos, int *n_pos) {
    mmcr_err err = {{0}};
    int want_help = 0, npos = 0;
    mmcr_status st = mmcr_options_defaults(opts, n, cfg, &err);
    if (st == MMCR_OK)
        st = mmcr_options_parse_argv(opts, n, cfg, argc, argv, positional, max_pos, &npos, &want_help, &err);
    if (want_help) {
        printf("usage: mmcr %s %s\n\noptions (also accepted as 'key = value' lines in a --config FILE):\n", cmd, usage);
        mmcr_options_help(stdout, opts, n);
        return 0;
    }
    if (st != MMCR_OK) {
        fprintf(stderr, "mmcr %s: %s\n", cmd, err.msg);
        return 2;
    }
    if (n_pos) *n_pos = npos;
    else if (npos > 0) {
        fprintf(stderr, "mmcr %s: unexpected argument '%s'\n", cmd, positional ? positional[0] : "?");
        return 2;
    }
    return -1;
}

int cli_fail(const char *cmd, mmcr_status st, const mmcr_err *err) {
    fprintf(stderr, "mmcr %s: %s\n", cmd, err && err->msg[0] ? err->msg : mmcr_status_str(st));
    return 1;
}
