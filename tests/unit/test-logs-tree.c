/* SPDX-License-Identifier: MIT */

/*
 * The hop tree of `tracehop logs --trace-id` (src/cli/log_tree.c) and its drawing
 * (src/cli/log_render.c): parents by span id, parents inferred from time windows (a legacy hop
 * in between), orphans, cycles and duplicate ids in hostile input (which must end, and leave a
 * proper tree), the self-time and overhead arithmetic, and what the text looks like.
 */

#include <math.h>
#include <stdio.h>

#include "cli/log_render.h"
#include "cli/log_tree.h"
#include "unit-test.h"

#define T0 1738324800000LL

struct hop {
    const char *service;
    int64_t time_ms; /* relative to T0 */
    double duration_ms;
    double upstream_ms; /* NAN: null */
    uint64_t span;      /* 0: no span_id */
    uint64_t parent;    /* 0: parent_span_id null */
};

static struct log_record make_record(const struct hop *h, size_t seq)
{
    return (struct log_record){
        .time_ms = T0 + h->time_ms,
        .duration_ms = h->duration_ms,
        .upstream_duration_ms = h->upstream_ms,
        .status = 200,
        .has_span_id = h->span != 0,
        .span_id = h->span,
        .has_parent = h->parent != 0,
        .parent_span_id = h->parent,
        .parent_span_id_text = h->parent ? "00000000000000aa" : NULL,
        .service = h->service,
        .method = "GET",
        .path = "/",
        .trace_id_text = "4bf92f3577b34da6a3ce929d0e0e4736",
        .seq = seq,
    };
}

/* Build the tree of `count` hops; records and pointers go to the caller's arrays. */
static void build(const struct hop *hops, size_t count, struct log_record *records,
                  const struct log_record **pointers, struct log_tree *tree)
{
    for (size_t i = 0; i < count; i++) {
        records[i] = make_record(&hops[i], i);
        pointers[i] = &records[i];
    }
    ck_assert_int_eq(log_tree_build(pointers, count, tree), 0);
    ck_assert_uint_eq(tree->count, count);
}

/* The node of a service (services are unique in these tests). */
static const struct log_tree_node *node_of(const struct log_tree *t, const char *service)
{
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->nodes[i].record->service, service) == 0)
            return &t->nodes[i];
    ck_abort_msg("no hop %s", service);
    return NULL;
}

/* The service of a node's parent, or "-" for a root. */
static const char *parent_of(const struct log_tree *t, const char *service)
{
    const struct log_tree_node *n = node_of(t, service);
    return n->parent == LOG_TREE_NONE ? "-" : t->nodes[n->parent].record->service;
}

/* Every node appears once in the drawing order, after its parent, one level deeper. */
static void assert_well_formed(const struct log_tree *t)
{
    bool *seen = calloc(t->count ? t->count : 1, sizeof(bool));
    ck_assert_ptr_nonnull(seen);
    for (size_t k = 0; k < t->count; k++) {
        size_t i = t->order[k];
        ck_assert_uint_lt(i, t->count);
        ck_assert(!seen[i]);
        seen[i] = true;
        const struct log_tree_node *n = &t->nodes[i];
        if (n->parent == LOG_TREE_NONE) {
            ck_assert_uint_eq(n->depth, 0);
            ck_assert_int_eq(n->link, LOG_TREE_ROOT);
        } else {
            ck_assert(seen[n->parent]);
            ck_assert_uint_eq(n->depth, t->nodes[n->parent].depth + 1);
            ck_assert_int_ne(n->link, LOG_TREE_ROOT);
        }
    }
    free(seen);
}

/* --- links ------------------------------------------------------------------------------------ */

