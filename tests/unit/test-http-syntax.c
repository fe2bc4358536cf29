/* SPDX-License-Identifier: MIT */
/*
 * HTTP syntax checks and header classes (src/common/http_syntax.h): every header name and value
 * that reaches the upstream passes through these, and the hop-by-hop and managed classes decide
 * what a client may say to the upstream's connection handling (docs/security.md, "Request
 * hygiene (client side)").
 *
 * The token alphabet is written here from RFC 9110 section 5.6.2, not taken from the code; every
 * one of the 256 byte values is checked against it. Length-delimited inputs are copied into heap
 * blocks of exactly their length (unit_memdup), so a read past the end is caught by ASan.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/http_syntax.h"
#include "unit-test.h"

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" /
 * "`" / "|" / "~" / DIGIT / ALPHA */
static bool rfc_tchar(unsigned c)
{
    static const char specials[] = "!#$%&'*+-.^_`|~";
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    for (const char *p = specials; *p; p++)
        if ((unsigned char)*p == c)
            return true;
    return false;
}

START_TEST(test_tchar_every_byte)
{
    unsigned c = (unsigned)_i;
    ck_assert_msg(http_is_tchar((char)c) == rfc_tchar(c), "byte 0x%02x: http_is_tchar says %d", c,
                  !rfc_tchar(c));
    /* A one-byte token is exactly a tchar. */
    char *one = unit_memdup((const char *)&(unsigned char){(unsigned char)c}, 1);
    ck_assert_msg(http_is_token(one, 1) == rfc_tchar(c), "byte 0x%02x as a token", c);
    /* Inside an otherwise valid token, a non-tchar byte spoils it. */
    char three[3] = {'a', (char)c, 'b'};
    char *copy = unit_memdup(three, 3);
    ck_assert_msg(http_is_token(copy, 3) == rfc_tchar(c), "byte 0x%02x inside a token", c);
    free(copy);
    free(one);
}
END_TEST

static const struct {
    const char *s;
    size_t len;
    bool token;
} tokens[] = {
    {V(""), false},
    {V("GET"), true},
    {V("X-Trace-ID"), true},
    {V("!#$%&'*+-.^_`|~09azAZ"), true},
    {V("Bad Name"), false},
    {V("Name:"), false},
    {V("x\ty"), false},
    {V("a\0b"), false},
    {V("caf\xc3\xa9"), false},
    {V("(comment)"), false},
    {V("a,b"), false},
    {V("\"quoted\""), false},
    {V("{x}"), false},
    {V("a/b"), false},
};

START_TEST(test_tokens)
{
    char *s = unit_memdup(tokens[_i].s, tokens[_i].len);
    ck_assert_msg(http_is_token(s, tokens[_i].len) == tokens[_i].token, "\"%s\": expected %d",
                  tokens[_i].s, tokens[_i].token);
    free(s);
}
END_TEST

/* field-value: HTAB, SP, VCHAR and obs-text; no other control byte (RFC 9110 5.5). */
START_TEST(test_field_value_every_byte)
{
    unsigned c = (unsigned)_i;
    bool allowed = c == '\t' || (c >= 0x20 && c != 0x7f);
    char value[5] = {'v', 'a', (char)c, 'l', 'x'};
    char *copy = unit_memdup(value, sizeof(value));

    ck_assert_msg(http_is_field_value(copy, sizeof(value)) == allowed,
                  "byte 0x%02x in a field value: expected %d", c, allowed);
    ck_assert_msg(http_is_field_value(copy + 2, 1) == allowed, "byte 0x%02x alone", c);
    free(copy);
}
END_TEST

