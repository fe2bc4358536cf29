/* SPDX-License-Identifier: MIT */
/*
 * Raw TCP to 127.0.0.1 (contracts in harness.h), for what libcurl will not send or cannot show:
 * waiting until a port accepts or refuses connections, a port nothing listens on, one request
 * and its response on a new connection (harness_raw), and a connection that reads responses one
 * after another (harness_conn: pipelining, keep-alive, waiting for the peer to close). Responses
 * are framed by Content-Length, chunked coding or the end of the connection (RFC 9112 6.3).
 * Every send and receive waits in poll until the caller's deadline; only the port waits retry on
 * the clock (every 5 or 10 ms), as nothing signals a port opening.
 */
#include "harness-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connected socket to 127.0.0.1:port, or -errno. */
static int connect_once(unsigned port, int timeout_ms)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        if (errno != EINPROGRESS) {
            int err = errno;
            close(fd);
            return -err;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof(err);
        if (poll(&pfd, 1, timeout_ms) <= 0) {
            close(fd);
            return -ETIMEDOUT;
        }
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            close(fd);
            return -err;
        }
    }
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

bool harness_wait_port_open(unsigned port, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int fd = connect_once(port, remaining_ms(deadline));
        if (fd >= 0) {
            close(fd);
            return true;
        }
        int left = remaining_ms(deadline);
        if (left == 0)
            return false;
        poll(NULL, 0, left < 10 ? left : 10); /* nothing to wait on but the clock */
    }
}

bool harness_wait_port_refused(unsigned port, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int fd = connect_once(port, remaining_ms(deadline));
        if (fd == -ECONNREFUSED)
            return true;
        if (fd >= 0)
            close(fd);
        int left = remaining_ms(deadline);
        if (left == 0)
            return false;
        poll(NULL, 0, left < 5 ? left : 5);
    }
}

unsigned harness_closed_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    unsigned port = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    if (fd >= 0)
        close(fd); /* never listened: connecting is refused */
    return port;
}

/*
 * Try to parse one complete response from buf[0..len); `eof`: the peer closed. Returns true
 * when rs holds a complete response.
 */
static bool parse_raw_response(const char *buf, size_t len, bool eof, bool head,
                               struct harness_response *rs)
{
    const char *p = buf, *end = buf + len;

    for (;;) {
        const char *blank = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!blank)
            return false;
        if ((size_t)(end - p) < 12 || memcmp(p, "HTTP/1.", 7) != 0)
            return false;
        long status = strtol(p + 9, NULL, 10);
        harness_response_clear_headers(rs);
        const char *line = memchr(p, '\n', (size_t)(blank - p)) + 1;
        while (line && line < blank + 2) {
            const char *nl = memmem(line, (size_t)(blank + 2 - line), "\r\n", 2);
            if (!nl)
                break;
            const char *colon = memchr(line, ':', (size_t)(nl - line));
            if (colon)
                harness_response_add_header(rs, line, (size_t)(colon - line), colon + 1,
                                            (size_t)(nl - colon - 1));
            line = nl + 2;
        }
        p = blank + 4;
        if (status >= 100 && status < 200)
            continue; /* an interim response: the final one follows */
        rs->status = status;
        break;
    }
    rs->body_len = 0;
    rs->body_hash = HARNESS_FNV_OFFSET;
    free(rs->body);
    rs->body = calloc(1, 1);
    if (head || rs->status == 204 || rs->status == 304)
        return true;
    const char *te = harness_header(rs, "Transfer-Encoding");
    const char *cl = harness_header(rs, "Content-Length");
    if (te && strcasecmp(te, "chunked") == 0) {
        for (;;) {
            const char *nl = memmem(p, (size_t)(end - p), "\r\n", 2);
            if (!nl)
                return false;
            size_t chunk = strtoul(p, NULL, 16);
            p = nl + 2;
            if (chunk == 0) /* trailers (none expected), then the final CRLF */
                return memmem(p - 2, (size_t)(end - p + 2), "\r\n\r\n", 4) != NULL;
            if ((size_t)(end - p) < chunk + 2)
                return false;
            harness_response_add_body(rs, p, chunk, true);
            p += chunk + 2;
        }
    }
    if (cl) {
        size_t want = strtoul(cl, NULL, 10);
        if ((size_t)(end - p) < want)
            return false;
        harness_response_add_body(rs, p, want, true);
        return true;
    }
    if (!eof)
        return false;
    harness_response_add_body(rs, p, (size_t)(end - p), true);
    return true;
}

