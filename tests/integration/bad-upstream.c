/* SPDX-License-Identifier: MIT */
/*
 * bad-upstream: a scriptable, deliberately broken HTTP/1.1 upstream for the hostile-upstream and
 * hostile-client integration tests. Raw sockets and no HTTP library, so that it can write exactly
 * the bytes a test needs, however wrong.
 *
 *   bad-upstream --listen 127.0.0.1:PORT [--events FILE]
 *
 * The first line on stdout is "listening on 127.0.0.1:<port>", flushed at once (PORT may be 0).
 * One thread per connection; requests on a connection are read in order (Content-Length and
 * chunked bodies are read and thrown away). SIGTERM or SIGINT ends the process with status 0.
 *
 * What happened, as JSON lines appended to FILE (one write(2) per line, under a lock):
 *   {"event":"head","conn":N,"seq":K,"method":"GET","target":"/hang?id=…"}
 *       a request head was read (before its body);
 *   {"event":"request","conn":N,"seq":K,"method":"GET","target":"…","body_bytes":B}
 *       the whole request was read; the path's behaviour starts now;
 *   {"event":"extra_sent",…}  (same members) /long-body-late wrote its stray second response;
 *   {"event":"closed","conn":N,"seq":K,"target":"<last target or null>","by":"peer"|"server",
 *    "phase":"idle"|"head"|"body"|"response","ms":M,"bytes_sent":S}
 *       the connection ended: "peer" when the other side closed or reset it (phase says what we
 *       were doing: waiting for a request, reading a head or a body, or inside a behaviour such
 *       as /hang), "server" when this server closed it; ms counts from the last request head.
 *
 * Behaviour, by path (the query is ignored unless stated; every response not marked keep-alive
 * carries "Connection: close" and the connection is closed after it):
 *   /ok                     200 "ok conn=N seq=K\n" with Content-Length, X-Conn and X-Seq;
 *                           keep-alive
 *   /ok-close               the same, then close
 *   /hang                   reads the request, never answers, waits (up to 120 s) for the peer
 *                           to close
 *   /close-before-status    closes (FIN) without a byte
 *   /reset-before-status    resets (RST) without a byte
 *   /close-after-status     "HTTP/1.1 200 OK\r\n", then closes
 *   /close-mid-headers      the status line and one header, then closes
 *   /garbage-status         "XYZZY 200 OK" and a small response, then closes
 *   /bad-status-code        "HTTP/1.1 2x0 OK" and a small response, then closes
 *   /endless-headers        the status line, then 1 KiB headers until the peer goes away
 *                           (at most 64 MiB)
 *   /no-colon               a header line without a colon among good ones
 *   /obs-fold               a header continued on the next line (obsolete line folding)
 *   /fold-first             the first header line is a continuation (" \r..."), no header before it
 *   /endless-body?framing=chunked|close|length
 *                           200, then 16 KiB of body every 5 ms until the peer goes away:
 *                           chunked, delimited by the close, or under "Content-Length: 10^12"
 *   /short-body             "Content-Length: 100000", 50000 bytes, then closes
 *   /long-body              "Content-Length: 10", 10 bytes plus a complete second response
 *                           ("SMUGGLED") in the same write; keep-alive
 *   /long-body-late         the same, but the second response follows 100 ms later, once the
 *                           connection looks idle (event "extra_sent" then); keep-alive
 *   /broken-chunked[?late=MS]  chunked: "5 hello" and the chunk size "XYZ" in one write (or
 *                           the second MS milliseconds later); waits (up to 10 s) for the peer
 *                           to close
 *   /many-1xx?n=N           N interim responses (100, 102 and 103 with a Link header in turn),
 *                           then 200 "final\n"
 *   /switching              101 Switching Protocols (Upgrade: websocket) and a frame, unasked;
 *                           waits (up to 10 s) for the peer to close
 *   /te-gzip                "Transfer-Encoding: gzip" (no chunked), a gzip body, then closes
 *   /dup-cl                 "Content-Length: 5" and "Content-Length: 6", "hello!", then closes
 *   anything else           404 with Content-Length, then closes
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX        (64 * 1024)
#define TARGET_MAX      2048
#define HANG_MAX_MS     120000
#define LINGER_MAX_MS   10000
#define FILLER_BYTES    1000
#define ENDLESS_MAX     (64ull * 1024 * 1024)
#define BODY_BLOCK      (16 * 1024)
#define BODY_PACE_MS    5
#define SHORT_BODY_CL   100000
#define SHORT_BODY_SENT 50000
#define LATE_EXTRA_MS   100

/* "hello, gzip\n", gzip -n -9 (the same bytes as echo-upstream's /gzip) */
static const unsigned char gzip_body[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0xd7,
    0x51, 0x48, 0xaf, 0xca, 0x2c, 0xe0, 0x02, 0x00, 0x86, 0x1f, 0x82, 0xa4, 0x0c, 0x00, 0x00, 0x00,
};

