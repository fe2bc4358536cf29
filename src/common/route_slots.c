/* SPDX-License-Identifier: MIT */
/*
 * The route-name registry (common/route_slots.h): a table of names under one mutex, filled in
 * order and never emptied. A lookup is a linear scan of at most ROUTE_SLOTS names, done once per
 * route at config load and once per label when /metrics is rendered: not on the request path.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/route_slots.h"

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static char *slot_names[ROUTE_SLOTS];
static size_t slots_used = ROUTE_SLOT_REFUSED + 1; /* slot 0: no route; 1: refused */

int route_slot_register(const char *route_name, unsigned *slot)
{
    int rc = 0;

    pthread_mutex_lock(&slots_lock);
    for (size_t i = ROUTE_SLOT_REFUSED + 1; i < slots_used; i++) {
        if (strcmp(slot_names[i], route_name) == 0) {
            *slot = (unsigned)i;
            goto out;
        }
    }
    if (slots_used < ROUTE_SLOTS - 1) {
        char *copy = strdup(route_name);
        if (!copy) {
            rc = -ENOMEM;
            goto out;
        }
        slot_names[slots_used] = copy;
        *slot = (unsigned)slots_used++;
    } else {
        *slot = ROUTE_SLOTS - 1;
    }
out:
    pthread_mutex_unlock(&slots_lock);
    return rc;
}

const char *route_slot_name(size_t slot)
{
    const char *name;

    if (slot == 0)
        return "no_route";
    if (slot == ROUTE_SLOT_REFUSED)
        return "(refused)"; /* parentheses: unlike a route name someone would choose */
    if (slot >= ROUTE_SLOTS - 1)
        return "other";
    pthread_mutex_lock(&slots_lock);
    name = slot < slots_used ? slot_names[slot] : NULL;
    pthread_mutex_unlock(&slots_lock);
    return name;
}

bool route_slot_name_is_reserved(const char *route_name)
{
    return strcmp(route_name, route_slot_name(0)) == 0 ||
           strcmp(route_name, route_slot_name(ROUTE_SLOT_REFUSED)) == 0 ||
           strcmp(route_name, route_slot_name(ROUTE_SLOTS - 1)) == 0;
}
