/* SPDX-License-Identifier: MIT */
/*
 * Configuration loading (src/config/config.h; docs/configuration.md): defaults, every key of the
 * file, precedence flags > environment > file > defaults, and errors. Every error must name the
 * key path and the reason, in the form docs/configuration.md shows (`routes[2].upstream:
 * unsupported scheme 'ftp'`), and nothing is half-applied: a refused config returns no config at
 * all.
 *
 * Also: which changes a reload cannot apply (config_needs_restart), and --check-config's output
 * (config_print), captured from stdout, which must be JSON and must describe the same config.
 */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "common/json_escape.h"
#include "daemon-test.h"
#include "unit-test.h"

#define R1 "\"routes\": [{\"upstream\": \"http://127.0.0.1:1\"}]"
/* One https route with the given tls object. */
#define TLS_ROUTE(tls) "\"routes\": [{\"upstream\": \"https://10.0.0.5:8443\", \"tls\": " tls "}]"

static struct config_overrides no_overrides;

/* Load json that must be refused; returns the reason (static). */
static const char *refusal(const char *json, const struct config_overrides *flags,
                           const struct config_overrides *env)
{
    static char error[CONFIG_ERROR_MAX];
    struct config *c = (struct config *)&no_overrides; /* must stay untouched */
    int rc = unit_config_load(json, flags, env, &c, error);

    ck_assert_msg(rc < 0, "accepted, expected a refusal:\n%s", json ? json : "(no file)");
    ck_assert_msg(c == (struct config *)&no_overrides, "*ret written on failure");
    ck_assert_msg(error[0] != '\0', "refused without a reason");
    return error;
}

/* --- defaults and keys --------------------------------------------------------------------- */

START_TEST(test_defaults)
{
    struct config *c = unit_config("{" R1 "}");

    ck_assert_str_eq(c->service_name, "tracehop");
    ck_assert_uint_eq(c->listen_count, 1);
    ck_assert_str_eq(c->listen[0].text, "0.0.0.0:8000");
    ck_assert(c->admin_enabled);
    ck_assert_str_eq(c->admin_listen.text, "127.0.0.1:9901");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ck_assert_uint_eq(c->workers, cpus < 1 ? 1 : cpus > 64 ? 64 : (unsigned)cpus);
    ck_assert_str_eq(c->request_id_header, "X-Trace-ID");
    ck_assert(c->sampling_ratio == 1.0);
    ck_assert(c->trust_incoming);
    ck_assert(c->echo);
    ck_assert(!c->server_timing); /* opt-in: docs/trace-context.md, "11. Server-Timing" */
    ck_assert(!c->server_timing_durations);
    ck_assert_str_eq(c->access_log_path, "-");
    ck_assert_uint_eq(c->access_log_fields_count, 0);
    ck_assert_uint_eq(c->access_log_redact_count, 0);
    ck_assert_uint_eq(c->max_header_bytes, 8192);
    ck_assert_uint_eq(c->max_body_bytes, 0);
    ck_assert_uint_eq(c->max_connections, 10000);
    ck_assert_uint_eq(c->client_timeout_s, 60);
    ck_assert_int_eq(c->drain_delay_ms, 5000);
    ck_assert_int_eq(c->drain_timeout_ms, 20000);
    ck_assert_ptr_nonnull(c->source_path);
    ck_assert_int_eq(c->sampler, TRACEHOP_SAMPLER_PARENTBASED_TRACEIDRATIO);

    /* No endpoint: no export; the rest are the OpenTelemetry SDK's defaults. */
    const struct otlp_config *o = &c->otlp;
    ck_assert(!o->enabled);
    ck_assert_ptr_null(o->endpoint);
    ck_assert_uint_eq(o->headers_count, 0);
    ck_assert_int_eq(o->timeout_ms, 10000);
    ck_assert(!o->gzip);
    ck_assert_ptr_null(o->ca_file);
    ck_assert_ptr_null(o->client_certificate);
    ck_assert_ptr_null(o->client_key);
    ck_assert_uint_eq(o->resource_attributes_count, 0);
    ck_assert_uint_eq(o->max_queue_size, 2048);
    ck_assert_uint_eq(o->max_export_batch_size, 512);
    ck_assert_int_eq(o->schedule_delay_ms, 5000);
    ck_assert_int_eq(o->export_timeout_ms, 30000);

    ck_assert_uint_eq(c->routes_count, 1);
    const struct route *r = &c->routes[0];
    ck_assert_str_eq(r->name, "route0");
    ck_assert_str_eq(r->path_prefix, "/");
    ck_assert_uint_eq(r->path_prefix_len, 1);
    ck_assert_ptr_null(r->host);
    ck_assert_ptr_null(r->methods);
    ck_assert(!r->strip_prefix);
    ck_assert_int_eq(r->connect_timeout_ms, 5000);
    ck_assert_int_eq(r->timeout_ms, 60000);
    ck_assert_uint_eq(r->set_request_headers_count, 0);
    ck_assert_int_eq(r->upstream.scheme, UPSTREAM_HTTP);
    ck_assert_str_eq(r->upstream.text, "http://127.0.0.1:1");
    ck_assert_str_eq(r->upstream.curl_url, "http://127.0.0.1:1/");
    ck_assert_str_eq(r->upstream.base_path, "");
    ck_assert_uint_eq(r->upstream.base_path_len, 0);
    config_free(c);
}
END_TEST

/* No file: --upstream alone makes a working config (docs/configuration.md, at the top). */
START_TEST(test_upstream_flag_alone)
{
    struct config_overrides flags = {.upstream = "http://127.0.0.1:8080"};
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;

    ck_assert_msg(unit_config_load(NULL, &flags, NULL, &c, error) == 0, "%s", error);
    ck_assert_ptr_null(c->source_path);
    ck_assert_str_eq(c->listen[0].text, "0.0.0.0:8000");
    ck_assert_str_eq(c->admin_listen.text, "127.0.0.1:9901");
    ck_assert_str_eq(c->access_log_path, "-");
    ck_assert_uint_eq(c->routes_count, 1);
    ck_assert_str_eq(c->routes[0].name, "default");
    ck_assert_str_eq(c->routes[0].path_prefix, "/");
    ck_assert_str_eq(c->routes[0].upstream.text, "http://127.0.0.1:8080");
    config_free(c);
}
END_TEST

static const char every_key[] =
    "{\n"
    "  \"service_name\": \"orders\",\n"
    "  \"listen\": [\"127.0.0.1:18000\", \"[::1]:18001\", \":18002\"],\n"
    "  \"admin\": {\"listen\": \"127.0.0.1:19901\"},\n"
    "  \"workers\": 3,\n"
    "  \"trace\": {\"request_id_header\": \"X-Request-ID\", \"sampling_ratio\": 0.25,\n"
    "            \"sampler\": \"parentbased_always_on\", \"trust_incoming\": false,\n"
    "            \"echo\": false, \"server_timing\": true,\n"
    "            \"server_timing_durations\": true},\n"
    "  \"access_log\": {\"path\": \"/tmp/access.log\", \"fields\": [\"X-Tenant\", "
    "\"User-Agent\"],\n"
    "                 \"redact\": [\"token\", \"Authorization\"]},\n"
    "  \"limits\": {\"max_header_bytes\": 16384, \"max_body_bytes\": 1048576,\n"
    "             \"max_connections\": 500, \"client_timeout_ms\": 1500,\n"
    "             \"drain_delay_ms\": 0, \"drain_timeout_ms\": 7000},\n"
    "  \"routes\": [\n"
    "    {\"name\": \"uploads\",\n"
    "     \"match\": {\"path_prefix\": \"/upload/\", \"host\": \"api.example.com\",\n"
    "               \"methods\": [\"POST\", \"PUT\"]},\n"
    "     \"upstream\": \"unix:/run/app/uploads.sock\", \"strip_prefix\": true,\n"
    "     \"connect_timeout_ms\": 250, \"timeout_ms\": 0,\n"
    "     \"set_request_headers\": {\"X-Gateway\": \"tracehop\", \"Host\": \"internal\"}},\n"
    "    {\"name\": \"billing\", \"upstream\": \"https://billing.example.com:8443/v2/\"},\n"
    "    {\"upstream\": \"http://[::1]:8080\"}\n"
    "  ],\n"
    "  \"otlp\": {\"enabled\": true, \"endpoint\": \"http://collector:4318/\",\n"
    "           \"traces_endpoint\": \"https://collector.example.com:4318/custom/traces\",\n"
    "           \"protocol\": \"http/json\",\n"
    "           \"headers\": {\"Authorization\": \"Bearer abc\", \"X-Tenant\": \"acme\"},\n"
    "           \"timeout_ms\": 2500, \"compression\": \"gzip\", \"ca_file\": "
    "\"/etc/ssl/ca.pem\",\n"
    "           \"client_certificate\": \"/etc/tracehop/cert.pem\",\n"
    "           \"client_key\": \"/etc/tracehop/key.pem\",\n"
    "           \"resource_attributes\": {\"deployment.environment\": \"prod\",\n"
    "                                   \"k8s.pod.name\": \"orders-1\"},\n"
    "           \"batch\": {\"max_queue_size\": 4096, \"max_export_batch_size\": 1024,\n"
    "                     \"schedule_delay_ms\": 1000, \"export_timeout_ms\": 15000}}\n"
    "}\n";

START_TEST(test_every_key_accepted)
{
    struct config *c = unit_config(every_key);

    ck_assert_str_eq(c->service_name, "orders");
    ck_assert_uint_eq(c->listen_count, 3);
    ck_assert_str_eq(c->listen[0].text, "127.0.0.1:18000");
    ck_assert_str_eq(c->listen[1].text, "[::1]:18001");
    ck_assert_str_eq(c->listen[2].text, ":18002");
    ck_assert_int_eq(c->listen[0].addr.ss_family, AF_INET);
    ck_assert_int_eq(c->listen[1].addr.ss_family, AF_INET6);
    ck_assert_int_eq(c->listen[2].addr.ss_family, AF_INET);
    const struct sockaddr_in *any = (const struct sockaddr_in *)&c->listen[2].addr;
    ck_assert_uint_eq(ntohs(any->sin_port), 18002);
    ck_assert_uint_eq(ntohl(any->sin_addr.s_addr), INADDR_ANY);
    ck_assert(c->admin_enabled);
    ck_assert_str_eq(c->admin_listen.text, "127.0.0.1:19901");
    ck_assert_uint_eq(c->workers, 3);
    ck_assert_str_eq(c->request_id_header, "X-Request-ID");
    ck_assert(c->sampling_ratio == 0.25);
    ck_assert(!c->trust_incoming);
    ck_assert(!c->echo);
    ck_assert(c->server_timing);
    ck_assert(c->server_timing_durations);
    ck_assert_str_eq(c->access_log_path, "/tmp/access.log");
    ck_assert_uint_eq(c->access_log_fields_count, 2);
    ck_assert_str_eq(c->access_log_fields[0], "X-Tenant");
    ck_assert_str_eq(c->access_log_fields[1], "User-Agent");
    ck_assert_uint_eq(c->access_log_redact_count, 2);
    ck_assert_str_eq(c->access_log_redact[1], "Authorization");
    ck_assert_uint_eq(c->max_header_bytes, 16384);
    ck_assert_uint_eq(c->max_body_bytes, 1048576);
    ck_assert_uint_eq(c->max_connections, 500);
    ck_assert_uint_eq(c->client_timeout_s, 2); /* 1500 ms, rounded up to whole seconds */
    ck_assert_int_eq(c->drain_delay_ms, 0);
    ck_assert_int_eq(c->drain_timeout_ms, 7000);

    ck_assert_uint_eq(c->routes_count, 3);
    const struct route *r = &c->routes[0];
    ck_assert_str_eq(r->name, "uploads");
    ck_assert_str_eq(r->path_prefix, "/upload/");
    ck_assert_uint_eq(r->path_prefix_len, 8);
    ck_assert_str_eq(r->host, "api.example.com");
    ck_assert_uint_eq(r->methods_count, 2);
    ck_assert_str_eq(r->methods[0], "POST");
    ck_assert_str_eq(r->methods[1], "PUT");
    ck_assert_int_eq(r->upstream.scheme, UPSTREAM_UNIX);
    ck_assert_str_eq(r->upstream.unix_path, "/run/app/uploads.sock");
    ck_assert_str_eq(r->upstream.base_path, "");
    ck_assert(r->strip_prefix);
    ck_assert_int_eq(r->connect_timeout_ms, 250);
    ck_assert_int_eq(r->timeout_ms, 0);
    ck_assert_uint_eq(r->set_request_headers_count, 2);
    ck_assert_str_eq(r->set_request_headers[0].name, "X-Gateway");
    ck_assert_str_eq(r->set_request_headers[0].value, "tracehop");
    ck_assert_str_eq(r->set_request_headers[0].line, "X-Gateway: tracehop");
    ck_assert_str_eq(r->set_request_headers[1].line, "Host: internal");

    r = &c->routes[1];
    ck_assert_str_eq(r->name, "billing");
    ck_assert_int_eq(r->upstream.scheme, UPSTREAM_HTTPS);
    ck_assert_str_eq(r->upstream.curl_url, "https://billing.example.com:8443/");
    ck_assert_str_eq(r->upstream.base_path, "/v2"); /* trailing slash removed */
    ck_assert_uint_eq(r->upstream.base_path_len, 3);
    ck_assert_str_eq(r->upstream.text, "https://billing.example.com:8443/v2/");

    r = &c->routes[2];
    ck_assert_str_eq(r->name, "route2");
    ck_assert_str_eq(r->upstream.curl_url, "http://[::1]:8080/");

    ck_assert_int_eq(c->sampler, TRACEHOP_SAMPLER_PARENTBASED_ALWAYS_ON);
    const struct otlp_config *o = &c->otlp;
    ck_assert(o->enabled);
    /* traces_endpoint, used as is, wins over the base endpoint */
    ck_assert_str_eq(o->endpoint, "https://collector.example.com:4318/custom/traces");
    ck_assert_uint_eq(o->headers_count, 2);
    ck_assert_str_eq(o->headers[0].name, "Authorization");
    ck_assert_str_eq(o->headers[0].value, "Bearer abc");
    ck_assert_str_eq(o->headers[0].line, "Authorization: Bearer abc");
    ck_assert_str_eq(o->headers[1].line, "X-Tenant: acme");
    ck_assert_int_eq(o->timeout_ms, 2500);
    ck_assert(o->gzip);
    ck_assert_str_eq(o->ca_file, "/etc/ssl/ca.pem");
    ck_assert_str_eq(o->client_certificate, "/etc/tracehop/cert.pem");
    ck_assert_str_eq(o->client_key, "/etc/tracehop/key.pem");
    ck_assert_uint_eq(o->resource_attributes_count, 2);
    ck_assert_str_eq(o->resource_attributes[0].name, "deployment.environment");
    ck_assert_str_eq(o->resource_attributes[0].value, "prod");
    ck_assert_str_eq(o->resource_attributes[1].name, "k8s.pod.name");
    ck_assert_str_eq(o->resource_attributes[1].value, "orders-1");
    ck_assert_uint_eq(o->max_queue_size, 4096);
    ck_assert_uint_eq(o->max_export_batch_size, 1024);
    ck_assert_int_eq(o->schedule_delay_ms, 1000);
    ck_assert_int_eq(o->export_timeout_ms, 15000);
    config_free(c);
}
END_TEST

