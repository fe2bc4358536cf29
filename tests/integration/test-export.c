/* SPDX-License-Identifier: MIT */
/*
 * OTLP/HTTP span export (JSON encoding) through the real daemon: an echo upstream, tracehop with
 * an `otlp` config (or the OTEL_* variables) and the harness's OTLP receiver (harness-otlp.c).
 * What the receiver got is checked field by field against the contract (docs/tracing.md): the
 * span's ids must equal the access-log line's and what the upstream received; its attributes,
 * status and resource follow OpenTelemetry's HTTP server conventions plus tracehop's own.
 * Then the exporter's behaviour: sampling (OTEL_TRACES_SAMPLER's six values), answers of the
 * receiver (400, 429/503 with retries, partial success, down), gzip, headers, traces_endpoint,
 * configuration from the environment alone, reload to another endpoint.
 *
 * Where main's encoder settled what the brief left open, the tests follow it: http.route and
 * the name carry the prefix route's "*" ("GET /api*"), an unknown method's span is named
 * "HTTP /api*" (OpenTelemetry's "{method} {route}" with HTTP for the method), and
 * tracehop.upstream.duration_ms (the log's upstream_duration_ms) is one more attribute.
 *
 * Absence of a span is proven by an event, never by waiting a while: either a sampled request
 * sent afterwards is exported without it (the exporter keeps order), or the daemon was stopped
 * with SIGTERM, which flushes the queue before it exits (tested on its own in the timing suite).
 *
 * One program, two suites: `export` (runs alongside other tests) and, with the argument
 * `timing`, `export-timing`: the tests that measure time (latency while the receiver hangs, the
 * drain on SIGTERM, retry spacing), which meson runs alone.
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
#include <zlib.h>

#include "harness.h"

/* Everything one test runs: started in a checked fixture, so in the test's own process. */
static struct {
    char dir[HARNESS_PATH_MAX];
    struct harness_echo echo;
    struct harness_otlp *rx;
    struct harness_daemon d;
    unsigned admin;
    unsigned dead_port;
    char version[128];
} f;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned long long wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* "tracehop X.Y.Z" from `tracehop --version`, for service.version and the scope version. */
static void read_version(void)
{
    char cmd[HARNESS_PATH_MAX + 32], line[128] = "";
    const char *bin = getenv("TRACEHOP_BIN");

    ck_assert_msg(bin != NULL, "TRACEHOP_BIN is not set (meson sets it)");
    snprintf(cmd, sizeof(cmd), "'%s' --version", bin);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    if (!fgets(line, sizeof(line), p))
        line[0] = '\0';
    pclose(p);
    line[strcspn(line, "\n")] = '\0';
    ck_assert_msg(strncmp(line, "tracehop ", 9) == 0, "--version printed '%s'", line);
    snprintf(f.version, sizeof(f.version), "%s", line + 9);
}

static void setup(void)
{
    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(harness_tmpdir(f.dir, sizeof(f.dir)), 0);
    ck_assert_int_eq(harness_echo_start(&f.echo, f.dir, false), 0);
    f.rx = harness_otlp_start();
    ck_assert_ptr_nonnull(f.rx);
    f.dead_port = harness_closed_port();
    read_version();
}

static void teardown(void)
{
    if (f.d.proc.pid > 0 && !f.d.proc.reaped)
        harness_daemon_stop(&f.d);
    harness_echo_stop(&f.echo);
    harness_otlp_stop(f.rx);
    f.rx = NULL;
    harness_tmpdir_remove(f.dir);
}

/* --- starting the daemon ---------------------------------------------------------------- */

/*
 * The config every test uses, with `otlp` (a JSON object, NULL: no otlp key) and the inside of
 * `trace` and `limits` (may be ""). Routes: "api" (/api, echo), "status" (/status/, echo: the
 * echo answers /status/NNN with NNN) and "dead" (/dead, a closed port); nothing else matches.
 */
static void config_text(char *out, size_t size, const char *otlp, const char *trace,
                        const char *limits)
{
    int n = snprintf(
        out, size,
        "{\"service_name\": \"checkout\",\n"
        " \"trace\": {%s},\n"
        " \"access_log\": {\"redact\": [\"token\"]},\n"
        " \"limits\": {\"drain_delay_ms\": 0%s%s},\n"
        " \"routes\": [\n"
        "  {\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"}, \"upstream\": \"%s\"},\n"
        "  {\"name\": \"status\", \"match\": {\"path_prefix\": \"/status/\"},"
        " \"upstream\": \"%s\"},\n"
        "  {\"name\": \"dead\", \"match\": {\"path_prefix\": \"/dead\"},"
        " \"upstream\": \"http://127.0.0.1:%u\", \"connect_timeout_ms\": 1000}]%s%s}\n",
        trace ? trace : "", limits && *limits ? ", " : "", limits ? limits : "", f.echo.url,
        f.echo.url, f.dead_port, otlp ? ",\n \"otlp\": " : "", otlp ? otlp : "");
    ck_assert_msg(n > 0 && (size_t)n < size, "config too long");
}

/* The usual otlp object: the receiver's base URL, a resource attribute, a 100 ms schedule;
 * `extra` adds members (may be ""); `batch` replaces the batch object's inside (NULL: default). */
static void otlp_text(char *out, size_t size, const char *endpoint_key, const char *url,
                      const char *batch, const char *extra)
{
    int n = snprintf(out, size,
                     "{\"%s\": \"%s\", \"protocol\": \"http/json\","
                     " \"resource_attributes\": {\"deployment.environment.name\": \"test\"},"
                     " \"batch\": {%s}%s%s}",
                     endpoint_key, url, batch ? batch : "\"schedule_delay_ms\": 100",
                     extra && *extra ? ", " : "", extra ? extra : "");
    ck_assert_msg(n > 0 && (size_t)n < size, "otlp config too long");
}

static void start_daemon_env(const char *otlp, const char *trace, const char *limits,
                             char *const env[])
{
    char config[8192];
    const char *args[] = {"--admin-listen", "127.0.0.1:0", NULL};

    config_text(config, sizeof(config), otlp, trace, limits);
    int rc = harness_daemon_start_env(&f.d, f.dir, config, NULL, args, env);
    ck_assert_msg(rc == 0, "tracehop did not start (%d) with config:\n%s", rc, config);
    f.admin = harness_daemon_admin_port(&f.d);
}

/* The daemon exporting to the receiver with the usual otlp object plus `extra`. */
static void start_daemon(const char *batch, const char *extra)
{
    char otlp[2048];
    otlp_text(otlp, sizeof(otlp), "endpoint", harness_otlp_url(f.rx), batch, extra);
    start_daemon_env(otlp, "", "", NULL);
}

/* SIGTERM (drain_delay_ms is 0) and wait for the exit: the export queue is flushed first. */
static void sigterm_and_wait(int timeout_ms)
{
    ck_assert_int_eq(kill(f.d.proc.pid, SIGTERM), 0);
    if (!harness_process_wait(&f.d.proc, timeout_ms)) {
        harness_daemon_dump_stderr(&f.d);
        ck_abort_msg("tracehop still runs %d ms after SIGTERM", timeout_ms);
    }
    ck_assert_int_eq(harness_exit_code(&f.d.proc), 0);
}

/* --- requests ------------------------------------------------------------------------------ */

/* A unique target "<prefix><tag>-<16 hex>" into out. */
static void unique_path(char *out, size_t size, const char *prefix, const char *tag)
{
    char id[17];
    harness_random_hex(id, 16);
    snprintf(out, size, "%s%s-%s", prefix, tag, id);
}

