/* SPDX-License-Identifier: MIT */
/*
 * The integration-test harness (contracts in harness.h).
 *
 * Waiting: log files are watched through inotify on their directory (any write there wakes us,
 * and we re-read; the files are small), processes through a pidfd, sockets through poll. Each
 * wait also has a deadline, and a short poll cap as a fallback should an event be missed, so a
 * lost wake-up costs milliseconds rather than a hung test.
 *
 * Check runs every test in a forked child, while the fixture (an echo upstream and a daemon per
 * test case) lives in the parent. The atexit clean-up therefore only kills the processes that
 * the exiting process itself started.
 */
#include "harness-internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* --- sockets --------------------------------------------------------------------------- */

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

/* --- the client -------------------------------------------------------------------------- */

void harness_response_add_header(struct harness_response *rs, const char *name, size_t name_len,
                                 const char *value, size_t value_len)
{
    while (value_len > 0 && (*value == ' ' || *value == '\t'))
        value++, value_len--;
    while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    struct harness_header *h =
        realloc(rs->headers, (rs->headers_count + 1) * sizeof(struct harness_header));
    if (!h)
        return;
    rs->headers = h;
    h[rs->headers_count].name = strndup(name, name_len);
    h[rs->headers_count].value = strndup(value, value_len);
    rs->headers_count++;
}

void harness_response_clear_headers(struct harness_response *rs)
{
    for (size_t i = 0; i < rs->headers_count; i++) {
        free(rs->headers[i].name);
        free(rs->headers[i].value);
    }
    free(rs->headers);
    rs->headers = NULL;
    rs->headers_count = 0;
}

void harness_response_add_body(struct harness_response *rs, const char *data, size_t len, bool keep)
{
    rs->body_hash = harness_fnv1a64(rs->body_hash, data, len);
    if (keep) {
        char *bigger = realloc(rs->body, rs->body_len + len + 1);
        if (!bigger)
            return;
        rs->body = bigger;
        memcpy(rs->body + rs->body_len, data, len);
        rs->body[rs->body_len + len] = '\0';
    }
    rs->body_len += len;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *userdata)
{
    struct harness_transfer *t = userdata;
    size_t n = size * nitems, len = n;

    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        harness_response_clear_headers(&t->response); /* a new block (after 1xx) starts over */
        return n;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    const char *colon = memchr(line, ':', len);
    if (len > 0 && colon)
        harness_response_add_header(&t->response, line, (size_t)(colon - line), colon + 1,
                                    len - (size_t)(colon - line) - 1);
    return n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct harness_transfer *t = userdata;
    harness_response_add_body(&t->response, data, size * nmemb, !t->request.discard_body);
    if (t->request.abort_after_bytes && t->response.body_len >= t->request.abort_after_bytes)
        return 0; /* curl aborts the transfer and closes the connection */
    return size * nmemb;
}

static size_t on_read(char *buffer, size_t size, size_t nitems, void *userdata)
{
    struct harness_transfer *t = userdata;
    size_t max = size * nitems;
    uint64_t total =
        t->request.pattern_body_bytes ? t->request.pattern_body_bytes : t->request.body_len;
    uint64_t left = total - t->upload_pos;
    size_t n = left < max ? (size_t)left : max;

    if (t->request.pattern_body_bytes)
        harness_pattern_fill(buffer, n, t->upload_pos);
    else
        memcpy(buffer, (const char *)t->request.body + t->upload_pos, n);
    t->upload_pos += n;
    return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct harness_transfer *t = userdata;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    if (t->request.progress)
        t->request.progress(t->request.progress_arg);
    return 0;
}

struct harness_transfer *harness_transfer_new(CURL *easy, unsigned port,
                                              const struct harness_request *rq)
{
    struct harness_transfer *t = calloc(1, sizeof(*t));
    char url[64];
    bool has_expect = false;

    if (!t)
        return NULL;
    t->easy = easy ? easy : curl_easy_init();
    t->owns_easy = !easy;
    t->request = *rq;
    t->response.body_hash = HARNESS_FNV_OFFSET;
    if (!t->easy) {
        free(t);
        return NULL;
    }
    CURL *e = t->easy;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, rq->target ? rq->target : "/");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, rq->timeout_ms ? rq->timeout_ms : 15000L);
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->response.error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    /* The method, from a clean slate (a reused handle remembers the last one). */
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    const char *method = rq->method ? rq->method : "GET";
    bool has_body = rq->body || rq->pattern_body_bytes;
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (has_body) {
        curl_off_t size =
            rq->pattern_body_bytes ? (curl_off_t)rq->pattern_body_bytes : (curl_off_t)rq->body_len;
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, t);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, rq->chunked ? (curl_off_t)-1 : size);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    for (size_t i = 0; rq->headers && rq->headers[i]; i++) {
        if (strncasecmp(rq->headers[i], "Expect:", 7) == 0)
            has_expect = true;
        t->header_list = curl_slist_append(t->header_list, rq->headers[i]);
    }
    if (!has_expect) /* curl would add "Expect: 100-continue" to larger uploads */
        t->header_list = curl_slist_append(t->header_list, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->header_list);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, rq->progress ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
    return t;
}

