/* SPDX-License-Identifier: MIT */
/*
 * The daemon as a process: SIGTERM/SIGINT drain (in-flight requests finish, new connections are
 * refused, exit 0 within a bound; docs/operations.md, Signals and Draining), and configuration
 * errors (docs/configuration.md: every error names the key path and the reason, exit 1 before
 * anything listens; a good config is printed as JSON by --check-config; flags > environment >
 * file), SIGUSR2 ignored with a diagnostic, and the help and version output.
 *
 * These tests start their own daemon, since stopping it is what they test.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- signals --------------------------------------------------------------------------- */

static char dir[HARNESS_PATH_MAX];
static struct harness_echo echo;

static void signals_setup(void)
{
    ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
    ck_assert_int_eq(harness_echo_start(&echo, dir, false), 0);
}

static void signals_teardown(void)
{
    harness_echo_stop(&echo);
    harness_tmpdir_remove(dir);
}

/* Without a config: one catch-all route and no drain delay, so a stop starts at once. */
static void start_daemon(struct harness_daemon *d, const char *config_json)
{
    if (!config_json)
        config_json = "{\"limits\": {\"drain_delay_ms\": 0}, \"routes\": [{\"upstream\": "
                      "\"{ECHO}\"}]}";
    ck_assert_int_eq(harness_daemon_start(d, dir, config_json, echo.url, NULL), 0);
}

/* Start GET target on `multi` and keep curl going until the echo upstream has it. */
static struct harness_transfer *start_in_flight(CURLM *multi, unsigned port, const char *target)
{
    struct harness_request rq = {.target = target, .timeout_ms = 15000};
    struct harness_transfer *t = harness_transfer_new(NULL, port, &rq);
    struct harness_field_match m = {"target", target};
    json_t *arrived = NULL;
    double deadline = now_s() + 5;
    int running;

    ck_assert_ptr_nonnull(t);
    curl_multi_add_handle(multi, t->easy);
    while (!arrived && now_s() < deadline) {
        curl_multi_perform(multi, &running);
        curl_multi_poll(multi, NULL, 0, 20, NULL);
        /* The echo upstream records a /delay request on arrival, before it waits. */
        json_t *all = harness_jsonl_wait(echo.record_path, harness_match_field, &m, 1, 0, NULL);
        arrived = json_incref(json_array_get(all, 0));
        json_decref(all);
    }
    ck_assert_msg(arrived != NULL, "%s never reached the upstream", target);
    json_decref(arrived);
    return t;
}

/* Run `multi` until its one transfer ends or `seconds` pass; returns true if it ended. */
static bool finish(CURLM *multi, struct harness_transfer *t, double seconds)
{
    double deadline = now_s() + seconds;
    int running = 1;

    while (running && now_s() < deadline) {
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)))
            if (msg->msg == CURLMSG_DONE)
                harness_transfer_done(t, msg->data.result);
        if (running)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    return running == 0;
}

START_TEST(test_sigterm_lets_in_flight_request_finish_and_refuses_new_connections)
{
    struct harness_daemon d;
    char id[17], target[64];
    CURLM *multi = curl_multi_init();

    start_daemon(&d, NULL);
    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/delay/2000?drain=%s", id);
    struct harness_transfer *t = start_in_flight(multi, d.port, target);

    double signalled = now_s();
    ck_assert_int_eq(kill(d.proc.pid, SIGTERM), 0);
    ck_assert_msg(harness_wait_port_refused(d.port, 800),
                  "new connections were still accepted 800 ms after SIGTERM");
    for (int i = 0; i < 5; i++)
        ck_assert_msg(harness_wait_port_refused(d.port, 200),
                      "a new connection was accepted after the drain began");
    int running = 0;
    curl_multi_perform(multi, &running);
    ck_assert_msg(running == 1, "the in-flight request ended before the checks were done");

    ck_assert_msg(finish(multi, t, 5), "the in-flight request did not finish");
    ck_assert_msg(t->response.result == CURLE_OK, "in-flight request: %s", t->response.error);
    ck_assert_int_eq(t->response.status, 200);
    json_t *echoed = harness_response_json(&t->response);
    ck_assert_ptr_nonnull(echoed);
    ck_assert_str_eq(harness_json_str(echoed, "target"), target);
    json_decref(echoed);

    ck_assert_msg(harness_process_wait(&d.proc, 5000), "tracehop still runs 5 s after SIGTERM");
    ck_assert_int_eq(harness_exit_code(&d.proc), 0);
    ck_assert_msg(now_s() - signalled < 4.0, "exit took %.2f s", now_s() - signalled);

    json_t *log = harness_log_line(&d, "query", target + strlen("/delay/2000?"));
    ck_assert_msg(log != NULL, "the drained request has no access-log line");
    ck_assert_int_eq(harness_json_int(log, "status", 0), 200);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "ok");
    json_decref(log);

    curl_multi_remove_handle(multi, t->easy);
    harness_transfer_free(t);
    curl_multi_cleanup(multi);
    harness_daemon_stop(&d);
}
END_TEST

static const int stop_signals[] = {SIGTERM, SIGINT};

