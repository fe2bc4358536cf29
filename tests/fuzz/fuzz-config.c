/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target: the config loader, config_load_text (the same code as config_load, with the file's
 * contents in memory), and config_to_text, what --check-config prints.
 *
 * Input layout (readable, so that seeds can be written by hand):
 *   up to the first NUL byte   the config file's text (JSON, or anything else)
 *   after it                   lines of overrides: 'E' (environment) or 'F' (flag), the override's
 *                              name, '=', its value: "Eservice_name=orders", "Fupstream=http://x".
 *                              Names: listen upstream admin_listen access_log service_name
 *                              sampling_ratio trace_header workers log_level, and the OTEL_*
 * variables by their names ("EOTEL_EXPORTER_OTLP_HEADERS=a=b"; environment only: an 'F' line for
 * one is ignored). Other lines are ignored; a later line for the same override replaces an earlier
 * one. (A NUL inside the JSON text is therefore never seen by the loader; "\u0000" in a JSON string
 * is, and jansson refuses it without JSON_ALLOW_NUL, which the loader does not pass.)
 * The text is copied into an exactly-sized heap block; each override value into its own block of
 * exactly its length plus the NUL that a C string from argv or environ has.
 *
 * Addresses are resolved with getaddrinfo, which for a host name asks /etc/hosts and DNS: slow,
 * and not deterministic. Inputs whose listen or admin address (in the file, or an override) has a
 * host that is neither empty, nor numeric IPv4, nor a bracketed literal (those are parsed
 * numerically) are skipped. Everything else about an address is fuzzed.
 *
 * Asserted, for every input:
 *   - no crash, no leak, no undefined behaviour (ASan, UBSan, LeakSanitizer);
 *   - failure: a negative errno; *ret left alone; the error is NUL-terminated, not empty, and of
 *     the form "key.path: reason" (a ": " after a non-empty key path or source name);
 *   - success: the config is consistent: every documented range holds (workers, limits, timeouts,
 *     sampling ratio, list lengths), every route has a name, a path prefix starting with '/' whose
 *     length is recorded, a parsed upstream (curl URL, base path "" or "/..." without a trailing
 *     '/', an absolute socket path for unix:), a valid host if any, token methods, no managed or
 *     hop-by-hop header among set_request_headers; strings are not empty where the docs say so;
 *     access_log.fields are distinct (ASCII case-insensitively), at most 255 characters and do not
 *     end in "_raw_b64", so that they make distinct member names in the access log; otlp: export
 *     on only with an http(s) endpoint, headers with token names and field values, distinct
 *     (case-insensitively), and their "Name: value" lines, bounded lists and numbers, a batch
 *     within the queue, client certificate and key together;
 *   - no two listen addresses overlap, nor the admin address and a listen address (a reference
 *     of the rule here); no standard method in another case than upper; every warning and note
 *     is non-empty UTF-8;
 *   - round trip: config_to_text succeeds; loading its text without overrides succeeds, prints the
 *     same text again, and config_needs_restart sees no difference.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <strings.h>

#include "config/config.h"
#include "common/http_syntax.h"
#include "common/json_escape.h"

#include "fuzz.h"

#define SOURCE "<fuzz>"

enum override_name {
    O_LISTEN,
    O_UPSTREAM,
    O_ADMIN_LISTEN,
    O_ACCESS_LOG,
    O_SERVICE_NAME,
    O_SAMPLING_RATIO,
    O_TRACE_HEADER,
    O_WORKERS,
    O_LOG_LEVEL,
    O_OTEL_SDK_DISABLED,
    O_OTEL_TRACES_EXPORTER,
    O_OTEL_SERVICE_NAME,
    O_OTEL_RESOURCE_ATTRIBUTES,
    O_OTEL_TRACES_SAMPLER,
    O_OTEL_TRACES_SAMPLER_ARG,
    O_OTEL_ENDPOINT,
    O_OTEL_TRACES_ENDPOINT,
    O_OTEL_HEADERS,
    O_OTEL_TRACES_HEADERS,
    O_OTEL_TIMEOUT,
    O_OTEL_COMPRESSION,
    O_OTEL_PROTOCOL,
    O_OTEL_CERTIFICATE,
    O_OTEL_CLIENT_CERTIFICATE,
    O_OTEL_CLIENT_KEY,
    O_OTEL_BSP_SCHEDULE_DELAY,
    O_OTEL_BSP_MAX_QUEUE_SIZE,
    O_OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    O_OTEL_BSP_EXPORT_TIMEOUT,
    O_COUNT
};

