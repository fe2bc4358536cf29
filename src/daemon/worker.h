/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A worker: one thread running one loop, with the inbound side (one libmicrohttpd daemon per
 * listen address), one upstream pool (a curl multi handle) and the requests between them.
 * Workers share nothing mutable but the access-log sink and the (immutable) configs.
 *
 * Threads: worker_init, worker_start, worker_join and worker_destroy belong to the main thread;
 * worker_publish_config and worker_request_drain may be called from any thread while the worker
 * runs; everything else in the struct belongs to the worker's thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "observe/metrics.h"
#include "proxy/loop.h"
#include "proxy/request.h"

struct accesslog;
struct otlp_exporter;
struct config;
struct inbound;
struct upstream_pool;

struct worker {
    unsigned index;
    struct metrics metrics; /* this worker's; the admin endpoint reads them */
    struct loop loop;
    struct inbound *inbound;
    struct upstream_pool *upstream;
    struct request_env requests;
    struct loop_timer housekeeping;
    int64_t last_housekeeping_ms;
    _Atomic(const struct config *) next_config; /* published by a reload, taken by the loop */
    atomic_int command;                         /* WORKER_RUN, WORKER_DRAIN */
    bool draining;
    int64_t drain_deadline_ms;
    unsigned cut_off; /* requests the drain timeout cut off; valid after worker_destroy */
    pthread_t thread;
};

enum { WORKER_RUN = 0, WORKER_DRAIN = 1 };

/*
 * Set up the worker around already listening sockets (one per listen address): the worker owns
 * them from now on, also when this fails. It takes a reference of config. Returns 0 or -errno
 * with a reason in error; either way worker_destroy releases what was set up.
 */
int worker_init(struct worker *w, unsigned index, const struct config *config,
                struct accesslog *accesslog, struct otlp_exporter *exporter, const int *listen_fds,
                size_t listen_count, char *error, size_t error_size);
/* Start the thread. 0 or -errno. */
int worker_start(struct worker *w);
/* Ask the worker to stop accepting, finish in-flight requests (bounded), then return. */
void worker_request_drain(struct worker *w);
/* Hand the worker a new config (it takes over one reference). Requests in flight keep the one
 * they started with. */
void worker_publish_config(struct worker *w, const struct config *config);
void worker_join(struct worker *w);
/* Cut off whatever is still in flight (each gets its access-log line), close everything and
 * release the configs. For an initialised worker whose thread has ended or never started. */
void worker_destroy(struct worker *w);
