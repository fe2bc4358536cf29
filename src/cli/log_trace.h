/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Which lines belong to the trace asked for with `tracehop logs --trace-id ID`.
 *
 * ID is normalised first (log_trace_query_parse): 32 hex digits in any case are a W3C trace id;
 * a UUID 8-4-4-4-12 in any case stands for the trace id made of its 32 hex digits (a hop
 * without traceparent derives the trace id from a UUID X-Trace-ID: docs/trace-context.md, "1. The
 * decision", row 3); a whole traceparent value stands for its trace-id; any other text is an
 * X-Trace-ID value.
 *
 * The set then holds ids of two kinds: trace ids (16 bytes; an X-Trace-ID that is a UUID counts
 * as the trace id it maps to) and other X-Trace-ID values (exact text). A line belongs to the
 * trace when its trace_id or its x_trace_id is in the set, and every line that belongs adds its
 * own ids, so that a legacy hop that only kept the X-Trace-ID joins the story.
 *
 * A hop whose tracehop does not trust incoming trace context started a new trace and logged
 * what its caller sent as incoming_trace_id and incoming_x_trace_id (docs/access-log.md). Those
 * count as the line's ids too: the caller's trace finds the hop, and through its trace_id the
 * new trace below it; asked for the new trace, the caller's trace joins in the same way.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/log_idset.h"
#include "cli/log_record.h"

/* The set stops growing at this many ids (a hostile log could share one X-Trace-ID widely). */
#define LOG_TRACE_SET_MAX 100000

struct log_trace_query {
    bool has_trace_id;
    uint8_t trace_id[TRACEHOP_TRACE_ID_SIZE];
    char *text; /* the ID as given, owned; matched exactly against x_trace_id */
};

/*
 * Normalise a --trace-id argument into *ret (free it with log_trace_query_free). Returns 0, or
 * -EINVAL with a reason in err for an empty ID, -ENOMEM.
 */
int log_trace_query_parse(const char *text, struct log_trace_query *ret, char *err,
                          size_t err_size);
void log_trace_query_free(struct log_trace_query *q);

struct log_trace_set {
    struct log_idset ids;
    bool full; /* an id could not be added because of LOG_TRACE_SET_MAX */
};

/* Start a set from a query (the trace id and/or the text). Returns 0 or -ENOMEM. */
int log_trace_set_init(struct log_trace_set *set, const struct log_trace_query *q);
void log_trace_set_free(struct log_trace_set *set);

/* Whether r's trace_id, x_trace_id, incoming_trace_id or incoming_x_trace_id is in the set. */
bool log_trace_set_contains(const struct log_trace_set *set, const struct log_record *r);

/* Add those four ids of r. Returns 1 if the set grew, 0 if not, -ENOMEM. */
int log_trace_set_add(struct log_trace_set *set, const struct log_record *r);
