/* SPDX-License-Identifier: MIT */
/*
 * Text rendering for `tracehop logs` (contracts in log_render.h).
 *
 * Output is built in a strbuf and written by the caller, so rendering never does I/O and the
 * unit tests can look at the exact text. Column widths of the tree are computed from the data
 * (the whole tree is in memory anyway); widths count code points, which is right for the ASCII
 * that access logs hold and close enough for the rest. Time stamps are printed with the
 * daemon's own formatter (common/timefmt, through log_time_format), escaping with the daemon's
 * json_escape: one definition of each, shared with the writer of the log.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/log_render.h"
#include "cli/log_idset.h"
#include "cli/log_time.h"
#include "common/json_escape.h"

/* Longest path (in characters) shown in a tree row; the full one is in the line listing. */
#define TREE_PATH_MAX   48
#define TREE_INDENT_MAX 24 /* deeper hops are indented like this depth, with their depth shown */
#define SUMMARY_IDS_MAX 4

static void appendf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void appendf(struct strbuf *b, const char *fmt, ...)
{
    char text[512];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n > 0)
        strbuf_append(b, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

/* Append s made safe for a terminal; with max_chars > 0, longer text is cut and ends in "...". */
static void append_safe(struct strbuf *b, const char *s, size_t max_chars)
{
    size_t n = strlen(s), chars = 0, cut = n;

    if (max_chars > 0) {
        for (size_t i = 0; i < n; i++) {
            if (((unsigned char)s[i] & 0xc0) != 0x80 && chars++ == max_chars) {
                cut = i;
                break;
            }
        }
    }
    if (!strbuf_reserve(b, cut * 6 + 3))
        return;
    b->len += json_escape(b->data + b->len, s, cut, NULL);
    b->data[b->len] = '\0';
    if (cut < n)
        strbuf_append_str(b, "...");
}

static void append_or_dash(struct strbuf *b, const char *s)
{
    if (s && *s)
        append_safe(b, s, 0);
    else
        strbuf_append_char(b, '-');
}

/* Display width of UTF-8 text: its code points. */
static size_t text_width(const char *s, size_t len)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++)
        w += ((unsigned char)s[i] & 0xc0) != 0x80;
    return w;
}

static void pad(struct strbuf *b, size_t from_width, size_t to_width)
{
    for (size_t i = from_width; i < to_width; i++)
        strbuf_append_char(b, ' ');
}

/* Milliseconds right-aligned in `width` columns, "-" when unknown. */
static void append_ms(struct strbuf *b, double ms, int width)
{
    if (isnan(ms))
        appendf(b, "%*s", width, "-");
    else
        appendf(b, "%*.3f", width, ms);
}

static void append_status(struct strbuf *b, int status)
{
    if (status < 0)
        strbuf_append_str(b, "  -");
    else
        appendf(b, "%3d", status);
}

void log_render_line(struct strbuf *out, const struct log_record *r)
{
    char when[LOG_TIME_TEXT_SIZE];
    size_t mark;

    log_time_format(r->time_ms, when);
    strbuf_append_str(out, when);
    strbuf_append_str(out, "  ");
    mark = out->len;
    append_or_dash(out, r->service);
    pad(out, text_width(out->data + mark, out->len - mark), 8);
    strbuf_append_str(out, "  ");
    append_status(out, r->status);
    strbuf_append_str(out, "  ");
    if (isnan(r->duration_ms))
        appendf(out, "%10s", "-");
    else
        appendf(out, "%8.3fms", r->duration_ms);
    strbuf_append_str(out, "  ");
    append_or_dash(out, r->method);
    strbuf_append_char(out, ' ');
    append_or_dash(out, r->path);
    if (r->query) {
        strbuf_append_char(out, '?');
        append_safe(out, r->query, 0);
    }
    if (r->outcome && strcmp(r->outcome, "ok") != 0) {
        strbuf_append_str(out, "  [");
        append_safe(out, r->outcome, 0);
        strbuf_append_char(out, ']');
    }
    strbuf_append_str(out, "  ");
    append_or_dash(out, r->trace_id_text);
    strbuf_append_char(out, '\n');
}

