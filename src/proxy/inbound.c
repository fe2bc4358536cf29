/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd inside the loop (the contract is in inbound.h). Each daemon's epoll fd is a
 * loop watch whose event only defers the flush task; the flush task runs every daemon
 * (MHD_run) once the deferred work of the iteration is done, so that a request resumed by that
 * work is served in the same run. After a run, the daemons' earliest timeout (at most a second:
 * MHD also does housekeeping no fd announces, e.g. taking its listen socket back after running
 * out of descriptors) arms the adapter's timer.
 *
 * MHD's callbacks are translated into the handler table: the URI log callback is the request
 * line, the first access call the head, later ones body bytes or the body's end, the completion
 * callback the end. A request whose connection is being stopped gets no more handler calls.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "proxy/inbound.h"
#include "proxy/forward_headers.h"
#include "proxy/fresh_conns.h"
#include "common/diag.h"

#define MAX_LISTEN 64
/* After answering a request MHD needs two more runs before the connection waits for the
 * next one (state changes, then a read that finds nothing); it says so with a zero timeout.
 * Running it again at once saves the loop a round trip through epoll_wait for each. */
#define MHD_RERUNS 3
/* MHD runs at least this often, also when no fd and no timer of its own asks for it. */
#define MHD_IDLE_TICK_MS   1000
#define ACCEPT_RETRY_BATCH 64 /* per daemon and tick: the loop has other work too */

struct daemon_slot {
    struct inbound *in;
    struct MHD_Daemon *daemon;
    struct loop_watch watch;
};

struct inbound {
    struct loop *loop;
    struct inbound_settings settings;
    const struct inbound_handlers *handlers;
    void *client;
    struct daemon_slot daemons[MAX_LISTEN];
    size_t daemons_count;
    /* Bit i: daemons[i] stopped accepting for lack of descriptors; see retry_accepts. */
    uint64_t accept_stuck;
    struct fresh_list fresh; /* connections without a request line yet (fresh_conns.h) */
    struct loop_task flush;  /* run the daemons */
    struct loop_timer timer; /* the daemons' earliest timeout */
    bool stopping;
};
_Static_assert(MAX_LISTEN <= 64, "accept_stuck has one bit per daemon");

static struct MHD_Connection *connection_of(const struct inbound_request *r)
{
    return r->connection;
}

/* --- running the daemons ------------------------------------------------------------------ */

static void run_daemons(void *data, uint32_t events)
{
    struct inbound *in = data;
    int64_t wait = MHD_IDLE_TICK_MS;

    (void)events;
    for (size_t i = 0; i < in->daemons_count; i++) {
        MHD_UNSIGNED_LONG_LONG ms = 0;
        for (int round = 0; round < MHD_RERUNS; round++) {
            MHD_run(in->daemons[i].daemon);
            if (MHD_get_timeout(in->daemons[i].daemon, &ms) != MHD_YES) {
                ms = MHD_IDLE_TICK_MS;
                break;
            }
            if (ms > 0)
                break;
        }
        if ((int64_t)ms < wait)
            wait = (int64_t)ms;
    }
    loop_timer_set(&in->timer, loop_now_ms() + wait);
}

static void run_soon(struct inbound *in)
{
    loop_defer(in->loop, &in->flush);
}

static void on_daemon_event(void *data, uint32_t events)
{
    struct daemon_slot *slot = data;
    (void)events;
    run_soon(slot->in);
}

static void on_timer_due(void *data, uint32_t events)
{
    (void)events;
    run_soon(data);
}

/* --- accepting ---------------------------------------------------------------------------- */

/* True at most once a minute per `last_ms`, whichever worker asks: for conditions of the whole
 * process (descriptors or memory running out, every connection slot taken), which every worker
 * runs into at once and which would otherwise be reported once per worker. */
static bool once_a_minute(_Atomic int64_t *last_ms)
{
    int64_t now = loop_now_ms(), last = atomic_load_explicit(last_ms, memory_order_relaxed);
    if (last != 0 && now - last < 60000)
        return false;
    return atomic_compare_exchange_strong(last_ms, &last, now);
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
    struct inbound *in = cls;
    (void)addr;
    (void)addr_len;
    long open = atomic_load_explicit(in->settings.open_connections, memory_order_relaxed);
    if (open < (long)in->settings.connection_limit)
        return MHD_YES;
    if (once_a_minute(&reported_ms))
        diag(DIAG_ERROR,
             "worker %u: limits.max_connections reached (%u connections per worker): closing new "
             "connections at once until some close",
             in->settings.index, in->settings.connection_limit);
    return MHD_NO;
}

