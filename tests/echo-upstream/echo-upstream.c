/* SPDX-License-Identifier: MIT */
/*
 * echo-upstream: a small HTTP/1.1 server that shows what a proxy sent it. It is the upstream of
 * tracehop's integration tests and of the README quick start.
 *
 *   echo-upstream --listen 127.0.0.1:PORT | --unix PATH  [--record FILE] [--next URL]
 *
 * The first line on stdout is "listening on 127.0.0.1:<port>" (or "listening on unix:<path>"),
 * flushed at once, so a test that starts it on port 0 learns the port by reading one line.
 *
 * What it saw. Every request is described by one JSON object:
 *   {"method": "...", "target": "<raw request target, byte for byte>",
 *    "headers": [["Name", "value"], ...]   (arrival order, duplicates kept, case as sent),
 *    "body_bytes": N, "body_fnv1a64": "<16 hex digits>", "body": "..." (only if N <= 4096)}
 * With --record FILE the object is appended to FILE as one line as soon as the request has been
 * read in full, before the endpoint runs (so a /delay request shows up while it is in flight).
 * Lines are written whole with one write(2) under a lock: never torn, never interleaved.
 * Strings that are not valid UTF-8 are given byte for byte as U+0000..U+00FF (Latin-1).
 * The raw target comes from MHD_OPTION_URI_LOG_CALLBACK: the access handler's `url` argument is
 * percent-decoded and cut at '?', which is useless for checking what a proxy forwarded.
 *
 * Endpoints, by path (the query is ignored unless stated):
 *   /status/NNN          answers status NNN with the echo body (3xx add Location: /status/200;
 *                        204 and 304 have no body)
 *   /delay/MS            waits MS milliseconds (at most 600000), then echoes
 *   /download?bytes=N    N bytes of the pattern byte[i] = i % 251, with Content-Length
 *   /download-chunked?bytes=N   the same without a length (chunked)
 *   /truncate?bytes=N&after=M   promises N pattern bytes (Content-Length) but breaks the
 *                        connection after M: an upstream failing mid-response
 *   /truncate-chunked?after=M   the same, chunked: the terminating chunk never comes
 *   /hang-up             closes the connection without any response
 *   /upload              reads the body and answers {"bytes": N, "hash": "<fnv1a64>"}
 *   /small               100 bytes of text
 *   /gzip                a fixed gzip body with Content-Encoding: gzip (never decoded here)
 *   /headers-out?NAME=VALUE&...  echoes, adding each pair (percent-decoded) as a response
 *                        header, in order; e.g. ?Connection=close%2C%20X-Drop&X-Drop=1
 *   /chain[?next=URL][&legacy=1][&work=MS]  an app in a chain of services: it works MS
 *                        milliseconds (a wait, at most 600000), then calls URL (percent-
 *                        encoded; default: --next, none: the chain ends here) with GET through
 *                        libcurl, passing on the traceparent, tracestate and X-Trace-ID headers
 *                        it received, as an app that propagates trace context does; with
 *                        legacy=1 it passes on only X-Trace-ID, as a legacy app that never
 *                        heard of traceparent. It answers 200 (502 if the call failed) with
 *                        {"received": <the echo JSON>, "next": {"url", "status", "body"}};
 *                        the call has a 10 s timeout.
 *   anything else        the echo: the JSON above as application/json, plus two Set-Cookie
 *                        headers (a=1, then b=2) and X-Upstream: echo
 *
 * Design: libmicrohttpd with one thread per connection, so /delay and /chain can simply block
 * their thread; bodies are hashed as they stream in, never buffered beyond the first 4096 bytes.
 * SIGTERM or SIGINT wakes every pending /delay (and /chain's work) and stops the server; exit
 * status 0.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#define BODY_KEEP_MAX  4096
#define DELAY_MAX_MS   600000
#define DOWNLOAD_BLOCK (64 * 1024)
#define PATTERN_PERIOD 251
#define SMALL_BYTES    100
#define CHAIN_BODY_MAX (64 * 1024)
#define CHAIN_TIMEOUT  10000L

/* "hello, gzip\n", gzip -n -9 */
static const unsigned char gzip_body[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0xd7,
    0x51, 0x48, 0xaf, 0xca, 0x2c, 0xe0, 0x02, 0x00, 0x86, 0x1f, 0x82, 0xa4, 0x0c, 0x00, 0x00, 0x00,
};

