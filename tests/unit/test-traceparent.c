/* SPDX-License-Identifier: MIT */

/*
 * traceparent parse/format against W3C Trace Context Level 1 section 3.2 and every traceparent
 * case of the official test suite (w3c/trace-context test/test.py), which must pass through
 * tracehop (docs/trace-context.md, references; tests/w3c/README.md).
 *
 * Each vector names its case. Where the header documents which error a refusal reports (version
 * ff, all-zero ids, an illegal character in a field of the right size, version 00 with trailing
 * data, a missing '-'), the vector checks that exact code; where several codes are defensible
 * (a field one character too long shifts every later field) it checks only that the value is
 * refused. A refusal must leave the caller's struct untouched ("fills *ret only on success").
 */

#include <stdio.h>

#include "tracehop/tracectx.h"
#include "unit-test.h"

#define ANY_ERROR (-1) /* refused, whichever reason */

/* The ids of the W3C suite's valid traceparent. */
#define W3C_TRACE  "12345678901234567890123456789012"
#define W3C_PARENT "1234567890123456"
#define W3C_VALID  "00-" W3C_TRACE "-" W3C_PARENT "-01"

struct parse_vector {
    const char *name;
    const char *value;
    size_t len;
    int expect; /* enum tracehop_traceparent_error, or ANY_ERROR */
    /* When expect is TRACEHOP_TP_OK: */
    uint8_t version;
    const char *trace_id;
    const char *parent_id;
    uint8_t flags;
};

#define OK_W3C(version, flags) TRACEHOP_TP_OK, (version), W3C_TRACE, W3C_PARENT, (flags)
#define ERR(error)             (error), 0, NULL, NULL, 0

