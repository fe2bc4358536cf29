/* SPDX-License-Identifier: MIT */
/*
 * Configuration loading. Precedence is defaults < file < environment < flags (SPEC section 1).
 * Every error names the key path and the reason ("routes[2].upstream: unsupported scheme 'ftp'")
 * and nothing is half-applied: the caller gets a complete config or an error. Unknown keys are
 * errors, because a misspelt limit that silently keeps its default is worse than a refusal.
 *
 * Pure: no logging; the caller reports `error`.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "config/config.h"
#include "common/http_syntax.h"
#include "common/json_escape.h"
#include "common/route_slots.h"

#define DEFAULT_LISTEN       "0.0.0.0:8000"
#define DEFAULT_ADMIN_LISTEN "127.0.0.1:9901"
#define MAX_WORKERS          64

static int fail(char *error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Back from position i to the start of a UTF-8 character, so that a cut never splits one. */
static size_t utf8_boundary(const char *s, size_t i)
{
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

/*
 * "key.path: reason" into error. Messages quote what the user wrote (key names, hosts, URLs),
 * which can be longer than the buffer: one that does not fit keeps its beginning (the key path)
 * and its end (the reason), with " ... " between, instead of losing the reason (found by
 * fuzz-config: a 340-byte header name pushed the reason out).
 */
static int fail(char *error, const char *fmt, ...)
{
    static const char gap[] = " ... ";
    va_list ap;
    char *full = NULL;

    va_start(ap, fmt);
    int n = vasprintf(&full, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort(); /* out of memory while loading the config, as in xstrdup */
    size_t len = (size_t)n;
    if (len < CONFIG_ERROR_MAX) {
        memcpy(error, full, len + 1);
    } else {
        size_t keep = (CONFIG_ERROR_MAX - sizeof(gap)) / 2; /* each side */
        size_t head = utf8_boundary(full, keep);
        size_t tail = len - keep; /* forward to a character start: at most keep bytes kept */
        while (tail < len && ((unsigned char)full[tail] & 0xC0) == 0x80)
            tail++;
        memcpy(error, full, head);
        memcpy(error + head, gap, sizeof(gap) - 1);
        memcpy(error + head + sizeof(gap) - 1, full + tail, len - tail + 1);
    }
    free(full);
    return -EINVAL;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort(); /* start-up time only: nothing sensible to do without memory */
    return p;
}

int config_parse_address(const char *text, struct listen_address *out, char *error)
{
    char host[256];
    const char *port_text;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host))
            return fail(error, "'%s' is not [IPv6]:PORT", text);
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port_text = close + 2;
        hints.ai_family = AF_INET6;
        hints.ai_flags |= AI_NUMERICHOST;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof(host))
            return fail(error, "'%s' is not HOST:PORT", text);
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        if (strchr(host, ':'))
            return fail(error, "'%s': write IPv6 addresses as [ADDR]:PORT", text);
        port_text = colon + 1;
        if (host[0] == '\0')
            strcpy(host, "0.0.0.0");
        hints.ai_family = AF_INET;
    }
    char *end;
    errno = 0;
    long port = strtol(port_text, &end, 10);
    if (port_text[0] == '\0' || *end != '\0' || errno || port < 0 || port > 65535)
        return fail(error, "'%s': port must be 0..65535", text);
    int rc = getaddrinfo(host, port_text, &hints, &res);
    if (rc != 0)
        return fail(error, "'%s': %s", text, gai_strerror(rc));
    memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
    out->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    out->text = xstrdup(text);
    return 0;
}

