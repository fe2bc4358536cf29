/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Small pieces shared by the tracectx unit tests (one Check binary per module).
 *
 * The library takes length-delimited inputs, so every vector is copied into a heap block of
 * exactly its length (unit_memdup, no NUL added): under AddressSanitizer or valgrind a read past
 * the end of a value is then an error rather than a silent read of the literal's NUL.
 *
 * Long vectors are written as templates: "{c*N}" stands for N copies of the character c, so a
 * table can say "{z*257}=1" instead of spelling out 257 letters. Nothing else is special; "{" and
 * "}" that are not part of that exact pattern are copied as they are (tracestate values may
 * contain braces).
 *
 * Helpers are static inline so that each test includes only what it uses without tripping
 * -Wunused-function, and never call the library: an expectation must not be computed by the
 * code under test.
 */

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A string literal and its length, embedded NULs included: `V("a\0b")` is ("a\0b", 3). */
#define V(literal) (literal), (sizeof(literal) - 1)

#define ARRAY_SIZE(array) (sizeof(array) / sizeof((array)[0]))

/* A copy of `len` bytes in a heap block of exactly that size (at least 1 byte is allocated). */
static inline char *unit_memdup(const char *src, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);

    ck_assert_ptr_nonnull(copy);
    if (len > 0)
        memcpy(copy, src, len);
    return copy;
}

/*
 * Expand a template (see the top of this file) into a new NUL-terminated heap string; its length
 * goes to *ret_len when ret_len is not NULL. The caller frees it.
 */
static inline char *unit_expand(const char *template_text, size_t *ret_len)
{
    size_t cap = 64, len = 0;
    char *out = malloc(cap);

    ck_assert_ptr_nonnull(out);
    for (const char *p = template_text; *p != '\0';) {
        char fill = *p;
        size_t count = 1;
        const char *next = p + 1;

        if (p[0] == '{' && p[1] != '\0' && p[2] == '*' && p[3] >= '0' && p[3] <= '9') {
            const char *digit = p + 3;
            size_t n = 0;

            while (*digit >= '0' && *digit <= '9')
                n = n * 10 + (size_t)(*digit++ - '0');
            if (*digit == '}') {
                fill = p[1];
                count = n;
                next = digit + 1;
            }
        }
        while (len + count + 1 > cap) {
            cap *= 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
        memset(out + len, fill, count);
        len += count;
        p = next;
    }
    out[len] = '\0';
    if (ret_len != NULL)
        *ret_len = len;
    return out;
}

static inline int unit_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode 2n hex digits (any case) into n bytes; the test's own decoder, not the library's. */
static inline void unit_hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
    ck_assert_uint_eq(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        int high = unit_hex_digit(hex[2 * i]), low = unit_hex_digit(hex[2 * i + 1]);

        ck_assert_msg(high >= 0 && low >= 0, "bad hex in test vector: %s", hex);
        out[i] = (uint8_t)(high << 4 | low);
    }
}

/* Bytes of a UUID written 8-4-4-4-12 (any case), decoded by the test itself. */
static inline void unit_uuid_to_bytes(const char *uuid, uint8_t out[16])
{
    char hex[33];
    size_t n = 0;

    for (const char *p = uuid; *p != '\0'; p++) {
        if (*p == '-')
            continue;
        ck_assert_uint_lt(n, 32);
        hex[n++] = *p;
    }
    hex[n] = '\0';
    unit_hex_to_bytes(hex, out, 16);
}

static inline bool unit_is_zero(const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bytes[i] != 0)
            return false;
    return true;
}

/* Whether buf[0..len) is a lowercase 8-4-4-4-12 UUID. */
static inline bool unit_is_lower_uuid(const char *buf, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? buf[i] != '-'
                 : !((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f')))
            return false;
    }
    return true;
}

/*
 * A deterministic generator for test inputs (xorshift64*), so that a failing vector can be
 * reproduced; it is not the library's CSPRNG and is never used to judge randomness.
 */
static inline uint64_t unit_prng_next(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

static inline uint64_t unit_prng_seed(uint64_t seed)
{
    return seed * UINT64_C(0x9e3779b97f4a7c15) + UINT64_C(0x2545f4914f6cdd1d);
}

static inline void unit_prng_fill(uint64_t *state, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(unit_prng_next(state) >> 32);
}

/* Run one suite with the usual Check environment (CK_FORK, CK_VERBOSITY, ...). */
static inline int unit_run(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    int failed;

    srunner_run_all(runner, CK_ENV);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
