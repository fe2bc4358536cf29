/* SPDX-License-Identifier: MIT */
/*
 * Environment variables and command-line flags over the file (docs/configuration.md: the
 * precedence at the top, "Environment variables" for the names). Each override is a string as
 * the user typed it, checked like the key it stands for, and named in errors as the user spelt
 * it: "--listen" for a flag, "TRACEHOP_LISTEN" for the environment. --upstream (or
 * TRACEHOP_UPSTREAM) replaces all routes with one catch-all route.
 *
 * config_apply_overrides is pure (errors into `error`, out of memory as -ENOMEM);
 * config_overrides_from_env only reads environ, OpenTelemetry's OTEL_* variables included (those
 * are applied by config_otel_env.c, below the TRACEHOP_* ones).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "common/json_escape.h"

int config_parse_ratio(const char *text, double *ret)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (text[0] == '\0' || *end != '\0' || errno || !(v >= 0.0 && v <= 1.0))
        return -EINVAL;
    *ret = v;
    return 0;
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

int config_apply_overrides(struct config *c, const struct config_overrides *o, bool from_env,
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
        {o->log_level, "log-level"},
    };

    /* What a flag or variable can say, the file (JSON, so UTF-8) can say too, and --check-config
     * can print: a value in another encoding (a Latin-1 service name, say) is refused. */
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (texts[i].value && !utf8_is_valid(texts[i].value, strlen(texts[i].value)))
            return config_fail(error, "%s: must be valid UTF-8", NAME(texts[i].flag));

    if (o->service_name) {
        if (o->service_name[0] == '\0')
            return config_fail(error, "%s: must not be empty", NAME("service-name"));
        if ((rc = config_set_string(&c->service_name, o->service_name, error)) < 0)
            return rc;
    }
    if (o->listen) {
        if ((rc = config_set_listen(c, &o->listen, 1, NAME("listen"), error)) < 0)
            return rc;
    }
    if (o->admin_listen) {
        if ((rc = config_set_admin_listen(c, o->admin_listen, NAME("admin-listen"), error)) < 0)
            return rc;
    }
    if (o->access_log) {
        if (o->access_log[0] == '\0')
            return config_fail(error, "%s: must not be empty (use - for stdout)",
                               NAME("access-log"));
        if ((rc = config_set_string(&c->access_log_path, o->access_log, error)) < 0)
            return rc;
    }
    if (o->sampling_ratio && config_parse_ratio(o->sampling_ratio, &c->sampling_ratio) < 0)
        return config_fail(error, "%s: '%s' is not a number in 0..1",
                           from_env ? "TRACEHOP_SAMPLING_RATIO" : "sampling ratio",
                           o->sampling_ratio);
    if (o->trace_header) {
        if ((rc = config_set_string(&c->request_id_header, o->trace_header, error)) < 0)
            return rc;
    }
    if (o->workers) {
        char *end;
        long n = strtol(o->workers, &end, 10);
        if (o->workers[0] == '\0' || *end || n < 1 || n > CONFIG_MAX_WORKERS)
            return config_fail(error, "%s: '%s' is not a number in 1..%d", NAME("workers"),
                               o->workers, CONFIG_MAX_WORKERS);
        c->workers = (unsigned)n;
    }
    if (o->log_level && diag_level_parse(o->log_level, &c->log_level) < 0)
        return config_fail(error, "%s: '%s' is not debug, info, warn or error", NAME("log-level"),
                           o->log_level);
    if (o->upstream) {
        /* --upstream replaces the routes with one catch-all route named "default"
         * (docs/configuration.md, "Environment variables": TRACEHOP_UPSTREAM). */
        char reason[CONFIG_ERROR_MAX];
        struct route r;
        struct route *routes = NULL;
        if ((rc = config_route_init(&r, error)) < 0 ||
            (rc = config_set_string(&r.name, "default", error)) < 0 ||
            !(routes = calloc(1, sizeof(struct route)))) {
            config_route_clear(&r);
            return rc < 0 ? rc : config_nomem(error);
        }
        if ((rc = config_parse_upstream(o->upstream, &r.upstream, reason)) < 0) {
            config_route_clear(&r);
            free(routes);
            if (rc == -ENOMEM)
                return config_nomem(error);
            return config_fail(error, "%s: %s", NAME("upstream"), reason);
        }
        for (size_t i = 0; i < c->routes_count; i++)
            config_route_clear(&c->routes[i]);
        free(c->routes);
        routes[0] = r;
        c->routes = routes;
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
        .log_level = env_value("TRACEHOP_LOG_LEVEL"),

        .otel_sdk_disabled = env_value("OTEL_SDK_DISABLED"),
        .otel_traces_exporter = env_value("OTEL_TRACES_EXPORTER"),
        .otel_service_name = env_value("OTEL_SERVICE_NAME"),
        .otel_resource_attributes = env_value("OTEL_RESOURCE_ATTRIBUTES"),
        .otel_traces_sampler = env_value("OTEL_TRACES_SAMPLER"),
        .otel_traces_sampler_arg = env_value("OTEL_TRACES_SAMPLER_ARG"),
        .otel_endpoint = env_value("OTEL_EXPORTER_OTLP_ENDPOINT"),
        .otel_traces_endpoint = env_value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        .otel_headers = env_value("OTEL_EXPORTER_OTLP_HEADERS"),
        .otel_traces_headers = env_value("OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
        .otel_timeout = env_value("OTEL_EXPORTER_OTLP_TIMEOUT"),
        .otel_traces_timeout = env_value("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"),
        .otel_compression = env_value("OTEL_EXPORTER_OTLP_COMPRESSION"),
        .otel_traces_compression = env_value("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"),
        .otel_protocol = env_value("OTEL_EXPORTER_OTLP_PROTOCOL"),
        .otel_traces_protocol = env_value("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
        .otel_certificate = env_value("OTEL_EXPORTER_OTLP_CERTIFICATE"),
        .otel_traces_certificate = env_value("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"),
        .otel_client_certificate = env_value("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
        .otel_traces_client_certificate = env_value("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"),
        .otel_client_key = env_value("OTEL_EXPORTER_OTLP_CLIENT_KEY"),
        .otel_traces_client_key = env_value("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"),
        .otel_bsp_schedule_delay = env_value("OTEL_BSP_SCHEDULE_DELAY"),
        .otel_bsp_max_queue_size = env_value("OTEL_BSP_MAX_QUEUE_SIZE"),
        .otel_bsp_max_export_batch_size = env_value("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        .otel_bsp_export_timeout = env_value("OTEL_BSP_EXPORT_TIMEOUT"),
    };
}
