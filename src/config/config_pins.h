/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Which configs one thread's requests still use. A request pins the current config when it
 * starts and unpins it when it ends; a reload swaps in a new current config, and an old one is
 * released (config_unref) when its last request ends. Counting happens here and nowhere else,
 * on the owning thread only: no atomic operation per request.
 */
#include <stddef.h>

struct config;

struct config_pins {
    const struct config *current; /* holds one reference */
    unsigned current_users;
    struct retired_config {
        const struct config *config; /* holds one reference */
        unsigned users;
    } * retired; /* configs replaced while requests still used them */
    size_t retired_count, retired_cap;
};

/* Start with `config` as the current one (takes over one reference). */
void config_pins_init(struct config_pins *pins, const struct config *config);
/* Release every config, whoever still pins it (the owner is going away). */
void config_pins_destroy(struct config_pins *pins);

/* The current config, pinned for a request that starts now. */
const struct config *config_pins_take(struct config_pins *pins);
/* A request that pinned `config` has ended. */
void config_pins_release(struct config_pins *pins, const struct config *config);

/* Make `next` the current config (takes over its reference on success). Returns 0, or -ENOMEM
 * when the old one could not be kept for its requests (nothing changed: try again later). */
int config_pins_swap(struct config_pins *pins, const struct config *next);
