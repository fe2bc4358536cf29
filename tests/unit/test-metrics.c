/* SPDX-License-Identifier: MIT */
/*
 * Metrics counting and rendering (src/observe/metrics.h; docs/operations.md, "Metrics"): requests
 * by route, method and status class, duration histograms with cumulative buckets, upstream failures
 * by outcome, merged over several workers' `struct metrics`; Prometheus text 0.0.4 and OpenMetrics
 * 1.0 (exemplars only for sampled requests, "# EOF" at the end). Both outputs are also checked by
 * Prometheus' own parsers through promtool (tests/promtool-check.h), which must be installed.
 *
 * Route slots are process-wide (assigned by name at config load), so each test uses route
 * names of its own and looks only at its own series; the test that fills every slot runs last.
 * The expected values are counted by the test from what it fed in.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "observe/metrics.h"
#include "observe/process_stats.h"
#include "observe/request_summary.h"
#include "../promtool-check.h"
#include "unit-test.h"

#define WORKERS 3

/* The slot of a route name, as the config loader assigns it (common/route_slots.h). */
static unsigned route_slot(const char *name)
{
    unsigned slot = 0;

    ck_assert_int_eq(route_slot_register(name, &slot), 0);
    return slot;
}

static struct metrics *workers[WORKERS];

static void workers_setup(void)
{
    for (size_t i = 0; i < WORKERS; i++) {
        workers[i] = calloc(1, sizeof(struct metrics));
        ck_assert_ptr_nonnull(workers[i]);
    }
}

static void workers_teardown(void)
{
    for (size_t i = 0; i < WORKERS; i++) {
        free(workers[i]);
        workers[i] = NULL;
    }
}

static const struct metrics_process process = {
    .log_lines_written = 12345,
    .log_lines_dropped = 7,
    .reloads_ok = 3,
    .reloads_failed = 2,
    .last_reload_timestamp = 1795312511.25,
    .last_reload_ok = true,
    .ready = true,
};

static char *render(bool openmetrics)
{
    char *text = NULL;
    size_t len = 0;

    ck_assert_int_eq(metrics_render(workers, WORKERS, &process, openmetrics, &text, &len), 0);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), len);
    return text;
}

/* The line of `series` (name and labels exactly as rendered), or NULL. */
static const char *series_line(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return line;
    return NULL;
}

/* The value of `series`, NAN when it is not there. */
static double value_of(const char *text, const char *series)
{
    const char *line = series_line(text, series);
    return line ? strtod(line + strlen(series) + 1, NULL) : NAN;
}

static void assert_value(const char *text, const char *series, double want)
{
    double got = value_of(text, series);
    ck_assert_msg(!isnan(got), "no series %s in:\n%.2500s", series, text);
    ck_assert_msg(fabs(got - want) <= 1e-9 * fabs(want) + 1e-9, "%s is %.9g, expected %.9g", series,
                  got, want);
}

static void assert_absent(const char *text, const char *series)
{
    ck_assert_msg(series_line(text, series) == NULL, "unexpected series %s", series);
}