START_TEST(test_span_links_across_services)
{
    /* Given in the order the files might yield them: not the call order. */
    const struct hop hops[] = {
        {"c", 4, 10, 9, 0xc, 0xb},
        {"a", 0, 30, 29, 0xa, 0},
        {"b", 2, 20, 19, 0xb, 0xa},
    };
    struct log_record records[3];
    const struct log_record *pointers[3];
    struct log_tree t;

    build(hops, 3, records, pointers, &t);
    assert_well_formed(&t);
    ck_assert_str_eq(parent_of(&t, "a"), "-");
    ck_assert_str_eq(parent_of(&t, "b"), "a");
    ck_assert_str_eq(parent_of(&t, "c"), "b");
    ck_assert_int_eq(node_of(&t, "c")->link, LOG_TREE_SPAN);
    ck_assert_uint_eq(node_of(&t, "c")->depth, 2);
    ck_assert_str_eq(t.nodes[t.order[0]].record->service, "a");
    ck_assert(t.start_ms == T0);
    ck_assert(t.span_ms == 30);
    ck_assert(node_of(&t, "b")->offset_ms == 2);
    log_tree_free(&t);
}
END_TEST

START_TEST(test_root_inside_a_window_is_inferred_under_the_innermost)
{
    /* b's app is legacy: c started a new root span inside b (and inside a). */
    const struct hop hops[] = {
        {"a", 0, 30, 29, 0xa, 0}, {"b", 2, 20, 19, 0xb, 0xa},
        {"c", 4, 10, 9, 0xc, 0},  {"d", 25, 3, 2, 0xd, 0}, /* after b ended, still inside a */
        {"e", 40, 3, 2, 0xe, 0},                           /* outside everything */
    };
    struct log_record records[5];
    const struct log_record *pointers[5];
    struct log_tree t;

    build(hops, 5, records, pointers, &t);
    assert_well_formed(&t);
    ck_assert_str_eq(parent_of(&t, "c"), "b");
    ck_assert_int_eq(node_of(&t, "c")->link, LOG_TREE_INFERRED);
    ck_assert_str_eq(parent_of(&t, "d"), "a");
    ck_assert_int_eq(node_of(&t, "d")->link, LOG_TREE_INFERRED);
    ck_assert_str_eq(parent_of(&t, "e"), "-");
    ck_assert_str_eq(parent_of(&t, "a"), "-");
    log_tree_free(&t);
}
END_TEST

START_TEST(test_window_tolerance_is_one_millisecond)
{
    /* c's start is truncated to the ms: its end may pass b's by less than 1 ms. */
    const struct hop hops[] = {
        {"b", 0, 2.5, 2.4, 0xb, 0},
        {"c", 1, 2.2, 2.1, 0xc, 0}, /* ends at 3.2 <= 2.5 + 1 */
        {"x", 10, 2.5, 2.4, 0x1, 0},
        {"y", 11, 2.6, 2.5, 0x2, 0}, /* ends at 13.6 > 12.5 + 1: not inside x */
    };
    struct log_record records[4];
    const struct log_record *pointers[4];
    struct log_tree t;

    build(hops, 4, records, pointers, &t);
    ck_assert_str_eq(parent_of(&t, "c"), "b");
    ck_assert_str_eq(parent_of(&t, "y"), "-");
    /* Drawn inside its parent: moved back by less than the resolution. */
    ck_assert(fabs(node_of(&t, "c")->offset_ms - 0.3) < 1e-9);
    log_tree_free(&t);
}
END_TEST

START_TEST(test_identical_windows_do_not_contain_each_other)
{
    const struct hop hops[] = {
        {"a", 0, 5, 4, 0xa, 0},
        {"b", 0, 5, 4, 0xb, 0},
    };
    struct log_record records[2];
    const struct log_record *pointers[2];
    struct log_tree t;

    build(hops, 2, records, pointers, &t);
    assert_well_formed(&t);
    /* One of them under the other, never both. */
    ck_assert(strcmp(parent_of(&t, "a"), "-") == 0 || strcmp(parent_of(&t, "b"), "-") == 0);
    log_tree_free(&t);
}
END_TEST

