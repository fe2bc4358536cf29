/* SPDX-License-Identifier: MIT */
/*
 * The servers the tests run (contracts in harness.h): tracehop itself (TRACEHOP_BIN), the echo
 * upstream (ECHO_UPSTREAM_BIN, tests/echo-upstream) and bad-upstream (BAD_UPSTREAM_BIN,
 * bad-upstream.c); and harness_env, the usual fixture of one echo upstream and one daemon in a
 * private directory. Each listens on 127.0.0.1:0 (the echo upstream may take a unix socket
 * instead). Starting one waits (bounded) for the line in which it says where it listens (on
 * stdout for the upstreams, the "listening on" diagnostic on stderr for tracehop), then for that
 * port to accept; stopping one copies its stderr to ours unless it exited 0. The daemon is
 * stopped with SIGINT, the others with SIGTERM.
 */
#include "harness-internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct line_prefix_wait {
    const char *path;
    const char *prefix;
    char line[256];
};

static bool line_prefix_ready(void *arg)
{
    struct line_prefix_wait *w = arg;
    char *text = harness_read_file(w->path, NULL);
    bool found = false;

    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        if (strncmp(line, w->prefix, strlen(w->prefix)) == 0) {
            snprintf(w->line, sizeof(w->line), "%s", line);
            found = true;
            break;
        }
        line = nl + 1;
    }
    free(text);
    return found;
}

static const char *binary(const char *variable)
{
    const char *path = getenv(variable);
    if (!path || !*path)
        say("%s is not set: run the tests through meson", variable);
    return path;
}

/* From a child's "listening on 127.0.0.1:PORT" line: its port and http URL, once the port
 * accepts. On failure the child is stopped. Returns 0 or -EIO. */
static int port_from_listening_line(const char *who, const char *line, struct harness_process *proc,
                                    unsigned *port, char *url, size_t url_size)
{
    const char *colon = strrchr(line, ':');
    *port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
    snprintf(url, url_size, "http://127.0.0.1:%u", *port);
    if (*port == 0 || !harness_wait_port_open(*port, HARNESS_WAIT_MS)) {
        say("%s: bad or closed port in '%s'", who, line);
        harness_process_stop(proc, 2000);
        return -EIO;
    }
    return 0;
}

int harness_echo_start(struct harness_echo *e, const char *dir, bool unix_socket)
{
    const char *bin = binary("ECHO_UPSTREAM_BIN");
    int rc;

    *e = (struct harness_echo){0};
    if (!bin)
        return -ENOENT;
    snprintf(e->record_path, sizeof(e->record_path), "%s/echo-record.jsonl", dir);
    snprintf(e->stdout_path, sizeof(e->stdout_path), "%s/echo.out", dir);
    snprintf(e->stderr_path, sizeof(e->stderr_path), "%s/echo.err", dir);
    snprintf(e->unix_path, sizeof(e->unix_path), "%s/echo.sock", dir);
    char *argv[] = {(char *)bin,
                    unix_socket ? "--unix" : "--listen",
                    unix_socket ? e->unix_path : "127.0.0.1:0",
                    "--record",
                    e->record_path,
                    NULL};
    if ((rc = harness_spawn(&e->proc, argv, e->stdout_path, e->stderr_path, NULL)) < 0)
        return rc;

    struct line_prefix_wait w = {.path = e->stdout_path, .prefix = "listening on "};
    if (!harness_wait_for_file(e->stdout_path, line_prefix_ready, &w, HARNESS_WAIT_MS, &e->proc)) {
        say("echo-upstream did not say where it listens");
        harness_dump_file("echo-upstream stderr", e->stderr_path);
        harness_process_stop(&e->proc, 2000);
        return -ETIMEDOUT;
    }
    if (unix_socket) {
        snprintf(e->url, sizeof(e->url), "unix:%s", e->unix_path);
        return 0;
    }
    return port_from_listening_line("echo-upstream", w.line, &e->proc, &e->port, e->url,
                                    sizeof(e->url));
}

int harness_echo_stop(struct harness_echo *e)
{
    int rc = harness_process_stop(&e->proc, 5000);
    if (rc != 0 && e->proc.pid > 0)
        harness_dump_file("echo-upstream stderr", e->stderr_path);
    return rc;
}

json_t *harness_echo_record(struct harness_echo *e, const char *name, const char *value)
{
    struct harness_field_match m = {name, value};
    return harness_jsonl_wait_one(e->record_path, harness_match_record_header, &m);
}

