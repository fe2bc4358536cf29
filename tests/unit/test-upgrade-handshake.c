/* SPDX-License-Identifier: MIT */
/*
 * The upgrade answer parser (src/proxy/upgrade_handshake.h): a 101 that switches or does not, a
 * refusal with its body after the head, 1xx heads before the final one, the bytes after the head
 * in the same read, the line and head limits, and strict lines (obs-fold, NUL, garbage).
 *
 * Every input is fed whole, one byte at a time and in 7-byte chunks, each chunk from a heap block
 * of exactly its length (a read past it is caught by ASan), and must give the same verdict.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "proxy/upgrade_handshake.h"
#include "unit-test.h"

#define MORE     UPGRADE_HANDSHAKE_MORE
#define COMPLETE UPGRADE_HANDSHAKE_COMPLETE
#define INVALID  UPGRADE_HANDSHAKE_INVALID

struct outcome {
    enum upgrade_handshake_result result;
    size_t end; /* offset in the whole input where the head ended (COMPLETE) */
    long status;
    bool switched;
    const char *reason;
};

/* Feed input[0..n) in chunks of `chunk` bytes (0: whole) until a verdict. */
static struct outcome run_chunked(const char *input, size_t n, size_t chunk)
{
    struct upgrade_handshake *hs = malloc(sizeof(*hs));
    struct arena arena;
    struct outcome out = {MORE, 0, 0, false, NULL};

    ck_assert_ptr_nonnull(hs);
    arena_init(&arena, 256);
    upgrade_handshake_init(hs, "websocket", 9);
    for (size_t at = 0; at < n || n == 0;) {
        size_t take = chunk == 0 || n - at < chunk ? n - at : chunk;
        char *copy = unit_memdup(input + at, take);
        size_t used = 0;
        enum upgrade_handshake_result r = upgrade_handshake_feed(hs, copy, take, &arena, &used);
        memset(copy, '#', take); /* the parser keeps copies, never the caller's bytes */
        free(copy);
        ck_assert_uint_le(used, take);
        if (r == MORE)
            ck_assert_uint_eq(used, take);
        if (r != MORE) {
            out.result = r;
            out.end = at + used;
            /* Fed again after the verdict: the same verdict, nothing taken. */
            ck_assert_int_eq(upgrade_handshake_feed(hs, "x", 1, &arena, &used), r);
            ck_assert_uint_eq(used, 0);
            break;
        }
        at += take;
        if (n == 0)
            break;
    }
    out.status = hs->head.status;
    out.switched = hs->switched;
    out.reason = hs->reason;
    if (out.result == INVALID)
        ck_assert_ptr_nonnull(out.reason);
    else
        ck_assert_ptr_null(out.reason);
    free(hs);
    arena_free(&arena);
    return out;
}

/* The verdict fed whole, asserted equal when fed byte by byte and in 7-byte chunks. */
static struct outcome run(const char *input)
{
    size_t n = strlen(input);
    struct outcome whole = run_chunked(input, n, 0);
    static const size_t chunks[] = {1, 7};
    for (size_t i = 0; i < ARRAY_SIZE(chunks); i++) {
        struct outcome other = run_chunked(input, n, chunks[i]);
        ck_assert_int_eq(other.result, whole.result);
        ck_assert_int_eq(other.status, whole.status);
        ck_assert_int_eq(other.switched, whole.switched);
        if (whole.result == COMPLETE)
            ck_assert_uint_eq(other.end, whole.end);
    }
    return whole;
}

#define SWITCH_101                                                                                 \
    "HTTP/1.1 101 Switching Protocols\r\n"                                                         \
    "Upgrade: websocket\r\n"                                                                       \
    "Connection: Upgrade\r\n"                                                                      \
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"                                       \
    "\r\n"

START_TEST(test_valid_switch)
{
    struct outcome o = run(SWITCH_101);
    ck_assert_int_eq(o.result, COMPLETE);
    ck_assert_int_eq(o.status, 101);
    ck_assert(o.switched);
    ck_assert_uint_eq(o.end, strlen(SWITCH_101));
}
END_TEST

/* A WebSocket frame in the same read as the head: the offset points at it. */
START_TEST(test_frame_after_head)
{
    const char *input = SWITCH_101 "\x81\x05hello";
    struct outcome o = run(input);
    ck_assert_int_eq(o.result, COMPLETE);
    ck_assert(o.switched);
    ck_assert_uint_eq(o.end, strlen(SWITCH_101));
    ck_assert_mem_eq(input + o.end, "\x81\x05hello", 7);
}
END_TEST

