/* SPDX-License-Identifier: MIT */
/*
 * The upstream response head parser (src/proxy/response_head.h, docs/security.md "Upstream
 * side"): status lines, 1xx heads before the final one, strict field syntax, Content-Length and
 * Transfer-Encoding rules, the 128-field and 64 KiB limits, and that a refused line leaves the
 * head as it was.
 *
 * Every line is fed from a heap block of exactly its length, so a read past it is caught by ASan.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "common/arena.h"
#include "proxy/response_head.h"
#include "unit-test.h"

#define OK       RESPONSE_LINE_OK
#define COMPLETE RESPONSE_LINE_COMPLETE
#define INVALID  RESPONSE_LINE_INVALID

struct fixture {
    struct response_head head;
    struct arena arena;
};

static void fixture_init(struct fixture *fx)
{
    response_head_init(&fx->head);
    arena_init(&fx->arena, 128);
}

static enum response_line feed_n(struct fixture *fx, const char *line, size_t n)
{
    char *copy = unit_memdup(line, n);
    enum response_line r = response_head_feed(&fx->head, copy, n, &fx->arena);
    /* The head keeps copies, never the caller's line: scribble over it before freeing. */
    memset(copy, '#', n);
    free(copy);
    return r;
}

static enum response_line feed(struct fixture *fx, const char *line)
{
    return feed_n(fx, line, strlen(line));
}

static const char *const line_names[] = {"OK", "COMPLETE", "INVALID"};

#define ck_assert_feed(fx, line, expected)                                                         \
    do {                                                                                           \
        enum response_line got_ = feed(fx, line);                                                  \
        ck_assert_msg(got_ == (expected), "\"%s\": %s, expected %s", line, line_names[got_],       \
                      line_names[expected]);                                                       \
    } while (0)

START_TEST(test_init)
{
    struct response_head head;
    memset(&head, 0x5a, sizeof(head));
    response_head_init(&head);
    ck_assert_int_eq(head.status, 0);
    ck_assert_int_eq(head.content_length, -1);
    ck_assert_uint_eq(head.count, 0);
    ck_assert_uint_eq(head.bytes, 0);
}
END_TEST

static const struct {
    const char *line;
    long status; /* 0: INVALID */
} status_lines[] = {
    {"HTTP/1.1 200 OK\r\n", 200},
    {"HTTP/1.1 200\r\n", 200},
    {"HTTP/1.1 200", 200},
    {"HTTP/1.0 404 Not Found\n", 404},
    {"HTTP/1.1 100 Continue\r\n", 100},
    {"HTTP/1.1 599 x\r\n", 599},
    {"HTTP/1.1 999 x\r\n", 999},
    {"HTTP/2 204\r\n", 204},
    {"HTTP/1.1 099 x\r\n", 0},
    {"HTTP/1.1 000 x\r\n", 0},
    {"HTTP/1.1 20\r\n", 0},
    {"HTTP/1.1 20", 0},
    {"HTTP/1.1 2x0 OK\r\n", 0},
    {"HTTP/1.1  200 OK\r\n", 0},
    {"HTTP/1.1 -20 OK\r\n", 0},
    {"HTTP/1.1\r\n", 0},
    {"HTTP/1.1", 0},
    {"HTTP/", 0},
};

START_TEST(test_status_lines)
{
    struct fixture fx;
    fixture_init(&fx);
    enum response_line r = feed(&fx, status_lines[_i].line);
    if (status_lines[_i].status) {
        ck_assert_msg(r == OK, "\"%s\": %s", status_lines[_i].line, line_names[r]);
        ck_assert_int_eq(fx.head.status, status_lines[_i].status);
    } else {
        ck_assert_msg(r == INVALID, "\"%s\": %s", status_lines[_i].line, line_names[r]);
        ck_assert_int_eq(fx.head.status, 0);
    }
    arena_free(&fx.arena);
}
END_TEST

