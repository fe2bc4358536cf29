/* SPDX-License-Identifier: MIT */
/*
 * Upstream transfers with libcurl (the contract is in upstream.h). Defaults a proxy must
 * override:
 *   - the target goes through CURLOPT_REQUEST_TARGET, byte for byte (CURLOPT_URL would
 *     normalise dot-segments, strip fragments and re-encode);
 *   - curl adds "Expect: 100-continue" to uploads and "Accept: any" to every request: the
 *     client's header lines disable both (see proxy/forward_headers.c);
 *   - no proxy from the environment, no decompression, no redirects, HTTP/1.1 only.
 *
 * The multi handle's sockets are watched in the loop (CURLMOPT_SOCKETFUNCTION) and its timer is
 * a loop timer; finished transfers are collected by a deferred task after each batch of socket
 * and timer actions. A socket curl stops watching between two requests on a kept-alive
 * connection stays in epoll but PARKED, because curl otherwise asks for a remove and an add on
 * every request (two epoll_ctl calls). The fd table records, per socket, the id of the transfer
 * that used it last - an id, never a pointer to a handle that may be gone.
 *
 * The data callbacks never block: a full download buffer pauses curl's writes, an empty upload
 * buffer pauses its reads, and the client hears of it through its callbacks; upstream_resume
 * unpauses once the client made room or data.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "proxy/upstream.h"
#include "common/arena.h"
#include "common/diag.h"
#include "config/config.h"

_Static_assert(UPSTREAM_DETAIL_MAX == CURL_ERROR_SIZE, "the detail is libcurl's error buffer");

/* A transfer running this long past its timeout_ms was lost by libcurl (see
 * upstream_pool_expire_stalled) and is ended here as the timeout it is. */
#define STALLED_TRANSFER_GRACE_MS 1000
/* Idle upstream connections kept per pool, enough for a burst of one worker's clients. */
#define MAX_POOLED_CONNECTIONS 1024L

/* What we registered in epoll for a curl socket. */
#define SOCKET_REGISTERED 1u
#define SOCKET_IN         2u
#define SOCKET_OUT        4u
#define SOCKET_PARKED     8u

struct curl_socket {
    struct loop_watch watch;
    struct upstream_pool *pool;
    int fd;
    uint8_t state;        /* SOCKET_* bits */
    uint64_t transfer_id; /* the transfer curl last reported it for; 0 = none */
};

struct upstream_transfer {
    struct upstream_pool *pool;
    struct upstream_transfer *prev, *next; /* the pool's running transfers */
    uint64_t id;
    CURL *easy;
    const struct upstream_callbacks *callbacks;
    void *data;
    struct bytebuf *upload, *download;
    struct response_head *head;
    struct arena *arena;
    long timeout_ms;
    int64_t started_ms;
    bool upload_complete;
    bool read_paused, write_paused;
    bool head_done;
    bool bad_response;                /* we aborted it: the head was not valid HTTP */
    char error_text[CURL_ERROR_SIZE]; /* CURLOPT_ERRORBUFFER: libcurl's reason for a failure */
};

struct upstream_pool {
    struct loop *loop;
    CURLM *multi;
    struct loop_timer timer;
    struct loop_task collect;
    struct curl_socket **sockets; /* by fd, allocated on first use */
    size_t sockets_cap;
    struct upstream_transfer *running;
    struct upstream_transfer *spare; /* freed transfers, reused */
    uint64_t last_id;
};

static double elapsed_ms(curl_off_t us)
{
    return (double)us / 1000.0;
}

/* --- curl callbacks on a transfer --------------------------------------------------------- */

static size_t on_header_line(char *line, size_t size, size_t nitems, void *userdata)
{
    struct upstream_transfer *t = userdata;
    size_t n = size * nitems;

    if (t->head_done)
        return n; /* trailers: not forwarded */
    switch (response_head_feed(t->head, line, n, t->arena)) {
    case RESPONSE_LINE_OK:
        return n;
    case RESPONSE_LINE_COMPLETE:
        t->head_done = true;
        /* The head is complete: the connection may go back to the pool once the body is read
         * (it is forbidden until now, so that a head cut short is never pooled). */
        curl_easy_setopt(t->easy, CURLOPT_FORBID_REUSE, 0L);
        t->callbacks->on_head(t->data);
        return n;
    case RESPONSE_LINE_INVALID:
        break;
    }
    t->bad_response = true;
    return 0; /* makes curl abort the transfer */
}

