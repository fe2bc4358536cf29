/* SPDX-License-Identifier: MIT */
/*
 * Hop tree construction (the rules are in log_tree.h).
 *
 * Steps, each linear or n log n except the inference:
 *   1. sort the records into time order: node indices are that order from here on;
 *   2. resolve parent_span_id through a sorted (span_id, index) table; the first occurrence of
 *      a span_id wins;
 *   3. break cycles: walk each unvisited chain upwards, marking the path; meeting the path again
 *      is a cycle, cut at its earliest node;
 *   4. infer parents for the remaining roots from time windows. This compares every root with
 *      every hop, so it is skipped above LOG_TREE_INFER_MAX hops (a "trace" that large is a
 *      shared X-Trace-ID, not a request chain). A candidate inside the root's own subtree is
 *      refused, which keeps the graph acyclic;
 *   5. child lists in time order, depth-first order without recursion (parent pointers lead
 *      back up), and the time arithmetic, after fitting children into their parents' windows
 *      within the millisecond resolution of `time`.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "cli/log_tree.h"

#define LOG_TREE_INFER_MAX 10000

struct span_entry {
    uint64_t span_id;
    size_t index;
};

static int compare_records(const void *a, const void *b)
{
    return log_record_compare(*(const struct log_record *const *)a,
                              *(const struct log_record *const *)b);
}

static int compare_spans(const void *a, const void *b)
{
    const struct span_entry *x = a, *y = b;
    if (x->span_id != y->span_id)
        return x->span_id < y->span_id ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The first (earliest) node with this span_id, or LOG_TREE_NONE. */
static size_t find_span(const struct span_entry *spans, size_t count, uint64_t span_id)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (spans[mid].span_id < span_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < count && spans[lo].span_id == span_id ? spans[lo].index : LOG_TREE_NONE;
}

static int link_spans(struct log_tree_node *nodes, size_t count)
{
    struct span_entry *spans = malloc(count * sizeof(*spans));
    size_t n = 0;

    if (!spans)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++)
        if (nodes[i].record->has_span_id)
            spans[n++] = (struct span_entry){nodes[i].record->span_id, i};
    qsort(spans, n, sizeof(*spans), compare_spans);
    for (size_t i = 0; i < count; i++) {
        const struct log_record *r = nodes[i].record;
        if (!r->has_parent && r->has_incoming_parent) {
            size_t p = find_span(spans, n, r->incoming_parent_span_id);
            if (p != LOG_TREE_NONE && p != i) {
                nodes[i].parent = p;
                nodes[i].link = LOG_TREE_NEW_TRACE;
            }
            continue;
        }
        if (!r->has_parent)
            continue;
        size_t p = find_span(spans, n, r->parent_span_id);
        if (p == i) {
            nodes[i].cycle = true; /* its own parent */
        } else if (p != LOG_TREE_NONE) {
            nodes[i].parent = p;
            nodes[i].link = LOG_TREE_SPAN;
        } else {
            nodes[i].orphan = true;
        }
    }
    free(spans);
    return 0;
}

static int break_cycles(struct log_tree_node *nodes, size_t count)
{
    enum { UNSEEN, ON_PATH, DONE };
    unsigned char *state = calloc(count, 1);
    size_t *path = malloc(count * sizeof(*path));

    if (!state || !path) {
        free(state);
        free(path);
        return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        size_t len = 0, j = i;
        while (j != LOG_TREE_NONE && state[j] == UNSEEN) {
            state[j] = ON_PATH;
            path[len++] = j;
            j = nodes[j].parent;
        }
        if (j != LOG_TREE_NONE && state[j] == ON_PATH) {
            size_t first = len;
            while (first > 0 && path[first - 1] != j)
                first--;
            size_t earliest = j;
            for (size_t k = first - 1; k < len; k++)
                if (path[k] < earliest)
                    earliest = path[k];
            nodes[earliest].parent = LOG_TREE_NONE;
            nodes[earliest].link = LOG_TREE_ROOT;
            nodes[earliest].cycle = true;
        }
        for (size_t k = 0; k < len; k++)
            state[path[k]] = DONE;
    }
    free(state);
    free(path);
    return 0;
}

