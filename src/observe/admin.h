/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The admin listener (docs/operations.md, "Admin endpoints"): /healthz, /readyz, /metrics and
 * /config on a separate address, loopback by default, served by libmicrohttpd's own thread so that
 * a slow scrape never touches a worker loop.
 */
#include <pthread.h>
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
    /* /config: the running config as JSON text (config_to_text), replaced on every reload;
     * under config_lock, which admin_state_init sets up. */
    pthread_mutex_t config_lock;
    char *config_text;
};

/* Set up the parts of a zeroed state that need it; admin_state_clear releases them. */
void admin_state_init(struct admin_state *state);
void admin_state_clear(struct admin_state *state);
/* Serve `text` (malloc'd; ownership passes, NULL: "unavailable") on /config from now on. */
void admin_publish_config(struct admin_state *state, char *text);

struct admin;

/* Start serving on addr. Returns 0 or -errno (with a reason on stderr). */
int admin_start(const struct listen_address *addr, struct admin_state *state, struct admin **ret);
/* Stop; accepts NULL; returns NULL. */
struct admin *admin_stop(struct admin *admin);
