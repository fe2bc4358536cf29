/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Request metrics. Each worker owns a `struct metrics` and is its only writer: counting is a
 * plain load and store (relaxed atomics, so the scraper's concurrent reads are well-defined and
 * TSan-clean) with no lock and no shared cache line on the hot path. The admin thread merges all
 * workers' counters at scrape time.
 *
 * Routes are counted by a slot number assigned by name when a config is loaded, so that a
 * reload that keeps a route's name keeps its series.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tracehop/tracectx.h"
#include "common/route_slots.h"

struct request_summary;
struct process_stats;

/* One per route name (common/route_slots.h): slot 0 = requests that matched no route, slot
 * ROUTE_SLOT_REFUSED = requests that ended before routing */
#define METRICS_ROUTE_SLOTS ROUTE_SLOTS
#define METRICS_BUCKETS     14
#define METRICS_METHODS     8
#define METRICS_CLASSES     6 /* 1xx..5xx, and "none" for requests that got no response */

enum metrics_outcome {
    METRICS_OUTCOME_CONNECT_FAILED,
    METRICS_OUTCOME_TIMEOUT,
    METRICS_OUTCOME_RESET,
    METRICS_OUTCOME_TLS_FAILED,
    METRICS_OUTCOME_COUNT,
};

typedef atomic_uint_fast64_t metrics_counter;

/* A recent sampled request in a bucket. Seqlock: the worker writes, the scraper retries a
 * read that overlapped a write. Fields are atomics so that the overlap is not a data race. */
struct metrics_exemplar {
    atomic_uint seq; /* odd while being written */
    atomic_uint_fast64_t trace_hi, trace_lo, span;
    atomic_uint_fast64_t value_bits, timestamp_ms; /* double bits; ms since the epoch, 0 = none */
};

struct metrics_histogram {
    metrics_counter buckets[METRICS_BUCKETS + 1]; /* the last one is +Inf */
    metrics_counter sum_us;
    metrics_counter count;
    struct metrics_exemplar exemplars[METRICS_BUCKETS + 1];
};

struct metrics_route {
    metrics_counter requests[METRICS_METHODS][METRICS_CLASSES];
    metrics_counter upstream_failures[METRICS_OUTCOME_COUNT];
    struct metrics_histogram request_duration;
    struct metrics_histogram upstream_duration;
};

struct metrics {
    struct metrics_route routes[METRICS_ROUTE_SLOTS];
    metrics_counter received_bytes;
    metrics_counter sent_bytes;
    atomic_long in_flight;
    atomic_long open_connections;
};

/* Single-writer increment: the owning worker adds, readers only load. */
static inline void metrics_add(metrics_counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Count one finished request (worker thread only, on its own metrics). */
void metrics_count_request(struct metrics *m, const struct request_summary *r);

/* Count one observation in a histogram without an exemplar (its single writer only). */
void metrics_observe_seconds(struct metrics_histogram *h, double seconds);

/* What the span exporter (observe/otlp_exporter.h) counts. */
enum export_drop_reason {
    EXPORT_DROP_QUEUE_FULL,
    EXPORT_DROP_EXPORT_FAILED,
    EXPORT_DROP_SHUTDOWN,
    EXPORT_DROP_COUNT,
};

enum export_request_result {
    EXPORT_RESULT_OK,
    EXPORT_RESULT_PARTIAL,
    EXPORT_RESULT_RETRY, /* answered 429/502/503/504, or no answer */
    EXPORT_RESULT_FAILED,
    EXPORT_RESULT_COUNT,
};

/* What the exporter counts, for /metrics. Workers add queue drops (atomically: several
 * workers), the exporter thread the rest. */
struct export_stats {
    atomic_uint_fast64_t spans_exported;
    atomic_uint_fast64_t spans_rejected; /* by the collector, in a partial success */
    atomic_uint_fast64_t spans_dropped[EXPORT_DROP_COUNT];
    atomic_uint_fast64_t requests[EXPORT_RESULT_COUNT];
    atomic_uint_fast64_t retries;
    atomic_uint_fast64_t queue_spans;  /* waiting now */
    struct metrics_histogram duration; /* one export request, seconds */
};

/* Process-wide values the scrape adds to the per-worker ones. */
struct metrics_process {
    const struct export_stats *export; /* the span exporter's; NULL = none */
    const struct process_stats *os;    /* the process_* metrics (process_stats.h); NULL = none */
    uint64_t log_lines_written, log_lines_dropped;
    uint64_t reloads_ok, reloads_failed;
    double last_reload_timestamp; /* 0 = never */
    bool last_reload_ok;
    bool ready;
};

/*
 * Render every metric, merged over `count` workers, into a malloc'd string (*ret, *ret_len).
 * OpenMetrics (with exemplars and "# EOF") when openmetrics is true, else Prometheus text 0.0.4.
 * Returns 0 or -ENOMEM.
 */
int metrics_render(struct metrics *const *workers, size_t count, const struct metrics_process *p,
                   bool openmetrics, char **ret, size_t *ret_len);
