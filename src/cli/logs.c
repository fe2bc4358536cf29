/* SPDX-License-Identifier: MIT */
/*
 * `tracehop logs`: reads correlated access logs (SPEC section 6). Placeholder until issue 4:
 * it says so and fails, rather than pretending to work.
 */
#include <stdio.h>

int tracehop_logs_main(int argc, char **argv);

int tracehop_logs_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("tracehop logs: not implemented yet\n", stderr);
    return 2;
}