static double duration_of(const struct log_tree_node *n)
{
    return n->record->duration_ms;
}

/* Whether `node` lies in the subtree of `root` (following parent links up). */
static bool in_subtree(const struct log_tree_node *nodes, size_t node, size_t root)
{
    for (size_t j = node; j != LOG_TREE_NONE; j = nodes[j].parent)
        if (j == root)
            return true;
    return false;
}

static void infer_parents(struct log_tree_node *nodes, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        double d = duration_of(&nodes[i]);
        if (nodes[i].parent != LOG_TREE_NONE || isnan(d))
            continue;
        double start = nodes[i].offset_ms, end = start + d;
        size_t best = LOG_TREE_NONE;
        double best_d = 0;
        for (size_t h = 0; h < count; h++) {
            double hd = duration_of(&nodes[h]);
            if (h == i || isnan(hd))
                continue;
            double hs = nodes[h].offset_ms;
            if (hs > start || end > hs + hd + LOG_TREE_TOLERANCE_MS)
                continue;
            /* The container must be strictly larger, so two hops never contain each other. */
            if (!(hd > d || (hd == d && h < i)))
                continue;
            /* Innermost: the shortest; among equals the later start, which is deeper. */
            if (best != LOG_TREE_NONE && !(hd < best_d || (hd == best_d && h > best)))
                continue;
            if (in_subtree(nodes, h, i))
                continue;
            best = h;
            best_d = hd;
        }
        if (best != LOG_TREE_NONE) {
            nodes[i].parent = best;
            nodes[i].link = LOG_TREE_INFERRED;
        }
    }
}

double log_tree_children_busy_ms(const double *starts, const double *durations, size_t count)
{
    double busy = 0, covered_until = -INFINITY;

    for (size_t k = 0; k < count; k++) {
        double d = isnan(durations[k]) || durations[k] < 0 ? 0 : durations[k];
        double s = starts[k], e = s + d;
        if (s + LOG_TREE_TOLERANCE_MS >= covered_until) {
            busy += d; /* after the previous ones: a sequential call */
        } else if (e > covered_until) {
            busy += e - covered_until; /* overlapping: only the part not yet covered */
        }
        if (e > covered_until)
            covered_until = e;
    }
    return busy;
}

/*
 * `time` has millisecond resolution (truncated), so a child that started 0.4 ms into a 1 ms
 * parent may show a later start than its parent's end allows. In drawing order (parents
 * first), move such a child back to end with its parent, when that takes less than the time
 * stamp resolution; a bigger overrun is real (clock skew between hosts) and is shown as it is.
 */
static void fit_children(struct log_tree *t)
{
    struct log_tree_node *nodes = t->nodes;

    for (size_t k = 0; k < t->count; k++) {
        struct log_tree_node *n = &nodes[t->order[k]];
        if (n->parent == LOG_TREE_NONE)
            continue;
        const struct log_tree_node *p = &nodes[n->parent];
        double d = duration_of(n), pd = duration_of(p);
        if (isnan(d) || isnan(pd) || d > pd)
            continue;
        double latest = p->offset_ms + pd - d; /* the latest start that ends with the parent */
        if (n->offset_ms > latest && n->offset_ms - latest < LOG_TREE_TOLERANCE_MS)
            n->offset_ms = latest > p->offset_ms ? latest : p->offset_ms;
    }
}