START_TEST(test_field_values)
{
    static const struct {
        const char *s;
        size_t len;
        bool ok;
    } cases[] = {
        {V(""), true},
        {V("text/html, application/json;q=0.9"), true},
        {V("  leading and trailing  "), true},
        {V("caf\xc3\xa9 \xff"), true},
        {V("a\r\nInjected: yes"), false},
        {V("a\nb"), false},
        {V("nul\0"), false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *s = unit_memdup(cases[i].s, cases[i].len);
        ck_assert_msg(http_is_field_value(s, cases[i].len) == cases[i].ok, "case %zu", i);
        free(s);
    }
}
END_TEST

START_TEST(test_name_equals)
{
    static const struct {
        const char *s;
        size_t len;
        const char *literal;
        bool equal;
    } cases[] = {
        {V("Connection"), "connection", true},
        {V("CONNECTION"), "Connection", true},
        {V("Connectio"), "Connection", false},
        {V("Connections"), "Connection", false},
        {V(""), "", true},
        {V(""), "x", false},
        {V("x-trace-id"), "X-Trace-ID", true},
        {V("X-Trace_ID"), "X-Trace-ID", false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *s = unit_memdup(cases[i].s, cases[i].len);
        ck_assert_msg(http_name_equals(s, cases[i].len, cases[i].literal) == cases[i].equal,
                      "\"%s\" vs \"%s\"", cases[i].s, cases[i].literal);
        free(s);
    }
}
END_TEST

/* Header classes: the name, whether hop-by-hop, whether managed by tracehop. */
static const struct {
    const char *name;
    bool hop_by_hop;
    bool managed;
} classes[] = {
    /* hop-by-hop (RFC 9110 7.6.1 and docs/security.md, "Request hygiene"), any case */
    {"Connection", true, false},
    {"connection", true, false},
    {"CONNECTION", true, false},
    {"Keep-Alive", true, false},
    {"keep-alive", true, false},
    {"Proxy-Connection", true, false},
    {"Proxy-Authorization", true, false},
    {"proxy-authenticate", true, false},
    {"PROXY-ANYTHING", true, false},
    {"TE", true, false},
    {"te", true, false},
    {"Trailer", true, false},
    {"trailer", true, false},
    {"Transfer-Encoding", true, false},
    {"transfer-encoding", true, false},
    {"Upgrade", true, false},
    {"UPGRADE", true, false},
    /* managed: tracehop sets these itself */
    {"traceparent", false, true},
    {"Traceparent", false, true},
    {"TRACESTATE", false, true},
    {"X-Forwarded-For", false, true},
    {"x-forwarded-for", false, true},
    {"X-Forwarded-Proto", false, true},
    {"x-forwarded-host", false, true},
    {"Content-Length", false, true},
    {"content-length", false, true},
    {"Expect", false, true},
    {"EXPECT", false, true},
    /* ordinary end-to-end headers, including near misses */
    {"Host", false, false},
    {"Accept", false, false},
    {"Authorization", false, false},
    {"Cookie", false, false},
    {"Content-Type", false, false},
    {"Upgrade-Insecure-Requests", false, false},
    {"Trailers", false, false},
    {"Connections", false, false},
    {"Proxy", false, false},
    {"Keep-Alive-X", false, false},
    {"TEE", false, false},
    {"X-Forwarded-Port", false, false},
    {"X-Forwarded", false, false},
    {"traceparents", false, false},
    {"Content-Length-X", false, false},
    {"X-Trace-ID", false, false},
};

START_TEST(test_header_classes)
{
    const char *name = classes[_i].name;
    size_t len = strlen(name);
    char *copy = unit_memdup(name, len);

    ck_assert_msg(http_header_is_hop_by_hop(copy, len) == classes[_i].hop_by_hop,
                  "%s: hop-by-hop expected %d", name, classes[_i].hop_by_hop);
    ck_assert_msg(http_header_is_managed(copy, len) == classes[_i].managed,
                  "%s: managed expected %d", name, classes[_i].managed);
    free(copy);
}
END_TEST

/* A prefix of a hop-by-hop name, given by length, is not that name. */
START_TEST(test_header_classes_use_the_length)
{
    ck_assert(!http_header_is_hop_by_hop("Connection", 4)); /* "Conn" */
    ck_assert(http_header_is_hop_by_hop("TEXT", 2));        /* "TE" */
    ck_assert(http_header_is_managed("Expectation", 6));    /* "Expect" */
    ck_assert(!http_header_is_managed("traceparent", 5));   /* "trace" */
}
END_TEST

/* http_connection_lists: comma-separated tokens with optional whitespace, any case. */
static const struct {
    const char *list;
    size_t list_len;
    const char *name;
    bool listed;
} connection_lists[] = {
    {V("close"), "close", true},
    {V("Close"), "close", true},
    {V("keep-alive, Upgrade"), "upgrade", true},
    {V("keep-alive, Upgrade"), "keep-alive", true},
    {V("keep-alive,Upgrade"), "Upgrade", true},
    {V("  X-Foo ,\tX-Bar\t"), "x-foo", true},
    {V("  X-Foo ,\tX-Bar\t"), "x-bar", true},
    {V(",,a,,"), "a", true},
    {V("a,"), "a", true},
    {V(", a"), "a", true},
    {V("a ,b , c"), "c", true},
    {V("x-drop"), "X-Drop", true},
    {V(""), "close", false},
    {V(" , ,\t"), "close", false},
    {V("ab"), "a", false},
    {V("a"), "ab", false},
    {V("X-Foo-Bar"), "X-Foo", false},
    {V("X-Foo-Bar"), "Bar", false},
    {V("a b"), "a", false},
    {V("a b"), "b", false},
    {V("close"), "", false},
    {V("closed, keep"), "close", false},
};

START_TEST(test_connection_lists)
{
    char *list = unit_memdup(connection_lists[_i].list, connection_lists[_i].list_len);
    const char *name = connection_lists[_i].name;
    char *name_copy = unit_memdup(name, strlen(name));

    ck_assert_msg(http_connection_lists(list, connection_lists[_i].list_len, name_copy,
                                        strlen(name)) == connection_lists[_i].listed,
                  "Connection: \"%s\" lists \"%s\": expected %d", connection_lists[_i].list, name,
                  connection_lists[_i].listed);
    free(name_copy);
    free(list);
}
END_TEST

static Suite *http_syntax_suite(void)
{
    Suite *s = suite_create("http_syntax");
    TCase *tc = tcase_create("syntax");

    tcase_add_loop_test(tc, test_tchar_every_byte, 0, 256);
    tcase_add_loop_test(tc, test_tokens, 0, (int)ARRAY_SIZE(tokens));
    tcase_add_loop_test(tc, test_field_value_every_byte, 0, 256);
    tcase_add_test(tc, test_field_values);
    tcase_add_test(tc, test_name_equals);
    suite_add_tcase(s, tc);

    tc = tcase_create("headers");
    tcase_add_loop_test(tc, test_header_classes, 0, (int)ARRAY_SIZE(classes));
    tcase_add_test(tc, test_header_classes_use_the_length);
    tcase_add_loop_test(tc, test_connection_lists, 0, (int)ARRAY_SIZE(connection_lists));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(http_syntax_suite());
}
