/* SPDX-License-Identifier: MIT */
/*
 * `tracehop logs` on the logs of a real chain of services:
 *
 *   client -> tracehop a -> app a -> tracehop b -> app b -> tracehop c -> app c
 *
 * Each app is an echo-upstream whose /chain endpoint calls the next service through its
 * sidecar with libcurl, passing on the traceparent, tracestate and X-Trace-ID it received; with
 * legacy=1 app b passes on only X-Trace-ID, as an app that never heard of traceparent. The
 * three sidecars write three log files, and the real `tracehop logs` binary must put the story
 * back together:
 *   - a chain that propagates traceparent: one tree, c under b under a, by span links;
 *   - a legacy app b with a UUID X-Trace-ID: tracehop c derives the same trace id from the
 *     UUID (docs/trace-context.md, row 3 of the decision), and c hangs under b as an inferred
 *     child;
 *   - a legacy app b with a free-form X-Trace-ID: tracehop c starts another trace id, and
 *     c still joins through the shared x_trace_id (asked for by a's trace id).
 * The three sidecars also export their spans to one OTLP receiver: the spans of a chain must form
 * the same tree as the log lines, with the same ids.
 * The fixture (six processes and the receiver) is shared by the tests; every test uses its own
 * trace ids, which is also what --trace-id has to tell apart. A last test follows a file through
 * truncation and rotation. Every wait is bounded (see harness.h).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define HOPS            3
#define LOGS_TIMEOUT_MS 15000

static const char *const names[HOPS] = {"a", "b", "c"};

static struct {
    char dir[HARNESS_PATH_MAX];
    char sub[HOPS][HARNESS_PATH_MAX + 8];
    struct harness_echo app[HOPS];
    struct harness_daemon proxy[HOPS];
    struct harness_otlp *otlp;
} chain;

/* The chain; with export, the sidecars send their spans to a receiver of this process (so it
 * must run in the test's own process: Check forks a child per test, and the receiver's thread
 * would stay in the parent). */
static void chain_start(bool export)
{
    char endpoint[128];
    char *env[] = {endpoint, "OTEL_BSP_SCHEDULE_DELAY=100", NULL};

    ck_assert_int_eq(harness_tmpdir(chain.dir, sizeof(chain.dir)), 0);
    if (export) {
        chain.otlp = harness_otlp_start();
        ck_assert_ptr_nonnull(chain.otlp);
        snprintf(endpoint, sizeof(endpoint), "OTEL_EXPORTER_OTLP_ENDPOINT=%s",
                 harness_otlp_url(chain.otlp));
    }
    for (size_t i = 0; i < HOPS; i++) {
        snprintf(chain.sub[i], sizeof(chain.sub[i]), "%s/%s", chain.dir, names[i]);
        ck_assert_int_eq(mkdir(chain.sub[i], 0755), 0);
        ck_assert_int_eq(harness_echo_start(&chain.app[i], chain.sub[i], false), 0);
        const char *args[] = {"--upstream", chain.app[i].url, "--service-name", names[i], NULL};
        ck_assert_int_eq(harness_daemon_start_env(&chain.proxy[i], chain.sub[i], NULL, NULL, args,
                                                  export ? env : NULL),
                         0);
    }
}

static void chain_setup(void)
{
    chain_start(false);
}

static void chain_setup_with_export(void)
{
    chain_start(true);
}

static void chain_teardown(void)
{
    for (size_t i = 0; i < HOPS; i++) {
        if (chain.proxy[i].proc.pid > 0)
            harness_daemon_stop(&chain.proxy[i]);
        if (chain.app[i].proc.pid > 0)
            harness_echo_stop(&chain.app[i]);
    }
    harness_otlp_stop(chain.otlp);
    chain.otlp = NULL;
    harness_tmpdir_remove(chain.dir);
}

/* --- the chain request --------------------------------------------------------------------- */

static void percent_encode(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~", *p);
        ck_assert_uint_lt(n + 4, size);
        if (plain) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
}

/*
 * The target for tracehop a: /chain?next=<b's /chain, which calls c's /chain>. Each app works
 * a few milliseconds before it calls on (3, 2, 1 ms), so that the timeline has something to
 * show.
 */
