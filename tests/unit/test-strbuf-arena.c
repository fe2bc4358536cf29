/* SPDX-License-Identifier: MIT */
/*
 * The two allocation helpers every request uses: strbuf (growable, always NUL-terminated, never
 * failing silently) and arena (a per-request bump allocator whose first block is kept across
 * requests). See src/common/strbuf.h and src/common/arena.h for the contracts tested here.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/strbuf.h"
#include "unit-test.h"

/* Huge-size tests must see NULL from malloc under AddressSanitizer too, not an abort. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* Assert without Check's per-call mark point (a pipe write in fork mode): for hot loops. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

/* --- strbuf -------------------------------------------------------------------------------- */

static void assert_buf(const struct strbuf *b, const char *want, size_t want_len)
{
    ck_assert(!b->oom);
    ck_assert_uint_eq(b->len, want_len);
    ck_assert_ptr_nonnull(b->data);
    ck_assert_msg(memcmp(b->data, want, want_len) == 0, "buffer holds \"%.*s\"", (int)b->len,
                  b->data);
    ck_assert_msg(b->data[b->len] == '\0', "no NUL after %zu bytes", b->len);
    ck_assert_uint_gt(b->cap, b->len);
}

START_TEST(test_strbuf_appends)
{
    struct strbuf b = {0};

    strbuf_append(&b, "abc", 3);
    assert_buf(&b, "abc", 3);
    strbuf_append(&b, "", 0);
    assert_buf(&b, "abc", 3);
    strbuf_append_str(&b, "def");
    assert_buf(&b, "abcdef", 6);
    strbuf_append_char(&b, '\0'); /* a NUL byte is data like any other */
    strbuf_append_char(&b, 'g');
    assert_buf(&b, "abcdef\0g", 8);
    strbuf_append(&b, "h\0i", 3);
    assert_buf(&b, "abcdef\0gh\0i", 11);
    strbuf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    /* Reusable after free. */
    strbuf_append_str(&b, "again");
    assert_buf(&b, "again", 5);
    strbuf_free(&b);
    strbuf_free(&b); /* a zeroed buffer is accepted */
}
END_TEST

START_TEST(test_strbuf_grows_and_clear_keeps_memory)
{
    struct strbuf b = {0};
    char expected[10000];

    for (size_t i = 0; i < sizeof(expected); i++) {
        expected[i] = (char)('a' + i % 26);
        strbuf_append_char(&b, expected[i]);
        CHECK(b.data[b.len] == '\0', "no NUL after append %zu", i);
    }
    assert_buf(&b, expected, sizeof(expected));
    char *data = b.data;
    size_t cap = b.cap;
    strbuf_clear(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    strbuf_append(&b, expected, 5000);
    ck_assert_ptr_eq(b.data, data); /* cleared, not freed: no new allocation */
    ck_assert_uint_eq(b.cap, cap);
    assert_buf(&b, expected, 5000);
    strbuf_clear(&b);
    strbuf_free(&b);

    struct strbuf empty = {0};
    strbuf_clear(&empty); /* never allocated: nothing to terminate */
    ck_assert_ptr_null(empty.data);
}
END_TEST

START_TEST(test_strbuf_reserve)
{
    struct strbuf b = {0};

    ck_assert(strbuf_reserve(&b, 1000));
    ck_assert_uint_ge(b.cap, 1001);
    ck_assert_uint_eq(b.len, 0);
    char *data = b.data;
    for (int i = 0; i < 1000; i++)
        strbuf_append_char(&b, 'x');
    ck_assert_ptr_eq(b.data, data);
    strbuf_free(&b);

    /* A reservation that cannot be satisfied marks the buffer and later appends do nothing. */
    ck_assert(!strbuf_reserve(&b, SIZE_MAX / 2));
    ck_assert(b.oom);
    strbuf_append_str(&b, "ignored");
    ck_assert_uint_eq(b.len, 0);
    ck_assert(!strbuf_reserve(&b, 1));
    strbuf_clear(&b); /* clearing forgets the failure */
    ck_assert(!b.oom);
    strbuf_append_str(&b, "ok");
    assert_buf(&b, "ok", 2);
    strbuf_free(&b);
}
END_TEST

static const struct {
    uint64_t value;
    const char *text;
} u64_vectors[] = {
    {0, "0"},
    {1, "1"},
    {9, "9"},
    {10, "10"},
    {99, "99"},
    {100, "100"},
    {1234567890, "1234567890"},
    {UINT64_C(4294967295), "4294967295"},
    {UINT64_C(4294967296), "4294967296"},
    {UINT64_C(9999999999999999999), "9999999999999999999"},
    {UINT64_C(10000000000000000000), "10000000000000000000"},
    {UINT64_MAX, "18446744073709551615"},
};

START_TEST(test_strbuf_u64)
{
    struct strbuf b = {0};

    strbuf_append_str(&b, "n=");
    strbuf_append_u64(&b, u64_vectors[_i].value);
    strbuf_append_char(&b, ';');
    char want[64];
    snprintf(want, sizeof(want), "n=%s;", u64_vectors[_i].text);
    assert_buf(&b, want, strlen(want));
    strbuf_free(&b);
}
END_TEST

START_TEST(test_strbuf_json_string)
{
    static const struct {
        const char *input;
        size_t len;
        const char *json; /* the appended literal, quotes included */
    } cases[] = {
        {V(""), "\"\""},
        {V("plain"), "\"plain\""},
        {V("a\"b\\c"), "\"a\\\"b\\\\c\""},
        {V("line\nbreak\t\x01"), "\"line\\nbreak\\t\\u0001\""},
        {V("caf\xc3\xa9"), "\"caf\xc3\xa9\""},
        {V("bad\xff"), "\"bad\xef\xbf\xbd\""},
        {V("nul\0x"), "\"nul\\u0000x\""},
    };
    struct strbuf b = {0};

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        strbuf_clear(&b);
        strbuf_append_str(&b, "[");
        char *input = unit_memdup(cases[i].input, cases[i].len);
        strbuf_append_json_string(&b, input, cases[i].len);
        free(input);
        strbuf_append_str(&b, "]");
        ck_assert_msg(b.data[b.len] == '\0', "case %zu: not NUL-terminated", i);
        ck_assert_uint_eq(b.len, strlen(b.data));
        ck_assert_msg(strncmp(b.data + 1, cases[i].json, strlen(cases[i].json)) == 0,
                      "case %zu: %s, expected [%s]", i, b.data, cases[i].json);
        json_error_t error;
        json_t *parsed = json_loads(b.data, JSON_ALLOW_NUL, &error);
        ck_assert_msg(parsed != NULL, "case %zu: %s does not parse: %s", i, b.data, error.text);
        ck_assert(json_is_string(json_array_get(parsed, 0)));
        json_decref(parsed);
    }
    /* After a long string the buffer is still usable and exact. */
    strbuf_clear(&b);
    char big[3000];
    memset(big, '\x01', sizeof(big));
    strbuf_append_json_string(&b, big, sizeof(big));
    ck_assert_uint_eq(b.len, 2 + 6 * sizeof(big));
    ck_assert_uint_eq(strlen(b.data), b.len);
    strbuf_free(&b);
}
END_TEST

