/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * What the daemon tells its user about the command line and the config before and after
 * loading it: a refused config, the loader's warnings and notes (config.h, struct
 * config_message), and a bad command line. On a terminal these are plain text
 * ("tracehop: config: listen: ..."), for a person; otherwise JSON diagnostic lines
 * (common/diag.h), which log collectors parse.
 */
#include <getopt.h>

#include "config/config.h"

/* A config that was refused at start or by --check-config. */
void config_report_error(const char *error);

/* The config's warnings (and its notes when with_notes), one line each. */
void config_report_messages(const struct config *config, bool with_notes);

/*
 * getopt_long (with opterr 0 and ':' first in its short options) returned '?' or ':' (opt):
 * print one line naming the option, with "did you mean" for a near miss, and a hint to
 * --help. Returns the usage exit status, 2.
 */
int config_report_bad_option(char **argv, int opt, const struct option *options);

/* An argument that is not an option; returns 2 like config_report_bad_option. */
int config_report_bad_argument(const char *argument);
