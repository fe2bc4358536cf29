/* SPDX-License-Identifier: MIT */
/*
 * The effective config as JSON text, for --check-config (docs/configuration.md, "Checking a
 * config"): every key present, defaults filled in, flags and environment applied, in the order
 * of the example file, so that the output is itself a config file that loads, without flags or
 * environment, into the same config (fuzz-config checks that round trip). Addresses and
 * upstreams are printed as the user wrote them; admin switched off is "off".
 *
 * config_to_text is pure; config_print writes to stdout.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"

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
