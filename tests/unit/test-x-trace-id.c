/* SPDX-License-Identifier: MIT */

/*
 * X-Trace-ID helpers: the safe-token rule of docs/trace-context.md, "4. X-Trace-ID" (1..128
 * characters in 0x21..0x7e other than '"', '\'' and '\\'; surrounding spaces/tabs are not part of
 * the value), UUID parse (any case, any version, the nil UUID included) and format (lowercase
 * 8-4-4-4-12), and the lowercase hex helpers the traceparent code is built on.
 *
 * Besides the named vectors, every byte value is tried alone and inside a value, so that a hole
 * in a character class cannot hide between two examples.
 */

#include <stdio.h>

#include "tracehop/tracectx.h"
#include "unit-test.h"

struct safe_vector {
    const char *name;
    const char *value; /* template */
    size_t len;        /* 0: strlen of the expanded template */
    bool safe;
};

static const struct safe_vector safe_vectors[] = {
    {"simple token", "req-abc-123", 0, true},
    {"one character", "a", 0, true},
    {"uuid", "f47ac10b-58cc-4372-a567-0e02b2c3d479", 0, true},
    {"punctuation", "!#$%&()*+,-./:;<=>?@[]^_`{|}~", 0, true},
    {"128 characters", "{a*128}", 0, true},
    {"129 characters", "{a*129}", 0, false},
    {"128 characters with ows", " \t{a*128}\t ", 0, true},
    {"129 characters with ows", " {a*129} ", 0, false},
    {"1000 characters", "{a*1000}", 0, false},
    {"empty", "", 0, false},
    {"only spaces", "   ", 0, false},
    {"only tabs", "\t\t", 0, false},
    {"leading space", " abc", 0, true},
    {"trailing space", "abc ", 0, true},
    {"leading and trailing tabs", "\t abc \t", 0, true},
    {"space inside", "a b", 0, false},
    {"tab inside", "a\tb", 0, false},
    {"double quote", "a\"b", 0, false},
    {"only a double quote", "\"", 0, false},
    {"quoted token", "\"abc\"", 0, false},
    {"single quote", "a'b", 0, false},
    {"only a single quote", "'", 0, false},
    {"backslash", "a\\b", 0, false},
    {"CR LF injection", "abc\r\nX-Evil: 1", 0, false},
    {"trailing LF", "abc\n", 0, false},
    {"control byte",
     "a\x01"
     "b",
     0, false},
    {"DEL", "a\x7f", 0, false},
    {"byte 0x80", "a\x80", 0, false},
    {"UTF-8 e acute", "caf\xc3\xa9", 0, false},
    {"byte 0xff", "\xff", 0, false},
    {"NUL inside", "a\0b", 3, false},
    {"NUL at end", "abc\0", 4, false},
    {"length shorter than text", "abc def", 3, true},
};

START_TEST(test_safe_vectors)
{
    const struct safe_vector *vector = &safe_vectors[_i];
    size_t expanded_len;
    char *expanded = unit_expand(vector->value, &expanded_len);
    size_t len = vector->len != 0 ? vector->len : expanded_len;
    char *value;

    /* Vectors with an explicit length are plain literals (not templates). */
    value = unit_memdup(vector->len != 0 ? vector->value : expanded, len);
    ck_assert_msg(tracehop_x_trace_id_is_safe(value, len) == vector->safe, "%s: expected %s",
                  vector->name, vector->safe ? "safe" : "unsafe");
    free(value);
    free(expanded);
}
END_TEST

static bool byte_is_safe(int c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != '\'' && c != '\\';
}

/* Each byte value alone, between two letters, and first or last of a longer value. */
START_TEST(test_safe_every_byte)
{
    int c = _i;
    bool ows = c == ' ' || c == '\t';
    char alone[1] = {(char)c}, inside[3] = {'a', (char)c, 'b'};
    char *value;

    value = unit_memdup(alone, sizeof(alone));
    ck_assert_msg(tracehop_x_trace_id_is_safe(value, 1) == byte_is_safe(c), "byte %#x alone", c);
    free(value);
    value = unit_memdup(inside, sizeof(inside));
    ck_assert_msg(tracehop_x_trace_id_is_safe(value, 3) == byte_is_safe(c), "byte %#x inside", c);
    /* At an end, a space or tab is OWS and does not count. */
    ck_assert_msg(tracehop_x_trace_id_is_safe(value + 1, 2) == (byte_is_safe(c) || ows),
                  "byte %#x first", c);
    ck_assert_msg(tracehop_x_trace_id_is_safe(value, 2) == (byte_is_safe(c) || ows),
                  "byte %#x last", c);
    free(value);
}
END_TEST