static int compute_times(struct log_tree *t)
{
    struct log_tree_node *nodes = t->nodes;
    double *starts = malloc(t->count * sizeof(double));
    double *durations = malloc(t->count * sizeof(double));

    if (!starts || !durations) {
        free(starts);
        free(durations);
        return -ENOMEM;
    }
    for (size_t i = 0; i < t->count; i++) {
        const struct log_record *r = nodes[i].record;
        size_t n = 0;
        for (size_t c = nodes[i].first_child; c != LOG_TREE_NONE; c = nodes[c].next_sibling) {
            starts[n] = nodes[c].offset_ms;
            durations[n++] = duration_of(&nodes[c]);
        }
        nodes[i].self_ms = NAN;
        nodes[i].overhead_ms = NAN;
        if (!isnan(r->upstream_duration_ms)) {
            double self = r->upstream_duration_ms - log_tree_children_busy_ms(starts, durations, n);
            nodes[i].self_ms = self > 0 ? self : 0;
            if (!isnan(r->duration_ms)) {
                double overhead = r->duration_ms - r->upstream_duration_ms;
                nodes[i].overhead_ms = overhead > 0 ? overhead : 0;
            }
        }
        double end = nodes[i].offset_ms + (isnan(r->duration_ms) ? 0 : r->duration_ms);
        if (end > t->span_ms)
            t->span_ms = end;
    }
    free(starts);
    free(durations);
    return 0;
}

/* Child lists (time order), then the depth-first order and depths. */
static void order_nodes(struct log_tree *t)
{
    struct log_tree_node *nodes = t->nodes;
    size_t n = 0;

    for (size_t i = t->count; i-- > 0;) {
        size_t p = nodes[i].parent;
        if (p != LOG_TREE_NONE) {
            nodes[i].next_sibling = nodes[p].first_child;
            nodes[p].first_child = i;
        }
    }
    for (size_t root = 0; root < t->count; root++) {
        if (nodes[root].parent != LOG_TREE_NONE)
            continue;
        size_t x = root;
        for (;;) {
            size_t p = nodes[x].parent;
            nodes[x].depth = p == LOG_TREE_NONE ? 0 : nodes[p].depth + 1;
            t->order[n++] = x;
            if (nodes[x].first_child != LOG_TREE_NONE) {
                x = nodes[x].first_child;
                continue;
            }
            while (x != root && nodes[x].next_sibling == LOG_TREE_NONE)
                x = nodes[x].parent;
            if (x == root)
                break;
            x = nodes[x].next_sibling;
        }
    }
}

int log_tree_build(const struct log_record *const *records, size_t count, struct log_tree *ret)
{
    struct log_tree t = {0};
    const struct log_record **sorted = NULL;
    int rc = -ENOMEM;

    *ret = t;
    if (count == 0)
        return 0;
    sorted = malloc(count * sizeof(*sorted));
    t.nodes = calloc(count, sizeof(*t.nodes));
    t.order = malloc(count * sizeof(*t.order));
    if (!sorted || !t.nodes || !t.order)
        goto out;
    for (size_t i = 0; i < count; i++)
        sorted[i] = records[i];
    qsort(sorted, count, sizeof(*sorted), compare_records);
    t.count = count;
    t.start_ms = sorted[0]->time_ms;
    for (size_t i = 0; i < count; i++) {
        t.nodes[i] = (struct log_tree_node){
            .record = sorted[i],
            .parent = LOG_TREE_NONE,
            .first_child = LOG_TREE_NONE,
            .next_sibling = LOG_TREE_NONE,
            .offset_ms = (double)(sorted[i]->time_ms - t.start_ms),
        };
    }
    if ((rc = link_spans(t.nodes, count)) < 0 || (rc = break_cycles(t.nodes, count)) < 0)
        goto out;
    if (count <= LOG_TREE_INFER_MAX)
        infer_parents(t.nodes, count);
    order_nodes(&t);
    fit_children(&t);
    rc = compute_times(&t);
out:
    free(sorted);
    if (rc < 0) {
        log_tree_free(&t);
        return rc;
    }
    *ret = t;
    return 0;
}

void log_tree_free(struct log_tree *t)
{
    free(t->nodes);
    free(t->order);
    *t = (struct log_tree){0};
}
