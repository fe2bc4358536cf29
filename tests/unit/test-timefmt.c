/* SPDX-License-Identifier: MIT */
/*
 * Time stamps (src/common/timefmt.h): RFC 3339 UTC with milliseconds, the `time` of every
 * access-log and diagnostic line, and elapsed milliseconds between two monotonic readings.
 *
 * timefmt_rfc3339_ms caches the calendar conversion per thread and per second, so the vectors
 * are also run in orders that defeat the cache (same second with another millisecond, back and
 * forth between seconds), on a fresh thread, and on several threads at once. The expected
 * strings were computed outside the code under test (Python's calendar.timegm).
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/timefmt.h"
#include "unit-test.h"

static const struct {
    time_t sec;
    long nsec;
    const char *text;
} vectors[] = {
    {0, 0, "1970-01-01T00:00:00.000Z"},
    {0, 999999999, "1970-01-01T00:00:00.999Z"},
    {0, 999999, "1970-01-01T00:00:00.000Z"}, /* truncated, never rounded up */
    {0, 1000000, "1970-01-01T00:00:00.001Z"},
    {0, 10000000, "1970-01-01T00:00:00.010Z"},
    {0, 100000000, "1970-01-01T00:00:00.100Z"},
    {78796799, 500000000, "1972-06-30T23:59:59.500Z"},
    {946684799, 999000000, "1999-12-31T23:59:59.999Z"},
    {951827696, 789000000, "2000-02-29T12:34:56.789Z"}, /* leap day of a leap century */
    {1709251199, 999999999, "2024-02-29T23:59:59.999Z"},
    {4107542399, 123000000, "2100-02-28T23:59:59.123Z"}, /* 2100 is not a leap year */
    {4107542400, 0, "2100-03-01T00:00:00.000Z"},
    {2147483648, 1000000, "2038-01-19T03:14:08.001Z"}, /* past 32-bit time_t */
    {1795312511, 123456789, "2026-11-22T01:55:11.123Z"},
    {-1, 0, "1969-12-31T23:59:59.000Z"},
};

static void check_vector(size_t i)
{
    char buf[TIMEFMT_RFC3339_MS_LEN + 8];
    struct timespec ts = {.tv_sec = vectors[i].sec, .tv_nsec = vectors[i].nsec};

    memset(buf, 'X', sizeof(buf));
    size_t len = timefmt_rfc3339_ms(buf, &ts);
    ck_assert_uint_eq(len, TIMEFMT_RFC3339_MS_LEN);
    ck_assert_msg(buf[TIMEFMT_RFC3339_MS_LEN] == '\0', "no NUL after the 24 characters");
    ck_assert_msg(strcmp(buf, vectors[i].text) == 0, "{%lld, %ld}: \"%s\", expected \"%s\"",
                  (long long)vectors[i].sec, vectors[i].nsec, buf, vectors[i].text);
    ck_assert_msg(buf[TIMEFMT_RFC3339_MS_LEN + 1] == 'X', "wrote past the documented 25 bytes");
}

/* Every vector right after every other one: the per-second cache must never leak a value. */
START_TEST(test_cache_never_leaks)
{
    for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
        for (size_t k = 0; k < ARRAY_SIZE(vectors); k++) {
            check_vector(i);
            check_vector(k);
            check_vector(i);
        }
    }
}
END_TEST

static void *first_call_thread(void *arg)
{
    size_t i = *(size_t *)arg;
    static _Thread_local char buf[TIMEFMT_RFC3339_MS_LEN + 1];
    struct timespec ts = {.tv_sec = vectors[i].sec, .tv_nsec = vectors[i].nsec};

    timefmt_rfc3339_ms(buf, &ts);
    return strcmp(buf, vectors[i].text) == 0 ? NULL : strdup(buf);
}

/* Each vector: as the first call on a new thread (an empty per-thread cache), then on this thread
 * right after another second was formatted. */
