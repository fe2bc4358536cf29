/* SPDX-License-Identifier: MIT */
/*
 * An OTLP/HTTP receiver in the test process (contracts in harness.h): what tracehop's span
 * exporter talks to in the tests. One accept thread on 127.0.0.1:0 and one thread per connection,
 * each reading HTTP/1.1 requests one after the other (keep-alive; Content-Length or chunked
 * bodies; "Expect: 100-continue" answered), recording each (headers as sent, the body gunzipped
 * when Content-Encoding says gzip, then parsed as JSON) and answering from the test's script:
 * one scripted reply per request in order, then the default reply (200 {}).
 *
 * Every record is appended under one lock and announced on one condition variable (a
 * CLOCK_MONOTONIC one), so waiting for a number of requests or for a span is a bounded
 * pthread_cond_timedwait, never a sleep. A hanging reply waits on the same condition variable
 * for the receiver to go down. Going down closes the listener (new connections are refused) and
 * shuts every connection down, which wakes the threads blocked in recv.
 */
#include "harness-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#define HEAD_MAX (64 * 1024)
#define BODY_MAX (64 * 1024 * 1024)

struct otlp_conn {
    int fd; /* -1 once closed */
    pthread_t thread;
    struct harness_otlp *r;
    char *buf; /* received, not yet consumed */
    size_t len, cap;
};

struct harness_otlp {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a request was recorded, or the receiver went down */
    int listen_fd;
    int wake[2]; /* a byte on wake[1] stops the accept thread */
    pthread_t accept_thread;
    bool accept_running;
    bool down;
    unsigned port;
    char url[64];

    struct harness_otlp_reply *script;
    size_t script_len, script_pos;
    struct harness_otlp_reply fallback;

    struct harness_otlp_request **records;
    size_t count, cap;

    struct otlp_conn **conns;
    size_t conns_count, conns_cap;
};

static void request_free_fields(struct harness_otlp_request *rq);

/* --- the connection: reading one request ------------------------------------------------ */

/* Read more bytes into c->buf; false on EOF or error. */
static bool conn_fill(struct otlp_conn *c)
{
    if (c->cap - c->len < 16384) {
        size_t cap = c->cap ? c->cap * 2 : 65536;
        char *buf = realloc(c->buf, cap);
        if (!buf)
            return false;
        c->buf = buf;
        c->cap = cap;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (n > 0) {
            c->len += (size_t)n;
            c->buf[c->len] = '\0';
            return true;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return false;
    }
}

static void conn_consume(struct otlp_conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    if (c->buf)
        c->buf[c->len] = '\0';
}

static bool send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* The offset just past "\r\n\r\n" in c->buf, reading as needed; 0 on EOF or an oversized head. */
static size_t read_head(struct otlp_conn *c)
{
    for (;;) {
        char *end = c->len ? strstr(c->buf, "\r\n\r\n") : NULL;
        if (end)
            return (size_t)(end - c->buf) + 4;
        if (c->len > HEAD_MAX || !conn_fill(c))
            return 0;
    }
}

static void add_header(struct harness_otlp_request *rq, const char *name, size_t name_len,
                       const char *value, size_t value_len)
{
    while (value_len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        value_len--;
    }
    while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    struct harness_header *h =
        realloc(rq->headers, (rq->headers_count + 1) * sizeof(struct harness_header));
    if (!h)
        return;
    rq->headers = h;
    h[rq->headers_count].name = strndup(name, name_len);
    h[rq->headers_count].value = strndup(value, value_len);
    rq->headers_count++;
}

const char *harness_otlp_header(const struct harness_otlp_request *rq, const char *name)
{
    for (size_t i = 0; rq && i < rq->headers_count; i++)
        if (rq->headers[i].name && strcasecmp(rq->headers[i].name, name) == 0)
            return rq->headers[i].value;
    return NULL;
}

/* Parse the head (request line and header fields) of c->buf[0..head_len). */
static bool parse_head(struct otlp_conn *c, size_t head_len, struct harness_otlp_request *rq)
{
    char *line = c->buf, *end = c->buf + head_len - 2;
    char *eol = strstr(line, "\r\n");
    char method[16], target[256], version[16];

    *eol = '\0';
    if (sscanf(line, "%15s %255s %15s", method, target, version) != 3)
        return false;
    snprintf(rq->method, sizeof(rq->method), "%s", method);
    snprintf(rq->target, sizeof(rq->target), "%s", target);
    for (line = eol + 2; line < end; line = eol + 2) {
        eol = strstr(line, "\r\n");
        if (!eol || eol == line)
            break;
        char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon)
            return false;
        add_header(rq, line, (size_t)(colon - line), colon + 1, (size_t)(eol - colon - 1));
    }
    return true;
}

