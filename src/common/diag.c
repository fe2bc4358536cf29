/* SPDX-License-Identifier: MIT */
/*
 * Diagnostic lines. They are rare (startup, config errors, upstream failures), so clarity beats
 * speed: format into a stack buffer, escape, and write the whole line with one write(2) so lines
 * from different threads never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/diag.h"
#include "common/strbuf.h"
#include "common/timefmt.h"

static volatile enum diag_level min_level = DIAG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void diag_set_level(enum diag_level level)
{
    min_level = level;
}

static void diag_write(enum diag_level level, const char *trace_id, const char *span_id,
                       const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void diag_write(enum diag_level level, const char *trace_id, const char *span_id,
                       const char *fmt, va_list ap)
{
    char message[2048];
    char time_text[TIMEFMT_RFC3339_MS_LEN + 1];
    struct strbuf line = {0};
    struct timespec now;

    if (level < min_level)
        return;
    vsnprintf(message, sizeof(message), fmt, ap);
    clock_gettime(CLOCK_REALTIME, &now);
    timefmt_rfc3339_ms(time_text, &now);

    strbuf_append_str(&line, "{\"time\":\"");
    strbuf_append_str(&line, time_text);
    strbuf_append_str(&line, "\",\"level\":\"");
    strbuf_append_str(&line, level_names[level]);
    strbuf_append_str(&line, "\",\"message\":");
    strbuf_append_json_string(&line, message, strlen(message));
    if (trace_id) {
        strbuf_append_str(&line, ",\"trace_id\":");
        strbuf_append_json_string(&line, trace_id, strlen(trace_id));
    }
    if (span_id) {
        strbuf_append_str(&line, ",\"span_id\":");
        strbuf_append_json_string(&line, span_id, strlen(span_id));
    }
    strbuf_append_str(&line, "}\n");
    if (!line.oom) {
        ssize_t ignored = write(STDERR_FILENO, line.data, line.len);
        (void)ignored; /* nowhere left to report a failing stderr */
    }
    strbuf_free(&line);
}

void diag(enum diag_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_write(level, NULL, NULL, fmt, ap);
    va_end(ap);
}

void diag_request(enum diag_level level, const char *trace_id_hex, const char *span_id_hex,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_write(level, trace_id_hex, span_id_hex, fmt, ap);
    va_end(ap);
}
