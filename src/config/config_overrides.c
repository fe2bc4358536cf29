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

/* Each override: its key in the file and how the user spells it as a flag and as a variable
 * (static, so that config->origins can keep them). */
enum override_key {
    OV_LISTEN,
    OV_UPSTREAM,
    OV_ADMIN_LISTEN,
    OV_ACCESS_LOG,
    OV_SERVICE_NAME,
    OV_SAMPLING_RATIO,
    OV_TRACE_HEADER,
    OV_WORKERS,
    OV_LOG_LEVEL,
    OV_COUNT
};

static const struct {
    const char *key, *flag, *variable;
} override_names[OV_COUNT] = {
    [OV_LISTEN] = {"listen", "--listen", "TRACEHOP_LISTEN"},
    [OV_UPSTREAM] = {"routes", "--upstream", "TRACEHOP_UPSTREAM"},
    [OV_ADMIN_LISTEN] = {"admin.listen", "--admin-listen", "TRACEHOP_ADMIN_LISTEN"},
    [OV_ACCESS_LOG] = {"access_log.path", "--access-log", "TRACEHOP_ACCESS_LOG"},
    [OV_SERVICE_NAME] = {"service_name", "--service-name", "TRACEHOP_SERVICE_NAME"},
    [OV_SAMPLING_RATIO] = {"trace.sampling_ratio", "--sampling-ratio", "TRACEHOP_SAMPLING_RATIO"},
    [OV_TRACE_HEADER] = {"trace.request_id_header", "--trace-header", "TRACEHOP_TRACE_HEADER"},
    [OV_WORKERS] = {"workers", "--workers", "TRACEHOP_WORKERS"},
    [OV_LOG_LEVEL] = {"log_level", "--log-level", "TRACEHOP_LOG_LEVEL"},
};

const char *const config_known_variables[] = {
    "TRACEHOP_CONFIG",
    "TRACEHOP_LISTEN",
    "TRACEHOP_UPSTREAM",
    "TRACEHOP_ADMIN_LISTEN",
    "TRACEHOP_ACCESS_LOG",
    "TRACEHOP_SERVICE_NAME",
    "TRACEHOP_SAMPLING_RATIO",
    "TRACEHOP_TRACE_HEADER",
    "TRACEHOP_WORKERS",
    "TRACEHOP_LOG_LEVEL",
    NULL,
};

/*
 * "listen: file value 0.0.0.0:8000 overridden by --listen (127.0.0.1:9000)" when the value being
 * replaced was not a default: said once, so that nobody edits the file and wonders why nothing
 * changes. A flag over a variable says whose value it replaced ("TRACEHOP_LISTEN value").
 */
static int note_override(struct config *c, const char *origin, enum override_key k, const char *by,
                         const char *old_value, const char *new_value, char *error)
{
    if (!origin)
        return 0;
    bool from_file = strcmp(origin, override_names[k].key) == 0;
    return config_message_add(c, CONFIG_NOTE, error, "%s: %s%s value %s overridden by %s (%s)",
                              override_names[k].key, from_file ? "file" : origin,
                              from_file ? "" : "'s", old_value, by, new_value);
}

/* The listen addresses as one text, "a, b", for a note. */
static void listen_text(const struct config *c, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < c->listen_count && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%s", i ? ", " : "", c->listen[i].text);
}

