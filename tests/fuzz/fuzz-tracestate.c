/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target: tracehop_tracestate_normalize.
 *
 * The input is split on '\n' into up to MAX_FIELDS header field values (the last one keeps any
 * further newlines), each copied into its own exactly-sized heap block so that AddressSanitizer
 * sees a read past any field's end. The output buffer is also exactly TRACEHOP_TRACESTATE_MAX + 1
 * bytes.
 *
 * Checks, from the header's contract:
 *  - the output is always NUL-terminated, at most 512 characters, and *ret_len is its strlen;
 *    it is empty for ABSENT and INVALID;
 *  - an OK, DEDUPLICATED or TRUNCATED output is itself a clean tracestate: valid members, no
 *    empty members and no whitespace around them, no repeated key, at most 32 members;
 *    normalizing it again gives the identical string with status OK (idempotence);
 *  - a reference, written out here from W3C Trace Context Level 2 section 3.3, decides ABSENT /
 *    INVALID / fits / must be truncated, and which members are later duplicates of a key (they go,
 *    the first of each key stays; all count against the 32). The library must agree. When
 *    everything fits the output is the reference's kept members joined by ',', status OK or, if a
 *    duplicate went, DEDUPLICATED; when it does not fit the output is an in-order subset of them.
 * The reference does not pin which members a truncation removes, as the W3C text leaves room there;
 * it only requires that a member of at most 128 characters is never dropped while a longer one is
 * kept, and that the first short member survives.
 */

#include <tracehop/tracectx.h>

#include "fuzz.h"

#define MAX_FIELDS       8
#define KEY_MAX          256
#define VALUE_MAX        256
#define SHORT_MEMBER_MAX 128

/* One list member, "key=value", pointing into a field (or the output). */
struct member {
    const char *text;
    size_t len;
    size_t key_len;
};

static bool is_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_key_char(char c)
{
    return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '*' || c == '/' || c == '@';
}

static bool all_key_chars(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_key_char(s[i]))
            return false;
    return true;
}

/* key = ( lcalpha / DIGIT ) 0*255( keychar ) (W3C Trace Context Level 2, 3.3.1.3.1). */
static bool reference_key_is_valid(const char *key, size_t len)
{
    return len >= 1 && len <= KEY_MAX && (is_lcalpha(key[0]) || is_digit(key[0])) &&
           all_key_chars(key, len);
}

/* nblk-chr = %x21-2B / %x2D-3C / %x3E-7E */
static bool is_nblk_char(char c)
{
    unsigned char u = (unsigned char)c;

    return u >= 0x21 && u <= 0x7e && c != ',' && c != '=';
}

