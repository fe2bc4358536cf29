/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Diagnostics: one JSON object per line on stderr, {"time","level","message"} plus trace_id and
 * span_id when the message concerns a request. Thread-safe: each line is one write(2).
 */
#include <stdint.h>

enum diag_level { DIAG_DEBUG, DIAG_INFO, DIAG_WARN, DIAG_ERROR };

/* Messages below this level are dropped. Default DIAG_INFO. */
void diag_set_level(enum diag_level level);

void diag(enum diag_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* As diag(), with the request's trace_id (32 hex) and span_id (16 hex); either may be NULL. */
void diag_request(enum diag_level level, const char *trace_id_hex, const char *span_id_hex,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