/* Token matches are case-insensitive; Connection may list more; Upgrade may list several. */
START_TEST(test_switch_variants)
{
    struct outcome o =
        run("HTTP/1.1 101 \r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n"
            "\r\n");
    ck_assert_int_eq(o.result, COMPLETE);
    ck_assert(o.switched);
    o = run("HTTP/1.1 101\nUpgrade: foo/2, websocket\nConnection: upgrade\n\n");
    ck_assert_int_eq(o.result, COMPLETE);
    ck_assert(o.switched);
}
END_TEST

static const char *const not_switches[] = {
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket2\r\nConnection: Upgrade\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgraded\r\n\r\n",
};

/* A complete 101 that does not switch to what the client asked for: complete, not switched. */
START_TEST(test_not_a_switch)
{
    struct outcome o = run(not_switches[_i]);
    ck_assert_int_eq(o.result, COMPLETE);
    ck_assert_int_eq(o.status, 101);
    ck_assert(!o.switched);
    ck_assert_uint_eq(o.end, strlen(not_switches[_i]));
}
END_TEST

static const struct {
    const char *input;
    long status;
} refusals[] = {
    {"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\nContent-Length: 4\r\n\r\nnope", 401},
    {"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden", 403},
    {"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Content-Length: 3\r\n\r\nold",
     426},
};

/* Any other final answer: complete, its status, the body starts at the offset. */
START_TEST(test_refusal_with_body)
{
    const char *input = refusals[_i].input;
    struct outcome o = run(input);
    ck_assert_int_eq(o.result, COMPLETE);
    ck_assert_int_eq(o.status, refusals[_i].status);
    ck_assert(!o.switched);
    const char *body = strstr(input, "\r\n\r\n") + 4;
    ck_assert_uint_eq(o.end, (size_t)(body - input));
}
END_TEST

/* 100 (and 102, 103) before the final answer are skipped. */
START_TEST(test_interim_then_switch)
{
    struct outcome o = run("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n"
                           "\r\n" SWITCH_101 "\x81");
    ck_assert_int_eq(o.result, COMPLETE);
    ck_assert_int_eq(o.status, 101);
    ck_assert(o.switched);
}
END_TEST

/* Not complete yet: every byte taken, no verdict. */
START_TEST(test_incomplete)
{
    ck_assert_int_eq(run("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n").result,
                     MORE);
    ck_assert_int_eq(run("HTTP/1.1 100 Continue\r\n\r\n").result, MORE);
    ck_assert_int_eq(run("HTTP/1.1 1").result, MORE);
    ck_assert_int_eq(run("").result, MORE);
}
END_TEST

/* LF-only line endings are accepted, as response_head_feed does. */
START_TEST(test_lf_only)
{
    const char *input = "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n"
                        "Connection: Upgrade\n\nrest";
    struct outcome o = run(input);
    ck_assert_int_eq(o.result, COMPLETE);
    ck_assert(o.switched);
    ck_assert_uint_eq(o.end, strlen(input) - 4);
}
END_TEST

static const char *const invalid_inputs[] = {
    "garbage\r\n", "\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n", "Upgrade: websocket\r\n\r\n",
    "HTTP/1.1 abc\r\n\r\n", "HTTP/1.1 099 x\r\n\r\n", "HTTP/1.1 600 x\r\n\r\n",
    "HTTP/1.1 999 x\r\n\r\n", "HTTP/2 101\r\n\r\n", "HTTP/1.1 1010 x\r\n\r\n",
    "HTTP/1.1 101 x\r\nHTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 100 Continue\r\n\r\nfoo: bar\r\n\r\n",
    /* obs-fold */
    "HTTP/1.1 101 x\r\nUpgrade: websocket\r\n  , h2c\r\nConnection: upgrade\r\n\r\n",
    "HTTP/1.1 101 x\r\nUpgrade websocket\r\n\r\n", "HTTP/1.1 101 x\r\nUp grade: websocket\r\n\r\n",
    "HTTP/1.1 401 x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "HTTP/1.1 401 x\r\nTransfer-Encoding: gzip\r\n\r\n",
    "\x16\x03\x01\x02\xfc\x03\x03\n", /* a TLS record: the upstream speaks TLS */
};

START_TEST(test_invalid)
{
    struct outcome o = run(invalid_inputs[_i]);
    ck_assert_msg(o.result == INVALID, "input %d not refused", _i);
}
END_TEST

