/* SPDX-License-Identifier: MIT */
/*
 * The event loop of one worker thread. One epoll set watches three kinds of fds:
 *   - the epoll fds of this worker's libmicrohttpd daemons (MHD_USE_EPOLL, no MHD thread);
 *   - curl's upstream sockets, registered through CURLMOPT_SOCKETFUNCTION;
 *   - an eventfd through which the main thread asks for a drain.
 * One iteration: wait; hand socket events to curl; run due curl timers; collect finished
 * transfers; service dirty requests (unpause curl, resume MHD connections); run MHD; service
 * again. Nothing calls one library from inside the other's callback: callbacks only mark a
 * request dirty, and the loop does the rest between batches.
 *
 * This is the design ../shared/notes measured at about 2x nginx's CPU per request where
 * blocking designs cost 2.5-3.2x and stall every connection behind one slow upstream.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "proxy/worker.h"
#include "config/config.h"
#include "observe/logline.h"
#include "proxy/request.h"
#include "proxy/upstream.h"
#include "proxy/curl_memory.h"
#include "common/diag.h"

#define TAG_CURL   0ull
#define TAG_MHD    1ull
#define TAG_WAKE   2ull
#define TAG_CLIENT 3ull
/* Watching costs two epoll_ctl calls, so only requests that wait longer than this get it: a
 * fast upstream answers before a hang-up could matter. */
#define WATCH_CLIENT_AFTER_MS 100
/* The checks no fd announces (clients to watch, deadlines, accept retries, libcurl's memory
 * reserve) run together, at most this often. */
#define HOUSEKEEPING_MS 50
#define TAG_SHIFT       32
#define MAX_EVENTS      128

/* What we registered in epoll for a curl socket. A socket curl stops watching between two
 * requests on a kept-alive upstream connection stays registered but PARKED, because curl
 * otherwise asks for a remove and an add on every request (two epoll_ctl calls). */
#define CURL_FD_REGISTERED 1u
#define CURL_FD_IN         2u
#define CURL_FD_OUT        4u
#define CURL_FD_PARKED     8u

/* A CLOCK_MONOTONIC reading in milliseconds, the unit of every deadline in the loop. */
static int64_t mono_ms(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

int64_t worker_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return mono_ms(&ts);
}

/* --- request bookkeeping ------------------------------------------------------------------ */

void worker_mark_dirty(struct worker *w, struct request *req)
{
    if (req->dirty)
        return;
    req->dirty = true;
    req->next_dirty = NULL;
    if (w->dirty_tail)
        w->dirty_tail->next_dirty = req;
    else
        w->dirty_head = req;
    w->dirty_tail = req;
}

void worker_forget_dirty(struct worker *w, struct request *req)
{
    struct request *prev = NULL;
    for (struct request *r = w->dirty_head; r; prev = r, r = r->next_dirty) {
        if (r != req)
            continue;
        if (prev)
            prev->next_dirty = r->next_dirty;
        else
            w->dirty_head = r->next_dirty;
        if (w->dirty_tail == r)
            w->dirty_tail = prev;
        break;
    }
    req->dirty = false;
}

void worker_add_live(struct worker *w, struct request *req)
{
    req->live_prev = NULL;
    req->live_next = w->live_head;
    if (w->live_head)
        w->live_head->live_prev = req;
    w->live_head = req;
}

void worker_remove_live(struct worker *w, struct request *req)
{
    if (req->live_prev)
        req->live_prev->live_next = req->live_next;
    else
        w->live_head = req->live_next;
    if (req->live_next)
        req->live_next->live_prev = req->live_prev;
    req->live_prev = req->live_next = NULL;
}

static void watch_client(struct worker *w, struct request *req)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info || info->connect_fd < 0)
        return;
    int fd = info->connect_fd;
    if ((size_t)fd >= w->client_watch_cap) {
        size_t cap = w->client_watch_cap ? w->client_watch_cap : 1024;
        while (cap <= (size_t)fd)
            cap *= 2;
        struct request **p = realloc(w->client_watch, cap * sizeof(*p));
        if (!p)
            return;
        memset(p + w->client_watch_cap, 0, (cap - w->client_watch_cap) * sizeof(*p));
        w->client_watch = p;
        w->client_watch_cap = cap;
    }
    struct epoll_event ev = {.events = EPOLLRDHUP,
                             .data.u64 = TAG_CLIENT << TAG_SHIFT | (uint32_t)fd};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return;
    w->client_watch[fd] = req;
    req->watched_fd = fd;
    req->watching_client = true;
}

