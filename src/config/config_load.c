/* SPDX-License-Identifier: MIT */
/*
 * Building the effective config (docs/configuration.md): the defaults, then the config file
 * (config_json.c), then OpenTelemetry's OTEL_* variables (config_otel_env.c), the TRACEHOP_*
 * variables and then the flags (config_overrides.c), then the checks that span several keys
 * (config_otlp_finish for span export, whose sources may complete each other), then each
 * route's metrics slot (common/route_slots.h), so that the config is complete when it is
 * returned and nobody writes into it afterwards. Nothing is half-applied: the caller gets a
 * complete config or an error, and on an error, out of memory included, everything built so far is
 * freed.
 *
 * The default worker count comes from the caller (struct config_machine, probed with
 * common/cpu_probe.h): loading reads the config file and, in config_check.c, looks whether the
 * access log's directory exists; nothing else of the system.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "common/http_syntax.h"
#include "common/route_slots.h"

#define DEFAULT_LISTEN       "0.0.0.0:8000"
#define DEFAULT_ADMIN_LISTEN "127.0.0.1:9901"

/* The worker count when neither the file nor an override sets one: a worker per usable CPU. */
static unsigned default_workers(const struct config_machine *machine)
{
    unsigned cpus = machine ? machine->cpus : 1;

    if (cpus < 1)
        return 1;
    return cpus > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : cpus;
}

static int set_defaults(struct config *c, const struct config_machine *machine, char *error)
{
    const char *default_listen = DEFAULT_LISTEN;
    int rc;

    c->workers = default_workers(machine);
    c->log_level = DIAG_INFO;
    c->sampling_ratio = 1.0;
    c->trust_incoming = true;
    c->echo = true;
    c->max_header_bytes = 8192;
    c->max_body_bytes = 0;
    c->max_connections = 10000;
    c->client_timeout_s = 60;
    c->client_header_timeout_ms = 10000;
    c->drain_delay_ms = 5000;    /* long enough for a load balancer to see /readyz fail */
    c->drain_timeout_ms = 20000; /* 5 + 20 s fits Kubernetes' default 30 s grace period */
    c->sampler = TRACEHOP_SAMPLER_PARENTBASED_TRACEIDRATIO;
    config_otlp_defaults(&c->otlp);
    if ((rc = config_set_string(&c->service_name, "tracehop", error)) < 0 ||
        (rc = config_set_string(&c->request_id_header, "X-Trace-ID", error)) < 0 ||
        (rc = config_set_string(&c->access_log_path, "-", error)) < 0 ||
        (rc = config_set_listen(c, &default_listen, 1, "listen", error)) < 0 ||
        (rc = config_set_admin_listen(c, DEFAULT_ADMIN_LISTEN, "admin.listen", error)) < 0)
        return rc;
    return 0;
}

/* What no single key can check: the routes against the request-id header, the header's syntax
 * (whichever source set it), and that there is somewhere to forward to. */
static int check_across_keys(const struct config *c, char *error)
{
    for (size_t i = 0; i < c->routes_count; i++) {
        const struct route *r = &c->routes[i];
        for (size_t k = 0; k < r->set_request_headers_count; k++) {
            if (strcasecmp(r->set_request_headers[k].name, c->request_id_header) == 0)
                return config_fail(error,
                                   "routes[%zu].set_request_headers.%s: tracehop manages this "
                                   "header itself",
                                   i, r->set_request_headers[k].name);
        }
    }
    if (!http_is_token(c->request_id_header, strlen(c->request_id_header)))
        return config_fail(error, "%s: '%s' is not a valid header name",
                           c->origins.trace_header ? c->origins.trace_header
                                                   : "trace.request_id_header",
                           c->request_id_header);
    if (c->routes_count == 0)
        return config_fail(error, "routes: no route and no --upstream: nothing to forward to");
    return 0;
}

/* Each route's slot for its metrics series, by name, so that a series survives a reload. */
static int assign_metrics_slots(struct config *c, char *error)
{
    for (size_t i = 0; i < c->routes_count; i++)
        if (route_slot_register(c->routes[i].name, &c->routes[i].metrics_slot) < 0)
            return config_nomem(error);
    return 0;
}

/* config_load and config_load_text: the file read from path, or given as text. */
static int load(const char *path, const char *text, size_t text_len,
                const struct config_overrides *flags, const struct config_overrides *env,
                const struct config_machine *machine, struct config **ret, char *error)
{
    struct config *c = calloc(1, sizeof(*c));
    struct config_otlp_state otlp = {.file_enabled = -1};
    int rc;

    if (!c)
        return config_nomem(error);
    if ((rc = set_defaults(c, machine, error)) < 0)
        goto fail;
    if (path) {
        if ((rc = config_set_string(&c->source_path, path, error)) < 0 ||
            (rc = config_parse_json(path, text, text_len, c, &otlp, error)) < 0)
            goto fail;
    }
    if ((rc = config_apply_otel_env(c, env, &otlp, error)) < 0 ||
        (rc = config_apply_overrides(c, env, true, error)) < 0 ||
        (rc = config_apply_overrides(c, flags, false, error)) < 0 ||
        (rc = config_otlp_finish(c, &otlp, error)) < 0 || (rc = check_across_keys(c, error)) < 0 ||
        (rc = config_check(c, &otlp, env, error)) < 0 || (rc = assign_metrics_slots(c, error)) < 0)
        goto fail;
    atomic_init(&c->refs, 1);
    *ret = c;
    return 0;
fail:
    config_free(c);
    return rc;
}

int config_load(const char *path, const struct config_overrides *flags,
                const struct config_overrides *env, const struct config_machine *machine,
                struct config **ret, char *error)
{
    return load(path, NULL, 0, flags, env, machine, ret, error);
}

int config_load_text(const char *source, const char *text, size_t text_len,
                     const struct config_overrides *flags, const struct config_overrides *env,
                     const struct config_machine *machine, struct config **ret, char *error)
{
    return load(source, text, text_len, flags, env, machine, ret, error);
}
