/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target: tracehop_hop_decide, the whole decision of docs/trace-context.md ("1. The
 * decision").
 *
 * Input layout (readable, so that seeds can be written by hand):
 *   byte 0   settings: bit 0 is trust_incoming
 *   byte 1   sampling_ratio: '0' is 0, '1' is 1, any other byte b is b / 255
 *   rest     an optional '\n', then lines; the first byte of a line says which header the rest
 *            of the line is a field of: 'p' traceparent, 's' tracestate, 'x' X-Trace-ID (any
 *            other byte: its value modulo 3, in that order). At most MAX_FIELDS fields per
 *            header; further lines are ignored.
 * Every field value is copied into its own exactly-sized heap block.
 *
 * The result is checked against the decision table of tracectx.h, row by row, using the
 * library's own parsers for the inputs (those are fuzzed against references by the other
 * targets), plus invariants that hold whatever the row: non-zero ids, an outbound traceparent
 * that parses, a safe NUL-terminated X-Trace-ID, only known flag bits, no tracestate unless the
 * trace was continued. With trust_incoming false, a safe X-Trace-ID must be reported as
 * NOT_TRUSTED and set aside, as received, in incoming_x_trace_id. The hop struct is filled with a
 * junk pattern first, so that a field the library forgets to set shows up (UBSan's bool check, or
 * a failed comparison).
 */

#include <tracehop/tracectx.h>

#include "fuzz.h"

#define MAX_FIELDS 8

enum { LIST_TRACEPARENT, LIST_TRACESTATE, LIST_X_TRACE_ID, LIST_COUNT };

struct field_list {
    struct tracehop_slice fields[MAX_FIELDS];
    size_t count;
};

static int list_of(uint8_t selector)
{
    switch (selector) {
    case 'p':
        return LIST_TRACEPARENT;
    case 's':
        return LIST_TRACESTATE;
    case 'x':
        return LIST_X_TRACE_ID;
    default:
        return selector % LIST_COUNT;
    }
}

static void split_lines(const uint8_t *data, size_t size, struct field_list lists[LIST_COUNT])
{
    size_t offset = 0;

    if (size > 0 && data[0] == '\n')
        offset = 1;
    while (offset < size) {
        const uint8_t *line = data + offset;
        const uint8_t *newline = memchr(line, '\n', size - offset);
        size_t line_len = newline ? (size_t)(newline - line) : size - offset;

        if (line_len > 0) {
            struct field_list *list = &lists[list_of(line[0])];

            if (list->count < MAX_FIELDS) {
                list->fields[list->count].ptr = fuzz_memdup(line + 1, line_len - 1);
                list->fields[list->count].len = line_len - 1;
                list->count++;
            }
        }
        offset += line_len + 1;
    }
}

static bool is_strictly_safe(const char *s, size_t len)
{
    if (len < 1 || len > TRACEHOP_X_TRACE_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x21 || c > 0x7e || c == '"' || c == '\'' || c == '\\')
            return false;
    }
    return true;
}

/* A version-4, variant-1 UUID: what the last row of the table draws. */
static bool is_uuid_v4(const uint8_t id[TRACEHOP_TRACE_ID_SIZE])
{
    return (id[6] & 0xf0) == 0x40 && (id[8] & 0xc0) == 0x80;
}

static void check_x_trace_id_is(const struct tracehop_hop *hop, const char *expected, size_t len)
{
    FUZZ_CHECK(hop->x_trace_id_len == len && memcmp(hop->x_trace_id, expected, len) == 0);
}

static void check_x_trace_id_is_trace_id(const struct tracehop_hop *hop)
{
    char uuid[TRACEHOP_UUID_LEN];

    tracehop_uuid_format(uuid, hop->trace_id);
    check_x_trace_id_is(hop, uuid, sizeof(uuid));
}

