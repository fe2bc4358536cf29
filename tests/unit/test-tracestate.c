/* SPDX-License-Identifier: MIT */

/*
 * tracehop_tracestate_normalize against W3C Trace Context Level 2 section 3.3 and every
 * tracestate case of the official test suite (w3c/trace-context test/test.py):
 *
 *   list        = list-member 0*31( OWS "," OWS list-member )
 *   list-member = (key "=" value) / OWS
 *   key         = ( lcalpha / DIGIT ) 0*255( keychar )
 *   keychar     = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
 *   value       = 0*255(chr) nblk-chr    chr = %x20 / nblk-chr
 *   nblk-chr    = %x21-2B / %x2D-3C / %x3E-7E
 *
 * Fields are combined in order, empty members and OWS disappear, a broken member or a 33rd member
 * (duplicates count) makes the whole tracestate INVALID (the W3C suite expects it discarded), a
 * repeated key keeps its first member and loses the later ones (DEDUPLICATED), and a
 * result longer than 512 characters is truncated (section 3.3.1.5): members longer than 128
 * characters first, then from the end. Exact vectors pin down the unambiguous truncations; a
 * seeded generator checks the invariants on many more.
 *
 * Vectors are templates: "{c*N}" is N copies of c (see unit-test.h).
 */

#include <stdio.h>

#include "tracehop/tracectx.h"
#include "unit-test.h"

#define MAX_FIELDS 6

struct vector {
    const char *name;
    const char *fields[MAX_FIELDS]; /* templates, NULL-terminated */
    enum tracehop_tracestate_status status;
    const char *expect; /* template; "" unless OK or TRUNCATED */
};

/* Every key character, without and with a vendor part, and every value character (w3c). */
#define ALL_KEY_CHARS        "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
#define ALL_KEY_CHARS_VENDOR ALL_KEY_CHARS "@a-z0-9_-*/"
#define ALL_VALUE_CHARS                                                                            \
    " !\"#$%&'()*+-./"                                                                             \
    "0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

/* Members of exactly 60 characters ("a0=" and 57 x's), for the truncation vectors. */
#define M60(key) key "={x*57}"
#define A0_5     M60("a0") "," M60("a1") "," M60("a2") "," M60("a3") "," M60("a4") "," M60("a5")
#define A0_6     A0_5 "," M60("a6")
#define A0_7     A0_6 "," M60("a7")
#define A0_9     A0_7 "," M60("a8") "," M60("a9")

#define BAR01_10                                                                                   \
    "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,bar09=09,bar10=10"
#define BAR11_20                                                                                   \
    "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,bar19=19,bar20=20"
#define BAR21_30                                                                                   \
    "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,bar29=29,bar30=30"

