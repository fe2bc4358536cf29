/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The admin listener (docs/operations.md, "Admin endpoints"): /healthz, /readyz, /metrics on a
 * separate address, loopback by default, served by libmicrohttpd's own thread so that a slow scrape
 * never touches a worker loop.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "observe/metrics.h"

struct accesslog;
struct listen_address;

/* Process-wide state the admin endpoints report; written by the main thread. */
struct admin_state {
    struct metrics **workers;
    size_t workers_count;
    struct accesslog *accesslog;
    const struct export_stats *export; /* NULL = no exporter */
    atomic_bool ready;
    atomic_uint_fast64_t reloads_ok, reloads_failed;
    atomic_uint_fast64_t last_reload_ms; /* ms since the epoch */
    atomic_bool last_reload_ok;
};

struct admin;

/* Start serving on addr. Returns 0 or -errno (with a reason on stderr). */
int admin_start(const struct listen_address *addr, struct admin_state *state, struct admin **ret);
/* Stop; accepts NULL; returns NULL. */
struct admin *admin_stop(struct admin *admin);
