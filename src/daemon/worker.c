/* SPDX-License-Identifier: MIT */
/*
 * A worker thread: it wires the inbound side, the upstream pool and the requests into one loop
 * (proxy/loop.h), takes configs a reload publishes, drains on command, and runs the checks no fd
 * announces on a housekeeping timer. One iteration of its thread: take a published config, look
 * at the drain command, run the loop once.
 *
 * This is the design measured at about 2x nginx's CPU per request where blocking designs cost
 * 2.5-3.2x and stall every connection behind one slow upstream (bench/README.md).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/worker.h"
#include "config/config.h"
#include "observe/logline.h"
#include "proxy/curl_memory.h"
#include "proxy/inbound.h"
#include "proxy/upstream.h"
#include "common/diag.h"

/* The checks no fd announces (clients to watch, deadlines, accept retries, libcurl's memory
 * reserve) run together, at most this often. */
#define HOUSEKEEPING_MS 50
/* While draining, the in-flight count is looked at at least this often. */
#define DRAIN_CHECK_MS 100
/* The loop waits at most this long: MHD and the commands are looked at every second anyway. */
#define MAX_WAIT_MS 1000

static const struct config *current_config(const struct worker *w)
{
    return w->requests.configs.current;
}

/* This worker's share of limits.max_connections (over all its listening sockets). */
static unsigned connection_limit(const struct config *c)
{
    unsigned connections = c->max_connections / c->workers;
    return connections < 1 ? 1 : connections;
}

/* --- housekeeping ------------------------------------------------------------------------- */

static void housekeeping(void *data, uint32_t events)
{
    struct worker *w = data;
    int64_t now = loop_now_ms();

    (void)events;
    w->last_housekeeping_ms = now;
    inbound_housekeeping(w->inbound, now, current_config(w)->client_header_timeout_ms,
                         !w->draining);
    if (request_active_count(&w->requests) > 0) {
        request_housekeeping(&w->requests, now);
        upstream_pool_expire_stalled(w->upstream, now);
    }
    if (curl_memory_reserve_spent() && curl_memory_refill())
        diag(DIAG_WARN,
             "memory ran out: libcurl's %u KiB reserve was used (%lu times since start); "
             "taken back now",
             CURL_MEMORY_RESERVE / 1024, curl_memory_releases());
}

/* Arm the housekeeping timer when something needs it: requests in flight (deadlines, clients
 * to watch), a daemon that stopped accepting, libcurl's spent reserve, or a connection without
 * a request line (checked when its header timeout is due, at most every 100 ms). */
static void schedule_housekeeping(struct worker *w, int64_t now)
{
    int64_t due = -1;
    int64_t fresh = inbound_oldest_fresh_ms(w->inbound);

    if (request_active_count(&w->requests) > 0 ||
        (inbound_accept_stuck(w->inbound) && !w->draining) || curl_memory_reserve_spent())
        due = w->last_housekeeping_ms + HOUSEKEEPING_MS;
    if (fresh >= 0) {
        int64_t fresh_due = fresh + current_config(w)->client_header_timeout_ms;
        if (fresh_due < now + 100)
            fresh_due = now + 100;
        if (due < 0 || fresh_due < due)
            due = fresh_due;
    }
    if (due >= 0 && due < w->last_housekeeping_ms + HOUSEKEEPING_MS)
        due = w->last_housekeeping_ms + HOUSEKEEPING_MS;
    loop_timer_set(&w->housekeeping, due);
}

/* --- configs and commands ----------------------------------------------------------------- */

void worker_publish_config(struct worker *w, const struct config *config)
{
    const struct config *unused = atomic_exchange(&w->next_config, config);
    config_unref(unused); /* a newer reload overtook one this worker had not taken yet */
    loop_wake(&w->loop);
}

/* Take a published config. Requests in flight keep the one they started with (config_pins). */
static void take_published_config(struct worker *w)
{
    const struct config *next = atomic_load_explicit(&w->next_config, memory_order_relaxed);
    if (!next)
        return;
    next = atomic_exchange(&w->next_config, NULL);
    if (config_pins_swap(&w->requests.configs, next) < 0) {
        /* out of memory: put it back (unless a newer one came) and try on a later iteration */
        const struct config *expected = NULL;
        if (!atomic_compare_exchange_strong(&w->next_config, &expected, next))
            config_unref(next);
    }
}

