/* SPDX-License-Identifier: MIT */
/*
 * json_escape (src/common/json_escape.h): the escaping every access-log and diagnostic string
 * goes through. What a reader relies on:
 *   - nothing a terminal interprets survives: C0 (0x00-0x1f), DEL and the C1 range U+0080-U+009F
 *     come out as \uXXXX (or JSON's short forms), '"' and '\\' get their short escapes;
 *   - valid UTF-8 passes through unchanged, byte for byte;
 *   - every byte that is not part of valid UTF-8 (overlong forms, surrogates, code points above
 *     U+10FFFF, truncated or stray sequences) becomes U+FFFD and sets the lossy flag;
 *   - the result is always a JSON string body that jansson accepts.
 *
 * Expectations come from the test's own UTF-8 reference (the well-formed byte sequences of
 * Unicode table 3-7), never from the code under test. Outputs are written into heap blocks of
 * exactly the documented worst case (6 bytes per input byte), so that under AddressSanitizer an
 * overrun of the contract is an error rather than a silent write into slack.
 */
#include <check.h>
#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_escape.h"
#include "unit-test.h"

/*
 * Assertions inside loops that run millions of times: Check's ck_assert_* records a mark point
 * (a write to its pipe, in fork mode) every time it passes, which makes such a loop crawl under
 * a sanitizer. CHECK asserts only when the condition fails.
 */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

/* --- the reference ------------------------------------------------------------------------ */

/*
 * Length of the well-formed UTF-8 sequence at s[0..n) (1..4), or 0 when s[0] does not start
 * one. Written from Unicode 15, table 3-7, independently of json_escape.c.
 */
static size_t ref_sequence_length(const uint8_t *s, size_t n, uint32_t *ret_cp)
{
    uint8_t b0 = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */

    if (b0 <= 0x7f) {
        *ret_cp = b0;
        return 1;
    }
    if (b0 >= 0xc2 && b0 <= 0xdf)
        len = 2;
    else if (b0 == 0xe0)
        len = 3, lo = 0xa0;
    else if ((b0 >= 0xe1 && b0 <= 0xec) || b0 == 0xee || b0 == 0xef)
        len = 3;
    else if (b0 == 0xed)
        len = 3, hi = 0x9f;
    else if (b0 == 0xf0)
        len = 4, lo = 0x90;
    else if (b0 >= 0xf1 && b0 <= 0xf3)
        len = 4;
    else if (b0 == 0xf4)
        len = 4, hi = 0x8f;
    else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    uint32_t cp = b0 & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
    for (size_t i = 1; i < len; i++)
        cp = cp << 6 | (s[i] & 0x3f);
    *ret_cp = cp;
    return len;
}

/* The string JSON should carry for the input: the input with each byte outside a well-formed
 * sequence replaced by U+FFFD (EF BF BD). Sets *ret_lossy when there was such a byte. */
static char *ref_decoded(const uint8_t *s, size_t n, size_t *ret_len, bool *ret_lossy)
{
    char *out = malloc(3 * n + 1);
    size_t w = 0;

    CHECK(out != NULL, "out of memory");
    *ret_lossy = false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = ref_sequence_length(s + i, n - i, &cp);
        if (len == 0) {
            memcpy(out + w, "\xef\xbf\xbd", 3);
            w += 3;
            i++;
            *ret_lossy = true;
            continue;
        }
        memcpy(out + w, s + i, len);
        w += len;
        i += len;
    }
    out[w] = '\0';
    *ret_len = w;
    return out;
}

/* --- running the code under test ----------------------------------------------------------- */

struct escaped {
    char *text; /* NUL-terminated copy of the output */
    size_t len;
    bool lossy;
};