static char filler[BODY_BLOCK]; /* the endless body, filled before any thread starts */
static int events_fd = -1;
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint next_conn_id = 1;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- one connection ---------------------------------------------------------------------- */

enum phase { PHASE_IDLE, PHASE_HEAD, PHASE_BODY, PHASE_RESPONSE };

static const char *const phase_names[] = {"idle", "head", "body", "response"};

struct conn {
    int fd;
    unsigned id;
    unsigned seq;       /* requests whose head was read */
    char buf[HEAD_MAX]; /* bytes read and not yet consumed */
    size_t len;
    char method[32];
    char target[TARGET_MAX];
    bool has_target;
    uint64_t body_bytes;
    int64_t head_ms;     /* when the last head was read */
    uint64_t bytes_sent; /* by the current behaviour */
};

/* A JSON string literal for s (escaped), into out; the result is always terminated. */
static void json_quote(char *out, size_t size, const char *s)
{
    size_t n = 0;

    if (size < 3)
        return;
    out[n++] = '"';
    for (; *s && n + 8 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
}

static void event_write(const char *line, size_t len)
{
    if (events_fd < 0)
        return;
    pthread_mutex_lock(&events_lock);
    for (size_t done = 0; done < len;) {
        ssize_t w = write(events_fd, line + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            break;
        done += (size_t)w;
    }
    pthread_mutex_unlock(&events_lock);
}

static void event_request(struct conn *c, const char *event)
{
    char line[TARGET_MAX * 2 + 256], target[TARGET_MAX * 2], method[80];

    json_quote(target, sizeof(target), c->target);
    json_quote(method, sizeof(method), c->method);
    int n = snprintf(line, sizeof(line),
                     "{\"event\":\"%s\",\"conn\":%u,\"seq\":%u,\"method\":%s,\"target\":%s,"
                     "\"body_bytes\":%" PRIu64 "}\n",
                     event, c->id, c->seq, method, target, c->body_bytes);
    if (n > 0 && (size_t)n < sizeof(line))
        event_write(line, (size_t)n);
}

static void event_closed(struct conn *c, bool by_peer, enum phase phase)
{
    char line[TARGET_MAX * 2 + 256], target[TARGET_MAX * 2];

    if (c->has_target)
        json_quote(target, sizeof(target), c->target);
    else
        snprintf(target, sizeof(target), "null");
    int n = snprintf(line, sizeof(line),
                     "{\"event\":\"closed\",\"conn\":%u,\"seq\":%u,\"target\":%s,\"by\":\"%s\","
                     "\"phase\":\"%s\",\"ms\":%" PRId64 ",\"bytes_sent\":%" PRIu64 "}\n",
                     c->id, c->seq, target, by_peer ? "peer" : "server", phase_names[phase],
                     c->has_target ? now_ms() - c->head_ms : 0, c->bytes_sent);
    if (n > 0 && (size_t)n < sizeof(line))
        event_write(line, (size_t)n);
}

/* Read more bytes into c->buf; false on EOF, error or a full buffer. */
static bool read_more(struct conn *c)
{
    if (c->len == sizeof(c->buf))
        return false;
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        c->len += (size_t)r;
        return true;
    }
}

static void consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* The value of header `name` in the head [head, end), as a NUL-terminated copy; false if absent. */
static bool head_header(const char *head, const char *end, const char *name, char *out, size_t size)
{
    size_t name_len = strlen(name);
    const char *line = memchr(head, '\n', (size_t)(end - head));

    while (line && ++line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        if ((size_t)(nl - line) > name_len && strncasecmp(line, name, name_len) == 0 &&
            line[name_len] == ':') {
            const char *v = line + name_len + 1, *e = nl;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            snprintf(out, size, "%.*s", (int)(e - v), v);
            return true;
        }
        line = nl;
    }
    return false;
}

/* Read and discard n body bytes; false if the peer went away first. */
static bool skip_bytes(struct conn *c, uint64_t n)
{
    while (n > 0) {
        if (c->len == 0 && !read_more(c))
            return false;
        size_t take = c->len < n ? c->len : (size_t)n;
        consume(c, take);
        n -= take;
        c->body_bytes += take;
    }
    return true;
}

/* One CRLF- or LF-terminated line into line (without the terminator); false on EOF. */
static bool read_line(struct conn *c, char *line, size_t size)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            size_t copy = n > 0 && nl[-1] == '\r' ? n - 1 : n;
            snprintf(line, size, "%.*s", (int)copy, c->buf);
            consume(c, n + 1);
            return true;
        }
        if (!read_more(c))
            return false;
    }
}