/* host[:port] or [v6][:port]; the host non-empty; a port, if any, 1..65535 in decimal. */
static bool authority_is_valid(const char *a, size_t len)
{
    size_t host_end;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (!close || close == a + 1)
            return false;
        for (const char *p = a + 1; p < close; p++)
            if (!(isxdigit((unsigned char)*p) || *p == ':' || *p == '.'))
                return false;
        host_end = (size_t)(close - a) + 1;
    } else {
        host_end = 0;
        while (host_end < len && a[host_end] != ':') {
            if (a[host_end] == '[' || a[host_end] == ']')
                return false;
            host_end++;
        }
        if (host_end == 0)
            return false;
    }
    if (host_end == len)
        return true;
    if (a[host_end] != ':' || host_end + 1 == len || len - host_end - 1 > 5)
        return false;
    unsigned long port = 0;
    for (size_t i = host_end + 1; i < len; i++) {
        if (a[i] < '0' || a[i] > '9')
            return false;
        port = port * 10 + (unsigned long)(a[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

int config_parse_upstream(const char *text, struct upstream_target *out, char *error)
{
    const char *rest;
    *out = (struct upstream_target){0};

    if (strncmp(text, "unix:", 5) == 0) {
        rest = text + 5;
        if (rest[0] != '/')
            return fail(error, "'%s': unix: needs an absolute socket path", text);
        if (strlen(rest) >= 108) /* sizeof(sun_path) */
            return fail(error, "'%s': socket path too long", text);
        out->scheme = UPSTREAM_UNIX;
        out->unix_path = xstrdup(rest);
        out->curl_url = xstrdup("http://localhost/");
        out->base_path = xstrdup("");
        out->text = xstrdup(text);
        return 0;
    }
    if (strncmp(text, "http://", 7) == 0) {
        out->scheme = UPSTREAM_HTTP;
        rest = text + 7;
    } else if (strncmp(text, "https://", 8) == 0) {
        out->scheme = UPSTREAM_HTTPS;
        rest = text + 8;
    } else {
        const char *colon = strstr(text, "://");
        if (colon)
            return fail(error, "unsupported scheme '%.*s'", (int)(colon - text), text);
        return fail(error, "'%s' is not an http://, https:// or unix: URL", text);
    }
    size_t authority_len = strcspn(rest, "/?#");
    if (authority_len == 0)
        return fail(error, "'%s': missing host", text);
    for (size_t i = 0; i < authority_len; i++) {
        char c = rest[i];
        if (c == '@')
            return fail(error, "'%s': credentials in the URL are not supported", text);
        if (!(http_is_tchar(c) || c == ':' || c == '[' || c == ']'))
            return fail(error, "'%s': invalid character in host", text);
    }
    if (!authority_is_valid(rest, authority_len))
        return fail(error, "'%s': expected host, host:port or [IPv6]:port with a port in 1..65535",
                    text);
    const char *path = rest + authority_len;
    if (path[0] == '?' || path[0] == '#' || strpbrk(path, "?#"))
        return fail(error, "'%s': a query or fragment is not allowed in an upstream", text);
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return fail(error, "'%s': invalid character in path", text);
    size_t path_len = strlen(path);
    while (path_len > 0 && path[path_len - 1] == '/')
        path_len--;
    size_t scheme_len = (size_t)(rest - text);
    out->curl_url = malloc(scheme_len + authority_len + 2);
    if (!out->curl_url)
        abort();
    memcpy(out->curl_url, text, scheme_len + authority_len);
    strcpy(out->curl_url + scheme_len + authority_len, "/");
    out->base_path = strndup(path, path_len);
    if (!out->base_path)
        abort();
    out->base_path_len = path_len;
    out->text = xstrdup(text);
    return 0;
}

static void upstream_target_clear(struct upstream_target *u)
{
    free(u->text);
    free(u->curl_url);
    free(u->unix_path);
    free(u->base_path);
    *u = (struct upstream_target){0};
}

static void string_list_free(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void route_clear(struct route *r)
{
    free(r->name);
    free(r->path_prefix);
    free(r->host);
    string_list_free(r->methods, r->methods_count);
    upstream_target_clear(&r->upstream);
    for (size_t i = 0; i < r->set_request_headers_count; i++) {
        free(r->set_request_headers[i].name);
        free(r->set_request_headers[i].value);
        free(r->set_request_headers[i].line);
    }
    free(r->set_request_headers);
}

struct config *config_free(struct config *c)
{
    if (!c)
        return NULL;
    free(c->source_path);
    free(c->service_name);
    for (size_t i = 0; i < c->listen_count; i++)
        free(c->listen[i].text);
    free(c->listen);
    free(c->admin_listen.text);
    free(c->request_id_header);
    free(c->access_log_path);
    string_list_free(c->access_log_fields, c->access_log_fields_count);
    string_list_free(c->access_log_redact, c->access_log_redact_count);
    for (size_t i = 0; i < c->routes_count; i++)
        route_clear(&c->routes[i]);
    free(c->routes);
    free(c);
    return NULL;
}

/* --- JSON helpers: each reports "path: reason" ------------------------------------------ */

#define KEY_SHOWN_MAX 64

/* "path.key: unknown key", the key written as a JSON string (ASCII) unless it is a plain name, so
 * that an empty key, or one holding spaces, colons or control characters, is still recognisable;
 * a long one is cut at KEY_SHOWN_MAX characters, so that the reason always fits in error. */
static int unknown_key(const char *path, const char *key, char *error)
{
    bool plain = key[0] != '\0';

    for (const char *p = key; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
            plain = false;
    json_t *quoted = plain ? NULL : json_string(key);
    char *text = quoted ? json_dumps(quoted, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    const char *shown = plain ? key : text ? text : "\"?\"";
    int rc = fail(error, "%s%s%.*s%s: unknown key", path, path[0] ? "." : "", KEY_SHOWN_MAX, shown,
                  strlen(shown) > KEY_SHOWN_MAX ? "..." : "");
    free(text);
    json_decref(quoted);
    return rc;
}

static int check_keys(json_t *obj, const char *path, const char *const *allowed, char *error)
{
    const char *key;
    json_t *value;

    if (!json_is_object(obj))
        return fail(error, "%s: must be an object", path);
    json_object_foreach(obj, key, value)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0)
                ok = true;
        if (!ok)
            return unknown_key(path, key, error);
    }
    return 0;
}

static int get_string(json_t *obj, const char *key, const char *path, const char **ret, char *error)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return fail(error, "%s%s%s: must be a string", path, path[0] ? "." : "", key);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return fail(error, "%s%s%s: must not contain NUL", path, path[0] ? "." : "", key);
    *ret = json_string_value(v);
    return 0;
}

static int get_bool(json_t *obj, const char *key, const char *path, bool *ret, char *error)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return fail(error, "%s%s%s: must be true or false", path, path[0] ? "." : "", key);
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
        return fail(error, "%s%s%s: must be an integer in %lld..%lld", path, path[0] ? "." : "",
                    key, min, max);
    *ret = json_integer_value(v);
    return 0;
}

static int parse_ratio(const char *text, double *ret)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (text[0] == '\0' || *end != '\0' || errno || !(v >= 0.0 && v <= 1.0))
        return -EINVAL;
    *ret = v;
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
        return fail(error, "%s.%s: must be a list of strings", path, key);
    char **list = calloc(json_array_size(v) + 1, sizeof(char *));
    if (!list)
        abort();
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item) || json_string_length(item) == 0) {
            string_list_free(list, i);
            return fail(error, "%s.%s[%zu]: must be a non-empty string", path, key, i);
        }
        list[i] = xstrdup(json_string_value(item));
    }
    string_list_free(*ret, *ret_count);
    *ret = list;
    *ret_count = json_array_size(v);
    return 0;
}