static void escape(const void *input, size_t n, struct escaped *ret)
{
    char *copy = malloc(n > 0 ? n : 1); /* exactly n bytes: a read past the end is caught */
    size_t cap = 6 * n > 0 ? 6 * n : 1;
    char *out = malloc(cap);

    CHECK(copy != NULL && out != NULL, "out of memory");
    if (n > 0)
        memcpy(copy, input, n);
    ret->lossy = false;
    ret->len = json_escape(out, copy, n, &ret->lossy);
    CHECK(ret->len <= 6 * n, "%zu bytes written for %zu input bytes", ret->len, n);
    ret->text = malloc(ret->len + 1);
    CHECK(ret->text != NULL, "out of memory");
    memcpy(ret->text, out, ret->len);
    ret->text[ret->len] = '\0';
    free(out);
    free(copy);
}

/* Parse "\"" + out + "\"" with jansson; returns the decoded string (or NULL with a reason). */
static json_t *parse_escaped(const struct escaped *e, json_error_t *error)
{
    char *doc = malloc(e->len + 3);

    CHECK(doc != NULL, "out of memory");
    doc[0] = '"';
    memcpy(doc + 1, e->text, e->len);
    doc[e->len + 1] = '"';
    doc[e->len + 2] = '\0';
    json_t *value = json_loadb(doc, e->len + 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, error);
    free(doc);
    return value;
}

static void hex_dump(char *out, size_t size, const uint8_t *s, size_t n)
{
    size_t w = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && w + 4 < size; i++)
        w += (size_t)snprintf(out + w, size - w, "%02x ", s[i]);
}

/*
 * Everything the contract promises about one input: the output holds no raw control byte (C0,
 * DEL, or C1 encoded as C2 80..C2 9F), jansson parses it, it decodes to the reference string,
 * and the lossy flag is set exactly when a byte was replaced.
 */
/* Fail with the input shown in hex. */
#define CHECK_INPUT(cond, s, n, fmt, ...)                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            char dump_[3 * 64 + 8];                                                                \
            hex_dump(dump_, sizeof(dump_), (s), (n));                                              \
            ck_abort_msg("input %s: " fmt, dump_, __VA_ARGS__);                                    \
        }                                                                                          \
    } while (0)

static void check_properties(const uint8_t *s, size_t n)
{
    struct escaped e;
    json_error_t error;
    size_t want_len;
    bool want_lossy;

    escape(s, n, &e);
    for (size_t i = 0; i < e.len; i++) {
        uint8_t c = (uint8_t)e.text[i];
        CHECK_INPUT(c >= 0x20 && c != 0x7f, s, n, "raw byte 0x%02x in the output", c);
        CHECK_INPUT(!(c == 0xc2 && i + 1 < e.len && (uint8_t)e.text[i + 1] <= 0x9f), s, n,
                    "a raw C1 control in the output \"%s\"", e.text);
    }
    json_t *value = parse_escaped(&e, &error);
    CHECK_INPUT(value != NULL, s, n, "jansson refuses \"%s\": %s", e.text, error.text);
    char *want = ref_decoded(s, n, &want_len, &want_lossy);
    CHECK_INPUT(json_string_length(value) == want_len &&
                    memcmp(json_string_value(value), want, want_len) == 0,
                s, n, "decodes to something else than the input (output \"%s\")", e.text);
    CHECK_INPUT(e.lossy == want_lossy, s, n, "lossy is %d, expected %d", e.lossy, want_lossy);
    free(want);
    json_decref(value);
    free(e.text);
}

/* Equal, except that the four hex digits of a \uXXXX escape may be of either case. */
static bool same_escaped(const char *a, const char *b)
{
    size_t i = 0;

    while (a[i] != '\0' && b[i] != '\0') {
        if (a[i] == '\\' && b[i] == '\\' && a[i + 1] == 'u' && b[i + 1] == 'u') {
            for (size_t k = 2; k < 6; k++)
                if (a[i + k] == '\0' || b[i + k] == '\0' ||
                    tolower((unsigned char)a[i + k]) != tolower((unsigned char)b[i + k]))
                    return false;
            i += 6;
            continue;
        }
        if (a[i] != b[i])
            return false;
        i++;
    }
    return a[i] == b[i];
}

/* --- every byte alone ------------------------------------------------------------------------ */

