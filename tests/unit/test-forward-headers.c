/* SPDX-License-Identifier: MIT */
/*
 * Which headers cross tracehop (src/proxy/forward_headers.h, docs/security.md "Request
 * hygiene"): the upstream request's header lines, exactly and in order, and the filter of the
 * upstream's response fields.
 *
 * Client fields and the Connection values are copied into heap blocks of exactly their length
 * (no NUL after them), so a read past a field's end is caught by ASan.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "common/arena.h"
#include "config/config.h"
#include "proxy/forward_headers.h"
#include "proxy/response_head.h"
#include "unit-test.h"

#define TRACEPARENT      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TRACEPARENT_LINE ("traceparent: " TRACEPARENT)

struct field_text {
    const char *name, *value;
};

/* A forward_request under construction, owning its exactly-sized copies. */
struct fixture {
    struct forward_request r;
    struct header_field fields[64];
    struct tracehop_slice connection[8];
    struct header_setting route[8];
    char *copies[160];
    size_t ncopies;
    struct arena arena;
    const char **lines;
    size_t count;
};

static const char *copy(struct fixture *fx, const char *s, size_t len)
{
    ck_assert_uint_lt(fx->ncopies, ARRAY_SIZE(fx->copies));
    return fx->copies[fx->ncopies++] = unit_memdup(s, len);
}

static void fixture_init(struct fixture *fx)
{
    memset(fx, 0, sizeof(*fx));
    arena_init(&fx->arena, 256); /* small: the lines spill over several blocks */
    fx->r = (struct forward_request){
        .fields = fx->fields,
        .connection = fx->connection,
        .request_id_header = "X-Trace-ID",
        .route_headers = fx->route,
        .traceparent = TRACEPARENT,
        .x_trace_id = "req-1",
        .x_trace_id_len = 5,
        .client_addr = "10.0.0.1",
    };
}

static void fixture_free(struct fixture *fx)
{
    for (size_t i = 0; i < fx->ncopies; i++)
        free(fx->copies[i]);
    arena_free(&fx->arena);
}

/* A client field; a Connection field's value is also recorded as the request layer does. */
static void add_client_field(struct fixture *fx, const char *name, const char *value)
{
    struct header_field *f = &fx->fields[fx->r.count++];
    ck_assert_uint_le(fx->r.count, ARRAY_SIZE(fx->fields));
    f->name_len = strlen(name);
    f->name = copy(fx, name, f->name_len);
    f->value_len = strlen(value);
    f->value = copy(fx, value, f->value_len);
    if (strcasecmp(name, "Connection") == 0) {
        fx->connection[fx->r.connection_count++] =
            (struct tracehop_slice){.ptr = f->value, .len = f->value_len};
    }
}

static void add_route_header(struct fixture *fx, const char *name, const char *value)
{
    /* header_setting holds mutable strings (the config owns them); these are never written */
    fx->route[fx->r.route_headers_count++] =
        (struct header_setting){.name = (char *)name, .value = (char *)value, .line = NULL};
}

static void set_forwarded_for(struct fixture *fx, const char *value, size_t len)
{
    fx->r.forwarded_for = copy(fx, value, len);
    fx->r.forwarded_for_len = len;
}

static void build(struct fixture *fx)
{
    fx->lines = NULL;
    fx->count = 0;
    ck_assert_int_eq(forward_request_headers(&fx->r, &fx->arena, &fx->lines, &fx->count), 0);
    ck_assert_ptr_nonnull(fx->lines);
}

static void assert_lines(const struct fixture *fx, const char *const *expected, size_t n)
{
    char got[4096] = "";
    for (size_t i = 0; i < fx->count; i++) {
        strncat(got, fx->lines[i], sizeof(got) - strlen(got) - 2);
        strncat(got, "\n", sizeof(got) - strlen(got) - 1);
    }
    ck_assert_msg(fx->count == n, "%zu lines, expected %zu:\n%s", fx->count, n, got);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(strcmp(fx->lines[i], expected[i]) == 0, "line %zu: \"%s\", expected \"%s\"",
                      i, fx->lines[i], expected[i]);
}