static size_t on_body_bytes(char *bytes, size_t size, size_t nmemb, void *userdata)
{
    struct upstream_transfer *t = userdata;
    size_t n = size * nmemb;

    if (bytebuf_space(t->download) < n) {
        t->write_paused = true;
        return CURL_WRITEFUNC_PAUSE; /* curl keeps the chunk and offers it again */
    }
    bytebuf_put(t->download, bytes, n);
    t->callbacks->on_body(t->data);
    return n;
}

static size_t on_upload_wanted(char *buffer, size_t size, size_t nitems, void *userdata)
{
    struct upstream_transfer *t = userdata;
    size_t n = bytebuf_take(t->upload, buffer, size * nitems);

    if (n > 0) {
        t->callbacks->on_upload_space(t->data);
        return n;
    }
    if (t->upload_complete)
        return 0; /* end of the request body */
    t->read_paused = true;
    return CURL_READFUNC_PAUSE;
}

/* --- the fd table ------------------------------------------------------------------------- */

static struct curl_socket *socket_of(struct upstream_pool *pool, curl_socket_t fd, bool create)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= pool->sockets_cap) {
        if (!create)
            return NULL;
        size_t cap = pool->sockets_cap ? pool->sockets_cap : 1024;
        while (cap <= (size_t)fd)
            cap *= 2;
        struct curl_socket **p = realloc(pool->sockets, cap * sizeof(*p));
        if (!p)
            return NULL;
        memset(p + pool->sockets_cap, 0, (cap - pool->sockets_cap) * sizeof(*p));
        pool->sockets = p;
        pool->sockets_cap = cap;
    }
    if (!pool->sockets[fd] && create) {
        struct curl_socket *s = calloc(1, sizeof(*s));
        if (!s)
            return NULL;
        s->pool = pool;
        s->fd = fd;
        pool->sockets[fd] = s;
    }
    return pool->sockets[fd];
}

static bool transfer_is_running(const struct upstream_pool *pool, uint64_t id)
{
    for (const struct upstream_transfer *t = pool->running; t; t = t->next)
        if (t->id == id)
            return true;
    return false;
}

/*
 * An idle pooled upstream connection became readable: the upstream closed it, or sent bytes
 * nobody asked for. libcurl 7.88 would reuse it if data is waiting (its liveness check peeks and
 * sees bytes), and hand those bytes to the next request as its response: one client's request
 * answered with what the upstream sent for nobody, and every later response on the connection
 * shifted by one. Swap the socket under the fd for one whose peer has closed, so that curl's check
 * finds it dead and closes it; curl still owns (and closes) the fd.
 */
static void poison_idle_connection(int fd)
{
    /* A socket whose peer has closed: curl's check (recv with MSG_PEEK) reads end-of-file and
     * drops the connection quietly. (An unconnected socket would fail that recv with EINVAL,
     * which curl takes for "alive": the request would fail on send and need curl's retry.) */
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        return;
    close(pair[1]);
    dup3(pair[0], fd, O_CLOEXEC);
    close(pair[0]);
}

/* An event on a socket curl is not watching (an idle pooled connection the upstream closed):
 * stop watching it, or level-triggered epoll would report it on every iteration. Curl notices
 * the dead connection itself when it next tries to reuse it. The socket of a paused transfer is
 * not watched by curl either; it must not be taken for an idle one. */
static bool socket_is_parked(struct curl_socket *s)
{
    if (!(s->state & SOCKET_PARKED) && (s->state & SOCKET_REGISTERED))
        return false;
    loop_unwatch(s->pool->loop, &s->watch);
    if ((s->state & SOCKET_PARKED) && !transfer_is_running(s->pool, s->transfer_id))
        poison_idle_connection(s->fd);
    s->state = 0;
    return true;
}