START_TEST(test_stop_signal_when_idle_exits_0_promptly)
{
    struct harness_daemon d;
    struct harness_response rs;

    start_daemon(&d, NULL);
    struct harness_field_match ready = {"message", "tracehop "};
    json_t *said = harness_jsonl_wait_one(d.stderr_path, harness_match_field_prefix, &ready);
    ck_assert_msg(said && strstr(harness_json_str(said, "message"), ", 1 route (route0), "), "%s",
                  said ? harness_json_str(said, "message") : "no ready line");
    json_decref(said);
    struct harness_request rq = {.target = "/before-stop"};
    harness_http(d.port, &rq, &rs);
    ck_assert_int_eq(rs.status, 200);
    harness_response_free(&rs);
    ck_assert_int_eq(kill(d.proc.pid, stop_signals[_i]), 0);
    ck_assert_msg(harness_process_wait(&d.proc, 2000), "%s: still running after 2 s",
                  strsignal(stop_signals[_i]));
    ck_assert_int_eq(harness_exit_code(&d.proc), 0);
    json_t *log = harness_log_line(&d, "path", "/before-stop");
    ck_assert_ptr_nonnull(log);
    json_decref(log);
}
END_TEST

START_TEST(test_drain_timeout_bounds_the_exit)
{
    struct harness_daemon d;
    char id[17], target[64];
    CURLM *multi = curl_multi_init();

    start_daemon(&d, "{\"limits\": {\"drain_timeout_ms\": 500, \"drain_delay_ms\": 0},"
                     " \"routes\": [{\"upstream\": \"{ECHO}\"}]}");
    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/delay/8000?cut=%s", id);
    struct harness_transfer *t = start_in_flight(multi, d.port, target);

    double signalled = now_s();
    ck_assert_int_eq(kill(d.proc.pid, SIGTERM), 0);
    ck_assert_msg(harness_process_wait(&d.proc, 5000),
                  "tracehop still runs 5 s after SIGTERM with drain_timeout_ms 500");
    double took = now_s() - signalled;
    ck_assert_int_eq(harness_exit_code(&d.proc), 0);
    ck_assert_msg(took >= 0.4 && took < 3.0, "exit %.2f s after SIGTERM (drain timeout 0.5 s)",
                  took);
    finish(multi, t, 5);
    ck_assert_msg(t->response.status != 200 || t->response.result != CURLE_OK,
                  "a request cut off by the drain timeout must not look complete");
    json_t *log = harness_log_line(&d, "query", target + strlen("/delay/8000?"));
    ck_assert_msg(log != NULL, "the request cut off by the drain has no access-log line");
    /* Its own outcome, not client_aborted: the client did not leave, tracehop cut it off. */
    ck_assert_str_eq(harness_json_str(log, "outcome"), "shutdown");
    ck_assert_msg(harness_json_is_null(log, "status"), "status %lld logged, none was sent",
                  (long long)harness_json_int(log, "status", 0));
    json_decref(log);
    char *diagnostics = harness_read_file(d.stderr_path, NULL);
    ck_assert_ptr_nonnull(diagnostics);
    ck_assert_msg(strstr(diagnostics, "stopped; 1 request cut off by the drain timeout"),
                  "the final diagnostic does not count the cut-off request:\n%s", diagnostics);
    free(diagnostics);

    curl_multi_remove_handle(multi, t->easy);
    harness_transfer_free(t);
    curl_multi_cleanup(multi);
}
END_TEST

static long get_status(unsigned port, const char *target)
{
    struct harness_response rs;
    struct harness_request rq = {.target = target};
    harness_http(port, &rq, &rs);
    long status = rs.status;
    harness_response_free(&rs);
    return status;
}

START_TEST(test_sigterm_fails_readiness_at_once_and_serves_through_the_drain_delay)
{
    struct harness_daemon d;
    const char *args[] = {"--admin-listen", "127.0.0.1:0", NULL};

    ck_assert_int_eq(harness_daemon_start(&d, dir,
                                          "{\"limits\": {\"drain_delay_ms\": 1500,"
                                          " \"drain_timeout_ms\": 1000},"
                                          " \"routes\": [{\"upstream\": \"{ECHO}\"}]}",
                                          echo.url, args),
                     0);
    unsigned admin = harness_daemon_admin_port(&d);
    ck_assert_int_eq(get_status(admin, "/readyz"), 200);
    ck_assert_int_eq(get_status(admin, "/healthz"), 200);

    double signalled = now_s();
    ck_assert_int_eq(kill(d.proc.pid, SIGTERM), 0);
    long ready = 200;
    while (ready == 200 && now_s() - signalled < 1.0)
        ready = get_status(admin, "/readyz");
    ck_assert_int_eq(ready, 503);
    ck_assert_msg(now_s() - signalled < 0.5, "readiness failed only %.2f s after SIGTERM",
                  now_s() - signalled);
    /* Still inside the delay: traffic that load balancers have not moved yet is served. */
    ck_assert_int_eq(get_status(d.port, "/during-drain-delay"), 200);
    ck_assert_msg(now_s() - signalled < 1.2, "the checks ran past the drain delay");
    ck_assert_msg(harness_wait_port_refused(d.port, 3000), "still accepting after the delay");
    ck_assert_msg(now_s() - signalled >= 1.4, "stopped accepting before the 1.5 s delay");
    ck_assert_msg(harness_process_wait(&d.proc, 5000), "still running after the drain");
    ck_assert_int_eq(harness_exit_code(&d.proc), 0);
    json_t *log = harness_log_line(&d, "path", "/during-drain-delay");
    ck_assert_ptr_nonnull(log);
    json_decref(log);
}
END_TEST