static void chain_target(bool legacy_b, char *out, size_t size)
{
    char c_url[128], b_url[1200], encoded[1024], b_encoded[3 * sizeof(b_url)];

    snprintf(c_url, sizeof(c_url), "http://127.0.0.1:%u/chain?work=1", chain.proxy[2].port);
    percent_encode(c_url, encoded, sizeof(encoded));
    snprintf(b_url, sizeof(b_url), "http://127.0.0.1:%u/chain?work=2&%snext=%s",
             chain.proxy[1].port, legacy_b ? "legacy=1&" : "", encoded);
    percent_encode(b_url, b_encoded, sizeof(b_encoded));
    ck_assert_uint_lt((size_t)snprintf(out, size, "/chain?work=3&next=%s", b_encoded), size);
}

/*
 * Send the chain request with `headers`; returns the trace id of tracehop a's span (from the
 * response's traceparent) in trace_id.
 */
static void send_chain(bool legacy_b, const char *const *headers, char trace_id[33])
{
    char target[4096], span[17], flags[3];
    struct harness_response rs;

    chain_target(legacy_b, target, sizeof(target));
    struct harness_request rq = {.target = target, .headers = headers};
    harness_http(chain.proxy[0].port, &rq, &rs);
    ck_assert_msg(rs.result == CURLE_OK, "chain request failed: %s", rs.error);
    ck_assert_msg(rs.status == 200, "chain answered %ld: %s", rs.status, rs.body ? rs.body : "");
    ck_assert(harness_traceparent_split(harness_header(&rs, "traceparent"), trace_id, span, flags));
    harness_response_free(&rs);
}

/* Wait until each sidecar has logged its line whose `key` is `value`. */
static void wait_for_hops(const char *key, const char *value)
{
    struct harness_field_match m = {key, value};

    for (size_t i = 0; i < HOPS; i++) {
        json_t *lines = harness_jsonl_wait(chain.proxy[i].access_log, harness_match_field, &m, 1,
                                           HARNESS_WAIT_MS, NULL);
        ck_assert_msg(json_array_size(lines) == 1, "tracehop %s logged %zu lines with %s %s",
                      names[i], json_array_size(lines), key, value);
        json_decref(lines);
    }
}

/* --- running `tracehop logs` ------------------------------------------------------------- */

struct logs_result {
    int exit_code;
    char *out;
    char *err;
};

/* Run `tracehop logs <args> a.log b.log c.log` and collect what it printed. */
static void run_logs(const char *const *args, struct logs_result *res)
{
    static unsigned counter;
    const char *bin = getenv("TRACEHOP_BIN");
    char out_path[HARNESS_PATH_MAX + 32], err_path[HARNESS_PATH_MAX + 32];
    char *argv[32];
    size_t argc = 0;
    struct harness_process p;

    ck_assert_msg(bin != NULL, "TRACEHOP_BIN is not set: run the tests through meson");
    snprintf(out_path, sizeof(out_path), "%s/logs-%d-%u.out", chain.dir, (int)getpid(), ++counter);
    snprintf(err_path, sizeof(err_path), "%s/logs-%d-%u.err", chain.dir, (int)getpid(), counter);
    argv[argc++] = (char *)bin;
    argv[argc++] = "logs";
    for (size_t i = 0; args && args[i] && argc < 24; i++)
        argv[argc++] = (char *)args[i];
    for (size_t i = 0; i < HOPS; i++)
        argv[argc++] = chain.proxy[i].access_log;
    argv[argc] = NULL;

    ck_assert_int_eq(harness_spawn(&p, argv, out_path, err_path, NULL), 0);
    bool done = harness_process_wait(&p, LOGS_TIMEOUT_MS);
    if (!done)
        harness_process_stop(&p, 1000);
    ck_assert_msg(done, "tracehop logs did not finish within %d ms", LOGS_TIMEOUT_MS);
    res->exit_code = harness_exit_code(&p);
    res->out = harness_read_file(out_path, NULL);
    res->err = harness_read_file(err_path, NULL);
    ck_assert_ptr_nonnull(res->out);
    ck_assert_ptr_nonnull(res->err);
    fprintf(stderr, "--- tracehop logs output ---\n%s--- stderr ---\n%s---\n", res->out, res->err);
}