/* The expected escape of one byte on its own (a lone byte >= 0x80 is never valid UTF-8). */
static void expected_single(uint8_t c, char *out, size_t size, const char **ret_alt)
{
    *ret_alt = NULL;
    if (c == '"')
        snprintf(out, size, "\\\"");
    else if (c == '\\')
        snprintf(out, size, "\\\\");
    else if (c == '\n')
        snprintf(out, size, "\\n");
    else if (c == '\r')
        snprintf(out, size, "\\r");
    else if (c == '\t')
        snprintf(out, size, "\\t");
    else if (c < 0x20 || c == 0x7f) {
        snprintf(out, size, "\\u%04x", c);
        if (c == '\b')
            *ret_alt = "\\b";
        else if (c == '\f')
            *ret_alt = "\\f";
    } else if (c < 0x80)
        snprintf(out, size, "%c", c);
    else
        snprintf(out, size, "\xef\xbf\xbd");
}

START_TEST(test_every_byte_alone)
{
    uint8_t c = (uint8_t)_i;
    char want[16];
    const char *alt;
    struct escaped e;

    expected_single(c, want, sizeof(want), &alt);
    escape(&c, 1, &e);
    /* JSON's short forms \b and \f are allowed for 0x08 and 0x0c. */
    ck_assert_msg(same_escaped(e.text, want) || (alt && strcmp(e.text, alt) == 0),
                  "byte 0x%02x: \"%s\", expected \"%s\"", c, e.text, want);
    ck_assert_msg(e.lossy == (c >= 0x80), "byte 0x%02x: lossy %d", c, e.lossy);
    free(e.text);
    check_properties(&c, 1);
}
END_TEST

/* --- table of sequences ---------------------------------------------------------------------- */