void log_render_header(struct strbuf *out)
{
    /* Labels start where log_render_line's columns start; "duration" ends where its do. */
    appendf(out, "%-24s  %-8s  %-6s%9s  %s  %s\n", "time", "service", "status", "duration",
            "request [outcome unless ok]", "trace_id");
}

const char *log_render_colour(const struct log_record *r)
{
    bool not_ok = r->outcome && strcmp(r->outcome, "ok") != 0;

    if (r->status >= 500 || r->status < 0 || (not_ok && r->status < 400))
        return LOG_RENDER_RED;
    if (r->status >= 400)
        return LOG_RENDER_YELLOW;
    return NULL;
}

/* --- the tree ------------------------------------------------------------------------------ */

/* "a, b, c" of the distinct values get(node) over the tree, at most SUMMARY_IDS_MAX. */
static size_t append_distinct(struct strbuf *b, const struct log_tree *t,
                              const char *(*get)(const struct log_record *))
{
    const char *seen[SUMMARY_IDS_MAX];
    size_t n = 0, more = 0;

    for (size_t i = 0; i < t->count; i++) {
        const char *v = get(t->nodes[i].record);
        bool known = !v;
        for (size_t k = 0; k < n && !known; k++)
            known = strcmp(seen[k], v) == 0;
        if (known)
            continue;
        if (n == SUMMARY_IDS_MAX) {
            more++; /* may count a repeated value twice; it only says "and more" */
            continue;
        }
        if (n > 0)
            strbuf_append_str(b, ", ");
        append_safe(b, v, 0);
        seen[n++] = v;
    }
    if (more)
        strbuf_append_str(b, ", ...");
    if (n == 0)
        strbuf_append_char(b, '-');
    return n + more;
}

static const char *get_trace_id(const struct log_record *r)
{
    return r->trace_id_text;
}

static const char *get_x_trace_id(const struct log_record *r)
{
    return r->x_trace_id;
}

/* How many different service names the tree holds (a missing one counts as one). */
static size_t count_services(const struct log_tree *t)
{
    struct log_idset names = {0};
    size_t count = 0;

    for (size_t i = 0; i < t->count; i++) {
        const char *s = t->nodes[i].record->service;
        if (!s)
            s = "";
        if (log_idset_add(&names, s, strlen(s)) != 0)
            count++; /* an allocation failure counts too: the number is only shown */
    }
    log_idset_free(&names);
    return count;
}

/* The hop column of one node: indentation, link mark, service, method, path. */
static void hop_label(struct strbuf *b, const struct log_tree_node *n)
{
    const struct log_record *r = n->record;

    if (n->depth > 0) {
        size_t indent = n->depth - 1 < TREE_INDENT_MAX ? n->depth - 1 : TREE_INDENT_MAX;
        for (size_t i = 0; i < indent; i++)
            strbuf_append_str(b, "   ");
        if (n->depth - 1 > TREE_INDENT_MAX)
            appendf(b, "[%zu]", n->depth);
        strbuf_append_str(b, n->link == LOG_TREE_INFERRED    ? "`~ "
                             : n->link == LOG_TREE_NEW_TRACE ? "`+ "
                                                             : "`- ");
    }
    append_or_dash(b, r->service);
    strbuf_append_char(b, ' ');
    append_or_dash(b, r->method);
    strbuf_append_char(b, ' ');
    if (r->path) {
        append_safe(b, r->path, TREE_PATH_MAX);
    } else {
        strbuf_append_char(b, '-');
    }
}

static void append_bar(struct strbuf *b, const struct log_tree *t, const struct log_tree_node *n,
                       unsigned columns)
{
    double d = isnan(n->record->duration_ms) ? 0 : n->record->duration_ms;
    unsigned from = 0, to = columns;

    if (t->span_ms > 0) {
        double a = floor(n->offset_ms / t->span_ms * columns);
        double z = ceil((n->offset_ms + d) / t->span_ms * columns);
        from = a < 0 ? 0 : a >= columns ? columns - 1 : (unsigned)a;
        to = z > columns ? columns : (unsigned)z;
        if (to <= from)
            to = from + 1;
    }
    strbuf_append_char(b, '|');
    for (unsigned c = 0; c < columns; c++)
        strbuf_append_char(b, c >= from && c < to ? '#' : ' ');
    strbuf_append_char(b, '|');
}

