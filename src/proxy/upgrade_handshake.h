/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The upstream's answer to an upgrade request (HTTP/1.1 upgrades such as WebSocket, RFC 9110
 * section 7.8) that tracehop wrote itself on a connect-only connection: the bytes read from the
 * upstream are fed in chunks of any size (one byte works), split into lines and checked by
 * response_head_feed, with a 101 allowed. Stricter than a normal head: every head starts with a
 * status line "HTTP/1.x NNN" (100-599), a status line appears nowhere else, a line holds at most
 * UPGRADE_HANDSHAKE_MAX_LINE bytes and all heads together (1xx ones included) at most
 * RESPONSE_HEAD_MAX_BYTES, so an endless head is refused, never buffered. 1xx heads but 101 are
 * skipped. Pure: no I/O, no libcurl; header copies go into the caller's arena.
 *
 * The request path does not use it yet.
 */
#include <stdbool.h>
#include <stddef.h>

#include "proxy/response_head.h"

struct arena;

#define UPGRADE_HANDSHAKE_MAX_LINE 8192

enum upgrade_handshake_result {
    UPGRADE_HANDSHAKE_MORE,     /* the head is not complete: feed more bytes */
    UPGRADE_HANDSHAKE_COMPLETE, /* a final head (101 or >= 200) ended: see status, switched */
    UPGRADE_HANDSHAKE_INVALID,  /* not a valid answer: see reason; close the connection */
};

struct upgrade_handshake {
    struct response_head head; /* the final head once COMPLETE; its fields are in the arena */
    const char *protocol;      /* what the client asked for in Upgrade, e.g. "websocket" */
    size_t protocol_len;
    enum upgrade_handshake_result result;
    const char *reason; /* static text when INVALID, else NULL */
    bool switched;    /* COMPLETE with a 101 naming protocol in Upgrade and upgrade in Connection */
    bool want_status; /* the next line must be a status line */
    size_t total;     /* bytes of every head so far, 1xx ones included */
    size_t line_len;  /* bytes of a line not yet ended by LF */
    char line[UPGRADE_HANDSHAKE_MAX_LINE];
};

/* Start before the first byte. protocol (not copied, must outlive hs) is one token. */
void upgrade_handshake_init(struct upgrade_handshake *hs, const char *protocol,
                            size_t protocol_len);

/*
 * Feed the next n bytes read from the upstream. *used is how many of them belong to the head:
 * n on MORE; on COMPLETE the bytes from data + *used on are the first bytes after the head (frames
 * of the new protocol after a 101, the body of any other answer); on INVALID where it stopped.
 * Once COMPLETE or INVALID, the same result again with *used = 0.
 */
enum upgrade_handshake_result upgrade_handshake_feed(struct upgrade_handshake *hs, const char *data,
                                                     size_t n, struct arena *arena, size_t *used);