static void on_socket_event(void *data, uint32_t events)
{
    struct curl_socket *s = data;
    struct upstream_pool *pool = s->pool;
    int flags = 0, running;

    if (socket_is_parked(s))
        return;
    if (events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
    curl_multi_socket_action(pool->multi, s->fd, flags, &running);
    loop_defer(pool->loop, &pool->collect);
}

static void socket_register(struct curl_socket *s, unsigned want)
{
    uint32_t events = ((want & SOCKET_IN) ? EPOLLIN : 0u) | ((want & SOCKET_OUT) ? EPOLLOUT : 0u);
    int rc = loop_watch(s->pool->loop, &s->watch, s->fd, events, on_socket_event, s);
    if (rc < 0) {
        diag(DIAG_ERROR, "epoll_ctl on upstream socket %d: %s", s->fd, strerror(-rc));
        s->state = 0;
        return;
    }
    s->state = (uint8_t)(SOCKET_REGISTERED | want);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct upstream_pool *pool = userp;
    struct curl_socket *s = socket_of(pool, fd, true);
    struct upstream_transfer *t = NULL;

    (void)socketp;
    if (!s)
        return -1;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    s->transfer_id = t ? t->id : 0; /* who last used it: see socket_is_parked */
    if (what == CURL_POLL_REMOVE) {
        if (s->state & SOCKET_OUT)
            socket_register(s, SOCKET_IN); /* a parked fd must not spin on OUT */
        if (s->state & SOCKET_REGISTERED)
            s->state |= SOCKET_PARKED;
        return 0;
    }
    unsigned want =
        ((what & CURL_POLL_IN) ? SOCKET_IN : 0u) | ((what & CURL_POLL_OUT) ? SOCKET_OUT : 0u);
    if ((s->state & SOCKET_REGISTERED) && (s->state & (SOCKET_IN | SOCKET_OUT)) == want) {
        s->state &= (uint8_t)~SOCKET_PARKED;
        return 0;
    }
    socket_register(s, want);
    return 0;
}

static int on_curl_close_socket(void *clientp, curl_socket_t fd)
{
    struct upstream_pool *pool = clientp;
    struct curl_socket *s = socket_of(pool, fd, false);

    if (s) {
        loop_unwatch(pool->loop, &s->watch);
        s->state = 0;
        s->transfer_id = 0;
    }
    return close(fd);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct upstream_pool *pool = userp;
    (void)multi;
    loop_timer_set(&pool->timer, timeout_ms < 0 ? -1 : loop_now_ms() + timeout_ms);
    return 0;
}

static void on_timer_due(void *data, uint32_t events)
{
    struct upstream_pool *pool = data;
    int running;
    (void)events;
    curl_multi_socket_action(pool->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    loop_defer(pool->loop, &pool->collect);
}

/* --- transfers ---------------------------------------------------------------------------- */

enum upstream_error upstream_error_from_curl(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_OK:
        return UPSTREAM_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return UPSTREAM_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return UPSTREAM_CONNECT_FAILED;
    /* TLS: the handshake, the peer's certificate, or our own TLS settings and files. */
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
        return UPSTREAM_TLS_FAILED;
    default:
        return UPSTREAM_RESET;
    }
}

static void transfer_unlink(struct upstream_transfer *t)
{
    struct upstream_pool *pool = t->pool;
    if (t->prev)
        t->prev->next = t->next;
    else
        pool->running = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = pool->spare;
    t->prev = NULL;
    pool->spare = t;
}

/* Take the handle out of the multi and destroy it; its socket stays open in curl's cache. */
static void transfer_release_easy(struct upstream_transfer *t)
{
    struct upstream_pool *pool = t->pool;
    curl_socket_t fd = CURL_SOCKET_BAD;

    curl_easy_getinfo(t->easy, CURLINFO_ACTIVESOCKET, &fd);
    curl_multi_remove_handle(pool->multi, t->easy);
    struct curl_socket *s = socket_of(pool, fd, false);
    if (s && s->transfer_id == t->id)
        s->transfer_id = 0;
    curl_easy_cleanup(t->easy);
    t->easy = NULL;
}

/*
 * Remove libcurl's " after N ms" / " after N milliseconds" from text: the elapsed time differs
 * on every attempt, and would keep the diagnostics of an upstream that is down from collapsing
 * into one line with a count (common/diag.h). The configured timeouts say how long anyway.
 */
static void drop_elapsed_time(char *text)
{
    static const char *const units[] = {" ms", " milliseconds"};
    char *at = text;
    while ((at = strstr(at, " after ")) != NULL) {
        const char *p = at + strlen(" after ");
        const char *digits = p;
        while (*p >= '0' && *p <= '9')
            p++;
        size_t unit_len = 0;
        for (size_t i = 0; p > digits && i < sizeof(units) / sizeof(units[0]); i++)
            if (strncmp(p, units[i], strlen(units[i])) == 0 && strlen(units[i]) > unit_len)
                unit_len = strlen(units[i]);
        if (unit_len == 0) {
            at++;
            continue;
        }
        p += unit_len;
        memmove(at, p, strlen(p) + 1);
    }
}

/*
 * The outcome's detail: libcurl's error buffer, else its code's text; and the system's words
 * for the errno behind it, which libcurl 7.88 keeps out of its message ("Failed to connect to
 * 127.0.0.1 port 9 after 0 ms: Couldn't connect to server" gains "(Connection refused)").
 */
static void describe_failure(const struct upstream_transfer *t, CURLcode result, long os_errno,
                             char *out, size_t size)
{
    if (result == CURLE_OK) {
        out[0] = '\0';
        return;
    }
    const char *text = t->error_text[0] != '\0' ? t->error_text : curl_easy_strerror(result);
    char buf[128];
    bool socket_error =
        result == CURLE_COULDNT_CONNECT || result == CURLE_SEND_ERROR || result == CURLE_RECV_ERROR;
    const char *why =
        socket_error && os_errno > 0 ? strerror_r((int)os_errno, buf, sizeof(buf)) : NULL;
    int n = snprintf(out, size, "%s", text);
    drop_elapsed_time(out);
    n = (int)strlen(out);
    if (why && !strstr(text, why) && n >= 0 && (size_t)n < size)
        snprintf(out + n, size - (size_t)n, " (%s)", why); /* cut if it does not fit */
}

static void transfer_finish(struct upstream_transfer *t, CURLcode result)
{
    curl_off_t connect_us = 0, ttfb_us = 0, pretransfer_us = 0;
    long os_errno = 0;

    curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
    curl_easy_getinfo(t->easy, CURLINFO_STARTTRANSFER_TIME_T, &ttfb_us);
    /* libcurl reports 0 for a time it never reached; a connection that was reused has a connect
     * time of 0 too, but it got as far as sending (pretransfer). */
    curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
    curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &os_errno);
    transfer_release_easy(t);
    if (result == CURLE_OK && !t->head_done && !t->bad_response) {
        /* libcurl 7.88 reports success when the upstream closes after the status line or in
         * the middle of the head: for us that is a broken upstream. */
        result = CURLE_GOT_NOTHING;
        t->bad_response = true;
    }
    /* A copy: t goes back to the spares below, and on_done may start another transfer. */
    char detail[CURL_ERROR_SIZE];
    describe_failure(t, result, os_errno, detail, sizeof(detail));
    enum upstream_error error = t->bad_response ? UPSTREAM_RESET : upstream_error_from_curl(result);
    /* A timeout before anything could be sent (TCP or the TLS handshake did not complete) is a
     * connect failure, as docs/configuration.md says of connect_timeout_ms: the upstream is
     * unreachable, not slow to answer. */
    if (error == UPSTREAM_TIMEOUT && pretransfer_us == 0)
        error = UPSTREAM_CONNECT_FAILED;
    struct upstream_outcome outcome = {
        .error = error,
        .bad_response = t->bad_response,
        .detail = detail,
        .connect_ms = connect_us > 0 || pretransfer_us > 0 ? elapsed_ms(connect_us) : -1,
        .ttfb_ms = ttfb_us > 0 ? elapsed_ms(ttfb_us) : -1,
    };
    const struct upstream_callbacks *callbacks = t->callbacks;
    void *data = t->data;
    transfer_unlink(t);
    callbacks->on_done(data, &outcome);
}