static const struct parse_vector parse_vectors[] = {
    /* valid */
    {"w3c valid", V(W3C_VALID), OK_W3C(0x00, 0x01)},
    {"flags 00", V("00-" W3C_TRACE "-" W3C_PARENT "-00"), OK_W3C(0x00, 0x00)},
    {"flags 02 (random)", V("00-" W3C_TRACE "-" W3C_PARENT "-02"), OK_W3C(0x00, 0x02)},
    {"flags ff kept as received", V("00-" W3C_TRACE "-" W3C_PARENT "-ff"), OK_W3C(0x00, 0xff)},
    {"version 01, 55 chars", V("01-" W3C_TRACE "-" W3C_PARENT "-01"), OK_W3C(0x01, 0x01)},
    {"version cc (w3c)", V("cc-" W3C_TRACE "-" W3C_PARENT "-01"), OK_W3C(0xcc, 0x01)},
    {"version cc with trailing data (w3c)",
     V("cc-" W3C_TRACE "-" W3C_PARENT "-01-what-the-future-will-be-like"), OK_W3C(0xcc, 0x01)},
    {"version fe", V("fe-" W3C_TRACE "-" W3C_PARENT "-01"), OK_W3C(0xfe, 0x01)},
    {"leading space (w3c)", V(" " W3C_VALID), OK_W3C(0x00, 0x01)},
    {"leading tab (w3c)", V("\t" W3C_VALID), OK_W3C(0x00, 0x01)},
    {"trailing space (w3c)", V(W3C_VALID " "), OK_W3C(0x00, 0x01)},
    {"trailing tab (w3c)", V(W3C_VALID "\t"), OK_W3C(0x00, 0x01)},
    {"tab space around (w3c)", V("\t " W3C_VALID " \t"), OK_W3C(0x00, 0x01)},
    {"long ows both sides", V("   \t\t  " W3C_VALID "\t \t  "), OK_W3C(0x00, 0x01)},
    {"version cc trailing data and ows", V(" cc-" W3C_TRACE "-" W3C_PARENT "-01-x \t"),
     OK_W3C(0xcc, 0x01)},
    {"every hex digit", V("00-0af1bc2d3e4f5a6b7c8d9e0f1a2b3c4d-a1b2c3d4e5f60718-03"),
     TRACEHOP_TP_OK, 0x00, "0af1bc2d3e4f5a6b7c8d9e0f1a2b3c4d", "a1b2c3d4e5f60718", 0x03},
    {"ids with a single bit set", V("00-00000000000000000000000000000001-8000000000000000-00"),
     TRACEHOP_TP_OK, 0x00, "00000000000000000000000000000001", "8000000000000000", 0x00},
    {"all f", V("00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-ff"), TRACEHOP_TP_OK, 0x00,
     "ffffffffffffffffffffffffffffffff", "ffffffffffffffff", 0xff},

    /* version (w3c test_traceparent_version_*) */
    {"version 00 trailing dot (w3c)", V(W3C_VALID "."), ERR(TRACEHOP_TP_BAD_LENGTH)},
    {"version 00 trailing data (w3c)", V(W3C_VALID "-what-the-future-will-be-like"),
     ERR(TRACEHOP_TP_BAD_LENGTH)},
    {"version 00 trailing dash", V(W3C_VALID "-"), ERR(TRACEHOP_TP_BAD_LENGTH)},
    {"version cc dot before data (w3c)",
     V("cc-" W3C_TRACE "-" W3C_PARENT "-01.what-the-future-will-be-like"), ERR(ANY_ERROR)},
    {"version ff (w3c)", V("ff-" W3C_TRACE "-" W3C_PARENT "-01"), ERR(TRACEHOP_TP_VERSION_FF)},
    {"version .0 (w3c)", V(".0-" W3C_TRACE "-" W3C_PARENT "-01"), ERR(TRACEHOP_TP_BAD_VERSION)},
    {"version 0. (w3c)", V("0.-" W3C_TRACE "-" W3C_PARENT "-01"), ERR(TRACEHOP_TP_BAD_VERSION)},
    {"version 1 char (w3c)", V("0-" W3C_TRACE "-" W3C_PARENT "-01"), ERR(ANY_ERROR)},
    {"version 3 chars (w3c)", V("000-" W3C_TRACE "-" W3C_PARENT "-01"), ERR(ANY_ERROR)},
    {"version 4 chars (w3c)", V("0000-" W3C_TRACE "-" W3C_PARENT "-01"), ERR(ANY_ERROR)},
    {"version uppercase CC", V("CC-" W3C_TRACE "-" W3C_PARENT "-01"), ERR(TRACEHOP_TP_BAD_VERSION)},
    {"version uppercase 0A", V("0A-" W3C_TRACE "-" W3C_PARENT "-01"), ERR(TRACEHOP_TP_BAD_VERSION)},
    {"version uppercase FF", V("FF-" W3C_TRACE "-" W3C_PARENT "-01"), ERR(ANY_ERROR)},
    {"version g0", V("g0-" W3C_TRACE "-" W3C_PARENT "-01"), ERR(TRACEHOP_TP_BAD_VERSION)},
    {"version cc too short", V("cc-" W3C_TRACE "-" W3C_PARENT "-0"), ERR(ANY_ERROR)},

    /* trace-id */
    {"trace-id all zero (w3c)", V("00-00000000000000000000000000000000-" W3C_PARENT "-01"),
     ERR(TRACEHOP_TP_ZERO_TRACE_ID)},
    {"trace-id all zero, version cc", V("cc-00000000000000000000000000000000-" W3C_PARENT "-01"),
     ERR(TRACEHOP_TP_ZERO_TRACE_ID)},
    {"trace-id leading dot (w3c)", V("00-.2345678901234567890123456789012-" W3C_PARENT "-01"),
     ERR(TRACEHOP_TP_BAD_TRACE_ID)},
    {"trace-id trailing dot (w3c)", V("00-1234567890123456789012345678901.-" W3C_PARENT "-01"),
     ERR(TRACEHOP_TP_BAD_TRACE_ID)},
    {"trace-id 33 chars (w3c)", V("00-123456789012345678901234567890123-" W3C_PARENT "-01"),
     ERR(ANY_ERROR)},
    {"trace-id 31 chars (w3c)", V("00-1234567890123456789012345678901-" W3C_PARENT "-01"),
     ERR(ANY_ERROR)},
    {"trace-id uppercase", V("00-ABCDEF78901234567890123456789012-" W3C_PARENT "-01"),
     ERR(TRACEHOP_TP_BAD_TRACE_ID)},
    {"trace-id one uppercase digit", V("00-1234567890123456789012345678901A-" W3C_PARENT "-01"),
     ERR(TRACEHOP_TP_BAD_TRACE_ID)},
    {"trace-id g", V("00-g2345678901234567890123456789012-" W3C_PARENT "-01"),
     ERR(TRACEHOP_TP_BAD_TRACE_ID)},
    {"trace-id embedded NUL",
     V("00-123456789012345\0"
       "7890123456789012-" W3C_PARENT "-01"),
     ERR(TRACEHOP_TP_BAD_TRACE_ID)},
    {"trace-id inner space", V("00-123456789012345 7890123456789012-" W3C_PARENT "-01"),
     ERR(TRACEHOP_TP_BAD_TRACE_ID)},

    /* parent-id */
    {"parent-id all zero (w3c)", V("00-" W3C_TRACE "-0000000000000000-01"),
     ERR(TRACEHOP_TP_ZERO_PARENT_ID)},
    {"parent-id leading dot (w3c)", V("00-" W3C_TRACE "-.234567890123456-01"),
     ERR(TRACEHOP_TP_BAD_PARENT_ID)},
    {"parent-id trailing dot (w3c)", V("00-" W3C_TRACE "-123456789012345.-01"),
     ERR(TRACEHOP_TP_BAD_PARENT_ID)},
    {"parent-id 17 chars (w3c)", V("00-" W3C_TRACE "-12345678901234567-01"), ERR(ANY_ERROR)},
    {"parent-id 15 chars (w3c)", V("00-" W3C_TRACE "-123456789012345-01"), ERR(ANY_ERROR)},
    {"parent-id uppercase", V("00-" W3C_TRACE "-ABCDEF7890123456-01"),
     ERR(TRACEHOP_TP_BAD_PARENT_ID)},

    /* trace-flags */
    {"flags .0 (w3c)", V("00-" W3C_TRACE "-" W3C_PARENT "-.0"), ERR(TRACEHOP_TP_BAD_FLAGS)},
    {"flags 0. (w3c)", V("00-" W3C_TRACE "-" W3C_PARENT "-0."), ERR(TRACEHOP_TP_BAD_FLAGS)},
    {"flags 3 chars (w3c)", V("00-" W3C_TRACE "-" W3C_PARENT "-001"), ERR(ANY_ERROR)},
    {"flags 1 char (w3c)", V("00-" W3C_TRACE "-" W3C_PARENT "-1"), ERR(ANY_ERROR)},
    {"flags uppercase", V("00-" W3C_TRACE "-" W3C_PARENT "-0A"), ERR(TRACEHOP_TP_BAD_FLAGS)},

    /* delimiters */
    {"first delimiter missing", V("00_" W3C_TRACE "-" W3C_PARENT "-01"),
     ERR(TRACEHOP_TP_BAD_DELIMITER)},
    {"second delimiter missing", V("00-" W3C_TRACE "_" W3C_PARENT "-01"),
     ERR(TRACEHOP_TP_BAD_DELIMITER)},
    {"third delimiter missing", V("00-" W3C_TRACE "-" W3C_PARENT "_01"),
     ERR(TRACEHOP_TP_BAD_DELIMITER)},

    /* whole value */
    {"empty", V(""), ERR(TRACEHOP_TP_BAD_LENGTH)},
    {"only ows", V(" \t \t"), ERR(TRACEHOP_TP_BAD_LENGTH)},
    {"NUL after value", V(W3C_VALID "\0"), ERR(ANY_ERROR)},
    {"NUL before value", V("\0" W3C_VALID), ERR(ANY_ERROR)},
    {"CR after value (not ows)", V(W3C_VALID "\r"), ERR(ANY_ERROR)},
    {"LF before value (not ows)", V("\n" W3C_VALID), ERR(ANY_ERROR)},
    {"space after version", V("00 -" W3C_TRACE "-" W3C_PARENT "-01"), ERR(ANY_ERROR)},
    {"two traceparents in one value", V(W3C_VALID "," W3C_VALID), ERR(ANY_ERROR)},
};