static void begin_drain(struct worker *w);

/* The main thread published a config or asked for a drain. */
static void take_commands(void *data, uint32_t events)
{
    struct worker *w = data;
    (void)events;
    take_published_config(w);
    if (!w->draining && atomic_load(&w->command) == WORKER_DRAIN)
        begin_drain(w);
}

static void begin_drain(struct worker *w)
{
    w->draining = true;
    w->requests.draining = true;
    w->drain_deadline_ms = loop_now_ms() + current_config(w)->drain_timeout_ms;
    inbound_quiesce(w->inbound);
}

void worker_request_drain(struct worker *w)
{
    atomic_store(&w->command, WORKER_DRAIN);
    loop_wake(&w->loop);
}

/* --- the thread --------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    for (;;) {
        take_commands(w, 0); /* also when a config came back after running out of memory */
        int64_t now = loop_now_ms();
        int max_wait = MAX_WAIT_MS;
        if (w->draining) {
            if (request_active_count(&w->requests) == 0 || now >= w->drain_deadline_ms)
                break;
            int64_t left = w->drain_deadline_ms - now;
            max_wait = left < DRAIN_CHECK_MS ? (int)left : DRAIN_CHECK_MS;
        }
        schedule_housekeeping(w, now);
        int rc = loop_run_once(&w->loop, max_wait);
        if (rc < 0) {
            diag(DIAG_ERROR, "worker %u: epoll_wait: %s", w->index, strerror(-rc));
            break;
        }
    }
    logline_thread_cleanup();
    return NULL;
}

int worker_init(struct worker *w, unsigned index, const struct config *config,
                struct accesslog *accesslog, struct otlp_exporter *exporter, const int *listen_fds,
                size_t listen_count, char *error, size_t error_size)
{
    int rc;

    memset(w, 0, sizeof(*w));
    w->index = index;
    config_ref(config);
    w->requests = (struct request_env){
        .index = index,
        .loop = &w->loop,
        .accesslog = accesslog,
        .exporter = exporter,
        .metrics = &w->metrics,
    };
    request_env_init(&w->requests, config);
    if ((rc = loop_init(&w->loop, take_commands, w)) < 0) {
        for (size_t i = 0; i < listen_count; i++)
            close(listen_fds[i]);
        snprintf(error, error_size, "worker setup: %s", strerror(-rc));
        return rc;
    }
    loop_timer_add(&w->loop, &w->housekeeping, housekeeping, w);
    if ((rc = upstream_pool_new(&w->loop, &w->upstream)) < 0) {
        for (size_t i = 0; i < listen_count; i++)
            close(listen_fds[i]);
        snprintf(error, error_size, "curl_multi_init failed");
        return rc;
    }
    w->requests.upstream = w->upstream;
    struct inbound_settings settings = {
        .index = index,
        .connection_limit = connection_limit(config),
        .client_timeout_s = config->client_timeout_s,
        .max_header_bytes = config->max_header_bytes,
        .open_connections = &w->metrics.open_connections,
    };
    rc = inbound_new(&w->loop, &settings, &request_handlers, &w->requests, listen_fds, listen_count,
                     error, error_size, &w->inbound);
    if (rc < 0)
        return rc;
    w->requests.inbound = w->inbound;
    return 0;
}

int worker_start(struct worker *w)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals belong to the main thread */
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

void worker_destroy(struct worker *w)
{
    /* Whatever is still in flight after the drain timeout is cut off: every suspended request
     * is resumed (MHD must not stop with suspended connections) and MHD closes them all, which
     * completes - and logs - each request. Only then can their transfers and the pool go. */
    if (w->inbound) {
        inbound_begin_stop(w->inbound);
        request_cut_off_all(&w->requests);
        request_resume_all(&w->requests);
        w->inbound = inbound_free(w->inbound);
        w->cut_off = w->requests.cut_off;
    }
    w->upstream = upstream_pool_free(w->upstream);
    request_env_destroy(&w->requests);
    loop_destroy(&w->loop);
    config_unref(atomic_exchange(&w->next_config, NULL));
    logline_thread_cleanup(); /* lines of requests completed on this thread */
}