/*
 * Accepting for a daemon that gave up. When accept() fails for lack of descriptors (or memory),
 * libmicrohttpd 0.9.75 sets its at_limit flag, takes its listen socket out of its epoll set, and
 * clears the flag only when it frees one of that daemon's own connections
 * (MHD_cleanup_connections). Descriptors freed anywhere else (the other worker's clients, upstream
 * connections, a raised RLIMIT_NOFILE) do not wake it: with SO_REUSEPORT the connections hashed
 * to this worker wait in its backlog for as long as its own clients keep their connections open.
 * So, while a daemon is in that state, the owner's housekeeping tick tries accept() on its listen
 * socket (the attempt is the check whether descriptors are free again: one system call per tick)
 * and hands what it gets to MHD_add_connection, which serves it like any other connection (same
 * accept policy and limits) but does not look at at_limit. The state ends when one of the
 * daemon's connections closes (on_connection_event): MHD then accepts again itself.
 */
static void retry_accepts(struct inbound *in)
{
    for (size_t i = 0; i < in->daemons_count; i++) {
        if (!(in->accept_stuck & (1ull << i)))
            continue;
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(in->daemons[i].daemon, MHD_DAEMON_INFO_LISTEN_FD);
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
            MHD_add_connection(in->daemons[i].daemon, fd, (struct sockaddr *)&addr, addr_len);
            run_soon(in);
        }
    }
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
        struct inbound *in = cls;
        /* "Hit process or system resource limit at N connections, temporarily suspending
         * accept()": MHD set its at_limit flag; which of this worker's daemons is not said. */
        if (strstr(text, "temporarily suspending accept"))
            in->accept_stuck = in->daemons_count >= 64 ? ~0ull : (1ull << in->daemons_count) - 1;
        if (!once_a_minute(&reported_ms))
            return;
        diag(DIAG_ERROR,
             "worker %u: cannot accept connections (out of file descriptors or memory?): %s; "
             "existing connections are still served",
             in->settings.index, text);
        return;
    }
    diag(refused ? DIAG_WARN : DIAG_DEBUG, "libmicrohttpd%s: %s",
         refused ? " answered a request itself" : "", text);
}

static void on_connection_event(void *cls, struct MHD_Connection *conn, void **socket_context,
                                enum MHD_ConnectionNotificationCode code)
{
    struct inbound *in = cls;
    long delta = code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
    struct fresh_conn *fresh = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        fresh = info ? calloc(1, sizeof(*fresh)) : NULL; /* untracked if out of memory */
        if (fresh)
            fresh_add(&in->fresh, fresh, info->connect_fd, loop_now_ms());
        *socket_context = fresh;
    } else if (fresh) {
        fresh_remove(&in->fresh, fresh);
        free(fresh);
        *socket_context = NULL;
    }
    if (code == MHD_CONNECTION_NOTIFY_CLOSED && in->accept_stuck) {
        /* MHD clears its at_limit flag as it frees a connection: it accepts again itself. */
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
        for (size_t i = 0; info && i < in->daemons_count; i++)
            if (in->daemons[i].daemon == info->daemon)
                in->accept_stuck &= ~(1ull << i);
    }
    atomic_store_explicit(
        in->settings.open_connections,
        atomic_load_explicit(in->settings.open_connections, memory_order_relaxed) + delta,
        memory_order_relaxed);
}

/* --- request callbacks -------------------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct inbound *in = cls;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    struct inbound_request *r = in->handlers->on_request_line(
        in->client, conn, uri, info && info->client_addr ? info->client_addr : NULL);

    if (!r)
        return NULL; /* the access handler refuses a request without context */
    r->connection = conn;
    r->inbound = in;
    r->head_seen = false;
    r->suspended = false;
    r->hangup_watch = (struct loop_watch){.fd = -1};
    /* The request line is complete: from here the head is timed per request. */
    const union MHD_ConnectionInfo *sc =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (sc && sc->socket_context)
        fresh_remove(&in->fresh, sc->socket_context);
    return r;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct inbound *in = cls;
    struct inbound_request *r = *con_cls;
    bool ok;

    (void)conn;
    (void)url; /* decoded and cut at '?': useless for a proxy; the raw target came in on_uri */
    if (!r || in->stopping)
        return MHD_NO;
    if (!r->head_seen) {
        r->head_seen = true;
        ok = in->handlers->on_head(r, method, version);
    } else if (*upload_data_size > 0) {
        ok = in->handlers->on_body(r, upload_data, upload_data_size);
    } else {
        ok = in->handlers->on_body_end(r);
    }
    return ok ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct inbound *in = cls;
    struct inbound_request *r = *con_cls;

    (void)conn;
    if (!r)
        return;
    *con_cls = NULL;
    inbound_unwatch_hangup(r);
    in->handlers->on_completed(r, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK,
                               inbound_library_status(r));
}

