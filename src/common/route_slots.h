/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The process-wide registry of route names for the metrics: each distinct route name gets a
 * small number (its slot) the first time it is seen, and keeps it for the life of the process,
 * so that a route's series continue across reloads. The config loader assigns each route its
 * slot (config/config.h, route.metrics_slot); the metrics renderer (observe/metrics.c) turns a
 * slot back into the name for the `route` label. Slot 0 is for requests that matched no route
 * ("no_route"), slot 1 for requests that ended before routing, mostly refused ones ("(refused)");
 * names beyond the table share the last slot ("other").
 *
 * Thread-safe (one mutex); names are never removed, so a name returned stays valid.
 */
#include <stdbool.h>
#include <stddef.h>

#define ROUTE_SLOTS        65 /* slot 0 = no route; slot ROUTE_SLOTS - 1 = "other" */
#define ROUTE_SLOT_REFUSED 1  /* ended before routing: "(refused)" */

/*
 * The slot of route_name, registered on first use, into *slot. Returns 0, or -ENOMEM when the
 * name could not be copied (nothing registered, *slot untouched). A name past the table's
 * capacity gets ROUTE_SLOTS - 1 and returns 0.
 */
int route_slot_register(const char *route_name, unsigned *slot);

/* The label for slot: "no_route" for 0, "(refused)" for 1, "other" for ROUTE_SLOTS - 1, the
 * registered name, or NULL for a slot no name has (yet). The string stays valid for the life of the
 * process. */
const char *route_slot_name(size_t slot);

/* Whether route_name is one of the labels of the slots above that no route owns ("no_route",
 * "(refused)", "other"): a route by that name would merge with them in the metrics. */
bool route_slot_name_is_reserved(const char *route_name);
