/* SPDX-License-Identifier: MIT */
/*
 * SIGHUP reloads the config file (docs/operations.md and docs/configuration.md, Reloading): a valid
 * file takes effect for new requests ("config reloaded" on stderr); an invalid one is refused
 * ("reload refused") and the old config keeps serving; a change that needs a restart (listen,
 * admin.listen, access_log.path, ...) is refused with that reason; tracehop_config_reloads_total
 * counts both; and reloads under load lose no request and no access-log line (issue 5: 50 reloads
 * during 2000+ requests). The admin's /config shows the running config, secrets redacted, and the
 * new one after a reload; log_level takes effect on reload (docs/operations.md).
 *
 * The daemon is started here rather than by harness_daemon_start, because that passes --listen,
 * --access-log and --workers as flags, which win over the file and would hide a change of
 * those keys from the reload. Everything lives in the file: listen and admin on 127.0.0.1:0
 * (the ports come from the diagnostics), the access log in the test directory. Config files
 * are replaced atomically (write, then rename), as an operator's tooling should, so that a
 * reload never reads half a file.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static char dir[HARNESS_PATH_MAX];
static struct harness_echo echo;

static void setup(void)
{
    ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
    ck_assert_int_eq(harness_echo_start(&echo, dir, false), 0);
}

static void teardown(void)
{
    harness_echo_stop(&echo);
    harness_tmpdir_remove(dir);
}

/* snprintf that fails the test instead of truncating. */
static void format(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void format(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && (size_t)n < size, "%zu bytes are not enough for \"%s\"", size, fmt);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The usual members: listen and admin on port 0, the access log, no drain delay. */
static void config_text_workers(char *out, size_t size, const struct harness_daemon *d,
                                const char *listen, const char *admin, unsigned workers,
                                const char *routes)
{
    format(out, size,
           "{\"listen\": \"%s\", \"admin\": {\"listen\": \"%s\"}, \"workers\": %u,"
           " \"access_log\": {\"path\": \"%s\"},"
           " \"limits\": {\"drain_delay_ms\": 0, \"drain_timeout_ms\": 2000},"
           " \"routes\": %s}",
           listen, admin, workers, d->access_log, routes);
}

static void config_text(char *out, size_t size, const struct harness_daemon *d, const char *listen,
                        const char *admin, const char *routes)
{
    config_text_workers(out, size, d, listen, admin, 2, routes);
}

/* Replace the config file atomically. */
static void write_config(const struct harness_daemon *d, const char *text)
{
    char tmp[HARNESS_PATH_MAX + 8];
    format(tmp, sizeof(tmp), "%s.new", d->config_path);
    ck_assert_int_eq(harness_write_file(tmp, text), 0);
    ck_assert_int_eq(rename(tmp, d->config_path), 0);
}

/* A port from a diagnostic "<prefix><port>...". */
static unsigned port_from_diagnostic(struct harness_daemon *d, const char *prefix)
{
    struct harness_field_match m = {"message", prefix};
    json_t *line = harness_jsonl_wait_one(d->stderr_path, harness_match_field_prefix, &m);
    ck_assert_msg(line != NULL, "no diagnostic starting with '%s'", prefix);
    unsigned port = (unsigned)strtoul(harness_json_str(line, "message") + strlen(prefix), NULL, 10);
    json_decref(line);
    ck_assert_uint_gt(port, 0);
    return port;
}

/* Start tracehop with --config only; routes is the JSON list of routes (upstream URLs spelled
 * out by the caller). Returns the admin port. */
static unsigned start_daemon_workers(struct harness_daemon *d, unsigned workers, const char *routes)
{
    static unsigned counter;
    char config[8192];
    const char *bin = getenv("TRACEHOP_BIN");

    ck_assert_msg(bin != NULL, "TRACEHOP_BIN is not set (meson sets it)");
    *d = (struct harness_daemon){0};
    counter++;
    format(d->access_log, sizeof(d->access_log), "%s/reload-access-%d-%u.log", dir, (int)getpid(),
           counter);
    format(d->stderr_path, sizeof(d->stderr_path), "%s/reload-%d-%u.err", dir, (int)getpid(),
           counter);
    format(d->config_path, sizeof(d->config_path), "%s/reload-%d-%u.json", dir, (int)getpid(),
           counter);
    config_text_workers(config, sizeof(config), d, "127.0.0.1:0", "127.0.0.1:0", workers, routes);
    write_config(d, config);
    char *argv[] = {(char *)bin, "--config", d->config_path, NULL};
    ck_assert_int_eq(harness_spawn(&d->proc, argv, NULL, d->stderr_path, NULL), 0);
    d->port = port_from_diagnostic(d, "listening on 127.0.0.1:");
    ck_assert_msg(harness_wait_port_open(d->port, HARNESS_WAIT_MS), "port %u does not accept",
                  d->port);
    return port_from_diagnostic(d, "admin listening on 127.0.0.1:");
}

static unsigned start_daemon(struct harness_daemon *d, const char *routes)
{
    return start_daemon_workers(d, 2, routes);
}

/* Send SIGHUP and wait for the n-th diagnostic starting with `prefix`; returns its message. */
static char *reload_and_wait(struct harness_daemon *d, const char *prefix, size_t n)
{
    struct harness_field_match m = {"message", prefix};

    ck_assert_int_eq(kill(d->proc.pid, SIGHUP), 0);
    json_t *all = harness_jsonl_wait(d->stderr_path, harness_match_field_prefix, &m, n,
                                     HARNESS_WAIT_MS, &d->proc);
    if (json_array_size(all) < n) {
        harness_daemon_dump_stderr(d);
        ck_abort_msg("no diagnostic #%zu starting with '%s' after SIGHUP", n, prefix);
    }
    char *message = strdup(harness_json_str(json_array_get(all, n - 1), "message"));
    json_decref(all);
    return message;
}

/* GET target through the daemon: status, and the echo's JSON (NULL when not the echo). */
static long get(struct harness_daemon *d, const char *target, json_t **ret_echo)
{
    struct harness_request rq = {.target = target};
    struct harness_response rs;
    harness_http(d->port, &rq, &rs);
    ck_assert_msg(rs.result == CURLE_OK, "GET %s: %s", target, rs.error);
    long status = rs.status;
    if (ret_echo)
        *ret_echo = harness_response_json(&rs);
    harness_response_free(&rs);
    return status;
}

#define RELOADS_OK     "tracehop_config_reloads_total{result=\"ok\"}"
#define RELOADS_FAILED "tracehop_config_reloads_total{result=\"failed\"}"
#define RELOAD_SUCCESS "tracehop_config_last_reload_success"

/* --- a reload that takes effect -------------------------------------------------------------- */

START_TEST(test_reload_adds_a_route_and_changes_an_upstream)
{
    struct harness_daemon d;
    char routes[1024], config[4096];
    json_t *echoed = NULL;

    format(routes, sizeof(routes),
           "[{\"name\": \"a\", \"match\": {\"path_prefix\": \"/a\"}, \"upstream\": \"%s\"}]",
           echo.url);
    unsigned admin = start_daemon(&d, routes);
    ck_assert_int_eq(get(&d, "/a/x", &echoed), 200);
    ck_assert_str_eq(harness_json_str(echoed, "target"), "/a/x");
    json_decref(echoed);
    ck_assert_int_eq(get(&d, "/b/x", NULL), 404);

    /* Route a gets a base path; route b is new and sets a header. */
    format(routes, sizeof(routes),
           "[{\"name\": \"a\", \"match\": {\"path_prefix\": \"/a\"}, \"upstream\": \"%s/v2\"},"
           " {\"name\": \"b\", \"match\": {\"path_prefix\": \"/b\"}, \"upstream\": \"%s\","
           "  \"set_request_headers\": {\"X-Route\": \"b\"}}]",
           echo.url, echo.url);
    config_text(config, sizeof(config), &d, "127.0.0.1:0", "127.0.0.1:0", routes);
    write_config(&d, config);
    char *message = reload_and_wait(&d, "config reloaded", 1);
    ck_assert_msg(strstr(message, "2 routes") != NULL, "%s", message);
    free(message);

    ck_assert_int_eq(get(&d, "/a/x", &echoed), 200);
    ck_assert_str_eq(harness_json_str(echoed, "target"), "/v2/a/x");
    json_decref(echoed);
    ck_assert_int_eq(get(&d, "/b/y", &echoed), 200);
    ck_assert_ptr_nonnull(echoed);
    ck_assert_str_eq(harness_record_header(echoed, "X-Route"), "b");
    json_decref(echoed);
    json_t *line = harness_log_line(&d, "path", "/b/y");
    ck_assert_ptr_nonnull(line);
    ck_assert_str_eq(harness_json_str(line, "route"), "b");
    ck_assert_int_eq(harness_json_int(line, "status", 0), 200);
    json_decref(line);

    ck_assert(harness_metric_value(admin, RELOADS_OK) == 1);
    ck_assert(harness_metric_value(admin, RELOADS_FAILED) == 0);
    ck_assert(harness_metric_value(admin, RELOAD_SUCCESS) == 1);
    /* The new route has its own series; the metrics slot of "a" is kept. */
    ck_assert(harness_metric_value(
                  admin, "tracehop_requests_total{route=\"b\",method=\"GET\",status_class="
                         "\"2xx\"}") >= 0);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

/* --- /config and the log level --------------------------------------------------------------- */

/* The usual file with `extra` (top-level members, each followed by a comma) in front. */
static void config_text_with(char *out, size_t size, const struct harness_daemon *d,
                             const char *extra, const char *access_log_extra, const char *routes)
{
    format(out, size,
           "{%s \"listen\": \"127.0.0.1:0\", \"admin\": {\"listen\": \"127.0.0.1:0\"},"
           " \"workers\": 2, \"access_log\": {\"path\": \"%s\"%s},"
           " \"limits\": {\"drain_delay_ms\": 0, \"drain_timeout_ms\": 2000},"
           " \"routes\": %s}",
           extra, d->access_log, access_log_extra, routes);
}

/* GET /config on the admin port: 200, JSON; returns the body (caller frees) and the parse. */
static char *get_config(unsigned admin, json_t **ret_json)
{
    struct harness_request rq = {.target = "/config"};
    struct harness_response rs;

    harness_http(admin, &rq, &rs);
    ck_assert_msg(rs.result == CURLE_OK, "GET /config: %s", rs.error);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_str_eq(harness_header(&rs, "Content-Type"), "application/json");
    *ret_json = harness_response_json(&rs);
    ck_assert_msg(*ret_json != NULL, "/config is not JSON: %s", rs.body);
    char *body = strdup(rs.body);
    harness_response_free(&rs);
    return body;
}

static const char *route_name(json_t *config, size_t i)
{
    return harness_json_str(json_array_get(json_object_get(config, "routes"), i), "name");
}

START_TEST(test_config_endpoint_shows_the_running_config_with_secrets_redacted)
{
    struct harness_daemon d;
    char routes[2048], config[4096];
    json_t *shown;

    format(routes, sizeof(routes),
           "[{\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"}, \"upstream\": \"%s\","
           "  \"set_request_headers\": {\"Authorization\": \"Bearer tok-SECRET-1\","
           "                            \"X-Env\": \"visible-value\"}},"
           " {\"name\": \"default\", \"upstream\": \"%s\"}]",
           echo.url, echo.url);
    unsigned admin = start_daemon(&d, routes);
    struct harness_field_match ready = {"message", "tracehop "};
    json_t *line = harness_jsonl_wait_one(d.stderr_path, harness_match_field_prefix, &ready);
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(strstr(harness_json_str(line, "message"), "2 routes (api, default)") != NULL,
                  "%s", harness_json_str(line, "message"));
    json_decref(line);

    char *body = get_config(admin, &shown);
    ck_assert_str_eq(route_name(shown, 0), "api");
    ck_assert_str_eq(route_name(shown, 1), "default");
    json_t *set =
        json_object_get(json_array_get(json_object_get(shown, "routes"), 0), "set_request_headers");
    ck_assert_str_eq(harness_json_str(set, "Authorization"), "[REDACTED]");
    ck_assert_str_eq(harness_json_str(set, "X-Env"), "visible-value");
    ck_assert_msg(strstr(body, "SECRET") == NULL, "a secret in /config:\n%s", body);
    json_decref(shown);
    free(body);

    /* Read-only: another method is 405 with Allow. */
    struct harness_request post = {
        .method = "POST", .target = "/config", .body = "{}", .body_len = 2};
    struct harness_response rs;
    harness_http(admin, &post, &rs);
    ck_assert_int_eq(rs.status, 405);
    ck_assert_str_eq(harness_header(&rs, "Allow"), "GET, HEAD");
    harness_response_free(&rs);

    /* A reload: a new route, and a header named in access_log.redact. */
    format(routes, sizeof(routes),
           "[{\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"}, \"upstream\": \"%s\","
           "  \"set_request_headers\": {\"X-Tenant-Key\": \"SECRET-2\"}},"
           " {\"name\": \"admin-api\", \"match\": {\"path_prefix\": \"/adm\"},"
           "  \"upstream\": \"%s\"},"
           " {\"name\": \"default\", \"upstream\": \"%s\"}]",
           echo.url, echo.url, echo.url);
    config_text_with(config, sizeof(config), &d, "", ", \"redact\": [\"x-tenant-key\"]", routes);
    write_config(&d, config);
    char *message = reload_and_wait(&d, "config reloaded", 1);
    ck_assert_msg(strstr(message, ": 3 routes (api, admin-api, default)") != NULL, "%s", message);
    free(message);

    body = get_config(admin, &shown);
    ck_assert_str_eq(route_name(shown, 1), "admin-api");
    set =
        json_object_get(json_array_get(json_object_get(shown, "routes"), 0), "set_request_headers");
    ck_assert_str_eq(harness_json_str(set, "X-Tenant-Key"), "[REDACTED]");
    ck_assert_msg(strstr(body, "SECRET") == NULL, "a secret in /config:\n%s", body);
    json_decref(shown);
    free(body);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

static bool message_starts(json_t *lines, const char *prefix)
{
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line)
    {
        const char *message = harness_json_str(line, "message");
        if (message && strncmp(message, prefix, strlen(prefix)) == 0)
            return true;
    }
    return false;
}