START_TEST(test_sigusr1_reopens_the_access_log)
{
    struct harness_daemon d;
    struct harness_response rs;
    char rotated[HARNESS_PATH_MAX + 8];

    start_daemon(&d, NULL);
    struct harness_request before = {.target = "/before-rotation"};
    harness_http(d.port, &before, &rs);
    ck_assert_int_eq(rs.status, 200);
    harness_response_free(&rs);
    json_t *line = harness_log_line(&d, "path", "/before-rotation");
    ck_assert_ptr_nonnull(line);
    json_decref(line);

    snprintf(rotated, sizeof(rotated), "%s.1", d.access_log);
    ck_assert_int_eq(rename(d.access_log, rotated), 0);
    ck_assert_int_eq(kill(d.proc.pid, SIGUSR1), 0);
    ck_assert_msg(harness_wait_file_exists(d.access_log, HARNESS_WAIT_MS),
                  "SIGUSR1 did not reopen (create) %s", d.access_log);

    struct harness_request after = {.target = "/after-rotation"};
    harness_http(d.port, &after, &rs);
    ck_assert_int_eq(rs.status, 200);
    harness_response_free(&rs);
    line = harness_log_line(&d, "path", "/after-rotation");
    ck_assert_msg(line != NULL, "the line after SIGUSR1 is not in the reopened file");
    json_decref(line);
    json_t *old = harness_jsonl_read(rotated);
    ck_assert_uint_eq(json_array_size(old), 1);
    ck_assert_str_eq(harness_json_str(json_array_get(old, 0), "path"), "/before-rotation");
    json_decref(old);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
}
END_TEST

/* HAProxy and nginx users send SIGUSR2 out of habit (a binary upgrade there); its default action
 * would kill the process. It is ignored with one diagnostic; the daemon keeps serving and still
 * stops cleanly. */
START_TEST(test_sigusr2_is_ignored_with_a_diagnostic)
{
    struct harness_daemon d;
    struct harness_response rs;
    struct harness_field_match m = {
        "message", "SIGUSR2 ignored (tracehop has no binary upgrade; SIGHUP reloads, SIGUSR1 "
                   "reopens the access log)"};

    start_daemon(&d, NULL);
    ck_assert_int_eq(kill(d.proc.pid, SIGUSR2), 0);
    json_t *line = harness_jsonl_wait_one(d.stderr_path, harness_match_field, &m);
    ck_assert_msg(line != NULL, "no 'SIGUSR2 ignored' diagnostic");
    ck_assert_str_eq(harness_json_str(line, "level"), "warn");
    json_decref(line);

    struct harness_request rq = {.target = "/after-sigusr2"};
    harness_http(d.port, &rq, &rs);
    ck_assert_msg(rs.status == 200, "status %ld after SIGUSR2: %s", rs.status, rs.error);
    harness_response_free(&rs);

    ck_assert_int_eq(kill(d.proc.pid, SIGTERM), 0);
    ck_assert_msg(harness_process_wait(&d.proc, HARNESS_WAIT_MS), "still running after SIGTERM");
    ck_assert_int_eq(harness_exit_code(&d.proc), 0);
}
END_TEST

/* --- configuration ----------------------------------------------------------------------- */

struct run_result {
    int exit_code;
    char *out, *err;
};

/* Run tracehop with args (and env_extra), wait up to 5 s, collect its output. */
static void run_tracehop(const char *work, const char *const *args, char *const env_extra[],
                         struct run_result *r)
{
    char out_path[HARNESS_PATH_MAX + 16], err_path[HARNESS_PATH_MAX + 16];
    char *argv[32];
    size_t argc = 0;
    struct harness_process p;
    static unsigned counter;