static const struct vector vectors[] = {
    /* combining fields */
    {"w3c multiple fields keep order",
     {"foo=1,bar=2", "rojo=1,congo=2", "baz=3"},
     TRACEHOP_TS_OK,
     "foo=1,bar=2,rojo=1,congo=2,baz=3"},
    {"single member", {"foo=1"}, TRACEHOP_TS_OK, "foo=1"},
    {"w3c foo and bar", {"foo=1,bar=2"}, TRACEHOP_TS_OK, "foo=1,bar=2"},
    {"no field", {NULL}, TRACEHOP_TS_ABSENT, ""},
    {"w3c empty field alone", {""}, TRACEHOP_TS_ABSENT, ""},
    {"ows-only field", {" \t "}, TRACEHOP_TS_ABSENT, ""},
    {"two empty fields", {"", " "}, TRACEHOP_TS_ABSENT, ""},
    {"only commas and ows", {",, ,\t,"}, TRACEHOP_TS_ABSENT, ""},
    {"w3c foo then empty field", {"foo=1", ""}, TRACEHOP_TS_OK, "foo=1"},
    {"w3c empty field then foo", {"", "foo=1"}, TRACEHOP_TS_OK, "foo=1"},

    /* optional whitespace and empty members */
    {"w3c ows around commas",
     {"foo=1 \t , \t bar=2, \t baz=3"},
     TRACEHOP_TS_OK,
     "foo=1,bar=2,baz=3"},
    {"w3c tabs around commas",
     {"foo=1\t \t,\t \tbar=2,\t \tbaz=3"},
     TRACEHOP_TS_OK,
     "foo=1,bar=2,baz=3"},
    {"w3c leading space", {" foo=1"}, TRACEHOP_TS_OK, "foo=1"},
    {"w3c leading tab", {"\tfoo=1"}, TRACEHOP_TS_OK, "foo=1"},
    {"w3c trailing space", {"foo=1 "}, TRACEHOP_TS_OK, "foo=1"},
    {"w3c trailing tab", {"foo=1\t"}, TRACEHOP_TS_OK, "foo=1"},
    {"w3c tab space both sides", {"\t foo=1 \t"}, TRACEHOP_TS_OK, "foo=1"},
    {"empty members around", {",,foo=1,,"}, TRACEHOP_TS_OK, "foo=1"},
    {"empty members between", {"foo=1,,bar=2"}, TRACEHOP_TS_OK, "foo=1,bar=2"},
    {"ows member between", {"foo=1, \t ,bar=2"}, TRACEHOP_TS_OK, "foo=1,bar=2"},
    {"field ending with comma", {"foo=1,", "bar=2"}, TRACEHOP_TS_OK, "foo=1,bar=2"},
    {"long ows is not output", {"foo=1{ *300},{\t*300}bar=2"}, TRACEHOP_TS_OK, "foo=1,bar=2"},

    /* duplicate keys (w3c test_tracestate_duplicated_keys): the first member of a key is kept */
    {"w3c duplicate same value", {"foo=1,foo=1"}, TRACEHOP_TS_DEDUPLICATED, "foo=1"},
    {"w3c duplicate other value", {"foo=1,foo=2"}, TRACEHOP_TS_DEDUPLICATED, "foo=1"},
    {"w3c duplicate across fields same value",
     {"foo=1", "foo=1"},
     TRACEHOP_TS_DEDUPLICATED,
     "foo=1"},
    {"w3c duplicate across fields other value",
     {"foo=1", "foo=2"},
     TRACEHOP_TS_DEDUPLICATED,
     "foo=1"},
    {"duplicate far apart",
     {"foo=1,bar=2", "baz=3,foo=4"},
     TRACEHOP_TS_DEDUPLICATED,
     "foo=1,bar=2,baz=3"},
    {"three of a key",
     {"a=1,foo=1,b=2,foo=2,c=3,foo=3"},
     TRACEHOP_TS_DEDUPLICATED,
     "a=1,foo=1,b=2,c=3"},
    {"two keys repeated", {"a=1,b=2", "b=3,a=4,c=5"}, TRACEHOP_TS_DEDUPLICATED, "a=1,b=2,c=5"},
    {"duplicate key with at", {"t@sys=1,t@sys=2"}, TRACEHOP_TS_DEDUPLICATED, "t@sys=1"},
    {"duplicate after ows", {"foo=1 , \tfoo=2"}, TRACEHOP_TS_DEDUPLICATED, "foo=1"},
    {"invalid duplicate invalidates", {"foo=1,foo=2=3"}, TRACEHOP_TS_INVALID, ""},
    {"duplicate then invalid member", {"foo=1,foo=2,BAR=3"}, TRACEHOP_TS_INVALID, ""},
    {"same prefix other suffix", {"t@sys=1,t@other=2"}, TRACEHOP_TS_OK, "t@sys=1,t@other=2"},
    {"key and key with at", {"t=1,t@sys=2"}, TRACEHOP_TS_OK, "t=1,t@sys=2"},
    {"at swapped", {"a@b=1,b@a=2"}, TRACEHOP_TS_OK, "a@b=1,b@a=2"},
    {"key is a prefix of another", {"foo=1,foobar=2,fo=3"}, TRACEHOP_TS_OK, "foo=1,foobar=2,fo=3"},

    /* keys (w3c test_tracestate_key_illegal_characters and _vendor_format) */
    {"w3c space before =", {"foo =1"}, TRACEHOP_TS_INVALID, ""},
    {"w3c uppercase key", {"FOO=1"}, TRACEHOP_TS_INVALID, ""},
    {"w3c dot in key", {"foo.bar=1"}, TRACEHOP_TS_INVALID, ""},
    {"one uppercase letter", {"fOo=1"}, TRACEHOP_TS_INVALID, ""},
    {"plus in key", {"foo+bar=1"}, TRACEHOP_TS_INVALID, ""},
    {"space in key", {"foo bar=1"}, TRACEHOP_TS_INVALID, ""},
    {"no key", {"=1"}, TRACEHOP_TS_INVALID, ""},
    {"no equals sign", {"foo"}, TRACEHOP_TS_INVALID, ""},
    {"member without equals after valid", {"foo=1,bar"}, TRACEHOP_TS_INVALID, ""},
    {"bad member in second field", {"foo=1", "FOO=2"}, TRACEHOP_TS_INVALID, ""},
    {"w3c at last", {"foo@=1,bar=2"}, TRACEHOP_TS_OK, "foo@=1,bar=2"},
    {"w3c at first", {"@foo=1,bar=2"}, TRACEHOP_TS_INVALID, ""},
    {"w3c two at together", {"foo@@bar=1,bar=2"}, TRACEHOP_TS_OK, "foo@@bar=1,bar=2"},
    {"w3c two at apart", {"foo@bar@baz=1,bar=2"}, TRACEHOP_TS_OK, "foo@bar@baz=1,bar=2"},
    {"at only", {"@=1"}, TRACEHOP_TS_INVALID, ""},
    {"letter and at", {"a@=1"}, TRACEHOP_TS_OK, "a@=1"},
    {"digit first with at", {"1tenant@sys=1"}, TRACEHOP_TS_OK, "1tenant@sys=1"},
    {"digit and at and digit", {"0@1=1"}, TRACEHOP_TS_OK, "0@1=1"},
    {"key starting with digit", {"1foo=1"}, TRACEHOP_TS_OK, "1foo=1"},
    {"key of one digit", {"7=1"}, TRACEHOP_TS_OK, "7=1"},
    {"digit after at", {"foo@1sys=1"}, TRACEHOP_TS_OK, "foo@1sys=1"},
    {"underscore after at", {"foo@_sys=1"}, TRACEHOP_TS_OK, "foo@_sys=1"},
    {"uppercase after at", {"foo@Sys=1"}, TRACEHOP_TS_INVALID, ""},
    {"key starting with underscore", {"_foo=1"}, TRACEHOP_TS_INVALID, ""},
    {"key starting with dash", {"-foo=1"}, TRACEHOP_TS_INVALID, ""},
    {"key starting with star", {"*foo=1"}, TRACEHOP_TS_INVALID, ""},
    {"key starting with slash", {"/foo=1"}, TRACEHOP_TS_INVALID, ""},
    {"underscore first with at", {"_t@sys=1"}, TRACEHOP_TS_INVALID, ""},
    {"w3c all key characters", {ALL_KEY_CHARS "=1"}, TRACEHOP_TS_OK, ALL_KEY_CHARS "=1"},
    {"w3c all key characters with vendor",
     {ALL_KEY_CHARS_VENDOR "=1"},
     TRACEHOP_TS_OK,
     ALL_KEY_CHARS_VENDOR "=1"},

    /* key lengths (w3c test_tracestate_key_length_limit): 256 characters in all, '@' or not */
    {"w3c key of 256", {"foo=1", "{z*256}=1"}, TRACEHOP_TS_OK, "foo=1,{z*256}=1"},
    {"w3c key of 257", {"foo=1", "{z*257}=1"}, TRACEHOP_TS_INVALID, ""},
    {"w3c 241 at 14", {"foo=1", "{t*241}@{v*14}=1"}, TRACEHOP_TS_OK, "foo=1,{t*241}@{v*14}=1"},
    {"w3c 242 at 1", {"foo=1", "{t*242}@v=1"}, TRACEHOP_TS_OK, "foo=1,{t*242}@v=1"},
    {"w3c 1 at 15", {"foo=1", "t@{v*15}=1"}, TRACEHOP_TS_OK, "foo=1,t@{v*15}=1"},
    {"1 at 254", {"t@{v*254}=1"}, TRACEHOP_TS_OK, "t@{v*254}=1"},
    {"1 at 255 is 257", {"foo=1", "t@{v*255}=1"}, TRACEHOP_TS_INVALID, ""},
    {"digit then 255", {"9{z*255}=1"}, TRACEHOP_TS_OK, "9{z*255}=1"},
    {"key of one letter", {"a=1"}, TRACEHOP_TS_OK, "a=1"},

    /* values (w3c test_tracestate_all_allowed_characters, _value_illegal_characters) */
    {"w3c all value characters",
     {ALL_KEY_CHARS "=" ALL_VALUE_CHARS},
     TRACEHOP_TS_OK,
     ALL_KEY_CHARS "=" ALL_VALUE_CHARS},
    {"w3c all value characters with vendor key",
     {ALL_KEY_CHARS_VENDOR "=" ALL_VALUE_CHARS},
     TRACEHOP_TS_OK,
     ALL_KEY_CHARS_VENDOR "=" ALL_VALUE_CHARS},
    {"w3c equals in value", {"foo=bar=baz"}, TRACEHOP_TS_INVALID, ""},
    {"w3c empty value then valid", {"foo=,bar=3"}, TRACEHOP_TS_INVALID, ""},
    {"empty value", {"foo="}, TRACEHOP_TS_INVALID, ""},
    {"space-only value", {"foo= "}, TRACEHOP_TS_INVALID, ""},
    {"value of 256", {"foo={x*256}"}, TRACEHOP_TS_OK, "foo={x*256}"},
    {"value of 257", {"foo={x*257}"}, TRACEHOP_TS_INVALID, ""},
    {"value of 256 then ows", {"foo={x*256} \t"}, TRACEHOP_TS_OK, "foo={x*256}"},
    {"leading space is part of value", {"foo= 1"}, TRACEHOP_TS_OK, "foo= 1"},
    {"inner space", {"foo=a b"}, TRACEHOP_TS_OK, "foo=a b"},
    {"trailing space is ows", {"foo=a ,bar=b"}, TRACEHOP_TS_OK, "foo=a,bar=b"},
    {"tab inside value", {"foo=a\tb"}, TRACEHOP_TS_INVALID, ""},
    {"DEL in value", {"foo=a\x7f"}, TRACEHOP_TS_INVALID, ""},
    {"byte 0x80 in value", {"foo=a\x80"}, TRACEHOP_TS_INVALID, ""},
    {"control byte in value",
     {"foo=\x01"
      "a"},
     TRACEHOP_TS_INVALID,
     ""},
    {"CR in value", {"foo=a\rb"}, TRACEHOP_TS_INVALID, ""},
    {"bad value in later member", {"foo=1,bar=2,baz=\x7f"}, TRACEHOP_TS_INVALID, ""},

    /* member count (w3c test_tracestate_member_count_limit) */
    {"w3c 32 members over 4 fields",
     {BAR01_10, BAR11_20, BAR21_30, "bar31=31,bar32=32"},
     TRACEHOP_TS_OK,
     BAR01_10 "," BAR11_20 "," BAR21_30 ",bar31=31,bar32=32"},
    {"w3c 33 members over 4 fields",
     {BAR01_10, BAR11_20, BAR21_30, "bar31=31,bar32=32,bar33=33"},
     TRACEHOP_TS_INVALID,
     ""},
    {"33 members in one field",
     {BAR01_10 "," BAR11_20 "," BAR21_30 ",bar31=31,bar32=32,x=1"},
     TRACEHOP_TS_INVALID,
     ""},
    {"31 members and a duplicate",
     {BAR01_10, BAR11_20, BAR21_30, "bar31=31,bar01=99"},
     TRACEHOP_TS_DEDUPLICATED,
     BAR01_10 "," BAR11_20 "," BAR21_30 ",bar31=31"},
    {"32 members and a duplicate are 33",
     {BAR01_10, BAR11_20, BAR21_30, "bar31=31,bar32=32,bar01=99"},
     TRACEHOP_TS_INVALID,
     ""},

    /* truncation to 512 (W3C Level 1 section 3.3.1.5) */
    {"exactly 512 is not truncated", {A0_7 ",b0={x*21}"}, TRACEHOP_TS_OK, A0_7 ",b0={x*21}"},
    {"513 loses the last member", {A0_7 ",b0={x*22}"}, TRACEHOP_TS_TRUNCATED, A0_7},
    {"short members removed from the end", {A0_9}, TRACEHOP_TS_TRUNCATED, A0_7},
    {"from the end across fields",
     {A0_5, M60("a6") "," M60("a7"), M60("a8"), M60("a9")},
     TRACEHOP_TS_TRUNCATED,
     A0_7},
    {"long member first removed before short ones",
     {"l0={x*197}," A0_5},
     TRACEHOP_TS_TRUNCATED,
     A0_5},
    {"long member in the middle removed",
     {M60("a0") "," M60("a1") ",l0={x*197}," M60("a2") "," M60("a3") "," M60("a4") "," M60("a5")},
     TRACEHOP_TS_TRUNCATED,
     A0_5},
    {"long member at the end removed", {A0_6 ",l0={x*197}"}, TRACEHOP_TS_TRUNCATED, A0_6},
    {"member of 128 is not long", {"l0={x*125}," A0_6}, TRACEHOP_TS_TRUNCATED, "l0={x*125}," A0_5},
    {"member of 129 is long", {"l0={x*126}," A0_6}, TRACEHOP_TS_TRUNCATED, A0_6},
    {"member of 513 alone cannot fit", {"a=1,{z*256}={x*256}"}, TRACEHOP_TS_TRUNCATED, "a=1"},
    {"duplicates go before truncation counts",
     {A0_7 ",a0=1,b0={x*21}"},
     TRACEHOP_TS_DEDUPLICATED,
     A0_7 ",b0={x*21}"},
    {"duplicated and truncated is truncated",
     {A0_7 ",a0=1,b0={x*22}"},
     TRACEHOP_TS_TRUNCATED,
     A0_7},
};

