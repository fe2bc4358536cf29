/* SPDX-License-Identifier: MIT */
/*
 * Route matching works on the raw, undecoded target: decoding first would let "/%61pi" reach a
 * route the operator wrote for "/api" only by accident of spelling, and the upstream receives
 * the raw target anyway. Linear first-match scan: route tables of a sidecar are short.
 */
#include <string.h>
#include <strings.h>

#include "proxy/route.h"

static bool prefix_matches(const struct route *r, const char *path, size_t path_len)
{
    size_t n = r->path_prefix_len;
    if (n == 1) /* "/" */
        return true;
    if (path_len < n || memcmp(path, r->path_prefix, n) != 0)
        return false;
    /* Segment boundary: the prefix ends with '/', or the path ends or continues with '/'. */
    return r->path_prefix[n - 1] == '/' || path_len == n || path[n] == '/';
}

static bool host_matches(const struct route *r, const char *host, size_t host_len)
{
    if (!r->host)
        return true;
    if (!host)
        return false;
    /* Drop ":port" (but not inside an IPv6 literal). */
    const char *colon = memrchr(host, ':', host_len);
    const char *bracket = memrchr(host, ']', host_len);
    if (colon && (!bracket || colon > bracket))
        host_len = (size_t)(colon - host);
    return strlen(r->host) == host_len && strncasecmp(r->host, host, host_len) == 0;
}

static bool method_matches(const struct route *r, const char *method)
{
    if (!r->methods)
        return true;
    for (size_t i = 0; i < r->methods_count; i++)
        if (strcmp(r->methods[i], method) == 0)
            return true;
    return false;
}

const struct route *route_match(const struct config *config, const char *path, size_t path_len,
                                const char *host, size_t host_len, const char *method)
{
    for (size_t i = 0; i < config->routes_count; i++) {
        const struct route *r = &config->routes[i];
        if (prefix_matches(r, path, path_len) && host_matches(r, host, host_len) &&
            method_matches(r, method))
            return r;
    }
    return NULL;
}

size_t route_upstream_target(const struct route *route, const char *target, size_t target_len,
                             char *out, size_t out_size)
{
    const char *rest = target;
    size_t rest_len = target_len;

    if (route->strip_prefix && route->path_prefix_len > 1 && target_len >= route->path_prefix_len) {
        size_t n = route->path_prefix_len;
        if (route->path_prefix[n - 1] == '/')
            n--; /* keep the slash that separates the prefix from the rest */
        rest = target + n;
        rest_len = target_len - n;
    }
    size_t base = route->upstream.base_path_len;
    bool need_slash = rest_len == 0 || rest[0] != '/';
    size_t total = base + (need_slash ? 1 : 0) + rest_len;
    if (total + 1 > out_size)
        return 0;
    memcpy(out, route->upstream.base_path, base);
    if (need_slash)
        out[base] = '/';
    memcpy(out + base + (need_slash ? 1 : 0), rest, rest_len);
    out[total] = '\0';
    return total;
}
