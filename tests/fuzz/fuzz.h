/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Shared pieces of the tracectx fuzz targets.
 *
 * Every target defines LLVMFuzzerTestOneInput. The prototype lives here so that the targets build
 * with -Wmissing-prototypes, and so that fuzz-replay.c (the driver that runs the committed corpus
 * as an ordinary test) and libFuzzer see the same declaration.
 *
 * Invariants are checked with FUZZ_CHECK, which prints the failed expression and calls abort():
 * unlike assert() it does not disappear under NDEBUG, so a release build of the replay tests
 * still checks everything. Inputs are copied into exactly-sized heap blocks (fuzz_memdup) so
 * that AddressSanitizer sees any read past the end of a length-delimited value.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((noreturn)) static inline void fuzz_fail(const char *file, int line,
                                                       const char *expression)
{
    fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, expression);
    abort();
}

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition))                                                                          \
            fuzz_fail(__FILE__, __LINE__, #condition);                                             \
    } while (0)

/*
 * A copy of `size` bytes in a heap block of exactly that size (no NUL added). The caller frees
 * it. Aborts on allocation failure: a fuzz run has nothing better to do.
 */
static inline char *fuzz_memdup(const void *data, size_t size)
{
    char *copy = malloc(size);

    if (!copy && size > 0)
        abort();
    if (!copy)
        copy = malloc(1); /* malloc(0) may return NULL; the library gets a valid pointer */
    if (!copy)
        abort();
    if (size > 0)
        memcpy(copy, data, size);
    return copy;
}

/* Optional whitespace as RFC 9110 and W3C Trace Context define it: space or horizontal tab. */
static inline bool fuzz_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Narrow [*begin, *begin + *len) to drop leading and trailing OWS. */
static inline void fuzz_trim_ows(const char **begin, size_t *len)
{
    while (*len > 0 && fuzz_is_ows((*begin)[0])) {
        (*begin)++;
        (*len)--;
    }
    while (*len > 0 && fuzz_is_ows((*begin)[*len - 1]))
        (*len)--;
}

static inline bool fuzz_is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static inline bool fuzz_is_all_zero(const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bytes[i] != 0)
            return false;
    return true;
}