static bool skip_chunked_body(struct conn *c)
{
    char line[256];

    for (;;) {
        if (!read_line(c, line, sizeof(line)))
            return false;
        uint64_t size = strtoull(line, NULL, 16);
        if (size == 0)
            break;
        if (!skip_bytes(c, size) || !read_line(c, line, sizeof(line)))
            return false;
    }
    do { /* trailers, up to the blank line */
        if (!read_line(c, line, sizeof(line)))
            return false;
    } while (line[0]);
    return true;
}

/*
 * Read the next request: head, then body. Returns true with c->method/target set, or false when
 * the peer closed (or sent something unreadable); *phase says where that happened.
 */
static bool read_request(struct conn *c, enum phase *phase)
{
    char *end;

    *phase = PHASE_IDLE;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
        if (c->len > 0)
            *phase = PHASE_HEAD;
        if (!read_more(c))
            return false;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    char *head = c->buf;
    char *sp1 = memchr(head, ' ', head_len);
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - head)) : NULL;
    if (!sp1 || !sp2)
        return false;
    snprintf(c->method, sizeof(c->method), "%.*s", (int)(sp1 - head), head);
    snprintf(c->target, sizeof(c->target), "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
    c->has_target = true;
    c->seq++;
    c->body_bytes = 0;
    c->head_ms = now_ms();
    c->bytes_sent = 0;
    event_request(c, "head");

    char value[64];
    bool chunked = head_header(head, head + head_len, "Transfer-Encoding", value, sizeof(value)) &&
                   strcasecmp(value, "chunked") == 0;
    uint64_t length = 0;
    if (!chunked && head_header(head, head + head_len, "Content-Length", value, sizeof(value)))
        length = strtoull(value, NULL, 10);
    consume(c, head_len);
    *phase = PHASE_BODY;
    if (chunked ? !skip_chunked_body(c) : !skip_bytes(c, length))
        return false;
    event_request(c, "request");
    *phase = PHASE_RESPONSE;
    return true;
}

static bool send_all(struct conn *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return false;
        p += w;
        len -= (size_t)w;
        c->bytes_sent += (uint64_t)w;
    }
    return true;
}

static bool send_str(struct conn *c, const char *s)
{
    return send_all(c, s, strlen(s));
}

/* Wait up to timeout_ms for the peer to close, reading and dropping what it sends. */
static bool wait_peer_close(struct conn *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    char sink[4096];

    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return true;
    }
}