/* Append the next n bytes of the connection to *body. */
static bool read_exact(struct otlp_conn *c, size_t n, char **body, size_t *body_len)
{
    while (c->len < n)
        if (!conn_fill(c))
            return false;
    char *grown = realloc(*body, *body_len + n + 1);
    if (!grown)
        return false;
    memcpy(grown + *body_len, c->buf, n);
    *body = grown;
    *body_len += n;
    grown[*body_len] = '\0';
    conn_consume(c, n);
    return true;
}

/* A CRLF-terminated line of the connection (without CRLF) into out; consumes it. */
static bool read_line(struct otlp_conn *c, char *out, size_t size)
{
    for (;;) {
        char *eol = c->len ? strstr(c->buf, "\r\n") : NULL;
        if (eol) {
            size_t n = (size_t)(eol - c->buf);
            snprintf(out, size, "%.*s", (int)n, c->buf);
            conn_consume(c, n + 2);
            return true;
        }
        if (c->len > HEAD_MAX || !conn_fill(c))
            return false;
    }
}

static bool read_chunked(struct otlp_conn *c, char **body, size_t *body_len)
{
    char line[512];
    for (;;) {
        if (!read_line(c, line, sizeof(line)))
            return false;
        char *endp;
        unsigned long size = strtoul(line, &endp, 16);
        if (endp == line || size > BODY_MAX)
            return false;
        if (size == 0)
            break;
        if (!read_exact(c, size, body, body_len) || !read_line(c, line, sizeof(line)) || line[0])
            return false;
    }
    do { /* trailers up to the empty line */
        if (!read_line(c, line, sizeof(line)))
            return false;
    } while (line[0]);
    return true;
}

static char *gunzip(const char *data, size_t len, size_t *ret_len, char *error, size_t error_size)
{
    z_stream z = {0};
    size_t cap = len * 4 + 1024, out_len = 0;
    char *out = malloc(cap);

    if (!out || inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        free(out);
        snprintf(error, error_size, "gunzip: out of memory");
        return NULL;
    }
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    int rc;
    do {
        if (cap - out_len < 1024) {
            char *grown = realloc(out, cap * 2);
            if (!grown) {
                rc = Z_MEM_ERROR;
                break;
            }
            out = grown;
            cap *= 2;
        }
        z.next_out = (Bytef *)out + out_len;
        z.avail_out = (uInt)(cap - out_len - 1);
        rc = inflate(&z, Z_NO_FLUSH);
        out_len = cap - 1 - z.avail_out;
    } while (rc == Z_OK);
    inflateEnd(&z);
    if (rc != Z_STREAM_END || z.avail_in != 0) {
        snprintf(error, error_size, "gunzip failed (zlib %d, %u bytes left)", rc, z.avail_in);
        free(out);
        return NULL;
    }
    out[out_len] = '\0';
    *ret_len = out_len;
    return out;
}

/* Read one whole request; NULL on EOF, a broken request or the receiver going down. */
static struct harness_otlp_request *read_request(struct otlp_conn *c)
{
    size_t head_len = read_head(c);
    if (head_len == 0)
        return NULL;
    struct harness_otlp_request *rq = calloc(1, sizeof(*rq));
    if (!rq)
        return NULL;
    bool ok = parse_head(c, head_len, rq);
    conn_consume(c, head_len);
    const char *te = harness_otlp_header(rq, "Transfer-Encoding");
    const char *cl = harness_otlp_header(rq, "Content-Length");
    const char *expect = harness_otlp_header(rq, "Expect");
    if (ok && expect && strcasecmp(expect, "100-continue") == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        ok = send_all(c->fd, cont, sizeof(cont) - 1);
    }
    rq->raw_body = calloc(1, 1);
    ok = ok && rq->raw_body;
    if (ok && te && strcasecmp(te, "chunked") == 0) {
        ok = read_chunked(c, &rq->raw_body, &rq->raw_len);
    } else if (ok && cl) {
        unsigned long long n = strtoull(cl, NULL, 10);
        ok = n <= BODY_MAX && read_exact(c, (size_t)n, &rq->raw_body, &rq->raw_len);
    }
    if (!ok) {
        request_free_fields(rq);
        free(rq);
        return NULL;
    }
    rq->received_ms = now_ms();

