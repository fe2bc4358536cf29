/* SPDX-License-Identifier: MIT */

/*
 * The `tracehop logs` command as a whole (src/cli/logs.c): files in a private temporary
 * directory, tracehop_logs_main called in this process with stdout and stderr redirected to
 * files, and the exact rows, tree and notes it printed. What the modules do alone is tested in
 * the other test-logs-*.c; this is about what a user sees: which lines become rows, what is
 * counted as skipped, usage errors and their exit status.
 */

#include <fcntl.h>
#include <ftw.h>
#include <pty.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/logs.h"
#include "unit-test.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tracehop-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    unsetenv("NO_COLOR");
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_dir(void)
{
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* dir/name with `text` in it; returns the path (static storage, one per name slot). */
static const char *write_log(const char *name, const char *text)
{
    static char paths[4][128];
    static unsigned next;
    char *path = paths[next++ % 4];

    snprintf(path, sizeof(paths[0]), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static char *read_whole(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char *text = calloc(1, 1 << 20);
    ck_assert_ptr_nonnull(text);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

struct result {
    int status;
    char *out, *err;
};

/* Run `tracehop logs <args...>` (NULL-terminated) with stdout and stderr captured. */
static struct result run_logs(const char *first, ...)
{
    char *argv[32] = {"logs"};
    int argc = 1;
    va_list ap;
    char out_path[128], err_path[128];
    struct result res;

    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        ck_assert_int_lt(argc, 31);
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    snprintf(out_path, sizeof(out_path), "%s/stdout", dir);
    snprintf(err_path, sizeof(err_path), "%s/stderr", dir);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
    int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert(saved_out >= 0 && saved_err >= 0 && out_fd >= 0 && err_fd >= 0);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    res.status = tracehop_logs_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, STDOUT_FILENO);
    dup2(saved_err, STDERR_FILENO);
    close(saved_out);
    close(saved_err);
    close(out_fd);
    close(err_fd);
    res.out = read_whole(out_path);
    res.err = read_whole(err_path);
    return res;
}

static void result_free(struct result *res)
{
    free(res->out);
    free(res->err);
}

static size_t count_lines(const char *text, const char *containing)
{
    size_t n = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);
        ck_assert_ptr_nonnull(copy);
        n += strstr(copy, containing) != NULL;
        free(copy);
        line += len + (end ? 1 : 0);
    }
    return n;
}

/* --- access-log lines of one trace, and what else a mixed stream holds --------------------- */

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"

/* An access-log line of service `svc` (no spaces in the arguments' text). */
#define ACCESS(time, svc, span, parent, path, status, outcome)                                     \
    "{\"time\":\"2025-01-31T12:00:" time "Z\",\"service\":\"" svc "\",\"trace_id\":\"" TRACE       \
    "\",\"span_id\":\"" span "\",\"parent_span_id\":" parent ",\"trace_flags\":\"01\","            \
    "\"x_trace_id\":\"4bf92f35-77b3-4da6-a3ce-929d0e0e4736\",\"method\":\"GET\",\"path\":\"" path  \
    "\",\"query\":null,\"status\":" status ",\"duration_ms\":5.000,\"upstream_duration_ms\":4.0,"  \
    "\"outcome\":\"" outcome "\"}\n"

/* What src/common/diag.c writes about a request: time, trace_id and span_id of that trace. */
#define DIAGNOSTIC(time, span)                                                                     \
    "{\"time\":\"2025-01-31T12:00:" time "Z\",\"level\":\"warn\",\"message\":\"upstream slow\","   \
    "\"trace_id\":\"" TRACE "\",\"span_id\":\"" span "\"}\n"

static const char mixed_log[] = ACCESS(
    "00.000", "a", "00000000000000a1", "null", "/one", "200",
    "ok") DIAGNOSTIC("00.001",
                     "00000000000000a1") "tracehop: starting\n" DIAGNOSTIC("00.002",
                                                                           "00000000000000d9")
    ACCESS(
        "00.001", "b", "00000000000000b1", "\"00000000000000a1\"", "/two", "200",
        "ok") "{\"time\":\"2025-01-31T12:00:00Z\",\"trace_id\":\"" TRACE "\"}\n"
              "2025-01-31T12:00:00.003456789Z " DIAGNOSTIC(
                  "00.003",
                  "00000000000000b1") "2025-01-31T12:00:00.003456789Z " ACCESS("00.002", "c",
                                                                               "00000000000000c1",
                                                                               "\"00000000000000b1"
                                                                               "\"",
                                                                               "/three", "503",
                                                                               "upstream_timeout");

START_TEST(test_mixed_stream_gives_only_access_rows)
{
    const char *path = write_log("mixed.log", mixed_log);
    struct result res = run_logs(path, NULL);

    ck_assert_int_eq(res.status, 0);
    ck_assert_uint_eq(count_lines(res.out, TRACE), 3);
    ck_assert_uint_eq(count_lines(res.out, " - - "), 0);
    ck_assert_uint_eq(count_lines(res.out, "/one"), 1);
    ck_assert_uint_eq(count_lines(res.out, "/two"), 1);
    ck_assert_uint_eq(count_lines(res.out, "/three"), 1);
    ck_assert_str_eq(res.err, "tracehop logs: skipped 5 lines that are not access-log records "
                              "(3 diagnostics, 1 not JSON, 1 other JSON)\n");
    result_free(&res);
}
END_TEST

START_TEST(test_mixed_stream_gives_a_correct_tree)
{
    const char *path = write_log("mixed.log", mixed_log);
    struct result res = run_logs("--trace-id", TRACE, path, NULL);

    ck_assert_int_eq(res.status, 0);
    ck_assert_msg(strstr(res.out, "3 hops, 3 services"), "%s", res.out);
    ck_assert_msg(strstr(res.out, "  a GET /one "), "%s", res.out);
    ck_assert_msg(strstr(res.out, "  `- b GET /two "), "%s", res.out);
    ck_assert_msg(strstr(res.out, "     `- c GET /three "), "%s", res.out);
    ck_assert_uint_eq(count_lines(res.out, "- - -"), 0);
    ck_assert_uint_eq(count_lines(res.out, "not in these logs"), 0);
    ck_assert_msg(strstr(res.err, "(3 diagnostics, 1 not JSON, 1 other JSON)"), "%s", res.err);
    result_free(&res);
}
END_TEST

START_TEST(test_json_output_says_the_skipped_count_on_stderr)
{
    const char *path = write_log("mixed.log", mixed_log);
    struct result res = run_logs("--json", path, NULL);

    ck_assert_int_eq(res.status, 0);
    ck_assert_uint_eq(count_lines(res.out, "\"service\""), 3);
    ck_assert_uint_eq(count_lines(res.out, "\"level\""), 0);
    /* The kubectl time stamp is taken off: the output is JSON lines again. */
    ck_assert_uint_eq(count_lines(res.out, "2025-01-31T12:00:00.003456789Z"), 0);
    for (const char *line = res.out; *line; line = strchr(line, '\n') + 1)
        ck_assert_int_eq(line[0], '{');
    ck_assert_msg(strstr(res.err, "skipped 5 lines"), "%s", res.err);
    result_free(&res);
}
END_TEST

/* --- usage errors ------------------------------------------------------------------------ */

START_TEST(test_impossible_filters_are_usage_errors)
{
    static const char *const bad[][2] = {
        {"--outcome", "timeout"}, {"--outcome", "ok,OK"}, {"--status", "600"}, {"--status", "99"},
        {"--status", "6xx"},      {"--status", "0"},      {"--tail", "-1"},    {"-n", "x"},
        {"--color", "sometimes"},
    };
    const char *path = write_log("a.log", mixed_log);

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct result res = run_logs(bad[i][0], bad[i][1], path, NULL);
        ck_assert_msg(res.status == 2, "%s %s: exit %d", bad[i][0], bad[i][1], res.status);
        ck_assert_str_eq(res.out, "");
        ck_assert_msg(strstr(res.err, "Try 'tracehop logs --help'."), "%s", res.err);
        result_free(&res);
    }
    struct result res = run_logs("--outcome", "bogus", path, NULL);
    ck_assert_msg(strstr(res.err, "ok, no_route, upstream_connect_failed"), "%s", res.err);
    result_free(&res);
    res = run_logs("--outcome", "upstream_timeout", "--status", "5xx", path, NULL);
    ck_assert_int_eq(res.status, 0);
    ck_assert_uint_eq(count_lines(res.out, TRACE), 1);
    ck_assert_uint_eq(count_lines(res.out, "/three"), 1);
    result_free(&res);
}
END_TEST

