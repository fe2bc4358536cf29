/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The access-log line of a finished request (SPEC section 5): built from the request, handed to
 * the sink. One schema, documented in docs/access-log.md and read back by `tracehop logs`.
 */
#include <time.h>

struct request;
struct strbuf;

/*
 * Build the line for req into b (cleared first): one JSON object and a '\n', the same bytes
 * logline_write submits. `now` is the CLOCK_MONOTONIC time the request ended (for duration_ms).
 * Returns 0, or -ENOMEM when b could not grow (its contents are then incomplete).
 */
int logline_format(struct strbuf *b, const struct request *req, unsigned status,
                   const char *outcome, const struct timespec *now);

/* Build the line for req and submit it to the worker's access log. */
void logline_write(struct request *req, unsigned status, const char *outcome);

/* Free this thread's line buffer (call when a worker thread ends). */
void logline_thread_cleanup(void);
