/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Connections that have not yet sent a complete request line, oldest first, so that
 * limits.client_header_timeout_ms also bounds a request line trickled a byte at a time (the
 * rest of the head is bounded per request, see answer_head_timeout in proxy/request.c). One list
 * per inbound adapter (one per worker), touched by its thread only.
 */
#include <stddef.h>
#include <stdint.h>

struct fresh_conn {
    struct fresh_conn *prev, *next;
    int64_t since_ms;
    int fd;
    int listed;
};

struct fresh_list {
    struct fresh_conn *head, *tail;
};

/* Append c (accepted at now_ms, so the list stays ordered by age). */
void fresh_add(struct fresh_list *list, struct fresh_conn *c, int fd, int64_t now_ms);
/* Take c off the list (its request line arrived, or it closed); a no-op when not listed. */
void fresh_remove(struct fresh_list *list, struct fresh_conn *c);
/* Shut down every connection listed for timeout_ms or longer and take it off the list;
 * libmicrohttpd then sees the end of the stream and closes it. Returns how many. */
size_t fresh_expire(struct fresh_list *list, int64_t now_ms, int64_t timeout_ms);