/* --- process-wide state ---------------------------------------------------------------- */

static int record_fd = -1;
static pthread_mutex_t record_lock = PTHREAD_MUTEX_INITIALIZER;

/* Pending /delay requests wait on this; SIGTERM sets `stopping` and wakes them all. */
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond = PTHREAD_COND_INITIALIZER;
static bool stopping;

/* --next: where /chain calls when the request does not say. */
static const char *chain_next;

/* --- one request --------------------------------------------------------------------- */

struct echo_request {
    char *target; /* raw request target, as received */
    bool started; /* first access-handler call done */
    json_t *headers;
    uint64_t body_bytes;
    uint64_t body_hash;
    char body_head[BODY_KEEP_MAX];
};

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

static uint64_t fnv1a64_update(uint64_t hash, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        hash ^= p[i];
        hash *= FNV_PRIME;
    }
    return hash;
}

/* A JSON string for arbitrary bytes: as is when valid UTF-8, else Latin-1 (see the top). */
static json_t *bytes_to_json(const char *p, size_t len)
{
    json_t *s = json_stringn(p, len);
    if (s)
        return s;
    char *latin1 = malloc(len * 2 + 1);
    size_t n = 0;
    if (!latin1)
        return json_null();
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x80) {
            latin1[n++] = (char)c;
        } else {
            latin1[n++] = (char)(0xc0 | c >> 6);
            latin1[n++] = (char)(0x80 | (c & 0x3f));
        }
    }
    s = json_stringn(latin1, n);
    free(latin1);
    return s ? s : json_null();
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct echo_request *req = calloc(1, sizeof(*req));

    (void)cls;
    (void)conn;
    if (!req)
        return NULL;
    /* uri points into MHD's read buffer, which MHD rewrites right after this call. */
    req->target = strdup(uri);
    req->headers = json_array();
    req->body_hash = FNV_OFFSET;
    if (!req->target || !req->headers) {
        free(req->target);
        json_decref(req->headers);
        free(req);
        return NULL;
    }
    return req;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct echo_request *req = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (!req)
        return;
    *con_cls = NULL;
    free(req->target);
    json_decref(req->headers);
    free(req);
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                      size_t name_len, const char *value, size_t value_len)
{
    json_t *headers = cls;

    (void)kind;
    json_array_append_new(headers, json_pack("[o, o]", bytes_to_json(name, name_len),
                                             bytes_to_json(value ? value : "", value_len)));
    return MHD_YES;
}

static void format_hash(char out[17], uint64_t hash)
{
    snprintf(out, 17, "%016" PRIx64, hash);
}

/* The description of the request (see the top); the caller owns the result. */
static json_t *describe(const struct echo_request *req, const char *method)
{
    char hash[17];

    format_hash(hash, req->body_hash);
    json_t *o = json_pack("{s:s, s:o, s:O, s:I, s:s}", "method", method, "target",
                          bytes_to_json(req->target, strlen(req->target)), "headers", req->headers,
                          "body_bytes", (json_int_t)req->body_bytes, "body_fnv1a64", hash);
    if (o && req->body_bytes <= BODY_KEEP_MAX)
        json_object_set_new(o, "body", bytes_to_json(req->body_head, req->body_bytes));
    return o;
}

static void record(json_t *description)
{
    if (record_fd < 0 || !description)
        return;
    char *text = json_dumps(description, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        return;
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the NUL: written with an explicit length */
    pthread_mutex_lock(&record_lock);
    for (size_t done = 0; done < len + 1;) {
        ssize_t w = write(record_fd, text + done, len + 1 - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            perror("echo-upstream: record");
            break;
        }
        done += (size_t)w;
    }
    pthread_mutex_unlock(&record_lock);
    free(text);
}

/* --- helpers for endpoints ---------------------------------------------------------------- */

static enum MHD_Result queue_buffer(struct MHD_Connection *conn, unsigned status,
                                    const char *content_type, const void *body, size_t len,
                                    const char *const *extra_headers)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    if (content_type)
        MHD_add_response_header(resp, "Content-Type", content_type);
    for (size_t i = 0; extra_headers && extra_headers[i]; i += 2)
        MHD_add_response_header(resp, extra_headers[i], extra_headers[i + 1]);
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result queue_json(struct MHD_Connection *conn, unsigned status, json_t *body,
                                  const char *const *extra_headers)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!text)
        return MHD_NO;
    enum MHD_Result rc =
        queue_buffer(conn, status, "application/json", text, strlen(text), extra_headers);
    free(text);
    return rc;
}

