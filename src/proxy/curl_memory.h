/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * libcurl's memory, with an emergency reserve.
 *
 * libcurl 7.88 (Debian 12) does not survive every failed allocation: when adding a transfer to
 * its per-socket hash fails, it destroys that hash but keeps the socket's entry, and the next
 * lookup divides by the hash's zero slot count (SIGFPE, found by test-resources with
 * allocation failures injected). tracehop therefore gives libcurl its allocator through
 * curl_global_init_mem: an allocation that fails releases a reserve (CURL_MEMORY_RESERVE
 * bytes taken at start) and is tried once more, so that libcurl sees a failure only when the
 * process is really out of memory. Workers take the reserve back in their housekeeping tick once
 * memory allows.
 */
#include <stdbool.h>
#include <stddef.h>

#define CURL_MEMORY_RESERVE (4u * 1024 * 1024)

/* curl_global_init_mem with the wrappers, after taking the reserve. Returns 0 or -1. */
int curl_memory_global_init(void);
/* Whether the reserve is spent (released, not yet taken back). */
bool curl_memory_reserve_spent(void);
/* Try to take the reserve back if it was released; returns true if it was, just now. Cheap
 * when there is nothing to do; safe from any thread. */
bool curl_memory_refill(void);
/* How many times the reserve was released since start. */
unsigned long curl_memory_releases(void);
