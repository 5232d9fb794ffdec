/* Helpers shared by the subcommands: stderr logger, table-driven option parsing. */
#ifndef MMCR_CLI_COMMON_H
#define MMCR_CLI_COMMON_H

#include "mmcr/config.h"
#include "mmcr/core.h"

/* Logger that writes "[mmcr] message" lines to stderr. */
mmcr_logger cli_logger(void);

/* Parses argv with the option table. Returns -1 when parsing succeeded and the command should
 * run; otherwise the exit code to return (0 after --help, 2 on a usage error, message printed). */
int cli_parse(const char *cmd, const char *usage, const mmcr_option *opts, int n, void *cfg, int argc, char **argv,
              char **positional, int max_pos, int *n_pos);

/* Prints "mmcr <cmd>: <message>" for a failed status and returns the exit code (1). */
int cli_fail(const char *cmd, mmcr_status st, const mmcr_err *err);

#endif