START_TEST(test_orphans)
{
    /* b names a parent that is in no log (an instrumented app's own span). */
    const struct hop hops[] = {
        {"a", 0, 30, 29, 0xa, 0},
        {"b", 2, 20, 19, 0xb, 0xdead},
        {"z", 100, 1, 1, 0x2, 0xbeef}, /* an orphan inside nothing */
    };
    struct log_record records[3];
    const struct log_record *pointers[3];
    struct log_tree t;

    build(hops, 3, records, pointers, &t);
    assert_well_formed(&t);
    ck_assert(node_of(&t, "b")->orphan);
    ck_assert_str_eq(parent_of(&t, "b"), "a");
    ck_assert_int_eq(node_of(&t, "b")->link, LOG_TREE_INFERRED);
    ck_assert(node_of(&t, "z")->orphan);
    ck_assert_str_eq(parent_of(&t, "z"), "-");
    log_tree_free(&t);
}
END_TEST

START_TEST(test_duplicate_span_ids_link_to_the_first)
{
    const struct hop hops[] = {
        {"a", 0, 30, 29, 0xa, 0},
        {"a2", 50, 30, 29, 0xa, 0}, /* the same span id again (hostile, or a copied line) */
        {"b", 60, 5, 4, 0xb, 0xa},
    };
    struct log_record records[3];
    const struct log_record *pointers[3];
    struct log_tree t;

    build(hops, 3, records, pointers, &t);
    assert_well_formed(&t);
    ck_assert_str_eq(parent_of(&t, "b"), "a");
    log_tree_free(&t);
}
END_TEST

/* --- cycles ------------------------------------------------------------------------------------
 */

START_TEST(test_cycles_are_cut)
{
    const struct hop hops[] = {
        {"self", 0, 1, 1, 0x1, 0x1},                               /* its own parent */
        {"p", 10, 5, 4, 0x2, 0x3},   {"q", 11, 4, 3, 0x3, 0x2},    /* a 2-cycle */
        {"r", 20, 9, 8, 0x4, 0x6},   {"s", 21, 8, 7, 0x5, 0x4},    /* a 3-cycle */
        {"t", 22, 7, 6, 0x6, 0x5},   {"tail", 23, 1, 1, 0x7, 0x6}, /* hanging from it */
    };
    struct log_record records[7];
    const struct log_record *pointers[7];
    struct log_tree t;

    build(hops, 7, records, pointers, &t);
    assert_well_formed(&t);
    ck_assert(node_of(&t, "self")->cycle);
    ck_assert(node_of(&t, "p")->cycle); /* the earliest of its cycle */
    ck_assert(!node_of(&t, "q")->cycle);
    ck_assert_str_eq(parent_of(&t, "q"), "p");
    ck_assert(node_of(&t, "r")->cycle);
    ck_assert_str_eq(parent_of(&t, "s"), "r");
    ck_assert_str_eq(parent_of(&t, "t"), "s");
    ck_assert_str_eq(parent_of(&t, "tail"), "t");
    log_tree_free(&t);
}
END_TEST

/* Random span and parent ids from a small pool: cycles, duplicates, orphans, all at once. */
START_TEST(test_hostile_random_links_terminate)
{
    enum { N = 3000 };
    static struct hop hops[N];
    static struct log_record records[N];
    static const struct log_record *pointers[N];
    static char names[N][8];
    uint64_t state = unit_prng_seed(0x7ee + (uint64_t)_i);
    struct log_tree t;

    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "s%zu", i);
        hops[i] = (struct hop){
            .service = names[i],
            .time_ms = (int64_t)(unit_prng_next(&state) % 50),
            .duration_ms = (double)(unit_prng_next(&state) % 60),
            .upstream_ms = unit_prng_next(&state) % 4 ? (double)(unit_prng_next(&state) % 60) : NAN,
            .span = unit_prng_next(&state) % 500,
            .parent = unit_prng_next(&state) % 600,
        };
        if (unit_prng_next(&state) % 10 == 0)
            hops[i].duration_ms = NAN;
    }
    build(hops, N, records, pointers, &t);
    assert_well_formed(&t);
    for (size_t i = 0; i < N; i++) {
        ck_assert(isnan(t.nodes[i].self_ms) || t.nodes[i].self_ms >= 0);
        ck_assert(isnan(t.nodes[i].overhead_ms) || t.nodes[i].overhead_ms >= 0);
    }
    struct strbuf out = {0};
    log_render_tree(&out, &t, LOG_RENDER_BAR_COLUMNS);
    ck_assert(!out.oom);
    strbuf_free(&out);
    log_tree_free(&t);
}
END_TEST

