/* SPDX-License-Identifier: MIT */
/*
 * The model's lifetime (config/config.h). A config is built by the loader, then only read: the
 * main thread and every worker using it pin it with config_ref and unpin it with config_unref,
 * here and nowhere else, and the last unpin frees it. config_free releases a config whatever its
 * count, and also a half-built one, which is how the loader cleans up after any failure: every
 * part is either NULL/zero or owned. Also here: the parts' destructors and a route's defaults,
 * which the JSON file and the overrides share, and config_needs_restart, a comparison of two
 * models.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"

void config_string_list_free(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

void config_upstream_clear(struct upstream_target *u)
{
    free(u->text);
    free(u->curl_url);
    free(u->unix_path);
    free(u->base_path);
    *u = (struct upstream_target){0};
}

int config_route_init(struct route *r, char *error)
{
    *r = (struct route){0};
    r->connect_timeout_ms = 5000;
    r->timeout_ms = 60000;
    r->path_prefix_len = 1;
    return config_set_string(&r->path_prefix, "/", error);
}

void config_route_clear(struct route *r)
{
    free(r->name);
    free(r->path_prefix);
    free(r->host);
    config_string_list_free(r->methods, r->methods_count);
    config_upstream_clear(&r->upstream);
    for (size_t i = 0; i < r->set_request_headers_count; i++) {
        free(r->set_request_headers[i].name);
        free(r->set_request_headers[i].value);
        free(r->set_request_headers[i].line);
    }
    free(r->set_request_headers);
    config_route_tls_clear(&r->tls);
    *r = (struct route){0};
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
    config_string_list_free(c->access_log_fields, c->access_log_fields_count);
    config_string_list_free(c->access_log_redact, c->access_log_redact_count);
    for (size_t i = 0; i < c->routes_count; i++)
        config_route_clear(&c->routes[i]);
    free(c->routes);
    config_otlp_clear(&c->otlp);
    for (size_t i = 0; i < c->messages_count; i++)
        free(c->messages[i].text);
    free(c->messages);
    free(c);
    return NULL;
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
    bool listen = old->listen_count != new->listen_count;
    for (size_t i = 0; !listen && i < old->listen_count; i++)
        listen = strcmp(old->listen[i].text, new->listen[i].text) != 0;
    /* Every key, not the first: an operator fixing one would otherwise meet the next on the
     * following reload. The list is short, so it always fits in what. */
    const struct {
        bool changed;
        const char *key;
    } keys[] = {
        {listen, "listen"},
        {old->admin_enabled != new->admin_enabled ||
             (old->admin_enabled && strcmp(old->admin_listen.text, new->admin_listen.text)),
         "admin.listen"},
        {old->workers != new->workers, "workers"},
        {!same_string(old->access_log_path, new->access_log_path), "access_log.path"},
        {old->max_header_bytes != new->max_header_bytes, "limits.max_header_bytes"},
        {old->max_connections != new->max_connections, "limits.max_connections"},
        {old->client_timeout_s != new->client_timeout_s, "limits.client_timeout_ms"},
    };
    size_t len = 0;

    what[0] = '\0';
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (keys[i].changed)
            len += (size_t)snprintf(what + len, CONFIG_ERROR_MAX - len, "%s%s", len ? ", " : "",
                                    keys[i].key);
    return len > 0;
}
