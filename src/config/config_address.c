/* SPDX-License-Identifier: MIT */
/*
 * Addresses and upstream URLs (docs/configuration.md: `listen`, `admin.listen`, and a route's
 * `upstream` under "routes[]"). A listen address is HOST:PORT, [IPv6]:PORT or :PORT, resolved
 * once, here, with getaddrinfo (numerically for an IPv6 literal). An upstream is http://,
 * https:// (host, optional port in 1..65535, optional base path) or unix:/absolute/path; no
 * credentials, query or fragment. Anything that could never be connected to is refused here,
 * before anything listens, rather than turning into a 502 on every request.
 *
 * The setters config_set_listen and config_set_admin_listen apply a parsed address to a config
 * under construction for the JSON file and the overrides alike. Pure but for the resolver: no
 * logging, errors into `error`, out of memory as -ENOMEM.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "common/http_syntax.h"

int config_parse_address(const char *text, struct listen_address *out, char *error)
{
    char host[256];
    const char *port_text;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host))
            return config_fail(error, "'%s' is not [IPv6]:PORT", text);
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port_text = close + 2;
        hints.ai_family = AF_INET6;
        hints.ai_flags |= AI_NUMERICHOST;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof(host))
            return config_fail(error, "'%s' is not HOST:PORT", text);
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        if (strchr(host, ':'))
            return config_fail(error, "'%s': write IPv6 addresses as [ADDR]:PORT", text);
        port_text = colon + 1;
        if (host[0] == '\0')
            strcpy(host, "0.0.0.0");
        hints.ai_family = AF_INET;
    }
    char *end;
    errno = 0;
    long port = strtol(port_text, &end, 10);
    if (port_text[0] == '\0' || *end != '\0' || errno || port < 0 || port > 65535)
        return config_fail(error, "'%s': port must be 0..65535", text);
    int rc = getaddrinfo(host, port_text, &hints, &res);
    if (rc == EAI_MEMORY || (rc == EAI_SYSTEM && errno == ENOMEM))
        return config_nomem(error);
    if (rc != 0)
        return config_fail(error, "'%s': %s", text, gai_strerror(rc));
    char *copy = strdup(text);
    if (!copy) {
        freeaddrinfo(res);
        return config_nomem(error);
    }
    memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
    out->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    out->text = copy;
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

/* The unix: form, text's rest after "unix:". */
static int parse_unix_upstream(const char *text, const char *rest, struct upstream_target *out,
                               char *error)
{
    if (rest[0] != '/')
        return config_fail(error, "'%s': unix: needs an absolute socket path", text);
    if (strlen(rest) >= 108) /* sizeof(sun_path) */
        return config_fail(error, "'%s': socket path too long", text);
    out->scheme = UPSTREAM_UNIX;
    out->unix_path = strdup(rest);
    out->curl_url = strdup("http://localhost/");
    out->base_path = strdup("");
    out->text = strdup(text);
    if (!out->unix_path || !out->curl_url || !out->base_path || !out->text) {
        config_upstream_clear(out);
        return config_nomem(error);
    }
    return 0;
}

int config_parse_upstream(const char *text, struct upstream_target *out, char *error)
{
    const char *rest;
    *out = (struct upstream_target){0};

    if (strncmp(text, "unix:", 5) == 0)
        return parse_unix_upstream(text, text + 5, out, error);
    if (strncmp(text, "http://", 7) == 0) {
        out->scheme = UPSTREAM_HTTP;
        rest = text + 7;
    } else if (strncmp(text, "https://", 8) == 0) {
        out->scheme = UPSTREAM_HTTPS;
        rest = text + 8;
    } else {
        const char *colon = strstr(text, "://");
        if (colon)
            return config_fail(error, "unsupported scheme '%.*s'", (int)(colon - text), text);
        return config_fail(error, "'%s' is not an http://, https:// or unix: URL", text);
    }
    size_t authority_len = strcspn(rest, "/?#");
    if (authority_len == 0)
        return config_fail(error, "'%s': missing host", text);
    for (size_t i = 0; i < authority_len; i++) {
        char c = rest[i];
        if (c == '@')
            return config_fail(error, "'%s': credentials in the URL are not supported", text);
        if (!(http_is_tchar(c) || c == ':' || c == '[' || c == ']'))
            return config_fail(error, "'%s': invalid character in host", text);
    }
    if (!authority_is_valid(rest, authority_len))
        return config_fail(
            error, "'%s': expected host, host:port or [IPv6]:port with a port in 1..65535", text);
    const char *path = rest + authority_len;
    if (path[0] == '?' || path[0] == '#' || strpbrk(path, "?#"))
        return config_fail(error, "'%s': a query or fragment is not allowed in an upstream", text);
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return config_fail(error, "'%s': invalid character in path", text);
    size_t path_len = strlen(path);
    while (path_len > 0 && path[path_len - 1] == '/')
        path_len--;
    size_t scheme_len = (size_t)(rest - text);
    out->curl_url = malloc(scheme_len + authority_len + 2);
    out->base_path = strndup(path, path_len);
    out->text = strdup(text);
    if (!out->curl_url || !out->base_path || !out->text) {
        config_upstream_clear(out);
        return config_nomem(error);
    }
    memcpy(out->curl_url, text, scheme_len + authority_len);
    strcpy(out->curl_url + scheme_len + authority_len, "/");
    out->base_path_len = path_len;
    return 0;
}

bool config_host_is_valid(const char *host)
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

int config_set_listen(struct config *c, const char *const *texts, size_t n, const char *path,
                      char *error)
{
    struct listen_address *list = calloc(n, sizeof(*list));
    if (!list)
        return config_nomem(error);
    for (size_t i = 0; i < n; i++) {
        char reason[CONFIG_ERROR_MAX];
        int rc = config_parse_address(texts[i], &list[i], reason);
        if (rc < 0) {
            for (size_t k = 0; k < i; k++)
                free(list[k].text);
            free(list);
            if (rc == -ENOMEM)
                return config_nomem(error);
            if (n > 1)
                return config_fail(error, "%s[%zu]: %s", path, i, reason);
            return config_fail(error, "%s: %s", path, reason);
        }
    }
    for (size_t i = 0; i < c->listen_count; i++)
        free(c->listen[i].text);
    free(c->listen);
    c->listen = list;
    c->listen_count = n;
    return 0;
}

int config_set_admin_listen(struct config *c, const char *text, const char *path, char *error)
{
    char reason[CONFIG_ERROR_MAX];
    struct listen_address addr = {0};

    if (strcasecmp(text, "off") == 0) { /* OFF, Off: a shell variable is often upper-case */
        c->admin_enabled = false;
        return 0;
    }
    int rc = config_parse_address(text, &addr, reason);
    if (rc == -ENOMEM)
        return config_nomem(error);
    if (rc < 0)
        return config_fail(error, "%s: %s", path, reason);
    free(c->admin_listen.text);
    c->admin_listen = addr;
    c->admin_enabled = true;
    return 0;
}