static void logs_result_free(struct logs_result *res)
{
    free(res->out);
    free(res->err);
}

/* Line k (0-based) of text, copied into line; false if there are fewer lines. */
static bool nth_line(const char *text, size_t k, char *line, size_t size)
{
    const char *p = text;
    for (size_t i = 0; i < k; i++) {
        p = strchr(p, '\n');
        if (!p)
            return false;
        p++;
    }
    if (!*p)
        return false;
    size_t len = strcspn(p, "\n");
    snprintf(line, size, "%.*s", (int)len, p);
    return true;
}

/* The tree rows: the k-th line after the column header of the timeline. */
static bool tree_row(const char *out, size_t k, char *row, size_t size)
{
    const char *header = strstr(out, " offset ms  hop");
    if (!header)
        return false;
    const char *first = strchr(header, '\n');
    return first && nth_line(first + 1, k, row, size);
}

/* Column of `needle` in row, or -1. */
static long column_of(const char *row, const char *needle)
{
    const char *p = strstr(row, needle);
    return p ? (long)(p - row) : -1;
}

/*
 * The header row and the three listing lines come first, one per hop in time order (a, b, c:
 * each starts before the one it calls, or in the same millisecond and lasting longer), then the
 * tree: a at the top, b under a, c under b, drawn with `b_link` / `c_link` ("`-" span, "`~"
 * inferred).
 */
static void assert_text_tree(const char *out, const char *b_link, const char *c_link)
{
    char line[4096], needle[64];
    long col[HOPS];

    ck_assert_msg(nth_line(out, 0, line, sizeof(line)) && strncmp(line, "time ", 5) == 0,
                  "the listing does not start with its header row: %s", out);
    for (size_t i = 0; i < HOPS; i++) {
        ck_assert_msg(nth_line(out, i + 1, line, sizeof(line)), "listing line %zu is missing", i);
        /* "<24-character time>  <service>  ..." */
        ck_assert_msg(strlen(line) > 27 && line[26] == names[i][0] && line[27] == ' ',
                      "listing line %zu is not service %s: %s", i, names[i], line);
    }
    ck_assert_msg(tree_row(out, 0, line, sizeof(line)), "no timeline in the output");
    col[0] = column_of(line, "a GET /chain");
    ck_assert_msg(col[0] > 0 && !strchr(line, '`'), "first row is not the root a: %s", line);
    ck_assert(tree_row(out, 1, line, sizeof(line)));
    snprintf(needle, sizeof(needle), "%s b GET /chain", b_link);
    col[1] = column_of(line, needle);
    ck_assert_msg(col[1] == col[0], "b is not drawn as '%s' under a: %s", needle, line);
    ck_assert(tree_row(out, 2, line, sizeof(line)));
    snprintf(needle, sizeof(needle), "%s c GET /chain", c_link);
    col[2] = column_of(line, needle);
    ck_assert_msg(col[2] == col[1] + 3, "c is not drawn as '%s' under b: %s", needle, line);
    ck_assert_msg(!tree_row(out, 3, line, sizeof(line)) || line[0] != ' ' ||
                      !strstr(line, "GET /chain"),
                  "a fourth hop in the tree: %s", line);
    ck_assert_msg(strstr(out, "3 hops, 3 services"), "the summary does not say 3 hops");
}

/* The --json output: exactly three lines, a, b, c, each exactly an access-log object. */
static json_t *parse_json_output(const char *out)
{
    json_t *lines = json_array();
    char line[8192];

    for (size_t k = 0; nth_line(out, k, line, sizeof(line)); k++) {
        json_error_t error;
        json_t *o = json_loads(line, 0, &error);
        ck_assert_msg(json_is_object(o), "--json line %zu is not a JSON object: %s", k, line);
        json_array_append_new(lines, o);
    }
    ck_assert_uint_eq(json_array_size(lines), HOPS);
    for (size_t i = 0; i < HOPS; i++)
        ck_assert_str_eq(harness_json_str(json_array_get(lines, i), "service"), names[i]);
    return lines;
}

