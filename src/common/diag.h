/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Diagnostics: one JSON object per line on stderr, {"time","level","message"} plus trace_id and
 * span_id when the message concerns a request. Thread-safe: each line is one write(2).
 *
 * Request diagnostics (diag_request) are collapsed: the same level and text (the ids aside)
 * again within DIAG_REPEAT_INTERVAL_MS of its first print is counted, not printed, and once the
 * interval is over one line says how many were suppressed (docs/operations.md, "Diagnostics").
 * With an upstream down that is one warning per interval instead of one per request.
 */
#include <stdint.h>

enum diag_level { DIAG_DEBUG, DIAG_INFO, DIAG_WARN, DIAG_ERROR };

/* How long repeats of a request diagnostic are counted instead of printed. */
#define DIAG_REPEAT_INTERVAL_MS 10000

/* Messages below this level are dropped. Default DIAG_INFO. Thread-safe. */
void diag_set_level(enum diag_level level);

/* "debug", "info", "warn" or "error" into *ret; 0, or -EINVAL (*ret untouched). */
int diag_level_parse(const char *text, enum diag_level *ret);
/* The name diag_level_parse accepts for a level. */
const char *diag_level_name(enum diag_level level);

void diag(enum diag_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * As diag(), with the request's trace_id (32 hex) and span_id (16 hex); either may be NULL.
 * Collapsed as said at the top; a printed line keeps its ids, so one example request of a
 * suppressed run can be looked up.
 */
void diag_request(enum diag_level level, const char *trace_id_hex, const char *span_id_hex,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Print the suppressed counts of intervals that are over. Every diag call does this too; the
 * daemon also calls it periodically, so that a count is not held back by a quiet moment.
 */
void diag_tick(void);
/* Print every pending suppressed count now, intervals over or not (at exit). */
void diag_flush(void);

/* For tests: write lines to fd instead of stderr, and take the time (milliseconds, any
 * monotonic origin) from now_ms instead of CLOCK_MONOTONIC (NULL: the real clock again). */
void diag_set_output(int fd);
void diag_set_clock(int64_t (*now_ms)(void));
