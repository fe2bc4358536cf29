/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Streaming line reader over a file or a pipe, for logs of any size: memory is one buffer of
 * about LOG_READER_MAX_LINE + LOG_READER_CHUNK bytes whatever the file holds. A line longer than
 * LOG_READER_MAX_LINE is skipped (and counted), never buffered whole.
 *
 * Regular files are read with pread at the reader's own offset, so several readers can share
 * one descriptor (a second pass over the start of a file while the first reader stays at the
 * end), and a reader can stop at a `limit` offset.
 *
 * A log source adds what --follow needs: the path, and noticing that the file was truncated
 * (it shrank below what was read: read it again from the start) or replaced (rotation: the path
 * names another inode; finish the old file, then read the new one from the start).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LOG_READER_MAX_LINE (1024 * 1024)
#define LOG_READER_CHUNK    (1024 * 1024)

struct log_reader {
    int fd;
    bool seekable;   /* a regular file: pread at `pos` */
    bool poll_first; /* a pipe that must not block (--follow on stdin): poll before read */
    char *buf;
    size_t cap;
    size_t start;   /* first byte not yet returned */
    size_t scanned; /* bytes from start known to hold no newline */
    size_t end;     /* one past the last byte read */
    uint64_t base;  /* file offset of buf[0] */
    uint64_t limit; /* do not read past this offset (UINT64_MAX: no limit) */
    bool at_eof;    /* the last read returned 0 (more may come for a growing file) */
    bool skipping;  /* inside a line longer than LOG_READER_MAX_LINE */
    size_t max_line;
    uint64_t overlong; /* lines skipped for their length */
};

/*
 * Start reading fd (not owned: the caller closes it) at `offset`, up to `limit`. max_line is
 * the longest line returned (0: LOG_READER_MAX_LINE). Returns 0 or -ENOMEM.
 */
int log_reader_init(struct log_reader *r, int fd, uint64_t offset, uint64_t limit, size_t max_line);
void log_reader_free(struct log_reader *r);

/*
 * The next complete line, without its '\n': *ret_line points into the reader's buffer and stays
 * valid until the next call. *ret_offset is the line's offset in the file. Returns 1 for a
 * line, 0 when no complete line is available now (end of file, or of the data a pipe has so
 * far), -errno on a read error.
 */
int log_reader_next(struct log_reader *r, const char **ret_line, size_t *ret_len,
                    uint64_t *ret_offset);

/*
 * At the end of the input: the last line if it has no '\n' (returns 1), else 0. An overlong
 * unterminated tail is counted in `overlong` instead.
 */
int log_reader_take_partial(struct log_reader *r, const char **ret_line, size_t *ret_len,
                            uint64_t *ret_offset);

/* File offset of the next byte to read (everything before it has been read). */
uint64_t log_reader_position(const struct log_reader *r);

/* Forget buffered data and continue at `offset` (after a truncation). */
void log_reader_restart(struct log_reader *r, uint64_t offset);

/* --- sources: a path (or stdin) plus a reader ---------------------------------------------- */

struct log_source {
    char *path;       /* NULL for stdin */
    const char *name; /* for messages: the path or "(stdin)" */
    int fd;
    bool is_stdin;
    dev_t dev;
    ino_t ino;
    struct log_reader reader;
};

/* Open a source: path "-" is stdin. Returns 0 or -errno (the source is then closed). */
int log_source_open(struct log_source *s, const char *path, size_t max_line);
void log_source_close(struct log_source *s);

/* What log_source_check found. */
enum log_source_change {
    LOG_SOURCE_SAME = 0,
    LOG_SOURCE_TRUNCATED, /* read again from the start */
    LOG_SOURCE_REPLACED,  /* the path names a new file now */
};

/*
 * For --follow: compare the path with what is open. On TRUNCATED the reader was restarted at 0;
 * on REPLACED the caller should first drain the reader (the old file's last lines), then call
 * log_source_reopen. A path that does not exist right now (between rename and create) is SAME.
 */
enum log_source_change log_source_check(struct log_source *s);

/* Open the path again and read from its start. Returns 0 or -errno (the old fd is kept). */
int log_source_reopen(struct log_source *s);