START_TEST(test_parse_vectors)
{
    const struct parse_vector *vector = &parse_vectors[_i];
    char *value = unit_memdup(vector->value, vector->len);
    struct tracehop_traceparent parsed, untouched;
    enum tracehop_traceparent_error error;

    memset(&parsed, 0xa5, sizeof(parsed));
    memcpy(&untouched, &parsed, sizeof(parsed));
    error = tracehop_traceparent_parse(value, vector->len, &parsed);

    if (vector->expect == ANY_ERROR) {
        ck_assert_msg(error != TRACEHOP_TP_OK, "%s: accepted an invalid traceparent", vector->name);
    } else {
        ck_assert_msg((int)error == vector->expect, "%s: got error %d (%s), expected %d",
                      vector->name, (int)error, tracehop_traceparent_strerror(error),
                      vector->expect);
    }

    if (vector->expect == TRACEHOP_TP_OK) {
        uint8_t trace_id[TRACEHOP_TRACE_ID_SIZE], parent_id[TRACEHOP_SPAN_ID_SIZE];

        unit_hex_to_bytes(vector->trace_id, trace_id, sizeof(trace_id));
        unit_hex_to_bytes(vector->parent_id, parent_id, sizeof(parent_id));
        ck_assert_msg(parsed.version == vector->version, "%s: version %#x", vector->name,
                      parsed.version);
        ck_assert_msg(memcmp(parsed.trace_id, trace_id, sizeof(trace_id)) == 0,
                      "%s: wrong trace-id", vector->name);
        ck_assert_msg(memcmp(parsed.parent_id, parent_id, sizeof(parent_id)) == 0,
                      "%s: wrong parent-id", vector->name);
        ck_assert_msg(parsed.flags == vector->flags, "%s: flags %#x", vector->name, parsed.flags);
    } else {
        ck_assert_msg(memcmp(&parsed, &untouched, sizeof(parsed)) == 0,
                      "%s: *ret written although the value was refused", vector->name);
    }
    free(value);
}
END_TEST

