/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A set of short byte strings (trace ids, X-Trace-ID values, line positions), for the
 * trace-selection and de-duplication of `tracehop logs`. Open addressing with linear probing;
 * keys are copied. Zero-initialise a set before use.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct log_idset_entry;

struct log_idset {
    struct log_idset_entry *slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
};

/* Add key[0..len). Returns 1 if it was added, 0 if it was there, -ENOMEM. */
int log_idset_add(struct log_idset *s, const void *key, size_t len);

/* Whether key[0..len) is in the set. */
bool log_idset_contains(const struct log_idset *s, const void *key, size_t len);

/* Free everything; the set is empty and reusable afterwards. */
void log_idset_free(struct log_idset *s);