static int validate_header_names(char **names, size_t n, const char *path, char *error)
{
    for (size_t i = 0; i < n; i++)
        if (!http_is_token(names[i], strlen(names[i])))
            return fail(error, "%s[%zu]: '%s' is not a valid header name", path, i, names[i]);
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
            return fail(error, "access_log.fields[%zu]: longer than %d characters", i,
                        CONFIG_LOGGED_HEADER_NAME_MAX);
        if (len >= suffix_len && strcasecmp(names[i] + len - suffix_len, raw_suffix) == 0)
            return fail(error, "access_log.fields[%zu]: '%s': names ending in %s are reserved", i,
                        names[i], raw_suffix);
        for (size_t k = 0; k < i; k++)
            if (strcasecmp(names[k], names[i]) == 0)
                return fail(error, "access_log.fields[%zu]: '%s' is listed twice", i, names[i]);
    }
    return 0;
}

/* --- sections --------------------------------------------------------------------------- */

static int set_listen_list(struct config *c, const char *const *texts, size_t n, const char *path,
                           char *error)
{
    struct listen_address *list = calloc(n, sizeof(*list));
    if (!list)
        abort();
    for (size_t i = 0; i < n; i++) {
        char reason[CONFIG_ERROR_MAX];
        if (config_parse_address(texts[i], &list[i], reason) < 0) {
            for (size_t k = 0; k < i; k++)
                free(list[k].text);
            free(list);
            if (n > 1)
                return fail(error, "%s[%zu]: %s", path, i, reason);
            return fail(error, "%s: %s", path, reason);
        }
    }
    for (size_t i = 0; i < c->listen_count; i++)
        free(c->listen[i].text);
    free(c->listen);
    c->listen = list;
    c->listen_count = n;
    return 0;
}