/* Every length from 0 to 130: safe exactly for 1..128. */
START_TEST(test_safe_lengths)
{
    size_t len = (size_t)_i;
    char *value = malloc(len > 0 ? len : 1);

    ck_assert_ptr_nonnull(value);
    memset(value, 'x', len);
    ck_assert_msg(tracehop_x_trace_id_is_safe(value, len) == (len >= 1 && len <= 128), "length %zu",
                  len);
    free(value);
}
END_TEST

struct uuid_vector {
    const char *name;
    const char *value;
    size_t len;
    bool ok;
    const char *bytes; /* 32 hex digits when ok */
};

static const struct uuid_vector uuid_vectors[] = {
    {"v4 lowercase", V("f47ac10b-58cc-4372-a567-0e02b2c3d479"), true,
     "f47ac10b58cc4372a5670e02b2c3d479"},
    {"v4 uppercase", V("F47AC10B-58CC-4372-A567-0E02B2C3D479"), true,
     "f47ac10b58cc4372a5670e02b2c3d479"},
    {"v4 mixed case", V("f47AC10b-58Cc-4372-a567-0E02b2C3d479"), true,
     "f47ac10b58cc4372a5670e02b2c3d479"},
    {"v1", V("123e4567-e89b-12d3-a456-426614174000"), true, "123e4567e89b12d3a456426614174000"},
    {"v7", V("017f22e2-79b0-7cc3-98c4-dc0c0c07398f"), true, "017f22e279b07cc398c4dc0c0c07398f"},
    {"version 0 (not RFC, still 8-4-4-4-12)", V("12345678-9012-0456-7890-123456789012"), true,
     "12345678901204567890123456789012"},
    {"nil", V("00000000-0000-0000-0000-000000000000"), true, "00000000000000000000000000000000"},
    {"max", V("ffffffff-ffff-ffff-ffff-ffffffffffff"), true, "ffffffffffffffffffffffffffffffff"},
    {"max uppercase", V("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"), true,
     "ffffffffffffffffffffffffffffffff"},
    {"no dashes", V("f47ac10b58cc4372a5670e02b2c3d479"), false, NULL},
    {"dash moved left", V("f47ac10-b58cc-4372-a567-0e02b2c3d479"), false, NULL},
    {"dash moved right", V("f47ac10b5-8cc-4372-a567-0e02b2c3d479"), false, NULL},
    {"last group dash moved", V("f47ac10b-58cc-4372-a5670-e02b2c3d479"), false, NULL},
    {"35 characters", V("f47ac10b-58cc-4372-a567-0e02b2c3d47"), false, NULL},
    {"37 characters", V("f47ac10b-58cc-4372-a567-0e02b2c3d4790"), false, NULL},
    {"non-hex g", V("g47ac10b-58cc-4372-a567-0e02b2c3d479"), false, NULL},
    {"non-hex G at end", V("f47ac10b-58cc-4372-a567-0e02b2c3d47G"), false, NULL},
    {"colon (after 9)", V("f47ac10b-58cc-4372-a567-0e02b2c3d47:"), false, NULL},
    {"at sign (before A)", V("f47ac10b-58cc-4372-a567-@e02b2c3d479"), false, NULL},
    {"underscore for dash", V("f47ac10b_58cc-4372-a567-0e02b2c3d479"), false, NULL},
    {"braces", V("{f47ac10b-58cc-4372-a567-0e02b2c3d479}"), false, NULL},
    {"urn prefix", V("urn:uuid:f47ac10b-58cc-4372-a567-0e02b2c3d479"), false, NULL},
    {"NUL inside",
     V("f47ac10b-58cc-4372-a567-0e02b2c3d4\0"
       "9"),
     false, NULL},
    {"empty", V(""), false, NULL},
    {"plain token", V("req-abc-123"), false, NULL},
    {"36 dashes", V("------------------------------------"), false, NULL},
    {"all dashes in hex places", V("f47ac10b-58cc-4372-a567-0e02b2c3d4-9"), false, NULL},
};

START_TEST(test_uuid_parse_vectors)
{
    const struct uuid_vector *vector = &uuid_vectors[_i];
    char *value = unit_memdup(vector->value, vector->len);
    uint8_t out[TRACEHOP_TRACE_ID_SIZE], expect[TRACEHOP_TRACE_ID_SIZE];
    bool ok;

    memset(out, 0xa5, sizeof(out));
    ok = tracehop_uuid_parse(value, vector->len, out);
    ck_assert_msg(ok == vector->ok, "%s: parse returned %d", vector->name, ok);
    if (vector->ok) {
        unit_hex_to_bytes(vector->bytes, expect, sizeof(expect));
        ck_assert_msg(memcmp(out, expect, sizeof(out)) == 0, "%s: wrong bytes", vector->name);
    }
    free(value);
}
END_TEST

struct uuid_format_vector {
    const char *name;
    const char *bytes;
    const char *expect;
};

