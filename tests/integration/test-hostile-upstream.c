/* SPDX-License-Identifier: MIT */
/*
 * Hostile upstreams (docs/security.md, Upstream side; the outcomes of docs/access-log.md): tracehop
 * in front of bad-upstream, a raw-socket server that misbehaves by path (see bad-upstream.c). For
 * each way an upstream can fail or lie, the client must get the right status (502 before a response
 * started, 504 on the route timeout) or an aborted connection (never a silently short or
 * mislabelled response), the access-log line must carry the right outcome and upstream_status, and
 * the daemon must not leak: its open file descriptors (/proc/PID/fd) return to the baseline after
 * every test, on their own (before any further request, which could make the daemon tidy up as a
 * side effect). A test that leaves fds behind fails; the tests after it count those fds in (see
 * begin()).
 *
 * Timings (route timeouts of 1 and 1.5 s) keep the suite short; bounds are generous.
 */
#include <check.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define HANG_TIMEOUT_MS    1000
#define ENDLESS_TIMEOUT_MS 1500
#define ROUTE_TIMEOUT_MS   5000
#define FD_SETTLE_MS       5000

static char dir[HARNESS_PATH_MAX];
static struct harness_bad bad;
static struct harness_daemon proxy;
static int fd_baseline = -1;  /* the idle daemon's fds, measured once per test case */
static int test_fd_base = -1; /* what this test must return to (see begin) */
static unsigned admin_port;   /* the daemon's /metrics */

static void bystander(void);

/* The lowest fd count seen over 1.2 s of idleness: connections closing lazily are gone by then. */
static int settled_fd_count(void)
{
    int lowest = -1;
    for (int i = 0; i < 60; i++) {
        int n = harness_fd_count(proxy.proc.pid);
        if (n >= 0 && (lowest < 0 || n < lowest))
            lowest = n;
        poll(NULL, 0, 20); /* nothing to wait on: /proc is sampled */
    }
    return lowest;
}

/*
 * Start of a test: the fds this test must return to. Normally the baseline; if an earlier test
 * left fds behind (it failed for that), they are counted in so that no later test fails for them.
 */
static void begin(void)
{
    int n = -1;
    for (int i = 0; i < 15; i++) {
        n = harness_fd_count(proxy.proc.pid);
        if (n <= fd_baseline)
            break;
        poll(NULL, 0, 20); /* nothing to wait on: /proc is sampled */
    }
    test_fd_base = n > fd_baseline ? n : fd_baseline;
}

static void setup(void)
{
    char config[2048];

    ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
    ck_assert_int_eq(harness_bad_start(&bad, dir), 0);
    snprintf(config, sizeof(config),
             "{\n"
             "  \"routes\": [\n"
             "    {\"name\": \"refused\", \"match\": {\"path_prefix\": \"/refused\"},\n"
             "     \"upstream\": \"http://127.0.0.1:%u\", \"connect_timeout_ms\": 2000},\n"
             "    {\"name\": \"hang\", \"match\": {\"path_prefix\": \"/hang\"},\n"
             "     \"upstream\": \"%s\", \"timeout_ms\": %d},\n"
             "    {\"name\": \"endless\", \"match\": {\"path_prefix\": \"/endless-body\"},\n"
             "     \"upstream\": \"%s\", \"timeout_ms\": %d},\n"
             "    {\"name\": \"bad\", \"match\": {\"path_prefix\": \"/\"},\n"
             "     \"upstream\": \"%s\", \"timeout_ms\": %d}\n"
             "  ]\n"
             "}\n",
             harness_closed_port(), bad.url, HANG_TIMEOUT_MS, bad.url, ENDLESS_TIMEOUT_MS, bad.url,
             ROUTE_TIMEOUT_MS);
    const char *args[] = {"--admin-listen", "127.0.0.1:0", NULL};
    ck_assert_int_eq(harness_daemon_start(&proxy, dir, config, NULL, args), 0);
    admin_port = harness_daemon_admin_port(&proxy);
    /* The baseline: what the daemon holds open when idle after a few plain requests (no pooled
     * upstream connection: /ok-close makes the upstream close it). */
    for (int i = 0; i < 4; i++)
        bystander();
    fd_baseline = settled_fd_count();
    ck_assert_int_gt(fd_baseline, 0);
}

static void teardown(void)
{
    if (proxy.proc.pid > 0 && harness_daemon_stop(&proxy) != 0)
        fprintf(stderr, "tracehop did not exit with 0 at the end of the test case\n");
    if (bad.proc.pid > 0)
        harness_bad_stop(&bad);
    harness_tmpdir_remove(dir);
}

