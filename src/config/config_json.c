/* SPDX-License-Identifier: MIT */
/*
 * The config file: JSON (parsed by jansson, duplicate keys refused) into a config that already
 * holds the defaults. Every key is in docs/configuration.md ("Keys"); this file checks each
 * one's type and range and refuses keys it does not know, because a misspelt limit that silently
 * keeps its default is worse than a refusal. Every error names the key path and the reason
 * ("routes[2].upstream: unsupported scheme 'ftp'"); the loader frees the half-built config on
 * any error, so nothing here needs to undo what it already set.
 *
 * Pure: no logging, no I/O but reading the file; errors into `error`, out of memory as -ENOMEM.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "common/edit_distance.h"
#include "common/http_syntax.h"

/* --- jansson's allocations ------------------------------------------------------------- */

/*
 * jansson reports some allocation failures as syntax errors (a string it could not copy becomes
 * "string or '}' expected"). Its allocations go through json_alloc, installed once (the config is
 * the only user of jansson in the program), which is malloc but notes a failure for the calling
 * thread, so that the loader can tell "out of memory" from a bad file.
 */
static _Thread_local bool json_alloc_failed;
static pthread_once_t json_alloc_once = PTHREAD_ONCE_INIT;

static void *json_alloc(size_t size)
{
    void *p = malloc(size);

    if (!p)
        json_alloc_failed = true;
    return p;
}

static void json_alloc_install(void)
{
    json_set_alloc_funcs(json_alloc, free);
}

/* --- JSON helpers: each reports "path: reason" ------------------------------------------ */

#define KEY_SHOWN_MAX   64
#define VALUE_SHOWN_MAX 40

/* What a value of the wrong type is, for "expected an integer, found a string ("4")": its type,
 * and a short value itself when that helps (a string, a number). */
struct found_text {
    char text[VALUE_SHOWN_MAX + 48];
};

static struct found_text found(const json_t *v)
{
    struct found_text f;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        snprintf(f.text, sizeof(f.text), "an object");
        break;
    case JSON_ARRAY:
        snprintf(f.text, sizeof(f.text), json_array_size(v) ? "a list" : "an empty list");
        break;
    case JSON_STRING: {
        /* As JSON (quoted, escaped, ASCII), so that control characters stay visible. */
        char *quoted = json_dumps(v, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        if (!quoted || strlen(quoted) > VALUE_SHOWN_MAX)
            snprintf(f.text, sizeof(f.text), "a string");
        else
            snprintf(f.text, sizeof(f.text), "a string (%s)", quoted);
        free(quoted);
        break;
    }
    case JSON_INTEGER:
        snprintf(f.text, sizeof(f.text), "a number (%" JSON_INTEGER_FORMAT ")",
                 json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(f.text, sizeof(f.text), "a number (%.15g)", json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(f.text, sizeof(f.text), "true");
        break;
    case JSON_FALSE:
        snprintf(f.text, sizeof(f.text), "false");
        break;
    default:
        snprintf(f.text, sizeof(f.text), "null");
        break;
    }
    return f;
}

/* "path.key: unknown key", the key written as a JSON string (ASCII) unless it is a plain name, so
 * that an empty key, or one holding spaces, colons or control characters, is still recognisable;
 * a long one is cut at KEY_SHOWN_MAX characters, so that the reason always fits in error. */
static int unknown_key(const char *path, const char *key, const char *const *allowed, char *error)
{
    size_t allowed_count = 0;
    while (allowed[allowed_count])
        allowed_count++;
    const char *guess = edit_distance_closest(key, allowed, allowed_count);
    bool plain = key[0] != '\0';

    for (const char *p = key; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
            plain = false;
    json_t *quoted = plain ? NULL : json_string(key);
    char *text = quoted ? json_dumps(quoted, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    if (!plain && !text) { /* key is valid UTF-8 (jansson checked it): out of memory */
        json_decref(quoted);
        return config_nomem(error);
    }
    const char *shown = plain ? key : text;
    int rc = config_fail(error, "%s%s%.*s%s: unknown key%s%s%s", path, path[0] ? "." : "",
                         KEY_SHOWN_MAX, shown, strlen(shown) > KEY_SHOWN_MAX ? "..." : "",
                         guess ? " (did you mean " : "", guess ? guess : "", guess ? "?)" : "");
    free(text);
    json_decref(quoted);
    return rc;
}

static int check_keys(json_t *obj, const char *path, const char *const *allowed, char *error)
{
    const char *key;
    json_t *value;

    if (!json_is_object(obj))
        return config_fail(error, "%s: expected an object, found %s", path, found(obj).text);
    json_object_foreach(obj, key, value)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0)
                ok = true;
        if (!ok)
            return unknown_key(path, key, allowed, error);
    }
    return 0;
}

static int get_string(json_t *obj, const char *key, const char *path, const char **ret, char *error)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return config_fail(error, "%s%s%s: expected a string, found %s", path, path[0] ? "." : "",
                           key, found(v).text);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return config_fail(error, "%s%s%s: must not contain NUL", path, path[0] ? "." : "", key);
    *ret = json_string_value(v);
    return 0;
}

static int get_bool(json_t *obj, const char *key, const char *path, bool *ret, char *error)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return config_fail(error, "%s%s%s: expected true or false, found %s", path,
                           path[0] ? "." : "", key, found(v).text);
    *ret = json_is_true(v);
    return 0;
}