static const struct uuid_format_vector uuid_format_vectors[] = {
    {"v4", "f47ac10b58cc4372a5670e02b2c3d479", "f47ac10b-58cc-4372-a567-0e02b2c3d479"},
    {"uppercase input bytes print lowercase", "F47AC10B58CC4372A5670E02B2C3D479",
     "f47ac10b-58cc-4372-a567-0e02b2c3d479"},
    {"traceparent id as uuid", "12345678901234567890123456789012",
     "12345678-9012-3456-7890-123456789012"},
    {"nil", "00000000000000000000000000000000", "00000000-0000-0000-0000-000000000000"},
    {"max", "ffffffffffffffffffffffffffffffff", "ffffffff-ffff-ffff-ffff-ffffffffffff"},
    {"every nibble", "0123456789abcdeffedcba9876543210", "01234567-89ab-cdef-fedc-ba9876543210"},
};

START_TEST(test_uuid_format_vectors)
{
    const struct uuid_format_vector *vector = &uuid_format_vectors[_i];
    uint8_t bytes[TRACEHOP_TRACE_ID_SIZE];
    char buf[TRACEHOP_UUID_LEN + 1];
    size_t len;

    unit_hex_to_bytes(vector->bytes, bytes, sizeof(bytes));
    memset(buf, '#', sizeof(buf));
    len = tracehop_uuid_format(buf, bytes);
    ck_assert_msg(len == TRACEHOP_UUID_LEN, "%s: returned %zu", vector->name, len);
    ck_assert_msg(buf[TRACEHOP_UUID_LEN] == '#', "%s: wrote past 36 bytes", vector->name);
    ck_assert_msg(memcmp(buf, vector->expect, TRACEHOP_UUID_LEN) == 0, "%s: got %.36s",
                  vector->name, buf);
}
END_TEST

/* format then parse gives the bytes back, and so does the uppercased text. */
START_TEST(test_uuid_round_trip)
{
    uint64_t state = unit_prng_seed(42);

    for (int round = 0; round < 10000; round++) {
        uint8_t bytes[TRACEHOP_TRACE_ID_SIZE], back[TRACEHOP_TRACE_ID_SIZE];
        char buf[TRACEHOP_UUID_LEN];

        unit_prng_fill(&state, bytes, sizeof(bytes));
        ck_assert_uint_eq(tracehop_uuid_format(buf, bytes), TRACEHOP_UUID_LEN);
        ck_assert_msg(unit_is_lower_uuid(buf, sizeof(buf)), "not lowercase 8-4-4-4-12: %.36s", buf);
        ck_assert(tracehop_uuid_parse(buf, sizeof(buf), back));
        ck_assert_mem_eq(back, bytes, sizeof(bytes));
        for (size_t i = 0; i < sizeof(buf); i++)
            if (buf[i] >= 'a' && buf[i] <= 'f')
                buf[i] = (char)(buf[i] - 'a' + 'A');
        ck_assert(tracehop_uuid_parse(buf, sizeof(buf), back));
        ck_assert_mem_eq(back, bytes, sizeof(bytes));
    }
}
END_TEST

/* Each byte value in each position of a valid UUID: accepted exactly where it belongs. */
START_TEST(test_uuid_parse_every_byte)
{
    static const char valid[] = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
    int c = _i;

    for (size_t position = 0; position < TRACEHOP_UUID_LEN; position++) {
        bool dash = position == 8 || position == 13 || position == 18 || position == 23;
        bool expect = dash ? c == '-' : unit_hex_digit((char)c) >= 0;
        char *value = unit_memdup(valid, TRACEHOP_UUID_LEN);
        uint8_t out[TRACEHOP_TRACE_ID_SIZE];

        value[position] = (char)c;
        ck_assert_msg(tracehop_uuid_parse(value, TRACEHOP_UUID_LEN, out) == expect,
                      "byte %#x at position %zu", c, position);
        free(value);
    }
}
END_TEST

struct hex_vector {
    const char *name;
    const char *bytes; /* written as the test's own hex, any case */
    const char *expect;
};

static const struct hex_vector hex_format_vectors[] = {
    {"empty", "", ""},
    {"one zero byte", "00", "00"},
    {"mixed", "0001abff", "0001abff"},
    {"every nibble", "0123456789ABCDEF", "0123456789abcdef"},
    {"span id", "a1b2c3d4e5f60718", "a1b2c3d4e5f60718"},
};

