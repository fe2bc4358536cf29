/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The inbound side: the libmicrohttpd adapter. One `struct inbound` runs one MHD daemon per
 * listening socket of a worker inside that worker's loop (MHD_USE_EPOLL, no MHD thread), and
 * hands each request to its client through a small table of handlers. Everything that touches
 * libmicrohttpd is here: accepting (with the connection limit and the retry after descriptors
 * ran out), the request callbacks, the header walk (with the checks for what MHD 0.9.75 mangles),
 * suspending and resuming, queuing responses, the connections still without a request line.
 *
 * The handlers run inside MHD_run (a flush task of the loop, see loop.h): they may suspend their
 * own request and queue its response, and must defer anything else (resuming, another library).
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proxy/loop.h"

struct inbound;
struct sockaddr;
struct header_field;

/* Per-request state of the adapter; the client embeds it in its request object. */
struct inbound_request {
    void *connection; /* the library's (opaque) */
    struct inbound *inbound;
    bool head_seen; /* the first access call happened */
    bool suspended;
    struct loop_watch hangup_watch; /* see inbound_watch_hangup */
};

struct inbound_handlers {
    /* The request line arrived (target = the raw request target, valid during the call only).
     * Returns the client's request (its embedded inbound_request), or NULL to refuse it. */
    struct inbound_request *(*on_request_line)(void *client, void *connection, const char *target,
                                               const struct sockaddr *client_addr);
    /* The head is complete (method and version valid while the request lives); walk the fields
     * with inbound_walk_headers. Returns false to close the connection. */
    bool (*on_head)(struct inbound_request *r, const char *method, const char *version);
    /* Request body bytes: take what fits and lower *size by it; the rest is offered again
     * after a resume (suspend when none fits). Returns false to close the connection. */
    bool (*on_body)(struct inbound_request *r, const char *data, size_t *size);
    /* The body is complete (again after each resume until a response is queued): respond, or
     * suspend until it can. Returns false to close the connection. */
    bool (*on_body_end)(struct inbound_request *r);
    /* The connection is done with the request. `library_status` is the status libmicrohttpd
     * sent itself (0 = none); `complete` whether the response went out completely. */
    void (*on_completed)(struct inbound_request *r, bool complete, unsigned library_status);
};

struct inbound_settings {
    unsigned index;                /* the worker's, for diagnostics */
    unsigned connection_limit;     /* open connections; beyond it new ones are closed at once */
    unsigned client_timeout_s;     /* idle connections are closed after this */
    size_t max_header_bytes;       /* sizes libmicrohttpd's per-connection memory */
    atomic_long *open_connections; /* the gauge this adapter keeps */
};

/* Serve the listening sockets (owned by the inbound from now on, also on failure).
 * 0 or -errno with a reason in error. */
int inbound_new(struct loop *loop, const struct inbound_settings *settings,
                const struct inbound_handlers *handlers, void *client, const int *listen_fds,
                size_t listen_count, char *error, size_t error_size, struct inbound **ret);
/* From now on, every request still in progress is ended (the reader errors, the handlers are
 * not called again); resume the suspended ones, then free. */
void inbound_begin_stop(struct inbound *in);
/* Stop every daemon (closing their connections, which completes their requests). Accepts NULL;
 * returns NULL. */
struct inbound *inbound_free(struct inbound *in);

/* Stop accepting: close the listening sockets; connections in progress go on. */
void inbound_quiesce(struct inbound *in);
/* The checks no fd announces, for the owner's housekeeping tick: close connections that sent no
 * request line within header_timeout_ms, accept for a daemon that stopped accepting for lack of
 * descriptors, and run the daemons once. */
void inbound_housekeeping(struct inbound *in, int64_t now_ms, int64_t header_timeout_ms,
                          bool accepting);
/* Whether a daemon stopped accepting for lack of descriptors (housekeeping retries it). */
bool inbound_accept_stuck(const struct inbound *in);
/* When the oldest connection still without a request line was accepted (loop_now_ms time), or
 * -1 when there is none. */
int64_t inbound_oldest_fresh_ms(const struct inbound *in);

/* --- one request ------------------------------------------------------------------------ */

/*
 * One pass over the request's header fields, in order, during on_head. Each field is checked
 * against the raw head first: libmicrohttpd 0.9.75 parses in place and mangles an obs-fold
 * continuation (appended to the *name*) and a NUL in a value (which ends it early), leaving
 * bytes of the head out of every field (RFC 9112 section 5.2, RFC 9110 section 5.5). The walk
 * stops at the first such field, or when visit returns false. Returns false when the head's
 * layout is not clean (bytes missing between or after the fields visited).
 */
bool inbound_walk_headers(struct inbound_request *r, const char *method, const char *version,
                          bool (*visit)(void *data, const struct header_field *field), void *data);

/* Every field as the library parsed it, unchecked (for logging a request whose walk stopped). */
void inbound_each_header(struct inbound_request *r,
                         bool (*visit)(void *data, const struct header_field *field), void *data);

void inbound_suspend(struct inbound_request *r);
/* Resume a suspended request; not from inside a handler. The daemon runs again this iteration. */
void inbound_resume(struct inbound_request *r);

struct inbound_header {
    const char *name; /* NUL-terminated */
    const char *value;
};

/* Queue a response with a copy of body. False when that failed (out of memory): the caller
 * returns false from its handler and the connection is closed. */
bool inbound_respond(struct inbound_request *r, unsigned status,
                     const struct inbound_header *headers, size_t count, const char *body,
                     size_t body_len);

#define INBOUND_SIZE_UNKNOWN UINT64_MAX
#define INBOUND_STREAM_END   ((ssize_t)-1) /* the body is complete */
#define INBOUND_STREAM_ABORT ((ssize_t)-2) /* break the connection: never a silently short body */

/* Queue a response whose body the reader produces: it returns bytes written into buf, 0 when
 * none is there yet (after suspending the request), INBOUND_STREAM_END or INBOUND_STREAM_ABORT.
 * size is the body length or INBOUND_SIZE_UNKNOWN. */
bool inbound_respond_stream(struct inbound_request *r, unsigned status,
                            const struct inbound_header *headers, size_t count, uint64_t size,
                            size_t block_size, ssize_t (*read)(void *data, char *buf, size_t max),
                            void *data);

/* Watch the suspended request's client socket for a hang-up: fn(data, events) runs when the
 * client closes (libmicrohttpd does not look at a suspended connection). */
void inbound_watch_hangup(struct inbound_request *r, loop_fn *fn, void *data);
void inbound_unwatch_hangup(struct inbound_request *r);

/* Write bytes straight to the client socket (best effort, never blocking) and shut it down;
 * for answering a head libmicrohttpd will never complete. Returns whether all were written. */
bool inbound_write_and_close(struct inbound_request *r, const char *bytes, size_t len);

/* The status libmicrohttpd sent on the connection itself (0 = none). */
unsigned inbound_library_status(struct inbound_request *r);