static int get_integer(json_t *obj, const char *key, const char *path, long long min, long long max,
                       long long *ret, char *error)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return config_fail(error, "%s%s%s: expected an integer in %lld..%lld, found %s", path,
                           path[0] ? "." : "", key, min, max, found(v).text);
    *ret = json_integer_value(v);
    return 0;
}

static int get_string_list(json_t *obj, const char *key, const char *path, char ***ret,
                           size_t *ret_count, char *error)
{
    json_t *v = json_object_get(obj, key);
    size_t i;
    json_t *item;

    if (!v)
        return 0;
    if (!json_is_array(v))
        return config_fail(error, "%s.%s: expected a list of strings, found %s", path, key,
                           found(v).text);
    char **list = calloc(json_array_size(v) + 1, sizeof(char *));
    if (!list)
        return config_nomem(error);
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item) || json_string_length(item) == 0) {
            config_string_list_free(list, i);
            return config_fail(error, "%s.%s[%zu]: must be a non-empty string", path, key, i);
        }
        list[i] = strdup(json_string_value(item));
        if (!list[i]) {
            config_string_list_free(list, i);
            return config_nomem(error);
        }
    }
    config_string_list_free(*ret, *ret_count);
    *ret = list;
    *ret_count = json_array_size(v);
    return 0;
}

static int validate_header_names(char **names, size_t n, const char *path, char *error)
{
    for (size_t i = 0; i < n; i++)
        if (!http_is_token(names[i], strlen(names[i])))
            return config_fail(error, "%s[%zu]: '%s' is not a valid header name", path, i,
                               names[i]);
    return 0;
}

/* access_log.fields become the member names of the log's "request_headers" object, lowercased:
 * they must stay distinct from each other and from the "<name>_raw_b64" siblings the log adds
 * for values that are not UTF-8 (or the line has duplicate keys), and fit logline's buffer. */
static int validate_logged_fields(char **names, size_t n, char *error)
{
    static const char raw_suffix[] = "_raw_b64";
    const size_t suffix_len = sizeof(raw_suffix) - 1;

    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len > CONFIG_LOGGED_HEADER_NAME_MAX)
            return config_fail(error, "access_log.fields[%zu]: longer than %d characters", i,
                               CONFIG_LOGGED_HEADER_NAME_MAX);
        if (len >= suffix_len && strcasecmp(names[i] + len - suffix_len, raw_suffix) == 0)
            return config_fail(error,
                               "access_log.fields[%zu]: '%s': names ending in %s are reserved", i,
                               names[i], raw_suffix);
        for (size_t k = 0; k < i; k++)
            if (strcasecmp(names[k], names[i]) == 0)
                return config_fail(error, "access_log.fields[%zu]: '%s' is listed twice", i,
                                   names[i]);
    }
    return 0;
}

/* --- sections --------------------------------------------------------------------------- */

