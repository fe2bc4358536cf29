/* SPDX-License-Identifier: MIT */
/*
 * Benchmark: spans per second one exporter sustains (docs/tracing.md, "Export").
 *
 *   bench-export ENDPOINT [SPANS]     e.g. bench-export http://127.0.0.1:4318 200000
 *
 * Queues SPANS (default 200,000) spans of a usual request (the span of a GET with a query, a
 * user agent and a continued trace) through otlp_exporter_submit from this thread, as fast as it
 * can, into a queue large enough to hold them all, then waits until the collector at ENDPOINT
 * (bench/otlp-sink, or a real OpenTelemetry Collector) has accepted every one. Reports the
 * submit cost (what a worker pays per span) and the end-to-end rate (encode, queue, batch, POST,
 * the collector's answer), with the exporter's batch of 512 spans. Not a test: the numbers depend
 * on the machine and on the receiver.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "observe/metrics.h"
#include "observe/otlp_exporter.h"
#include "observe/request_summary.h"
#include "config/config.h"
#include "tracehop/tracectx.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench-export ENDPOINT [SPANS]\n");
        return 2;
    }
    unsigned long spans = argc > 2 ? strtoul(argv[2], NULL, 10) : 200000;
    char json[1024], error[CONFIG_ERROR_MAX];
    struct config *config;
    snprintf(json, sizeof(json),
             "{\"service_name\": \"bench\", \"routes\": [{\"name\": \"api\", \"match\": "
             "{\"path_prefix\": \"/api/\"}, \"upstream\": \"http://127.0.0.1:9\"}], \"otlp\": "
             "{\"endpoint\": \"%s\", \"batch\": "
             "{\"max_queue_size\": %lu, \"schedule_delay_ms\": 100}}}",
             argv[1], spans);
    const struct config_overrides none = {0};
    if (config_load_text("bench-export", json, strlen(json), &none, &none, NULL, &config, error) <
        0) {
        fprintf(stderr, "bench-export: %s\n", error);
        return 1;
    }

    struct tracehop_hop hop = {.has_parent = true, .flags = TRACEHOP_FLAG_SAMPLED};
    tracehop_random_trace_id(hop.trace_id);
    tracehop_random_span_id(hop.parent_span_id);
    hop.x_trace_id_len = tracehop_uuid_format(hop.x_trace_id, hop.trace_id);
    static const char target[] = "/api/orders/42?page=2&sort=desc";
    struct request_summary s = {
        .config = config,
        .duration_s = 0.0042,
        .hop = &hop,
        .trace_id = hop.trace_id,
        .span_id = hop.span_id,
        .sampled = true,
        .method = "GET",
        .target = target,
        .target_len = sizeof(target) - 1,
        .path_len = strcspn(target, "?"),
        .client_addr = "10.1.2.3",
        .host = "orders.internal:8000",
        .http_version = "1.1",
        .user_agent = "Mozilla/5.0 (X11; Linux x86_64) bench-export/1.0",
        .status = 200,
        .outcome = "ok",
        .route_name = config->routes_count ? config->routes[0].name : NULL,
        .upstream_text = config->routes_count ? config->routes[0].upstream.text : NULL,
        .route_path = config->routes_count ? config->routes[0].path_prefix : NULL,
        .upstream_status = 200,
        .has_upstream = true,
        .upstream_duration_s = 0.004,
        .upstream_connect_ms = 0.1,
        .upstream_ttfb_ms = 3.9,
        .sent_bytes = 1234,
    };
    clock_gettime(CLOCK_REALTIME, &s.start_real);

    struct otlp_exporter *e;
    if (otlp_exporter_start(config, "bench", &e) < 0) {
        fprintf(stderr, "bench-export: cannot start the exporter\n");
        return 1;
    }
    const struct export_stats *stats = otlp_exporter_stats(e);
    double t0 = now_s();
    for (unsigned long i = 0; i < spans; i++) {
        tracehop_random_span_id(hop.span_id);
        otlp_exporter_submit(e, &s);
    }
    double t1 = now_s();
    while (atomic_load(&stats->spans_exported) + atomic_load(&stats->spans_rejected) +
                   atomic_load(&stats->spans_dropped[EXPORT_DROP_EXPORT_FAILED]) <
               spans &&
           now_s() - t1 < 120) {
        struct timespec tick = {0, 1000000};
        nanosleep(&tick, NULL); /* a benchmark polling a counter, not a test's synchronisation */
    }
    double t2 = now_s();
    uint64_t exported = atomic_load(&stats->spans_exported);
    uint64_t requests = atomic_load(&stats->requests[EXPORT_RESULT_OK]);
    otlp_exporter_stop(e, 1000);
    otlp_exporter_free(e);
    config_unref(config);

    printf("submit: %.0f ns per span (the worker's cost)\n", (t1 - t0) / (double)spans * 1e9);
    printf("exported %" PRIu64 " of %lu spans in %.2f s: %.0f spans/s, %" PRIu64
           " export requests\n",
           exported, spans, t2 - t0, (double)exported / (t2 - t0), requests);
    printf("bench-export submit_ns=%.0f spans_per_s=%.0f exported=%" PRIu64 " spans=%lu\n",
           (t1 - t0) / (double)spans * 1e9, (double)exported / (t2 - t0), exported, spans);
    return exported == spans ? 0 : 1;
}