/* Call the library on expanded templates in exactly-sized buffers; *out is heap, 513 bytes. */
static enum tracehop_tracestate_status normalize(const char *const *templates, size_t count,
                                                 char **ret_out, size_t *ret_len)
{
    struct tracehop_slice slices[MAX_FIELDS];
    char *out = malloc(TRACEHOP_TRACESTATE_MAX + 1);
    enum tracehop_tracestate_status status;

    ck_assert_uint_le(count, MAX_FIELDS);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < count; i++) {
        size_t len;
        char *expanded = unit_expand(templates[i], &len);

        slices[i].ptr = unit_memdup(expanded, len);
        slices[i].len = len;
        free(expanded);
    }
    memset(out, 'X', TRACEHOP_TRACESTATE_MAX + 1);
    *ret_len = (size_t)-1;
    status = tracehop_tracestate_normalize(slices, count, out, ret_len);
    for (size_t i = 0; i < count; i++)
        free((char *)slices[i].ptr);
    *ret_out = out;
    return status;
}

START_TEST(test_vectors)
{
    const struct vector *vector = &vectors[_i];
    size_t count = 0, len, expect_len;
    enum tracehop_tracestate_status status;
    char *out, *expect;

    while (count < MAX_FIELDS && vector->fields[count] != NULL)
        count++;
    status = normalize(vector->fields, count, &out, &len);
    expect = unit_expand(vector->expect, &expect_len);

    ck_assert_msg(status == vector->status, "%s: status %d, expected %d (output \"%.*s\")",
                  vector->name, (int)status, (int)vector->status,
                  (int)(len <= TRACEHOP_TRACESTATE_MAX ? len : 0), out);
    ck_assert_msg(len <= TRACEHOP_TRACESTATE_MAX, "%s: length %zu", vector->name, len);
    ck_assert_msg(out[len] == '\0', "%s: output not NUL-terminated at %zu", vector->name, len);
    ck_assert_msg(len == expect_len && memcmp(out, expect, len) == 0,
                  "%s: got \"%s\" (%zu), expected \"%s\" (%zu)", vector->name, out, len, expect,
                  expect_len);
    free(expect);
    free(out);
}
END_TEST

