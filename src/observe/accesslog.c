/* SPDX-License-Identifier: MIT */
/*
 * Double-buffered writer. Producers copy a line into the front buffer under a mutex (a memcpy
 * of ~500 bytes, so the lock is held for well under a microsecond); the writer swaps the buffers
 * and writes the back one with as few write(2) calls as the kernel allows. After the first line
 * of a batch arrives, the writer lingers up to LINGER_MS (or until the buffer is half full)
 * before writing: at thousands of requests per second that turns one wake-up and one write(2)
 * per request into one per batch, which is the cheap win nginx's `buffer=` shows. Lines are copied
 * whole or not at all, so a line is never torn, and lines from different workers never interleave.
 *
 * Loss is never silent: a line that finds the buffer full is counted in `dropped`; the writer
 * reports the count on stderr after its next successful write.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "observe/accesslog.h"
#include "common/diag.h"

#define LINGER_MS     10
#define CLOSE_GRACE_S 5 /* how long a shutdown waits for a sink that takes nothing */

enum writer_state { WRITER_IDLE, WRITER_LINGERING, WRITER_WRITING };

struct accesslog {
    char *path; /* NULL for stdout */
    int fd;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t drained;
    char *front, *back;
    size_t cap;
    size_t front_len;
    enum writer_state writer_state;
    bool stopping;

    atomic_bool reopen_requested;
    atomic_bool abandon; /* shutdown with a stuck sink: give up on what it does not take */
    bool writer_done;
    pthread_t writer;

    atomic_uint_fast64_t written;
    atomic_uint_fast64_t dropped;
    atomic_uint_fast64_t write_errors;
    uint64_t dropped_reported;
};

static int open_log_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static size_t count_lines(const char *p, size_t n)
{
    size_t lines = 0;
    for (const char *q = p; (q = memchr(q, '\n', (size_t)(p + n - q))); q++)
        lines++;
    return lines;
}

/* Whether writes to fd can block for long: pipes, FIFOs, sockets, terminals. */
static bool fd_may_block(int fd)
{
    struct stat st;
    return fstat(fd, &st) < 0 || !S_ISREG(st.st_mode);
}

/*
 * Write all of p, retrying short writes; a hard error loses the rest, and is counted. To a pipe
 * or socket it waits for POLLOUT and writes at most PIPE_BUF bytes at a time, so that it never
 * blocks inside write(2): a sink that stops reading can then be abandoned at shutdown
 * (accesslog_close), with the lines it did not take counted as dropped.
 */
static void write_all(struct accesslog *log, const char *p, size_t n)
{
    size_t lines = count_lines(p, n);
    bool may_block = fd_may_block(log->fd);

    while (n > 0) {
        if (may_block) {
            struct pollfd pfd = {.fd = log->fd, .events = POLLOUT};
            int ready = poll(&pfd, 1, 200);
            if (ready < 0 && errno != EINTR)
                goto lose;
            if (ready <= 0) {
                if (atomic_load(&log->abandon))
                    goto lose;
                continue;
            }
        }
        size_t chunk = may_block && n > PIPE_BUF ? PIPE_BUF : n;
        ssize_t w = write(log->fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) { /* a non-blocking stdout: poll() above waits */
                if (!may_block) {
                    struct timespec ms = {0, 1000000};
                    nanosleep(&ms, NULL);
                }
                continue;
            }
            atomic_fetch_add(&log->write_errors, 1);
            goto lose;
        }
        p += w;
        n -= (size_t)w;
    }
    atomic_fetch_add(&log->written, lines);
    return;
lose:;
    size_t lost = count_lines(p, n);
    atomic_fetch_add(&log->dropped, lost);
    atomic_fetch_add(&log->written, lines - lost);
}

void accesslog_count_lost(struct accesslog *log)
{
    atomic_fetch_add(&log->dropped, 1);
}

static void reopen_if_requested(struct accesslog *log)
{
    if (!atomic_exchange(&log->reopen_requested, false) || !log->path)
        return;
    int fd = open_log_file(log->path);
    if (fd < 0) {
        diag(DIAG_ERROR, "access log: cannot reopen %s: %s; still writing to the old file",
             log->path, strerror(errno));
        return;
    }
    close(log->fd);
    log->fd = fd;
    diag(DIAG_INFO, "access log: reopened %s", log->path);
}

