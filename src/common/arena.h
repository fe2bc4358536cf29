/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A per-request bump allocator: everything a request copies (header lines for curl, the
 * upstream's response headers, log fields) comes from here and is released at once when the
 * request ends. The first block is kept across requests, so a pooled request allocates nothing
 * in the common case.
 */
#include <stddef.h>

struct arena_block;

struct arena {
    struct arena_block *head; /* current block; older ones follow */
    size_t first_block_size;
};

void arena_init(struct arena *a, size_t first_block_size);
/* n bytes aligned for any object, or NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t n);
/* Copy of s[0..n) plus a NUL, or NULL when out of memory. */
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Release everything but the first block. */
void arena_reset(struct arena *a);
/* Release everything. Accepts an initialised, empty arena. */
void arena_free(struct arena *a);
