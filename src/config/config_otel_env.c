/* SPDX-License-Identifier: MIT */
/*
 * OpenTelemetry's standard environment variables (docs/configuration.md, "otlp": the table of
 * OTEL_* variables), so that tracehop joins a deployment configured for OpenTelemetry SDKs
 * without tracehop-specific settings. They apply over the config file and below the TRACEHOP_*
 * variables and the flags (the loader calls this in between), and each one is checked like the
 * file key it stands for, with the variable named in errors:
 * "OTEL_EXPORTER_OTLP_TIMEOUT: not a number of milliseconds: 'abc'".
 *
 * Where the specification has a signal-specific variable (OTEL_EXPORTER_OTLP_TRACES_HEADERS),
 * it is used instead of the generic one (OTEL_EXPORTER_OTLP_HEADERS) as a whole, as the SDKs do.
 * The k=v,k2=v2 lists (headers, resource attributes) are trimmed, then percent-decoded; a later
 * entry replaces an earlier one of the same name, and every entry adds to or replaces the
 * file's. Header values are never quoted in errors: they carry tokens.
 *
 * Where tracehop is stricter than the specification, which asks SDKs to warn and go on: a value
 * it cannot use is refused like a bad file key, since a sidecar that silently does not export
 * is worse than one that does not start.
 *
 * Pure: errors into `error`, out of memory as -ENOMEM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "common/http_syntax.h"
#include "common/json_escape.h"

/* The signal-specific variable if set, else the generic one; *name becomes the one used. */
static const char *pick(const char *traces, const char *traces_name, const char *generic,
                        const char *generic_name, const char **name)
{
    *name = traces ? traces_name : generic_name;
    return traces ? traces : generic;
}