/* The value of the "all value characters" vector is exactly the W3C set, nothing more. */
START_TEST(test_all_value_chars_vector_is_complete)
{
    static const char value[] = ALL_VALUE_CHARS;
    size_t n = 0;

    for (int c = 0x20; c <= 0x7e; c++) {
        if (c == ',' || c == '=')
            continue;
        ck_assert_msg(value[n] == c, "vector misses %#x", c);
        n++;
    }
    ck_assert_uint_eq(n, sizeof(value) - 1);
}
END_TEST

struct raw_vector {
    const char *name;
    const char *field;
    size_t len;
    enum tracehop_tracestate_status status;
    const char *expect;
};

/* Values that need their length spelled out: embedded NULs, a length shorter than the text. */
static const struct raw_vector raw_vectors[] = {
    {"NUL after member", V("foo=1\0"), TRACEHOP_TS_INVALID, ""},
    {"NUL inside value", V("foo=a\0b"), TRACEHOP_TS_INVALID, ""},
    {"NUL inside key", V("fo\0o=1"), TRACEHOP_TS_INVALID, ""},
    {"NUL instead of comma", V("foo=1\0bar=2"), TRACEHOP_TS_INVALID, ""},
    {"length cuts after first member", "foo=1,bar=2", 5, TRACEHOP_TS_OK, "foo=1"},
    {"length cuts inside key", "foo=1", 3, TRACEHOP_TS_INVALID, ""},
    {"length cuts after equals", "foo=1", 4, TRACEHOP_TS_INVALID, ""},
    {"length zero", "foo=1", 0, TRACEHOP_TS_ABSENT, ""},
};

