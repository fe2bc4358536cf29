/* SPDX-License-Identifier: MIT */
/*
 * Streaming line reader and log sources (contracts in log_reader.h).
 *
 * The buffer holds at most one partial line plus one chunk: bytes are compacted to the front
 * only when the free tail is smaller than a chunk, so a file is copied about once. `scanned`
 * remembers how much of a partial line has already been searched for '\n', so a long line that
 * arrives in many reads is searched once in total. A line that outgrows LOG_READER_MAX_LINE
 * turns the reader into "skipping" mode: bytes are dropped until the next '\n', and the line is
 * counted once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/log_reader.h"

int log_reader_init(struct log_reader *r, int fd, uint64_t offset, uint64_t limit, size_t max_line)
{
    struct stat st;

    *r = (struct log_reader){.fd = fd, .base = offset, .limit = limit};
    r->max_line = max_line ? max_line : LOG_READER_MAX_LINE;
    r->seekable = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    r->cap = r->max_line + LOG_READER_CHUNK + 1;
    r->buf = malloc(r->cap);
    if (!r->buf)
        return -ENOMEM;
    if (r->seekable && offset == 0)
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return 0;
}

void log_reader_free(struct log_reader *r)
{
    free(r->buf);
    r->buf = NULL;
}

uint64_t log_reader_position(const struct log_reader *r)
{
    return r->base + r->end;
}

void log_reader_restart(struct log_reader *r, uint64_t offset)
{
    r->start = r->end = r->scanned = 0;
    r->base = offset;
    r->skipping = false;
    r->at_eof = false;
}

/* Read more. Returns 1 when bytes arrived, 0 at the end (for now), -errno. */
static int fill(struct log_reader *r)
{
    if (r->start > 0 && r->cap - r->end < LOG_READER_CHUNK) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->base += r->start;
        r->end -= r->start;
        r->start = 0;
    }
    size_t room = r->cap - r->end;
    uint64_t pos = r->base + r->end;
    if (r->limit != UINT64_MAX) {
        if (pos >= r->limit) {
            r->at_eof = true;
            return 0;
        }
        if (room > r->limit - pos)
            room = (size_t)(r->limit - pos);
    }
    if (!r->seekable && r->poll_first) {
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) <= 0)
            return 0; /* nothing now; not the end */
    }
    for (;;) {
        ssize_t n = r->seekable ? pread(r->fd, r->buf + r->end, room, (off_t)pos)
                                : read(r->fd, r->buf + r->end, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0)
            return -errno;
        if (n == 0) {
            r->at_eof = true;
            return 0;
        }
        r->end += (size_t)n;
        r->at_eof = false;
        return 1;
    }
}

/* Drop everything buffered (inside an overlong line). */
static void discard(struct log_reader *r)
{
    r->base += r->end;
    r->start = r->end = r->scanned = 0;
}

int log_reader_next(struct log_reader *r, const char **ret_line, size_t *ret_len,
                    uint64_t *ret_offset)
{
    for (;;) {
        size_t from = r->start + r->scanned;
        if (r->end > from) {
            const char *nl = memchr(r->buf + from, '\n', r->end - from);
            if (nl) {
                size_t len = (size_t)(nl - (r->buf + r->start));
                const char *line = r->buf + r->start;
                uint64_t offset = r->base + r->start;
                r->start += len + 1;
                r->scanned = 0;
                if (r->skipping || len > r->max_line) {
                    r->skipping = false;
                    r->overlong++;
                    continue;
                }
                *ret_line = line;
                *ret_len = len;
                *ret_offset = offset;
                return 1;
            }
            r->scanned = r->end - r->start;
        }
        if (r->skipping || r->end - r->start > r->max_line) {
            r->skipping = true;
            discard(r);
        }
        int rc = fill(r);
        if (rc <= 0)
            return rc;
    }
}

int log_reader_take_partial(struct log_reader *r, const char **ret_line, size_t *ret_len,
                            uint64_t *ret_offset)
{
    size_t len = r->end - r->start;

    if (r->skipping || len > r->max_line) {
        r->skipping = false;
        r->overlong++;
        discard(r);
        return 0;
    }
    if (len == 0)
        return 0;
    *ret_line = r->buf + r->start;
    *ret_len = len;
    *ret_offset = r->base + r->start;
    r->start = r->end;
    r->scanned = 0;
    return 1;
}

/* --- sources ---------------------------------------------------------------------------- */

int log_source_open(struct log_source *s, const char *path, size_t max_line)
{
    struct stat st;
    int rc;

    *s = (struct log_source){.fd = -1};
    if (strcmp(path, "-") == 0) {
        s->is_stdin = true;
        s->fd = STDIN_FILENO;
        s->name = "(stdin)";
    } else {
        s->path = strdup(path);
        if (!s->path)
            return -ENOMEM;
        s->name = s->path;
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0) {
            rc = -errno;
            goto fail;
        }
        if (fstat(s->fd, &st) < 0) {
            rc = -errno;
            goto fail;
        }
        if (S_ISDIR(st.st_mode)) {
            rc = -EISDIR;
            goto fail;
        }
        s->dev = st.st_dev;
        s->ino = st.st_ino;
    }
    if ((rc = log_reader_init(&s->reader, s->fd, 0, UINT64_MAX, max_line)) < 0)
        goto fail;
    if (s->is_stdin)
        s->reader.seekable = false; /* read from wherever stdin stands */
    return 0;
fail:
    log_source_close(s);
    return rc;
}

void log_source_close(struct log_source *s)
{
    log_reader_free(&s->reader);
    if (s->fd >= 0 && !s->is_stdin)
        close(s->fd);
    s->fd = -1;
    free(s->path);
    s->path = NULL;
}

enum log_source_change log_source_check(struct log_source *s)
{
    struct stat st;

    if (s->is_stdin || s->fd < 0)
        return LOG_SOURCE_SAME;
    if (stat(s->path, &st) == 0 && (st.st_dev != s->dev || st.st_ino != s->ino))
        return LOG_SOURCE_REPLACED;
    if (fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (uint64_t)st.st_size < log_reader_position(&s->reader)) {
        log_reader_restart(&s->reader, 0);
        return LOG_SOURCE_TRUNCATED;
    }
    return LOG_SOURCE_SAME;
}

int log_source_reopen(struct log_source *s)
{
    struct stat st;
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    close(s->fd);
    s->fd = fd;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->reader.fd = fd;
    s->reader.seekable = S_ISREG(st.st_mode);
    log_reader_restart(&s->reader, 0);
    return 0;
}