/* --- tests ------------------------------------------------------------------------------------ */

START_TEST(test_chain_with_traceparent_is_one_tree)
{
    char trace_id[33], parent[17], trace_id_back[33], traceparent[80];
    struct logs_result res;

    harness_random_hex(trace_id, 32);
    harness_random_hex(parent, 16);
    snprintf(traceparent, sizeof(traceparent), "traceparent: 00-%s-%s-01", trace_id, parent);
    const char *headers[] = {traceparent, "tracestate: vendor=1", NULL};
    send_chain(false, headers, trace_id_back);
    ck_assert_str_eq(trace_id_back, trace_id);
    wait_for_hops("trace_id", trace_id);

    const char *text_args[] = {"--trace-id", trace_id, NULL};
    run_logs(text_args, &res);
    ck_assert_int_eq(res.exit_code, 0);
    assert_text_tree(res.out, "`-", "`-");
    ck_assert_msg(!strstr(res.out, "`~"), "a span-linked chain has no inferred hop");
    logs_result_free(&res);

    const char *json_args[] = {"--trace-id", trace_id, "--json", NULL};
    run_logs(json_args, &res);
    ck_assert_int_eq(res.exit_code, 0);
    json_t *lines = parse_json_output(res.out);
    json_t *a = json_array_get(lines, 0), *b = json_array_get(lines, 1),
           *c = json_array_get(lines, 2);
    for (size_t i = 0; i < HOPS; i++)
        ck_assert_str_eq(harness_json_str(json_array_get(lines, i), "trace_id"), trace_id);
    ck_assert_str_eq(harness_json_str(a, "parent_span_id"), parent);
    ck_assert_str_eq(harness_json_str(b, "parent_span_id"), harness_json_str(a, "span_id"));
    ck_assert_str_eq(harness_json_str(c, "parent_span_id"), harness_json_str(b, "span_id"));
    json_decref(lines);
    logs_result_free(&res);
}
END_TEST

/* The span of trace_id whose resource says service.name = service (waiting for it). */
static json_t *span_of_service(const char *trace_id, const char *service)
{
    /* Each round scans what came and waits for one more request: the hops' batches arrive in
     * any order (c's span ends first), one request per hop at most for this trace. */
    for (int round = 0; round <= HOPS; round++) {
        size_t n = harness_otlp_count(chain.otlp);
        for (size_t i = 0; i < n; i++) {
            const struct harness_otlp_request *rq = harness_otlp_request(chain.otlp, i);
            json_t *rs = json_object_get(rq->json, "resourceSpans");
            for (size_t k = 0; k < json_array_size(rs); k++) {
                json_t *resource = json_object_get(json_array_get(rs, k), "resource");
                const char *name = harness_otlp_attr_str(resource, "service.name");
                json_t *spans = json_object_get(
                    json_array_get(json_object_get(json_array_get(rs, k), "scopeSpans"), 0),
                    "spans");
                for (size_t s = 0; name && strcmp(name, service) == 0 && s < json_array_size(spans);
                     s++) {
                    json_t *span = json_array_get(spans, s);
                    if (strcmp(harness_json_str(span, "traceId"), trace_id) == 0)
                        return json_incref(span);
                }
            }
        }
        /* Not yet: every hop's batch leaves within 100 ms of its span. */
        if (harness_otlp_wait(chain.otlp, n + 1, HARNESS_WAIT_MS) <= n)
            break;
    }
    return NULL;
}

/* The chain as spans: one trace, c's parent is b's span, b's parent is a's, a's is the caller's;
 * every span id is its hop's access-log span_id. */