void harness_transfer_done(struct harness_transfer *t, CURLcode result)
{
    struct harness_response *rs = &t->response;

    rs->result = result;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &rs->status);
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &rs->total_s);
    curl_easy_getinfo(t->easy, CURLINFO_LOCAL_PORT, &rs->local_port);
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &rs->connects);
    if (!rs->body && !t->request.discard_body)
        rs->body = calloc(1, 1);
    if (result != CURLE_OK && !rs->error[0])
        snprintf(rs->error, sizeof(rs->error), "%s", curl_easy_strerror(result));
}

void harness_transfer_free(struct harness_transfer *t)
{
    if (!t)
        return;
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, NULL);
    if (t->owns_easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->header_list);
    harness_response_free(&t->response);
    free(t);
}

void harness_http_on(CURL *easy, unsigned port, const struct harness_request *rq,
                     struct harness_response *rs)
{
    struct harness_transfer *t = harness_transfer_new(easy, port, rq);

    *rs = (struct harness_response){.result = CURLE_OUT_OF_MEMORY};
    if (!t)
        return;
    harness_transfer_done(t, curl_easy_perform(t->easy));
    *rs = t->response;
    t->response = (struct harness_response){0};
    harness_transfer_free(t);
}

void harness_http(unsigned port, const struct harness_request *rq, struct harness_response *rs)
{
    harness_http_on(NULL, port, rq, rs);
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

void harness_response_free(struct harness_response *rs)
{
    harness_response_clear_headers(rs);
    free(rs->body);
    rs->body = NULL;
}

const char *harness_header(const struct harness_response *rs, const char *name)
{
    for (size_t i = 0; i < rs->headers_count; i++)
        if (strcasecmp(rs->headers[i].name, name) == 0)
            return rs->headers[i].value;
    return NULL;
}

size_t harness_header_count(const struct harness_response *rs, const char *name)
{
    size_t count = 0;
    for (size_t i = 0; i < rs->headers_count; i++)
        if (strcasecmp(rs->headers[i].name, name) == 0)
            count++;
    return count;
}

json_t *harness_response_json(const struct harness_response *rs)
{
    if (!rs->body)
        return NULL;
    return json_loadb(rs->body, rs->body_len, 0, NULL);
}

/* --- trace context and data ----------------------------------------------------------- */

bool harness_is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool harness_traceparent_split(const char *tp, char trace_id[33], char span_id[17], char flags[3])
{
    if (!tp || strlen(tp) != 55 || strncmp(tp, "00-", 3) != 0 || tp[35] != '-' || tp[52] != '-' ||
        !harness_is_lower_hex(tp + 3, 32) || !harness_is_lower_hex(tp + 36, 16) ||
        !harness_is_lower_hex(tp + 53, 2))
        return false;
    memcpy(trace_id, tp + 3, 32);
    trace_id[32] = '\0';
    memcpy(span_id, tp + 36, 16);
    span_id[16] = '\0';
    memcpy(flags, tp + 53, 2);
    flags[2] = '\0';
    return true;
}

void harness_random_hex(char *out, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char bytes[256];
    bool nonzero = false;

    if (n > 2 * sizeof(bytes))
        n = 2 * sizeof(bytes);
    if (getrandom(bytes, (n + 1) / 2, 0) < 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        out[i] = digits[(bytes[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
        nonzero |= out[i] != '0';
    }
    if (!nonzero && n > 0)
        out[n - 1] = '1';
    out[n] = '\0';
}

void harness_uuid_from_hex(const char *hex32, char out[37])
{
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex32, hex32 + 8, hex32 + 12, hex32 + 16,
             hex32 + 20);
    for (size_t i = 0; i < 36; i++)
        if (out[i] >= 'A' && out[i] <= 'F')
            out[i] = (char)(out[i] - 'A' + 'a');
}

uint64_t harness_fnv1a64(uint64_t hash, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        hash ^= p[i];
        hash *= 0x100000001b3ull;
    }
    return hash;
}

void harness_pattern_fill(char *buf, size_t len, uint64_t offset)
{
    unsigned value = (unsigned)(offset % 251);
    for (size_t i = 0; i < len; i++) {
        buf[i] = (char)value;
        if (++value == 251)
            value = 0;
    }
}

uint64_t harness_pattern_hash(uint64_t n)
{
    char block[251 * 64];
    uint64_t hash = HARNESS_FNV_OFFSET, done = 0;

    harness_pattern_fill(block, sizeof(block), 0); /* a whole number of periods */
    while (done < n) {
        size_t step = n - done < sizeof(block) ? (size_t)(n - done) : sizeof(block);
        hash = harness_fnv1a64(hash, block, step);
        done += step;
    }
    return hash;
}

void harness_hash_hex(uint64_t hash, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)hash);
}

/* --- Check ------------------------------------------------------------------------------ */

void harness_tcase_timeout(TCase *tc, double seconds)
{
    const char *env = getenv("CK_DEFAULT_TIMEOUT");
    if (env && *env) {
        double asked = strtod(env, NULL);
        if (asked > seconds)
            seconds = asked;
    }
    tcase_set_timeout(tc, seconds);
}

int harness_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    srunner_run_all(sr, getenv("CK_VERBOSITY") ? CK_ENV : CK_VERBOSE);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* --- the bad upstream, raw connections, file descriptors (the hostile suites) ------------- */

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