/* The index of the line starting with `prefix` (case-sensitive), or -1; fails if several. */
static int find_line(const struct fixture *fx, const char *prefix)
{
    int found = -1;
    for (size_t i = 0; i < fx->count; i++) {
        if (strncmp(fx->lines[i], prefix, strlen(prefix)) != 0)
            continue;
        ck_assert_msg(found < 0, "two lines start with \"%s\"", prefix);
        found = (int)i;
    }
    return found;
}

/* The index of the line equal to `text`, or -1. */
static int find_exact(const struct fixture *fx, const char *text)
{
    for (size_t i = 0; i < fx->count; i++)
        if (strcmp(fx->lines[i], text) == 0)
            return (int)i;
    return -1;
}

/* Everything at once: the exact lines, in order. */
START_TEST(test_full_request)
{
    struct fixture fx;
    fixture_init(&fx);

    add_client_field(&fx, "Host", "example.com");
    add_client_field(&fx, "User-Agent", "ua/1.0");
    add_client_field(&fx, "Connection", "keep-alive, X-Drop-Me");
    add_client_field(&fx, "X-Drop-Me", "secret");
    add_client_field(&fx, "Keep-Alive", "timeout=5");
    add_client_field(&fx, "TE", "trailers");
    add_client_field(&fx, "Trailer", "X-T");
    add_client_field(&fx, "Upgrade", "h2c");
    add_client_field(&fx, "Proxy-Authorization", "Basic eA==");
    add_client_field(&fx, "Proxy-Connection", "keep-alive");
    add_client_field(&fx, "Transfer-Encoding", "chunked");
    add_client_field(&fx, "Content-Length", "5");
    add_client_field(&fx, "Expect", "100-continue");
    add_client_field(&fx, "traceparent", "00-11111111111111111111111111111111-2222222222222222-01");
    add_client_field(&fx, "TraceState", "client=1");
    add_client_field(&fx, "X-Forwarded-For", "1.2.3.4");
    add_client_field(&fx, "X-Forwarded-Proto", "https");
    add_client_field(&fx, "x-forwarded-host", "evil.example");
    add_client_field(&fx, "x-trace-id", "client-id");
    add_client_field(&fx, "x-tenant", "client-tenant");
    add_client_field(&fx, "X-Empty", "");
    add_client_field(&fx, "X-Trailing", "v \t ");
    add_client_field(&fx, "X-Inner", "a  b");
    add_client_field(&fx, "Accept", "*/*");
    add_route_header(&fx, "X-Tenant", "route-tenant");
    add_route_header(&fx, "X-Route-Empty", "");
    set_forwarded_for(&fx, V("1.2.3.4"));
    fx.r.tracestate = "congo=t61rcWkgMzE";
    fx.r.tracestate_len = strlen(fx.r.tracestate);
    fx.r.host = "example.com";
    fx.r.has_body = true;
    build(&fx);

    static const char *const expected[] = {
        "Host: example.com",
        "User-Agent: ua/1.0",
        "X-Empty;",
        "X-Trailing: v",
        "X-Inner: a  b",
        "Accept: */*",
        "X-Tenant: route-tenant",
        "X-Route-Empty;",
        TRACEPARENT_LINE,
        "tracestate: congo=t61rcWkgMzE",
        "X-Trace-ID: req-1",
        "X-Forwarded-For: 1.2.3.4, 10.0.0.1",
        "X-Forwarded-Proto: http",
        "X-Forwarded-Host: example.com",
        "Expect:",
    };
    assert_lines(&fx, expected, ARRAY_SIZE(expected));
    fixture_free(&fx);
}
END_TEST

/* The least a request can have: no fields, no tracestate, no host, no body. */
START_TEST(test_minimal_request)
{
    struct fixture fx;
    fixture_init(&fx);
    build(&fx);
    static const char *const expected[] = {
        TRACEPARENT_LINE,          "X-Trace-ID: req-1", "X-Forwarded-For: 10.0.0.1",
        "X-Forwarded-Proto: http", "Accept:",
    };
    assert_lines(&fx, expected, ARRAY_SIZE(expected));
    fixture_free(&fx);
}
END_TEST