static int set_admin_listen(struct config *c, const char *text, const char *path, char *error)
{
    char reason[CONFIG_ERROR_MAX];
    struct listen_address addr = {0};

    if (strcmp(text, "off") == 0) {
        c->admin_enabled = false;
        return 0;
    }
    if (config_parse_address(text, &addr, reason) < 0)
        return fail(error, "%s: %s", path, reason);
    free(c->admin_listen.text);
    c->admin_listen = addr;
    c->admin_enabled = true;
    return 0;
}

/* A host name (token characters) or a bracketed IPv6 literal, without a port. */
static bool host_is_valid(const char *host)
{
    size_t len = strlen(host);
    if (len >= 3 && host[0] == '[' && host[len - 1] == ']') {
        for (size_t i = 1; i < len - 1; i++)
            if (!(isxdigit((unsigned char)host[i]) || host[i] == ':' || host[i] == '.'))
                return false;
        return true;
    }
    return len > 0 && http_is_token(host, len) && !strchr(host, ':');
}

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
            return fail(error, "%s.path_prefix: must start with '/'", path);
        free(r->path_prefix);
        r->path_prefix = xstrdup(prefix);
        r->path_prefix_len = strlen(prefix);
    }
    if (host) {
        if (!host_is_valid(host))
            return fail(error, "%s.host: '%s' is not a host name", path, host);
        r->host = xstrdup(host);
    }
    if ((rc = get_string_list(match, "methods", path, &r->methods, &r->methods_count, error)) < 0)
        return rc;
    for (size_t i = 0; i < r->methods_count; i++)
        if (!http_is_token(r->methods[i], strlen(r->methods[i])))
            return fail(error, "%s.methods[%zu]: '%s' is not a method", path, i, r->methods[i]);
    return 0;
}

static int parse_set_request_headers(json_t *obj, struct route *r, const char *path, char *error)
{
    const char *key;
    json_t *value;
    size_t i = 0;

    if (!json_is_object(obj))
        return fail(error, "%s: must be an object of header names to values", path);
    r->set_request_headers = calloc(json_object_size(obj) + 1, sizeof(struct header_setting));
    if (!r->set_request_headers)
        abort();
    json_object_foreach(obj, key, value)
    {
        if (!http_is_token(key, strlen(key)))
            return fail(error, "%s.%s: not a valid header name", path, key);
        if (http_header_is_hop_by_hop(key, strlen(key)) || http_header_is_managed(key, strlen(key)))
            return fail(error, "%s.%s: tracehop manages this header itself", path, key);
        if (!json_is_string(value) ||
            !http_is_field_value(json_string_value(value), json_string_length(value)))
            return fail(error, "%s.%s: must be a string without control characters", path, key);
        struct header_setting *h = &r->set_request_headers[i++];
        h->name = xstrdup(key);
        h->value = xstrdup(json_string_value(value));
        if (asprintf(&h->line, "%s: %s", key, h->value) < 0)
            abort();
        r->set_request_headers_count = i;
    }
    return 0;
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
    if (name) {
        r->name = xstrdup(name);
    } else {
        char generated[32];
        snprintf(generated, sizeof(generated), "route%zu", index);
        r->name = xstrdup(generated);
    }
    if (!upstream)
        return fail(error, "%s.upstream: missing", path);
    char reason[CONFIG_ERROR_MAX];
    if (config_parse_upstream(upstream, &r->upstream, reason) < 0)
        return fail(error, "%s.upstream: %s", path, reason);
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
    return 0;
}

static void route_init_defaults(struct route *r)
{
    *r = (struct route){0};
    r->path_prefix = xstrdup("/");
    r->path_prefix_len = 1;
    r->connect_timeout_ms = 5000;
    r->timeout_ms = 60000;
}