void worker_unwatch_client(struct worker *w, struct request *req)
{
    if (!req->watching_client)
        return;
    req->watching_client = false;
    epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, req->watched_fd, NULL);
    w->client_watch[req->watched_fd] = NULL;
}

/* Start watching the clients of requests that have waited long enough for their upstream. */
static void watch_waiting_clients(struct worker *w, int64_t now)
{
    for (struct request *r = w->live_head; r; r = r->live_next)
        if (r->suspended && r->wait == WAIT_RESPONSE && !r->watching_client &&
            now - r->wait_since_ms >= WATCH_CLIENT_AFTER_MS)
            watch_client(w, r);
}

/* A transfer still running well past its route's timeout_ms: libcurl lost track of it (a
 * timer it failed to allocate never fires). Ended here as the timeout it is. */
#define STALLED_TRANSFER_GRACE_MS 1000

static bool transfer_is_stalled(const struct request *r, int64_t now)
{
    if (!r->upstream_active || !r->route || r->route->timeout_ms <= 0)
        return false;
    return now - mono_ms(&r->upstream_start_mono) >
           r->route->timeout_ms + STALLED_TRANSFER_GRACE_MS;
}

/* The deadlines no fd announces (a housekeeping check): connections without a request
 * line past limits.client_header_timeout_ms are closed; requests whose head is still
 * incomplete that long (slowloris) are answered 408 and closed; transfers libcurl lost are
 * ended as timeouts. */
static void enforce_request_deadlines(struct worker *w, int64_t now)
{
    if (fresh_expire(&w->fresh, now, w->config->client_header_timeout_ms) > 0)
        w->mhd_needs_run = true;
    for (struct request *r = w->live_head; r; r = r->live_next)
        if (!r->started && !r->head_timed_out &&
            now - mono_ms(&r->start_mono) >= r->config->client_header_timeout_ms) {
            request_on_head_timeout(r);
            w->mhd_needs_run = true; /* let MHD see the shut-down socket now */
        } else if (transfer_is_stalled(r, now)) {
            upstream_finish(r, CURLE_OPERATION_TIMEDOUT);
        }
}

static void on_client_event(struct worker *w, int fd)
{
    struct request *req = (size_t)fd < w->client_watch_cap ? w->client_watch[fd] : NULL;
    if (!req) {
        epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        return;
    }
    worker_unwatch_client(w, req);
    request_on_client_gone(req);
}

static void service_dirty_requests(struct worker *w)
{
    /* request_service may mark requests dirty again (curl callbacks run inside
     * curl_easy_pause); they are appended and serviced in this same pass. */
    while (w->dirty_head) {
        struct request *req = w->dirty_head;
        w->dirty_head = req->next_dirty;
        if (!w->dirty_head)
            w->dirty_tail = NULL;
        req->dirty = false;
        request_service(req);
    }
}

/* --- curl easy handles ------------------------------------------------------------------- */

static int on_curl_close_socket(void *clientp, curl_socket_t fd);

/* The options every transfer shares; false if one could not be set (out of memory: the handle
 * must then not be used - a missing CURLOPT_PROXY "" alone would send traffic to an inherited
 * http_proxy). */
static bool easy_configure(struct worker *w, CURL *e)
{
    return curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_curl_close_socket) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, w) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
           /* No proxy: also stops curl from reading *_proxy environment variables per
            * transfer, and from sending a sidecar's traffic where an inherited http_proxy
            * says. */
           curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HTTP_TRANSFER_DECODING, 1L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)CURL_MAX_WRITE_SIZE) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 64L * 1024) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, upstream_header_callback) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, upstream_write_callback) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_READFUNCTION, upstream_read_callback) == CURLE_OK;
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
 * Connections are still reused (they belong to the multi handle). A new handle costs ~10k
 * instructions per request, measured with callgrind.
 */
