/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target: one line as `tracehop logs` reads it (src/cli/log_record.c: container-tool
 * prefixes, the JSON scanner, the access-log / diagnostic decision, the decoded fields) and the
 * text row it becomes (src/cli/log_render.c).
 *
 * The whole input is one line, copied into an exactly-sized heap block. Checked against the
 * contracts in log_record.h and log_render.h:
 *  - the result is 0 or one of the documented LOG_RECORD_* codes;
 *  - a record's `line` is a suffix of the input (only a prefix is ever taken off), the part
 *    taken off is at most LOG_RECORD_PREFIXES space-ended tokens, and the JSON that remains
 *    starts with '{' after optional JSON whitespace; parsing that JSON alone gives the same record
 *    (prefix removal is idempotent);
 *  - decoded ids have their documented shapes, status is -1 or 0..99999, durations are NaN or
 *    within 0..10^12 ms;
 *  - a clone holds the same line and strings after the scratch is freed;
 *  - the rendered row ends in its only newline and holds no control character (the escaping
 *    that keeps a hostile log from driving the reader's terminal), and its colour is one of the
 *    three the header names.
 */

#include <math.h>

#include "cli/log_record.h"
#include "cli/log_render.h"
#include "fuzz.h"

static bool same_string(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_fields(const struct log_record *r)
{
    FUZZ_CHECK(r->status == -1 || (r->status >= 0 && r->status <= 99999));
    FUZZ_CHECK(isnan(r->duration_ms) || (r->duration_ms >= 0 && r->duration_ms <= 1e12));
    FUZZ_CHECK(isnan(r->upstream_duration_ms) ||
               (r->upstream_duration_ms >= 0 && r->upstream_duration_ms <= 1e12));
    FUZZ_CHECK(r->trace_id_text && r->span_id_text); /* required members */
    if (r->has_trace_id)
        FUZZ_CHECK(strlen(r->trace_id_text) == 32);
    if (r->has_span_id)
        FUZZ_CHECK(strlen(r->span_id_text) == 16);
    if (r->has_parent)
        FUZZ_CHECK(r->parent_span_id_text && strlen(r->parent_span_id_text) == 16);
    if (r->has_incoming_trace_id)
        FUZZ_CHECK(r->incoming_trace_id_text && strlen(r->incoming_trace_id_text) == 32);
}

static void check_clone(const struct log_record *r, struct log_record_scratch *scratch)
{
    struct log_record *c = log_record_clone(r);
    char *service = r->service ? strdup(r->service) : NULL;
    char *path = r->path ? strdup(r->path) : NULL;
    char *incoming = r->incoming_x_trace_id ? strdup(r->incoming_x_trace_id) : NULL;

    FUZZ_CHECK(c);
    log_record_scratch_free(scratch); /* the clone must not need it */
    FUZZ_CHECK(c->line_len == r->line_len && memcmp(c->line, r->line, r->line_len) == 0);
    FUZZ_CHECK(same_string(c->service, service));
    FUZZ_CHECK(same_string(c->path, path));
    FUZZ_CHECK(same_string(c->incoming_x_trace_id, incoming));
    FUZZ_CHECK(c->time_ms == r->time_ms && c->status == r->status);
    free(service);
    free(path);
    free(incoming);
    log_record_free(c);
}

static void check_row(const struct log_record *r)
{
    struct strbuf out = {0};
    const char *colour = log_render_colour(r);

    FUZZ_CHECK(!colour || strcmp(colour, LOG_RENDER_RED) == 0 ||
               strcmp(colour, LOG_RENDER_YELLOW) == 0);
    log_render_line(&out, r);
    FUZZ_CHECK(!out.oom && out.len > 0 && out.data[out.len - 1] == '\n');
    for (size_t i = 0; i + 1 < out.len; i++) {
        unsigned char b = (unsigned char)out.data[i];
        FUZZ_CHECK(b >= 0x20 && b != 0x7f);
    }
    strbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = fuzz_memdup(data, size);
    struct log_record_scratch scratch = {0};
    struct log_record r;
    int rc = log_record_parse(line, size, &scratch, &r);

    FUZZ_CHECK(rc == 0 || rc == LOG_RECORD_NOT_JSON || rc == LOG_RECORD_NOT_ACCESS_LOG ||
               rc == LOG_RECORD_DIAGNOSTIC || rc == LOG_RECORD_NO_MEMORY);
    if (rc == 0) {
        size_t skipped = size - r.line_len, spaces = 0, at = 0;
        FUZZ_CHECK(r.line == line + skipped);
        for (size_t i = 0; i < skipped; i++)
            spaces += line[i] == ' ';
        FUZZ_CHECK(spaces <= LOG_RECORD_PREFIXES);
        FUZZ_CHECK(skipped == 0 || line[skipped - 1] == ' ');
        while (at < r.line_len && strchr(" \t\r\n", r.line[at]) && r.line[at] != '\0')
            at++; /* JSON whitespace (RFC 8259) */
        FUZZ_CHECK(at < r.line_len && r.line[at] == '{');
        check_fields(&r);
        check_row(&r);

        /* The JSON alone reads the same. */
        char *json = fuzz_memdup(r.line, r.line_len);
        struct log_record_scratch again_scratch = {0};
        struct log_record again;
        FUZZ_CHECK(log_record_parse(json, r.line_len, &again_scratch, &again) == 0);
        FUZZ_CHECK(again.line_len == r.line_len && again.time_ms == r.time_ms);
        FUZZ_CHECK(again.status == r.status && same_string(again.service, r.service));
        log_record_scratch_free(&again_scratch);
        free(json);

        check_clone(&r, &scratch);
    }
    log_record_scratch_free(&scratch);
    free(line);
    return 0;
}
