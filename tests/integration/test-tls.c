/* SPDX-License-Identifier: MIT */
/*
 * HTTPS upstreams with a route's TLS settings (docs/configuration.md "tls", docs/security.md):
 * tracehop in front of real TLS servers (tls-upstream.py, Python's ssl module) whose
 * certificates the suite generates with the openssl command at start: a CA and a second,
 * unrelated one, a server certificate for localhost/127.0.0.1 and one for api.internal signed by
 * the CA, and a client CA with a client certificate.
 *
 * A TLS failure is a 502 with error and outcome upstream_tls_failed, never
 * upstream_connect_failed, and its diagnostic carries libcurl's reason. Also here: the errno
 * text in the diagnostic of a refused connection, and the Host header towards the upstream (as
 * the client sent it, or what set_request_headers says).
 */
#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"

static char certs[HARNESS_PATH_MAX]; /* the generated certificates, for the whole suite */
static char dir[HARNESS_PATH_MAX];   /* one test's servers and daemon */
static struct harness_helper upstream;
static struct harness_daemon proxy;

/* --- certificates (unchecked fixture: once) -------------------------------------------------- */

static const char make_certs[] =
    "set -e; cd \"$1\"\n"
    "K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
    "ca() { openssl req -x509 $K -keyout $1.key -out $1.pem -days 2 -subj /CN=$1; }\n"
    "leaf() {\n"
    "  printf 'subjectAltName=%s\\n' \"$3\" > $1.ext\n"
    "  openssl req $K -keyout $1.key -out $1.csr -subj /CN=$1\n"
    "  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -out $1.pem"
    " -days 2 -extfile $1.ext\n"
    "}\n"
    "ca ca; ca other-ca; ca client-ca\n"
    "leaf localhost ca DNS:localhost,IP:127.0.0.1\n"
    "leaf api ca DNS:api.internal\n"
    "leaf client client-ca DNS:client\n";

static void suite_setup(void)
{
    char out[HARNESS_PATH_MAX + 16];
    struct harness_process p;

    ck_assert_int_eq(harness_tmpdir(certs, sizeof(certs)), 0);
    snprintf(out, sizeof(out), "%s/openssl.log", certs);
    char *argv[] = {"/bin/sh", "-c", (char *)make_certs, "make-certs", certs, NULL};
    ck_assert_int_eq(harness_spawn(&p, argv, out, out, NULL), 0);
    ck_assert_msg(harness_process_wait(&p, 60000), "generating the certificates took too long");
    if (harness_exit_code(&p) != 0) {
        char *log = harness_read_file(out, NULL);
        ck_abort_msg("generating the certificates failed:\n%s", log ? log : "");
    }
}

static void suite_teardown(void)
{
    harness_tmpdir_remove(certs);
}

/* --- per test ----------------------------------------------------------------------------- */

static void setup(void)
{
    ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
    upstream = (struct harness_helper){0};
    proxy = (struct harness_daemon){0};
}

static void teardown(void)
{
    if (proxy.proc.pid > 0)
        harness_daemon_stop(&proxy);
    if (upstream.proc.pid > 0)
        harness_helper_stop(&upstream);
    harness_tmpdir_remove(dir);
}

static void format(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void format(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && (size_t)n < size, "buffer too small for '%s'", fmt);
}

/* A certificate file of the suite: "<certs>/<name>.pem" (or .key). */
static const char *cert_path(const char *name, const char *ext)
{
    static char paths[8][HARNESS_PATH_MAX + 32];
    static unsigned next;
    char *p = paths[next++ % 8];
    format(p, sizeof(paths[0]), "%s/%s.%s", certs, name, ext);
    return p;
}

/* Start the TLS upstream with the certificate `name`; client_ca demands mTLS, max_tls "1.2"
 * refuses TLS 1.3 (NULL: neither). */