CURL *worker_new_easy(struct worker *w)
{
    CURL *e = curl_easy_init();
    if (e && !easy_configure(w, e)) {
        curl_easy_cleanup(e);
        return NULL;
    }
    return e;
}

/* --- curl multi callbacks ----------------------------------------------------------------- */

static uint8_t *curl_fd_state(struct worker *w, curl_socket_t fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= w->curl_fds_cap) {
        size_t cap = w->curl_fds_cap ? w->curl_fds_cap : 1024;
        while (cap <= (size_t)fd)
            cap *= 2;
        uint8_t *p = realloc(w->curl_fds, cap);
        if (!p)
            return NULL;
        w->curl_fds = p;
        CURL **e = realloc(w->curl_fd_easy, cap * sizeof(*e));
        if (!e)
            return NULL;
        w->curl_fd_easy = e;
        memset(p + w->curl_fds_cap, 0, cap - w->curl_fds_cap);
        memset(e + w->curl_fds_cap, 0, (cap - w->curl_fds_cap) * sizeof(*e));
        w->curl_fds_cap = cap;
    }
    return &w->curl_fds[fd];
}

static void curl_fd_register(struct worker *w, curl_socket_t fd, uint8_t *state, unsigned want)
{
    struct epoll_event ev = {
        .events = ((want & CURL_FD_IN) ? EPOLLIN : 0u) | ((want & CURL_FD_OUT) ? EPOLLOUT : 0u),
        .data.u64 = TAG_CURL << TAG_SHIFT | (uint32_t)fd,
    };
    int op = (*state & CURL_FD_REGISTERED) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(w->epoll_fd, op, fd, &ev) < 0) {
        /* Our record was stale (the fd was closed and reused behind our back): retry. */
        op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (epoll_ctl(w->epoll_fd, op, fd, &ev) < 0) {
            diag(DIAG_ERROR, "worker %u: epoll_ctl on upstream socket %d: %s", w->index, fd,
                 strerror(errno));
            *state = 0;
            return;
        }
    }
    *state = (uint8_t)(CURL_FD_REGISTERED | want);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct worker *w = userp;
    uint8_t *state = curl_fd_state(w, fd);

    (void)socketp;
    if (!state)
        return -1;
    w->curl_fd_easy[fd] = easy; /* who last used it: see curl_fd_in_transfer */
    if (what == CURL_POLL_REMOVE) {
        if (*state & CURL_FD_OUT)
            curl_fd_register(w, fd, state, CURL_FD_IN); /* a parked fd must not spin on OUT */
        if (*state & CURL_FD_REGISTERED)
            *state |= CURL_FD_PARKED;
        return 0;
    }
    unsigned want =
        ((what & CURL_POLL_IN) ? CURL_FD_IN : 0u) | ((what & CURL_POLL_OUT) ? CURL_FD_OUT : 0u);
    if ((*state & CURL_FD_REGISTERED) && (*state & (CURL_FD_IN | CURL_FD_OUT)) == want) {
        *state &= (uint8_t)~CURL_FD_PARKED;
        return 0;
    }
    curl_fd_register(w, fd, state, want);
    return 0;
}