static void send_request(const char *method, const char *target, const char *const *headers,
                         const char *body, struct harness_response *rs)
{
    struct harness_request rq = {.method = method,
                                 .target = target,
                                 .headers = headers,
                                 .body = body,
                                 .body_len = body ? strlen(body) : 0};
    harness_http(f.d.port, &rq, rs);
    ck_assert_msg(rs->result == CURLE_OK, "%s %s: %s", method ? method : "GET", target, rs->error);
}

/* GET target with headers; the status. */
static long get(const char *target, const char *const *headers)
{
    struct harness_response rs;
    send_request(NULL, target, headers, NULL, &rs);
    long status = rs.status;
    harness_response_free(&rs);
    return status;
}

/* The upstream's record of the request whose target is `target`. */
static json_t *upstream_record(const char *target)
{
    struct harness_field_match m = {"target", target};
    json_t *record = harness_jsonl_wait_one(f.echo.record_path, harness_match_field, &m);
    ck_assert_msg(record != NULL, "the upstream never received %s", target);
    return record;
}

/* The exported span of url.path `path` (exactly one of them). */
static json_t *span_of(const char *path)
{
    json_t *spans = harness_otlp_wait_spans(f.rx, "url.path", path, 1, HARNESS_WAIT_MS);
    ck_assert_msg(json_array_size(spans) == 1, "%zu exported spans for %s, expected 1",
                  json_array_size(spans), path);
    json_t *span = json_incref(json_array_get(spans, 0));
    json_decref(spans);
    return span;
}

/* How many spans of url.path `path` were received so far (a plain look). */
static size_t spans_now(const char *path)
{
    json_t *spans = harness_otlp_wait_spans(f.rx, "url.path", path, 1, 0);
    size_t n = json_array_size(spans);
    json_decref(spans);
    return n;
}

/* --- metrics -----------------------------------------------------------------------------------
 */

/*
 * Wait until the series has a value >= want (bounded). The metrics give no event to wait on, so
 * this scrapes every 20 ms, like test-metrics. Returns the last value.
 */
static double wait_metric_at_least(const char *series, double want, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    double v;
    for (;;) {
        v = harness_metric_value(f.admin, series);
        if ((!isnan(v) && v >= want) || mono_ms() >= deadline)
            break;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL); /* no event: the scrape is polled */
    }
    if (isnan(v) || v < want)
        fprintf(stderr, "test: %s is %g after %d ms, waited for >= %g\n", series, v, timeout_ms,
                want);
    return v;
}

#define EXPORTED         "tracehop_spans_exported_total"
#define DROPPED_QUEUE    "tracehop_spans_dropped_total{reason=\"queue_full\"}"
#define DROPPED_FAILED   "tracehop_spans_dropped_total{reason=\"export_failed\"}"
#define REJECTED         "tracehop_spans_rejected_total"
#define REQUESTS_OK      "tracehop_export_requests_total{result=\"ok\"}"
#define REQUESTS_PARTIAL "tracehop_export_requests_total{result=\"partial_success\"}"
#define REQUESTS_RETRY   "tracehop_export_requests_total{result=\"retry\"}"
#define REQUESTS_FAILED  "tracehop_export_requests_total{result=\"failed\"}"
#define RETRIES          "tracehop_export_retries_total"
#define QUEUE_SPANS      "tracehop_export_queue_spans"
#define DURATION_COUNT   "tracehop_export_duration_seconds_count"

/* --- span checks -------------------------------------------------------------------------------
 */