/* log_level applies on reload: at warn, the reload's own info line is not written (a SIGUSR2
 * warning afterwards marks the point by which it would have been); back at debug, it is. */
START_TEST(test_log_level_applies_on_reload)
{
    struct harness_daemon d;
    char routes[1024], config[4096];
    struct harness_field_match usr2 = {"message", "SIGUSR2 ignored"};

    format(routes, sizeof(routes), "[{\"name\": \"all\", \"upstream\": \"%s\"}]", echo.url);
    unsigned admin = start_daemon(&d, routes);

    config_text_with(config, sizeof(config), &d, "\"log_level\": \"warn\",", "", routes);
    write_config(&d, config);
    ck_assert_int_eq(kill(d.proc.pid, SIGHUP), 0);
    ck_assert_int_eq(kill(d.proc.pid, SIGUSR2), 0);
    json_t *line = harness_jsonl_wait_one(d.stderr_path, harness_match_field_prefix, &usr2);
    ck_assert_msg(line != NULL, "no SIGUSR2 warning");
    json_decref(line);
    ck_assert(harness_metric_value(admin, RELOADS_OK) == 1);
    json_t *all = harness_jsonl_read(d.stderr_path);
    ck_assert_msg(!message_starts(all, "config reloaded"), "an info line at log_level warn");
    json_decref(all);
    json_t *shown;
    free(get_config(admin, &shown));
    ck_assert_str_eq(harness_json_str(shown, "log_level"), "warn");
    json_decref(shown);

    config_text_with(config, sizeof(config), &d, "\"log_level\": \"debug\",", "", routes);
    write_config(&d, config);
    free(reload_and_wait(&d, "config reloaded", 1));
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

/* --- refused reloads ------------------------------------------------------------------------- */

START_TEST(test_invalid_config_is_refused_and_the_old_one_serves)
{
    struct harness_daemon d;
    char routes[1024], config[4096];

    format(routes, sizeof(routes),
           "[{\"name\": \"a\", \"match\": {\"path_prefix\": \"/a\"}, \"upstream\": \"%s\"}]",
           echo.url);
    unsigned admin = start_daemon(&d, routes);
    ck_assert_int_eq(get(&d, "/a/1", NULL), 200);

    write_config(&d, "{ this is not JSON");
    char *message = reload_and_wait(&d, "reload refused", 1);
    ck_assert_msg(strstr(message, d.config_path) != NULL, "the message names no file: %s", message);
    free(message);
    ck_assert_int_eq(get(&d, "/a/2", NULL), 200);
    ck_assert(harness_metric_value(admin, RELOADS_FAILED) == 1);
    ck_assert(harness_metric_value(admin, RELOAD_SUCCESS) == 0);

    /* Valid JSON, invalid config: the message names the key. */
    format(routes, sizeof(routes),
           "[{\"name\": \"a\", \"upstream\": \"%s\"}, {\"upstream\": \"ftp://x\"}]", echo.url);
    config_text(config, sizeof(config), &d, "127.0.0.1:0", "127.0.0.1:0", routes);
    write_config(&d, config);
    message = reload_and_wait(&d, "reload refused", 2);
    ck_assert_msg(strstr(message, "routes[1].upstream: unsupported scheme 'ftp'") != NULL, "%s",
                  message);
    free(message);
    ck_assert_int_eq(get(&d, "/a/3", NULL), 200);
    ck_assert_int_eq(get(&d, "/elsewhere", NULL), 404); /* still the old route table */

    /* The file is gone. */
    ck_assert_int_eq(unlink(d.config_path), 0);
    message = reload_and_wait(&d, "reload refused", 3);
    free(message);
    ck_assert_int_eq(get(&d, "/a/4", NULL), 200);

    ck_assert(harness_metric_value(admin, RELOADS_OK) == 0);
    ck_assert(harness_metric_value(admin, RELOADS_FAILED) == 3);

    /* A good file again: accepted, the counters say so. */
    format(routes, sizeof(routes), "[{\"name\": \"all\", \"upstream\": \"%s\"}]", echo.url);
    config_text(config, sizeof(config), &d, "127.0.0.1:0", "127.0.0.1:0", routes);
    write_config(&d, config);
    message = reload_and_wait(&d, "config reloaded", 1);
    free(message);
    ck_assert_int_eq(get(&d, "/elsewhere", NULL), 200);
    ck_assert(harness_metric_value(admin, RELOADS_OK) == 1);
    ck_assert(harness_metric_value(admin, RELOADS_FAILED) == 3);
    ck_assert(harness_metric_value(admin, RELOAD_SUCCESS) == 1);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

/* Keys bound to sockets, threads or open files: a reload refuses them and names the key. */
static const struct {
    const char *key;
    int change; /* which member of the file to change */
} restart_keys[] = {
    {"listen", 0},
    {"admin.listen", 1},
    {"access_log.path", 2},
    {"workers", 3},
    {"limits.max_header_bytes", 4},
    {"workers, limits.max_header_bytes", 5}, /* every changed key, not the first */
};

START_TEST(test_change_that_needs_a_restart_is_refused)
{
    struct harness_daemon d;
    char routes[1024], config[4096], other_port[64], other_log[HARNESS_PATH_MAX + 16];

    format(routes, sizeof(routes), "[{\"name\": \"all\", \"upstream\": \"%s\"}]", echo.url);
    unsigned admin = start_daemon(&d, routes);
    unsigned closed = harness_closed_port();
    format(other_port, sizeof(other_port), "127.0.0.1:%u", closed);
    format(other_log, sizeof(other_log), "%s.other", d.access_log);
    config_text(config, sizeof(config), &d, "127.0.0.1:0", "127.0.0.1:0", routes);
    switch (restart_keys[_i].change) {
    case 0:
        config_text(config, sizeof(config), &d, other_port, "127.0.0.1:0", routes);
        break;
    case 1:
        config_text(config, sizeof(config), &d, "127.0.0.1:0", other_port, routes);
        break;
    case 2: {
        struct harness_daemon other = d;
        format(other.access_log, sizeof(other.access_log), "%s", other_log);
        config_text(config, sizeof(config), &other, "127.0.0.1:0", "127.0.0.1:0", routes);
        break;
    }
    case 3:
        format(config, sizeof(config),
               "{\"listen\": \"127.0.0.1:0\", \"admin\": {\"listen\": \"127.0.0.1:0\"},"
               " \"workers\": 3, \"access_log\": {\"path\": \"%s\"},"
               " \"limits\": {\"drain_delay_ms\": 0}, \"routes\": %s}",
               d.access_log, routes);
        break;
    case 5:
        format(config, sizeof(config),
               "{\"listen\": \"127.0.0.1:0\", \"admin\": {\"listen\": \"127.0.0.1:0\"},"
               " \"workers\": 3, \"access_log\": {\"path\": \"%s\"},"
               " \"limits\": {\"drain_delay_ms\": 0, \"max_header_bytes\": 4096}, \"routes\": %s}",
               d.access_log, routes);
        break;
    default:
        format(config, sizeof(config),
               "{\"listen\": \"127.0.0.1:0\", \"admin\": {\"listen\": \"127.0.0.1:0\"},"
               " \"workers\": 2, \"access_log\": {\"path\": \"%s\"},"
               " \"limits\": {\"drain_delay_ms\": 0, \"max_header_bytes\": 4096}, \"routes\": %s}",
               d.access_log, routes);
        break;
    }
    write_config(&d, config);
    char *message = reload_and_wait(&d, "reload refused", 1);
    char expected[128];
    format(expected, sizeof(expected), "%s changed, which need%s a restart", restart_keys[_i].key,
           strchr(restart_keys[_i].key, ',') ? "" : "s");
    ck_assert_msg(strstr(message, expected) != NULL, "'%s' does not say '%s'", message, expected);
    free(message);
    /* Still serving on the old address with the old settings. */
    ck_assert_int_eq(get(&d, "/still-here", NULL), 200);
    json_t *line = harness_log_line(&d, "path", "/still-here");
    ck_assert_msg(line != NULL, "the old access log no longer gets lines");
    json_decref(line);
    if (restart_keys[_i].change == 0)
        ck_assert_msg(harness_wait_port_refused(closed, 1000), "the new address accepts");
    ck_assert(harness_metric_value(admin, RELOADS_FAILED) == 1);
    ck_assert(harness_metric_value(admin, RELOADS_OK) == 0);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

/*
 * The checks across keys run on SIGHUP too: overlapping addresses are refused like any invalid
 * file; a probable mistake (a route that never matches) is a warning line, logged once, and the
 * reload applies.
 */
START_TEST(test_reload_runs_the_checks_across_keys)
{
    struct harness_daemon d;
    char routes[1024], config[4096], same[64];

    format(routes, sizeof(routes), "[{\"name\": \"all\", \"upstream\": \"%s\"}]", echo.url);
    unsigned admin = start_daemon(&d, routes);
    format(same, sizeof(same), "127.0.0.1:%u", harness_closed_port());
    config_text(config, sizeof(config), &d, same, same, routes);
    write_config(&d, config);
    char *message = reload_and_wait(&d, "reload refused", 1);
    char expected[256];
    format(expected, sizeof(expected), "admin.listen: %s overlaps listen (%s)", same, same);
    ck_assert_msg(strstr(message, expected) != NULL, "'%s' does not say '%s'", message, expected);
    free(message);

    format(routes, sizeof(routes),
           "[{\"name\": \"all\", \"upstream\": \"%s\"},"
           " {\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"}, \"upstream\": \"%s\"}]",
           echo.url, echo.url);
    config_text(config, sizeof(config), &d, "127.0.0.1:0", "127.0.0.1:0", routes);
    write_config(&d, config);
    message = reload_and_wait(&d, "config reloaded", 1);
    free(message);
    struct harness_field_match m = {"message", "config: routes[1] ('api'): never matches"};
    json_t *warning = harness_jsonl_wait_one(d.stderr_path, harness_match_field_prefix, &m);
    ck_assert_msg(warning != NULL, "no warning about the shadowed route");
    ck_assert_str_eq(harness_json_str(warning, "level"), "warn");
    json_decref(warning);
    ck_assert(harness_metric_value(admin, RELOADS_OK) == 1);
    ck_assert(harness_metric_value(admin, RELOADS_FAILED) == 1);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

/* Started without --config: a SIGHUP has nothing to reload; it says so and keeps serving. */
START_TEST(test_sighup_without_a_config_file)
{
    struct harness_daemon d;
    const char *args[] = {"--upstream", echo.url, NULL};

    ck_assert_int_eq(harness_daemon_start(&d, dir, NULL, NULL, args), 0);
    char *message = reload_and_wait(&d, "SIGHUP: no config file", 1);
    free(message);
    ck_assert_int_eq(get(&d, "/x", NULL), 200);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

/* --- long requests across many reloads ------------------------------------------------------- */

/* Start GET target on `multi` and drive curl until the echo upstream has it (bounded). */
static struct harness_transfer *start_in_flight(CURLM *multi, unsigned port, const char *target)
{
    /* The transfer keeps a copy of rq; the target string is freed with it (see the test). */
    struct harness_request rq = {.target = strdup(target), .timeout_ms = 60000};
    ck_assert_ptr_nonnull(rq.target);
    struct harness_transfer *t = harness_transfer_new(NULL, port, &rq);
    struct harness_field_match m = {"target", target};
    double deadline = now_s() + 5;
    bool arrived = false;

    ck_assert_ptr_nonnull(t);
    curl_multi_add_handle(multi, t->easy);
    while (!arrived && now_s() < deadline) {
        int running;
        curl_multi_perform(multi, &running);
        curl_multi_poll(multi, NULL, 0, 20, NULL);
        /* The echo upstream records a /delay request on arrival, before it waits. */
        json_t *all = harness_jsonl_wait(echo.record_path, harness_match_field, &m, 1, 0, NULL);
        arrived = json_array_size(all) > 0;
        json_decref(all);
    }
    ck_assert_msg(arrived, "%s never reached the upstream", target);
    return t;
}

/* The X-Gen header the echo upstream saw for target. */
static const char *generation_seen(const char *target, char *out, size_t size)
{
    struct harness_field_match m = {"target", target};
    json_t *record = harness_jsonl_wait_one(echo.record_path, harness_match_field, &m);
    ck_assert_msg(record != NULL, "no echo record of %s", target);
    const char *gen = harness_record_header(record, "X-Gen");
    format(out, size, "%s", gen ? gen : "(none)");
    json_decref(record);
    return out;
}

/*
 * A reload that the daemon reports as done ("config reloaded", counted as ok) applies to the
 * next request, however many older configs long requests still hold: here each of 10 config
 * generations keeps one slow request in flight (a download, a long poll) when the next reload
 * comes. One worker, so that every request and every generation meet in the same loop.
 */
START_TEST(test_reload_applies_while_many_generations_have_requests_in_flight)
{
    enum { GENERATIONS = 10 };
    struct harness_daemon d;
    char routes[1024], config[4096], target[64], gen[32], want[32];
    struct harness_transfer *in_flight[GENERATIONS] = {0};
    CURLM *multi = curl_multi_init();

    format(routes, sizeof(routes),
           "[{\"name\": \"all\", \"upstream\": \"%s\", \"set_request_headers\": {\"X-Gen\": "
           "\"0\"}}]",
           echo.url);
    unsigned admin = start_daemon_workers(&d, 1, routes);
    for (unsigned k = 1; k <= GENERATIONS; k++) {
        /* A slow request on generation k - 1 ... */
        format(target, sizeof(target), "/delay/30000?held-by=%u", k - 1);
        in_flight[k - 1] = start_in_flight(multi, d.port, target);
        format(want, sizeof(want), "%u", k - 1);
        ck_assert_str_eq(generation_seen(target, gen, sizeof(gen)), want);
        /* ... then generation k. */
        format(routes, sizeof(routes),
               "[{\"name\": \"all\", \"upstream\": \"%s\", \"set_request_headers\": {\"X-Gen\": "
               "\"%u\"}}]",
               echo.url, k);
        config_text_workers(config, sizeof(config), &d, "127.0.0.1:0", "127.0.0.1:0", 1, routes);
        write_config(&d, config);
        free(reload_and_wait(&d, "config reloaded", k));
        format(target, sizeof(target), "/after-reload-%u", k);
        ck_assert_int_eq(get(&d, target, NULL), 200);
        format(want, sizeof(want), "%u", k);
        ck_assert_msg(strcmp(generation_seen(target, gen, sizeof(gen)), want) == 0,
                      "reload %u was reported done, but a new request was served by config "
                      "generation %s (%u earlier generations hold a request in flight)",
                      k, gen, k);
    }
    ck_assert(harness_metric_value(admin, RELOADS_OK) == GENERATIONS);
    ck_assert_int_eq(harness_daemon_stop(&d), 0); /* drain_timeout_ms cuts the slow ones */
    for (unsigned k = 0; k < GENERATIONS; k++) {
        if (!in_flight[k])
            continue;
        curl_multi_remove_handle(multi, in_flight[k]->easy);
        char *owned_target = (char *)in_flight[k]->request.target;
        harness_transfer_free(in_flight[k]);
        free(owned_target);
    }
    curl_multi_cleanup(multi);
}
END_TEST

/* --- reloads under load (issue 5) ----------------------------------------------------------- */

#define LOAD_CONNECTIONS 8
#define LOAD_MIN         2400
#define LOAD_RELOADS     50
#define LOAD_STEP        (LOAD_MIN / (LOAD_RELOADS + 1)) /* requests between two reloads */

struct reloader {
    struct harness_daemon *d;
    CURLM *multi; /* woken (curl_multi_wakeup) when a reload is done */
    const char *configs[2];
    pthread_mutex_t lock;
    pthread_cond_t progress;
    unsigned completed; /* requests finished, updated by the load loop */
    atomic_uint reloads_done;
    atomic_uint in_flight;          /* transfers running, updated by the load loop */
    atomic_uint reloads_under_load; /* SIGHUPs sent while transfers were running */
    atomic_bool stop;
    char error[512];
};

/* Reload k happens once k * LOAD_STEP requests are done, so that the reloads spread over the
 * whole run; each waits for the daemon's "config reloaded". The load loop runs at most four steps
 * ahead of the reloads, so requests are in flight during every reload and the run stays near
 * LOAD_MIN requests however slow the machine. */
static void *reload_thread(void *arg)
{
    struct reloader *r = arg;
    struct harness_field_match m = {"message", "config reloaded"};

    for (unsigned k = 1; k <= LOAD_RELOADS && !atomic_load(&r->stop); k++) {
        unsigned due = k * LOAD_STEP;
        pthread_mutex_lock(&r->lock);
        while (r->completed < due && !atomic_load(&r->stop)) {
            struct timespec deadline;
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_sec += 1;
            pthread_cond_timedwait(&r->progress, &r->lock, &deadline);
        }
        pthread_mutex_unlock(&r->lock);
        if (atomic_load(&r->stop))
            break;
        char tmp[HARNESS_PATH_MAX + 8];
        snprintf(tmp, sizeof(tmp), "%s.new", r->d->config_path);
        if (harness_write_file(tmp, r->configs[k % 2]) < 0 || rename(tmp, r->d->config_path) < 0) {
            snprintf(r->error, sizeof(r->error), "reload %u: cannot write the config", k);
            break;
        }
        if (atomic_load(&r->in_flight) > 0)
            atomic_fetch_add(&r->reloads_under_load, 1);
        if (kill(r->d->proc.pid, SIGHUP) < 0) {
            snprintf(r->error, sizeof(r->error), "reload %u: kill: %s", k, strerror(errno));
            break;
        }
        json_t *all = harness_jsonl_wait(r->d->stderr_path, harness_match_field_prefix, &m, k,
                                         HARNESS_WAIT_MS, &r->d->proc);
        size_t seen = json_array_size(all);
        json_decref(all);
        if (seen < k) {
            snprintf(r->error, sizeof(r->error), "reload %u: only %zu 'config reloaded' lines", k,
                     seen);
            break;
        }
        atomic_store(&r->reloads_done, k);
        curl_multi_wakeup(r->multi);
    }
    curl_multi_wakeup(r->multi);
    return NULL;
}

struct load_slot {
    CURL *easy;
    struct harness_transfer *t;
    struct harness_request rq;
    char target[64];
    unsigned n;
};

START_TEST(test_reloads_under_load_lose_nothing)
{
    struct harness_daemon d;
    char routes_a[1024], routes_b[1024], config_a[4096], config_b[4096];

    /* Two valid configs that differ in what the upstream sees (X-Config), so that both can be
     * seen to have served. */
    format(routes_a, sizeof(routes_a),
           "[{\"name\": \"main\", \"upstream\": \"%s\","
           " \"set_request_headers\": {\"X-Config\": \"a\"}}]",
           echo.url);
    format(
        routes_b, sizeof(routes_b),
        "[{\"name\": \"main\", \"upstream\": \"%s\", \"timeout_ms\": 30000,"
        " \"set_request_headers\": {\"X-Config\": \"b\"}},"
        " {\"name\": \"spare\", \"match\": {\"path_prefix\": \"/spare\"}, \"upstream\": \"%s\"}]",
        echo.url, echo.url);
    unsigned admin = start_daemon(&d, routes_a);
    config_text(config_a, sizeof(config_a), &d, "127.0.0.1:0", "127.0.0.1:0", routes_a);
    config_text(config_b, sizeof(config_b), &d, "127.0.0.1:0", "127.0.0.1:0", routes_b);

    CURLM *multi = curl_multi_init();
    ck_assert_ptr_nonnull(multi);
    struct reloader r = {.d = &d, .multi = multi, .configs = {config_a, config_b}};
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.progress, NULL);
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, reload_thread, &r), 0);

    struct load_slot slots[LOAD_CONNECTIONS];
    unsigned started = 0, completed = 0, failed = 0;
    char first_failure[CURL_ERROR_SIZE + 128] = "";
    double deadline = now_s() + 150;

    for (size_t i = 0; i < LOAD_CONNECTIONS; i++) {
        slots[i] = (struct load_slot){.easy = curl_easy_init()};
        ck_assert_ptr_nonnull(slots[i].easy);
    }
    for (;;) {
        unsigned reloads = atomic_load(&r.reloads_done);
        bool enough = completed >= LOAD_MIN && reloads == LOAD_RELOADS;
        bool give_up = r.error[0] || now_s() > deadline;
        unsigned allowed = reloads == LOAD_RELOADS ? LOAD_MIN : (reloads + 4) * LOAD_STEP;
        /* Keep every connection busy until there is enough; then let the rest finish. */
        for (size_t i = 0; i < LOAD_CONNECTIONS && started < allowed && !enough && !give_up; i++) {
            struct load_slot *s = &slots[i];
            if (s->t)
                continue;
            s->n = started++;
            format(s->target, sizeof(s->target), "/load?n=%u", s->n);
            s->rq = (struct harness_request){
                .target = s->target, .discard_body = true, .timeout_ms = 30000};
            s->t = harness_transfer_new(s->easy, d.port, &s->rq);
            ck_assert_ptr_nonnull(s->t);
            curl_multi_add_handle(multi, s->easy);
        }
        unsigned started_now = 0;
        for (size_t i = 0; i < LOAD_CONNECTIONS; i++)
            started_now += slots[i].t != NULL;
        atomic_store(&r.in_flight, started_now); /* what runs while curl works and polls */
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            for (size_t i = 0; i < LOAD_CONNECTIONS; i++) {
                struct load_slot *s = &slots[i];
                if (!s->t || s->easy != msg->easy_handle)
                    continue;
                harness_transfer_done(s->t, msg->data.result);
                if (s->t->response.result != CURLE_OK || s->t->response.status != 200) {
                    if (!failed++)
                        snprintf(first_failure, sizeof(first_failure), "%s: %s, status %ld",
                                 s->target, s->t->response.error, s->t->response.status);
                }
                curl_multi_remove_handle(multi, s->easy);
                harness_transfer_free(s->t); /* keeps the easy handle: its connection stays */
                s->t = NULL;
                completed++;
            }
        }
        pthread_mutex_lock(&r.lock);
        r.completed = completed;
        pthread_cond_signal(&r.progress);
        pthread_mutex_unlock(&r.lock);
        bool busy = false;
        for (size_t i = 0; i < LOAD_CONNECTIONS; i++)
            busy = busy || slots[i].t != NULL;
        if (!busy && (enough || give_up))
            break;
        curl_multi_poll(multi, NULL, 0, 100, NULL); /* transfers, or a reload's wakeup */
    }
    atomic_store(&r.stop, true);
    pthread_mutex_lock(&r.lock);
    pthread_cond_signal(&r.progress);
    pthread_mutex_unlock(&r.lock);
    pthread_join(thread, NULL);
    for (size_t i = 0; i < LOAD_CONNECTIONS; i++)
        curl_easy_cleanup(slots[i].easy);
    curl_multi_cleanup(multi);

    fprintf(stderr,
            "load: %u requests on %d connections, %u failed, %u reloads (%u of them with "
            "requests in flight)\n",
            completed, LOAD_CONNECTIONS, failed, atomic_load(&r.reloads_done),
            atomic_load(&r.reloads_under_load));
    ck_assert_msg(r.error[0] == '\0', "%s", r.error);
    ck_assert_msg(atomic_load(&r.reloads_done) == LOAD_RELOADS, "only %u reloads done",
                  atomic_load(&r.reloads_done));
    ck_assert_msg(completed >= LOAD_MIN, "only %u requests completed", completed);
    ck_assert_msg(atomic_load(&r.reloads_under_load) >= LOAD_RELOADS * 3 / 4,
                  "only %u of %d reloads happened while requests were in flight",
                  atomic_load(&r.reloads_under_load), LOAD_RELOADS);
    ck_assert_msg(failed == 0, "%u of %u requests failed; first: %s", failed, completed,
                  first_failure);

    /* One access-log line per request, each with status 200. */
    json_t *lines =
        harness_jsonl_wait(d.access_log, NULL, NULL, completed, HARNESS_WAIT_MS, &d.proc);
    ck_assert_msg(json_array_size(lines) == completed, "%zu access-log lines for %u requests",
                  json_array_size(lines), completed);
    unsigned char *seen = calloc(started, 1);
    ck_assert_ptr_nonnull(seen);
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line)
    {
        const char *query = harness_json_str(line, "query");
        ck_assert_msg(query && strncmp(query, "n=", 2) == 0, "line %zu: query %s", i,
                      query ? query : "null");
        unsigned n = (unsigned)strtoul(query + 2, NULL, 10);
        ck_assert_msg(n < started && !seen[n], "request n=%u logged twice or unknown", n);
        seen[n] = 1;
        ck_assert_int_eq(harness_json_int(line, "status", 0), 200);
        ck_assert_str_eq(harness_json_str(line, "outcome"), "ok");
    }
    free(seen);
    json_decref(lines);

    /* Both configs served requests. */
    struct harness_field_match a = {"X-Config", "a"}, b = {"X-Config", "b"};
    json_t *with_a =
        harness_jsonl_wait(echo.record_path, harness_match_record_header, &a, 1, 0, NULL);
    json_t *with_b =
        harness_jsonl_wait(echo.record_path, harness_match_record_header, &b, 1, 0, NULL);
    ck_assert_msg(json_array_size(with_a) > 0 && json_array_size(with_b) > 0,
                  "requests under config a: %zu, under b: %zu", json_array_size(with_a),
                  json_array_size(with_b));
    json_decref(with_a);
    json_decref(with_b);

    ck_assert(harness_metric_value(admin, RELOADS_OK) == LOAD_RELOADS);
    ck_assert(harness_metric_value(admin, RELOADS_FAILED) == 0);
    ck_assert(harness_metric_value(admin, "tracehop_access_log_lines_total{result=\"dropped\"}") ==
              0);
    pthread_cond_destroy(&r.progress);
    pthread_mutex_destroy(&r.lock);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

static Suite *reload_suite(void)
{
    Suite *s = suite_create("reload");
    TCase *tc = tcase_create("sighup");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_test(tc, test_reload_adds_a_route_and_changes_an_upstream);
    tcase_add_test(tc, test_config_endpoint_shows_the_running_config_with_secrets_redacted);
    tcase_add_test(tc, test_log_level_applies_on_reload);
    tcase_add_test(tc, test_invalid_config_is_refused_and_the_old_one_serves);
    tcase_add_loop_test(tc, test_change_that_needs_a_restart_is_refused, 0,
                        (int)(sizeof(restart_keys) / sizeof(restart_keys[0])));
    tcase_add_test(tc, test_sighup_without_a_config_file);
    tcase_add_test(tc, test_reload_runs_the_checks_across_keys);
    tcase_add_test(tc, test_reload_applies_while_many_generations_have_requests_in_flight);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    harness_tcase_timeout(tc, 200);
    tcase_add_test(tc, test_reloads_under_load_lose_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(reload_suite());
}