static void start_upstream(const char *name, const char *client_ca, const char *max_tls)
{
    const char *script = getenv("TLS_UPSTREAM");
    ck_assert_msg(script != NULL, "TLS_UPSTREAM is not set (meson sets it)");
    char cert[HARNESS_PATH_MAX + 32], key[HARNESS_PATH_MAX + 32], ca[HARNESS_PATH_MAX + 32];
    format(cert, sizeof(cert), "%s", cert_path(name, "pem"));
    format(key, sizeof(key), "%s", cert_path(name, "key"));
    char *argv[12] = {"/usr/bin/python3", (char *)script, "--cert", cert, "--key", key};
    size_t n = 6;
    if (client_ca) {
        format(ca, sizeof(ca), "%s", cert_path(client_ca, "pem"));
        argv[n++] = "--client-ca";
        argv[n++] = ca;
    }
    if (max_tls) {
        argv[n++] = "--max-tls";
        argv[n++] = (char *)max_tls;
    }
    ck_assert_int_eq(harness_helper_start(&upstream, dir, "tls-upstream", argv), 0);
}

/* Start tracehop with one route "tls" to https://HOST:PORT of the upstream and the given `tls`
 * object (NULL: none) and extra route keys (NULL: none). */
static void start_proxy(const char *host, const char *tls, const char *extra)
{
    char config[4096];
    format(config, sizeof(config),
           "{\"routes\": [{\"name\": \"tls\", \"upstream\": \"https://%s:%u\"%s%s%s%s}]}", host,
           upstream.port, tls ? ", \"tls\": " : "", tls ? tls : "", extra ? ", " : "",
           extra ? extra : "");
    ck_assert_int_eq(harness_daemon_start(&proxy, dir, config, NULL, NULL), 0);
}

/* `"ca_file": "<certs>/NAME.pem"` */
static const char *ca_file(const char *name)
{
    static char text[HARNESS_PATH_MAX + 64];
    format(text, sizeof(text), "\"ca_file\": \"%s\"", cert_path(name, "pem"));
    return text;
}

static void get(const char *target, const char *const *headers, struct harness_response *rs)
{
    struct harness_request rq = {.target = target, .headers = headers};
    harness_http(proxy.port, &rq, rs);
}

/* The upstream answered: 200 and its description of the request (a new reference). */
static json_t *assert_upstream_answered(const struct harness_response *rs, const char *what)
{
    ck_assert_msg(rs->result == CURLE_OK && rs->status == 200, "%s: expected 200, got %ld (%s) %s",
                  what, rs->status, rs->error, rs->body ? rs->body : "");
    json_t *seen = harness_response_json(rs);
    ck_assert_msg(seen != NULL, "%s: not the upstream's JSON: %s", what, rs->body);
    return seen;
}

/* The first value of header `name` the upstream saw, or NULL. */
static const char *seen_header(json_t *seen, const char *name)
{
    json_t *headers = json_object_get(seen, "headers"), *pair;
    size_t i;
    json_array_foreach(headers, i, pair)
    {
        if (strcasecmp(json_string_value(json_array_get(pair, 0)), name) == 0)
            return json_string_value(json_array_get(pair, 1));
    }
    return NULL;
}

/* tracehop's own 502 upstream_tls_failed: body, access-log outcome, and a diagnostic that
 * names the upstream and holds libcurl's `reason`. */
static void assert_tls_failed(const struct harness_response *rs, const char *what,
                              const char *reason)
{
    ck_assert_msg(rs->result == CURLE_OK && rs->status == 502, "%s: expected 502, got %ld (%s)",
                  what, rs->status, rs->error);
    json_t *body = harness_response_json(rs);
    ck_assert_msg(body != NULL, "%s: the 502 body is not JSON: %s", what, rs->body);
    ck_assert_str_eq(harness_json_str(body, "error"), "upstream_tls_failed");
    json_decref(body);

    json_t *log = harness_log_line(&proxy, "outcome", "upstream_tls_failed");
    ck_assert_msg(log != NULL, "%s: no access-log line with outcome upstream_tls_failed", what);
    ck_assert_int_eq(harness_json_int(log, "status", 0), 502);
    json_decref(log);

    char prefix[128];
    format(prefix, sizeof(prefix), "upstream https://");
    struct harness_field_match m = {"message", prefix};
    json_t *diag = harness_jsonl_wait_one(proxy.stderr_path, harness_match_field_prefix, &m);
    ck_assert_msg(diag != NULL, "%s: no diagnostic for the failed upstream", what);
    const char *message = harness_json_str(diag, "message");
    ck_assert_msg(strstr(message, reason) != NULL, "%s: diagnostic '%s' lacks '%s'", what, message,
                  reason);
    json_decref(diag);
}