/* The example shipped in config/ (and documented in docs/configuration.md) loads. */
START_TEST(test_shipped_config_loads)
{
    const char *root = getenv("UNIT_SOURCE_ROOT");
    char path[1024];
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;

    ck_assert_msg(root != NULL, "UNIT_SOURCE_ROOT is not set (meson sets it)");
    snprintf(path, sizeof(path), "%s/config/tracehop.json", root);
    /* Its access log is in /var/log/tracehop, which exists where tracehop is installed
     * (systemd's LogsDirectory=); the loader refuses a missing directory. */
    const struct config_overrides to_stdout = {.access_log = "-"};
    ck_assert_msg(config_load(path, &to_stdout, &no_overrides, NULL, &c, error) == 0, "%s: %s",
                  path, error);
    ck_assert_uint_ge(c->routes_count, 1);
    config_free(c);
}
END_TEST

START_TEST(test_upstream_forms)
{
    static const struct {
        const char *url;
        enum upstream_scheme scheme;
        const char *curl_url;
        const char *base_path;
        const char *unix_path;
    } cases[] = {
        {"http://127.0.0.1:8080", UPSTREAM_HTTP, "http://127.0.0.1:8080/", "", NULL},
        {"http://127.0.0.1:8080/", UPSTREAM_HTTP, "http://127.0.0.1:8080/", "", NULL},
        {"http://app:8080/base", UPSTREAM_HTTP, "http://app:8080/", "/base", NULL},
        {"http://app:8080/base/", UPSTREAM_HTTP, "http://app:8080/", "/base", NULL},
        {"http://app:8080/a/b/", UPSTREAM_HTTP, "http://app:8080/", "/a/b", NULL},
        {"http://app", UPSTREAM_HTTP, "http://app/", "", NULL},
        {"https://app.example.com", UPSTREAM_HTTPS, "https://app.example.com/", "", NULL},
        {"https://app:8443/v1", UPSTREAM_HTTPS, "https://app:8443/", "/v1", NULL},
        {"http://[::1]:8080/x", UPSTREAM_HTTP, "http://[::1]:8080/", "/x", NULL},
        {"unix:/run/app.sock", UPSTREAM_UNIX, "http://localhost/", "", "/run/app.sock"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct upstream_target u;
        char error[CONFIG_ERROR_MAX] = "";
        ck_assert_msg(config_parse_upstream(cases[i].url, &u, error) == 0, "%s: %s", cases[i].url,
                      error);
        ck_assert_int_eq(u.scheme, cases[i].scheme);
        ck_assert_str_eq(u.text, cases[i].url);
        ck_assert_str_eq(u.curl_url, cases[i].curl_url);
        ck_assert_str_eq(u.base_path, cases[i].base_path);
        ck_assert_uint_eq(u.base_path_len, strlen(cases[i].base_path));
        if (cases[i].unix_path)
            ck_assert_str_eq(u.unix_path, cases[i].unix_path);
        else
            ck_assert_ptr_null(u.unix_path);
        free(u.text);
        free(u.curl_url);
        free(u.unix_path);
        free(u.base_path);
    }
}
END_TEST

START_TEST(test_listen_addresses)
{
    static const struct {
        const char *text;
        int family;
        unsigned port;
    } good[] = {
        {"127.0.0.1:80", AF_INET, 80},   {"0.0.0.0:0", AF_INET, 0},
        {":8080", AF_INET, 8080},        {"[::1]:80", AF_INET6, 80},
        {"[::]:65535", AF_INET6, 65535}, {"localhost:81", AF_INET, 81},
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        struct listen_address a = {0};
        char error[CONFIG_ERROR_MAX] = "";
        ck_assert_msg(config_parse_address(good[i].text, &a, error) == 0, "%s: %s", good[i].text,
                      error);
        ck_assert_int_eq(a.addr.ss_family, good[i].family);
        unsigned port = good[i].family == AF_INET
                            ? ntohs(((struct sockaddr_in *)&a.addr)->sin_port)
                            : ntohs(((struct sockaddr_in6 *)&a.addr)->sin6_port);
        ck_assert_uint_eq(port, good[i].port);
        ck_assert_str_eq(a.text, good[i].text);
        free(a.text);
    }
}
END_TEST

/* --- errors ------------------------------------------------------------------------------------
 */

static const struct {
    const char *json;
    const char *error; /* the whole message */
} errors[] = {
    /* unknown keys, at every level */
    {"{\"bogus\": 1, " R1 "}", "bogus: unknown key"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"bogus\": 1}]}",
     "routes[0].bogus: unknown key"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": {\"path\": \"/\"}}]}",
     "routes[0].match.path: unknown key"},
    {"{\"trace\": {\"sampling\": 1}, " R1 "}", "trace.sampling: unknown key"},
    {"{\"access_log\": {\"file\": \"x\"}, " R1 "}", "access_log.file: unknown key"},
    {"{\"limits\": {\"max_body\": 1}, " R1 "}", "limits.max_body: unknown key"},
    {"{\"admin\": {\"port\": 1}, " R1 "}", "admin.port: unknown key"},
    /* wrong types */
    {"{\"service_name\": 5, " R1 "}", "service_name: expected a string, found a number (5)"},
    {"{\"workers\": \"2\", " R1 "}",
     "workers: expected an integer in 1..64, found a string (\"2\")"},
    {"{\"workers\": 2.5, " R1 "}", "workers: expected an integer in 1..64, found a number (2.5)"},
    {"{\"listen\": 5, " R1 "}",
     "listen: expected an address or a non-empty list of addresses, found a number (5)"},
    {"{\"listen\": [], " R1 "}",
     "listen: expected an address or a non-empty list of addresses, found an empty list"},
    {"{\"listen\": [\"127.0.0.1:1\", 5], " R1 "}",
     "listen[1]: expected a string, found a number (5)"},
    {"{\"admin\": 1, " R1 "}", "admin: expected an object, found a number (1)"},
    {"{\"admin\": {\"listen\": 9901}, " R1 "}",
     "admin.listen: expected a string, found a number (9901)"},
    {"{\"trace\": [], " R1 "}", "trace: expected an object, found an empty list"},
    {"{\"trace\": {\"trust_incoming\": \"yes\"}, " R1 "}",
     "trace.trust_incoming: expected true or false, found a string (\"yes\")"},
    {"{\"trace\": {\"echo\": 1}, " R1 "}",
     "trace.echo: expected true or false, found a number (1)"},
    {"{\"trace\": {\"server_timing\": \"on\"}, " R1 "}",
     "trace.server_timing: expected true or false, found a string (\"on\")"},
    {"{\"trace\": {\"server_timing_durations\": null}, " R1 "}",
     "trace.server_timing_durations: expected true or false, found null"},
    {"{\"trace\": {\"server_timings\": true}, " R1 "}",
     "trace.server_timings: unknown key (did you mean server_timing?)"},
    {"{\"trace\": {\"sampling_ratio\": \"0.5\"}, " R1 "}",
     "trace.sampling_ratio: expected a number in 0..1, found a string (\"0.5\")"},
    {"{\"trace\": {\"request_id_header\": 5}, " R1 "}",
     "trace.request_id_header: expected a string, found a number (5)"},
    {"{\"access_log\": {\"path\": 5}, " R1 "}",
     "access_log.path: expected a string, found a number (5)"},
    {"{\"access_log\": {\"fields\": \"X-A\"}, " R1 "}",
     "access_log.fields: expected a list of strings, found a string (\"X-A\")"},
    {"{\"access_log\": {\"redact\": [1]}, " R1 "}",
     "access_log.redact[0]: must be a non-empty string"},
    {"{\"limits\": 5, " R1 "}", "limits: expected an object, found a number (5)"},
    {"{\"limits\": {\"drain_timeout_ms\": \"5\"}, " R1 "}",
     "limits.drain_timeout_ms: expected an integer in 0..3600000, found a string (\"5\")"},
    {"{\"routes\": {}}", "routes: expected a list, found an object"},
    {"{\"routes\": [5]}", "routes[0]: expected an object, found a number (5)"},
    {"{\"routes\": [{\"upstream\": 5}]}",
     "routes[0].upstream: expected a string, found a number (5)"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"name\": 5}]}",
     "routes[0].name: expected a string, found a number (5)"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": 5}]}",
     "routes[0].match: expected an object, found a number (5)"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"strip_prefix\": \"yes\"}]}",
     "routes[0].strip_prefix: expected true or false, found a string (\"yes\")"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": {\"path_prefix\": 5}}]}",
     "routes[0].match.path_prefix: expected a string, found a number (5)"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": {\"methods\": \"GET\"}}]}",
     "routes[0].match.methods: expected a list of strings, found a string (\"GET\")"},
    {"{\"otlp\": 5, " R1 "}", "otlp: expected an object, found a number (5)"},
    {"{\"otlp\": {\"bogus\": 1}, " R1 "}", "otlp.bogus: unknown key"},
    {"{\"otlp\": {\"batch\": {\"bogus\": 1}}, " R1 "}", "otlp.batch.bogus: unknown key"},
    {"{\"otlp\": {\"batch\": 5}, " R1 "}", "otlp.batch: expected an object, found a number (5)"},
    {"{\"otlp\": {\"enabled\": \"yes\"}, " R1 "}",
     "otlp.enabled: expected true or false, found a string (\"yes\")"},
    {"{\"otlp\": {\"endpoint\": 5}, " R1 "}",
     "otlp.endpoint: expected a string, found a number (5)"},
    {"{\"otlp\": {\"traces_endpoint\": true}, " R1 "}",
     "otlp.traces_endpoint: expected a string, found true"},
    {"{\"otlp\": {\"protocol\": 5}, " R1 "}",
     "otlp.protocol: expected a string, found a number (5)"},
    {"{\"otlp\": {\"protocol\": null}, " R1 "}", "otlp.protocol: expected a string, found null"},
    {"{\"otlp\": {\"compression\": true}, " R1 "}",
     "otlp.compression: expected a string, found true"},
    {"{\"otlp\": {\"timeout_ms\": \"5\"}, " R1 "}",
     "otlp.timeout_ms: expected an integer in 1..600000, found a string (\"5\")"},
    {"{\"otlp\": {\"ca_file\": 5}, " R1 "}", "otlp.ca_file: expected a string, found a number (5)"},
    {"{\"otlp\": {\"headers\": [\"X-A: 1\"]}, " R1 "}",
     "otlp.headers: must be an object of header names to values"},
    {"{\"otlp\": {\"headers\": {\"X-A\": 5}}, " R1 "}", "otlp.headers.X-A: must be a string"},
    {"{\"otlp\": {\"resource_attributes\": [1]}, " R1 "}",
     "otlp.resource_attributes: must be an object of keys to values"},
    {"{\"otlp\": {\"resource_attributes\": {\"k\": 1}}, " R1 "}",
     "otlp.resource_attributes.k: must be a string"},
    {"{\"trace\": {\"sampler\": 5}, " R1 "}",
     "trace.sampler: expected a string, found a number (5)"},
    /* out of range */
    {"{\"workers\": 0, " R1 "}", "workers: expected an integer in 1..64, found a number (0)"},
    {"{\"workers\": 65, " R1 "}", "workers: expected an integer in 1..64, found a number (65)"},
    {"{\"trace\": {\"sampling_ratio\": 1.5}, " R1 "}",
     "trace.sampling_ratio: expected a number in 0..1, found a number (1.5)"},
    {"{\"trace\": {\"sampling_ratio\": -0.1}, " R1 "}",
     "trace.sampling_ratio: expected a number in 0..1, found a number (-0.1)"},
    {"{\"limits\": {\"max_header_bytes\": 100}, " R1 "}",
     "limits.max_header_bytes: expected an integer in 1024..1048576, found a number (100)"},
    {"{\"limits\": {\"max_header_bytes\": 2000000}, " R1 "}",
     "limits.max_header_bytes: expected an integer in 1024..1048576, found a number (2000000)"},
    {"{\"limits\": {\"max_body_bytes\": -1}, " R1 "}",
     "limits.max_body_bytes: expected an integer in 0..9223372036854775807, found a number (-1)"},
    {"{\"limits\": {\"max_connections\": 0}, " R1 "}",
     "limits.max_connections: expected an integer in 1..1000000, found a number (0)"},
    {"{\"limits\": {\"client_timeout_ms\": 999}, " R1 "}",
     "limits.client_timeout_ms: expected an integer in 1000..3600000, found a number (999)"},
    {"{\"limits\": {\"drain_delay_ms\": 600001}, " R1 "}",
     "limits.drain_delay_ms: expected an integer in 0..600000, found a number (600001)"},
    {"{\"limits\": {\"drain_delay_ms\": -1}, " R1 "}",
     "limits.drain_delay_ms: expected an integer in 0..600000, found a number (-1)"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"connect_timeout_ms\": 0}]}",
     "routes[0].connect_timeout_ms: expected an integer in 1..3600000, found a number (0)"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"timeout_ms\": -1}]}",
     "routes[0].timeout_ms: expected an integer in 0..86400000, found a number (-1)"},
    /* listen and admin addresses */
    {"{\"listen\": \"::1:80\", " R1 "}", "listen: '::1:80': write IPv6 addresses as [ADDR]:PORT"},
    {"{\"listen\": \"host:99999\", " R1 "}", "listen: 'host:99999': port must be 0..65535"},
    {"{\"listen\": \"127.0.0.1:-1\", " R1 "}", "listen: '127.0.0.1:-1': port must be 0..65535"},
    {"{\"listen\": \"127.0.0.1:\", " R1 "}", "listen: '127.0.0.1:': port must be 0..65535"},
    {"{\"listen\": \"127.0.0.1:80x\", " R1 "}", "listen: '127.0.0.1:80x': port must be 0..65535"},
    {"{\"listen\": \"8080\", " R1 "}", "listen: '8080' is not HOST:PORT"},
    {"{\"listen\": \"[::1]80\", " R1 "}", "listen: '[::1]80' is not [IPv6]:PORT"},
    {"{\"listen\": \"[::1\", " R1 "}", "listen: '[::1' is not [IPv6]:PORT"},
    {"{\"listen\": [\"127.0.0.1:1\", \"bad\"], " R1 "}", "listen[1]: 'bad' is not HOST:PORT"},
    {"{\"admin\": {\"listen\": \"nope\"}, " R1 "}", "admin.listen: 'nope' is not HOST:PORT"},
    {"{\"admin\": {\"listen\": \"::1:9901\"}, " R1 "}",
     "admin.listen: '::1:9901': write IPv6 addresses as [ADDR]:PORT"},
    /* upstreams */
    {"{\"routes\": [{\"upstream\": \"http://a:1\"}, {\"upstream\": \"http://b:1\"},"
     " {\"upstream\": \"ftp://files.example.com/\"}]}",
     "routes[2].upstream: unsupported scheme 'ftp'"},
    {"{\"routes\": [{\"upstream\": \"example.com:80\"}]}",
     "routes[0].upstream: 'example.com:80' is not an http://, https:// or unix: URL"},
    {"{\"routes\": [{\"upstream\": \"http://\"}]}", "routes[0].upstream: 'http://': missing host"},
    {"{\"routes\": [{\"upstream\": \"http:///x\"}]}",
     "routes[0].upstream: 'http:///x': missing host"},
    {"{\"routes\": [{\"upstream\": \"http://a:1/?x=1\"}]}",
     "routes[0].upstream: 'http://a:1/?x=1': a query or fragment is not allowed in an upstream"},
    {"{\"routes\": [{\"upstream\": \"http://a:1?x\"}]}",
     "routes[0].upstream: 'http://a:1?x': a query or fragment is not allowed in an upstream"},
    {"{\"routes\": [{\"upstream\": \"http://a:1/p#f\"}]}",
     "routes[0].upstream: 'http://a:1/p#f': a query or fragment is not allowed in an upstream"},
    {"{\"routes\": [{\"upstream\": \"http://user:pw@a:1\"}]}",
     "routes[0].upstream: 'http://user:pw@a:1': credentials in the URL are not supported"},
    {"{\"routes\": [{\"upstream\": \"http://a:1/a b\"}]}",
     "routes[0].upstream: 'http://a:1/a b': invalid character in path"},
    {"{\"routes\": [{\"upstream\": \"http://a b:1\"}]}",
     "routes[0].upstream: 'http://a b:1': invalid character in host"},
    {"{\"routes\": [{\"upstream\": \"unix:run/app.sock\"}]}",
     "routes[0].upstream: 'unix:run/app.sock': unix: needs an absolute socket path"},
    {"{\"routes\": [{\"upstream\": "
     "\"unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}]}",
     "routes[0].upstream: 'unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa': socket path too long"},
    {"{\"routes\": [{\"name\": \"x\"}]}", "routes[0].upstream: missing"},
    /* match */
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": {\"path_prefix\": \"api\"}}]}",
     "routes[0].match.path_prefix: must start with '/'"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": {\"host\": \"a b\"}}]}",
     "routes[0].match.host: 'a b' is not a host name"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": {\"host\": \"\"}}]}",
     "routes[0].match.host: '' is not a host name"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": {\"methods\": [\"GET\", \"G T\"]}}]}",
     "routes[0].match.methods[1]: 'G T' is not a method"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": {\"methods\": [\"\"]}}]}",
     "routes[0].match.methods[0]: must be a non-empty string"},
    /* set_request_headers: hop-by-hop and managed headers are tracehop's own */
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"set_request_headers\": \"X-A: 1\"}]}",
     "routes[0].set_request_headers: must be an object of header names to values"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"set_request_headers\": {\"Connection\": "
     "\"close\"}}]}",
     "routes[0].set_request_headers.Connection: tracehop manages this header itself"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"set_request_headers\": "
     "{\"transfer-encoding\": "
     "\"chunked\"}}]}",
     "routes[0].set_request_headers.transfer-encoding: tracehop manages this header itself"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"set_request_headers\": "
     "{\"Proxy-Authorization\": "
     "\"x\"}}]}",
     "routes[0].set_request_headers.Proxy-Authorization: tracehop manages this header itself"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"set_request_headers\": {\"traceparent\": "
     "\"x\"}}]}",
     "routes[0].set_request_headers.traceparent: tracehop manages this header itself"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"set_request_headers\": {\"X-Forwarded-For\": "
     "\"10.0.0.1\"}}]}",
     "routes[0].set_request_headers.X-Forwarded-For: tracehop manages this header itself"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"set_request_headers\": {\"Content-Length\": "
     "\"5\"}}]}",
     "routes[0].set_request_headers.Content-Length: tracehop manages this header itself"},
    /* The request-id header is set by tracehop from the trace context (docs/trace-context.md,
     * "4. X-Trace-ID"). */
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"set_request_headers\": {\"X-Trace-ID\": "
     "\"fixed\"}}]}",
     "routes[0].set_request_headers.X-Trace-ID: tracehop manages this header itself"},
    {"{\"trace\": {\"request_id_header\": \"X-Request-ID\"}, \"routes\": [{\"upstream\": "
     "\"http://a:1\", \"set_request_headers\": {\"x-request-id\": \"fixed\"}}]}",
     "routes[0].set_request_headers.x-request-id: tracehop manages this header itself"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"set_request_headers\": {\"X-A\": 5}}]}",
     "routes[0].set_request_headers.X-A: must be a string without control characters"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"set_request_headers\": {\"X-A\": "
     "\"a\\r\\nX-B: 1\"}}]}",
     "routes[0].set_request_headers.X-A: must be a string without control characters"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"set_request_headers\": {\"Bad Name\": "
     "\"x\"}}]}",
     "routes[0].set_request_headers.Bad Name: not a valid header name"},
    /* trace and access_log */
    {"{\"trace\": {\"request_id_header\": \"X Trace\"}, " R1 "}",
     "trace.request_id_header: 'X Trace' is not a valid header name"},
    {"{\"trace\": {\"request_id_header\": \"\"}, " R1 "}",
     "trace.request_id_header: '' is not a valid header name"},
    {"{\"access_log\": {\"path\": \"\"}, " R1 "}",
     "access_log.path: must not be empty (use \"-\" for stdout)"},
    {"{\"access_log\": {\"fields\": [\"\"]}, " R1 "}",
     "access_log.fields[0]: must be a non-empty string"},
    {"{\"access_log\": {\"fields\": [\"X-A\", \"Bad Name\"]}, " R1 "}",
     "access_log.fields[1]: 'Bad Name' is not a valid header name"},
    {"{\"access_log\": {\"fields\": [\"H1\", \"H2\", \"H3\", \"H4\", \"H5\", \"H6\", \"H7\", "
     "\"H8\","
     " \"H9\", \"H10\", \"H11\", \"H12\", \"H13\", \"H14\", \"H15\", \"H16\", \"H17\"]}, " R1 "}",
     "access_log.fields: at most 16 headers"},
    /* trace.sampler: OTEL_TRACES_SAMPLER's six names, exactly */
    {"{\"trace\": {\"sampler\": \"always\"}, " R1 "}",
     "trace.sampler: unknown sampler 'always': use always_on, always_off, traceidratio, "
     "parentbased_always_on, parentbased_always_off or parentbased_traceidratio"},
    {"{\"trace\": {\"sampler\": \"ALWAYS_ON\"}, " R1 "}",
     "trace.sampler: unknown sampler 'ALWAYS_ON': use always_on, always_off, traceidratio, "
     "parentbased_always_on, parentbased_always_off or parentbased_traceidratio"},
    /* otlp: endpoints */
    {"{\"otlp\": {\"endpoint\": \"ftp://collector\"}, " R1 "}",
     "otlp.endpoint: 'ftp://collector' is not an http:// or https:// URL"},
    {"{\"otlp\": {\"endpoint\": \"collector:4318\"}, " R1 "}",
     "otlp.endpoint: 'collector:4318' is not an http:// or https:// URL"},
    {"{\"otlp\": {\"endpoint\": \"unix:/run/collector.sock\"}, " R1 "}",
     "otlp.endpoint: 'unix:/run/collector.sock' is not an http:// or https:// URL"},
    {"{\"otlp\": {\"traces_endpoint\": \"http://\"}, " R1 "}",
     "otlp.traces_endpoint: 'http://': missing host"},
    {"{\"otlp\": {\"traces_endpoint\": \"http://c:4318/v1/traces?x=1\"}, " R1 "}",
     "otlp.traces_endpoint: 'http://c:4318/v1/traces?x=1': a query or fragment is not allowed"},
    {"{\"otlp\": {\"endpoint\": \"http://user:pw@c:4318\"}, " R1 "}",
     "otlp.endpoint: 'http://user:pw@c:4318': credentials in the URL are not supported"},
    {"{\"otlp\": {\"endpoint\": \"http://c:99999\"}, " R1 "}",
     "otlp.endpoint: 'http://c:99999': expected host, host:port or [IPv6]:port with a port in "
     "1..65535"},
    /* a bad base URL is refused even when the full one wins */
    {"{\"otlp\": {\"endpoint\": \"ftp://c\", \"traces_endpoint\": \"http://c/v1/traces\"}, " R1 "}",
     "otlp.endpoint: 'ftp://c' is not an http:// or https:// URL"},
    {"{\"otlp\": {\"enabled\": true}, " R1 "}",
     "otlp.enabled: true, but no endpoint is set (otlp.endpoint, otlp.traces_endpoint, "
     "OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)"},
    /* otlp: protocol and compression */
    {"{\"otlp\": {\"protocol\": \"http/protobuf\"}, " R1 "}",
     "otlp.protocol: 'http/protobuf' is not supported: tracehop exports OTLP/HTTP with the JSON "
     "encoding; set \"http/json\""},
    {"{\"otlp\": {\"protocol\": \"grpc\"}, " R1 "}",
     "otlp.protocol: 'grpc' is not supported: tracehop exports OTLP/HTTP with the JSON "
     "encoding; set \"http/json\""},
    {"{\"otlp\": {\"protocol\": \"json\"}, " R1 "}",
     "otlp.protocol: 'json' is not an OTLP protocol: tracehop exports OTLP/HTTP with the JSON "
     "encoding; set \"http/json\""},
    {"{\"otlp\": {\"compression\": \"br\"}, " R1 "}",
     "otlp.compression: 'br' is not a compression: use \"gzip\" or \"none\""},
    /* otlp: headers */
    {"{\"otlp\": {\"headers\": {\"Bad Name\": \"x\"}}, " R1 "}",
     "otlp.headers.Bad Name: not a valid header name"},
    {"{\"otlp\": {\"headers\": {\"X-A\": \"a\\r\\nX-B: 1\"}}, " R1 "}",
     "otlp.headers.X-A: the value must not contain control characters"},
    {"{\"otlp\": {\"headers\": {\"Content-Type\": \"text/plain\"}}, " R1 "}",
     "otlp.headers.Content-Type: the exporter sets this header itself"},
    {"{\"otlp\": {\"headers\": {\"content-encoding\": \"br\"}}, " R1 "}",
     "otlp.headers.content-encoding: the exporter sets this header itself"},
    {"{\"otlp\": {\"headers\": {\"Connection\": \"close\"}}, " R1 "}",
     "otlp.headers.Connection: the exporter sets this header itself"},
    {"{\"otlp\": {\"headers\": {\"X-A\": \"1\", \"x-a\": \"2\"}}, " R1 "}",
     "otlp.headers.x-a: given twice (header names are case-insensitive)"},
    /* otlp: numbers */
    {"{\"otlp\": {\"timeout_ms\": 0}, " R1 "}",
     "otlp.timeout_ms: expected an integer in 1..600000, found a number (0)"},
    {"{\"otlp\": {\"timeout_ms\": 600001}, " R1 "}",
     "otlp.timeout_ms: expected an integer in 1..600000, found a number (600001)"},
    {"{\"otlp\": {\"batch\": {\"max_queue_size\": 0}}, " R1 "}",
     "otlp.batch.max_queue_size: expected an integer in 1..1000000, found a number (0)"},
    {"{\"otlp\": {\"batch\": {\"max_queue_size\": 1000001}}, " R1 "}",
     "otlp.batch.max_queue_size: expected an integer in 1..1000000, found a number (1000001)"},
    {"{\"otlp\": {\"batch\": {\"max_export_batch_size\": 0}}, " R1 "}",
     "otlp.batch.max_export_batch_size: expected an integer in 1..1000000, found a number (0)"},
    {"{\"otlp\": {\"batch\": {\"schedule_delay_ms\": 0}}, " R1 "}",
     "otlp.batch.schedule_delay_ms: expected an integer in 1..3600000, found a number (0)"},
    {"{\"otlp\": {\"batch\": {\"export_timeout_ms\": 3600001}}, " R1 "}",
     "otlp.batch.export_timeout_ms: expected an integer in 1..3600000, found a number (3600001)"},
    {"{\"otlp\": {\"batch\": {\"max_export_batch_size\": 4096}}, " R1 "}",
     "otlp.batch.max_export_batch_size: 4096 is more than the queue size, 2048 (the default)"},
    {"{\"otlp\": {\"batch\": {\"max_queue_size\": 500, \"max_export_batch_size\": 600}}, " R1 "}",
     "otlp.batch.max_export_batch_size: 600 is more than the queue size, 500 "
     "(otlp.batch.max_queue_size)"},
    /* otlp: files and resource attributes */
    {"{\"otlp\": {\"ca_file\": \"\"}, " R1 "}",
     "otlp.ca_file: must not be empty (leave it out or null for none)"},
    {"{\"otlp\": {\"client_certificate\": \"/c.pem\"}, " R1 "}",
     "otlp.client_certificate: a client certificate needs its key (otlp.client_key or "
     "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY)"},
    {"{\"otlp\": {\"client_key\": \"/k.pem\"}, " R1 "}",
     "otlp.client_key: a client key needs its certificate (otlp.client_certificate or "
     "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE)"},
    {"{\"otlp\": {\"resource_attributes\": {\"\": \"x\"}}, " R1 "}",
     "otlp.resource_attributes: a key must not be empty"},
    {"{\"otlp\": {\"resource_attributes\": {\"service.name\": \"x\"}}, " R1 "}",
     "otlp.resource_attributes.service.name: set service_name instead"},
    /* routes[].tls */
    {"{\"routes\": [{\"upstream\": \"http://127.0.0.1:1\", \"tls\": {}}]}",
     "routes[0].tls: only for an https:// upstream (the upstream is 'http://127.0.0.1:1')"},
    {"{\"routes\": [{\"upstream\": \"unix:/run/u.sock\", \"tls\": {}}]}",
     "routes[0].tls: only for an https:// upstream (the upstream is 'unix:/run/u.sock')"},
    {"{" TLS_ROUTE("[]") "}", "routes[0].tls: expected an object, found an empty list"},
    {"{" TLS_ROUTE("{\"verify\": false}") "}", "routes[0].tls.verify: unknown key"},
    {"{" TLS_ROUTE("{\"min_version\": \"1.1\"}") "}",
     "routes[0].tls.min_version: must be \"1.2\" or \"1.3\""},
    {"{" TLS_ROUTE("{\"min_version\": 1.3}") "}",
     "routes[0].tls.min_version: must be \"1.2\" or \"1.3\""},
    {"{" TLS_ROUTE("{\"insecure_skip_verify\": \"yes\"}") "}",
     "routes[0].tls.insecure_skip_verify: expected true or false, found a string (\"yes\")"},
    {"{" TLS_ROUTE("{\"ca_file\": \"\"}") "}",
     "routes[0].tls.ca_file: must not be empty (leave it out or null for none)"},
    {"{" TLS_ROUTE("{\"ca_file\": 1}") "}",
     "routes[0].tls.ca_file: expected a string, found a number (1)"},
    {"{" TLS_ROUTE("{\"ca_file\": \"/nonexistent/ca.pem\"}") "}",
     "routes[0].tls.ca_file: cannot read '/nonexistent/ca.pem': No such file or directory"},
    {"{" TLS_ROUTE("{\"ca_dir\": \"/dev/null\"}") "}",
     "routes[0].tls.ca_dir: cannot read '/dev/null': Not a directory"},
    {"{" TLS_ROUTE("{\"client_certificate\": \"/nonexistent/c.pem\"}") "}",
     "routes[0].tls.client_certificate: cannot read '/nonexistent/c.pem': No such file or "
     "directory"},
    {"{" TLS_ROUTE(
         "{\"client_certificate\": \"/dev/null\", \"client_key\": \"/nonexistent/k\"}") "}",
     "routes[0].tls.client_key: cannot read '/nonexistent/k': No such file or directory"},
    {"{" TLS_ROUTE("{\"client_key\": \"/dev/null\"}") "}",
     "routes[0].tls.client_key: needs client_certificate"},
    {"{" TLS_ROUTE("{\"server_name\": \"api.internal:8443\"}") "}",
     "routes[0].tls.server_name: 'api.internal:8443' is not a host name"},
    {"{" TLS_ROUTE("{\"server_name\": \"[::1]\"}") "}",
     "routes[0].tls.server_name: '[::1]' is not a host name"},
    /* nothing to forward to */
    {"{}", "routes: no route and no --upstream: nothing to forward to"},
    {"{\"routes\": []}", "routes: no route and no --upstream: nothing to forward to"},
    {"{\"service_name\": \"x\"}", "routes: no route and no --upstream: nothing to forward to"},
};