static const char *str_member(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Every attribute key of `owner` is in `allowed`, appears once, and every key of `required` is
 * there. */
static void assert_attribute_keys(json_t *owner, const char *const *required,
                                  const char *const *allowed)
{
    size_t i;
    json_t *attr;
    json_t *attrs = json_object_get(owner, "attributes");

    ck_assert_msg(json_is_array(attrs), "attributes is not an array");
    json_array_foreach(attrs, i, attr)
    {
        const char *key = str_member(attr, "key");
        ck_assert_msg(key != NULL, "attribute %zu has no key", i);
        ck_assert_msg(json_is_object(json_object_get(attr, "value")) &&
                          json_object_size(json_object_get(attr, "value")) == 1,
                      "attribute %s: value must be an object with one member", key);
        ck_assert_msg(harness_otlp_attr_count(owner, key) == 1, "attribute %s appears %zu times",
                      key, harness_otlp_attr_count(owner, key));
        bool known = false;
        for (size_t k = 0; allowed[k] && !known; k++)
            known = strcmp(allowed[k], key) == 0;
        ck_assert_msg(known, "unexpected attribute %s", key);
    }
    for (size_t k = 0; required[k]; k++)
        ck_assert_msg(harness_otlp_attr(owner, required[k]) != NULL, "attribute %s is missing",
                      required[k]);
}

static void assert_attr_str(json_t *owner, const char *key, const char *want)
{
    const char *v = harness_otlp_attr_str(owner, key);
    ck_assert_msg(v != NULL, "attribute %s is not a stringValue", key);
    ck_assert_msg(strcmp(v, want) == 0, "attribute %s is '%s', expected '%s'", key, v, want);
}

static void assert_attr_int(json_t *owner, const char *key, long long want)
{
    const char *v = harness_otlp_attr_int(owner, key);
    char text[32];
    ck_assert_msg(v != NULL, "attribute %s is not an intValue given as a decimal string", key);
    snprintf(text, sizeof(text), "%lld", want);
    ck_assert_msg(strcmp(v, text) == 0, "attribute %s is \"%s\", expected \"%s\"", key, v, text);
}

static void assert_attr_double(json_t *owner, const char *key, double want, double tolerance)
{
    double v;
    ck_assert_msg(harness_otlp_attr_double(owner, key, &v), "attribute %s is not a doubleValue",
                  key);
    ck_assert_msg(fabs(v - want) <= tolerance, "attribute %s is %g, expected %g (+-%g)", key, v,
                  want, tolerance);
}

/* A decimal string of nanoseconds. */
static unsigned long long nanos(json_t *span, const char *key)
{
    const char *s = str_member(span, key);
    ck_assert_msg(s != NULL, "%s is not a string", key);
    ck_assert_msg(*s && strspn(s, "0123456789") == strlen(s), "%s '%s' is not decimal", key, s);
    return strtoull(s, NULL, 10);
}

/* What every span shares with its access-log line: ids, flags, times, kind. [before, after] is
 * the request's wall-clock window (after 0: not known). */
static void assert_span_matches_log(json_t *span, json_t *log, unsigned long long before,
                                    unsigned long long after)
{
    ck_assert_str_eq(str_member(span, "traceId"), harness_json_str(log, "trace_id"));
    ck_assert_str_eq(str_member(span, "spanId"), harness_json_str(log, "span_id"));
    const char *parent = harness_json_str(log, "parent_span_id");
    if (parent)
        ck_assert_str_eq(str_member(span, "parentSpanId"), parent);
    else
        ck_assert_msg(json_object_get(span, "parentSpanId") == NULL,
                      "a span without a parent must leave out parentSpanId");
    ck_assert_msg(json_is_integer(json_object_get(span, "kind")), "kind is not an integer");
    ck_assert_int_eq(json_integer_value(json_object_get(span, "kind")), 2);
    ck_assert_msg(json_is_integer(json_object_get(span, "flags")), "flags is not an integer");
    long log_flags = strtol(harness_json_str(log, "trace_flags"), NULL, 16);
    long flags = (long)json_integer_value(json_object_get(span, "flags"));
    ck_assert_msg((flags & 0xff) == log_flags, "flags 0x%lx: low byte is not trace_flags %s", flags,
                  harness_json_str(log, "trace_flags"));
    ck_assert_msg(flags & 0x100, "flags 0x%lx lack 0x100 (has-is-remote)", flags);
    ck_assert_msg((flags & ~0x3ffL) == 0, "flags 0x%lx has unknown bits", flags);
    unsigned long long start = nanos(span, "startTimeUnixNano");
    unsigned long long end = nanos(span, "endTimeUnixNano");
    /* The span ends when the daemon is done with the exchange, which can be a little after the
     * client read the last byte (the same instant as the log's duration_ms): 100 ms of slack. */
    ck_assert_msg(after == 0 || (start + 1000000ull >= before && end <= after + 100000000ull),
                  "span [%llu, %llu] is not within the request [%llu, %llu]", start, end, before,
                  after);
    ck_assert_msg(end >= start, "the span ends before it starts");
    double duration_ms = json_number_value(json_object_get(log, "duration_ms"));
    ck_assert_msg(fabs((double)(end - start) / 1e6 - duration_ms) < 5.0,
                  "span lasts %.3f ms, the log says %.3f ms", (double)(end - start) / 1e6,
                  duration_ms);
}

static void assert_resource_and_scope(const struct harness_otlp_request *rq,
                                      const char *service_name, const char *environment)
{
    json_t *rss = json_object_get(rq->json, "resourceSpans");
    ck_assert_msg(json_is_array(rss) && json_array_size(rss) == 1,
                  "resourceSpans must be one element");
    json_t *rs0 = json_array_get(rss, 0);
    json_t *resource = json_object_get(rs0, "resource");
    const char *const required[] = {"service.name",
                                    "service.instance.id",
                                    "service.version",
                                    "telemetry.sdk.name",
                                    "telemetry.sdk.language",
                                    "telemetry.sdk.version",
                                    environment ? "deployment.environment.name" : NULL,
                                    NULL};
    const char *const allowed[] = {"service.name",
                                   "service.instance.id",
                                   "service.version",
                                   "telemetry.sdk.name",
                                   "telemetry.sdk.language",
                                   "telemetry.sdk.version",
                                   "deployment.environment.name",
                                   NULL};
    assert_attribute_keys(resource, required, allowed);
    assert_attr_str(resource, "service.name", service_name);
    const char *instance = harness_otlp_attr_str(resource, "service.instance.id");
    ck_assert_msg(instance && strlen(instance) == 36 && instance[8] == '-' && instance[13] == '-' &&
                      instance[18] == '-' && instance[23] == '-',
                  "service.instance.id '%s' is not a UUID", instance ? instance : "(none)");
    assert_attr_str(resource, "service.version", f.version);
    assert_attr_str(resource, "telemetry.sdk.name", "tracehop");
    assert_attr_str(resource, "telemetry.sdk.language", "c");
    assert_attr_str(resource, "telemetry.sdk.version", f.version);
    if (environment)
        assert_attr_str(resource, "deployment.environment.name", environment);

    json_t *sss = json_object_get(rs0, "scopeSpans");
    ck_assert_msg(json_is_array(sss) && json_array_size(sss) == 1,
                  "scopeSpans must be one element");
    json_t *scope = json_object_get(json_array_get(sss, 0), "scope");
    ck_assert_str_eq(str_member(scope, "name"), "tracehop");
    ck_assert_str_eq(str_member(scope, "version"), f.version);
    ck_assert_msg(json_array_size(json_object_get(json_array_get(sss, 0), "spans")) >= 1,
                  "no spans");
}

/* The request of the receiver that carried the span with this spanId. */
static const struct harness_otlp_request *request_with_span(const char *span_id)
{
    for (size_t i = 0;; i++) {
        const struct harness_otlp_request *rq = harness_otlp_request(f.rx, i);
        if (!rq)
            break;
        json_t *spans = harness_otlp_request_spans(rq);
        size_t k;
        json_t *s;
        bool found = false;
        json_array_foreach(spans, k, s)
        {
            found = found || strcmp(str_member(s, "spanId"), span_id) == 0;
        }
        json_decref(spans);
        if (found)
            return rq;
    }
    ck_abort_msg("no request carried span %s", span_id);
    return NULL;
}

static void assert_export_request(const struct harness_otlp_request *rq, const char *target)
{
    ck_assert_str_eq(rq->method, "POST");
    ck_assert_str_eq(rq->target, target);
    const char *type = harness_otlp_header(rq, "Content-Type");
    ck_assert_msg(type && strcmp(type, "application/json") == 0, "Content-Type '%s'",
                  type ? type : "(none)");
    ck_assert_msg(rq->json != NULL, "export body is not JSON: %s", rq->error);
}

/* The attributes every proxied request's span may have. */
static const char *const span_attributes[] = {"http.request.method",
                                              "http.request.method_original",
                                              "url.path",
                                              "url.query",
                                              "url.scheme",
                                              "http.response.status_code",
                                              "http.route",
                                              "server.address",
                                              "server.port",
                                              "client.address",
                                              "user_agent.original",
                                              "network.protocol.version",
                                              "error.type",
                                              "http.request.body.size",
                                              "http.response.body.size",
                                              "tracehop.route",
                                              "tracehop.upstream",
                                              "tracehop.upstream.status_code",
                                              "tracehop.outcome",
                                              "tracehop.x_trace_id",
                                              "tracehop.upstream.duration_ms",
                                              "tracehop.upstream.connect_ms",
                                              "tracehop.upstream.first_byte_ms",
                                              NULL};

/* --- the span of a proxied request ------------------------------------------------------------ */

START_TEST(test_continued_sampled_trace_exports_every_field)
{
    char path[96], target[160], trace_id[33], parent_id[17], tp[96], up_trace[33], up_span[17],
        up_flags[3];
    struct harness_response rs;

    start_daemon(NULL, NULL);
    unique_path(path, sizeof(path), "/api/items/", "continued");
    snprintf(target, sizeof(target), "%s?token=s3cret&page=2", path);
    harness_random_hex(trace_id, 32);
    harness_random_hex(parent_id, 16);
    snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-01", trace_id, parent_id);
    const char *headers[] = {tp, "tracestate: congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
                             "User-Agent: tracehop-export-test/1", NULL};
    unsigned long long before = wall_ns();
    send_request(NULL, target, headers, NULL, &rs);
    unsigned long long after = wall_ns();
    ck_assert_int_eq(rs.status, 200);

    json_t *record = upstream_record(target);
    json_t *log = harness_log_line(&f.d, "path", path);
    ck_assert_ptr_nonnull(log);
    json_t *span = span_of(path);

    /* ids: the span, the access log, the upstream's traceparent and the echoed one agree */
    const char *up_tp = harness_record_header(record, "traceparent");
    ck_assert(harness_traceparent_split(up_tp, up_trace, up_span, up_flags));
    ck_assert_str_eq(up_trace, trace_id);
    ck_assert_str_eq(harness_header(&rs, "traceparent"), up_tp);
    ck_assert_str_eq(str_member(span, "traceId"), trace_id);
    ck_assert_str_eq(str_member(span, "spanId"), up_span);
    ck_assert_str_eq(str_member(span, "parentSpanId"), parent_id);
    ck_assert_str_eq(up_flags, "01");
    assert_span_matches_log(span, log, before, after);
    ck_assert_str_eq(str_member(span, "traceState"), harness_record_header(record, "tracestate"));
    ck_assert_str_eq(str_member(span, "traceState"), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    ck_assert_int_eq(json_integer_value(json_object_get(span, "flags")), 0x301);
    ck_assert_str_eq(str_member(span, "name"), "GET /api*");

    /* attributes: exactly these, each with its type */
    const char *const required[] = {"http.request.method",
                                    "url.path",
                                    "url.query",
                                    "url.scheme",
                                    "http.response.status_code",
                                    "http.route",
                                    "server.address",
                                    "server.port",
                                    "client.address",
                                    "user_agent.original",
                                    "network.protocol.version",
                                    "http.request.body.size",
                                    "http.response.body.size",
                                    "tracehop.route",
                                    "tracehop.upstream",
                                    "tracehop.upstream.status_code",
                                    "tracehop.outcome",
                                    "tracehop.x_trace_id",
                                    "tracehop.upstream.connect_ms",
                                    "tracehop.upstream.first_byte_ms",
                                    NULL};
    assert_attribute_keys(span, required, span_attributes);
    ck_assert_msg(harness_otlp_attr(span, "error.type") == NULL, "error.type on a success");
    ck_assert_msg(harness_otlp_attr(span, "http.request.method_original") == NULL,
                  "http.request.method_original for a known method");
    assert_attr_str(span, "http.request.method", "GET");
    assert_attr_str(span, "url.path", path);
    assert_attr_str(span, "url.query", "token=[REDACTED]&page=2");
    ck_assert_str_eq(harness_json_str(log, "query"), "token=[REDACTED]&page=2");
    assert_attr_str(span, "url.scheme", "http");
    assert_attr_int(span, "http.response.status_code", 200);
    assert_attr_str(span, "http.route", "/api*");
    assert_attr_str(span, "server.address", "127.0.0.1");
    assert_attr_int(span, "server.port", f.d.port);
    assert_attr_str(span, "client.address", "127.0.0.1");
    assert_attr_str(span, "user_agent.original", "tracehop-export-test/1");
    assert_attr_str(span, "network.protocol.version", "1.1");
    assert_attr_int(span, "http.request.body.size", 0);
    assert_attr_int(span, "http.response.body.size", (long long)rs.body_len);
    assert_attr_int(span, "http.response.body.size", harness_json_int(log, "bytes_sent", -1));
    assert_attr_str(span, "tracehop.route", "api");
    assert_attr_str(span, "tracehop.upstream", f.echo.url);
    assert_attr_int(span, "tracehop.upstream.status_code", 200);
    assert_attr_str(span, "tracehop.outcome", "ok");
    assert_attr_str(span, "tracehop.x_trace_id", harness_json_str(log, "x_trace_id"));
    assert_attr_str(span, "tracehop.x_trace_id", harness_record_header(record, "X-Trace-ID"));
    assert_attr_double(span, "tracehop.upstream.duration_ms",
                       json_number_value(json_object_get(log, "upstream_duration_ms")), 0.01);
    assert_attr_double(span, "tracehop.upstream.connect_ms",
                       json_number_value(json_object_get(log, "upstream_connect_ms")), 0.01);
    assert_attr_double(span, "tracehop.upstream.first_byte_ms",
                       json_number_value(json_object_get(log, "upstream_ttfb_ms")), 0.01);
    json_t *status = json_object_get(span, "status");
    ck_assert_msg(json_is_object(status) && json_object_size(status) == 0,
                  "status of a success must be {} (unset)");

    /* the request and the resource */
    const struct harness_otlp_request *rq = request_with_span(up_span);
    assert_export_request(rq, "/v1/traces");
    ck_assert_ptr_null(harness_otlp_header(rq, "Content-Encoding"));
    assert_resource_and_scope(rq, "checkout", "test");

    json_decref(span);
    json_decref(log);
    json_decref(record);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_new_trace_has_no_parent_and_local_flags)
{
    char path[96];
    struct harness_response rs;

    start_daemon(NULL, NULL);
    unique_path(path, sizeof(path), "/api/", "new");
    unsigned long long before = wall_ns();
    send_request(NULL, path, NULL, NULL, &rs);
    unsigned long long after = wall_ns();
    ck_assert_int_eq(rs.status, 200);
    json_t *log = harness_log_line(&f.d, "path", path);
    ck_assert_ptr_nonnull(log);
    json_t *span = span_of(path);
    assert_span_matches_log(span, log, before, after);
    ck_assert_msg(json_object_get(span, "parentSpanId") == NULL, "a new trace has no parent");
    ck_assert_msg(json_object_get(span, "traceState") == NULL, "no tracestate, no traceState");
    /* sampled (ratio 1) and random (tracehop drew the id); local parent: 0x100 without 0x200 */
    ck_assert_int_eq(json_integer_value(json_object_get(span, "flags")), 0x103);
    ck_assert_msg(harness_otlp_attr(span, "user_agent.original") == NULL,
                  "user_agent.original without a User-Agent");
    assert_attr_str(span, "tracehop.x_trace_id", harness_json_str(log, "x_trace_id"));
    ck_assert_str_eq(str_member(span, "name"), "GET /api*");
    json_decref(span);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_unsampled_caller_exports_no_span)
{
    char quiet[96], loud[96], trace_id[33], parent_id[17], tp[96], t[33], s[17], fl[3];
    struct harness_response rs;

    start_daemon(NULL, NULL);
    unique_path(quiet, sizeof(quiet), "/api/", "unsampled");
    harness_random_hex(trace_id, 32);
    harness_random_hex(parent_id, 16);
    snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-00", trace_id, parent_id);
    const char *headers[] = {tp, NULL};
    send_request(NULL, quiet, headers, NULL, &rs);
    ck_assert_int_eq(rs.status, 200);
    json_t *record = upstream_record(quiet);
    ck_assert(harness_traceparent_split(harness_record_header(record, "traceparent"), t, s, fl));
    ck_assert_str_eq(t, trace_id);
    ck_assert_str_eq(fl, "00");
    ck_assert(harness_traceparent_split(harness_header(&rs, "traceparent"), t, s, fl));
    ck_assert_str_eq(fl, "00");
    harness_response_free(&rs);

    /* A sampled request afterwards: once its span is in, the unsampled one would be too. */
    unique_path(loud, sizeof(loud), "/api/", "sampled-after");
    ck_assert_int_eq(get(loud, NULL), 200);
    json_decref(span_of(loud));
    ck_assert_uint_eq(spans_now(quiet), 0);
    json_t *all = harness_otlp_spans(f.rx);
    ck_assert_uint_eq(json_array_size(all), 1);
    json_decref(all);
    json_decref(record);
}
END_TEST

START_TEST(test_upstream_5xx_and_failure_set_error_status)
{
    char target[96], dead[96];
    struct harness_response rs;
    const char *body = "{\"order\": 42}";

    start_daemon(NULL, NULL);
    unique_path(target, sizeof(target), "/status/503?id=", "5xx");
    send_request("POST", target, NULL, body, &rs);
    ck_assert_int_eq(rs.status, 503);
    json_t *span = span_of("/status/503");
    json_t *log = harness_log_line(&f.d, "path", "/status/503");
    ck_assert_ptr_nonnull(log);
    assert_span_matches_log(span, log, 0, 0);
    ck_assert_str_eq(str_member(span, "name"), "POST /status/*");
    json_t *status = json_object_get(span, "status");
    ck_assert_msg(json_is_integer(json_object_get(status, "code")), "status.code not an integer");
    ck_assert_int_eq(json_integer_value(json_object_get(status, "code")), 2);
    /* The status code explains the error: no message (HTTP span conventions). */
    ck_assert_ptr_null(json_object_get(status, "message"));
    assert_attr_str(span, "error.type", "503");
    assert_attr_int(span, "http.response.status_code", 503);
    assert_attr_int(span, "tracehop.upstream.status_code", 503);
    assert_attr_str(span, "tracehop.outcome", harness_json_str(log, "outcome"));
    assert_attr_str(span, "http.request.method", "POST");
    assert_attr_int(span, "http.request.body.size", (long long)strlen(body));
    assert_attr_str(span, "http.route", "/status/*");
    assert_attr_str(span, "tracehop.route", "status");
    json_decref(span);
    json_decref(log);
    harness_response_free(&rs);

    unique_path(dead, sizeof(dead), "/dead/", "down");
    send_request(NULL, dead, NULL, NULL, &rs);
    ck_assert_int_ge(rs.status, 500);
    log = harness_log_line(&f.d, "path", dead);
    ck_assert_ptr_nonnull(log);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "upstream_connect_failed");
    span = span_of(dead);
    assert_span_matches_log(span, log, 0, 0);
    status = json_object_get(span, "status");
    ck_assert_int_eq(json_integer_value(json_object_get(status, "code")), 2);
    ck_assert_str_eq(str_member(status, "message"), "upstream_connect_failed");
    assert_attr_str(span, "error.type", "upstream_connect_failed");
    assert_attr_str(span, "tracehop.outcome", "upstream_connect_failed");
    assert_attr_int(span, "http.response.status_code", rs.status);
    ck_assert_msg(harness_otlp_attr(span, "tracehop.upstream.status_code") == NULL,
                  "no upstream status when the upstream never answered");
    char dead_url[64];
    snprintf(dead_url, sizeof(dead_url), "http://127.0.0.1:%u", f.dead_port);
    assert_attr_str(span, "tracehop.upstream", dead_url);
    assert_attr_str(span, "tracehop.route", "dead");
    json_decref(span);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_no_route_and_unknown_method)
{
    char none[96], odd[96];
    struct harness_response rs;

    start_daemon(NULL, NULL);
    unique_path(none, sizeof(none), "/nowhere/", "noroute");
    send_request(NULL, none, NULL, NULL, &rs);
    json_t *span = span_of(none);
    ck_assert_str_eq(str_member(span, "name"), "GET");
    ck_assert_msg(harness_otlp_attr(span, "http.route") == NULL, "http.route without a route");
    assert_attr_str(span, "tracehop.outcome", "no_route");
    assert_attr_int(span, "http.response.status_code", rs.status);
    json_decref(span);
    harness_response_free(&rs);

    unique_path(odd, sizeof(odd), "/api/", "oddmethod");
    send_request("FROB", odd, NULL, NULL, &rs);
    span = span_of(odd);
    ck_assert_str_eq(str_member(span, "name"), "HTTP /api*");
    assert_attr_str(span, "http.request.method", "_OTHER");
    assert_attr_str(span, "http.request.method_original", "FROB");
    json_decref(span);
    harness_response_free(&rs);
}
END_TEST

/* --- sampling ------------------------------------------------------------------------------------
 */

struct sampling_row {
    const char *sampler;                    /* OTEL_TRACES_SAMPLER; NULL: none */
    const char *arg;                        /* OTEL_TRACES_SAMPLER_ARG; NULL: none */
    const char *trace;                      /* inside of the config's trace object */
    bool sampled_in, unsampled_in, none_in; /* sampled flag forwarded (= span exported) */
};

static const struct sampling_row sampling_rows[] = {
    {"always_on", NULL, "", true, true, true},
    {"always_off", NULL, "", false, false, false},
    {"traceidratio", NULL, "\"sampling_ratio\": 1.0", true, true, true},
    {"traceidratio", "0", "\"sampling_ratio\": 1.0", false, false, false},
    {"parentbased_always_on", NULL, "", true, false, true},
    {"parentbased_always_off", NULL, "", true, false, false},
    {"parentbased_traceidratio", NULL, "\"sampling_ratio\": 1.0", true, false, true},
    {"parentbased_traceidratio", "0", "", true, false, false},
    {NULL, NULL, "\"sampling_ratio\": 0", true, false, false}, /* the default sampler */
};

/* One request of a row; checks the forwarded and echoed flag; returns its path in out. */
static void sampling_request(const char *tag, const char *in_flags, bool want_sampled, char *out,
                             size_t size)
{
    char tp[96], trace_id[33], parent_id[17], t[33], s[17], fl[3];
    struct harness_response rs;
    const char *headers[] = {tp, NULL};

    unique_path(out, size, "/api/", tag);
    harness_random_hex(trace_id, 32);
    harness_random_hex(parent_id, 16);
    snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-%s", trace_id, parent_id,
             in_flags ? in_flags : "");
    send_request(NULL, out, in_flags ? headers : NULL, NULL, &rs);
    ck_assert_int_eq(rs.status, 200);
    json_t *record = upstream_record(out);
    ck_assert(harness_traceparent_split(harness_record_header(record, "traceparent"), t, s, fl));
    bool sampled = strtol(fl, NULL, 16) & 1;
    ck_assert_msg(sampled == want_sampled, "%s: forwarded flags %s, expected sampled=%d", tag, fl,
                  want_sampled);
    if (in_flags)
        ck_assert_str_eq(t, trace_id);
    ck_assert(harness_traceparent_split(harness_header(&rs, "traceparent"), t, s, fl));
    ck_assert_msg((bool)(strtol(fl, NULL, 16) & 1) == want_sampled, "%s: echoed flags %s", tag, fl);
    json_decref(record);
    harness_response_free(&rs);
}