static int parse_routes(json_t *list, struct config *c, char *error)
{
    size_t i;
    json_t *item;

    if (!json_is_array(list))
        return fail(error, "routes: must be a list");
    c->routes = calloc(json_array_size(list) + 1, sizeof(struct route));
    if (!c->routes)
        abort();
    json_array_foreach(list, i, item)
    {
        route_init_defaults(&c->routes[i]);
        c->routes_count = i + 1;
        int rc = parse_route(item, &c->routes[i], i, error);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_trace(json_t *obj, struct config *c, char *error)
{
    static const char *const keys[] = {"request_id_header", "sampling_ratio", "trust_incoming",
                                       "echo", NULL};
    const char *header = NULL;
    int rc;

    if ((rc = check_keys(obj, "trace", keys, error)) < 0 ||
        (rc = get_string(obj, "request_id_header", "trace", &header, error)) < 0 ||
        (rc = get_bool(obj, "trust_incoming", "trace", &c->trust_incoming, error)) < 0 ||
        (rc = get_bool(obj, "echo", "trace", &c->echo, error)) < 0)
        return rc;
    if (header) {
        free(c->request_id_header);
        c->request_id_header = xstrdup(header);
    }
    json_t *ratio = json_object_get(obj, "sampling_ratio");
    if (ratio) {
        if (!json_is_number(ratio) || !(json_number_value(ratio) >= 0.0) ||
            json_number_value(ratio) > 1.0)
            return fail(error, "trace.sampling_ratio: must be a number in 0..1");
        c->sampling_ratio = json_number_value(ratio);
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
        return fail(error, "access_log.fields: at most %d headers", CONFIG_MAX_LOGGED_HEADERS);
    if (path) {
        if (path[0] == '\0')
            return fail(error, "access_log.path: must not be empty (use \"-\" for stdout)");
        free(c->access_log_path);
        c->access_log_path = xstrdup(path);
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

/* The config file: its contents when given (contents_len bytes), otherwise read from path.
 * `path` names the source in errors either way. */
static int parse_file(const char *path, const char *contents, size_t contents_len, struct config *c,
                      char *error)
{
    static const char *const keys[] = {"service_name", "listen", "admin",  "workers", "trace",
                                       "access_log",   "limits", "routes", "otlp",    NULL};
    const size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
    json_error_t jerr;
    json_t *root = contents ? json_loadb(contents, contents_len, flags, &jerr)
                            : json_load_file(path, flags, &jerr);
    const char *service = NULL;
    long long workers = c->workers;
    int rc;

    if (!root)
        return fail(error, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        rc = fail(error, "%s: the configuration must be an object", path);
        goto out;
    }
    if ((rc = check_keys(root, "", keys, error)) < 0)
        goto out;
    if ((rc = get_string(root, "service_name", "", &service, error)) < 0 ||
        (rc = get_integer(root, "workers", "", 1, MAX_WORKERS, &workers, error)) < 0)
        goto out;
    if (service && service[0] == '\0') {
        rc = fail(error, "service_name: must not be empty");
        goto out;
    }
    if (service) {
        free(c->service_name);
        c->service_name = xstrdup(service);
    }
    c->workers = (unsigned)workers;

    json_t *listen = json_object_get(root, "listen");
    if (json_is_string(listen)) {
        const char *text = json_string_value(listen);
        if ((rc = set_listen_list(c, &text, 1, "listen", error)) < 0)
            goto out;
    } else if (json_is_array(listen) && json_array_size(listen) > 0) {
        const char *texts[64];
        size_t i;
        json_t *item;
        if (json_array_size(listen) > 64) {
            rc = fail(error, "listen: at most 64 addresses");
            goto out;
        }
        json_array_foreach(listen, i, item)
        {
            if (!json_is_string(item)) {
                rc = fail(error, "listen[%zu]: must be a string", i);
                goto out;
            }
            texts[i] = json_string_value(item);
        }
        if ((rc = set_listen_list(c, texts, json_array_size(listen), "listen", error)) < 0)
            goto out;
    } else if (listen) {
        rc = fail(error, "listen: must be an address or a non-empty list of addresses");
        goto out;
    }

    json_t *admin = json_object_get(root, "admin");
    if (admin) {
        static const char *const admin_keys[] = {"listen", NULL};
        const char *text = NULL;
        if ((rc = check_keys(admin, "admin", admin_keys, error)) < 0 ||
            (rc = get_string(admin, "listen", "admin", &text, error)) < 0)
            goto out;
        if (text && (rc = set_admin_listen(c, text, "admin.listen", error)) < 0)
            goto out;
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
    if ((section = json_object_get(root, "otlp")) && !json_is_object(section)) {
        rc = fail(error, "otlp: must be an object");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* How the user spelt a setting: "--listen" for a flag, "TRACEHOP_LISTEN" for the environment. */
static const char *override_name(bool from_env, const char *flag, char *buf, size_t size)
{
    if (!from_env) {
        snprintf(buf, size, "--%s", flag);
        return buf;
    }
    size_t n = (size_t)snprintf(buf, size, "TRACEHOP_%s", flag);
    for (size_t i = 9; i < n && i < size; i++)
        buf[i] = buf[i] == '-' ? '_' : (char)toupper((unsigned char)buf[i]);
    return buf;
}

static int apply_overrides(struct config *c, const struct config_overrides *o, bool from_env,
                           char *error)
{
    char name[64];
#define NAME(flag) override_name(from_env, flag, name, sizeof(name))
    int rc;
    const struct {
        const char *value, *flag;
    } texts[] = {
        {o->listen, "listen"},
        {o->upstream, "upstream"},
        {o->admin_listen, "admin-listen"},
        {o->access_log, "access-log"},
        {o->service_name, "service-name"},
        {o->sampling_ratio, "sampling-ratio"},
        {o->trace_header, "trace-header"},
        {o->workers, "workers"},
    };

    /* What a flag or variable can say, the file (JSON, so UTF-8) can say too, and --check-config
     * can print: a value in another encoding (a Latin-1 service name, say) is refused. */
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (texts[i].value && !utf8_is_valid(texts[i].value, strlen(texts[i].value)))
            return fail(error, "%s: must be valid UTF-8", NAME(texts[i].flag));

    if (o->service_name) {
        if (o->service_name[0] == '\0')
            return fail(error, "%s: must not be empty", NAME("service-name"));
        free(c->service_name);
        c->service_name = xstrdup(o->service_name);
    }
    if (o->listen) {
        if ((rc = set_listen_list(c, &o->listen, 1, NAME("listen"), error)) < 0)
            return rc;
    }
    if (o->admin_listen) {
        if ((rc = set_admin_listen(c, o->admin_listen, NAME("admin-listen"), error)) < 0)
            return rc;
    }
    if (o->access_log) {
        if (o->access_log[0] == '\0')
            return fail(error, "%s: must not be empty (use - for stdout)", NAME("access-log"));
        free(c->access_log_path);
        c->access_log_path = xstrdup(o->access_log);
    }
    if (o->sampling_ratio && parse_ratio(o->sampling_ratio, &c->sampling_ratio) < 0)
        return fail(error, "%s: '%s' is not a number in 0..1",
                    from_env ? "TRACEHOP_SAMPLING_RATIO" : "sampling ratio", o->sampling_ratio);
    if (o->trace_header) {
        free(c->request_id_header);
        c->request_id_header = xstrdup(o->trace_header);
    }
    if (o->workers) {
        char *end;
        long n = strtol(o->workers, &end, 10);
        if (o->workers[0] == '\0' || *end || n < 1 || n > MAX_WORKERS)
            return fail(error, "%s: '%s' is not a number in 1..%d", NAME("workers"), o->workers,
                        MAX_WORKERS);
        c->workers = (unsigned)n;
    }
    if (o->upstream) {
        /* --upstream replaces the routes with one catch-all route (SPEC section 1). */
        char reason[CONFIG_ERROR_MAX];
        struct route r;
        route_init_defaults(&r);
        if (config_parse_upstream(o->upstream, &r.upstream, reason) < 0) {
            route_clear(&r);
            return fail(error, "%s: %s", NAME("upstream"), reason);
        }
        r.name = xstrdup("default");
        for (size_t i = 0; i < c->routes_count; i++)
            route_clear(&c->routes[i]);
        free(c->routes);
        c->routes = calloc(1, sizeof(struct route));
        if (!c->routes)
            abort();
        c->routes[0] = r;
        c->routes_count = 1;
    }
    return 0;
}
#undef NAME

/* An empty variable counts as unset: a container orchestrator can blank a variable an image
 * sets but not remove it. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

void config_overrides_from_env(struct config_overrides *env)
{
    *env = (struct config_overrides){
        .config = env_value("TRACEHOP_CONFIG"),
        .listen = env_value("TRACEHOP_LISTEN"),
        .upstream = env_value("TRACEHOP_UPSTREAM"),
        .admin_listen = env_value("TRACEHOP_ADMIN_LISTEN"),
        .access_log = env_value("TRACEHOP_ACCESS_LOG"),
        .service_name = env_value("TRACEHOP_SERVICE_NAME"),
        .sampling_ratio = env_value("TRACEHOP_SAMPLING_RATIO"),
        .trace_header = env_value("TRACEHOP_TRACE_HEADER"),
        .workers = env_value("TRACEHOP_WORKERS"),
    };
}

/* CPUs this process may use: its affinity mask (cpusets), capped by a cgroup v2 CPU quota
 * (cpu.max, what a container's CPU limit becomes), rounded up. */
static unsigned default_workers(void)
{
    cpu_set_t set;
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "re");
    if (f) {
        char quota[32];
        long period;
        if (fscanf(f, "%31s %ld", quota, &period) == 2 && strcmp(quota, "max") != 0 && period > 0) {
            long cpus = (atol(quota) + period - 1) / period;
            if (cpus >= 1 && cpus < n)
                n = cpus;
        }
        fclose(f);
    }
    if (n < 1)
        return 1;
    return n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

/* config_load and config_load_text: the file read from path, or given as text. */
static int load(const char *path, const char *text, size_t text_len,
                const struct config_overrides *flags, const struct config_overrides *env,
                struct config **ret, char *error)
{
    struct config *c = calloc(1, sizeof(*c));
    const char *default_listen = DEFAULT_LISTEN;
    int rc;

    if (!c)
        return -ENOMEM;
    c->service_name = xstrdup("tracehop");
    c->workers = default_workers();
    c->request_id_header = xstrdup("X-Trace-ID");
    c->sampling_ratio = 1.0;
    c->trust_incoming = true;
    c->echo = true;
    c->access_log_path = xstrdup("-");
    c->max_header_bytes = 8192;
    c->max_body_bytes = 0;
    c->max_connections = 10000;
    c->client_timeout_s = 60;
    c->client_header_timeout_ms = 10000;
    c->drain_delay_ms = 5000;    /* long enough for a load balancer to see /readyz fail */
    c->drain_timeout_ms = 20000; /* 5 + 20 s fits Kubernetes' default 30 s grace period */
    if ((rc = set_listen_list(c, &default_listen, 1, "listen", error)) < 0 ||
        (rc = set_admin_listen(c, DEFAULT_ADMIN_LISTEN, "admin.listen", error)) < 0)
        goto fail;
    if (path) {
        c->source_path = xstrdup(path);
        if ((rc = parse_file(path, text, text_len, c, error)) < 0)
            goto fail;
    }
    if ((rc = apply_overrides(c, env, true, error)) < 0 ||
        (rc = apply_overrides(c, flags, false, error)) < 0)
        goto fail;
    for (size_t i = 0; i < c->routes_count; i++) {
        const struct route *r = &c->routes[i];
        for (size_t k = 0; k < r->set_request_headers_count; k++) {
            if (strcasecmp(r->set_request_headers[k].name, c->request_id_header) == 0) {
                rc = fail(error,
                          "routes[%zu].set_request_headers.%s: tracehop manages this "
                          "header itself",
                          i, r->set_request_headers[k].name);
                goto fail;
            }
        }
    }
    if (!http_is_token(c->request_id_header, strlen(c->request_id_header))) {
        rc = fail(error, "trace.request_id_header: '%s' is not a valid header name",
                  c->request_id_header);
        goto fail;
    }
    if (c->routes_count == 0) {
        rc = fail(error, "routes: no route and no --upstream: nothing to forward to");
        goto fail;
    }
    for (size_t i = 0; i < c->routes_count; i++) {
        if (route_slot_register(c->routes[i].name, &c->routes[i].metrics_slot) < 0) {
            snprintf(error, CONFIG_ERROR_MAX, "out of memory");
            rc = -ENOMEM;
            goto fail;
        }
    }
    atomic_init(&c->refs, 1);
    *ret = c;
    return 0;
fail:
    config_free(c);
    return rc;
}

int config_load(const char *path, const struct config_overrides *flags,
                const struct config_overrides *env, struct config **ret, char *error)
{
    return load(path, NULL, 0, flags, env, ret, error);
}

int config_load_text(const char *source, const char *text, size_t text_len,
                     const struct config_overrides *flags, const struct config_overrides *env,
                     struct config **ret, char *error)
{
    return load(source, text, text_len, flags, env, ret, error);
}

void config_ref(const struct config *config)
{
    atomic_fetch_add(&((struct config *)config)->refs, 1);
}

void config_unref(const struct config *config)
{
    if (config && atomic_fetch_sub(&((struct config *)config)->refs, 1) == 1)
        config_free((struct config *)config);
}

static bool same_string(const char *a, const char *b)
{
    return (a == NULL) == (b == NULL) && (!a || strcmp(a, b) == 0);
}

bool config_needs_restart(const struct config *old, const struct config *new, char *what)
{
    const char *key = NULL;

    if (old->listen_count != new->listen_count) {
        key = "listen";
    } else {
        for (size_t i = 0; i < old->listen_count; i++)
            if (strcmp(old->listen[i].text, new->listen[i].text) != 0)
                key = "listen";
    }
    if (!key && (old->admin_enabled != new->admin_enabled ||
                 (old->admin_enabled && strcmp(old->admin_listen.text, new->admin_listen.text))))
        key = "admin.listen";
    if (!key && old->workers != new->workers)
        key = "workers";
    if (!key && !same_string(old->access_log_path, new->access_log_path))
        key = "access_log.path";
    if (!key && old->max_header_bytes != new->max_header_bytes)
        key = "limits.max_header_bytes";
    if (!key && old->max_connections != new->max_connections)
        key = "limits.max_connections";
    if (!key && old->client_timeout_s != new->client_timeout_s)
        key = "limits.client_timeout_ms";
    if (!key)
        return false;
    snprintf(what, CONFIG_ERROR_MAX, "%s", key);
    return true;
}

static json_t *string_list_json(char **list, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

char *config_to_text(const struct config *c)
{
    json_t *root = json_object();
    json_t *listen = json_array();
    json_t *routes = json_array();

    for (size_t i = 0; i < c->listen_count; i++)
        json_array_append_new(listen, json_string(c->listen[i].text));
    for (size_t i = 0; i < c->routes_count; i++) {
        const struct route *r = &c->routes[i];
        json_t *set = json_object();
        for (size_t k = 0; k < r->set_request_headers_count; k++)
            json_object_set_new(set, r->set_request_headers[k].name,
                                json_string(r->set_request_headers[k].value));
        json_t *match = json_pack("{s:s}", "path_prefix", r->path_prefix);
        if (r->host)
            json_object_set_new(match, "host", json_string(r->host));
        if (r->methods)
            json_object_set_new(match, "methods", string_list_json(r->methods, r->methods_count));
        json_array_append_new(
            routes, json_pack("{s:s, s:o, s:s, s:b, s:I, s:I, s:o}", "name", r->name, "match",
                              match, "upstream", r->upstream.text, "strip_prefix", r->strip_prefix,
                              "connect_timeout_ms", (json_int_t)r->connect_timeout_ms, "timeout_ms",
                              (json_int_t)r->timeout_ms, "set_request_headers", set));
    }
    json_object_set_new(root, "service_name", json_string(c->service_name));
    json_object_set_new(root, "listen", listen);
    json_object_set_new(
        root, "admin",
        json_pack("{s:s}", "listen", c->admin_enabled ? c->admin_listen.text : "off"));
    json_object_set_new(root, "workers", json_integer(c->workers));
    json_object_set_new(root, "trace",
                        json_pack("{s:s, s:f, s:b, s:b}", "request_id_header", c->request_id_header,
                                  "sampling_ratio", c->sampling_ratio, "trust_incoming",
                                  c->trust_incoming, "echo", c->echo));
    json_object_set_new(
        root, "access_log",
        json_pack("{s:s, s:o, s:o}", "path", c->access_log_path, "fields",
                  string_list_json(c->access_log_fields, c->access_log_fields_count), "redact",
                  string_list_json(c->access_log_redact, c->access_log_redact_count)));
    json_object_set_new(
        root, "limits",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "max_header_bytes",
                  (json_int_t)c->max_header_bytes, "max_body_bytes", (json_int_t)c->max_body_bytes,
                  "max_connections", (json_int_t)c->max_connections, "client_timeout_ms",
                  (json_int_t)c->client_timeout_s * 1000, "client_header_timeout_ms",
                  (json_int_t)c->client_header_timeout_ms, "drain_delay_ms",
                  (json_int_t)c->drain_delay_ms, "drain_timeout_ms",
                  (json_int_t)c->drain_timeout_ms));
    json_object_set_new(root, "routes", routes);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

int config_print(const struct config *c)
{
    char *text = config_to_text(c);
    int rc = text && fputs(text, stdout) >= 0 && fputc('\n', stdout) != EOF ? 0 : -EIO;

    free(text);
    return rc;
}
