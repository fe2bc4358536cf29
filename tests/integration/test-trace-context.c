/* SPDX-License-Identifier: MIT */
/*
 * The decision table of docs/trace-context.md (after W3C Trace Context), row by row, through the
 * real daemon: what the client sends, what the echo upstream received, what came back to the client
 * and what the access log says must all tell the same story. Every exchange uses a unique path,
 * which is how the upstream record and the log line are found without trusting the daemon's ids.
 */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct harness_env env;

static void setup(void)
{
    ck_assert_int_eq(harness_env_start(&env, NULL), 0);
}

static void teardown(void)
{
    harness_env_stop(&env);
}

/* One request through the daemon, and both sides' account of it. */
struct exchange {
    char path[64];
    struct harness_response rs;
    json_t *record; /* what the upstream received */
    json_t *log;    /* the access-log line */
    /* tracehop's span as the upstream saw it */
    char trace_id[33], span_id[17], flags[3];
    const char *x_trace_id; /* as the upstream got it */
};

static void exchange_free(struct exchange *x)
{
    harness_response_free(&x->rs);
    json_decref(x->record);
    json_decref(x->log);
}

/*
 * Send GET /trace/<unique> with `headers`, then check what holds for every row: one traceparent
 * upstream, equal to the response's and matching the log line; one X-Trace-ID upstream, equal
 * to the response's and the log's.
 */
static void exchange_run(struct exchange *x, const char *const *headers)
{
    char id[17];
    const char *all_headers[16] = {"User-Agent: tracehop-integration/1"};
    size_t n = 1;

    memset(x, 0, sizeof(*x));
    for (size_t i = 0; headers && headers[i] && n < 15; i++)
        all_headers[n++] = headers[i];
    harness_random_hex(id, 16);
    snprintf(x->path, sizeof(x->path), "/trace/%s", id);
    struct harness_request rq = {.target = x->path, .headers = all_headers};
    harness_http(env.daemon.port, &rq, &x->rs);
    ck_assert_msg(x->rs.result == CURLE_OK, "request failed: %s", x->rs.error);
    ck_assert_int_eq(x->rs.status, 200);

    struct harness_field_match m = {"target", x->path};
    x->record = harness_jsonl_wait_one(env.echo.record_path, harness_match_field, &m);
    ck_assert_msg(x->record != NULL, "the upstream never received %s", x->path);
    x->log = harness_log_line(&env.daemon, "path", x->path);
    ck_assert_msg(x->log != NULL, "no access-log line for %s", x->path);
    const char *schema = harness_log_schema_error(x->log);
    ck_assert_msg(schema == NULL, "access-log line: %s", schema);

    ck_assert_uint_eq(harness_record_header_count(x->record, "traceparent"), 1);
    const char *up_tp = harness_record_header(x->record, "traceparent");
    ck_assert_msg(harness_traceparent_split(up_tp, x->trace_id, x->span_id, x->flags),
                  "upstream traceparent '%s' is not 00-<trace>-<span>-<flags>", up_tp);
    ck_assert_str_eq(harness_json_str(x->log, "trace_id"), x->trace_id);
    ck_assert_str_eq(harness_json_str(x->log, "span_id"), x->span_id);
    ck_assert_str_eq(harness_json_str(x->log, "trace_flags"), x->flags);
    ck_assert_uint_eq(harness_header_count(&x->rs, "traceparent"), 1);
    ck_assert_str_eq(harness_header(&x->rs, "traceparent"), up_tp);

    ck_assert_uint_eq(harness_record_header_count(x->record, "X-Trace-ID"), 1);
    x->x_trace_id = harness_record_header(x->record, "X-Trace-ID");
    ck_assert_uint_eq(harness_header_count(&x->rs, "X-Trace-ID"), 1);
    ck_assert_str_eq(harness_header(&x->rs, "X-Trace-ID"), x->x_trace_id);
    ck_assert_str_eq(harness_json_str(x->log, "x_trace_id"), x->x_trace_id);

    ck_assert_int_eq(harness_json_int(x->log, "status", 0), 200);
    ck_assert_int_eq(harness_json_int(x->log, "upstream_status", 0), 200);
    ck_assert_str_eq(harness_json_str(x->log, "outcome"), "ok");
    ck_assert_str_eq(harness_json_str(x->log, "method"), "GET");
    ck_assert_str_eq(harness_json_str(x->log, "service"), "tracehop");
    ck_assert(harness_json_is_null(x->log, "query"));
    ck_assert_str_eq(harness_json_str(x->log, "route"), "default");
    ck_assert_str_eq(harness_json_str(x->log, "upstream"), env.echo.url);
    ck_assert_str_eq(harness_json_str(x->log, "client_addr"), "127.0.0.1");
    ck_assert_str_eq(harness_json_str(x->log, "user_agent"), "tracehop-integration/1");
    ck_assert_int_eq(harness_json_int(x->log, "bytes_received", -1), 0);
    ck_assert_int_eq(harness_json_int(x->log, "bytes_sent", -1), (json_int_t)x->rs.body_len);
    ck_assert(json_number_value(json_object_get(x->log, "duration_ms")) >= 0);
}

