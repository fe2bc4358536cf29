/* SPDX-License-Identifier: MIT */
/*
 * capture-export OUT.json SCRIPT.mjs: record one real export body of tracehop, then run
 * `node SCRIPT.mjs OUT.json` (compare-with-js-sdk.mjs) on it and exit with node's status.
 *
 * Why the real daemon and not the encoder alone: what is compared with OpenTelemetry's JavaScript
 * SDK is then exactly what goes on the wire (the body the exporter built around the encoder's
 * spans, its resource and scope), through the integration harness (harness.h): an echo upstream,
 * the harness's OTLP receiver, tracehop with a 60 s schedule, four requests that between them use
 * every kind of span (a continued trace with tracestate, query and User-Agent; a new trace; an
 * upstream 503 with a request body; an upstream that refuses connections), then SIGTERM, which
 * flushes the four spans in one request.
 *
 * Exit status: node's, or 1 when the capture failed or node is not on PATH (a failure, never a
 * skip: CI installs nodejs and runs `npm ci` in tests/otlp).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct harness_echo echo;
static struct harness_otlp *rx;
static struct harness_daemon daemon_;
static char dir[HARNESS_PATH_MAX];

static void cleanup(void)
{
    if (daemon_.proc.pid > 0 && !daemon_.proc.reaped)
        harness_daemon_stop(&daemon_);
    if (echo.proc.pid > 0)
        harness_echo_stop(&echo);
    harness_otlp_stop(rx);
    rx = NULL;
    if (dir[0])
        harness_tmpdir_remove(dir);
    dir[0] = '\0';
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("capture-export: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (daemon_.stderr_path[0])
        harness_daemon_dump_stderr(&daemon_);
    cleanup();
    exit(1);
}

static void request(const char *method, const char *target, const char *const *headers,
                    const char *body, long want_status)
{
    struct harness_request rq = {.method = method,
                                 .target = target,
                                 .headers = headers,
                                 .body = body,
                                 .body_len = body ? strlen(body) : 0};
    struct harness_response rs;
    harness_http(daemon_.port, &rq, &rs);
    if (rs.result != CURLE_OK || rs.status != want_status)
        die("%s %s: %s (status %ld, expected %ld)", method ? method : "GET", target, rs.error,
            rs.status, want_status);
    harness_response_free(&rs);
}

int main(int argc, char **argv)
{
    char config[4096], trace_id[33], parent_id[17], tp[96];

    if (argc != 3) {
        fprintf(stderr, "usage: capture-export OUT.json SCRIPT.mjs\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    if (harness_tmpdir(dir, sizeof(dir)) < 0)
        die("no temporary directory");
    if (harness_echo_start(&echo, dir, false) < 0)
        die("the echo upstream did not start");
    if (!(rx = harness_otlp_start()))
        die("the OTLP receiver did not start");
    snprintf(config, sizeof(config),
             "{\"service_name\": \"checkout\", \"access_log\": {\"redact\": [\"token\"]},"
             " \"limits\": {\"drain_delay_ms\": 0},"
             " \"routes\": ["
             "  {\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"}, \"upstream\": \"%s\"},"
             "  {\"name\": \"status\", \"match\": {\"path_prefix\": \"/status/\"},"
             "   \"upstream\": \"%s\"},"
             "  {\"name\": \"dead\", \"match\": {\"path_prefix\": \"/dead\"},"
             "   \"upstream\": \"http://127.0.0.1:%u\", \"connect_timeout_ms\": 1000}],"
             " \"otlp\": {\"endpoint\": \"%s\","
             "  \"resource_attributes\": {\"deployment.environment.name\": \"test\"},"
             "  \"batch\": {\"schedule_delay_ms\": 60000}}}",
             echo.url, echo.url, harness_closed_port(), harness_otlp_url(rx));
    if (harness_daemon_start(&daemon_, dir, config, NULL, NULL) < 0)
        die("tracehop did not start");

    harness_random_hex(trace_id, 32);
    harness_random_hex(parent_id, 16);
    snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-01", trace_id, parent_id);
    const char *continued[] = {tp, "tracestate: congo=t61rcWkgMzE", "User-Agent: capture-export/1",
                               NULL};
    request(NULL, "/api/items/1?token=s3cret&page=2", continued, NULL, 200);
    request(NULL, "/api/new", NULL, NULL, 200);
    request("POST", "/status/503", NULL, "{\"order\": 42}", 503);
    request(NULL, "/dead/end", NULL, NULL, 502);

    if (kill(daemon_.proc.pid, SIGTERM) < 0 || !harness_process_wait(&daemon_.proc, 15000))
        die("tracehop did not exit after SIGTERM");
    if (harness_otlp_wait(rx, 1, HARNESS_WAIT_MS) < 1)
        die("no export request arrived");
    const struct harness_otlp_request *rq = harness_otlp_request(rx, 0);
    if (!rq->json)
        die("the export body is not JSON: %s", rq->error);
    json_t *spans = harness_otlp_request_spans(rq);
    size_t n = json_array_size(spans);
    json_decref(spans);
    if (n != 4)
        die("the export request holds %zu spans, expected the 4 flushed on SIGTERM", n);
    if (harness_write_file(argv[1], rq->body) < 0)
        die("cannot write %s: %s", argv[1], strerror(errno));
    cleanup();
    curl_global_cleanup();

    char *node_argv[] = {"node", argv[2], argv[1], NULL};
    fflush(NULL);
    execvp("node", node_argv);
    fprintf(stderr,
            "capture-export: cannot run node (%s): install nodejs and npm (tests/install-deps), "
            "then `npm ci` in tests/otlp\n",
            strerror(errno));
    return 1;
}
