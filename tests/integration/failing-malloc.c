/* SPDX-License-Identifier: MIT */
/*
 * failing-malloc: an LD_PRELOAD shim that makes a share of the allocations of the process it is
 * loaded into fail (return NULL with errno ENOMEM), for the allocation-failure tests of
 * test-resources.c. Nothing else changes: free() is glibc's own, and the allocations that are
 * let through come from glibc's allocator (__libc_malloc and friends, so no dlsym, which may
 * itself allocate).
 *
 * Controlled from the outside while the process runs, through a small file:
 *   FAILING_MALLOC_CONTROL=PATH   the file holds the failure rate in parts per million as a
 *                                 decimal number; a missing or empty file, or 0: no failures.
 *                                 Re-read at most every 10 ms (CLOCK_MONOTONIC_COARSE), so a
 *                                 test turns the pressure on and off by rewriting it.
 *   FAILING_MALLOC_REPORT=PATH    (optional) when a re-read finds the rate or the count of
 *                                 failed allocations changed, the shim appends a JSON line
 *                                 {"ppm": "<rate>", "seen": N, "failed": N} (seen: allocations
 *                                 made under pressure), so that a test can wait until the shim
 *                                 took a new rate and tell that failures were really injected.
 * Which allocations fail is random (a per-thread xorshift), so every path that allocates gets its
 * turn over a run. Only malloc, calloc, realloc (to a non-zero size), posix_memalign,
 * aligned_alloc and memalign are wrapped; mmap and the stack are not.
 *
 * Not for sanitizer or valgrind builds: both replace the allocator themselves (the test skips
 * its allocation-failure part there and says so).
 */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* glibc's allocator under its internal names (exported by every glibc since 2.0). */
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void *__libc_memalign(size_t alignment, size_t size);

#define RECHECK_NS 10000000ll /* 10 ms */

static _Atomic long long next_check_ns;
static _Atomic unsigned rate_ppm;
static _Atomic unsigned long long seen, failed, reported_failed = ~0ull;
static _Atomic unsigned reported_ppm = ~0u;
static _Atomic int checking;
static _Thread_local uint64_t rng;
static _Thread_local bool in_backtrace;

static long long coarse_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Re-read the control file (no allocation: open/read/close only). */
static void refresh(long long now)
{
    const char *control = getenv("FAILING_MALLOC_CONTROL");
    const char *report = getenv("FAILING_MALLOC_REPORT");
    unsigned ppm = 0;

    atomic_store(&next_check_ns, now + RECHECK_NS);
    if (control) {
        int fd = open(control, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char buf[32];
            ssize_t n = read(fd, buf, sizeof(buf) - 1);
            close(fd);
            for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
                ppm = ppm * 10 + (unsigned)(buf[i] - '0');
        }
    }
    if (ppm > 1000000)
        ppm = 1000000;
    atomic_store(&rate_ppm, ppm);
    unsigned long long f = atomic_load(&failed);
    bool failed_changed = atomic_exchange(&reported_failed, f) != f;
    bool ppm_changed = atomic_exchange(&reported_ppm, ppm) != ppm;
    if (report && (failed_changed || ppm_changed)) {
        char line[128];
        int len =
            snprintf(line, sizeof(line), "{\"ppm\": \"%u\", \"seen\": %llu, \"failed\": %llu}\n",
                     ppm, atomic_load(&seen), f);
        int fd = open(report, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, line, (size_t)len);
            (void)w;
            close(fd);
        }
    }
}

/* Should this allocation fail? Sets errno when it should. */
static int should_fail(void)
{
    long long now = coarse_now_ns();
    if (now >= atomic_load_explicit(&next_check_ns, memory_order_relaxed) &&
        !atomic_exchange(&checking, 1)) {
        refresh(now);
        atomic_store(&checking, 0);
    }
    unsigned ppm = atomic_load_explicit(&rate_ppm, memory_order_relaxed);
    if (ppm == 0 || in_backtrace)
        return 0;
    atomic_fetch_add_explicit(&seen, 1, memory_order_relaxed);
    if (rng == 0)
        rng = (((uint64_t)(uintptr_t)&rng * 0x9e3779b97f4a7c15ull) ^ (uint64_t)now) | 1;
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    if (rng % 1000000 >= ppm)
        return 0;
    atomic_fetch_add_explicit(&failed, 1, memory_order_relaxed);
    if (getenv("FAILING_MALLOC_BACKTRACE")) { /* debugging: where each failure was injected */
        void *frames[24];
        in_backtrace = true;
        int n = backtrace(frames, 24);
        ssize_t w = write(2, "failing-malloc: failed here\n", 28);
        (void)w;
        backtrace_symbols_fd(frames, n, 2);
        in_backtrace = false;
    }
    errno = ENOMEM;
    return 1;
}

void *malloc(size_t size)
{
    return should_fail() ? NULL : __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __libc_calloc(n, size);
}

void *realloc(void *ptr, size_t size)
{
    if (ptr && size == 0)
        return __libc_realloc(ptr, size); /* a free */
    return should_fail() ? NULL : __libc_realloc(ptr, size);
}

void *memalign(size_t alignment, size_t size)
{
    return should_fail() ? NULL : __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size)
{
    return should_fail() ? NULL : __libc_memalign(alignment, size);
}

int posix_memalign(void **ret, size_t alignment, size_t size)
{
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0)
        return EINVAL;
    if (should_fail())
        return ENOMEM;
    void *p = __libc_memalign(alignment, size);
    if (!p)
        return ENOMEM;
    *ret = p;
    return 0;
}