START_TEST(test_raw_vectors)
{
    const struct raw_vector *vector = &raw_vectors[_i];
    struct tracehop_slice slice = {unit_memdup(vector->field, vector->len), vector->len};
    char *out = malloc(TRACEHOP_TRACESTATE_MAX + 1);
    enum tracehop_tracestate_status status;
    size_t len = (size_t)-1;

    ck_assert_ptr_nonnull(out);
    memset(out, 'X', TRACEHOP_TRACESTATE_MAX + 1);
    status = tracehop_tracestate_normalize(&slice, 1, out, &len);
    ck_assert_msg(status == vector->status, "%s: status %d", vector->name, (int)status);
    ck_assert_msg(len == strlen(vector->expect) && strcmp(out, vector->expect) == 0,
                  "%s: got \"%.*s\"", vector->name, (int)(len <= 512 ? len : 0), out);
    free((char *)slice.ptr);
    free(out);
}
END_TEST

/*
 * Seeded inputs longer than 512 characters, checked against what section 3.3.1.5 requires of any
 * truncation: the result fits, it is the input's members in their order with some removed, no
 * short member (<= 128) is removed while a long one remains, short members are removed from the
 * end, and no more of them than needed.
 */
#define TRUNCATION_SEEDS 300
#define LONG_MEMBER      128
#define FIELD_MAX        (TRACEHOP_TRACESTATE_MEMBERS_MAX * 300)

