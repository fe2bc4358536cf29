/* SPDX-License-Identifier: MIT */
/*
 * Counting and rendering. Counting runs once per request on the worker that served it and
 * touches only that worker's memory. Rendering runs on the admin thread per scrape: it sums the
 * workers' counters (each a relaxed atomic load) and writes the Prometheus text format 0.0.4,
 * or OpenMetrics 1.0 with exemplars when the scraper asks for it, so that a latency bucket on a
 * dashboard links to the trace_id of a recent request that landed in it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "observe/metrics.h"
#include "observe/process_stats.h"
#include "observe/request_summary.h"
#include "tracehop-config.h"
#include "common/route_slots.h"
#include "common/strbuf.h"

static const double bucket_bounds[METRICS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const char *const method_names[METRICS_METHODS] = {"GET",    "HEAD",  "POST",    "PUT",
                                                          "DELETE", "PATCH", "OPTIONS", "other"};
static const char *const class_names[METRICS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx", "none"};
static const char *const outcome_names[METRICS_OUTCOME_COUNT] = {
    "upstream_connect_failed", "upstream_timeout", "upstream_reset", "upstream_tls_failed"};

/* --- counting ------------------------------------------------------------------------------ */

static unsigned method_index(const char *method)
{
    if (!method)
        return METRICS_METHODS - 1;
    for (unsigned i = 0; i < METRICS_METHODS - 1; i++)
        if (strcmp(method, method_names[i]) == 0)
            return i;
    return METRICS_METHODS - 1;
}

static unsigned class_index(unsigned status)
{
    if (status >= 100 && status <= 599)
        return status / 100 - 1;
    return METRICS_CLASSES - 1;
}

static unsigned bucket_index(double seconds)
{
    unsigned i = 0;
    while (i < METRICS_BUCKETS && seconds > bucket_bounds[i])
        i++;
    return i;
}

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint64_t double_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    return bits;
}

static double bits_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

static void observe(struct metrics_histogram *h, double seconds, const struct request_summary *r,
                    uint64_t now_ms)
{
    unsigned b = bucket_index(seconds);

    metrics_observe_seconds(h, seconds);
    if (!r->sampled || !r->trace_id)
        return;
    struct metrics_exemplar *e = &h->exemplars[b];
    /* One exemplar per bucket and second is plenty, and keeps the writes rare. */
    if (now_ms - atomic_load_explicit(&e->timestamp_ms, memory_order_relaxed) < 1000)
        return;
    unsigned seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
    atomic_store_explicit(&e->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->trace_hi, load_be64(r->trace_id), memory_order_relaxed);
    atomic_store_explicit(&e->trace_lo, load_be64(r->trace_id + 8), memory_order_relaxed);
    atomic_store_explicit(&e->span, load_be64(r->span_id), memory_order_relaxed);
    atomic_store_explicit(&e->value_bits, double_bits(seconds), memory_order_relaxed);
    atomic_store_explicit(&e->timestamp_ms, now_ms, memory_order_relaxed);
    atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
}

void metrics_observe_seconds(struct metrics_histogram *h, double seconds)
{
    unsigned b = bucket_index(seconds);

    metrics_add(&h->buckets[b], 1);
    metrics_add(&h->sum_us, (uint64_t)(seconds * 1e6));
    metrics_add(&h->count, 1);
}

void metrics_count_request(struct metrics *m, const struct request_summary *r)
{
    struct metrics_route *route = &m->routes[r->route_slot % METRICS_ROUTE_SLOTS];
    struct timespec now;
    uint64_t now_ms = 0;

    if (r->sampled) {
        clock_gettime(CLOCK_REALTIME, &now);
        now_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    }
    /* A response cut off mid-body is no answer, whatever its status line said: "none", which
     * the error ratio in docs/operations.md counts. */
    unsigned status_class = r->response_broken ? METRICS_CLASSES - 1 : class_index(r->status);
    metrics_add(&route->requests[method_index(r->method)][status_class], 1);
    observe(&route->request_duration, r->duration_s, r, now_ms);
    if (r->has_upstream)
        observe(&route->upstream_duration, r->upstream_duration_s, r, now_ms);
    if (r->outcome) {
        for (unsigned i = 0; i < METRICS_OUTCOME_COUNT; i++)
            if (strcmp(r->outcome, outcome_names[i]) == 0)
                metrics_add(&route->upstream_failures[i], 1);
    }
    metrics_add(&m->received_bytes, r->received_bytes);
    metrics_add(&m->sent_bytes, r->sent_bytes);
}

