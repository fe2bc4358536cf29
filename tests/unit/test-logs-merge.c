/* SPDX-License-Identifier: MIT */

/*
 * The reorder window of `tracehop logs` (src/cli/log_merge.c): lines of several inputs, each
 * only roughly in time order (a line is written when its request ends), come out in order as
 * long as no input goes back further than the window; the window's memory bounds win over the
 * order; and the merge asks for the input that holds the others back.
 *
 * The tests drive the merge the way logs.c does: ask which input to read, read one line of it,
 * report it, push it if it matches, pop what is ready.
 */

#include <errno.h>
#include <stdio.h>

#include "cli/log_merge.h"
#include "unit-test.h"

struct input {
    const int64_t *times; /* per line */
    size_t count, next;
};

static struct log_record *new_record(size_t source, int64_t time_ms, uint64_t seq)
{
    struct log_record r = {.time_ms = time_ms, .source = source, .seq = seq, .duration_ms = 1};
    struct log_record *c = log_record_clone(&r);
    ck_assert_ptr_nonnull(c);
    return c;
}

/*
 * Run the merge over `inputs` and write the times in output order to out (room for all).
 * `matches(time)` decides which lines are pushed (NULL: all). Returns how many came out; also
 * checks that no more than max_held records were ever held per input.
 */
static size_t run_merge(struct input *inputs, size_t n, const struct log_merge_limits *limits,
                        bool (*matches)(int64_t), int64_t *out, size_t max_held)
{
    struct log_merge *m;
    struct log_record *r;
    size_t emitted = 0;
    uint64_t seq = 0;

    ck_assert_int_eq(log_merge_new(n, limits, &m), 0);
    for (;;) {
        while ((r = log_merge_pop(m))) {
            out[emitted++] = r->time_ms;
            log_record_free(r);
        }
        int s = log_merge_next_source(m);
        if (s < 0)
            break;
        struct input *in = &inputs[s];
        if (in->next == in->count) {
            log_merge_set_eof(m, (size_t)s, true);
            continue;
        }
        int64_t t = in->times[in->next++];
        log_merge_saw(m, (size_t)s, t);
        if (!matches || matches(t))
            ck_assert_int_eq(log_merge_push(m, new_record((size_t)s, t, seq++)), 0);
        ck_assert_uint_le(log_merge_count(m), max_held * n + 1);
    }
    while ((r = log_merge_pop_any(m))) {
        out[emitted++] = r->time_ms;
        log_record_free(r);
    }
    log_merge_free(m);
    return emitted;
}

static void assert_sorted(const int64_t *times, size_t n)
{
    for (size_t i = 1; i < n; i++)
        ck_assert_msg(times[i - 1] <= times[i], "out of order at %zu: %lld then %lld", i,
                      (long long)times[i - 1], (long long)times[i]);
}

START_TEST(test_skew_within_the_window_is_sorted)
{
    /* Written at request end: long requests show up late, by up to 9 s. */
    static const int64_t a[] = {1000, 3000, 900, 5000, 2000, 12000, 4000, 11000, 20000, 15000};
    static const int64_t b[] = {500, 2500, 1500, 8000, 7000, 30000, 25000};
    struct input inputs[] = {{a, ARRAY_SIZE(a), 0}, {b, ARRAY_SIZE(b), 0}};
    const struct log_merge_limits limits = {10000, 1 << 20, 10000};
    int64_t out[32];

    size_t n = run_merge(inputs, 2, &limits, NULL, out, 10000);
    ck_assert_uint_eq(n, ARRAY_SIZE(a) + ARRAY_SIZE(b));
    assert_sorted(out, n);
}
END_TEST

START_TEST(test_three_inputs_interleave)
{
    enum { N = 2000 };
    static int64_t a[N], b[N], c[N];
    static int64_t out[3 * N];
    uint64_t state = unit_prng_seed(42);

    /* Each roughly increasing with up to 3 s of jitter backwards. */
    for (size_t i = 0; i < N; i++) {
        a[i] = (int64_t)(i * 10) - (int64_t)(unit_prng_next(&state) % 3000);
        b[i] = (int64_t)(i * 7) - (int64_t)(unit_prng_next(&state) % 3000);
        c[i] = (int64_t)(i * 13) - (int64_t)(unit_prng_next(&state) % 3000);
    }
    struct input inputs[] = {{a, N, 0}, {b, N, 0}, {c, N, 0}};
    const struct log_merge_limits limits = {10000, 1 << 24, 10000};

    size_t n = run_merge(inputs, 3, &limits, NULL, out, 10000);
    ck_assert_uint_eq(n, 3 * N);
    assert_sorted(out, n);
}
END_TEST

START_TEST(test_skew_beyond_the_window_comes_out_late_but_comes_out)
{
    /* 50 s back in time: beyond a 10 s window, so it cannot be put in its place. */
    static const int64_t a[] = {100000, 110000, 120000, 60000, 130000, 140000};
    struct input inputs[] = {{a, ARRAY_SIZE(a), 0}};
    const struct log_merge_limits limits = {10000, 1 << 20, 10000};
    int64_t out[8];

    size_t n = run_merge(inputs, 1, &limits, NULL, out, 10000);
    ck_assert_uint_eq(n, ARRAY_SIZE(a));
    ck_assert(out[0] == 100000);
    ck_assert(out[n - 1] == 140000);
}
END_TEST

