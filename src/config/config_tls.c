/* SPDX-License-Identifier: MIT */
/*
 * A route's TLS settings (routes[].tls, docs/configuration.md "tls"): the checks once the JSON
 * keys are in, and the connection parameters derived from server_name.
 *
 * The files are opened once here, so that a path that is missing or unreadable is refused at
 * load time with the key that named it, instead of failing every request later with libcurl's
 * words. (They are read again by libcurl for each new connection: a replaced file takes effect
 * for new connections without a reload.)
 *
 * server_name: libcurl sends SNI and verifies the certificate for the URL's host. To connect to
 * the configured address but talk TLS to another name, the URL carries the name and
 * CURLOPT_CONNECT_TO maps "name:port" to the configured "host:port".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_internal.h"

#define HTTPS_DEFAULT_PORT "443"

static int check_readable(const char *file, bool directory, const char *path, const char *key,
                          char *error)
{
    if (!file)
        return 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
    if (fd < 0)
        return config_fail(error, "%s.%s: cannot read '%s': %s", path, key, file, strerror(errno));
    close(fd);
    return 0;
}

/* The URL's "host" (an IPv6 literal keeps its brackets) and "port" parts of
 * "https://authority/". */
static void split_authority(const char *curl_url, char *host, size_t host_size, char *port,
                            size_t port_size)
{
    const char *a = strstr(curl_url, "://");
    a = a ? a + 3 : curl_url;
    size_t len = strcspn(a, "/");
    const char *colon = NULL;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (close && (size_t)(close - a) + 1 < len && close[1] == ':')
            colon = close + 1;
    } else {
        colon = memchr(a, ':', len);
    }
    size_t host_len = colon ? (size_t)(colon - a) : len;
    snprintf(host, host_size, "%.*s", (int)host_len, a);
    if (colon)
        snprintf(port, port_size, "%.*s", (int)(len - host_len - 1), colon + 1);
    else
        snprintf(port, port_size, "%s", HTTPS_DEFAULT_PORT);
}

static int derive_server_name_url(struct route *r, char *error)
{
    struct route_tls *t = &r->tls;
    char host[300], port[8];

    split_authority(r->upstream.curl_url, host, sizeof(host), port, sizeof(port));
    size_t url_size = strlen("https://") + strlen(t->server_name) + 1 + strlen(port) + 2;
    size_t to_size = strlen(t->server_name) + strlen(host) + 2 * strlen(port) + 4;
    t->curl_url = malloc(url_size);
    t->connect_to = malloc(to_size);
    if (!t->curl_url || !t->connect_to)
        return config_nomem(error);
    snprintf(t->curl_url, url_size, "https://%s:%s/", t->server_name, port);
    snprintf(t->connect_to, to_size, "%s:%s:%s:%s", t->server_name, port, host, port);
    return 0;
}

int config_route_tls_finish(struct route *r, const char *path, char *error)
{
    struct route_tls *t = &r->tls;
    int rc;

    if (r->upstream.scheme != UPSTREAM_HTTPS)
        return config_fail(error, "%s: only for an https:// upstream (the upstream is '%s')", path,
                           r->upstream.text);
    if (t->client_key && !t->client_certificate)
        return config_fail(error, "%s.client_key: needs client_certificate", path);
    if ((rc = check_readable(t->ca_file, false, path, "ca_file", error)) < 0 ||
        (rc = check_readable(t->ca_dir, true, path, "ca_dir", error)) < 0 ||
        (rc = check_readable(t->client_certificate, false, path, "client_certificate", error)) <
            0 ||
        (rc = check_readable(t->client_key, false, path, "client_key", error)) < 0)
        return rc;
    if (t->server_name) {
        if (t->server_name[0] == '[' || !config_host_is_valid(t->server_name))
            return config_fail(error, "%s.server_name: '%s' is not a host name", path,
                               t->server_name);
        if ((rc = derive_server_name_url(r, error)) < 0)
            return rc;
    }
    return 0;
}

void config_route_tls_clear(struct route_tls *t)
{
    free(t->ca_file);
    free(t->ca_dir);
    free(t->client_certificate);
    free(t->client_key);
    free(t->server_name);
    free(t->curl_url);
    free(t->connect_to);
    *t = (struct route_tls){0};
}