/* --- rendering ----------------------------------------------------------------------------- */

static uint64_t sum_counter(struct metrics *const *w, size_t n, size_t offset)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total +=
            atomic_load_explicit((metrics_counter *)((char *)w[i] + offset), memory_order_relaxed);
    return total;
}

#define SUM(field) sum_counter(workers, count, offsetof(struct metrics, field))

static void printfb(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void printfb(struct strbuf *b, const char *fmt, ...)
{
    va_list ap;
    char small[512];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        strbuf_append(b, small, (size_t)n);
        return;
    }
    if (!strbuf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A label value with \, " and newline escaped (route names come from the config). */
static void label_value(struct strbuf *b, const char *v)
{
    strbuf_append_char(b, '"');
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            strbuf_append_char(b, '\\'), strbuf_append_char(b, *v);
        else if (*v == '\n')
            strbuf_append_str(b, "\\n");
        else
            strbuf_append_char(b, *v);
    }
    strbuf_append_char(b, '"');
}

static void header(struct strbuf *b, const char *name, const char *type, const char *help,
                   bool openmetrics)
{
    /* OpenMetrics names counters without their _total suffix in TYPE/HELP lines. */
    size_t len = strlen(name);
    if (openmetrics && strcmp(type, "counter") == 0 && len > 6 &&
        strcmp(name + len - 6, "_total") == 0)
        len -= 6;
    printfb(b, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)len, name, help, (int)len, name, type);
}

/* Slots that have a route name, or that counted something (no_route, (refused), other). */
static bool route_used(struct metrics *const *workers, size_t count, size_t slot)
{
    if (slot > ROUTE_SLOT_REFUSED && slot < METRICS_ROUTE_SLOTS - 1 && route_slot_name(slot))
        return true;
    return sum_counter(workers, count,
                       offsetof(struct metrics, routes) + slot * sizeof(struct metrics_route) +
                           offsetof(struct metrics_route, request_duration.count)) > 0;
}

static void render_exemplar(struct strbuf *b, struct metrics *const *workers, size_t count,
                            size_t slot, size_t hist_offset, unsigned bucket)
{
    uint64_t best_ts = 0, hi = 0, lo = 0, span = 0;
    double value = 0;

    for (size_t i = 0; i < count; i++) {
        struct metrics_histogram *h =
            (struct metrics_histogram *)((char *)&workers[i]->routes[slot] + hist_offset);
        struct metrics_exemplar *e = &h->exemplars[bucket];
        for (int attempt = 0; attempt < 4; attempt++) {
            unsigned s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
            if (s1 & 1)
                continue;
            uint64_t ts = atomic_load_explicit(&e->timestamp_ms, memory_order_relaxed);
            uint64_t h1 = atomic_load_explicit(&e->trace_hi, memory_order_relaxed);
            uint64_t l1 = atomic_load_explicit(&e->trace_lo, memory_order_relaxed);
            uint64_t sp = atomic_load_explicit(&e->span, memory_order_relaxed);
            uint64_t vb = atomic_load_explicit(&e->value_bits, memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s1)
                continue;
            if (ts > best_ts)
                best_ts = ts, hi = h1, lo = l1, span = sp, value = bits_double(vb);
            break;
        }
    }
    if (best_ts == 0)
        return;
    printfb(b, " # {trace_id=\"%016llx%016llx\",span_id=\"%016llx\"} %.6f %.3f",
            (unsigned long long)hi, (unsigned long long)lo, (unsigned long long)span, value,
            (double)best_ts / 1000.0);
}