    snprintf(out_path, sizeof(out_path), "%s/run-%d-%u.out", work, (int)getpid(), ++counter);
    snprintf(err_path, sizeof(err_path), "%s/run-%d-%u.err", work, (int)getpid(), counter);
    argv[argc++] = getenv("TRACEHOP_BIN");
    ck_assert_msg(argv[0] != NULL, "TRACEHOP_BIN is not set");
    for (size_t i = 0; args[i] && argc < 31; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    ck_assert_int_eq(harness_spawn(&p, argv, out_path, err_path, env_extra), 0);
    if (!harness_process_wait(&p, 5000)) {
        harness_process_stop(&p, 1000);
        ck_abort_msg("tracehop %s did not exit within 5 s", args[0]);
    }
    r->exit_code = harness_exit_code(&p);
    r->out = harness_read_file(out_path, NULL);
    r->err = harness_read_file(err_path, NULL);
    ck_assert_ptr_nonnull(r->out);
    ck_assert_ptr_nonnull(r->err);
}

static void run_result_free(struct run_result *r)
{
    free(r->out);
    free(r->err);
}

static const struct {
    const char *config;
    const char *expected; /* in stderr */
} bad_configs[] = {
    {"{\"routes\": [{\"upstream\": \"ftp://files.example/\"}]}",
     "routes[0].upstream: unsupported scheme 'ftp'"},
    {"{\"routes\": [{\"upstream\": \"http://a.example\"},\n"
     "            {\"upstream\": \"http://b.example\", \"match\": {\"path_prefix\": \"api\"}}]}",
     "routes[1].match.path_prefix"},
    {"{\"limits\": {\"max_header_byts\": 4096}, \"routes\": [{\"upstream\": \"http://a:1\"}]}",
     "limits.max_header_byts"},
    {"{\"workers\": \"two\", \"routes\": [{\"upstream\": \"http://a:1\"}]}", "workers"},
    {"{\"trace\": {\"sampling_ratio\": 2}, \"routes\": [{\"upstream\": \"http://a:1\"}]}",
     "trace.sampling_ratio"},
    {"{\"listen\": \"nowhere\", \"routes\": [{\"upstream\": \"http://a:1\"}]}", "listen"},
    {"{\"routes\": [{\"name\": \"no-upstream\"}]}", "routes[0].upstream"},
    {"{\"routes\": [", "bad.json"},
    {"{\"log_level\": \"loud\", \"routes\": [{\"upstream\": \"http://a:1\"}]}", "log_level"},
};

START_TEST(test_check_config_names_the_bad_key)
{
    char work[HARNESS_PATH_MAX], path[HARNESS_PATH_MAX + 16];
    struct run_result r;

    ck_assert_int_eq(harness_tmpdir(work, sizeof(work)), 0);
    snprintf(path, sizeof(path), "%s/bad.json", work);
    ck_assert_int_eq(harness_write_file(path, bad_configs[_i].config), 0);
    const char *args[] = {"--check-config", "--config", path, NULL};
    run_tracehop(work, args, NULL, &r);
    ck_assert_msg(r.exit_code == 1, "exit code %d for a bad config", r.exit_code);
    ck_assert_msg(strstr(r.err, bad_configs[_i].expected) != NULL, "stderr does not name '%s':\n%s",
                  bad_configs[_i].expected, r.err);
    run_result_free(&r);
    harness_tmpdir_remove(work);
}
END_TEST

/* A config path from TRACEHOP_CONFIG that cannot be read names the variable (a stale variable is
 * otherwise hard to find); given by --config, the error is the path's alone. */
START_TEST(test_missing_config_file_names_its_source)
{
    char work[HARNESS_PATH_MAX], env[HARNESS_PATH_MAX + 48], path[HARNESS_PATH_MAX + 32];
    struct run_result r;

    ck_assert_int_eq(harness_tmpdir(work, sizeof(work)), 0);
    snprintf(path, sizeof(path), "%s/missing.json", work);
    snprintf(env, sizeof(env), "TRACEHOP_CONFIG=%s", path);
    char *const env_extra[] = {env, NULL};
    const char *args[] = {"--check-config", NULL};
    run_tracehop(work, args, env_extra, &r);
    ck_assert_int_eq(r.exit_code, 1);
    char expected[HARNESS_PATH_MAX + 96];
    snprintf(expected, sizeof(expected), "TRACEHOP_CONFIG: %s: No such file or directory", path);
    ck_assert_msg(strstr(r.err, expected), "%s", r.err);
    run_result_free(&r);

    const char *flag_args[] = {"--check-config", "--config", path, NULL};
    run_tracehop(work, flag_args, NULL, &r);
    ck_assert_int_eq(r.exit_code, 1);
    ck_assert_msg(strstr(r.err, expected + strlen("TRACEHOP_CONFIG: ")) &&
                      !strstr(r.err, "TRACEHOP_CONFIG"),
                  "%s", r.err);
    run_result_free(&r);
    harness_tmpdir_remove(work);
}
END_TEST

START_TEST(test_bad_config_exits_1_before_listening)
{
    char work[HARNESS_PATH_MAX], path[HARNESS_PATH_MAX + 16], log[HARNESS_PATH_MAX + 16];
    struct run_result r;

    ck_assert_int_eq(harness_tmpdir(work, sizeof(work)), 0);
    snprintf(path, sizeof(path), "%s/bad.json", work);
    snprintf(log, sizeof(log), "%s/access.log", work);
    ck_assert_int_eq(harness_write_file(path, bad_configs[0].config), 0);
    const char *args[] = {"--config",       path,  "--listen", "127.0.0.1:0", "--access-log", log,
                          "--admin-listen", "off", NULL};
    run_tracehop(work, args, NULL, &r);
    ck_assert_int_eq(r.exit_code, 1);
    ck_assert_msg(strstr(r.err, bad_configs[0].expected) != NULL, "stderr:\n%s", r.err);
    ck_assert_msg(strstr(r.err, "listening on") == NULL, "it listened before failing:\n%s", r.err);
    run_result_free(&r);
    harness_tmpdir_remove(work);
}
END_TEST

/*
 * admin.listen on a listen address: both sockets use SO_REUSEPORT, so without the check the
 * kernel would split connections between the proxy and the admin endpoints. --check-config
 * and the start refuse it, naming both keys, before anything listens.
 */
START_TEST(test_admin_overlapping_listen_is_refused)
{
    char work[HARNESS_PATH_MAX], path[HARNESS_PATH_MAX + 16], config[512], expected[1200];
    struct run_result r;
    unsigned port = harness_closed_port();

    ck_assert_int_eq(harness_tmpdir(work, sizeof(work)), 0);
    snprintf(path, sizeof(path), "%s/overlap.json", work);
    snprintf(config, sizeof(config),
             "{\"listen\": \"0.0.0.0:%u\", \"admin\": {\"listen\": \"127.0.0.1:%u\"},"
             " \"routes\": [{\"upstream\": \"http://127.0.0.1:9\"}]}",
             port, port);
    ck_assert_int_eq(harness_write_file(path, config), 0);
    snprintf(expected, sizeof(expected), "admin.listen: 127.0.0.1:%u overlaps listen (0.0.0.0:%u)",
             port, port);

    const char *check[] = {"--check-config", "--config", path, NULL};
    run_tracehop(work, check, NULL, &r);
    ck_assert_msg(r.exit_code == 1, "--check-config: exit code %d", r.exit_code);
    ck_assert_msg(strstr(r.err, expected) != NULL, "stderr does not say '%s':\n%s", expected,
                  r.err);
    run_result_free(&r);

    const char *start[] = {"--config", path, "--access-log", "-", NULL};
    run_tracehop(work, start, NULL, &r);
    ck_assert_msg(r.exit_code == 1, "start: exit code %d", r.exit_code);
    ck_assert_msg(strstr(r.err, expected) != NULL, "stderr does not say '%s':\n%s", expected,
                  r.err);
    ck_assert_msg(strstr(r.err, "listening on") == NULL, "it listened before failing:\n%s", r.err);
    run_result_free(&r);

    /* The flag feeds the same check. */
    snprintf(config, sizeof(config), "127.0.0.1:%u", port);
    const char *flag[] = {"--check-config", "--upstream", "http://127.0.0.1:9",
                          "--listen",       config,       "--admin-listen",
                          config,           NULL};
    run_tracehop(work, flag, NULL, &r);
    ck_assert_int_eq(r.exit_code, 1);
    snprintf(expected, sizeof(expected), "--admin-listen: %s overlaps --listen (%s)", config,
             config);
    ck_assert_msg(strstr(r.err, expected) != NULL, "stderr:\n%s", r.err);
    run_result_free(&r);
    harness_tmpdir_remove(work);
}
END_TEST

/* Probable mistakes are warnings: --check-config prints them on stderr (a JSON line when not on
 * a terminal) and still exits 0; so do unknown TRACEHOP_* variables and a flag over the file. */
START_TEST(test_check_config_warns_and_exits_0)
{
    char work[HARNESS_PATH_MAX], path[HARNESS_PATH_MAX + 16];
    struct run_result r;

    ck_assert_int_eq(harness_tmpdir(work, sizeof(work)), 0);
    snprintf(path, sizeof(path), "%s/warn.json", work);
    ck_assert_int_eq(harness_write_file(path,
                                        "{\"service_name\": \"file-svc\", \"routes\": ["
                                        "{\"name\": \"a\", \"upstream\": \"http://127.0.0.1:9\"},"
                                        "{\"name\": \"a\", \"upstream\": \"http://127.0.0.1:9\","
                                        " \"match\": {\"path_prefix\": \"/api\"}}]}"),
                     0);
    const char *args[] = {"--check-config", "--config", path, "--service-name", "flag-svc", NULL};
    char *env[] = {"TRACEHOP_LISTN=127.0.0.1:1", NULL};
    run_tracehop(work, args, env, &r);
    ck_assert_msg(r.exit_code == 0, "exit code %d; stderr:\n%s", r.exit_code, r.err);
    static const char *const said[] = {
        "\"level\":\"warn\",\"message\":\"config: routes[1] ('a'): never matches",
        "\"level\":\"warn\",\"message\":\"config: routes[1].name: 'a' is also the name of "
        "routes[0]",
        "\"level\":\"warn\",\"message\":\"config: TRACEHOP_LISTN: unknown variable, ignored (did "
        "you mean TRACEHOP_LISTEN?)",
        "\"message\":\"config: service_name: file value file-svc overridden by --service-name "
        "(flag-svc)",
    };
    for (size_t i = 0; i < sizeof(said) / sizeof(said[0]); i++)
        ck_assert_msg(strstr(r.err, said[i]) != NULL, "stderr does not say '%s':\n%s", said[i],
                      r.err);
    json_t *printed = json_loads(r.out, 0, NULL);
    ck_assert_msg(printed != NULL, "--check-config did not print JSON:\n%s", r.out);
    json_decref(printed);
    run_result_free(&r);
    harness_tmpdir_remove(work);
}
END_TEST

/* A bad command line is one line and a hint, not the whole usage text; exit 2. */
START_TEST(test_bad_option_is_one_line)
{
    static const struct {
        const char *arg, *err;
    } cases[] = {
        {"--bogus-flag", "tracehop: unknown option '--bogus-flag'\nTry 'tracehop --help'.\n"},
        {"--bo\033[2Jgus", "tracehop: unknown option '--bo\\x1b[2Jgus'\nTry 'tracehop --help'.\n"},
        {"--listn", "tracehop: unknown option '--listn' (did you mean --listen?)\n"
                    "Try 'tracehop --help'.\n"},
        {"--config", "tracehop: option '--config' needs a value\nTry 'tracehop --help'.\n"},
        {"stray", "tracehop: unexpected argument 'stray'\nTry 'tracehop --help'.\n"},
        {"--check-config=yes",
         "tracehop: option '--check-config' takes no value\nTry 'tracehop --help'.\n"},
    };
    char work[HARNESS_PATH_MAX];
    struct run_result r;

    ck_assert_int_eq(harness_tmpdir(work, sizeof(work)), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[] = {cases[i].arg, NULL};
        run_tracehop(work, args, NULL, &r);
        ck_assert_msg(r.exit_code == 2, "%s: exit code %d", cases[i].arg, r.exit_code);
        ck_assert_str_eq(r.err, cases[i].err);
        ck_assert_str_eq(r.out, "");
        run_result_free(&r);
    }
    harness_tmpdir_remove(work);
}
END_TEST

/*
 * `tracehop --check-config` with stderr on a pseudo-terminal, as a person runs it; returns what
 * it wrote there and its exit code. A few hundred bytes: they fit the terminal's buffer.
 */
static char *check_config_on_a_terminal(const char *config_path, int *exit_code)
{
    const char *bin = getenv("TRACEHOP_BIN");
    int master, slave, status;
    char *text = calloc(1, 65536);
    size_t len = 0;
    ssize_t n;

    ck_assert_ptr_nonnull(bin);
    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDOUT_FILENO);
        dup2(slave, STDERR_FILENO);
        execl(bin, bin, "--check-config", "--config", config_path, (char *)NULL);
        _exit(127);
    }
    close(slave);
    /* Once the child has exited, reading the master drains it and then fails with EIO. */
    while (len < 65535 && (n = read(master, text + len, 65535 - len)) > 0)
        len += (size_t)n;
    close(master);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return text;
}