START_TEST(test_hex_format_vectors)
{
    const struct hex_vector *vector = &hex_format_vectors[_i];
    size_t n = strlen(vector->bytes) / 2;
    uint8_t bytes[16];
    char buf[33];

    unit_hex_to_bytes(vector->bytes, bytes, n);
    memset(buf, '#', sizeof(buf));
    ck_assert_uint_eq(tracehop_hex_format(buf, bytes, n), 2 * n);
    ck_assert_msg(buf[2 * n] == '#', "%s: wrote past %zu bytes", vector->name, 2 * n);
    ck_assert_msg(memcmp(buf, vector->expect, 2 * n) == 0, "%s: got %.*s", vector->name,
                  (int)(2 * n), buf);
}
END_TEST

struct hex_parse_vector {
    const char *name;
    const char *text;
    bool ok;
    const char *bytes;
};

static const struct hex_parse_vector hex_parse_vectors[] = {
    {"lowercase", "0001abff", true, "0001abff"},
    {"every lowercase digit", "0123456789abcdef", true, "0123456789abcdef"},
    {"uppercase", "0001ABFF", false, NULL},
    {"one uppercase digit", "0001abFf", false, NULL},
    {"g", "0001abfg", false, NULL},
    {"slash (before 0)", "/001abff", false, NULL},
    {"colon (after 9)", "0:01abff", false, NULL},
    {"backtick (before a)", "00`1abff", false, NULL},
    {"space", "0001ab f", false, NULL},
    {"dash", "0001ab-f", false, NULL},
};

START_TEST(test_hex_parse_vectors)
{
    const struct hex_parse_vector *vector = &hex_parse_vectors[_i];
    size_t n = strlen(vector->text) / 2;
    char *text = unit_memdup(vector->text, 2 * n);
    uint8_t out[16], expect[16];
    bool ok = tracehop_hex_parse_lower(text, n, out);

    ck_assert_msg(ok == vector->ok, "%s: returned %d", vector->name, ok);
    if (vector->ok) {
        unit_hex_to_bytes(vector->bytes, expect, n);
        ck_assert_msg(memcmp(out, expect, n) == 0, "%s: wrong bytes", vector->name);
    }
    free(text);
}
END_TEST

/* Each byte value as the high and as the low digit: only 0-9 and a-f are digits. */
START_TEST(test_hex_parse_every_byte)
{
    int c = _i;
    int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    char high[2] = {(char)c, '0'}, low[2] = {'0', (char)c};
    uint8_t out;

    ck_assert_msg(tracehop_hex_parse_lower(high, 1, &out) == (digit >= 0), "byte %#x high", c);
    if (digit >= 0)
        ck_assert_int_eq(out, digit << 4);
    ck_assert_msg(tracehop_hex_parse_lower(low, 1, &out) == (digit >= 0), "byte %#x low", c);
    if (digit >= 0)
        ck_assert_int_eq(out, digit);
}
END_TEST

/* hex_format then hex_parse_lower gives every byte value back. */
START_TEST(test_hex_round_trip)
{
    uint8_t bytes[256], back[256];
    char buf[512];

    for (int i = 0; i < 256; i++)
        bytes[i] = (uint8_t)i;
    ck_assert_uint_eq(tracehop_hex_format(buf, bytes, sizeof(bytes)), sizeof(buf));
    ck_assert(tracehop_hex_parse_lower(buf, sizeof(back), back));
    ck_assert_mem_eq(back, bytes, sizeof(bytes));
}
END_TEST

static Suite *x_trace_id_suite(void)
{
    Suite *suite = suite_create("x-trace-id");
    TCase *safe = tcase_create("safe");
    TCase *uuid = tcase_create("uuid");
    TCase *hex = tcase_create("hex");

    tcase_add_loop_test(safe, test_safe_vectors, 0, (int)ARRAY_SIZE(safe_vectors));
    tcase_add_loop_test(safe, test_safe_every_byte, 0, 256);
    tcase_add_loop_test(safe, test_safe_lengths, 0, 131);
    suite_add_tcase(suite, safe);

    tcase_add_loop_test(uuid, test_uuid_parse_vectors, 0, (int)ARRAY_SIZE(uuid_vectors));
    tcase_add_loop_test(uuid, test_uuid_format_vectors, 0, (int)ARRAY_SIZE(uuid_format_vectors));
    tcase_add_test(uuid, test_uuid_round_trip);
    tcase_add_loop_test(uuid, test_uuid_parse_every_byte, 0, 256);
    suite_add_tcase(suite, uuid);

    tcase_add_loop_test(hex, test_hex_format_vectors, 0, (int)ARRAY_SIZE(hex_format_vectors));
    tcase_add_loop_test(hex, test_hex_parse_vectors, 0, (int)ARRAY_SIZE(hex_parse_vectors));
    tcase_add_loop_test(hex, test_hex_parse_every_byte, 0, 256);
    tcase_add_test(hex, test_hex_round_trip);
    suite_add_tcase(suite, hex);
    return suite;
}

int main(void)
{
    return unit_run(x_trace_id_suite());
}
