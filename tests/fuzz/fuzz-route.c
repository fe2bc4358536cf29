/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target: route_match and route_upstream_target, checked against a reference written here
 * from docs/configuration.md ("routes[]").
 *
 * Input layout (readable, so that seeds can be written by hand): lines, fields separated by TAB.
 *   R<path_prefix> TAB <host> TAB <methods> TAB <upstream> TAB <strip>    a route, in order
 *       host empty: any host; methods empty: any method, else comma-separated; upstream empty:
 *       "http://u"; strip "1": strip_prefix. Missing trailing fields take those defaults.
 *   Q<method> TAB <target> [TAB <host>]                                   a request
 *       no host field: the request had no Host header (NULL); an empty one: "Host:" with nothing.
 *   Other lines are ignored. At most MAX_ROUTES routes and MAX_REQUESTS requests.
 *
 * The routes are built the way the config loader builds them, and only as the loader would
 * accept them: a prefix that starts with '/', a host that is a token without ':' or a bracketed
 * IPv6 literal, token methods, an upstream that config_parse_upstream (the loader's own parser)
 * accepts, no NUL anywhere. A route line that breaks one of these is dropped. Requests are not
 * restricted: the target and host are any bytes (a host ends at a NUL, as request.c passes it
 * with strlen; the method is a C string too).
 *
 * The target and the host are copied into exactly-sized heap blocks, and route_upstream_target
 * writes into an exactly-sized heap block, so AddressSanitizer sees any access past an end.
 *
 * Asserted for every request:
 *   - route_match returns the first route, in order, whose prefix matches the path (the target
 *     up to the first '?') at a segment boundary, whose host (if any) equals the Host header
 *     without its port, ASCII case-insensitively, and whose methods (if any) list the method
 *     exactly; NULL when there is none;
 *   - for a matched route, route_upstream_target gives the base path, then the target with the
 *     prefix removed when strip_prefix is set (keeping the '/' a prefix ends with), then a '/' in
 *     front if what is left is empty or does not start with one; the query is kept byte for byte;
 *   - it needs exactly length + 1 bytes: with that much room it writes the whole NUL-terminated
 *     result, with one byte less (and with none) it returns 0 and writes nothing past the end.
 */

#include <ctype.h>

#include "config/config.h"
#include "common/http_syntax.h"
#include "proxy/route.h"

#include "fuzz.h"

#define MAX_ROUTES   16
#define MAX_REQUESTS 16
#define MAX_FIELDS   5

struct field {
    const uint8_t *ptr;
    size_t len;
};

struct request_input {
    char *method;
    char *target; /* exactly target_len bytes */
    size_t target_len;
    char *host; /* exactly host_len bytes, or NULL */
    size_t host_len;
};

static size_t split_fields(const uint8_t *line, size_t len, struct field fields[MAX_FIELDS])
{
    size_t count = 0, start = 0;

    for (size_t i = 0; i <= len && count < MAX_FIELDS; i++) {
        if (i == len || line[i] == '\t') {
            fields[count++] = (struct field){line + start, i - start};
            start = i + 1;
        }
    }
    return count;
}

static char *field_strdup(struct field f)
{
    char *copy = malloc(f.len + 1);

    if (!copy)
        abort();
    memcpy(copy, f.ptr, f.len);
    copy[f.len] = '\0';
    return copy;
}

static bool has_nul(struct field f)
{
    return memchr(f.ptr, '\0', f.len) != NULL;
}

/* The loader's rule for match.host (config.c, host_is_valid). */
static bool host_is_valid(const char *host, size_t len)
{
    if (len >= 3 && host[0] == '[' && host[len - 1] == ']') {
        for (size_t i = 1; i < len - 1; i++)
            if (!(isxdigit((unsigned char)host[i]) || host[i] == ':' || host[i] == '.'))
                return false;
        return true;
    }
    return len > 0 && http_is_token(host, len) && !memchr(host, ':', len);
}

/* What parse_route allocated for a route it then dropped (config_free releases the others). */
static void route_release(struct route *r)
{
    free(r->name);
    free(r->path_prefix);
    free(r->host);
    for (size_t i = 0; i < r->methods_count; i++)
        free(r->methods[i]);
    free(r->methods);
    free(r->upstream.text);
    free(r->upstream.curl_url);
    free(r->upstream.unix_path);
    free(r->upstream.base_path);
    *r = (struct route){0};
}

/* A route from a line, or false if the loader would not have accepted it. */
static bool parse_route(const struct field *fields, size_t count, struct route *r)
{
    char error[CONFIG_ERROR_MAX];
    struct field prefix = fields[0];

    for (size_t i = 0; i < count; i++)
        if (has_nul(fields[i]))
            return false;
    if (prefix.len == 0 || prefix.ptr[0] != '/')
        return false;
    *r = (struct route){.connect_timeout_ms = 5000, .timeout_ms = 60000};
    r->path_prefix = field_strdup(prefix);
    r->path_prefix_len = prefix.len;
    r->name = strdup("fuzz");
    if (count > 1 && fields[1].len > 0) {
        r->host = field_strdup(fields[1]);
        if (!host_is_valid(r->host, fields[1].len))
            return false;
    }
    if (count > 2 && fields[2].len > 0) {
        const uint8_t *p = fields[2].ptr, *end = p + fields[2].len;

        r->methods = calloc(fields[2].len + 1, sizeof(char *));
        FUZZ_CHECK(r->methods);
        while (p <= end) {
            const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
            struct field m = {p, (size_t)((comma ? comma : end) - p)};

            r->methods[r->methods_count++] = field_strdup(m);
            if (!http_is_token((const char *)m.ptr, m.len))
                return false;
            p = m.ptr + m.len + 1;
        }
    }
    char *upstream = count > 3 && fields[3].len > 0 ? field_strdup(fields[3]) : strdup("http://u");
    int rc = config_parse_upstream(upstream, &r->upstream, error);
    free(upstream);
    if (rc < 0)
        return false;
    r->strip_prefix = count > 4 && fields[4].len == 1 && fields[4].ptr[0] == '1';
    return true;
}

static void parse_request(const struct field *fields, size_t count, struct request_input *q)
{
    q->method = field_strdup(fields[0]); /* a C string: ends at a NUL, if any */
    q->target_len = count > 1 ? fields[1].len : 0;
    q->target = fuzz_memdup(count > 1 ? fields[1].ptr : NULL, q->target_len);
    if (count > 2) {
        q->host_len = strnlen((const char *)fields[2].ptr, fields[2].len);
        q->host = fuzz_memdup(fields[2].ptr, q->host_len);
    }
}

/* --- the reference ------------------------------------------------------------------------- */

static bool ref_prefix_matches(const struct route *r, const char *path, size_t path_len)
{
    const char *prefix = r->path_prefix;
    size_t n = strlen(prefix);

    if (strcmp(prefix, "/") == 0)
        return true;
    if (path_len < n || memcmp(path, prefix, n) != 0)
        return false;
    if (prefix[n - 1] == '/') /* "/api/" matches "/api/x" */
        return true;
    return path_len == n || path[n] == '/'; /* "/api" matches "/api", "/api/x", not "/apix" */
}

/* The Host value without ":port": the last ':' that is not inside a bracketed IPv6 literal. */
static size_t ref_host_without_port(const char *host, size_t len)
{
    size_t last_bracket = SIZE_MAX;

    for (size_t i = 0; i < len; i++)
        if (host[i] == ']')
            last_bracket = i;
    for (size_t i = len; i-- > 0;) {
        if (last_bracket != SIZE_MAX && i < last_bracket)
            break;
        if (host[i] == ':')
            return i;
    }
    return len;
}

static bool ref_host_matches(const struct route *r, const char *host, size_t host_len)
{
    size_t n;

    if (!r->host)
        return true;
    if (!host)
        return false;
    n = ref_host_without_port(host, host_len);
    if (strlen(r->host) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)r->host[i]) != tolower((unsigned char)host[i]))
            return false;
    return true;
}