static int parse_route_match(json_t *match, struct route *r, const char *path, char *error)
{
    static const char *const keys[] = {"path_prefix", "host", "methods", NULL};
    const char *prefix = NULL, *host = NULL;
    int rc;

    if ((rc = check_keys(match, path, keys, error)) < 0)
        return rc;
    if ((rc = get_string(match, "path_prefix", path, &prefix, error)) < 0 ||
        (rc = get_string(match, "host", path, &host, error)) < 0)
        return rc;
    if (prefix) {
        if (prefix[0] != '/')
            return config_fail(error, "%s.path_prefix: must start with '/'", path);
        if ((rc = config_set_string(&r->path_prefix, prefix, error)) < 0)
            return rc;
        r->path_prefix_len = strlen(prefix);
    }
    if (host) {
        if (!config_host_is_valid(host))
            return config_fail(error, "%s.host: '%s' is not a host name", path, host);
        if ((rc = config_set_string(&r->host, host, error)) < 0)
            return rc;
    }
    if ((rc = get_string_list(match, "methods", path, &r->methods, &r->methods_count, error)) < 0)
        return rc;
    for (size_t i = 0; i < r->methods_count; i++)
        if (!http_is_token(r->methods[i], strlen(r->methods[i])))
            return config_fail(error, "%s.methods[%zu]: '%s' is not a method", path, i,
                               r->methods[i]);
    return 0;
}

static int parse_set_request_headers(json_t *obj, struct route *r, const char *path, char *error)
{
    const char *key;
    json_t *value;
    size_t i = 0;

    if (!json_is_object(obj))
        return config_fail(error, "%s: must be an object of header names to values", path);
    r->set_request_headers = calloc(json_object_size(obj) + 1, sizeof(struct header_setting));
    if (!r->set_request_headers)
        return config_nomem(error);
    json_object_foreach(obj, key, value)
    {
        if (!http_is_token(key, strlen(key)))
            return config_fail(error, "%s.%s: not a valid header name", path, key);
        if (http_header_is_hop_by_hop(key, strlen(key)) || http_header_is_managed(key, strlen(key)))
            return config_fail(error, "%s.%s: tracehop manages this header itself", path, key);
        if (!json_is_string(value) ||
            !http_is_field_value(json_string_value(value), json_string_length(value)))
            return config_fail(error, "%s.%s: must be a string without control characters", path,
                               key);
        struct header_setting *h = &r->set_request_headers[i++];
        r->set_request_headers_count = i; /* from now on route_clear frees what h holds */
        size_t line_size = strlen(key) + 2 + json_string_length(value) + 1;
        h->name = strdup(key);
        h->value = strdup(json_string_value(value));
        h->line = malloc(line_size);
        if (!h->name || !h->value || !h->line)
            return config_nomem(error);
        snprintf(h->line, line_size, "%s: %s", key, h->value);
    }
    return 0;
}

/* A file or directory path in routes[i].tls: not empty; null = not set. */
static int parse_tls_path(json_t *obj, const char *key, const char *path, char **slot, char *error)
{
    json_t *v = json_object_get(obj, key);
    const char *text = NULL;
    int rc;

    if (!v || json_is_null(v))
        return 0;
    if ((rc = get_string(obj, key, path, &text, error)) < 0)
        return rc;
    if (text[0] == '\0')
        return config_fail(error, "%s.%s: must not be empty (leave it out or null for none)", path,
                           key);
    return config_set_string(slot, text, error);
}

/* routes[i].tls (docs/configuration.md, "tls"); the checks across its keys and the files:
 * config_tls.c. */
static int parse_route_tls(json_t *obj, struct route *r, const char *path, char *error)
{
    static const char *const keys[] = {
        "ca_file",     "ca_dir",      "client_certificate",   "client_key",
        "server_name", "min_version", "insecure_skip_verify", NULL};
    struct route_tls *t = &r->tls;
    json_t *version = json_object_get(obj, "min_version");
    int rc;

    if ((rc = check_keys(obj, path, keys, error)) < 0 ||
        (rc = parse_tls_path(obj, "ca_file", path, &t->ca_file, error)) < 0 ||
        (rc = parse_tls_path(obj, "ca_dir", path, &t->ca_dir, error)) < 0 ||
        (rc = parse_tls_path(obj, "client_certificate", path, &t->client_certificate, error)) < 0 ||
        (rc = parse_tls_path(obj, "client_key", path, &t->client_key, error)) < 0 ||
        (rc = parse_tls_path(obj, "server_name", path, &t->server_name, error)) < 0 ||
        (rc = get_bool(obj, "insecure_skip_verify", path, &t->insecure_skip_verify, error)) < 0)
        return rc;
    if (version && !json_is_null(version)) {
        const char *v = json_is_string(version) ? json_string_value(version) : "";
        if (strcmp(v, "1.2") == 0)
            t->min_version = 12;
        else if (strcmp(v, "1.3") == 0)
            t->min_version = 13;
        else
            return config_fail(error, "%s.min_version: must be \"1.2\" or \"1.3\"", path);
    }
    return config_route_tls_finish(r, path, error);
}

