/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The Server-Timing field tracehop adds to its responses (docs/trace-context.md, "11.
 * Server-Timing"): the W3C Trace Context Level 3 `trace` metric, which binds the response to
 * tracehop's span, and optionally the `tracehop` and `upstream` durations that browser devtools
 * show. W3C Server Timing grammar: metrics separated by ", ", each `name;param=value`.
 * Pure: no libraries, no I/O, no allocation; the caller adds the value as one more field, after
 * any Server-Timing fields of the upstream, which are never replaced.
 */
#include <stdbool.h>
#include <stddef.h>

/* Room for the longest value, without the NUL: "trace;desc=" + 55, then two durations of at
 * most ", upstream;dur=" + "1000000000000.000" each (136 characters in all). */
#define SERVER_TIMING_VALUE_MAX 160

struct server_timing {
    const char *traceparent; /* tracehop's "00-<trace-id>-<span-id>-<flags>", or NULL: no `trace` */
    double tracehop_ms;      /* < 0 or NaN: no `tracehop` metric */
    double upstream_ms;      /* < 0 or NaN: no `upstream` metric */
};

/*
 * Write "trace;desc=<traceparent>, tracehop;dur=<ms>, upstream;dur=<ms>" (the metrics that are
 * present, in this order; durations in ms with three decimals, clamped to 1e12) and a NUL
 * into buf, which holds SERVER_TIMING_VALUE_MAX + 1 bytes. A traceparent that is not 55
 * characters of the version-00 form is left out. Returns the length; 0 (and "") when no metric
 * is present, and then no field should be sent.
 */
size_t server_timing_format(const struct server_timing *timing,
                            char buf[SERVER_TIMING_VALUE_MAX + 1]);
