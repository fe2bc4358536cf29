/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Time order across several logs that are each only roughly in order.
 *
 * tracehop writes a line when a request ends but stamps it with the time the request started,
 * so within one file `time` goes backwards by up to the longest request in flight. The merge
 * holds each input's matching records in one min-heap (order: log_record_compare) and lets the
 * smallest go only when no input can still produce an earlier one: every input that is still
 * being read has already shown a time at least `skew_ms` later (the reorder window), or holds
 * `lines` / `bytes` records already (the memory bound wins over the order), or is at EOF.
 *
 * The caller drives it: read from log_merge_next_source(), report every parsed line's time with
 * log_merge_saw() (matching or not: a line that is filtered out still proves how far an input
 * has got), push the matching ones, pop what is ready.
 */
#include <stddef.h>
#include <stdint.h>

#include "cli/log_record.h"

struct log_merge_limits {
    size_t lines;    /* records held per input before order gives way (e.g. 10,000) */
    size_t bytes;    /* bytes of records held per input before order gives way */
    int64_t skew_ms; /* how far back in time an input may still go (e.g. 10 s) */
};

struct log_merge;

/* A merge over `sources` inputs (0..sources-1). Returns 0, -EINVAL (no sources) or -ENOMEM. */
int log_merge_new(size_t sources, const struct log_merge_limits *limits, struct log_merge **ret);

/* Free the merge and every record it still holds. Accepts NULL. */
void log_merge_free(struct log_merge *m);

/* A line of `source` with this time was read (whether it matched or not). */
void log_merge_saw(struct log_merge *m, size_t source, int64_t time_ms);

/* Hand over a matching record of input r->source (the merge owns it). 0 or -ENOMEM. */
int log_merge_push(struct log_merge *m, struct log_record *r);

/* Whether `source` has reached its end; an input at EOF never holds the others back. */
void log_merge_set_eof(struct log_merge *m, size_t source, bool eof);

/* The next record in order if it may go now (the caller owns it), else NULL. */
struct log_record *log_merge_pop(struct log_merge *m);

/* The next record whatever the window says (for the end of input), or NULL when empty. */
struct log_record *log_merge_pop_any(struct log_merge *m);

/*
 * The input to read next (call it after popping what is ready): the one furthest behind among
 * those holding back the smallest record, or among all open ones when the heap is empty. -1
 * when every input is at EOF.
 */
int log_merge_next_source(const struct log_merge *m);

/* How many records the merge holds. */
size_t log_merge_count(const struct log_merge *m);
