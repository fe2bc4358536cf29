/* SPDX-License-Identifier: MIT */
/*
 * The list of connections without a request line (fresh_conns.h): a doubly linked list in
 * accept order, so that expiring looks at the head only.
 */
#include <sys/socket.h>

#include "proxy/fresh_conns.h"

void fresh_add(struct fresh_list *list, struct fresh_conn *c, int fd, int64_t now_ms)
{
    c->since_ms = now_ms;
    c->fd = fd;
    c->next = NULL;
    c->prev = list->tail;
    if (list->tail)
        list->tail->next = c;
    else
        list->head = c;
    list->tail = c;
    c->listed = 1;
}

void fresh_remove(struct fresh_list *list, struct fresh_conn *c)
{
    if (!c->listed)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        list->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        list->tail = c->prev;
    c->prev = c->next = NULL;
    c->listed = 0;
}

size_t fresh_expire(struct fresh_list *list, int64_t now_ms, int64_t timeout_ms)
{
    size_t expired = 0;

    while (list->head && now_ms - list->head->since_ms >= timeout_ms) {
        struct fresh_conn *c = list->head;
        fresh_remove(list, c);
        /* No response: there is no request to answer (nginx and HAProxy close silently too). */
        shutdown(c->fd, SHUT_RDWR);
        expired++;
    }
    return expired;
}
