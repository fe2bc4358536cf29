/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target: tracehop_traceparent_parse and tracehop_traceparent_format.
 *
 * The input is one traceparent field value, copied into an exactly-sized heap block so that
 * AddressSanitizer catches any read past `len`. Three kinds of check:
 *
 *  - a reference: the W3C Level 1 rules (section 3.2 and "Versioning of traceparent") written out
 *    again here as plainly as possible; the library must accept exactly what the reference
 *    accepts. This is what finds a parser that is too lenient or too strict, not only one that
 *    crashes;
 *  - consistency of an accepted value: the trimmed input is 55 characters for version 00 and at
 *    least 55 for a later version, and its first 55 characters are what tracehop_traceparent_format
 *    writes for the parsed fields (with the received version);
 *  - a round trip: what we format (always version 00) parses back to the same ids and flags.
 */

#include <tracehop/tracectx.h>

#include "fuzz.h"

/* Offsets inside a traceparent: "vv-" 32 "-" 16 "-" "ff". */
enum {
    OFFSET_TRACE_ID = 3,
    OFFSET_PARENT_ID = OFFSET_TRACE_ID + TRACEHOP_TRACE_ID_HEX_LEN + 1,
    OFFSET_FLAGS = OFFSET_PARENT_ID + TRACEHOP_SPAN_ID_HEX_LEN + 1,
};

static bool all_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!fuzz_is_lower_hex(s[i]))
            return false;
    return true;
}

static bool all_zero_chars(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '0')
            return false;
    return true;
}

/* The W3C acceptance rule for an already-trimmed value, independent of the library. */
static bool reference_is_valid(const char *v, size_t len)
{
    if (len < TRACEHOP_TRACEPARENT_LEN)
        return false;
    if (!all_lower_hex(v, 2) || (v[0] == 'f' && v[1] == 'f'))
        return false;
    if (v[2] != '-' || v[OFFSET_PARENT_ID - 1] != '-' || v[OFFSET_FLAGS - 1] != '-')
        return false;
    if (!all_lower_hex(v + OFFSET_TRACE_ID, TRACEHOP_TRACE_ID_HEX_LEN) ||
        all_zero_chars(v + OFFSET_TRACE_ID, TRACEHOP_TRACE_ID_HEX_LEN))
        return false;
    if (!all_lower_hex(v + OFFSET_PARENT_ID, TRACEHOP_SPAN_ID_HEX_LEN) ||
        all_zero_chars(v + OFFSET_PARENT_ID, TRACEHOP_SPAN_ID_HEX_LEN))
        return false;
    if (!all_lower_hex(v + OFFSET_FLAGS, 2))
        return false;
    if (v[0] == '0' && v[1] == '0')
        return len == TRACEHOP_TRACEPARENT_LEN;
    /* A later version may carry more fields, introduced by '-'. */
    return len == TRACEHOP_TRACEPARENT_LEN || v[TRACEHOP_TRACEPARENT_LEN] == '-';
}

static void check_round_trip(const struct tracehop_traceparent *parsed)
{
    struct tracehop_traceparent again;
    char *out = malloc(TRACEHOP_TRACEPARENT_LEN); /* exact size: format writes no NUL */

    FUZZ_CHECK(out);
    FUZZ_CHECK(tracehop_traceparent_format(out, parsed->trace_id, parsed->parent_id,
                                           parsed->flags) == TRACEHOP_TRACEPARENT_LEN);
    FUZZ_CHECK(memcmp(out, "00-", 3) == 0);
    FUZZ_CHECK(tracehop_traceparent_parse(out, TRACEHOP_TRACEPARENT_LEN, &again) == TRACEHOP_TP_OK);
    FUZZ_CHECK(again.version == 0);
    FUZZ_CHECK(memcmp(again.trace_id, parsed->trace_id, TRACEHOP_TRACE_ID_SIZE) == 0);
    FUZZ_CHECK(memcmp(again.parent_id, parsed->parent_id, TRACEHOP_SPAN_ID_SIZE) == 0);
    FUZZ_CHECK(again.flags == parsed->flags);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tracehop_traceparent parsed;
    enum tracehop_traceparent_error error;
    char *value = fuzz_memdup(data, size);
    const char *trimmed = value;
    size_t trimmed_len = size;
    const char *message;

    memset(&parsed, 0xa5, sizeof(parsed));
    error = tracehop_traceparent_parse(value, size, &parsed);
    /* DUPLICATE is only for the hop decision, which sees several fields. */
    FUZZ_CHECK(error >= TRACEHOP_TP_OK && error < TRACEHOP_TP_DUPLICATE);
    message = tracehop_traceparent_strerror(error);
    FUZZ_CHECK(message && message[0] != '\0');

    fuzz_trim_ows(&trimmed, &trimmed_len);
    FUZZ_CHECK((error == TRACEHOP_TP_OK) == reference_is_valid(trimmed, trimmed_len));

    if (error == TRACEHOP_TP_OK) {
        char expected[TRACEHOP_TRACEPARENT_LEN];
        static const char hex[] = "0123456789abcdef";

        FUZZ_CHECK(parsed.version != 0xff);
        if (parsed.version == 0)
            FUZZ_CHECK(trimmed_len == TRACEHOP_TRACEPARENT_LEN);
        else
            FUZZ_CHECK(trimmed_len >= TRACEHOP_TRACEPARENT_LEN);
        FUZZ_CHECK(!fuzz_is_all_zero(parsed.trace_id, TRACEHOP_TRACE_ID_SIZE));
        FUZZ_CHECK(!fuzz_is_all_zero(parsed.parent_id, TRACEHOP_SPAN_ID_SIZE));

        /* The first 55 characters say exactly what was parsed, the version included. */
        tracehop_traceparent_format(expected, parsed.trace_id, parsed.parent_id, parsed.flags);
        expected[0] = hex[parsed.version >> 4];
        expected[1] = hex[parsed.version & 0x0f];
        FUZZ_CHECK(memcmp(expected, trimmed, TRACEHOP_TRACEPARENT_LEN) == 0);

        check_round_trip(&parsed);
    }

    free(value);
    return 0;
}