/* On a terminal the reports are text, not JSON lines, and what the config said is shown, not
 * obeyed: a route name holding an escape sequence cannot clear the screen of whoever checks it. */
START_TEST(test_reports_on_a_terminal_are_text_with_controls_shown)
{
    char work[HARNESS_PATH_MAX], path[HARNESS_PATH_MAX + 16];
    int exit_code;

    ck_assert_int_eq(harness_tmpdir(work, sizeof(work)), 0);
    snprintf(path, sizeof(path), "%s/evil.json", work);
    ck_assert_int_eq(harness_write_file(path, "{\"routes\": [{\"name\": \"evil\\u001b[2J\", "
                                              "\"match\": {\"path_prefix\": \"/a\"}, "
                                              "\"upstream\": \"http://a:1\"},\n"
                                              "            {\"name\": \"evil\\u001b[2J\", "
                                              "\"upstream\": \"http://a:1\"}]}\n"),
                     0);
    char *err = check_config_on_a_terminal(path, &exit_code);
    ck_assert_int_eq(exit_code, 0);
    ck_assert_msg(strstr(err, "tracehop: config: warning: routes[1].name: 'evil\\x1b[2J' is also "
                              "the name of routes[0]"),
                  "%s", err);
    ck_assert_msg(!strchr(err, '\033'), "a raw escape reached the terminal: %s", err);
    ck_assert_msg(!strstr(err, "{\"time\""), "JSON on a terminal: %s", err);
    free(err);

    ck_assert_int_eq(harness_write_file(path, "{\"workers\": \"4\", \"routes\": []}"), 0);
    err = check_config_on_a_terminal(path, &exit_code);
    ck_assert_int_eq(exit_code, 1);
    ck_assert_msg(strstr(err, "tracehop: config: workers: expected an integer in 1..64, found a "
                              "string (\"4\")"),
                  "%s", err);
    free(err);
    harness_tmpdir_remove(work);
}
END_TEST

