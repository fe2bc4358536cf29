/* SPDX-License-Identifier: MIT */
/*
 * Hostile clients (docs/security.md, Request hygiene and Limits; the outcomes of
 * docs/access-log.md): request smuggling shapes, malformed header blocks and request lines,
 * oversized headers, pipelining, slowloris, idle and slow-reading clients, and clients that hang up
 * at every phase of a request. Each must get a clear status or a closed connection, leave an
 * access-log line with the right outcome, and never disturb other clients: after each case a normal
 * request on a separate connection must still be served promptly.
 *
 * Some requests are answered or dropped by libmicrohttpd itself, before or after tracehop sees
 * them (see tests/integration/test-errors.c): those tests say so in their names and pin what
 * really happens on the wire.
 *
 * Raw sockets throughout (harness_conn), since libcurl refuses to send most of these. The daemon
 * proxies /bad/... to bad-upstream (which reports when its side of a connection closes, so that
 * a cancelled upstream transfer can be seen) and everything else to the echo upstream.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MAX_HEADER_BYTES  4096
#define CLIENT_TIMEOUT_MS 1000
#define BAD_TIMEOUT_MS    8000 /* route timeout towards bad-upstream: far above any bound here */
#define RAW_WAIT_MS       5000
#define DOWNLOAD_BYTES    50000000
/* How soon an upstream transfer must be cancelled once its client is gone. */
#define CANCEL_BOUND_MS 1500

static char dir[HARNESS_PATH_MAX];
static struct harness_echo echo;
static struct harness_bad bad;
static struct harness_daemon proxy;

static void setup(void)
{
    char config[2048];

    ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
    ck_assert_int_eq(harness_echo_start(&echo, dir, false), 0);
    ck_assert_int_eq(harness_bad_start(&bad, dir), 0);
    snprintf(
        config, sizeof(config),
        "{\n"
        "  \"limits\": {\"max_header_bytes\": %d, \"client_timeout_ms\": %d},\n"
        "  \"routes\": [\n"
        "    {\"name\": \"bad\", \"match\": {\"path_prefix\": \"/bad\"}, \"upstream\": \"%s\",\n"
        "     \"strip_prefix\": true, \"timeout_ms\": %d},\n"
        "    {\"name\": \"echo\", \"match\": {\"path_prefix\": \"/\"}, \"upstream\": \"{ECHO}\"}\n"
        "  ]\n"
        "}\n",
        MAX_HEADER_BYTES, CLIENT_TIMEOUT_MS, bad.url, BAD_TIMEOUT_MS);
    ck_assert_int_eq(harness_daemon_start(&proxy, dir, config, echo.url, NULL), 0);
}

static void teardown(void)
{
    if (proxy.proc.pid > 0 && harness_daemon_stop(&proxy) != 0)
        fprintf(stderr, "tracehop did not exit with 0 at the end of the test case\n");
    if (echo.proc.pid > 0)
        harness_echo_stop(&echo);
    if (bad.proc.pid > 0)
        harness_bad_stop(&bad);
    harness_tmpdir_remove(dir);
}

/* --- helpers ---------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Pacing for the deliberately slow clients (not synchronisation: nothing to wait on). */
static void pause_until(int64_t when_ms)
{
    int64_t left = when_ms - now_ms();
    if (left > 0)
        poll(NULL, 0, (int)left);
}