void log_render_tree(struct strbuf *out, const struct log_tree *t, unsigned bar_columns)
{
    struct strbuf label = {0};
    size_t width = strlen("hop"), services;
    bool any_inferred = false, any_orphan = false, any_cycle = false, any_new_trace = false;
    char when[LOG_TIME_TEXT_SIZE];

    if (t->count == 0)
        return;
    if (bar_columns < 10)
        bar_columns = 10;
    strbuf_append_str(out, "trace ");
    append_distinct(out, t, get_trace_id);
    strbuf_append_str(out, "\nx_trace_id ");
    append_distinct(out, t, get_x_trace_id);
    log_time_format(t->start_ms, when);
    appendf(out, "\n%zu hop%s, ", t->count, t->count == 1 ? "" : "s");
    services = count_services(t);
    appendf(out, "%zu service%s, %.3f ms from %s\n\n", services, services == 1 ? "" : "s",
            t->span_ms, when);

    for (size_t i = 0; i < t->count; i++) {
        strbuf_clear(&label);
        hop_label(&label, &t->nodes[i]);
        size_t w = text_width(label.data ? label.data : "", label.len);
        if (w > width)
            width = w;
    }
    appendf(out, "%10s  %-*s  %6s  %10s  %10s  %10s  ", "offset ms", (int)width, "hop", "status",
            "duration", "self", "overhead");
    appendf(out, "|0 ms%*.3f ms|\n", (int)bar_columns - 7, t->span_ms);

    for (size_t k = 0; k < t->count; k++) {
        const struct log_tree_node *n = &t->nodes[t->order[k]];
        appendf(out, "%+10.3f  ", n->offset_ms);
        strbuf_clear(&label);
        hop_label(&label, n);
        strbuf_append(out, label.data ? label.data : "", label.len);
        pad(out, text_width(label.data ? label.data : "", label.len), width);
        strbuf_append_str(out, "     ");
        append_status(out, n->record->status);
        strbuf_append_str(out, "  ");
        append_ms(out, n->record->duration_ms, 10);
        strbuf_append_str(out, "  ");
        append_ms(out, n->self_ms, 10);
        strbuf_append_str(out, "  ");
        append_ms(out, n->overhead_ms, 10);
        strbuf_append_str(out, "  ");
        append_bar(out, t, n, bar_columns);
        if (n->link == LOG_TREE_NEW_TRACE) {
            strbuf_append_str(out, "  (new trace ");
            append_or_dash(out, n->record->trace_id_text);
            strbuf_append_char(out, ')');
            any_new_trace = true;
        }
        if (n->cycle) {
            strbuf_append_str(out, "  (parent link cut: cycle)");
            any_cycle = true;
        } else if (n->orphan) {
            strbuf_append_str(out, "  (parent ");
            append_or_dash(out, n->record->parent_span_id_text);
            strbuf_append_str(out, " not in these logs)");
            any_orphan = true;
        }
        any_inferred |= n->link == LOG_TREE_INFERRED;
        strbuf_append_char(out, '\n');
    }
    strbuf_free(&label);
    if (any_inferred)
        strbuf_append_str(out, "`~ parent inferred from the time window: the caller did not pass "
                               "traceparent on (a legacy hop in between)\n");
    if (any_new_trace)
        strbuf_append_str(out, "`+ a new trace started here: that tracehop does not trust incoming "
                               "trace context (trust_incoming: false) and logged its caller's span "
                               "as incoming_parent_span_id\n");
    if (any_orphan)
        strbuf_append_str(out, "parent not in these logs: its span is from a service whose log "
                               "was not read, or from the app itself\n");
    if (any_cycle)
        strbuf_append_str(out, "cycle: parent_span_id links that loop; the earliest hop of the "
                               "loop is shown as a root\n");
}