/* Hop-by-hop and managed names are dropped in any case; near misses are kept. */
static const struct {
    const char *name;
    bool kept;
} client_names[] = {
    {"Connection", false},
    {"KEEP-ALIVE", false},
    {"proxy-anything", false},
    {"te", false},
    {"TRAILER", false},
    {"transfer-encoding", false},
    {"upgrade", false},
    {"TRACEPARENT", false},
    {"tracestate", false},
    {"X-FORWARDED-FOR", false},
    {"x-forwarded-proto", false},
    {"X-Forwarded-Host", false},
    {"content-length", false},
    {"expect", false},
    {"X-TRACE-ID", false}, /* the request-id header: tracehop's replaces it */
    {"X-Trace-IDs", true},
    {"X-Forwarded-Port", true},
    {"TEE", true},
    {"Upgrade-Insecure-Requests", true},
    {"Proxy", true},
    {"Content-Type", true},
    {"Traceparent-X", true},
};

START_TEST(test_client_names)
{
    struct fixture fx;
    char line[128];

    fixture_init(&fx);
    add_client_field(&fx, client_names[_i].name, "v");
    build(&fx);
    snprintf(line, sizeof(line), "%s: v", client_names[_i].name);
    bool kept = false;
    for (size_t i = 0; i < fx.count; i++)
        kept |= strcmp(fx.lines[i], line) == 0;
    ck_assert_msg(kept == client_names[_i].kept, "%s: kept %d", client_names[_i].name, kept);
    fixture_free(&fx);
}
END_TEST

/* A configured request-id header name replaces the client's of that name, and X-Trace-ID is then
 * an ordinary header. */
START_TEST(test_configured_request_id_header)
{
    struct fixture fx;
    fixture_init(&fx);
    fx.r.request_id_header = "X-Request-ID";
    add_client_field(&fx, "x-request-id", "client");
    add_client_field(&fx, "X-Trace-ID", "other");
    build(&fx);
    static const char *const expected[] = {
        "X-Trace-ID: other",         TRACEPARENT_LINE,          "X-Request-ID: req-1",
        "X-Forwarded-For: 10.0.0.1", "X-Forwarded-Proto: http", "Accept:",
    };
    assert_lines(&fx, expected, ARRAY_SIZE(expected));
    fixture_free(&fx);
}
END_TEST

/* Every name the client's Connection fields list is dropped, from any of several fields. */
START_TEST(test_connection_listed_names)
{
    struct fixture fx;
    fixture_init(&fx);
    add_client_field(&fx, "Connection", "x-a ,\tX-B");
    add_client_field(&fx, "connection", "close, x-c");
    add_client_field(&fx, "X-A", "1");
    add_client_field(&fx, "x-b", "2");
    add_client_field(&fx, "X-C", "3");
    add_client_field(&fx, "X-AB", "4");  /* not listed */
    add_client_field(&fx, "Close", "5"); /* listed ("close" names a header too) */
    build(&fx);
    ck_assert_int_ge(find_line(&fx, "X-AB: 4"), 0);
    ck_assert_int_lt(find_line(&fx, "X-A: "), 0);
    ck_assert_int_lt(find_line(&fx, "x-b: "), 0);
    ck_assert_int_lt(find_line(&fx, "X-C: "), 0);
    ck_assert_int_lt(find_line(&fx, "Close: "), 0);
    ck_assert_int_lt(find_line(&fx, "Connection"), 0);
    ck_assert_int_lt(find_line(&fx, "connection"), 0);
    fixture_free(&fx);
}
END_TEST

/* Route headers override the client's of the same name, in any case, and come after the client's
 * fields in the route's order. */
START_TEST(test_route_headers_override)
{
    struct fixture fx;
    fixture_init(&fx);
    add_client_field(&fx, "x-b", "client-b");
    add_client_field(&fx, "X-Keep", "k");
    add_client_field(&fx, "X-A", "client-a");
    add_client_field(&fx, "X-A", "client-a2");
    add_client_field(&fx, "Authorization", "Bearer client");
    add_route_header(&fx, "X-B", "route-b");
    add_route_header(&fx, "x-a", "route-a");
    add_route_header(&fx, "AUTHORIZATION", "Bearer route");
    build(&fx);
    static const char *const expected[] = {
        "X-Keep: k",
        "X-B: route-b",
        "x-a: route-a",
        "AUTHORIZATION: Bearer route",
        TRACEPARENT_LINE,
        "X-Trace-ID: req-1",
        "X-Forwarded-For: 10.0.0.1",
        "X-Forwarded-Proto: http",
        "Accept:",
    };
    assert_lines(&fx, expected, ARRAY_SIZE(expected));
    fixture_free(&fx);
}
END_TEST

