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
struct config_otlp_state;
struct otlp_config;
struct route;
struct upstream_target;
struct route_tls;

#define CONFIG_MAX_WORKERS 64

/* Bounds of the otlp settings (docs/configuration.md, "otlp"). */
#define CONFIG_OTLP_MAX_HEADERS             64
#define CONFIG_OTLP_MAX_RESOURCE_ATTRIBUTES 128
#define CONFIG_OTLP_MAX_TIMEOUT_MS          600000  /* one export request */
#define CONFIG_OTLP_MAX_QUEUE_SIZE          1000000 /* spans */
#define CONFIG_OTLP_MAX_DELAY_MS            3600000 /* schedule delay, batch export timeout */

/* "key.path: reason" into error (CONFIG_ERROR_MAX bytes; a message too long keeps its start and
 * its end). Returns -EINVAL, or -ENOMEM with "out of memory" if even that needs memory. */
int config_fail(char *error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "out of memory" into error; returns -ENOMEM. */
int config_nomem(char *error);

/* Add a warning or a note (config.h, struct config_message) to c->messages, formatted like an
 * error. Returns 0, or config_nomem(error). (config_error.c) */
int config_message_add(struct config *c, int kind, char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The checks that no single key can make, run once every source is in (config_check.c):
 * addresses that overlap (errors), the access log's directory (an error when it is missing:
 * the one look at the file system besides reading the config file), route methods in the wrong
 * case (errors), routes that can never match and route names used twice (warnings), an otlp
 * section that changes nothing (a warning), and the unknown TRACEHOP_* variables in env
 * (warnings). */
int config_check(struct config *c, const struct config_otlp_state *otlp,
                 const struct config_overrides *env, char *error);

/* The TRACEHOP_* variables tracehop reads, NULL-terminated (config_overrides.c). */
extern const char *const config_known_variables[];

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

/* routes[i].tls once its keys are in r->tls (`path` = "routes[i].tls"): only for an https
 * upstream, every file readable, server_name a host name (then curl_url and connect_to are
 * set). Returns 0, -EINVAL with the key in error, or -ENOMEM. (config_tls.c) */
int config_route_tls_finish(struct route *r, const char *path, char *error);
/* Free what a route's tls settings own and zero them. (config_tls.c) */
void config_route_tls_clear(struct route_tls *t);

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

/* A sampling ratio as typed in a flag or variable: a number in 0..1 and nothing else. Returns 0
 * and writes *ret, or -EINVAL. (config_overrides.c) */
int config_parse_ratio(const char *text, double *ret);

/*
 * What loading the otlp settings remembers between the sources, for the checks that need them
 * all (config_otlp_finish): whether the file switched export on or off, whether the environment
 * switched it off, and who set the values that are checked against each other, so that an
 * error names the key or variable the user wrote. Origins are static strings; NULL = default.
 */
struct config_otlp_state {
    int file_enabled;  /* otlp.enabled: -1 not given, 0 false, 1 true */
    bool env_disabled; /* OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none */
    const char *queue_origin, *batch_origin;     /* max_queue_size, max_export_batch_size */
    const char *certificate_origin, *key_origin; /* client_certificate, client_key */
    bool file_section;                           /* the file has an otlp section */
};

/* --- otlp and the sampler, set by the file and the environment alike (config_otlp.c) ------ */

/* The defaults of struct otlp_config (export off, no endpoint, the OpenTelemetry SDK's
 * timeouts and batch sizes). Allocates nothing. */
void config_otlp_defaults(struct otlp_config *o);

/* Free everything o owns and zero it; safe on a zeroed or half-built one. */
void config_otlp_clear(struct otlp_config *o);

/* The sampler called `text` (one of OTEL_TRACES_SAMPLER's six names) into c->sampler; `name`
 * ("trace.sampler", "OTEL_TRACES_SAMPLER") names it in errors, which list the six. */
int config_set_sampler(struct config *c, const char *text, const char *name, char *error);

/* Set o's endpoint from an http:// or https:// URL: as is, or with "/v1/traces" appended (after
 * one trailing '/' is removed) when `append_signal_path` (a base URL: otlp.endpoint,
 * OTEL_EXPORTER_OTLP_ENDPOINT). `name` names it in errors. On failure o is unchanged. */
int config_otlp_set_endpoint(struct otlp_config *o, const char *url, bool append_signal_path,
                             const char *name, char *error);

/* Only "http/json" passes; "http/protobuf" and "grpc" are refused saying why. */
int config_otlp_check_protocol(const char *text, const char *name, char *error);

/* "gzip" or "none" into o->gzip. */
int config_otlp_set_compression(struct otlp_config *o, const char *text, const char *name,
                                char *error);

/* Why a header cannot be sent with every export request (not a token, a header the exporter
 * or the connection owns, a value with control characters), or NULL when it can. */
const char *config_otlp_header_problem(const char *name, const char *value);

/* Add the header (checked with config_otlp_header_problem), or replace the value of one with the
 * same name compared case-insensitively. `path` names the list in the error when it would grow
 * beyond CONFIG_OTLP_MAX_HEADERS. On failure o is unchanged. */
int config_otlp_set_header(struct otlp_config *o, const char *name, const char *value,
                           const char *path, char *error);

/* The same for a resource attribute (keys compared exactly); CONFIG_OTLP_MAX_RESOURCE_ATTRIBUTES.
 */
int config_otlp_set_attribute(struct otlp_config *o, const char *key, const char *value,
                              const char *path, char *error);

/* After every source: the client certificate and key together, the batch within the queue
 * (a batch size nobody gave shrinks to the queue), and `enabled`: an endpoint, not switched off
 * (state). otlp.enabled true without any endpoint is an error. */
int config_otlp_finish(struct config *c, const struct config_otlp_state *state, char *error);

/* The config file into c, over the defaults: its text when given (text_len bytes), otherwise
 * read from path, which names the source in errors either way. Notes in otlp what the otlp
 * section said (config_otlp_finish needs it). (config_json.c) */
int config_parse_json(const char *path, const char *text, size_t text_len, struct config *c,
                      struct config_otlp_state *otlp, char *error);

/* OpenTelemetry's OTEL_* variables (the otel_* fields of env) into c, over the file and below
 * the TRACEHOP_* ones; errors name the variable. (config_otel_env.c) */
int config_apply_otel_env(struct config *c, const struct config_overrides *env,
                          struct config_otlp_state *otlp, char *error);

/* The overrides into c: from the environment (names like TRACEHOP_LISTEN in errors) or from the
 * flags ("--listen"). (config_overrides.c) */
int config_apply_overrides(struct config *c, const struct config_overrides *o, bool from_env,
                           char *error);