static int on_curl_close_socket(void *clientp, curl_socket_t fd)
{
    struct worker *w = clientp;
    if (fd >= 0 && (size_t)fd < w->curl_fds_cap) {
        if (w->curl_fds[fd])
            epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        w->curl_fds[fd] = 0;
        w->curl_fd_easy[fd] = NULL;
    }
    return close(fd);
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

void worker_forget_easy(struct worker *w, CURL *easy, curl_socket_t fd)
{
    if (fd != CURL_SOCKET_BAD && (size_t)fd < w->curl_fds_cap && w->curl_fd_easy[fd] == easy)
        w->curl_fd_easy[fd] = NULL;
}

/* Whether fd belongs to a transfer in progress: curl also stops watching the socket of a
 * paused transfer, which must not be taken for an idle pooled connection. */
static bool curl_fd_in_transfer(struct worker *w, int fd)
{
    /* Compare, never dereference: handles are not reused, and one whose socket was missed by
     * worker_forget_easy is gone. (At worst a new handle at the same address makes this say
     * yes wrongly.) Runs only on events of parked sockets. */
    CURL *easy = (size_t)fd < w->curl_fds_cap ? w->curl_fd_easy[fd] : NULL;
    if (!easy)
        return false;
    for (const struct request *r = w->live_head; r; r = r->live_next)
        if (r->upstream_active && r->easy == easy)
            return true;
    return false;
}

/* An event on a socket curl is not watching (an idle pooled connection the upstream closed):
 * stop watching it, or level-triggered epoll would report it on every iteration. Curl notices
 * the dead connection itself when it next tries to reuse it. */
static bool curl_fd_is_parked(struct worker *w, int fd)
{
    uint8_t *state = curl_fd_state(w, fd);
    if (!state || (*state & CURL_FD_PARKED) || !(*state & CURL_FD_REGISTERED)) {
        epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        if (state && (*state & CURL_FD_PARKED) && !curl_fd_in_transfer(w, fd))
            poison_idle_connection(fd);
        if (state)
            *state = 0;
        return true;
    }
    return false;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct worker *w = userp;
    (void)multi;
    w->curl_deadline_ms = timeout_ms < 0 ? -1 : worker_now_ms() + timeout_ms;
    return 0;
}

static void collect_finished_transfers(struct worker *w)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(w->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct request *req = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        if (req)
            upstream_finish(req, msg->data.result);
    }
}

/* --- MHD glue ----------------------------------------------------------------------------- */

/* True at most once a minute per `last_ms`, whichever worker asks: for conditions of the whole
 * process (descriptors or memory running out, every connection slot taken), which every worker
 * runs into at once and which would otherwise be reported once per worker. */
static bool once_a_minute(_Atomic int64_t *last_ms)
{
    int64_t now = worker_now_ms(), last = atomic_load_explicit(last_ms, memory_order_relaxed);
    if (last != 0 && now - last < 60000)
        return false;
    return atomic_compare_exchange_strong(last_ms, &last, now);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '\n')
        text[--n] = '\0';
    /* MHD answers some malformed requests itself (414, a garbage request line, headers beyond
     * its buffer), without trace headers and, for the first two, without any callback, hence
     * without an access-log line. Its log message is all we get: never hide it. */
    bool refused = strstr(text, "HTTP response code is") != NULL;
    if (strstr(text, "resource limit") || strstr(text, "Error accepting connection")) {
        /* Out of file descriptors or memory: MHD stops accepting until one of its connections
         * closes (meanwhile retry_accepts accepts for it), and says so on every attempt. Report
         * it once a minute (for the whole process). */
        static _Atomic int64_t reported_ms;
        struct worker *w = cls;
        /* "Hit process or system resource limit at N connections, temporarily suspending
         * accept()": MHD set its at_limit flag; which of this worker's daemons is not said. */
        if (strstr(text, "temporarily suspending accept"))
            w->accept_stuck = w->daemons_count >= 64 ? ~0ull : (1ull << w->daemons_count) - 1;
        if (!once_a_minute(&reported_ms))
            return;
        diag(DIAG_ERROR,
             "worker %u: cannot accept connections (out of file descriptors or memory?): %s; "
             "existing connections are still served",
             w->index, text);
        return;
    }
    diag(refused ? DIAG_WARN : DIAG_DEBUG, "libmicrohttpd%s: %s",
         refused ? " answered a request itself" : "", text);
}

static void on_connection_event(void *cls, struct MHD_Connection *conn, void **socket_context,
                                enum MHD_ConnectionNotificationCode code)
{
    struct worker *w = cls;
    long delta = code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
    struct fresh_conn *fresh = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        fresh = info ? calloc(1, sizeof(*fresh)) : NULL; /* untracked if out of memory */
        if (fresh)
            fresh_add(&w->fresh, fresh, info->connect_fd, worker_now_ms());
        *socket_context = fresh;
    } else if (fresh) {
        fresh_remove(&w->fresh, fresh);
        free(fresh);
        *socket_context = NULL;
    }
    if (code == MHD_CONNECTION_NOTIFY_CLOSED && w->accept_stuck) {
        /* MHD clears its at_limit flag as it frees a connection: it accepts again itself. */
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
        for (size_t i = 0; info && i < w->daemons_count; i++)
            if (w->daemons[i] == info->daemon)
                w->accept_stuck &= ~(1ull << i);
    }
    atomic_store_explicit(&w->metrics.open_connections,
                          atomic_load_explicit(&w->metrics.open_connections, memory_order_relaxed) +
                              delta,
                          memory_order_relaxed);
}