/* --- verification ------------------------------------------------------------------------- */

START_TEST(test_trusted_ca_is_200_with_the_trace_headers)
{
    struct harness_response rs;
    char tls[HARNESS_PATH_MAX + 80];

    start_upstream("localhost", NULL, NULL);
    format(tls, sizeof(tls), "{%s}", ca_file("ca")); /* 127.0.0.1 is in the certificate */
    start_proxy("127.0.0.1", tls, NULL);
    get("/trusted", NULL, &rs);
    json_t *seen = assert_upstream_answered(&rs, "trusted CA");
    ck_assert_str_eq(harness_json_str(seen, "target"), "/trusted");
    ck_assert_msg(seen_header(seen, "traceparent") != NULL, "no traceparent upstream");
    ck_assert_msg(seen_header(seen, "X-Trace-ID") != NULL, "no X-Trace-ID upstream");
    ck_assert_str_eq(seen_header(seen, "traceparent"), harness_header(&rs, "traceparent"));
    json_decref(seen);
    harness_response_free(&rs);
    json_t *log = harness_log_line(&proxy, "outcome", "ok");
    ck_assert_msg(log != NULL, "no access-log line with outcome ok");
    json_decref(log);
}
END_TEST

START_TEST(test_wrong_ca_is_502_upstream_tls_failed_with_the_reason)
{
    struct harness_response rs;
    char tls[HARNESS_PATH_MAX + 80];

    start_upstream("localhost", NULL, NULL);
    format(tls, sizeof(tls), "{%s}", ca_file("other-ca"));
    start_proxy("127.0.0.1", tls, NULL);
    get("/wrong-ca", NULL, &rs);
    assert_tls_failed(&rs, "wrong CA", "SSL certificate problem: unable to get local issuer");
    harness_response_free(&rs);
}
END_TEST

/* No ca_file: the system store, which does not know the suite's CA. */
START_TEST(test_system_store_does_not_trust_a_private_ca)
{
    struct harness_response rs;

    start_upstream("localhost", NULL, NULL);
    start_proxy("127.0.0.1", NULL, NULL);
    get("/system-store", NULL, &rs);
    assert_tls_failed(&rs, "system store", "SSL certificate problem");
    harness_response_free(&rs);
}
END_TEST

/* The certificate is for api.internal, the URL says 127.0.0.1. */
START_TEST(test_wrong_name_is_502_upstream_tls_failed)
{
    struct harness_response rs;
    char tls[HARNESS_PATH_MAX + 80];

    start_upstream("api", NULL, NULL);
    format(tls, sizeof(tls), "{%s}", ca_file("ca"));
    start_proxy("127.0.0.1", tls, NULL);
    get("/wrong-name", NULL, &rs);
    assert_tls_failed(&rs, "wrong name", "127.0.0.1");
    harness_response_free(&rs);
}
END_TEST

/* server_name: connect to 127.0.0.1, verify (and send SNI) for api.internal. Host stays what
 * the client sent. */
START_TEST(test_server_name_makes_a_mismatching_url_host_work)
{
    struct harness_response rs;
    char tls[HARNESS_PATH_MAX + 120];
    const char *const headers[] = {"Host: shop.example", NULL};

    start_upstream("api", NULL, NULL);
    format(tls, sizeof(tls), "{%s, \"server_name\": \"api.internal\"}", ca_file("ca"));
    start_proxy("127.0.0.1", tls, NULL);
    get("/server-name", headers, &rs);
    json_t *seen = assert_upstream_answered(&rs, "server_name");
    ck_assert_str_eq(seen_header(seen, "Host"), "shop.example");
    ck_assert_msg(json_is_string(json_object_get(seen, "sni")) &&
                      strcmp(json_string_value(json_object_get(seen, "sni")), "api.internal") == 0,
                  "the upstream did not get server_name as SNI: %s", rs.body);
    json_decref(seen);
    harness_response_free(&rs);
}
END_TEST

