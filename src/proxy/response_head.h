/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The upstream's response head, one header line at a time as libcurl hands them over, checked
 * strictly (RFC 9112 section 4 and 5): a status line starts a new head (1xx heads come first);
 * a field must be a token, a colon and a field value, without obs-fold; Content-Length must be
 * digits and agree with any earlier one; any Transfer-Encoding but chunked is refused (libcurl
 * undoes only chunked, anything else would reach the client unlabelled). Size and count are
 * bounded. Pure: no I/O, no libcurl; copies go into the caller's arena.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;

#define RESPONSE_HEAD_MAX_FIELDS 128
#define RESPONSE_HEAD_MAX_BYTES  (64 * 1024)

struct response_header {
    const char *name; /* NUL-terminated copy */
    size_t name_len;
    const char *value; /* NUL-terminated copy, without surrounding whitespace */
};

struct response_head {
    long status;            /* of the latest status line; 0 before one */
    int64_t content_length; /* -1 = none */
    struct response_header fields[RESPONSE_HEAD_MAX_FIELDS];
    size_t count;
    size_t bytes;
    bool allow_switch; /* a 101 may end the head (set by response_head_init_upgrade only) */
};

enum response_line {
    RESPONSE_LINE_OK,       /* taken (a status line, a field, the end of a 1xx head) */
    RESPONSE_LINE_COMPLETE, /* the blank line ending a final (>= 200) head */
    RESPONSE_LINE_INVALID,  /* not a valid response head: abort the transfer */
};

/* Start empty (status 0, no Content-Length). */
void response_head_init(struct response_head *head);

/*
 * Start empty, for the answer to an upgrade request that tracehop itself wrote: there a 101
 * head is final (COMPLETE), not refused. Every other rule is the same.
 */
void response_head_init_upgrade(struct response_head *head);

/*
 * Take one line of the head (as received, with its CRLF or LF). A 101 is refused (tracehop never
 * asks for an upgrade) unless the head was started by response_head_init_upgrade. On INVALID the
 * head is left as it was; copies come from arena (an allocation failure is INVALID too).
 */
enum response_line response_head_feed(struct response_head *head, const char *line, size_t n,
                                      struct arena *arena);
