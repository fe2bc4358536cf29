/* SPDX-License-Identifier: MIT */
/*
 * The checks across keys that catch configs which load but cannot work, or probably do not do
 * what their author meant (docs/configuration.md, "Checks"). Errors for what cannot work:
 *   - two listening addresses that overlap (the same address and port, or a wildcard and any
 *     address of its family on the same port; a v6 wildcard is dual-stack on Linux, so it
 *     overlaps the IPv4 addresses of its port too): every socket uses SO_REUSEPORT, so the
 *     kernel would split connections between the proxy and the admin endpoints, or bind the
 *     same port twice;
 *   - an access log whose directory does not exist or is not a directory, or that is a
 *     directory: this stat is the one look at the file system besides reading the config
 *     file, made here so that --check-config and a reload catch it, not only the start;
 *   - a method that differs from a standard one only in case ("get"): methods are
 *     case-sensitive and clients send them in upper case, so it never matches.
 * Warnings (config->messages) for what is probably a mistake: a route that an earlier route
 * shadows, two routes with one name (their metrics and log lines merge; a warning, not an
 * error, since grouping two routes under one name can be meant), a method not in upper case
 * that is not a standard one, an otlp section that changes nothing, and unknown TRACEHOP_*
 * variables.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <netinet/in.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "common/route_slots.h"
#include "common/edit_distance.h"

/* --- addresses ----------------------------------------------------------------------------- */

static unsigned address_port(const struct listen_address *a)
{
    if (a->addr.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->addr)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&a->addr)->sin6_port);
}

static bool address_is_wildcard(const struct listen_address *a)
{
    if (a->addr.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->addr)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr);
}

static bool same_host(const struct listen_address *a, const struct listen_address *b)
{
    if (a->addr.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->addr)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)&b->addr)->sin_addr.s_addr;
    return IN6_ARE_ADDR_EQUAL(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr,
                              &((const struct sockaddr_in6 *)&b->addr)->sin6_addr);
}

/* Whether a connection to one could be accepted by the other. Port 0 is a fresh port for each
 * socket, so it overlaps nothing. */
static bool addresses_overlap(const struct listen_address *a, const struct listen_address *b)
{
    if (address_port(a) != address_port(b) || address_port(a) == 0)
        return false;
    if (a->addr.ss_family == b->addr.ss_family)
        return address_is_wildcard(a) || address_is_wildcard(b) || same_host(a, b);
    const struct listen_address *v6 = a->addr.ss_family == AF_INET6 ? a : b;
    return address_is_wildcard(v6);
}

/* How the error names listen address i: "listen[1]" in a list, else who set it. */
static void listen_name(const struct config *c, size_t i, char *out, size_t size)
{
    const char *origin = c->origins.listen ? c->origins.listen : "listen";

    if (c->listen_count > 1)
        snprintf(out, size, "%s[%zu]", origin, i);
    else
        snprintf(out, size, "%s", origin);
}

static int check_addresses(const struct config *c, char *error)
{
    char a_name[64], b_name[64];

    for (size_t i = 0; i < c->listen_count; i++)
        for (size_t k = 0; k < i; k++)
            if (addresses_overlap(&c->listen[i], &c->listen[k])) {
                listen_name(c, i, a_name, sizeof(a_name));
                listen_name(c, k, b_name, sizeof(b_name));
                return config_fail(error,
                                   "%s: %s overlaps %s (%s): one port would be bound twice; "
                                   "list it once",
                                   a_name, c->listen[i].text, b_name, c->listen[k].text);
            }
    if (!c->admin_enabled)
        return 0;
    for (size_t i = 0; i < c->listen_count; i++)
        if (addresses_overlap(&c->admin_listen, &c->listen[i])) {
            listen_name(c, i, b_name, sizeof(b_name));
            return config_fail(error,
                               "%s: %s overlaps %s (%s): both sockets use SO_REUSEPORT, so the "
                               "kernel would split connections between the admin endpoints and "
                               "the proxy; give the admin endpoints a port of their own",
                               c->origins.admin_listen ? c->origins.admin_listen : "admin.listen",
                               c->admin_listen.text, b_name, c->listen[i].text);
        }
    return 0;
}

/* --- the access log ------------------------------------------------------------------------ */

static int check_access_log(const struct config *c, char *error)
{
    const char *path = c->access_log_path;
    const char *name = c->origins.access_log ? c->origins.access_log : "access_log.path";
    char dir[PATH_MAX];
    struct stat st;

    if (strcmp(path, "-") == 0)
        return 0;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return config_fail(error, "%s: '%s' is a directory", name, path);
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else if ((size_t)(slash - path) < sizeof(dir))
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    else
        return config_fail(error, "%s: '%s': path too long", name, path);
    if (stat(dir, &st) < 0)
        return errno == ENOMEM ? config_nomem(error)
                               : config_fail(error, "%s: '%s': directory %s: %s", name, path, dir,
                                             strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return config_fail(error, "%s: '%s': %s is not a directory", name, path, dir);
    return 0;
}

/* --- routes -------------------------------------------------------------------------------- */

static const char *const standard_methods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                               "CONNECT", "OPTIONS", "TRACE", "PATCH"};

static int check_methods(struct config *c, size_t index, char *error)
{
    const struct route *r = &c->routes[index];
    int rc;

    for (size_t m = 0; m < r->methods_count; m++) {
        const char *method = r->methods[m];
        bool lower = false;
        for (const char *p = method; *p; p++)
            lower = lower || (*p >= 'a' && *p <= 'z');
        if (!lower)
            continue;
        for (size_t s = 0; s < sizeof(standard_methods) / sizeof(standard_methods[0]); s++)
            if (strcasecmp(method, standard_methods[s]) == 0)
                return config_fail(error,
                                   "routes[%zu].match.methods[%zu]: '%s' never matches: methods "
                                   "are case-sensitive: did you mean %s?",
                                   index, m, method, standard_methods[s]);
        if ((rc = config_message_add(c, CONFIG_WARNING, error,
                                     "routes[%zu].match.methods[%zu]: '%s' matches only a client "
                                     "that sends it in exactly this case (methods are "
                                     "case-sensitive)",
                                     index, m, method)) < 0)
            return rc;
    }
    return 0;
}