/* The value of `name` in a raw query ("a=1&bytes=20"), as an unsigned number; def if absent. */
static uint64_t query_number(const char *query, const char *name, uint64_t def)
{
    size_t name_len = strlen(name);
    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, name_len) == 0 && p[name_len] == '=')
            return strtoull(p + name_len + 1, NULL, 10);
    }
    return def;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode p[0..len) into out (at least len + 1 bytes); '+' stays '+'. */
static void percent_decode(const char *p, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '%' && i + 2 < len && hex_value(p[i + 1]) >= 0 && hex_value(p[i + 2]) >= 0) {
            out[n++] = (char)(hex_value(p[i + 1]) << 4 | hex_value(p[i + 2]));
            i += 2;
        } else {
            out[n++] = p[i];
        }
    }
    out[n] = '\0';
}

/* --- endpoints ---------------------------------------------------------------------------- */

static enum MHD_Result answer_echo(struct MHD_Connection *conn, unsigned status, json_t *desc)
{
    static const char *const echo_headers[] = {
        "Set-Cookie", "a=1", "Set-Cookie", "b=2", "X-Upstream", "echo", NULL,
    };
    return queue_json(conn, status, desc, echo_headers);
}

static enum MHD_Result answer_status(struct MHD_Connection *conn, const char *code, json_t *desc)
{
    char *end;
    unsigned long status = strtoul(code, &end, 10);
    static const char *const redirect[] = {"Location", "/status/200", NULL};

    if (end == code || (*end && *end != '?' && *end != '/') || status < 200 || status > 599)
        return queue_buffer(conn, 400, "text/plain", "bad status\n", 11, NULL);
    if (status == 204 || status == 304)
        return queue_buffer(conn, (unsigned)status, NULL, "", 0, NULL);
    if (status >= 300 && status < 400)
        return queue_json(conn, (unsigned)status, desc, redirect);
    return queue_json(conn, (unsigned)status, desc, NULL);
}

/* Wait ms milliseconds (at most DELAY_MAX_MS), or until SIGTERM stops the server. */
static void wait_ms(unsigned long ms)
{
    struct timespec deadline;

    if (ms > DELAY_MAX_MS)
        ms = DELAY_MAX_MS;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(ms / 1000);
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&stop_lock);
    while (!stopping && pthread_cond_timedwait(&stop_cond, &stop_lock, &deadline) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&stop_lock);
}

static enum MHD_Result answer_delay(struct MHD_Connection *conn, const char *ms_text, json_t *desc)
{
    wait_ms(strtoul(ms_text, NULL, 10));
    return answer_echo(conn, 200, desc);
}

/* Download state: how many bytes in total, and after how many to break the connection
 * (UINT64_MAX: never); MHD hands back the position. */
struct download {
    uint64_t total;
    uint64_t break_after;
};

static ssize_t read_download(void *cls, uint64_t pos, char *buf, size_t max)
{
    const struct download *d = cls;

    if (pos >= d->break_after)
        return MHD_CONTENT_READER_END_WITH_ERROR; /* MHD closes the connection mid-body */
    if (pos >= d->total)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = max;
    if ((uint64_t)n > d->total - pos)
        n = (size_t)(d->total - pos);
    if ((uint64_t)n > d->break_after - pos)
        n = (size_t)(d->break_after - pos);
    unsigned value = (unsigned)(pos % PATTERN_PERIOD);
    for (size_t i = 0; i < n; i++) {
        buf[i] = (char)value;
        if (++value == PATTERN_PERIOD)
            value = 0;
    }
    return (ssize_t)n;
}