START_TEST(test_chain_exports_one_span_per_hop)
{
    char trace_id[33], parent[17], trace_id_back[33], traceparent[80];
    struct harness_field_match m = {"trace_id", trace_id};

    harness_random_hex(trace_id, 32);
    harness_random_hex(parent, 16);
    snprintf(traceparent, sizeof(traceparent), "traceparent: 00-%s-%s-01", trace_id, parent);
    const char *headers[] = {traceparent, NULL};
    send_chain(false, headers, trace_id_back);
    wait_for_hops("trace_id", trace_id);

    const char *expected_parent = parent;
    json_t *previous = NULL;
    for (size_t i = 0; i < HOPS; i++) {
        json_t *span = span_of_service(trace_id, names[i]);
        ck_assert_msg(span != NULL, "no span of tracehop %s for trace %s", names[i], trace_id);
        json_t *lines = harness_jsonl_wait(chain.proxy[i].access_log, harness_match_field, &m, 1,
                                           HARNESS_WAIT_MS, NULL);
        json_t *line = json_array_get(lines, 0);
        ck_assert_str_eq(harness_json_str(span, "spanId"), harness_json_str(line, "span_id"));
        ck_assert_str_eq(harness_json_str(span, "parentSpanId"), expected_parent);
        ck_assert_str_eq(harness_json_str(span, "parentSpanId"),
                         harness_json_str(line, "parent_span_id"));
        ck_assert_int_eq(json_integer_value(json_object_get(span, "kind")), 2);
        json_decref(lines);
        json_decref(previous);
        previous = span;
        expected_parent = harness_json_str(span, "spanId");
    }
    json_decref(previous);
}
END_TEST

