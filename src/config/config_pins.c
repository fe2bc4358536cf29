/* SPDX-License-Identifier: MIT */
/*
 * Config pins (see config_pins.h). Retired configs are few - one per reload that overtook a
 * slow request - so a short array scanned on release is enough.
 */
#include <errno.h>
#include <stdlib.h>

#include "config/config_pins.h"
#include "config/config.h"

void config_pins_init(struct config_pins *pins, const struct config *config)
{
    *pins = (struct config_pins){.current = config};
}

void config_pins_destroy(struct config_pins *pins)
{
    for (size_t i = 0; i < pins->retired_count; i++)
        config_unref(pins->retired[i].config);
    free(pins->retired);
    config_unref(pins->current);
    *pins = (struct config_pins){0};
}

const struct config *config_pins_take(struct config_pins *pins)
{
    pins->current_users++;
    return pins->current;
}

void config_pins_release(struct config_pins *pins, const struct config *config)
{
    if (config == pins->current) {
        pins->current_users--;
        return;
    }
    for (size_t i = 0; i < pins->retired_count; i++) {
        if (pins->retired[i].config != config)
            continue;
        if (--pins->retired[i].users == 0) {
            config_unref(config);
            pins->retired[i] = pins->retired[--pins->retired_count];
        }
        return;
    }
}

int config_pins_swap(struct config_pins *pins, const struct config *next)
{
    if (pins->current_users > 0 && pins->retired_count == pins->retired_cap) {
        size_t cap = pins->retired_cap ? pins->retired_cap * 2 : 8;
        struct retired_config *p = realloc(pins->retired, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        pins->retired = p;
        pins->retired_cap = cap;
    }
    if (pins->current_users == 0)
        config_unref(pins->current);
    else
        pins->retired[pins->retired_count++] =
            (struct retired_config){pins->current, pins->current_users};
    pins->current = next;
    pins->current_users = 0;
    return 0;
}
