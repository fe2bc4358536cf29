/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Text output of `tracehop logs`: one readable line per request, and the hop tree of a trace
 * as an indented timeline with an ASCII bar per hop on a common time scale.
 *
 * Everything that came from a log line is printed through json_escape, so a hostile path or
 * service name cannot move the cursor, change colours or clear the screen of the person
 * reading: C0, DEL and C1 controls appear as \uXXXX, invalid UTF-8 as U+FFFD.
 */
#include "cli/log_record.h"
#include "cli/log_tree.h"
#include "common/strbuf.h"

/* Default width of the timeline bars, in columns. */
#define LOG_RENDER_BAR_COLUMNS 40

/*
 * Append one line (with '\n') for r:
 *   <time>  <service>  <status>  <duration>  <method> <path>[?<query>]  [<outcome>]  <trace_id>
 * the outcome only when it is not "ok"; absent values as "-".
 */
void log_render_line(struct strbuf *out, const struct log_record *r);

/* Append the column names of log_render_line's rows (with '\n'). */
void log_render_header(struct strbuf *out);

/* SGR sequences for rows on a terminal (ECMA-48). */
#define LOG_RENDER_YELLOW "\033[33m"
#define LOG_RENDER_RED    "\033[31m"
#define LOG_RENDER_RESET  "\033[0m"

/*
 * The colour of r's row, or NULL for none: red for a 5xx, for no response at all (status null)
 * and for an outcome other than "ok" below 400 (a response broken off after its head); yellow
 * for a 4xx.
 */
const char *log_render_colour(const struct log_record *r);

/*
 * Append the drawing of a tree: a summary (trace ids, X-Trace-IDs, hop and service counts,
 * total time), then one row per hop in depth-first order: offset from the trace start, the
 * hop (indented under its parent, "`-" for a span link, "`~" for an inferred one, "`+" for the
 * start of a new trace under its caller at a trust_incoming: false edge), status,
 * duration, self time, overhead (ms, "-" when unknown) and a bar `bar_columns` wide.
 */
void log_render_tree(struct strbuf *out, const struct log_tree *t, unsigned bar_columns);
