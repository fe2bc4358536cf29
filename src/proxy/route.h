/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Route selection: the first route whose path prefix, host and method all match wins
 * (docs/configuration.md, "routes[]"). Pure.
 */
#include <stddef.h>

#include "config/config.h"

/*
 * Find the route for a request. `path` is the raw request target up to '?' (not decoded);
 * `host` is the Host header value (may carry a port, which is ignored; may be NULL).
 * A prefix matches at a segment boundary: "/api" matches "/api", "/api/x" and "/api?q", not
 * "/apix". Returns NULL when nothing matches.
 */
const struct route *route_match(const struct config *config, const char *path, size_t path_len,
                                const char *host, size_t host_len, const char *method);

/*
 * The target to send upstream: the route's base path, then the raw target with the route's
 * prefix removed when strip_prefix is set (an emptied path becomes "/"). Writes into out
 * (capacity out_size) and returns the length, or 0 if it does not fit.
 */
size_t route_upstream_target(const struct route *route, const char *target, size_t target_len,
                             char *out, size_t out_size);