/* This worker's share of limits.max_connections (over all its listening sockets). */
static unsigned connection_limit(const struct worker *w)
{
    unsigned connections = w->config->max_connections / w->config->workers;
    return connections < 1 ? 1 : connections;
}

/*
 * Beyond its share of limits.max_connections a worker accepts a connection and closes it at
 * once, so that the client (or its load balancer) learns it now. libmicrohttpd's own limit
 * would instead stop accepting and leave new connections in the listen backlog, where they wait
 * with no timeout for a slot, their requests unanswered. Its limit is therefore set one above.
 */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addr_len)
{
    static _Atomic int64_t reported_ms;
    struct worker *w = cls;
    (void)addr;
    (void)addr_len;
    long open = atomic_load_explicit(&w->metrics.open_connections, memory_order_relaxed);
    if (open < (long)connection_limit(w))
        return MHD_YES;
    if (once_a_minute(&reported_ms))
        diag(DIAG_ERROR,
             "worker %u: limits.max_connections reached (%u connections per worker): closing new "
             "connections at once until some close",
             w->index, connection_limit(w));
    return MHD_NO;
}

static int start_daemon(struct worker *w, int listen_fd, char *error, size_t error_size)
{
    const struct config *c = w->config;
    /* libmicrohttpd reads the header block into half of this pool and keeps a record (~56
     * bytes) per header field in the rest, and the response headers need room too: 2x the
     * header limit plus 16 KiB, at least its default 32 KiB. (Many tiny fields can still fill
     * it; then libmicrohttpd answers 431 itself, see docs/security.md.) */
    size_t pool = 2 * c->max_header_bytes + 16384;
    if (pool < 32768)
        pool = 32768;
    unsigned connections = connection_limit(w) + 1; /* on_accept enforces the limit */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG, 0, on_accept,
        w, request_on_access, w, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, w,
        MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_URI_LOG_CALLBACK, request_on_uri, w,
        MHD_OPTION_NOTIFY_COMPLETED, request_on_completed, w, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection_event, w, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
        MHD_OPTION_CONNECTION_LIMIT, connections, MHD_OPTION_CONNECTION_TIMEOUT,
        c->client_timeout_s, MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, MHD_OPTION_END);
    if (!d) {
        snprintf(error, error_size, "libmicrohttpd refused to start a daemon");
        return -EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    struct epoll_event ev = {.events = EPOLLIN,
                             .data.u64 = TAG_MHD << TAG_SHIFT | w->daemons_count};
    if (!info || epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, info->epoll_fd, &ev) < 0) {
        MHD_stop_daemon(d);
        snprintf(error, error_size, "cannot watch libmicrohttpd's epoll fd");
        return -EIO;
    }
    w->daemons[w->daemons_count++] = d;
    return 0;
}

int worker_init(struct worker *w, unsigned index, const struct config *config,
                struct accesslog *accesslog, const int *listen_fds, size_t listen_count,
                char *error, size_t error_size)
{
    memset(w, 0, sizeof(*w));
    w->index = index;
    config_ref(config);
    w->config = config;
    w->accesslog = accesslog;
    w->curl_deadline_ms = -1;
    w->wake_fd = -1;
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epoll_fd < 0)
        goto fail_errno;
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0)
        goto fail_errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_WAKE << TAG_SHIFT};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0)
        goto fail_errno;

    w->multi = curl_multi_init();
    if (!w->multi) {
        snprintf(error, error_size, "curl_multi_init failed");
        return -ENOMEM;
    }
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    /* Keep enough idle upstream connections for a burst of this worker's clients. */
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, 1024L);

    for (size_t i = 0; i < listen_count; i++) {
        int rc = start_daemon(w, listen_fds[i], error, error_size);
        if (rc < 0)
            return rc;
    }
    return 0;