START_TEST(test_sampling_table)
{
    const struct sampling_row *row = &sampling_rows[_i];
    char otlp[2048], env_sampler[64], env_arg[64], p_sampled[96], p_unsampled[96], p_none[96];
    char *env[3] = {NULL, NULL, NULL};
    size_t n = 0;

    if (row->sampler) {
        snprintf(env_sampler, sizeof(env_sampler), "OTEL_TRACES_SAMPLER=%s", row->sampler);
        env[n++] = env_sampler;
    }
    if (row->arg) {
        snprintf(env_arg, sizeof(env_arg), "OTEL_TRACES_SAMPLER_ARG=%s", row->arg);
        env[n++] = env_arg;
    }
    otlp_text(otlp, sizeof(otlp), "endpoint", harness_otlp_url(f.rx), NULL, "");
    start_daemon_env(otlp, row->trace, "", env);
    fprintf(stderr, "sampling row: sampler %s, arg %s, trace {%s}\n",
            row->sampler ? row->sampler : "(default)", row->arg ? row->arg : "(none)", row->trace);

    sampling_request("in-sampled", "01", row->sampled_in, p_sampled, sizeof(p_sampled));
    sampling_request("in-unsampled", "00", row->unsampled_in, p_unsampled, sizeof(p_unsampled));
    sampling_request("in-none", NULL, row->none_in, p_none, sizeof(p_none));
    /* Wait for the spans that must come, then let SIGTERM flush whatever else was queued. */
    if (row->sampled_in)
        json_decref(span_of(p_sampled));
    if (row->unsampled_in)
        json_decref(span_of(p_unsampled));
    if (row->none_in)
        json_decref(span_of(p_none));
    sigterm_and_wait(10000);
    ck_assert_uint_eq(spans_now(p_sampled), row->sampled_in ? 1 : 0);
    ck_assert_uint_eq(spans_now(p_unsampled), row->unsampled_in ? 1 : 0);
    ck_assert_uint_eq(spans_now(p_none), row->none_in ? 1 : 0);
}
END_TEST