/* --- helpers ---------------------------------------------------------------------------- */

/* A plain request through the same daemon still works. */
static void bystander(void)
{
    char id[17], target[64];
    struct harness_response rs;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/ok-close?bystander=%s", id);
    struct harness_request rq = {.target = target, .timeout_ms = 5000};
    harness_http(proxy.port, &rq, &rs);
    ck_assert_msg(rs.status == 200, "a plain request failed: %ld (%s)", rs.status, rs.error);
    ck_assert_msg(rs.body && strncmp(rs.body, "ok conn=", 8) == 0, "a plain request got '%s'",
                  rs.body ? rs.body : "");
    harness_response_free(&rs);
}

/* For a failure report: the daemon's TCP sockets as "local -> remote (state)", one a line. */
static void describe_sockets(char *out, size_t size)
{
    static const char *const states[] = {"?",          "ESTABLISHED", "SYN_SENT",  "SYN_RECV",
                                         "FIN_WAIT1",  "FIN_WAIT2",   "TIME_WAIT", "CLOSE",
                                         "CLOSE_WAIT", "LAST_ACK",    "LISTEN",    "CLOSING"};
    char path[64], line[512];
    size_t n = 0;

    out[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/net/tcp", (int)proxy.proc.pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f) && n + 80 < size) {
        unsigned local_ip, local_port, remote_ip, remote_port, state;
        unsigned long inode;
        if (sscanf(line, " %*u: %x:%x %x:%x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &local_ip,
                   &local_port, &remote_ip, &remote_port, &state, &inode) != 6 ||
            inode == 0)
            continue;
        /* Only sockets this process holds (its fds name "socket:[inode]"). */
        char want[40], target[64];
        bool mine = false;
        snprintf(want, sizeof(want), "socket:[%lu]", inode);
        for (int fd = 0; fd < 1024 && !mine; fd++) {
            char link[64];
            snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)proxy.proc.pid, fd);
            ssize_t len = readlink(link, target, sizeof(target) - 1);
            if (len > 0) {
                target[len] = '\0';
                mine = strcmp(target, want) == 0;
            }
        }
        if (mine && state != 0x0a)
            n += (size_t)snprintf(out + n, size - n, "\n  port %u -> port %u %s%s", local_port,
                                  remote_port, state < 12 ? states[state] : "?",
                                  local_port == proxy.port  ? " [client connection]"
                                  : remote_port == bad.port ? " [upstream connection]"
                                                            : "");
    }
    fclose(f);
}

/*
 * The daemon's fds return to the baseline on their own (no further request first: one could
 * make the daemon clean up what it would otherwise keep), then other clients are still served.
 */
static void assert_no_leak(const char *what)
{
    int last = -1;
    char sockets[2048];

    bool settled = harness_wait_fd_count_at_most(proxy.proc.pid, test_fd_base, FD_SETTLE_MS, &last);
    if (!settled)
        describe_sockets(sockets, sizeof(sockets));
    ck_assert_msg(settled,
                  "%s: the daemon holds %d fds, %d more than its baseline, %d ms later; its TCP "
                  "sockets:%s",
                  what, last, last - test_fd_base, FD_SETTLE_MS, sockets);
    bystander();
}

/* A unique target: path plus "?id=<hex>" (or "&id=" when the path has a query). */
static void unique_target(const char *path, char *out, size_t size)
{
    char id[17];
    harness_random_hex(id, 16);
    snprintf(out, size, "%s%cid=%s", path, strchr(path, '?') ? '&' : '?', id);
}

static json_t *log_of_span(const struct harness_response *rs, const char *what)
{
    char trace_id[33], span_id[17], flags[3];
    const char *tp = harness_header(rs, "traceparent");

    ck_assert_msg(harness_traceparent_split(tp, trace_id, span_id, flags),
                  "%s: no valid traceparent in the response ('%s')", what, tp ? tp : "(none)");
    json_t *log = harness_log_line(&proxy, "span_id", span_id);
    ck_assert_msg(log != NULL, "%s: no access-log line", what);
    const char *schema = harness_log_schema_error(log);
    ck_assert_msg(schema == NULL, "%s: access-log line: %s", what, schema);
    return log;
}

