/* SPDX-License-Identifier: MIT */
/*
 * The process metrics' sources (src/observe/process_stats.h): the /proc/PID/stat and /proc/stat
 * parsers on fixed text (command names with spaces and parentheses, missing or malformed
 * fields), and one real reading of this test process checked against what the test can see
 * itself. Texts are copied into exactly-sized heap blocks, so a read past the end is caught by
 * ASan.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "observe/process_stats.h"
#include "unit-test.h"

/* A real line (Linux 6.1), fields 1-52. */
#define STAT_TAIL                                                                                  \
    " S 1 1234 1234 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 5 0 987654 123456789 4321 "            \
    "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"

static const struct {
    const char *text;
    bool ok;
    uint64_t utime, stime, start, vsize, rss;
} stats[] = {
    {"4242 (tracehop)" STAT_TAIL, true, 250, 75, 987654, 123456789, 4321},
    {"4242 (trace hop) x)" STAT_TAIL, true, 250, 75, 987654, 123456789, 4321},
    {"4242 ((()" STAT_TAIL, true, 250, 75, 987654, 123456789, 4321},
    {"4242 (tracehop) S 1 1234 1234 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 5 0 987654 "
     "123456789 4321",
     true, 250, 75, 987654, 123456789, 4321}, /* ends right after rss */
    {"4242 (tracehop) S 1 1234 1234 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 5 0 987654 "
     "123456789",
     false, 0, 0, 0, 0, 0}, /* no rss */
    {"4242 (tracehop) S 1 1234 1234 0 -1 4194560 1234 0 0 0 -250 75 0 0 20 0 5 0 987654 "
     "123456789 4321",
     false, 0, 0, 0, 0, 0}, /* a negative utime */
    {"4242 (tracehop) S 1 1234 1234 0 -1 4194560 1234 0 0 0 25x 75 0 0 20 0 5 0 987654 "
     "123456789 4321",
     false, 0, 0, 0, 0, 0},
    {"4242 (tracehop) S 1 1234 1234 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 5 0 987654 "
     "99999999999999999999 4321",
     false, 0, 0, 0, 0, 0},                          /* 20 digits */
    {"4242 tracehop S 1 2 3", false, 0, 0, 0, 0, 0}, /* no parentheses */
    {"", false, 0, 0, 0, 0, 0},
    {")", false, 0, 0, 0, 0, 0},
};

START_TEST(test_stat_parse)
{
    size_t len = strlen(stats[_i].text);
    char *text = unit_memdup(stats[_i].text, len);
    struct process_stat_fields f = {0};

    bool ok = process_stat_parse(text, len, &f);
    ck_assert_msg(ok == stats[_i].ok, "case %d: parse %s", _i, ok ? "succeeded" : "failed");
    if (ok) {
        ck_assert_uint_eq(f.utime_ticks, stats[_i].utime);
        ck_assert_uint_eq(f.stime_ticks, stats[_i].stime);
        ck_assert_uint_eq(f.start_ticks, stats[_i].start);
        ck_assert_uint_eq(f.vsize_bytes, stats[_i].vsize);
        ck_assert_uint_eq(f.rss_pages, stats[_i].rss);
    }
    free(text);
}
END_TEST

static const struct {
    const char *text;
    bool ok;
    uint64_t btime;
} btimes[] = {
    {"cpu  1 2 3\ncpu0 1 2 3\nintr 5\nctxt 9\nbtime 1795300000\nprocesses 12\n", true, 1795300000},
    {"btime 1795300000", true, 1795300000}, /* the last line, without a newline */
    {"cpu 1\nbtime 17953x0000\n", false, 0},
    {"cpu 1\nbtime \n", false, 0},
    {"cpu 1\nxbtime 1795300000\n", false, 0},
    {"cpu 1\n", false, 0},
    {"", false, 0},
};

START_TEST(test_btime_parse)
{
    size_t len = strlen(btimes[_i].text);
    char *text = unit_memdup(btimes[_i].text, len);
    uint64_t btime = 0;

    bool ok = process_btime_parse(text, len, &btime);
    ck_assert_msg(ok == btimes[_i].ok, "case %d: parse %s", _i, ok ? "succeeded" : "failed");
    if (ok)
        ck_assert_uint_eq(btime, btimes[_i].btime);
    free(text);
}
END_TEST

/* This very process: every value is there and agrees with what the test can see. */
START_TEST(test_read_this_process)
{
    struct process_stats s;
    struct rlimit nofile;

    int extra = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(extra, 0);
    process_stats_read(&s);
    ck_assert(s.have_cpu && s.have_memory && s.have_start_time && s.have_open_fds);
    ck_assert(s.cpu_seconds >= 0);
    ck_assert_uint_gt(s.resident_bytes, 0);
    ck_assert_uint_ge(s.virtual_bytes, s.resident_bytes);
    ck_assert_uint_gt(s.open_fds, (uint64_t)extra); /* 0-2 and extra at least */
    double now = (double)time(NULL);
    ck_assert_msg(s.start_time_seconds <= now + 1 && s.start_time_seconds > now - 3600,
                  "start time %.2f, now %.0f", s.start_time_seconds, now);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &nofile), 0);
    if (nofile.rlim_cur != RLIM_INFINITY) {
        ck_assert(s.have_max_fds);
        ck_assert_uint_eq(s.max_fds, (uint64_t)nofile.rlim_cur);
    }
    uint64_t before = s.open_fds;
    close(extra);
    process_stats_read(&s);
    ck_assert_uint_eq(s.open_fds, before - 1);
}
END_TEST

static Suite *process_stats_suite(void)
{
    Suite *s = suite_create("process_stats");
    TCase *tc = tcase_create("parse");

    tcase_add_loop_test(tc, test_stat_parse, 0, (int)ARRAY_SIZE(stats));
    tcase_add_loop_test(tc, test_btime_parse, 0, (int)ARRAY_SIZE(btimes));
    tcase_add_test(tc, test_read_this_process);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(process_stats_suite());
}