/* A valid final head, field by field, then the blank line completes it. */
START_TEST(test_final_head)
{
    struct fixture fx;
    fixture_init(&fx);
    ck_assert_feed(&fx, "HTTP/1.1 200 OK\r\n", OK);
    ck_assert_feed(&fx, "Content-Type: text/plain\r\n", OK);
    ck_assert_feed(&fx, "Content-Length:  12 \r\n", OK);
    ck_assert_feed(&fx, "X-Empty:\r\n", OK);
    ck_assert_feed(&fx, "X-Spaces: \t a b \t \r\n", OK);
    ck_assert_feed(&fx, "X-LF-only: v\n", OK);
    ck_assert_feed(&fx, "X-Obs: caf\xc3\xa9\r\n", OK);
    ck_assert_feed(&fx, "\r\n", COMPLETE);
    ck_assert_int_eq(fx.head.status, 200);
    ck_assert_int_eq(fx.head.content_length, 12);
    ck_assert_uint_eq(fx.head.count, 6);
    static const struct {
        const char *name, *value;
    } expected[] = {
        {"Content-Type", "text/plain"},
        {"Content-Length", "12"},
        {"X-Empty", ""},
        {"X-Spaces", "a b"},
        {"X-LF-only", "v"},
        {"X-Obs", "caf\xc3\xa9"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(expected); i++) {
        const struct response_header *h = &fx.head.fields[i];
        /* NUL-terminated copies of exactly the trimmed text */
        ck_assert_str_eq(h->name, expected[i].name);
        ck_assert_uint_eq(h->name_len, strlen(expected[i].name));
        ck_assert_str_eq(h->value, expected[i].value);
    }
    /* bytes counts the fields' lines as received (the status line is not a field) */
    ck_assert_uint_eq(fx.head.bytes,
                      strlen("Content-Type: text/plain\r\n") + strlen("Content-Length:  12 \r\n") +
                          strlen("X-Empty:\r\n") + strlen("X-Spaces: \t a b \t \r\n") +
                          strlen("X-LF-only: v\n") + strlen("X-Obs: caf\xc3\xa9\r\n"));
    arena_free(&fx.arena);
}
END_TEST

/* The blank line ends a head: COMPLETE for a final status, OK (the next head follows) for 1xx,
 * INVALID for 101. */
static const struct {
    const char *status_line;
    enum response_line blank;
} blank_lines[] = {
    {"HTTP/1.1 100 Continue\r\n", OK},
    {"HTTP/1.1 102 Processing\r\n", OK},
    {"HTTP/1.1 103 Early Hints\r\n", OK},
    {"HTTP/1.1 199 x\r\n", OK},
    {"HTTP/1.1 101 Switching Protocols\r\n", INVALID},
    {"HTTP/1.1 200 OK\r\n", COMPLETE},
    {"HTTP/1.1 204 No Content\r\n", COMPLETE},
    {"HTTP/1.1 304 Not Modified\r\n", COMPLETE},
    {"HTTP/1.1 502 Bad Gateway\r\n", COMPLETE},
};

START_TEST(test_blank_line)
{
    static const char *const blanks[] = {"\r\n", "\n", "\r\r\n"};
    for (size_t b = 0; b < ARRAY_SIZE(blanks); b++) {
        struct fixture fx;
        fixture_init(&fx);
        ck_assert_feed(&fx, blank_lines[_i].status_line, OK);
        ck_assert_feed(&fx, "X-A: 1\r\n", OK);
        enum response_line r = feed(&fx, blanks[b]);
        ck_assert_msg(r == blank_lines[_i].blank, "%s then blank %zu: %s",
                      blank_lines[_i].status_line, b, line_names[r]);
        arena_free(&fx.arena);
    }
}
END_TEST

/* A blank line before any status line completes nothing. */
START_TEST(test_blank_line_without_status)
{
    struct fixture fx;
    fixture_init(&fx);
    ck_assert_feed(&fx, "\r\n", OK);
    ck_assert_int_eq(fx.head.status, 0);
    arena_free(&fx.arena);
}
END_TEST

/* 100 Continue, 103 Early Hints, then the final head: each status line starts over. */
START_TEST(test_interim_heads_reset)
{
    struct fixture fx;
    fixture_init(&fx);
    ck_assert_feed(&fx, "HTTP/1.1 100 Continue\r\n", OK);
    ck_assert_feed(&fx, "X-Interim: 1\r\n", OK);
    ck_assert_feed(&fx, "Content-Length: 99\r\n", OK);
    ck_assert_int_eq(fx.head.content_length, 99);
    ck_assert_feed(&fx, "\r\n", OK);
    ck_assert_feed(&fx, "HTTP/1.1 103 Early Hints\r\n", OK);
    ck_assert_uint_eq(fx.head.count, 0);
    ck_assert_uint_eq(fx.head.bytes, 0);
    ck_assert_int_eq(fx.head.content_length, -1);
    ck_assert_int_eq(fx.head.status, 103);
    ck_assert_feed(&fx, "Link: </a.css>; rel=preload\r\n", OK);
    ck_assert_feed(&fx, "\r\n", OK);
    ck_assert_feed(&fx, "HTTP/1.1 201 Created\r\n", OK);
    ck_assert_uint_eq(fx.head.count, 0);
    /* the interim Content-Length is forgotten: a different one does not conflict */
    ck_assert_feed(&fx, "Content-Length: 5\r\n", OK);
    ck_assert_feed(&fx, "\r\n", COMPLETE);
    ck_assert_int_eq(fx.head.status, 201);
    ck_assert_int_eq(fx.head.content_length, 5);
    ck_assert_uint_eq(fx.head.count, 1);
    ck_assert_str_eq(fx.head.fields[0].name, "Content-Length");
    arena_free(&fx.arena);
}
END_TEST

/* Field lines: each refused or taken, after "HTTP/1.1 200 OK". */
static const struct {
    const char *line;
    size_t len; /* embedded NULs */
    enum response_line result;
} field_lines[] = {
    {V("Name: value\r\n"), OK},
    {V("Name:value\r\n"), OK},
    {V("!#$%&'*+-.^_`|~: v\r\n"), OK},
    {V("X-Tab:\tv\r\n"), OK},
    {V("X-Colon: a:b\r\n"), OK},
    {V("X-High: \x80\xff\r\n"), OK},
    /* obsolete line folding */
    {V(" folded\r\n"), INVALID},
    {V("\tfolded\r\n"), INVALID},
    /* names */
    {V("Name : v\r\n"), INVALID},
    {V(" Name: v\r\n"), INVALID},
    {V(": v\r\n"), INVALID},
    {V("No colon\r\n"), INVALID},
    {V("NoColon\r\n"), INVALID},
    {V("Na(me): v\r\n"), INVALID},
    {V("N\xc3\xa4me: v\r\n"), INVALID},
    {V("Na\0me: v\r\n"), INVALID},
    {V("Na/me: v\r\n"), INVALID},
    /* values */
    {V("X: a\x01z\r\n"), INVALID},
    {V("X: a\x7fz\r\n"), INVALID},
    {V("X: a\0z\r\n"), INVALID},
    {V("X: a\rz\r\n"), INVALID},
    {V("X: a\nz\r\n"), INVALID},
    {V("X: \x1b[31m\r\n"), INVALID},
    /* Transfer-Encoding: chunked only, any case */
    {V("Transfer-Encoding: chunked\r\n"), OK},
    {V("transfer-encoding:  CHUNKED \r\n"), OK},
    {V("Transfer-Encoding: gzip\r\n"), INVALID},
    {V("Transfer-Encoding: gzip, chunked\r\n"), INVALID},
    {V("Transfer-Encoding: chunked, chunked\r\n"), INVALID},
    {V("Transfer-Encoding: identity\r\n"), INVALID},
    {V("Transfer-Encoding:\r\n"), INVALID},
    {V("Transfer-Encoding: chunkedx\r\n"), INVALID},
    /* Content-Length: 1 to 18 digits */
    {V("Content-Length: 0\r\n"), OK},
    {V("Content-Length: 999999999999999999\r\n"), OK},
    {V("Content-Length: 1000000000000000000\r\n"), INVALID},
    {V("Content-Length: 9223372036854775808\r\n"), INVALID},
    {V("Content-Length:\r\n"), INVALID},
    {V("Content-Length: -1\r\n"), INVALID},
    {V("Content-Length: +1\r\n"), INVALID},
    {V("Content-Length: 1 2\r\n"), INVALID},
    {V("Content-Length: 1,1\r\n"), INVALID},
    {V("Content-Length: 0x1\r\n"), INVALID},
    {V("content-length: 7\r\n"), OK},
};

START_TEST(test_field_lines)
{
    struct fixture fx;
    fixture_init(&fx);
    ck_assert_feed(&fx, "HTTP/1.1 200 OK\r\n", OK);
    ck_assert_feed(&fx, "X-Before: 1\r\n", OK);
    struct response_head before = fx.head;
    enum response_line r = feed_n(&fx, field_lines[_i].line, field_lines[_i].len);
    ck_assert_msg(r == field_lines[_i].result, "\"%s\": %s", field_lines[_i].line, line_names[r]);
    if (r == INVALID) {
        /* left as it was */
        ck_assert_uint_eq(fx.head.count, before.count);
        ck_assert_uint_eq(fx.head.bytes, before.bytes);
        ck_assert_int_eq(fx.head.content_length, before.content_length);
        ck_assert_int_eq(fx.head.status, 200);
    } else {
        ck_assert_uint_eq(fx.head.count, 2);
        ck_assert_uint_eq(fx.head.bytes, before.bytes + field_lines[_i].len);
        const struct response_header *h = &fx.head.fields[1];
        ck_assert_uint_eq(strlen(h->name), h->name_len);
        ck_assert(memcmp(h->name, field_lines[_i].line, h->name_len) == 0);
        ck_assert(field_lines[_i].line[h->name_len] == ':');
        ck_assert(!strpbrk(h->value, "\r\n"));
        size_t vlen = strlen(h->value);
        ck_assert(vlen == 0 || (h->value[0] != ' ' && h->value[vlen - 1] != ' '));
    }
    ck_assert_feed(&fx, "\r\n", COMPLETE);
    arena_free(&fx.arena);
}
END_TEST

/* Content-Length repeated: the same value is fine, another is a conflict; the value is kept. */
START_TEST(test_content_length_repeats)
{
    static const struct {
        const char *first, *second;
        enum response_line result;
        int64_t length;
    } cases[] = {
        {"5", "5", OK, 5},      {"5", "05", OK, 5},     {"5", " 5 ", OK, 5},
        {"5", "6", INVALID, 5}, {"0", "1", INVALID, 0}, {"10", "1", INVALID, 10},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct fixture fx;
        char line[64];
        fixture_init(&fx);
        ck_assert_feed(&fx, "HTTP/1.1 200 OK\r\n", OK);
        snprintf(line, sizeof(line), "Content-Length: %s\r\n", cases[i].first);
        ck_assert_feed(&fx, line, OK);
        snprintf(line, sizeof(line), "content-length: %s\r\n", cases[i].second);
        enum response_line r = feed(&fx, line);
        ck_assert_msg(r == cases[i].result, "case %zu: %s", i, line_names[r]);
        ck_assert_int_eq(fx.head.content_length, cases[i].length);
        ck_assert_uint_eq(fx.head.count, r == OK ? 2 : 1);
        arena_free(&fx.arena);
    }
}
END_TEST

/* At most RESPONSE_HEAD_MAX_FIELDS fields. */
START_TEST(test_field_count_limit)
{
    struct fixture fx;
    char line[64];
    fixture_init(&fx);
    ck_assert_feed(&fx, "HTTP/1.1 200 OK\r\n", OK);
    for (int i = 0; i < RESPONSE_HEAD_MAX_FIELDS; i++) {
        snprintf(line, sizeof(line), "X-F%d: %d\r\n", i, i);
        ck_assert_feed(&fx, line, OK);
    }
    ck_assert_uint_eq(fx.head.count, RESPONSE_HEAD_MAX_FIELDS);
    ck_assert_feed(&fx, "X-One-Too-Many: 1\r\n", INVALID);
    ck_assert_uint_eq(fx.head.count, RESPONSE_HEAD_MAX_FIELDS);
    /* the blank line still ends the head */
    ck_assert_feed(&fx, "\r\n", COMPLETE);
    for (int i = 0; i < RESPONSE_HEAD_MAX_FIELDS; i++) {
        snprintf(line, sizeof(line), "X-F%d", i);
        ck_assert_str_eq(fx.head.fields[i].name, line);
    }
    /* a new head starts counting again */
    ck_assert_feed(&fx, "HTTP/1.1 200 OK\r\n", OK);
    ck_assert_feed(&fx, "X-Again: 1\r\n", OK);
    arena_free(&fx.arena);
}
END_TEST

/* At most RESPONSE_HEAD_MAX_BYTES bytes of field lines, counted as received (CRLF included). */
START_TEST(test_byte_limit)
{
    enum { LINE = 1000 };
    char line[LINE + 1];
    struct fixture fx;
    size_t fed = 0;

    fixture_init(&fx);
    ck_assert_feed(&fx, "HTTP/1.1 200 OK\r\n", OK);
    /* lines of exactly LINE bytes: "X-B: aaa...\r\n" */
    memset(line, 'a', LINE);
    memcpy(line, "X-B: ", 5);
    line[LINE - 2] = '\r';
    line[LINE - 1] = '\n';
    line[LINE] = '\0';
    while (fed + LINE <= RESPONSE_HEAD_MAX_BYTES) {
        ck_assert_feed(&fx, line, OK);
        fed += LINE;
    }
    ck_assert_uint_eq(fx.head.bytes, fed);
    /* fill up to exactly the limit: accepted */
    size_t rest = RESPONSE_HEAD_MAX_BYTES - fed;
    ck_assert_uint_ge(rest, 8);
    char *last = unit_expand("{z*9000}", NULL);
    memcpy(last, "X-L: ", 5);
    last[rest - 2] = '\r';
    last[rest - 1] = '\n';
    ck_assert_int_eq(feed_n(&fx, last, rest), OK);
    ck_assert_uint_eq(fx.head.bytes, RESPONSE_HEAD_MAX_BYTES);
    /* one byte more is too much, even the shortest field */
    ck_assert_feed(&fx, "X:\n", INVALID);
    ck_assert_uint_eq(fx.head.bytes, RESPONSE_HEAD_MAX_BYTES);
    ck_assert_feed(&fx, "\r\n", COMPLETE);
    free(last);
    arena_free(&fx.arena);
}
END_TEST

/* One line larger than the whole limit. */
START_TEST(test_byte_limit_one_line)
{
    struct fixture fx;
    size_t len;
    char *line = unit_expand("X-Huge: {v*65530}\r\n", &len);
    ck_assert_uint_gt(len, RESPONSE_HEAD_MAX_BYTES);
    fixture_init(&fx);
    ck_assert_feed(&fx, "HTTP/1.1 200 OK\r\n", OK);
    ck_assert_int_eq(feed_n(&fx, line, len), INVALID);
    ck_assert_uint_eq(fx.head.count, 0);
    free(line);
    arena_free(&fx.arena);
}
END_TEST

/* Accepted fields are copies in the arena: they survive the caller's line (feed_n scribbles over
 * it) and the allocations of later lines, over several arena blocks. */
START_TEST(test_copies_outlive_input)
{
    struct fixture fx;
    char line[64];
    fixture_init(&fx);
    ck_assert_feed(&fx, "HTTP/1.1 200 OK\r\n", OK);
    for (int i = 0; i < 40; i++) { /* several arena blocks */
        snprintf(line, sizeof(line), "X-Name-%02d:   value %02d  \r\n", i, i);
        ck_assert_feed(&fx, line, OK);
    }
    for (int i = 0; i < 40; i++) {
        char name[32], value[32];
        snprintf(name, sizeof(name), "X-Name-%02d", i);
        snprintf(value, sizeof(value), "value %02d", i);
        ck_assert_str_eq(fx.head.fields[i].name, name);
        ck_assert_str_eq(fx.head.fields[i].value, value);
        /* name and value are separate strings */
        ck_assert_uint_eq(strlen(fx.head.fields[i].name), fx.head.fields[i].name_len);
    }
    arena_free(&fx.arena);
}
END_TEST

/* A status line in the middle of a head starts a new one (libcurl hands over each head). */
START_TEST(test_status_line_restarts)
{
    struct fixture fx;
    fixture_init(&fx);
    ck_assert_feed(&fx, "HTTP/1.1 200 OK\r\n", OK);
    ck_assert_feed(&fx, "Content-Length: 3\r\n", OK);
    ck_assert_feed(&fx, "HTTP/1.1 500 Oops\r\n", OK);
    ck_assert_int_eq(fx.head.status, 500);
    ck_assert_uint_eq(fx.head.count, 0);
    ck_assert_int_eq(fx.head.content_length, -1);
    /* an invalid status line leaves the head as it was */
    ck_assert_feed(&fx, "X: 1\r\n", OK);
    ck_assert_feed(&fx, "HTTP/1.1 42 x\r\n", INVALID);
    ck_assert_int_eq(fx.head.status, 500);
    ck_assert_uint_eq(fx.head.count, 1);
    arena_free(&fx.arena);
}
END_TEST

/* The upgrade variant: a 101 head is final, the flag survives 1xx heads; 200 still COMPLETE. */
START_TEST(test_upgrade_allows_101)
{
    struct fixture fx;
    response_head_init_upgrade(&fx.head);
    arena_init(&fx.arena, 128);
    ck_assert_feed(&fx, "HTTP/1.1 100 Continue\r\n", OK);
    ck_assert_feed(&fx, "\r\n", OK);
    ck_assert_feed(&fx, "HTTP/1.1 101 Switching Protocols\r\n", OK);
    ck_assert_feed(&fx, "Upgrade: websocket\r\n", OK);
    ck_assert_feed(&fx, "\r\n", COMPLETE);
    ck_assert_int_eq(fx.head.status, 101);
    ck_assert_uint_eq(fx.head.count, 1);
    ck_assert_feed(&fx, "HTTP/1.1 403 Forbidden\r\n", OK);
    ck_assert_feed(&fx, "\r\n", COMPLETE);

    /* The normal start keeps refusing it. */
    response_head_init(&fx.head);
    ck_assert_feed(&fx, "HTTP/1.1 101 Switching Protocols\r\n", OK);
    ck_assert_feed(&fx, "\r\n", INVALID);
    arena_free(&fx.arena);
}
END_TEST

static Suite *response_head_suite(void)
{
    Suite *s = suite_create("response_head");
    TCase *tc = tcase_create("status");

    tcase_add_test(tc, test_init);
    tcase_add_loop_test(tc, test_status_lines, 0, (int)ARRAY_SIZE(status_lines));
    tcase_add_test(tc, test_final_head);
    tcase_add_loop_test(tc, test_blank_line, 0, (int)ARRAY_SIZE(blank_lines));
    tcase_add_test(tc, test_blank_line_without_status);
    tcase_add_test(tc, test_interim_heads_reset);
    tcase_add_test(tc, test_status_line_restarts);
    tcase_add_test(tc, test_upgrade_allows_101);
    suite_add_tcase(s, tc);

    tc = tcase_create("fields");
    tcase_add_loop_test(tc, test_field_lines, 0, (int)ARRAY_SIZE(field_lines));
    tcase_add_test(tc, test_content_length_repeats);
    tcase_add_test(tc, test_copies_outlive_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, test_field_count_limit);
    tcase_add_test(tc, test_byte_limit);
    tcase_add_test(tc, test_byte_limit_one_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(response_head_suite());
}