/* Pause ms milliseconds, or less if the peer closes; false if it did. */
static bool pace(struct conn *c, int ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLRDHUP};
    int r = poll(&pfd, 1, ms);
    return !(r > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)));
}

static long query_long(const char *target, const char *name, long def)
{
    const char *q = strchr(target, '?');
    size_t n = strlen(name);

    while (q) {
        q++;
        if (strncmp(q, name, n) == 0 && q[n] == '=')
            return strtol(q + n + 1, NULL, 10);
        q = strchr(q, '&');
    }
    return def;
}

static bool query_is(const char *target, const char *name, const char *value)
{
    const char *q = strchr(target, '?');
    size_t n = strlen(name), v = strlen(value);

    while (q) {
        q++;
        if (strncmp(q, name, n) == 0 && q[n] == '=' && strncmp(q + n + 1, value, v) == 0 &&
            (q[n + 1 + v] == '\0' || q[n + 1 + v] == '&'))
            return true;
        q = strchr(q, '&');
    }
    return false;
}

static bool path_is(const char *target, const char *path)
{
    size_t n = strlen(path);
    return strncmp(target, path, n) == 0 && (target[n] == '\0' || target[n] == '?');
}

/* What the connection does after a behaviour. */
enum next {
    NEXT_KEEP,        /* read the next request */
    NEXT_CLOSE,       /* we close it */
    NEXT_RESET,       /* we reset it */
    NEXT_PEER_CLOSED, /* the peer closed it during the behaviour */
    NEXT_GONE,        /* a write failed: the peer is gone */
};

static enum next respond_ok(struct conn *c, bool keep_alive)
{
    char body[64], head[256];
    int n = snprintf(body, sizeof(body), "ok conn=%u seq=%u\n", c->id, c->seq);
    snprintf(head, sizeof(head),
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
             "X-Conn: %u\r\nX-Seq: %u\r\n%s\r\n",
             n, c->id, c->seq, keep_alive ? "" : "Connection: close\r\n");
    if (!send_str(c, head) || !send_str(c, body))
        return NEXT_GONE;
    return keep_alive ? NEXT_KEEP : NEXT_CLOSE;
}

static enum next endless_headers(struct conn *c)
{
    char line[FILLER_BYTES + 32];
    int n = snprintf(line, sizeof(line), "X-Filler-000000: ");
    memset(line + n, 'f', FILLER_BYTES);
    memcpy(line + n + FILLER_BYTES, "\r\n", 3);
    size_t len = (size_t)n + FILLER_BYTES + 2;

    if (!send_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"))
        return NEXT_GONE;
    for (unsigned i = 0; c->bytes_sent < ENDLESS_MAX; i++) {
        char digits[8];
        snprintf(digits, sizeof(digits), "%06u", i % 1000000);
        memcpy(line + 9, digits, 6);
        if (!send_all(c, line, len))
            return NEXT_GONE;
    }
    return NEXT_CLOSE;
}

static enum next endless_body(struct conn *c)
{
    const char *head;
    bool chunked = false;

    if (query_is(c->target, "framing", "close")) {
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
               "Connection: close\r\n\r\n";
    } else if (query_is(c->target, "framing", "length")) {
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
               "Content-Length: 1000000000000\r\nConnection: close\r\n\r\n";
    } else {
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
               "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        chunked = true;
    }
    if (!send_str(c, head))
        return NEXT_GONE;
    while (c->bytes_sent < ENDLESS_MAX) {
        if (chunked && !send_str(c, "4000\r\n"))
            return NEXT_GONE;
        if (!send_all(c, filler, sizeof(filler)) || (chunked && !send_str(c, "\r\n")))
            return NEXT_GONE;
        if (!pace(c, BODY_PACE_MS))
            return NEXT_PEER_CLOSED;
    }
    return NEXT_CLOSE;
}

static enum next many_interim(struct conn *c)
{
    static const char *const interim[] = {
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 102 Processing\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n",
    };
    long n = query_long(c->target, "n", 50);