/* --- self time and overhead ----------------------------------------------------------------------
 */

struct busy_vector {
    const char *name;
    size_t count;
    double starts[4], durations[4];
    double busy;
};

static const struct busy_vector busy_vectors[] = {
    {"none", 0, {0}, {0}, 0},
    {"one", 1, {2}, {5}, 5},
    {"sequential", 3, {0, 5, 10}, {4, 4, 4}, 12},
    /* The second starts in the same ms the first ended in: still sequential, summed. */
    {"sequential, ms time stamps", 2, {0, 5}, {5.4, 3}, 8.4},
    {"overlapping", 2, {0, 2}, {10, 10}, 12},
    {"nested", 2, {0, 2}, {10, 3}, 10},
    {"parallel fan-out", 3, {0, 0, 0}, {5, 7, 6}, 7},
    {"null duration", 2, {0, 5}, {NAN, 3}, 3},
};

START_TEST(test_children_busy_vectors)
{
    const struct busy_vector *v = &busy_vectors[_i];
    double busy = log_tree_children_busy_ms(v->starts, v->durations, v->count);
    ck_assert_msg(fabs(busy - v->busy) < 1e-9, "%s: %f, not %f", v->name, busy, v->busy);
}
END_TEST

START_TEST(test_self_time_and_overhead)
{
    const struct hop hops[] = {
        {"a", 0, 30.5, 30.1, 0xa, 0}, /* upstream 30.1 - b 20 = 10.1; overhead 0.4 */
        {"b", 2, 20, 19.5, 0xb, 0xa}, /* 19.5 - c 10 - d 5 = 4.5 */
        {"c", 3, 10, 9.7, 0xc, 0xb},  /* a leaf: all of its upstream time */
        {"d", 14, 5, 4, 0xd, 0xb},    /* 4 */
        {"e", 40, 10, 12, 0xe, 0},    /* upstream longer than the hop: overhead 0 */
        {"f", 60, 10, NAN, 0xf, 0},   /* no upstream (404): unknown */
        {"g", 80, 10, 3, 0x10, 0},    /* children longer than its upstream: self 0 */
        {"h", 80, 9, 8, 0x11, 0x10},
    };
    struct log_record records[8];
    const struct log_record *pointers[8];
    struct log_tree t;

    build(hops, 8, records, pointers, &t);
    ck_assert(fabs(node_of(&t, "a")->self_ms - 10.1) < 1e-9);
    ck_assert(fabs(node_of(&t, "a")->overhead_ms - 0.4) < 1e-9);
    ck_assert(fabs(node_of(&t, "b")->self_ms - 4.5) < 1e-9);
    ck_assert(fabs(node_of(&t, "c")->self_ms - 9.7) < 1e-9);
    ck_assert(fabs(node_of(&t, "d")->self_ms - 4) < 1e-9);
    ck_assert(node_of(&t, "e")->overhead_ms == 0);
    ck_assert(isnan(node_of(&t, "f")->self_ms));
    ck_assert(isnan(node_of(&t, "f")->overhead_ms));
    ck_assert(node_of(&t, "g")->self_ms == 0);
    log_tree_free(&t);
}
END_TEST