/* Values: trailing whitespace is trimmed, an empty (or all-whitespace) value is "Name;". */
static const struct {
    const char *value;
    const char *line;
} values[] = {
    {"v", "X-V: v"},     {"v ", "X-V: v"},
    {"v\t", "X-V: v"},   {"v \t \t", "X-V: v"},
    {"a b", "X-V: a b"}, {" v", "X-V:  v"},
    {"", "X-V;"},        {" ", "X-V;"},
    {"\t \t", "X-V;"},   {"\xc3\xa9", "X-V: \xc3\xa9"},
};

START_TEST(test_values)
{
    struct fixture fx;
    fixture_init(&fx);
    add_client_field(&fx, "X-V", values[_i].value);
    build(&fx);
    ck_assert_msg(fx.count >= 1 && strcmp(fx.lines[0], values[_i].line) == 0,
                  "\"%s\": \"%s\", expected \"%s\"", values[_i].value, fx.lines[0],
                  values[_i].line);
    fixture_free(&fx);
}
END_TEST

/* X-Forwarded-For: appended to when the client's value looks like addresses, else replaced. */
static const struct {
    const char *value; /* NULL: the client sent none */
    const char *client_addr;
    const char *line; /* NULL: no X-Forwarded-For line */
} forwarded_for[] = {
    {NULL, "10.0.0.1", "X-Forwarded-For: 10.0.0.1"},
    {"1.2.3.4", "10.0.0.1", "X-Forwarded-For: 1.2.3.4, 10.0.0.1"},
    {"1.2.3.4, 5.6.7.8", "10.0.0.1", "X-Forwarded-For: 1.2.3.4, 5.6.7.8, 10.0.0.1"},
    {"[2001:db8::1], ::ffff:1.2.3.4", "::1", "X-Forwarded-For: [2001:db8::1], ::ffff:1.2.3.4, ::1"},
    {"ABCD::ef", "10.0.0.1", "X-Forwarded-For: ABCD::ef, 10.0.0.1"},
    {"unknown", "10.0.0.1", "X-Forwarded-For: 10.0.0.1"},
    {"1.2.3.4; rm -rf", "10.0.0.1", "X-Forwarded-For: 10.0.0.1"},
    {"1.2.3.4\t", "10.0.0.1", "X-Forwarded-For: 10.0.0.1"},
    {"_gateway", "10.0.0.1", "X-Forwarded-For: 10.0.0.1"},
    {"", "10.0.0.1", "X-Forwarded-For: 10.0.0.1"},
    /* the client's address unknown (a unix-socket listener): the client's list alone, or none */
    {NULL, "", NULL},
    {"bogus!", "", NULL},
    {"1.2.3.4", "", "X-Forwarded-For: 1.2.3.4"},
};

START_TEST(test_forwarded_for)
{
    struct fixture fx;
    fixture_init(&fx);
    fx.r.client_addr = forwarded_for[_i].client_addr;
    if (forwarded_for[_i].value) {
        add_client_field(&fx, "X-Forwarded-For", forwarded_for[_i].value);
        set_forwarded_for(&fx, forwarded_for[_i].value, strlen(forwarded_for[_i].value));
    }
    build(&fx);
    int i = find_line(&fx, "X-Forwarded-For");
    if (!forwarded_for[_i].line) {
        ck_assert_msg(i < 0, "unexpected \"%s\"", i >= 0 ? fx.lines[i] : "");
    } else {
        ck_assert_msg(i >= 0, "no X-Forwarded-For line");
        ck_assert_str_eq(fx.lines[i], forwarded_for[_i].line);
    }
    fixture_free(&fx);
}
END_TEST