static void *writer_main(void *arg)
{
    struct accesslog *log = arg;

    pthread_mutex_lock(&log->lock);
    for (;;) {
        while (log->front_len == 0 && !log->stopping && !atomic_load(&log->reopen_requested)) {
            log->writer_state = WRITER_IDLE;
            pthread_cond_broadcast(&log->drained);
            pthread_cond_wait(&log->wake, &log->lock);
        }
        if (log->front_len == 0 && log->stopping)
            break;
        if (!log->stopping && log->front_len < log->cap / 2) {
            struct timespec deadline;
            clock_gettime(CLOCK_MONOTONIC, &deadline);
            deadline.tv_nsec += LINGER_MS * 1000000L;
            if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
            }
            log->writer_state = WRITER_LINGERING;
            while (!log->stopping && log->front_len < log->cap / 2 &&
                   pthread_cond_timedwait(&log->wake, &log->lock, &deadline) != ETIMEDOUT)
                ;
        }
        log->writer_state = WRITER_WRITING;
        char *batch = log->front;
        size_t len = log->front_len;
        log->front = log->back;
        log->back = batch;
        log->front_len = 0;
        pthread_mutex_unlock(&log->lock);

        reopen_if_requested(log);
        if (len > 0)
            write_all(log, batch, len);
        uint64_t dropped = atomic_load(&log->dropped);
        if (dropped != log->dropped_reported) {
            diag(DIAG_WARN, "access log: %llu lines dropped so far (sink too slow or failing)",
                 (unsigned long long)dropped);
            log->dropped_reported = dropped;
        }
        pthread_mutex_lock(&log->lock);
    }
    log->writer_done = true;
    pthread_cond_broadcast(&log->drained);
    pthread_mutex_unlock(&log->lock);
    return NULL;
}

int accesslog_open(const char *path, size_t buffer_bytes, struct accesslog **ret)
{
    struct accesslog *log = calloc(1, sizeof(*log));
    int rc;

    if (!log)
        return -ENOMEM;
    log->fd = -1;
    log->cap = buffer_bytes;
    log->front = malloc(buffer_bytes);
    log->back = malloc(buffer_bytes);
    if (!log->front || !log->back) {
        rc = -ENOMEM;
        goto fail;
    }
    if (strcmp(path, "-") == 0) {
        log->fd = STDOUT_FILENO;
    } else {
        log->path = strdup(path);
        if (!log->path) {
            rc = -ENOMEM;
            goto fail;
        }
        log->fd = open_log_file(path);
        if (log->fd < 0) {
            rc = -errno;
            goto fail;
        }
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&log->lock, NULL);
    pthread_cond_init(&log->wake, &attr);
    pthread_cond_init(&log->drained, &attr);
    pthread_condattr_destroy(&attr);

    /* The writer must not take process signals: they belong to the main thread's sigwait. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&log->writer, NULL, writer_main, log);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0)
        goto fail;
    *ret = log;
    return 0;
fail:
    if (log->fd > STDOUT_FILENO)
        close(log->fd);
    free(log->path);
    free(log->front);
    free(log->back);
    free(log);
    return rc;
}

void accesslog_submit(struct accesslog *log, const char *line, size_t len)
{
    pthread_mutex_lock(&log->lock);
    if (log->front_len + len > log->cap) {
        pthread_mutex_unlock(&log->lock);
        atomic_fetch_add(&log->dropped, 1);
        return;
    }
    memcpy(log->front + log->front_len, line, len);
    log->front_len += len;
    bool wake = log->writer_state == WRITER_IDLE ||
                (log->writer_state == WRITER_LINGERING && log->front_len >= log->cap / 2);
    pthread_mutex_unlock(&log->lock);
    if (wake)
        pthread_cond_signal(&log->wake);
}

void accesslog_request_reopen(struct accesslog *log)
{
    atomic_store(&log->reopen_requested, true);
    pthread_mutex_lock(&log->lock);
    pthread_cond_signal(&log->wake);
    pthread_mutex_unlock(&log->lock);
}

struct accesslog *accesslog_close(struct accesslog *log)
{
    if (!log)
        return NULL;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += CLOSE_GRACE_S;
    pthread_mutex_lock(&log->lock);
    log->stopping = true;
    pthread_cond_signal(&log->wake);
    while (!log->writer_done &&
           pthread_cond_timedwait(&log->drained, &log->lock, &deadline) != ETIMEDOUT)
        ;
    bool stuck = !log->writer_done;
    pthread_mutex_unlock(&log->lock);
    if (stuck) {
        /* The sink stopped taking lines (a pipe nobody reads): do not hang the shutdown. */
        atomic_store(&log->abandon, true);
    }
    pthread_join(log->writer, NULL);
    if (stuck)
        diag(DIAG_ERROR,
             "access log: the sink took no data for %d s at shutdown; %llu lines "
             "dropped in all",
             CLOSE_GRACE_S, (unsigned long long)atomic_load(&log->dropped));
    if (log->fd > STDOUT_FILENO)
        close(log->fd);
    pthread_mutex_destroy(&log->lock);
    pthread_cond_destroy(&log->wake);
    pthread_cond_destroy(&log->drained);
    free(log->path);
    free(log->front);
    free(log->back);
    free(log);
    return NULL;
}

void accesslog_get_stats(struct accesslog *log, struct accesslog_stats *ret)
{
    ret->lines_written = atomic_load(&log->written);
    ret->lines_dropped = atomic_load(&log->dropped);
    ret->write_errors = atomic_load(&log->write_errors);
}