START_TEST(test_legacy_hop_with_uuid_x_trace_id_is_inferred)
{
    char trace_id[33], uuid[37];
    struct logs_result res;

    send_chain(true, NULL, trace_id); /* no trace headers: tracehop a starts the trace */
    wait_for_hops("trace_id", trace_id);
    harness_uuid_from_hex(trace_id, uuid);

    /* Asked for by the X-Trace-ID (a UUID, upper case): the trace id it maps to. */
    for (char *p = uuid; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    const char *text_args[] = {"--trace-id", uuid, NULL};
    run_logs(text_args, &res);
    ck_assert_int_eq(res.exit_code, 0);
    assert_text_tree(res.out, "`-", "`~");
    ck_assert_msg(strstr(res.out, "parent inferred"), "no legend for the inferred parent");
    logs_result_free(&res);

    const char *json_args[] = {"--json", "--trace-id", trace_id, NULL};
    run_logs(json_args, &res);
    ck_assert_int_eq(res.exit_code, 0);
    json_t *lines = parse_json_output(res.out);
    json_t *a = json_array_get(lines, 0), *b = json_array_get(lines, 1),
           *c = json_array_get(lines, 2);
    for (size_t i = 0; i < HOPS; i++)
        ck_assert_str_eq(harness_json_str(json_array_get(lines, i), "trace_id"), trace_id);
    ck_assert_str_eq(harness_json_str(b, "parent_span_id"), harness_json_str(a, "span_id"));
    ck_assert_msg(harness_json_is_null(c, "parent_span_id"),
                  "tracehop c got a traceparent through the legacy app");
    harness_uuid_from_hex(trace_id, uuid);
    ck_assert_str_eq(harness_json_str(c, "x_trace_id"), uuid);
    json_decref(lines);
    logs_result_free(&res);
}
END_TEST

START_TEST(test_legacy_hop_with_free_form_x_trace_id_joins_by_x_trace_id)
{
    char trace_id[33], suffix[9], x_trace_id[64], x_header[96];
    struct logs_result res;

    harness_random_hex(suffix, 8);
    snprintf(x_trace_id, sizeof(x_trace_id), "order-4711-%s", suffix);
    snprintf(x_header, sizeof(x_header), "X-Trace-ID: %s", x_trace_id);
    const char *headers[] = {x_header, NULL};
    send_chain(true, headers, trace_id);
    wait_for_hops("x_trace_id", x_trace_id);

    /* By a's trace id: c (another trace id) must join through the shared X-Trace-ID. */
    const char *text_args[] = {"--trace-id", trace_id, NULL};
    run_logs(text_args, &res);
    ck_assert_int_eq(res.exit_code, 0);
    assert_text_tree(res.out, "`-", "`~");
    logs_result_free(&res);

    const char *json_args[] = {"--trace-id", x_trace_id, "--json", NULL};
    run_logs(json_args, &res);
    ck_assert_int_eq(res.exit_code, 0);
    json_t *lines = parse_json_output(res.out);
    json_t *c = json_array_get(lines, 2);
    ck_assert_str_eq(harness_json_str(json_array_get(lines, 1), "trace_id"), trace_id);
    ck_assert_str_ne(harness_json_str(c, "trace_id"), trace_id);
    ck_assert_str_eq(harness_json_str(c, "x_trace_id"), x_trace_id);
    json_decref(lines);
    logs_result_free(&res);
}
END_TEST

START_TEST(test_filters_and_exit_codes)
{
    char trace_id[33], missing[HARNESS_PATH_MAX + 16];
    struct logs_result res;

    send_chain(false, NULL, trace_id);
    wait_for_hops("trace_id", trace_id);

    /* Only b's lines, as JSON: every line says service b. */
    const char *service_args[] = {"--service", "b", "--json", "--status", "2xx", NULL};
    run_logs(service_args, &res);
    ck_assert_int_eq(res.exit_code, 0);
    ck_assert_ptr_nonnull(strstr(res.out, trace_id));
    for (size_t k = 0;; k++) {
        char line[8192];
        if (!nth_line(res.out, k, line, sizeof(line)))
            break;
        json_t *o = json_loads(line, 0, NULL);
        ck_assert_str_eq(harness_json_str(o, "service"), "b");
        json_decref(o);
    }
    logs_result_free(&res);

    const char *bad_args[] = {"--status", "abc", NULL};
    run_logs(bad_args, &res);
    ck_assert_int_eq(res.exit_code, 2);
    ck_assert_ptr_nonnull(strstr(res.err, "--status"));
    logs_result_free(&res);

    /* A file that cannot be read: the others are still read, and the exit status is 1. */
    snprintf(missing, sizeof(missing), "%s/no-such.log", chain.dir);
    const char *missing_args[] = {"--trace-id", trace_id, "--json", missing, NULL};
    run_logs(missing_args, &res);
    ck_assert_int_eq(res.exit_code, 1);
    ck_assert_ptr_nonnull(strstr(res.err, "no-such.log"));
    json_decref(parse_json_output(res.out));
    logs_result_free(&res);
}
END_TEST

/* --- --follow ------------------------------------------------------------------------------ */

static void append_line(const char *path, const char *mode, const char *name)
{
    FILE *f = fopen(path, mode);
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"time\":\"2026-01-31T12:00:00.000Z\",\"service\":\"f\","
            "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\","
            "\"parent_span_id\":null,\"method\":\"GET\",\"path\":\"/%s\",\"status\":200,"
            "\"duration_ms\":1.000,\"outcome\":\"ok\"}\n",
            name);
    ck_assert_int_eq(fclose(f), 0);
}

/* Wait until the --json output holds a line with path /name. */
static void wait_output(const char *out_path, const char *name, struct harness_process *p)
{
    char path[64];
    snprintf(path, sizeof(path), "/%s", name);
    struct harness_field_match m = {"path", path};
    json_t *lines = harness_jsonl_wait(out_path, harness_match_field, &m, 1, HARNESS_WAIT_MS, p);
    ck_assert_msg(json_array_size(lines) == 1, "tracehop logs --follow printed %s %zu times", path,
                  json_array_size(lines));
    json_decref(lines);
}