/* Every path that later's prefix matches also matches earlier's (route matching is by path
 * segments: "/api" matches "/api" and "/api/x", not "/apix"). */
static bool prefix_covers(const struct route *earlier, const struct route *later)
{
    size_t n = earlier->path_prefix_len;

    if (n == 1) /* "/" */
        return true;
    if (later->path_prefix_len < n || memcmp(later->path_prefix, earlier->path_prefix, n) != 0)
        return false;
    return earlier->path_prefix[n - 1] == '/' || later->path_prefix_len == n ||
           later->path_prefix[n] == '/';
}

static bool methods_cover(const struct route *earlier, const struct route *later)
{
    if (!earlier->methods)
        return true;
    if (!later->methods)
        return false;
    for (size_t i = 0; i < later->methods_count; i++) {
        bool found = false;
        for (size_t k = 0; k < earlier->methods_count && !found; k++)
            found = strcmp(later->methods[i], earlier->methods[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* earlier matches every request that later could match, so later is never chosen. */
static bool route_shadows(const struct route *earlier, const struct route *later)
{
    bool host = !earlier->host || (later->host && strcasecmp(earlier->host, later->host) == 0);
    return host && prefix_covers(earlier, later) && methods_cover(earlier, later);
}

static int check_routes(struct config *c, char *error)
{
    int rc;

    for (size_t i = 0; i < c->routes_count; i++) {
        const struct route *r = &c->routes[i];
        if ((rc = check_methods(c, i, error)) < 0)
            return rc;
        if (route_slot_name_is_reserved(r->name))
            return config_fail(error,
                               "routes[%zu].name: '%s' is reserved: the metrics label of requests "
                               "no route of that name handled",
                               i, r->name);
        for (size_t k = 0; k < i; k++)
            if (route_shadows(&c->routes[k], r)) {
                if ((rc = config_message_add(c, CONFIG_WARNING, error,
                                             "routes[%zu] ('%s'): never matches: routes[%zu] "
                                             "('%s') comes first and matches every request it "
                                             "could match",
                                             i, r->name, k, c->routes[k].name)) < 0)
                    return rc;
                break;
            }
        for (size_t k = 0; k < i; k++)
            if (strcmp(c->routes[k].name, r->name) == 0) {
                if ((rc = config_message_add(c, CONFIG_WARNING, error,
                                             "routes[%zu].name: '%s' is also the name of "
                                             "routes[%zu]: their metrics and log lines merge",
                                             i, r->name, k)) < 0)
                    return rc;
                break;
            }
    }
    return 0;
}

/* --- otlp and the environment -------------------------------------------------------------- */

static int check_otlp_ignored(struct config *c, const struct config_otlp_state *otlp, char *error)
{
    if (!otlp->file_section || c->otlp.enabled || otlp->file_enabled == 0)
        return 0; /* no section, export on, or switched off on purpose */
    if (otlp->env_disabled)
        return config_message_add(c, CONFIG_WARNING, error,
                                  "otlp: ignored: OTEL_SDK_DISABLED=true or "
                                  "OTEL_TRACES_EXPORTER=none switched span export off");
    return config_message_add(c, CONFIG_WARNING, error,
                              "otlp: ignored: no endpoint is set (otlp.endpoint, "
                              "otlp.traces_endpoint or OTEL_EXPORTER_OTLP_ENDPOINT), so no span "
                              "is exported");
}

static int check_unknown_variables(struct config *c, const struct config_overrides *env,
                                   char *error)
{
    size_t known_count = 0;
    int rc;

    if (!env)
        return 0;
    while (config_known_variables[known_count])
        known_count++;
    for (size_t i = 0; i < env->unknown_count && i < CONFIG_MAX_UNKNOWN_VARIABLES; i++) {
        char name[EDIT_DISTANCE_MAX_LEN + 1];
        size_t len = strcspn(env->unknown[i], "=");
        snprintf(name, sizeof(name), "%.*s", (int)len, env->unknown[i]);
        const char *guess = len <= EDIT_DISTANCE_MAX_LEN
                                ? edit_distance_closest(name, config_known_variables, known_count)
                                : NULL;
        if ((rc = config_message_add(c, CONFIG_WARNING, error,
                                     "%.*s: unknown variable, ignored%s%s%s", (int)len,
                                     env->unknown[i], guess ? " (did you mean " : "",
                                     guess ? guess : "", guess ? "?)" : "")) < 0)
            return rc;
    }
    if (env->unknown_count > CONFIG_MAX_UNKNOWN_VARIABLES)
        return config_message_add(c, CONFIG_WARNING, error,
                                  "%zu more unknown TRACEHOP_* variables, ignored",
                                  env->unknown_count - CONFIG_MAX_UNKNOWN_VARIABLES);
    return 0;
}

int config_check(struct config *c, const struct config_otlp_state *otlp,
                 const struct config_overrides *env, char *error)
{
    int rc;

    if ((rc = check_addresses(c, error)) < 0 || (rc = check_access_log(c, error)) < 0 ||
        (rc = check_routes(c, error)) < 0 || (rc = check_otlp_ignored(c, otlp, error)) < 0 ||
        (rc = check_unknown_variables(c, env, error)) < 0)
        return rc;
    return 0;
}