struct member {
    char text[300];
    size_t len;
};

static size_t make_member(uint64_t *state, size_t index, struct member *member)
{
    static const char chars[] = "abcxyzABC0123456789 !#$%&'()*+-./:;<>?@[]^_`{|}~";
    bool is_long = unit_prng_next(state) % 4 == 0;
    size_t len = is_long ? 129 + unit_prng_next(state) % 132 /* 129..260 */
                         : 20 + unit_prng_next(state) % 109; /* 20..128 */
    int key_len = snprintf(member->text, sizeof(member->text), "k%02zu=", index);

    ck_assert_int_eq(key_len, 4);
    for (size_t i = 4; i < len; i++)
        member->text[i] = chars[unit_prng_next(state) % (sizeof(chars) - 1)];
    member->text[4] = 'v'; /* no space at the ends of a value: that would be OWS */
    member->text[len - 1] = 'v';
    member->text[len] = '\0';
    member->len = len;
    return len;
}

START_TEST(test_truncation_invariants)
{
    static const char *const separators[] = {",", " ,", ", ", "\t,\t", " \t, \t"};
    uint64_t state = unit_prng_seed(1000 + (uint64_t)_i);
    struct member members[TRACEHOP_TRACESTATE_MEMBERS_MAX];
    bool kept[TRACEHOP_TRACESTATE_MEMBERS_MAX] = {false};
    struct tracehop_slice slices[TRACEHOP_TRACESTATE_MEMBERS_MAX];
    char(*fields)[FIELD_MAX] = calloc(TRACEHOP_TRACESTATE_MEMBERS_MAX, FIELD_MAX);
    size_t count = 0, total = 0, field_count = 0, len = (size_t)-1, next = 0;
    size_t target = 513 + unit_prng_next(&state) % 2000;
    char *out = malloc(TRACEHOP_TRACESTATE_MAX + 1);
    enum tracehop_tracestate_status status;

    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(fields);
    /* Members k00, k01, ... until the combined length passes target (or 32 members). */
    while (count < TRACEHOP_TRACESTATE_MEMBERS_MAX && total < target) {
        total += (count > 0 ? 1 : 0) + make_member(&state, count, &members[count]);
        count++;
    }
    ck_assert_uint_gt(total, TRACEHOP_TRACESTATE_MAX);

    /* Spread them over fields, with random OWS around the commas. */
    for (size_t i = 0; i < count; i++) {
        if (i == 0 || unit_prng_next(&state) % 4 == 0) {
            fields[field_count][0] = '\0';
            field_count++;
        } else {
            strcat(fields[field_count - 1],
                   separators[unit_prng_next(&state) % ARRAY_SIZE(separators)]);
        }
        ck_assert_uint_lt(strlen(fields[field_count - 1]) + members[i].len, FIELD_MAX);
        strcat(fields[field_count - 1], members[i].text);
    }
    for (size_t f = 0; f < field_count; f++) {
        slices[f].len = strlen(fields[f]);
        slices[f].ptr = unit_memdup(fields[f], slices[f].len);
    }

    memset(out, 'X', TRACEHOP_TRACESTATE_MAX + 1);
    status = tracehop_tracestate_normalize(slices, field_count, out, &len);
    ck_assert_int_eq(status, TRACEHOP_TS_TRUNCATED);
    ck_assert_uint_le(len, TRACEHOP_TRACESTATE_MAX);
    ck_assert_int_eq(out[len], '\0');
    ck_assert_uint_eq(strlen(out), len);

    /* The output's members are a subsequence of the input's, in order. */
    for (char *member = out; len > 0 && member != NULL;) {
        char *comma = strchr(member, ',');
        size_t member_len = comma != NULL ? (size_t)(comma - member) : strlen(member);

        while (next < count && !(members[next].len == member_len &&
                                 memcmp(members[next].text, member, member_len) == 0))
            next++;
        ck_assert_msg(next < count, "seed %d: output member \"%.*s\" out of order or unknown", _i,
                      (int)member_len, member);
        kept[next++] = true;
        member = comma != NULL ? comma + 1 : NULL;
    }

    size_t first_removed_short = count;
    for (size_t i = 0; i < count; i++) {
        bool is_long = members[i].len > LONG_MEMBER;

        if (!is_long && !kept[i] && first_removed_short == count)
            first_removed_short = i;
        if (!is_long && kept[i])
            ck_assert_msg(first_removed_short == count,
                          "seed %d: short member k%02zu kept after k%02zu was removed", _i, i,
                          first_removed_short);
    }
    if (first_removed_short < count) {
        size_t with_it = (len > 0 ? len + 1 : 0) + members[first_removed_short].len;

        for (size_t i = 0; i < count; i++)
            ck_assert_msg(!(kept[i] && members[i].len > LONG_MEMBER),
                          "seed %d: long member k%02zu (%zu chars) kept, short k%02zu removed", _i,
                          i, members[i].len, first_removed_short);
        ck_assert_msg(with_it > TRACEHOP_TRACESTATE_MAX,
                      "seed %d: k%02zu removed although it fits (%zu chars)", _i,
                      first_removed_short, with_it);
    }

    for (size_t f = 0; f < field_count; f++)
        free((char *)slices[f].ptr);
    free(fields);
    free(out);
}
END_TEST

static Suite *tracestate_suite(void)
{
    Suite *suite = suite_create("tracestate");
    TCase *grammar = tcase_create("normalize");
    TCase *truncation = tcase_create("truncation");

    tcase_add_loop_test(grammar, test_vectors, 0, (int)ARRAY_SIZE(vectors));
    tcase_add_test(grammar, test_all_value_chars_vector_is_complete);
    tcase_add_loop_test(grammar, test_raw_vectors, 0, (int)ARRAY_SIZE(raw_vectors));
    suite_add_tcase(suite, grammar);

    tcase_add_loop_test(truncation, test_truncation_invariants, 0, TRUNCATION_SEEDS);
    suite_add_tcase(suite, truncation);
    return suite;
}

int main(void)
{
    return unit_run(tracestate_suite());
}
