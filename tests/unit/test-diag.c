/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics (src/common/diag.h): the level filter and its names, and the collapsing of
 * repeated request diagnostics: the first of a run printed with its ids, the repeats within
 * DIAG_REPEAT_INTERVAL_MS counted, one "repeated N more times" line when the interval is over
 * (at the next diag call, at diag_tick, when the slot is needed, at diag_flush). The clock is
 * the test's (diag_set_clock), so nothing sleeps; the lines go to a temporary file
 * (diag_set_output) and are read back as JSON.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/diag.h"
#include "unit-test.h"

#define TRACE_ID "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN_ID  "00f067aa0ba902b7"

static int64_t fake_now_ms;
static FILE *out;
static long read_offset;

static int64_t fake_clock(void)
{
    return fake_now_ms;
}

static void setup(void)
{
    out = tmpfile();
    ck_assert_ptr_nonnull(out);
    read_offset = 0;
    fake_now_ms = 1000000;
    diag_set_output(fileno(out));
    diag_set_clock(fake_clock);
    diag_set_level(DIAG_INFO);
}

static void teardown(void)
{
    diag_flush();
    diag_set_output(STDERR_FILENO);
    diag_set_clock(NULL);
    fclose(out);
}

/* The lines written since the last call, as a JSON array of objects. */
static json_t *new_lines(void)
{
    json_t *lines = json_array();
    char buf[8192];

    ck_assert_int_eq(fseek(out, read_offset, SEEK_SET), 0);
    while (fgets(buf, sizeof(buf), out)) {
        json_error_t error;
        json_t *line = json_loads(buf, 0, &error);
        ck_assert_msg(line != NULL, "not JSON: %s (%s)", buf, error.text);
        json_array_append_new(lines, line);
    }
    read_offset = ftell(out);
    return lines;
}

static const char *field(json_t *lines, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(lines, i), key));
}

static void expect_message(json_t *lines, size_t i, const char *level, const char *message)
{
    ck_assert_msg(i < json_array_size(lines), "line %zu missing (%zu lines)", i,
                  json_array_size(lines));
    ck_assert_str_eq(field(lines, i, "level"), level);
    ck_assert_str_eq(field(lines, i, "message"), message);
}

static void upstream_down(int request)
{
    char trace_id[33];
    snprintf(trace_id, sizeof(trace_id), "%032x", request + 1);
    diag_request(DIAG_WARN, trace_id, SPAN_ID, "upstream %s: %s", "http://127.0.0.1:9",
                 "Connection refused");
}

#define UPSTREAM_DOWN "upstream http://127.0.0.1:9: Connection refused"

START_TEST(test_level_names)
{
    static const struct {
        const char *text;
        enum diag_level level;
    } ok[] = {{"debug", DIAG_DEBUG},
              {"info", DIAG_INFO},
              {"warn", DIAG_WARN},
              {"error", DIAG_ERROR},
              {"WARN", DIAG_WARN}};
    static const char *const bad[] = {"", "warning", "information", "3", "debug ", "err"};
    enum diag_level level;

    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        level = DIAG_ERROR + 1;
        ck_assert_int_eq(diag_level_parse(ok[i].text, &level), 0);
        ck_assert_int_eq(level, ok[i].level);
        ck_assert_int_eq(diag_level_parse(diag_level_name(level), &level), 0);
        ck_assert_int_eq(level, ok[i].level);
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        level = DIAG_DEBUG;
        ck_assert_msg(diag_level_parse(bad[i], &level) == -EINVAL, "'%s' accepted", bad[i]);
        ck_assert_int_eq(level, DIAG_DEBUG);
    }
}
END_TEST