START_TEST(test_empty_tree)
{
    struct log_tree t;
    struct strbuf out = {0};

    ck_assert_int_eq(log_tree_build(NULL, 0, &t), 0);
    ck_assert_uint_eq(t.count, 0);
    log_render_tree(&out, &t, 40);
    ck_assert_uint_eq(out.len, 0);
    log_tree_free(&t);
    strbuf_free(&out);
}
END_TEST

/* --- rendering ------------------------------------------------------------------------------- */

START_TEST(test_tree_drawing)
{
    const struct hop hops[] = {
        {"a", 0, 40, 39, 0xa, 0},
        {"b", 10, 20, 19, 0xb, 0xa},
        {"c", 20, 10, 9, 0xc, 0},
    };
    struct log_record records[3];
    const struct log_record *pointers[3];
    struct log_tree t;
    struct strbuf out = {0};
    char expect[128];

    build(hops, 3, records, pointers, &t);
    log_render_tree(&out, &t, 40);
    ck_assert(!out.oom);
    ck_assert_ptr_nonnull(strstr(out.data, "3 hops, 3 services, 40.000 ms"));
    ck_assert_ptr_nonnull(strstr(out.data, "\n    +0.000  a GET /"));
    ck_assert_ptr_nonnull(strstr(out.data, "\n   +10.000  `- b GET /"));
    ck_assert_ptr_nonnull(strstr(out.data, "\n   +20.000     `~ c GET /"));
    ck_assert_ptr_nonnull(strstr(out.data, "parent inferred"));
    /* Bars on one scale: a fills 40 columns, b the middle 20, c 10 from column 20. */
    snprintf(expect, sizeof(expect), "|%.40s|", "########################################");
    ck_assert_ptr_nonnull(strstr(out.data, expect));
    ck_assert_ptr_nonnull(strstr(out.data, "|          ####################          |"));
    ck_assert_ptr_nonnull(strstr(out.data, "|                    ##########          |"));
    strbuf_free(&out);
    log_tree_free(&t);
}
END_TEST

/*
 * An edge with trust_incoming: false: caller (trace T) -> edge (new trace N, parent_span_id
 * null, incoming_parent_span_id = caller's span) -> inner (trace N, parent = edge). The edge
 * hangs under the caller, marked as a new trace, not as a root or an inferred child.
 */
START_TEST(test_new_trace_at_an_untrusting_edge_hangs_under_its_caller)
{
    const struct hop hops[] = {
        {"caller", 0, 40, 39, 0xa, 0},
        {"edge", 10, 20, 19, 0xe, 0},
        {"inner", 12, 10, 9, 0xf, 0xe},
        {"stranger", 50, 5, 4, 0x5, 0}, /* incoming parent in no log: stays a root */
    };
    struct log_record records[4];
    const struct log_record *pointers[4];
    struct log_tree t;
    struct strbuf out = {0};

    for (size_t i = 0; i < 4; i++) {
        records[i] = make_record(&hops[i], i);
        pointers[i] = &records[i];
    }
    records[1].has_incoming_parent = true;
    records[1].incoming_parent_span_id = 0xa;
    records[1].trace_id_text = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";
    records[2].trace_id_text = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";
    records[3].has_incoming_parent = true;
    records[3].incoming_parent_span_id = 0x77;
    ck_assert_int_eq(log_tree_build(pointers, 4, &t), 0);
    assert_well_formed(&t);
    ck_assert_str_eq(parent_of(&t, "edge"), "caller");
    ck_assert_int_eq(node_of(&t, "edge")->link, LOG_TREE_NEW_TRACE);
    ck_assert_str_eq(parent_of(&t, "inner"), "edge");
    ck_assert_int_eq(node_of(&t, "inner")->link, LOG_TREE_SPAN);
    ck_assert_str_eq(parent_of(&t, "stranger"), "-");
    ck_assert(!node_of(&t, "stranger")->orphan);
    /* The caller's self time leaves out the new trace's hop: it is its child. */
    ck_assert(fabs(node_of(&t, "caller")->self_ms - 19) < 1e-9);

    log_render_tree(&out, &t, 40);
    ck_assert(!out.oom);
    ck_assert_msg(strstr(out.data, "\n   +10.000  `+ edge GET /"), "%s", out.data);
    ck_assert_ptr_nonnull(strstr(out.data, "(new trace bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2)"));
    ck_assert_ptr_nonnull(strstr(out.data, "\n   +12.000     `- inner GET /"));
    ck_assert_ptr_nonnull(strstr(out.data, "`+ a new trace started here"));
    ck_assert_ptr_nonnull(strstr(
        out.data, "trace 4bf92f3577b34da6a3ce929d0e0e4736, bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2"));
    strbuf_free(&out);
    log_tree_free(&t);
}
END_TEST