/* --- one request -------------------------------------------------------------------------- */

struct header_walk {
    bool (*visit)(void *data, const struct header_field *field);
    void *data;
    /* Where the raw header block lies in MHD's read buffer. */
    uintptr_t cursor, end;
    bool bad_layout;
};

/* Only line terminators, whitespace and the NULs MHD wrote over ':' and CRLF may lie between
 * what MHD reports as header fields. */
static bool gap_is_clean(uintptr_t from, uintptr_t to)
{
    for (const char *p = (const char *)from; (uintptr_t)p < to; p++)
        if (*p != '\0' && *p != '\r' && *p != '\n' && *p != ' ' && *p != '\t')
            return false;
    return true;
}

/* Every field must lie inside the block, in order, with only clean gaps between. */
static bool field_layout_is_clean(struct header_walk *w, const char *name, size_t name_len,
                                  const char *value, size_t value_len)
{
    uintptr_t n = (uintptr_t)name, v = (uintptr_t)value;
    if (n < w->cursor || n + name_len > v || v + value_len > w->end)
        return false;
    if (!gap_is_clean(w->cursor, n) || !gap_is_clean(n + name_len, v))
        return false;
    w->cursor = v + value_len;
    return true;
}

static enum MHD_Result visit_field(void *cls, enum MHD_ValueKind kind, const char *name,
                                   size_t name_len, const char *value, size_t value_len)
{
    struct header_walk *w = cls;
    (void)kind;
    if (!value || !field_layout_is_clean(w, name, name_len, value, value_len)) {
        w->bad_layout = true;
        return MHD_NO;
    }
    struct header_field field = {name, name_len, value, value_len};
    return w->visit(w->data, &field) ? MHD_YES : MHD_NO;
}