/* Every single-character replacement of the valid value outside the three delimiters. */
START_TEST(test_parse_every_position_rejects_non_hex)
{
    static const char bad[] = {'.', 'g', 'A', 'F', ' ', '\t', '\0', '/', ':', '`', '\x80'};
    size_t position = (size_t)_i;

    if (position == 2 || position == 35 || position == 52)
        return;
    for (size_t b = 0; b < sizeof(bad); b++) {
        char *value = unit_memdup(W3C_VALID, 55);
        struct tracehop_traceparent parsed;

        value[position] = bad[b];
        ck_assert_msg(tracehop_traceparent_parse(value, 55, &parsed) != TRACEHOP_TP_OK,
                      "byte %#x at position %zu accepted", (unsigned char)bad[b], position);
        free(value);
    }
}
END_TEST

/* The length argument bounds the read: a valid value followed by garbage, cut at 55. */
START_TEST(test_parse_respects_length)
{
    static const char text[] = W3C_VALID "-garbage";
    char *value = unit_memdup(text, sizeof(text) - 1);
    struct tracehop_traceparent parsed;

    ck_assert_int_eq(tracehop_traceparent_parse(value, 55, &parsed), TRACEHOP_TP_OK);
    ck_assert_int_eq(parsed.flags, 0x01);
    ck_assert_int_ne(tracehop_traceparent_parse(value, 54, &parsed), TRACEHOP_TP_OK);
    ck_assert_int_ne(tracehop_traceparent_parse(value, 0, &parsed), TRACEHOP_TP_OK);
    free(value);
}
END_TEST

struct format_vector {
    const char *name;
    const char *trace_id;
    const char *span_id;
    uint8_t flags;
    const char *expect;
};

static const struct format_vector format_vectors[] = {
    {"w3c ids sampled", W3C_TRACE, W3C_PARENT, 0x01, W3C_VALID},
    {"not sampled", W3C_TRACE, W3C_PARENT, 0x00, "00-" W3C_TRACE "-" W3C_PARENT "-00"},
    {"sampled and random", W3C_TRACE, W3C_PARENT, 0x03, "00-" W3C_TRACE "-" W3C_PARENT "-03"},
    {"lowercase hex", "0AF1BC2D3E4F5A6B7C8D9E0F1A2B3C4D", "A1B2C3D4E5F60718", 0x02,
     "00-0af1bc2d3e4f5a6b7c8d9e0f1a2b3c4d-a1b2c3d4e5f60718-02"},
};

START_TEST(test_format_vectors)
{
    const struct format_vector *vector = &format_vectors[_i];
    uint8_t trace_id[TRACEHOP_TRACE_ID_SIZE], span_id[TRACEHOP_SPAN_ID_SIZE];
    char buf[TRACEHOP_TRACEPARENT_LEN + 1];
    size_t len;

    unit_hex_to_bytes(vector->trace_id, trace_id, sizeof(trace_id));
    unit_hex_to_bytes(vector->span_id, span_id, sizeof(span_id));
    memset(buf, '#', sizeof(buf));
    len = tracehop_traceparent_format(buf, trace_id, span_id, vector->flags);
    ck_assert_msg(len == TRACEHOP_TRACEPARENT_LEN, "%s: returned %zu", vector->name, len);
    ck_assert_msg(buf[TRACEHOP_TRACEPARENT_LEN] == '#', "%s: wrote past 55 bytes", vector->name);
    ck_assert_msg(memcmp(buf, vector->expect, TRACEHOP_TRACEPARENT_LEN) == 0, "%s: got %.55s",
                  vector->name, buf);
}
END_TEST