/* tmpl with every {ID} replaced by id and every {NUL} by a NUL byte; returns the length. */
static size_t expand(const char *tmpl, const char *id, char *out, size_t size)
{
    size_t n = 0, id_len = strlen(id);

    for (const char *p = tmpl; *p;) {
        ck_assert_msg(n + id_len + 1 < size, "request template too long");
        if (strncmp(p, "{ID}", 4) == 0) {
            memcpy(out + n, id, id_len);
            n += id_len;
            p += 4;
        } else if (strncmp(p, "{NUL}", 5) == 0) {
            out[n++] = '\0';
            p += 5;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return n;
}

/* Match access-log lines (or records) whose string member `key` contains `value`. */
static bool match_contains(json_t *object, const void *arg)
{
    const struct harness_field_match *m = arg;
    const char *v = harness_json_str(object, m->key);
    return v && strstr(v, m->value);
}

/* The access-log line whose `key` contains `value`, waiting up to timeout_ms; NULL if none. */
static json_t *log_line_with(const char *key, const char *value, int timeout_ms)
{
    struct harness_field_match m = {key, value};
    json_t *all = harness_jsonl_wait(proxy.access_log, match_contains, &m, 1, timeout_ms, NULL);
    json_t *first = json_incref(json_array_get(all, 0));
    json_decref(all);
    return first;
}

/*
 * Other clients are unaffected: a normal request on a separate connection is served, promptly.
 * Returns its span id (so that callers can wait for its access-log line).
 */
static void assert_others_served_span(char span_id[17])
{
    char id[17], target[64], trace_id[33], flags[3];
    struct harness_response rs;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/api/bystander-%s", id);
    struct harness_request rq = {.target = target, .timeout_ms = 5000};
    harness_http(proxy.port, &rq, &rs);
    ck_assert_msg(rs.status == 200, "a normal request on another connection got %ld (%s)",
                  rs.status, rs.error);
    ck_assert_msg(rs.total_s < 2.0, "a normal request on another connection took %.3f s",
                  rs.total_s);
    ck_assert(
        harness_traceparent_split(harness_header(&rs, "traceparent"), trace_id, span_id, flags));
    harness_response_free(&rs);
}

static void assert_others_served(void)
{
    char span_id[17];
    assert_others_served_span(span_id);
}

/* No request whose target contains `id` reached the echo upstream (sentinel first, so that
 * anything forwarded earlier has been recorded). */
static void assert_never_reached_upstream(const char *id)
{
    char sentinel[64], sentinel_id[17];
    struct harness_response rs;
    size_t i;
    json_t *rec;

    harness_random_hex(sentinel_id, 16);
    snprintf(sentinel, sizeof(sentinel), "/api/sentinel-%s", sentinel_id);
    struct harness_request rq = {.target = sentinel};
    harness_http(proxy.port, &rq, &rs);
    ck_assert_int_eq(rs.status, 200);
    harness_response_free(&rs);
    struct harness_field_match m = {"target", sentinel};
    json_t *seen = harness_jsonl_wait_one(echo.record_path, harness_match_field, &m);
    ck_assert_ptr_nonnull(seen);
    json_decref(seen);

    json_t *all = harness_jsonl_read(echo.record_path);
    json_array_foreach(all, i, rec)
    {
        const char *target = harness_json_str(rec, "target");
        ck_assert_msg(!target || !strstr(target, id), "the upstream received %s", target);
    }
    json_decref(all);
}

/*
 * One error tracehop answered itself: status, trace headers, JSON body with the same ids, and
 * the access-log line (by span id) with this status and outcome. Returns the log line.
 */
static json_t *check_error(const char *what, const struct harness_response *rs, long status,
                           const char *outcome)
{
    char trace_id[33], span_id[17], flags[3];

    ck_assert_msg(rs->status == status, "%s: expected status %ld, got %ld (%s)", what, status,
                  rs->status, rs->status ? "" : rs->error);
    const char *tp = harness_header(rs, "traceparent");
    ck_assert_msg(harness_traceparent_split(tp, trace_id, span_id, flags),
                  "%s: %ld response without a valid traceparent ('%s')", what, status,
                  tp ? tp : "(none)");
    const char *xid = harness_header(rs, "X-Trace-ID");
    ck_assert_msg(xid != NULL, "%s: %ld response without X-Trace-ID", what, status);
    json_t *body = harness_response_json(rs);
    ck_assert_msg(body != NULL, "%s: %ld response body is not JSON: %s", what, status,
                  rs->body ? rs->body : "");
    ck_assert_msg(harness_json_str(body, "error") != NULL, "%s: no \"error\" in the body", what);
    ck_assert_str_eq(harness_json_str(body, "span_id"), span_id);
    json_decref(body);

    json_t *log = harness_log_line(&proxy, "span_id", span_id);
    ck_assert_msg(log != NULL, "%s: no access-log line for the %ld response", what, status);
    const char *schema = harness_log_schema_error(log);
    ck_assert_msg(schema == NULL, "%s: access-log line: %s", what, schema);
    ck_assert_msg(harness_json_int(log, "status", 0) == status, "%s: logged status %lld, sent %ld",
                  what, (long long)harness_json_int(log, "status", 0), status);
    ck_assert_msg(strcmp(harness_json_str(log, "outcome"), outcome) == 0,
                  "%s: logged outcome %s, expected %s", what, harness_json_str(log, "outcome"),
                  outcome);
    ck_assert_str_eq(harness_json_str(log, "trace_id"), trace_id);
    return log;
}

/* The access-log line of a request that ended without a response: status null and outcome. */
static void check_aborted_log(const char *what, const char *key, const char *value,
                              const char *outcome)
{
    json_t *log = log_line_with(key, value, HARNESS_WAIT_MS);
    ck_assert_msg(log != NULL, "%s: no access-log line with %s containing %s", what, key, value);
    const char *schema = harness_log_schema_error(log);
    ck_assert_msg(schema == NULL, "%s: access-log line: %s", what, schema);
    ck_assert_msg(strcmp(harness_json_str(log, "outcome"), outcome) == 0,
                  "%s: logged outcome %s, expected %s", what, harness_json_str(log, "outcome"),
                  outcome);
    json_decref(log);
}

/* Send `data` on a new connection; read one response and then expect the connection to close. */
static void send_and_read(struct harness_conn *c, const char *data, size_t len,
                          struct harness_response *rs)
{
    ck_assert_int_eq(harness_conn_open(c, proxy.port, RAW_WAIT_MS), 0);
    /* The server may answer and close before all is sent: what it said is read anyway. */
    harness_conn_send(c, data, len, RAW_WAIT_MS);
    harness_conn_read_response(c, false, RAW_WAIT_MS, rs);
}

/* --- requests that must be refused ---------------------------------------------------------- */

enum answered_by {
    BY_TRACEHOP,     /* tracehop's JSON error with trace headers */
    BY_MHD_LOGGED,   /* libmicrohttpd's own HTML error; tracehop still logs the request */
    BY_MHD_UNLOGGED, /* libmicrohttpd's own error before any callback: a diagnostic only */
};

/*
 * Each is followed, in the same write, by "GET /api/smuggled-{ID}": a refused request must not
 * let the bytes after it be read as a new request (the connection closes after the error).
 */
static const struct refused_case {
    const char *name;
    const char *request; /* {ID} marks the target (or a header); {NUL} is a NUL byte */
    long status;
    const char *outcome;
    enum answered_by by;
} refused[] = {
    /* request smuggling */
    {"Content-Length and Transfer-Encoding",
     "POST /api/clte-{ID} HTTP/1.1\r\nHost: a.example\r\nContent-Length: 4\r\n"
     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     400, "bad_request", BY_TRACEHOP},
    {"Transfer-Encoding and Content-Length",
     "POST /api/tecl-{ID} HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n"
     "Content-Length: 30\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     400, "bad_request", BY_TRACEHOP},
    {"conflicting Content-Length",
     "POST /api/cl-{ID} HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n"
     "Content-Length: 6\r\n\r\nhello!",
     400, "bad_request", BY_TRACEHOP},
    {"Transfer-Encoding: chunked, identity",
     "POST /api/te-list-{ID} HTTP/1.1\r\nHost: a.example\r\n"
     "Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     501, "bad_request", BY_TRACEHOP},
    {"two Transfer-Encoding: chunked fields",
     "POST /api/te-twice-{ID} HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     501, "bad_request", BY_TRACEHOP},
    {"Transfer-Encoding : chunked (space before the colon)",
     "POST /api/te-space-{ID} HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding : chunked\r\n\r\n"
     "5\r\nhello\r\n0\r\n\r\n",
     400, "bad_request", BY_TRACEHOP},
    {"Content-Length: 5, 5 (libmicrohttpd's 400)",
     "POST /api/cl-list-{ID} HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5, 5\r\n\r\nhello", 400,
     "bad_request", BY_MHD_LOGGED},
    {"negative Content-Length (libmicrohttpd's 400)",
     "POST /api/cl-neg-{ID} HTTP/1.1\r\nHost: a.example\r\nContent-Length: -5\r\n\r\nhello", 400,
     "bad_request", BY_MHD_LOGGED},
    {"chunk size that is not hex (libmicrohttpd's 400 after tracehop started)",
     "POST /api/chunk-hex-{ID} HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
     "zz\r\nhello\r\n0\r\n\r\n",
     400, "bad_request", BY_MHD_LOGGED},
    {"chunk size overflow (libmicrohttpd's 413 after tracehop started)",
     "POST /api/chunk-big-{ID} HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
     "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
     413, "too_large", BY_MHD_LOGGED},
    {"chunk longer than its size (libmicrohttpd's 400 after tracehop started)",
     "POST /api/chunk-long-{ID} HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5\r\nhello, world\r\n0\r\n\r\n",
     400, "bad_request", BY_MHD_LOGGED},
    /* header block syntax */
    {"obsolete line folding",
     "GET /api/fold-{ID} HTTP/1.1\r\nHost: a.example\r\nX-Fold: a\r\n  b\r\nX-After: 1\r\n\r\n",
     400, "bad_request", BY_TRACEHOP},
    {"bare CR inside a header value",
     "GET /api/cr-value-{ID} HTTP/1.1\r\nHost: a.example\r\nX-Cr: a\rb\r\n\r\n", 400, "bad_request",
     BY_TRACEHOP},
    {"bare CR ending the request line (libmicrohttpd's 400, no callback)",
     "GET /api/cr-line-{ID} HTTP/1.1\rHost: a.example\r\n\r\n", 400, NULL, BY_MHD_UNLOGGED},
    {"NUL in a header value",
     "GET /api/nul-value-{ID} HTTP/1.1\r\nHost: a.example\r\nX-Nul: a{NUL}b\r\n\r\n", 400,
     "bad_request", BY_TRACEHOP},
    {"NUL in a header name (libmicrohttpd's 400)",
     "GET /api/nul-name-{ID} HTTP/1.1\r\nHost: a.example\r\nX-{NUL}Nul: 1\r\n\r\n", 400,
     "bad_request", BY_MHD_LOGGED},
    {"DEL in a header value",
     "GET /api/del-value-{ID} HTTP/1.1\r\nHost: a.example\r\nX-Del: a\x7f\r\n\r\n", 400,
     "bad_request", BY_TRACEHOP},
    {"DEL in a header name",
     "GET /api/del-name-{ID} HTTP/1.1\r\nHost: a.example\r\nX-\x7f"
     "Del: 1\r\n\r\n",
     400, "bad_request", BY_TRACEHOP},
    {"ESC in a header value",
     "GET /api/esc-value-{ID} HTTP/1.1\r\nHost: a.example\r\nX-Esc: a\x1b[2Jb\r\n\r\n", 400,
     "bad_request", BY_TRACEHOP},
    {"SOH in a header name",
     "GET /api/soh-name-{ID} HTTP/1.1\r\nHost: a.example\r\nX-\x01Soh: 1\r\n\r\n", 400,
     "bad_request", BY_TRACEHOP},
    {"vertical tab in a header value",
     "GET /api/vt-value-{ID} HTTP/1.1\r\nHost: a.example\r\nX-Vt: a\vb\r\n\r\n", 400, "bad_request",
     BY_TRACEHOP},
    /* request lines */
    {"invalid method G(T", "G(T /api/method-{ID} HTTP/1.1\r\nHost: a.example\r\n\r\n", 400,
     "bad_request", BY_TRACEHOP},
    {"absolute-form target",
     "GET http://a.example/api/abs-{ID} HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, "bad_request",
     BY_TRACEHOP},
    {"authority-form target with GET", "GET {ID}.example:443 HTTP/1.1\r\nHost: a.example\r\n\r\n",
     400, "bad_request", BY_TRACEHOP},
    {"CONNECT", "CONNECT {ID}.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 400,
     "bad_request", BY_TRACEHOP},
    {"asterisk-form target", "OPTIONS * HTTP/1.1\r\nHost: {ID}.example\r\n\r\n", 400, "bad_request",
     BY_TRACEHOP},
    {"HTTP/0.9 request line (libmicrohttpd's 400, no callback)", "GET /api/nine-{ID}\r\n\r\n", 400,
     NULL, BY_MHD_UNLOGGED},
    {"HTTP/2.0 request line (libmicrohttpd's 505, no callback)",
     "GET /api/two-{ID} HTTP/2.0\r\nHost: a.example\r\n\r\n", 505, NULL, BY_MHD_UNLOGGED},
};

static bool diag_with_status(json_t *object, const void *arg)
{
    const char *message = harness_json_str(object, "message");
    return message && strstr(message, "libmicrohttpd answered a request itself") &&
           strstr(message, arg);
}

START_TEST(test_refused_request_gets_its_status_a_log_line_and_a_closed_connection)
{
    const struct refused_case *rc = &refused[_i];
    char id[17], request[1024];
    struct harness_conn c;
    struct harness_response rs;
    size_t discarded = 0;

    harness_random_hex(id, 16);
    size_t n = expand(rc->request, id, request, sizeof(request));
    n += expand("GET /api/smuggled-{ID} HTTP/1.1\r\nHost: a.example\r\n\r\n", id, request + n,
                sizeof(request) - n);
    send_and_read(&c, request, n, &rs);
    ck_assert_msg(rs.status == rc->status, "%s: expected %ld, got %ld (%s)", rc->name, rc->status,
                  rs.status, rs.status ? "" : rs.error);
    bool closed = harness_conn_wait_closed(&c, RAW_WAIT_MS, &discarded);
    ck_assert_msg(closed, "%s: the connection stayed open after the %ld", rc->name, rc->status);
    ck_assert_msg(discarded == 0 || rc->by != BY_TRACEHOP,
                  "%s: %zu more bytes followed the %ld (the trailing request was answered?)",
                  rc->name, discarded, rc->status);
    harness_conn_close(&c);

    if (rc->by == BY_TRACEHOP) {
        json_t *log = check_error(rc->name, &rs, rc->status, rc->outcome);
        json_decref(log);
    } else if (rc->by == BY_MHD_LOGGED) {
        json_t *log = log_line_with("path", id, HARNESS_WAIT_MS);
        ck_assert_msg(log != NULL, "%s: no access-log line", rc->name);
        json_int_t logged = harness_json_int(log, "status", 0);
        ck_assert_msg(logged == rc->status,
                      "%s: the wire carried libmicrohttpd's %ld, the access log says status %s "
                      "(outcome %s)",
                      rc->name, rc->status,
                      harness_json_is_null(log, "status") ? "null" : "another number",
                      harness_json_str(log, "outcome"));
        ck_assert_msg(strcmp(harness_json_str(log, "outcome"), rc->outcome) == 0,
                      "%s: logged outcome %s, expected %s", rc->name,
                      harness_json_str(log, "outcome"), rc->outcome);
        json_decref(log);
    } else {
        char code[32];
        snprintf(code, sizeof(code), "code is %ld", rc->status);
        json_t *all =
            harness_jsonl_wait(proxy.stderr_path, diag_with_status, code, 1, HARNESS_WAIT_MS, NULL);
        ck_assert_msg(json_array_size(all) > 0, "%s: no diagnostic for libmicrohttpd's %ld",
                      rc->name, rc->status);
        json_decref(all);
    }
    harness_response_free(&rs);

    char span_id[17];
    assert_others_served_span(span_id);
    if (rc->by == BY_MHD_UNLOGGED) {
        /* Pinned: no callback, hence no access-log line (the bystander's is written later). */
        json_t *line = harness_log_line(&proxy, "span_id", span_id);
        json_decref(line);
        json_t *mine = log_line_with("path", id, 0);
        ck_assert_msg(mine == NULL, "%s: unexpectedly logged", rc->name);
    }
    assert_never_reached_upstream(id);
}
END_TEST

/* --- requests that are odd but well framed: read exactly once ------------------------------ */

/*
 * Each is followed by "GET /api/after-{ID}" in the same write: both must be answered, in order,
 * and the upstream must see the body exactly as sent ("hello"), so that the framing tracehop
 * used agrees with the one the client meant.
 */
static const struct accepted_case {
    const char *name;
    const char *request;
    const char *body; /* what the upstream must receive */
} accepted[] = {
    {"Transfer-Encoding:<TAB>chunked",
     "POST /api/te-tab-{ID} HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding:\tchunked\r\n\r\n"
     "5\r\nhello\r\n0\r\n\r\n",
     "hello"},
    {"transfer-encoding: CHUNKED",
     "POST /api/te-upper-{ID} HTTP/1.1\r\nHost: a.example\r\ntransfer-encoding: CHUNKED\r\n\r\n"
     "5\r\nhello\r\n0\r\n\r\n",
     "hello"},
    {"chunk extensions",
     "POST /api/chunk-ext-{ID} HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
     "3;name=value\r\nhel\r\n2;quoted=\"a;b\";flag\r\nlo\r\n0;last\r\n\r\n",
     "hello"},
    {"chunked with a trailer field",
     "POST /api/trailer-{ID} HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
     "hello"},
    {"duplicate identical Content-Length",
     "POST /api/cl-same-{ID} HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n"
     "Content-Length: 5\r\n\r\nhello",
     "hello"},
    {"bare LF line endings",
     "POST /api/lf-{ID} HTTP/1.1\nHost: a.example\nContent-Length: 5\n\nhello", "hello"},
};

START_TEST(test_odd_but_valid_framing_is_read_exactly_once)
{
    const struct accepted_case *ac = &accepted[_i];
    char id[17], request[1024], want[96];
    struct harness_conn c;
    struct harness_response rs;

    harness_random_hex(id, 16);
    size_t n = expand(ac->request, id, request, sizeof(request));
    n += expand("GET /api/after-{ID} HTTP/1.1\r\nHost: a.example\r\n\r\n", id, request + n,
                sizeof(request) - n);
    ck_assert_int_eq(harness_conn_open(&c, proxy.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, request, n, RAW_WAIT_MS), 0);

    harness_conn_read_response(&c, false, RAW_WAIT_MS, &rs);
    ck_assert_msg(rs.status == 200, "%s: first response %ld (%s)", ac->name, rs.status, rs.error);
    json_t *echoed = harness_response_json(&rs);
    ck_assert_msg(echoed != NULL, "%s: not the echo's answer", ac->name);
    ck_assert_msg(strstr(harness_json_str(echoed, "target"), id) &&
                      !strstr(harness_json_str(echoed, "target"), "/after-"),
                  "%s: first response is for %s", ac->name, harness_json_str(echoed, "target"));
    ck_assert_msg(
        harness_json_str(echoed, "body") && strcmp(harness_json_str(echoed, "body"), ac->body) == 0,
        "%s: the upstream received the body '%s', the client sent '%s'", ac->name,
        harness_json_str(echoed, "body") ? harness_json_str(echoed, "body") : "(none)", ac->body);
    json_decref(echoed);
    harness_response_free(&rs);

    harness_conn_read_response(&c, false, RAW_WAIT_MS, &rs);
    ck_assert_msg(rs.status == 200, "%s: the request after it got %ld (%s)", ac->name, rs.status,
                  rs.error);
    echoed = harness_response_json(&rs);
    snprintf(want, sizeof(want), "/api/after-%s", id);
    ck_assert_msg(echoed && strcmp(harness_json_str(echoed, "target"), want) == 0,
                  "%s: second response is not for %s", ac->name, want);
    json_decref(echoed);
    harness_response_free(&rs);
    harness_conn_close(&c);

    json_t *log = log_line_with("path", id, HARNESS_WAIT_MS);
    ck_assert_msg(log != NULL, "%s: no access-log line", ac->name);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "ok");
    ck_assert_int_eq(harness_json_int(log, "bytes_received", -1), (json_int_t)strlen(ac->body));
    json_decref(log);
    assert_others_served();
}
END_TEST

START_TEST(test_pipelined_requests_get_ordered_responses)
{
    char id[17], request[1024], want[96];
    struct harness_conn c;
    static const char *const names[] = {"p1", "p2", "p3"};

    harness_random_hex(id, 16);
    size_t n = expand("GET /api/p1-{ID} HTTP/1.1\r\nHost: a.example\r\n\r\n"
                      "POST /api/p2-{ID} HTTP/1.1\r\nHost: a.example\r\nContent-Length: 9\r\n\r\n"
                      "pipelined"
                      "GET /api/p3-{ID} HTTP/1.1\r\nHost: a.example\r\n\r\n",
                      id, request, sizeof(request));
    ck_assert_int_eq(harness_conn_open(&c, proxy.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, request, n, RAW_WAIT_MS), 0); /* one write */
    for (size_t i = 0; i < 3; i++) {
        struct harness_response rs;
        harness_conn_read_response(&c, false, RAW_WAIT_MS, &rs);
        ck_assert_msg(rs.status == 200, "pipelined response %zu: %ld (%s)", i + 1, rs.status,
                      rs.error);
        json_t *echoed = harness_response_json(&rs);
        snprintf(want, sizeof(want), "/api/%s-%s", names[i], id);
        ck_assert_msg(echoed && strcmp(harness_json_str(echoed, "target"), want) == 0,
                      "pipelined response %zu is for %s, expected %s", i + 1,
                      echoed ? harness_json_str(echoed, "target") : "(not JSON)", want);
        if (i == 1)
            ck_assert_str_eq(harness_json_str(echoed, "body"), "pipelined");
        json_decref(echoed);
        harness_response_free(&rs);
    }
    harness_conn_close(&c);
    for (size_t i = 0; i < 3; i++) {
        snprintf(want, sizeof(want), "/api/%s-%s", names[i], id);
        json_t *log = harness_log_line(&proxy, "path", want);
        ck_assert_msg(log != NULL, "no access-log line for %s", want);
        ck_assert_str_eq(harness_json_str(log, "outcome"), "ok");
        json_decref(log);
    }
    assert_others_served();
}
END_TEST

/* --- header counts and sizes --------------------------------------------------------------- */

/* "GET target" with `count` headers "<name_prefix>NNN: vNNN", or one header with a long name. */
static char *build_request(const char *target, size_t count, size_t long_name_len, size_t *len)
{
    size_t cap = 256 + strlen(target) + count * 32 + long_name_len;
    char *r = malloc(cap);
    ck_assert_ptr_nonnull(r);
    size_t n = (size_t)snprintf(r, cap, "GET %s HTTP/1.1\r\nHost: a.example\r\n", target);
    for (size_t i = 0; i < count; i++)
        n += (size_t)snprintf(r + n, cap - n, "X-H-%04zu: v%04zu\r\n", i, i);
    if (long_name_len) {
        memcpy(r + n, "X-", 2);
        memset(r + n + 2, 'n', long_name_len - 2);
        n += long_name_len;
        n += (size_t)snprintf(r + n, cap - n, ": long\r\n");
    }
    n += (size_t)snprintf(r + n, cap - n, "\r\n");
    *len = n;
    return r;
}

START_TEST(test_200_headers_are_forwarded_in_order)
{
    char id[17], target[64], name[16], value[16];
    struct harness_response rs;
    size_t len, i, k = 0;
    json_t *pair;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/api/many-%s", id);
    char *request = build_request(target, 200, 0, &len); /* ~3.4 KB: within the 4 KiB limit */
    int rc = harness_raw(proxy.port, request, len, false, RAW_WAIT_MS, &rs);
    if (rc != 0 || rs.status != 200) {
        json_t *log = harness_log_line(&proxy, "path", target);
        ck_abort_msg("200 headers (%zu bytes, limits.max_header_bytes %d): got %ld (%s); the "
                     "access log says status %lld, upstream_status %lld, outcome %s",
                     len, MAX_HEADER_BYTES, rs.status, rs.status ? "" : rs.error,
                     (long long)harness_json_int(log, "status", 0),
                     (long long)harness_json_int(log, "upstream_status", 0),
                     log ? harness_json_str(log, "outcome") : "(no line)");
    }
    json_t *echoed = harness_response_json(&rs);
    ck_assert_ptr_nonnull(echoed);
    json_array_foreach(json_object_get(echoed, "headers"), i, pair)
    {
        const char *n = json_string_value(json_array_get(pair, 0));
        if (strncmp(n, "X-H-", 4) != 0)
            continue;
        snprintf(name, sizeof(name), "X-H-%04zu", k);
        snprintf(value, sizeof(value), "v%04zu", k);
        ck_assert_str_eq(n, name);
        ck_assert_str_eq(json_string_value(json_array_get(pair, 1)), value);
        k++;
    }
    ck_assert_uint_eq(k, 200);
    json_decref(echoed);
    harness_response_free(&rs);
    free(request);
    json_t *log = harness_log_line(&proxy, "path", target);
    ck_assert_ptr_nonnull(log);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "ok");
    json_decref(log);
    assert_others_served();
}
END_TEST

START_TEST(test_long_header_name_within_max_header_bytes_is_forwarded)
{
    char id[17], target[64];
    struct harness_response rs;
    size_t len;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/api/long-name-%s", id);
    char *request = build_request(target, 0, 2000, &len);
    ck_assert_int_eq(harness_raw(proxy.port, request, len, false, RAW_WAIT_MS, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    json_t *record = harness_response_json(&rs);
    bool found = false;
    size_t i;
    json_t *pair;
    json_array_foreach(json_object_get(record, "headers"), i, pair)
    {
        const char *n = json_string_value(json_array_get(pair, 0));
        found |= strlen(n) == 2000 && strncmp(n, "X-nnn", 5) == 0;
    }
    ck_assert_msg(found, "the upstream did not get the 2000-byte header name");
    json_decref(record);
    harness_response_free(&rs);
    free(request);
    assert_others_served();
}
END_TEST

START_TEST(test_long_header_name_over_max_header_bytes_is_431)
{
    char id[17], target[64];
    struct harness_response rs;
    size_t len;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/api/longer-name-%s", id);
    char *request = build_request(target, 0, MAX_HEADER_BYTES + 2000, &len);
    ck_assert_int_eq(harness_raw(proxy.port, request, len, false, RAW_WAIT_MS, &rs), 0);
    json_t *log = check_error("long header name", &rs, 431, "too_large");
    json_decref(log);
    harness_response_free(&rs);
    free(request);
    assert_others_served();
    assert_never_reached_upstream(id);
}
END_TEST

START_TEST(test_many_small_headers_over_max_header_bytes_get_mhd_431_and_a_log_line)
{
    /*
     * 400 headers, ~6.8 KB against limits.max_header_bytes 4096: libmicrohttpd keeps a record
     * per field in the same connection pool. Known limit (docs/security.md): when those records
     * leave no room for the response, tracehop's 431 cannot be sent and the connection is
     * closed instead (or libmicrohttpd answers 431 itself, depending on sizes). Either way the
     * access-log line says 431 too_large, and nothing reaches the upstream.
     */
    char id[17], target[64];
    struct harness_response rs;
    size_t len;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/api/too-many-%s", id);
    char *request = build_request(target, 400, 0, &len);
    int rc = harness_raw(proxy.port, request, len, false, RAW_WAIT_MS, &rs);
    ck_assert_msg(rc == -1 || rs.status == 431, "expected a 431 or a closed connection, got %ld",
                  rs.status);
    json_t *log = harness_log_line(&proxy, "path", target);
    ck_assert_msg(log != NULL, "no access-log line for the 431");
    ck_assert_int_eq(harness_json_int(log, "status", 0), 431);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "too_large");
    json_decref(log);
    harness_response_free(&rs);
    free(request);
    assert_others_served();
    assert_never_reached_upstream(id);
}
END_TEST

START_TEST(test_headers_beyond_mhd_buffer_get_mhd_431_and_a_log_line)
{
    /* Beyond libmicrohttpd's connection buffer (max_header_bytes + 8 KiB, at least 16 KiB)
     * libmicrohttpd answers 431 itself, without trace headers; tracehop still logs it. */
    char id[17], target[64];
    struct harness_response rs;
    size_t len;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/api/flood-%s", id);
    char *request = build_request(target, 3000, 0, &len); /* ~50 KB */
    ck_assert_int_eq(harness_raw(proxy.port, request, len, false, RAW_WAIT_MS, &rs), 0);
    ck_assert_int_eq(rs.status, 431);
    json_t *log = harness_log_line(&proxy, "path", target);
    ck_assert_msg(log != NULL, "no access-log line for libmicrohttpd's 431");
    ck_assert_int_eq(harness_json_int(log, "status", 0), 431);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "too_large");
    json_decref(log);
    harness_response_free(&rs);
    free(request);
    assert_others_served();
    assert_never_reached_upstream(id);
}
END_TEST

/* --- slow and idle clients ------------------------------------------------------------------ */

#define SLOWLORIS_CONNS 10
#define SLOWLORIS_TICKS 30 /* one byte per connection every 100 ms: 3 s */
#define BYSTANDERS      20

START_TEST(test_slowloris_does_not_delay_other_clients)
{
    char id[17], requests[SLOWLORIS_CONNS][160];
    size_t lens[SLOWLORIS_CONNS], sent[SLOWLORIS_CONNS] = {0};
    struct harness_conn conns[SLOWLORIS_CONNS];
    double worst = 0;

    harness_random_hex(id, 16);
    for (int i = 0; i < SLOWLORIS_CONNS; i++) {
        lens[i] = (size_t)snprintf(requests[i], sizeof(requests[i]),
                                   "GET /api/slowloris-%d-%s HTTP/1.1\r\nHost: a.example\r\n"
                                   "X-Slow: one byte at a time, for seconds\r\n\r\n",
                                   i, id);
        ck_assert_int_eq(harness_conn_open(&conns[i], proxy.port, RAW_WAIT_MS), 0);
    }
    int64_t start = now_ms();
    for (int tick = 0; tick < SLOWLORIS_TICKS; tick++) {
        for (int i = 0; i < SLOWLORIS_CONNS; i++) {
            ck_assert_msg(harness_conn_send(&conns[i], requests[i] + sent[i], 1, 1000) == 0,
                          "slowloris connection %d was closed after %zu bytes (%lld ms)", i,
                          sent[i], (long long)(now_ms() - start));
            sent[i]++;
        }
        if (tick < BYSTANDERS) {
            struct harness_response rs;
            struct harness_request rq = {.target = "/api/bystander", .timeout_ms = 5000};
            harness_http(proxy.port, &rq, &rs);
            ck_assert_msg(rs.status == 200, "bystander %d got %ld (%s)", tick, rs.status, rs.error);
            if (rs.total_s > worst)
                worst = rs.total_s;
            harness_response_free(&rs);
        }
        pause_until(start + (tick + 1) * 100);
    }
    fprintf(stderr, "slowloris: slowest of %d bystanders %.3f s\n", BYSTANDERS, worst);
    ck_assert_msg(worst < 0.5, "a bystander took %.3f s next to %d slowloris connections", worst,
                  SLOWLORIS_CONNS);
    /* Each trickle kept its connection active (within limits.client_timeout_ms): once the
     * request is complete it is served like any other. */
    for (int i = 0; i < SLOWLORIS_CONNS; i++) {
        struct harness_response rs;
        ck_assert_int_eq(
            harness_conn_send(&conns[i], requests[i] + sent[i], lens[i] - sent[i], 1000), 0);
        harness_conn_read_response(&conns[i], false, RAW_WAIT_MS, &rs);
        ck_assert_msg(rs.status == 200, "slowloris request %d: %ld (%s)", i, rs.status, rs.error);
        harness_response_free(&rs);
        harness_conn_close(&conns[i]);
    }
}
END_TEST

/* The connection is closed by the server within [lo, hi] ms of `since`. */
static void assert_closed_between(struct harness_conn *c, int64_t since, int lo, int hi,
                                  const char *what)
{
    bool closed = harness_conn_wait_closed(c, hi + 1000, NULL);
    int64_t after = now_ms() - since;
    ck_assert_msg(closed, "%s: still open after %lld ms (limits.client_timeout_ms %d)", what,
                  (long long)after, CLIENT_TIMEOUT_MS);
    ck_assert_msg(after >= lo && after <= hi, "%s: closed after %lld ms, expected %d..%d ms", what,
                  (long long)after, lo, hi);
}

START_TEST(test_idle_connection_is_closed_after_client_timeout)
{
    struct harness_conn c;

    ck_assert_int_eq(harness_conn_open(&c, proxy.port, RAW_WAIT_MS), 0);
    assert_closed_between(&c, now_ms(), CLIENT_TIMEOUT_MS - 100, CLIENT_TIMEOUT_MS + 2000,
                          "a connection that never sent a byte");
    harness_conn_close(&c);
    assert_others_served();
}
END_TEST

START_TEST(test_idle_keep_alive_connection_is_closed_after_client_timeout)
{
    char id[17], request[128];
    struct harness_conn c;
    struct harness_response rs;

    harness_random_hex(id, 16);
    size_t n = expand("GET /api/keep-{ID} HTTP/1.1\r\nHost: a.example\r\n\r\n", id, request,
                      sizeof(request));
    ck_assert_int_eq(harness_conn_open(&c, proxy.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, request, n, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_read_response(&c, false, RAW_WAIT_MS, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    harness_response_free(&rs);
    assert_closed_between(&c, now_ms(), CLIENT_TIMEOUT_MS - 100, CLIENT_TIMEOUT_MS + 2000,
                          "an idle keep-alive connection");
    harness_conn_close(&c);
    assert_others_served();
}
END_TEST

START_TEST(test_client_stalling_mid_headers_is_closed_and_logged_as_client_aborted)
{
    char id[17], request[128];
    struct harness_conn c;

    harness_random_hex(id, 16);
    size_t n = expand("GET /api/stall-{ID} HTTP/1.1\r\nHost: a.example\r\nX-Partial: ab", id,
                      request, sizeof(request));
    ck_assert_int_eq(harness_conn_open(&c, proxy.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, request, n, RAW_WAIT_MS), 0);
    assert_closed_between(&c, now_ms(), CLIENT_TIMEOUT_MS - 100, CLIENT_TIMEOUT_MS + 2000,
                          "a client that stopped mid-headers");
    harness_conn_close(&c);
    check_aborted_log("stalled mid-headers", "path", id, "client_aborted");
    assert_others_served();
    assert_never_reached_upstream(id);
}
END_TEST

/* A slowloris keeps its connection active with a byte every 100 ms, so the idle timeout never
 * fires: limits.client_header_timeout_ms bounds the whole head instead. tracehop answers 408
 * with the trace headers and the JSON error, closes, and logs it; a head that completes in time
 * is served. */
#define HEAD_TIMEOUT_MS 1500

/* A second daemon with limits.client_header_timeout_ms = HEAD_TIMEOUT_MS and an idle timeout
 * longer than that, so that only the head timeout can end a slow client. */
static void start_strict_daemon(struct harness_daemon *strict, int client_timeout_ms)
{
    char config[512];
    snprintf(config, sizeof(config),
             "{\"limits\": {\"client_header_timeout_ms\": %d, \"client_timeout_ms\": %d},\n"
             " \"routes\": [{\"upstream\": \"{ECHO}\"}]}\n",
             HEAD_TIMEOUT_MS, client_timeout_ms);
    ck_assert_int_eq(harness_daemon_start(strict, dir, config, echo.url, NULL), 0);
}

START_TEST(test_slowloris_head_is_cut_with_408_after_client_header_timeout)
{
    char id[17], request[256];
    struct harness_daemon strict;
    struct harness_conn slow, punctual;

    start_strict_daemon(&strict, 5000);
    harness_random_hex(id, 16);
    size_t n = expand("GET /api/slowloris-{ID} HTTP/1.1\r\nHost: a.example\r\nX-Slow: ", id,
                      request, sizeof(request));
    ck_assert_int_eq(harness_conn_open(&slow, strict.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_open(&punctual, strict.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&slow, request, n, RAW_WAIT_MS), 0);
    /* The punctual client also trickles, but completes its head before the limit. */
    static const char punctual_request[] = "GET /api/punctual HTTP/1.1\r\nHost: a.example\r\n\r\n";
    size_t punctual_sent = 0;
    int64_t start = now_ms();
    bool closed = false;
    for (int tick = 0; !closed && now_ms() - start < HEAD_TIMEOUT_MS + 3000; tick++) {
        if (harness_conn_send(&slow, "x", 1, 1000) != 0)
            closed = true; /* the server shut the connection down */
        if (punctual_sent < sizeof(punctual_request) - 1) {
            size_t chunk = sizeof(punctual_request) - 1 - punctual_sent;
            chunk = chunk > 3 ? 3 : chunk; /* all of it within ~1.8 s ... */
            if (now_ms() - start > 800)    /* ... but not before 0.8 s */
                chunk = sizeof(punctual_request) - 1 - punctual_sent;
            ck_assert_int_eq(
                harness_conn_send(&punctual, punctual_request + punctual_sent, chunk, 1000), 0);
            punctual_sent += chunk;
        }
        if (!closed && harness_conn_wait_closed(&slow, 0, NULL))
            closed = true;
        pause_until(start + (tick + 1) * 100);
    }
    struct harness_response rs;
    harness_conn_read_response(&punctual, false, RAW_WAIT_MS, &rs);
    ck_assert_msg(rs.status == 200, "the punctual request got %ld (%s)", rs.status, rs.error);
    harness_response_free(&rs);
    harness_conn_close(&punctual);
    harness_conn_close(&slow);

    /* What the slowloris got: found in the log (the 408's trace ids) and checked there. */
    json_t *line = NULL;
    {
        struct harness_field_match m = {"path", id};
        json_t *all = harness_jsonl_wait(strict.access_log, match_contains, &m, 1, 5000, NULL);
        line = json_incref(json_array_get(all, 0));
        json_decref(all);
    }
    ck_assert_msg(line, "no access-log line for the slowloris request");
    ck_assert_int_eq(harness_json_int(line, "status", 0), 408);
    ck_assert_str_eq(harness_json_str(line, "outcome"), "bad_request");
    double ms = json_real_value(json_object_get(line, "duration_ms"));
    ck_assert_msg(ms >= HEAD_TIMEOUT_MS - 50 && ms <= HEAD_TIMEOUT_MS + 1000,
                  "the head was cut after %.1f ms, limit %d ms", ms, HEAD_TIMEOUT_MS);
    ck_assert_msg(harness_json_int(line, "bytes_sent", 0) > 0, "no 408 body was sent");
    json_decref(line);
    assert_never_reached_upstream(id);
    ck_assert_int_eq(harness_daemon_stop(&strict), 0);
}
END_TEST

/* The 408 itself, on the wire: status, trace headers matching its body, JSON error. */
START_TEST(test_head_timeout_408_carries_trace_headers_and_json_error)
{
    struct harness_daemon strict;
    struct harness_conn c;
    struct harness_response rs;

    start_strict_daemon(&strict, 5000);
    static const char partial[] = "GET /api/never-finished HTTP/1.1\r\nHost: a.example\r\n";
    ck_assert_int_eq(harness_conn_open(&c, strict.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, partial, sizeof(partial) - 1, RAW_WAIT_MS), 0);
    /* Nothing more is sent: the idle timeout (5 s) is longer than the head timeout. */
    harness_conn_read_response(&c, false, HEAD_TIMEOUT_MS + 3000, &rs);
    ck_assert_msg(rs.status == 408, "got %ld (%s)", rs.status, rs.error);
    const char *tp = harness_header(&rs, "traceparent");
    const char *xid = harness_header(&rs, "X-Trace-ID");
    ck_assert_ptr_nonnull(tp);
    ck_assert_ptr_nonnull(xid);
    ck_assert_ptr_nonnull(rs.body);
    json_error_t jerr;
    json_t *body = json_loads(rs.body, 0, &jerr);
    ck_assert_msg(body, "408 body is not JSON: %s", jerr.text);
    ck_assert_str_eq(harness_json_str(body, "error"), "request_timeout");
    ck_assert_msg(strlen(tp) == 55 && strncmp(tp + 3, harness_json_str(body, "trace_id"), 32) == 0,
                  "traceparent %s does not carry the body's trace_id", tp);
    ck_assert_str_eq(harness_json_str(body, "x_trace_id"), xid);
    json_decref(body);
    harness_response_free(&rs);
    ck_assert_msg(harness_conn_wait_closed(&c, 2000, NULL), "the connection stayed open");
    harness_conn_close(&c);
    ck_assert_int_eq(harness_daemon_stop(&strict), 0);
}
END_TEST

/* Before its request line a connection has no request to time: the head timeout then runs
 * from the accept, so a trickled request line, or silence, is closed at the same bound. */
START_TEST(test_trickled_request_line_and_silence_are_closed_after_client_header_timeout)
{
    struct harness_daemon strict;
    struct harness_conn trickle, silent;

    start_strict_daemon(&strict, 8000);
    static const char line[] = "GET /api/a-very-long-path-sent-one-byte-at-a-time-for-ever-and-ever"
                               "-and-ever HTTP/1.1\r\n";
    int64_t start = now_ms();
    ck_assert_int_eq(harness_conn_open(&trickle, strict.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_open(&silent, strict.port, RAW_WAIT_MS), 0);
    size_t sent = 0;
    bool closed = false;
    for (int tick = 0; !closed && sent < sizeof(line) - 1; tick++) {
        if (harness_conn_send(&trickle, line + sent, 1, 1000) != 0 ||
            harness_conn_wait_closed(&trickle, 0, NULL))
            closed = true;
        else
            sent++;
        pause_until(start + (tick + 1) * 100);
    }
    int64_t after = now_ms() - start;
    ck_assert_msg(closed, "a trickled request line was still open after %lld ms (%zu bytes)",
                  (long long)after, sent);
    ck_assert_msg(after >= HEAD_TIMEOUT_MS - 100 && after <= HEAD_TIMEOUT_MS + 1500,
                  "trickled request line closed after %lld ms, limit %d", (long long)after,
                  HEAD_TIMEOUT_MS);
    ck_assert_msg(harness_conn_wait_closed(&silent, 1500, NULL),
                  "a silent connection was still open after %lld ms",
                  (long long)(now_ms() - start));
    harness_conn_close(&trickle);
    harness_conn_close(&silent);
    /* The daemon still serves. */
    struct harness_response rs;
    struct harness_request rq = {.target = "/api/after-the-trickle", .timeout_ms = 5000};
    harness_http(strict.port, &rq, &rs);
    ck_assert_msg(rs.status == 200, "after the trickle: %ld (%s)", rs.status, rs.error);
    harness_response_free(&rs);
    ck_assert_int_eq(harness_daemon_stop(&strict), 0);
}
END_TEST

START_TEST(test_slow_reading_client_is_served_in_bounded_memory)
{
    char id[17], request[160];
    struct harness_conn c;
    char *chunk = malloc(64 * 1024);
    size_t total = 0;
    long peak = 0;

    ck_assert_ptr_nonnull(chunk);
    /* Warm up (buffers and pools), then the baseline. */
    for (int i = 0; i < 4; i++) {
        struct harness_response rs;
        struct harness_request rq = {.target = "/download?bytes=1000000", .discard_body = true};
        harness_http(proxy.port, &rq, &rs);
        ck_assert_int_eq(rs.status, 200);
        harness_response_free(&rs);
    }
    long baseline = harness_rss_kib(proxy.proc.pid);
    ck_assert_int_gt(baseline, 0);

    harness_random_hex(id, 16);
    size_t n = (size_t)snprintf(request, sizeof(request),
                                "GET /download?bytes=%d&id=%s HTTP/1.1\r\nHost: a.example\r\n\r\n",
                                DOWNLOAD_BYTES, id);
    ck_assert_int_eq(harness_conn_open(&c, proxy.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, request, n, RAW_WAIT_MS), 0);
    int64_t start = now_ms();
    for (int tick = 0; tick < 30; tick++) { /* 64 KiB every 100 ms for 3 s */
        struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
        ck_assert_msg(poll(&pfd, 1, 2000) == 1, "the download stalled at %zu bytes", total);
        ssize_t r = recv(c.fd, chunk, 64 * 1024, 0);
        ck_assert_msg(r > 0, "the download ended after %zu bytes: %s", total,
                      r == 0 ? "closed" : strerror(errno));
        total += (size_t)r;
        long rss = harness_rss_kib(proxy.proc.pid);
        if (rss > peak)
            peak = rss;
        if (tick % 3 == 0)
            assert_others_served();
        pause_until(start + (tick + 1) * 100);
    }
    fprintf(stderr, "slow reader: %zu bytes read; daemon VmRSS baseline %ld KiB, peak %ld KiB\n",
            total, baseline, peak);
    ck_assert_msg(peak - baseline < 16 * 1024,
                  "the daemon's RSS grew by %ld KiB while a client read slowly", peak - baseline);
    harness_conn_close(&c);
    free(chunk);

    json_t *log = log_line_with("query", id, HARNESS_WAIT_MS);
    ck_assert_msg(log != NULL, "no access-log line for the slow download");
    ck_assert_str_eq(harness_json_str(log, "outcome"), "client_aborted");
    ck_assert_msg(harness_json_int(log, "bytes_sent", -1) < DOWNLOAD_BYTES / 2,
                  "bytes_sent %lld: the daemon read far ahead of the client",
                  (long long)harness_json_int(log, "bytes_sent", -1));
    json_decref(log);
    assert_others_served();
}
END_TEST

/* --- clients that hang up at every phase ----------------------------------------------------- */

/* The target of a bad-upstream /hang request (as the upstream sees it) and the client's one. */
static void hang_targets(const char *phase, char id[17], char upstream[96], char client[128])
{
    harness_random_hex(id, 16);
    snprintf(upstream, 96, "/hang?id=%s-%s", phase, id);
    snprintf(client, 128, "/bad%s", upstream);
}

/* bad-upstream saw its connection for `upstream_target` closed by tracehop, soon enough. */
static void assert_upstream_cancelled(const char *what, const char *upstream_target)
{
    json_t *closed = harness_bad_event(&bad, "closed", upstream_target, BAD_TIMEOUT_MS + 2000);
    ck_assert_msg(closed != NULL, "%s: the upstream connection was never closed", what);
    json_int_t ms = harness_json_int(closed, "ms", -1);
    ck_assert_str_eq(harness_json_str(closed, "by"), "peer");
    ck_assert_msg(ms >= 0 && ms < CANCEL_BOUND_MS,
                  "%s: the upstream transfer ran on for %lld ms after its request was sent "
                  "(route timeout %d ms): the client's hang-up did not cancel it",
                  what, (long long)ms, BAD_TIMEOUT_MS);
    json_decref(closed);
}

START_TEST(test_client_gone_after_the_request_line_is_logged_and_never_forwarded)
{
    char id[17], upstream[96], client[128], request[256];
    struct harness_conn c;

    hang_targets("line", id, upstream, client);
    size_t n = (size_t)snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\n", client);
    ck_assert_int_eq(harness_conn_open(&c, proxy.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, request, n, RAW_WAIT_MS), 0);
    /* Pacing, not synchronisation: the hang-up then usually arrives as a separate read (the
     * test holds either way; nothing observable tells when the daemon has read the line). */
    pause_until(now_ms() + 100);
    harness_conn_close(&c);
    check_aborted_log("gone after the request line", "query", id, "client_aborted");
    json_t *head = harness_bad_event(&bad, "head", upstream, 0);
    ck_assert_msg(head == NULL, "a request without headers reached the upstream");
    assert_others_served();
}
END_TEST

START_TEST(test_client_gone_mid_headers_is_logged_and_never_forwarded)
{
    char id[17], upstream[96], client[128], request[256];
    struct harness_conn c;

    hang_targets("headers", id, upstream, client);
    size_t n = (size_t)snprintf(request, sizeof(request),
                                "GET %s HTTP/1.1\r\nHost: a.example\r\nX-Half: of a hea", client);
    ck_assert_int_eq(harness_conn_open(&c, proxy.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, request, n, RAW_WAIT_MS), 0);
    pause_until(now_ms() + 100); /* pacing, as above */
    harness_conn_close(&c);
    check_aborted_log("gone mid-headers", "query", id, "client_aborted");
    json_t *head = harness_bad_event(&bad, "head", upstream, 0);
    ck_assert_msg(head == NULL, "a request with half its headers reached the upstream");
    assert_others_served();
}
END_TEST

/* POST with Content-Length 100000: hang up once the upstream has the head, after `body` bytes. */
static void gone_during_upload(const char *phase, size_t body)
{
    char id[17], upstream[96], client[128], request[256];
    struct harness_conn c;
    char *payload = calloc(1, body + 1);

    ck_assert_ptr_nonnull(payload);
    memset(payload, 'u', body);
    hang_targets(phase, id, upstream, client);
    size_t n = (size_t)snprintf(request, sizeof(request),
                                "POST %s HTTP/1.1\r\nHost: a.example\r\nContent-Length: 100000\r\n"
                                "Content-Type: application/octet-stream\r\n\r\n",
                                client);
    ck_assert_int_eq(harness_conn_open(&c, proxy.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, request, n, RAW_WAIT_MS), 0);
    if (body)
        ck_assert_int_eq(harness_conn_send(&c, payload, body, RAW_WAIT_MS), 0);
    json_t *head = harness_bad_event(&bad, "head", upstream, HARNESS_WAIT_MS);
    ck_assert_msg(head != NULL, "%s: the request never reached the upstream", phase);
    json_decref(head);
    harness_conn_close(&c);
    check_aborted_log(phase, "query", id, "client_aborted");
    assert_upstream_cancelled(phase, upstream);
    free(payload);
    assert_others_served();
}

START_TEST(test_client_gone_after_the_headers_of_a_post_cancels_the_upstream)
{
    gone_during_upload("after-headers", 0);
}
END_TEST

START_TEST(test_client_gone_mid_body_cancels_the_upstream)
{
    gone_during_upload("mid-body", 30000);
}
END_TEST

START_TEST(test_client_gone_while_waiting_for_the_upstream_cancels_it)
{
    char id[17], upstream[96], client[128], request[256];
    struct harness_conn c;

    hang_targets("waiting", id, upstream, client);
    size_t n = (size_t)snprintf(request, sizeof(request),
                                "GET %s HTTP/1.1\r\nHost: a.example\r\n\r\n", client);
    ck_assert_int_eq(harness_conn_open(&c, proxy.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, request, n, RAW_WAIT_MS), 0);
    json_t *got = harness_bad_event(&bad, "request", upstream, HARNESS_WAIT_MS);
    ck_assert_msg(got != NULL, "the request never reached the upstream");
    json_decref(got);
    harness_conn_close(&c); /* the upstream has not answered, and never will */
    assert_upstream_cancelled("gone while waiting for the upstream", upstream);
    check_aborted_log("gone while waiting for the upstream", "query", id, "client_aborted");
    assert_others_served();
}
END_TEST

START_TEST(test_client_gone_while_echo_delays_is_client_aborted_before_the_upstream_answers)
{
    char id[17], target[96], request[256];
    struct harness_conn c;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/delay/2000?id=%s", id);
    size_t n = (size_t)snprintf(request, sizeof(request),
                                "GET %s HTTP/1.1\r\nHost: a.example\r\n\r\n", target);
    ck_assert_int_eq(harness_conn_open(&c, proxy.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, request, n, RAW_WAIT_MS), 0);
    /* The echo upstream records a request before it starts the delay. */
    struct harness_field_match m = {"target", target};
    json_t *rec = harness_jsonl_wait_one(echo.record_path, harness_match_field, &m);
    ck_assert_msg(rec != NULL, "the delayed request never reached the upstream");
    json_decref(rec);
    harness_conn_close(&c);

    json_t *log = log_line_with("query", id, HARNESS_WAIT_MS);
    ck_assert_msg(log != NULL, "no access-log line for the abandoned /delay/2000");
    double upstream_ms = json_number_value(json_object_get(log, "upstream_duration_ms"));
    ck_assert_msg(strcmp(harness_json_str(log, "outcome"), "client_aborted") == 0,
                  "client gone during /delay/2000: logged outcome %s, status %lld, "
                  "upstream_duration_ms %.0f (the upstream was not cancelled)",
                  harness_json_str(log, "outcome"), (long long)harness_json_int(log, "status", 0),
                  upstream_ms);
    ck_assert_msg(upstream_ms < CANCEL_BOUND_MS,
                  "upstream_duration_ms %.0f: the transfer ran on after the client left",
                  upstream_ms);
    json_decref(log);
    assert_others_served();
}
END_TEST

START_TEST(test_client_gone_mid_response_is_logged_as_client_aborted)
{
    char id[17], request[160];
    struct harness_conn c;

    harness_random_hex(id, 16);
    size_t n = (size_t)snprintf(request, sizeof(request),
                                "GET /download?bytes=%d&id=%s HTTP/1.1\r\nHost: a.example\r\n\r\n",
                                DOWNLOAD_BYTES, id);
    ck_assert_int_eq(harness_conn_open(&c, proxy.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, request, n, RAW_WAIT_MS), 0);
    char *sink = malloc(64 * 1024);
    size_t got = 0;
    ck_assert_ptr_nonnull(sink);
    while (got < 256 * 1024) { /* a little of the body, then hang up */
        struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
        ck_assert_msg(poll(&pfd, 1, RAW_WAIT_MS) == 1, "the download stalled at %zu bytes", got);
        ssize_t r = recv(c.fd, sink, 64 * 1024, 0);
        ck_assert_msg(r > 0, "the download ended after %zu bytes", got);
        got += (size_t)r;
    }
    free(sink);
    harness_conn_close(&c);
    json_t *log = log_line_with("query", id, HARNESS_WAIT_MS);
    ck_assert_msg(log != NULL, "no access-log line for the abandoned download");
    ck_assert_str_eq(harness_json_str(log, "outcome"), "client_aborted");
    ck_assert_int_eq(harness_json_int(log, "status", 0), 200);
    ck_assert_int_lt(harness_json_int(log, "bytes_sent", -1), DOWNLOAD_BYTES);
    json_decref(log);
    assert_others_served();
}
END_TEST

static Suite *hostile_client_suite(void)
{
    Suite *s = suite_create("hostile-client");
    TCase *tc = tcase_create("hostile_clients");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_loop_test(tc, test_refused_request_gets_its_status_a_log_line_and_a_closed_connection,
                        0, (int)(sizeof(refused) / sizeof(refused[0])));
    tcase_add_loop_test(tc, test_odd_but_valid_framing_is_read_exactly_once, 0,
                        (int)(sizeof(accepted) / sizeof(accepted[0])));
    tcase_add_test(tc, test_pipelined_requests_get_ordered_responses);
    tcase_add_test(tc, test_200_headers_are_forwarded_in_order);
    tcase_add_test(tc, test_long_header_name_within_max_header_bytes_is_forwarded);
    tcase_add_test(tc, test_long_header_name_over_max_header_bytes_is_431);
    tcase_add_test(tc, test_many_small_headers_over_max_header_bytes_get_mhd_431_and_a_log_line);
    tcase_add_test(tc, test_headers_beyond_mhd_buffer_get_mhd_431_and_a_log_line);
    tcase_add_test(tc, test_slowloris_does_not_delay_other_clients);
    tcase_add_test(tc, test_idle_connection_is_closed_after_client_timeout);
    tcase_add_test(tc, test_idle_keep_alive_connection_is_closed_after_client_timeout);
    tcase_add_test(tc, test_client_stalling_mid_headers_is_closed_and_logged_as_client_aborted);
    tcase_add_test(tc, test_slowloris_head_is_cut_with_408_after_client_header_timeout);
    tcase_add_test(tc, test_head_timeout_408_carries_trace_headers_and_json_error);
    tcase_add_test(tc,
                   test_trickled_request_line_and_silence_are_closed_after_client_header_timeout);
    tcase_add_test(tc, test_slow_reading_client_is_served_in_bounded_memory);
    tcase_add_test(tc, test_client_gone_after_the_request_line_is_logged_and_never_forwarded);
    tcase_add_test(tc, test_client_gone_mid_headers_is_logged_and_never_forwarded);
    tcase_add_test(tc, test_client_gone_after_the_headers_of_a_post_cancels_the_upstream);
    tcase_add_test(tc, test_client_gone_mid_body_cancels_the_upstream);
    tcase_add_test(tc, test_client_gone_while_waiting_for_the_upstream_cancels_it);
    tcase_add_test(
        tc, test_client_gone_while_echo_delays_is_client_aborted_before_the_upstream_answers);
    tcase_add_test(tc, test_client_gone_mid_response_is_logged_as_client_aborted);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(hostile_client_suite());
}