START_TEST(test_error_names_key_and_reason)
{
    const char *got = refusal(errors[_i].json, NULL, NULL);
    ck_assert_msg(strcmp(got, errors[_i].error) == 0, "\n%s\n  error:    %s\n  expected: %s",
                  errors[_i].json, got, errors[_i].error);
}
END_TEST

/*
 * Errors quote what the user wrote, which can be longer than the error buffer: the message keeps
 * the key path (its beginning) and the reason (its end), elides the middle, and never splits a
 * UTF-8 character (found by fuzz-config: a 340-byte header name lost the reason).
 */
START_TEST(test_long_quoted_names_keep_the_reason)
{
    static const char *const units[] = {"a", "\xc3\xa9", "\xf0\x9f\x98\x80"}; /* 1, 2, 4 bytes */
    char json[8192], name[4096] = "X-";
    size_t len = 2;

    while (len + 8 < 3000) {
        size_t n = strlen(units[_i]);
        memcpy(name + len, units[_i], n);
        len += n;
    }
    name[len] = '\0';
    snprintf(json, sizeof(json),
             "{\"routes\": [{\"upstream\": \"http://a:81\", "
             "\"set_request_headers\": {\"%s=\": \"v\"}}]}",
             name);
    const char *got = refusal(json, NULL, NULL);
    const char *start = "routes[0].set_request_headers.X-";
    const char *reason = ": not a valid header name";
    ck_assert_uint_lt(strlen(got), CONFIG_ERROR_MAX);
    ck_assert_msg(strncmp(got, start, strlen(start)) == 0, "key path lost: %s", got);
    ck_assert_msg(strlen(got) > strlen(reason) &&
                      strcmp(got + strlen(got) - strlen(reason), reason) == 0,
                  "reason lost: %s", got);
    ck_assert_msg(strstr(got, " ... "), "no elision mark: %s", got);
    ck_assert_msg(utf8_is_valid(got, strlen(got)), "a UTF-8 character was split: %s", got);
}
END_TEST