static void assert_log(json_t *log, const char *what, long status, const char *outcome,
                       long upstream_status, const char *route)
{
    ck_assert_msg(harness_json_int(log, "status", 0) == status, "%s: logged status %lld, not %ld",
                  what, (long long)harness_json_int(log, "status", 0), status);
    ck_assert_msg(strcmp(harness_json_str(log, "outcome"), outcome) == 0,
                  "%s: logged outcome %s, not %s", what, harness_json_str(log, "outcome"), outcome);
    if (upstream_status)
        ck_assert_msg(harness_json_int(log, "upstream_status", 0) == upstream_status,
                      "%s: logged upstream_status %lld, not %ld", what,
                      (long long)harness_json_int(log, "upstream_status", 0), upstream_status);
    else
        ck_assert_msg(harness_json_is_null(log, "upstream_status"),
                      "%s: upstream_status %lld logged for an upstream that sent no valid "
                      "response head",
                      what, (long long)harness_json_int(log, "upstream_status", 0));
    ck_assert_msg(harness_json_str(log, "route") &&
                      strcmp(harness_json_str(log, "route"), route) == 0,
                  "%s: logged route %s, not %s", what, harness_json_str(log, "route"), route);
}

/* One of tracehop's own errors: status, JSON body with the span, the access-log line. */
static void check_error(const struct harness_response *rs, const char *what, long status,
                        const char *code, const char *route)
{
    ck_assert_msg(rs->result == CURLE_OK && rs->status == status,
                  "%s: expected a complete %ld, got %ld (%s)", what, status, rs->status,
                  rs->result == CURLE_OK ? "complete" : rs->error);
    json_t *body = harness_response_json(rs);
    ck_assert_msg(body != NULL, "%s: the %ld body is not JSON: %s", what, status,
                  rs->body ? rs->body : "");
    ck_assert_msg(strcmp(harness_json_str(body, "error"), code) == 0, "%s: error %s, not %s", what,
                  harness_json_str(body, "error"), code);
    json_decref(body);
    json_t *log = log_of_span(rs, what);
    assert_log(log, what, status, code, 0, route);
    json_decref(log);
}

/* A metric's value, 0 when the series is not rendered yet. */
static double metric(const char *series)
{
    double v = harness_metric_value(admin_port, series);
    return isnan(v) ? 0 : v;
}

/* Metrics are counted right after the log line is written: wait (bounded) for the value. */
static void assert_metric_reaches(const char *series, double want)
{
    double v = metric(series);
    for (int i = 0; i < 250 && v != want; i++) {
        poll(NULL, 0, 20); /* the counter has no event to wait on */
        v = metric(series);
    }
    ck_assert_msg(v == want, "%s is %g, expected %g", series, v, want);
}

/* The client got a response head and then an aborted body, never a clean end. */
static void assert_aborted(const struct harness_response *rs, const char *what, long status)
{
    ck_assert_msg(rs->status == status, "%s: status %ld, expected %ld (%s)", what, rs->status,
                  status, rs->error);
    ck_assert_msg(rs->result == CURLE_PARTIAL_FILE || rs->result == CURLE_RECV_ERROR,
                  "%s: the client saw %s after %zu body bytes, not an aborted response", what,
                  rs->result == CURLE_OK ? "a complete response" : rs->error, rs->body_len);
}

/* --- failures before a response: 502 and 504 ------------------------------------------------ */

START_TEST(test_refused_connection_is_502_upstream_connect_failed)
{
    char target[64];
    struct harness_response rs;

    begin();
    unique_target("/refused", target, sizeof(target));
    struct harness_request rq = {.target = target};
    harness_http(proxy.port, &rq, &rs);
    check_error(&rs, "closed port", 502, "upstream_connect_failed", "refused");
    harness_response_free(&rs);
    assert_no_leak("closed port");
}
END_TEST

START_TEST(test_upstream_accepting_and_hanging_is_504_at_the_route_timeout)
{
    char target[64];
    struct harness_response rs;

    begin();
    unique_target("/hang", target, sizeof(target));
    struct harness_request rq = {.target = target};
    harness_http(proxy.port, &rq, &rs);
    check_error(&rs, "hanging upstream", 504, "upstream_timeout", "hang");
    ck_assert_msg(rs.total_s >= HANG_TIMEOUT_MS / 1000.0 - 0.05 && rs.total_s < 3.0,
                  "the 504 came after %.3f s for a %d ms route timeout", rs.total_s,
                  HANG_TIMEOUT_MS);
    harness_response_free(&rs);
    /* tracehop closed its upstream connection at the timeout. */
    json_t *closed = harness_bad_event(&bad, "closed", target, HARNESS_WAIT_MS);
    ck_assert_msg(closed != NULL, "the hanging upstream connection was never closed");
    ck_assert_str_eq(harness_json_str(closed, "by"), "peer");
    ck_assert_int_lt(harness_json_int(closed, "ms", -1), HANG_TIMEOUT_MS + 1000);
    json_decref(closed);
    assert_no_leak("hanging upstream");
}
END_TEST

