/* SPDX-License-Identifier: MIT */
/*
 * server_timing_format (src/proxy/server_timing.h): the Server-Timing value of the W3C Trace
 * Context Level 3 `trace` metric and the optional `tracehop` / `upstream` durations, checked
 * exactly, and every value checked against the W3C Server Timing grammar:
 *
 *   Server-Timing             = #server-timing-metric
 *   server-timing-metric      = metric-name *( OWS ";" OWS server-timing-param )
 *   server-timing-param       = server-timing-param-name OWS "=" OWS server-timing-param-value
 *   server-timing-param-value = token / quoted-string
 *
 * (tracehop writes only tokens, one ", " between metrics, no other whitespace).
 */
#include <check.h>
#include <math.h>
#include <string.h>

#include "common/http_syntax.h"
#include "proxy/server_timing.h"
#include "unit-test.h"

#define TP     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define NO_DUR (-1.0)

struct vector {
    const char *name;
    struct server_timing timing;
    const char *expect;
};

static const struct vector vectors[] = {
    {"trace only", {TP, NO_DUR, NO_DUR}, "trace;desc=" TP},
    {"trace and both durations",
     {TP, 12.3456, 10.0},
     "trace;desc=" TP ", tracehop;dur=12.346, upstream;dur=10.000"},
    {"trace and tracehop", {TP, 0.5, NO_DUR}, "trace;desc=" TP ", tracehop;dur=0.500"},
    {"durations without trace", {NULL, 7.25, 3.0}, "tracehop;dur=7.250, upstream;dur=3.000"},
    {"upstream alone", {NULL, NO_DUR, 1.0}, "upstream;dur=1.000"},
    {"zero durations are measured", {NULL, 0.0, 0.0}, "tracehop;dur=0.000, upstream;dur=0.000"},
    {"nothing", {NULL, NO_DUR, NO_DUR}, ""},
    {"NaN is not measured", {TP, NAN, NAN}, "trace;desc=" TP},
    {"huge duration clamped",
     {TP, 1e300, INFINITY},
     "trace;desc=" TP ", tracehop;dur=1000000000000.000, upstream;dur=1000000000000.000"},
    {"unsampled and random flags",
     {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02", NO_DUR, NO_DUR},
     "trace;desc=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02"},
    /* Not a version-00 traceparent: never put on the wire. */
    {"short traceparent", {"00-4bf92f35-01", 1.0, NO_DUR}, "tracehop;dur=1.000"},
    {"uppercase traceparent",
     {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", NO_DUR, NO_DUR},
     ""},
    {"traceparent with a comma",
     {"00-4bf92f3577b34da6a3ce929d0e0e4736,00f067aa0ba902b7-01", NO_DUR, NO_DUR},
     ""},
    {"traceparent too long", {TP "-00", NO_DUR, NO_DUR}, ""},
};

/* One metric: a token name, then ";name=token" parameters; no whitespace. */
static bool metric_is_valid(const char *s, size_t len)
{
    const char *end = s + len;
    const char *semi = memchr(s, ';', len);
    const char *name_end = semi ? semi : end;

    if (!http_is_token(s, (size_t)(name_end - s)))
        return false;
    while (semi) {
        const char *p = semi + 1;
        const char *next = memchr(p, ';', (size_t)(end - p));
        const char *param_end = next ? next : end;
        const char *eq = memchr(p, '=', (size_t)(param_end - p));

        if (!eq || !http_is_token(p, (size_t)(eq - p)) ||
            !http_is_token(eq + 1, (size_t)(param_end - eq - 1)))
            return false;
        semi = next;
    }
    return true;
}

static bool value_is_valid(const char *value)
{
    const char *p = value;

    for (;;) {
        const char *sep = strstr(p, ", ");
        size_t len = sep ? (size_t)(sep - p) : strlen(p);

        if (!metric_is_valid(p, len))
            return false;
        if (!sep)
            return true;
        p = sep + 2;
    }
}

START_TEST(test_vectors)
{
    const struct vector *v = &vectors[_i];
    char buf[SERVER_TIMING_VALUE_MAX + 1];
    size_t len;

    memset(buf, 'X', sizeof(buf));
    len = server_timing_format(&v->timing, buf);
    ck_assert_msg(strcmp(buf, v->expect) == 0, "%s: got \"%s\"", v->name, buf);
    ck_assert_uint_eq(len, strlen(v->expect));
    if (len > 0)
        ck_assert_msg(value_is_valid(buf), "%s: not Server-Timing syntax: \"%s\"", v->name, buf);
}
END_TEST

/* The longest value fits, with its NUL, and is valid syntax. */
START_TEST(test_longest_fits)
{
    struct server_timing timing = {TP, 1e12, 1e12 - 0.001};
    char buf[SERVER_TIMING_VALUE_MAX + 2];
    size_t len;

    buf[SERVER_TIMING_VALUE_MAX + 1] = '#';
    len = server_timing_format(&timing, buf);
    ck_assert_uint_le(len, SERVER_TIMING_VALUE_MAX);
    ck_assert_uint_eq(strlen(buf), len);
    ck_assert_int_eq(buf[SERVER_TIMING_VALUE_MAX + 1], '#');
    ck_assert(value_is_valid(buf));
}
END_TEST

static Suite *server_timing_suite(void)
{
    Suite *s = suite_create("server_timing");
    TCase *tc = tcase_create("format");

    tcase_add_loop_test(tc, test_vectors, 0, (int)ARRAY_SIZE(vectors));
    tcase_add_test(tc, test_longest_fits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(server_timing_suite());
}