bool inbound_walk_headers(struct inbound_request *r, const char *method, const char *version,
                          bool (*visit)(void *data, const struct header_field *field), void *data)
{
    const union MHD_ConnectionInfo *size_info =
        MHD_get_connection_info(connection_of(r), MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    /* The request line starts MHD's read buffer (method, target and version, split in place);
     * the header fields follow it, up to header_size bytes from the start. */
    struct header_walk w = {
        .visit = visit,
        .data = data,
        .cursor = (uintptr_t)version + strlen(version),
        .end = size_info ? (uintptr_t)method + size_info->header_size : 0,
    };
    MHD_get_connection_values_n(connection_of(r), MHD_HEADER_KIND, visit_field, &w);
    if (!w.bad_layout && !gap_is_clean(w.cursor, w.end))
        w.bad_layout = true; /* a fold or NUL in the last field, or a walk cut short */
    return !w.bad_layout;
}

struct each_header {
    bool (*visit)(void *data, const struct header_field *field);
    void *data;
};

static enum MHD_Result visit_any_field(void *cls, enum MHD_ValueKind kind, const char *name,
                                       size_t name_len, const char *value, size_t value_len)
{
    struct each_header *e = cls;
    struct header_field field = {name, name_len, value ? value : "", value ? value_len : 0};
    (void)kind;
    return e->visit(e->data, &field) ? MHD_YES : MHD_NO;
}

void inbound_each_header(struct inbound_request *r,
                         bool (*visit)(void *data, const struct header_field *field), void *data)
{
    struct each_header e = {visit, data};
    MHD_get_connection_values_n(connection_of(r), MHD_HEADER_KIND, visit_any_field, &e);
}

void inbound_suspend(struct inbound_request *r)
{
    if (r->suspended)
        return;
    r->suspended = true;
    MHD_suspend_connection(connection_of(r));
}

void inbound_resume(struct inbound_request *r)
{
    if (!r->suspended)
        return;
    inbound_unwatch_hangup(r); /* MHD watches the socket again */
    r->suspended = false;
    MHD_resume_connection(connection_of(r));
    run_soon(r->inbound);
}

static bool add_headers(struct MHD_Response *resp, const struct inbound_header *headers,
                        size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (MHD_add_response_header(resp, headers[i].name, headers[i].value) != MHD_YES)
            return false;
    return true;
}

static bool queue(struct inbound_request *r, unsigned status, struct MHD_Response *resp,
                  const struct inbound_header *headers, size_t count)
{
    if (!resp)
        return false;
    if (!add_headers(resp, headers, count)) {
        MHD_destroy_response(resp); /* out of memory: never a response missing a header */
        return false;
    }
    enum MHD_Result rc = MHD_queue_response(connection_of(r), status, resp);
    MHD_destroy_response(resp);
    return rc == MHD_YES;
}

bool inbound_respond(struct inbound_request *r, unsigned status,
                     const struct inbound_header *headers, size_t count, const char *body,
                     size_t body_len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(body_len, (void *)body, MHD_RESPMEM_MUST_COPY);
    return queue(r, status, resp, headers, count);
}

struct stream {
    struct inbound *in;
    ssize_t (*read)(void *data, char *buf, size_t max);
    void *data;
};

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    (void)pos;
    if (s->in->stopping)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    ssize_t n = s->read(s->data, buf, max);
    if (n == INBOUND_STREAM_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == INBOUND_STREAM_ABORT) {
        /* MHD closes the socket on its next run: make that run happen now, not on the tick. */
        run_soon(s->in);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return n; /* 0 only with the request suspended: MHD 0.9.75 busy-loops otherwise */
}

static void free_stream(void *cls)
{
    free(cls);
}

bool inbound_respond_stream(struct inbound_request *r, unsigned status,
                            const struct inbound_header *headers, size_t count, uint64_t size,
                            size_t block_size, ssize_t (*read)(void *data, char *buf, size_t max),
                            void *data)
{
    struct stream *s = malloc(sizeof(*s));
    if (!s)
        return false;
    *s = (struct stream){r->inbound, read, data};
    struct MHD_Response *resp =
        MHD_create_response_from_callback(size == INBOUND_SIZE_UNKNOWN ? MHD_SIZE_UNKNOWN : size,
                                          block_size, read_stream, s, free_stream);
    if (!resp) {
        free(s);
        return false;
    }
    return queue(r, status, resp, headers, count);
}

static int connection_fd(struct inbound_request *r)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection_of(r), MHD_CONNECTION_INFO_CONNECTION_FD);
    return info ? info->connect_fd : -1;
}

void inbound_watch_hangup(struct inbound_request *r, loop_fn *fn, void *data)
{
    int fd = connection_fd(r);
    if (fd >= 0)
        loop_watch(r->inbound->loop, &r->hangup_watch, fd, EPOLLRDHUP, fn, data);
}

void inbound_unwatch_hangup(struct inbound_request *r)
{
    if (r->inbound)
        loop_unwatch(r->inbound->loop, &r->hangup_watch);
}

bool inbound_write_and_close(struct inbound_request *r, const char *bytes, size_t len)
{
    int fd = connection_fd(r);
    if (fd < 0)
        return false;
    /* Best effort: the socket buffer of a connection that sent us this little is empty. */
    bool sent = send(fd, bytes, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len;
    shutdown(fd, SHUT_RDWR);
    run_soon(r->inbound); /* let MHD see the shut-down socket now */
    return sent;
}

unsigned inbound_library_status(struct inbound_request *r)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection_of(r), MHD_CONNECTION_INFO_HTTP_STATUS);
    return info ? info->http_status : 0;
}

/* --- the adapter -------------------------------------------------------------------------- */