/*
 * Upstreams that break the response head: the client gets tracehop's 502. `diag`: what the
 * diagnostic on stderr (with the request's span id) must say.
 */
#define TRACEHOP_REFUSED "invalid or oversized response header"
static const struct {
    const char *path;
    const char *what;
    const char *diag;
} broken_heads[] = {
    {"/close-before-status", "closes before the status line", "upstream"},
    {"/reset-before-status", "resets before the status line", "upstream"},
    {"/close-after-status", "closes after the status line", "upstream"},
    {"/close-mid-headers", "closes in the middle of the headers", "upstream"},
    {"/garbage-status", "sends a garbage status line", "upstream"},
    {"/bad-status-code", "sends a status line with a non-numeric code", "upstream"},
    {"/endless-headers", "sends headers without end (tracehop caps them at 64 KiB)",
     TRACEHOP_REFUSED},
    {"/no-colon", "sends a header line without a colon", "upstream"},
    {"/obs-fold", "folds a response header (obs-fold)", TRACEHOP_REFUSED},
    /* libcurl 7.88 unfolds into the previous response's last header, freed by then, when the
     * easy handle is reused (heap use-after-free, found by fuzz-daemon): the sanitizer runs of
     * this suite fail if a handle is ever reused again. */
    {"/fold-first", "starts its headers with a continuation line", "upstream"},
    {"/switching", "switches protocols (101) without being asked", TRACEHOP_REFUSED},
    {"/dup-cl", "sends two different Content-Length values", TRACEHOP_REFUSED},
};

struct diag_match {
    const char *span_id;
    const char *text;
};

static bool match_diag(json_t *object, const void *arg)
{
    const struct diag_match *m = arg;
    const char *span_id = harness_json_str(object, "span_id");
    const char *message = harness_json_str(object, "message");
    return span_id && message && (!m->span_id || strcmp(span_id, m->span_id) == 0) &&
           strstr(message, m->text);
}

START_TEST(test_broken_response_head_is_502_upstream_reset)
{
    char target[96], trace_id[33], span_id[17], flags[3];
    struct harness_response rs;
    const char *what = broken_heads[_i].what;

    begin();
    unique_target(broken_heads[_i].path, target, sizeof(target));
    struct harness_request rq = {.target = target};
    harness_http(proxy.port, &rq, &rs);
    check_error(&rs, what, 502, "upstream_reset", "bad");
    ck_assert_msg(!harness_header(&rs, "Upgrade"), "%s: Upgrade reached the client", what);
    ck_assert_msg(rs.total_s < 3.0, "%s: the 502 took %.3f s", what, rs.total_s);
    ck_assert(
        harness_traceparent_split(harness_header(&rs, "traceparent"), trace_id, span_id, flags));
    harness_response_free(&rs);
    assert_no_leak(what);
    /* The operator learns why: a diagnostic naming the request. The same failure as an earlier
     * case's within 10 s is collapsed into that one's line (docs/operations.md, Diagnostics):
     * then that earlier line says it. */
    struct diag_match m = {span_id, broken_heads[_i].diag};
    struct diag_match earlier = {NULL, broken_heads[_i].diag};
    json_t *lines = harness_jsonl_wait(proxy.stderr_path, match_diag, &m, 1, 0, NULL);
    if (json_array_size(lines) == 0) {
        json_decref(lines);
        lines = harness_jsonl_wait(proxy.stderr_path, match_diag, &earlier, 1, 0, NULL);
    }
    if (json_array_size(lines) == 0) {
        json_decref(lines);
        lines = harness_jsonl_wait(proxy.stderr_path, match_diag, &m, 1, 2000, NULL);
    }
    ck_assert_msg(json_array_size(lines) > 0,
                  "%s: no diagnostic on stderr with span_id %s (or an earlier identical one) "
                  "mentioning '%s'",
                  what, span_id, broken_heads[_i].diag);
    json_decref(lines);
}
END_TEST

/* --- failures after the response started: aborted, never a clean end ------------------------ */

static const char *const endless_framings[] = {"chunked", "close", "length"};