static enum MHD_Result answer_download(struct MHD_Connection *conn, const char *query, bool chunked,
                                       bool truncate)
{
    struct download *d = malloc(sizeof(*d));
    if (!d)
        return MHD_NO;
    d->total = query_number(query, "bytes", truncate && chunked ? UINT64_MAX : 0);
    d->break_after = truncate ? query_number(query, "after", 0) : UINT64_MAX;
    struct MHD_Response *resp = MHD_create_response_from_callback(
        chunked ? MHD_SIZE_UNKNOWN : d->total, DOWNLOAD_BLOCK, read_download, d, free);
    if (!resp) {
        free(d);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    enum MHD_Result rc = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result answer_upload(struct MHD_Connection *conn, const struct echo_request *req)
{
    char hash[17];

    format_hash(hash, req->body_hash);
    json_t *body = json_pack("{s:I, s:s}", "bytes", (json_int_t)req->body_bytes, "hash", hash);
    enum MHD_Result rc = queue_json(conn, 200, body, NULL);
    json_decref(body);
    return rc;
}

static enum MHD_Result answer_small(struct MHD_Connection *conn)
{
    char body[SMALL_BYTES];
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + i % 26);
    body[sizeof(body) - 1] = '\n';
    return queue_buffer(conn, 200, "text/plain", body, sizeof(body), NULL);
}

static enum MHD_Result answer_gzip(struct MHD_Connection *conn)
{
    static const char *const encoding[] = {"Content-Encoding", "gzip", NULL};
    return queue_buffer(conn, 200, "text/plain", gzip_body, sizeof(gzip_body), encoding);
}

static enum MHD_Result answer_headers_out(struct MHD_Connection *conn, const char *query,
                                          json_t *desc)
{
    char *text = json_dumps(desc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    const char *p = query;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq && eq > p) {
            char *name = malloc(len + 1), *value = malloc(len + 1);
            if (name && value) {
                percent_decode(p, (size_t)(eq - p), name);
                percent_decode(eq + 1, len - (size_t)(eq - p) - 1, value);
                if (MHD_add_response_header(resp, name, value) != MHD_YES)
                    fprintf(stderr, "echo-upstream: libmicrohttpd refused header '%s: %s'\n", name,
                            value);
            }
            free(name);
            free(value);
        }
        p = amp ? amp + 1 : NULL;
    }
    enum MHD_Result rc = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* The raw value of `name` in a query ("a=1&next=x"), copied into out; false if absent. */
static bool query_value(const char *query, const char *name, char *out, size_t size)
{
    size_t name_len = strlen(name);
    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, name_len) == 0 && p[name_len] == '=') {
            const char *v = p + name_len + 1;
            size_t len = strcspn(v, "&");
            if (len >= size)
                return false;
            memcpy(out, v, len);
            out[len] = '\0';
            return true;
        }
    }
    return false;
}

struct chain_body {
    char *data;
    size_t len;
};

static size_t on_chain_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct chain_body *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > CHAIN_BODY_MAX)
        return 0; /* too big for a chain answer: fail the transfer */
    char *bigger = realloc(b->data, b->len + n + 1);
    if (!bigger)
        return 0;
    b->data = bigger;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Add "Name: value" for a request header we received, if it is there. */
static struct curl_slist *pass_on(struct MHD_Connection *conn, struct curl_slist *list,
                                  const char *name)
{
    const char *value = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    char line[1024];

    if (!value || (size_t)snprintf(line, sizeof(line), "%s: %s", name, value) >= sizeof(line))
        return list;
    return curl_slist_append(list, line);
}

static enum MHD_Result answer_chain(struct MHD_Connection *conn, const char *query, json_t *desc)
{
    char raw[2048], url[2048], legacy[8], work[16];
    json_t *next = json_null();
    unsigned status = 200;

    if (query_value(query, "next", raw, sizeof(raw)))
        percent_decode(raw, strlen(raw), url);
    else if (chain_next)
        snprintf(url, sizeof(url), "%s", chain_next);
    else
        url[0] = '\0';
    bool is_legacy =
        query_value(query, "legacy", legacy, sizeof(legacy)) && strcmp(legacy, "1") == 0;