/* Invariants of every hop, whatever the row. */
static void check_always(const struct tracehop_hop *hop)
{
    char *outbound = malloc(TRACEHOP_TRACEPARENT_LEN);
    struct tracehop_traceparent parsed;

    FUZZ_CHECK(outbound);
    FUZZ_CHECK(!fuzz_is_all_zero(hop->trace_id, TRACEHOP_TRACE_ID_SIZE));
    FUZZ_CHECK(!fuzz_is_all_zero(hop->span_id, TRACEHOP_SPAN_ID_SIZE));
    FUZZ_CHECK((hop->flags & ~TRACEHOP_FLAGS_KNOWN) == 0);
    FUZZ_CHECK(hop->origin == TRACEHOP_ORIGIN_TRACEPARENT ||
               hop->origin == TRACEHOP_ORIGIN_X_TRACE_ID_UUID ||
               hop->origin == TRACEHOP_ORIGIN_NEW_KEEP_X_TRACE_ID ||
               hop->origin == TRACEHOP_ORIGIN_NEW);

    FUZZ_CHECK(tracehop_traceparent_format(outbound, hop->trace_id, hop->span_id, hop->flags) ==
               TRACEHOP_TRACEPARENT_LEN);
    FUZZ_CHECK(tracehop_traceparent_parse(outbound, TRACEHOP_TRACEPARENT_LEN, &parsed) ==
               TRACEHOP_TP_OK);
    FUZZ_CHECK(parsed.version == 0 && parsed.flags == hop->flags);
    FUZZ_CHECK(memcmp(parsed.trace_id, hop->trace_id, TRACEHOP_TRACE_ID_SIZE) == 0);
    FUZZ_CHECK(memcmp(parsed.parent_id, hop->span_id, TRACEHOP_SPAN_ID_SIZE) == 0);
    free(outbound);

    FUZZ_CHECK(hop->x_trace_id_len <= TRACEHOP_X_TRACE_ID_MAX);
    FUZZ_CHECK(hop->x_trace_id[hop->x_trace_id_len] == '\0');
    FUZZ_CHECK(strlen(hop->x_trace_id) == hop->x_trace_id_len);
    FUZZ_CHECK(tracehop_x_trace_id_is_safe(hop->x_trace_id, hop->x_trace_id_len));
    /* What we send is the value itself: no surrounding whitespace either. */
    FUZZ_CHECK(is_strictly_safe(hop->x_trace_id, hop->x_trace_id_len));
    FUZZ_CHECK(hop->x_trace_id_status == TRACEHOP_XID_ABSENT ||
               hop->x_trace_id_status == TRACEHOP_XID_ACCEPTED ||
               hop->x_trace_id_status == TRACEHOP_XID_REJECTED ||
               hop->x_trace_id_status == TRACEHOP_XID_NOT_TRUSTED);
    FUZZ_CHECK(memchr(hop->incoming_x_trace_id, '\0', sizeof(hop->incoming_x_trace_id)));

    FUZZ_CHECK(hop->tracestate_len <= TRACEHOP_TRACESTATE_MAX);
    FUZZ_CHECK(hop->tracestate[hop->tracestate_len] == '\0');
    FUZZ_CHECK(strlen(hop->tracestate) == hop->tracestate_len);
    if (hop->origin == TRACEHOP_ORIGIN_TRACEPARENT)
        FUZZ_CHECK(hop->has_parent && hop->incoming_valid);
    else
        FUZZ_CHECK(!hop->has_parent && hop->tracestate_len == 0);
}

/* The incoming traceparent is reported the same way whether or not it is trusted. */
static void check_incoming(const struct tracehop_hop *hop, const struct field_list *traceparent)
{
    enum tracehop_traceparent_error expected = TRACEHOP_TP_OK;
    struct tracehop_traceparent parsed;

    if (traceparent->count == 1)
        expected = tracehop_traceparent_parse(traceparent->fields[0].ptr,
                                              traceparent->fields[0].len, &parsed);
    else if (traceparent->count > 1)
        expected = TRACEHOP_TP_DUPLICATE;

    FUZZ_CHECK(hop->traceparent_present == (traceparent->count > 0));
    FUZZ_CHECK(hop->traceparent_error == expected);
    FUZZ_CHECK(hop->incoming_valid == (traceparent->count == 1 && expected == TRACEHOP_TP_OK));
    if (hop->incoming_valid) {
        FUZZ_CHECK(hop->incoming.version == parsed.version);
        FUZZ_CHECK(hop->incoming.flags == parsed.flags);
        FUZZ_CHECK(memcmp(hop->incoming.trace_id, parsed.trace_id, TRACEHOP_TRACE_ID_SIZE) == 0);
        FUZZ_CHECK(memcmp(hop->incoming.parent_id, parsed.parent_id, TRACEHOP_SPAN_ID_SIZE) == 0);
    }
}