/* A plausible client list of at most 1024 bytes is kept; one byte more and it is replaced. */
START_TEST(test_forwarded_for_length_limit)
{
    for (size_t len = 1023; len <= 1026; len++) {
        char value[1100], expected[1200];
        struct fixture fx;

        memset(value, '1', len);
        value[len] = '\0';
        fixture_init(&fx);
        set_forwarded_for(&fx, value, len);
        build(&fx);
        if (len <= 1024)
            snprintf(expected, sizeof(expected), "X-Forwarded-For: %s, 10.0.0.1", value);
        else
            snprintf(expected, sizeof(expected), "X-Forwarded-For: 10.0.0.1");
        int i = find_line(&fx, "X-Forwarded-For");
        ck_assert_int_ge(i, 0);
        ck_assert_msg(strcmp(fx.lines[i], expected) == 0, "%zu bytes: %.60s...", len, fx.lines[i]);
        fixture_free(&fx);
    }
}
END_TEST

/* X-Forwarded-Host only with a Host; Expect: only with a body; Accept: only without the
 * client's (in any case); both last. */
START_TEST(test_added_lines)
{
    static const struct {
        const char *host;
        bool has_body;
        const char *accept; /* the client's Accept name, NULL: none */
        bool xfh, expect, accept_line;
    } cases[] = {
        {NULL, false, NULL, false, false, true},
        {"h.example:8080", false, NULL, true, false, true},
        {NULL, true, NULL, false, true, true},
        {"h", true, "Accept", true, true, false},
        {NULL, false, "ACCEPT", false, false, false},
        {NULL, false, "Accept-Encoding", false, false, true},
    };
    for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
        struct fixture fx;
        char xfh[128];

        fixture_init(&fx);
        fx.r.host = cases[c].host;
        fx.r.has_body = cases[c].has_body;
        if (cases[c].accept)
            add_client_field(&fx, cases[c].accept, "text/plain");
        build(&fx);
        int i = find_line(&fx, "X-Forwarded-Host");
        ck_assert_msg((i >= 0) == cases[c].xfh, "case %zu: X-Forwarded-Host %d", c, i);
        if (i >= 0) {
            snprintf(xfh, sizeof(xfh), "X-Forwarded-Host: %s", cases[c].host);
            ck_assert_str_eq(fx.lines[i], xfh);
        }
        int e = find_exact(&fx, "Expect:");
        int a = find_exact(&fx, "Accept:");
        ck_assert_msg((e >= 0) == cases[c].expect, "case %zu: Expect: %d", c, e);
        ck_assert_msg((a >= 0) == cases[c].accept_line, "case %zu: Accept: %d", c, a);
        if (cases[c].accept) {
            char client[64];
            snprintf(client, sizeof(client), "%s: text/plain", cases[c].accept);
            ck_assert_int_ge(find_exact(&fx, client), 0);
        }
        if (a >= 0) {
            ck_assert_str_eq(fx.lines[a], "Accept:");
            ck_assert_int_eq(a, (int)fx.count - 1);
        }
        if (e >= 0)
            ck_assert_int_eq(e, (int)fx.count - 1 - (a >= 0));
        fixture_free(&fx);
    }
}
END_TEST

/* tracestate is sent only when tracehop has one, byte for byte (given by length). */
START_TEST(test_tracestate_by_length)
{
    struct fixture fx;
    fixture_init(&fx);
    fx.r.tracestate = "a=1,b=2";
    fx.r.tracestate_len = 3; /* "a=1" */
    fx.r.x_trace_id = "abcdef";
    fx.r.x_trace_id_len = 3;
    build(&fx);
    ck_assert_int_ge(find_line(&fx, "tracestate: a=1"), 0);
    ck_assert_str_eq(fx.lines[find_line(&fx, "tracestate")], "tracestate: a=1");
    ck_assert_str_eq(fx.lines[find_line(&fx, "X-Trace-ID")], "X-Trace-ID: abc");
    fixture_free(&fx);
}
END_TEST

/* --- the response direction --------------------------------------------------------------------
 */