static void render_histogram(struct strbuf *b, struct metrics *const *workers, size_t count,
                             const char *name, size_t hist_offset, bool openmetrics)
{
    for (size_t slot = 0; slot < METRICS_ROUTE_SLOTS; slot++) {
        if (!route_used(workers, count, slot))
            continue;
        size_t base =
            offsetof(struct metrics, routes) + slot * sizeof(struct metrics_route) + hist_offset;
        uint64_t total_count =
            sum_counter(workers, count, base + offsetof(struct metrics_histogram, count));
        if (total_count == 0 && slot != 0)
            continue;
        uint64_t cumulative = 0;
        for (unsigned i = 0; i <= METRICS_BUCKETS; i++) {
            cumulative += sum_counter(workers, count,
                                      base + offsetof(struct metrics_histogram, buckets) +
                                          i * sizeof(metrics_counter));
            strbuf_append_str(b, name);
            strbuf_append_str(b, "_bucket{route=");
            label_value(b, route_slot_name(slot));
            if (i < METRICS_BUCKETS)
                printfb(b, ",le=\"%g\"} %llu", bucket_bounds[i], (unsigned long long)cumulative);
            else
                printfb(b, ",le=\"+Inf\"} %llu", (unsigned long long)cumulative);
            if (openmetrics)
                render_exemplar(b, workers, count, slot, hist_offset, i);
            strbuf_append_char(b, '\n');
        }
        uint64_t sum_us =
            sum_counter(workers, count, base + offsetof(struct metrics_histogram, sum_us));
        strbuf_append_str(b, name);
        strbuf_append_str(b, "_sum{route=");
        label_value(b, route_slot_name(slot));
        printfb(b, "} %.6f\n", (double)sum_us / 1e6);
        strbuf_append_str(b, name);
        strbuf_append_str(b, "_count{route=");
        label_value(b, route_slot_name(slot));
        printfb(b, "} %llu\n", (unsigned long long)total_count);
    }
}