/*
 * An upstream whose authority can never be connected to is a config error, refused before
 * anything listens (docs/configuration.md, at the top), not a 502 on every request: the port must
 * be a number in 1..65535 and an IPv6 literal must be closed. The reason's wording is the daemon's
 * choice; the message must name the key and the URL.
 */
static const char *const bad_authorities[] = {
    "http://127.0.0.1:99999",
    "http://127.0.0.1:65536",
    "http://127.0.0.1:abc",
    "http://127.0.0.1:0",
    "http://127.0.0.1:-1",
    "http://app:80:81",
    "http://[::1",
    "http://[::1]x:80",
    "https://app:8443x/base",
};

START_TEST(test_upstream_authority_is_validated)
{
    char json[256], prefix[128];

    snprintf(json, sizeof(json), "{\"routes\": [{\"upstream\": \"%s\"}]}", bad_authorities[_i]);
    snprintf(prefix, sizeof(prefix), "routes[0].upstream: '%s'", bad_authorities[_i]);
    const char *got = refusal(json, NULL, NULL);
    ck_assert_msg(strncmp(got, prefix, strlen(prefix)) == 0, "error:    %s\nexpected: %s: ...", got,
                  prefix);
}
END_TEST

/* Errors that are not about a key: the file itself. */
START_TEST(test_file_errors)
{
    static const struct {
        const char *json;
        const char *contains;
    } cases[] = {
        {"{\"service_name\": \"a\", \"service_name\": \"b\", " R1 "}", "duplicate object key"},
        {"{\"routes\": [{\"upstream\": \"http://a:1\", \"upstream\": \"http://b:1\"}]}",
         "duplicate object key"},
        {"{\"trace\": {\"echo\": true, \"echo\": false}, " R1 "}", "duplicate object key"},
        {"{" R1, "tracehop-unit-config-"}, /* syntax error: names the file, line and column */
        {"", "tracehop-unit-config-"},
        {"{" R1 "} trailing", "tracehop-unit-config-"},
        {"{\"service_name\": \"a\\u0000b\", " R1 "}", "tracehop-unit-config-"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const char *got = refusal(cases[i].json, NULL, NULL);
        ck_assert_msg(strstr(got, cases[i].contains) != NULL,
                      "%s\n  error: %s\n  expected: ...%s...", cases[i].json, got,
                      cases[i].contains);
    }
    /* A file that does not exist. */
    char error[CONFIG_ERROR_MAX] = "";
    struct config *c = NULL;
    ck_assert_int_lt(
        config_load("/nonexistent/tracehop.json", &no_overrides, &no_overrides, NULL, &c, error),
        0);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(error, "/nonexistent/tracehop.json") != NULL, "%s", error);
}
END_TEST

/* A document that is not an object has no key to blame: the message must still say what is
 * wrong, not begin with an empty key path (": must be an object"). */
START_TEST(test_top_level_not_an_object)
{
    static const char *const docs[] = {"[]", "\"routes\"", "5"};
    for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
        const char *got = refusal(docs[i], NULL, NULL);
        ck_assert_msg(strstr(got, "must be an object") != NULL, "%s: %s", docs[i], got);
        ck_assert_msg(got[0] != ':' && got[0] != ' ', "%s: the message names no key: \"%s\"",
                      docs[i], got);
    }
}
END_TEST

/* Errors in flags and environment variables name their origin. */
START_TEST(test_override_errors)
{
    struct config_overrides bad;

    bad = (struct config_overrides){.listen = "bad"};
    const char *got = refusal("{" R1 "}", NULL, &bad);
    ck_assert_msg(strcasestr(got, "listen") && strstr(got, "'bad' is not HOST:PORT"), "%s", got);
    ck_assert_msg(strstr(got, "environment") || strstr(got, "TRACEHOP_LISTEN"), "%s", got);

    bad = (struct config_overrides){.sampling_ratio = "2"};
    got = refusal("{" R1 "}", NULL, &bad);
    ck_assert_msg(strcasestr(got, "sampling") && strstr(got, "'2'"), "%s", got);

    bad = (struct config_overrides){.workers = "0"};
    got = refusal("{" R1 "}", &bad, NULL);
    ck_assert_msg(strstr(got, "workers") && strstr(got, "'0'"), "%s", got);

    bad = (struct config_overrides){.workers = "3x"};
    got = refusal("{" R1 "}", NULL, &bad);
    ck_assert_msg(strcasestr(got, "workers") && strstr(got, "'3x'"), "%s", got);

    bad = (struct config_overrides){.service_name = ""};
    got = refusal("{" R1 "}", &bad, NULL);
    ck_assert_msg(strstr(got, "service"), "%s", got);

    bad = (struct config_overrides){.access_log = ""};
    got = refusal("{" R1 "}", &bad, NULL);
    ck_assert_msg(strstr(got, "access-log"), "%s", got);

    bad = (struct config_overrides){.trace_header = "Bad Header"};
    got = refusal("{" R1 "}", &bad, NULL);
    ck_assert_msg(strstr(got, "'Bad Header' is not a valid header name"), "%s", got);

    bad = (struct config_overrides){.admin_listen = "::1:1"};
    got = refusal("{" R1 "}", &bad, NULL);
    ck_assert_msg(strstr(got, "admin-listen"), "%s", got);

    /* --upstream with no routes in the file is fine, a bad one is refused. */
    bad = (struct config_overrides){.upstream = "ftp://x"};
    got = refusal("{}", &bad, NULL);
    ck_assert_msg(strstr(got, "upstream") && strstr(got, "unsupported scheme 'ftp'"), "%s", got);
}
END_TEST

/* A flag's error names the flag as the user typed it ("--listen"), as the example error in
 * docs/configuration.md names a key path. */