START_TEST(test_check_config_prints_a_good_config_as_json)
{
    char work[HARNESS_PATH_MAX], path[HARNESS_PATH_MAX + 16];
    struct run_result r;

    ck_assert_int_eq(harness_tmpdir(work, sizeof(work)), 0);
    snprintf(path, sizeof(path), "%s/good.json", work);
    ck_assert_int_eq(harness_write_file(path,
                                        "{\"service_name\": \"checkout\",\n"
                                        " \"limits\": {\"max_header_bytes\": 4096},\n"
                                        " \"routes\": [{\"name\": \"api\",\n"
                                        "              \"match\": {\"path_prefix\": \"/api\"},\n"
                                        "              \"upstream\": \"http://127.0.0.1:9\",\n"
                                        "              \"timeout_ms\": 1500}]}\n"),
                     0);
    const char *args[] = {"--check-config", "--config", path, NULL};
    run_tracehop(work, args, NULL, &r);
    ck_assert_msg(r.exit_code == 0, "exit code %d for a good config; stderr:\n%s", r.exit_code,
                  r.err);
    json_t *printed = json_loads(r.out, 0, NULL);
    ck_assert_msg(printed != NULL, "--check-config did not print JSON:\n%s", r.out);
    ck_assert_str_eq(harness_json_str(printed, "service_name"), "checkout");
    json_t *route = json_array_get(json_object_get(printed, "routes"), 0);
    ck_assert_ptr_nonnull(route);
    ck_assert_str_eq(harness_json_str(route, "name"), "api");
    ck_assert_str_eq(harness_json_str(route, "upstream"), "http://127.0.0.1:9");
    ck_assert_int_eq(harness_json_int(route, "timeout_ms", 0), 1500);
    ck_assert_str_eq(harness_json_str(json_object_get(route, "match"), "path_prefix"), "/api");
    ck_assert_int_eq(harness_json_int(json_object_get(printed, "limits"), "max_header_bytes", 0),
                     4096);
    json_decref(printed);
    run_result_free(&r);
    harness_tmpdir_remove(work);
}
END_TEST

