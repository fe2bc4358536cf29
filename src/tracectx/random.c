/* SPDX-License-Identifier: MIT */
/*
 * Random ids from the kernel CSPRNG. One getrandom() per 4 KiB of ids instead of one per id: a
 * small request needs 24-40 random bytes, so the system call is amortised over ~100 requests.
 * The buffer is thread-local, so worker threads never share or lock it, and every byte handed out
 * is wiped from the buffer so a later memory disclosure cannot reveal ids already used.
 *
 * fork() safety: a child would replay its parent's buffer. tracehop never forks after start, but
 * a pthread_atfork handler empties the (only surviving) thread's buffer in the child anyway,
 * because duplicated trace ids are silent corruption. It costs nothing per id, unlike getpid().
 */
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/random.h>
#include <pthread.h>

#include "tracehop/tracectx.h"
#include "bytes.h"

#define RANDOM_POOL_SIZE 4096

struct random_pool {
    uint8_t bytes[RANDOM_POOL_SIZE];
    size_t used; /* bytes[0..used) are consumed */
};

static _Thread_local struct random_pool pool = {.used = RANDOM_POOL_SIZE};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    explicit_bzero(pool.bytes, sizeof(pool.bytes));
    pool.used = RANDOM_POOL_SIZE;
}

static void register_atfork(void)
{
    if (pthread_atfork(NULL, NULL, on_fork_child) != 0)
        abort();
}

static void random_pool_refill(void)
{
    size_t filled = 0;

    pthread_once(&atfork_once, register_atfork);
    while (filled < RANDOM_POOL_SIZE) {
        ssize_t n = getrandom(pool.bytes + filled, RANDOM_POOL_SIZE - filled, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            abort(); /* no CSPRNG: refusing to hand out predictable ids */
        }
        filled += (size_t)n;
    }
    pool.used = 0;
}

static void random_bytes(uint8_t *out, size_t n)
{
    if (pool.used + n > RANDOM_POOL_SIZE)
        random_pool_refill();
    memcpy(out, pool.bytes + pool.used, n);
    memset(pool.bytes + pool.used, 0, n);
    pool.used += n;
}

void tracehop_random_trace_id(uint8_t out[TRACEHOP_TRACE_ID_SIZE])
{
    do
        random_bytes(out, TRACEHOP_TRACE_ID_SIZE);
    while (tracectx_is_all_zero(out, TRACEHOP_TRACE_ID_SIZE));
}

void tracehop_random_span_id(uint8_t out[TRACEHOP_SPAN_ID_SIZE])
{
    do
        random_bytes(out, TRACEHOP_SPAN_ID_SIZE);
    while (tracectx_is_all_zero(out, TRACEHOP_SPAN_ID_SIZE));
}

void tracehop_random_uuid_v4(uint8_t out[TRACEHOP_TRACE_ID_SIZE])
{
    random_bytes(out, TRACEHOP_TRACE_ID_SIZE);
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x40); /* version 4 */
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* variant 10xx: never all-zero */
}