static uint64_t load(const atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* The span exporter's counters (docs/tracing.md, "Metrics"). */
static void render_export(struct strbuf *b, const struct export_stats *s, bool openmetrics)
{
    static const char *const drop_reasons[EXPORT_DROP_COUNT] = {"queue_full", "export_failed",
                                                                "shutdown"};
    static const char *const results[EXPORT_RESULT_COUNT] = {"ok", "partial_success", "retry",
                                                             "failed"};

    header(b, "tracehop_spans_exported_total", "counter", "Spans the collector accepted.",
           openmetrics);
    printfb(b, "tracehop_spans_exported_total %llu\n",
            (unsigned long long)load(&s->spans_exported));
    header(b, "tracehop_spans_rejected_total", "counter",
           "Spans the collector rejected in a partial success (not retried).", openmetrics);
    printfb(b, "tracehop_spans_rejected_total %llu\n",
            (unsigned long long)load(&s->spans_rejected));
    header(b, "tracehop_spans_dropped_total", "counter", "Sampled spans never sent, by reason.",
           openmetrics);
    for (unsigned i = 0; i < EXPORT_DROP_COUNT; i++)
        printfb(b, "tracehop_spans_dropped_total{reason=\"%s\"} %llu\n", drop_reasons[i],
                (unsigned long long)load(&s->spans_dropped[i]));
    header(b, "tracehop_export_requests_total", "counter",
           "Export requests to the collector, by result (retry: answered 429, 502, 503, 504 or "
           "not at all).",
           openmetrics);
    for (unsigned i = 0; i < EXPORT_RESULT_COUNT; i++)
        printfb(b, "tracehop_export_requests_total{result=\"%s\"} %llu\n", results[i],
                (unsigned long long)load(&s->requests[i]));
    header(b, "tracehop_export_retries_total", "counter", "Export requests sent again.",
           openmetrics);
    printfb(b, "tracehop_export_retries_total %llu\n", (unsigned long long)load(&s->retries));
    header(b, "tracehop_export_queue_spans", "gauge", "Spans waiting to be exported.", openmetrics);
    printfb(b, "tracehop_export_queue_spans %llu\n", (unsigned long long)load(&s->queue_spans));
    header(b, "tracehop_export_duration_seconds", "histogram",
           "Time of one export request to the collector.", openmetrics);
    uint64_t cumulative = 0;
    for (unsigned i = 0; i <= METRICS_BUCKETS; i++) {
        cumulative += load(&s->duration.buckets[i]);
        if (i < METRICS_BUCKETS)
            printfb(b, "tracehop_export_duration_seconds_bucket{le=\"%g\"} %llu\n",
                    bucket_bounds[i], (unsigned long long)cumulative);
        else
            printfb(b, "tracehop_export_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                    (unsigned long long)cumulative);
    }
    printfb(b, "tracehop_export_duration_seconds_sum %.6f\n",
            (double)load(&s->duration.sum_us) / 1e6);
    printfb(b, "tracehop_export_duration_seconds_count %llu\n",
            (unsigned long long)load(&s->duration.count));
}

/* The process metrics every Prometheus client library exports, under their usual names. */
static void render_process(struct strbuf *b, const struct process_stats *s, bool openmetrics)
{
    if (s->have_cpu) {
        header(b, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.", openmetrics);
        printfb(b, "process_cpu_seconds_total %.2f\n", s->cpu_seconds);
    }
    if (s->have_open_fds) {
        header(b, "process_open_fds", "gauge", "Number of open file descriptors.", openmetrics);
        printfb(b, "process_open_fds %llu\n", (unsigned long long)s->open_fds);
    }
    if (s->have_max_fds) {
        header(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
               openmetrics);
        printfb(b, "process_max_fds %llu\n", (unsigned long long)s->max_fds);
    }
    if (s->have_memory) {
        header(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
               openmetrics);
        printfb(b, "process_virtual_memory_bytes %llu\n", (unsigned long long)s->virtual_bytes);
        header(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               openmetrics);
        printfb(b, "process_resident_memory_bytes %llu\n", (unsigned long long)s->resident_bytes);
    }
    if (s->have_start_time) {
        header(b, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.", openmetrics);
        printfb(b, "process_start_time_seconds %.2f\n", s->start_time_seconds);
    }
}

int metrics_render(struct metrics *const *workers, size_t count, const struct metrics_process *p,
                   bool openmetrics, char **ret, size_t *ret_len)
{
    struct strbuf b = {0};

    header(&b, "tracehop_requests_total", "counter",
           "Requests handled, by route, method and status class (none: no response sent).",
           openmetrics);
    for (size_t slot = 0; slot < METRICS_ROUTE_SLOTS; slot++) {
        if (!route_used(workers, count, slot))
            continue;
        for (unsigned m = 0; m < METRICS_METHODS; m++) {
            for (unsigned c = 0; c < METRICS_CLASSES; c++) {
                uint64_t v = sum_counter(workers, count,
                                         offsetof(struct metrics, routes) +
                                             slot * sizeof(struct metrics_route) +
                                             offsetof(struct metrics_route, requests) +
                                             (m * METRICS_CLASSES + c) * sizeof(metrics_counter));
                if (v == 0)
                    continue;
                strbuf_append_str(&b, "tracehop_requests_total{route=");
                label_value(&b, route_slot_name(slot));
                printfb(&b, ",method=\"%s\",status_class=\"%s\"} %llu\n", method_names[m],
                        class_names[c], (unsigned long long)v);
            }
        }
    }

    header(&b, "tracehop_request_duration_seconds", "histogram",
           "Time from the request's arrival to the end of its response, by route.", openmetrics);
    render_histogram(&b, workers, count, "tracehop_request_duration_seconds",
                     offsetof(struct metrics_route, request_duration), openmetrics);
    header(&b, "tracehop_upstream_duration_seconds", "histogram",
           "Time of the upstream exchange, by route.", openmetrics);
    render_histogram(&b, workers, count, "tracehop_upstream_duration_seconds",
                     offsetof(struct metrics_route, upstream_duration), openmetrics);

    header(&b, "tracehop_upstream_failures_total", "counter",
           "Upstream exchanges that failed, by route and outcome.", openmetrics);
    /* Neither no_route nor (refused) ever reached an upstream. */
    for (size_t slot = ROUTE_SLOT_REFUSED + 1; slot < METRICS_ROUTE_SLOTS; slot++) {
        if (!route_used(workers, count, slot))
            continue;
        for (unsigned o = 0; o < METRICS_OUTCOME_COUNT; o++) {
            strbuf_append_str(&b, "tracehop_upstream_failures_total{route=");
            label_value(&b, route_slot_name(slot));
            printfb(&b, ",outcome=\"%s\"} %llu\n", outcome_names[o],
                    (unsigned long long)sum_counter(
                        workers, count,
                        offsetof(struct metrics, routes) + slot * sizeof(struct metrics_route) +
                            offsetof(struct metrics_route, upstream_failures) +
                            o * sizeof(metrics_counter)));
        }
    }

    long in_flight = 0, connections = 0;
    for (size_t i = 0; i < count; i++) {
        in_flight += atomic_load_explicit(&workers[i]->in_flight, memory_order_relaxed);
        connections += atomic_load_explicit(&workers[i]->open_connections, memory_order_relaxed);
    }
    header(&b, "tracehop_requests_in_flight", "gauge", "Requests being handled now.", openmetrics);
    printfb(&b, "tracehop_requests_in_flight %ld\n", in_flight);
    header(&b, "tracehop_open_connections", "gauge", "Client connections open now.", openmetrics);
    printfb(&b, "tracehop_open_connections %ld\n", connections);
    header(&b, "tracehop_received_bytes_total", "counter", "Request body bytes read from clients.",
           openmetrics);
    printfb(&b, "tracehop_received_bytes_total %llu\n", (unsigned long long)SUM(received_bytes));
    header(&b, "tracehop_sent_bytes_total", "counter", "Response body bytes sent to clients.",
           openmetrics);
    printfb(&b, "tracehop_sent_bytes_total %llu\n", (unsigned long long)SUM(sent_bytes));

    header(&b, "tracehop_access_log_lines_total", "counter",
           "Access-log lines, by result (dropped: the sink could not keep up or failed).",
           openmetrics);
    printfb(&b, "tracehop_access_log_lines_total{result=\"written\"} %llu\n",
            (unsigned long long)p->log_lines_written);
    printfb(&b, "tracehop_access_log_lines_total{result=\"dropped\"} %llu\n",
            (unsigned long long)p->log_lines_dropped);
    header(&b, "tracehop_config_reloads_total", "counter", "Configuration reloads, by result.",
           openmetrics);
    printfb(&b, "tracehop_config_reloads_total{result=\"ok\"} %llu\n",
            (unsigned long long)p->reloads_ok);
    printfb(&b, "tracehop_config_reloads_total{result=\"failed\"} %llu\n",
            (unsigned long long)p->reloads_failed);
    header(&b, "tracehop_config_last_reload_timestamp_seconds", "gauge",
           "When the configuration was last (re)loaded, successfully or not.", openmetrics);
    printfb(&b, "tracehop_config_last_reload_timestamp_seconds %.3f\n", p->last_reload_timestamp);
    header(&b, "tracehop_config_last_reload_success", "gauge",
           "1 if the last configuration (re)load succeeded.", openmetrics);
    printfb(&b, "tracehop_config_last_reload_success %d\n", p->last_reload_ok ? 1 : 0);
    header(&b, "tracehop_ready", "gauge", "1 while serving; 0 before ready and while draining.",
           openmetrics);
    printfb(&b, "tracehop_ready %d\n", p->ready ? 1 : 0);
    if (p->export)
        render_export(&b, p->export, openmetrics);
    if (p->os)
        render_process(&b, p->os, openmetrics);
    header(&b, "tracehop_build_info", "gauge", "Build information; the value is always 1.",
           openmetrics);
    printfb(&b, "tracehop_build_info{version=\"%s\"} 1\n", TRACEHOP_VERSION);
    if (openmetrics)
        strbuf_append_str(&b, "# EOF\n");

    if (b.oom) {
        strbuf_free(&b);
        return -ENOMEM;
    }
    *ret = b.data;
    *ret_len = b.len;
    return 0;
}
