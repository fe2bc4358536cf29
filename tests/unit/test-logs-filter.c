/* SPDX-License-Identifier: MIT */

/*
 * The filters of `tracehop logs` (src/cli/log_filter.c) and the time parsing under them
 * (src/cli/log_time.c): status codes and classes, RFC 3339 times and relative ones,
 * durations, and how filters combine (AND across options, OR within one).
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "cli/log_filter.h"
#include "cli/log_time.h"
#include "unit-test.h"

#define NOW_MS 1738324800000LL /* 2025-01-31T12:00:00Z */

/* --- time ---------------------------------------------------------------------------------- */

struct time_vector {
    const char *text;
    bool ok;
    int64_t ms;
};

static const struct time_vector time_vectors[] = {
    {"1970-01-01T00:00:00Z", true, 0},
    {"1970-01-01T00:00:00.001Z", true, 1},
    {"2025-01-31T12:00:00.123Z", true, 1738324800123LL},
    {"2025-01-31t12:00:00.123z", true, 1738324800123LL},
    {"2025-01-31 12:00:00Z", true, 1738324800000LL},
    {"2025-01-31T12:00:00.123456789Z", true, 1738324800123LL}, /* truncated to ms */
    {"2025-01-31T12:00:00.9Z", true, 1738324800900LL},
    {"2025-01-31T13:30:00+01:30", true, 1738324800000LL},
    {"2025-01-31T10:00:00-02:00", true, 1738324800000LL},
    {"2025-01-31T12:00:00", true, 1738324800000LL}, /* no offset: UTC */
    {"2025-01-31T12:00", true, 1738324800000LL},
    {"2025-01-31", true, 1738281600000LL},
    {"2024-02-29T00:00:00Z", true, 1709164800000LL},
    {"1969-12-31T23:59:59Z", true, -1000},
    {"2016-12-31T23:59:60Z", true, 1483228800000LL}, /* a leap second */
    {"2025-02-29T00:00:00Z", false, 0},
    {"2100-02-29T00:00:00Z", false, 0},
    {"2025-13-01T00:00:00Z", false, 0},
    {"2025-00-01T00:00:00Z", false, 0},
    {"2025-04-31T00:00:00Z", false, 0},
    {"2025-01-31T24:00:00Z", false, 0},
    {"2025-01-31T12:60:00Z", false, 0},
    {"2025-01-31T12:00:61Z", false, 0},
    {"2025-01-31T12:00:00.Z", false, 0},
    {"2025-01-31T12:00:00+1:00", false, 0},
    {"2025-01-31T12:00:00+01", false, 0},
    {"2025-01-31T12:00:00Zjunk", false, 0},
    {"2025-1-31", false, 0},
    {"25-01-31", false, 0},
    {"", false, 0},
    {"yesterday", false, 0},
};

START_TEST(test_time_vectors)
{
    const struct time_vector *v = &time_vectors[_i];
    char *copy = unit_memdup(v->text, strlen(v->text));
    int64_t ms = -42;

    bool ok = log_time_parse_rfc3339(copy, strlen(v->text), &ms);
    ck_assert_msg(ok == v->ok, "'%s': %s", v->text, ok ? "accepted" : "refused");
    if (ok)
        ck_assert_msg(ms == v->ms, "'%s' is %lld, not %lld", v->text, (long long)ms,
                      (long long)v->ms);
    free(copy);
}
END_TEST

START_TEST(test_time_format_round_trip)
{
    char text[LOG_TIME_TEXT_SIZE];
    int64_t back;

    log_time_format(1738324800123LL, text);
    ck_assert_str_eq(text, "2025-01-31T12:00:00.123Z");
    ck_assert(log_time_parse_rfc3339(text, strlen(text), &back));
    ck_assert(back == 1738324800123LL);
    log_time_format(-1, text);
    ck_assert_str_eq(text, "1969-12-31T23:59:59.999Z");
}
END_TEST

struct duration_vector {
    const char *text;
    double bare_unit;
    bool ok;
    double ms;
};

static const struct duration_vector duration_vectors[] = {
    {"250", 1, true, 250},       {"250", 0, false, 0}, /* a bare number where a unit is required */
    {"1.5", 1, true, 1.5},       {"250ms", 1, true, 250},
    {"1.5s", 0, true, 1500},     {"15m", 0, true, 900000},
    {"2h", 0, true, 7200000},    {"1d", 0, true, 86400000},
    {"1h30m", 0, true, 5400000}, {"1m30s500ms", 0, true, 90500},
    {".5s", 0, true, 500},       {"0", 1, true, 0},
    {"1h30", 1, false, 0}, /* a bare number only alone */
    {"-5m", 0, false, 0},        {"5x", 0, false, 0},
    {"m", 0, false, 0},          {"0x10", 1, false, 0},
    {"1e3", 1, false, 0},        {"inf", 1, false, 0},
    {"", 1, false, 0},           {"99999999999999999999d", 0, false, 0},
};

