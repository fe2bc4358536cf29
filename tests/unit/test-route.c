/* SPDX-License-Identifier: MIT */
/*
 * Route selection and the upstream target (src/proxy/route.h, docs/configuration.md "routes[]"):
 * the first route whose path prefix (at a segment boundary, on the raw target), host (without port,
 * any case) and method all match wins; no match is NULL (the daemon answers 404). The target sent
 * upstream is the route's base path, then the raw target with the prefix removed when strip_prefix
 * is set.
 *
 * Every config is JSON read through config_load, as the daemon reads it.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/route.h"
#include "daemon-test.h"
#include "unit-test.h"

#define UP "\"upstream\": \"http://127.0.0.1:1\""

/* Match `target` (the part before '?' is the path) with Host `host` (NULL: none). */
static const char *match_name(const struct config *c, const char *target, const char *host,
                              const char *method)
{
    size_t path_len = strcspn(target, "?");
    char *path = unit_memdup(target, path_len); /* exactly path_len bytes: no NUL to lean on */
    char *host_copy = host ? unit_memdup(host, strlen(host)) : NULL;
    const struct route *r =
        route_match(c, path, path_len, host_copy, host ? strlen(host) : 0, method);
    free(path);
    free(host_copy);
    return r ? r->name : NULL;
}

static const char table_config[] =
    "{\"routes\": ["
    " {\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"}, " UP "},"
    " {\"name\": \"api-v2\", \"match\": {\"path_prefix\": \"/api/v2\"}, " UP "},"
    " {\"name\": \"static\", \"match\": {\"path_prefix\": \"/static/\"}, " UP "},"
    " {\"name\": \"host\", \"match\": {\"path_prefix\": \"/h\", \"host\": \"Example.COM\"}, " UP
    "},"
    " {\"name\": \"writes\", \"match\": {\"path_prefix\": \"/m\", \"methods\": [\"POST\", "
    "\"PUT\"]},"
    " " UP "},"
    " {\"name\": \"m-any\", \"match\": {\"path_prefix\": \"/m\"}, " UP "},"
    " {\"name\": \"deep\", \"match\": {\"path_prefix\": \"/a/b/c\"}, " UP "}"
    "]}";

static const struct {
    const char *target;
    const char *host;
    const char *method;
    const char *route; /* NULL: no match */
} table[] = {
    /* prefix at segment boundaries */
    {"/api", NULL, "GET", "api"},
    {"/api/", NULL, "GET", "api"},
    {"/api/x", NULL, "GET", "api"},
    {"/api?q=1", NULL, "GET", "api"},
    {"/api/x/y?z", NULL, "GET", "api"},
    {"/apix", NULL, "GET", NULL},
    {"/api-v1", NULL, "GET", NULL},
    {"/ap", NULL, "GET", NULL},
    {"/", NULL, "GET", NULL},
    {"/API", NULL, "GET", NULL},   /* paths are case-sensitive */
    {"/%61pi", NULL, "GET", NULL}, /* the raw target, never decoded */
    {"//api", NULL, "GET", NULL},
    /* first match wins: "/api" comes before "/api/v2" */
    {"/api/v2/x", NULL, "GET", "api"},
    /* a prefix ending in '/' */
    {"/static/", NULL, "GET", "static"},
    {"/static/app.js", NULL, "GET", "static"},
    {"/static", NULL, "GET", NULL},
    {"/staticx", NULL, "GET", NULL},
    {"/static?v=1", NULL, "GET", NULL},
    /* host: any case, port ignored */
    {"/h", "example.com", "GET", "host"},
    {"/h/x", "EXAMPLE.COM", "GET", "host"},
    {"/h", "Example.Com:8080", "GET", "host"},
    {"/h", "example.com:", "GET", "host"},
    {"/h", NULL, "GET", NULL},
    {"/h", "", "GET", NULL},
    {"/h", "example.org", "GET", NULL},
    {"/h", "example.com.evil", "GET", NULL},
    {"/h", "xexample.com", "GET", NULL},
    {"/h", "example.co", "GET", NULL},
    {"/h", "[::1]:8080", "GET", NULL},
    /* methods, exact (RFC 9110 methods are case-sensitive) */
    {"/m", NULL, "POST", "writes"},
    {"/m/x", NULL, "PUT", "writes"},
    {"/m", NULL, "GET", "m-any"},
    {"/m", NULL, "post", "m-any"},
    {"/m", NULL, "DELETE", "m-any"},
    /* deeper prefixes */
    {"/a/b/c", NULL, "GET", "deep"},
    {"/a/b/c/d", NULL, "GET", "deep"},
    {"/a/b/cd", NULL, "GET", NULL},
    {"/a/b", NULL, "GET", NULL},
    /* no match */
    {"/other", NULL, "GET", NULL},
    {"*", NULL, "OPTIONS", NULL},
};