static const struct {
    const char *name;
    const char *input;
    size_t input_len;
    const char *output; /* exact, but for the case of \u hex digits */
    bool lossy;
} vectors[] = {
    {"empty", V(""), "", false},
    {"plain ASCII", V("GET /api?q=1"), "GET /api?q=1", false},
    {"quote and backslash", V("a\"b\\c"), "a\\\"b\\\\c", false},
    {"NUL inside", V("a\0b"), "a\\u0000b", false},
    {"ESC sequence", V("\x1b[31mred"), "\\u001b[31mred", false},
    {"DEL", V("x\x7fy"), "x\\u007fy", false},
    {"newline, CR, tab", V("\r\n\t"), "\\r\\n\\t", false},
    /* C1 controls as UTF-8 (U+0080..U+009F) are escaped, not passed through. */
    {"C1 U+0080", V("\xc2\x80"), "\\u0080", false},
    {"C1 U+009B (CSI)", V("\xc2\x9b"), "\\u009b", false},
    {"C1 U+009F", V("\xc2\x9f"), "\\u009f", false},
    {"U+00A0 passes", V("\xc2\xa0"), "\xc2\xa0", false},
    {"two-byte e-acute", V("caf\xc3\xa9"), "caf\xc3\xa9", false},
    {"three-byte euro", V("\xe2\x82\xac"), "\xe2\x82\xac", false},
    {"U+FFFD itself", V("\xef\xbf\xbd"), "\xef\xbf\xbd", false},
    {"U+FEFF", V("\xef\xbb\xbf"), "\xef\xbb\xbf", false},
    {"four-byte emoji", V("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80", false},
    {"U+10FFFF", V("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf", false},
    {"U+D7FF before surrogates", V("\xed\x9f\xbf"), "\xed\x9f\xbf", false},
    {"U+E000 after surrogates", V("\xee\x80\x80"), "\xee\x80\x80", false},
    {"U+0800 smallest 3-byte", V("\xe0\xa0\x80"), "\xe0\xa0\x80", false},
    {"U+10000 smallest 4-byte", V("\xf0\x90\x80\x80"), "\xf0\x90\x80\x80", false},
    /* Overlong forms: every byte becomes U+FFFD. */
    {"overlong NUL C0 80", V("\xc0\x80"), "\xef\xbf\xbd\xef\xbf\xbd", true},
    {"overlong slash C1 AF", V("\xc1\xaf"), "\xef\xbf\xbd\xef\xbf\xbd", true},
    {"overlong E0 80 AF", V("\xe0\x80\xaf"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", true},
    {"overlong F0 80 80 AF", V("\xf0\x80\x80\xaf"),
     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", true},
    /* Surrogates encoded in UTF-8 (CESU) are not UTF-8. */
    {"surrogate ED A0 80", V("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", true},
    {"surrogate ED BF BF", V("\xed\xbf\xbf"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", true},
    /* Above U+10FFFF, and the bytes that can never appear. */
    {"U+110000 F4 90 80 80", V("\xf4\x90\x80\x80"),
     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", true},
    {"F5 lead", V("\xf5\x80\x80\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", true},
    {"FF", V("a\xff"), "a\xef\xbf\xbd", true},
    {"FE FF byte-order mark of UTF-16", V("\xfe\xff"), "\xef\xbf\xbd\xef\xbf\xbd", true},
    /* Truncated sequences, at the end and before another character. */
    {"truncated 2-byte at end", V("a\xc3"), "a\xef\xbf\xbd", true},
    {"truncated 3-byte at end", V("\xe2\x82"), "\xef\xbf\xbd\xef\xbf\xbd", true},
    {"truncated 4-byte at end", V("\xf0\x9f\x98"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", true},
    {"truncated 3-byte before ASCII", V("\xe2\x82z"), "\xef\xbf\xbd\xef\xbf\xbdz", true},
    {"truncated before a quote", V("\xc3\""), "\xef\xbf\xbd\\\"", true},
    {"stray continuation", V("\x80"), "\xef\xbf\xbd", true},
    {"lead then valid sequence", V("\xc3\xc3\xa9"), "\xef\xbf\xbd\xc3\xa9", true},
    {"invalid byte then control", V("\xff\x01"), "\xef\xbf\xbd\\u0001", true},
    {"Latin-1 e-acute", V("caf\xe9"), "caf\xef\xbf\xbd", true},
};

START_TEST(test_vectors)
{
    const char *name = vectors[_i].name;
    struct escaped e;

    escape(vectors[_i].input, vectors[_i].input_len, &e);
    ck_assert_msg(same_escaped(e.text, vectors[_i].output), "%s: \"%s\", expected \"%s\"", name,
                  e.text, vectors[_i].output);
    ck_assert_msg(e.lossy == vectors[_i].lossy, "%s: lossy %d, expected %d", name, e.lossy,
                  vectors[_i].lossy);
    free(e.text);
    check_properties((const uint8_t *)vectors[_i].input, vectors[_i].input_len);
}
END_TEST

/* Every two-byte sequence: the whole lead x continuation plane, through the reference. */
START_TEST(test_every_byte_pair)
{
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            uint8_t s[2] = {(uint8_t)a, (uint8_t)b};
            check_properties(s, 2);
        }
    }
}
END_TEST

/* Every three-byte sequence that starts with a three-byte lead and one 16-step sample of the
 * rest (boundaries 0x7f/0x80, 0xbf/0xc0 included). */
START_TEST(test_three_byte_leads)
{
    static const uint8_t tails[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                    0xaf, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xf4, 0xff};
    for (unsigned lead = 0xe0; lead <= 0xef; lead++)
        for (size_t i = 0; i < ARRAY_SIZE(tails); i++)
            for (size_t k = 0; k < ARRAY_SIZE(tails); k++) {
                uint8_t s[3] = {(uint8_t)lead, tails[i], tails[k]};
                check_properties(s, 3);
            }
}
END_TEST

/* A NULL ret_lossy is allowed; a non-NULL one is only ever set, never cleared. */
START_TEST(test_lossy_flag_contract)
{
    char out[64];
    bool lossy = true;

    ck_assert_uint_eq(json_escape(out, "\xff", 1, NULL), 3);
    json_escape(out, "plain", 5, &lossy);
    ck_assert_msg(lossy, "a valid string cleared an already set lossy flag");
    lossy = false;
    json_escape(out, "plain \xc3\xa9", 8, &lossy);
    ck_assert(!lossy);
}
END_TEST

/* The output buffer of exactly 6 * n bytes is enough for the worst input (all controls). */
START_TEST(test_worst_case_fits)
{
    enum { N = 512 };
    char input[N];

    for (size_t i = 0; i < N; i++)
        input[i] = (char)(i % 2 ? 0x01 : 0x7f);
    struct escaped e;
    escape(input, N, &e);
    ck_assert_uint_eq(e.len, 6 * N);
    free(e.text);
}
END_TEST

/* --- random inputs ----------------------------------------------------------------------- */

/* Append a random piece biased towards the interesting: valid code points of every length,
 * their truncations and overlong/surrogate look-alikes, controls and quotes. */
static size_t random_piece(uint64_t *state, uint8_t *out)
{
    uint64_t r = unit_prng_next(state);
    uint32_t cp;

    switch (r % 8) {
    case 0: /* any byte */
        out[0] = (uint8_t)(r >> 8);
        return 1;
    case 1: /* printable, quote, backslash or control */
        out[0] = (uint8_t) "\"\\\n\x01\x1f\x7f az{}"[(r >> 8) % 11];
        return 1;
    case 2: /* two-byte code point, C1 included */
        cp = 0x80 + (uint32_t)((r >> 8) % (0x800 - 0x80));
        out[0] = (uint8_t)(0xc0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    case 3: /* three-byte, surrogates included (those must be replaced) */
        cp = 0x800 + (uint32_t)((r >> 8) % (0x10000 - 0x800));
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    case 4: /* four-byte, a little beyond U+10FFFF too */
        cp = 0x10000 + (uint32_t)((r >> 8) % (0x140000 - 0x10000));
        out[0] = (uint8_t)(0xf0 | cp >> 18);
        out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (uint8_t)(0x80 | (cp & 0x3f));
        return 4;
    case 5: /* a truncated multi-byte sequence */
        out[0] = (uint8_t)(0xc2 + (r >> 8) % 0x33);
        out[1] = (uint8_t)(0x80 | ((r >> 16) & 0x3f));
        return 1 + (r >> 24) % 2;
    case 6: /* overlong two- or three-byte */
        out[0] = (r >> 8) & 1 ? 0xc0 : 0xe0;
        out[1] = (uint8_t)(0x80 | ((r >> 16) & 0x1f));
        out[2] = (uint8_t)(0x80 | ((r >> 24) & 0x3f));
        return out[0] == 0xc0 ? 2 : 3;
    default: /* continuation bytes */
        out[0] = (uint8_t)(0x80 | ((r >> 8) & 0x3f));
        return 1;
    }
}

START_TEST(test_random_strings_always_parse)
{
    uint64_t state = unit_prng_seed(20261122);
    uint8_t buf[96];

    for (unsigned round = 0; round < 100000; round++) {
        size_t want = unit_prng_next(&state) % 48, n = 0;
        if (round % 2) {
            unit_prng_fill(&state, buf, want);
            n = want;
        } else {
            while (n < want)
                n += random_piece(&state, buf + n);
        }
        check_properties(buf, n);
    }
}
END_TEST

static Suite *json_escape_suite(void)
{
    Suite *s = suite_create("json_escape");
    TCase *tc = tcase_create("bytes");

    tcase_add_loop_test(tc, test_every_byte_alone, 0, 256);
    tcase_add_loop_test(tc, test_vectors, 0, (int)ARRAY_SIZE(vectors));
    tcase_add_test(tc, test_every_byte_pair);
    tcase_add_test(tc, test_three_byte_leads);
    tcase_add_test(tc, test_lossy_flag_contract);
    tcase_add_test(tc, test_worst_case_fits);
    suite_add_tcase(s, tc);

    tc = tcase_create("random");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_random_strings_always_parse);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(json_escape_suite());
}