START_TEST(test_level_filters)
{
    diag_set_level(DIAG_WARN);
    diag(DIAG_DEBUG, "debug line");
    diag(DIAG_INFO, "info line");
    diag(DIAG_WARN, "warn line");
    diag(DIAG_ERROR, "error line");
    diag_request(DIAG_INFO, TRACE_ID, SPAN_ID, "request info");
    json_t *lines = new_lines();
    ck_assert_uint_eq(json_array_size(lines), 2);
    expect_message(lines, 0, "warn", "warn line");
    expect_message(lines, 1, "error", "error line");
    json_decref(lines);

    diag_set_level(DIAG_DEBUG);
    diag(DIAG_DEBUG, "debug line");
    lines = new_lines();
    ck_assert_uint_eq(json_array_size(lines), 1);
    expect_message(lines, 0, "debug", "debug line");
    json_decref(lines);
}
END_TEST

/* The flood: one line with the first request's ids, the rest counted once the interval ends. */
START_TEST(test_repeats_collapse_until_the_interval_ends)
{
    for (int i = 0; i < 50; i++) {
        upstream_down(i);
        fake_now_ms += 10; /* 50 requests in half a second */
    }
    json_t *lines = new_lines();
    ck_assert_uint_eq(json_array_size(lines), 1);
    expect_message(lines, 0, "warn", UPSTREAM_DOWN);
    ck_assert_str_eq(field(lines, 0, "trace_id"), "00000000000000000000000000000001");
    ck_assert_str_eq(field(lines, 0, "span_id"), SPAN_ID);
    json_decref(lines);

    /* Not over yet: a tick one millisecond before the end prints nothing. */
    fake_now_ms = 1000000 + DIAG_REPEAT_INTERVAL_MS - 1;
    diag_tick();
    lines = new_lines();
    ck_assert_uint_eq(json_array_size(lines), 0);
    json_decref(lines);

    fake_now_ms = 1000000 + DIAG_REPEAT_INTERVAL_MS;
    diag_tick();
    lines = new_lines();
    ck_assert_uint_eq(json_array_size(lines), 1);
    expect_message(lines, 0, "warn",
                   "\"" UPSTREAM_DOWN "\" repeated 49 more times in the last 10 s (suppressed)");
    ck_assert_ptr_null(json_object_get(json_array_get(lines, 0), "trace_id"));
    json_decref(lines);

    /* A new interval: the next one is printed again, with its own ids. */
    upstream_down(99);
    lines = new_lines();
    ck_assert_uint_eq(json_array_size(lines), 1);
    expect_message(lines, 0, "warn", UPSTREAM_DOWN);
    ck_assert_str_eq(field(lines, 0, "trace_id"), "00000000000000000000000000000064");
    json_decref(lines);
}
END_TEST

/* Any diag call ends the intervals that are over, before its own line. */
START_TEST(test_next_diag_call_reports_the_count)
{
    upstream_down(0);
    upstream_down(1);
    fake_now_ms += DIAG_REPEAT_INTERVAL_MS + 5000;
    diag(DIAG_INFO, "something else");
    json_t *lines = new_lines();
    ck_assert_uint_eq(json_array_size(lines), 3);
    expect_message(lines, 0, "warn", UPSTREAM_DOWN);
    expect_message(lines, 1, "warn",
                   "\"" UPSTREAM_DOWN "\" repeated 1 more time in the last 10 s (suppressed)");
    expect_message(lines, 2, "info", "something else");
    json_decref(lines);
}
END_TEST

/* A single occurrence ends its interval silently: no "repeated 0 more times". */
START_TEST(test_no_count_line_without_repeats)
{
    upstream_down(0);
    fake_now_ms += DIAG_REPEAT_INTERVAL_MS;
    diag_tick();
    diag_flush();
    json_t *lines = new_lines();
    ck_assert_uint_eq(json_array_size(lines), 1);
    expect_message(lines, 0, "warn", UPSTREAM_DOWN);
    json_decref(lines);
}
END_TEST

