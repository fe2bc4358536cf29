/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The hop tree of one trace: which tracehop hop called which, as `tracehop logs --trace-id`
 * draws it. Pure: records in, a tree of indices out.
 *
 * Links, in order of trust:
 *   - span: a hop's parent_span_id is the span_id of another hop (what traceparent carried);
 *   - inferred: a hop without a known parent (parent_span_id null, or naming a span that is in
 *     none of the logs read) whose time window lies inside another hop's window is put under
 *     the innermost such hop. That is what a legacy app in between looks like: it forwarded
 *     X-Trace-ID but dropped traceparent, so the next tracehop started a root span. Windows are
 *     [time, time + duration_ms]; `time` has millisecond resolution, so an end may overrun its
 *     container by LOG_TREE_TOLERANCE_MS.
 *   - new trace: a hop whose tracehop does not trust incoming trace context (trust_incoming:
 *     false) started a new trace and logged its caller's span as incoming_parent_span_id; when
 *     that span is a hop of the logs read, the hop hangs under it, marked as the start of a new
 *     trace (its parent_span_id is null, so without this it would be a root).
 * Hostile or inconsistent input never loops: a parent_span_id chain that comes back on itself
 * is cut at its earliest hop, which becomes a root marked `cycle`; a span_id that occurs more
 * than once links to its first occurrence.
 *
 * Per hop, the tree computes its offset from the start of the trace, its self time (the time
 * its upstream spent on it, upstream_duration_ms, minus the time covered by its child hops,
 * never negative: children that run one after the other are summed, children that overlap
 * count once) and tracehop's overhead (duration_ms - upstream_duration_ms, never negative).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/log_record.h"

#define LOG_TREE_TOLERANCE_MS 1.0

enum log_tree_link {
    LOG_TREE_ROOT = 0,
    LOG_TREE_SPAN,      /* parent_span_id -> span_id */
    LOG_TREE_INFERRED,  /* from the time windows */
    LOG_TREE_NEW_TRACE, /* incoming_parent_span_id -> span_id: a new trace started there */
};

#define LOG_TREE_NONE SIZE_MAX

struct log_tree_node {
    const struct log_record *record; /* not owned */
    size_t parent;                   /* index, or LOG_TREE_NONE */
    enum log_tree_link link;
    bool orphan; /* has a parent_span_id that no hop in the logs has */
    bool cycle;  /* its parent link was cut to break a cycle */
    size_t depth;
    size_t first_child, next_sibling; /* LOG_TREE_NONE when none; children in time order */
    /* time - the trace's start; a child's is moved back by less than LOG_TREE_TOLERANCE_MS
       when that makes it end within its parent */
    double offset_ms;
    double self_ms;     /* NAN when upstream_duration_ms is unknown */
    double overhead_ms; /* NAN when either duration is unknown */
};

struct log_tree {
    struct log_tree_node *nodes; /* in time order (log_record_compare) */
    size_t count;
    size_t *order; /* depth-first drawing order: indices into nodes */
    int64_t start_ms;
    double span_ms; /* from the earliest start to the latest end */
};

/*
 * Build the tree of `count` records (any order; they must outlive the tree). Returns 0, or
 * -ENOMEM (the tree is then empty).
 */
int log_tree_build(const struct log_record *const *records, size_t count, struct log_tree *ret);

/* Free the tree (not the records). Accepts a zeroed tree. */
void log_tree_free(struct log_tree *t);

/*
 * Time covered by child windows, each [start, start + duration] in ms, as the self-time rule
 * above counts it: `count` windows sorted by start; a child that starts no more than
 * LOG_TREE_TOLERANCE_MS before the previous ones ended counts in full (sequential calls,
 * millisecond time stamps), a real overlap counts once. Exposed for the unit tests.
 */
double log_tree_children_busy_ms(const double *starts, const double *durations, size_t count);