START_TEST(test_endless_body_is_cut_at_the_route_timeout_with_an_aborted_response)
{
    char path[64], target[96], what[64];
    struct harness_response rs;

    begin();
    snprintf(path, sizeof(path), "/endless-body?framing=%s", endless_framings[_i]);
    snprintf(what, sizeof(what), "endless body (%s)", endless_framings[_i]);
    unique_target(path, target, sizeof(target));
    struct harness_request rq = {.target = target, .discard_body = true, .timeout_ms = 10000};
    harness_http(proxy.port, &rq, &rs);
    assert_aborted(&rs, what, 200);
    ck_assert_msg(rs.body_len > 0, "%s: no body byte reached the client", what);
    ck_assert_msg(rs.total_s >= ENDLESS_TIMEOUT_MS / 1000.0 - 0.05 && rs.total_s < 4.0,
                  "%s: cut after %.3f s for a %d ms route timeout", what, rs.total_s,
                  ENDLESS_TIMEOUT_MS);
    json_t *log = log_of_span(&rs, what);
    assert_log(log, what, 200, "upstream_timeout", 200, "endless");
    ck_assert_int_eq(harness_json_int(log, "bytes_sent", -1), (json_int_t)rs.body_len);
    json_decref(log);
    harness_response_free(&rs);
    assert_no_leak(what);
}
END_TEST

START_TEST(test_body_shorter_than_content_length_aborts_the_client_response)
{
    char target[64];
    struct harness_response rs;

    static const char *const none =
        "tracehop_requests_total{route=\"bad\",method=\"GET\",status_class=\"none\"}";
    static const char *const ok =
        "tracehop_requests_total{route=\"bad\",method=\"GET\",status_class=\"2xx\"}";
    static const char *const reset =
        "tracehop_upstream_failures_total{route=\"bad\",outcome=\"upstream_reset\"}";

    begin();
    double none_before = metric(none), ok_before = metric(ok), reset_before = metric(reset);
    unique_target("/short-body", target, sizeof(target));
    struct harness_request rq = {.target = target, .discard_body = true};
    harness_http(proxy.port, &rq, &rs);
    assert_aborted(&rs, "short body", 200);
    ck_assert_str_eq(harness_header(&rs, "Content-Length"), "100000");
    ck_assert_uint_le(rs.body_len, 50000);
    json_t *log = log_of_span(&rs, "short body");
    /* status: the status line that went out; the outcome says the body broke off */
    assert_log(log, "short body", 200, "upstream_reset", 200, "bad");
    ck_assert_int_eq(harness_json_int(log, "bytes_sent", -1), (json_int_t)rs.body_len);
    json_decref(log);
    /* Not a success in the metrics: "none", which the documented error ratio counts. */
    assert_metric_reaches(none, none_before + 1);
    assert_metric_reaches(reset, reset_before + 1);
    ck_assert_msg(metric(ok) == ok_before, "the broken response was counted as 2xx");
    harness_response_free(&rs);
    assert_no_leak("short body");
}
END_TEST

/* When the chunk size "XYZ" follows the valid chunk: in the same write, or 200 ms later. */
static const int broken_chunked_late_ms[] = {0, 200};

START_TEST(test_broken_chunked_framing_aborts_the_client_response_promptly)
{
    char path[64], target[96], what[64];
    struct harness_response rs;
    int late = broken_chunked_late_ms[_i];

    begin();
    snprintf(path, sizeof(path), "/broken-chunked?late=%d", late);
    snprintf(what, sizeof(what), "broken chunked framing (%d ms after the first chunk)", late);
    unique_target(path, target, sizeof(target));
    struct harness_request rq = {.target = target};
    harness_http(proxy.port, &rq, &rs);
    assert_aborted(&rs, what, 200);
    ck_assert_msg(rs.body_len <= 5, "%s: %zu bytes passed for a 5-byte valid chunk", what,
                  rs.body_len);
    json_t *log = log_of_span(&rs, what);
    assert_log(log, what, 200, "upstream_reset", 200, "bad");
    json_t *closed = harness_bad_event(&bad, "closed", target, HARNESS_WAIT_MS);
    ck_assert_msg(closed && harness_json_int(closed, "ms", -1) < late + 500,
                  "%s: tracehop kept the broken upstream connection open", what);
    json_decref(closed);
    /* tracehop knew at once (its access-log line is written then): the client must not wait. */
    double logged_s = json_number_value(json_object_get(log, "duration_ms")) / 1000.0;
    ck_assert_msg(rs.total_s < logged_s + 0.5,
                  "%s: the client saw the abort %.0f ms after its request, the access log ended "
                  "the request after %.1f ms: the client connection stayed open in between",
                  what, rs.total_s * 1000, logged_s * 1000);
    json_decref(log);
    harness_response_free(&rs);
    assert_no_leak(what);
}
END_TEST

