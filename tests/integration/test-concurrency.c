/* SPDX-License-Identifier: MIT */
/*
 * Many requests at once: 200 concurrent requests, each with its own traceparent and X-Trace-ID,
 * must come back with exactly their own trace context on every side (no cross-talk between
 * requests sharing a worker), and one slow upstream request must not hold up the others.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define BURST 200

static struct harness_env env;

static void setup(void)
{
    ck_assert_int_eq(harness_env_start(&env, NULL), 0);
}

static void teardown(void)
{
    harness_env_stop(&env);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Drive `multi` until no transfer runs or `deadline` (now_s() clock) passes, calling
 * harness_transfer_done on each finished one. Returns the number still running.
 */
static int drive(CURLM *multi, double deadline)
{
    int running = 1;

    while (running > 0 && now_s() < deadline) {
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *private = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &private);
            harness_transfer_done((struct harness_transfer *)private, msg->data.result);
        }
        if (running > 0)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    return running;
}

struct burst_request {
    char target[64];
    char trace_id[33], parent_id[17];
    char traceparent_line[80], x_trace_id[40], x_trace_id_line[64];
    const char *headers[3];
    struct harness_transfer *t;
};

START_TEST(test_200_concurrent_requests_keep_their_own_trace_context)
{
    static struct burst_request reqs[BURST];
    char run[9], prefix[32];
    CURLM *multi = curl_multi_init();

    harness_random_hex(run, 8);
    snprintf(prefix, sizeof(prefix), "burst=%s-", run);
    for (size_t i = 0; i < BURST; i++) {
        struct burst_request *r = &reqs[i];
        snprintf(r->target, sizeof(r->target), "/delay/300?burst=%s-%zu", run, i);
        harness_random_hex(r->trace_id, 32);
        harness_random_hex(r->parent_id, 16);
        snprintf(r->traceparent_line, sizeof(r->traceparent_line), "traceparent: 00-%s-%s-01",
                 r->trace_id, r->parent_id);
        snprintf(r->x_trace_id, sizeof(r->x_trace_id), "burst-%s-%zu", run, i);
        snprintf(r->x_trace_id_line, sizeof(r->x_trace_id_line), "X-Trace-ID: %s", r->x_trace_id);
        r->headers[0] = r->traceparent_line;
        r->headers[1] = r->x_trace_id_line;
        r->headers[2] = NULL;
        struct harness_request rq = {
            .target = r->target, .headers = r->headers, .timeout_ms = 30000};
        r->t = harness_transfer_new(NULL, env.daemon.port, &rq);
        ck_assert_ptr_nonnull(r->t);
        curl_multi_add_handle(multi, r->t->easy);
    }
    double start = now_s();
    int running = drive(multi, start + 40);
    double elapsed = now_s() - start;
    ck_assert_msg(running == 0, "%d of %d requests still running after 40 s", running, BURST);
    /* 200 x 300 ms one after the other would take a minute. */
    ck_assert_msg(elapsed < 10, "the burst took %.1f s: requests did not run concurrently",
                  elapsed);

    /* The client's side and the upstream's side, request by request. */
    char spans[BURST][17];
    for (size_t i = 0; i < BURST; i++) {
        struct burst_request *r = &reqs[i];
        struct harness_response *rs = &r->t->response;
        char trace_id[33], flags[3], up_trace[33], up_span[17], up_flags[3];
        ck_assert_msg(rs->result == CURLE_OK && rs->status == 200, "request %zu: %ld %s", i,
                      rs->status, rs->error);
        ck_assert_msg(
            harness_traceparent_split(harness_header(rs, "traceparent"), trace_id, spans[i], flags),
            "request %zu: bad response traceparent", i);
        ck_assert_msg(strcmp(trace_id, r->trace_id) == 0,
                      "request %zu: response trace id %s, sent %s", i, trace_id, r->trace_id);
        ck_assert_str_eq(harness_header(rs, "X-Trace-ID"), r->x_trace_id);
        json_t *echo = harness_response_json(rs);
        ck_assert_msg(echo != NULL, "request %zu: the body is not the echo's JSON", i);
        ck_assert_str_eq(harness_json_str(echo, "target"), r->target);
        ck_assert_uint_eq(harness_record_header_count(echo, "traceparent"), 1);
        ck_assert(harness_traceparent_split(harness_record_header(echo, "traceparent"), up_trace,
                                            up_span, up_flags));
        ck_assert_str_eq(up_trace, r->trace_id);
        ck_assert_str_eq(up_span, spans[i]);
        ck_assert_str_ne(up_span, r->parent_id);
        ck_assert_str_eq(harness_record_header(echo, "X-Trace-ID"), r->x_trace_id);
        json_decref(echo);
    }

    /* The access log: 200 lines, distinct spans, each matching its request. */
    struct harness_field_match m = {"query", prefix};
    json_t *lines = harness_jsonl_wait(env.daemon.access_log, harness_match_field_prefix, &m, BURST,
                                       HARNESS_WAIT_MS, NULL);
    ck_assert_uint_eq(json_array_size(lines), BURST);
    bool seen[BURST] = {false};
    size_t k;
    json_t *line;
    json_array_foreach(lines, k, line)
    {
        const char *query = harness_json_str(line, "query");
        size_t i = strtoul(query + strlen(prefix), NULL, 10);
        ck_assert_msg(i < BURST && !seen[i], "log line for request %zu twice or unknown", i);
        seen[i] = true;
        ck_assert_str_eq(harness_json_str(line, "trace_id"), reqs[i].trace_id);
        ck_assert_str_eq(harness_json_str(line, "parent_span_id"), reqs[i].parent_id);
        ck_assert_str_eq(harness_json_str(line, "span_id"), spans[i]);
        ck_assert_str_eq(harness_json_str(line, "x_trace_id"), reqs[i].x_trace_id);
        ck_assert_int_eq(harness_json_int(line, "status", 0), 200);
    }
    for (size_t i = 0; i < BURST; i++)
        for (size_t j = i + 1; j < BURST; j++)
            ck_assert_msg(strcmp(spans[i], spans[j]) != 0, "requests %zu and %zu share span %s", i,
                          j, spans[i]);

    /* Every line of the log is whole JSON: nothing torn or interleaved. */
    size_t len = 0, newlines = 0;
    char *text = harness_read_file(env.daemon.access_log, &len);
    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < len; i++)
        newlines += text[i] == '\n';
    json_t *all = harness_jsonl_read(env.daemon.access_log);
    ck_assert_msg(json_array_size(all) == newlines, "%zu log lines, %zu of them valid JSON",
                  newlines, json_array_size(all));
    free(text);
    json_decref(all);
    json_decref(lines);

    for (size_t i = 0; i < BURST; i++) {
        curl_multi_remove_handle(multi, reqs[i].t->easy);
        harness_transfer_free(reqs[i].t);
    }
    curl_multi_cleanup(multi);
}
END_TEST