/* server_name that the certificate does not hold fails like a wrong URL host. */
START_TEST(test_server_name_not_in_the_certificate_fails)
{
    struct harness_response rs;
    char tls[HARNESS_PATH_MAX + 120];

    start_upstream("localhost", NULL, NULL);
    format(tls, sizeof(tls), "{%s, \"server_name\": \"api.internal\"}", ca_file("ca"));
    start_proxy("127.0.0.1", tls, NULL);
    get("/server-name-wrong", NULL, &rs);
    assert_tls_failed(&rs, "server_name not in the certificate", "api.internal");
    harness_response_free(&rs);
}
END_TEST

/* --- client certificates, versions, insecure ---------------------------------------------- */

/* The upstream demands a client certificate from client-ca (TLS 1.2: see docs/security.md for
 * how TLS 1.3 reports a refused client certificate). */
START_TEST(test_mtls_without_a_client_certificate_fails_and_with_one_works)
{
    struct harness_response rs;
    char tls[3 * HARNESS_PATH_MAX + 200];

    start_upstream("localhost", "client-ca", "1.2");
    format(tls, sizeof(tls), "{%s}", ca_file("ca"));
    start_proxy("127.0.0.1", tls, NULL);
    get("/mtls-without", NULL, &rs);
    assert_tls_failed(&rs, "mTLS without a client certificate", "alert");
    harness_response_free(&rs);
    harness_daemon_stop(&proxy);

    format(tls, sizeof(tls), "{%s, \"client_certificate\": \"%s\", \"client_key\": \"%s\"}",
           ca_file("ca"), cert_path("client", "pem"), cert_path("client", "key"));
    start_proxy("127.0.0.1", tls, NULL);
    get("/mtls-with", NULL, &rs);
    json_t *seen = assert_upstream_answered(&rs, "mTLS with a client certificate");
    ck_assert_msg(json_is_true(json_object_get(seen, "client_certificate")),
                  "the upstream saw no client certificate");
    json_decref(seen);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_min_version_13_against_a_tls12_server_fails)
{
    struct harness_response rs;
    char tls[HARNESS_PATH_MAX + 120];

    start_upstream("localhost", NULL, "1.2");
    format(tls, sizeof(tls), "{%s, \"min_version\": \"1.2\"}", ca_file("ca"));
    start_proxy("127.0.0.1", tls, NULL);
    get("/tls12", NULL, &rs);
    json_t *seen = assert_upstream_answered(&rs, "min_version 1.2");
    ck_assert_str_eq(harness_json_str(seen, "tls_version"), "TLSv1.2");
    json_decref(seen);
    harness_response_free(&rs);
    harness_daemon_stop(&proxy);

    format(tls, sizeof(tls), "{%s, \"min_version\": \"1.3\"}", ca_file("ca"));
    start_proxy("127.0.0.1", tls, NULL);
    get("/tls13", NULL, &rs);
    assert_tls_failed(&rs, "min_version 1.3", "alert protocol version");
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_insecure_skip_verify_works_and_is_warned_about)
{
    struct harness_response rs;
    char tls[HARNESS_PATH_MAX + 120];

    start_upstream("api", NULL, NULL); /* wrong name, and a CA nobody trusts */
    format(tls, sizeof(tls), "{\"insecure_skip_verify\": true}");
    start_proxy("127.0.0.1", tls, NULL);
    struct harness_field_match m = {"message", "route tls (routes[0]): tls.insecure_skip_verify"};
    json_t *warning = harness_jsonl_wait_one(proxy.stderr_path, harness_match_field_prefix, &m);
    ck_assert_msg(warning != NULL, "no warning about insecure_skip_verify at start");
    ck_assert_str_eq(harness_json_str(warning, "level"), "warn");
    json_decref(warning);
    get("/insecure", NULL, &rs);
    json_decref(assert_upstream_answered(&rs, "insecure_skip_verify"));
    harness_response_free(&rs);

    /* again at every reload */
    ck_assert_int_eq(kill(proxy.proc.pid, SIGHUP), 0);
    json_t *warnings = harness_jsonl_wait(proxy.stderr_path, harness_match_field_prefix, &m, 2,
                                          HARNESS_WAIT_MS, &proxy.proc);
    ck_assert_msg(json_array_size(warnings) == 2, "no warning at the reload");
    json_decref(warnings);

    /* and in --check-config, on stderr beside the printed config */
    char err[HARNESS_PATH_MAX + 16], out[HARNESS_PATH_MAX + 16];
    format(err, sizeof(err), "%s/check.err", dir);
    format(out, sizeof(out), "%s/check.out", dir);
    char *argv[] = {getenv("TRACEHOP_BIN"), "--check-config", "--config", proxy.config_path, NULL};
    struct harness_process check;
    ck_assert_int_eq(harness_spawn(&check, argv, out, err, NULL), 0);
    ck_assert(harness_process_wait(&check, HARNESS_WAIT_MS));
    ck_assert_int_eq(harness_exit_code(&check), 0);
    char *text = harness_read_file(err, NULL);
    ck_assert_msg(text && strstr(text, "tls.insecure_skip_verify is true"),
                  "--check-config did not warn: %s", text ? text : "");
    free(text);
    text = harness_read_file(out, NULL);
    ck_assert_msg(text && strstr(text, "\"insecure_skip_verify\": true"),
                  "--check-config does not print the key: %s", text ? text : "");
    free(text);
}
END_TEST

