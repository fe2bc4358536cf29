/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The effective configuration: defaults, then the JSON file, then environment (OTEL_*, then
 * TRACEHOP_*), then flags (the
 * precedence and every key: docs/configuration.md; reloads: its "Reloading" section). Loaded and
 * validated completely before anything listens; immutable afterwards: nothing writes into a
 * loaded config, and a reload builds a new one and swaps it whole.
 *
 * This header is the model and the area's one include for the rest of the tree. Who does what:
 *   config.c            the model's lifetime: config_free, config_ref/config_unref (the one
 *                       place a config is pinned and unpinned), config_needs_restart;
 *   config_load.c       config_load, config_load_text: defaults, then the file, the environment
 *                       and the flags, then the checks across keys and the route metrics slots;
 *   config_json.c       the config file (JSON) into the model;
 *   config_otlp.c       span export (otlp) and the sampler: defaults, the setters the file and
 *                       the environment share, the checks once every source is in;
 *   config_otel_env.c   OpenTelemetry's OTEL_* variables into the model;
 *   config_overrides.c  environment variables and flags into the model;
 *   config_address.c    listen addresses and upstream URLs;
 *   config_tls.c        a route's TLS settings: the checks and files, server_name's URL;
 *   config_check.c      the checks across keys once every source is in: errors (overlapping
 *                       addresses, the access log's directory, method case) and warnings;
 *   config_print.c      the effective config as JSON text (--check-config);
 *   config_error.c      the error reports they share (config_internal.h, private to the area).
 * The CPU count that sets the default worker count is probed outside (common/cpu_probe.h) and
 * handed in (struct config_machine), so that loading depends on its inputs alone.
 *
 * Every function returns 0 or a negative errno, never logs, and reports "key.path: reason" in
 * `error` (CONFIG_ERROR_MAX bytes); an allocation failure is -ENOMEM with "out of memory".
 * What a loaded config should still tell its user (warnings, notes) is in config->messages, for
 * the caller to print or log.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/diag.h"
#include "tracehop/tracectx.h"

#define CONFIG_ERROR_MAX              512
#define CONFIG_MAX_LOGGED_HEADERS     16
#define CONFIG_LOGGED_HEADER_NAME_MAX 255 /* an access_log.fields name, in characters */

enum upstream_scheme { UPSTREAM_HTTP, UPSTREAM_HTTPS, UPSTREAM_UNIX };

struct upstream_target {
    char *text; /* as configured, for logs */
    enum upstream_scheme scheme;
    char *curl_url;  /* "http://host:port/" (or "http://localhost/" for unix) */
    char *unix_path; /* UPSTREAM_UNIX only */
    char *base_path; /* "" or "/base" without trailing slash */
    size_t base_path_len;
};

struct header_setting {
    char *name;
    char *value;
    char *line; /* "Name: value", ready for curl */
};

/*
 * TLS to an https upstream (routes[].tls; docs/configuration.md, "tls"). Every path NULL = not
 * set (libcurl's default: the system store, no client certificate).
 */
struct route_tls {
    char *ca_file, *ca_dir;                /* PEM bundle; directory of hashed PEM files */
    char *client_certificate, *client_key; /* PEM files for mTLS to the upstream */
    char *server_name;    /* the name sent (SNI) and verified instead of the URL's host */
    char *curl_url;       /* with server_name: "https://server_name:port/" */
    char *connect_to;     /* with server_name: "server_name:port:host:port" (CURLOPT_CONNECT_TO) */
    unsigned min_version; /* 0 = libcurl's default, 12 = TLS 1.2, 13 = TLS 1.3 */
    bool insecure_skip_verify; /* no peer or name verification: tests only, warned about */
};

struct route {
    char *name;
    char *path_prefix; /* "/" matches everything */
    size_t path_prefix_len;
    char *host;     /* NULL = any host; compared case-insensitively without port */
    char **methods; /* NULL = any method */
    size_t methods_count;
    struct upstream_target upstream;
    bool strip_prefix;
    long connect_timeout_ms;
    long timeout_ms; /* whole upstream exchange; 0 = none */
    struct header_setting *set_request_headers;
    size_t set_request_headers_count;
    struct route_tls tls;  /* https upstreams only; all unset otherwise */
    unsigned metrics_slot; /* the name's slot in common/route_slots.h, set by the loader */
};

/*
 * Span export over OTLP/HTTP with the JSON encoding (config `otlp`, the OTEL_* variables; the
 * keys and their precedence: docs/configuration.md, "otlp"; what is sent: docs/tracing.md).
 * Every field is filled in after loading: defaults, then the file, then the environment.
 */
struct otlp_config {
    bool enabled;   /* export on: an endpoint is set, and neither `enabled: false`,
                       OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none said otherwise */
    char *endpoint; /* the full traces URL ("http://host:4318/v1/traces"); NULL = none */
    struct header_setting *headers; /* sent with every export request (auth tokens) */
    size_t headers_count;
    long timeout_ms; /* one export request, connect included; default 10000 */
    bool gzip;       /* Content-Encoding: gzip (compression "gzip"); default none */
    char *ca_file;   /* PEM bundle to verify an https endpoint; NULL = the system store */
    char *client_certificate, *client_key; /* PEM files for mTLS to the endpoint; NULL = none */
    /* Resource attributes besides service.name (from service_name), service.instance.id and
     * service.version: `resource_attributes` and OTEL_RESOURCE_ATTRIBUTES (decoded). A key
     * given here replaces tracehop's own value for it. */
    struct header_setting *resource_attributes; /* name = key, value = string value */
    size_t resource_attributes_count;
    unsigned max_queue_size;        /* spans waiting; a full queue drops new ones; 2048 */
    unsigned max_export_batch_size; /* spans per export request; 512 */
    long schedule_delay_ms;         /* a batch leaves at most this long after its first span;
                                       5000 */
    long export_timeout_ms;         /* one batch, all its retries included; 30000 */
};

struct listen_address {
    char *text;
    struct sockaddr_storage addr;
    socklen_t addr_len;
};

/* What the loader found worth saying without refusing the config (docs/configuration.md,
 * "Checks"): a warning is probably a mistake, a note says that a flag or variable replaced a
 * value of the file. */
enum config_message_kind { CONFIG_WARNING, CONFIG_NOTE };

struct config_message {
    enum config_message_kind kind;
    char *text; /* "key.path: what", like an error */
};

/* Who set a setting that a flag or variable can override, as the user spelt it: the key of the
 * file ("listen"), the flag ("--listen") or the variable ("TRACEHOP_LISTEN"); static strings;
 * NULL = the default. For the errors of the checks across keys and for the notes. */
struct config_origins {
    const char *listen, *admin_listen, *access_log, *service_name, *sampling_ratio, *trace_header,
        *workers, *routes;
};

struct config {
    atomic_int refs;   /* the main thread and every worker using it hold one */
    char *source_path; /* the config file, NULL when none */
    char *service_name;
    struct listen_address *listen;
    size_t listen_count;
    bool admin_enabled;
    struct listen_address admin_listen;
    unsigned workers;
    enum diag_level log_level; /* diagnostics below it are dropped; default info */

    char *request_id_header;       /* default "X-Trace-ID" */
    double sampling_ratio;         /* the ratio of the *traceidratio samplers */
    enum tracehop_sampler sampler; /* trace.sampler; default parentbased_traceidratio */
    bool trust_incoming;
    bool echo;
    bool server_timing;           /* trace.server_timing: the `trace` metric on responses */
    bool server_timing_durations; /* trace.server_timing_durations: `tracehop`, `upstream` */

    char *access_log_path;    /* "-" = stdout */
    char **access_log_fields; /* request headers added to each line */
    size_t access_log_fields_count;
    char **access_log_redact; /* query parameters and headers replaced by "[REDACTED]" */
    size_t access_log_redact_count;

    size_t max_header_bytes;
    size_t max_body_bytes; /* 0 = unlimited */
    unsigned max_connections;
    unsigned client_timeout_s;     /* idle client connections are closed after this */
    long client_header_timeout_ms; /* a request head must be complete this long after its line */
    long drain_delay_ms;
    long drain_timeout_ms;

    struct route *routes;
    size_t routes_count;

    struct otlp_config otlp;

    struct config_origins origins;
    struct config_message *messages; /* in the order found; --check-config prints them, the
                                        daemon logs them at start and on reload */
    size_t messages_count;
};

#define CONFIG_MAX_UNKNOWN_VARIABLES 16

/* Values given on the command line or in the environment; NULL/negative = not given. */
struct config_overrides {
    const char *config; /* the config file (environment only: TRACEHOP_CONFIG) */
    const char *listen;
    const char *upstream;
    const char *admin_listen;
    const char *access_log;
    const char *service_name;
    const char *sampling_ratio;
    const char *trace_header;
    const char *workers;
    const char *log_level; /* debug, info, warn or error */

    /* OpenTelemetry's standard variables (environment only; see docs/configuration.md). The
     * TRACES_ variant of an OTEL_EXPORTER_OTLP_ variable wins over the generic one. */
    const char *otel_sdk_disabled;        /* OTEL_SDK_DISABLED */
    const char *otel_traces_exporter;     /* OTEL_TRACES_EXPORTER: otlp or none */
    const char *otel_service_name;        /* OTEL_SERVICE_NAME */
    const char *otel_resource_attributes; /* OTEL_RESOURCE_ATTRIBUTES */
    const char *otel_traces_sampler;      /* OTEL_TRACES_SAMPLER */
    const char *otel_traces_sampler_arg;  /* OTEL_TRACES_SAMPLER_ARG */
    const char *otel_endpoint;            /* OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces) */
    const char *otel_traces_endpoint;     /* OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as is) */
    const char *otel_headers, *otel_traces_headers;
    const char *otel_timeout, *otel_traces_timeout;
    const char *otel_compression, *otel_traces_compression;
    const char *otel_protocol, *otel_traces_protocol;
    const char *otel_certificate, *otel_traces_certificate;
    const char *otel_client_certificate, *otel_traces_client_certificate;
    const char *otel_client_key, *otel_traces_client_key;
    const char *otel_bsp_schedule_delay;        /* OTEL_BSP_SCHEDULE_DELAY (ms) */
    const char *otel_bsp_max_queue_size;        /* OTEL_BSP_MAX_QUEUE_SIZE */
    const char *otel_bsp_max_export_batch_size; /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE */
    const char *otel_bsp_export_timeout;        /* OTEL_BSP_EXPORT_TIMEOUT (ms) */

    /* TRACEHOP_* variables that tracehop does not know: "NAME=value" entries of environ (the
     * first CONFIG_MAX_UNKNOWN_VARIABLES; unknown_count counts them all), reported as warnings
     * (a misspelt variable would otherwise be ignored without a word). Environment only. */
    const char *unknown[CONFIG_MAX_UNKNOWN_VARIABLES];
    size_t unknown_count;
};

/*
 * Facts about the machine the defaults depend on, probed by the caller (common/cpu_probe.h) so
 * that the loader does no I/O but reading the config file.
 */
struct config_machine {
    unsigned cpus; /* CPUs this process may use; the default worker count (at most 64); 0 = 1 */
};

/* --- loading (config_load.c) ------------------------------------------------------------- */

/*
 * Build the effective config. `path` may be NULL (no file); `machine` may be NULL (one CPU).
 * On failure returns a negative errno (-ENOMEM when out of memory, with "out of memory" in the
 * text), writes "key.path: reason" into error (CONFIG_ERROR_MAX bytes), leaves *ret alone and
 * has freed everything it allocated. On success *ret is owned by the caller, holds one
 * reference and is freed with config_unref (or config_free); every route has its metrics_slot.
 */
int config_load(const char *path, const struct config_overrides *flags,
                const struct config_overrides *env, const struct config_machine *machine,
                struct config **ret, char *error);

/*
 * config_load with the config file's contents given as text_len bytes of text (need not be
 * NUL-terminated) instead of read from a file; `source` names them in errors and becomes
 * source_path. For callers that already hold the text (the config fuzz target).
 */
int config_load_text(const char *source, const char *text, size_t text_len,
                     const struct config_overrides *flags, const struct config_overrides *env,
                     const struct config_machine *machine, struct config **ret, char *error);

/* --- overrides (config_overrides.c) ------------------------------------------------------ */

/* Read the TRACEHOP_* and OpenTelemetry's OTEL_* environment variables into overrides (pointers
 * into environ; an empty variable counts as unset); TRACEHOP_* names it does not know go to
 * env->unknown. */
void config_overrides_from_env(struct config_overrides *env);

/* --- the model's lifetime (config.c) ----------------------------------------------------- */

/* Free, whatever the reference count; accepts NULL and a partly built config; returns NULL. */
struct config *config_free(struct config *config);

/* Pin (one more reference) and unpin (one less; the last frees) a loaded config; thread-safe.
 * config_unref accepts NULL. */
void config_unref(const struct config *config);
void config_ref(const struct config *config);

/*
 * Settings a reload cannot change in a running process (sockets, threads, libmicrohttpd's
 * per-connection memory): writes every differing key into what (CONFIG_ERROR_MAX), separated by
 * ", " ("listen, workers, limits.max_header_bytes"), and returns true if there is one.
 */
bool config_needs_restart(const struct config *old, const struct config *new, char *what);

/* --- printing (config_print.c) ----------------------------------------------------------- */

/*
 * The effective config as indented JSON text, every key present (for --check-config); loading
 * that text without flags or environment gives the same config. Returns a malloc'd string the
 * caller frees, or NULL when out of memory or when a value cannot be put into JSON.
 */
char *config_to_text(const struct config *config);

/* Print config_to_text and a newline to stdout. Returns 0 or -errno. */
int config_print(const struct config *config);

/* --- addresses and upstreams (config_address.c) ------------------------------------------ */

/*
 * Parse "HOST:PORT", "[IPv6]:PORT" or ":PORT" into out (a host name is resolved). Returns 0, or
 * -EINVAL with a reason in error, or -ENOMEM ("out of memory"); on failure out owns nothing.
 * The caller frees out->text.
 */
int config_parse_address(const char *text, struct listen_address *out, char *error);

/*
 * Parse an upstream URL (http://, https:// or unix:) into out. Returns 0, or -EINVAL with a
 * reason in error, or -ENOMEM ("out of memory"); on failure out owns nothing.
 */
int config_parse_upstream(const char *text, struct upstream_target *out, char *error);