static const char *const override_names[O_COUNT] = {
    "listen",
    "upstream",
    "admin_listen",
    "access_log",
    "service_name",
    "sampling_ratio",
    "trace_header",
    "workers",
    "log_level",
    /* the TRACES_ variants of the exporter's variables share its code: the generic names, plus
     * the endpoint and headers, whose TRACES_ variants differ */
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_EXPORT_TIMEOUT",
};

/* Override values, [0] environment and [1] flags; NULL = not given. */
struct overrides_input {
    char *values[2][O_COUNT];
};

static char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);

    if (!copy)
        abort();
    memcpy(copy, data, size);
    copy[size] = '\0';
    return copy;
}

static void split_overrides(const uint8_t *data, size_t size, struct overrides_input *in)
{
    size_t offset = 0;

    while (offset < size) {
        const uint8_t *line = data + offset;
        const uint8_t *newline = memchr(line, '\n', size - offset);
        size_t line_len = newline ? (size_t)(newline - line) : size - offset;
        const uint8_t *eq = memchr(line, '=', line_len);

        offset += line_len + 1;
        if (line_len < 2 || !eq || (line[0] != 'E' && line[0] != 'F'))
            continue;
        for (int o = 0; o < O_COUNT; o++) {
            size_t name_len = (size_t)(eq - line) - 1;
            char **slot = &in->values[line[0] == 'F'][o];

            if (strlen(override_names[o]) != name_len ||
                memcmp(override_names[o], line + 1, name_len) != 0)
                continue;
            free(*slot);
            /* A value is a C string: it ends at a NUL, as one from argv or environ would. */
            *slot = fuzz_strndup(eq + 1,
                                 strnlen((const char *)eq + 1, (size_t)(line + line_len - eq - 1)));
        }
    }
}

/* values[] of one origin into o; the OTEL_* ones only from the environment. */
static void fill_overrides(char *const values[O_COUNT], bool from_env, struct config_overrides *o)
{
    *o = (struct config_overrides){
        .listen = values[O_LISTEN],
        .upstream = values[O_UPSTREAM],
        .admin_listen = values[O_ADMIN_LISTEN],
        .access_log = values[O_ACCESS_LOG],
        .service_name = values[O_SERVICE_NAME],
        .sampling_ratio = values[O_SAMPLING_RATIO],
        .trace_header = values[O_TRACE_HEADER],
        .workers = values[O_WORKERS],
        .log_level = values[O_LOG_LEVEL],
    };
    if (!from_env)
        return;
    o->otel_sdk_disabled = values[O_OTEL_SDK_DISABLED];
    o->otel_traces_exporter = values[O_OTEL_TRACES_EXPORTER];
    o->otel_service_name = values[O_OTEL_SERVICE_NAME];
    o->otel_resource_attributes = values[O_OTEL_RESOURCE_ATTRIBUTES];
    o->otel_traces_sampler = values[O_OTEL_TRACES_SAMPLER];
    o->otel_traces_sampler_arg = values[O_OTEL_TRACES_SAMPLER_ARG];
    o->otel_endpoint = values[O_OTEL_ENDPOINT];
    o->otel_traces_endpoint = values[O_OTEL_TRACES_ENDPOINT];
    o->otel_headers = values[O_OTEL_HEADERS];
    o->otel_traces_headers = values[O_OTEL_TRACES_HEADERS];
    o->otel_timeout = values[O_OTEL_TIMEOUT];
    o->otel_compression = values[O_OTEL_COMPRESSION];
    o->otel_protocol = values[O_OTEL_PROTOCOL];
    o->otel_certificate = values[O_OTEL_CERTIFICATE];
    o->otel_client_certificate = values[O_OTEL_CLIENT_CERTIFICATE];
    o->otel_client_key = values[O_OTEL_CLIENT_KEY];
    o->otel_bsp_schedule_delay = values[O_OTEL_BSP_SCHEDULE_DELAY];
    o->otel_bsp_max_queue_size = values[O_OTEL_BSP_MAX_QUEUE_SIZE];
    o->otel_bsp_max_export_batch_size = values[O_OTEL_BSP_MAX_EXPORT_BATCH_SIZE];
    o->otel_bsp_export_timeout = values[O_OTEL_BSP_EXPORT_TIMEOUT];
}