/* A whole number of milliseconds or of items in min..max; `unit` words the error. */
static int parse_number(const char *text, const char *name, long long min, long long max,
                        const char *unit, long long *ret, char *error)
{
    char *end;
    long long v;

    if (text[0] < '0' || text[0] > '9') /* no sign, no space: strtoll would take them */
        return config_fail(error, "%s: not a number%s%s: '%s'", name, unit[0] ? " of " : "", unit,
                           text);
    errno = 0;
    v = strtoll(text, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return config_fail(error, "%s: not a number%s%s: '%s'", name, unit[0] ? " of " : "", unit,
                           text);
    if (v < min || v > max)
        return config_fail(error, "%s: '%s' is not in %lld..%lld%s%s", name, text, min, max,
                           unit[0] ? " " : "", unit);
    *ret = v;
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* len bytes of s, percent-decoded, into a new string. -EINVAL for a bad escape or one that
 * decodes to NUL, -ENOMEM. */
static int percent_decode(const char *s, size_t len, char **ret)
{
    char *out = malloc(len + 1);
    size_t n = 0;

    if (!out)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[n++] = s[i];
            continue;
        }
        int hi = i + 1 < len ? http_hexdig_value(s[i + 1]) : -1;
        int lo = i + 2 < len ? http_hexdig_value(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return -EINVAL;
        }
        out[n++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[n] = '\0';
    *ret = out;
    return 0;
}

/* Called with each decoded key and value of a k=v list; the entry's 1-based position for
 * errors. */
typedef int (*pair_handler)(void *context, const char *key, const char *value, size_t entry,
                            const char *name, char *error);

/* Trim [*start, *end) of spaces and tabs. */
static void trim(const char **start, const char **end)
{
    while (*start < *end && is_space(**start))
        (*start)++;
    while (*end > *start && is_space((*end)[-1]))
        (*end)--;
}

/*
 * A k=v,k2=v2 list (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES): entries split at ',',
 * key and value trimmed of surrounding whitespace, then percent-decoded; empty entries are
 * skipped. Errors name the variable and the entry's position, never its value.
 */
static int parse_pairs(const char *text, const char *name, pair_handler handle, void *context,
                       char *error)
{
    size_t entry = 0;

    for (const char *p = text; *p;) {
        const char *comma = strchr(p, ',');
        const char *entry_end = comma ? comma : p + strlen(p);
        const char *key = p, *key_end = entry_end;
        p = comma ? comma + 1 : entry_end;
        entry++;

        trim(&key, &key_end);
        if (key == key_end)
            continue;
        const char *eq = memchr(key, '=', (size_t)(key_end - key));
        if (!eq)
            return config_fail(error, "%s: entry %zu is not key=value", name, entry);
        const char *value = eq + 1, *value_end = key_end;
        key_end = eq;
        trim(&key, &key_end);
        trim(&value, &value_end);
        if (key == key_end)
            return config_fail(error, "%s: entry %zu has an empty key", name, entry);

        char *decoded_key = NULL, *decoded_value = NULL;
        int rc = percent_decode(key, (size_t)(key_end - key), &decoded_key);
        if (rc == 0)
            rc = percent_decode(value, (size_t)(value_end - value), &decoded_value);
        if (rc == -ENOMEM) {
            rc = config_nomem(error);
        } else if (rc < 0) {
            rc = config_fail(error,
                             "%s: entry %zu: bad percent-encoding (%%XX with two hex digits, "
                             "not %%00)",
                             name, entry);
        } else if (!utf8_is_valid(decoded_key, strlen(decoded_key)) ||
                   !utf8_is_valid(decoded_value, strlen(decoded_value))) {
            rc = config_fail(error, "%s: entry %zu: not valid UTF-8 once percent-decoded", name,
                             entry);
        } else {
            rc = handle(context, decoded_key, decoded_value, entry, name, error);
        }
        free(decoded_key);
        free(decoded_value);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int on_header(void *context, const char *key, const char *value, size_t entry,
                     const char *name, char *error)
{
    struct config *c = context;
    const char *problem = config_otlp_header_problem(key, value);

    /* A name that is not a token may be a misplaced value ("Authorization: Bearer abc"): not
     * quoted. */
    if (!http_is_token(key, strlen(key)))
        return config_fail(error, "%s: entry %zu: the key is not a valid header name", name, entry);
    if (problem)
        return config_fail(error, "%s: entry %zu, header '%s': %s", name, entry, key, problem);
    return config_otlp_set_header(&c->otlp, key, value, name, error);
}

struct attributes_context {
    struct config *c;
    bool service_name_given; /* OTEL_SERVICE_NAME, which wins over service.name here */
};

static int on_attribute(void *context, const char *key, const char *value, size_t entry,
                        const char *name, char *error)
{
    struct attributes_context *a = context;

    if (strcmp(key, "service.name") == 0) {
        if (a->service_name_given)
            return 0;
        if (value[0] == '\0')
            return config_fail(error, "%s: entry %zu: service.name must not be empty", name, entry);
        return config_set_string(&a->c->service_name, value, error);
    }
    return config_otlp_set_attribute(&a->c->otlp, key, value, name, error);
}

/* A PEM file's path into slot; origin remembers who set it. */
static int set_path(char **slot, const char *traces, const char *traces_name, const char *generic,
                    const char *generic_name, const char **origin, char *error)
{
    const char *name;
    const char *text = pick(traces, traces_name, generic, generic_name, &name);
    int rc;

    if (!text)
        return 0;
    if ((rc = config_set_string(slot, text, error)) < 0)
        return rc;
    if (origin)
        *origin = name;
    return 0;
}

static int apply_switches(const struct config_overrides *env, struct config_otlp_state *state,
                          char *error)
{
    if (env->otel_sdk_disabled) {
        if (strcasecmp(env->otel_sdk_disabled, "true") == 0)
            state->env_disabled = true;
        else if (strcasecmp(env->otel_sdk_disabled, "false") != 0)
            return config_fail(error, "OTEL_SDK_DISABLED: '%s' is not true or false",
                               env->otel_sdk_disabled);
    }
    if (env->otel_traces_exporter) {
        if (strcasecmp(env->otel_traces_exporter, "none") == 0)
            state->env_disabled = true;
        else if (strcasecmp(env->otel_traces_exporter, "otlp") != 0)
            return config_fail(error,
                               "OTEL_TRACES_EXPORTER: '%s' is not supported: tracehop exports "
                               "with \"otlp\" (or \"none\" for no export)",
                               env->otel_traces_exporter);
    }
    return 0;
}

static int apply_sampler(struct config *c, const struct config_overrides *env, char *error)
{
    int rc;

    if (env->otel_traces_sampler &&
        (rc = config_set_sampler(c, env->otel_traces_sampler, "OTEL_TRACES_SAMPLER", error)) < 0)
        return rc;
    /* The argument of the ratio samplers; the others take none and ignore it, as the
     * specification says. */
    if (env->otel_traces_sampler_arg && (c->sampler == TRACEHOP_SAMPLER_TRACEIDRATIO ||
                                         c->sampler == TRACEHOP_SAMPLER_PARENTBASED_TRACEIDRATIO)) {
        double before = c->sampling_ratio;
        if (config_parse_ratio(env->otel_traces_sampler_arg, &c->sampling_ratio) < 0)
            return config_fail(error, "OTEL_TRACES_SAMPLER_ARG: '%s' is not a number in 0..1",
                               env->otel_traces_sampler_arg);
        if (c->origins.sampling_ratio &&
            (rc = config_message_add(c, CONFIG_NOTE, error,
                                     "trace.sampling_ratio: file value %g overridden by "
                                     "OTEL_TRACES_SAMPLER_ARG (%s)",
                                     before, env->otel_traces_sampler_arg)) < 0)
            return rc;
        c->origins.sampling_ratio = "OTEL_TRACES_SAMPLER_ARG";
    }
    return 0;
}

static int apply_exporter(struct config *c, const struct config_overrides *env,
                          struct config_otlp_state *state, char *error)
{
    struct otlp_config *o = &c->otlp;
    const char *name, *text;
    long long n;
    int rc;

    /* The full URL wins over the base one; either replaces the file's. */
    if (env->otel_traces_endpoint)
        rc = config_otlp_set_endpoint(o, env->otel_traces_endpoint, false,
                                      "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", error);
    else if (env->otel_endpoint)
        rc = config_otlp_set_endpoint(o, env->otel_endpoint, true, "OTEL_EXPORTER_OTLP_ENDPOINT",
                                      error);
    else
        rc = 0;
    if (rc < 0)
        return rc;
    if ((text = pick(env->otel_traces_headers, "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                     env->otel_headers, "OTEL_EXPORTER_OTLP_HEADERS", &name)) &&
        (rc = parse_pairs(text, name, on_header, c, error)) < 0)
        return rc;
    if ((text = pick(env->otel_traces_timeout, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                     env->otel_timeout, "OTEL_EXPORTER_OTLP_TIMEOUT", &name))) {
        if ((rc = parse_number(text, name, 1, CONFIG_OTLP_MAX_TIMEOUT_MS, "milliseconds", &n,
                               error)) < 0)
            return rc;
        o->timeout_ms = (long)n;
    }
    if ((text = pick(env->otel_traces_compression, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                     env->otel_compression, "OTEL_EXPORTER_OTLP_COMPRESSION", &name)) &&
        (rc = config_otlp_set_compression(o, text, name, error)) < 0)
        return rc;
    if ((text = pick(env->otel_traces_protocol, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                     env->otel_protocol, "OTEL_EXPORTER_OTLP_PROTOCOL", &name)) &&
        (rc = config_otlp_check_protocol(text, name, error)) < 0)
        return rc;
    if ((rc = set_path(&o->ca_file, env->otel_traces_certificate,
                       "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", env->otel_certificate,
                       "OTEL_EXPORTER_OTLP_CERTIFICATE", NULL, error)) < 0 ||
        (rc = set_path(&o->client_certificate, env->otel_traces_client_certificate,
                       "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", env->otel_client_certificate,
                       "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &state->certificate_origin,
                       error)) < 0 ||
        (rc = set_path(&o->client_key, env->otel_traces_client_key,
                       "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", env->otel_client_key,
                       "OTEL_EXPORTER_OTLP_CLIENT_KEY", &state->key_origin, error)) < 0)
        return rc;
    return 0;
}

static int apply_batch(struct otlp_config *o, const struct config_overrides *env,
                       struct config_otlp_state *state, char *error)
{
    long long n;
    int rc;

    if (env->otel_bsp_max_queue_size) {
        if ((rc = parse_number(env->otel_bsp_max_queue_size, "OTEL_BSP_MAX_QUEUE_SIZE", 1,
                               CONFIG_OTLP_MAX_QUEUE_SIZE, "", &n, error)) < 0)
            return rc;
        o->max_queue_size = (unsigned)n;
        state->queue_origin = "OTEL_BSP_MAX_QUEUE_SIZE";
    }
    if (env->otel_bsp_max_export_batch_size) {
        if ((rc =
                 parse_number(env->otel_bsp_max_export_batch_size, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                              1, CONFIG_OTLP_MAX_QUEUE_SIZE, "", &n, error)) < 0)
            return rc;
        o->max_export_batch_size = (unsigned)n;
        state->batch_origin = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
    }
    if (env->otel_bsp_schedule_delay) {
        if ((rc = parse_number(env->otel_bsp_schedule_delay, "OTEL_BSP_SCHEDULE_DELAY", 1,
                               CONFIG_OTLP_MAX_DELAY_MS, "milliseconds", &n, error)) < 0)
            return rc;
        o->schedule_delay_ms = (long)n;
    }
    if (env->otel_bsp_export_timeout) {
        if ((rc = parse_number(env->otel_bsp_export_timeout, "OTEL_BSP_EXPORT_TIMEOUT", 1,
                               CONFIG_OTLP_MAX_DELAY_MS, "milliseconds", &n, error)) < 0)
            return rc;
        o->export_timeout_ms = (long)n;
    }
    return 0;
}

int config_apply_otel_env(struct config *c, const struct config_overrides *env,
                          struct config_otlp_state *state, char *error)
{
    const struct {
        const char *value, *name;
    } all[] = {
        {env->otel_sdk_disabled, "OTEL_SDK_DISABLED"},
        {env->otel_traces_exporter, "OTEL_TRACES_EXPORTER"},
        {env->otel_service_name, "OTEL_SERVICE_NAME"},
        {env->otel_resource_attributes, "OTEL_RESOURCE_ATTRIBUTES"},
        {env->otel_traces_sampler, "OTEL_TRACES_SAMPLER"},
        {env->otel_traces_sampler_arg, "OTEL_TRACES_SAMPLER_ARG"},
        {env->otel_endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT"},
        {env->otel_traces_endpoint, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
        {env->otel_headers, "OTEL_EXPORTER_OTLP_HEADERS"},
        {env->otel_traces_headers, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"},
        {env->otel_timeout, "OTEL_EXPORTER_OTLP_TIMEOUT"},
        {env->otel_traces_timeout, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"},
        {env->otel_compression, "OTEL_EXPORTER_OTLP_COMPRESSION"},
        {env->otel_traces_compression, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"},
        {env->otel_protocol, "OTEL_EXPORTER_OTLP_PROTOCOL"},
        {env->otel_traces_protocol, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
        {env->otel_certificate, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
        {env->otel_traces_certificate, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"},
        {env->otel_client_certificate, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"},
        {env->otel_traces_client_certificate, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"},
        {env->otel_client_key, "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
        {env->otel_traces_client_key, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"},
        {env->otel_bsp_schedule_delay, "OTEL_BSP_SCHEDULE_DELAY"},
        {env->otel_bsp_max_queue_size, "OTEL_BSP_MAX_QUEUE_SIZE"},
        {env->otel_bsp_max_export_batch_size, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"},
        {env->otel_bsp_export_timeout, "OTEL_BSP_EXPORT_TIMEOUT"},
    };
    int rc;

    /* As for the TRACEHOP_* variables: what --check-config prints must be JSON. The values are
     * not quoted: a header list may hold tokens. */
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i].value && !utf8_is_valid(all[i].value, strlen(all[i].value)))
            return config_fail(error, "%s: must be valid UTF-8", all[i].name);

    if ((rc = apply_switches(env, state, error)) < 0 || (rc = apply_sampler(c, env, error)) < 0)
        return rc;
    if (env->otel_service_name) {
        /* Unreachable from environ, where an empty variable counts as unset, but not from every
         * caller of the loader (found by fuzz-config). */
        if (env->otel_service_name[0] == '\0')
            return config_fail(error, "OTEL_SERVICE_NAME: must not be empty");
        /* Only the file can have set it yet (the TRACEHOP_* variables come later). */
        if (c->origins.service_name &&
            (rc = config_message_add(c, CONFIG_NOTE, error,
                                     "service_name: file value %s overridden by "
                                     "OTEL_SERVICE_NAME (%s)",
                                     c->service_name, env->otel_service_name)) < 0)
            return rc;
        if ((rc = config_set_string(&c->service_name, env->otel_service_name, error)) < 0)
            return rc;
        c->origins.service_name = "OTEL_SERVICE_NAME";
    }
    if (env->otel_resource_attributes) {
        struct attributes_context a = {.c = c,
                                       .service_name_given = env->otel_service_name != NULL};
        if ((rc = parse_pairs(env->otel_resource_attributes, "OTEL_RESOURCE_ATTRIBUTES",
                              on_attribute, &a, error)) < 0)
            return rc;
    }
    if ((rc = apply_exporter(c, env, state, error)) < 0 ||
        (rc = apply_batch(&c->otlp, env, state, error)) < 0)
        return rc;
    return 0;
}