static void collect_finished(void *data, uint32_t events)
{
    struct upstream_pool *pool = data;
    CURLMsg *msg;
    int left;

    (void)events;
    while ((msg = curl_multi_info_read(pool->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct upstream_transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (t)
            transfer_finish(t, msg->data.result);
    }
}

/*
 * A route's TLS settings. A CA file or directory replaces the system store (libcurl would
 * otherwise keep its built-in default for the one not given). libcurl copies the strings; the
 * CONNECT_TO list must outlive the transfer, so its node lives in the request's arena. Pooled
 * connections are reused only by transfers with the same CA, client certificate, version and
 * verification settings (libcurl compares them), so a reload's new settings never ride on a
 * connection made with the old ones.
 */
static bool set_tls_options(CURL *e, const struct route_tls *tls, struct arena *arena)
{
    if (!tls)
        return true;
    long version = tls->min_version == 13   ? (long)CURL_SSLVERSION_TLSv1_3
                   : tls->min_version == 12 ? (long)CURL_SSLVERSION_TLSv1_2
                                            : (long)CURL_SSLVERSION_DEFAULT;
    bool set = curl_easy_setopt(e, CURLOPT_SSLVERSION, version) == CURLE_OK;
    if (set && (tls->ca_file || tls->ca_dir))
        set = curl_easy_setopt(e, CURLOPT_CAINFO, tls->ca_file) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_CAPATH, tls->ca_dir) == CURLE_OK;
    if (set && tls->client_certificate)
        set = curl_easy_setopt(e, CURLOPT_SSLCERT, tls->client_certificate) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_SSLKEY, tls->client_key) == CURLE_OK;
    if (set && tls->insecure_skip_verify)
        set = curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK;
    if (set && tls->connect_to) {
        struct curl_slist *node = arena_alloc(arena, sizeof(*node));
        if (!node)
            return false;
        *node = (struct curl_slist){.data = tls->connect_to};
        set = curl_easy_setopt(e, CURLOPT_CONNECT_TO, node) == CURLE_OK;
    }
    return set;
}

