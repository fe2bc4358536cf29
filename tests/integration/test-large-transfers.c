/* SPDX-License-Identifier: MIT */
/*
 * Bodies are streamed with bounded memory (docs/security.md, Limits: body buffers; and
 * docs/operations.md, Capacity): 100 MiB each way, with Content-Length and chunked, must arrive
 * intact (FNV-1a of every byte) while the daemon's resident set grows by less than 64 MiB. VmRSS is
 * sampled from /proc while the transfer runs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define BIG_BYTES      (100ull * 1024 * 1024)
#define RSS_GROWTH_KIB (64 * 1024)

static struct harness_env env;

static void setup(void)
{
    ck_assert_int_eq(harness_env_start(&env, NULL), 0);
}

static void teardown(void)
{
    harness_env_stop(&env);
}

struct rss_sampler {
    pid_t pid;
    long baseline_kib, peak_kib;
    unsigned samples;
    struct timespec last;
};

static void rss_sample(void *arg)
{
    struct rss_sampler *s = arg;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    long since_us =
        (now.tv_sec - s->last.tv_sec) * 1000000L + (now.tv_nsec - s->last.tv_nsec) / 1000;
    if (s->samples > 0 && since_us < 5000)
        return; /* every 5 ms is plenty */
    s->last = now;
    long kib = harness_rss_kib(s->pid);
    if (kib > s->peak_kib)
        s->peak_kib = kib;
    s->samples++;
}

/* Warm the daemon up (pools, buffers, one request on each path) and take the baseline. */
static void rss_start(struct rss_sampler *s)
{
    for (int i = 0; i < 4; i++) {
        struct harness_response rs;
        struct harness_request rq = {.target = "/download?bytes=1000000", .discard_body = true};
        harness_http(env.daemon.port, &rq, &rs);
        ck_assert_int_eq(rs.status, 200);
        harness_response_free(&rs);
    }
    *s = (struct rss_sampler){.pid = env.daemon.proc.pid};
    s->baseline_kib = harness_rss_kib(s->pid);
    s->peak_kib = s->baseline_kib;
    ck_assert_msg(s->baseline_kib > 0, "cannot read VmRSS of pid %d", (int)s->pid);
}

static void rss_check(struct rss_sampler *s, const char *what)
{
    ck_assert_msg(s->samples > 10, "%s: VmRSS was sampled only %u times", what, s->samples);
    s->last.tv_sec = 0; /* force a last sample */
    rss_sample(s);
    fprintf(stderr, "%s: daemon VmRSS baseline %ld KiB, peak %ld KiB (%u samples)\n", what,
            s->baseline_kib, s->peak_kib, s->samples);
    ck_assert_msg(s->peak_kib - s->baseline_kib < RSS_GROWTH_KIB,
                  "%s: the daemon's RSS grew by %ld KiB (limit %d KiB)", what,
                  s->peak_kib - s->baseline_kib, RSS_GROWTH_KIB);
}

/* The access-log line of a response, by the span id of its traceparent. */
static json_t *log_of(const struct harness_response *rs)
{
    char trace_id[33], span_id[17], flags[3];
    ck_assert(
        harness_traceparent_split(harness_header(rs, "traceparent"), trace_id, span_id, flags));
    json_t *line = harness_log_line(&env.daemon, "span_id", span_id);
    ck_assert_ptr_nonnull(line);
    return line;
}

static void download(const char *target, bool with_length)
{
    struct rss_sampler rss;
    struct harness_response rs;

    rss_start(&rss);
    struct harness_request rq = {.target = target,
                                 .discard_body = true,
                                 .timeout_ms = 120000,
                                 .progress = rss_sample,
                                 .progress_arg = &rss};
    harness_http(env.daemon.port, &rq, &rs);
    ck_assert_msg(rs.result == CURLE_OK, "%s: %s", target, rs.error);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_uint_eq(rs.body_len, BIG_BYTES);
    ck_assert_msg(rs.body_hash == harness_pattern_hash(BIG_BYTES), "%s: the body differs", target);
    if (with_length)
        ck_assert_str_eq(harness_header(&rs, "Content-Length"), "104857600");
    rss_check(&rss, target);
    json_t *log = log_of(&rs);
    ck_assert_int_eq(harness_json_int(log, "bytes_sent", -1), (json_int_t)BIG_BYTES);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "ok");
    json_decref(log);
    harness_response_free(&rs);
}

static void upload(bool chunked)
{
    struct rss_sampler rss;
    struct harness_response rs;
    char hash[17];
    const char *what = chunked ? "chunked upload" : "Content-Length upload";

    rss_start(&rss);
    struct harness_request rq = {.method = "POST",
                                 .target = "/upload",
                                 .pattern_body_bytes = BIG_BYTES,
                                 .chunked = chunked,
                                 .timeout_ms = 120000,
                                 .progress = rss_sample,
                                 .progress_arg = &rss};
    harness_http(env.daemon.port, &rq, &rs);
    ck_assert_msg(rs.result == CURLE_OK, "%s: %s", what, rs.error);
    ck_assert_int_eq(rs.status, 200);
    json_t *answer = harness_response_json(&rs);
    ck_assert_msg(answer != NULL, "%s: the /upload answer is not JSON", what);
    harness_hash_hex(harness_pattern_hash(BIG_BYTES), hash);
    ck_assert_int_eq(harness_json_int(answer, "bytes", -1), (json_int_t)BIG_BYTES);
    ck_assert_str_eq(harness_json_str(answer, "hash"), hash);
    rss_check(&rss, what);
    json_t *log = log_of(&rs);
    ck_assert_int_eq(harness_json_int(log, "bytes_received", -1), (json_int_t)BIG_BYTES);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "ok");
    json_decref(log);
    json_decref(answer);
    harness_response_free(&rs);
}

START_TEST(test_100_mib_download_with_content_length_streams_in_bounded_memory)
{
    download("/download?bytes=104857600", true);
}
END_TEST

START_TEST(test_100_mib_chunked_download_streams_in_bounded_memory)
{
    download("/download-chunked?bytes=104857600", false);
}
END_TEST

START_TEST(test_100_mib_upload_with_content_length_streams_in_bounded_memory)
{
    upload(false);
}
END_TEST

START_TEST(test_100_mib_chunked_upload_streams_in_bounded_memory)
{
    upload(true);
}
END_TEST

static Suite *large_suite(void)
{
    Suite *s = suite_create("large-transfers");
    TCase *tc = tcase_create("100_mib_each_way");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    harness_tcase_timeout(tc, 120);
    tcase_add_test(tc, test_100_mib_download_with_content_length_streams_in_bounded_memory);
    tcase_add_test(tc, test_100_mib_chunked_download_streams_in_bounded_memory);
    tcase_add_test(tc, test_100_mib_upload_with_content_length_streams_in_bounded_memory);
    tcase_add_test(tc, test_100_mib_chunked_upload_streams_in_bounded_memory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(large_suite());
}