/* --- arena --------------------------------------------------------------------------------- */

static bool aligned(const void *p)
{
    return (uintptr_t)p % alignof(max_align_t) == 0;
}

START_TEST(test_arena_alignment)
{
    struct arena a;

    arena_init(&a, 256);
    for (size_t n = 0; n < 200; n++) {
        unsigned char *p = arena_alloc(&a, n);
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(aligned(p), "arena_alloc(%zu) = %p is not aligned to %zu", n, (void *)p,
                      alignof(max_align_t));
        memset(p, 0xa5, n);
    }
    char *s = arena_strndup(&a, "odd", 3);
    ck_assert(aligned(s));
    ck_assert(aligned(arena_alloc(&a, 1)));
    arena_free(&a);
}
END_TEST

/* Allocations never overlap, also across block boundaries and for sizes above the block size. */
START_TEST(test_arena_growth)
{
    enum { COUNT = 2000 };
    struct arena a;
    unsigned char *ptrs[COUNT];
    size_t sizes[COUNT];
    uint64_t state = unit_prng_seed(7);

    arena_init(&a, 128);
    for (size_t i = 0; i < COUNT; i++) {
        uint64_t r = unit_prng_next(&state);
        sizes[i] = i % 97 == 0 ? 5000 + r % 3000 : r % 300; /* some far above a block */
        ptrs[i] = arena_alloc(&a, sizes[i]);
        CHECK(ptrs[i] != NULL && aligned(ptrs[i]), "allocation %zu: %p", i, (void *)ptrs[i]);
        memset(ptrs[i], (int)(i & 0xff), sizes[i]);
    }
    for (size_t i = 0; i < COUNT; i++)
        for (size_t k = 0; k < sizes[i]; k++)
            CHECK(ptrs[i][k] == (unsigned char)(i & 0xff),
                  "allocation %zu was overwritten at byte %zu", i, k);
    arena_free(&a);
    ck_assert_ptr_null(a.head);
}
END_TEST