/*
 * False when config_parse_address could ask a resolver about text: it gets as far as
 * getaddrinfo (a colon, a host shorter than 256 bytes without ':') with a host that is not empty
 * and not numeric IPv4. Bracketed hosts are parsed with AI_NUMERICHOST.
 */
static bool address_is_offline(const char *text, size_t len)
{
    char host[256];
    const char *colon;

    if (len == 0 || text[0] == '[' || (len == 3 && memcmp(text, "off", 3) == 0))
        return true;
    colon = memrchr(text, ':', len);
    if (!colon || (size_t)(colon - text) >= sizeof(host))
        return true;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    if (memchr(text, '\0', len) || host[0] == '\0' || strchr(host, ':'))
        return true;
    struct in_addr addr;
    return inet_pton(AF_INET, host, &addr) == 1;
}

static bool json_address_is_offline(const json_t *v)
{
    return !json_is_string(v) || address_is_offline(json_string_value(v), json_string_length(v));
}

static bool file_is_offline(const json_t *root)
{
    const json_t *listen = json_object_get(root, "listen");
    size_t i;
    json_t *item;

    if (!json_address_is_offline(listen))
        return false;
    if (json_is_array(listen))
        json_array_foreach(listen, i, item) if (!json_address_is_offline(item)) return false;
    return json_address_is_offline(json_object_get(json_object_get(root, "admin"), "listen"));
}

static void check_error(const char *error)
{
    const char *colon;
    size_t len = strnlen(error, CONFIG_ERROR_MAX);

    FUZZ_CHECK(len < CONFIG_ERROR_MAX);
    FUZZ_CHECK(len > 0);
    colon = strstr(error, ": ");
    FUZZ_CHECK(colon);
    FUZZ_CHECK(colon > error); /* a key path or the source name before the reason */
}

static void check_upstream(const struct upstream_target *u)
{
    FUZZ_CHECK(u->text && u->text[0]);
    FUZZ_CHECK(u->curl_url && u->base_path);
    FUZZ_CHECK(strlen(u->base_path) == u->base_path_len);
    FUZZ_CHECK(u->base_path_len == 0 ||
               (u->base_path[0] == '/' && u->base_path[u->base_path_len - 1] != '/'));
    for (size_t i = 0; i < u->base_path_len; i++)
        FUZZ_CHECK((unsigned char)u->base_path[i] > 0x20 && (unsigned char)u->base_path[i] < 0x7f);
    switch (u->scheme) {
    case UPSTREAM_UNIX:
        FUZZ_CHECK(strncmp(u->text, "unix:", 5) == 0);
        FUZZ_CHECK(u->unix_path && u->unix_path[0] == '/' && strlen(u->unix_path) < 108);
        FUZZ_CHECK(strcmp(u->curl_url, "http://localhost/") == 0 && u->base_path_len == 0);
        break;
    case UPSTREAM_HTTP:
    case UPSTREAM_HTTPS: {
        const char *scheme = u->scheme == UPSTREAM_HTTP ? "http://" : "https://";
        size_t scheme_len = strlen(scheme), url_len = strlen(u->curl_url);

        FUZZ_CHECK(!u->unix_path);
        FUZZ_CHECK(strncmp(u->text, scheme, scheme_len) == 0);
        FUZZ_CHECK(strncmp(u->curl_url, scheme, scheme_len) == 0);
        /* "scheme://authority/": a non-empty authority, no path, no userinfo. */
        FUZZ_CHECK(url_len > scheme_len + 1 && u->curl_url[url_len - 1] == '/');
        FUZZ_CHECK(!strpbrk(u->curl_url + scheme_len, "@?#") &&
                   strchr(u->curl_url + scheme_len, '/') == u->curl_url + url_len - 1);
        break;
    }
    default:
        FUZZ_CHECK(!"unknown upstream scheme");
    }
}

