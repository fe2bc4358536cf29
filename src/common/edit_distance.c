/* SPDX-License-Identifier: MIT */
/*
 * Optimal string alignment distance (common/edit_distance.h) with one row per character of the
 * shorter prefix kept: three rows of EDIT_DISTANCE_MAX_LEN + 1 on the stack, because a swap of
 * two neighbours looks two rows back. Words are short (names of keys and flags), so the
 * quadratic table costs nothing.
 */
#include <ctype.h>
#include <string.h>

#include "common/edit_distance.h"

static size_t min3(size_t a, size_t b, size_t c)
{
    size_t m = a < b ? a : b;
    return m < c ? m : c;
}

static int fold(char c)
{
    return tolower((unsigned char)c);
}

size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t rows[3][EDIT_DISTANCE_MAX_LEN + 1];

    if (la > EDIT_DISTANCE_MAX_LEN || lb > EDIT_DISTANCE_MAX_LEN)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *cur = rows[i % 3], *prev = rows[(i - 1) % 3], *prev2 = rows[(i + 1) % 3];
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = fold(a[i - 1]) == fold(b[j - 1]) ? 0 : 1;
            cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) &&
                fold(a[i - 2]) == fold(b[j - 1]) && prev2[j - 2] + 1 < cur[j])
                cur[j] = prev2[j - 2] + 1;
        }
    }
    return rows[la % 3][lb];
}

const char *edit_distance_closest(const char *word, const char *const *names, size_t n)
{
    size_t len = strlen(word);
    size_t allowed = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    const char *best = NULL;
    size_t best_distance = allowed + 1;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(word, names[i]) == 0)
            return NULL;
        size_t d = edit_distance(word, names[i]);
        if (d < best_distance) {
            best = names[i];
            best_distance = d;
        }
    }
    return best;
}
