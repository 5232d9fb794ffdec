/* Shared declarations of the CLI subcommands (each in src/cli/cmd_<name>.c). */
#ifndef MMCR_CLI_H
#define MMCR_CLI_H

#define MMCR_CLI_COMMAND(name, fn, help) int fn(int argc, char **argv);
#include "cli/commands.def"
#undef MMCR_CLI_COMMAND

#endif