/* --- the receiver's answers --------------------------------------------------------------------
 */

START_TEST(test_400_is_not_retried)
{
    char first[96], second[96];
    struct harness_otlp_reply bad = {
        .action = HARNESS_OTLP_STATUS, .status = 400, .retry_after_s = -1, .message = "bad span"};

    harness_otlp_script(f.rx, &bad, 1);
    start_daemon(NULL, NULL);
    unique_path(first, sizeof(first), "/api/", "rejected");
    ck_assert_int_eq(get(first, NULL), 200);
    ck_assert_uint_eq(harness_otlp_wait(f.rx, 1, HARNESS_WAIT_MS), 1);
    ck_assert_int_eq(harness_otlp_request(f.rx, 0)->answered_status, 400);
    ck_assert_double_eq(wait_metric_at_least(REQUESTS_FAILED, 1, HARNESS_WAIT_MS), 1);
    /* The next batch carries only the next span: the first batch was not sent again. */
    unique_path(second, sizeof(second), "/api/", "after-400");
    ck_assert_int_eq(get(second, NULL), 200);
    json_decref(span_of(second));
    ck_assert_uint_eq(harness_otlp_count(f.rx), 2);
    ck_assert_uint_eq(spans_now(first), 1);
    ck_assert_double_eq(harness_metric_value(f.admin, RETRIES), 0);
    ck_assert_double_eq(harness_metric_value(f.admin, REQUESTS_RETRY), 0);
    ck_assert_double_eq(harness_metric_value(f.admin, DROPPED_FAILED), 1);
    ck_assert_double_eq(wait_metric_at_least(EXPORTED, 1, HARNESS_WAIT_MS), 1);
}
END_TEST

