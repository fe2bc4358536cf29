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
    "            \"trust_incoming\": false, \"echo\": false},\n"
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
    "  \"otlp\": {}\n"
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
    ck_assert_msg(config_load(path, &no_overrides, &no_overrides, NULL, &c, error) == 0, "%s: %s",
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
    {"{\"service_name\": 5, " R1 "}", "service_name: must be a string"},
    {"{\"workers\": \"2\", " R1 "}", "workers: must be an integer in 1..64"},
    {"{\"workers\": 2.5, " R1 "}", "workers: must be an integer in 1..64"},
    {"{\"listen\": 5, " R1 "}", "listen: must be an address or a non-empty list of addresses"},
    {"{\"listen\": [], " R1 "}", "listen: must be an address or a non-empty list of addresses"},
    {"{\"listen\": [\"127.0.0.1:1\", 5], " R1 "}", "listen[1]: must be a string"},
    {"{\"admin\": 1, " R1 "}", "admin: must be an object"},
    {"{\"admin\": {\"listen\": 9901}, " R1 "}", "admin.listen: must be a string"},
    {"{\"trace\": [], " R1 "}", "trace: must be an object"},
    {"{\"trace\": {\"trust_incoming\": \"yes\"}, " R1 "}",
     "trace.trust_incoming: must be true or false"},
    {"{\"trace\": {\"echo\": 1}, " R1 "}", "trace.echo: must be true or false"},
    {"{\"trace\": {\"sampling_ratio\": \"0.5\"}, " R1 "}",
     "trace.sampling_ratio: must be a number in 0..1"},
    {"{\"trace\": {\"request_id_header\": 5}, " R1 "}",
     "trace.request_id_header: must be a string"},
    {"{\"access_log\": {\"path\": 5}, " R1 "}", "access_log.path: must be a string"},
    {"{\"access_log\": {\"fields\": \"X-A\"}, " R1 "}",
     "access_log.fields: must be a list of strings"},
    {"{\"access_log\": {\"redact\": [1]}, " R1 "}",
     "access_log.redact[0]: must be a non-empty string"},
    {"{\"limits\": 5, " R1 "}", "limits: must be an object"},
    {"{\"limits\": {\"drain_timeout_ms\": \"5\"}, " R1 "}",
     "limits.drain_timeout_ms: must be an integer in 0..3600000"},
    {"{\"routes\": {}}", "routes: must be a list"},
    {"{\"routes\": [5]}", "routes[0]: must be an object"},
    {"{\"routes\": [{\"upstream\": 5}]}", "routes[0].upstream: must be a string"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"name\": 5}]}",
     "routes[0].name: must be a string"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": 5}]}",
     "routes[0].match: must be an object"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"strip_prefix\": \"yes\"}]}",
     "routes[0].strip_prefix: must be true or false"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": {\"path_prefix\": 5}}]}",
     "routes[0].match.path_prefix: must be a string"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": {\"methods\": \"GET\"}}]}",
     "routes[0].match.methods: must be a list of strings"},
    {"{\"otlp\": 5, " R1 "}", "otlp: must be an object"},
    /* out of range */
    {"{\"workers\": 0, " R1 "}", "workers: must be an integer in 1..64"},
    {"{\"workers\": 65, " R1 "}", "workers: must be an integer in 1..64"},
    {"{\"trace\": {\"sampling_ratio\": 1.5}, " R1 "}",
     "trace.sampling_ratio: must be a number in 0..1"},
    {"{\"trace\": {\"sampling_ratio\": -0.1}, " R1 "}",
     "trace.sampling_ratio: must be a number in 0..1"},
    {"{\"limits\": {\"max_header_bytes\": 100}, " R1 "}",
     "limits.max_header_bytes: must be an integer in 1024..1048576"},
    {"{\"limits\": {\"max_header_bytes\": 2000000}, " R1 "}",
     "limits.max_header_bytes: must be an integer in 1024..1048576"},
    {"{\"limits\": {\"max_body_bytes\": -1}, " R1 "}",
     "limits.max_body_bytes: must be an integer in 0..9223372036854775807"},
    {"{\"limits\": {\"max_connections\": 0}, " R1 "}",
     "limits.max_connections: must be an integer in 1..1000000"},
    {"{\"limits\": {\"client_timeout_ms\": 999}, " R1 "}",
     "limits.client_timeout_ms: must be an integer in 1000..3600000"},
    {"{\"limits\": {\"drain_delay_ms\": 600001}, " R1 "}",
     "limits.drain_delay_ms: must be an integer in 0..600000"},
    {"{\"limits\": {\"drain_delay_ms\": -1}, " R1 "}",
     "limits.drain_delay_ms: must be an integer in 0..600000"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"connect_timeout_ms\": 0}]}",
     "routes[0].connect_timeout_ms: must be an integer in 1..3600000"},
    {"{\"routes\": [{\"upstream\": \"http://a:1\", \"timeout_ms\": -1}]}",
     "routes[0].timeout_ms: must be an integer in 0..86400000"},
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
     " \"request_id_header\": \"X-Other\", \"trust_incoming\": false, \"echo\": false},"
     " \"routes\": [{\"name\": \"new\", \"upstream\": \"http://127.0.0.1:2/x\"},"
     " {\"upstream\": \"unix:/run/x.sock\"}]}",
     NULL},
    {"{" BASE_MEMBERS ", \"limits\": {\"max_body_bytes\": 5, \"drain_delay_ms\": 1,"
     " \"drain_timeout_ms\": 2}, " R1 "}",
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

/* What --check-config prints is the effective config: loading it again gives the same config
 * (the same printout), so an operator can keep it as the file. */
START_TEST(test_print_loads_back)
{
    static const char *const sources[] = {every_key, "{" R1 "}",
                                          "{\"routes\": [{\"match\": {\"host\": \"a.example\"},"
                                          " \"upstream\": \"http://127.0.0.1:1\"}]}"};
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
    suite_add_tcase(s, tc);

    tc = tcase_create("reload-and-print");
    tcase_add_loop_test(tc, test_needs_restart, 0, (int)ARRAY_SIZE(restarts));
    tcase_add_test(tc, test_print_is_json_with_the_effective_values);
    tcase_add_test(tc, test_print_loads_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(config_suite());
}