static void check_route(const struct route *r)
{
    FUZZ_CHECK(r->name);
    FUZZ_CHECK(r->path_prefix && r->path_prefix[0] == '/');
    FUZZ_CHECK(strlen(r->path_prefix) == r->path_prefix_len);
    if (r->host) {
        size_t len = strlen(r->host);
        bool bracketed = len >= 3 && r->host[0] == '[' && r->host[len - 1] == ']';
        FUZZ_CHECK(bracketed || (http_is_token(r->host, len) && !strchr(r->host, ':')));
    }
    static const char *const standard[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                           "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (size_t i = 0; i < r->methods_count; i++) {
        FUZZ_CHECK(http_is_token(r->methods[i], strlen(r->methods[i])));
        /* A standard method is accepted only as clients send it, in upper case. */
        for (size_t k = 0; k < sizeof(standard) / sizeof(standard[0]); k++)
            if (strcasecmp(r->methods[i], standard[k]) == 0)
                FUZZ_CHECK(strcmp(r->methods[i], standard[k]) == 0);
    }
    check_upstream(&r->upstream);
    FUZZ_CHECK(r->connect_timeout_ms >= 1 && r->connect_timeout_ms <= 3600000);
    FUZZ_CHECK(r->timeout_ms >= 0 && r->timeout_ms <= 86400000);
    for (size_t i = 0; i < r->set_request_headers_count; i++) {
        const struct header_setting *h = &r->set_request_headers[i];
        size_t name_len = strlen(h->name);

        FUZZ_CHECK(http_is_token(h->name, name_len));
        FUZZ_CHECK(!http_header_is_hop_by_hop(h->name, name_len));
        FUZZ_CHECK(!http_header_is_managed(h->name, name_len));
        FUZZ_CHECK(http_is_field_value(h->value, strlen(h->value)));
        FUZZ_CHECK(strlen(h->line) == name_len + 2 + strlen(h->value));
    }
}

static void check_otlp(const struct otlp_config *o)
{
    FUZZ_CHECK(!o->enabled || o->endpoint);
    if (o->endpoint)
        FUZZ_CHECK(strncmp(o->endpoint, "http://", 7) == 0 ||
                   strncmp(o->endpoint, "https://", 8) == 0);
    FUZZ_CHECK(o->headers_count <= 64 && o->resource_attributes_count <= 128);
    for (size_t i = 0; i < o->headers_count; i++) {
        const struct header_setting *h = &o->headers[i];
        size_t name_len = strlen(h->name);

        FUZZ_CHECK(http_is_token(h->name, name_len));
        FUZZ_CHECK(!http_header_is_hop_by_hop(h->name, name_len));
        FUZZ_CHECK(http_is_field_value(h->value, strlen(h->value)));
        FUZZ_CHECK(strlen(h->line) == name_len + 2 + strlen(h->value));
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(strcasecmp(o->headers[k].name, h->name) != 0);
    }
    for (size_t i = 0; i < o->resource_attributes_count; i++) {
        FUZZ_CHECK(o->resource_attributes[i].name[0]);
        FUZZ_CHECK(strcmp(o->resource_attributes[i].name, "service.name") != 0);
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(strcmp(o->resource_attributes[k].name, o->resource_attributes[i].name) != 0);
    }
    FUZZ_CHECK(o->timeout_ms >= 1 && o->timeout_ms <= 600000);
    FUZZ_CHECK(o->max_queue_size >= 1 && o->max_queue_size <= 1000000);
    FUZZ_CHECK(o->max_export_batch_size >= 1 && o->max_export_batch_size <= o->max_queue_size);
    FUZZ_CHECK(o->schedule_delay_ms >= 1 && o->schedule_delay_ms <= 3600000);
    FUZZ_CHECK(o->export_timeout_ms >= 1 && o->export_timeout_ms <= 3600000);
    FUZZ_CHECK((o->client_certificate == NULL) == (o->client_key == NULL));
    FUZZ_CHECK(!o->ca_file || o->ca_file[0]);
}