/* --- reload and connection reuse ------------------------------------------------------------ */

/*
 * A connection verified with the old settings must not carry requests after a reload changed
 * them: with one worker, the first request leaves a pooled connection, the reload swaps in a CA
 * that does not trust the upstream, and the next request must fail verification on a new
 * connection.
 */
START_TEST(test_reload_with_new_tls_settings_does_not_reuse_old_connections)
{
    struct harness_response rs;
    char config[2 * HARNESS_PATH_MAX + 200];
    const char *const one_worker[] = {"--workers", "1", NULL};

    start_upstream("localhost", NULL, NULL);
    format(config, sizeof(config),
           "{\"routes\": [{\"name\": \"tls\", \"upstream\": \"https://127.0.0.1:%u\", \"tls\": "
           "{%s}}]}",
           upstream.port, ca_file("ca"));
    ck_assert_int_eq(harness_daemon_start(&proxy, dir, config, NULL, one_worker), 0);
    /* Two requests, one connection: the pool keeps it for the next. */
    json_int_t ports[2];
    for (int i = 0; i < 2; i++) {
        get("/before", NULL, &rs);
        json_t *seen = assert_upstream_answered(&rs, "before the reload");
        ports[i] = harness_json_int(seen, "client_port", -1);
        json_decref(seen);
        harness_response_free(&rs);
    }
    ck_assert_msg(ports[0] > 0 && ports[0] == ports[1],
                  "the upstream connection was not kept alive (ports %lld, %lld): the test "
                  "would prove nothing",
                  (long long)ports[0], (long long)ports[1]);

    format(config, sizeof(config),
           "{\"routes\": [{\"name\": \"tls\", \"upstream\": \"https://127.0.0.1:%u\", \"tls\": "
           "{%s}}]}",
           upstream.port, ca_file("other-ca"));
    ck_assert_int_eq(harness_write_file(proxy.config_path, config), 0);
    ck_assert_int_eq(kill(proxy.proc.pid, SIGHUP), 0);
    struct harness_field_match m = {"message", "config reloaded from"};
    json_t *reloaded = harness_jsonl_wait_one(proxy.stderr_path, harness_match_field_prefix, &m);
    ck_assert_msg(reloaded != NULL, "the reload was not reported");
    json_decref(reloaded);

    get("/after", NULL, &rs);
    assert_tls_failed(&rs, "after the reload", "unable to get local issuer");
    harness_response_free(&rs);
}
END_TEST

/* --- diagnostics and Host ------------------------------------------------------------------- */