START_TEST(test_follow_survives_truncation_and_rotation)
{
    char log[HARNESS_PATH_MAX + 32], rotated[HARNESS_PATH_MAX + 40];
    char out_path[HARNESS_PATH_MAX + 32], err_path[HARNESS_PATH_MAX + 32];
    const char *bin = getenv("TRACEHOP_BIN");
    struct harness_process p;

    ck_assert_ptr_nonnull(bin);
    snprintf(log, sizeof(log), "%s/follow-%d.log", chain.dir, (int)getpid());
    snprintf(rotated, sizeof(rotated), "%s.1", log);
    snprintf(out_path, sizeof(out_path), "%s/follow-%d.out", chain.dir, (int)getpid());
    snprintf(err_path, sizeof(err_path), "%s/follow-%d.err", chain.dir, (int)getpid());
    append_line(log, "w", "one");
    char *argv[] = {(char *)bin, "logs", "--follow", "--json", log, NULL};
    ck_assert_int_eq(harness_spawn(&p, argv, out_path, err_path, NULL), 0);
    wait_output(out_path, "one", &p);

    append_line(log, "a", "two"); /* appended */
    wait_output(out_path, "two", &p);
    append_line(log, "w", "three"); /* copytruncate: shorter than what was read */
    wait_output(out_path, "three", &p);
    ck_assert_int_eq(rename(log, rotated), 0); /* rotation: renamed, still written to, */
    append_line(rotated, "a", "four");
    append_line(log, "w", "five"); /* and a new file in its place */
    wait_output(out_path, "four", &p);
    wait_output(out_path, "five", &p);

    ck_assert_int_eq(harness_process_stop(&p, 5000), 0); /* SIGTERM ends it cleanly */
    json_t *all = harness_jsonl_read(out_path);
    ck_assert_uint_eq(json_array_size(all), 5);
    json_decref(all);
}
END_TEST

/* -n with --follow: the last N lines already there (like tail -n), then every new one. */
START_TEST(test_follow_with_tail_starts_from_the_last_lines)
{
    char log[HARNESS_PATH_MAX + 32], out_path[HARNESS_PATH_MAX + 32],
        err_path[HARNESS_PATH_MAX + 32];
    const char *bin = getenv("TRACEHOP_BIN");
    struct harness_process p;

    ck_assert_ptr_nonnull(bin);
    snprintf(log, sizeof(log), "%s/tail-%d.log", chain.dir, (int)getpid());
    snprintf(out_path, sizeof(out_path), "%s/tail-%d.out", chain.dir, (int)getpid());
    snprintf(err_path, sizeof(err_path), "%s/tail-%d.err", chain.dir, (int)getpid());
    append_line(log, "w", "one");
    append_line(log, "a", "two");
    append_line(log, "a", "three");
    char *argv[] = {(char *)bin, "logs", "--follow", "-n", "2", "--json", log, NULL};
    ck_assert_int_eq(harness_spawn(&p, argv, out_path, err_path, NULL), 0);
    wait_output(out_path, "two", &p);
    wait_output(out_path, "three", &p);
    append_line(log, "a", "four");
    wait_output(out_path, "four", &p);

    ck_assert_int_eq(harness_process_stop(&p, 5000), 0);
    json_t *all = harness_jsonl_read(out_path);
    ck_assert_uint_eq(json_array_size(all), 3); /* "one" was never printed */
    ck_assert_str_eq(harness_json_str(json_array_get(all, 0), "path"), "/two");
    ck_assert_str_eq(harness_json_str(json_array_get(all, 2), "path"), "/four");
    json_decref(all);
}
END_TEST

static Suite *chain_suite(void)
{
    Suite *s = suite_create("chain");
    TCase *tc = tcase_create("chain");

    tcase_add_unchecked_fixture(tc, chain_setup, chain_teardown);
    harness_tcase_timeout(tc, 120);
    tcase_add_test(tc, test_chain_with_traceparent_is_one_tree);
    tcase_add_test(tc, test_legacy_hop_with_uuid_x_trace_id_is_inferred);
    tcase_add_test(tc, test_legacy_hop_with_free_form_x_trace_id_joins_by_x_trace_id);
    tcase_add_test(tc, test_filters_and_exit_codes);
    tcase_add_test(tc, test_follow_survives_truncation_and_rotation);
    tcase_add_test(tc, test_follow_with_tail_starts_from_the_last_lines);
    suite_add_tcase(s, tc);

    TCase *spans = tcase_create("spans");
    tcase_add_checked_fixture(spans, chain_setup_with_export, chain_teardown);
    harness_tcase_timeout(spans, 120);
    tcase_add_test(spans, test_chain_exports_one_span_per_hop);
    suite_add_tcase(s, spans);
    return s;
}

int main(void)
{
    return harness_run_suite(chain_suite());
}
