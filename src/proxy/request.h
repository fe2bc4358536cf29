/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Proxied requests: the client of both library adapters. A request comes in through the
 * inbound handlers (proxy/inbound.h), gets its trace context (tracectx), a route, a check
 * (proxy/refusal.h), an upstream transfer (proxy/upstream.h) fed from and into two bounded
 * buffers, a response, and at its end one summary for the access log and the metrics.
 *
 * Everything here belongs to one worker thread; nothing is shared between threads but the
 * access-log sink and the metrics (single writer) the owner lends.
 */
#include <stdbool.h>
#include <stdint.h>

#include "config/config_pins.h"
#include "proxy/inbound.h"
#include "proxy/loop.h"

struct accesslog;
struct metrics;
struct request;
struct upstream_pool;

/* What every request of one worker shares. The owner fills the public part, then calls
 * request_env_init; the rest belongs to request.c. */
struct request_env {
    unsigned index; /* the worker's, for diagnostics */
    struct loop *loop;
    struct inbound *inbound; /* set once the inbound side runs with request_handlers */
    struct upstream_pool *upstream;
    struct accesslog *accesslog;
    struct otlp_exporter *exporter; /* NULL = no span export */
    struct metrics *metrics;
    struct config_pins configs; /* the config new requests start with, and the older ones */
    bool draining;              /* answers say Connection: close */
    unsigned cut_off;           /* requests ended by the drain timeout (outcome "shutdown") */

    /* private */
    struct request *free_requests; /* the pool */
    struct request *live_head;     /* in progress */
    unsigned active;
    int64_t diag_window_ms; /* rate limit of per-request diagnostics */
    unsigned diag_in_window, diag_suppressed;
};

/* The handler table to give inbound_new, with the env as its client. */
extern const struct inbound_handlers request_handlers;

/* Set up the private part; `config` becomes the current one (takes over one reference). */
void request_env_init(struct request_env *env, const struct config *config);
/* Free the pool and release the configs. No request may be in progress. */
void request_env_destroy(struct request_env *env);

/* Requests in progress. */
unsigned request_active_count(const struct request_env *env);

/* The checks no fd announces, for the owner's housekeeping tick: watch the clients of requests
 * that have waited a while for their upstream (a hang-up then cancels the transfer), and answer
 * 408 to heads still incomplete after limits.client_header_timeout_ms. */
void request_housekeeping(struct request_env *env, int64_t now_ms);

/* The drain timeout is over: every request still in progress is cut off, and logged with the
 * outcome "shutdown" when it ends (counted in env->cut_off). Call before request_resume_all. */
void request_cut_off_all(struct request_env *env);

/* Shutting down: resume every suspended request so that the inbound side can close it (call
 * after inbound_begin_stop, before inbound_free). */
void request_resume_all(struct request_env *env);
