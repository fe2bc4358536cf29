/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The access-log line of a finished request (SPEC section 5): built from the request, handed to
 * the sink. One schema, documented in docs/access-log.md and read back by `tracehop logs`.
 */
struct request;

/* Build the line for req and submit it to the worker's access log. */
void logline_write(struct request *req, unsigned status, const char *outcome);

/* Free this thread's line buffer (call when a worker thread ends). */
void logline_thread_cleanup(void);
