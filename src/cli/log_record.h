/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * One access-log line as `tracehop logs` sees it: the fields it filters, orders and draws by,
 * decoded from the JSON (schema: docs/access-log.md, written by src/observe/logline.c), plus the
 * line itself exactly as read, for --json output.
 *
 * A line qualifies as an access-log record when it is a JSON object with a `time` that is an
 * RFC 3339 string, a string `trace_id` and `span_id`, and the members `service`, `method`,
 * `status` and `outcome` (any value: `method` and `status` may be null). Those are fields every
 * daemon has always written, and together they are what a diagnostic line never has: the
 * daemon's stderr lines carry `time`, `level`, `message` and, about a request, `trace_id` and
 * `span_id` too (docs/operations.md), and `kubectl logs` or `docker logs` mix both streams.
 * Other fields are optional, so that lines of older or newer daemons still read; values of the
 * wrong type count as absent.
 *
 * A line may start with the prefixes container tools add before the JSON: an RFC 3339 time and
 * a space (`kubectl logs --timestamps`, `docker logs -t`) and/or `[pod/name/container] `
 * (`kubectl logs --prefix`), at most LOG_RECORD_PREFIXES of them. The record's `line` is then
 * the JSON alone.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tracehop/tracectx.h"

struct log_record {
    int64_t time_ms;             /* `time`: when the request started, ms since the epoch */
    double duration_ms;          /* NAN when absent, null, negative or beyond 10^12 */
    double upstream_duration_ms; /* NAN likewise */
    int status;                  /* -1 when absent, null or not an integer in 0..99999 */

    bool has_trace_id; /* trace_id is 32 hex digits (any case) */
    bool has_span_id;
    bool has_parent; /* parent_span_id is 16 hex digits; false when null */
    uint8_t trace_id[TRACEHOP_TRACE_ID_SIZE];
    uint64_t span_id;
    uint64_t parent_span_id;

    /* Decoded strings, NUL-terminated; NULL when absent, null or not a string. */
    const char *trace_id_text;
    const char *span_id_text;
    const char *parent_span_id_text;
    const char *service;
    const char *x_trace_id;
    const char *method;
    const char *path;
    const char *query;
    const char *outcome;
    /* Logged where trust_incoming is false: what the caller's headers said (docs/access-log.md). */
    const char *incoming_trace_id_text;
    const char *incoming_x_trace_id;
    bool has_incoming_trace_id; /* incoming_trace_id is 32 hex digits */
    bool has_incoming_parent;   /* incoming_parent_span_id is 16 hex digits */
    uint8_t incoming_trace_id[TRACEHOP_TRACE_ID_SIZE];
    uint64_t incoming_parent_span_id;

    const char *line; /* as read, without the newline; not NUL-terminated */
    size_t line_len;

    /* Where it came from: input index, byte offset of the line, reading order. */
    size_t source;
    uint64_t offset;
    uint64_t seq;

    /* The block the decoded strings live in (scratch, or the record's own allocation). */
    const char *strings;
    size_t strings_len;
};

/* Reusable storage for the strings of records being parsed. Zero-initialise it. */
struct log_record_scratch {
    char *data;
    size_t cap;
};

/* Container-tool prefixes taken off before the JSON (see the top). */
#define LOG_RECORD_PREFIXES 2

enum {
    LOG_RECORD_NOT_JSON = -1,       /* not one JSON object (after any prefixes) */
    LOG_RECORD_NOT_ACCESS_LOG = -2, /* an object, but not an access-log record nor a diagnostic */
    LOG_RECORD_NO_MEMORY = -3,
    LOG_RECORD_DIAGNOSTIC = -4, /* a daemon diagnostic line: string `level` and `message` */
};

/*
 * Parse line[0..len). On success (0) *ret describes it; its strings live in scratch and its
 * `line` points into the caller's buffer, both valid until the next parse with this scratch or
 * until the caller's buffer changes: log_record_clone keeps one. Source, offset and seq are set
 * to zero for the caller to fill. Returns 0 or one of the LOG_RECORD_* codes above.
 */
int log_record_parse(const char *line, size_t len, struct log_record_scratch *scratch,
                     struct log_record *ret);

/* Free the scratch's memory. */
void log_record_scratch_free(struct log_record_scratch *scratch);

/* A self-contained heap copy of r (one allocation; free with log_record_free), or NULL. */
struct log_record *log_record_clone(const struct log_record *r);

/* Free a clone. Accepts NULL. */
void log_record_free(struct log_record *r);

/*
 * The order of `tracehop logs` output: by time, then by duration, longest first (a parent hop
 * that started in the same millisecond as its child comes first; a null duration counts as 0),
 * then by input and reading order. Returns <0, 0 or >0 like strcmp.
 */
int log_record_compare(const struct log_record *a, const struct log_record *b);

/* Case-insensitive hex: exactly 2n hex digits at text into n bytes. False on anything else. */
bool log_record_hex_decode(const char *text, size_t len, uint8_t *out, size_t n);

/*
 * A UUID 8-4-4-4-12 in any case into its 16 bytes (the nil UUID included), as
 * tracehop_uuid_parse reads it, but table-driven: it runs for the x_trace_id of every line.
 */
bool log_record_uuid_decode(const char *text, size_t len, uint8_t out[TRACEHOP_TRACE_ID_SIZE]);
