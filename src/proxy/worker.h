/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A worker: one thread, one epoll, one MHD daemon per listen address, one curl multi handle.
 * Workers share nothing mutable but the access-log sink and the (immutable) config.
 */
#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "proxy/fresh_conns.h"
#include "observe/metrics.h"

struct config;
struct accesslog;
struct request;

#define WORKER_MAX_LISTEN 64

struct worker {
    unsigned index;
    const struct config *config; /* the config new requests start with (one reference) */
    _Atomic(const struct config *) next_config; /* published by a reload, taken by the loop */
    struct retired_config {
        const struct config *config;
        unsigned requests; /* in-flight requests still using it */
    } * retired;           /* grows as needed: each reload with slow requests in flight adds one */
    size_t retired_count, retired_cap;
    struct accesslog *accesslog;
    struct metrics metrics;

    int epoll_fd;
    int wake_fd; /* eventfd: the main thread asks for drain/stop */
    struct MHD_Daemon *daemons[WORKER_MAX_LISTEN];
    size_t daemons_count;
    /* Bit i: daemons[i] stopped accepting for lack of descriptors; see retry_accepts. */
    uint64_t accept_stuck;
    CURLM *multi;
    int64_t curl_deadline_ms; /* CLOCK_MONOTONIC ms, -1 = none */
    int64_t mhd_deadline_ms;  /* when MHD's earliest timer is due, -1 = none */
    uint8_t *curl_fds;        /* per fd: CURL_FD_* bits of its epoll registration */
    CURL **curl_fd_easy;      /* per fd: the easy handle curl last reported it for */
    size_t curl_fds_cap;

    struct request *free_requests;
    struct request *dirty_head, *dirty_tail;
    struct request *live_head;
    struct request **client_watch; /* fd -> request whose client socket we watch */
    size_t client_watch_cap;
    unsigned active_requests;
    bool mhd_needs_run;
    int64_t last_housekeeping_ms; /* see housekeeping in worker.c */
    struct fresh_list fresh;      /* connections without a request line yet (fresh_conns.h) */
    int64_t diag_window_ms;       /* rate limit of per-request diagnostics (see request.c) */
    unsigned diag_in_window, diag_suppressed;
    bool stopping; /* closing everything: requests must not suspend again */

    atomic_int command; /* WORKER_RUN, WORKER_DRAIN */
    bool draining;
    int64_t drain_deadline_ms;

    pthread_t thread;
};

enum { WORKER_RUN = 0, WORKER_DRAIN = 1 };

/*
 * Set up the worker around already listening sockets (one per listen address; the worker owns
 * them from now on). Returns 0 or -errno with a reason in error.
 */
int worker_init(struct worker *w, unsigned index, const struct config *config,
                struct accesslog *accesslog, const int *listen_fds, size_t listen_count,
                char *error, size_t error_size);
int worker_start(struct worker *w);
/* Ask the worker to stop accepting, finish in-flight requests (bounded), then return. */
void worker_request_drain(struct worker *w);
/* Hand the worker a new config (the worker takes over one reference). Thread-safe. */
void worker_publish_config(struct worker *w, const struct config *config);
/* A request that started with `config` has ended (worker thread). */
void worker_config_released(struct worker *w, const struct config *config);
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);

/* For requests: put req on the list serviced after the current batch of events. */
void worker_mark_dirty(struct worker *w, struct request *req);
/* Take req off the dirty list (it is about to be released). */
void worker_forget_dirty(struct worker *w, struct request *req);
/*
 * While a request waits for its upstream, libmicrohttpd does not look at the suspended client
 * socket. After WATCH_CLIENT_AFTER_MS the worker watches it itself (EPOLLRDHUP) and cancels the
 * upstream transfer when the client hangs up. Unwatch before resuming or releasing.
 */
void worker_unwatch_client(struct worker *w, struct request *req);

/* Track requests in progress, so that shutdown can resume and close them all. */
void worker_add_live(struct worker *w, struct request *req);
void worker_remove_live(struct worker *w, struct request *req);
/* A new easy handle with the options every transfer shares (see worker.c: none is reused),
 * or NULL when out of memory. */
CURL *worker_new_easy(struct worker *w);
/* The handle is about to be destroyed; fd is the socket it used last (or CURL_SOCKET_BAD),
 * which stays open in curl's connection cache. */
void worker_forget_easy(struct worker *w, CURL *easy, curl_socket_t fd);
int64_t worker_now_ms(void);