    const char *ce = harness_otlp_header(rq, "Content-Encoding");
    if (ce && strcasecmp(ce, "gzip") == 0) {
        rq->body = gunzip(rq->raw_body, rq->raw_len, &rq->body_len, rq->error, sizeof(rq->error));
    } else if (ce && strcasecmp(ce, "identity") != 0) {
        snprintf(rq->error, sizeof(rq->error), "unknown Content-Encoding '%s'", ce);
    } else {
        rq->body = malloc(rq->raw_len + 1);
        if (rq->body) {
            memcpy(rq->body, rq->raw_body, rq->raw_len + 1);
            rq->body_len = rq->raw_len;
        }
    }
    if (rq->body) {
        json_error_t error;
        rq->json = json_loadb(rq->body, rq->body_len, 0, &error);
        if (!rq->json)
            snprintf(rq->error, sizeof(rq->error), "body is not JSON: %s (line %d)", error.text,
                     error.line);
    }
    return rq;
}

static void request_free_fields(struct harness_otlp_request *rq)
{
    for (size_t i = 0; i < rq->headers_count; i++) {
        free(rq->headers[i].name);
        free(rq->headers[i].value);
    }
    free(rq->headers);
    free(rq->raw_body);
    free(rq->body);
    json_decref(rq->json);
}

/* --- the connection: answering ---------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* google.rpc.Code for an HTTP status, as OTLP/HTTP servers answer errors. */
static int rpc_code(int status)
{
    switch (status) {
    case 400:
        return 3; /* INVALID_ARGUMENT */
    case 429:
        return 8; /* RESOURCE_EXHAUSTED */
    case 503:
        return 14; /* UNAVAILABLE */
    default:
        return 2; /* UNKNOWN */
    }
}

/* Send the answer for `reply`; returns the status sent (0 when none was). */
static int answer(struct otlp_conn *c, const struct harness_otlp_reply *reply)
{
    char body[512], head[512];
    int status = 200;

    switch (reply->action) {
    case HARNESS_OTLP_OK:
        snprintf(body, sizeof(body), "{}");
        break;
    case HARNESS_OTLP_PARTIAL:
        snprintf(body, sizeof(body),
                 "{\"partialSuccess\":{\"rejectedSpans\":\"%ld\",\"errorMessage\":\"%s\"}}",
                 reply->rejected, reply->message ? reply->message : "rejected by the test");
        break;
    case HARNESS_OTLP_STATUS:
        status = reply->status;
        snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\",\"details\":[]}",
                 rpc_code(status), reply->message ? reply->message : reason(status));
        break;
    case HARNESS_OTLP_HANG:
    case HARNESS_OTLP_CLOSE:
        return 0;
    }
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n",
                     status, reason(status), strlen(body));
    if (reply->action == HARNESS_OTLP_STATUS && reply->retry_after_s >= 0)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Retry-After: %d\r\n",
                      reply->retry_after_s);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    if (!send_all(c->fd, head, (size_t)n) || !send_all(c->fd, body, strlen(body)))
        return 0;
    return status;
}

static void record(struct harness_otlp *r, struct harness_otlp_request *rq)
{
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct harness_otlp_request **grown = realloc(r->records, cap * sizeof(*grown));
        if (!grown) {
            say("otlp receiver: out of memory recording a request");
            request_free_fields(rq);
            free(rq);
            return;
        }
        r->records = grown;
        r->cap = cap;
    }
    r->records[r->count++] = rq;
}