static int parse_route(json_t *obj, struct route *r, size_t index, char *error)
{
    static const char *const keys[] = {"name",
                                       "match",
                                       "upstream",
                                       "strip_prefix",
                                       "connect_timeout_ms",
                                       "timeout_ms",
                                       "set_request_headers",
                                       "tls",
                                       NULL};
    char path[64];
    char sub[96];
    const char *name = NULL, *upstream = NULL;
    long long connect_ms = r->connect_timeout_ms, total_ms = r->timeout_ms;
    int rc;

    snprintf(path, sizeof(path), "routes[%zu]", index);
    if ((rc = check_keys(obj, path, keys, error)) < 0)
        return rc;
    if ((rc = get_string(obj, "name", path, &name, error)) < 0 ||
        (rc = get_string(obj, "upstream", path, &upstream, error)) < 0 ||
        (rc = get_bool(obj, "strip_prefix", path, &r->strip_prefix, error)) < 0 ||
        (rc = get_integer(obj, "connect_timeout_ms", path, 1, 3600000, &connect_ms, error)) < 0 ||
        (rc = get_integer(obj, "timeout_ms", path, 0, 86400000, &total_ms, error)) < 0)
        return rc;
    r->connect_timeout_ms = (long)connect_ms;
    r->timeout_ms = (long)total_ms;
    char generated[32];
    snprintf(generated, sizeof(generated), "route%zu", index);
    if ((rc = config_set_string(&r->name, name ? name : generated, error)) < 0)
        return rc;
    if (!upstream)
        return config_fail(error, "%s.upstream: missing", path);
    char reason[CONFIG_ERROR_MAX];
    if ((rc = config_parse_upstream(upstream, &r->upstream, reason)) == -ENOMEM)
        return config_nomem(error);
    if (rc < 0)
        return config_fail(error, "%s.upstream: %s", path, reason);
    json_t *match = json_object_get(obj, "match");
    if (match) {
        snprintf(sub, sizeof(sub), "%s.match", path);
        if ((rc = parse_route_match(match, r, sub, error)) < 0)
            return rc;
    }
    json_t *set = json_object_get(obj, "set_request_headers");
    if (set) {
        snprintf(sub, sizeof(sub), "%s.set_request_headers", path);
        if ((rc = parse_set_request_headers(set, r, sub, error)) < 0)
            return rc;
    }
    json_t *tls = json_object_get(obj, "tls");
    if (tls && !json_is_null(tls)) {
        snprintf(sub, sizeof(sub), "%s.tls", path);
        if ((rc = parse_route_tls(tls, r, sub, error)) < 0)
            return rc;
    }
    return 0;
}

