/* SPDX-License-Identifier: MIT */
/*
 * Reports about the command line and the config (daemon/config_report.h). The terminal test is
 * on stderr, where they go: `tracehop --check-config` typed by a person reads as text, the same
 * command in a unit file or a container logs JSON. A bad command line is one line and a hint,
 * never the whole --help text: the line that says what is wrong must not scroll away.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config_report.h"
#include "common/diag.h"
#include "common/edit_distance.h"
#include "common/terminal_text.h"

#define OPTIONS_MAX 64

static bool on_terminal(void)
{
    return isatty(STDERR_FILENO) == 1;
}

/* prefix, then text as the user may have typed it (control characters shown, not obeyed), then
 * suffix and a newline, on stderr. */
static void print_line(const char *prefix, const char *text, const char *suffix)
{
    fputs(prefix, stderr);
    terminal_text_write(stderr, text);
    fprintf(stderr, "%s\n", suffix);
}

void config_report_error(const char *error)
{
    if (on_terminal())
        print_line("tracehop: config: ", error, "");
    else
        diag(DIAG_ERROR, "config: %s", error);
}

void config_report_messages(const struct config *config, bool with_notes)
{
    for (size_t i = 0; i < config->messages_count; i++) {
        const struct config_message *m = &config->messages[i];
        bool warning = m->kind == CONFIG_WARNING;
        if (!warning && !with_notes)
            continue;
        if (on_terminal())
            print_line(
                warning ? "tracehop: config: warning: " : "tracehop: config: note: ", m->text, "");
        else
            diag(warning ? DIAG_WARN : DIAG_INFO, "config: %s", m->text);
    }
}

static void print_hint(void)
{
    fputs("Try 'tracehop --help'.\n", stderr);
}

int config_report_bad_option(char **argv, int opt, const struct option *options)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    char name[EDIT_DISTANCE_MAX_LEN + 1];

    /* A long option is named as typed, without "=value"; a short one by its letter. */
    if (strncmp(arg, "--", 2) == 0)
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "="), arg);
    else
        snprintf(name, sizeof(name), "-%c", optopt ? optopt : '?');
    if (opt == ':') {
        print_line("tracehop: option '", name, "' needs a value");
        print_hint();
        return 2;
    }
    if (optopt && strncmp(arg, "--", 2) == 0) { /* a known long option, given "=value" */
        print_line("tracehop: option '", name, "' takes no value");
        print_hint();
        return 2;
    }
    char spelt[OPTIONS_MAX][EDIT_DISTANCE_MAX_LEN + 1];
    const char *names[OPTIONS_MAX];
    size_t n = 0;
    for (; options[n].name && n < OPTIONS_MAX; n++) {
        snprintf(spelt[n], sizeof(spelt[n]), "--%s", options[n].name);
        names[n] = spelt[n];
    }
    const char *guess = strncmp(name, "--", 2) == 0 ? edit_distance_closest(name, names, n) : NULL;
    char suffix[EDIT_DISTANCE_MAX_LEN + 32] = "'";
    if (guess)
        snprintf(suffix, sizeof(suffix), "' (did you mean %s?)", guess);
    print_line("tracehop: unknown option '", name, suffix);
    print_hint();
    return 2;
}

int config_report_bad_argument(const char *argument)
{
    print_line("tracehop: unexpected argument '", argument, "'");
    print_hint();
    return 2;
}
