/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * One proxied request: its trace context, its inbound MHD connection, its upstream curl
 * transfer and the two bounded buffers between them. Requests are pooled per worker.
 *
 * Who may touch what: everything here belongs to the worker thread that accepted the
 * connection; nothing is shared between threads.
 */
#include <curl/curl.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "tracehop/tracectx.h"
#include "common/addrfmt.h"
#include "common/arena.h"
#include "common/bytebuf.h"

struct worker;
struct route;
struct config;

/* Why the inbound connection is suspended, i.e. what must happen before it is resumed. */
enum request_wait {
    WAIT_NONE = 0,
    WAIT_UPLOAD_SPACE, /* request body buffer full: curl must drain it */
    WAIT_RESPONSE,     /* request read: upstream response headers (or failure) needed */
    WAIT_BODY_DATA,    /* streaming response: more upstream body (or its end) needed */
};

struct response_header {
    const char *name;
    size_t name_len;
    const char *value;
};

#define REQUEST_MAX_RESPONSE_HEADERS 128

struct request {
    struct worker *worker;
    struct request *next_free;  /* worker's pool */
    struct request *next_dirty; /* worker's list of requests needing attention */
    bool dirty;
    struct request *live_prev, *live_next; /* worker's list of requests in progress */

    struct MHD_Connection *conn;
    const struct config *config; /* the config this request started with */
    const struct route *route;

    /* lifecycle */
    bool started;        /* first handler call done */
    bool head_timed_out; /* cut off by limits.client_header_timeout_ms (a 408 was written) */
    bool body_complete;  /* final handler call reached: the whole request was read */
    bool response_queued;
    bool streaming; /* the response is fed by the content reader */
    enum request_wait wait;
    bool suspended;
    int64_t wait_since_ms; /* when the current WAIT_RESPONSE began */
    bool watching_client;  /* the worker watches the client socket for a hang-up */
    int watched_fd;        /* ...this one */
    bool client_gone;      /* ...and saw one: close instead of answering */

    /* inbound request */
    struct timespec start_real, start_mono;
    char *target; /* raw request target, as received */
    size_t target_len;
    size_t path_len;    /* target up to '?' */
    const char *method; /* arena copy */
    bool is_head;
    bool has_body;
    int64_t content_length; /* -1 = chunked */
    const char *host;
    const char *user_agent;
    const char **logged_headers; /* values of config access_log.fields (NULL = absent) */
    char client_addr[ADDRFMT_MAX];
    uint64_t bytes_received;  /* request body bytes read from the client */
    uint64_t bytes_discarded; /* of which thrown away (refused or already answered) */
    uint64_t bytes_sent;      /* response body bytes handed to the client */

    /* trace context */
    struct tracehop_hop hop;
    char traceparent_out[TRACEHOP_TRACEPARENT_LEN + 1];

    /* tracehop's own answer, when it answers itself */
    unsigned error_status;
    const char *error_code;
    const char *error_message;
    const char *outcome; /* access-log outcome; NULL = decided at the end */

    /* upstream */
    CURL *easy;
    bool upstream_active; /* easy is in the multi handle */
    bool upstream_done;
    CURLcode upstream_result;
    bool read_paused, write_paused;
    bool headers_done;
    bool header_overflow;
    long upstream_status;
    int64_t upstream_content_length; /* -1 = unknown */
    struct response_header response_headers[REQUEST_MAX_RESPONSE_HEADERS];
    size_t response_headers_count;
    size_t response_header_bytes;
    struct curl_slist *upstream_headers;
    struct timespec upstream_start_mono, upstream_end_mono;
    bool upstream_started;
    double upstream_connect_ms, upstream_ttfb_ms;

    struct bytebuf up;   /* request body on its way to the upstream */
    struct bytebuf down; /* response body on its way to the client */
    struct arena arena;
};

/* The request's trace and span ids as NUL-terminated lowercase hex, for diagnostics. */
struct request_ids_hex {
    char trace_id[TRACEHOP_TRACE_ID_HEX_LEN + 1];
    char span_id[TRACEHOP_SPAN_ID_HEX_LEN + 1];
};
void request_ids_hex(const struct request *req, struct request_ids_hex *ret);

/* MHD callbacks, registered by the worker. */
void *request_on_uri(void *cls, const char *uri, struct MHD_Connection *conn);
enum MHD_Result request_on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls);
void request_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe);

/* Called by the worker when curl reports the transfer finished. */
void request_on_upstream_done(struct request *req, CURLcode result);

/* Called by the worker for each request on the dirty list: unpause curl, resume MHD. */
void request_service(struct request *req);

/* Called by the worker when the client of a request waiting for its upstream hung up. */
void request_on_client_gone(struct request *req);
/* The worker found the head incomplete past limits.client_header_timeout_ms: answer 408, close. */
void request_on_head_timeout(struct request *req);