    for (long i = 0; i < n; i++)
        if (!send_str(c, interim[i % 3]))
            return NEXT_GONE;
    if (!send_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
                     "X-Interim-Sent: yes\r\nConnection: close\r\n\r\nfinal\n"))
        return NEXT_GONE;
    return NEXT_CLOSE;
}

static enum next behave(struct conn *c)
{
    const char *t = c->target;
    char buf[SHORT_BODY_SENT];

    if (path_is(t, "/ok"))
        return respond_ok(c, true);
    if (path_is(t, "/ok-close"))
        return respond_ok(c, false);
    if (path_is(t, "/hang"))
        return wait_peer_close(c, HANG_MAX_MS) ? NEXT_PEER_CLOSED : NEXT_CLOSE;
    if (path_is(t, "/close-before-status"))
        return NEXT_CLOSE;
    if (path_is(t, "/reset-before-status"))
        return NEXT_RESET;
    if (path_is(t, "/close-after-status"))
        return send_str(c, "HTTP/1.1 200 OK\r\n") ? NEXT_CLOSE : NEXT_GONE;
    if (path_is(t, "/close-mid-headers"))
        return send_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n") ? NEXT_CLOSE
                                                                              : NEXT_GONE;
    if (path_is(t, "/garbage-status"))
        return send_str(c, "XYZZY 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                   ? NEXT_CLOSE
                   : NEXT_GONE;
    if (path_is(t, "/bad-status-code"))
        return send_str(c, "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                   ? NEXT_CLOSE
                   : NEXT_GONE;
    if (path_is(t, "/endless-headers"))
        return endless_headers(c);
    if (path_is(t, "/no-colon"))
        return send_str(c, "HTTP/1.1 200 OK\r\nX-Good: 1\r\nthis line has no colon\r\n"
                           "Content-Length: 2\r\nConnection: close\r\n\r\nok")
                   ? NEXT_CLOSE
                   : NEXT_GONE;
    if (path_is(t, "/obs-fold"))
        return send_str(c, "HTTP/1.1 200 OK\r\nX-Fold: first\r\n  continued\r\n"
                           "Content-Length: 2\r\nConnection: close\r\n\r\nok")
                   ? NEXT_CLOSE
                   : NEXT_GONE;
    if (path_is(t, "/fold-first")) /* " \r" makes libcurl 7.88 take it for a continuation */
        return send_str(c, "HTTP/1.1 200 OK\r\n \rX-Fold: first\r\n"
                           "Content-Length: 2\r\nConnection: close\r\n\r\nok")
                   ? NEXT_CLOSE
                   : NEXT_GONE;
    if (path_is(t, "/endless-body"))
        return endless_body(c);
    if (path_is(t, "/short-body")) {
        char head[160];
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                 "Content-Length: %d\r\nConnection: close\r\n\r\n",
                 SHORT_BODY_CL);
        memset(buf, 's', sizeof(buf));
        return send_str(c, head) && send_all(c, buf, sizeof(buf)) ? NEXT_CLOSE : NEXT_GONE;
    }
    if (path_is(t, "/long-body"))
        return send_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n"
                           "\r\n0123456789"
                           "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Smuggled: yes\r\n"
                           "\r\nSMUGGLED")
                   ? NEXT_KEEP
                   : NEXT_GONE;
    if (path_is(t, "/long-body-late")) {
        if (!send_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n"
                         "\r\n0123456789"))
            return NEXT_GONE;
        if (!pace(c, LATE_EXTRA_MS))
            return NEXT_PEER_CLOSED;
        if (!send_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Smuggled: yes\r\n\r\nSMUGGLED"))
            return NEXT_GONE;
        event_request(c, "extra_sent");
        return NEXT_KEEP;
    }
    if (path_is(t, "/broken-chunked")) {
        static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
        static const char broken[] = "XYZ\r\nmore\r\n0\r\n\r\n";
        long late = query_long(t, "late", 0);
        if (late <= 0) { /* all in one write: the break arrives with the good chunk */
            char all[sizeof(head) + sizeof(broken)];
            snprintf(all, sizeof(all), "%s%s", head, broken);
            if (!send_str(c, all))
                return NEXT_GONE;
        } else if (!send_str(c, head) || !pace(c, (int)late) || !send_str(c, broken)) {
            return NEXT_GONE;
        }
        return wait_peer_close(c, LINGER_MAX_MS) ? NEXT_PEER_CLOSED : NEXT_CLOSE;
    }
    if (path_is(t, "/many-1xx"))
        return many_interim(c);
    if (path_is(t, "/switching")) {
        if (!send_str(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                         "Upgrade: websocket\r\n\r\n\x81\x05hello"))
            return NEXT_GONE;
        return wait_peer_close(c, LINGER_MAX_MS) ? NEXT_PEER_CLOSED : NEXT_CLOSE;
    }
    if (path_is(t, "/te-gzip"))
        return send_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                           "Transfer-Encoding: gzip\r\nConnection: close\r\n\r\n") &&
                       send_all(c, gzip_body, sizeof(gzip_body))
                   ? NEXT_CLOSE
                   : NEXT_GONE;
    if (path_is(t, "/dup-cl"))
        return send_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                           "Content-Length: 6\r\nConnection: close\r\n\r\nhello!")
                   ? NEXT_CLOSE
                   : NEXT_GONE;
    return send_str(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n"
                       "\r\nno such\r\n")
               ? NEXT_CLOSE
               : NEXT_GONE;
}