/* 429 or 503 first, then 200: two POSTs with the same spans. */
static void retried_once(int status, int retry_after_s, int min_gap_ms)
{
    char path[96];
    struct harness_otlp_reply first = {
        .action = HARNESS_OTLP_STATUS, .status = status, .retry_after_s = retry_after_s};

    harness_otlp_script(f.rx, &first, 1);
    start_daemon(NULL, NULL);
    unique_path(path, sizeof(path), "/api/", "retried");
    ck_assert_int_eq(get(path, NULL), 200);
    ck_assert_uint_eq(harness_otlp_wait(f.rx, 2, 15000), 2);
    const struct harness_otlp_request *a = harness_otlp_request(f.rx, 0);
    const struct harness_otlp_request *b = harness_otlp_request(f.rx, 1);
    ck_assert_int_eq(a->answered_status, status);
    ck_assert_int_eq(b->answered_status, 200);
    ck_assert_msg(b->received_ms - a->received_ms >= min_gap_ms,
                  "retry %lld ms after the %d, expected >= %d ms",
                  (long long)(b->received_ms - a->received_ms), status, min_gap_ms);
    json_t *sa = harness_otlp_request_spans(a), *sb = harness_otlp_request_spans(b);
    ck_assert_msg(json_equal(sa, sb), "the retry carries other spans");
    ck_assert_uint_eq(json_array_size(sa), 1);
    json_decref(sa);
    json_decref(sb);
    ck_assert_double_eq(wait_metric_at_least(REQUESTS_OK, 1, HARNESS_WAIT_MS), 1);
    ck_assert_double_eq(harness_metric_value(f.admin, REQUESTS_RETRY), 1);
    ck_assert_double_eq(harness_metric_value(f.admin, RETRIES), 1);
    ck_assert_double_eq(harness_metric_value(f.admin, EXPORTED), 1);
    ck_assert_double_eq(harness_metric_value(f.admin, REQUESTS_FAILED), 0);
    ck_assert_double_eq(harness_metric_value(f.admin, DROPPED_FAILED), 0);
}

START_TEST(test_429_with_retry_after_is_retried_after_it)
{
    retried_once(429, 1, 900);
}
END_TEST

START_TEST(test_503_is_retried)
{
    retried_once(503, -1, 0);
}
END_TEST

START_TEST(test_partial_success_is_counted_not_retried)
{
    char first[96], second[96];
    struct harness_otlp_reply partial = {
        .action = HARNESS_OTLP_PARTIAL, .rejected = 1, .retry_after_s = -1, .message = "x"};

    harness_otlp_script(f.rx, &partial, 1);
    start_daemon(NULL, NULL);
    unique_path(first, sizeof(first), "/api/", "partial");
    ck_assert_int_eq(get(first, NULL), 200);
    ck_assert_uint_eq(harness_otlp_wait(f.rx, 1, HARNESS_WAIT_MS), 1);
    ck_assert_double_eq(wait_metric_at_least(REJECTED, 1, HARNESS_WAIT_MS), 1);
    ck_assert_double_eq(harness_metric_value(f.admin, REQUESTS_PARTIAL), 1);
    unique_path(second, sizeof(second), "/api/", "after-partial");
    ck_assert_int_eq(get(second, NULL), 200);
    json_decref(span_of(second));
    ck_assert_uint_eq(harness_otlp_count(f.rx), 2);
    ck_assert_uint_eq(spans_now(first), 1);
    ck_assert_double_eq(harness_metric_value(f.admin, RETRIES), 0);
}
END_TEST

START_TEST(test_receiver_down_drops_after_export_timeout)
{
    char path[96];
    harness_otlp_down(f.rx); /* the port is closed: every connect is refused */
    start_daemon("\"schedule_delay_ms\": 100, \"export_timeout_ms\": 1500", NULL);
    for (int i = 0; i < 5; i++) {
        struct harness_response rs;
        unique_path(path, sizeof(path), "/api/", "down");
        send_request(NULL, path, NULL, NULL, &rs);
        ck_assert_int_eq(rs.status, 200);
        ck_assert_msg(rs.total_s < 1.0, "a request took %.3f s with the receiver down", rs.total_s);
        harness_response_free(&rs);
    }
    ck_assert_double_eq(wait_metric_at_least(DROPPED_FAILED, 5, 15000), 5);
    ck_assert_double_eq(harness_metric_value(f.admin, EXPORTED), 0);
    ck_assert_double_eq(harness_metric_value(f.admin, QUEUE_SPANS), 0);
}
END_TEST

/* --- encoding options ------------------------------------------------------------------------ */

START_TEST(test_gzip_headers_and_traces_endpoint)
{
    char url[128], otlp[2048], path[96];

    snprintf(url, sizeof(url), "%s/x/y", harness_otlp_url(f.rx));
    otlp_text(otlp, sizeof(otlp), "traces_endpoint", url, NULL,
              "\"compression\": \"gzip\", \"timeout_ms\": 10000,"
              " \"headers\": {\"authorization\": \"Bearer t0ken\", \"x-tenant\": \"acme\"}");
    start_daemon_env(otlp, "", "", NULL);
    unique_path(path, sizeof(path), "/api/", "gzip");
    ck_assert_int_eq(get(path, NULL), 200);
    json_t *span = span_of(path);
    const struct harness_otlp_request *rq =
        request_with_span(json_string_value(json_object_get(span, "spanId")));
    assert_export_request(rq, "/x/y");
    ck_assert_str_eq(harness_otlp_header(rq, "Content-Encoding"), "gzip");
    ck_assert_msg(rq->raw_len > 2 && (unsigned char)rq->raw_body[0] == 0x1f &&
                      (unsigned char)rq->raw_body[1] == 0x8b,
                  "the body is not gzip");
    ck_assert_msg(rq->body != NULL, "gzip body does not decode: %s", rq->error);
    ck_assert_str_eq(harness_otlp_header(rq, "authorization"), "Bearer t0ken");
    ck_assert_str_eq(harness_otlp_header(rq, "x-tenant"), "acme");
    assert_resource_and_scope(rq, "checkout", "test");
    json_decref(span);
}
END_TEST