static int start_daemon(struct inbound *in, int listen_fd, char *error, size_t error_size)
{
    const struct inbound_settings *s = &in->settings;
    /* libmicrohttpd reads the header block into half of this pool and keeps a record (~56
     * bytes) per header field in the rest, and the response headers need room too: 2x the
     * header limit plus 16 KiB, at least its default 32 KiB. (Many tiny fields can still fill
     * it; then libmicrohttpd answers 431 itself, see docs/security.md.) */
    size_t pool = 2 * s->max_header_bytes + 16384;
    if (pool < 32768)
        pool = 32768;
    unsigned connections = s->connection_limit + 1; /* on_accept enforces the limit */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG, 0, on_accept,
        in, on_access, in, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, in, MHD_OPTION_LISTEN_SOCKET,
        listen_fd, MHD_OPTION_URI_LOG_CALLBACK, on_uri, in, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, in, MHD_OPTION_NOTIFY_CONNECTION, on_connection_event, in,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_CONNECTION_LIMIT, connections,
        MHD_OPTION_CONNECTION_TIMEOUT, s->client_timeout_s, MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1,
        MHD_OPTION_END);
    if (!d) {
        close(listen_fd);
        snprintf(error, error_size, "libmicrohttpd refused to start a daemon");
        return -EIO;
    }
    struct daemon_slot *slot = &in->daemons[in->daemons_count];
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    *slot = (struct daemon_slot){.in = in, .daemon = d};
    if (!info ||
        loop_watch(in->loop, &slot->watch, info->epoll_fd, EPOLLIN, on_daemon_event, slot) < 0) {
        MHD_stop_daemon(d);
        snprintf(error, error_size, "cannot watch libmicrohttpd's epoll fd");
        return -EIO;
    }
    in->daemons_count++;
    return 0;
}

int inbound_new(struct loop *loop, const struct inbound_settings *settings,
                const struct inbound_handlers *handlers, void *client, const int *listen_fds,
                size_t listen_count, char *error, size_t error_size, struct inbound **ret)
{
    struct inbound *in = calloc(1, sizeof(*in));
    int rc = 0;

    if (!in || listen_count > MAX_LISTEN) {
        for (size_t i = 0; i < listen_count; i++)
            close(listen_fds[i]);
        free(in);
        snprintf(error, error_size, in ? "too many listen addresses" : "out of memory");
        return in ? -EINVAL : -ENOMEM;
    }
    in->loop = loop;
    in->settings = *settings;
    in->handlers = handlers;
    in->client = client;
    loop_task_init(&in->flush, LOOP_TASK_FLUSH, run_daemons, in);
    loop_timer_add(loop, &in->timer, on_timer_due, in);
    for (size_t i = 0; i < listen_count; i++) {
        if (rc < 0)
            close(listen_fds[i]);
        else
            rc = start_daemon(in, listen_fds[i], error, error_size);
    }
    if (rc < 0) {
        inbound_free(in);
        return rc;
    }
    loop_timer_set(&in->timer, loop_now_ms()); /* a first run, as after any event */
    *ret = in;
    return 0;
}

void inbound_begin_stop(struct inbound *in)
{
    in->stopping = true;
}

struct inbound *inbound_free(struct inbound *in)
{
    if (!in)
        return NULL;
    in->stopping = true;
    for (size_t i = 0; i < in->daemons_count; i++) {
        loop_unwatch(in->loop, &in->daemons[i].watch);
        MHD_run(in->daemons[i].daemon);
        MHD_stop_daemon(in->daemons[i].daemon);
    }
    loop_cancel(in->loop, &in->flush);
    loop_timer_remove(in->loop, &in->timer);
    free(in);
    return NULL;
}

void inbound_quiesce(struct inbound *in)
{
    for (size_t i = 0; i < in->daemons_count; i++) {
        MHD_socket fd = MHD_quiesce_daemon(in->daemons[i].daemon);
        if (fd != MHD_INVALID_SOCKET)
            close(fd); /* external polling: MHD no longer touches it */
    }
}

void inbound_housekeeping(struct inbound *in, int64_t now_ms, int64_t header_timeout_ms,
                          bool accepting)
{
    if (in->fresh.head)
        fresh_expire(&in->fresh, now_ms, header_timeout_ms);
    if (in->accept_stuck && accepting)
        retry_accepts(in);
    /* libmicrohttpd 0.9.75 can miss readiness that arrives with the last bytes of a read (its
     * epoll is edge-triggered; see tests/fuzz/fuzz-daemon.c): running it on every tick, as on
     * every idle wake-up, keeps such a connection from waiting for its timeout. */
    run_soon(in);
}

bool inbound_accept_stuck(const struct inbound *in)
{
    return in->accept_stuck != 0;
}

int64_t inbound_oldest_fresh_ms(const struct inbound *in)
{
    return in->fresh.head ? in->fresh.head->since_ms : -1;
}