START_TEST(test_flag_errors_name_the_flag)
{
    static const struct {
        struct config_overrides flags;
        const char *error;
    } cases[] = {
        {{.listen = "bad"}, "--listen: 'bad' is not HOST:PORT"},
        {{.upstream = "ftp://x"}, "--upstream: unsupported scheme 'ftp'"},
        {{.workers = "0"}, "--workers: '0' is not a number in 1..64"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const char *got = refusal("{" R1 "}", &cases[i].flags, NULL);
        ck_assert_msg(strcmp(got, cases[i].error) == 0, "error:    %s\nexpected: %s", got,
                      cases[i].error);
    }
}
END_TEST

/* --- precedence: flags > environment > file > defaults ------------------------------------------
 */

enum key {
    KEY_SERVICE,
    KEY_LISTEN,
    KEY_ADMIN,
    KEY_ACCESS_LOG,
    KEY_SAMPLING,
    KEY_TRACE_HEADER,
    KEY_WORKERS,
    KEY_COUNT,
};

static const struct {
    const char *name;
    const char *file; /* JSON members */
    const char *file_value, *env_value, *flag_value;
} keys[KEY_COUNT] = {
    [KEY_SERVICE] = {"service_name", "\"service_name\": \"from-file\"", "from-file", "from-env",
                     "from-flag"},
    [KEY_LISTEN] = {"listen", "\"listen\": \"127.0.0.1:1001\"", "127.0.0.1:1001", "127.0.0.1:1002",
                    "127.0.0.1:1003"},
    [KEY_ADMIN] = {"admin.listen", "\"admin\": {\"listen\": \"127.0.0.1:2001\"}", "127.0.0.1:2001",
                   "127.0.0.1:2002", "127.0.0.1:2003"},
    [KEY_ACCESS_LOG] = {"access_log.path", "\"access_log\": {\"path\": \"/tmp/file.log\"}",
                        "/tmp/file.log", "/tmp/env.log", "/tmp/flag.log"},
    [KEY_SAMPLING] = {"trace.sampling_ratio", "\"trace\": {\"sampling_ratio\": 0.1}", "0.1", "0.2",
                      "0.3"},
    [KEY_TRACE_HEADER] = {"trace.request_id_header",
                          "\"trace\": {\"request_id_header\": \"X-File\"}", "X-File", "X-Env",
                          "X-Flag"},
    [KEY_WORKERS] = {"workers", "\"workers\": 3", "3", "4", "5"},
};

static void set_override(struct config_overrides *o, enum key k, const char *value)
{
    switch (k) {
    case KEY_SERVICE:
        o->service_name = value;
        break;
    case KEY_LISTEN:
        o->listen = value;
        break;
    case KEY_ADMIN:
        o->admin_listen = value;
        break;
    case KEY_ACCESS_LOG:
        o->access_log = value;
        break;
    case KEY_SAMPLING:
        o->sampling_ratio = value;
        break;
    case KEY_TRACE_HEADER:
        o->trace_header = value;
        break;
    default:
        o->workers = value;
        break;
    }
}

static void effective(const struct config *c, enum key k, char *out, size_t size)
{
    switch (k) {
    case KEY_SERVICE:
        snprintf(out, size, "%s", c->service_name);
        break;
    case KEY_LISTEN:
        snprintf(out, size, "%s", c->listen[0].text);
        break;
    case KEY_ADMIN:
        snprintf(out, size, "%s", c->admin_listen.text);
        break;
    case KEY_ACCESS_LOG:
        snprintf(out, size, "%s", c->access_log_path);
        break;
    case KEY_SAMPLING:
        snprintf(out, size, "%g", c->sampling_ratio);
        break;
    case KEY_TRACE_HEADER:
        snprintf(out, size, "%s", c->request_id_header);
        break;
    default:
        snprintf(out, size, "%u", c->workers);
        break;
    }
}

START_TEST(test_precedence)
{
    enum key k = (enum key)_i;
    char json[512];

    snprintf(json, sizeof(json), "{%s, " R1 "}", keys[k].file);
    for (unsigned mask = 0; mask < 4; mask++) { /* bit 0: env given, bit 1: flag given */
        struct config_overrides flags = {0}, env = {0};
        if (mask & 1)
            set_override(&env, k, keys[k].env_value);
        if (mask & 2)
            set_override(&flags, k, keys[k].flag_value);
        const char *want = mask & 2   ? keys[k].flag_value
                           : mask & 1 ? keys[k].env_value
                                      : keys[k].file_value;
        char error[CONFIG_ERROR_MAX], got[256];
        struct config *c = NULL;
        ck_assert_msg(unit_config_load(json, &flags, &env, &c, error) == 0, "%s", error);
        effective(c, k, got, sizeof(got));
        ck_assert_msg(strcmp(got, want) == 0, "%s with%s env, with%s flag: '%s', expected '%s'",
                      keys[k].name, mask & 1 ? "" : "out", mask & 2 ? "" : "out", got, want);
        config_free(c);
    }
}
END_TEST

/* --upstream (flag or environment) replaces the file's routes with one catch-all route. */
START_TEST(test_upstream_replaces_routes)
{
    static const char json[] = "{\"routes\": ["
                               " {\"name\": \"a\", \"match\": {\"path_prefix\": \"/a\"},"
                               "  \"upstream\": \"http://127.0.0.1:1\"},"
                               " {\"name\": \"b\", \"upstream\": \"http://127.0.0.1:2\"}]}";
    struct config_overrides env = {.upstream = "http://127.0.0.1:3"};
    struct config_overrides flags = {.upstream = "http://127.0.0.1:4/base"};
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;

    ck_assert_msg(unit_config_load(json, NULL, &env, &c, error) == 0, "%s", error);
    ck_assert_uint_eq(c->routes_count, 1);
    ck_assert_str_eq(c->routes[0].name, "default");
    ck_assert_str_eq(c->routes[0].path_prefix, "/");
    ck_assert_str_eq(c->routes[0].upstream.text, "http://127.0.0.1:3");
    config_free(c);

    ck_assert_msg(unit_config_load(json, &flags, &env, &c, error) == 0, "%s", error);
    ck_assert_uint_eq(c->routes_count, 1);
    ck_assert_str_eq(c->routes[0].upstream.text, "http://127.0.0.1:4/base");
    ck_assert_str_eq(c->routes[0].upstream.base_path, "/base");
    config_free(c);
}
END_TEST

START_TEST(test_admin_off)
{
    struct config_overrides flags = {.admin_listen = "off"};
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;

    ck_assert_msg(unit_config_load("{\"admin\": {\"listen\": \"127.0.0.1:1\"}, " R1 "}", &flags,
                                   NULL, &c, error) == 0,
                  "%s", error);
    ck_assert(!c->admin_enabled);
    config_free(c);
    c = unit_config("{\"admin\": {\"listen\": \"off\"}, " R1 "}");
    ck_assert(!c->admin_enabled);
    config_free(c);
}
END_TEST

START_TEST(test_overrides_from_env)
{
    static const char *const names[] = {
        "TRACEHOP_CONFIG",         "TRACEHOP_LISTEN",       "TRACEHOP_UPSTREAM",
        "TRACEHOP_ADMIN_LISTEN",   "TRACEHOP_ACCESS_LOG",   "TRACEHOP_SERVICE_NAME",
        "TRACEHOP_SAMPLING_RATIO", "TRACEHOP_TRACE_HEADER", "TRACEHOP_WORKERS",
    };
    struct config_overrides env;

    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        unsetenv(names[i]);
    config_overrides_from_env(&env);
    ck_assert_ptr_null(env.config);
    ck_assert_ptr_null(env.listen);
    ck_assert_ptr_null(env.workers);
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        setenv(names[i], names[i] + 9, 1); /* the value is the name without TRACEHOP_ */
    config_overrides_from_env(&env);
    ck_assert_str_eq(env.config, "CONFIG");
    ck_assert_str_eq(env.listen, "LISTEN");
    ck_assert_str_eq(env.upstream, "UPSTREAM");
    ck_assert_str_eq(env.admin_listen, "ADMIN_LISTEN");
    ck_assert_str_eq(env.access_log, "ACCESS_LOG");
    ck_assert_str_eq(env.service_name, "SERVICE_NAME");
    ck_assert_str_eq(env.sampling_ratio, "SAMPLING_RATIO");
    ck_assert_str_eq(env.trace_header, "TRACE_HEADER");
    ck_assert_str_eq(env.workers, "WORKERS");
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        unsetenv(names[i]);
}
END_TEST

/* An empty TRACEHOP_* variable counts as unset (docs/configuration.md, Environment variables):
 * an orchestrator can blank a variable the image sets, and the file or the default decides. */
START_TEST(test_empty_variables_count_as_unset)
{
    static const char *const names[] = {
        "TRACEHOP_CONFIG",         "TRACEHOP_LISTEN",       "TRACEHOP_UPSTREAM",
        "TRACEHOP_ADMIN_LISTEN",   "TRACEHOP_ACCESS_LOG",   "TRACEHOP_SERVICE_NAME",
        "TRACEHOP_SAMPLING_RATIO", "TRACEHOP_TRACE_HEADER", "TRACEHOP_WORKERS",
    };
    struct config_overrides env;

    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        setenv(names[i], "", 1);
    config_overrides_from_env(&env);
    ck_assert_ptr_null(env.config);
    ck_assert_ptr_null(env.listen);
    ck_assert_ptr_null(env.upstream);
    ck_assert_ptr_null(env.admin_listen);
    ck_assert_ptr_null(env.access_log);
    ck_assert_ptr_null(env.service_name);
    ck_assert_ptr_null(env.sampling_ratio);
    ck_assert_ptr_null(env.trace_header);
    ck_assert_ptr_null(env.workers);
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        unsetenv(names[i]);
}
END_TEST

/* --- config_needs_restart -------------------------------------------------------------------- */

#define BASE_MEMBERS                                                                               \
    "\"listen\": \"127.0.0.1:18000\", \"admin\": {\"listen\": \"127.0.0.1:19000\"},"               \
    " \"workers\": 2, \"access_log\": {\"path\": \"/tmp/a.log\"}"

static const struct {
    const char *json;
    const char *key; /* NULL: a reload can apply it */
} restarts[] = {
    {"{" BASE_MEMBERS ", " R1 "}", NULL},
    {"{" BASE_MEMBERS ", \"service_name\": \"other\", \"trace\": {\"sampling_ratio\": 0.5,"
     " \"request_id_header\": \"X-Other\", \"trust_incoming\": false, \"echo\": false,"
     " \"server_timing\": true, \"server_timing_durations\": true},"
     " \"routes\": [{\"name\": \"new\", \"upstream\": \"http://127.0.0.1:2/x\"},"
     " {\"upstream\": \"unix:/run/x.sock\"}]}",
     NULL},
    {"{" BASE_MEMBERS ", \"limits\": {\"max_body_bytes\": 5, \"drain_delay_ms\": 1,"
     " \"drain_timeout_ms\": 2}, " R1 "}",
     NULL},
    /* every otlp key and the sampler apply on reload */
    {"{" BASE_MEMBERS ", \"trace\": {\"sampler\": \"always_off\"}, \"otlp\": {\"endpoint\":"
     " \"http://127.0.0.1:4318\", \"headers\": {\"X-A\": \"1\"}, \"timeout_ms\": 5,"
     " \"compression\": \"gzip\", \"ca_file\": \"/ca.pem\", \"client_certificate\": \"/c.pem\","
     " \"client_key\": \"/k.pem\", \"resource_attributes\": {\"a\": \"b\"},"
     " \"batch\": {\"max_queue_size\": 10, \"max_export_batch_size\": 5,"
     " \"schedule_delay_ms\": 7, \"export_timeout_ms\": 9}}, " R1 "}",
     NULL},
    {"{" BASE_MEMBERS ", \"otlp\": {\"enabled\": false, \"traces_endpoint\":"
     " \"https://c.example/v1/traces\"}, " R1 "}",
     NULL},
    {"{\"listen\": \"127.0.0.1:18001\", \"admin\": {\"listen\": \"127.0.0.1:19000\"},"
     " \"workers\": 2, \"access_log\": {\"path\": \"/tmp/a.log\"}, " R1 "}",
     "listen"},
    {"{\"listen\": [\"127.0.0.1:18000\", \"127.0.0.1:18001\"], \"admin\": {\"listen\":"
     " \"127.0.0.1:19000\"}, \"workers\": 2, \"access_log\": {\"path\": \"/tmp/a.log\"}, " R1 "}",
     "listen"},
    {"{\"listen\": \"127.0.0.1:18000\", \"admin\": {\"listen\": \"127.0.0.1:19001\"},"
     " \"workers\": 2, \"access_log\": {\"path\": \"/tmp/a.log\"}, " R1 "}",
     "admin.listen"},
    {"{\"listen\": \"127.0.0.1:18000\", \"admin\": {\"listen\": \"off\"},"
     " \"workers\": 2, \"access_log\": {\"path\": \"/tmp/a.log\"}, " R1 "}",
     "admin.listen"},
    {"{\"listen\": \"127.0.0.1:18000\", \"admin\": {\"listen\": \"127.0.0.1:19000\"},"
     " \"workers\": 3, \"access_log\": {\"path\": \"/tmp/a.log\"}, " R1 "}",
     "workers"},
    {"{\"listen\": \"127.0.0.1:18000\", \"admin\": {\"listen\": \"127.0.0.1:19000\"},"
     " \"workers\": 2, \"access_log\": {\"path\": \"/tmp/b.log\"}, " R1 "}",
     "access_log.path"},
    {"{" BASE_MEMBERS ", \"limits\": {\"max_header_bytes\": 4096}, " R1 "}",
     "limits.max_header_bytes"},
    {"{" BASE_MEMBERS ", \"limits\": {\"max_connections\": 5}, " R1 "}", "limits.max_connections"},
    {"{" BASE_MEMBERS ", \"limits\": {\"client_timeout_ms\": 5000}, " R1 "}",
     "limits.client_timeout_ms"},
};

START_TEST(test_needs_restart)
{
    struct config *old = unit_config("{" BASE_MEMBERS ", " R1 "}");
    struct config *next = unit_config(restarts[_i].json);
    char what[CONFIG_ERROR_MAX] = "";
    bool restart = config_needs_restart(old, next, what);

    if (restarts[_i].key) {
        ck_assert_msg(restart, "%s: a reload would apply it", restarts[_i].json);
        ck_assert_str_eq(what, restarts[_i].key);
    } else {
        ck_assert_msg(!restart, "%s: needs a restart for %s", restarts[_i].json, what);
    }
    /* Symmetric: going back needs a restart too. */
    ck_assert(config_needs_restart(next, old, what) == restart);
    config_free(next);
    config_free(old);
}
END_TEST

/* --- config_print ------------------------------------------------------------------------------
 */

/* Run config_print with stdout redirected to a temporary file; returns what it printed. */
static char *printed(const struct config *c)
{
    char path[512];
    unit_temp_path(path, sizeof(path), "tracehop-unit-print");
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    ck_assert(saved >= 0 && fd >= 0);
    ck_assert_int_ge(dup2(fd, STDOUT_FILENO), 0);
    close(fd);
    int rc = config_print(c);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    ck_assert_int_eq(rc, 0);

    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(path);
    char *copy = strdup(buf);
    ck_assert_ptr_nonnull(copy);
    return copy;
}

START_TEST(test_print_is_json_with_the_effective_values)
{
    struct config_overrides flags = {.service_name = "from-flag"};
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;

    ck_assert_msg(unit_config_load(every_key, &flags, NULL, &c, error) == 0, "%s", error);
    char *text = printed(c);
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(root != NULL, "config_print output is not JSON: %s\n%.2500s", jerr.text, text);
    ck_assert(json_is_object(root));
    ck_assert_str_eq(json_string_value(json_object_get(root, "service_name")), "from-flag");
    ck_assert_uint_eq(json_array_size(json_object_get(root, "listen")), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(root, "admin"), "listen")),
                     "127.0.0.1:19901");
    ck_assert_int_eq(json_integer_value(json_object_get(root, "workers")), 3);
    json_t *trace = json_object_get(root, "trace");
    ck_assert_str_eq(json_string_value(json_object_get(trace, "request_id_header")),
                     "X-Request-ID");
    ck_assert(json_real_value(json_object_get(trace, "sampling_ratio")) == 0.25);
    ck_assert(json_is_false(json_object_get(trace, "trust_incoming")));
    ck_assert_str_eq(json_string_value(json_object_get(trace, "sampler")), "parentbased_always_on");
    json_t *otlp = json_object_get(root, "otlp");
    ck_assert(json_is_true(json_object_get(otlp, "enabled")));
    ck_assert(json_is_null(json_object_get(otlp, "endpoint")));
    ck_assert_str_eq(json_string_value(json_object_get(otlp, "traces_endpoint")),
                     "https://collector.example.com:4318/custom/traces");
    ck_assert_str_eq(json_string_value(json_object_get(otlp, "protocol")), "http/json");
    /* header values carry tokens: --check-config prints the names only */
    json_t *headers = json_object_get(otlp, "headers");
    ck_assert_uint_eq(json_object_size(headers), 2);
    ck_assert_str_eq(json_string_value(json_object_get(headers, "Authorization")), "[REDACTED]");
    ck_assert_str_eq(json_string_value(json_object_get(headers, "X-Tenant")), "[REDACTED]");
    ck_assert_msg(!strstr(text, "Bearer abc"), "a header value was printed:\n%s", text);
    ck_assert_int_eq(json_integer_value(json_object_get(otlp, "timeout_ms")), 2500);
    ck_assert_str_eq(json_string_value(json_object_get(otlp, "compression")), "gzip");
    ck_assert_str_eq(json_string_value(json_object_get(otlp, "ca_file")), "/etc/ssl/ca.pem");
    ck_assert_str_eq(json_string_value(json_object_get(otlp, "client_key")),
                     "/etc/tracehop/key.pem");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(otlp, "resource_attributes"),
                                                       "deployment.environment")),
                     "prod");
    json_t *batch = json_object_get(otlp, "batch");
    ck_assert_int_eq(json_integer_value(json_object_get(batch, "max_queue_size")), 4096);
    ck_assert_int_eq(json_integer_value(json_object_get(batch, "max_export_batch_size")), 1024);
    ck_assert_int_eq(json_integer_value(json_object_get(batch, "schedule_delay_ms")), 1000);
    ck_assert_int_eq(json_integer_value(json_object_get(batch, "export_timeout_ms")), 15000);
    json_t *limits = json_object_get(root, "limits");
    ck_assert_int_eq(json_integer_value(json_object_get(limits, "max_header_bytes")), 16384);
    ck_assert_int_eq(json_integer_value(json_object_get(limits, "drain_timeout_ms")), 7000);
    json_t *routes = json_object_get(root, "routes");
    ck_assert_uint_eq(json_array_size(routes), 3);
    json_t *r0 = json_array_get(routes, 0);
    ck_assert_str_eq(json_string_value(json_object_get(r0, "name")), "uploads");
    ck_assert_str_eq(json_string_value(json_object_get(r0, "upstream")),
                     "unix:/run/app/uploads.sock");
    ck_assert(json_is_true(json_object_get(r0, "strip_prefix")));
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(r0, "set_request_headers"), "X-Gateway")),
        "tracehop");
    json_decref(root);
    free(text);
    config_free(c);
}
END_TEST

