/* SPDX-License-Identifier: MIT */
/*
 * Blocks double from the first size up; a request with unusually many headers pays a few
 * mallocs, a normal one none after its first use.
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"

struct arena_block {
    struct arena_block *next;
    size_t size;
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

void arena_init(struct arena *a, size_t first_block_size)
{
    a->head = NULL;
    a->first_block_size = first_block_size;
}

static struct arena_block *block_new(size_t size, struct arena_block *next)
{
    struct arena_block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->next = next;
    b->size = size;
    b->used = 0;
    return b;
}

void *arena_alloc(struct arena *a, size_t n)
{
    size_t aligned = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    struct arena_block *b = a->head;

    if (aligned < n)
        return NULL;
    if (!b || b->size - b->used < aligned) {
        size_t size = b ? b->size * 2 : a->first_block_size;
        if (aligned > SIZE_MAX / 4)
            return NULL; /* no block could hold it; and doubling would overflow */
        while (size < aligned)
            size *= 2;
        b = block_new(size, a->head);
        if (!b)
            return NULL;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += aligned;
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void arena_reset(struct arena *a)
{
    struct arena_block *b = a->head;
    if (!b)
        return;
    while (b->next) { /* the oldest block is the first, smallest one: keep it */
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    b->used = 0;
    a->head = b;
}

void arena_free(struct arena *a)
{
    struct arena_block *b = a->head;
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}