/* --- the environment ---------------------------------------------------------------------------
 */

START_TEST(test_environment_alone_turns_export_on)
{
    char endpoint[128], path[96];

    snprintf(endpoint, sizeof(endpoint), "OTEL_EXPORTER_OTLP_ENDPOINT=%s", harness_otlp_url(f.rx));
    char *env[] = {endpoint,
                   "OTEL_SERVICE_NAME=env-svc",
                   "OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=st%20age",
                   "OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20t0ken,x-b=1",
                   "OTEL_BSP_SCHEDULE_DELAY=100",
                   NULL};
    start_daemon_env(NULL, "", "", env);
    unique_path(path, sizeof(path), "/api/", "env");
    ck_assert_int_eq(get(path, NULL), 200);
    json_t *span = span_of(path);
    const struct harness_otlp_request *rq =
        request_with_span(json_string_value(json_object_get(span, "spanId")));
    assert_export_request(rq, "/v1/traces");
    assert_resource_and_scope(rq, "env-svc", "st age");
    ck_assert_str_eq(harness_otlp_header(rq, "authorization"), "Bearer t0ken");
    ck_assert_str_eq(harness_otlp_header(rq, "x-b"), "1");
    json_decref(span);
}
END_TEST

START_TEST(test_environment_beats_the_file)
{
    char endpoint[160], otlp[2048], path[96];
    struct harness_otlp *other = harness_otlp_start();

    ck_assert_ptr_nonnull(other);
    /* The file names `other`; the environment names f.rx (full traces URL, as is). */
    otlp_text(otlp, sizeof(otlp), "endpoint", harness_otlp_url(other), NULL, "");
    snprintf(endpoint, sizeof(endpoint), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=%s/env/traces",
             harness_otlp_url(f.rx));
    char *env[] = {endpoint, NULL};
    start_daemon_env(otlp, "", "", env);
    unique_path(path, sizeof(path), "/api/", "env-wins");
    ck_assert_int_eq(get(path, NULL), 200);
    json_t *span = span_of(path);
    assert_export_request(harness_otlp_request(f.rx, 0), "/env/traces");
    sigterm_and_wait(10000);
    ck_assert_uint_eq(harness_otlp_count(other), 0);
    json_decref(span);
    harness_otlp_stop(other);
}
END_TEST

START_TEST(test_sdk_disabled_turns_export_off)
{
    char path[96];
    char *env[] = {"OTEL_SDK_DISABLED=true", NULL};
    char otlp[2048];

    otlp_text(otlp, sizeof(otlp), "endpoint", harness_otlp_url(f.rx), NULL, "");
    start_daemon_env(otlp, "", "", env);
    unique_path(path, sizeof(path), "/api/", "disabled");
    ck_assert_int_eq(get(path, NULL), 200);
    sigterm_and_wait(10000);
    ck_assert_uint_eq(harness_otlp_count(f.rx), 0);
}
END_TEST

/* --- reload ------------------------------------------------------------------------------------
 */

START_TEST(test_reload_moves_export_to_a_new_endpoint)
{
    char otlp[2048], config[8192], before[96], after[96];
    struct harness_otlp *second = harness_otlp_start();

    ck_assert_ptr_nonnull(second);
    start_daemon(NULL, NULL);
    unique_path(before, sizeof(before), "/api/", "before-reload");
    ck_assert_int_eq(get(before, NULL), 200);
    json_decref(span_of(before));

    otlp_text(otlp, sizeof(otlp), "endpoint", harness_otlp_url(second), NULL, "");
    config_text(config, sizeof(config), otlp, "", "");
    ck_assert_int_eq(harness_write_file(f.d.config_path, config), 0);
    ck_assert_int_eq(kill(f.d.proc.pid, SIGHUP), 0);
    struct harness_field_match m = {"message", "config reloaded"};
    json_t *reloaded = harness_jsonl_wait(f.d.stderr_path, harness_match_field_prefix, &m, 1,
                                          HARNESS_WAIT_MS, &f.d.proc);
    ck_assert_msg(json_array_size(reloaded) == 1, "no 'config reloaded' after SIGHUP");
    json_decref(reloaded);

    unique_path(after, sizeof(after), "/api/", "after-reload");
    ck_assert_int_eq(get(after, NULL), 200);
    json_t *spans = harness_otlp_wait_spans(second, "url.path", after, 1, HARNESS_WAIT_MS);
    ck_assert_uint_eq(json_array_size(spans), 1);
    json_decref(spans);
    sigterm_and_wait(10000);
    ck_assert_uint_eq(spans_now(after), 0);
    json_t *all = harness_otlp_spans(f.rx);
    ck_assert_uint_eq(json_array_size(all), 1);
    json_decref(all);
    harness_otlp_stop(second);
}
END_TEST

/* --- the receiver itself (harness-otlp.c) ---------------------------------------------------- */

START_TEST(test_receiver_records_gzip_and_follows_its_script)
{
    char in[] = "{\"resourceSpans\": []}";
    unsigned char gz[256];
    z_stream z = {0};
    struct harness_response rs;

    ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)strlen(in);
    z.next_out = gz;
    z.avail_out = sizeof(gz);
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t gz_len = sizeof(gz) - z.avail_out;
    deflateEnd(&z);

    struct harness_otlp_reply script[] = {
        {.action = HARNESS_OTLP_STATUS, .status = 429, .retry_after_s = 1},
        {.action = HARNESS_OTLP_PARTIAL, .rejected = 2, .retry_after_s = -1, .message = "x"},
    };
    harness_otlp_script(f.rx, script, 2);
    const char *headers[] = {"Content-Type: application/json", "Content-Encoding: gzip", NULL};
    struct harness_request rq = {.method = "POST",
                                 .target = "/v1/traces",
                                 .headers = headers,
                                 .body = gz,
                                 .body_len = gz_len};
    harness_http(harness_otlp_port(f.rx), &rq, &rs);
    ck_assert_int_eq(rs.status, 429);
    ck_assert_str_eq(harness_header(&rs, "Retry-After"), "1");
    harness_response_free(&rs);
    harness_http(harness_otlp_port(f.rx), &rq, &rs);
    ck_assert_int_eq(rs.status, 200);
    json_t *body = harness_response_json(&rs);
    ck_assert_str_eq(json_string_value(
                         json_object_get(json_object_get(body, "partialSuccess"), "rejectedSpans")),
                     "2");
    json_decref(body);
    harness_response_free(&rs);
    ck_assert_uint_eq(harness_otlp_wait(f.rx, 2, 1000), 2);
    const struct harness_otlp_request *r0 = harness_otlp_request(f.rx, 0);
    ck_assert_str_eq(r0->target, "/v1/traces");
    ck_assert_msg(r0->json != NULL, "%s", r0->error);
    ck_assert(json_is_array(json_object_get(r0->json, "resourceSpans")));

    /* hang, then down: the client sees the connection end, new connections are refused */
    struct harness_otlp_reply hang = {.action = HARNESS_OTLP_HANG, .retry_after_s = -1};
    harness_otlp_set_default(f.rx, &hang);
    rq.timeout_ms = 300;
    harness_http(harness_otlp_port(f.rx), &rq, &rs);
    ck_assert_int_eq(rs.status, 0);
    harness_response_free(&rs);
    ck_assert_uint_eq(harness_otlp_wait(f.rx, 3, 1000), 3);
    harness_otlp_down(f.rx);
    ck_assert(harness_wait_port_refused(harness_otlp_port(f.rx), 1000));
}
END_TEST

