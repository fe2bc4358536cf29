/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * One finished request, flat: what the access log, the metrics (and span export) record about
 * it. Built once by the request when it ends; every pointer is valid only during the calls that
 * consume it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct config;
struct tracehop_hop;

struct request_summary {
    const struct config *config;    /* the one the request started with */
    struct timespec start_real;     /* CLOCK_REALTIME at the request line */
    double duration_s;              /* request line to the end */
    const struct tracehop_hop *hop; /* the trace-context decision; NULL in metrics-only tests */
    const uint8_t *trace_id;        /* TRACEHOP_TRACE_ID_SIZE bytes (exemplars) */
    const uint8_t *span_id;         /* TRACEHOP_SPAN_ID_SIZE bytes */
    bool sampled;                   /* only sampled traces become exemplars */

    const char *method; /* NULL when the head never came */
    const char *target; /* the raw request target, NULL when unknown */
    size_t target_len;
    size_t path_len;                   /* target up to '?' */
    const char *client_addr;           /* "" when unknown */
    const char *host;                  /* the Host header as received, NULL when absent */
    const char *http_version;          /* "1.1" or "1.0", NULL when the head never came */
    const char *user_agent;            /* NULL when absent */
    const char *const *logged_headers; /* values of access_log.fields (NULL = absent) */

    unsigned status;      /* sent to the client; 0 = none */
    const char *outcome;  /* `outcome` in docs/access-log.md */
    bool response_broken; /* a status line went out but the response was cut off mid-body */

    unsigned route_slot;       /* metrics slot; 0 = no route */
    const char *route_name;    /* NULL = no route */
    const char *route_path;    /* the route's path prefix (the span's http.route), NULL = none */
    const char *upstream_text; /* the route's upstream, as configured */
    long upstream_status;      /* -1 = no complete upstream head */
    bool has_upstream;         /* a transfer was started */
    double upstream_duration_s;
    double upstream_connect_ms, upstream_ttfb_ms; /* < 0: never happened, or not known */

    uint64_t received_bytes; /* request body bytes read from the client */
    uint64_t sent_bytes;     /* response body bytes handed to the client */
};
