/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The upstream side of a request: a new curl easy handle configured for this request,
 * the outbound headers, and the three curl callbacks that move bytes between curl and the
 * request's bounded buffers.
 */
#include <curl/curl.h>
#include <stddef.h>

#include "tracehop/tracectx.h"

struct request;

/* What the header scan found that the outbound header list needs. */
struct upstream_request_info {
    const struct tracehop_slice *connection; /* Connection header values: tokens to drop */
    size_t connection_count;
    const char *forwarded_for; /* the client's X-Forwarded-For, if any */
    size_t forwarded_for_len;
};

/* Configure a new easy handle for req and add it to the worker's multi. 0 or -errno. */
int upstream_start(struct request *req, const struct upstream_request_info *info);

/* Remove req's transfer from the multi handle (if running) and return the handle to the pool. */
void upstream_cancel(struct request *req);

/* How a failed transfer is answered and logged (SPEC sections 4 and 5). */
struct upstream_failure {
    unsigned status;     /* 502 or 504 */
    const char *code;    /* error code in the JSON body */
    const char *outcome; /* access-log outcome */
    const char *message;
};
void upstream_classify(CURLcode result, struct upstream_failure *ret);

/* Called by the worker when the transfer ends: records timings, returns the handle. */
void upstream_finish(struct request *req, CURLcode result);

/* curl callbacks, installed on every easy handle (userdata = the request). */
size_t upstream_header_callback(char *line, size_t size, size_t nitems, void *userdata);
size_t upstream_write_callback(char *data, size_t size, size_t nmemb, void *userdata);
size_t upstream_read_callback(char *buffer, size_t size, size_t nitems, void *userdata);