/* A trace tracehop starts: sampled by ratio, random flag set. */
static void check_new_trace_flags(const struct tracehop_hop *hop, double ratio)
{
    bool sampled = tracehop_sample_trace_id(hop->trace_id, ratio);

    FUZZ_CHECK(((hop->flags & TRACEHOP_FLAG_SAMPLED) != 0) == sampled);
    FUZZ_CHECK(hop->flags & TRACEHOP_FLAG_RANDOM);
}

static void check_new_uuid_trace(const struct tracehop_hop *hop, double ratio)
{
    FUZZ_CHECK(hop->origin == TRACEHOP_ORIGIN_NEW);
    FUZZ_CHECK(is_uuid_v4(hop->trace_id));
    check_x_trace_id_is_trace_id(hop);
    check_new_trace_flags(hop, ratio);
}

static void check_tracestate(const struct tracehop_hop *hop, const struct field_list *tracestate)
{
    char expected[TRACEHOP_TRACESTATE_MAX + 1];
    size_t expected_len = SIZE_MAX;
    enum tracehop_tracestate_status status;

    if (hop->origin != TRACEHOP_ORIGIN_TRACEPARENT) {
        FUZZ_CHECK(hop->tracestate_status == TRACEHOP_TS_DROPPED ||
                   hop->tracestate_status == TRACEHOP_TS_ABSENT);
        if (tracestate->count > 0)
            FUZZ_CHECK(hop->tracestate_status == TRACEHOP_TS_DROPPED);
        return;
    }
    status = tracehop_tracestate_normalize(tracestate->fields, tracestate->count, expected,
                                           &expected_len);
    FUZZ_CHECK(hop->tracestate_status == status);
    FUZZ_CHECK(hop->tracestate_len == expected_len);
    FUZZ_CHECK(memcmp(hop->tracestate, expected, expected_len + 1) == 0);
}