START_TEST(test_line_limit_bounds_memory)
{
    enum { N = 5000 };
    static int64_t a[N], out[N];

    /* All in the same second: the time window never releases anything, the line limit does. */
    for (size_t i = 0; i < N; i++)
        a[i] = 1000 + (int64_t)(N - i) % 7;
    struct input inputs[] = {{a, N, 0}};
    const struct log_merge_limits limits = {100, 1 << 24, 10000};

    size_t n = run_merge(inputs, 1, &limits, NULL, out, 100);
    ck_assert_uint_eq(n, N);
}
END_TEST

START_TEST(test_byte_limit_bounds_memory)
{
    enum { N = 1000 };
    static int64_t a[N], out[N];

    for (size_t i = 0; i < N; i++)
        a[i] = 1000;
    struct input inputs[] = {{a, N, 0}};
    /* A record costs more than sizeof(struct log_record): at most a few fit in 1 KiB. */
    const struct log_merge_limits limits = {100000, 1024, 10000};

    size_t n = run_merge(inputs, 1, &limits, NULL, out, 1024 / sizeof(struct log_record) + 1);
    ck_assert_uint_eq(n, N);
}
END_TEST

static bool only_odd_seconds(int64_t t)
{
    return (t / 1000) % 2 == 1;
}

START_TEST(test_lines_that_do_not_match_still_move_the_window)
{
    enum { N = 3000 };
    static int64_t a[N], b[N], out[2 * N];

    for (size_t i = 0; i < N; i++) {
        a[i] = (int64_t)i * 100 + (i % 5 == 0 ? -900 : 0);
        b[i] = (int64_t)i * 100 + 50;
    }
    struct input inputs[] = {{a, N, 0}, {b, N, 0}};
    /* A tiny line limit would break the order if non-matching lines did not count as progress. */
    const struct log_merge_limits limits = {100000, 1 << 24, 1000};

    size_t n = run_merge(inputs, 2, &limits, only_odd_seconds, out, 100000);
    assert_sorted(out, n);
    ck_assert_uint_gt(n, 0);
}
END_TEST

START_TEST(test_next_source_prefers_the_input_behind)
{
    const struct log_merge_limits limits = {10000, 1 << 20, 10000};
    struct log_merge *m;

    ck_assert_int_eq(log_merge_new(3, &limits, &m), 0);
    ck_assert_int_eq(log_merge_next_source(m), 0); /* nothing read yet: the first */
    log_merge_saw(m, 0, 50000);
    ck_assert_int_eq(log_merge_next_source(m), 1); /* unread inputs come first */
    log_merge_saw(m, 1, 39000);
    log_merge_saw(m, 2, 45000);
    ck_assert_int_eq(log_merge_next_source(m), 1); /* the one furthest behind */
    ck_assert_int_eq(log_merge_push(m, new_record(0, 30000, 0)), 0);
    /* 30 s needs every input to have passed 40 s: input 1 has not, so it must be read. */
    ck_assert_ptr_null(log_merge_pop(m));
    ck_assert_int_eq(log_merge_next_source(m), 1);
    log_merge_saw(m, 1, 39999);
    ck_assert_ptr_null(log_merge_pop(m));
    log_merge_saw(m, 1, 40000);
    struct log_record *r = log_merge_pop(m);
    ck_assert_ptr_nonnull(r);
    ck_assert(r->time_ms == 30000);
    log_record_free(r);

    /* An input at its end never holds the others back. */
    ck_assert_int_eq(log_merge_push(m, new_record(2, 46000, 1)), 0);
    ck_assert_ptr_null(log_merge_pop(m));
    ck_assert_int_eq(log_merge_next_source(m), 1); /* 40 s: furthest behind of the holders */
    log_merge_set_eof(m, 1, true);
    ck_assert_int_eq(log_merge_next_source(m), 2);
    log_merge_set_eof(m, 2, true);
    ck_assert_int_eq(log_merge_next_source(m), 0);
    log_merge_set_eof(m, 0, true);
    ck_assert_int_eq(log_merge_next_source(m), -1);
    ck_assert_int_eq(log_merge_push(m, new_record(2, 1, 2)), 0);
    log_merge_free(m); /* frees what it still holds */
}
END_TEST

START_TEST(test_no_inputs_is_an_error)
{
    const struct log_merge_limits limits = {1, 1, 1};
    struct log_merge *m = NULL;

    ck_assert_int_eq(log_merge_new(0, &limits, &m), -EINVAL);
    log_merge_free(NULL);
}
END_TEST

static Suite *logs_merge_suite(void)
{
    Suite *suite = suite_create("logs-merge");
    TCase *order = tcase_create("order");
    TCase *limits = tcase_create("limits");

    tcase_add_test(order, test_skew_within_the_window_is_sorted);
    tcase_add_test(order, test_three_inputs_interleave);
    tcase_add_test(order, test_skew_beyond_the_window_comes_out_late_but_comes_out);
    tcase_add_test(order, test_lines_that_do_not_match_still_move_the_window);
    tcase_add_test(order, test_next_source_prefers_the_input_behind);
    suite_add_tcase(suite, order);

    tcase_add_test(limits, test_line_limit_bounds_memory);
    tcase_add_test(limits, test_byte_limit_bounds_memory);
    tcase_add_test(limits, test_no_inputs_is_an_error);
    suite_add_tcase(suite, limits);
    return suite;
}

int main(void)
{
    return unit_run(logs_merge_suite());
}
