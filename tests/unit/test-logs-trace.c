/* SPDX-License-Identifier: MIT */

/*
 * Trace selection of `tracehop logs --trace-id` (src/cli/log_trace.c): how the ID is
 * normalised (W3C hex in any case, UUID in any case, a whole traceparent, anything else as an
 * X-Trace-ID), and how the set of a trace grows: lines join by trace_id or x_trace_id, a UUID
 * X-Trace-ID counts as the trace id it maps to (docs/trace-context.md, "4. X-Trace-ID": UUID <->
 * trace-id), and the set reports when it grew so that the reader knows it must look again.
 */

#include <errno.h>
#include <stdio.h>

#include "cli/log_trace.h"
#include "unit-test.h"

#define HEX  "4bf92f3577b34da6a3ce929d0e0e4736"
#define UUID "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"

struct query_vector {
    const char *arg;
    int rc;
    bool has_trace_id;
};

static const struct query_vector query_vectors[] = {
    {HEX, 0, true},
    {"4BF92F3577B34DA6A3CE929D0E0E4736", 0, true},
    {UUID, 0, true},
    {"4BF92F35-77B3-4DA6-A3CE-929D0E0E4736", 0, true},
    {"00-" HEX "-00f067aa0ba902b7-01", 0, true},
    {"00-" HEX "-0000000000000000-01", 0, false},  /* not a valid traceparent: just text */
    {"4bf92f3577b34da6a3ce929d0e0e473", 0, false}, /* 31 digits */
    {"4bf92f3577b34da6a3ce929d0e0e47366", 0, false},
    {"4bf92f35-77b3-4da6-a3ce-929d0e0e473g", 0, false},
    {"order-4711", 0, false},
    {"a", 0, false},
    {"", -EINVAL, false},
};

START_TEST(test_query_vectors)
{
    const struct query_vector *v = &query_vectors[_i];
    struct log_trace_query q;
    char err[128];
    uint8_t want[16];

    int rc = log_trace_query_parse(v->arg, &q, err, sizeof(err));
    ck_assert_msg(rc == v->rc, "'%s': %d", v->arg, rc);
    if (rc < 0)
        return;
    ck_assert_msg(q.has_trace_id == v->has_trace_id, "'%s'", v->arg);
    if (q.has_trace_id) {
        unit_hex_to_bytes(HEX, want, 16);
        ck_assert(memcmp(q.trace_id, want, 16) == 0);
    }
    ck_assert_str_eq(q.text, v->arg);
    log_trace_query_free(&q);
}
END_TEST

/* A record with a trace id (32 hex, or NULL) and an X-Trace-ID (or NULL). */
static struct log_record record(const char *trace_hex, const char *x)
{
    struct log_record r = {.x_trace_id = x, .trace_id_text = trace_hex};
    if (trace_hex) {
        unit_hex_to_bytes(trace_hex, r.trace_id, 16);
        r.has_trace_id = true;
    }
    return r;
}

static void set_for(const char *arg, struct log_trace_set *set)
{
    struct log_trace_query q;
    char err[128];

    ck_assert_int_eq(log_trace_query_parse(arg, &q, err, sizeof(err)), 0);
    ck_assert_int_eq(log_trace_set_init(set, &q), 0);
    log_trace_query_free(&q);
}