START_TEST(test_route_table)
{
    struct config *c = unit_config(table_config);
    const char *got = match_name(c, table[_i].target, table[_i].host, table[_i].method);

    ck_assert_msg((got == NULL) == (table[_i].route == NULL) &&
                      (!got || strcmp(got, table[_i].route) == 0),
                  "%s %s (Host %s): matched %s, expected %s", table[_i].method, table[_i].target,
                  table[_i].host ? table[_i].host : "none", got ? got : "nothing",
                  table[_i].route ? table[_i].route : "nothing");
    config_free(c);
}
END_TEST

/* A route without path_prefix (the default "/") is a catch-all; routes before it still win. */
START_TEST(test_catch_all)
{
    struct config *c =
        unit_config("{\"routes\": ["
                    " {\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"}, " UP "},"
                    " {\"name\": \"all\", " UP "},"
                    " {\"name\": \"never\", " UP "}]}");
    static const char *const targets[] = {"/", "/x", "/apix", "/a/b?c", "*", "/%00"};

    for (size_t i = 0; i < ARRAY_SIZE(targets); i++)
        ck_assert_str_eq(match_name(c, targets[i], "any.host", "GET"), "all");
    ck_assert_str_eq(match_name(c, "/api/x", NULL, "BREW"), "api");
    ck_assert_str_eq(match_name(c, "/", NULL, "CONNECT"), "all");
    config_free(c);

    c = unit_config("{\"routes\": [{\"name\": \"slash\", \"match\": {\"path_prefix\": \"/\"}, " UP
                    "}]}");
    ck_assert_str_eq(match_name(c, "/anything/at/all", NULL, "GET"), "slash");
    config_free(c);
}
END_TEST

/* A config may hold an IPv6 literal as the route host: the matcher knows that the colons
 * inside the brackets are not a port separator, so the config must be able to express it. */
START_TEST(test_ipv6_literal_host_is_configurable)
{
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;
    int rc = unit_config_load(
        "{\"routes\": [{\"name\": \"v6\", \"match\": {\"host\": \"[::1]\"}, " UP "}]}", NULL, NULL,
        &c, error);

    ck_assert_msg(rc == 0, "match.host \"[::1]\" refused: %s", error);
    ck_assert_str_eq(match_name(c, "/", "[::1]:8080", "GET"), "v6");
    config_free(c);
}
END_TEST

/* The matcher on an IPv6 literal host, whatever the config parser allows. */
START_TEST(test_ipv6_literal_host_matching)
{
    struct config *c = unit_config("{\"routes\": [{\"name\": \"v6\", \"match\": {\"host\": "
                                   "\"placeholder\"}, " UP "}]}");
    static const struct {
        const char *host;
        bool match;
    } hosts[] = {
        {"[::1]", true},      {"[::1]:8080", true}, {"[::1]:", true},     {"[::2]:8080", false},
        {"::1", false},       {"[::1", false},      {"[::1]x", false},    {"[::1]:80:80", false},
        {"[::10]:80", false}, {"[::]", false},      {"[::1]]:80", false},
    };

    free(c->routes[0].host);
    c->routes[0].host = strdup("[::1]");
    ck_assert_ptr_nonnull(c->routes[0].host);
    for (size_t i = 0; i < ARRAY_SIZE(hosts); i++) {
        const char *got = match_name(c, "/", hosts[i].host, "GET");
        ck_assert_msg((got != NULL) == hosts[i].match, "Host %s: matched %d, expected %d",
                      hosts[i].host, got != NULL, hosts[i].match);
    }
    config_free(c);
}
END_TEST

/* --- the upstream target ---------------------------------------------------------------------- */

