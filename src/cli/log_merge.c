/* SPDX-License-Identifier: MIT */
/*
 * The reorder window and k-way merge (design in log_merge.h).
 *
 * One binary heap for all inputs rather than a heap per input plus a heap of heads: the window
 * condition is per input anyway (its high-water time and how much it holds), and with a
 * handful of inputs the O(inputs) check per pop costs less than the bookkeeping of nested heaps.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "cli/log_merge.h"

struct merge_source {
    int64_t high_ms; /* the latest time seen on this input */
    bool seen;       /* any line yet */
    bool eof;
    size_t lines; /* records held */
    size_t bytes;
};

struct log_merge {
    struct log_merge_limits limits;
    struct merge_source *sources;
    size_t sources_count;
    struct log_record **heap;
    size_t count, cap;
};

int log_merge_new(size_t sources, const struct log_merge_limits *limits, struct log_merge **ret)
{
    if (sources == 0)
        return -EINVAL;
    struct log_merge *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->sources = calloc(sources, sizeof(*m->sources));
    if (!m->sources) {
        free(m);
        return -ENOMEM;
    }
    m->sources_count = sources;
    m->limits = *limits;
    *ret = m;
    return 0;
}

void log_merge_free(struct log_merge *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++)
        log_record_free(m->heap[i]);
    free(m->heap);
    free(m->sources);
    free(m);
}

void log_merge_saw(struct log_merge *m, size_t source, int64_t time_ms)
{
    struct merge_source *s = &m->sources[source];
    if (!s->seen || time_ms > s->high_ms)
        s->high_ms = time_ms;
    s->seen = true;
}

static size_t record_bytes(const struct log_record *r)
{
    return sizeof(*r) + r->line_len + 1 + r->strings_len;
}

static bool less(const struct log_record *a, const struct log_record *b)
{
    return log_record_compare(a, b) < 0;
}

int log_merge_push(struct log_merge *m, struct log_record *r)
{
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        struct log_record **bigger = realloc(m->heap, cap * sizeof(*bigger));
        if (!bigger)
            return -ENOMEM;
        m->heap = bigger;
        m->cap = cap;
    }
    size_t i = m->count++;
    while (i > 0 && less(r, m->heap[(i - 1) / 2])) {
        m->heap[i] = m->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    m->heap[i] = r;
    m->sources[r->source].lines++;
    m->sources[r->source].bytes += record_bytes(r);
    log_merge_saw(m, r->source, r->time_ms);
    return 0;
}

void log_merge_set_eof(struct log_merge *m, size_t source, bool eof)
{
    m->sources[source].eof = eof;
}

/* Whether input s may still produce a record earlier than time_ms. */
static bool holds_back(const struct log_merge *m, const struct merge_source *s, int64_t time_ms)
{
    if (s->eof || s->lines >= m->limits.lines || s->bytes >= m->limits.bytes)
        return false;
    return !s->seen || s->high_ms < time_ms + m->limits.skew_ms;
}

struct log_record *log_merge_pop_any(struct log_merge *m)
{
    if (m->count == 0)
        return NULL;
    struct log_record *top = m->heap[0];
    struct log_record *last = m->heap[--m->count];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= m->count)
            break;
        if (child + 1 < m->count && less(m->heap[child + 1], m->heap[child]))
            child++;
        if (!less(m->heap[child], last))
            break;
        m->heap[i] = m->heap[child];
        i = child;
    }
    if (m->count > 0)
        m->heap[i] = last;
    struct merge_source *s = &m->sources[top->source];
    s->lines--;
    s->bytes -= record_bytes(top);
    return top;
}

struct log_record *log_merge_pop(struct log_merge *m)
{
    if (m->count == 0)
        return NULL;
    int64_t t = m->heap[0]->time_ms;
    for (size_t i = 0; i < m->sources_count; i++)
        if (holds_back(m, &m->sources[i], t))
            return NULL;
    return log_merge_pop_any(m);
}

int log_merge_next_source(const struct log_merge *m)
{
    int best = -1;

    for (size_t i = 0; i < m->sources_count; i++) {
        const struct merge_source *s = &m->sources[i];
        if (s->eof || (m->count > 0 && !holds_back(m, s, m->heap[0]->time_ms)))
            continue;
        if (best < 0) {
            best = (int)i;
            continue;
        }
        /* An input not read yet comes first, then the one furthest behind. */
        const struct merge_source *b = &m->sources[best];
        if (b->seen && (!s->seen || s->high_ms < b->high_ms))
            best = (int)i;
    }
    return best;
}

size_t log_merge_count(const struct log_merge *m)
{
    return m->count;
}
