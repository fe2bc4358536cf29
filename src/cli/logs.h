/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * `tracehop logs`: read access logs (files, stdin, followed files), select one trace or a
 * filter, and print the requests as a table or a hop tree. See docs/access-log.md.
 */

/*
 * Run the command with argv[0] = "logs". Writes to stdout and stderr; returns the process exit
 * status: 0 success, 1 an input could not be read, 2 bad usage.
 */
int tracehop_logs_main(int argc, char **argv);