/* --- timing: hanging receiver, drain ------------------------------------------------------------
 */

START_TEST(test_hanging_receiver_never_slows_requests)
{
    char path[96];
    struct harness_otlp_reply hang = {.action = HARNESS_OTLP_HANG, .retry_after_s = -1};
    double slowest = 0;

    char otlp[2048];

    harness_otlp_set_default(f.rx, &hang);
    /* drain_timeout_ms 1000: the stop at the end waits that long for the hanging export, not the
     * default 20 s (longer than the harness's bounded stop). */
    otlp_text(otlp, sizeof(otlp), "endpoint", harness_otlp_url(f.rx),
              "\"max_queue_size\": 4, \"max_export_batch_size\": 2, \"schedule_delay_ms\": 100",
              "\"timeout_ms\": 10000");
    start_daemon_env(otlp, "", "\"drain_timeout_ms\": 1000", NULL);
    CURL *easy = curl_easy_init();
    for (int i = 0; i < 200; i++) {
        struct harness_response rs;
        struct harness_request rq = {.target = path};
        unique_path(path, sizeof(path), "/api/", "hang");
        harness_http_on(easy, f.d.port, &rq, &rs);
        ck_assert_msg(rs.result == CURLE_OK, "request %d: %s", i, rs.error);
        ck_assert_int_eq(rs.status, 200);
        if (rs.total_s > slowest)
            slowest = rs.total_s;
        harness_response_free(&rs);
    }
    curl_easy_cleanup(easy);
    ck_assert_msg(slowest < 1.0, "the slowest request took %.3f s while the receiver hangs",
                  slowest);
    ck_assert_uint_ge(harness_otlp_wait(f.rx, 1, HARNESS_WAIT_MS), 1);
    double dropped = wait_metric_at_least(DROPPED_QUEUE, 1, HARNESS_WAIT_MS);
    ck_assert_msg(dropped >= 150, "only %g spans dropped for a full queue (200 sent, queue 4)",
                  dropped);
    ck_assert_double_le(harness_metric_value(f.admin, QUEUE_SPANS), 4);
}
END_TEST

START_TEST(test_sigterm_flushes_queued_spans)
{
    char paths[3][96];

    start_daemon("\"schedule_delay_ms\": 60000", NULL);
    for (int i = 0; i < 3; i++) {
        unique_path(paths[i], sizeof(paths[i]), "/api/", "queued");
        ck_assert_int_eq(get(paths[i], NULL), 200);
    }
    ck_assert_double_eq(wait_metric_at_least(QUEUE_SPANS, 3, HARNESS_WAIT_MS), 3);
    ck_assert_uint_eq(harness_otlp_count(f.rx), 0);
    int64_t signalled = mono_ms();
    sigterm_and_wait(10000);
    int64_t exited = mono_ms();
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(spans_now(paths[i]), 1);
    const struct harness_otlp_request *rq = harness_otlp_request(f.rx, 0);
    ck_assert_msg(rq->received_ms >= signalled && rq->received_ms <= exited,
                  "the spans arrived %lld ms after SIGTERM, the daemon exited after %lld ms",
                  (long long)(rq->received_ms - signalled), (long long)(exited - signalled));
    ck_assert_int_eq(rq->answered_status, 200);
}
END_TEST

START_TEST(test_sigterm_with_hanging_receiver_drops_within_the_drain_budget)
{
    char path[96], otlp[2048];
    struct harness_otlp_reply hang = {.action = HARNESS_OTLP_HANG, .retry_after_s = -1};

    harness_otlp_set_default(f.rx, &hang);
    otlp_text(otlp, sizeof(otlp), "endpoint", harness_otlp_url(f.rx),
              "\"schedule_delay_ms\": 100, \"max_export_batch_size\": 2", "\"timeout_ms\": 30000");
    start_daemon_env(otlp, "", "\"drain_timeout_ms\": 1500", NULL);
    for (int i = 0; i < 5; i++) {
        unique_path(path, sizeof(path), "/api/", "stuck");
        ck_assert_int_eq(get(path, NULL), 200);
    }
    ck_assert_uint_ge(harness_otlp_wait(f.rx, 1, HARNESS_WAIT_MS), 1); /* one batch hangs */
    int64_t signalled = mono_ms();
    ck_assert_int_eq(kill(f.d.proc.pid, SIGTERM), 0);
    bool exited = harness_process_wait(&f.d.proc, 6000);
    int64_t took = mono_ms() - signalled;
    ck_assert_msg(exited, "tracehop still runs 6 s after SIGTERM (drain_timeout_ms 1500)");
    ck_assert_msg(took < 4000, "exit %lld ms after SIGTERM, drain_timeout_ms is 1500",
                  (long long)took);
    ck_assert_int_eq(harness_exit_code(&f.d.proc), 0);

    char *err = harness_read_file(f.d.stderr_path, NULL);
    ck_assert_ptr_nonnull(err);
    int said = 0;
    for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "spans") && strstr(line, "dropped"))
            said++;
    ck_assert_msg(said == 1, "%d stderr lines say spans were dropped, expected 1", said);
    free(err);
}
END_TEST

/* --- suites ------------------------------------------------------------------------------------
 */

static TCase *tcase(const char *name, double timeout)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    harness_tcase_timeout(tc, timeout);
    return tc;
}

static Suite *export_suite(void)
{
    Suite *s = suite_create("export");
    TCase *tc = tcase("receiver", 30);
    tcase_add_test(tc, test_receiver_records_gzip_and_follows_its_script);
    suite_add_tcase(s, tc);

    tc = tcase("span", 60);
    tcase_add_test(tc, test_continued_sampled_trace_exports_every_field);
    tcase_add_test(tc, test_new_trace_has_no_parent_and_local_flags);
    tcase_add_test(tc, test_unsampled_caller_exports_no_span);
    tcase_add_test(tc, test_upstream_5xx_and_failure_set_error_status);
    tcase_add_test(tc, test_no_route_and_unknown_method);
    suite_add_tcase(s, tc);

    tc = tcase("sampling", 60);
    tcase_add_loop_test(tc, test_sampling_table, 0,
                        (int)(sizeof(sampling_rows) / sizeof(sampling_rows[0])));
    suite_add_tcase(s, tc);

    tc = tcase("answers", 60);
    tcase_add_test(tc, test_400_is_not_retried);
    tcase_add_test(tc, test_503_is_retried);
    tcase_add_test(tc, test_partial_success_is_counted_not_retried);
    tcase_add_test(tc, test_receiver_down_drops_after_export_timeout);
    suite_add_tcase(s, tc);

    tc = tcase("config", 60);
    tcase_add_test(tc, test_gzip_headers_and_traces_endpoint);
    tcase_add_test(tc, test_environment_alone_turns_export_on);
    tcase_add_test(tc, test_environment_beats_the_file);
    tcase_add_test(tc, test_sdk_disabled_turns_export_off);
    tcase_add_test(tc, test_reload_moves_export_to_a_new_endpoint);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *timing_suite(void)
{
    Suite *s = suite_create("export-timing");
    TCase *tc = tcase("timing", 90);
    tcase_add_test(tc, test_429_with_retry_after_is_retried_after_it);
    tcase_add_test(tc, test_hanging_receiver_never_slows_requests);
    tcase_add_test(tc, test_sigterm_flushes_queued_spans);
    tcase_add_test(tc, test_sigterm_with_hanging_receiver_drops_within_the_drain_budget);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    bool timing = argc > 1 && strcmp(argv[1], "timing") == 0;
    return harness_run_suite(timing ? timing_suite() : export_suite());
}