START_TEST(test_hex_uuid_and_case_find_the_same_lines)
{
    static const char *const args[] = {HEX, "4BF92F3577B34DA6A3CE929D0E0E4736", UUID,
                                       "4BF92F35-77B3-4DA6-A3CE-929D0E0E4736"};
    struct log_record by_trace = record(HEX, "req-1");
    struct log_record by_uuid_x = record("11111111111111111111111111111111", UUID);
    struct log_record by_upper_uuid_x =
        record("22222222222222222222222222222222", "4BF92F35-77B3-4DA6-A3CE-929D0E0E4736");
    struct log_record other = record("33333333333333333333333333333333", "req-2");

    for (size_t i = 0; i < ARRAY_SIZE(args); i++) {
        struct log_trace_set set;
        set_for(args[i], &set);
        ck_assert_msg(log_trace_set_contains(&set, &by_trace), "%s: by trace_id", args[i]);
        ck_assert_msg(log_trace_set_contains(&set, &by_uuid_x), "%s: by UUID x_trace_id", args[i]);
        ck_assert_msg(log_trace_set_contains(&set, &by_upper_uuid_x), "%s: upper case", args[i]);
        ck_assert_msg(!log_trace_set_contains(&set, &other), "%s: unrelated", args[i]);
        log_trace_set_free(&set);
    }
}
END_TEST

START_TEST(test_free_form_x_trace_id_is_exact)
{
    struct log_trace_set set;
    struct log_record same = record("11111111111111111111111111111111", "order-4711");
    struct log_record other_case = record("22222222222222222222222222222222", "ORDER-4711");
    struct log_record prefix = record("33333333333333333333333333333333", "order-471");
    struct log_record no_x = record("44444444444444444444444444444444", NULL);

    set_for("order-4711", &set);
    ck_assert(log_trace_set_contains(&set, &same));
    ck_assert(!log_trace_set_contains(&set, &other_case));
    ck_assert(!log_trace_set_contains(&set, &prefix));
    ck_assert(!log_trace_set_contains(&set, &no_x));
    log_trace_set_free(&set);
}
END_TEST

START_TEST(test_hex_query_also_matches_as_x_trace_id_text)
{
    struct log_trace_set set;
    /* An X-Trace-ID that happens to be 32 hex digits (not a UUID) equals the ID exactly. */
    struct log_record r = record("11111111111111111111111111111111", HEX);

    set_for(HEX, &set);
    ck_assert(log_trace_set_contains(&set, &r));
    log_trace_set_free(&set);
}
END_TEST

/*
 * The legacy story: a (trace T, x "order-1") -> b (trace T, x "order-1") -> legacy app ->
 * c (new trace U, x "order-1") -> d (trace U, x U as UUID). Asked for T: c joins by x, d by
 * c's trace id; the set grows exactly when a line brings a new id.
 */