/* routes[].tls: every key into the route; server_name keeps the configured address as the one
 * connected to (CURLOPT_CONNECT_TO) and puts the name into the URL, whatever the host's form. */
START_TEST(test_route_tls_keys)
{
    struct config *c = unit_config(
        "{\"routes\": [{\"upstream\": \"https://10.0.0.5:8443/base\", \"tls\": {"
        "\"ca_file\": \"/dev/null\", \"ca_dir\": \"/\", \"client_certificate\": \"/dev/null\","
        " \"client_key\": \"/dev/null\", \"server_name\": \"api.internal\", \"min_version\": "
        "\"1.3\", \"insecure_skip_verify\": true}},"
        " {\"upstream\": \"https://[::1]\", \"tls\": {\"server_name\": \"v6.internal\","
        " \"min_version\": \"1.2\"}},"
        " {\"upstream\": \"https://plain.example\"},"
        " {\"upstream\": \"https://null.example\", \"tls\": null}]}");
    const struct route_tls *t = &c->routes[0].tls;
    ck_assert_str_eq(t->ca_file, "/dev/null");
    ck_assert_str_eq(t->ca_dir, "/");
    ck_assert_str_eq(t->client_certificate, "/dev/null");
    ck_assert_str_eq(t->client_key, "/dev/null");
    ck_assert_str_eq(t->server_name, "api.internal");
    ck_assert_str_eq(t->curl_url, "https://api.internal:8443/");
    ck_assert_str_eq(t->connect_to, "api.internal:8443:10.0.0.5:8443");
    ck_assert_uint_eq(t->min_version, 13);
    ck_assert(t->insecure_skip_verify);
    ck_assert_str_eq(c->routes[0].upstream.curl_url, "https://10.0.0.5:8443/"); /* unchanged */

    t = &c->routes[1].tls;
    ck_assert_str_eq(t->curl_url, "https://v6.internal:443/");
    ck_assert_str_eq(t->connect_to, "v6.internal:443:[::1]:443");
    ck_assert_uint_eq(t->min_version, 12);
    ck_assert(!t->insecure_skip_verify && !t->ca_file && !t->client_certificate);

    for (size_t i = 2; i < 4; i++) {
        t = &c->routes[i].tls;
        ck_assert(!t->ca_file && !t->server_name && !t->curl_url && !t->connect_to &&
                  t->min_version == 0 && !t->insecure_skip_verify);
    }
    config_free(c);
}
END_TEST

/* What --check-config prints is the effective config: loading it again gives the same config
 * (the same printout), so an operator can keep it as the file. */
START_TEST(test_print_loads_back)
{
    static const char *const sources[] = {
        every_key,
        "{" R1 "}",
        "{\"routes\": [{\"match\": {\"host\": \"a.example\"},"
        " \"upstream\": \"http://127.0.0.1:1\"}]}",
        "{" TLS_ROUTE("{\"ca_file\": \"/dev/null\", \"server_name\": \"api.internal\", "
                      "\"min_version\": \"1.3\", \"insecure_skip_verify\": true}") "}",
        "{" TLS_ROUTE("{\"client_certificate\": \"/dev/null\", \"ca_dir\": \"/\"}") "}",
        "{\"otlp\": {\"enabled\": false, \"endpoint\": \"http://127.0.0.1:4318\"}, " R1 "}",
        "{\"otlp\": {\"endpoint\": \"http://127.0.0.1:4318/base/\", \"batch\": {\"max_queue_size\":"
        " 100}}, \"trace\": {\"sampler\": \"traceidratio\", \"sampling_ratio\": 0.125}, " R1 "}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(sources); i++) {
        struct config *c = unit_config(sources[i]);
        char *first = printed(c);
        char error[CONFIG_ERROR_MAX];
        struct config *again = NULL;
        int rc = unit_config_load(first, NULL, NULL, &again, error);
        ck_assert_msg(rc == 0, "source %zu: the printed config is refused: %s\n%.2500s", i, error,
                      first);
        char *second = printed(again);
        ck_assert_msg(strcmp(first, second) == 0,
                      "source %zu: printed differently:\n%.1400s\n%.1400s", i, first, second);
        free(second);
        free(first);
        config_free(again);
        config_free(c);
    }
}
END_TEST

/* log_level: default info; the file, TRACEHOP_LOG_LEVEL, --log-level, in that order; a bad
 * value is refused naming where it came from; --check-config prints the effective one. */
START_TEST(test_log_level)
{
    struct config *c = unit_config("{" R1 "}");
    ck_assert_int_eq(c->log_level, DIAG_INFO);
    config_free(c);

    char error[CONFIG_ERROR_MAX];
    const char *file = "{\"log_level\": \"warn\", " R1 "}";
    struct config_overrides env = {.log_level = "error"}, flags = {.log_level = "debug"};
    c = unit_config(file);
    ck_assert_int_eq(c->log_level, DIAG_WARN);
    char *text = printed(c);
    ck_assert_msg(strstr(text, "\"log_level\": \"warn\"") != NULL, "%s", text);
    free(text);
    config_free(c);
    c = NULL;
    ck_assert_int_eq(unit_config_load(file, NULL, &env, &c, error), 0);
    ck_assert_int_eq(c->log_level, DIAG_ERROR);
    config_free(c);
    c = NULL;
    ck_assert_int_eq(unit_config_load(file, &flags, &env, &c, error), 0);
    ck_assert_int_eq(c->log_level, DIAG_DEBUG);
    config_free(c);

    ck_assert_str_eq(refusal("{\"log_level\": \"verbose\", " R1 "}", NULL, NULL),
                     "log_level: must be debug, info, warn or error");
    ck_assert_str_eq(refusal("{\"log_level\": 2, " R1 "}", NULL, NULL),
                     "log_level: expected a string, found a number (2)");
    struct config_overrides bad = {.log_level = "loud"};
    ck_assert_str_eq(refusal("{" R1 "}", &bad, NULL),
                     "--log-level: 'loud' is not debug, info, warn or error");
    ck_assert_str_eq(refusal("{" R1 "}", NULL, &bad),
                     "TRACEHOP_LOG_LEVEL: 'loud' is not debug, info, warn or error");

    struct config_overrides from_env;
    setenv("TRACEHOP_LOG_LEVEL", "warn", 1);
    config_overrides_from_env(&from_env);
    unsetenv("TRACEHOP_LOG_LEVEL");
    ck_assert_str_eq(from_env.log_level, "warn");
}
END_TEST

/* The printout also goes out on the admin's /config: set_request_headers values that carry
 * credentials (Authorization, Cookie, any name in access_log.redact, any
 * case) are "[REDACTED]"; the rest are printed; the printout still loads. */
START_TEST(test_print_redacts_credential_headers)
{
    struct config *c = unit_config(
        "{\"access_log\": {\"redact\": [\"X-Api-Key\"]},"
        " \"routes\": [{\"upstream\": \"http://127.0.0.1:1\", \"set_request_headers\": {"
        "   \"authorization\": \"Bearer secret-1\","
        "   \"Cookie\": \"session=secret-3\", \"x-api-key\": \"secret-4\","
        "   \"X-Gateway\": \"tracehop\"}}]}");
    char *text = printed(c);
    json_t *root = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(root);
    json_t *set =
        json_object_get(json_array_get(json_object_get(root, "routes"), 0), "set_request_headers");
    static const char *const secret[] = {"authorization", "Cookie", "x-api-key"};
    for (size_t i = 0; i < ARRAY_SIZE(secret); i++)
        ck_assert_str_eq(json_string_value(json_object_get(set, secret[i])), "[REDACTED]");
    ck_assert_str_eq(json_string_value(json_object_get(set, "X-Gateway")), "tracehop");
    ck_assert_msg(strstr(text, "secret-") == NULL, "a secret was printed:\n%s", text);
    char error[CONFIG_ERROR_MAX];
    struct config *again = NULL;
    ck_assert_msg(unit_config_load(text, NULL, NULL, &again, error) == 0, "%s", error);
    config_free(again);
    json_decref(root);
    free(text);
    config_free(c);
}
END_TEST

/* --- otlp and OpenTelemetry's OTEL_* variables ----------------------------------------------- */

