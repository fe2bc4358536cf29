/* SPDX-License-Identifier: MIT */
/*
 * Span export (struct otlp_config; docs/configuration.md, "otlp") and the sampler, as two sources
 * set them: the config file (config_json.c) and OpenTelemetry's environment variables
 * (config_otel_env.c). Here are the defaults, the setters both call, so that a value is checked
 * the same way whichever source gives it, and config_otlp_finish, the checks that need every
 * source applied first: an environment variable may complete or contradict what the file said
 * (a client key for the file's certificate, a queue smaller than the file's batch).
 *
 * Setters name the value in errors as the caller spells it ("otlp.endpoint",
 * "OTEL_EXPORTER_OTLP_ENDPOINT") and leave the model unchanged on failure. Header values are
 * never quoted in errors: they carry tokens. Pure: errors into `error`, out of memory as -ENOMEM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "common/http_syntax.h"

#define SIGNAL_PATH "/v1/traces"

void config_otlp_defaults(struct otlp_config *o)
{
    *o = (struct otlp_config){
        .timeout_ms = 10000,
        .max_queue_size = 2048,
        .max_export_batch_size = 512,
        .schedule_delay_ms = 5000,
        .export_timeout_ms = 30000,
    };
}

static void header_settings_free(struct header_setting *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].name);
        free(list[i].value);
        free(list[i].line);
    }
    free(list);
}

void config_otlp_clear(struct otlp_config *o)
{
    free(o->endpoint);
    header_settings_free(o->headers, o->headers_count);
    free(o->ca_file);
    free(o->client_certificate);
    free(o->client_key);
    header_settings_free(o->resource_attributes, o->resource_attributes_count);
    *o = (struct otlp_config){0};
}

int config_set_sampler(struct config *c, const char *text, const char *name, char *error)
{
    if (!tracehop_sampler_from_name(text, &c->sampler))
        return config_fail(error,
                           "%s: unknown sampler '%s': use always_on, always_off, traceidratio, "
                           "parentbased_always_on, parentbased_always_off or "
                           "parentbased_traceidratio",
                           name, text);
    return 0;
}

int config_otlp_set_endpoint(struct otlp_config *o, const char *url, bool append_signal_path,
                             const char *name, char *error)
{
    char reason[CONFIG_ERROR_MAX];
    struct upstream_target parsed;
    int rc;

    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return config_fail(error, "%s: '%s' is not an http:// or https:// URL", name, url);
    if (strpbrk(url, "?#"))
        return config_fail(error, "%s: '%s': a query or fragment is not allowed", name, url);
    /* The upstream parser checks the authority (host, port 1..65535, no credentials) and the
     * path's characters exactly as for a route's upstream. */
    if ((rc = config_parse_upstream(url, &parsed, reason)) == -ENOMEM)
        return config_nomem(error);
    if (rc < 0)
        return config_fail(error, "%s: %s", name, reason);
    config_upstream_clear(&parsed);

    size_t len = strlen(url);
    if (append_signal_path && url[len - 1] == '/')
        len--;
    size_t size = len + (append_signal_path ? sizeof(SIGNAL_PATH) - 1 : 0) + 1;
    char *full = malloc(size);
    if (!full)
        return config_nomem(error);
    snprintf(full, size, "%.*s%s", (int)len, url, append_signal_path ? SIGNAL_PATH : "");
    free(o->endpoint);
    o->endpoint = full;
    return 0;
}

int config_otlp_check_protocol(const char *text, const char *name, char *error)
{
    static const char why[] =
        "tracehop exports OTLP/HTTP with the JSON encoding; set \"http/json\"";

    if (strcmp(text, "http/json") == 0)
        return 0;
    if (strcmp(text, "http/protobuf") == 0 || strcmp(text, "grpc") == 0)
        return config_fail(error, "%s: '%s' is not supported: %s", name, text, why);
    return config_fail(error, "%s: '%s' is not an OTLP protocol: %s", name, text, why);
}

int config_otlp_set_compression(struct otlp_config *o, const char *text, const char *name,
                                char *error)
{
    if (strcmp(text, "gzip") == 0)
        o->gzip = true;
    else if (strcmp(text, "none") == 0)
        o->gzip = false;
    else
        return config_fail(error, "%s: '%s' is not a compression: use \"gzip\" or \"none\"", name,
                           text);
    return 0;
}