/* Reset releases everything but the first (oldest) block: the next allocation reuses it. */
START_TEST(test_arena_reset_keeps_first_block)
{
    struct arena a;

    arena_init(&a, 512);
    arena_reset(&a); /* empty: nothing to do */
    ck_assert_ptr_null(a.head);
    void *first = arena_alloc(&a, 10);
    ck_assert_ptr_nonnull(first);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 100; i++)
            ck_assert_ptr_nonnull(arena_alloc(&a, 100)); /* several blocks */
        arena_reset(&a);
        ck_assert_ptr_nonnull(a.head);
        void *again = arena_alloc(&a, 10);
        ck_assert_msg(again == first, "round %d: after reset the first allocation is %p, not %p",
                      round, again, first);
        /* The kept block is still usable up to its size without another block. */
        struct arena_block *kept = a.head;
        ck_assert_ptr_nonnull(arena_alloc(&a, 400));
        ck_assert_ptr_eq(a.head, kept);
    }
    arena_free(&a);
    arena_free(&a); /* an emptied arena is accepted again */
}
END_TEST

START_TEST(test_arena_strndup)
{
    struct arena a;
    static const struct {
        const char *s;
        size_t n;
    } cases[] = {{V("")}, {V("x")}, {V("hello world")}, {V("with\0nul")}};

    arena_init(&a, 64);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *src = unit_memdup(cases[i].s, cases[i].n); /* no NUL after the n bytes */
        char *copy = arena_strndup(&a, src, cases[i].n);
        ck_assert_ptr_nonnull(copy);
        ck_assert(copy != src);
        ck_assert(memcmp(copy, cases[i].s, cases[i].n) == 0);
        ck_assert_msg(copy[cases[i].n] == '\0', "case %zu: no NUL", i);
        free(src);
    }
    /* A prefix of a longer string. */
    char *p = arena_strndup(&a, "prefix-and-more", 6);
    ck_assert_str_eq(p, "prefix");
    /* Longer than the first block. */
    char long_text[1000];
    memset(long_text, 'q', sizeof(long_text));
    char *l = arena_strndup(&a, long_text, sizeof(long_text));
    ck_assert_ptr_nonnull(l);
    ck_assert_uint_eq(strlen(l), sizeof(long_text));
    arena_free(&a);
}
END_TEST

/* arena_alloc runs in a thread so that a hang is reported as a failure, bounded. */
struct huge_call {
    struct arena *arena;
    size_t n;
    void *result;
};

static void *huge_alloc_thread(void *arg)
{
    struct huge_call *call = arg;
    call->result = arena_alloc(call->arena, call->n);
    return NULL;
}

/*
 * "n bytes aligned for any object, or NULL when out of memory": sizes no allocator can give
 * must return NULL promptly, whatever their arithmetic does (rounding up past SIZE_MAX, block
 * sizes doubling past SIZE_MAX).
 */
START_TEST(test_arena_impossible_sizes_return_null)
{
    static const size_t sizes[] = {
        SIZE_MAX, SIZE_MAX - 8, SIZE_MAX / 2 + 1,
        SIZE_MAX / 2 + 17, /* block size doubling would pass 2^63 and wrap to 0 */
    };

    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        struct arena a;
        struct huge_call call = {.arena = &a, .n = sizes[i], .result = (void *)1};
        pthread_t thread;
        struct timespec deadline;

        arena_init(&a, 1024);
        ck_assert(arena_alloc(&a, 16) != NULL); /* a first block exists */
        ck_assert_int_eq(pthread_create(&thread, NULL, huge_alloc_thread, &call), 0);
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 5;
        int rc = pthread_timedjoin_np(thread, NULL, &deadline);
        /* On a hang the thread keeps spinning; the process ends with the test. */
        ck_assert_msg(rc == 0,
                      "arena_alloc(%zu) did not return within 5 s (size arithmetic "
                      "overflows and loops)",
                      sizes[i]);
        ck_assert_msg(call.result == NULL, "arena_alloc(%zu) returned %p, expected NULL", sizes[i],
                      call.result);
        /* The arena is still usable. */
        ck_assert_ptr_nonnull(arena_alloc(&a, 100));
        arena_free(&a);
    }
}
END_TEST

static Suite *strbuf_arena_suite(void)
{
    Suite *s = suite_create("strbuf_arena");
    TCase *tc = tcase_create("strbuf");

    tcase_add_test(tc, test_strbuf_appends);
    tcase_add_test(tc, test_strbuf_grows_and_clear_keeps_memory);
    tcase_add_test(tc, test_strbuf_reserve);
    tcase_add_loop_test(tc, test_strbuf_u64, 0, (int)ARRAY_SIZE(u64_vectors));
    tcase_add_test(tc, test_strbuf_json_string);
    suite_add_tcase(s, tc);

    tc = tcase_create("arena");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_arena_alignment);
    tcase_add_test(tc, test_arena_growth);
    tcase_add_test(tc, test_arena_reset_keeps_first_block);
    tcase_add_test(tc, test_arena_strndup);
    tcase_add_test(tc, test_arena_impossible_sizes_return_null);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(strbuf_arena_suite());
}