    if (query_value(query, "work", work, sizeof(work)))
        wait_ms(strtoul(work, NULL, 10));

    if (url[0]) {
        struct chain_body body = {0};
        struct curl_slist *headers = NULL;
        char error[CURL_ERROR_SIZE] = "";
        long code = 0;
        CURL *easy = curl_easy_init();
        if (!easy)
            return MHD_NO;
        if (!is_legacy) {
            headers = pass_on(conn, headers, "traceparent");
            headers = pass_on(conn, headers, "tracestate");
        }
        headers = pass_on(conn, headers, "X-Trace-ID");
        curl_easy_setopt(easy, CURLOPT_URL, url);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, CHAIN_TIMEOUT);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_chain_body);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error);
        CURLcode rc = curl_easy_perform(easy);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
        json_t *parsed = body.data ? json_loadb(body.data, body.len, 0, NULL) : NULL;
        if (rc != CURLE_OK || code < 200 || code > 299)
            status = 502;
        next = json_pack("{s:s, s:I, s:o, s:s}", "url", url, "status", (json_int_t)code, "body",
                         parsed ? parsed : json_null(), "error",
                         rc == CURLE_OK ? "" : (error[0] ? error : curl_easy_strerror(rc)));
        curl_slist_free_all(headers);
        curl_easy_cleanup(easy);
        free(body.data);
    }
    json_t *answer = json_pack("{s:O, s:o}", "received", desc, "next", next ? next : json_null());
    enum MHD_Result result = queue_json(conn, status, answer, NULL);
    json_decref(answer);
    return result;
}

/* `path` is the target up to '?'; segment-aware: "/upload" matches "/upload" and "/upload/x". */
static bool path_is(const char *path, size_t path_len, const char *name)
{
    size_t n = strlen(name);
    return path_len >= n && memcmp(path, name, n) == 0 && (path_len == n || path[n] == '/');
}

static enum MHD_Result dispatch(struct MHD_Connection *conn, struct echo_request *req, json_t *desc)
{
    const char *target = req->target;
    const char *q = strchr(target, '?');
    size_t path_len = q ? (size_t)(q - target) : strlen(target);
    const char *query = q ? q + 1 : "";

    if (path_len > 8 && strncmp(target, "/status/", 8) == 0)
        return answer_status(conn, target + 8, desc);
    if (path_len > 7 && strncmp(target, "/delay/", 7) == 0)
        return answer_delay(conn, target + 7, desc);
    if (path_is(target, path_len, "/download"))
        return answer_download(conn, query, false, false);
    if (path_is(target, path_len, "/download-chunked"))
        return answer_download(conn, query, true, false);
    if (path_is(target, path_len, "/truncate"))
        return answer_download(conn, query, false, true);
    if (path_is(target, path_len, "/truncate-chunked"))
        return answer_download(conn, query, true, true);
    if (path_is(target, path_len, "/hang-up"))
        return MHD_NO; /* MHD closes the connection without a response */
    if (path_is(target, path_len, "/upload"))
        return answer_upload(conn, req);
    if (path_is(target, path_len, "/small"))
        return answer_small(conn);
    if (path_is(target, path_len, "/gzip"))
        return answer_gzip(conn);
    if (path_is(target, path_len, "/headers-out"))
        return answer_headers_out(conn, query, desc);
    if (path_is(target, path_len, "/chain"))
        return answer_chain(conn, query, desc);
    return answer_echo(conn, 200, desc);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct echo_request *req = *con_cls;

    (void)cls;
    (void)url;
    (void)version;
    if (!req)
        return MHD_NO;
    if (!req->started) {
        req->started = true;
        MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_header, req->headers);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        if (req->body_bytes < BODY_KEEP_MAX) {
            size_t keep = BODY_KEEP_MAX - (size_t)req->body_bytes;
            memcpy(req->body_head + req->body_bytes, upload_data, n < keep ? n : keep);
        }
        req->body_hash = fnv1a64_update(req->body_hash, upload_data, n);
        req->body_bytes += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    json_t *desc = describe(req, method);
    if (!desc)
        return MHD_NO;
    record(desc);
    enum MHD_Result rc = dispatch(conn, req, desc);
    json_decref(desc);
    return rc;
}