START_TEST(test_flags_win_over_environment_over_file)
{
    char work[HARNESS_PATH_MAX], path[HARNESS_PATH_MAX + 16];
    char env_service[] = "TRACEHOP_SERVICE_NAME=from-env";
    char *env_extra[] = {env_service, NULL};
    struct run_result r;

    ck_assert_int_eq(harness_tmpdir(work, sizeof(work)), 0);
    snprintf(path, sizeof(path), "%s/c.json", work);
    ck_assert_int_eq(harness_write_file(path, "{\"service_name\": \"from-file\", \"routes\": "
                                              "[{\"upstream\": \"http://127.0.0.1:9\"}]}"),
                     0);
    static const struct {
        bool flag, env;
        const char *expected;
    } cases[] = {{true, true, "from-flag"}, {false, true, "from-env"}, {false, false, "from-file"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *with_flag[] = {"--check-config", "--config",  path,
                                   "--service-name", "from-flag", NULL};
        const char *without_flag[] = {"--check-config", "--config", path, NULL};
        run_tracehop(work, cases[i].flag ? with_flag : without_flag,
                     cases[i].env ? env_extra : NULL, &r);
        ck_assert_int_eq(r.exit_code, 0);
        json_t *printed = json_loads(r.out, 0, NULL);
        ck_assert_ptr_nonnull(printed);
        ck_assert_msg(strcmp(harness_json_str(printed, "service_name"), cases[i].expected) == 0,
                      "flag=%d env=%d: service_name '%s', expected '%s'", cases[i].flag,
                      cases[i].env, harness_json_str(printed, "service_name"), cases[i].expected);
        json_decref(printed);
        run_result_free(&r);
    }
    harness_tmpdir_remove(work);
}
END_TEST

/* log_level: flag over TRACEHOP_LOG_LEVEL over the file; a bad value names where it came from. */
START_TEST(test_log_level_precedence_and_errors)
{
    char work[HARNESS_PATH_MAX], path[HARNESS_PATH_MAX + 16];
    char env_level[] = "TRACEHOP_LOG_LEVEL=error", env_bad[] = "TRACEHOP_LOG_LEVEL=loud";
    char *env_extra[] = {env_level, NULL}, *env_extra_bad[] = {env_bad, NULL};
    struct run_result r;

    ck_assert_int_eq(harness_tmpdir(work, sizeof(work)), 0);
    snprintf(path, sizeof(path), "%s/c.json", work);
    ck_assert_int_eq(harness_write_file(path, "{\"log_level\": \"warn\", \"routes\": "
                                              "[{\"upstream\": \"http://127.0.0.1:9\"}]}"),
                     0);
    const char *with_flag[] = {"--check-config", "--config", path, "--log-level", "debug", NULL};
    const char *without_flag[] = {"--check-config", "--config", path, NULL};
    static const struct {
        bool flag, env;
        const char *expected;
    } cases[] = {{true, true, "debug"}, {false, true, "error"}, {false, false, "warn"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_tracehop(work, cases[i].flag ? with_flag : without_flag,
                     cases[i].env ? env_extra : NULL, &r);
        ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
        json_t *printed = json_loads(r.out, 0, NULL);
        ck_assert_ptr_nonnull(printed);
        ck_assert_str_eq(harness_json_str(printed, "log_level"), cases[i].expected);
        json_decref(printed);
        run_result_free(&r);
    }

    run_tracehop(work, without_flag, env_extra_bad, &r);
    ck_assert_int_eq(r.exit_code, 1);
    ck_assert_msg(strstr(r.err, "TRACEHOP_LOG_LEVEL: 'loud'") != NULL, "stderr:\n%s", r.err);
    run_result_free(&r);
    const char *bad_flag[] = {"--check-config", "--config", path, "--log-level", "verbose", NULL};
    run_tracehop(work, bad_flag, NULL, &r);
    ck_assert_int_eq(r.exit_code, 1);
    ck_assert_msg(strstr(r.err, "--log-level: 'verbose'") != NULL, "stderr:\n%s", r.err);
    run_result_free(&r);
    harness_tmpdir_remove(work);
}
END_TEST

/* --- help and version -------------------------------------------------------------------- */

/* `tracehop help` is --help and `tracehop version` is --version, exit 0; --help names the logs
 * subcommand; --version names the libcurl this process loads too, with its TLS backend. */
START_TEST(test_help_and_version)
{
    char work[HARNESS_PATH_MAX], expected[256];
    struct run_result help, help_word, version, version_word, logs_help;
    const char *help_args[] = {"--help", NULL}, *help_word_args[] = {"help", NULL};
    const char *version_args[] = {"--version", NULL}, *version_word_args[] = {"version", NULL};
    const char *logs_help_args[] = {"logs", "--help", NULL};
    const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);

    ck_assert_int_eq(harness_tmpdir(work, sizeof(work)), 0);
    run_tracehop(work, help_args, NULL, &help);
    run_tracehop(work, help_word_args, NULL, &help_word);
    run_tracehop(work, version_args, NULL, &version);
    run_tracehop(work, version_word_args, NULL, &version_word);
    run_tracehop(work, logs_help_args, NULL, &logs_help);

    ck_assert_int_eq(help.exit_code, 0);
    ck_assert_int_eq(help_word.exit_code, 0);
    ck_assert_str_eq(help_word.out, help.out);
    ck_assert_msg(strstr(help.out, "tracehop logs [options] FILE...") != NULL, "%s", help.out);
    ck_assert_msg(strstr(help.out, "--log-level") != NULL, "%s", help.out);
    ck_assert_int_eq(logs_help.exit_code, 0);
    ck_assert_msg(logs_help.out[0] != '\0', "tracehop logs --help printed nothing");

    ck_assert_int_eq(version.exit_code, 0);
    ck_assert_int_eq(version_word.exit_code, 0);
    ck_assert_str_eq(version_word.out, version.out);
    ck_assert_msg(strncmp(version.out, "tracehop ", 9) == 0, "%s", version.out);
    snprintf(expected, sizeof(expected), "libcurl %s (TLS: %s)\n", curl->version,
             curl->ssl_version ? curl->ssl_version : "none");
    ck_assert_msg(strstr(version.out, expected) != NULL, "no '%s' in:\n%s", expected, version.out);
    ck_assert_msg(strstr(version.out, "\nsystemd support: yes") != NULL ||
                      strstr(version.out, "\nsystemd support: no") != NULL,
                  "%s", version.out);
    ck_assert_msg(strstr(version.out, "\nlibmicrohttpd ") != NULL, "%s", version.out);
    ck_assert_msg(strstr(version.out, "\njansson ") != NULL, "%s", version.out);
    ck_assert_msg(strstr(version.out, "\nzlib ") != NULL, "%s", version.out);

    run_result_free(&help);
    run_result_free(&help_word);
    run_result_free(&version);
    run_result_free(&version_word);
    run_result_free(&logs_help);
    harness_tmpdir_remove(work);
}
END_TEST

/* NOTIFY_SOCKET set (systemd's Type=notify): a build without systemd support warns at start that
 * the readiness notification will never come; a build with it sends one and does not warn. */
START_TEST(test_notify_socket_without_systemd_support_warns)
{
    char work[HARNESS_PATH_MAX], notify[HARNESS_PATH_MAX + 32];
    const char *version_args[] = {"--version", NULL};
    struct run_result version;
    struct harness_daemon d;
    struct harness_field_match ready = {"message", "tracehop "};

    ck_assert_int_eq(harness_tmpdir(work, sizeof(work)), 0);
    run_tracehop(work, version_args, NULL, &version);
    bool with_systemd = strstr(version.out, "\nsystemd support: yes") != NULL;
    run_result_free(&version);

    snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s/no-such.sock", work);
    char *env_extra[] = {notify, NULL};
    ck_assert_int_eq(harness_daemon_start_env(&d, work,
                                              "{\"limits\": {\"drain_delay_ms\": 0}, \"routes\": "
                                              "[{\"upstream\": \"http://127.0.0.1:9\"}]}",
                                              "", NULL, env_extra),
                     0);
    json_t *line = harness_jsonl_wait_one(d.stderr_path, harness_match_field_prefix, &ready);
    ck_assert_msg(line != NULL, "no readiness line");
    json_decref(line);
    char *err = harness_read_file(d.stderr_path, NULL);
    ck_assert_ptr_nonnull(err);
    bool warned = strstr(err, "NOTIFY_SOCKET is set but this tracehop was built without systemd "
                              "support: Type=notify will time out") != NULL;
    ck_assert_msg(warned == !with_systemd, "systemd support %s, warning %s:\n%s",
                  with_systemd ? "yes" : "no", warned ? "given" : "missing", err);
    free(err);
    ck_assert_int_eq(harness_daemon_stop(&d), 0);
    harness_tmpdir_remove(work);
}
END_TEST

static Suite *lifecycle_suite(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("signals");

    tcase_add_unchecked_fixture(tc, signals_setup, signals_teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_test(tc, test_sigterm_lets_in_flight_request_finish_and_refuses_new_connections);
    tcase_add_loop_test(tc, test_stop_signal_when_idle_exits_0_promptly, 0,
                        (int)(sizeof(stop_signals) / sizeof(stop_signals[0])));
    tcase_add_test(tc, test_drain_timeout_bounds_the_exit);
    tcase_add_test(tc, test_sigterm_fails_readiness_at_once_and_serves_through_the_drain_delay);
    tcase_add_test(tc, test_sigusr1_reopens_the_access_log);
    tcase_add_test(tc, test_sigusr2_is_ignored_with_a_diagnostic);
    suite_add_tcase(s, tc);

    tc = tcase_create("config");
    harness_tcase_timeout(tc, 60);
    tcase_add_loop_test(tc, test_check_config_names_the_bad_key, 0,
                        (int)(sizeof(bad_configs) / sizeof(bad_configs[0])));
    tcase_add_test(tc, test_bad_config_exits_1_before_listening);
    tcase_add_test(tc, test_check_config_prints_a_good_config_as_json);
    tcase_add_test(tc, test_admin_overlapping_listen_is_refused);
    tcase_add_test(tc, test_check_config_warns_and_exits_0);
    tcase_add_test(tc, test_bad_option_is_one_line);
    tcase_add_test(tc, test_missing_config_file_names_its_source);
    tcase_add_test(tc, test_reports_on_a_terminal_are_text_with_controls_shown);
    tcase_add_test(tc, test_flags_win_over_environment_over_file);
    tcase_add_test(tc, test_log_level_precedence_and_errors);
    tcase_add_test(tc, test_help_and_version);
    tcase_add_test(tc, test_notify_socket_without_systemd_support_warns);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(lifecycle_suite());
}
