/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Validating /metrics output with Prometheus' own parsers, through promtool (Debian package
 * `prometheus`, /usr/bin/promtool). Shared by tests/unit/test-metrics.c and
 * tests/integration/test-metrics.c.
 *
 *   - Prometheus text format 0.0.4: `promtool check metrics`, the text on its stdin (popen). Exit
 *     status 0 means it parsed and the linter had nothing to say.
 *   - OpenMetrics 1.0: `promtool check metrics` only knows the 0.0.4 format and stops at the
 *     first exemplar ("expected integer as timestamp, got '#'"), so the OpenMetrics text goes
 *     through promtool's OpenMetrics parser instead, `promtool tsdb create-blocks-from
 *     openmetrics`. That importer demands a timestamp on every sample, so one fixed timestamp is
 *     inserted after each sample's value (and before its exemplar); nothing else is changed.
 *     The parser is strict: it requires "# EOF", valid exemplars, no duplicate series.
 *
 * A missing promtool fails the test (CI installs it; a test never passes by skipping). The
 * environment variable PROMTOOL may name another binary.
 *
 * Static inline: each test includes what it uses. Results are malloc'd messages (NULL: valid)
 * for the caller to put into its assertion and free.
 */

#include <check.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The promtool binary; the test fails (never skips) when there is none. */
static inline const char *promtool_path(void)
{
    static char found[1024];
    const char *env = getenv("PROMTOOL");
    const char *path = getenv("PATH");

    if (env && env[0]) {
        ck_assert_msg(access(env, X_OK) == 0, "PROMTOOL=%s is not an executable", env);
        return env;
    }
    if (found[0])
        return found;
    char *dirs = strdup(path && path[0] ? path : "/usr/bin:/bin");
    ck_assert_ptr_nonnull(dirs);
    char *save = NULL;
    for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(found, sizeof(found), "%s/promtool", dir);
        if (access(found, X_OK) == 0) {
            free(dirs);
            return found;
        }
    }
    free(dirs);
    found[0] = '\0';
    ck_abort_msg("promtool not found in PATH: install the Debian package `prometheus` "
                 "(apt-get install -y prometheus); the metrics tests need it");
    return NULL;
}

static inline int promtool_remove_entry(const char *path, const struct stat *st, int flag,
                                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A fresh temporary directory for promtool's files; remove with promtool_dir_remove. */
static inline void promtool_dir(char *out, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, size, "%s/tracehop-promtool-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp %s failed", out);
}

static inline void promtool_dir_remove(const char *dir)
{
    nftw(dir, promtool_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The whole file as a NUL-terminated string ("" when it cannot be read). */
static inline char *promtool_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);

    ck_assert_ptr_nonnull(buf);
    if (f) {
        size_t n;
        while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
            len += n;
            if (cap - len - 1 == 0) {
                cap *= 2;
                buf = realloc(buf, cap);
                ck_assert_ptr_nonnull(buf);
            }
        }
        fclose(f);
    }
    buf[len] = '\0';
    return buf;
}

static inline char *promtool_failure(const char *what, int status, const char *output)
{
    size_t size = strlen(what) + strlen(output) + 128;
    char *msg = malloc(size);

    ck_assert_ptr_nonnull(msg);
    if (WIFEXITED(status))
        snprintf(msg, size, "%s: exit status %d: %.1500s", what, WEXITSTATUS(status), output);
    else
        snprintf(msg, size, "%s: did not exit normally (status 0x%x): %.1500s", what, status,
                 output);
    return msg;
}

/* `promtool check metrics` with `text` on stdin: NULL when it passes, else what it said. */
static inline char *promtool_check_text(const char *text, size_t len)
{
    const char *tool = promtool_path();
    char dir[512], out[600], cmd[1400];

    promtool_dir(dir, sizeof(dir));
    snprintf(out, sizeof(out), "%s/check.out", dir);
    snprintf(cmd, sizeof(cmd), "'%s' check metrics >'%s' 2>&1", tool, out);
    fflush(NULL);
    FILE *p = popen(cmd, "w");
    ck_assert_msg(p != NULL, "cannot run %s", cmd);
    size_t written = fwrite(text, 1, len, p);
    int status = pclose(p);
    char *output = promtool_slurp(out);
    promtool_dir_remove(dir);
    char *msg = NULL;
    if (written != len || status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        msg = promtool_failure("promtool check metrics", status, output);
    free(output);
    return msg;
}

/* Skip one series name and label set at p ("name{k=\"v\",...}"); returns the character after
 * it, or NULL when the syntax is off (then the parser will say why). */
static inline const char *promtool_skip_series(const char *p, const char *end)
{
    while (p < end && *p != '{' && *p != ' ')
        p++;
    if (p < end && *p == '{') {
        bool quoted = false;
        for (p++; p < end; p++) {
            if (quoted && *p == '\\') {
                p++;
                continue;
            }
            if (*p == '"')
                quoted = !quoted;
            else if (!quoted && *p == '}')
                break;
        }
        if (p >= end)
            return NULL;
        p++;
    }
    return p;
}

/*
 * The OpenMetrics text through promtool's OpenMetrics parser (see the top of this file): NULL
 * when it parses, else what promtool said.
 */
static inline char *promtool_check_openmetrics(const char *text, size_t len)
{
    const char *tool = promtool_path();
    char dir[512], input[600], blocks[600], out[600], cmd[2200];

    promtool_dir(dir, sizeof(dir));
    snprintf(input, sizeof(input), "%s/metrics.om", dir);
    snprintf(blocks, sizeof(blocks), "%s/blocks", dir);
    snprintf(out, sizeof(out), "%s/import.out", dir);
    FILE *f = fopen(input, "w");
    ck_assert_ptr_nonnull(f);
    for (const char *line = text; line < text + len;) {
        const char *eol = memchr(line, '\n', (size_t)(text + len - line));
        const char *end = eol ? eol : text + len;
        const char *value_end = NULL;
        if (line < end && line[0] != '#') {
            const char *p = promtool_skip_series(line, end);
            if (p && p < end && *p == ' ') {
                value_end = p + 1;
                while (value_end < end && *value_end != ' ')
                    value_end++;
            }
        }
        if (value_end) {
            fwrite(line, 1, (size_t)(value_end - line), f);
            fputs(" 1700000000", f);
            fwrite(value_end, 1, (size_t)(end - value_end), f);
        } else {
            fwrite(line, 1, (size_t)(end - line), f);
        }
        if (eol)
            fputc('\n', f);
        line = eol ? eol + 1 : end;
    }
    ck_assert_int_eq(fclose(f), 0);
    snprintf(cmd, sizeof(cmd), "'%s' tsdb create-blocks-from openmetrics '%s' '%s' >'%s' 2>&1",
             tool, input, blocks, out);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "cannot run %s", cmd);
    int status = pclose(p);
    char *output = promtool_slurp(out);
    char *msg = NULL;
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        msg = promtool_failure("promtool tsdb create-blocks-from openmetrics", status, output);
    free(output);
    promtool_dir_remove(dir);
    return msg;
}