fail_errno:
    snprintf(error, error_size, "worker setup: %s", strerror(errno));
    return -errno;
}

/* --- configuration swaps ------------------------------------------------------------------ */

void worker_publish_config(struct worker *w, const struct config *config)
{
    uint64_t one = 1;
    const struct config *unused = atomic_exchange(&w->next_config, config);
    config_unref(unused); /* a newer reload overtook one this worker had not taken yet */
    ssize_t r = write(w->wake_fd, &one, sizeof(one));
    (void)r;
}

/*
 * Take a published config. Requests in flight keep the config they started with; the old one
 * is released when the last of them ends. No atomics per request: only this thread counts.
 */
static void take_published_config(struct worker *w)
{
    if (!atomic_load_explicit(&w->next_config, memory_order_relaxed))
        return;
    const struct config *old = w->config;
    unsigned users = 0;
    for (struct request *r = w->live_head; r; r = r->live_next)
        if (r->config == old)
            users++;
    if (users > 0 && w->retired_count == w->retired_cap) {
        size_t cap = w->retired_cap ? w->retired_cap * 2 : 8;
        struct retired_config *p = realloc(w->retired, cap * sizeof(*p));
        if (!p)
            return; /* out of memory: take it on a later iteration */
        w->retired = p;
        w->retired_cap = cap;
    }
    w->config = atomic_exchange(&w->next_config, NULL);
    if (users == 0)
        config_unref(old);
    else
        w->retired[w->retired_count++] = (struct retired_config){old, users};
}

void worker_config_released(struct worker *w, const struct config *config)
{
    for (size_t i = 0; i < w->retired_count; i++) {
        if (w->retired[i].config != config)
            continue;
        if (--w->retired[i].requests == 0) {
            config_unref(config);
            w->retired[i] = w->retired[--w->retired_count];
        }
        return;
    }
}

/* --- the loop ----------------------------------------------------------------------------- */

/*
 * Accepting for a daemon that gave up. When accept() fails for lack of descriptors (or memory),
 * libmicrohttpd 0.9.75 sets its at_limit flag, takes its listen socket out of its epoll set, and
 * clears the flag only when it frees one of that daemon's own connections
 * (MHD_cleanup_connections). Descriptors freed anywhere else (the other worker's clients, upstream
 * connections, a raised RLIMIT_NOFILE) do not wake it: with SO_REUSEPORT the connections hashed
 * to this worker wait in its backlog for as long as its own clients keep their connections open.
 * So, while a daemon is in that state, the worker tries accept() on its listen socket itself in
 * every housekeeping tick (the attempt is the check whether descriptors are free again: one
 * system call per tick) and hands what it gets to MHD_add_connection, which serves it like any
 * other connection (same accept policy and limits) but does not look at at_limit. The state ends
 * when one of the daemon's connections closes (on_connection_event): MHD then accepts again itself.
 */
#define ACCEPT_RETRY_BATCH 64 /* per daemon and tick: the loop has other work too */
_Static_assert(WORKER_MAX_LISTEN <= 64, "accept_stuck has one bit per daemon");

static void retry_accepts(struct worker *w)
{
    for (size_t i = 0; i < w->daemons_count; i++) {
        if (!(w->accept_stuck & (1ull << i)))
            continue;
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(w->daemons[i], MHD_DAEMON_INFO_LISTEN_FD);
        if (!info || info->listen_fd == MHD_INVALID_SOCKET)
            continue;
        for (int n = 0; n < ACCEPT_RETRY_BATCH; n++) {
            struct sockaddr_storage addr;
            socklen_t addr_len = sizeof(addr);
            int fd = accept4(info->listen_fd, (struct sockaddr *)&addr, &addr_len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED)
                    continue;
                break; /* EAGAIN: backlog empty; EMFILE and the like: still out, next tick */
            }
            /* MHD closes the socket itself if it refuses it (on_accept's limit, no memory). */
            MHD_add_connection(w->daemons[i], fd, (struct sockaddr *)&addr, addr_len);
            w->mhd_needs_run = true;
        }
    }
}