/* Another text, another level, or a plain diag() (process events) is never collapsed. */
START_TEST(test_only_identical_request_messages_collapse)
{
    upstream_down(0);
    diag_request(DIAG_WARN, TRACE_ID, SPAN_ID, "upstream %s: %s", "http://127.0.0.1:9",
                 "Operation timed out");
    diag_request(DIAG_ERROR, TRACE_ID, SPAN_ID, "%s", UPSTREAM_DOWN);
    diag(DIAG_WARN, "%s", UPSTREAM_DOWN);
    diag(DIAG_WARN, "%s", UPSTREAM_DOWN);
    json_t *lines = new_lines();
    ck_assert_uint_eq(json_array_size(lines), 5);
    expect_message(lines, 1, "warn", "upstream http://127.0.0.1:9: Operation timed out");
    expect_message(lines, 2, "error", UPSTREAM_DOWN);
    expect_message(lines, 3, "warn", UPSTREAM_DOWN);
    expect_message(lines, 4, "warn", UPSTREAM_DOWN);
    json_decref(lines);
}
END_TEST

/* At exit the pending counts come out at once, over the time they actually cover. */
START_TEST(test_flush_reports_pending_counts)
{
    upstream_down(0);
    fake_now_ms += 2500;
    upstream_down(1);
    upstream_down(2);
    diag_flush();
    json_t *lines = new_lines();
    ck_assert_uint_eq(json_array_size(lines), 2);
    expect_message(lines, 1, "warn",
                   "\"" UPSTREAM_DOWN "\" repeated 2 more times in the last 3 s (suppressed)");
    json_decref(lines);
}
END_TEST

/* More distinct messages than slots: the oldest is ended (its count reported) to make room,
 * and every repeat is accounted for, printed or counted. */
START_TEST(test_table_is_bounded)
{
    enum { DISTINCT = 40, REPEATS = 3 };
    unsigned long printed = 0, counted = 0;

    for (int r = 0; r < REPEATS; r++) {
        for (int m = 0; m < DISTINCT; m++) {
            diag_request(DIAG_WARN, NULL, NULL, "message %d", m);
            fake_now_ms++;
        }
    }
    diag_flush();
    json_t *lines = new_lines();
    for (size_t i = 0; i < json_array_size(lines); i++) {
        const char *message = field(lines, i, "message");
        unsigned long n;
        if (sscanf(message, "\"message %*d\" repeated %lu more", &n) == 1)
            counted += n;
        else
            printed++;
    }
    ck_assert_uint_eq(printed + counted, DISTINCT * REPEATS);
    json_decref(lines);
}
END_TEST

struct flood {
    int requests;
};

static void *flood_thread(void *arg)
{
    const struct flood *f = arg;
    for (int i = 0; i < f->requests; i++)
        upstream_down(i);
    return NULL;
}

/* Workers call diag concurrently: one line, and a count that loses nothing. */
START_TEST(test_concurrent_repeats)
{
    enum { THREADS = 4, EACH = 2000 };
    pthread_t threads[THREADS];
    struct flood f = {EACH};

    for (int t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_create(&threads[t], NULL, flood_thread, &f), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    diag_flush();
    json_t *lines = new_lines();
    ck_assert_uint_eq(json_array_size(lines), 2);
    expect_message(lines, 0, "warn", UPSTREAM_DOWN);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "\"%s\" repeated %d more times in the last 1 s (suppressed)", UPSTREAM_DOWN,
             THREADS * EACH - 1);
    expect_message(lines, 1, "warn", expected);
    json_decref(lines);
}
END_TEST

static Suite *diag_suite(void)
{
    Suite *s = suite_create("diag");
    TCase *tc = tcase_create("levels");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_level_names);
    tcase_add_test(tc, test_level_filters);
    suite_add_tcase(s, tc);

    tc = tcase_create("repeats");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_repeats_collapse_until_the_interval_ends);
    tcase_add_test(tc, test_next_diag_call_reports_the_count);
    tcase_add_test(tc, test_no_count_line_without_repeats);
    tcase_add_test(tc, test_only_identical_request_messages_collapse);
    tcase_add_test(tc, test_flush_reports_pending_counts);
    tcase_add_test(tc, test_table_is_bounded);
    tcase_add_test(tc, test_concurrent_repeats);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(diag_suite());
}