START_TEST(test_duration_vectors)
{
    const struct duration_vector *v = &duration_vectors[_i];
    double ms = -1;

    bool ok = log_time_parse_duration(v->text, v->bare_unit, &ms);
    ck_assert_msg(ok == v->ok, "'%s': %s", v->text, ok ? "accepted" : "refused");
    if (ok)
        ck_assert_msg(fabs(ms - v->ms) < 1e-9, "'%s' is %f ms", v->text, ms);
}
END_TEST

START_TEST(test_points_in_time)
{
    int64_t ms;

    ck_assert(log_time_parse_point("now", NOW_MS, &ms));
    ck_assert(ms == NOW_MS);
    ck_assert(log_time_parse_point("15m", NOW_MS, &ms));
    ck_assert(ms == NOW_MS - 15 * 60000);
    ck_assert(log_time_parse_point("2h", NOW_MS, &ms));
    ck_assert(ms == NOW_MS - 7200000);
    ck_assert(log_time_parse_point("2025-01-31T11:00:00Z", NOW_MS, &ms));
    ck_assert(ms == NOW_MS - 3600000);
    ck_assert(!log_time_parse_point("15", NOW_MS, &ms)); /* 15 what? */
    ck_assert(!log_time_parse_point("soon", NOW_MS, &ms));
}
END_TEST

/* --- status --------------------------------------------------------------------------------- */

struct status_vector {
    const char *arg;
    bool ok;
    const int matches[6]; /* terminated by 0; -1 stands for a null status */
    const int misses[6];
};

static const struct status_vector status_vectors[] = {
    {"500", true, {500}, {501, 200, 50, -1}},
    {"5xx", true, {500, 502, 599}, {499, 600, 200, -1}},
    {"5XX", true, {503}, {404}},
    {"4xx,500", true, {404, 500}, {501, 200}},
    {"none", true, {-1}, {200, 500}},
    {"2xx,none", true, {200, -1}, {500}},
    {"100", true, {100}, {101}},
    {"599", true, {599}, {598, 600}},
    /* HTTP status codes are three digits from 100 to 599 (RFC 9110, section 15): anything
       else could never match a line the daemon wrote, so it is a usage error. */
    {"600", false, {0}, {0}},
    {"999", false, {0}, {0}},
    {"6xx", false, {0}, {0}},
    {"9xx", false, {0}, {0}},
    {"99", false, {0}, {0}},
    {"0", false, {0}, {0}},
    {"000", false, {0}, {0}},
    {"200,600", false, {0}, {0}},
    {"099", false, {0}, {0}},
    {"0xx", false, {0}, {0}},
    {"5x", false, {0}, {0}},
    {"5xxx", false, {0}, {0}},
    {"50", false, {0}, {0}},
    {"1000", false, {0}, {0}},
    {"", false, {0}, {0}},
    {"500,", false, {0}, {0}},
    {",500", false, {0}, {0}},
    {"abc", false, {0}, {0}},
    {"NONE", false, {0}, {0}},
};

START_TEST(test_status_vectors)
{
    const struct status_vector *v = &status_vectors[_i];
    struct log_filter f;
    char err[256] = "";

    log_filter_init(&f);
    int rc = log_filter_add_status(&f, v->arg, err, sizeof(err));
    ck_assert_msg((rc == 0) == v->ok, "--status '%s': %d %s", v->arg, rc, err);
    if (!v->ok) {
        ck_assert_ptr_nonnull(strstr(err, "--status"));
    }
    for (size_t i = 0; v->ok && v->matches[i]; i++) {
        struct log_record r = {.status = v->matches[i]};
        ck_assert_msg(log_filter_match(&f, &r), "--status %s misses %d", v->arg, r.status);
    }
    for (size_t i = 0; v->ok && v->misses[i]; i++) {
        struct log_record r = {.status = v->misses[i]};
        ck_assert_msg(!log_filter_match(&f, &r), "--status %s matches %d", v->arg, r.status);
    }
    log_filter_free(&f);
}
END_TEST

START_TEST(test_repeated_status_widens)
{
    struct log_filter f;
    char err[256];
    struct log_record r = {.status = 404};

    log_filter_init(&f);
    ck_assert_int_eq(log_filter_add_status(&f, "5xx", err, sizeof(err)), 0);
    ck_assert(!log_filter_match(&f, &r));
    ck_assert_int_eq(log_filter_add_status(&f, "404", err, sizeof(err)), 0);
    ck_assert(log_filter_match(&f, &r));
    log_filter_free(&f);
}
END_TEST

/* --- combining -------------------------------------------------------------------------------- */