static void assert_continued(const struct exchange *x, const char *trace_id, const char *parent_id)
{
    ck_assert_str_eq(x->trace_id, trace_id);
    ck_assert_str_eq(harness_json_str(x->log, "parent_span_id"), parent_id);
    ck_assert_str_ne(x->span_id, parent_id);
}

static void assert_new_trace(const struct exchange *x)
{
    ck_assert_msg(harness_json_is_null(x->log, "parent_span_id"),
                  "a new trace must log parent_span_id null");
    ck_assert_str_ne(x->trace_id, "00000000000000000000000000000000");
}

static void assert_no_tracestate_upstream(const struct exchange *x)
{
    ck_assert_msg(harness_record_header_count(x->record, "tracestate") == 0,
                  "tracestate must be dropped when the trace is not continued, upstream got '%s'",
                  harness_record_header(x->record, "tracestate"));
}

static void make_traceparent(char *out, size_t size, char trace_id[33], char parent_id[17],
                             const char *flags)
{
    harness_random_hex(trace_id, 32);
    harness_random_hex(parent_id, 16);
    snprintf(out, size, "traceparent: 00-%s-%s-%s", trace_id, parent_id, flags);
}

static void uppercase(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

/* --- row 1: valid traceparent, safe X-Trace-ID ------------------------------------------ */

START_TEST(test_valid_traceparent_and_safe_x_trace_id_continue_the_trace)
{
    char trace_id[33], parent_id[17], tp[80], xid_value[40], xid[64];
    struct exchange x;

    make_traceparent(tp, sizeof(tp), trace_id, parent_id, "01");
    harness_random_hex(xid_value, 12);
    memcpy(xid_value, "req-", 4);
    snprintf(xid, sizeof(xid), "X-Trace-ID: %s", xid_value);
    const char *headers[] = {tp, xid, "tracestate: congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", NULL};
    exchange_run(&x, headers);
    assert_continued(&x, trace_id, parent_id);
    ck_assert_str_eq(x.flags, "01");
    ck_assert_str_eq(x.x_trace_id, xid_value);
    ck_assert_uint_eq(harness_record_header_count(x.record, "tracestate"), 1);
    ck_assert_str_eq(harness_record_header(x.record, "tracestate"),
                     "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    exchange_free(&x);
}
END_TEST

/* --- row 2: valid traceparent, no X-Trace-ID -------------------------------------------- */

START_TEST(test_valid_traceparent_without_x_trace_id_gets_trace_id_as_uuid)
{
    char trace_id[33], parent_id[17], tp[80], uuid[37];
    struct exchange x;

    make_traceparent(tp, sizeof(tp), trace_id, parent_id, "01");
    const char *headers[] = {tp, "tracestate: vendor=value", NULL};
    exchange_run(&x, headers);
    assert_continued(&x, trace_id, parent_id);
    harness_uuid_from_hex(trace_id, uuid);
    ck_assert_str_eq(x.x_trace_id, uuid);
    ck_assert_str_eq(harness_record_header(x.record, "tracestate"), "vendor=value");
    exchange_free(&x);
}
END_TEST

/* --- row 3: invalid traceparent, UUID X-Trace-ID ---------------------------------------- */

START_TEST(test_invalid_traceparent_with_uuid_x_trace_id_uses_the_uuid_as_trace_id)
{
    char bad_trace[33], parent_id[17], tp[80], uuid_hex[33], uuid[37], xid[64];
    struct exchange x;

    /* Uppercase hex makes the traceparent invalid. */
    harness_random_hex(bad_trace, 32);
    harness_random_hex(parent_id, 16);
    bad_trace[0] = 'a';
    uppercase(bad_trace);
    snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-01", bad_trace, parent_id);
    /* The X-Trace-ID UUID is sent in uppercase too: trace_id must be its lowercase hex. */
    harness_random_hex(uuid_hex, 32);
    uuid_hex[0] = 'c';
    harness_uuid_from_hex(uuid_hex, uuid);
    uppercase(uuid);
    snprintf(xid, sizeof(xid), "X-Trace-ID: %s", uuid);
    const char *headers[] = {tp, xid, "tracestate: vendor=dropped", NULL};
    exchange_run(&x, headers);
    ck_assert_str_eq(x.trace_id, uuid_hex);
    ck_assert(harness_json_is_null(x.log, "parent_span_id"));
    ck_assert_str_eq(x.x_trace_id, uuid); /* as received */
    assert_no_tracestate_upstream(&x);
    ck_assert_str_eq(harness_json_str(x.log, "tracestate_status"), "dropped");
    ck_assert_str_eq(x.flags, "01"); /* sampled (ratio 1), not random: the caller made the id */
    exchange_free(&x);
}
END_TEST

START_TEST(test_no_traceparent_with_uuid_x_trace_id_uses_the_uuid_as_trace_id)
{
    char uuid_hex[33], uuid[37], xid[64];
    struct exchange x;

    harness_random_hex(uuid_hex, 32);
    harness_uuid_from_hex(uuid_hex, uuid);
    snprintf(xid, sizeof(xid), "X-Trace-ID: %s", uuid);
    const char *headers[] = {xid, NULL};
    exchange_run(&x, headers);
    ck_assert_str_eq(x.trace_id, uuid_hex);
    ck_assert(harness_json_is_null(x.log, "parent_span_id"));
    ck_assert_str_eq(x.x_trace_id, uuid);
    exchange_free(&x);
}
END_TEST

/* --- row 4: invalid traceparent, other safe X-Trace-ID ---------------------------------- */

START_TEST(test_invalid_traceparent_with_other_safe_x_trace_id_starts_new_trace_keeping_it)
{
    char trace_id[33], parent_id[17], tp[80], xid_value[40], xid[64];
    struct exchange x;

    harness_random_hex(trace_id, 32);
    harness_random_hex(parent_id, 16);
    snprintf(tp, sizeof(tp), "traceparent: ff-%s-%s-01", trace_id, parent_id); /* version ff */
    harness_random_hex(xid_value, 10);
    memcpy(xid_value, "order-", 6);
    snprintf(xid, sizeof(xid), "X-Trace-ID: %s", xid_value);
    const char *headers[] = {tp, xid, "tracestate: vendor=dropped", NULL};
    exchange_run(&x, headers);
    assert_new_trace(&x);
    ck_assert_str_ne(x.trace_id, trace_id);
    ck_assert_str_ne(x.span_id, parent_id);
    ck_assert_str_eq(x.x_trace_id, xid_value);
    assert_no_tracestate_upstream(&x);
    ck_assert_str_eq(x.flags, "03"); /* sampled, and random: tracehop made the id */
    exchange_free(&x);
}
END_TEST

START_TEST(test_nil_uuid_x_trace_id_is_an_ordinary_safe_value)
{
    static const char nil[] = "00000000-0000-0000-0000-000000000000";
    struct exchange x;

    const char *headers[] = {"X-Trace-ID: 00000000-0000-0000-0000-000000000000", NULL};
    exchange_run(&x, headers);
    assert_new_trace(&x);
    ck_assert_str_eq(x.x_trace_id, nil);
    ck_assert_str_ne(x.trace_id, "00000000000000000000000000000000");
    exchange_free(&x);
}
END_TEST

/* --- row 5: neither ---------------------------------------------------------------------- */

START_TEST(test_no_trace_headers_start_a_new_uuid_v4_trace)
{
    char uuid[37];
    struct exchange x;

    exchange_run(&x, NULL);
    assert_new_trace(&x);
    /* A UUIDv4: version nibble 4, variant 10xx. */
    ck_assert_msg(x.trace_id[12] == '4', "trace id %s is not a UUIDv4 (version)", x.trace_id);
    ck_assert_msg(strchr("89ab", x.trace_id[16]) != NULL, "trace id %s: not variant 1", x.trace_id);
    harness_uuid_from_hex(x.trace_id, uuid);
    ck_assert_str_eq(x.x_trace_id, uuid);
    ck_assert_str_eq(x.flags, "03");
    ck_assert_uint_eq(harness_record_header_count(x.record, "tracestate"), 0);
    ck_assert_msg(json_object_get(x.log, "x_trace_id_rejected") == NULL ||
                      json_is_false(json_object_get(x.log, "x_trace_id_rejected")),
                  "nothing was rejected");
    exchange_free(&x);
}
END_TEST

START_TEST(test_new_traces_are_distinct)
{
    struct exchange a, b;

    exchange_run(&a, NULL);
    exchange_run(&b, NULL);
    ck_assert_str_ne(a.trace_id, b.trace_id);
    ck_assert_str_ne(a.span_id, b.span_id);
    exchange_free(&a);
    exchange_free(&b);
}
END_TEST

/* --- unsafe X-Trace-ID -------------------------------------------------------------------- */

static const char *const unsafe_x_trace_ids[] = {
    "X-Trace-ID: has space",   "X-Trace-ID: quote\"d", "X-Trace-ID: back\\slash",
    "X-Trace-ID: caf\xc3\xa9", "X-Trace-ID;", /* curl's spelling of an empty header */
    "X-Trace-ID: LONG",                       /* replaced below by 129 characters */
};

START_TEST(test_unsafe_x_trace_id_is_replaced_and_logged_as_rejected)
{
    char uuid[37];
    struct exchange x;

    char long_value[12 + 129 + 1] = "X-Trace-ID: ";
    const char *headers[] = {unsafe_x_trace_ids[_i], NULL};
    if (strcmp(headers[0], "X-Trace-ID: LONG") == 0) {
        memset(long_value + 12, 'a', 129);
        long_value[12 + 129] = '\0';
        headers[0] = long_value;
    }
    exchange_run(&x, headers);
    assert_new_trace(&x);
    harness_uuid_from_hex(x.trace_id, uuid);
    ck_assert_msg(strcmp(x.x_trace_id, uuid) == 0,
                  "'%s': upstream X-Trace-ID '%s' should be the new trace id as UUID %s",
                  headers[0], x.x_trace_id, uuid);
    ck_assert_msg(json_is_true(json_object_get(x.log, "x_trace_id_rejected")),
                  "'%s': the log line must say x_trace_id_rejected: true", headers[0]);
    exchange_free(&x);
}
END_TEST

START_TEST(test_unsafe_x_trace_id_with_valid_traceparent_becomes_trace_id_uuid)
{
    char trace_id[33], parent_id[17], tp[80], uuid[37];
    struct exchange x;

    make_traceparent(tp, sizeof(tp), trace_id, parent_id, "01");
    const char *headers[] = {tp, "X-Trace-ID: not safe", NULL};
    exchange_run(&x, headers);
    assert_continued(&x, trace_id, parent_id);
    harness_uuid_from_hex(trace_id, uuid);
    ck_assert_str_eq(x.x_trace_id, uuid);
    ck_assert(json_is_true(json_object_get(x.log, "x_trace_id_rejected")));
    exchange_free(&x);
}
END_TEST

/* --- W3C details -------------------------------------------------------------------------- */

START_TEST(test_duplicate_traceparent_headers_start_a_new_trace)
{
    char t1[33], p1[17], tp1[80], t2[33], p2[17], tp2[80], uuid[37];
    struct exchange x;

    make_traceparent(tp1, sizeof(tp1), t1, p1, "01");
    make_traceparent(tp2, sizeof(tp2), t2, p2, "01");
    const char *headers[] = {tp1, tp2, NULL};
    exchange_run(&x, headers);
    assert_new_trace(&x);
    ck_assert_str_ne(x.trace_id, t1);
    ck_assert_str_ne(x.trace_id, t2);
    harness_uuid_from_hex(x.trace_id, uuid);
    ck_assert_str_eq(x.x_trace_id, uuid);
    exchange_free(&x);
}
END_TEST

START_TEST(test_tracestate_fields_are_combined_in_order)
{
    char trace_id[33], parent_id[17], tp[80];
    struct exchange x;

    make_traceparent(tp, sizeof(tp), trace_id, parent_id, "01");
    const char *headers[] = {tp, "tracestate: a=1", "tracestate: b=2,c=3", NULL};
    exchange_run(&x, headers);
    assert_continued(&x, trace_id, parent_id);
    ck_assert_uint_eq(harness_record_header_count(x.record, "tracestate"), 1);
    ck_assert_str_eq(harness_record_header(x.record, "tracestate"), "a=1,b=2,c=3");
    ck_assert_msg(json_object_get(x.log, "tracestate_status") == NULL,
                  "tracestate_status logged for a tracestate forwarded as it came");
    exchange_free(&x);
}
END_TEST

/* A tracestate that was not forwarded as it came says so in the log. */
START_TEST(test_tracestate_invalid_or_truncated_is_logged)
{
    char trace_id[33], parent_id[17], tp[80], long_state[1024];
    struct exchange x;

    make_traceparent(tp, sizeof(tp), trace_id, parent_id, "01");
    const char *invalid[] = {tp, "tracestate: UPPER=1", NULL};
    exchange_run(&x, invalid);
    assert_continued(&x, trace_id, parent_id);
    assert_no_tracestate_upstream(&x);
    ck_assert_str_eq(harness_json_str(x.log, "tracestate_status"), "invalid");
    exchange_free(&x);

    /* Ten members of 60 characters: over the 512 that are forwarded. */
    size_t n = (size_t)snprintf(long_state, sizeof(long_state), "tracestate: ");
    for (int i = 0; i < 10; i++) {
        n += (size_t)snprintf(long_state + n, sizeof(long_state) - n, "%sk%d=", i ? "," : "", i);
        memset(long_state + n, 'v', 56);
        n += 56;
        long_state[n] = '\0';
    }
    const char *truncated[] = {tp, long_state, NULL};
    exchange_run(&x, truncated);
    assert_continued(&x, trace_id, parent_id);
    ck_assert_ptr_nonnull(harness_record_header(x.record, "tracestate"));
    ck_assert_uint_le(strlen(harness_record_header(x.record, "tracestate")), 512);
    ck_assert_str_eq(harness_json_str(x.log, "tracestate_status"), "truncated");
    exchange_free(&x);
}
END_TEST

/* W3C Trace Context Level 2 (docs/trace-context.md, 3.): a repeated key keeps the header, the
 * first member of the key goes on; '@' is a key character anywhere but first. */
START_TEST(test_tracestate_duplicate_keys_keep_the_first)
{
    char trace_id[33], parent_id[17], tp[80];
    struct exchange x;

    make_traceparent(tp, sizeof(tp), trace_id, parent_id, "01");
    const char *headers[] = {tp, "tracestate: foo=1,a@b@c=2,foo=3", "tracestate: 1x=4,foo=5", NULL};
    exchange_run(&x, headers);
    assert_continued(&x, trace_id, parent_id);
    ck_assert_uint_eq(harness_record_header_count(x.record, "tracestate"), 1);
    ck_assert_str_eq(harness_record_header(x.record, "tracestate"), "foo=1,a@b@c=2,1x=4");
    exchange_free(&x);
}
END_TEST

static const char *const incoming_flags[] = {"00", "01", "02", "03"};

START_TEST(test_continued_trace_keeps_sampled_and_random_flags)
{
    char trace_id[33], parent_id[17], tp[80];
    struct exchange x;

    make_traceparent(tp, sizeof(tp), trace_id, parent_id, incoming_flags[_i]);
    const char *headers[] = {tp, NULL};
    exchange_run(&x, headers);
    assert_continued(&x, trace_id, parent_id);
    ck_assert_str_eq(x.flags, incoming_flags[_i]);
    exchange_free(&x);
}
END_TEST

START_TEST(test_future_traceparent_version_is_continued_as_version_00)
{
    char trace_id[33], parent_id[17], tp[120];
    struct exchange x;

    harness_random_hex(trace_id, 32);
    harness_random_hex(parent_id, 16);
    snprintf(tp, sizeof(tp), "traceparent: cc-%s-%s-01-what-the-future-holds", trace_id, parent_id);
    const char *headers[] = {tp, NULL};
    exchange_run(&x, headers);
    assert_continued(&x, trace_id, parent_id); /* exchange_run checked the "00-" form */
    exchange_free(&x);
}
END_TEST

START_TEST(test_zero_trace_id_traceparent_is_invalid)
{
    char parent_id[17], tp[80];
    struct exchange x;

    harness_random_hex(parent_id, 16);
    snprintf(tp, sizeof(tp), "traceparent: 00-00000000000000000000000000000000-%s-01", parent_id);
    const char *headers[] = {tp, NULL};
    exchange_run(&x, headers);
    assert_new_trace(&x);
    exchange_free(&x);
}
END_TEST

static Suite *trace_context_suite(void)
{
    Suite *s = suite_create("trace-context");
    TCase *tc = tcase_create("spec_section_3");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_test(tc, test_valid_traceparent_and_safe_x_trace_id_continue_the_trace);
    tcase_add_test(tc, test_valid_traceparent_without_x_trace_id_gets_trace_id_as_uuid);
    tcase_add_test(tc, test_invalid_traceparent_with_uuid_x_trace_id_uses_the_uuid_as_trace_id);
    tcase_add_test(tc, test_no_traceparent_with_uuid_x_trace_id_uses_the_uuid_as_trace_id);
    tcase_add_test(tc,
                   test_invalid_traceparent_with_other_safe_x_trace_id_starts_new_trace_keeping_it);
    tcase_add_test(tc, test_nil_uuid_x_trace_id_is_an_ordinary_safe_value);
    tcase_add_test(tc, test_no_trace_headers_start_a_new_uuid_v4_trace);
    tcase_add_test(tc, test_new_traces_are_distinct);
    tcase_add_loop_test(tc, test_unsafe_x_trace_id_is_replaced_and_logged_as_rejected, 0,
                        (int)(sizeof(unsafe_x_trace_ids) / sizeof(unsafe_x_trace_ids[0])));
    tcase_add_test(tc, test_unsafe_x_trace_id_with_valid_traceparent_becomes_trace_id_uuid);
    tcase_add_test(tc, test_duplicate_traceparent_headers_start_a_new_trace);
    tcase_add_test(tc, test_tracestate_fields_are_combined_in_order);
    tcase_add_test(tc, test_tracestate_duplicate_keys_keep_the_first);
    tcase_add_test(tc, test_tracestate_invalid_or_truncated_is_logged);
    tcase_add_loop_test(tc, test_continued_trace_keeps_sampled_and_random_flags, 0,
                        (int)(sizeof(incoming_flags) / sizeof(incoming_flags[0])));
    tcase_add_test(tc, test_future_traceparent_version_is_continued_as_version_00);
    tcase_add_test(tc, test_zero_trace_id_traceparent_is_invalid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(trace_context_suite());
}
