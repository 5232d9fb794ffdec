#include "cli/cli.h"

#include <stdio.h>

int cmd_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("mmcr 0.1.0\n");
    return 0;
}