/* --- upstreams that are odd but answer -------------------------------------------------------- */

START_TEST(test_body_longer_than_content_length_is_cut_and_the_rest_never_answers_anything)
{
    char first[64], second[64];
    struct harness_response rs;
    CURL *easy = curl_easy_init(); /* one client connection: one worker, one upstream pool */
    begin();

    unique_target("/long-body", first, sizeof(first));
    unique_target("/ok", second, sizeof(second));
    struct harness_request rq1 = {.target = first};
    harness_http_on(easy, proxy.port, &rq1, &rs);
    ck_assert_msg(rs.result == CURLE_OK && rs.status == 200, "long body: %ld (%s)", rs.status,
                  rs.error);
    ck_assert_str_eq(rs.body, "0123456789");
    json_t *log = log_of_span(&rs, "long body");
    assert_log(log, "long body", 200, "ok", 200, "bad");
    json_decref(log);
    harness_response_free(&rs);

    struct harness_request rq2 = {.target = second};
    harness_http_on(easy, proxy.port, &rq2, &rs);
    ck_assert_msg(rs.status == 200 && !harness_header(&rs, "X-Smuggled"),
                  "the next request got the stray bytes of the previous response as its "
                  "response: %ld '%s'",
                  rs.status, rs.body ? rs.body : "");
    ck_assert_msg(rs.body && strncmp(rs.body, "ok conn=", 8) == 0, "the next request got '%s'",
                  rs.body ? rs.body : "");
    harness_response_free(&rs);
    curl_easy_cleanup(easy);
    /* /ok keeps its upstream connection alive and tracehop pools it: one more fd is fine. */
    bystander();
    int last = -1;
    ck_assert_msg(
        harness_wait_fd_count_at_most(proxy.proc.pid, test_fd_base + 1, FD_SETTLE_MS, &last),
        "long body: the daemon holds %d fds (baseline %d, one pooled connection "
        "allowed)",
        last, test_fd_base);
}
END_TEST

START_TEST(test_fifty_interim_responses_then_the_final_one_passes)
{
    char target[64];
    struct harness_response rs;

    begin();
    unique_target("/many-1xx?n=50", target, sizeof(target));
    struct harness_request rq = {.target = target};
    harness_http(proxy.port, &rq, &rs);
    ck_assert_msg(rs.result == CURLE_OK && rs.status == 200, "50 x 1xx: %ld (%s)", rs.status,
                  rs.error);
    ck_assert_str_eq(rs.body, "final\n");
    ck_assert_str_eq(harness_header(&rs, "X-Interim-Sent"), "yes");
    ck_assert_msg(!harness_header(&rs, "Link"), "a header of an interim 103 reached the client");
    json_t *log = log_of_span(&rs, "50 x 1xx");
    assert_log(log, "50 x 1xx", 200, "ok", 200, "bad");
    json_decref(log);
    harness_response_free(&rs);
    assert_no_leak("50 x 1xx");
}
END_TEST

/* "hello, gzip\n", gzip -n -9, as bad-upstream sends it */
static const unsigned char gzip_body[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0xd7,
    0x51, 0x48, 0xaf, 0xca, 0x2c, 0xe0, 0x02, 0x00, 0x86, 0x1f, 0x82, 0xa4, 0x0c, 0x00, 0x00, 0x00,
};

