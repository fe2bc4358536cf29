/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Private to src/config/: what the loader's files share. Errors: config_fail formats
 * "key.path: reason" (-EINVAL), config_nomem reports an allocation failure (-ENOMEM, "out of
 * memory"); a caller that wraps an inner function's reason keeps -ENOMEM as it is. Building the
 * model: strings, a route's defaults, the destructors of its parts, and the listen-address
 * setters that both the file and the overrides use. Every function here either completes or
 * leaves the config as it was plus at most parts that config_free releases, so a failure at any
 * point leaks nothing once the loader frees the half-built config.
 */
#include <stdbool.h>
#include <stddef.h>

/* The model is config/config.h; not included here, so that config.c can include this header
 * without the two forming a cycle. */
struct config;
struct config_overrides;
struct route;
struct upstream_target;

#define CONFIG_MAX_WORKERS 64

/* "key.path: reason" into error (CONFIG_ERROR_MAX bytes; a message too long keeps its start and
 * its end). Returns -EINVAL, or -ENOMEM with "out of memory" if even that needs memory. */
int config_fail(char *error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "out of memory" into error; returns -ENOMEM. */
int config_nomem(char *error);

/* Replace *slot (freed; may be NULL) with a copy of value. Returns 0, or config_nomem(error)
 * with *slot unchanged. */
int config_set_string(char **slot, const char *value, char *error);

/* Free the n strings of list, then list; accepts NULL. */
void config_string_list_free(char **list, size_t n);

/* A route with every default (path prefix "/", timeouts) and nothing else. Returns 0, or
 * config_nomem(error); either way route_clear releases it. */
int config_route_init(struct route *r, char *error);

/* Free everything a route or an upstream owns and zero it; safe on a zeroed or half-built one. */
void config_route_clear(struct route *r);
void config_upstream_clear(struct upstream_target *u);

/* Replace c's listen addresses by the n parsed texts; `path` names them in errors ("listen",
 * "--listen"). On failure c is unchanged. (config_address.c) */
int config_set_listen(struct config *c, const char *const *texts, size_t n, const char *path,
                      char *error);

/* Set c's admin address, or switch it off for "off". On failure c is unchanged.
 * (config_address.c) */
int config_set_admin_listen(struct config *c, const char *text, const char *path, char *error);

/* A host name (token characters) or a bracketed IPv6 literal, without a port.
 * (config_address.c) */
bool config_host_is_valid(const char *host);

/* The config file into c, over the defaults: its text when given (text_len bytes), otherwise
 * read from path, which names the source in errors either way. (config_json.c) */
int config_parse_json(const char *path, const char *text, size_t text_len, struct config *c,
                      char *error);

/* The overrides into c: from the environment (names like TRACEHOP_LISTEN in errors) or from the
 * flags ("--listen"). (config_overrides.c) */
int config_apply_overrides(struct config *c, const struct config_overrides *o, bool from_env,
                           char *error);
