/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * "Did you mean": the closest of a few known names to one the user mistyped (a config key, a
 * TRACEHOP_* variable, a command-line option). The distance is the number of single-character
 * insertions, deletions, substitutions and swaps of two neighbours (optimal string alignment),
 * letters compared without case. Pure; no allocation.
 */
#include <stddef.h>

#define EDIT_DISTANCE_MAX_LEN 64 /* longer words are never close to anything */

/* The distance between a and b, or (size_t)-1 when either is longer than EDIT_DISTANCE_MAX_LEN. */
size_t edit_distance(const char *a, const char *b);

/*
 * Of the n names, the one closest to word, if it is close enough to be a likely typo: at most
 * 1 edit for words of up to 4 characters, 2 up to 8, 3 beyond; ties go to the earlier name.
 * NULL when none is, or when word is one of the names.
 */
const char *edit_distance_closest(const char *word, const char *const *names, size_t n);
