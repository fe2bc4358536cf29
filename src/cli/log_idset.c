/* SPDX-License-Identifier: MIT */
/*
 * Byte-string hash set (contracts in log_idset.h). FNV-1a is enough: keys are ids that other
 * programs chose, so a hostile log could at worst make probing slow, never wrong, and the sets
 * of one trace stay small. The table doubles at 50% load; keys are copied so that records can
 * be freed independently of the set.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/log_idset.h"

struct log_idset_entry {
    uint64_t hash;
    char *key; /* NULL: empty slot */
    size_t len;
};

static uint64_t hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static struct log_idset_entry *find(const struct log_idset *s, uint64_t hash, const void *key,
                                    size_t len)
{
    size_t mask = s->cap - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        struct log_idset_entry *e = &s->slots[i];
        if (!e->key || (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0))
            return e;
    }
}

static int grow(struct log_idset *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    struct log_idset bigger = {calloc(cap, sizeof(struct log_idset_entry)), cap, s->count};

    if (!bigger.slots)
        return -ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        struct log_idset_entry *e = &s->slots[i];
        if (e->key)
            *find(&bigger, e->hash, e->key, e->len) = *e;
    }
    free(s->slots);
    *s = bigger;
    return 0;
}

int log_idset_add(struct log_idset *s, const void *key, size_t len)
{
    uint64_t hash = hash_bytes(key, len);

    if ((s->count + 1) * 2 > s->cap && grow(s) < 0)
        return -ENOMEM;
    struct log_idset_entry *e = find(s, hash, key, len);
    if (e->key)
        return 0;
    e->key = malloc(len ? len : 1);
    if (!e->key)
        return -ENOMEM;
    memcpy(e->key, key, len);
    e->hash = hash;
    e->len = len;
    s->count++;
    return 1;
}

bool log_idset_contains(const struct log_idset *s, const void *key, size_t len)
{
    if (s->count == 0)
        return false;
    return find(s, hash_bytes(key, len), key, len)->key != NULL;
}

void log_idset_free(struct log_idset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i].key);
    free(s->slots);
    *s = (struct log_idset){0};
}