int config_apply_overrides(struct config *c, const struct config_overrides *o, bool from_env,
                           char *error)
{
#define NAME(k) (from_env ? override_names[k].variable : override_names[k].flag)
    struct config_origins *origins = &c->origins;
    char old[CONFIG_ERROR_MAX];
    int rc;
    const struct {
        const char *value;
        enum override_key key;
    } texts[] = {
        {o->listen, OV_LISTEN},
        {o->upstream, OV_UPSTREAM},
        {o->admin_listen, OV_ADMIN_LISTEN},
        {o->access_log, OV_ACCESS_LOG},
        {o->service_name, OV_SERVICE_NAME},
        {o->sampling_ratio, OV_SAMPLING_RATIO},
        {o->trace_header, OV_TRACE_HEADER},
        {o->workers, OV_WORKERS},
        {o->log_level, OV_LOG_LEVEL},
    };

    /* What a flag or variable can say, the file (JSON, so UTF-8) can say too, and --check-config
     * can print: a value in another encoding (a Latin-1 service name, say) is refused. */
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (texts[i].value && !utf8_is_valid(texts[i].value, strlen(texts[i].value)))
            return config_fail(error, "%s: must be valid UTF-8", NAME(texts[i].key));

    if (o->service_name) {
        if (o->service_name[0] == '\0')
            return config_fail(error, "%s: must not be empty", NAME(OV_SERVICE_NAME));
        if ((rc = note_override(c, origins->service_name, OV_SERVICE_NAME, NAME(OV_SERVICE_NAME),
                                c->service_name, o->service_name, error)) < 0 ||
            (rc = config_set_string(&c->service_name, o->service_name, error)) < 0)
            return rc;
        origins->service_name = NAME(OV_SERVICE_NAME);
    }
    if (o->listen) {
        listen_text(c, old, sizeof(old));
        if ((rc = config_set_listen(c, &o->listen, 1, NAME(OV_LISTEN), error)) < 0 ||
            (rc = note_override(c, origins->listen, OV_LISTEN, NAME(OV_LISTEN), old, o->listen,
                                error)) < 0)
            return rc;
        origins->listen = NAME(OV_LISTEN);
    }
    if (o->admin_listen) {
        snprintf(old, sizeof(old), "%s", c->admin_enabled ? c->admin_listen.text : "off");
        if ((rc = config_set_admin_listen(c, o->admin_listen, NAME(OV_ADMIN_LISTEN), error)) < 0 ||
            (rc = note_override(c, origins->admin_listen, OV_ADMIN_LISTEN, NAME(OV_ADMIN_LISTEN),
                                old, o->admin_listen, error)) < 0)
            return rc;
        origins->admin_listen = NAME(OV_ADMIN_LISTEN);
    }
    if (o->access_log) {
        if (o->access_log[0] == '\0')
            return config_fail(error, "%s: must not be empty (use - for stdout)",
                               NAME(OV_ACCESS_LOG));
        if ((rc = note_override(c, origins->access_log, OV_ACCESS_LOG, NAME(OV_ACCESS_LOG),
                                c->access_log_path, o->access_log, error)) < 0 ||
            (rc = config_set_string(&c->access_log_path, o->access_log, error)) < 0)
            return rc;
        origins->access_log = NAME(OV_ACCESS_LOG);
    }
    if (o->sampling_ratio) {
        double before = c->sampling_ratio;
        if (config_parse_ratio(o->sampling_ratio, &c->sampling_ratio) < 0)
            return config_fail(error, "%s: '%s' is not a number in 0..1", NAME(OV_SAMPLING_RATIO),
                               o->sampling_ratio);
        snprintf(old, sizeof(old), "%g", before);
        if ((rc = note_override(c, origins->sampling_ratio, OV_SAMPLING_RATIO,
                                NAME(OV_SAMPLING_RATIO), old, o->sampling_ratio, error)) < 0)
            return rc;
        origins->sampling_ratio = NAME(OV_SAMPLING_RATIO);
    }
    if (o->trace_header) {
        if ((rc = note_override(c, origins->trace_header, OV_TRACE_HEADER, NAME(OV_TRACE_HEADER),
                                c->request_id_header, o->trace_header, error)) < 0 ||
            (rc = config_set_string(&c->request_id_header, o->trace_header, error)) < 0)
            return rc;
        origins->trace_header = NAME(OV_TRACE_HEADER);
    }
    if (o->workers) {
        char *end;
        long n = strtol(o->workers, &end, 10);
        if (o->workers[0] == '\0' || *end || n < 1 || n > CONFIG_MAX_WORKERS)
            return config_fail(error, "%s: '%s' is not a number in 1..%d", NAME(OV_WORKERS),
                               o->workers, CONFIG_MAX_WORKERS);
        snprintf(old, sizeof(old), "%u", c->workers);
        if ((rc = note_override(c, origins->workers, OV_WORKERS, NAME(OV_WORKERS), old, o->workers,
                                error)) < 0)
            return rc;
        c->workers = (unsigned)n;
        origins->workers = NAME(OV_WORKERS);
    }
    if (o->log_level && diag_level_parse(o->log_level, &c->log_level) < 0)
        return config_fail(error, "%s: '%s' is not debug, info, warn or error", NAME(OV_LOG_LEVEL),
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
            return config_fail(error, "%s: %s", NAME(OV_UPSTREAM), reason);
        }
        snprintf(old, sizeof(old), "(%zu route%s)", c->routes_count,
                 c->routes_count == 1 ? "" : "s");
        if ((rc = note_override(c, origins->routes, OV_UPSTREAM, NAME(OV_UPSTREAM), old,
                                o->upstream, error)) < 0) {
            config_route_clear(&r);
            free(routes);
            return rc;
        }
        for (size_t i = 0; i < c->routes_count; i++)
            config_route_clear(&c->routes[i]);
        free(c->routes);
        routes[0] = r;
        c->routes = routes;
        c->routes_count = 1;
        origins->routes = NAME(OV_UPSTREAM);
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

/* TRACEHOP_* entries of environ that no known variable names, into env->unknown. */
static void find_unknown_variables(struct config_overrides *env)
{
    extern char **environ;
    static const char prefix[] = "TRACEHOP_";

    for (char **entry = environ; entry && *entry; entry++) {
        if (strncmp(*entry, prefix, sizeof(prefix) - 1) != 0)
            continue;
        size_t name_len = strcspn(*entry, "=");
        bool known = false;
        for (size_t i = 0; config_known_variables[i] && !known; i++)
            known = strlen(config_known_variables[i]) == name_len &&
                    strncmp(*entry, config_known_variables[i], name_len) == 0;
        if (known)
            continue;
        if (env->unknown_count < CONFIG_MAX_UNKNOWN_VARIABLES)
            env->unknown[env->unknown_count] = *entry;
        env->unknown_count++;
    }
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
    find_unknown_variables(env);
}