START_TEST(test_vector)
{
    size_t i = (size_t)_i;
    pthread_t thread;
    void *wrong;

    ck_assert_int_eq(pthread_create(&thread, NULL, first_call_thread, &i), 0);
    ck_assert_int_eq(pthread_join(thread, &wrong), 0);
    if (wrong) {
        char shown[64];
        snprintf(shown, sizeof(shown), "%s", (char *)wrong);
        for (char *p = shown; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = '?';
        free(wrong);
        ck_assert_msg(0,
                      "first call on a thread for {%lld, %ld}: \"%s\" (%zu chars), expected "
                      "\"%s\"",
                      (long long)vectors[i].sec, vectors[i].nsec, shown, strlen(shown),
                      vectors[i].text);
    }
    check_vector(i == 9 ? 8 : 9); /* another second in this thread's cache */
    check_vector(i);
}
END_TEST

/* Several threads formatting different seconds at once each get their own right answers. */
static void *busy_thread(void *arg)
{
    size_t offset = *(size_t *)arg;
    char buf[TIMEFMT_RFC3339_MS_LEN + 1];

    for (size_t round = 0; round < 20000; round++) {
        size_t i = (offset + round) % ARRAY_SIZE(vectors);
        struct timespec ts = {.tv_sec = vectors[i].sec, .tv_nsec = vectors[i].nsec};
        if (vectors[i].sec < 0)
            continue; /* covered by its own test */
        timefmt_rfc3339_ms(buf, &ts);
        if (strcmp(buf, vectors[i].text) != 0)
            return (void *)1;
    }
    return NULL;
}

START_TEST(test_threads_do_not_share_the_cache)
{
    pthread_t threads[4];
    size_t offsets[4] = {0, 3, 5, 7};

    for (size_t t = 0; t < 4; t++)
        ck_assert_int_eq(pthread_create(&threads[t], NULL, busy_thread, &offsets[t]), 0);
    for (size_t t = 0; t < 4; t++) {
        void *result;
        pthread_join(threads[t], &result);
        ck_assert_msg(result == NULL, "thread %zu formatted a wrong time stamp", t);
    }
}
END_TEST

/* --- elapsed ------------------------------------------------------------------------------- */

static const struct {
    struct timespec from, to;
    double ms;
} elapsed_vectors[] = {
    {{0, 0}, {0, 0}, 0.0},
    {{5, 0}, {5, 1000000}, 1.0},
    {{5, 0}, {5, 1000}, 0.001},
    {{1, 500000000}, {3, 250000000}, 1750.0}, /* nanoseconds borrow */
    {{1, 999999999}, {2, 0}, 0.000001},
    {{100, 0}, {3700, 0}, 3600000.0},
    {{2, 0}, {1, 500000000}, -500.0}, /* reversed: negative, not wrapped */
    {{1000000000, 123456789}, {1000000001, 123456789}, 1000.0},
};

START_TEST(test_elapsed_ms)
{
    double got = timefmt_elapsed_ms(&elapsed_vectors[_i].from, &elapsed_vectors[_i].to);
    double want = elapsed_vectors[_i].ms;
    double tolerance = 1e-9 * (want < 0 ? -want : want) + 1e-9;

    ck_assert_msg(got - want <= tolerance && want - got <= tolerance,
                  "vector %d: %.9f, expected "
                  "%.9f",
                  _i, got, want);
}
END_TEST

/* Against the real monotonic clock: never negative, and close to what the clock itself says. */
START_TEST(test_elapsed_ms_of_the_clock)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct timespec pause = {0, 20 * 1000000};
    nanosleep(&pause, NULL); /* the duration being measured, not a synchronisation */
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = timefmt_elapsed_ms(&a, &b);
    ck_assert_msg(ms >= 20.0 && ms < 5000.0, "20 ms pause measured as %.3f ms", ms);
}
END_TEST

static Suite *timefmt_suite(void)
{
    Suite *s = suite_create("timefmt");
    TCase *tc = tcase_create("rfc3339");

    tcase_add_loop_test(tc, test_vector, 0, (int)ARRAY_SIZE(vectors));
    tcase_add_test(tc, test_cache_never_leaks);
    tcase_add_test(tc, test_threads_do_not_share_the_cache);
    suite_add_tcase(s, tc);

    tc = tcase_create("elapsed");
    tcase_add_loop_test(tc, test_elapsed_ms, 0, (int)ARRAY_SIZE(elapsed_vectors));
    tcase_add_test(tc, test_elapsed_ms_of_the_clock);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(timefmt_suite());
}