/*
 * Every transfer gets a new easy handle, and none is reused: libcurl 7.88 keeps state in a
 * handle that its next transfer trips over. Two cases fuzz-daemon found:
 *   - the header store keeps a pointer to the previous response's last header, which it frees
 *     when the next transfer starts (current libcurl clears the pointer, 7.88 does not): a
 *     response whose first header line is folded then makes libcurl read and realloc freed
 *     memory, a heap use-after-free any upstream could trigger;
 *   - the count of retries on dead kept-alive connections is reset only by curl_easy_reset:
 *     after five in a handle's life, a healthy upstream got a 502.
 * Connections are still reused (they belong to the multi handle). See docs/security.md.
 *
 * Every option is checked: one that cannot be set (out of memory) must not leave the handle in
 * use - a missing CURLOPT_PROXY "" alone would send traffic where an inherited http_proxy says.
 */
static CURL *new_easy(struct upstream_transfer *t, const struct upstream_spec *spec,
                      struct curl_slist *headers)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    bool set =
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_curl_close_socket) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, t->pool) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        /* No proxy: also stops curl from reading *_proxy environment variables per transfer. */
        curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HTTP_TRANSFER_DECODING, 1L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)CURL_MAX_WRITE_SIZE) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 64L * 1024) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header_line) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body_bytes) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_upload_wanted) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_URL, spec->url) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, spec->unix_path) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, spec->target) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_PRIVATE, t) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HEADERDATA, t) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_READDATA, t) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, spec->connect_timeout_ms) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, spec->timeout_ms) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error_text) == CURLE_OK &&
        set_tls_options(e, spec->tls, spec->arena);
    if (set && spec->is_head) {
        set = curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK;
    } else if (set && spec->has_body) {
        set = curl_easy_setopt(e, CURLOPT_UPLOAD, 1L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)spec->content_length) ==
                  CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, spec->method) == CURLE_OK;
    } else if (set && strcmp(spec->method, "GET") != 0) {
        set = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, spec->method) == CURLE_OK;
    }
    if (!set) {
        curl_easy_cleanup(e);
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L); /* until the head is complete */
    return e;
}

/* The header lines as a curl_slist whose nodes live in the arena: curl only reads the list
 * (the struct is public), and this saves a malloc and a copy per header. */
static struct curl_slist *header_list(const struct upstream_spec *spec)
{
    struct curl_slist *head = NULL, **tail = &head;

    for (size_t i = 0; i < spec->header_count; i++) {
        struct curl_slist *node = arena_alloc(spec->arena, sizeof(*node));
        if (!node)
            return NULL;
        node->data = (char *)spec->header_lines[i];
        node->next = NULL;
        *tail = node;
        tail = &node->next;
    }
    return head;
}

int upstream_start(struct upstream_pool *pool, const struct upstream_spec *spec,
                   const struct upstream_callbacks *callbacks, void *data,
                   struct upstream_transfer **ret)
{
    struct upstream_transfer *t = pool->spare;
    struct curl_slist *headers = header_list(spec);