START_TEST(test_filters_combine_with_and)
{
    struct log_filter f;
    char err[256];
    struct log_record r = {
        .time_ms = NOW_MS - 60000,
        .status = 503,
        .duration_ms = 300,
        .service = "checkout",
        .outcome = "upstream_timeout",
    };

    log_filter_init(&f);
    ck_assert(log_filter_match(&f, &r)); /* no filter: everything */
    ck_assert_int_eq(log_filter_set_since(&f, "5m", NOW_MS, err, sizeof(err)), 0);
    ck_assert_int_eq(log_filter_set_until(&f, "now", NOW_MS, err, sizeof(err)), 0);
    ck_assert_int_eq(log_filter_add_status(&f, "5xx", err, sizeof(err)), 0);
    ck_assert_int_eq(log_filter_add_service(&f, "cart,checkout", err, sizeof(err)), 0);
    ck_assert_int_eq(log_filter_add_outcome(&f, "upstream_timeout", err, sizeof(err)), 0);
    ck_assert_int_eq(log_filter_set_slow(&f, "250", err, sizeof(err)), 0);
    ck_assert_int_eq(log_filter_check(&f, err, sizeof(err)), 0);
    ck_assert(log_filter_match(&f, &r));

    struct log_record other = r;
    other.time_ms = NOW_MS - 10 * 60000; /* before --since */
    ck_assert(!log_filter_match(&f, &other));
    other = r;
    other.time_ms = NOW_MS; /* --until is exclusive */
    ck_assert(!log_filter_match(&f, &other));
    other = r;
    other.status = 200;
    ck_assert(!log_filter_match(&f, &other));
    other = r;
    other.service = "search";
    ck_assert(!log_filter_match(&f, &other));
    other = r;
    other.service = NULL;
    ck_assert(!log_filter_match(&f, &other));
    other = r;
    other.outcome = "ok";
    ck_assert(!log_filter_match(&f, &other));
    other = r;
    other.duration_ms = 249.999;
    ck_assert(!log_filter_match(&f, &other));
    other.duration_ms = 250; /* --slow is inclusive */
    ck_assert(log_filter_match(&f, &other));
    other.duration_ms = NAN; /* null duration is never slow */
    ck_assert(!log_filter_match(&f, &other));
    log_filter_free(&f);
}
END_TEST

/* Every outcome of docs/access-log.md is accepted, alone and as one list. */
START_TEST(test_documented_outcomes_are_accepted)
{
    static const char *const documented[] = {
        "ok",
        "no_route",
        "upstream_connect_failed",
        "upstream_timeout",
        "upstream_reset",
        "client_aborted",
        "bad_request",
        "too_large",
    };
    struct log_filter f;
    char err[512];

    log_filter_init(&f);
    for (size_t i = 0; i < ARRAY_SIZE(documented); i++)
        ck_assert_msg(log_filter_add_outcome(&f, documented[i], err, sizeof(err)) == 0, "%s: %s",
                      documented[i], err);
    ck_assert_int_eq(log_filter_add_outcome(&f, "ok,no_route,too_large", err, sizeof(err)), 0);
    ck_assert_uint_eq(f.outcomes_count, ARRAY_SIZE(documented) + 3);
    log_filter_free(&f);
}
END_TEST

START_TEST(test_bad_filter_arguments)
{
    struct log_filter f;
    char err[256];

    log_filter_init(&f);
    ck_assert_int_eq(log_filter_set_since(&f, "last week", NOW_MS, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--since"));
    ck_assert_int_eq(log_filter_set_until(&f, "2025-02-30", NOW_MS, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--until"));
    ck_assert_int_eq(log_filter_set_slow(&f, "fast", err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--slow"));
    ck_assert_int_eq(log_filter_add_service(&f, "a,,b", err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(log_filter_add_outcome(&f, "", err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(log_filter_add_outcome(&f, "ok,timeout", err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'timeout' is not an outcome"));
    ck_assert_ptr_nonnull(strstr(err, "upstream_timeout")); /* the valid ones are listed */
    ck_assert_int_eq(log_filter_add_outcome(&f, "OK", err, sizeof(err)), -EINVAL);

    ck_assert_int_eq(log_filter_set_since(&f, "1h", NOW_MS, err, sizeof(err)), 0);
    ck_assert_int_eq(log_filter_set_until(&f, "2h", NOW_MS, err, sizeof(err)), 0);
    ck_assert_int_eq(log_filter_check(&f, err, sizeof(err)), -EINVAL);
    log_filter_free(&f);
}
END_TEST

static Suite *logs_filter_suite(void)
{
    Suite *suite = suite_create("logs-filter");
    TCase *time = tcase_create("time");
    TCase *status = tcase_create("status");
    TCase *combine = tcase_create("combine");

    tcase_add_loop_test(time, test_time_vectors, 0, (int)ARRAY_SIZE(time_vectors));
    tcase_add_test(time, test_time_format_round_trip);
    tcase_add_loop_test(time, test_duration_vectors, 0, (int)ARRAY_SIZE(duration_vectors));
    tcase_add_test(time, test_points_in_time);
    suite_add_tcase(suite, time);

    tcase_add_loop_test(status, test_status_vectors, 0, (int)ARRAY_SIZE(status_vectors));
    tcase_add_test(status, test_repeated_status_widens);
    suite_add_tcase(suite, status);

    tcase_add_test(combine, test_filters_combine_with_and);
    tcase_add_test(combine, test_bad_filter_arguments);
    tcase_add_test(combine, test_documented_outcomes_are_accepted);
    suite_add_tcase(suite, combine);
    return suite;
}

int main(void)
{
    return unit_run(logs_filter_suite());
}