START_TEST(test_transfer_encoding_gzip_without_chunked_is_refused_or_decoded_never_mislabelled)
{
    /*
     * "Transfer-Encoding: gzip" with no chunked: the body runs to the close (RFC 9112 6.3) and
     * is gzip-coded. Transfer-Encoding is hop-by-hop, so a proxy must either decode it, or keep
     * the coding visible to the client, or refuse the response (502). What it must not do is
     * hand the coded bytes on as if they were the plain representation.
     */
    char target[64];
    struct harness_response rs;

    begin();
    unique_target("/te-gzip", target, sizeof(target));
    struct harness_request rq = {.target = target};
    harness_http(proxy.port, &rq, &rs);
    ck_assert_msg(rs.result == CURLE_OK, "te-gzip: %s", rs.error);
    if (rs.status == 502) {
        check_error(&rs, "te-gzip", 502, "upstream_reset", "bad");
    } else {
        ck_assert_int_eq(rs.status, 200);
        const char *te = harness_header(&rs, "Transfer-Encoding");
        const char *ce = harness_header(&rs, "Content-Encoding");
        bool labelled = (te && strcasestr(te, "gzip")) || (ce && strcasestr(ce, "gzip"));
        bool decoded = rs.body_len == 12 && memcmp(rs.body, "hello, gzip\n", 12) == 0;
        bool coded =
            rs.body_len == sizeof(gzip_body) && memcmp(rs.body, gzip_body, sizeof(gzip_body)) == 0;
        ck_assert_msg(decoded || (coded && labelled),
                      "te-gzip: the client got %zu bytes (%s) with Transfer-Encoding '%s' and "
                      "Content-Encoding '%s': %s",
                      rs.body_len, coded ? "the gzip-coded bytes" : "other bytes",
                      te ? te : "(none)", ce ? ce : "(none)",
                      coded ? "the coding was dropped, the body is mislabelled as plain"
                            : "neither decoded nor the upstream's bytes");
        json_t *log = log_of_span(&rs, "te-gzip");
        assert_log(log, "te-gzip", 200, "ok", 200, "bad");
        json_decref(log);
    }
    harness_response_free(&rs);
    assert_no_leak("te-gzip");
}
END_TEST

/*
 * bad-upstream writes a complete second response ("SMUGGLED") 100 ms after a well-formed one,
 * while the connection sits idle in tracehop's pool. Those bytes answer nothing: the next request
 * must get its own response, on this or a new connection, never the stray one (which would shift
 * every later response on that connection to the wrong request: response queue poisoning).
 */
START_TEST(test_stray_response_on_an_idle_pooled_connection_is_never_delivered)
{
    char first[64], targets[3][64];
    struct harness_response rs;
    CURL *easy = curl_easy_init(); /* one client connection: one worker, one upstream pool */
    begin();

    unique_target("/long-body-late", first, sizeof(first));
    struct harness_request rq1 = {.target = first};
    harness_http_on(easy, proxy.port, &rq1, &rs);
    ck_assert_msg(rs.result == CURLE_OK && rs.status == 200, "long-body-late: %ld (%s)", rs.status,
                  rs.error);
    ck_assert_str_eq(rs.body, "0123456789");
    harness_response_free(&rs);
    json_t *sent = harness_bad_event(&bad, "extra_sent", first, HARNESS_WAIT_MS);
    ck_assert_msg(sent != NULL, "bad-upstream never wrote the stray response");
    json_decref(sent);

    for (int i = 0; i < 3; i++) {
        unique_target("/ok", targets[i], sizeof(targets[i]));
        struct harness_request rq = {.target = targets[i]};
        harness_http_on(easy, proxy.port, &rq, &rs);
        if (rs.status != 200 || harness_header(&rs, "X-Smuggled") || !rs.body ||
            strncmp(rs.body, "ok conn=", 8) != 0) {
            json_t *head = harness_bad_event(&bad, "request", targets[i], 2000);
            ck_abort_msg("request %d after the stray bytes got %ld '%s' (X-Smuggled: %s); the "
                         "upstream got that request as request %lld of its connection %lld",
                         i + 1, rs.status, rs.body ? rs.body : "",
                         harness_header(&rs, "X-Smuggled") ? "yes" : "no",
                         (long long)harness_json_int(head, "seq", -1),
                         (long long)harness_json_int(head, "conn", -1));
        }
        harness_response_free(&rs);
    }
    curl_easy_cleanup(easy);
}
END_TEST

/* --- the drain timeout -------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Let curl move the one transfer for up to 20 ms; records its result when it ends. */
static void pump(CURLM *multi, struct harness_transfer *t, int *running)
{
    CURLMsg *msg;
    int left;

    curl_multi_perform(multi, running);
    while ((msg = curl_multi_info_read(multi, &left)))
        if (msg->msg == CURLMSG_DONE)
            harness_transfer_done(t, msg->data.result);
    if (*running)
        curl_multi_poll(multi, NULL, 0, 20, NULL);
}

/* A response still streaming when the drain timeout is over is cut off: logged with the outcome
 * "shutdown" (not client_aborted) and the status line the client got, and counted in the final
 * diagnostic. A daemon of its own, since it is stopped. */
