/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The span exporter: one per process, one thread of its own (docs/tracing.md, "Export").
 *
 * Workers hand finished, sampled requests to otlp_exporter_submit, which encodes the span and
 * queues it without waiting: when the bounded queue is full the span is dropped and counted.
 * The exporter thread takes batches (batch.max_export_batch_size spans, or fewer once
 * batch.schedule_delay_ms has passed since the oldest was queued) and POSTs each with libcurl
 * to the collector, one request at a time, retrying what OTLP/HTTP says may be retried
 * (observe/export_policy.h) until the batch's batch.export_timeout_ms is spent. A dead or slow
 * collector thus costs dropped spans and metrics; it never blocks a worker.
 *
 * The settings are the config last published (otlp_exporter_publish_config), so SIGHUP can
 * change the endpoint, the headers or turn export on and off.
 */
#include <stdbool.h>
#include <stdint.h>

#include "observe/metrics.h"

struct config;
struct request_summary;

struct otlp_exporter;

/*
 * Start the exporter thread with `config` (one reference taken). `version` is tracehop's, for
 * the resource and the scope. Returns 0 or -errno.
 */
int otlp_exporter_start(const struct config *config, const char *version,
                        struct otlp_exporter **ret);

/* Use `config` from the next batch on (one reference taken; the old one is released). */
void otlp_exporter_publish_config(struct otlp_exporter *e, const struct config *config);

/* Queue the span of a finished request if it is sampled and its config exports; never waits
 * for the collector. Any thread. */
void otlp_exporter_submit(struct otlp_exporter *e, const struct request_summary *s);

/*
 * Send what is queued, within budget_ms, then stop the thread and free everything. Spans not
 * sent by then are dropped (reason shutdown) and said once on stderr. Accepts NULL.
 */
void otlp_exporter_stop(struct otlp_exporter *e, long budget_ms);

/* The counters; valid until otlp_exporter_stop. */
const struct export_stats *otlp_exporter_stats(const struct otlp_exporter *e);