/* parse(format(ids)) gives the ids back, for pseudo-random ids and every flags byte. */
START_TEST(test_format_parse_round_trip)
{
    uint64_t state = unit_prng_seed((uint64_t)_i);

    for (unsigned round = 0; round < 256; round++) {
        uint8_t trace_id[TRACEHOP_TRACE_ID_SIZE], span_id[TRACEHOP_SPAN_ID_SIZE];
        uint8_t flags = (uint8_t)round;
        char buf[TRACEHOP_TRACEPARENT_LEN + 1];
        struct tracehop_traceparent parsed;
        size_t len;

        unit_prng_fill(&state, trace_id, sizeof(trace_id));
        unit_prng_fill(&state, span_id, sizeof(span_id));
        trace_id[round % sizeof(trace_id)] |= 1; /* never all zero */
        span_id[round % sizeof(span_id)] |= 1;
        memset(buf, '#', sizeof(buf));
        len = tracehop_traceparent_format(buf, trace_id, span_id, flags);

        ck_assert_uint_eq(len, TRACEHOP_TRACEPARENT_LEN);
        ck_assert_int_eq(buf[TRACEHOP_TRACEPARENT_LEN], '#');
        ck_assert_msg(memcmp(buf, "00-", 3) == 0, "version is not 00: %.55s", buf);
        for (size_t i = 3; i < TRACEHOP_TRACEPARENT_LEN; i++) {
            if (i == 35 || i == 52)
                ck_assert_int_eq(buf[i], '-');
            else
                ck_assert_msg((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f'),
                              "not lowercase hex at %zu: %.55s", i, buf);
        }
        ck_assert_int_eq(tracehop_traceparent_parse(buf, len, &parsed), TRACEHOP_TP_OK);
        ck_assert_int_eq(parsed.version, 0);
        ck_assert_mem_eq(parsed.trace_id, trace_id, sizeof(trace_id));
        ck_assert_mem_eq(parsed.parent_id, span_id, sizeof(span_id));
        ck_assert_int_eq(parsed.flags, flags);
    }
}
END_TEST

/* A future version is parsed, but what we send is version 00 with the same ids. */
START_TEST(test_future_version_reemitted_as_00)
{
    static const char text[] = "cc-" W3C_TRACE "-" W3C_PARENT "-01-what-the-future-will-be-like";
    char *value = unit_memdup(text, sizeof(text) - 1);
    struct tracehop_traceparent parsed;
    char buf[TRACEHOP_TRACEPARENT_LEN];

    ck_assert_int_eq(tracehop_traceparent_parse(value, sizeof(text) - 1, &parsed), TRACEHOP_TP_OK);
    ck_assert_uint_eq(
        tracehop_traceparent_format(buf, parsed.trace_id, parsed.parent_id, parsed.flags),
        TRACEHOP_TRACEPARENT_LEN);
    ck_assert_mem_eq(buf, W3C_VALID, TRACEHOP_TRACEPARENT_LEN);
    free(value);
}
END_TEST

START_TEST(test_strerror_never_null)
{
    for (int error = TRACEHOP_TP_OK; error <= TRACEHOP_TP_DUPLICATE; error++) {
        const char *text = tracehop_traceparent_strerror((enum tracehop_traceparent_error)error);

        ck_assert_msg(text != NULL && text[0] != '\0', "no text for error %d", error);
    }
    ck_assert_ptr_nonnull(tracehop_traceparent_strerror((enum tracehop_traceparent_error)99));
}
END_TEST

static Suite *traceparent_suite(void)
{
    Suite *suite = suite_create("traceparent");
    TCase *parse = tcase_create("parse");
    TCase *format = tcase_create("format");

    tcase_add_loop_test(parse, test_parse_vectors, 0, (int)ARRAY_SIZE(parse_vectors));
    tcase_add_loop_test(parse, test_parse_every_position_rejects_non_hex, 0,
                        TRACEHOP_TRACEPARENT_LEN);
    tcase_add_test(parse, test_parse_respects_length);
    tcase_add_test(parse, test_strerror_never_null);
    suite_add_tcase(suite, parse);

    tcase_add_loop_test(format, test_format_vectors, 0, (int)ARRAY_SIZE(format_vectors));
    tcase_add_loop_test(format, test_format_parse_round_trip, 0, 16);
    tcase_add_test(format, test_future_version_reemitted_as_00);
    suite_add_tcase(suite, format);
    return suite;
}

int main(void)
{
    return unit_run(traceparent_suite());
}
