/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The access-log sink: worker threads hand over finished lines; one writer thread writes them.
 * A worker never blocks on the disk or a full pipe: lines go into a bounded buffer, and a line
 * that does not fit is counted as dropped and announced on stderr once the writer catches up.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct accesslog;

/* Open `path` ("-" = stdout) for appending and start the writer thread. */
int accesslog_open(const char *path, size_t buffer_bytes, struct accesslog **ret);
/* Queue one complete line (ending in '\n'). Never blocks on I/O. Thread-safe. */
void accesslog_submit(struct accesslog *log, const char *line, size_t len);
/* A line that could not even be built (out of memory): counted with the dropped lines, so the
 * loss shows in the metrics and the writer's warning. Thread-safe. */
void accesslog_count_lost(struct accesslog *log);
/* Ask the writer to reopen the file (logrotate). Thread-safe; not for signal handlers. */
void accesslog_request_reopen(struct accesslog *log);
/* Flush everything queued, stop the writer and close. Accepts NULL; returns NULL. */
struct accesslog *accesslog_close(struct accesslog *log);

struct accesslog_stats {
    uint64_t lines_written;
    uint64_t lines_dropped;
    uint64_t write_errors;
};
void accesslog_get_stats(struct accesslog *log, struct accesslog_stats *ret);