static int compute_timeout(struct worker *w, int64_t now)
{
    int64_t timeout = -1;

    if (w->dirty_head || w->mhd_needs_run)
        return 0;
    if (w->curl_deadline_ms >= 0)
        timeout = w->curl_deadline_ms > now ? w->curl_deadline_ms - now : 0;
    w->mhd_deadline_ms = -1;
    for (size_t i = 0; i < w->daemons_count; i++) {
        MHD_UNSIGNED_LONG_LONG mhd_ms;
        if (MHD_get_timeout(w->daemons[i], &mhd_ms) != MHD_YES)
            continue;
        if (w->mhd_deadline_ms < 0 || now + (int64_t)mhd_ms < w->mhd_deadline_ms)
            w->mhd_deadline_ms = now + (int64_t)mhd_ms;
        if (timeout < 0 || (int64_t)mhd_ms < timeout)
            timeout = (int64_t)mhd_ms;
    }
    if (w->draining) {
        int64_t left = w->drain_deadline_ms > now ? w->drain_deadline_ms - now : 0;
        if (timeout < 0 || left < timeout)
            timeout = left;
        if (timeout > 100)
            timeout = 100; /* re-check the in-flight count regularly */
    }
    if ((w->active_requests > 0 || (w->accept_stuck && !w->draining) ||
         curl_memory_reserve_spent()) &&
        (timeout < 0 || timeout > HOUSEKEEPING_MS))
        timeout = HOUSEKEEPING_MS; /* see housekeeping */
    if (w->fresh.head) { /* oldest connection without a request line: enforce_request_deadlines */
        int64_t left = w->fresh.head->since_ms + w->config->client_header_timeout_ms - now;
        left = left < 100 ? 100 : left;
        if (timeout < 0 || left < timeout)
            timeout = left;
    }
    if (timeout > 1000 || timeout < 0)
        timeout = 1000;
    return (int)timeout;
}

/* After answering a request MHD needs two more runs before the connection waits for the
 * next one (state changes, then a read that finds nothing); it says so with a zero timeout.
 * Running it again at once saves the loop a round trip through epoll_wait for each. */
#define MHD_RERUNS 3

static void run_daemons(struct worker *w)
{
    w->mhd_needs_run = false;
    for (size_t i = 0; i < w->daemons_count; i++) {
        for (int round = 0; round < MHD_RERUNS; round++) {
            MHD_UNSIGNED_LONG_LONG ms;
            MHD_run(w->daemons[i]);
            if (MHD_get_timeout(w->daemons[i], &ms) != MHD_YES || ms > 0)
                break;
        }
    }
}

static void begin_drain(struct worker *w)
{
    w->draining = true;
    w->drain_deadline_ms = worker_now_ms() + w->config->drain_timeout_ms;
    for (size_t i = 0; i < w->daemons_count; i++) {
        MHD_socket fd = MHD_quiesce_daemon(w->daemons[i]);
        if (fd != MHD_INVALID_SOCKET)
            close(fd); /* external polling: MHD no longer touches it */
    }
}

