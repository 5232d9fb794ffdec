/* mmcr: command-line front end over libmmcr. Each subcommand lives in its own file. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
#define MMCR_CLI_COMMAND(name, fn, help) {name, fn, help},
#include "cli/commands.def"
#undef MMCR_CLI_COMMAND
};

static void usage(FILE *f) {
    fprintf(f, "usage: mmcr <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun 'mmcr <command> --help' for the options of a command.\n");
}

/* How long waiting OpenMP threads spin before they sleep. libgomp's default (300,000 spins)
 * burns the cores that the loader thread and, on a shared machine, everyone else need: measured
 * 3x slower training steps on 2 cores. Never spinning (OMP_WAIT_POLICY=passive) pays a futex
 * wake-up per parallel region, and oneDNN's kernels open hundreds per step: 1550 views/s on the
 * demo recipe, against 1870 with a short spin of 3,000 (and 1910 spinning forever) on an idle
 * 2-core machine; with one other busy process, 895 (passive), 800 (3,000), 595 (20,000). libgomp
 * reads the setting when it is loaded, before main, so when the user has chosen neither
 * OMP_WAIT_POLICY nor GOMP_SPINCOUNT we set the short spin and re-execute once. */
static void ensure_short_spin_openmp(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("MMCR_NO_REEXEC")) return;
    setenv("GOMP_SPINCOUNT", "3000", 1);
    setenv("MMCR_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    /* If exec fails we run with the default policy, and say so to anyone reading the variable. */
    unsetenv("GOMP_SPINCOUNT");
}

int main(int argc, char **argv) {
    ensure_short_spin_openmp(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "mmcr: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