int harness_raw(unsigned port, const char *data, size_t len, bool head, int timeout_ms,
                struct harness_response *rs)
{
    int64_t deadline = now_ms() + timeout_ms;
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    bool complete = false, eof = false;
    int fd;

    *rs = (struct harness_response){.result = CURLE_RECV_ERROR, .body_hash = HARNESS_FNV_OFFSET};
    if (!buf)
        return -1;
    fd = connect_once(port, timeout_ms);
    if (fd < 0) {
        snprintf(rs->error, sizeof(rs->error), "connect: %s", strerror(-fd));
        free(buf);
        return -1;
    }
    for (size_t sent = 0; sent < len;) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (poll(&pfd, 1, remaining_ms(deadline)) <= 0)
            break;
        ssize_t w = send(fd, data + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w < 0) {
            snprintf(rs->error, sizeof(rs->error), "send: %s", strerror(errno));
            break; /* the server may have answered and closed: read what it said */
        }
        sent += (size_t)w;
    }
    while (!complete && !eof) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = remaining_ms(deadline);
        if (left == 0 || poll(&pfd, 1, left) <= 0) {
            rs->result = CURLE_OPERATION_TIMEDOUT;
            snprintf(rs->error, sizeof(rs->error), "timed out after %d ms", timeout_ms);
            break;
        }
        if (cap - got < 4096) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger)
                break;
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + got, cap - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            eof = true;
        else
            got += (size_t)r;
        complete = parse_raw_response(buf, got, eof, head, rs);
    }
    close(fd);
    free(buf);
    if (!complete) {
        rs->status = 0;
        if (!rs->error[0])
            snprintf(rs->error, sizeof(rs->error),
                     "connection closed after %zu bytes without "
                     "a complete response",
                     got);
        return -1;
    }
    rs->result = CURLE_OK;
    return 0;
}

int harness_conn_open(struct harness_conn *c, unsigned port, int timeout_ms)
{
    *c = (struct harness_conn){.fd = -1};
    int fd = connect_once(port, timeout_ms);
    if (fd < 0)
        return fd;
    c->fd = fd;
    return 0;
}

int harness_conn_send(struct harness_conn *c, const void *data, size_t len, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    const char *p = data;

    while (len > 0) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
        int left = remaining_ms(deadline);
        if (left == 0 || poll(&pfd, 1, left) <= 0)
            return -ETIMEDOUT;
        ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w < 0)
            return -errno;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Receive what is there within timeout_ms into c->buf; false when nothing came (timeout or EOF). */
static bool conn_receive(struct harness_conn *c, int timeout_ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};

    if (c->eof)
        return false;
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return false;
    if (c->cap - c->len < 65536) {
        size_t cap = c->cap ? c->cap * 2 : 131072;
        char *bigger = realloc(c->buf, cap);
        if (!bigger)
            return false;
        c->buf = bigger;
        c->cap = cap;
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return true; /* spurious wake-up */
        if (r <= 0) {
            c->eof = true;
            c->reset = r < 0 && errno == ECONNRESET;
            return false;
        }
        c->len += (size_t)r;
        return true;
    }
}

/*
 * Parse the response at the start of buf[0..len) (interim ones skipped). Returns how many bytes
 * it takes, or 0 while it is incomplete. `eof`: nothing more will come.
 */
static size_t parse_one_response(const char *buf, size_t len, bool eof, bool head,
                                 struct harness_response *rs)
{
    const char *p = buf, *end = buf + len;