/* The outcomes of docs/access-log.md ("Fields"). */
static const char *const documented_outcomes[] = {
    "ok",
    "no_route",
    "upstream_connect_failed",
    "upstream_tls_failed",
    "upstream_timeout",
    "upstream_reset",
    "client_aborted",
    "bad_request",
    "too_large",
    "upgrade_not_supported",
    "shutdown",
};

START_TEST(test_help_lists_every_outcome)
{
    struct result res = run_logs("--help", NULL);

    ck_assert_int_eq(res.status, 0);
    ck_assert_msg(strstr(res.out, "\nOutcomes: ok, no_route,"), "%s", res.out);
    for (size_t i = 0; i < ARRAY_SIZE(documented_outcomes); i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), " %s%c", documented_outcomes[i],
                 i + 1 < ARRAY_SIZE(documented_outcomes) ? ',' : '\n');
        ck_assert_msg(strstr(res.out, needle), "--help does not list %s", needle);
    }
    ck_assert_ptr_nonnull(strstr(res.out, "--tail N"));
    ck_assert_ptr_nonnull(strstr(res.out, "--color WHEN"));
    result_free(&res);
}
END_TEST

/* --- the text output: header row, colour ---------------------------------------------------- */

#define HEADER_START "time                      service   status duration  request"