START_TEST(test_set_grows_through_shared_ids)
{
    static const char T[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1",
                      U[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";
    char u_uuid[37];
    struct log_trace_set set;

    snprintf(u_uuid, sizeof(u_uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", U, U + 8, U + 12, U + 16, U + 20);
    struct log_record a = record(T, "order-1"), b = record(T, "order-1"), c = record(U, "order-1"),
                      d = record(U, u_uuid),
                      unrelated = record("ccccccccccccccccccccccccccccccc3", "order-2");

    set_for(T, &set);
    ck_assert(!log_trace_set_contains(&set, &c)); /* not yet: its ids are unknown */
    ck_assert(log_trace_set_contains(&set, &a));
    ck_assert_int_eq(log_trace_set_add(&set, &a), 1); /* learnt "order-1" */
    ck_assert(log_trace_set_contains(&set, &b));
    ck_assert_int_eq(log_trace_set_add(&set, &b), 0); /* nothing new */
    ck_assert(log_trace_set_contains(&set, &c));
    ck_assert_int_eq(log_trace_set_add(&set, &c), 1); /* learnt U */
    ck_assert(log_trace_set_contains(&set, &d));
    ck_assert_int_eq(log_trace_set_add(&set, &d), 0); /* U as a UUID is U */
    ck_assert(!log_trace_set_contains(&set, &unrelated));
    ck_assert(!set.full);
    log_trace_set_free(&set);
}
END_TEST

/*
 * An edge with trust_incoming: false: the caller (trace T) calls edge, whose tracehop started
 * trace N and logged T as incoming_trace_id and the caller's X-Trace-ID as incoming_x_trace_id;
 * inner continues N. Asked for T, the edge joins by its incoming id and inner by N; asked for
 * N, the caller joins by the edge's incoming id.
 */
START_TEST(test_untrusting_edge_joins_both_traces)
{
    static const char T[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1",
                      N[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";
    struct log_record caller = record(T, "order-9"), edge = record(N, "fresh-1"),
                      inner = record(N, "fresh-1");
    struct log_trace_set set;

    unit_hex_to_bytes(T, edge.incoming_trace_id, 16);
    edge.has_incoming_trace_id = true;

    set_for(T, &set);
    ck_assert(log_trace_set_contains(&set, &caller));
    ck_assert(log_trace_set_contains(&set, &edge)); /* by incoming_trace_id */
    ck_assert(!log_trace_set_contains(&set, &inner));
    ck_assert_int_eq(log_trace_set_add(&set, &edge), 1); /* learnt N */
    ck_assert(log_trace_set_contains(&set, &inner));
    log_trace_set_free(&set);

    set_for(N, &set);
    ck_assert(!log_trace_set_contains(&set, &caller));
    ck_assert_int_eq(log_trace_set_add(&set, &edge), 1); /* learnt T */
    ck_assert(log_trace_set_contains(&set, &caller));
    log_trace_set_free(&set);

    /* The X-Trace-ID alone: a caller known by its X-Trace-ID finds the edge too. */
    edge.has_incoming_trace_id = false;
    edge.incoming_x_trace_id = "order-9";
    set_for("order-9", &set);
    ck_assert(log_trace_set_contains(&set, &edge));
    log_trace_set_free(&set);
}
END_TEST

START_TEST(test_set_stops_growing_at_its_limit)
{
    struct log_trace_set set;
    char hex[33], x[32];

    set_for("shared", &set);
    for (unsigned i = 0; i < LOG_TRACE_SET_MAX + 10; i++) {
        snprintf(hex, sizeof(hex), "%032x", i + 1);
        snprintf(x, sizeof(x), "shared");
        struct log_record r = record(hex, x);
        ck_assert(log_trace_set_contains(&set, &r));
        ck_assert_int_ge(log_trace_set_add(&set, &r), 0);
    }
    ck_assert(set.full);
    ck_assert_uint_le(set.ids.count, LOG_TRACE_SET_MAX);
    log_trace_set_free(&set);
}
END_TEST

START_TEST(test_long_x_trace_ids_do_not_overflow)
{
    struct log_trace_set set;
    size_t len;
    char *huge = unit_expand("{x*100000}", &len);
    struct log_record r = record(NULL, huge);

    set_for("x", &set);
    ck_assert(!log_trace_set_contains(&set, &r));
    ck_assert_int_eq(log_trace_set_add(&set, &r), 1);
    ck_assert(log_trace_set_contains(&set, &r));
    log_trace_set_free(&set);
    free(huge);
}
END_TEST

static Suite *logs_trace_suite(void)
{
    Suite *suite = suite_create("logs-trace");
    TCase *query = tcase_create("query");
    TCase *set = tcase_create("set");

    tcase_add_loop_test(query, test_query_vectors, 0, (int)ARRAY_SIZE(query_vectors));
    suite_add_tcase(suite, query);

    tcase_set_timeout(set, 60);
    tcase_add_test(set, test_hex_uuid_and_case_find_the_same_lines);
    tcase_add_test(set, test_free_form_x_trace_id_is_exact);
    tcase_add_test(set, test_hex_query_also_matches_as_x_trace_id_text);
    tcase_add_test(set, test_set_grows_through_shared_ids);
    tcase_add_test(set, test_untrusting_edge_joins_both_traces);
    tcase_add_test(set, test_set_stops_growing_at_its_limit);
    tcase_add_test(set, test_long_x_trace_ids_do_not_overflow);
    suite_add_tcase(suite, set);
    return suite;
}

int main(void)
{
    return unit_run(logs_trace_suite());
}