/* Curl's timer, if due. */
static void run_due_curl_timer(struct worker *w)
{
    int running;
    if (w->curl_deadline_ms < 0 || worker_now_ms() < w->curl_deadline_ms)
        return;
    w->curl_deadline_ms = -1;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

/* What no fd announces, at most every HOUSEKEEPING_MS. */
static void housekeeping(struct worker *w, int64_t now)
{
    if (w->active_requests > 0 || w->fresh.head) {
        watch_waiting_clients(w, now);
        enforce_request_deadlines(w, now);
    }
    if (w->accept_stuck && !w->draining)
        retry_accepts(w);
    if (curl_memory_reserve_spent() && curl_memory_refill())
        diag(DIAG_WARN,
             "memory ran out: libcurl's %u KiB reserve was used (%lu times since start); "
             "taken back now",
             CURL_MEMORY_RESERVE / 1024, curl_memory_releases());
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event events[MAX_EVENTS];

    for (;;) {
        take_published_config(w);
        if (!w->draining && atomic_load(&w->command) == WORKER_DRAIN)
            begin_drain(w);
        int64_t now = worker_now_ms();
        if (w->draining && (w->active_requests == 0 || now >= w->drain_deadline_ms))
            break;
        int n = epoll_wait(w->epoll_fd, events, MAX_EVENTS, compute_timeout(w, now));
        if (n < 0 && errno != EINTR) {
            diag(DIAG_ERROR, "worker %u: epoll_wait: %s", w->index, strerror(errno));
            break;
        }
        bool mhd_ready = false;
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64 >> TAG_SHIFT;
            if (tag == TAG_MHD) {
                mhd_ready = true;
            } else if (tag == TAG_CLIENT) {
                on_client_event(w, (int)(uint32_t)events[i].data.u64);
            } else if (tag == TAG_WAKE) {
                uint64_t ignored;
                ssize_t r = read(w->wake_fd, &ignored, sizeof(ignored));
                (void)r;
            } else {
                int fd = (int)(uint32_t)events[i].data.u64;
                int flags = 0, running;
                if (curl_fd_is_parked(w, fd))
                    continue;
                if (events[i].events & EPOLLIN)
                    flags |= CURL_CSELECT_IN;
                if (events[i].events & EPOLLOUT)
                    flags |= CURL_CSELECT_OUT;
                if (events[i].events & (EPOLLERR | EPOLLHUP))
                    flags |= CURL_CSELECT_ERR;
                curl_multi_socket_action(w->multi, fd, flags, &running);
            }
        }
        run_due_curl_timer(w);
        collect_finished_transfers(w);
        int64_t after = worker_now_ms();
        if (after - w->last_housekeeping_ms >= HOUSEKEEPING_MS) {
            w->last_housekeeping_ms = after;
            housekeeping(w, after);
        }
        service_dirty_requests(w);
        /* MHD only when it has something to do: its fd was readable, a connection was
         * resumed, one of its own timers (idle clients, TURBO's pending work) is due, or the
         * loop woke up idle.
         * Skipping it after pure upstream events saves a system call per request. */
        /* n == 0 is the idle tick (at least once a second): MHD also does housekeeping that no
         * fd announces, e.g. taking the listen socket back into its epoll set after running
         * out of file descriptors. */
        if (mhd_ready || w->mhd_needs_run || n == 0 ||
            (w->mhd_deadline_ms >= 0 && worker_now_ms() >= w->mhd_deadline_ms)) {
            run_daemons(w);
            service_dirty_requests(w);
        }
    }
    logline_thread_cleanup();
    return NULL;
}

int worker_start(struct worker *w)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals belong to the main thread */
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

void worker_request_drain(struct worker *w)
{
    uint64_t one = 1;
    atomic_store(&w->command, WORKER_DRAIN);
    ssize_t r = write(w->wake_fd, &one, sizeof(one));
    (void)r;
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

void worker_destroy(struct worker *w)
{
    /* Whatever is still in flight after the drain timeout is cut off: resume every suspended
     * connection (MHD must not stop with suspended ones) and let MHD close them. */
    w->stopping = true;
    for (struct request *r = w->live_head; r; r = r->live_next) {
        worker_unwatch_client(w, r);
        if (r->suspended) {
            r->suspended = false;
            MHD_resume_connection(r->conn);
        }
    }
    for (size_t i = 0; i < w->daemons_count; i++) {
        MHD_run(w->daemons[i]);
        MHD_stop_daemon(w->daemons[i]);
    }
    while (w->free_requests) {
        struct request *r = w->free_requests;
        w->free_requests = r->next_free;
        free(r->up.data);
        free(r->down.data);
        arena_free(&r->arena);
        free(r);
    }
    if (w->multi)
        curl_multi_cleanup(w->multi); /* closes pooled connections through our callback */
    free(w->curl_fds);
    free(w->curl_fd_easy);
    free(w->client_watch);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    if (w->epoll_fd >= 0)
        close(w->epoll_fd);
    for (size_t i = 0; i < w->retired_count; i++)
        config_unref(w->retired[i].config);
    free(w->retired);
    config_unref(atomic_exchange(&w->next_config, NULL));
    config_unref(w->config);
}