START_TEST(test_hostile_text_is_escaped)
{
    struct log_record r = {
        .time_ms = T0,
        .duration_ms = 1.5,
        .status = -1,
        .service = "evil\x1b]0;owned\x07",
        .method = "GET",
        .path = "/\x1b[2J\xc2\x9b"
                "31m\xff",
        .query = "q=\"x\"",
        .outcome = "client_aborted",
        .trace_id_text = "4bf92f3577b34da6a3ce929d0e0e4736",
    };
    struct strbuf out = {0};

    log_render_line(&out, &r);
    ck_assert(!out.oom);
    for (size_t i = 0; i + 1 < out.len; i++) {
        unsigned char c = (unsigned char)out.data[i];
        ck_assert_msg(c >= 0x20 && c != 0x7f, "control byte 0x%02x at %zu", c, i);
        ck_assert_msg(!(c == 0xc2 && (unsigned char)out.data[i + 1] >= 0x80 &&
                        (unsigned char)out.data[i + 1] <= 0x9f),
                      "a C1 control at %zu", i);
    }
    ck_assert_ptr_nonnull(strstr(out.data, "2025-01-31T12:00:00.000Z  evil\\u001b]0;owned\\u0007"));
    ck_assert_ptr_nonnull(strstr(out.data, "GET /\\u001b[2J\\u009b31m\xef\xbf\xbd?q=\\\"x\\\""));
    ck_assert_ptr_nonnull(strstr(out.data, "  -     1.500ms"));
    ck_assert_ptr_nonnull(strstr(out.data, "[client_aborted]"));
    ck_assert_int_eq(out.data[out.len - 1], '\n');
    strbuf_free(&out);
}
END_TEST

static Suite *logs_tree_suite(void)
{
    Suite *suite = suite_create("logs-tree");
    TCase *links = tcase_create("links");
    TCase *cycles = tcase_create("cycles");
    TCase *times = tcase_create("times");
    TCase *render = tcase_create("render");

    tcase_add_test(links, test_span_links_across_services);
    tcase_add_test(links, test_root_inside_a_window_is_inferred_under_the_innermost);
    tcase_add_test(links, test_window_tolerance_is_one_millisecond);
    tcase_add_test(links, test_identical_windows_do_not_contain_each_other);
    tcase_add_test(links, test_orphans);
    tcase_add_test(links, test_duplicate_span_ids_link_to_the_first);
    suite_add_tcase(suite, links);

    tcase_set_timeout(cycles, 120);
    tcase_add_test(cycles, test_cycles_are_cut);
    tcase_add_loop_test(cycles, test_hostile_random_links_terminate, 0, 4);
    suite_add_tcase(suite, cycles);

    tcase_add_loop_test(times, test_children_busy_vectors, 0, (int)ARRAY_SIZE(busy_vectors));
    tcase_add_test(times, test_self_time_and_overhead);
    tcase_add_test(times, test_empty_tree);
    suite_add_tcase(suite, times);

    tcase_add_test(render, test_tree_drawing);
    tcase_add_test(render, test_hostile_text_is_escaped);
    tcase_add_test(render, test_new_trace_at_an_untrusting_edge_hangs_under_its_caller);
    suite_add_tcase(suite, render);
    return suite;
}

int main(void)
{
    return unit_run(logs_tree_suite());
}