START_TEST(test_slow_upstream_does_not_stall_other_requests)
{
    char id[17], slow_target[64];
    CURLM *multi = curl_multi_init();
    int running = 1;

    harness_random_hex(id, 16);
    snprintf(slow_target, sizeof(slow_target), "/delay/2000?slow=%s", id);
    struct harness_request slow_rq = {.target = slow_target, .timeout_ms = 10000};
    struct harness_transfer *slow = harness_transfer_new(NULL, env.daemon.port, &slow_rq);
    ck_assert_ptr_nonnull(slow);
    curl_multi_add_handle(multi, slow->easy);

    /* The echo upstream records a /delay request when it arrives, before it waits: once the
     * record is there, the slow request is in flight at the upstream. Keep curl going until
     * then. */
    struct harness_field_match m = {"target", slow_target};
    json_t *arrived = NULL;
    double deadline = now_s() + 5;
    while (!arrived && now_s() < deadline) {
        curl_multi_perform(multi, &running);
        curl_multi_poll(multi, NULL, 0, 20, NULL);
        json_t *all = harness_jsonl_wait(env.echo.record_path, harness_match_field, &m, 1, 0, NULL);
        arrived = json_incref(json_array_get(all, 0));
        json_decref(all);
    }
    ck_assert_msg(arrived != NULL, "the slow request never reached the upstream");
    json_decref(arrived);

    double start = now_s();
    for (int i = 0; i < 5; i++) {
        struct harness_response rs;
        struct harness_request rq = {.target = "/small", .timeout_ms = 5000};
        harness_http(env.daemon.port, &rq, &rs);
        ck_assert_msg(rs.result == CURLE_OK && rs.status == 200, "fast request %d: %ld %s", i,
                      rs.status, rs.error);
        ck_assert_uint_eq(rs.body_len, 100);
        harness_response_free(&rs);
    }
    double fast = now_s() - start;
    curl_multi_perform(multi, &running);
    ck_assert_msg(running == 1, "the slow request ended before the fast ones were done");
    ck_assert_msg(fast < 1.0, "5 fast requests took %.3f s next to one slow request", fast);

    running = drive(multi, now_s() + 10);
    ck_assert_int_eq(running, 0);
    ck_assert_msg(slow->response.result == CURLE_OK, "slow request: %s", slow->response.error);
    ck_assert_int_eq(slow->response.status, 200);
    curl_multi_remove_handle(multi, slow->easy);
    harness_transfer_free(slow);
    curl_multi_cleanup(multi);
}
END_TEST

static Suite *concurrency_suite(void)
{
    Suite *s = suite_create("concurrency");
    TCase *tc = tcase_create("many_at_once");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    harness_tcase_timeout(tc, 90);
    tcase_add_test(tc, test_200_concurrent_requests_keep_their_own_trace_context);
    tcase_add_test(tc, test_slow_upstream_does_not_stall_other_requests);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(concurrency_suite());
}