    for (;;) {
        const char *blank = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!blank || (size_t)(end - p) < 12 || memcmp(p, "HTTP/1.", 7) != 0)
            return 0;
        long status = strtol(p + 9, NULL, 10);
        harness_response_clear_headers(rs);
        const char *line = memmem(p, (size_t)(blank + 2 - p), "\r\n", 2) + 2;
        while (line < blank + 2) {
            const char *nl = memmem(line, (size_t)(blank + 2 - line), "\r\n", 2);
            if (!nl)
                break;
            const char *colon = memchr(line, ':', (size_t)(nl - line));
            if (colon)
                harness_response_add_header(rs, line, (size_t)(colon - line), colon + 1,
                                            (size_t)(nl - colon - 1));
            line = nl + 2;
        }
        p = blank + 4;
        if (status >= 100 && status < 200 && status != 101)
            continue;
        rs->status = status;
        break;
    }
    rs->body_len = 0;
    rs->body_hash = HARNESS_FNV_OFFSET;
    free(rs->body);
    rs->body = calloc(1, 1);
    if (head || rs->status == 204 || rs->status == 304)
        return (size_t)(p - buf);
    const char *te = harness_header(rs, "Transfer-Encoding");
    const char *cl = harness_header(rs, "Content-Length");
    if (te && strcasecmp(te, "chunked") == 0) {
        for (;;) {
            const char *nl = memmem(p, (size_t)(end - p), "\r\n", 2);
            if (!nl)
                return 0;
            char *after;
            unsigned long long chunk = strtoull(p, &after, 16);
            if (after == p)
                return 0; /* not a chunk size: never complete */
            p = nl + 2;
            if (chunk == 0) {
                for (;;) { /* trailer fields, then the empty line */
                    nl = memmem(p, (size_t)(end - p), "\r\n", 2);
                    if (!nl)
                        return 0;
                    bool empty = nl == p;
                    p = nl + 2;
                    if (empty)
                        return (size_t)(p - buf);
                }
            }
            if ((unsigned long long)(end - p) < chunk + 2)
                return 0;
            harness_response_add_body(rs, p, (size_t)chunk, true);
            p += chunk + 2;
        }
    }
    if (cl) {
        unsigned long long want = strtoull(cl, NULL, 10);
        if ((unsigned long long)(end - p) < want)
            return 0;
        harness_response_add_body(rs, p, (size_t)want, true);
        return (size_t)(p - buf) + (size_t)want;
    }
    if (!eof)
        return 0;
    harness_response_add_body(rs, p, (size_t)(end - p), true);
    return len;
}

int harness_conn_read_response(struct harness_conn *c, bool head, int timeout_ms,
                               struct harness_response *rs)
{
    int64_t deadline = now_ms() + timeout_ms;

    *rs = (struct harness_response){.result = CURLE_RECV_ERROR, .body_hash = HARNESS_FNV_OFFSET};
    for (;;) {
        size_t used = c->len ? parse_one_response(c->buf, c->len, c->eof, head, rs) : 0;
        if (used > 0) {
            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
            rs->result = CURLE_OK;
            return 0;
        }
        int left = remaining_ms(deadline);
        if (c->eof || left == 0) {
            rs->status = 0;
            snprintf(rs->error, sizeof(rs->error), "%s with %zu bytes of an incomplete response",
                     c->eof ? (c->reset ? "connection reset" : "connection closed") : "timed out",
                     c->len);
            if (!c->eof)
                rs->result = CURLE_OPERATION_TIMEDOUT;
            return -1;
        }
        conn_receive(c, left);
    }
}

bool harness_conn_wait_closed(struct harness_conn *c, int timeout_ms, size_t *discarded)
{
    int64_t deadline = now_ms() + timeout_ms;
    size_t dropped = 0;

    while (!c->eof) {
        int left = remaining_ms(deadline);
        if (left == 0)
            break;
        conn_receive(c, left);
        dropped += c->len;
        c->len = 0;
    }
    if (discarded)
        *discarded = dropped;
    return c->eof;
}

void harness_conn_close(struct harness_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    *c = (struct harness_conn){.fd = -1};
}