/* --- listening sockets ------------------------------------------------------------------- */

static int listen_tcp(const char *text, char *shown, size_t shown_size)
{
    char host[256];
    const char *port;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *res = NULL;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text) > sizeof(host))
            return -EINVAL;
        snprintf(host, sizeof(host), "%.*s", (int)(close - text - 1), text + 1);
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof(host))
            return -EINVAL;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
        port = colon + 1;
    }
    if (getaddrinfo(host[0] ? host : "0.0.0.0", port, &hints, &res) != 0)
        return -EINVAL;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -err;
    }
    freeaddrinfo(res);

    struct sockaddr_storage bound;
    socklen_t len = sizeof(bound);
    char addr[INET6_ADDRSTRLEN];
    getsockname(fd, (struct sockaddr *)&bound, &len);
    if (bound.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&bound;
        inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
        snprintf(shown, shown_size, "[%s]:%u", addr, ntohs(s6->sin6_port));
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&bound;
        inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
        snprintf(shown, shown_size, "%s:%u", addr, ntohs(s4->sin_port));
    }
    return fd;
}

static int listen_unix(const char *path, char *shown, size_t shown_size)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    if (strlen(path) >= sizeof(addr.sun_path))
        return -ENAMETOOLONG;
    strcpy(addr.sun_path, path);
    unlink(path); /* a stale socket from an earlier run */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1024) < 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return -err;
    }
    snprintf(shown, shown_size, "unix:%s", path);
    return fd;
}

static void usage(FILE *out)
{
    fputs("Usage: echo-upstream (--listen HOST:PORT | --unix PATH) [--record FILE]\n"
          "                     [--next URL]\n"
          "\n"
          "An HTTP/1.1 server that answers with what it received (method, raw target,\n"
          "headers in order, body size and FNV-1a hash) as JSON. See the top of\n"
          "tests/echo-upstream/echo-upstream.c for the endpoints.\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"listen", required_argument, NULL, 'l'}, {"unix", required_argument, NULL, 'u'},
        {"record", required_argument, NULL, 'r'}, {"next", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},         {0},
    };
    const char *listen_text = NULL, *unix_path = NULL, *record_path = NULL;
    char shown[300];
    int opt, fd;

    while ((opt = getopt_long(argc, argv, "l:u:r:n:h", options, NULL)) != -1) {
        switch (opt) {
        case 'l':
            listen_text = optarg;
            break;
        case 'u':
            unix_path = optarg;
            break;
        case 'r':
            record_path = optarg;
            break;
        case 'n':
            chain_next = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || !!listen_text == !!unix_path) {
        usage(stderr);
        return 2;
    }
    if (record_path) {
        record_fd = open(record_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (record_fd < 0) {
            fprintf(stderr, "echo-upstream: %s: %s\n", record_path, strerror(errno));
            return 1;
        }
    }
    fd = listen_text ? listen_tcp(listen_text, shown, sizeof(shown))
                     : listen_unix(unix_path, shown, sizeof(shown));
    if (fd < 0) {
        fprintf(stderr, "echo-upstream: cannot listen on %s: %s\n",
                listen_text ? listen_text : unix_path, strerror(-fd));
        return 1;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: /chain calls through curl */

    /* Signals go to this thread only (sigwait below); MHD's threads inherit the mask. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, on_access, NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
        NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_LIMIT, 4096u,
        MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "echo-upstream: libmicrohttpd could not start\n");
        return 1;
    }
    printf("listening on %s\n", shown);
    fflush(stdout);

    int sig;
    while (sigwait(&signals, &sig) != 0)
        ;
    pthread_mutex_lock(&stop_lock);
    stopping = true;
    pthread_cond_broadcast(&stop_cond);
    pthread_mutex_unlock(&stop_lock);
    MHD_stop_daemon(d);
    curl_global_cleanup();
    if (unix_path)
        unlink(unix_path);
    if (record_fd >= 0)
        close(record_fd);
    return 0;
}