    if (!headers && spec->header_count > 0)
        return -ENOMEM;
    if (t)
        pool->spare = t->next;
    else if (!(t = malloc(sizeof(*t))))
        return -ENOMEM;
    *t = (struct upstream_transfer){
        .pool = pool,
        .id = ++pool->last_id,
        .callbacks = callbacks,
        .data = data,
        .upload = spec->upload,
        .download = spec->download,
        .head = spec->head,
        .arena = spec->arena,
        .timeout_ms = spec->timeout_ms,
        .started_ms = loop_now_ms(),
    };
    response_head_init(t->head);
    t->easy = new_easy(t, spec, headers);
    if (!t->easy) {
        t->next = pool->spare;
        pool->spare = t;
        return -ENOMEM;
    }
    if (curl_multi_add_handle(pool->multi, t->easy) != CURLM_OK) {
        /* A failed add (out of memory) can leave the handle half-attached. */
        curl_multi_remove_handle(pool->multi, t->easy);
        curl_easy_cleanup(t->easy);
        t->next = pool->spare;
        pool->spare = t;
        return -EIO;
    }
    t->next = pool->running;
    if (pool->running)
        pool->running->prev = t;
    pool->running = t;
    *ret = t;
    return 0;
}

void upstream_resume(struct upstream_transfer *t)
{
    if (t->read_paused && (bytebuf_len(t->upload) > 0 || t->upload_complete)) {
        t->read_paused = false;
        curl_easy_pause(t->easy, CURLPAUSE_CONT);
    }
    if (t->write_paused && bytebuf_space(t->download) >= CURL_MAX_WRITE_SIZE) {
        t->write_paused = false;
        curl_easy_pause(t->easy, CURLPAUSE_CONT);
    }
}

bool upstream_is_paused(const struct upstream_transfer *t)
{
    return t->read_paused || t->write_paused;
}

void upstream_upload_complete(struct upstream_transfer *t)
{
    t->upload_complete = true;
}

void upstream_cancel(struct upstream_transfer *t)
{
    transfer_release_easy(t);
    transfer_unlink(t);
}

void upstream_pool_expire_stalled(struct upstream_pool *pool, int64_t now_ms)
{
    struct upstream_transfer *t = pool->running;
    while (t) {
        struct upstream_transfer *next = t->next;
        if (t->timeout_ms > 0 && now_ms - t->started_ms > t->timeout_ms + STALLED_TRANSFER_GRACE_MS)
            transfer_finish(t, CURLE_OPERATION_TIMEDOUT);
        t = next;
    }
}

/* --- the pool ----------------------------------------------------------------------------- */

int upstream_pool_new(struct loop *loop, struct upstream_pool **ret)
{
    struct upstream_pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    pool->loop = loop;
    pool->multi = curl_multi_init();
    if (!pool->multi) {
        free(pool);
        return -ENOMEM;
    }
    loop_timer_add(loop, &pool->timer, on_timer_due, pool);
    loop_task_init(&pool->collect, LOOP_TASK_DEFERRED, collect_finished, pool);
    curl_multi_setopt(pool->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(pool->multi, CURLMOPT_SOCKETDATA, pool);
    curl_multi_setopt(pool->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(pool->multi, CURLMOPT_TIMERDATA, pool);
    curl_multi_setopt(pool->multi, CURLMOPT_MAXCONNECTS, MAX_POOLED_CONNECTIONS);
    *ret = pool;
    return 0;
}

struct upstream_pool *upstream_pool_free(struct upstream_pool *pool)
{
    if (!pool)
        return NULL;
    while (pool->running)
        upstream_cancel(pool->running);
    curl_multi_cleanup(pool->multi); /* closes pooled connections through our callback */
    loop_cancel(pool->loop, &pool->collect);
    loop_timer_remove(pool->loop, &pool->timer);
    for (size_t i = 0; i < pool->sockets_cap; i++) {
        if (pool->sockets[i])
            loop_unwatch(pool->loop, &pool->sockets[i]->watch);
        free(pool->sockets[i]);
    }
    free(pool->sockets);
    while (pool->spare) {
        struct upstream_transfer *t = pool->spare;
        pool->spare = t->next;
        free(t);
    }
    free(pool);
    return NULL;
}