static bool ref_method_matches(const struct route *r, const char *method)
{
    if (!r->methods)
        return true;
    for (size_t i = 0; i < r->methods_count; i++)
        if (strcmp(r->methods[i], method) == 0)
            return true;
    return false;
}

static const struct route *ref_match(const struct config *c, const struct request_input *q,
                                     size_t path_len)
{
    for (size_t i = 0; i < c->routes_count; i++) {
        const struct route *r = &c->routes[i];

        if (ref_prefix_matches(r, q->target, path_len) &&
            ref_host_matches(r, q->host, q->host_len) && ref_method_matches(r, q->method))
            return r;
    }
    return NULL;
}

/* The expected upstream target, malloc'd, its length in *ret_len. */
static char *ref_upstream_target(const struct route *r, const struct request_input *q,
                                 size_t *ret_len)
{
    const char *rest = q->target;
    size_t rest_len = q->target_len, base = r->upstream.base_path_len, len = 0;
    char *out = malloc(base + 1 + q->target_len + 1);

    FUZZ_CHECK(out);
    if (r->strip_prefix && strcmp(r->path_prefix, "/") != 0) {
        size_t n = strlen(r->path_prefix);

        if (r->path_prefix[n - 1] == '/')
            n--; /* "/upload/" strips "/upload", leaving "/a" of "/upload/a" */
        FUZZ_CHECK(n <= rest_len);
        rest += n;
        rest_len -= n;
    }
    memcpy(out, r->upstream.base_path, base);
    len = base;
    if (rest_len == 0 || rest[0] != '/')
        out[len++] = '/';
    memcpy(out + len, rest, rest_len);
    len += rest_len;
    *ret_len = len;
    return out;
}