static size_t count_occurrences(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void count(unsigned worker, unsigned slot, const char *method, unsigned status,
                  double duration_s)
{
    struct request_summary r = {
        .route_slot = slot,
        .method = method,
        .status = status,
        .outcome = "ok",
        .duration_s = duration_s,
    };
    metrics_count_request(workers[worker], &r);
}

/* --- slots -------------------------------------------------------------------------------------
 */

START_TEST(test_route_slot_stable_by_name)
{
    unsigned a = route_slot("slot-a");
    unsigned b = route_slot("slot-b");

    ck_assert_uint_gt(a, 0); /* slot 0 is "no route" */
    ck_assert_uint_gt(b, 0);
    ck_assert_uint_lt(a, METRICS_ROUTE_SLOTS - 1); /* the last one is "other" */
    ck_assert_uint_ne(a, b);
    ck_assert_uint_eq(route_slot("slot-a"), a);
    ck_assert_uint_eq(route_slot("slot-b"), b);
    char copy[] = "slot-a"; /* by content, not by pointer */
    ck_assert_uint_eq(route_slot(copy), a);
    ck_assert_uint_ne(route_slot("SLOT-A"), a);
}
END_TEST

/* --- counters ------------------------------------------------------------------------------------
 */

START_TEST(test_requests_by_route_method_and_status_class)
{
    unsigned api = route_slot("count-api");

    count(0, api, "GET", 200, 0.001);
    count(0, api, "GET", 200, 0.001);
    count(1, api, "GET", 204, 0.001);
    count(2, api, "POST", 503, 0.001);
    count(0, api, "BREW", 418, 0.001); /* unknown methods share "other" */
    count(1, api, "get", 200, 0.001);  /* methods are case-sensitive */
    count(1, api, "GET", 0, 0.001);    /* no response at all */
    count(2, api, "GET", 600, 0.001);  /* not a status class */
    count(2, api, "GET", 99, 0.001);
    count(0, api, "DELETE", 302, 0.001);
    count(1, api, "OPTIONS", 101, 0.001);
    count(2, api, "HEAD", 200, 0.001);
    count(2, api, "PUT", 201, 0.001);
    count(0, api, "PATCH", 409, 0.001);
    count(1, 0, "GET", 404, 0.0001); /* slot 0: no route matched */
    count(2, 0, "GET", 404, 0.0001);
    count(0, ROUTE_SLOT_REFUSED, "GET", 400, 0.0001); /* refused before routing */
    count(1, ROUTE_SLOT_REFUSED, "POST", 413, 0.0001);

    for (int format = 0; format < 2; format++) {
        char *t = render(format == 1);
        assert_value(
            t, "tracehop_requests_total{route=\"count-api\",method=\"GET\",status_class=\"2xx\"}",
            3);
        assert_value(
            t, "tracehop_requests_total{route=\"count-api\",method=\"POST\",status_class=\"5xx\"}",
            1);
        assert_value(
            t, "tracehop_requests_total{route=\"count-api\",method=\"other\",status_class=\"4xx\"}",
            1);
        assert_value(
            t, "tracehop_requests_total{route=\"count-api\",method=\"other\",status_class=\"2xx\"}",
            1);
        assert_value(
            t, "tracehop_requests_total{route=\"count-api\",method=\"GET\",status_class=\"none\"}",
            3);
        assert_value(
            t,
            "tracehop_requests_total{route=\"count-api\",method=\"DELETE\",status_class=\"3xx\"}",
            1);
        assert_value(
            t,
            "tracehop_requests_total{route=\"count-api\",method=\"OPTIONS\",status_class=\"1xx\"}",
            1);
        assert_value(
            t, "tracehop_requests_total{route=\"count-api\",method=\"HEAD\",status_class=\"2xx\"}",
            1);
        assert_value(
            t, "tracehop_requests_total{route=\"count-api\",method=\"PUT\",status_class=\"2xx\"}",
            1);
        assert_value(
            t, "tracehop_requests_total{route=\"count-api\",method=\"PATCH\",status_class=\"4xx\"}",
            1);
        assert_value(
            t, "tracehop_requests_total{route=\"no_route\",method=\"GET\",status_class=\"4xx\"}",
            2);
        /* Refused before routing: a label of their own, so that no_route means "no route". */
        assert_value(
            t, "tracehop_requests_total{route=\"(refused)\",method=\"GET\",status_class=\"4xx\"}",
            1);
        assert_value(
            t, "tracehop_requests_total{route=\"(refused)\",method=\"POST\",status_class=\"4xx\"}",
            1);
        assert_value(t, "tracehop_request_duration_seconds_count{route=\"(refused)\"}", 2);
        ck_assert_msg(!strstr(t, "tracehop_upstream_failures_total{route=\"(refused)\""),
                      "upstream failures rendered for requests that never had an upstream");
        /* Nothing counted, nothing rendered. */
        assert_absent(
            t, "tracehop_requests_total{route=\"count-api\",method=\"GET\",status_class=\"4xx\"}");
        assert_absent(
            t, "tracehop_requests_total{route=\"count-api\",method=\"POST\",status_class=\"2xx\"}");
        /* The request-duration histogram counted every one of them. */
        assert_value(t, "tracehop_request_duration_seconds_count{route=\"count-api\"}", 14);
        assert_value(t, "tracehop_request_duration_seconds_count{route=\"no_route\"}", 2);
        free(t);
    }
}
END_TEST

/* --- histograms --------------------------------------------------------------------------------
 */

static const char *const bounds[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                     "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                     "1",      "2.5",   "5",      "10",    "+Inf"};

START_TEST(test_histogram_cumulative_buckets)
{
    unsigned slot = route_slot("hist");
    static const double durations[] = {0.0001, 0.0005, 0.0007, 0.003, 0.3, 20, 2.5, 0.0};
    double sum = 0;

    for (size_t i = 0; i < ARRAY_SIZE(durations); i++) {
        struct request_summary r = {
            .route_slot = slot,
            .method = "GET",
            .status = 200,
            .outcome = "ok",
            .duration_s = durations[i],
            .has_upstream = i < 3,
            .upstream_duration_s = durations[i] / 2,
        };
        metrics_count_request(workers[i % WORKERS], &r);
        sum += durations[i];
    }
    for (int format = 0; format < 2; format++) {
        char *t = render(format == 1);
        char series[256];
        double previous = -1;
        for (size_t b = 0; b < ARRAY_SIZE(bounds); b++) {
            /* What the test expects: observations <= the bound (le is inclusive). */
            double bound = strcmp(bounds[b], "+Inf") == 0 ? INFINITY : strtod(bounds[b], NULL);
            unsigned want = 0;
            for (size_t i = 0; i < ARRAY_SIZE(durations); i++)
                want += durations[i] <= bound;
            snprintf(series, sizeof(series),
                     "tracehop_request_duration_seconds_bucket{route=\"hist\",le=\"%s\"}",
                     bounds[b]);
            assert_value(t, series, want);
            ck_assert(value_of(t, series) >= previous);
            previous = value_of(t, series);
        }
        assert_value(t, "tracehop_request_duration_seconds_count{route=\"hist\"}",
                     (double)ARRAY_SIZE(durations));
        double got_sum = value_of(t, "tracehop_request_duration_seconds_sum{route=\"hist\"}");
        ck_assert_msg(fabs(got_sum - sum) <= 1e-6 * ARRAY_SIZE(durations),
                      "_sum %.9f, expected %.9f", got_sum, sum);
        /* Only the requests that reached the upstream are in its histogram. */
        assert_value(t, "tracehop_upstream_duration_seconds_count{route=\"hist\"}", 3);
        assert_value(t, "tracehop_upstream_duration_seconds_bucket{route=\"hist\",le=\"0.0005\"}",
                     3);
        assert_value(t, "tracehop_upstream_duration_seconds_bucket{route=\"hist\",le=\"+Inf\"}", 3);
        /* Buckets in ascending order of le, +Inf last, then _sum and _count. */
        const char *prev_line = NULL;
        for (size_t b = 0; b < ARRAY_SIZE(bounds); b++) {
            snprintf(series, sizeof(series),
                     "tracehop_request_duration_seconds_bucket{route=\"hist\",le=\"%s\"}",
                     bounds[b]);
            const char *line = series_line(t, series);
            ck_assert_msg(line && (!prev_line || line > prev_line), "bucket %s out of order",
                          bounds[b]);
            prev_line = line;
        }
        ck_assert(series_line(t, "tracehop_request_duration_seconds_sum{route=\"hist\"}") >
                  prev_line);
        free(t);
    }
}
END_TEST

/* --- upstream failures ---------------------------------------------------------------------------
 */

START_TEST(test_upstream_failures_by_outcome)
{
    unsigned slot = route_slot("fail");
    static const char *const outcomes[] = {
        "upstream_connect_failed",
        "upstream_connect_failed",
        "upstream_timeout",
        "upstream_tls_failed",
        "ok",
        "ok",
        "no_route",
        "client_aborted",
        "bad_request",
        "too_large",
        NULL,
    };
    for (size_t i = 0; i < ARRAY_SIZE(outcomes); i++) {
        struct request_summary r = {
            .route_slot = slot,
            .method = "GET",
            .status = outcomes[i] && strncmp(outcomes[i], "upstream", 8) == 0 ? 502 : 200,
            .outcome = outcomes[i],
            .duration_s = 0.01,
        };
        metrics_count_request(workers[i % WORKERS], &r);
    }
    for (int format = 0; format < 2; format++) {
        char *t = render(format == 1);
        assert_value(
            t,
            "tracehop_upstream_failures_total{route=\"fail\",outcome=\"upstream_connect_failed\"}",
            2);
        assert_value(
            t, "tracehop_upstream_failures_total{route=\"fail\",outcome=\"upstream_timeout\"}", 1);
        assert_value(
            t, "tracehop_upstream_failures_total{route=\"fail\",outcome=\"upstream_reset\"}", 0);
        assert_value(
            t, "tracehop_upstream_failures_total{route=\"fail\",outcome=\"upstream_tls_failed\"}",
            1);
        ck_assert_msg(!strstr(t, "outcome=\"ok\"") && !strstr(t, "outcome=\"no_route\""),
                      "outcomes that are not upstream failures are rendered");
        assert_value(
            t, "tracehop_requests_total{route=\"fail\",method=\"GET\",status_class=\"5xx\"}", 4);
        free(t);
    }
}
END_TEST

/* A response whose status line went out but that broke off mid-body is no success: it counts in
 * status_class "none" (the error ratio's numerator), and an upstream that broke it off also in
 * the upstream failures. */
START_TEST(test_response_broken_mid_body_counts_as_none)
{
    unsigned slot = route_slot("broken-body");
    static const struct {
        const char *outcome;
        bool broken;
    } cases[] = {
        {"upstream_reset", true}, {"client_aborted", true}, {"shutdown", true}, {"ok", false}};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct request_summary r = {
            .route_slot = slot,
            .method = "GET",
            .status = 200,
            .outcome = cases[i].outcome,
            .response_broken = cases[i].broken,
            .duration_s = 0.01,
        };
        metrics_count_request(workers[i % WORKERS], &r);
    }
    char *t = render(false);
    assert_value(
        t, "tracehop_requests_total{route=\"broken-body\",method=\"GET\",status_class=\"none\"}",
        3);
    assert_value(
        t, "tracehop_requests_total{route=\"broken-body\",method=\"GET\",status_class=\"2xx\"}", 1);
    assert_value(
        t, "tracehop_upstream_failures_total{route=\"broken-body\",outcome=\"upstream_reset\"}", 1);
    free(t);
}
END_TEST

/* --- process-wide values and gauges -------------------------------------------------------------
 */

START_TEST(test_merged_totals_gauges_and_process_values)
{
    unsigned slot = route_slot("bytes");
    for (unsigned i = 0; i < 6; i++) {
        struct request_summary r = {
            .route_slot = slot,
            .method = "POST",
            .status = 201,
            .outcome = "ok",
            .duration_s = 0.002,
            .received_bytes = 1000 + i,
            .sent_bytes = 10 * i,
        };
        metrics_count_request(workers[i % WORKERS], &r);
    }
    atomic_store(&workers[0]->in_flight, 2);
    atomic_store(&workers[2]->in_flight, 3);
    atomic_store(&workers[1]->open_connections, 7);
    atomic_store(&workers[2]->open_connections, 1);

    for (int format = 0; format < 2; format++) {
        char *t = render(format == 1);
        assert_value(t, "tracehop_received_bytes_total", 6015);
        assert_value(t, "tracehop_sent_bytes_total", 150);
        assert_value(t, "tracehop_requests_in_flight", 5);
        assert_value(t, "tracehop_open_connections", 8);
        assert_value(t, "tracehop_access_log_lines_total{result=\"written\"}", 12345);
        assert_value(t, "tracehop_access_log_lines_total{result=\"dropped\"}", 7);
        assert_value(t, "tracehop_config_reloads_total{result=\"ok\"}", 3);
        assert_value(t, "tracehop_config_reloads_total{result=\"failed\"}", 2);
        assert_value(t, "tracehop_config_last_reload_timestamp_seconds", 1795312511.25);
        assert_value(t, "tracehop_config_last_reload_success", 1);
        assert_value(t, "tracehop_ready", 1);
        ck_assert_msg(strstr(t, "\ntracehop_build_info{version=\"") != NULL, "no build info");
        free(t);
    }
}
END_TEST

/* --- formats -------------------------------------------------------------------------------------
 */

static const uint8_t sampled_trace[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                          0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t sampled_span[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
static const uint8_t other_sampled_trace[16] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                                0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01};
static const uint8_t unsampled_trace[16] = {0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef,
                                            0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef};
static const uint8_t any_span[8] = {1, 2, 3, 4, 5, 6, 7, 8};

static void count_traced(unsigned worker, unsigned slot, double duration_s, bool upstream,
                         const uint8_t *trace_id, const uint8_t *span_id, bool sampled)
{
    struct request_summary r = {
        .route_slot = slot,
        .method = "GET",
        .status = 200,
        .outcome = "ok",
        .duration_s = duration_s,
        .has_upstream = upstream,
        .upstream_duration_s = duration_s / 2,
        .trace_id = trace_id,
        .span_id = span_id,
        .sampled = sampled,
    };
    metrics_count_request(workers[worker], &r);
}

/* Whether the line starting at `line` (up to its newline) contains needle. */
static bool line_has(const char *line, const char *needle)
{
    const char *eol = strchr(line, '\n');
    const char *hit = strstr(line, needle);
    return hit && (!eol || hit < eol);
}

/* The exemplar of a bucket line: its trace_id, span_id, value and timestamp. */
struct exemplar {
    char trace_id[33], span_id[17];
    double value, timestamp;
};

static bool parse_exemplar(const char *line, struct exemplar *e)
{
    const char *eol = strchr(line, '\n');
    const char *hash = strstr(line, " # {");
    if (!hash || (eol && hash > eol))
        return false;
    int used = 0;
    if (sscanf(hash, " # {trace_id=\"%32[0-9a-f]\",span_id=\"%16[0-9a-f]\"} %lf %lf%n", e->trace_id,
               e->span_id, &e->value, &e->timestamp, &used) != 4)
        return false;
    return hash + used == (eol ? eol : hash + strlen(hash)); /* nothing after the timestamp */
}

START_TEST(test_openmetrics_exemplars_only_for_sampled)
{
    unsigned slot = route_slot("exemplars");
    struct timespec now;

    count_traced(0, slot, 0.003, true, sampled_trace, sampled_span, true);  /* le=0.005 */
    count_traced(1, slot, 0.3, false, unsampled_trace, any_span, false);    /* le=0.5 */
    count_traced(2, slot, 0.3, false, other_sampled_trace, any_span, true); /* le=0.5 */
    count_traced(1, slot, 20, false, unsampled_trace, any_span, false);     /* +Inf */
    count_traced(0, slot, 0.07, false, NULL, NULL, true); /* sampled without ids: none */
    clock_gettime(CLOCK_REALTIME, &now);

    char *t = render(true);
    struct exemplar e;
    const char *line = series_line(
        t, "tracehop_request_duration_seconds_bucket{route=\"exemplars\",le=\"0.005\"}");
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(parse_exemplar(line, &e), "no well-formed exemplar on the 0.005 bucket: %.200s",
                  line);
    ck_assert_str_eq(e.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_str_eq(e.span_id, "00f067aa0ba902b7");
    ck_assert_msg(fabs(e.value - 0.003) < 1e-6, "exemplar value %.9f, expected 0.003", e.value);
    ck_assert_msg(fabs(e.timestamp - (double)now.tv_sec) < 60, "exemplar timestamp %.3f, now %lld",
                  e.timestamp, (long long)now.tv_sec);

    line =
        series_line(t, "tracehop_request_duration_seconds_bucket{route=\"exemplars\",le=\"0.5\"}");
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(parse_exemplar(line, &e), "no exemplar on the 0.5 bucket");
    ck_assert_str_eq(e.trace_id, "112233445566778899aabbccddeeff01");

    /* Buckets where only unsampled requests (or none) landed have no exemplar. */
    line =
        series_line(t, "tracehop_request_duration_seconds_bucket{route=\"exemplars\",le=\"+Inf\"}");
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(!parse_exemplar(line, &e) && !line_has(line, "# {"), "exemplar on +Inf: %.200s",
                  line);
    line =
        series_line(t, "tracehop_request_duration_seconds_bucket{route=\"exemplars\",le=\"0.1\"}");
    ck_assert_msg(line && strncmp(strchr(line, '}') + 1, " 2\n", 3) == 0, "0.1 bucket: %.200s",
                  line);
    ck_assert_msg(!strstr(t, "deadbeefdeadbeef"), "an unsampled trace became an exemplar");

    /* The upstream histogram has the exemplar of the sampled request that reached it. */
    line = series_line(
        t, "tracehop_upstream_duration_seconds_bucket{route=\"exemplars\",le=\"0.0025\"}");
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(parse_exemplar(line, &e), "no exemplar on the upstream 0.0025 bucket");
    ck_assert_str_eq(e.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");

    /* OpenMetrics structure: counters are typed without _total, the text ends with # EOF. */
    ck_assert_msg(strstr(t, "# TYPE tracehop_requests counter\n") != NULL, "counter TYPE line");
    ck_assert_msg(!strstr(t, "# TYPE tracehop_requests_total"), "counter TYPE with _total");
    ck_assert_msg(strstr(t, "# TYPE tracehop_request_duration_seconds histogram\n") != NULL,
                  "histogram TYPE line");
    size_t len = strlen(t);
    ck_assert_msg(len >= 6 && strcmp(t + len - 6, "# EOF\n") == 0, "does not end with # EOF");
    ck_assert_uint_eq(count_occurrences(t, "# EOF"), 1);
    free(t);

    /* Prometheus text: the same counts, no exemplar, no EOF, counters typed with _total. */
    t = render(false);
    ck_assert_msg(!strstr(t, " # {") && !strstr(t, "trace_id"), "exemplar in Prometheus text");
    ck_assert_msg(!strstr(t, "# EOF"), "# EOF in Prometheus text");
    ck_assert_msg(strstr(t, "# TYPE tracehop_requests_total counter\n") != NULL,
                  "counter TYPE line");
    assert_value(t, "tracehop_request_duration_seconds_bucket{route=\"exemplars\",le=\"0.005\"}",
                 1);
    free(t);
}
END_TEST

/* Label values from the config (route names) are escaped as the formats require. */
START_TEST(test_label_values_escaped)
{
    unsigned slot = route_slot("we\"ird\\route\nname");
    count(0, slot, "GET", 200, 0.001);

    for (int format = 0; format < 2; format++) {
        char *t = render(format == 1);
        assert_value(t,
                     "tracehop_requests_total{route=\"we\\\"ird\\\\route\\nname\",method=\"GET\","
                     "status_class=\"2xx\"}",
                     1);
        ck_assert_msg(!strstr(t, "route\nname"), "a raw newline inside a label value");
        free(t);
    }
}
END_TEST

/* --- promtool --------------------------------------------------------------------------------- */

/* A state with everything in it: several routes, every class, failures, exemplars, odd names. */
static void fill_everything(void)
{
    unsigned api = route_slot("promtool-api");
    unsigned odd = route_slot("promtool \"odd\" \\ name");
    static const unsigned statuses[] = {101, 200, 301, 404, 503, 0};
    static const char *const methods[] = {"GET",    "HEAD",  "POST",    "PUT",
                                          "DELETE", "PATCH", "OPTIONS", "BREW"};

    for (size_t s = 0; s < ARRAY_SIZE(statuses); s++)
        for (size_t m = 0; m < ARRAY_SIZE(methods); m++)
            count((unsigned)(s + m) % WORKERS, api, methods[m], statuses[s],
                  0.0003 * (double)(m + 1) * (double)(s + 1));
    count_traced(0, api, 0.004, true, sampled_trace, sampled_span, true);
    count_traced(1, api, 7.5, true, other_sampled_trace, any_span, true);
    count_traced(2, odd, 0.02, true, sampled_trace, any_span, true);
    count(1, 0, "GET", 404, 0.0001);
    struct request_summary failed = {.route_slot = api,
                                     .method = "GET",
                                     .status = 502,
                                     .outcome = "upstream_reset",
                                     .duration_s = 0.5};
    metrics_count_request(workers[2], &failed);
}

/* The standard process_* metrics, when the scrape read them; what could not be read is left
 * out rather than reported as 0. */
START_TEST(test_process_metrics)
{
    struct process_stats os = {
        .have_cpu = true,
        .have_memory = true,
        .have_start_time = true,
        .have_open_fds = true,
        .have_max_fds = true,
        .cpu_seconds = 12.34,
        .start_time_seconds = 1795312511.25,
        .virtual_bytes = 123456789,
        .resident_bytes = 4321 * 4096,
        .open_fds = 17,
        .max_fds = 65536,
    };
    struct metrics_process with_os = process;
    with_os.os = &os;
    char *text = NULL;
    size_t len = 0;

    fill_everything();
    for (int format = 0; format < 2; format++) {
        ck_assert_int_eq(metrics_render(workers, WORKERS, &with_os, format == 1, &text, &len), 0);
        assert_value(text, "process_cpu_seconds_total", 12.34);
        assert_value(text, "process_start_time_seconds", 1795312511.25);
        assert_value(text, "process_virtual_memory_bytes", 123456789);
        assert_value(text, "process_resident_memory_bytes", 4321 * 4096);
        assert_value(text, "process_open_fds", 17);
        assert_value(text, "process_max_fds", 65536);
        char *problem =
            format == 1 ? promtool_check_openmetrics(text, len) : promtool_check_text(text, len);
        ck_assert_msg(problem == NULL, "%.1200s\n--- the text ---\n%.3000s", problem, text);
        free(text);
    }
    os.have_max_fds = os.have_start_time = false; /* unlimited; /proc/stat unreadable */
    ck_assert_int_eq(metrics_render(workers, WORKERS, &with_os, false, &text, &len), 0);
    ck_assert_msg(!strstr(text, "process_max_fds") && !strstr(text, "process_start_time"),
                  "values that could not be read are rendered");
    assert_value(text, "process_open_fds", 17);
    free(text);
    text = render(false); /* no process values at all */
    ck_assert_msg(!strstr(text, "process_"), "process metrics without a reading");
    free(text);
}
END_TEST

START_TEST(test_promtool_accepts_prometheus_text)
{
    fill_everything();
    char *t = render(false);
    char *problem = promtool_check_text(t, strlen(t));
    ck_assert_msg(problem == NULL, "%.1200s\n--- the text ---\n%.1500s", problem, t);
    free(t);
}
END_TEST

START_TEST(test_promtool_accepts_openmetrics)
{
    fill_everything();
    char *t = render(true);
    char *problem = promtool_check_openmetrics(t, strlen(t));
    ck_assert_msg(problem == NULL, "%.1200s\n--- the text ---\n%.1500s", problem, t);
    free(t);
}
END_TEST

/* Before any request: valid output in both formats. */
START_TEST(test_promtool_accepts_empty_metrics)
{
    char *t = render(false);
    char *problem = promtool_check_text(t, strlen(t));
    ck_assert_msg(problem == NULL, "%.1200s\n%.1500s", problem, t);
    free(t);
    t = render(true);
    problem = promtool_check_openmetrics(t, strlen(t));
    ck_assert_msg(problem == NULL, "%.1200s\n%.1500s", problem, t);
    free(t);
}
END_TEST

/* The same checks catch a broken exposition (so that a passing run means something). */
START_TEST(test_promtool_refuses_broken_text)
{
    static const char text[] = "# TYPE x_total counter\nx_total{a=\"1\" 3\n";
    char *problem = promtool_check_text(text, strlen(text));
    ck_assert_msg(problem != NULL, "promtool accepted a broken exposition");
    free(problem);
    static const char om[] = "# TYPE x counter\nx_total 3\n"; /* no # EOF */
    problem = promtool_check_openmetrics(om, strlen(om));
    ck_assert_msg(problem != NULL, "promtool accepted OpenMetrics without # EOF");
    free(problem);
}
END_TEST

/* --- slots beyond the table (runs last: it uses up every slot) ------------------------------ */

START_TEST(test_route_slots_beyond_the_table_share_other)
{
    unsigned first = route_slot("overflow-0");
    unsigned last = 0;
    char name[32];

    for (unsigned i = 1; i < METRICS_ROUTE_SLOTS + 8; i++) {
        snprintf(name, sizeof(name), "overflow-%u", i);
        last = route_slot(name);
        ck_assert_uint_lt(last, METRICS_ROUTE_SLOTS);
        ck_assert_uint_gt(last, 0);
    }
    ck_assert_uint_eq(last, METRICS_ROUTE_SLOTS - 1);
    ck_assert_uint_eq(route_slot("overflow-0"), first); /* earlier names keep theirs */
    count(0, last, "GET", 200, 0.001);
    count(1, last, "GET", 200, 0.001);
    char *t = render(false);
    assert_value(t, "tracehop_requests_total{route=\"other\",method=\"GET\",status_class=\"2xx\"}",
                 2);
    char *problem = promtool_check_text(t, strlen(t));
    ck_assert_msg(problem == NULL, "%.2500s", problem);
    free(t);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("render");

    tcase_add_checked_fixture(tc, workers_setup, workers_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_route_slot_stable_by_name);
    tcase_add_test(tc, test_requests_by_route_method_and_status_class);
    tcase_add_test(tc, test_histogram_cumulative_buckets);
    tcase_add_test(tc, test_upstream_failures_by_outcome);
    tcase_add_test(tc, test_response_broken_mid_body_counts_as_none);
    tcase_add_test(tc, test_merged_totals_gauges_and_process_values);
    tcase_add_test(tc, test_openmetrics_exemplars_only_for_sampled);
    tcase_add_test(tc, test_label_values_escaped);
    suite_add_tcase(s, tc);

    tc = tcase_create("promtool");
    tcase_add_checked_fixture(tc, workers_setup, workers_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_promtool_accepts_prometheus_text);
    tcase_add_test(tc, test_process_metrics);
    tcase_add_test(tc, test_promtool_accepts_openmetrics);
    tcase_add_test(tc, test_promtool_accepts_empty_metrics);
    tcase_add_test(tc, test_promtool_refuses_broken_text);
    tcase_add_test(tc, test_route_slots_beyond_the_table_share_other);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(metrics_suite());
}
