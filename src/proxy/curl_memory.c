/* SPDX-License-Identifier: MIT */
/*
 * libcurl's allocator with the emergency reserve (the why is in curl_memory.h): every wrapper
 * tries the allocation, and on failure releases the reserve once and tries again.
 */
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/curl_memory.h"

static _Atomic(void *) reserve;
static atomic_bool spent;
static atomic_ulong releases;

/* Free the reserve if it is still there. */
static void release_reserve(void)
{
    void *block = atomic_exchange(&reserve, NULL);
    if (!block)
        return;
    free(block);
    atomic_store(&spent, true);
    atomic_fetch_add(&releases, 1);
}

static void *curl_memory_malloc(size_t size)
{
    void *p = malloc(size);
    if (!p) {
        release_reserve();
        p = malloc(size); /* the reserve, or what another thread freed meanwhile */
    }
    return p;
}

static void *curl_memory_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) {
        release_reserve();
        p = calloc(n, size);
    }
    return p;
}

static void *curl_memory_realloc(void *old, size_t size)
{
    void *p = realloc(old, size);
    if (!p && size > 0) {
        release_reserve();
        p = realloc(old, size);
    }
    return p;
}

static char *curl_memory_strdup(const char *s)
{
    char *p = strdup(s);
    if (!p) {
        release_reserve();
        p = strdup(s);
    }
    return p;
}

int curl_memory_global_init(void)
{
    void *block = malloc(CURL_MEMORY_RESERVE);
    if (!block)
        return -1;
    atomic_store(&reserve, block);
    return curl_global_init_mem(CURL_GLOBAL_DEFAULT, curl_memory_malloc, free, curl_memory_realloc,
                                curl_memory_strdup, curl_memory_calloc) == CURLE_OK
               ? 0
               : -1;
}

bool curl_memory_reserve_spent(void)
{
    return atomic_load_explicit(&spent, memory_order_relaxed);
}

bool curl_memory_refill(void)
{
    if (!atomic_load_explicit(&spent, memory_order_relaxed))
        return false;
    void *block = malloc(CURL_MEMORY_RESERVE);
    void *expected = NULL;
    if (!block)
        return false;
    if (!atomic_compare_exchange_strong(&reserve, &expected, block)) {
        free(block); /* another worker was first */
        return false;
    }
    atomic_store(&spent, false);
    return true;
}

unsigned long curl_memory_releases(void)
{
    return atomic_load(&releases);
}