static void check_upstream_target(const struct route *r, const struct request_input *q,
                                  size_t path_len)
{
    size_t expected_len;
    char *expected = ref_upstream_target(r, q, &expected_len);
    char *out = malloc(expected_len + 1);
    size_t len;

    FUZZ_CHECK(out);
    len = route_upstream_target(r, q->target, q->target_len, out, expected_len + 1);
    FUZZ_CHECK(len == expected_len);
    FUZZ_CHECK(memcmp(out, expected, len) == 0 && out[len] == '\0');
    /* Independent of the reference: base path first, the query kept byte for byte. */
    FUZZ_CHECK(memcmp(out, r->upstream.base_path, r->upstream.base_path_len) == 0);
    FUZZ_CHECK(out[r->upstream.base_path_len] == '/');
    FUZZ_CHECK(len >= q->target_len - path_len &&
               memcmp(out + len - (q->target_len - path_len), q->target + path_len,
                      q->target_len - path_len) == 0);
    free(out);

    /* One byte short, or no room at all: nothing. The block is exactly that size. */
    out = malloc(expected_len > 0 ? expected_len : 1);
    FUZZ_CHECK(out);
    FUZZ_CHECK(route_upstream_target(r, q->target, q->target_len, out, expected_len) == 0);
    FUZZ_CHECK(route_upstream_target(r, q->target, q->target_len, out, 0) == 0);
    free(out);
    free(expected);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config *config = calloc(1, sizeof(*config));
    struct request_input requests[MAX_REQUESTS] = {0};
    size_t requests_count = 0, offset = 0;

    FUZZ_CHECK(config);
    config->routes = calloc(MAX_ROUTES, sizeof(struct route));
    FUZZ_CHECK(config->routes);
    while (offset < size) {
        const uint8_t *line = data + offset;
        const uint8_t *newline = memchr(line, '\n', size - offset);
        size_t line_len = newline ? (size_t)(newline - line) : size - offset;
        struct field fields[MAX_FIELDS];
        size_t count;

        offset += line_len + 1;
        if (line_len == 0)
            continue;
        count = split_fields(line + 1, line_len - 1, fields);
        if (line[0] == 'R' && config->routes_count < MAX_ROUTES) {
            struct route *r = &config->routes[config->routes_count];

            if (parse_route(fields, count, r))
                config->routes_count++;
            else
                route_release(r);
        } else if (line[0] == 'Q' && requests_count < MAX_REQUESTS) {
            parse_request(fields, count, &requests[requests_count++]);
        }
    }

    for (size_t i = 0; i < requests_count; i++) {
        const struct request_input *q = &requests[i];
        const char *question = memchr(q->target, '?', q->target_len);
        size_t path_len = question ? (size_t)(question - q->target) : q->target_len;
        const struct route *got =
            route_match(config, q->target, path_len, q->host, q->host_len, q->method);
        const struct route *expected = ref_match(config, q, path_len);

        FUZZ_CHECK(got == expected);
        if (got)
            check_upstream_target(got, q, path_len);
    }

    for (size_t i = 0; i < requests_count; i++) {
        free(requests[i].method);
        free(requests[i].target);
        free(requests[i].host);
    }
    config_free(config);
    return 0;
}