START_TEST(test_streaming_response_cut_off_by_the_drain_timeout)
{
    char config[512], target[96];
    struct harness_daemon d;
    int running = 1;

    snprintf(config, sizeof(config),
             "{\"limits\": {\"drain_delay_ms\": 0, \"drain_timeout_ms\": 500},"
             " \"routes\": [{\"name\": \"stream\", \"upstream\": \"%s\"}]}",
             bad.url);
    ck_assert_int_eq(harness_daemon_start(&d, dir, config, NULL, NULL), 0);
    unique_target("/endless-body?framing=length", target, sizeof(target));
    struct harness_request rq = {.target = target, .discard_body = true, .timeout_ms = 15000};
    CURLM *multi = curl_multi_init();
    struct harness_transfer *t = harness_transfer_new(NULL, d.port, &rq);
    ck_assert_ptr_nonnull(t);
    curl_multi_add_handle(multi, t->easy);
    double deadline = now_s() + 10;
    while (t->response.body_len == 0 && running && now_s() < deadline)
        pump(multi, t, &running);
    ck_assert_msg(t->response.body_len > 0, "no body byte arrived before the stop");

    ck_assert_int_eq(kill(d.proc.pid, SIGTERM), 0);
    deadline = now_s() + 10;
    while (!harness_process_wait(&d.proc, 0) && now_s() < deadline)
        pump(multi, t, &running); /* keep reading: the stream goes on until the cut */
    ck_assert_msg(harness_process_wait(&d.proc, 0), "tracehop still runs 10 s after SIGTERM");
    ck_assert_int_eq(harness_exit_code(&d.proc), 0);
    while (running)
        pump(multi, t, &running);
    ck_assert_msg(t->response.result != CURLE_OK, "the cut-off response looked complete");

    json_t *log = harness_log_line(&d, "query", strchr(target, '?') + 1);
    ck_assert_msg(log != NULL, "no access-log line for the cut-off request");
    ck_assert_str_eq(harness_json_str(log, "outcome"), "shutdown");
    ck_assert_int_eq(harness_json_int(log, "status", 0), 200); /* its status line went out */
    json_decref(log);
    char *diagnostics = harness_read_file(d.stderr_path, NULL);
    ck_assert_ptr_nonnull(diagnostics);
    ck_assert_msg(strstr(diagnostics, "stopped; 1 request cut off by the drain timeout"),
                  "the final diagnostic does not count the cut-off request:\n%s", diagnostics);
    free(diagnostics);
    curl_multi_remove_handle(multi, t->easy);
    harness_transfer_free(t);
    curl_multi_cleanup(multi);
}
END_TEST

static Suite *hostile_upstream_suite(void)
{
    Suite *s = suite_create("hostile-upstream");
    TCase *tc = tcase_create("hostile_upstreams");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_test(tc, test_refused_connection_is_502_upstream_connect_failed);
    tcase_add_test(tc, test_upstream_accepting_and_hanging_is_504_at_the_route_timeout);
    tcase_add_loop_test(tc, test_broken_response_head_is_502_upstream_reset, 0,
                        (int)(sizeof(broken_heads) / sizeof(broken_heads[0])));
    tcase_add_loop_test(tc, test_endless_body_is_cut_at_the_route_timeout_with_an_aborted_response,
                        0, (int)(sizeof(endless_framings) / sizeof(endless_framings[0])));
    tcase_add_test(tc, test_body_shorter_than_content_length_aborts_the_client_response);
    tcase_add_loop_test(tc, test_broken_chunked_framing_aborts_the_client_response_promptly, 0,
                        (int)(sizeof(broken_chunked_late_ms) / sizeof(broken_chunked_late_ms[0])));
    tcase_add_test(tc, test_fifty_interim_responses_then_the_final_one_passes);
    tcase_add_test(
        tc, test_transfer_encoding_gzip_without_chunked_is_refused_or_decoded_never_mislabelled);
    /* Last in this case: it leaves a kept-alive upstream connection in the pool. */
    tcase_add_test(tc,
                   test_body_longer_than_content_length_is_cut_and_the_rest_never_answers_anything);
    suite_add_tcase(s, tc);

    /* A daemon of its own: a poisoned pooled connection must not leak into other tests. */
    TCase *pool = tcase_create("pooled_connection");
    tcase_add_unchecked_fixture(pool, setup, teardown);
    harness_tcase_timeout(pool, 60);
    tcase_add_test(pool, test_stray_response_on_an_idle_pooled_connection_is_never_delivered);
    suite_add_tcase(s, pool);

    TCase *drain = tcase_create("drain");
    tcase_add_unchecked_fixture(drain, setup, teardown);
    harness_tcase_timeout(drain, 60);
    tcase_add_test(drain, test_streaming_response_cut_off_by_the_drain_timeout);
    suite_add_tcase(s, drain);
    return s;
}

int main(void)
{
    return harness_run_suite(hostile_upstream_suite());
}