START_TEST(test_text_has_a_header_row_and_json_has_none)
{
    const char *path = write_log("a.log", mixed_log);
    struct result res = run_logs(path, NULL);

    ck_assert_msg(strncmp(res.out, HEADER_START, strlen(HEADER_START)) == 0, "%s", res.out);
    ck_assert_uint_eq(count_lines(res.out, "time "), 1);
    /* Its columns start where the rows' do. */
    const char *row = strchr(res.out, '\n') + 1;
    ck_assert_int_eq(row[26], 'a');
    ck_assert_int_eq(res.out[26], 's');
    ck_assert_int_eq(row[36], '2');
    ck_assert_int_eq(res.out[36], 's');
    ck_assert_int_eq(row[53], 'G');
    ck_assert_int_eq(res.out[53], 'r');
    result_free(&res);

    res = run_logs("--json", path, NULL);
    ck_assert_uint_eq(count_lines(res.out, "time "), 0);
    result_free(&res);

    res = run_logs("--service", "nobody", path, NULL); /* nothing matched: no header either */
    ck_assert_str_eq(res.out, "");
    result_free(&res);
}
END_TEST

START_TEST(test_colour_only_when_asked_or_on_a_terminal)
{
    const char *path = write_log("a.log", mixed_log);
    struct result res = run_logs("--color=always", path, NULL);

    ck_assert_int_eq(res.status, 0);
    ck_assert_uint_eq(count_lines(res.out, "\033["), 1); /* only c's 503 */
    ck_assert_msg(strstr(res.out, "\033[31m2025-01-31T12:00:00.002Z  c "), "%s", res.out);
    ck_assert_msg(strstr(res.out, "4bf92f3577b34da6a3ce929d0e0e4736\033[0m\n"), "%s", res.out);
    result_free(&res);

    /* auto: stdout is a file here, so none; NO_COLOR does not overrule --color=always. */
    res = run_logs(path, NULL);
    ck_assert_ptr_null(strstr(res.out, "\033["));
    result_free(&res);
    setenv("NO_COLOR", "1", 1);
    res = run_logs("--color=always", path, NULL);
    ck_assert_ptr_nonnull(strstr(res.out, "\033[31m"));
    result_free(&res);
    res = run_logs("--color=never", path, NULL);
    ck_assert_ptr_null(strstr(res.out, "\033["));
    result_free(&res);
    res = run_logs("--json", "--color=always", path, NULL);
    ck_assert_ptr_null(strstr(res.out, "\033["));
    result_free(&res);
}
END_TEST