static void *serve(void *arg)
{
    struct conn *c = arg;
    enum phase phase;

    for (;;) {
        if (!read_request(c, &phase)) {
            event_closed(c, true, phase);
            break;
        }
        enum next next = behave(c);
        if (next == NEXT_KEEP)
            continue;
        if (next == NEXT_RESET) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        event_closed(c, next == NEXT_PEER_CLOSED || next == NEXT_GONE, PHASE_RESPONSE);
        break;
    }
    close(c->fd);
    free(c);
    return NULL;
}

/* --- main ------------------------------------------------------------------------------- */

static int listen_on(const char *spec, unsigned *ret_port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    char host[64];
    const char *colon = strrchr(spec, ':');

    if (!colon || (size_t)(colon - spec) >= sizeof(host))
        return -1;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return -1;
    addr.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 512) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
        close(fd);
        return -1;
    }
    *ret_port = ntohs(addr.sin_port);
    return fd;
}

static void usage(void)
{
    fprintf(stderr, "usage: bad-upstream --listen 127.0.0.1:PORT [--events FILE]\n");
}

int main(int argc, char **argv)
{
    const char *listen_spec = NULL, *events_path = NULL;
    unsigned port = 0;
    sigset_t stop;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_spec = argv[++i];
        } else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc) {
            events_path = argv[++i];
        } else {
            usage();
            return 2;
        }
    }
    if (!listen_spec) {
        usage();
        return 2;
    }
    memset(filler, 'e', sizeof(filler));
    /* Signals are read from a signalfd by the main thread; every thread inherits the mask. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &stop, SFD_CLOEXEC);
    if (events_path) {
        events_fd = open(events_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (events_fd < 0) {
            perror("bad-upstream: --events");
            return 1;
        }
    }
    int lfd = listen_on(listen_spec, &port);
    if (lfd < 0 || sfd < 0) {
        fprintf(stderr, "bad-upstream: cannot listen on %s: %s\n", listen_spec, strerror(errno));
        return 1;
    }
    printf("listening on 127.0.0.1:%u\n", port);
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (;;) {
        struct pollfd pfds[2] = {{.fd = lfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(pfds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("bad-upstream: poll");
            return 1;
        }
        if (pfds[1].revents & POLLIN)
            break;
        if (!(pfds[0].revents & POLLIN))
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        pthread_t thread;
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->id = atomic_fetch_add(&next_conn_id, 1);
        if (pthread_create(&thread, &attr, serve, c) != 0) {
            close(fd);
            free(c);
        }
    }
    /* Threads may be blocked anywhere: the process exit ends them. */
    return 0;
}
