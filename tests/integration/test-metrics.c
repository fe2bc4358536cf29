/* SPDX-License-Identifier: MIT */
/*
 * The admin listener (docs/operations.md, Admin endpoints and Metrics) of the real daemon:
 * /healthz, /readyz, /metrics in the Prometheus text format and in OpenMetrics (with exemplars for
 * sampled requests), checked for the values a known set of requests must produce, and validated by
 * Prometheus itself: by promtool's parsers (tests/promtool-check.h), and by a real Prometheus
 * server (the Debian package `prometheus`) that scrapes the admin port once a second and must
 * report the counts through its query API. A missing promtool or prometheus fails the test: CI
 * installs both.
 *
 * Each test starts its own daemon (on --admin-listen 127.0.0.1:0, the admin port read from the
 * "admin listening on 127.0.0.1:PORT" diagnostic), so counts never mix between tests. Metrics are
 * counted when a request ends, just after its response went out, so reading a value waits
 * (bounded) until the scrape shows it. The Prometheus server is a child process stopped by PID.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "../promtool-check.h"

static char dir[HARNESS_PATH_MAX];
static struct harness_echo echo;

static void setup(void)
{
    ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
    ck_assert_int_eq(harness_echo_start(&echo, dir, false), 0);
}

static void teardown(void)
{
    harness_echo_stop(&echo);
    harness_tmpdir_remove(dir);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Two routes: "api" to the echo upstream (prefix stripped), "dead" to a closed port. New traces
 * are never sampled, so exemplars come only from requests that arrive sampled. */
static void start_daemon(struct harness_daemon *d)
{
    char config[1024];
    const char *args[] = {"--admin-listen", "127.0.0.1:0", NULL};

    snprintf(
        config, sizeof(config),
        "{\"trace\": {\"sampling_ratio\": 0}, \"limits\": {\"drain_delay_ms\": 0},"
        " \"routes\": ["
        "  {\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"}, \"upstream\": \"{ECHO}\","
        "   \"strip_prefix\": true},"
        "  {\"name\": \"dead\", \"match\": {\"path_prefix\": \"/dead\"},"
        "   \"upstream\": \"http://127.0.0.1:%u\", \"connect_timeout_ms\": 2000}]}",
        harness_closed_port());
    ck_assert_int_eq(harness_daemon_start(d, dir, config, echo.url, args), 0);
}

static long request(unsigned port, const char *method, const char *target,
                    const char *const *headers)
{
    struct harness_request rq = {.method = method, .target = target, .headers = headers};
    struct harness_response rs;
    harness_http(port, &rq, &rs);
    ck_assert_msg(rs.result == CURLE_OK, "%s %s: %s", method ? method : "GET", target, rs.error);
    long status = rs.status;
    harness_response_free(&rs);
    return status;
}

/* GET /metrics; the caller frees the body. */
static char *scrape(unsigned admin, bool openmetrics)
{
    const char *om[] = {"Accept: application/openmetrics-text; version=1.0.0", NULL};
    const char *text[] = {"Accept: text/plain", NULL};
    struct harness_request rq = {.target = "/metrics", .headers = openmetrics ? om : text};
    struct harness_response rs;

    harness_http(admin, &rq, &rs);
    ck_assert_msg(rs.result == CURLE_OK, "GET /metrics: %s", rs.error);
    ck_assert_int_eq(rs.status, 200);
    const char *type = harness_header(&rs, "Content-Type");
    ck_assert_ptr_nonnull(type);
    if (openmetrics)
        ck_assert_msg(strncmp(type, "application/openmetrics-text; version=1.0.0", 43) == 0,
                      "Content-Type %s", type);
    else
        ck_assert_msg(strncmp(type, "text/plain; version=0.0.4", 25) == 0, "Content-Type %s", type);
    char *body = strdup(rs.body ? rs.body : "");
    ck_assert_ptr_nonnull(body);
    harness_response_free(&rs);
    return body;
}

/* The value of one series (name and labels as rendered), NAN when absent. */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return NAN;
}

struct expected {
    const char *series;
    double value;
};

