/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Upstream transfers: the libcurl adapter. One pool per loop holds a curl multi handle whose
 * sockets and timer live in that loop, and the kept-alive upstream connections. A client starts
 * a transfer from a finished spec (what to send, where, limits) and a small callback table, and
 * lends it the buffers the bodies flow through. Nothing here knows who the client is (a proxied
 * request, a span exporter): it includes no libmicrohttpd, request, route or worker header.
 *
 * Callbacks run inside libcurl (on_head, on_body, on_upload_space) or right after it reported a
 * transfer finished (on_done), on the loop's thread. They must not call into another library nor
 * back into this pool for the same transfer (no upstream_resume, no upstream_cancel): they
 * record what happened and defer the rest (loop_defer).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytebuf.h"
#include "proxy/loop.h"
#include "proxy/response_head.h"

struct arena;
struct route_tls;
struct upstream_pool;
struct upstream_transfer;

#define UPSTREAM_DETAIL_MAX 256 /* libcurl's CURL_ERROR_SIZE */

/* How a transfer ended, in the terms a client answers with (see proxy/refusal.h). */
enum upstream_error {
    UPSTREAM_OK,
    UPSTREAM_CONNECT_FAILED, /* no connection (refused, unreachable, no such host) */
    UPSTREAM_TIMEOUT,        /* the connect or the whole exchange took too long */
    UPSTREAM_RESET,          /* the connection broke, or the answer was not valid HTTP */
    UPSTREAM_TLS_FAILED,     /* TLS: handshake, certificate verification, local TLS files */
};

struct upstream_outcome {
    enum upstream_error error;
    bool bad_response; /* the head was invalid, oversized or incomplete (error is RESET) */
    /* libcurl's words for the failure ("" when OK): its error buffer, with the reason (the
     * certificate problem, the errno text of a failed connect), else its code's text. Valid
     * during on_done only; at most UPSTREAM_DETAIL_MAX bytes with the NUL. */
    const char *detail;
    double connect_ms; /* until the connection was up (0 when reused); -1: none was */
    double ttfb_ms;    /* until the first response byte; -1: none came */
};

/* What to send and where. Every pointer is lent: it must stay valid until on_done or
 * upstream_cancel. */
struct upstream_spec {
    const char *url;             /* "http://host:port/" whose connection (pool) the transfer uses */
    const struct route_tls *tls; /* https: the route's TLS settings (config/config.h), or NULL */
    const char *unix_path;       /* a unix socket to connect to instead, or NULL */
    const char *target;          /* the request target, sent byte for byte */
    const char *method;
    bool is_head;                    /* no response body will come */
    bool has_body;                   /* a request body follows (upload) */
    int64_t content_length;          /* of that body; -1 = chunked */
    const char *const *header_lines; /* "Name: value" (or "Name;" for empty), in order */
    size_t header_count;
    long connect_timeout_ms;
    long timeout_ms;            /* the whole exchange; 0 = none */
    struct arena *arena;        /* for the header list nodes and the head's copies */
    struct bytebuf *upload;     /* request body: the client puts, the transfer takes */
    struct bytebuf *download;   /* response body: the transfer puts, the client takes */
    struct response_head *head; /* filled as the head arrives */
};

struct upstream_callbacks {
    /* The final head is complete in spec->head (status >= 200). */
    void (*on_head)(void *data);
    /* New bytes in spec->download. */
    void (*on_body)(void *data);
    /* Bytes were taken from spec->upload: there is space again. */
    void (*on_upload_space)(void *data);
    /* The transfer ended (it is gone: forget the handle). */
    void (*on_done)(void *data, const struct upstream_outcome *outcome);
};

/* A pool in `loop`. 0 or -ENOMEM. */
int upstream_pool_new(struct loop *loop, struct upstream_pool **ret);
/* Cancel every transfer (no callbacks), close every connection. Accepts NULL; returns NULL. */
struct upstream_pool *upstream_pool_free(struct upstream_pool *pool);

/*
 * Start a transfer. On success *ret is the handle and the callbacks will run, on_done last;
 * on failure (-ENOMEM, -EIO) nothing was started and no callback ever runs.
 */
int upstream_start(struct upstream_pool *pool, const struct upstream_spec *spec,
                   const struct upstream_callbacks *callbacks, void *data,
                   struct upstream_transfer **ret);

/* The client put bytes into upload, marked its end, or took bytes from download: let the
 * transfer move again if it waited for that. Not from inside a callback. */
void upstream_resume(struct upstream_transfer *transfer);
/* Whether the transfer waits for the client: for upload bytes (or their end), or for room in
 * download. Only then does upstream_resume have anything to do. */
bool upstream_is_paused(const struct upstream_transfer *transfer);
/* The request body is complete: the upload ends once upload is empty. */
void upstream_upload_complete(struct upstream_transfer *transfer);
/* Stop the transfer; on_done will not run. Not from inside a callback. */
void upstream_cancel(struct upstream_transfer *transfer);

/* Transfers still running well past their timeout (libcurl lost track of one whose timer it
 * could not allocate): end them as timeouts. For the owner's housekeeping tick. */
void upstream_pool_expire_stalled(struct upstream_pool *pool, int64_t now_ms);

/* The curl error code's class (exposed for its unit test). */
enum upstream_error upstream_error_from_curl(int curl_code);