/* value = 0*255(chr) nblk-chr, chr = %x20 / nblk-chr (W3C Trace Context 3.3.1.3.2). */
static bool reference_value_is_valid(const char *value, size_t len)
{
    if (len < 1 || len > VALUE_MAX || !is_nblk_char(value[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (value[i] != ' ' && !is_nblk_char(value[i]))
            return false;
    return true;
}

static bool parse_member(const char *text, size_t len, struct member *ret)
{
    const char *equals = memchr(text, '=', len);
    size_t key_len;

    if (!equals)
        return false;
    key_len = (size_t)(equals - text);
    if (!reference_key_is_valid(text, key_len) ||
        !reference_value_is_valid(equals + 1, len - key_len - 1))
        return false;
    *ret = (struct member){.text = text, .len = len, .key_len = key_len};
    return true;
}

static bool same_key(const struct member *a, const struct member *b)
{
    return a->key_len == b->key_len && memcmp(a->text, b->text, a->key_len) == 0;
}

static bool same_member(const struct member *a, const struct member *b)
{
    return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
}

/*
 * The reference reading of the fields: ABSENT, INVALID, or OK with the first member of each key in
 * members[] and *ret_duplicates telling whether later ones were left out (truncation is judged by
 * the caller).
 */
static enum tracehop_tracestate_status
reference_members(const struct tracehop_slice *fields, size_t count,
                  struct member members[TRACEHOP_TRACESTATE_MEMBERS_MAX], size_t *ret_count,
                  bool *ret_duplicates)
{
    size_t n = 0, received = 0;
    bool duplicates = false;

    for (size_t f = 0; f < count; f++) {
        const char *p = fields[f].ptr;
        const char *end = p + fields[f].len;

        for (;;) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *piece_end = comma ? comma : end;
            const char *piece = p;
            size_t piece_len = (size_t)(piece_end - p);

            fuzz_trim_ows(&piece, &piece_len);
            if (piece_len > 0) {
                struct member m;
                bool seen = false;

                if (received++ == TRACEHOP_TRACESTATE_MEMBERS_MAX)
                    return TRACEHOP_TS_INVALID;
                if (!parse_member(piece, piece_len, &m))
                    return TRACEHOP_TS_INVALID;
                for (size_t i = 0; i < n; i++)
                    seen = seen || same_key(&members[i], &m);
                if (seen)
                    duplicates = true;
                else
                    members[n++] = m;
            }
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    *ret_count = n;
    *ret_duplicates = duplicates;
    return n == 0 ? TRACEHOP_TS_ABSENT : TRACEHOP_TS_OK;
}

/* Split a normalized output into members, checking that it is clean. Returns the count. */
static size_t check_clean_output(const char *out, size_t len,
                                 struct member members[TRACEHOP_TRACESTATE_MEMBERS_MAX])
{
    const char *p = out;
    const char *end = out + len;
    size_t n = 0;

    FUZZ_CHECK(len > 0);
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *member_end = comma ? comma : end;

        FUZZ_CHECK(n < TRACEHOP_TRACESTATE_MEMBERS_MAX);
        /* No empty member, no OWS left around one (a value may not start with a tab either). */
        FUZZ_CHECK(member_end > p && !fuzz_is_ows(p[0]) && !fuzz_is_ows(member_end[-1]));
        FUZZ_CHECK(parse_member(p, (size_t)(member_end - p), &members[n]));
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(!same_key(&members[i], &members[n]));
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return n;
}

static void check_idempotent(const char *out, size_t len)
{
    struct tracehop_slice field = {.ptr = fuzz_memdup(out, len), .len = len};
    char *again = malloc(TRACEHOP_TRACESTATE_MAX + 1);
    size_t again_len = SIZE_MAX;

    FUZZ_CHECK(again);
    FUZZ_CHECK(tracehop_tracestate_normalize(&field, 1, again, &again_len) == TRACEHOP_TS_OK);
    FUZZ_CHECK(again_len == len && memcmp(again, out, len + 1) == 0);
    free(again);
    free((char *)field.ptr);
}

/* A truncated output keeps members in order, drops short ones only after all long ones. */
static void check_truncation(const struct member *expected, size_t expected_count,
                             const struct member *got, size_t got_count)
{
    bool kept_long = false, dropped_short = false;
    size_t e = 0;

    for (size_t g = 0; g < got_count; g++) {
        while (e < expected_count && !same_member(&expected[e], &got[g])) {
            if (expected[e].len <= SHORT_MEMBER_MAX)
                dropped_short = true;
            e++;
        }
        FUZZ_CHECK(e < expected_count); /* every output member was in the input, in order */
        if (got[g].len > SHORT_MEMBER_MAX)
            kept_long = true;
        e++;
    }
    for (; e < expected_count; e++)
        if (expected[e].len <= SHORT_MEMBER_MAX)
            dropped_short = true;
    FUZZ_CHECK(!(kept_long && dropped_short));

    /* A single member of at most 128 characters always fits: the first one is never dropped. */
    for (size_t i = 0; i < expected_count; i++) {
        if (expected[i].len <= SHORT_MEMBER_MAX) {
            bool kept = false;

            for (size_t g = 0; g < got_count; g++)
                kept = kept || same_member(&got[g], &expected[i]);
            FUZZ_CHECK(kept);
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tracehop_slice fields[MAX_FIELDS];
    struct member expected[TRACEHOP_TRACESTATE_MEMBERS_MAX], got[TRACEHOP_TRACESTATE_MEMBERS_MAX];
    size_t count = 0, expected_count = 0, got_count = 0, offset = 0;
    enum tracehop_tracestate_status status, reference;
    bool duplicates = false;
    char *out;
    size_t len = SIZE_MAX;

    if (!data)
        data = (const uint8_t *)"";
    while (count < MAX_FIELDS) {
        const uint8_t *newline = memchr(data + offset, '\n', size - offset);
        size_t field_len =
            newline && count + 1 < MAX_FIELDS ? (size_t)(newline - (data + offset)) : size - offset;

        fields[count].ptr = fuzz_memdup(data + offset, field_len);
        fields[count].len = field_len;
        count++;
        offset += field_len;
        if (offset == size)
            break;
        offset++; /* the '\n' */
    }

    out = malloc(TRACEHOP_TRACESTATE_MAX + 1);
    FUZZ_CHECK(out);
    memset(out, 'X', TRACEHOP_TRACESTATE_MAX + 1);
    status = tracehop_tracestate_normalize(fields, count, out, &len);

    FUZZ_CHECK(status == TRACEHOP_TS_ABSENT || status == TRACEHOP_TS_OK ||
               status == TRACEHOP_TS_DEDUPLICATED || status == TRACEHOP_TS_TRUNCATED ||
               status == TRACEHOP_TS_INVALID);
    FUZZ_CHECK(len <= TRACEHOP_TRACESTATE_MAX);
    FUZZ_CHECK(out[len] == '\0' && strlen(out) == len);
    if (status == TRACEHOP_TS_ABSENT || status == TRACEHOP_TS_INVALID)
        FUZZ_CHECK(len == 0);
    if (status == TRACEHOP_TS_OK || status == TRACEHOP_TS_DEDUPLICATED)
        FUZZ_CHECK(len > 0);
    if (len > 0) {
        got_count = check_clean_output(out, len, got);
        check_idempotent(out, len);
    }

    reference = reference_members(fields, count, expected, &expected_count, &duplicates);
    if (reference != TRACEHOP_TS_OK) {
        FUZZ_CHECK(status == reference);
    } else {
        size_t joined_len = expected_count - 1;

        for (size_t i = 0; i < expected_count; i++)
            joined_len += expected[i].len;
        if (joined_len <= TRACEHOP_TRACESTATE_MAX) {
            FUZZ_CHECK(status == (duplicates ? TRACEHOP_TS_DEDUPLICATED : TRACEHOP_TS_OK));
            FUZZ_CHECK(len == joined_len);
            FUZZ_CHECK(got_count == expected_count);
            for (size_t i = 0; i < expected_count; i++)
                FUZZ_CHECK(same_member(&got[i], &expected[i]));
        } else {
            FUZZ_CHECK(status == TRACEHOP_TS_TRUNCATED);
            check_truncation(expected, expected_count, got, got_count);
        }
    }

    free(out);
    for (size_t i = 0; i < count; i++)
        free((char *)fields[i].ptr);
    return 0;
}