/* Scrape until every series has its value (bounded); fails with the last scrape otherwise. */
static void wait_for_values(unsigned admin, bool openmetrics, const struct expected *want, size_t n)
{
    double deadline = now_s() + 10;
    char *text = NULL;

    for (;;) {
        free(text);
        text = scrape(admin, openmetrics);
        size_t ok = 0;
        for (size_t i = 0; i < n; i++)
            ok += value_of(text, want[i].series) == want[i].value;
        if (ok == n || now_s() > deadline)
            break;
        struct timespec pause = {0, 20 * 1000000}; /* metrics have no event to wait on */
        nanosleep(&pause, NULL);
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(value_of(text, want[i].series) == want[i].value,
                      "%s: %g, expected %g (%s)\n%.2500s", want[i].series,
                      value_of(text, want[i].series), want[i].value,
                      openmetrics ? "OpenMetrics" : "Prometheus text", text);
    free(text);
}

/* --- values ----------------------------------------------------------------------------------- */

START_TEST(test_metrics_count_requests_by_route_method_and_status_class)
{
    struct harness_daemon d;

    start_daemon(&d);
    unsigned admin = harness_daemon_admin_port(&d);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(request(d.port, NULL, "/api/ok", NULL), 200);
    ck_assert_int_eq(request(d.port, "POST", "/api/ok", NULL), 200);
    ck_assert_int_eq(request(d.port, NULL, "/api/status/404", NULL), 404); /* the upstream's */
    ck_assert_int_eq(request(d.port, NULL, "/nothing", NULL), 404);        /* no route */
    ck_assert_int_eq(request(d.port, NULL, "/nothing/else", NULL), 404);
    ck_assert_int_eq(request(d.port, NULL, "/dead/x", NULL), 502);
    ck_assert_int_eq(request(d.port, "DELETE", "/dead/y", NULL), 502);
    /* Refused before routing (a header name that is not a token): not no_route. */
    static const char bad[] = "GET /api/ok HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n";
    struct harness_response rs;
    ck_assert_int_eq(harness_raw(d.port, bad, sizeof(bad) - 1, false, 10000, &rs), 0);
    ck_assert_int_eq(rs.status, 400);
    harness_response_free(&rs);
    json_t *all = harness_jsonl_wait(d.access_log, NULL, NULL, 10, HARNESS_WAIT_MS, &d.proc);
    ck_assert_uint_eq(json_array_size(all), 10);
    json_decref(all);

    static const struct expected want[] = {
        {"tracehop_requests_total{route=\"api\",method=\"GET\",status_class=\"2xx\"}", 3},
        {"tracehop_requests_total{route=\"api\",method=\"POST\",status_class=\"2xx\"}", 1},
        {"tracehop_requests_total{route=\"api\",method=\"GET\",status_class=\"4xx\"}", 1},
        {"tracehop_requests_total{route=\"no_route\",method=\"GET\",status_class=\"4xx\"}", 2},
        {"tracehop_requests_total{route=\"(refused)\",method=\"GET\",status_class=\"4xx\"}", 1},
        {"tracehop_requests_total{route=\"dead\",method=\"GET\",status_class=\"5xx\"}", 1},
        {"tracehop_requests_total{route=\"dead\",method=\"DELETE\",status_class=\"5xx\"}", 1},
        {"tracehop_upstream_failures_total{route=\"dead\",outcome=\"upstream_connect_failed\"}", 2},
        {"tracehop_upstream_failures_total{route=\"dead\",outcome=\"upstream_timeout\"}", 0},
        {"tracehop_upstream_failures_total{route=\"api\",outcome=\"upstream_connect_failed\"}", 0},
        {"tracehop_request_duration_seconds_count{route=\"api\"}", 5},
        {"tracehop_request_duration_seconds_bucket{route=\"api\",le=\"+Inf\"}", 5},
        {"tracehop_request_duration_seconds_count{route=\"dead\"}", 2},
        {"tracehop_request_duration_seconds_count{route=\"no_route\"}", 2},
        {"tracehop_upstream_duration_seconds_count{route=\"api\"}", 5},
        {"tracehop_access_log_lines_total{result=\"written\"}", 10},
        {"tracehop_access_log_lines_total{result=\"dropped\"}", 0},
        {"tracehop_config_reloads_total{result=\"ok\"}", 0},
        {"tracehop_config_reloads_total{result=\"failed\"}", 0},
        {"tracehop_config_last_reload_success", 1},
        {"tracehop_ready", 1},
        {"tracehop_requests_in_flight", 0},
    };
    wait_for_values(admin, false, want, sizeof(want) / sizeof(want[0]));
    wait_for_values(admin, true, want, sizeof(want) / sizeof(want[0]));

    char *text = scrape(admin, false);
    char *problem = promtool_check_text(text, strlen(text));
    ck_assert_msg(problem == NULL, "%.1200s\n%.1500s", problem, text);
    /* The standard process metrics, of the daemon's own process (/proc/PID). */
    double open_fds = value_of(text, "process_open_fds");
    int fds_now = harness_fd_count(d.proc.pid);
    ck_assert_msg(open_fds > 3 && fds_now > 3, "process_open_fds %g, /proc says %d", open_fds,
                  fds_now);
    ck_assert_msg(value_of(text, "process_max_fds") >= open_fds, "process_max_fds %g",
                  value_of(text, "process_max_fds"));
    ck_assert_msg(value_of(text, "process_resident_memory_bytes") >=
                      harness_rss_kib(d.proc.pid) * 512.0,
                  "process_resident_memory_bytes %g, /proc says %ld KiB",
                  value_of(text, "process_resident_memory_bytes"), harness_rss_kib(d.proc.pid));
    ck_assert(value_of(text, "process_virtual_memory_bytes") >=
              value_of(text, "process_resident_memory_bytes"));
    ck_assert(value_of(text, "process_cpu_seconds_total") >= 0);
    double started = value_of(text, "process_start_time_seconds"), wall = (double)time(NULL);
    ck_assert_msg(started > wall - 300 && started <= wall + 1, "process_start_time_seconds %.2f",
                  started);
    ck_assert_msg(!strstr(text, "# EOF") && !strstr(text, " # {"), "OpenMetrics in text format");
    free(text);

    text = scrape(admin, true);
    size_t len = strlen(text);
    ck_assert_msg(len > 6 && strcmp(text + len - 6, "# EOF\n") == 0, "no # EOF at the end");
    problem = promtool_check_openmetrics(text, len);
    ck_assert_msg(problem == NULL, "%.1200s\n%.1500s", problem, text);
    free(text);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

START_TEST(test_admin_endpoints)
{
    struct harness_daemon d;
    struct harness_response rs;

    start_daemon(&d);
    unsigned admin = harness_daemon_admin_port(&d);
    static const struct {
        const char *method, *target;
        long status;
    } cases[] = {
        {"GET", "/healthz", 200},  {"GET", "/readyz", 200},      {"GET", "/metrics", 200},
        {"HEAD", "/metrics", 200}, {"GET", "/metrics?x=1", 200}, {"GET", "/", 404},
        {"GET", "/nope", 404},     {"GET", "/metricsx", 404},    {"POST", "/metrics", 405},
        {"PUT", "/healthz", 405},  {"DELETE", "/readyz", 405},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct harness_request rq = {.method = cases[i].method, .target = cases[i].target};
        harness_http(admin, &rq, &rs);
        ck_assert_msg(rs.result == CURLE_OK, "%s %s: %s", cases[i].method, cases[i].target,
                      rs.error);
        ck_assert_msg(rs.status == cases[i].status, "%s %s: %ld, expected %ld", cases[i].method,
                      cases[i].target, rs.status, cases[i].status);
        harness_response_free(&rs);
    }
    /* A POST with a body is refused too, and the connection stays usable. */
    struct harness_request post = {
        .method = "POST", .target = "/metrics", .body = "x=1", .body_len = 3};
    harness_http(admin, &post, &rs);
    ck_assert_int_eq(rs.status, 405);
    harness_response_free(&rs);
    /* The admin port does not proxy: /api/ok there is not forwarded. */
    struct harness_request api = {.target = "/api/ok"};
    harness_http(admin, &api, &rs);
    ck_assert_int_eq(rs.status, 404);
    harness_response_free(&rs);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

/* --- exemplars ---------------------------------------------------------------------------------
 */

START_TEST(test_openmetrics_exemplar_of_a_sampled_request)
{
    struct harness_daemon d;
    char trace_id[33], unsampled_id[33], parent[17], tp[80], tp_unsampled[80];

    start_daemon(&d);
    unsigned admin = harness_daemon_admin_port(&d);
    harness_random_hex(trace_id, 32);
    harness_random_hex(unsampled_id, 32);
    harness_random_hex(parent, 16);
    snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-01", trace_id, parent);
    snprintf(tp_unsampled, sizeof(tp_unsampled), "traceparent: 00-%s-%s-00", unsampled_id, parent);
    const char *sampled_headers[] = {tp, NULL};
    const char *unsampled_headers[] = {tp_unsampled, NULL};
    ck_assert_int_eq(request(d.port, NULL, "/api/unsampled", unsampled_headers), 200);
    ck_assert_int_eq(request(d.port, NULL, "/api/sampled", sampled_headers), 200);
    json_t *line = harness_log_line(&d, "trace_id", trace_id);
    ck_assert_ptr_nonnull(line);
    const char *span_id = harness_json_str(line, "span_id");
    ck_assert_ptr_nonnull(span_id);

    /* The exemplar names the trace and tracehop's own span (the upstream's parent). */
    char needle[128];
    snprintf(needle, sizeof(needle), "# {trace_id=\"%s\",span_id=\"%s\"} ", trace_id, span_id);
    double deadline = now_s() + 10;
    char *text = NULL;
    const char *hit = NULL;
    while (!hit && now_s() < deadline) {
        free(text);
        text = scrape(admin, true);
        hit = strstr(text, needle);
        if (!hit) {
            struct timespec pause = {0, 20 * 1000000};
            nanosleep(&pause, NULL);
        }
    }
    ck_assert_msg(hit != NULL, "no exemplar %s in:\n%.2500s", needle, text);
    const char *line_start = hit;
    while (line_start > text && line_start[-1] != '\n')
        line_start--;
    ck_assert_msg(
        strncmp(line_start, "tracehop_request_duration_seconds_bucket{route=\"api\",", 53) == 0 ||
            strncmp(line_start, "tracehop_upstream_duration_seconds_bucket{route=\"api\",", 54) ==
                0,
        "the exemplar is on: %.*s", (int)(hit - line_start), line_start);
    /* At least the request-duration histogram carries it. */
    char request_bucket[160];
    snprintf(request_bucket, sizeof(request_bucket), "tracehop_request_duration_seconds_bucket");
    bool on_request_histogram = false;
    for (const char *p = text; (p = strstr(p, needle)); p++) {
        const char *s = p;
        while (s > text && s[-1] != '\n')
            s--;
        if (strncmp(s, request_bucket, strlen(request_bucket)) == 0)
            on_request_histogram = true;
    }
    ck_assert_msg(on_request_histogram, "no request-duration bucket has the exemplar");
    /* Value and timestamp after it: seconds, and a time stamp near now. */
    double value = 0, timestamp = 0;
    ck_assert_int_eq(sscanf(hit + strlen(needle), "%lf %lf", &value, &timestamp), 2);
    ck_assert_msg(value >= 0 && value < 10, "exemplar value %f", value);
    ck_assert_msg(fabs(timestamp - (double)time(NULL)) < 60, "exemplar timestamp %f", timestamp);
    ck_assert_msg(!strstr(text, unsampled_id), "the unsampled trace became an exemplar");
    char *problem = promtool_check_openmetrics(text, strlen(text));
    ck_assert_msg(problem == NULL, "%.2500s", problem);
    free(text);

    /* The Prometheus text format carries no exemplar. */
    text = scrape(admin, false);
    ck_assert_msg(!strstr(text, trace_id), "an exemplar in the Prometheus text format");
    free(text);
    json_decref(line);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

/* --- a real Prometheus server ------------------------------------------------------------------
 */

static const char *prometheus_binary(void)
{
    static const char *const candidates[] = {"/usr/bin/prometheus", "/usr/local/bin/prometheus"};
    const char *env = getenv("PROMETHEUS_BIN");
    if (env && env[0])
        return env;
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    ck_abort_msg("prometheus not found: install the Debian package `prometheus`");
    return NULL;
}

/* GET an API path of the Prometheus server; the parsed JSON, or NULL. */
static json_t *prometheus_get(unsigned port, const char *target)
{
    struct harness_request rq = {.target = target, .timeout_ms = 5000};
    struct harness_response rs;
    harness_http(port, &rq, &rs);
    json_t *body = rs.status == 200 ? harness_response_json(&rs) : NULL;
    harness_response_free(&rs);
    return body;
}

/* /api/v1/query?query=<expr>: the value of the first sample as a string, or "" (caller frees). */
static char *prometheus_query(unsigned port, const char *expr)
{
    CURL *easy = curl_easy_init();
    char *escaped = curl_easy_escape(easy, expr, 0);
    char target[1024];
    snprintf(target, sizeof(target), "/api/v1/query?query=%s", escaped);
    curl_free(escaped);
    curl_easy_cleanup(easy);
    json_t *body = prometheus_get(port, target);
    const char *value = NULL;
    json_t *result = json_object_get(json_object_get(body, "data"), "result");
    if (json_array_size(result) > 0)
        value = json_string_value(
            json_array_get(json_object_get(json_array_get(result, 0), "value"), 1));
    char *copy = strdup(value ? value : "");
    json_decref(body);
    return copy;
}

/* Why the target is not healthy, from /api/v1/targets (for failure messages; caller frees). */
/* A 200 whose body the upstream breaks off (the echo's /truncate): the client sees a reset. */
static void broken_response(unsigned port)
{
    struct harness_request rq = {.target = "/api/truncate?bytes=1000000&after=300000",
                                 .discard_body = true};
    struct harness_response rs;
    harness_http(port, &rq, &rs);
    ck_assert_msg(rs.status == 200 && rs.result != CURLE_OK, "/truncate: %ld (%s)", rs.status,
                  rs.error);
    harness_response_free(&rs);
}

/* Query until the first result is `want` (or, with want NULL, a number above 0); bounded. */
static char *prometheus_wait(unsigned port, const char *expr, const char *want)
{
    double deadline = now_s() + 30;
    char *value = prometheus_query(port, expr);
    while (now_s() < deadline &&
           (want ? strcmp(value, want) != 0 : !(value[0] && strtod(value, NULL) > 0))) {
        struct timespec pause = {0, 200 * 1000000}; /* the server has no event to wait on */
        nanosleep(&pause, NULL);
        free(value);
        value = prometheus_query(port, expr);
    }
    return value;
}

static char *prometheus_target_state(unsigned port)
{
    json_t *body = prometheus_get(port, "/api/v1/targets");
    json_t *targets = json_object_get(json_object_get(body, "data"), "activeTargets");
    char *state = strdup("no active target");
    if (json_array_size(targets) > 0) {
        json_t *t = json_array_get(targets, 0);
        char buf[1024];
        snprintf(buf, sizeof(buf), "health=%s lastError=%s", harness_json_str(t, "health"),
                 harness_json_str(t, "lastError"));
        free(state);
        state = strdup(buf);
    }
    json_decref(body);
    return state;
}

START_TEST(test_prometheus_server_scrapes_the_admin_port)
{
    struct harness_daemon d;
    struct harness_process prom;
    char yml[HARNESS_PATH_MAX + 32], data[HARNESS_PATH_MAX + 32], log[HARNESS_PATH_MAX + 32];
    char config_flag[HARNESS_PATH_MAX + 64], data_flag[HARNESS_PATH_MAX + 64], listen_flag[64];
    char trace_id[33], parent[17], tp[80];

    start_daemon(&d);
    unsigned admin = harness_daemon_admin_port(&d);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(request(d.port, NULL, "/api/counted", NULL), 200);
    ck_assert_int_eq(request(d.port, NULL, "/dead/x", NULL), 502);
    harness_random_hex(trace_id, 32);
    harness_random_hex(parent, 16);
    snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-01", trace_id, parent);
    const char *sampled[] = {tp, NULL};
    ck_assert_int_eq(request(d.port, NULL, "/api/sampled", sampled), 200);

    unsigned prom_port = harness_closed_port();
    snprintf(yml, sizeof(yml), "%s/prometheus.yml", dir);
    snprintf(data, sizeof(data), "%s/prometheus-data", dir);
    snprintf(log, sizeof(log), "%s/prometheus.log", dir);
    char config[512];
    snprintf(config, sizeof(config),
             "global:\n"
             "  scrape_interval: 1s\n"
             "  scrape_timeout: 1s\n"
             "  evaluation_interval: 1s\n"
             "scrape_configs:\n"
             "  - job_name: tracehop\n"
             "    static_configs:\n"
             "      - targets: ['127.0.0.1:%u']\n",
             admin);
    ck_assert_int_eq(harness_write_file(yml, config), 0);
    snprintf(config_flag, sizeof(config_flag), "--config.file=%s", yml);
    snprintf(data_flag, sizeof(data_flag), "--storage.tsdb.path=%s", data);
    snprintf(listen_flag, sizeof(listen_flag), "--web.listen-address=127.0.0.1:%u", prom_port);
    char *argv[] = {(char *)prometheus_binary(),         config_flag, data_flag, listen_flag,
                    "--enable-feature=exemplar-storage", NULL};
    ck_assert_int_eq(harness_spawn(&prom, argv, log, log, NULL), 0);

    /* Bounded: Prometheus starts, scrapes every second; 30 s is plenty. */
    const char *expr = "tracehop_requests_total{route=\"api\",method=\"GET\",status_class=\"2xx\"}";
    double deadline = now_s() + 30;
    char *value = strdup("");
    while (strcmp(value, "5") != 0 && now_s() < deadline && !harness_process_wait(&prom, 0)) {
        struct timespec pause = {0, 200 * 1000000}; /* the server has no event to wait on */
        nanosleep(&pause, NULL);
        free(value);
        value = prometheus_query(prom_port, expr);
    }
    if (strcmp(value, "5") != 0) {
        char *state = prometheus_target_state(prom_port);
        char *out = harness_read_file(log, NULL);
        harness_process_stop(&prom, 10000);
        ck_abort_msg("Prometheus reports %s = '%s', expected 5 (target: %.500s)\n%.1500s", expr,
                     value, state, out ? out : "");
    }
    free(value);
    value = prometheus_query(prom_port, "up{job=\"tracehop\"}");
    ck_assert_str_eq(value, "1");
    free(value);
    value = prometheus_query(
        prom_port,
        "tracehop_upstream_failures_total{route=\"dead\",outcome=\"upstream_connect_failed\"}");
    ck_assert_str_eq(value, "1");
    free(value);
    value = prometheus_query(prom_port, "tracehop_request_duration_seconds_count{route=\"api\"}");
    ck_assert_str_eq(value, "5");
    free(value);

    /* The error ratio of docs/operations.md (PromQL), for route api, counts a 200 whose body the
     * upstream broke off. Its "none" series appears with its first count, which rate() cannot
     * see: a second broken response once Prometheus has the first. */
    broken_response(d.port);
    value = prometheus_wait(
        prom_port, "tracehop_requests_total{route=\"api\",method=\"GET\",status_class=\"none\"}",
        "1");
    ck_assert_str_eq(value, "1");
    free(value);
    broken_response(d.port);
    value = prometheus_wait(
        prom_port,
        "sum by (route) "
        "(rate(tracehop_requests_total{route=\"api\",status_class=~\"5xx|none\"}[5m]))"
        "  /  sum by (route) (rate(tracehop_requests_total{route=\"api\"}[5m]))",
        NULL);
    ck_assert_msg(value[0] && strtod(value, NULL) > 0,
                  "the documented error ratio is '%s' after two broken responses", value);
    free(value);

    /* The exemplar went through Prometheus' OpenMetrics parser into its exemplar storage. */
    char target[512];
    CURL *easy = curl_easy_init();
    char *q = curl_easy_escape(easy, "tracehop_request_duration_seconds_bucket{route=\"api\"}", 0);
    long now = (long)time(NULL);
    snprintf(target, sizeof(target), "/api/v1/query_exemplars?query=%s&start=%ld&end=%ld", q,
             now - 600, now + 600);
    curl_free(q);
    curl_easy_cleanup(easy);
    json_t *exemplars = prometheus_get(prom_port, target);
    char *dump = json_dumps(exemplars, JSON_COMPACT);
    ck_assert_msg(dump && strstr(dump, trace_id), "Prometheus has no exemplar of trace %s: %s",
                  trace_id, dump ? dump : "(no answer)");
    free(dump);
    json_decref(exemplars);

    ck_assert_int_eq(harness_process_stop(&prom, 10000), 0);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("admin");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    harness_tcase_timeout(tc, 120);
    tcase_add_test(tc, test_metrics_count_requests_by_route_method_and_status_class);
    tcase_add_test(tc, test_admin_endpoints);
    tcase_add_test(tc, test_openmetrics_exemplar_of_a_sampled_request);
    tcase_add_test(tc, test_prometheus_server_scrapes_the_admin_port);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(metrics_suite());
}