/* A reference for the loader's overlap rule (docs/configuration.md, "Checks"): the same
 * non-zero port, and the same address, or a wildcard of the other's family, or a v6 wildcard
 * (dual-stack) whatever the other's family. */
static bool overlap(const struct listen_address *a, const struct listen_address *b)
{
    const struct sockaddr_in *a4 = (const void *)&a->addr, *b4 = (const void *)&b->addr;
    const struct sockaddr_in6 *a6 = (const void *)&a->addr, *b6 = (const void *)&b->addr;
    bool a_v4 = a->addr.ss_family == AF_INET, b_v4 = b->addr.ss_family == AF_INET;
    unsigned a_port = ntohs(a_v4 ? a4->sin_port : a6->sin6_port);
    unsigned b_port = ntohs(b_v4 ? b4->sin_port : b6->sin6_port);
    static const uint8_t zero[16];
    bool a_any = a_v4 ? a4->sin_addr.s_addr == 0 : memcmp(&a6->sin6_addr, zero, 16) == 0;
    bool b_any = b_v4 ? b4->sin_addr.s_addr == 0 : memcmp(&b6->sin6_addr, zero, 16) == 0;

    if (a_port != b_port || a_port == 0)
        return false;
    if (a_v4 != b_v4)
        return (!a_v4 && a_any) || (!b_v4 && b_any);
    if (a_any || b_any)
        return true;
    return a_v4 ? a4->sin_addr.s_addr == b4->sin_addr.s_addr
                : memcmp(&a6->sin6_addr, &b6->sin6_addr, 16) == 0;
}

static void check_consistent(const struct config *c)
{
    FUZZ_CHECK(atomic_load(&c->refs) == 1);
    FUZZ_CHECK(c->source_path && strcmp(c->source_path, SOURCE) == 0);
    FUZZ_CHECK(c->service_name && c->service_name[0]);
    FUZZ_CHECK(c->listen_count >= 1 && c->listen_count <= 64);
    for (size_t i = 0; i < c->listen_count; i++)
        FUZZ_CHECK(c->listen[i].text && c->listen[i].addr_len > 0);
    if (c->admin_enabled)
        FUZZ_CHECK(c->admin_listen.text && c->admin_listen.addr_len > 0);
    for (size_t i = 0; i < c->listen_count; i++) {
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(!overlap(&c->listen[i], &c->listen[k]));
        FUZZ_CHECK(!c->admin_enabled || !overlap(&c->admin_listen, &c->listen[i]));
    }
    /* Warnings and notes: each a non-empty line of UTF-8, printable as JSON. */
    for (size_t i = 0; i < c->messages_count; i++) {
        const struct config_message *m = &c->messages[i];
        FUZZ_CHECK(m->kind == CONFIG_WARNING || m->kind == CONFIG_NOTE);
        FUZZ_CHECK(m->text && m->text[0] && utf8_is_valid(m->text, strlen(m->text)));
    }
    FUZZ_CHECK(c->workers >= 1 && c->workers <= 64);
    FUZZ_CHECK(c->log_level >= DIAG_DEBUG && c->log_level <= DIAG_ERROR);
    FUZZ_CHECK(c->request_id_header &&
               http_is_token(c->request_id_header, strlen(c->request_id_header)));
    FUZZ_CHECK(c->sampling_ratio >= 0.0 && c->sampling_ratio <= 1.0);
    FUZZ_CHECK(c->access_log_path && c->access_log_path[0]);
    FUZZ_CHECK(c->access_log_fields_count <= CONFIG_MAX_LOGGED_HEADERS);
    for (size_t i = 0; i < c->access_log_fields_count; i++) {
        /* They become member names of the log's "request_headers": distinct, lowercased. */
        const char *name = c->access_log_fields[i];
        size_t len = strlen(name);

        FUZZ_CHECK(http_is_token(name, len) && len <= CONFIG_LOGGED_HEADER_NAME_MAX);
        FUZZ_CHECK(len < 8 || strcasecmp(name + len - 8, "_raw_b64") != 0);
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(strcasecmp(c->access_log_fields[k], name) != 0);
    }
    for (size_t i = 0; i < c->access_log_redact_count; i++)
        FUZZ_CHECK(c->access_log_redact[i][0]);
    FUZZ_CHECK(c->max_header_bytes >= 1024 && c->max_header_bytes <= 1048576);
    FUZZ_CHECK(c->max_connections >= 1 && c->max_connections <= 1000000);
    FUZZ_CHECK(c->client_timeout_s >= 1 && c->client_timeout_s <= 3600);
    FUZZ_CHECK(c->drain_delay_ms >= 0 && c->drain_delay_ms <= 600000);
    FUZZ_CHECK(c->drain_timeout_ms >= 0 && c->drain_timeout_ms <= 3600000);
    check_otlp(&c->otlp);
    FUZZ_CHECK(c->routes_count >= 1);
    for (size_t i = 0; i < c->routes_count; i++) {
        check_route(&c->routes[i]);
        for (size_t k = 0; k < c->routes[i].set_request_headers_count; k++)
            FUZZ_CHECK(strcasecmp(c->routes[i].set_request_headers[k].name, c->request_id_header) !=
                       0);
    }
}