static void *conn_main(void *arg)
{
    struct otlp_conn *c = arg;
    struct harness_otlp *r = c->r;

    for (;;) {
        struct harness_otlp_request *rq = read_request(c);
        if (!rq)
            break;
        const char *connection = harness_otlp_header(rq, "Connection");
        bool keep = !(connection && strcasecmp(connection, "close") == 0);

        pthread_mutex_lock(&r->lock);
        struct harness_otlp_reply reply =
            r->script_pos < r->script_len ? r->script[r->script_pos++] : r->fallback;
        /* Recorded before the answer: an exporter that got its answer finds it recorded. */
        rq->answered_status =
            reply.action == HARNESS_OTLP_OK || reply.action == HARNESS_OTLP_PARTIAL ? 200
            : reply.action == HARNESS_OTLP_STATUS                                   ? reply.status
                                                                                    : 0;
        record(r, rq);
        pthread_cond_broadcast(&r->cond);
        if (reply.action == HARNESS_OTLP_HANG) {
            while (!r->down)
                pthread_cond_wait(&r->cond, &r->lock);
        }
        pthread_mutex_unlock(&r->lock);
        if (reply.action == HARNESS_OTLP_HANG || reply.action == HARNESS_OTLP_CLOSE)
            break;
        if (answer(c, &reply) == 0 || !keep)
            break;
    }
    pthread_mutex_lock(&r->lock);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* --- the listener ------------------------------------------------------------------------ */

static void *accept_main(void *arg)
{
    struct harness_otlp *r = arg;

    for (;;) {
        struct pollfd pfd[2] = {{.fd = r->listen_fd, .events = POLLIN},
                                {.fd = r->wake[0], .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents)
            break;
        int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct otlp_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->r = r;
        pthread_mutex_lock(&r->lock);
        if (r->conns_count == r->conns_cap) {
            size_t cap = r->conns_cap ? r->conns_cap * 2 : 16;
            struct otlp_conn **grown = realloc(r->conns, cap * sizeof(*grown));
            if (!grown) {
                pthread_mutex_unlock(&r->lock);
                close(fd);
                free(c);
                continue;
            }
            r->conns = grown;
            r->conns_cap = cap;
        }
        if (r->down || pthread_create(&c->thread, NULL, conn_main, c) != 0) {
            pthread_mutex_unlock(&r->lock);
            close(fd);
            free(c);
            continue;
        }
        r->conns[r->conns_count++] = c;
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

struct harness_otlp *harness_otlp_start(void)
{
    struct harness_otlp *r = calloc(1, sizeof(*r));
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t addr_len = sizeof(addr);
    pthread_condattr_t attr;

    if (!r)
        return NULL;
    r->listen_fd = r->wake[0] = r->wake[1] = -1;
    r->fallback = (struct harness_otlp_reply){.action = HARNESS_OTLP_OK, .retry_after_s = -1};
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &attr);
    pthread_condattr_destroy(&attr);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->listen_fd < 0 || bind(r->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(r->listen_fd, 128) < 0 ||
        getsockname(r->listen_fd, (struct sockaddr *)&addr, &addr_len) < 0 ||
        pipe2(r->wake, O_CLOEXEC) < 0) {
        say("otlp receiver: cannot listen on 127.0.0.1:0: %s", strerror(errno));
        harness_otlp_stop(r);
        return NULL;
    }
    r->port = ntohs(addr.sin_port);
    snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%u", r->port);
    if (pthread_create(&r->accept_thread, NULL, accept_main, r) != 0) {
        say("otlp receiver: cannot start its thread");
        harness_otlp_stop(r);
        return NULL;
    }
    r->accept_running = true;
    return r;
}

unsigned harness_otlp_port(const struct harness_otlp *r)
{
    return r->port;
}

const char *harness_otlp_url(const struct harness_otlp *r)
{
    return r->url;
}

void harness_otlp_script(struct harness_otlp *r, const struct harness_otlp_reply *replies, size_t n)
{
    pthread_mutex_lock(&r->lock);
    struct harness_otlp_reply *copy = malloc((n ? n : 1) * sizeof(*copy));
    if (copy) {
        memcpy(copy, replies, n * sizeof(*copy));
        free(r->script);
        r->script = copy;
        r->script_len = n;
        r->script_pos = 0;
    }
    pthread_mutex_unlock(&r->lock);
}

void harness_otlp_set_default(struct harness_otlp *r, const struct harness_otlp_reply *reply)
{
    pthread_mutex_lock(&r->lock);
    r->fallback = *reply;
    pthread_mutex_unlock(&r->lock);
}

void harness_otlp_down(struct harness_otlp *r)
{
    if (r->accept_running) {
        if (write(r->wake[1], "x", 1) != 1)
            say("otlp receiver: cannot wake its accept thread");
        pthread_join(r->accept_thread, NULL);
        r->accept_running = false;
    }
    pthread_mutex_lock(&r->lock);
    r->down = true;
    if (r->listen_fd >= 0) {
        close(r->listen_fd);
        r->listen_fd = -1;
    }
    for (size_t i = 0; i < r->conns_count; i++)
        if (r->conns[i]->fd >= 0)
            shutdown(r->conns[i]->fd, SHUT_RDWR);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

void harness_otlp_stop(struct harness_otlp *r)
{
    if (!r)
        return;
    harness_otlp_down(r);
    /* No new connection threads after down: join them without the lock held. */
    for (size_t i = 0; i < r->conns_count; i++) {
        pthread_join(r->conns[i]->thread, NULL);
        free(r->conns[i]->buf);
        free(r->conns[i]);
    }
    free(r->conns);
    for (size_t i = 0; i < r->count; i++) {
        request_free_fields(r->records[i]);
        free(r->records[i]);
    }
    free(r->records);
    free(r->script);
    for (int i = 0; i < 2; i++)
        if (r->wake[i] >= 0)
            close(r->wake[i]);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* --- reading the records ----------------------------------------------------------------- */

/* Wait on the condition variable until `deadline` (ms, CLOCK_MONOTONIC); lock held. */
static void wait_until(struct harness_otlp *r, int64_t deadline)
{
    struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
    pthread_cond_timedwait(&r->cond, &r->lock, &ts);
}

size_t harness_otlp_count(struct harness_otlp *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->count;
    pthread_mutex_unlock(&r->lock);
    return n;
}

size_t harness_otlp_wait(struct harness_otlp *r, size_t n, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;

    pthread_mutex_lock(&r->lock);
    while (r->count < n && remaining_ms(deadline) > 0)
        wait_until(r, deadline);
    size_t count = r->count;
    pthread_mutex_unlock(&r->lock);
    if (count < n && timeout_ms > 0)
        say("otlp receiver: %zu request(s) after %d ms, waited for %zu", count, timeout_ms, n);
    return count;
}

const struct harness_otlp_request *harness_otlp_request(struct harness_otlp *r, size_t i)
{
    pthread_mutex_lock(&r->lock);
    const struct harness_otlp_request *rq = i < r->count ? r->records[i] : NULL;
    pthread_mutex_unlock(&r->lock);
    return rq;
}

/* Append the spans of one request body to `out`. */
static void collect_spans(json_t *body, json_t *out)
{
    size_t i, j, k;
    json_t *rs, *ss, *span;

    json_array_foreach(json_object_get(body, "resourceSpans"), i, rs)
    {
        json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
        {
            json_array_foreach(json_object_get(ss, "spans"), k, span)
            {
                json_array_append(out, span);
            }
        }
    }
}

json_t *harness_otlp_request_spans(const struct harness_otlp_request *rq)
{
    json_t *out = json_array();
    if (rq)
        collect_spans(rq->json, out);
    return out;
}

json_t *harness_otlp_spans(struct harness_otlp *r)
{
    json_t *out = json_array();
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->count; i++)
        collect_spans(r->records[i]->json, out);
    pthread_mutex_unlock(&r->lock);
    return out;
}

json_t *harness_otlp_attr(json_t *owner, const char *key)
{
    size_t i;
    json_t *attr;
    json_array_foreach(json_object_get(owner, "attributes"), i, attr)
    {
        const char *k = json_string_value(json_object_get(attr, "key"));
        if (k && strcmp(k, key) == 0)
            return json_object_get(attr, "value");
    }
    return NULL;
}

size_t harness_otlp_attr_count(json_t *owner, const char *key)
{
    size_t i, n = 0;
    json_t *attr;
    json_array_foreach(json_object_get(owner, "attributes"), i, attr)
    {
        const char *k = json_string_value(json_object_get(attr, "key"));
        if (k && strcmp(k, key) == 0)
            n++;
    }
    return n;
}

const char *harness_otlp_attr_str(json_t *owner, const char *key)
{
    return json_string_value(json_object_get(harness_otlp_attr(owner, key), "stringValue"));
}

const char *harness_otlp_attr_int(json_t *owner, const char *key)
{
    return json_string_value(json_object_get(harness_otlp_attr(owner, key), "intValue"));
}

bool harness_otlp_attr_double(json_t *owner, const char *key, double *ret)
{
    json_t *v = json_object_get(harness_otlp_attr(owner, key), "doubleValue");
    if (!json_is_number(v))
        return false;
    *ret = json_number_value(v);
    return true;
}

json_t *harness_otlp_wait_spans(struct harness_otlp *r, const char *key, const char *value,
                                size_t want, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    json_t *found = json_array();

    pthread_mutex_lock(&r->lock);
    for (;;) {
        json_array_clear(found);
        json_t *all = json_array();
        for (size_t i = 0; i < r->count; i++)
            collect_spans(r->records[i]->json, all);
        size_t i;
        json_t *span;
        json_array_foreach(all, i, span)
        {
            const char *v = harness_otlp_attr_str(span, key);
            if (v && strcmp(v, value) == 0)
                json_array_append(found, span);
        }
        json_decref(all);
        if (json_array_size(found) >= want || remaining_ms(deadline) == 0)
            break;
        wait_until(r, deadline);
    }
    pthread_mutex_unlock(&r->lock);
    if (json_array_size(found) < want && timeout_ms > 0)
        say("otlp receiver: %zu span(s) with %s = %s after %d ms, waited for %zu",
            json_array_size(found), key, value, timeout_ms, want);
    return found;
}

json_t *harness_otlp_span_by_path(struct harness_otlp *r, const char *path)
{
    json_t *all = harness_otlp_wait_spans(r, "url.path", path, 1, HARNESS_WAIT_MS);
    json_t *span = json_incref(json_array_get(all, 0));
    json_decref(all);
    return span;
}
