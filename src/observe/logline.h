/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The access-log line of a finished request: built from its summary, handed to the sink. One
 * schema, documented in docs/access-log.md ("Fields") and read back by `tracehop logs`.
 */
struct accesslog;
struct request_summary;
struct strbuf;

/*
 * Build the line for a request into b (cleared first): one JSON object and a '\n', the same
 * bytes logline_write submits. Returns 0, or -ENOMEM when b could not grow (its contents are
 * then incomplete).
 */
int logline_format(struct strbuf *b, const struct request_summary *summary);

/* Build the line and submit it to log; a line that cannot be built (out of memory) is counted
 * with the log's dropped lines. */
void logline_write(struct accesslog *log, const struct request_summary *summary);

/* Free this thread's line buffer (call when a worker thread ends). */
void logline_thread_cleanup(void);