/* config_json with every "{ECHO}" replaced by url; caller frees. */
static char *expand_config(const char *config_json, const char *url)
{
    size_t n = 0, url_len = url ? strlen(url) : 0;
    for (const char *p = config_json; (p = strstr(p, "{ECHO}")); p += 6)
        n++;
    char *out = malloc(strlen(config_json) + n * url_len + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const char *p = config_json; *p;) {
        if (strncmp(p, "{ECHO}", 6) == 0) {
            memcpy(o, url, url_len);
            o += url_len;
            p += 6;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

struct listening_wait {
    const char *path;
    unsigned port;
};

static bool listening_ready(void *arg)
{
    struct listening_wait *w = arg;
    json_t *all = harness_jsonl_parse(w->path, NULL);
    size_t i;
    json_t *o;
    static const char prefix[] = "listening on 127.0.0.1:";

    json_array_foreach(all, i, o)
    {
        const char *message = harness_json_str(o, "message");
        if (message && strncmp(message, prefix, sizeof(prefix) - 1) == 0) {
            w->port = (unsigned)strtoul(message + sizeof(prefix) - 1, NULL, 10);
            break;
        }
    }
    json_decref(all);
    return w->port != 0;
}

int harness_daemon_start(struct harness_daemon *d, const char *dir, const char *config_json,
                         const char *echo_url, const char *const *args)
{
    return harness_daemon_start_env(d, dir, config_json, echo_url, args, NULL);
}

int harness_daemon_start_env(struct harness_daemon *d, const char *dir, const char *config_json,
                             const char *echo_url, const char *const *args, char *const env_extra[])
{
    static unsigned counter;
    const char *bin = binary("TRACEHOP_BIN");
    char *argv[64];
    size_t argc = 0;
    unsigned n = ++counter;
    int rc;

    *d = (struct harness_daemon){0};
    if (!bin)
        return -ENOENT;
    /* Unique per process too: Check forks a child per test, each with its own counter. */
    snprintf(d->access_log, sizeof(d->access_log), "%s/access-%d-%u.log", dir, (int)getpid(), n);
    snprintf(d->stderr_path, sizeof(d->stderr_path), "%s/tracehop-%d-%u.err", dir, (int)getpid(),
             n);
    argv[argc++] = (char *)bin;
    argv[argc++] = "--listen";
    argv[argc++] = "127.0.0.1:0";
    argv[argc++] = "--access-log";
    argv[argc++] = d->access_log;
    argv[argc++] = "--workers";
    argv[argc++] = "2";
    argv[argc++] = "--admin-listen";
    argv[argc++] = "off";
    if (config_json) {
        char *text = expand_config(config_json, echo_url);
        snprintf(d->config_path, sizeof(d->config_path), "%s/config-%d-%u.json", dir, (int)getpid(),
                 n);
        rc = text ? harness_write_file(d->config_path, text) : -ENOMEM;
        free(text);
        if (rc < 0)
            return rc;
        argv[argc++] = "--config";
        argv[argc++] = d->config_path;
    }
    for (size_t i = 0; args && args[i] && argc < 63; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;

    if ((rc = harness_spawn(&d->proc, argv, NULL, d->stderr_path, env_extra)) < 0)
        return rc;
    struct listening_wait w = {.path = d->stderr_path};
    if (!harness_wait_for_file(d->stderr_path, listening_ready, &w, HARNESS_WAIT_MS, &d->proc)) {
        say("tracehop did not report 'listening on 127.0.0.1:PORT'");
        harness_dump_file("tracehop stderr", d->stderr_path);
        harness_process_stop(&d->proc, 2000);
        return -ETIMEDOUT;
    }
    d->port = w.port;
    if (!harness_wait_port_open(d->port, HARNESS_WAIT_MS)) {
        say("tracehop said it listens on port %u, but it does not accept", d->port);
        harness_process_stop(&d->proc, 2000);
        return -EIO;
    }
    return 0;
}

int harness_daemon_stop(struct harness_daemon *d)
{
    /* SIGINT: a drain without limits.drain_delay_ms (5 s by default); the tests of SIGTERM's
     * delay send it themselves. */
    int rc = harness_process_stop_with(&d->proc, SIGINT, 15000);
    if (rc != 0 && d->proc.pid > 0)
        harness_dump_file("tracehop stderr", d->stderr_path);
    return rc;
}

void harness_daemon_dump_stderr(const struct harness_daemon *d)
{
    harness_dump_file("tracehop stderr", d->stderr_path);
}

int harness_env_start(struct harness_env *env, const char *config_json)
{
    int rc;

    *env = (struct harness_env){0};
    if ((rc = harness_tmpdir(env->dir, sizeof(env->dir))) < 0)
        return rc;
    if ((rc = harness_echo_start(&env->echo, env->dir, false)) < 0)
        return rc;
    if (config_json)
        return harness_daemon_start(&env->daemon, env->dir, config_json, env->echo.url, NULL);
    const char *args[] = {"--upstream", env->echo.url, NULL};
    return harness_daemon_start(&env->daemon, env->dir, NULL, NULL, args);
}

void harness_env_stop(struct harness_env *env)
{
    if (env->daemon.proc.pid > 0) {
        int rc = harness_daemon_stop(&env->daemon);
        if (rc != 0)
            say("tracehop exited with %d at the end of the test case (expected 0)", rc);
    }
    if (env->echo.proc.pid > 0)
        harness_echo_stop(&env->echo);
    harness_tmpdir_remove(env->dir);
    env->dir[0] = '\0';
}

int harness_bad_start(struct harness_bad *b, const char *dir)
{
    const char *bin = binary("BAD_UPSTREAM_BIN");
    int rc;

    *b = (struct harness_bad){0};
    if (!bin)
        return -ENOENT;
    snprintf(b->events_path, sizeof(b->events_path), "%s/bad-events.jsonl", dir);
    snprintf(b->stdout_path, sizeof(b->stdout_path), "%s/bad.out", dir);
    snprintf(b->stderr_path, sizeof(b->stderr_path), "%s/bad.err", dir);
    char *argv[] = {(char *)bin, "--listen", "127.0.0.1:0", "--events", b->events_path, NULL};
    if ((rc = harness_spawn(&b->proc, argv, b->stdout_path, b->stderr_path, NULL)) < 0)
        return rc;
    struct line_prefix_wait w = {.path = b->stdout_path, .prefix = "listening on "};
    if (!harness_wait_for_file(b->stdout_path, line_prefix_ready, &w, HARNESS_WAIT_MS, &b->proc)) {
        say("bad-upstream did not say where it listens");
        harness_dump_file("bad-upstream stderr", b->stderr_path);
        harness_process_stop(&b->proc, 2000);
        return -ETIMEDOUT;
    }
    return port_from_listening_line("bad-upstream", w.line, &b->proc, &b->port, b->url,
                                    sizeof(b->url));
}

int harness_bad_stop(struct harness_bad *b)
{
    int rc = harness_process_stop(&b->proc, 5000);
    if (rc != 0 && b->proc.pid > 0)
        harness_dump_file("bad-upstream stderr", b->stderr_path);
    return rc;
}

int harness_helper_start(struct harness_helper *h, const char *dir, const char *name,
                         char *const argv[])
{
    int rc;

    *h = (struct harness_helper){0};
    snprintf(h->stdout_path, sizeof(h->stdout_path), "%s/%s.out", dir, name);
    snprintf(h->stderr_path, sizeof(h->stderr_path), "%s/%s.err", dir, name);
    if ((rc = harness_spawn(&h->proc, argv, h->stdout_path, h->stderr_path, NULL)) < 0)
        return rc;
    struct line_prefix_wait w = {.path = h->stdout_path, .prefix = "listening on "};
    if (!harness_wait_for_file(h->stdout_path, line_prefix_ready, &w, HARNESS_WAIT_MS, &h->proc)) {
        say("%s did not say where it listens", name);
        harness_dump_file(name, h->stderr_path);
        harness_process_stop(&h->proc, 2000);
        return -ETIMEDOUT;
    }
    return port_from_listening_line(name, w.line, &h->proc, &h->port, h->url, sizeof(h->url));
}

int harness_helper_stop(struct harness_helper *h)
{
    return harness_process_stop(&h->proc, 5000);
}

struct bad_event_match {
    const char *event;
    const char *target_prefix;
};

static bool match_bad_event(json_t *object, const void *arg)
{
    const struct bad_event_match *m = arg;
    const char *event = harness_json_str(object, "event");
    const char *target = harness_json_str(object, "target");
    return event && target && strcmp(event, m->event) == 0 &&
           strncmp(target, m->target_prefix, strlen(m->target_prefix)) == 0;
}

json_t *harness_bad_event(struct harness_bad *b, const char *event, const char *target_prefix,
                          int timeout_ms)
{
    struct bad_event_match m = {event, target_prefix};
    json_t *all = harness_jsonl_wait(b->events_path, match_bad_event, &m, 1, timeout_ms, NULL);
    json_t *first = json_incref(json_array_get(all, 0));
    json_decref(all);
    return first;
}

static bool is_ready_diagnostic(json_t *object, const void *arg)
{
    const char *message = harness_json_str(object, "message");
    (void)arg;
    return message && strncmp(message, "tracehop ", 9) == 0 && strstr(message, " ready: ");
}

unsigned harness_daemon_admin_port(struct harness_daemon *d)
{
    struct harness_field_match m = {"message", "admin listening on 127.0.0.1:"};
    json_t *line = harness_jsonl_wait_one(d->stderr_path, harness_match_field_prefix, &m);
    ck_assert_msg(line != NULL, "no 'admin listening on 127.0.0.1:' diagnostic");
    unsigned port =
        (unsigned)strtoul(harness_json_str(line, "message") + strlen(m.value), NULL, 10);
    json_decref(line);
    ck_assert_uint_gt(port, 0);
    line = harness_jsonl_wait_one(d->stderr_path, is_ready_diagnostic, NULL);
    ck_assert_msg(line != NULL, "no readiness diagnostic");
    json_decref(line);
    return port;
}
