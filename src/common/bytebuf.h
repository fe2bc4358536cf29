/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A fixed-capacity byte queue for streaming a body through: the producer appends at the tail,
 * the consumer takes from the head, and the data slides to the front only when an append would
 * not fit otherwise. Fixed capacity is what bounds memory per request whatever the body size.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct bytebuf {
    char *data;
    size_t cap;
    size_t head; /* first unread byte */
    size_t tail; /* one past the last byte */
};

static inline size_t bytebuf_len(const struct bytebuf *b)
{
    return b->tail - b->head;
}

static inline size_t bytebuf_space(const struct bytebuf *b)
{
    return b->cap - bytebuf_len(b);
}

static inline void bytebuf_clear(struct bytebuf *b)
{
    b->head = b->tail = 0;
}

/* Append up to n bytes; returns how many were taken. */
static inline size_t bytebuf_put(struct bytebuf *b, const void *src, size_t n)
{
    if (n > bytebuf_space(b))
        n = bytebuf_space(b);
    if (b->tail + n > b->cap) {
        memmove(b->data, b->data + b->head, bytebuf_len(b));
        b->tail -= b->head;
        b->head = 0;
    }
    memcpy(b->data + b->tail, src, n);
    b->tail += n;
    return n;
}

/* Remove up to n bytes into dst; returns how many were copied. */
static inline size_t bytebuf_take(struct bytebuf *b, void *dst, size_t n)
{
    if (n > bytebuf_len(b))
        n = bytebuf_len(b);
    memcpy(dst, b->data + b->head, n);
    b->head += n;
    if (b->head == b->tail)
        b->head = b->tail = 0;
    return n;
}
