/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The standard process metrics of the Prometheus client libraries (process_cpu_seconds_total,
 * process_open_fds, process_max_fds, process_virtual_memory_bytes,
 * process_resident_memory_bytes, process_start_time_seconds), read from /proc/self at scrape
 * time (proc(5)). The parsers are separate from the reading so that they can be tested on
 * fixed text.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one scrape reports; a value that could not be read is left out of /metrics. */
struct process_stats {
    bool have_cpu, have_memory, have_start_time, have_open_fds, have_max_fds;
    double cpu_seconds;        /* user + system */
    double start_time_seconds; /* Unix time */
    uint64_t virtual_bytes, resident_bytes;
    uint64_t open_fds, max_fds;
};

/* The fields of /proc/PID/stat the metrics need, in the kernel's units. */
struct process_stat_fields {
    uint64_t utime_ticks, stime_ticks; /* fields 14 and 15 */
    uint64_t start_ticks;              /* field 22: since boot */
    uint64_t vsize_bytes;              /* field 23 */
    uint64_t rss_pages;                /* field 24 */
};

/*
 * Parse the text of /proc/PID/stat (len bytes, NUL not needed). The command name (field 2) is
 * in parentheses and may itself contain spaces and ')': the fields after it are found from the
 * last ')'. Returns false when the text does not have the fields.
 */
bool process_stat_parse(const char *text, size_t len, struct process_stat_fields *ret);

/* The boot time (the "btime SECONDS" line) from the text of /proc/stat. */
bool process_btime_parse(const char *text, size_t len, uint64_t *ret);

/* Read everything for one scrape from /proc/self and getrlimit. Never fails: what cannot be
 * read is marked missing. */
void process_stats_read(struct process_stats *ret);