static int parse_routes(json_t *list, struct config *c, char *error)
{
    size_t i;
    json_t *item;

    if (!json_is_array(list))
        return config_fail(error, "routes: expected a list, found %s", found(list).text);
    c->routes = calloc(json_array_size(list) + 1, sizeof(struct route));
    if (!c->routes)
        return config_nomem(error);
    json_array_foreach(list, i, item)
    {
        c->routes_count = i + 1; /* from now on config_free frees what the route holds */
        int rc = config_route_init(&c->routes[i], error);
        if (rc < 0)
            return rc;
        rc = parse_route(item, &c->routes[i], i, error);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_trace(json_t *obj, struct config *c, char *error)
{
    static const char *const keys[] = {"request_id_header",       "sampler", "sampling_ratio",
                                       "trust_incoming",          "echo",    "server_timing",
                                       "server_timing_durations", NULL};
    const char *header = NULL, *sampler = NULL;
    int rc;

    if ((rc = check_keys(obj, "trace", keys, error)) < 0 ||
        (rc = get_string(obj, "request_id_header", "trace", &header, error)) < 0 ||
        (rc = get_string(obj, "sampler", "trace", &sampler, error)) < 0 ||
        (rc = get_bool(obj, "trust_incoming", "trace", &c->trust_incoming, error)) < 0 ||
        (rc = get_bool(obj, "echo", "trace", &c->echo, error)) < 0 ||
        (rc = get_bool(obj, "server_timing", "trace", &c->server_timing, error)) < 0 ||
        (rc = get_bool(obj, "server_timing_durations", "trace", &c->server_timing_durations,
                       error)) < 0)
        return rc;
    if (header) {
        if ((rc = config_set_string(&c->request_id_header, header, error)) < 0)
            return rc;
        c->origins.trace_header = "trace.request_id_header";
    }
    if (sampler && (rc = config_set_sampler(c, sampler, "trace.sampler", error)) < 0)
        return rc;
    json_t *ratio = json_object_get(obj, "sampling_ratio");
    if (ratio) {
        if (!json_is_number(ratio) || !(json_number_value(ratio) >= 0.0) ||
            json_number_value(ratio) > 1.0)
            return config_fail(error, "trace.sampling_ratio: expected a number in 0..1, found %s",
                               found(ratio).text);
        c->sampling_ratio = json_number_value(ratio);
        c->origins.sampling_ratio = "trace.sampling_ratio";
    }
    return 0;
}

static int parse_access_log(json_t *obj, struct config *c, char *error)
{
    static const char *const keys[] = {"path", "fields", "redact", NULL};
    const char *path = NULL;
    int rc;

    if ((rc = check_keys(obj, "access_log", keys, error)) < 0 ||
        (rc = get_string(obj, "path", "access_log", &path, error)) < 0 ||
        (rc = get_string_list(obj, "fields", "access_log", &c->access_log_fields,
                              &c->access_log_fields_count, error)) < 0 ||
        (rc = get_string_list(obj, "redact", "access_log", &c->access_log_redact,
                              &c->access_log_redact_count, error)) < 0 ||
        (rc = validate_header_names(c->access_log_fields, c->access_log_fields_count,
                                    "access_log.fields", error)) < 0 ||
        (rc = validate_logged_fields(c->access_log_fields, c->access_log_fields_count, error)) < 0)
        return rc;
    if (c->access_log_fields_count > CONFIG_MAX_LOGGED_HEADERS)
        return config_fail(error, "access_log.fields: at most %d headers",
                           CONFIG_MAX_LOGGED_HEADERS);
    if (path) {
        if (path[0] == '\0')
            return config_fail(error, "access_log.path: must not be empty (use \"-\" for stdout)");
        if ((rc = config_set_string(&c->access_log_path, path, error)) < 0)
            return rc;
        c->origins.access_log = "access_log.path";
    }
    return 0;
}

static int parse_limits(json_t *obj, struct config *c, char *error)
{
    static const char *const keys[] = {
        "max_header_bytes",         "max_body_bytes", "max_connections",  "client_timeout_ms",
        "client_header_timeout_ms", "drain_delay_ms", "drain_timeout_ms", NULL};
    long long header = (long long)c->max_header_bytes, body = (long long)c->max_body_bytes,
              conns = c->max_connections, client_ms = (long long)c->client_timeout_s * 1000,
              head_ms = c->client_header_timeout_ms, delay = c->drain_delay_ms,
              timeout = c->drain_timeout_ms;
    int rc;

    if ((rc = check_keys(obj, "limits", keys, error)) < 0 ||
        (rc = get_integer(obj, "max_header_bytes", "limits", 1024, 1048576, &header, error)) < 0 ||
        (rc = get_integer(obj, "max_body_bytes", "limits", 0, LLONG_MAX, &body, error)) < 0 ||
        (rc = get_integer(obj, "max_connections", "limits", 1, 1000000, &conns, error)) < 0 ||
        (rc = get_integer(obj, "client_timeout_ms", "limits", 1000, 3600000, &client_ms, error)) <
            0 ||
        (rc = get_integer(obj, "client_header_timeout_ms", "limits", 100, 3600000, &head_ms,
                          error)) < 0 ||
        (rc = get_integer(obj, "drain_delay_ms", "limits", 0, 600000, &delay, error)) < 0 ||
        (rc = get_integer(obj, "drain_timeout_ms", "limits", 0, 3600000, &timeout, error)) < 0)
        return rc;
    c->max_header_bytes = (size_t)header;
    c->max_body_bytes = (size_t)body;
    c->max_connections = (unsigned)conns;
    c->client_timeout_s = (unsigned)((client_ms + 999) / 1000);
    c->client_header_timeout_ms = (long)head_ms;
    c->drain_delay_ms = (long)delay;
    c->drain_timeout_ms = (long)timeout;
    return 0;
}

/* A string, or null for "not set" (what --check-config prints for an unset path or URL). */
static int get_optional_string(json_t *obj, const char *key, const char *path, const char **ret,
                               char *error)
{
    if (json_is_null(json_object_get(obj, key)))
        return 0;
    return get_string(obj, key, path, ret, error);
}

/* otlp.headers: names (tokens) to values, each name once (case-insensitively). */
static int parse_otlp_headers(json_t *obj, struct otlp_config *o, char *error)
{
    const char *key;
    json_t *value;
    int rc;

    if (!json_is_object(obj))
        return config_fail(error, "otlp.headers: must be an object of header names to values");
    json_object_foreach(obj, key, value)
    {
        if (!json_is_string(value) || strlen(json_string_value(value)) != json_string_length(value))
            return config_fail(error, "otlp.headers.%s: must be a string", key);
        const char *problem = config_otlp_header_problem(key, json_string_value(value));
        if (problem)
            return config_fail(error, "otlp.headers.%s: %s", key, problem);
        for (size_t i = 0; i < o->headers_count; i++)
            if (strcasecmp(o->headers[i].name, key) == 0)
                return config_fail(error,
                                   "otlp.headers.%s: given twice (header names are "
                                   "case-insensitive)",
                                   key);
        if ((rc = config_otlp_set_header(o, key, json_string_value(value), "otlp.headers", error)) <
            0)
            return rc;
    }
    return 0;
}

/* otlp.resource_attributes: keys to string values; service.name is service_name's. */
static int parse_otlp_attributes(json_t *obj, struct otlp_config *o, char *error)
{
    const char *key;
    json_t *value;
    int rc;

    if (!json_is_object(obj))
        return config_fail(error, "otlp.resource_attributes: must be an object of keys to values");
    json_object_foreach(obj, key, value)
    {
        if (key[0] == '\0')
            return config_fail(error, "otlp.resource_attributes: a key must not be empty");
        if (strcmp(key, "service.name") == 0)
            return config_fail(error,
                               "otlp.resource_attributes.service.name: set service_name instead");
        if (!json_is_string(value) || strlen(json_string_value(value)) != json_string_length(value))
            return config_fail(error, "otlp.resource_attributes.%s: must be a string", key);
        if ((rc = config_otlp_set_attribute(o, key, json_string_value(value),
                                            "otlp.resource_attributes", error)) < 0)
            return rc;
    }
    return 0;
}

static int parse_otlp_batch(json_t *obj, struct otlp_config *o, struct config_otlp_state *state,
                            char *error)
{
    static const char *const keys[] = {"max_queue_size", "max_export_batch_size",
                                       "schedule_delay_ms", "export_timeout_ms", NULL};
    const char *path = "otlp.batch";
    long long queue = o->max_queue_size, batch = o->max_export_batch_size,
              delay = o->schedule_delay_ms, timeout = o->export_timeout_ms;
    int rc;

    if ((rc = check_keys(obj, path, keys, error)) < 0 ||
        (rc = get_integer(obj, "max_queue_size", path, 1, CONFIG_OTLP_MAX_QUEUE_SIZE, &queue,
                          error)) < 0 ||
        (rc = get_integer(obj, "max_export_batch_size", path, 1, CONFIG_OTLP_MAX_QUEUE_SIZE, &batch,
                          error)) < 0 ||
        (rc = get_integer(obj, "schedule_delay_ms", path, 1, CONFIG_OTLP_MAX_DELAY_MS, &delay,
                          error)) < 0 ||
        (rc = get_integer(obj, "export_timeout_ms", path, 1, CONFIG_OTLP_MAX_DELAY_MS, &timeout,
                          error)) < 0)
        return rc;
    if (json_object_get(obj, "max_queue_size"))
        state->queue_origin = "otlp.batch.max_queue_size";
    if (json_object_get(obj, "max_export_batch_size"))
        state->batch_origin = "otlp.batch.max_export_batch_size";
    o->max_queue_size = (unsigned)queue;
    o->max_export_batch_size = (unsigned)batch;
    o->schedule_delay_ms = (long)delay;
    o->export_timeout_ms = (long)timeout;
    return 0;
}

/* A PEM file's path (ca_file, client_certificate, client_key): not empty; null = none. */
static int parse_otlp_path(json_t *obj, const char *key, char **slot, char *error)
{
    const char *text = NULL;
    int rc;

    if ((rc = get_optional_string(obj, key, "otlp", &text, error)) < 0 || !text)
        return rc;
    if (text[0] == '\0')
        return config_fail(error, "otlp.%s: must not be empty (leave it out or null for none)",
                           key);
    return config_set_string(slot, text, error);
}

/* The otlp section (docs/configuration.md, "otlp"); the environment comes later
 * (config_otel_env.c), and config_otlp_finish decides `enabled` once both are in. */
static int parse_otlp(json_t *obj, struct config *c, struct config_otlp_state *state, char *error)
{
    static const char *const keys[] = {"enabled",
                                       "endpoint",
                                       "traces_endpoint",
                                       "protocol",
                                       "headers",
                                       "timeout_ms",
                                       "compression",
                                       "ca_file",
                                       "client_certificate",
                                       "client_key",
                                       "resource_attributes",
                                       "batch",
                                       NULL};
    struct otlp_config *o = &c->otlp;
    const char *endpoint = NULL, *traces_endpoint = NULL, *protocol = NULL, *compression = NULL;
    long long timeout = o->timeout_ms;
    bool enabled = false;
    json_t *section;
    int rc;

    if ((rc = check_keys(obj, "otlp", keys, error)) < 0 ||
        (rc = get_bool(obj, "enabled", "otlp", &enabled, error)) < 0 ||
        (rc = get_optional_string(obj, "endpoint", "otlp", &endpoint, error)) < 0 ||
        (rc = get_optional_string(obj, "traces_endpoint", "otlp", &traces_endpoint, error)) < 0 ||
        (rc = get_string(obj, "protocol", "otlp", &protocol, error)) < 0 ||
        (rc = get_string(obj, "compression", "otlp", &compression, error)) < 0 ||
        (rc = get_integer(obj, "timeout_ms", "otlp", 1, CONFIG_OTLP_MAX_TIMEOUT_MS, &timeout,
                          error)) < 0)
        return rc;
    if (json_object_get(obj, "enabled"))
        state->file_enabled = enabled;
    o->timeout_ms = (long)timeout;
    /* Both URLs are checked; the full one wins over the base. */
    if (endpoint && (rc = config_otlp_set_endpoint(o, endpoint, true, "otlp.endpoint", error)) < 0)
        return rc;
    if (traces_endpoint && (rc = config_otlp_set_endpoint(o, traces_endpoint, false,
                                                          "otlp.traces_endpoint", error)) < 0)
        return rc;
    if (protocol && (rc = config_otlp_check_protocol(protocol, "otlp.protocol", error)) < 0)
        return rc;
    if (compression &&
        (rc = config_otlp_set_compression(o, compression, "otlp.compression", error)) < 0)
        return rc;
    if ((rc = parse_otlp_path(obj, "ca_file", &o->ca_file, error)) < 0 ||
        (rc = parse_otlp_path(obj, "client_certificate", &o->client_certificate, error)) < 0 ||
        (rc = parse_otlp_path(obj, "client_key", &o->client_key, error)) < 0)
        return rc;
    if (o->client_certificate)
        state->certificate_origin = "otlp.client_certificate";
    if (o->client_key)
        state->key_origin = "otlp.client_key";
    if ((section = json_object_get(obj, "headers")) &&
        (rc = parse_otlp_headers(section, o, error)) < 0)
        return rc;
    if ((section = json_object_get(obj, "resource_attributes")) &&
        (rc = parse_otlp_attributes(section, o, error)) < 0)
        return rc;
    if ((section = json_object_get(obj, "batch")) &&
        (rc = parse_otlp_batch(section, o, state, error)) < 0)
        return rc;
    return 0;
}

/*
 * Open the config file here rather than in jansson, so that the errors people meet most say
 * plainly what is wrong ("/etc/tracehop.json: No such file or directory", "...: is a directory")
 * instead of a parse error at line -1. Returns 0 with *root (NULL on a read or syntax error, in
 * jerr), or an error.
 */
static int open_config_file(const char *path, size_t flags, json_error_t *jerr, json_t **root,
                            char *error)
{
    struct stat st;
    FILE *f = fopen(path, "r");

    if (!f && errno == ENOMEM)
        return config_nomem(error);
    if (!f)
        return config_fail(error, "%s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return config_fail(error, "%s: is a directory, not a config file", path);
    }
    *root = json_loadf(f, flags, jerr);
    fclose(f);
    return 0;
}

int config_parse_json(const char *path, const char *contents, size_t contents_len, struct config *c,
                      struct config_otlp_state *otlp, char *error)
{
    static const char *const keys[] = {"service_name", "listen",     "admin",  "workers",
                                       "trace",        "access_log", "limits", "routes",
                                       "otlp",         "log_level",  NULL};
    const size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
    json_error_t jerr = {0};
    json_t *root;

    pthread_once(&json_alloc_once, json_alloc_install);
    json_alloc_failed = false;
    const char *service = NULL, *log_level = NULL;
    long long workers = c->workers;
    int rc;

    if (contents) {
        root = json_loadb(contents, contents_len, flags, &jerr);
    } else if ((rc = open_config_file(path, flags, &jerr, &root, error)) < 0) {
        return rc;
    }
    if (!root && (json_alloc_failed || json_error_code(&jerr) == json_error_out_of_memory))
        return config_nomem(error);
    if (!root && jerr.line < 1) /* no position: the file could not be read */
        return config_fail(error, "%s: %s", path, jerr.text);
    if (!root)
        return config_fail(error, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        rc = config_fail(error, "%s: the configuration must be an object, found %s", path,
                         found(root).text);
        goto out;
    }
    if ((rc = check_keys(root, "", keys, error)) < 0)
        goto out;
    if ((rc = get_string(root, "service_name", "", &service, error)) < 0 ||
        (rc = get_integer(root, "workers", "", 1, CONFIG_MAX_WORKERS, &workers, error)) < 0 ||
        (rc = get_string(root, "log_level", "", &log_level, error)) < 0)
        goto out;
    if (log_level && diag_level_parse(log_level, &c->log_level) < 0) {
        rc = config_fail(error, "log_level: must be debug, info, warn or error");
        goto out;
    }
    if (service && service[0] == '\0') {
        rc = config_fail(error, "service_name: must not be empty");
        goto out;
    }
    if (service) {
        if ((rc = config_set_string(&c->service_name, service, error)) < 0)
            goto out;
        c->origins.service_name = "service_name";
    }
    c->workers = (unsigned)workers;
    if (json_object_get(root, "workers"))
        c->origins.workers = "workers";

    json_t *listen = json_object_get(root, "listen");
    if (json_is_string(listen)) {
        const char *text = json_string_value(listen);
        if ((rc = config_set_listen(c, &text, 1, "listen", error)) < 0)
            goto out;
        c->origins.listen = "listen";
    } else if (json_is_array(listen) && json_array_size(listen) > 0) {
        const char *texts[64];
        size_t i;
        json_t *item;
        if (json_array_size(listen) > 64) {
            rc = config_fail(error, "listen: at most 64 addresses");
            goto out;
        }
        json_array_foreach(listen, i, item)
        {
            if (!json_is_string(item)) {
                rc = config_fail(error, "listen[%zu]: expected a string, found %s", i,
                                 found(item).text);
                goto out;
            }
            texts[i] = json_string_value(item);
        }
        if ((rc = config_set_listen(c, texts, json_array_size(listen), "listen", error)) < 0)
            goto out;
        c->origins.listen = "listen";
    } else if (listen) {
        rc = config_fail(error,
                         "listen: expected an address or a non-empty list of addresses, "
                         "found %s",
                         found(listen).text);
        goto out;
    }

    json_t *admin = json_object_get(root, "admin");
    if (admin) {
        static const char *const admin_keys[] = {"listen", NULL};
        const char *text = NULL;
        if ((rc = check_keys(admin, "admin", admin_keys, error)) < 0 ||
            (rc = get_string(admin, "listen", "admin", &text, error)) < 0)
            goto out;
        if (text && (rc = config_set_admin_listen(c, text, "admin.listen", error)) < 0)
            goto out;
        if (text)
            c->origins.admin_listen = "admin.listen";
    }
    json_t *section;
    if ((section = json_object_get(root, "trace")) && (rc = parse_trace(section, c, error)) < 0)
        goto out;
    if ((section = json_object_get(root, "access_log")) &&
        (rc = parse_access_log(section, c, error)) < 0)
        goto out;
    if ((section = json_object_get(root, "limits")) && (rc = parse_limits(section, c, error)) < 0)
        goto out;
    if ((section = json_object_get(root, "routes")) && (rc = parse_routes(section, c, error)) < 0)
        goto out;
    if (section)
        c->origins.routes = "routes";
    if ((section = json_object_get(root, "otlp")) && (rc = parse_otlp(section, c, otlp, error)) < 0)
        goto out;
    otlp->file_section = section != NULL;
    rc = 0;
out:
    json_decref(root);
    return rc;
}