static const struct {
    const char *upstream;
    const char *prefix;
    bool strip;
    const char *target;
    const char *expected;
} targets[] = {
    /* no base path, no strip: the target as received */
    {"http://u:1", "/api", false, "/api/x?q=1", "/api/x?q=1"},
    {"http://u:1", "/", false, "/", "/"},
    {"http://u:1", "/", false, "/a%2Fb?c=%20", "/a%2Fb?c=%20"},
    /* base paths, with and without their trailing slash */
    {"http://u:1/base", "/api", false, "/api/x", "/base/api/x"},
    {"http://u:1/base/", "/api", false, "/api/x", "/base/api/x"},
    {"http://u:1/base//", "/api", false, "/api/x", "/base/api/x"},
    {"http://u:1/a/b", "/", false, "/", "/a/b/"},
    {"http://u:1/base", "/api", false, "/api?q", "/base/api?q"},
    {"https://u:1/base", "/api", false, "/api/x", "/base/api/x"},
    /* strip_prefix */
    {"http://u:1", "/api", true, "/api/x?q=1", "/x?q=1"},
    {"http://u:1", "/api", true, "/api/x/y", "/x/y"},
    {"http://u:1", "/api", true, "/api", "/"},         /* prefix equals the path */
    {"http://u:1", "/api", true, "/api?q=1", "/?q=1"}, /* ... and the query is kept */
    {"http://u:1", "/api", true, "/api/", "/"},
    {"http://u:1", "/api", true, "/api//x", "//x"},
    {"http://u:1/base", "/api", true, "/api/x?y", "/base/x?y"},
    {"http://u:1/base/", "/api", true, "/api/x", "/base/x"},
    {"http://u:1/base", "/api", true, "/api", "/base/"},
    /* a prefix ending in '/': its slash stays as the separator */
    {"http://u:1", "/api/", true, "/api/x", "/x"},
    {"http://u:1", "/api/", true, "/api/", "/"},
    {"http://u:1", "/api/", true, "/api/?q", "/?q"},
    {"http://u:1/b", "/api/", true, "/api/x", "/b/x"},
    /* "/" is never stripped */
    {"http://u:1", "/", true, "/x?y", "/x?y"},
    {"http://u:1/b", "/", true, "/x", "/b/x"},
    /* unix sockets have no base path */
    {"unix:/run/app.sock", "/api", true, "/api/x", "/x"},
    {"unix:/run/app.sock", "/api", false, "/api/x", "/api/x"},
};

START_TEST(test_upstream_target)
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"routes\": [{\"match\": {\"path_prefix\": \"%s\"}, \"strip_prefix\": %s,"
             " \"upstream\": \"%s\"}]}",
             targets[_i].prefix, targets[_i].strip ? "true" : "false", targets[_i].upstream);
    struct config *c = unit_config(json);
    const char *target = targets[_i].target;
    const char *expected = targets[_i].expected;
    char out[256];

    ck_assert_msg(route_match(c, target, strcspn(target, "?"), NULL, 0, "GET") == &c->routes[0],
                  "the route does not match %s", target);
    char *copy = unit_memdup(target, strlen(target));
    size_t n = route_upstream_target(&c->routes[0], copy, strlen(target), out, sizeof(out));
    free(copy);
    ck_assert_msg(n == strlen(expected) && strcmp(out, expected) == 0,
                  "%s, prefix %s%s, target %s: \"%.*s\" (%zu), expected \"%s\"",
                  targets[_i].upstream, targets[_i].prefix, targets[_i].strip ? " stripped" : "",
                  target, (int)n, out, n, expected);
    config_free(c);
}
END_TEST

/* The result and its NUL must fit; otherwise 0 and nothing promised about out. */
START_TEST(test_upstream_target_capacity)
{
    struct config *c = unit_config("{\"routes\": [{\"upstream\": \"http://u:1/base\"}]}");
    const char *target = "/abcdef"; /* "/base/abcdef": 12 characters */
    char out[64];

    for (size_t size = 0; size <= 14; size++) {
        memset(out, 'X', sizeof(out));
        size_t n = route_upstream_target(&c->routes[0], target, strlen(target), out, size);
        if (size >= 13) {
            ck_assert_uint_eq(n, 12);
            ck_assert_str_eq(out, "/base/abcdef");
        } else {
            ck_assert_msg(n == 0, "out_size %zu: returned %zu", size, n);
        }
        ck_assert_msg(out[size] == 'X', "out_size %zu: wrote past the capacity", size);
    }
    config_free(c);
}
END_TEST

static Suite *route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("match");

    tcase_add_loop_test(tc, test_route_table, 0, (int)ARRAY_SIZE(table));
    tcase_add_test(tc, test_catch_all);
    tcase_add_test(tc, test_ipv6_literal_host_is_configurable);
    tcase_add_test(tc, test_ipv6_literal_host_matching);
    suite_add_tcase(s, tc);

    tc = tcase_create("target");
    tcase_add_loop_test(tc, test_upstream_target, 0, (int)ARRAY_SIZE(targets));
    tcase_add_test(tc, test_upstream_target_capacity);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(route_suite());
}