/* A base URL gets /v1/traces (one trailing slash removed first); a full one is used as is. */
START_TEST(test_otlp_endpoint_forms)
{
    static const struct {
        const char *url;
        bool base;
        const char *want;
    } cases[] = {
        {"http://collector:4318", true, "http://collector:4318/v1/traces"},
        {"http://collector:4318/", true, "http://collector:4318/v1/traces"},
        {"https://otlp.example.com/prefix/", true, "https://otlp.example.com/prefix/v1/traces"},
        {"https://otlp.example.com/prefix", true, "https://otlp.example.com/prefix/v1/traces"},
        {"http://[::1]:4318", true, "http://[::1]:4318/v1/traces"},
        {"http://collector:4318/custom", false, "http://collector:4318/custom"},
        {"http://collector:4318/v1/traces/", false, "http://collector:4318/v1/traces/"},
        {"https://collector", false, "https://collector"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char json[512], error[CONFIG_ERROR_MAX];
        struct config *c = NULL;

        /* the file's key */
        snprintf(json, sizeof(json), "{\"otlp\": {\"%s\": \"%s\"}, " R1 "}",
                 cases[i].base ? "endpoint" : "traces_endpoint", cases[i].url);
        c = unit_config(json);
        ck_assert_msg(strcmp(c->otlp.endpoint, cases[i].want) == 0, "%s: %s", json,
                      c->otlp.endpoint);
        ck_assert(c->otlp.enabled);
        config_free(c);

        /* the variable */
        struct config_overrides env = {0};
        if (cases[i].base)
            env.otel_endpoint = cases[i].url;
        else
            env.otel_traces_endpoint = cases[i].url;
        ck_assert_msg(unit_config_load("{" R1 "}", NULL, &env, &c, error) == 0, "%s", error);
        ck_assert_msg(strcmp(c->otlp.endpoint, cases[i].want) == 0, "%s: %s", cases[i].url,
                      c->otlp.endpoint);
        ck_assert(c->otlp.enabled);
        config_free(c);
    }
}
END_TEST

/* Every OTEL_* variable lands in its setting; the TRACES_ variant wins over the generic one, as
 * a whole (its headers replace the generic variable's, not merge with them). */
START_TEST(test_otel_env_every_variable)
{
    struct config_overrides env = {
        .otel_traces_exporter = "otlp",
        .otel_sdk_disabled = "false",
        .otel_service_name = "env-svc",
        .otel_resource_attributes = "service.name=ignored, deployment.environment = prod%20eu ,"
                                    "team=a%3Db%2Cc",
        .otel_traces_sampler = "traceidratio",
        .otel_traces_sampler_arg = "0.375",
        .otel_endpoint = "http://generic:4318",
        .otel_traces_endpoint = "https://traces.example.com/v1/traces",
        .otel_headers = "X-Generic=1",
        .otel_traces_headers = "Authorization=Bearer%20abc,X-Tenant=acme",
        .otel_timeout = "2000",
        .otel_traces_timeout = "3000",
        .otel_compression = "none",
        .otel_traces_compression = "gzip",
        .otel_protocol = "grpc", /* not used: the TRACES_ one wins */
        .otel_traces_protocol = "http/json",
        .otel_certificate = "/generic-ca.pem",
        .otel_traces_certificate = "/ca.pem",
        .otel_client_certificate = "/generic-cert.pem",
        .otel_traces_client_certificate = "/cert.pem",
        .otel_client_key = "/key.pem",
        .otel_bsp_schedule_delay = "250",
        .otel_bsp_max_queue_size = "100000",
        .otel_bsp_max_export_batch_size = "1000",
        .otel_bsp_export_timeout = "45000",
    };
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;

    ck_assert_msg(unit_config_load("{" R1 "}", NULL, &env, &c, error) == 0, "%s", error);
    const struct otlp_config *o = &c->otlp;
    ck_assert_str_eq(c->service_name, "env-svc"); /* OTEL_SERVICE_NAME over service.name */
    ck_assert_int_eq(c->sampler, TRACEHOP_SAMPLER_TRACEIDRATIO);
    ck_assert(c->sampling_ratio == 0.375);
    ck_assert(o->enabled);
    ck_assert_str_eq(o->endpoint, "https://traces.example.com/v1/traces");
    ck_assert_uint_eq(o->headers_count, 2);
    ck_assert_str_eq(o->headers[0].line, "Authorization: Bearer abc");
    ck_assert_str_eq(o->headers[1].line, "X-Tenant: acme");
    ck_assert_int_eq(o->timeout_ms, 3000);
    ck_assert(o->gzip);
    ck_assert_str_eq(o->ca_file, "/ca.pem");
    ck_assert_str_eq(o->client_certificate, "/cert.pem");
    ck_assert_str_eq(o->client_key, "/key.pem");
    ck_assert_uint_eq(o->resource_attributes_count, 2); /* service.name is not among them */
    ck_assert_str_eq(o->resource_attributes[0].name, "deployment.environment");
    ck_assert_str_eq(o->resource_attributes[0].value, "prod eu");
    ck_assert_str_eq(o->resource_attributes[1].name, "team");
    ck_assert_str_eq(o->resource_attributes[1].value, "a=b,c");
    ck_assert_int_eq(o->schedule_delay_ms, 250);
    ck_assert_uint_eq(o->max_queue_size, 100000);
    ck_assert_uint_eq(o->max_export_batch_size, 1000);
    ck_assert_int_eq(o->export_timeout_ms, 45000);
    config_free(c);

    /* The generic variables alone. */
    env = (struct config_overrides){
        .otel_endpoint = "http://generic:4318/",
        .otel_headers = "X-Generic=1",
        .otel_timeout = "2000",
        .otel_compression = "gzip",
        .otel_protocol = "http/json",
        .otel_certificate = "/generic-ca.pem",
        .otel_client_certificate = "/generic-cert.pem",
        .otel_client_key = "/generic-key.pem",
    };
    ck_assert_msg(unit_config_load("{" R1 "}", NULL, &env, &c, error) == 0, "%s", error);
    ck_assert_str_eq(c->otlp.endpoint, "http://generic:4318/v1/traces");
    ck_assert_uint_eq(c->otlp.headers_count, 1);
    ck_assert_str_eq(c->otlp.headers[0].line, "X-Generic: 1");
    ck_assert_int_eq(c->otlp.timeout_ms, 2000);
    ck_assert(c->otlp.gzip);
    ck_assert_str_eq(c->otlp.ca_file, "/generic-ca.pem");
    ck_assert_str_eq(c->otlp.client_certificate, "/generic-cert.pem");
    ck_assert_str_eq(c->otlp.client_key, "/generic-key.pem");
    config_free(c);
}
END_TEST

/* k=v lists: trimmed, then percent-decoded (keys too); empty entries skipped; a later entry of
 * the same name (case-insensitively for headers) replaces an earlier one. */
START_TEST(test_otel_percent_decoding)
{
    static const struct {
        const char *text;
        const char *lines[3];
    } cases[] = {
        {"Authorization=Bearer%20abc", {"Authorization: Bearer abc"}},
        {"  Authorization  =  Bearer abc  ", {"Authorization: Bearer abc"}},
        {"X%2DKey=%e2%82%ac%2C%3D%25", {"X-Key: \xe2\x82\xac,=%"}},
        {",a=1,,  ,b=2,", {"a: 1", "b: 2"}},
        {"a=1,A=2", {"A: 2"}},
        {"a=%20x%20", {"a:  x "}}, /* encoded spaces are kept */
        {"a=", {"a: "}},
        {"a=b=c", {"a: b=c"}},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct config_overrides env = {.otel_headers = cases[i].text};
        char error[CONFIG_ERROR_MAX];
        struct config *c = NULL;
        size_t n = 0;

        ck_assert_msg(unit_config_load("{" R1 "}", NULL, &env, &c, error) == 0, "'%s': %s",
                      cases[i].text, error);
        while (n < 3 && cases[i].lines[n])
            n++;
        ck_assert_msg(c->otlp.headers_count == n, "'%s': %zu headers", cases[i].text,
                      c->otlp.headers_count);
        for (size_t k = 0; k < n; k++)
            ck_assert_msg(strcmp(c->otlp.headers[k].line, cases[i].lines[k]) == 0,
                          "'%s': '%s', expected '%s'", cases[i].text, c->otlp.headers[k].line,
                          cases[i].lines[k]);
        config_free(c);
    }
}
END_TEST

/* The environment adds to the file's headers and resource attributes, replacing those of the
 * same name (headers case-insensitively, attributes exactly). */
START_TEST(test_otel_lists_merge_with_the_file)
{
    static const char json[] = "{\"otlp\": {\"headers\": {\"Authorization\": \"file\", \"X-File\":"
                               " \"1\"}, \"resource_attributes\": {\"a\": \"file\", \"b\": \"1\"}},"
                               " " R1 "}";
    struct config_overrides env = {.otel_headers = "authorization=env,X-Env=2",
                                   .otel_resource_attributes = "a=env,A=3"};
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;

    ck_assert_msg(unit_config_load(json, NULL, &env, &c, error) == 0, "%s", error);
    ck_assert_uint_eq(c->otlp.headers_count, 3);
    ck_assert_str_eq(c->otlp.headers[0].line, "authorization: env");
    ck_assert_str_eq(c->otlp.headers[1].line, "X-File: 1");
    ck_assert_str_eq(c->otlp.headers[2].line, "X-Env: 2");
    ck_assert_uint_eq(c->otlp.resource_attributes_count, 3);
    ck_assert_str_eq(c->otlp.resource_attributes[0].value, "env");
    ck_assert_str_eq(c->otlp.resource_attributes[1].name, "b");
    ck_assert_str_eq(c->otlp.resource_attributes[2].name, "A");
    config_free(c);
}
END_TEST

/* Export is on with an endpoint, from the file or the environment, unless the file says
 * enabled: false, OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. */
START_TEST(test_otlp_enabled)
{
    static const struct {
        const char *otlp; /* the file's otlp object */
        struct config_overrides env;
        bool enabled;
    } cases[] = {
        {"{}", {0}, false},
        {"{\"endpoint\": \"http://c:4318\"}", {0}, true},
        {"{\"enabled\": true, \"endpoint\": \"http://c:4318\"}", {0}, true},
        {"{\"enabled\": false, \"endpoint\": \"http://c:4318\"}", {0}, false},
        {"{\"enabled\": false}", {0}, false},
        {"{}", {.otel_endpoint = "http://c:4318"}, true},
        {"{}", {.otel_traces_endpoint = "http://c:4318/v1/traces"}, true},
        {"{\"enabled\": true}", {.otel_endpoint = "http://c:4318"}, true},
        {"{\"enabled\": false}", {.otel_endpoint = "http://c:4318"}, false},
        {"{}", {.otel_endpoint = "http://c:4318", .otel_sdk_disabled = "true"}, false},
        {"{}", {.otel_endpoint = "http://c:4318", .otel_sdk_disabled = "TRUE"}, false},
        {"{}", {.otel_endpoint = "http://c:4318", .otel_sdk_disabled = "false"}, true},
        {"{}", {.otel_endpoint = "http://c:4318", .otel_sdk_disabled = "False"}, true},
        {"{\"endpoint\": \"http://c:4318\"}", {.otel_sdk_disabled = "true"}, false},
        {"{}", {.otel_endpoint = "http://c:4318", .otel_traces_exporter = "none"}, false},
        {"{}", {.otel_endpoint = "http://c:4318", .otel_traces_exporter = "otlp"}, true},
        /* switched off, so no endpoint is needed */
        {"{\"enabled\": true}", {.otel_sdk_disabled = "true"}, false},
        {"{\"enabled\": true}", {.otel_traces_exporter = "none"}, false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char json[512], error[CONFIG_ERROR_MAX];
        struct config *c = NULL;

        snprintf(json, sizeof(json), "{\"otlp\": %s, " R1 "}", cases[i].otlp);
        ck_assert_msg(unit_config_load(json, NULL, &cases[i].env, &c, error) == 0, "case %zu: %s",
                      i, error);
        ck_assert_msg(c->otlp.enabled == cases[i].enabled, "case %zu: enabled %d", i,
                      c->otlp.enabled);
        config_free(c);
    }
}
END_TEST

/* A batch size nobody gave shrinks to a smaller queue; one that was given must fit. */
START_TEST(test_otlp_default_batch_fits_the_queue)
{
    struct config_overrides env = {.otel_bsp_max_queue_size = "100"};
    char error[CONFIG_ERROR_MAX];
    struct config *c = unit_config("{\"otlp\": {\"batch\": {\"max_queue_size\": 200}}, " R1 "}");

    ck_assert_uint_eq(c->otlp.max_queue_size, 200);
    ck_assert_uint_eq(c->otlp.max_export_batch_size, 200);
    config_free(c);
    ck_assert_msg(unit_config_load("{" R1 "}", NULL, &env, &c, error) == 0, "%s", error);
    ck_assert_uint_eq(c->otlp.max_queue_size, 100);
    ck_assert_uint_eq(c->otlp.max_export_batch_size, 100);
    config_free(c);
    /* the environment's queue can make room for the file's batch */
    env = (struct config_overrides){.otel_bsp_max_queue_size = "8192"};
    ck_assert_msg(unit_config_load("{\"otlp\": {\"batch\": {\"max_export_batch_size\": 4096}}, " R1
                                   "}",
                                   NULL, &env, &c, error) == 0,
                  "%s", error);
    ck_assert_uint_eq(c->otlp.max_export_batch_size, 4096);
    config_free(c);
}
END_TEST

/* The sampler from the file and OTEL_TRACES_SAMPLER; OTEL_TRACES_SAMPLER_ARG is the ratio of the
 * *traceidratio samplers only, and TRACEHOP_SAMPLING_RATIO wins over it. */
START_TEST(test_sampler_and_ratio)
{
    static const char *const names[] = {"always_on",
                                        "always_off",
                                        "traceidratio",
                                        "parentbased_always_on",
                                        "parentbased_always_off",
                                        "parentbased_traceidratio"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        char json[256], error[CONFIG_ERROR_MAX];
        enum tracehop_sampler want;
        struct config *c;

        ck_assert(tracehop_sampler_from_name(names[i], &want));
        snprintf(json, sizeof(json), "{\"trace\": {\"sampler\": \"%s\"}, " R1 "}", names[i]);
        c = unit_config(json);
        ck_assert_int_eq(c->sampler, want);
        config_free(c);
        struct config_overrides env = {.otel_traces_sampler = names[i],
                                       .otel_traces_sampler_arg = "0.5"};
        ck_assert_msg(unit_config_load("{\"trace\": {\"sampler\": \"always_off\"}, " R1 "}", NULL,
                                       &env, &c, error) == 0,
                      "%s", error);
        ck_assert_int_eq(c->sampler, want);
        bool ratio = want == TRACEHOP_SAMPLER_TRACEIDRATIO ||
                     want == TRACEHOP_SAMPLER_PARENTBASED_TRACEIDRATIO;
        ck_assert_msg(c->sampling_ratio == (ratio ? 0.5 : 1.0), "%s: ratio %g", names[i],
                      c->sampling_ratio);
        config_free(c);
    }

    /* An argument a sampler ignores is not checked either (as the specification says). */
    struct config_overrides env = {.otel_traces_sampler = "always_on",
                                   .otel_traces_sampler_arg = "abc"};
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;
    ck_assert_msg(unit_config_load("{" R1 "}", NULL, &env, &c, error) == 0, "%s", error);
    config_free(c);
}
END_TEST

/* Precedence: flags > TRACEHOP_* > OTEL_* > file > defaults, with service.name from
 * OTEL_RESOURCE_ATTRIBUTES just below OTEL_SERVICE_NAME. */
START_TEST(test_otel_precedence)
{
    static const char json[] =
        "{\"service_name\": \"file\", \"trace\": {\"sampling_ratio\": 0.1,"
        " \"sampler\": \"always_off\"}, \"otlp\": {\"traces_endpoint\":"
        " \"http://file:4318/v1/traces\", \"timeout_ms\": 1000,"
        " \"compression\": \"gzip\", \"batch\": {\"schedule_delay_ms\": 10}},"
        " " R1 "}";
    static const struct {
        struct config_overrides env, flags;
        const char *service;
        double ratio;
    } cases[] = {
        {{0}, {0}, "file", 0.1},
        {{.otel_resource_attributes = "service.name=attr"}, {0}, "attr", 0.1},
        {{.otel_resource_attributes = "service.name=attr", .otel_service_name = "otel"},
         {0},
         "otel",
         0.1},
        {{.otel_service_name = "otel", .service_name = "tracehop-env"}, {0}, "tracehop-env", 0.1},
        {{.otel_resource_attributes = "service.name=attr", .service_name = "tracehop-env"},
         {0},
         "tracehop-env",
         0.1},
        {{.otel_service_name = "otel", .service_name = "tracehop-env"},
         {.service_name = "flag"},
         "flag",
         0.1},
        {{.otel_traces_sampler = "traceidratio", .otel_traces_sampler_arg = "0.2"},
         {0},
         "file",
         0.2},
        {{.otel_traces_sampler = "traceidratio",
          .otel_traces_sampler_arg = "0.2",
          .sampling_ratio = "0.3"},
         {0},
         "file",
         0.3},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char error[CONFIG_ERROR_MAX];
        struct config *c = NULL;

        ck_assert_msg(unit_config_load(json, &cases[i].flags, &cases[i].env, &c, error) == 0,
                      "case %zu: %s", i, error);
        ck_assert_msg(strcmp(c->service_name, cases[i].service) == 0, "case %zu: '%s'", i,
                      c->service_name);
        ck_assert_msg(c->sampling_ratio == cases[i].ratio, "case %zu: %g", i, c->sampling_ratio);
        config_free(c);
    }

    /* The OTEL_* variables over the file's otlp keys and sampler. */
    struct config_overrides env = {.otel_endpoint = "http://env:4318",
                                   .otel_timeout = "2000",
                                   .otel_compression = "none",
                                   .otel_bsp_schedule_delay = "20",
                                   .otel_traces_sampler = "always_on"};
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;
    ck_assert_msg(unit_config_load(json, NULL, &env, &c, error) == 0, "%s", error);
    ck_assert_str_eq(c->otlp.endpoint, "http://env:4318/v1/traces");
    ck_assert_int_eq(c->otlp.timeout_ms, 2000);
    ck_assert(!c->otlp.gzip);
    ck_assert_int_eq(c->otlp.schedule_delay_ms, 20);
    ck_assert_int_eq(c->sampler, TRACEHOP_SAMPLER_ALWAYS_ON);
    config_free(c);
    /* and the file where they are not given */
    c = unit_config(json);
    ck_assert_str_eq(c->otlp.endpoint, "http://file:4318/v1/traces");
    ck_assert_int_eq(c->otlp.timeout_ms, 1000);
    ck_assert(c->otlp.gzip);
    ck_assert_int_eq(c->otlp.schedule_delay_ms, 10);
    ck_assert_int_eq(c->sampler, TRACEHOP_SAMPLER_ALWAYS_OFF);
    config_free(c);
}
END_TEST

#define SAMPLER_NAMES                                                                              \
    "use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or "   \
    "parentbased_traceidratio"
#define JSON_ONLY "tracehop exports OTLP/HTTP with the JSON encoding; set \"http/json\""

static const struct {
    struct config_overrides env;
    const char *error; /* the whole message */
} otel_errors[] = {
    {{.otel_sdk_disabled = "yes"}, "OTEL_SDK_DISABLED: 'yes' is not true or false"},
    {{.otel_traces_exporter = "zipkin"},
     "OTEL_TRACES_EXPORTER: 'zipkin' is not supported: tracehop exports with \"otlp\" (or "
     "\"none\" for no export)"},
    {{.otel_traces_exporter = "otlp,console"},
     "OTEL_TRACES_EXPORTER: 'otlp,console' is not supported: tracehop exports with \"otlp\" (or "
     "\"none\" for no export)"},
    {{.otel_traces_sampler = "jaeger_remote"},
     "OTEL_TRACES_SAMPLER: unknown sampler 'jaeger_remote': " SAMPLER_NAMES},
    {{.otel_traces_sampler_arg = "1.5"}, "OTEL_TRACES_SAMPLER_ARG: '1.5' is not a number in 0..1"},
    {{.otel_traces_sampler = "traceidratio", .otel_traces_sampler_arg = "abc"},
     "OTEL_TRACES_SAMPLER_ARG: 'abc' is not a number in 0..1"},
    {{.otel_service_name = "\xff"}, "OTEL_SERVICE_NAME: must be valid UTF-8"},
    {{.otel_headers = "Authorization=Bearer \xff"},
     "OTEL_EXPORTER_OTLP_HEADERS: must be valid UTF-8"},
    {{.otel_endpoint = "ftp://collector"},
     "OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://collector' is not an http:// or https:// URL"},
    {{.otel_endpoint = "collector:4318"},
     "OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' is not an http:// or https:// URL"},
    {{.otel_traces_endpoint = "http://"},
     "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://': missing host"},
    /* headers: errors name the entry, never its value */
    {{.otel_headers = "Authorization"}, "OTEL_EXPORTER_OTLP_HEADERS: entry 1 is not key=value"},
    {{.otel_headers = "a=1,=2"}, "OTEL_EXPORTER_OTLP_HEADERS: entry 2 has an empty key"},
    {{.otel_headers = "a=%zz"},
     "OTEL_EXPORTER_OTLP_HEADERS: entry 1: bad percent-encoding (%XX with two hex digits, not "
     "%00)"},
    {{.otel_headers = "a=1,b=secret%2"},
     "OTEL_EXPORTER_OTLP_HEADERS: entry 2: bad percent-encoding (%XX with two hex digits, not "
     "%00)"},
    {{.otel_headers = "a=b%00c"},
     "OTEL_EXPORTER_OTLP_HEADERS: entry 1: bad percent-encoding (%XX with two hex digits, not "
     "%00)"},
    {{.otel_headers = "a=%ff"},
     "OTEL_EXPORTER_OTLP_HEADERS: entry 1: not valid UTF-8 once percent-decoded"},
    {{.otel_headers = "a=x%0d%0aX-Injected: 1"},
     "OTEL_EXPORTER_OTLP_HEADERS: entry 1, header 'a': the value must not contain control "
     "characters"},
    {{.otel_headers = "a=1, Bad Name=x"},
     "OTEL_EXPORTER_OTLP_HEADERS: entry 2: the key is not a valid header name"},
    {{.otel_traces_headers = "Content-Length=5"},
     "OTEL_EXPORTER_OTLP_TRACES_HEADERS: entry 1, header 'Content-Length': the exporter sets "
     "this header itself"},
    /* numbers */
    {{.otel_timeout = "abc"}, "OTEL_EXPORTER_OTLP_TIMEOUT: not a number of milliseconds: 'abc'"},
    {{.otel_timeout = "-5"}, "OTEL_EXPORTER_OTLP_TIMEOUT: not a number of milliseconds: '-5'"},
    {{.otel_timeout = "99999999999999999999999"},
     "OTEL_EXPORTER_OTLP_TIMEOUT: not a number of milliseconds: '99999999999999999999999'"},
    {{.otel_timeout = "0"}, "OTEL_EXPORTER_OTLP_TIMEOUT: '0' is not in 1..600000 milliseconds"},
    {{.otel_timeout = "5000", .otel_traces_timeout = "10s"},
     "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: not a number of milliseconds: '10s'"},
    {{.otel_bsp_schedule_delay = "0"},
     "OTEL_BSP_SCHEDULE_DELAY: '0' is not in 1..3600000 milliseconds"},
    {{.otel_bsp_export_timeout = "1.5"},
     "OTEL_BSP_EXPORT_TIMEOUT: not a number of milliseconds: '1.5'"},
    {{.otel_bsp_max_queue_size = "0"}, "OTEL_BSP_MAX_QUEUE_SIZE: '0' is not in 1..1000000"},
    {{.otel_bsp_max_queue_size = "1000001"},
     "OTEL_BSP_MAX_QUEUE_SIZE: '1000001' is not in 1..1000000"},
    {{.otel_bsp_max_queue_size = "x"}, "OTEL_BSP_MAX_QUEUE_SIZE: not a number: 'x'"},
    {{.otel_bsp_max_export_batch_size = "4096"},
     "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: 4096 is more than the queue size, 2048 (the default)"},
    {{.otel_bsp_max_queue_size = "100", .otel_bsp_max_export_batch_size = "200"},
     "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: 200 is more than the queue size, 100 "
     "(OTEL_BSP_MAX_QUEUE_SIZE)"},
    /* protocol, compression, files */
    {{.otel_protocol = "http/protobuf"},
     "OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' is not supported: " JSON_ONLY},
    {{.otel_protocol = "http/json", .otel_traces_protocol = "grpc"},
     "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' is not supported: " JSON_ONLY},
    {{.otel_compression = "br"},
     "OTEL_EXPORTER_OTLP_COMPRESSION: 'br' is not a compression: use \"gzip\" or \"none\""},
    {{.otel_client_certificate = "/c.pem"},
     "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: a client certificate needs its key "
     "(otlp.client_key or OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY)"},
    {{.otel_traces_client_key = "/k.pem"},
     "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY: a client key needs its certificate "
     "(otlp.client_certificate or OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE)"},
    /* resource attributes */
    {{.otel_resource_attributes = "service.name="},
     "OTEL_RESOURCE_ATTRIBUTES: entry 1: service.name must not be empty"},
    {{.otel_resource_attributes = "a=1,b"}, "OTEL_RESOURCE_ATTRIBUTES: entry 2 is not key=value"},
    {{.otel_resource_attributes = "a=%4"},
     "OTEL_RESOURCE_ATTRIBUTES: entry 1: bad percent-encoding (%XX with two hex digits, not %00)"},
};

START_TEST(test_otel_errors_name_the_variable)
{
    const char *got = refusal("{" R1 "}", NULL, &otel_errors[_i].env);
    ck_assert_msg(strcmp(got, otel_errors[_i].error) == 0, "\n  error:    %s\n  expected: %s", got,
                  otel_errors[_i].error);
}
END_TEST

/* Header values never appear in errors: they carry tokens. */
START_TEST(test_otel_errors_hide_header_values)
{
    static const char *const bad[] = {"Authorization=Bearer%zzsecret", "X=secret%0a", "secret",
                                      "Authorization: Bearer secret=x"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct config_overrides env = {.otel_headers = bad[i]};
        const char *got = refusal("{" R1 "}", NULL, &env);
        ck_assert_msg(!strstr(got, "secret"), "%s", got);
    }
}
END_TEST

/* Lists are bounded: 64 headers, 128 resource attributes, whichever sources add them. */
START_TEST(test_otlp_list_limits)
{
    char json[8192] = "{\"otlp\": {\"headers\": {", list[4096] = "";
    size_t len = strlen(json), list_len = 0;

    for (int i = 0; i < 65; i++) {
        len += (size_t)snprintf(json + len, sizeof(json) - len, "%s\"X-H%d\": \"v\"", i ? ", " : "",
                                i);
        list_len += (size_t)snprintf(list + list_len, sizeof(list) - list_len, "%sX-H%d=v",
                                     i ? "," : "", i);
    }
    snprintf(json + len, sizeof(json) - len, "}}, " R1 "}");
    ck_assert_str_eq(refusal(json, NULL, NULL), "otlp.headers: at most 64 headers");
    struct config_overrides env = {.otel_headers = list};
    ck_assert_str_eq(refusal("{" R1 "}", NULL, &env),
                     "OTEL_EXPORTER_OTLP_HEADERS: at most 64 headers");

    list_len = 0;
    for (int i = 0; i < 129; i++)
        list_len +=
            (size_t)snprintf(list + list_len, sizeof(list) - list_len, "%sk%d=v", i ? "," : "", i);
    env = (struct config_overrides){.otel_resource_attributes = list};
    ck_assert_str_eq(refusal("{" R1 "}", NULL, &env),
                     "OTEL_RESOURCE_ATTRIBUTES: at most 128 resource attributes");
}
END_TEST

/* config_overrides_from_env reads the OTEL_* variables; an empty one counts as unset. */
START_TEST(test_otel_overrides_from_env)
{
    struct config_overrides env;

    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "Authorization=Bearer%20abc", 1);
    setenv("OTEL_TRACES_SAMPLER", "always_on", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4096", 1);
    setenv("OTEL_SERVICE_NAME", "", 1);
    unsetenv("OTEL_SDK_DISABLED");
    config_overrides_from_env(&env);
    ck_assert_str_eq(env.otel_endpoint, "http://collector:4318");
    ck_assert_str_eq(env.otel_traces_headers, "Authorization=Bearer%20abc");
    ck_assert_str_eq(env.otel_traces_sampler, "always_on");
    ck_assert_str_eq(env.otel_bsp_max_queue_size, "4096");
    ck_assert_ptr_null(env.otel_service_name);
    ck_assert_ptr_null(env.otel_sdk_disabled);
    ck_assert_ptr_null(env.otel_headers);

    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;
    ck_assert_msg(unit_config_load("{" R1 "}", NULL, &env, &c, error) == 0, "%s", error);
    ck_assert(c->otlp.enabled);
    ck_assert_str_eq(c->otlp.endpoint, "http://collector:4318/v1/traces");
    ck_assert_str_eq(c->otlp.headers[0].line, "Authorization: Bearer abc");
    ck_assert_int_eq(c->sampler, TRACEHOP_SAMPLER_ALWAYS_ON);
    ck_assert_uint_eq(c->otlp.max_queue_size, 4096);
    ck_assert_str_eq(c->service_name, "tracehop");
    config_free(c);

    unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    unsetenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
    unsetenv("OTEL_TRACES_SAMPLER");
    unsetenv("OTEL_BSP_MAX_QUEUE_SIZE");
    unsetenv("OTEL_SERVICE_NAME");
}
END_TEST

/* What --check-config prints with the environment applied loads, without it, into the same
 * export settings, header values aside (printed "[REDACTED]"). */
START_TEST(test_print_with_otel_env_loads_back)
{
    struct config_overrides env = {.otel_endpoint = "http://collector:4318",
                                   .otel_headers = "Authorization=Bearer%20abc",
                                   .otel_resource_attributes = "team=a%2Cb",
                                   .otel_sdk_disabled = "true"};
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL, *again = NULL;

    ck_assert_msg(unit_config_load("{" R1 "}", NULL, &env, &c, error) == 0, "%s", error);
    char *first = printed(c);
    ck_assert_msg(!strstr(first, "Bearer"), "%s", first);
    ck_assert_msg(unit_config_load(first, NULL, NULL, &again, error) == 0, "%s\n%s", error, first);
    ck_assert(!again->otlp.enabled);
    ck_assert_str_eq(again->otlp.endpoint, "http://collector:4318/v1/traces");
    ck_assert_str_eq(again->otlp.headers[0].line, "Authorization: [REDACTED]");
    ck_assert_str_eq(again->otlp.resource_attributes[0].value, "a,b");
    char *second = printed(again);
    ck_assert_str_eq(first, second);
    free(second);
    free(first);
    config_free(again);
    config_free(c);
}
END_TEST

START_TEST(test_free_accepts_null)
{
    ck_assert_ptr_null(config_free(NULL));
    config_unref(NULL);
    struct config *c = unit_config("{" R1 "}");
    config_ref(c);
    config_unref(c); /* one reference left */
    ck_assert_str_eq(c->service_name, "tracehop");
    config_unref(c); /* frees (ASan/valgrind would report a leak otherwise) */
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");

    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_upstream_flag_alone);
    tcase_add_test(tc, test_every_key_accepted);
    tcase_add_test(tc, test_shipped_config_loads);
    tcase_add_test(tc, test_upstream_forms);
    tcase_add_test(tc, test_listen_addresses);
    tcase_add_test(tc, test_route_tls_keys);
    tcase_add_test(tc, test_free_accepts_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_error_names_key_and_reason, 0, (int)ARRAY_SIZE(errors));
    tcase_add_loop_test(tc, test_long_quoted_names_keep_the_reason, 0, 3);
    tcase_add_loop_test(tc, test_upstream_authority_is_validated, 0,
                        (int)ARRAY_SIZE(bad_authorities));
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_top_level_not_an_object);
    tcase_add_test(tc, test_override_errors);
    tcase_add_test(tc, test_flag_errors_name_the_flag);
    suite_add_tcase(s, tc);

    tc = tcase_create("precedence");
    tcase_add_loop_test(tc, test_precedence, 0, KEY_COUNT);
    tcase_add_test(tc, test_upstream_replaces_routes);
    tcase_add_test(tc, test_admin_off);
    tcase_add_test(tc, test_overrides_from_env);
    tcase_add_test(tc, test_empty_variables_count_as_unset);
    suite_add_tcase(s, tc);

    tc = tcase_create("reload-and-print");
    tcase_add_loop_test(tc, test_needs_restart, 0, (int)ARRAY_SIZE(restarts));
    tcase_add_test(tc, test_print_is_json_with_the_effective_values);
    tcase_add_test(tc, test_print_loads_back);
    tcase_add_test(tc, test_log_level);
    tcase_add_test(tc, test_print_redacts_credential_headers);
    tcase_add_test(tc, test_print_with_otel_env_loads_back);
    suite_add_tcase(s, tc);

    tc = tcase_create("otlp");
    tcase_add_test(tc, test_otlp_endpoint_forms);
    tcase_add_test(tc, test_otel_env_every_variable);
    tcase_add_test(tc, test_otel_percent_decoding);
    tcase_add_test(tc, test_otel_lists_merge_with_the_file);
    tcase_add_test(tc, test_otlp_enabled);
    tcase_add_test(tc, test_otlp_default_batch_fits_the_queue);
    tcase_add_test(tc, test_sampler_and_ratio);
    tcase_add_test(tc, test_otel_precedence);
    tcase_add_loop_test(tc, test_otel_errors_name_the_variable, 0, (int)ARRAY_SIZE(otel_errors));
    tcase_add_test(tc, test_otel_errors_hide_header_values);
    tcase_add_test(tc, test_otlp_list_limits);
    tcase_add_test(tc, test_otel_overrides_from_env);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(config_suite());
}