/*
 * `tracehop logs <path>` with stdout on a pseudo-terminal (what --color=auto looks for); returns
 * what it printed there. The output is a few hundred bytes: it fits the terminal's buffer, so
 * the command never blocks on it before it is read here.
 */
static char *run_logs_on_a_terminal(const char *path)
{
    char *argv[] = {"logs", (char *)path, NULL};
    int master, slave;
    char *text = calloc(1, 65536);
    size_t len = 0;
    ssize_t n;

    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
    fflush(stdout);
    int saved_out = dup(STDOUT_FILENO);
    ck_assert_int_ge(saved_out, 0);
    dup2(slave, STDOUT_FILENO);
    ck_assert_int_eq(tracehop_logs_main(2, argv), 0);
    fflush(stdout);
    dup2(saved_out, STDOUT_FILENO);
    close(saved_out);
    close(slave);
    /* Once the slave side is closed, reading the master drains it and then fails with EIO. */
    while (len < 65535 && (n = read(master, text + len, 65535 - len)) > 0)
        len += (size_t)n;
    close(master);
    return text;
}

START_TEST(test_colour_on_a_terminal_unless_no_color)
{
    const char *path = write_log("a.log", mixed_log);
    char *out = run_logs_on_a_terminal(path);

    ck_assert_msg(strstr(out, "\033[31m"), "no colour on a terminal: %s", out);
    free(out);
    setenv("NO_COLOR", "", 1); /* empty: as if unset (no-color.org) */
    out = run_logs_on_a_terminal(path);
    ck_assert_ptr_nonnull(strstr(out, "\033[31m"));
    free(out);
    setenv("NO_COLOR", "1", 1);
    out = run_logs_on_a_terminal(path);
    ck_assert_msg(!strstr(out, "\033["), "colour despite NO_COLOR: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "/three")); /* the rows themselves are there */
    free(out);
}
END_TEST

/* --- -n / --tail ----------------------------------------------------------------------------- */

START_TEST(test_tail_keeps_the_last_records_of_each_file)
{
    const char *a = write_log("a.log", mixed_log);
    const char *b = write_log(
        "b.log", ACCESS("01.000", "x", "00000000000000e1", "null", "/x1", "200", "ok")
                     ACCESS("01.500", "x", "00000000000000e2", "null", "/x2", "200", "ok")
                         ACCESS("00.500", "x", "00000000000000e3", "null", "/x3", "200", "ok"));
    struct result res = run_logs("-n", "2", a, b, NULL);

    ck_assert_int_eq(res.status, 0);
    /* a.log's last two are /two and /three, b.log's /x1 and /x2 (b.log's last two by time);
       printed in time order across the files. */
    ck_assert_uint_eq(count_lines(res.out, TRACE), 4);
    const char *two = strstr(res.out, "/two"), *three = strstr(res.out, "/three");
    const char *x1 = strstr(res.out, "/x1"), *x2 = strstr(res.out, "/x2");
    ck_assert(two && three && x1 && x2);
    ck_assert(two < three && three < x1 && x1 < x2);
    ck_assert_ptr_null(strstr(res.out, "/one"));
    ck_assert_ptr_null(strstr(res.out, "/x3"));
    result_free(&res);

    res = run_logs("--tail", "0", a, NULL);
    ck_assert_int_eq(res.status, 0);
    ck_assert_str_eq(res.out, "");
    result_free(&res);

    res = run_logs("--json", "-n", "1", "--status", "2xx", a, NULL);
    ck_assert_uint_eq(count_lines(res.out, "\"service\""), 1);
    ck_assert_ptr_nonnull(strstr(res.out, "/two"));
    result_free(&res);

    res = run_logs("-n", "1", "--trace-id", TRACE, a, NULL);
    ck_assert_uint_eq(count_lines(res.out, "Z  "), 1); /* one listing row ... */
    ck_assert_ptr_nonnull(strstr(res.out, "3 hops"));  /* ... and the whole tree */
    result_free(&res);
}
END_TEST

/* --- --trace-id across an edge with trust_incoming: false ------------------------------------ */

#define NEW_TRACE "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2"

/* The edge's own trace is new; what the caller sent is logged as incoming_*. */
static const char untrusting_edge[] =
    "{\"time\":\"2025-01-31T12:00:00.001Z\",\"service\":\"edge\",\"trace_id\":\"" NEW_TRACE
    "\",\"span_id\":\"00000000000000e1\",\"parent_span_id\":null,\"x_trace_id\":"
    "\"bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbb2\",\"method\":\"GET\",\"path\":\"/edge\",\"status\":200,"
    "\"duration_ms\":3.0,\"upstream_duration_ms\":2.5,\"outcome\":\"ok\",\"incoming_trace_id\":"
    "\"" TRACE "\",\"incoming_parent_span_id\":\"00000000000000a1\"}\n"
    "{\"time\":\"2025-01-31T12:00:00.002Z\",\"service\":\"inner\",\"trace_id\":\"" NEW_TRACE
    "\",\"span_id\":\"00000000000000f1\",\"parent_span_id\":\"00000000000000e1\",\"method\":"
    "\"GET\",\"path\":\"/inner\",\"status\":200,\"duration_ms\":1.0,\"upstream_duration_ms\":0.9,"
    "\"outcome\":\"ok\"}\n";

START_TEST(test_trace_id_crosses_an_untrusting_edge)
{
    const char *caller = write_log(
        "caller.log", ACCESS("00.000", "a", "00000000000000a1", "null", "/one", "200", "ok"));
    const char *edge = write_log("edge.log", untrusting_edge);

    /* Asked for the caller's trace: the edge joins by incoming_trace_id, inner by the new one. */
    struct result res = run_logs("--trace-id", TRACE, caller, edge, NULL);
    ck_assert_int_eq(res.status, 0);
    ck_assert_msg(strstr(res.out, "3 hops, 3 services"), "%s", res.out);
    ck_assert_msg(strstr(res.out, "  a GET /one "), "%s", res.out);
    ck_assert_msg(strstr(res.out, "  `+ edge GET /edge ") &&
                      strstr(res.out, "(new trace " NEW_TRACE ")"),
                  "%s", res.out);
    ck_assert_msg(strstr(res.out, "     `- inner GET /inner "), "%s", res.out);
    ck_assert_ptr_nonnull(strstr(res.out, "`+ a new trace started here"));
    result_free(&res);

    /* Asked for the new trace: the caller joins through the edge's incoming id. */
    res = run_logs("--trace-id", NEW_TRACE, caller, edge, NULL);
    ck_assert_int_eq(res.status, 0);
    ck_assert_msg(strstr(res.out, "3 hops, 3 services"), "%s", res.out);
    result_free(&res);
}
END_TEST

static Suite *logs_command_suite(void)
{
    Suite *s = suite_create("logs-command");
    TCase *skip = tcase_create("skip");

    tcase_add_checked_fixture(skip, make_dir, remove_dir);
    tcase_add_test(skip, test_mixed_stream_gives_only_access_rows);
    tcase_add_test(skip, test_mixed_stream_gives_a_correct_tree);
    tcase_add_test(skip, test_json_output_says_the_skipped_count_on_stderr);
    suite_add_tcase(s, skip);

    TCase *options = tcase_create("options");
    tcase_add_checked_fixture(options, make_dir, remove_dir);
    tcase_add_test(options, test_impossible_filters_are_usage_errors);
    tcase_add_test(options, test_help_lists_every_outcome);
    tcase_add_test(options, test_text_has_a_header_row_and_json_has_none);
    tcase_add_test(options, test_colour_only_when_asked_or_on_a_terminal);
    tcase_add_test(options, test_colour_on_a_terminal_unless_no_color);
    tcase_add_test(options, test_tail_keeps_the_last_records_of_each_file);
    tcase_add_test(options, test_trace_id_crosses_an_untrusting_edge);
    suite_add_tcase(s, options);
    return s;
}

int main(void)
{
    return unit_run(logs_command_suite());
}