/* A refused connection: upstream_connect_failed, with the errno text in the diagnostic. */
START_TEST(test_refused_connect_diagnostic_has_the_errno_text)
{
    struct harness_response rs;
    char config[256];

    format(config, sizeof(config), "{\"routes\": [{\"upstream\": \"http://127.0.0.1:%u\"}]}",
           harness_closed_port());
    ck_assert_int_eq(harness_daemon_start(&proxy, dir, config, NULL, NULL), 0);
    get("/refused", NULL, &rs);
    ck_assert_int_eq(rs.status, 502);
    json_t *body = harness_response_json(&rs);
    ck_assert_str_eq(harness_json_str(body, "error"), "upstream_connect_failed");
    json_decref(body);
    harness_response_free(&rs);
    struct harness_field_match m = {"message", "upstream http://127.0.0.1:"};
    json_t *diag = harness_jsonl_wait_one(proxy.stderr_path, harness_match_field_prefix, &m);
    ck_assert_msg(diag != NULL, "no diagnostic for the refused connection");
    const char *message = harness_json_str(diag, "message");
    ck_assert_msg(strstr(message, "Failed to connect to 127.0.0.1 port") &&
                      strstr(message, "Connection refused"),
                  "diagnostic without the errno text: %s", message);
    json_decref(diag);
}
END_TEST

/* Host goes upstream as the client sent it; set_request_headers can replace it. */
START_TEST(test_host_is_forwarded_as_sent_unless_the_route_sets_it)
{
    struct harness_response rs;
    char tls[HARNESS_PATH_MAX + 80];
    const char *const headers[] = {"Host: shop.example", NULL};

    start_upstream("localhost", NULL, NULL);
    format(tls, sizeof(tls), "{%s}", ca_file("ca"));
    start_proxy("127.0.0.1", tls, NULL);
    get("/host-as-sent", headers, &rs);
    json_t *seen = assert_upstream_answered(&rs, "Host as sent");
    ck_assert_str_eq(seen_header(seen, "Host"), "shop.example");
    ck_assert_str_eq(seen_header(seen, "X-Forwarded-Host"), "shop.example");
    json_decref(seen);
    harness_response_free(&rs);
    harness_daemon_stop(&proxy);

    start_proxy("127.0.0.1", tls, "\"set_request_headers\": {\"Host\": \"api.internal\"}");
    get("/host-set", headers, &rs);
    seen = assert_upstream_answered(&rs, "Host set by the route");
    ck_assert_str_eq(seen_header(seen, "Host"), "api.internal");
    ck_assert_uint_eq(json_array_size(json_object_get(seen, "headers")) > 0, 1);
    size_t hosts = 0;
    json_t *pair;
    size_t i;
    json_array_foreach(json_object_get(seen, "headers"), i, pair)
    {
        hosts += strcasecmp(json_string_value(json_array_get(pair, 0)), "Host") == 0;
    }
    ck_assert_uint_eq(hosts, 1);
    ck_assert_str_eq(seen_header(seen, "X-Forwarded-Host"), "shop.example");
    json_decref(seen);
    harness_response_free(&rs);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("verification");

    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_trusted_ca_is_200_with_the_trace_headers);
    tcase_add_test(tc, test_wrong_ca_is_502_upstream_tls_failed_with_the_reason);
    tcase_add_test(tc, test_system_store_does_not_trust_a_private_ca);
    tcase_add_test(tc, test_wrong_name_is_502_upstream_tls_failed);
    tcase_add_test(tc, test_server_name_makes_a_mismatching_url_host_work);
    tcase_add_test(tc, test_server_name_not_in_the_certificate_fails);
    tcase_add_test(tc, test_mtls_without_a_client_certificate_fails_and_with_one_works);
    tcase_add_test(tc, test_min_version_13_against_a_tls12_server_fails);
    tcase_add_test(tc, test_insecure_skip_verify_works_and_is_warned_about);
    tcase_add_test(tc, test_reload_with_new_tls_settings_does_not_reuse_old_connections);
    tcase_add_test(tc, test_host_is_forwarded_as_sent_unless_the_route_sets_it);
    suite_add_tcase(s, tc);

    tc = tcase_create("diagnostics");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_refused_connect_diagnostic_has_the_errno_text);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(tls_suite());
}
