/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A finished request as the tests of the access-log line describe it (the fields the proxy
 * records while it serves one), and its summary (observe/request_summary.h) the way
 * src/proxy/request.c builds it when the request ends: what the line is built from.
 * Static inline so that each test includes only what it uses.
 */
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"
#include "observe/request_summary.h"
#include "common/addrfmt.h"
#include "common/timefmt.h"
#include "tracehop/tracectx.h"

struct logline_request {
    const struct config *config;
    const struct route *route; /* NULL: no route matched */
    struct timespec start_real, start_mono;
    char *target;
    size_t target_len, path_len;
    const char *method;
    struct tracehop_hop hop;
    bool headers_done; /* upstream_status is known */
    long upstream_status;
    bool upstream_started;
    struct timespec upstream_start_mono, upstream_end_mono;
    double upstream_connect_ms, upstream_ttfb_ms;
    uint64_t bytes_received, bytes_sent;
    char client_addr[ADDRFMT_MAX];
    const char *host;         /* the Host header as received, NULL when absent */
    const char *http_version; /* "1.1" or "1.0", NULL when the head never came */
    const char *user_agent;
    const char **logged_headers;
};

/* The summary of req ended at `now` (CLOCK_MONOTONIC) with status and outcome. */
static inline void logline_request_summary(const struct logline_request *req, unsigned status,
                                           const char *outcome, const struct timespec *now,
                                           struct request_summary *s)
{
    *s = (struct request_summary){
        .config = req->config,
        .start_real = req->start_real,
        .duration_s = timefmt_elapsed_ms(&req->start_mono, now) / 1000.0,
        .hop = &req->hop,
        .trace_id = req->hop.trace_id,
        .span_id = req->hop.span_id,
        .sampled = (req->hop.flags & TRACEHOP_FLAG_SAMPLED) != 0,
        .method = req->method,
        .target = req->target,
        .target_len = req->target_len,
        .path_len = req->path_len,
        .client_addr = req->client_addr,
        .host = req->host,
        .http_version = req->http_version,
        .user_agent = req->user_agent,
        .logged_headers = req->logged_headers,
        .status = status,
        .outcome = outcome,
        .route_slot = req->route ? req->route->metrics_slot : 0,
        .route_name = req->route ? req->route->name : NULL,
        .route_path = req->route ? req->route->path_prefix : NULL,
        .upstream_text = req->route ? req->route->upstream.text : NULL,
        .upstream_status = req->headers_done ? req->upstream_status : -1,
        .has_upstream = req->upstream_started,
        .upstream_duration_s =
            timefmt_elapsed_ms(&req->upstream_start_mono, &req->upstream_end_mono) / 1000.0,
        .upstream_connect_ms = req->upstream_connect_ms,
        .upstream_ttfb_ms = req->upstream_ttfb_ms,
        .received_bytes = req->bytes_received,
        .sent_bytes = req->bytes_sent,
    };
}