const char *config_otlp_header_problem(const char *name, const char *value)
{
    size_t len = strlen(name);

    if (!http_is_token(name, len))
        return "not a valid header name";
    /* The exporter writes the body and its framing; the connection is libcurl's. */
    if (http_header_is_hop_by_hop(name, len) || http_name_equals(name, len, "Content-Type") ||
        http_name_equals(name, len, "Content-Length") ||
        http_name_equals(name, len, "Content-Encoding") || http_name_equals(name, len, "Host"))
        return "the exporter sets this header itself";
    if (!http_is_field_value(value, strlen(value)))
        return "the value must not contain control characters";
    return NULL;
}

/* Set name to value in list (case-insensitive names for headers, exact ones for attributes),
 * growing it by one when the name is new; line is "name: value" for headers, NULL otherwise. */
static int set_pair(struct header_setting **list, size_t *count, size_t max, bool is_header,
                    const char *name, const char *value, const char *path, char *error)
{
    size_t i;

    for (i = 0; i < *count; i++)
        if (is_header ? strcasecmp((*list)[i].name, name) == 0 : strcmp((*list)[i].name, name) == 0)
            break;
    if (i == *count && *count >= max)
        return config_fail(error, "%s: at most %zu %s", path, max,
                           is_header ? "headers" : "resource attributes");

    struct header_setting h = {.name = strdup(name), .value = strdup(value)};
    size_t line_size = strlen(name) + 2 + strlen(value) + 1;
    if (is_header && (h.line = malloc(line_size)))
        snprintf(h.line, line_size, "%s: %s", name, value);
    if (!h.name || !h.value || (is_header && !h.line)) {
        free(h.name);
        free(h.value);
        free(h.line);
        return config_nomem(error);
    }
    if (i == *count) {
        struct header_setting *grown = realloc(*list, (*count + 1) * sizeof(**list));
        if (!grown) {
            free(h.name);
            free(h.value);
            free(h.line);
            return config_nomem(error);
        }
        *list = grown;
        (*count)++;
    } else {
        free((*list)[i].name);
        free((*list)[i].value);
        free((*list)[i].line);
    }
    (*list)[i] = h;
    return 0;
}

int config_otlp_set_header(struct otlp_config *o, const char *name, const char *value,
                           const char *path, char *error)
{
    const char *problem = config_otlp_header_problem(name, value);

    if (problem)
        return config_fail(error, "%s: header '%s': %s", path, name, problem);
    return set_pair(&o->headers, &o->headers_count, CONFIG_OTLP_MAX_HEADERS, true, name, value,
                    path, error);
}

int config_otlp_set_attribute(struct otlp_config *o, const char *key, const char *value,
                              const char *path, char *error)
{
    return set_pair(&o->resource_attributes, &o->resource_attributes_count,
                    CONFIG_OTLP_MAX_RESOURCE_ATTRIBUTES, false, key, value, path, error);
}

int config_otlp_finish(struct config *c, const struct config_otlp_state *state, char *error)
{
    struct otlp_config *o = &c->otlp;

    if (o->client_certificate && !o->client_key)
        return config_fail(error,
                           "%s: a client certificate needs its key (otlp.client_key or "
                           "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY)",
                           state->certificate_origin);
    if (o->client_key && !o->client_certificate)
        return config_fail(error,
                           "%s: a client key needs its certificate (otlp.client_certificate or "
                           "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE)",
                           state->key_origin);
    if (o->max_export_batch_size > o->max_queue_size) {
        if (!state->batch_origin) /* the default batch: no bigger than the queue it leaves */
            o->max_export_batch_size = o->max_queue_size;
        else
            return config_fail(error, "%s: %u is more than the queue size, %u (%s)",
                               state->batch_origin, o->max_export_batch_size, o->max_queue_size,
                               state->queue_origin ? state->queue_origin : "the default");
    }
    if (!o->endpoint && state->file_enabled == 1 && !state->env_disabled)
        return config_fail(error, "otlp.enabled: true, but no endpoint is set (otlp.endpoint, "
                                  "otlp.traces_endpoint, OTEL_EXPORTER_OTLP_ENDPOINT or "
                                  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)");
    o->enabled = o->endpoint && state->file_enabled != 0 && !state->env_disabled;
    return 0;
}