static void check_round_trip(const struct config *c)
{
    const struct config_overrides none = {0};
    char error[CONFIG_ERROR_MAX] = "";
    struct config *again = NULL;
    char *text = config_to_text(c);
    char *copy, *text_again;
    size_t len;
    char what[CONFIG_ERROR_MAX];

    FUZZ_CHECK(text);
    len = strlen(text);
    copy = fuzz_memdup(text, len);
    if (config_load_text(SOURCE, copy, len, &none, &none, NULL, &again, error) < 0) {
        fprintf(stderr, "printed config:\n%s\ndoes not load: %s\n", text, error);
        FUZZ_CHECK(!"the printed config loads");
    }
    check_consistent(again);
    text_again = config_to_text(again);
    FUZZ_CHECK(text_again);
    if (strcmp(text, text_again) != 0) {
        fprintf(stderr, "printed:\n%s\nprinted after loading that:\n%s\n", text, text_again);
        FUZZ_CHECK(!"printing is idempotent");
    }
    FUZZ_CHECK(!config_needs_restart(c, again, what));
    free(text_again);
    config_free(again);
    free(copy);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct overrides_input in = {0};
    struct config_overrides env, flags;
    const uint8_t *nul = memchr(data, '\0', size);
    size_t text_len = nul ? (size_t)(nul - data) : size;
    char *text = fuzz_memdup(data, text_len);
    char error[CONFIG_ERROR_MAX];
    struct config *sentinel = (struct config *)&in, *config = sentinel;
    json_t *root;
    bool offline = true;
    int rc;

    if (nul)
        split_overrides(nul + 1, size - text_len - 1, &in);
    for (int from = 0; from < 2; from++) {
        const char *listen = in.values[from][O_LISTEN], *admin = in.values[from][O_ADMIN_LISTEN];

        if ((listen && !address_is_offline(listen, strlen(listen))) ||
            (admin && !address_is_offline(admin, strlen(admin))))
            offline = false;
    }
    root = json_loadb(text, text_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
    if (json_is_object(root))
        offline = offline && file_is_offline(root);
    json_decref(root);
    if (!offline)
        goto out;

    fill_overrides(in.values[0], true, &env);
    fill_overrides(in.values[1], false, &flags);
    memset(error, 0x5a, sizeof(error));
    rc = config_load_text(SOURCE, text, text_len, &flags, &env, NULL, &config, error);
    if (rc < 0) {
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM);
        FUZZ_CHECK(config == sentinel);
        check_error(error);
        goto out;
    }
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(config && config != sentinel);
    check_consistent(config);
    check_round_trip(config);
    config_unref(config);

out:
    for (int from = 0; from < 2; from++)
        for (int o = 0; o < O_COUNT; o++)
            free(in.values[from][o]);
    free(text);
    return 0;
}