static void check_table(const struct tracehop_hop *hop, const struct field_list *lists,
                        const struct tracehop_hop_settings *settings)
{
    const struct field_list *x_trace_id = &lists[LIST_X_TRACE_ID];
    const char *received = NULL;
    size_t received_len = 0;
    bool safe = false;
    uint8_t uuid[TRACEHOP_TRACE_ID_SIZE];

    if (x_trace_id->count == 1) {
        received = x_trace_id->fields[0].ptr;
        received_len = x_trace_id->fields[0].len;
        safe = tracehop_x_trace_id_is_safe(received, received_len);
        fuzz_trim_ows(&received, &received_len);
    }

    check_incoming(hop, &lists[LIST_TRACEPARENT]);
    check_tracestate(hop, &lists[LIST_TRACESTATE]);

    if (x_trace_id->count == 0)
        FUZZ_CHECK(hop->x_trace_id_status == TRACEHOP_XID_ABSENT);
    else if (!safe)
        FUZZ_CHECK(hop->x_trace_id_status == TRACEHOP_XID_REJECTED);
    else if (settings->trust_incoming)
        FUZZ_CHECK(hop->x_trace_id_status == TRACEHOP_XID_ACCEPTED);
    else
        FUZZ_CHECK(hop->x_trace_id_status == TRACEHOP_XID_NOT_TRUSTED);

    /* The caller's X-Trace-ID is set aside for the log only when it is safe but not trusted. */
    if (hop->x_trace_id_status == TRACEHOP_XID_NOT_TRUSTED)
        FUZZ_CHECK(strlen(hop->incoming_x_trace_id) == received_len &&
                   memcmp(hop->incoming_x_trace_id, received, received_len) == 0);
    else
        FUZZ_CHECK(hop->incoming_x_trace_id[0] == '\0');

    if (!settings->trust_incoming) {
        check_new_uuid_trace(hop, settings->sampling_ratio);
        return;
    }

    if (hop->incoming_valid) {
        /* Rows 1 and 2: continue the incoming trace. */
        FUZZ_CHECK(hop->origin == TRACEHOP_ORIGIN_TRACEPARENT);
        FUZZ_CHECK(memcmp(hop->trace_id, hop->incoming.trace_id, TRACEHOP_TRACE_ID_SIZE) == 0);
        FUZZ_CHECK(memcmp(hop->parent_span_id, hop->incoming.parent_id, TRACEHOP_SPAN_ID_SIZE) ==
                   0);
        FUZZ_CHECK(hop->flags == (hop->incoming.flags & TRACEHOP_FLAGS_KNOWN));
        if (safe)
            check_x_trace_id_is(hop, received, received_len);
        else
            check_x_trace_id_is_trace_id(hop);
    } else if (safe && tracehop_uuid_parse(received, received_len, uuid) &&
               !fuzz_is_all_zero(uuid, sizeof(uuid))) {
        /* Row 3: a legacy caller's UUID becomes the trace id. */
        FUZZ_CHECK(hop->origin == TRACEHOP_ORIGIN_X_TRACE_ID_UUID);
        FUZZ_CHECK(memcmp(hop->trace_id, uuid, sizeof(uuid)) == 0);
        check_x_trace_id_is(hop, received, received_len);
        FUZZ_CHECK(((hop->flags & TRACEHOP_FLAG_SAMPLED) != 0) ==
                   tracehop_sample_trace_id(hop->trace_id, settings->sampling_ratio));
    } else if (safe) {
        /* Row 4: new trace, the caller's X-Trace-ID kept. */
        FUZZ_CHECK(hop->origin == TRACEHOP_ORIGIN_NEW_KEEP_X_TRACE_ID);
        check_x_trace_id_is(hop, received, received_len);
        check_new_trace_flags(hop, settings->sampling_ratio);
    } else {
        /* Row 5: nothing usable. */
        check_new_uuid_trace(hop, settings->sampling_ratio);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct field_list lists[LIST_COUNT] = {0};
    struct tracehop_hop_settings settings;
    struct tracehop_hop_input input;
    struct tracehop_hop *hop;

    if (size < 2)
        return 0;
    settings.trust_incoming = data[0] & 1;
    settings.sampling_ratio = data[1] == '0' ? 0.0 : data[1] == '1' ? 1.0 : data[1] / 255.0;
    split_lines(data + 2, size - 2, lists);

    input = (struct tracehop_hop_input){
        .traceparent = lists[LIST_TRACEPARENT].fields,
        .traceparent_count = lists[LIST_TRACEPARENT].count,
        .tracestate = lists[LIST_TRACESTATE].fields,
        .tracestate_count = lists[LIST_TRACESTATE].count,
        .x_trace_id = lists[LIST_X_TRACE_ID].fields,
        .x_trace_id_count = lists[LIST_X_TRACE_ID].count,
    };
    hop = malloc(sizeof(*hop));
    FUZZ_CHECK(hop);
    memset(hop, 0xa5, sizeof(*hop));
    tracehop_hop_decide(&input, &settings, hop);

    check_always(hop);
    check_table(hop, lists, &settings);

    /* Sampling at the ends of the range is not a matter of chance, and a trace kept at some
     * ratio is kept at every higher ratio. */
    FUZZ_CHECK(!tracehop_sample_trace_id(hop->trace_id, 0.0));
    FUZZ_CHECK(tracehop_sample_trace_id(hop->trace_id, 1.0));
    if (tracehop_sample_trace_id(hop->trace_id, settings.sampling_ratio))
        FUZZ_CHECK(tracehop_sample_trace_id(hop->trace_id, (settings.sampling_ratio + 1.0) / 2));

    free(hop);
    for (int l = 0; l < LIST_COUNT; l++)
        for (size_t i = 0; i < lists[l].count; i++)
            free((char *)lists[l].fields[i].ptr);
    return 0;
}
