/* SPDX-License-Identifier: MIT */
/*
 * The effective config as JSON text, for --check-config (docs/configuration.md, "Checking a
 * config"): every key present, defaults filled in, flags and environment applied, in the order
 * of the example file, so that the output is itself a config file that loads, without flags or
 * environment, into the same config (fuzz-config checks that round trip), but for the values of
 * otlp.headers and of credential headers in routes[].set_request_headers, printed as
 * "[REDACTED]" (otlp_json and header_is_secret say why). Addresses and
 * upstreams are printed as the user wrote them; admin switched off is "off".
 *
 * config_to_text is pure; config_print writes to stdout.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "config/config.h"

static json_t *string_list_json(char **list, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

/* name -> value pairs as an object; the values replaced by "[REDACTED]" when `redact`. */
static json_t *pairs_json(const struct header_setting *list, size_t n, bool redact)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, list[i].name, json_string(redact ? "[REDACTED]" : list[i].value));
    return o;
}

/*
 * Whether a routes[].set_request_headers value is printed as "[REDACTED]": the headers that carry
 * credentials (Authorization, Cookie; Proxy-Authorization cannot be set) and any header named in
 * access_log.redact, since the printout also goes out over the admin listener's /config
 * (docs/configuration.md, "Checking a config"). Loading the printout gives those headers with
 * that value, as for otlp.headers.
 */
static bool header_is_secret(const struct config *c, const char *name)
{
    static const char *const credentials[] = {"Authorization", "Cookie"};

    for (size_t i = 0; i < sizeof(credentials) / sizeof(credentials[0]); i++)
        if (strcasecmp(name, credentials[i]) == 0)
            return true;
    for (size_t i = 0; i < c->access_log_redact_count; i++)
        if (strcasecmp(name, c->access_log_redact[i]) == 0)
            return true;
    return false;
}

/*
 * The otlp section. The one exception to "loading the printed text gives the same config":
 * header values are printed as "[REDACTED]", since they carry tokens and --check-config's output
 * ends up in terminals and CI logs; loading the printout gives the same headers with those
 * values (docs/configuration.md, "Checking a config"). The endpoint is printed as the final URL
 * in traces_endpoint, however it was given.
 */
static json_t *otlp_json(const struct otlp_config *o)
{
    json_t *batch = json_pack(
        "{s:I, s:I, s:I, s:I}", "max_queue_size", (json_int_t)o->max_queue_size,
        "max_export_batch_size", (json_int_t)o->max_export_batch_size, "schedule_delay_ms",
        (json_int_t)o->schedule_delay_ms, "export_timeout_ms", (json_int_t)o->export_timeout_ms);

    return json_pack(
        "{s:b, s:n, s:s?, s:s, s:o, s:I, s:s, s:s?, s:s?, s:s?, s:o, s:o}", "enabled", o->enabled,
        "endpoint", "traces_endpoint", o->endpoint, "protocol", "http/json", "headers",
        pairs_json(o->headers, o->headers_count, true), "timeout_ms", (json_int_t)o->timeout_ms,
        "compression", o->gzip ? "gzip" : "none", "ca_file", o->ca_file, "client_certificate",
        o->client_certificate, "client_key", o->client_key, "resource_attributes",
        pairs_json(o->resource_attributes, o->resource_attributes_count, false), "batch", batch);
}

/* routes[i].tls: paths and names only (a key file's contents are never read here). */
static json_t *route_tls_json(const struct route_tls *t)
{
    return json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:b}", "ca_file", t->ca_file, "ca_dir",
                     t->ca_dir, "client_certificate", t->client_certificate, "client_key",
                     t->client_key, "server_name", t->server_name, "min_version",
                     t->min_version == 13   ? "1.3"
                     : t->min_version == 12 ? "1.2"
                                            : NULL,
                     "insecure_skip_verify", t->insecure_skip_verify);
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
                                json_string(header_is_secret(c, r->set_request_headers[k].name)
                                                ? "[REDACTED]"
                                                : r->set_request_headers[k].value));
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
        if (r->upstream.scheme == UPSTREAM_HTTPS)
            json_object_set_new(json_array_get(routes, i), "tls", route_tls_json(&r->tls));
    }
    json_object_set_new(root, "service_name", json_string(c->service_name));
    json_object_set_new(root, "listen", listen);
    json_object_set_new(
        root, "admin",
        json_pack("{s:s}", "listen", c->admin_enabled ? c->admin_listen.text : "off"));
    json_object_set_new(root, "workers", json_integer(c->workers));
    json_object_set_new(root, "log_level", json_string(diag_level_name(c->log_level)));
    json_object_set_new(
        root, "trace",
        json_pack("{s:s, s:s, s:f, s:b, s:b, s:b, s:b}", "request_id_header", c->request_id_header,
                  "sampler", tracehop_sampler_name(c->sampler), "sampling_ratio", c->sampling_ratio,
                  "trust_incoming", c->trust_incoming, "echo", c->echo, "server_timing",
                  c->server_timing, "server_timing_durations", c->server_timing_durations));
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
    if (json_object_set_new(root, "otlp", otlp_json(&c->otlp)) < 0) {
        json_decref(root);
        return NULL;
    }
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
