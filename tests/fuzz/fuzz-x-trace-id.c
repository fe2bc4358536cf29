/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target: the X-Trace-ID helpers and the hex and UUID codecs under them.
 *
 * The whole input is one X-Trace-ID field value, copied into an exactly-sized heap block. Each
 * function is compared with a reference written out here from the header's contract:
 *  - tracehop_x_trace_id_is_safe: 1..128 characters of 0x21..0x7e other than '"', '\'' and '\\',
 *    after dropping surrounding spaces/tabs;
 *  - tracehop_uuid_parse: any exact 8-4-4-4-12 hex value (any case) must parse to its bytes;
 *    the contract does not say whether surrounding whitespace is tolerated, so an accepted value
 *    must be a UUID once trimmed. An accepted UUID formats to the lowercase form of what was
 *    read, and that parses back to the same bytes;
 *  - tracehop_hex_parse_lower: the first 2n characters (n = size / 2) parse exactly when all are
 *    lowercase hex, and tracehop_hex_format writes them back identically; formatting the raw
 *    input bytes and parsing that gives the input back.
 */

#include <tracehop/tracectx.h>

#include "fuzz.h"

/* Positions of the dashes in 8-4-4-4-12. */
static bool is_uuid_dash_position(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

static int hex_digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* If v is exactly a UUID, write its bytes and return true. */
static bool reference_uuid(const char *v, size_t len, uint8_t bytes[TRACEHOP_TRACE_ID_SIZE])
{
    size_t nibble = 0;

    if (len != TRACEHOP_UUID_LEN)
        return false;
    memset(bytes, 0, TRACEHOP_TRACE_ID_SIZE);
    for (size_t i = 0; i < len; i++) {
        int digit;

        if (is_uuid_dash_position(i)) {
            if (v[i] != '-')
                return false;
            continue;
        }
        digit = hex_digit_value(v[i]);
        if (digit < 0)
            return false;
        bytes[nibble / 2] |= (uint8_t)(nibble % 2 == 0 ? digit << 4 : digit);
        nibble++;
    }
    return true;
}

static bool reference_is_safe(const char *value, size_t len)
{
    fuzz_trim_ows(&value, &len);
    if (len < 1 || len > TRACEHOP_X_TRACE_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];

        if (c < 0x21 || c > 0x7e || c == '"' || c == '\'' || c == '\\')
            return false;
    }
    return true;
}

static void check_uuid(const char *value, size_t len)
{
    uint8_t got[TRACEHOP_TRACE_ID_SIZE], expected[TRACEHOP_TRACE_ID_SIZE];
    uint8_t again[TRACEHOP_TRACE_ID_SIZE];
    const char *trimmed = value;
    size_t trimmed_len = len;
    char *formatted;
    bool parsed;

    parsed = tracehop_uuid_parse(value, len, got);
    if (reference_uuid(value, len, expected))
        FUZZ_CHECK(parsed && memcmp(got, expected, sizeof(got)) == 0);
    if (!parsed)
        return;

    fuzz_trim_ows(&trimmed, &trimmed_len);
    FUZZ_CHECK(reference_uuid(trimmed, trimmed_len, expected));
    FUZZ_CHECK(memcmp(got, expected, sizeof(got)) == 0);

    formatted = malloc(TRACEHOP_UUID_LEN);
    FUZZ_CHECK(formatted);
    FUZZ_CHECK(tracehop_uuid_format(formatted, got) == TRACEHOP_UUID_LEN);
    for (size_t i = 0; i < TRACEHOP_UUID_LEN; i++) {
        char lower =
            trimmed[i] >= 'A' && trimmed[i] <= 'F' ? (char)(trimmed[i] - 'A' + 'a') : trimmed[i];

        FUZZ_CHECK(formatted[i] == lower);
    }
    FUZZ_CHECK(tracehop_uuid_parse(formatted, TRACEHOP_UUID_LEN, again));
    FUZZ_CHECK(memcmp(again, got, sizeof(got)) == 0);
    free(formatted);
}

static void check_hex(const char *value, size_t len)
{
    size_t n = len / 2;
    uint8_t *bytes = malloc(n > 0 ? n : 1);
    char *formatted;
    bool all_lower = true;

    FUZZ_CHECK(bytes);
    for (size_t i = 0; i < 2 * n; i++)
        all_lower = all_lower && fuzz_is_lower_hex(value[i]);
    FUZZ_CHECK(tracehop_hex_parse_lower(value, n, bytes) == all_lower);
    if (all_lower) {
        formatted = malloc(2 * n > 0 ? 2 * n : 1);
        FUZZ_CHECK(formatted);
        FUZZ_CHECK(tracehop_hex_format(formatted, bytes, n) == 2 * n);
        FUZZ_CHECK(memcmp(formatted, value, 2 * n) == 0);
        free(formatted);
    }
    free(bytes);

    /* The other direction: any bytes survive format then parse. */
    formatted = malloc(2 * len > 0 ? 2 * len : 1);
    bytes = malloc(len > 0 ? len : 1);
    FUZZ_CHECK(formatted && bytes);
    FUZZ_CHECK(tracehop_hex_format(formatted, (const uint8_t *)value, len) == 2 * len);
    FUZZ_CHECK(tracehop_hex_parse_lower(formatted, len, bytes));
    FUZZ_CHECK(len == 0 || memcmp(bytes, value, len) == 0);
    free(bytes);
    free(formatted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = fuzz_memdup(data, size);

    FUZZ_CHECK(tracehop_x_trace_id_is_safe(value, size) == reference_is_safe(value, size));
    check_uuid(value, size);
    check_hex(value, size);
    free(value);
    return 0;
}