/* A NUL in a field value (not expressible as a C string literal run through strlen). */
START_TEST(test_nul_in_field)
{
    static const char input[] =
        "HTTP/1.1 101 x\r\nUpgrade: web\0socket\r\nConnection: upgrade\r\n\r\n";
    size_t n = sizeof(input) - 1;
    struct outcome whole = run_chunked(input, n, 0);
    struct outcome bytes = run_chunked(input, n, 1);
    ck_assert_int_eq(whole.result, INVALID);
    ck_assert_int_eq(bytes.result, INVALID);
}
END_TEST

/* A head that never ends: refused at RESPONSE_HEAD_MAX_BYTES, never buffered further. */
START_TEST(test_endless_head)
{
    struct upgrade_handshake *hs = malloc(sizeof(*hs));
    struct arena arena;
    static const char status[] = "HTTP/1.1 101 Switching Protocols\r\n";
    static const char field[] = "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    enum upgrade_handshake_result r;
    size_t used, fed = 0;

    ck_assert_ptr_nonnull(hs);
    arena_init(&arena, 256);
    upgrade_handshake_init(hs, "websocket", 9);
    r = upgrade_handshake_feed(hs, status, sizeof(status) - 1, &arena, &used);
    ck_assert_int_eq(r, MORE);
    fed += sizeof(status) - 1;
    for (int i = 0; i < 10000 && r == MORE; i++) {
        r = upgrade_handshake_feed(hs, field, sizeof(field) - 1, &arena, &used);
        fed += used;
    }
    ck_assert_int_eq(r, INVALID);
    ck_assert_ptr_nonnull(hs->reason);
    ck_assert_uint_le(fed, RESPONSE_HEAD_MAX_BYTES);
    ck_assert_uint_le(hs->total, RESPONSE_HEAD_MAX_BYTES);
    free(hs);
    arena_free(&arena);
}
END_TEST

/* Endless 1xx heads count against the same bound. */
START_TEST(test_endless_interim_heads)
{
    struct upgrade_handshake *hs = malloc(sizeof(*hs));
    struct arena arena;
    static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
    enum upgrade_handshake_result r = MORE;
    size_t used;

    ck_assert_ptr_nonnull(hs);
    arena_init(&arena, 256);
    upgrade_handshake_init(hs, "websocket", 9);
    for (int i = 0; i < 100000 && r == MORE; i++)
        r = upgrade_handshake_feed(hs, interim, sizeof(interim) - 1, &arena, &used);
    ck_assert_int_eq(r, INVALID);
    ck_assert_uint_le(hs->total, RESPONSE_HEAD_MAX_BYTES);
    free(hs);
    arena_free(&arena);
}
END_TEST

/* A line without LF is bounded by UPGRADE_HANDSHAKE_MAX_LINE, fed whole or in pieces. */
START_TEST(test_line_without_lf)
{
    size_t n = UPGRADE_HANDSHAKE_MAX_LINE + 100;
    char *input = malloc(n + 1);
    ck_assert_ptr_nonnull(input);
    memcpy(input, "HTTP/1.1 101 x\r\nX-Long: ", 24);
    memset(input + 24, 'a', n - 24);
    input[n] = '\0';
    struct outcome o = run(input);
    ck_assert_int_eq(o.result, INVALID);
    /* Just within the bound, with its LF, a line is fine. */
    size_t ok = UPGRADE_HANDSHAKE_MAX_LINE + 16; /* 16: the status line */
    memcpy(input + ok - 2, "\r\n", 2);
    input[ok] = '\0';
    ck_assert_int_eq(run(input).result, MORE);
    free(input);
}
END_TEST

static Suite *upgrade_handshake_suite(void)
{
    Suite *s = suite_create("upgrade_handshake");
    TCase *tc = tcase_create("switch");

    tcase_add_test(tc, test_valid_switch);
    tcase_add_test(tc, test_frame_after_head);
    tcase_add_test(tc, test_switch_variants);
    tcase_add_loop_test(tc, test_not_a_switch, 0, (int)ARRAY_SIZE(not_switches));
    tcase_add_test(tc, test_interim_then_switch);
    suite_add_tcase(s, tc);

    tc = tcase_create("other answers");
    tcase_add_loop_test(tc, test_refusal_with_body, 0, (int)ARRAY_SIZE(refusals));
    tcase_add_test(tc, test_incomplete);
    tcase_add_test(tc, test_lf_only);
    suite_add_tcase(s, tc);

    tc = tcase_create("invalid");
    tcase_add_loop_test(tc, test_invalid, 0, (int)ARRAY_SIZE(invalid_inputs));
    tcase_add_test(tc, test_nul_in_field);
    tcase_add_test(tc, test_endless_head);
    tcase_add_test(tc, test_endless_interim_heads);
    tcase_add_test(tc, test_line_without_lf);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(upgrade_handshake_suite());
}