static void head_add(struct response_head *head, const char *name, const char *value)
{
    ck_assert_uint_lt(head->count, RESPONSE_HEAD_MAX_FIELDS);
    head->fields[head->count++] =
        (struct response_header){.name = name, .name_len = strlen(name), .value = value};
}

static const struct {
    const char *name;
    const char *connection; /* the upstream's Connection value, NULL: none */
    bool echo;
    bool forwarded;
} response_names[] = {
    {"Content-Type", NULL, true, true},
    {"Set-Cookie", "close", true, true},
    {"Content-Length", NULL, false, false},
    {"content-length", NULL, true, false},
    {"Transfer-Encoding", NULL, false, false},
    {"Connection", NULL, false, false},
    {"Keep-Alive", NULL, false, false},
    {"Upgrade", NULL, false, false},
    {"TE", NULL, false, false},
    {"Trailer", NULL, false, false},
    {"Proxy-Authenticate", NULL, false, false},
    {"traceparent", NULL, true, false},
    {"Traceparent", NULL, false, true},
    {"X-Trace-ID", NULL, true, false},
    {"x-trace-id", NULL, true, false},
    {"X-Trace-ID", NULL, false, true},
    {"tracestate", NULL, true, true},
    {"X-Secret", "close, x-secret", false, false},
    {"x-secret", "X-Secret ,Keep-Alive", true, false},
    {"X-Secret", "X-Secrets", false, true},
    {"X-Other", "close, x-secret", false, true},
};

START_TEST(test_response_headers)
{
    struct response_head head;
    response_head_init(&head);
    head.status = 200;
    head_add(&head, "Date", "Mon, 01 Jan 2024 00:00:00 GMT");
    if (response_names[_i].connection)
        head_add(&head, "Connection", response_names[_i].connection);
    char *name = unit_memdup(response_names[_i].name, strlen(response_names[_i].name));
    struct response_header field = {
        .name = name, .name_len = strlen(response_names[_i].name), .value = "v"};
    bool forwarded = forward_response_header(&head, &field, response_names[_i].echo, "X-Trace-ID");
    ck_assert_msg(forwarded == response_names[_i].forwarded,
                  "%s (Connection: %s, echo %d): forwarded %d", response_names[_i].name,
                  response_names[_i].connection ? response_names[_i].connection : "-",
                  response_names[_i].echo, forwarded);
    free(name);
}
END_TEST

/* With echo on, a configured request-id header name is the one dropped. */
START_TEST(test_response_configured_request_id)
{
    struct response_head head;
    response_head_init(&head);
    struct response_header rid = {.name = "X-Request-ID", .name_len = 12, .value = "u"};
    struct response_header tid = {.name = "X-Trace-ID", .name_len = 10, .value = "u"};
    ck_assert(!forward_response_header(&head, &rid, true, "X-Request-ID"));
    ck_assert(forward_response_header(&head, &tid, true, "X-Request-ID"));
    ck_assert(forward_response_header(&head, &rid, false, "X-Request-ID"));
}
END_TEST

static Suite *forward_headers_suite(void)
{
    Suite *s = suite_create("forward_headers");
    TCase *tc = tcase_create("request");

    tcase_add_test(tc, test_full_request);
    tcase_add_test(tc, test_minimal_request);
    tcase_add_loop_test(tc, test_client_names, 0, (int)ARRAY_SIZE(client_names));
    tcase_add_test(tc, test_configured_request_id_header);
    tcase_add_test(tc, test_connection_listed_names);
    tcase_add_test(tc, test_route_headers_override);
    tcase_add_loop_test(tc, test_values, 0, (int)ARRAY_SIZE(values));
    tcase_add_loop_test(tc, test_forwarded_for, 0, (int)ARRAY_SIZE(forwarded_for));
    tcase_add_test(tc, test_forwarded_for_length_limit);
    tcase_add_test(tc, test_added_lines);
    tcase_add_test(tc, test_tracestate_by_length);
    suite_add_tcase(s, tc);

    tc = tcase_create("response");
    tcase_add_loop_test(tc, test_response_headers, 0, (int)ARRAY_SIZE(response_names));
    tcase_add_test(tc, test_response_configured_request_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(forward_headers_suite());
}
