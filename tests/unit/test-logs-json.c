/* SPDX-License-Identifier: MIT */

/*
 * The line scanner and record parser of `tracehop logs` (src/cli/log_json.c, log_record.c):
 * which lines are JSON objects, which are access-log lines, what the fields decode to, and
 * that hostile input (random bytes, deep nesting, truncated escapes, every prefix of a real
 * line) is refused or read without ever reading out of bounds. Every vector is copied into a
 * heap block of exactly its length (unit_memdup), so that under AddressSanitizer a read past
 * the end is an error rather than a silent read of a NUL.
 */

#include <math.h>
#include <stdio.h>

#include "cli/log_json.h"
#include "cli/log_record.h"
#include "unit-test.h"

static const char real_line[] =
    "{\"time\":\"2025-01-31T12:00:00.123Z\",\"service\":\"checkout\","
    "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\","
    "\"parent_span_id\":null,\"trace_flags\":\"01\","
    "\"x_trace_id\":\"4bf92f35-77b3-4da6-a3ce-929d0e0e4736\",\"method\":\"GET\","
    "\"path\":\"/cart\",\"query\":\"id=1\",\"status\":502,\"duration_ms\":12.345,"
    "\"route\":\"default\",\"upstream\":\"http://127.0.0.1:8080\",\"upstream_status\":null,"
    "\"upstream_duration_ms\":null,\"upstream_connect_ms\":null,\"upstream_ttfb_ms\":null,"
    "\"bytes_received\":0,\"bytes_sent\":120,\"client_addr\":\"127.0.0.1\","
    "\"user_agent\":\"curl/8\",\"outcome\":\"upstream_connect_failed\"}";

/* --- the scanner: is it one JSON object? -------------------------------------------------- */

struct object_vector {
    const char *name;
    const char *text; /* template (unit-test.h) */
    size_t len;       /* 0: strlen of the expansion */
    bool object;
};

static const struct object_vector object_vectors[] = {
    {"empty object", "{}", 0, true},
    {"spaces around", " \t{ } \r", 0, true},
    {"one member", "{\"a\":1}", 0, true},
    {"nested", "{\"a\":{\"b\":[1,2,{\"c\":null}]},\"d\":true,\"e\":false}", 0, true},
    {"numbers", "{\"a\":-0,\"b\":1.5e3,\"c\":2E-2,\"d\":0.25}", 0, true},
    {"escapes", "{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}", 0, true},
    {"raw UTF-8 and invalid bytes in a string", "{\"a\":\"caf\xc3\xa9 \xff\"}", 0, true},
    {"empty line", "", 0, false},
    {"only spaces", "   ", 0, false},
    {"an array", "[1,2]", 0, false},
    {"a number", "42", 0, false},
    {"a string", "\"x\"", 0, false},
    {"plain text", "GET / HTTP/1.1", 0, false},
    {"unterminated object", "{\"a\":1", 0, false},
    {"unterminated string", "{\"a\":\"xyz}", 0, false},
    {"trailing comma", "{\"a\":1,}", 0, false},
    {"missing colon", "{\"a\" 1}", 0, false},
    {"missing value", "{\"a\":}", 0, false},
    {"bare key", "{a:1}", 0, false},
    {"single quotes", "{'a':1}", 0, false},
    {"two objects", "{}{}", 0, false},
    {"garbage after", "{\"a\":1} x", 0, false},
    {"raw newline in string", "{\"a\":\"x\ny\"}", 0, false},
    {"raw tab in string", "{\"a\":\"x\ty\"}", 0, false},
    {"bad escape", "{\"a\":\"\\x41\"}", 0, false},
    {"short unicode escape", "{\"a\":\"\\u12\"}", 0, false},
    {"backslash at the end", "{\"a\":\"\\", 0, false},
    {"leading zero", "{\"a\":01}", 0, false},
    {"bare minus", "{\"a\":-}", 0, false},
    {"dot without digits", "{\"a\":1.}", 0, false},
    {"exponent without digits", "{\"a\":1e}", 0, false},
    {"plus sign", "{\"a\":+1}", 0, false},
    {"nan", "{\"a\":NaN}", 0, false},
    {"truncated literal", "{\"a\":tru}", 0, false},
    {"NUL after the object", "{}\0", 3, false},
    {"NUL inside a string", "{\"a\":\"x\0y\"}", 11, false},
    {"depth 63 is fine", "{\"a\":{[*63}{]*63}}", 0, true},
    {"depth 64 is refused", "{\"a\":{[*64}{]*64}}", 0, false},
    {"depth 100000 is refused", "{\"a\":{[*100000}{]*100000}}", 0, false},
};

static int no_keys(const char *key, size_t len)
{
    (void)key;
    (void)len;
    return -1;
}

START_TEST(test_object_vectors)
{
    const struct object_vector *v = &object_vectors[_i];
    size_t len;
    char *text = unit_expand(v->text, &len);
    char *copy;

    if (v->len)
        len = v->len;
    copy = unit_memdup(v->len ? v->text : text, len);
    int rc = log_json_scan_object(copy, len, no_keys, NULL, 0);
    ck_assert_msg((rc == 0) == v->object, "%s: scan returned %d", v->name, rc);
    free(copy);
    free(text);
}
END_TEST

/* --- members and decoding ---------------------------------------------------------------- */

enum { K_A, K_B, K_C, K_COUNT };

static int abc_keys(const char *key, size_t len)
{
    if (len == 1 && key[0] >= 'a' && key[0] <= 'c')
        return key[0] - 'a';
    return -1;
}

START_TEST(test_members_are_located_at_top_level_only)
{
    static const char text[] = "{\"x\":{\"a\":1},\"b\":[\"a\"],\"a\":\"s\\n\",\"c\":null}";
    struct log_json_value v[K_COUNT] = {0};
    char *copy = unit_memdup(V(text));
    char decoded[16];

    ck_assert_int_eq(log_json_scan_object(copy, sizeof(text) - 1, abc_keys, v, K_COUNT), 0);
    ck_assert_int_eq(v[K_A].type, LOG_JSON_STRING);
    ck_assert(v[K_A].escaped);
    ck_assert_uint_eq(log_json_decode_string(&v[K_A], decoded), 2);
    ck_assert_str_eq(decoded, "s\n");
    ck_assert_int_eq(v[K_B].type, LOG_JSON_ARRAY);
    ck_assert_int_eq(v[K_C].type, LOG_JSON_NULL);
    free(copy);
}
END_TEST

START_TEST(test_escaped_keys_and_repeated_keys)
{
    /* "\u0061" is "a"; the last "b" wins. */
    static const char text[] = "{\"\\u0061\":1,\"b\":1,\"b\":true}";
    struct log_json_value v[K_COUNT] = {0};
    char *copy = unit_memdup(V(text));
    double n;

    ck_assert_int_eq(log_json_scan_object(copy, sizeof(text) - 1, abc_keys, v, K_COUNT), 0);
    ck_assert(log_json_number(&v[K_A], &n));
    ck_assert(n == 1);
    ck_assert_int_eq(v[K_B].type, LOG_JSON_TRUE);
    ck_assert_int_eq(v[K_C].type, LOG_JSON_ABSENT);
    free(copy);
}
END_TEST

struct decode_vector {
    const char *json; /* the inside of a JSON string */
    const char *decoded;
};

static const struct decode_vector decode_vectors[] = {
    {"plain", "plain"},
    {"a\\\"b\\\\c\\/d", "a\"b\\c/d"},
    {"\\b\\f\\n\\r\\t", "\b\f\n\r\t"},
    {"\\u00e9\\u00E9", "\xc3\xa9\xc3\xa9"},
    {"\\u20ac", "\xe2\x82\xac"},
    {"\\ud83d\\ude00", "\xf0\x9f\x98\x80"},
    {"\\ud83d", "\xef\xbf\xbd"},   /* lone high surrogate */
    {"\\ude00x", "\xef\xbf\xbdx"}, /* lone low surrogate */
    {"\\ud83d\\u0041", "\xef\xbf\xbd"
                       "A"}, /* high surrogate, then not a low one */
    {"a\\u0000b", "a\xef\xbf\xbd"
                  "b"}, /* NUL: the result stays a C string */
    {"\\u001b[31m", "\x1b[31m"},
};

START_TEST(test_decode_vectors)
{
    const struct decode_vector *d = &decode_vectors[_i];
    char line[256], out[256];
    struct log_json_value v[K_COUNT] = {0};

    snprintf(line, sizeof(line), "{\"a\":\"%s\"}", d->json);
    char *copy = unit_memdup(line, strlen(line));
    ck_assert_int_eq(log_json_scan_object(copy, strlen(line), abc_keys, v, K_COUNT), 0);
    size_t n = log_json_decode_string(&v[K_A], out);
    ck_assert_uint_le(n, v[K_A].len);
    ck_assert_str_eq(out, d->decoded);
    free(copy);
}
END_TEST

/* --- records ------------------------------------------------------------------------------ */

START_TEST(test_record_of_a_real_line)
{
    struct log_record_scratch scratch = {0};
    struct log_record r;
    char *copy = unit_memdup(V(real_line));

    ck_assert_int_eq(log_record_parse(copy, sizeof(real_line) - 1, &scratch, &r), 0);
    ck_assert(r.time_ms == 1738324800123LL);
    ck_assert_str_eq(r.service, "checkout");
    ck_assert(r.has_trace_id);
    ck_assert_uint_eq(r.trace_id[0], 0x4b);
    ck_assert_uint_eq(r.trace_id[15], 0x36);
    ck_assert(r.has_span_id);
    ck_assert(r.span_id == 0x00f067aa0ba902b7ull);
    ck_assert(!r.has_parent);
    ck_assert_ptr_null(r.parent_span_id_text);
    ck_assert_str_eq(r.x_trace_id, "4bf92f35-77b3-4da6-a3ce-929d0e0e4736");
    ck_assert_str_eq(r.method, "GET");
    ck_assert_str_eq(r.path, "/cart");
    ck_assert_str_eq(r.query, "id=1");
    ck_assert_int_eq(r.status, 502);
    ck_assert(fabs(r.duration_ms - 12.345) < 1e-9);
    ck_assert(isnan(r.upstream_duration_ms));
    ck_assert_str_eq(r.outcome, "upstream_connect_failed");
    ck_assert_ptr_eq(r.line, copy);

    /* The clone is self-contained: the scratch and the line may go. */
    struct log_record *c = log_record_clone(&r);
    ck_assert_ptr_nonnull(c);
    memset(copy, 'x', sizeof(real_line) - 1);
    log_record_scratch_free(&scratch);
    ck_assert_str_eq(c->service, "checkout");
    ck_assert_str_eq(c->outcome, "upstream_connect_failed");
    ck_assert_uint_eq(c->line_len, sizeof(real_line) - 1);
    ck_assert(memcmp(c->line, real_line, c->line_len) == 0);
    log_record_free(c);
    free(copy);
}
END_TEST

struct record_vector {
    const char *name;
    const char *line;
    int expect;              /* 0 or one of the LOG_RECORD_* codes */
    const char *json_begins; /* with 0: where the record's line must start */
};

/* The members an access-log record must have besides `time` and `trace_id`. */
#define REST                                                                                       \
    "\"service\":\"a\",\"span_id\":\"y\",\"method\":null,\"status\":null,\"outcome\":\"ok\""
#define T "\"time\":\"2025-01-31T12:00:00Z\""

static const struct record_vector record_vectors[] = {
    {"minimal", "{" T ",\"trace_id\":\"x\"," REST "}", 0, "{"},
    {"not JSON", "hello", LOG_RECORD_NOT_JSON, NULL},
    {"an array", "[{" T ",\"trace_id\":\"x\"," REST "}]", LOG_RECORD_NOT_JSON, NULL},
    {"a diagnostic line", "{" T ",\"level\":\"info\",\"message\":\"x\"}", LOG_RECORD_DIAGNOSTIC,
     NULL},
    /* What src/common/diag.c writes about a request: time, trace_id and span_id too. */
    {"a diagnostic about a request",
     "{\"time\":\"2025-01-31T12:00:00.123Z\",\"level\":\"warn\",\"message\":\"upstream "
     "reset\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\"}",
     LOG_RECORD_DIAGNOSTIC, NULL},
    {"time and trace_id alone", "{" T ",\"trace_id\":\"x\"}", LOG_RECORD_NOT_ACCESS_LOG, NULL},
    {"no span_id",
     "{" T ",\"trace_id\":\"x\",\"service\":\"a\",\"method\":null,\"status\":null,"
     "\"outcome\":\"ok\"}",
     LOG_RECORD_NOT_ACCESS_LOG, NULL},
    {"no outcome",
     "{" T ",\"trace_id\":\"x\",\"service\":\"a\",\"span_id\":\"y\",\"method\":null,"
     "\"status\":null}",
     LOG_RECORD_NOT_ACCESS_LOG, NULL},
    {"no status member",
     "{" T ",\"trace_id\":\"x\",\"service\":\"a\",\"span_id\":\"y\","
     "\"method\":null,\"outcome\":\"ok\"}",
     LOG_RECORD_NOT_ACCESS_LOG, NULL},
    {"no time", "{\"trace_id\":\"x\"," REST "}", LOG_RECORD_NOT_ACCESS_LOG, NULL},
    {"time is a number", "{\"time\":1738324800,\"trace_id\":\"x\"," REST "}",
     LOG_RECORD_NOT_ACCESS_LOG, NULL},
    {"time is not RFC 3339", "{\"time\":\"yesterday\",\"trace_id\":\"x\"," REST "}",
     LOG_RECORD_NOT_ACCESS_LOG, NULL},
    {"February 30th", "{\"time\":\"2025-02-30T00:00:00Z\",\"trace_id\":\"x\"," REST "}",
     LOG_RECORD_NOT_ACCESS_LOG, NULL},
    {"trace_id null", "{" T ",\"trace_id\":null," REST "}", LOG_RECORD_NOT_ACCESS_LOG, NULL},
    {"wrong types are absent", "{" T ",\"trace_id\":7," REST "}", LOG_RECORD_NOT_ACCESS_LOG, NULL},
    /* Prefixes of container tools: kubectl logs --timestamps / --prefix, docker logs -t. */
    {"kubectl --timestamps", "2026-11-22T02:47:40.874123456Z {" T ",\"trace_id\":\"x\"," REST "}",
     0, "{"},
    {"kubectl --prefix --timestamps",
     "[pod/web-1/tracehop] 2026-11-22T02:47:40.874123456Z {" T ",\"trace_id\":\"x\"," REST "}", 0,
     "{"},
    {"a diagnostic behind a time stamp",
     "2026-11-22T02:47:40.874123456Z {" T ",\"level\":\"info\",\"message\":\"x\"}",
     LOG_RECORD_DIAGNOSTIC, NULL},
    {"three prefixes are too many",
     "[a] [b] 2026-11-22T02:47:40Z {" T ",\"trace_id\":\"x\"," REST "}", LOG_RECORD_NOT_JSON, NULL},
    {"a word is no prefix", "stdout {" T ",\"trace_id\":\"x\"," REST "}", LOG_RECORD_NOT_JSON,
     NULL},
    {"a prefix alone", "2026-11-22T02:47:40Z ", LOG_RECORD_NOT_JSON, NULL},
};

START_TEST(test_record_vectors)
{
    const struct record_vector *v = &record_vectors[_i];
    struct log_record_scratch scratch = {0};
    struct log_record r;
    char *copy = unit_memdup(v->line, strlen(v->line));

    ck_assert_msg(log_record_parse(copy, strlen(v->line), &scratch, &r) == v->expect, "%s",
                  v->name);
    if (v->expect == 0) {
        size_t skipped = strlen(v->line) - r.line_len;
        ck_assert_ptr_eq(r.line, copy + skipped);
        ck_assert_msg(strncmp(r.line, v->json_begins, strlen(v->json_begins)) == 0, "%s", v->name);
        ck_assert_msg(r.line[r.line_len - 1] == '}', "%s", v->name);
    }
    log_record_scratch_free(&scratch);
    free(copy);
}
END_TEST

START_TEST(test_record_field_types)
{
    static const char line[] =
        "{\"time\":\"2025-01-31T13:00:00.5+01:00\",\"trace_id\":"
        "\"4BF92F3577B34DA6A3CE929D0E0E4736\","
        "\"span_id\":\"short\",\"parent_span_id\":\"00F067AA0BA902B7\",\"status\":200.5,"
        "\"duration_ms\":\"12\",\"upstream_duration_ms\":-1,\"service\":{\"name\":\"x\"},"
        "\"path\":\"/a\\u001b[2J\",\"method\":null,\"outcome\":\"ok\"}";
    struct log_record_scratch scratch = {0};
    struct log_record r;
    char *copy = unit_memdup(V(line));

    ck_assert_int_eq(log_record_parse(copy, sizeof(line) - 1, &scratch, &r), 0);
    ck_assert(r.time_ms == 1738324800500LL); /* 13:00:00.5+01:00 is 12:00:00.500Z */
    ck_assert(r.has_trace_id);               /* any case */
    ck_assert(!r.has_span_id);
    ck_assert(r.has_parent);
    ck_assert(r.parent_span_id == 0x00f067aa0ba902b7ull);
    ck_assert_int_eq(r.status, -1); /* not an integer */
    ck_assert(isnan(r.duration_ms));
    ck_assert(isnan(r.upstream_duration_ms)); /* negative */
    ck_assert_ptr_null(r.service);
    ck_assert_str_eq(r.path, "/a\x1b[2J"); /* decoded; escaped again when printed */
    log_record_scratch_free(&scratch);
    free(copy);
}
END_TEST

/* Where trust_incoming is false the caller's ids are logged apart (docs/access-log.md). */
START_TEST(test_record_incoming_fields)
{
    static const char line[] =
        "{\"time\":\"2025-01-31T12:00:00Z\",\"service\":\"edge\","
        "\"trace_id\":\"11111111111111111111111111111111\",\"span_id\":\"2222222222222222\","
        "\"parent_span_id\":null,\"method\":\"GET\",\"status\":200,\"outcome\":\"ok\","
        "\"incoming_trace_id\":\"4BF92F3577B34DA6A3CE929D0E0E4736\","
        "\"incoming_parent_span_id\":\"00f067aa0ba902b7\",\"incoming_x_trace_id\":\"order-4711\"}";
    struct log_record_scratch scratch = {0};
    struct log_record r;
    char *copy = unit_memdup(V(line));

    ck_assert_int_eq(log_record_parse(copy, sizeof(line) - 1, &scratch, &r), 0);
    ck_assert(!r.has_parent);
    ck_assert(r.has_incoming_trace_id);
    ck_assert_uint_eq(r.incoming_trace_id[0], 0x4b);
    ck_assert_uint_eq(r.incoming_trace_id[15], 0x36);
    ck_assert(r.has_incoming_parent);
    ck_assert(r.incoming_parent_span_id == 0x00f067aa0ba902b7ull);
    struct log_record *c = log_record_clone(&r);
    ck_assert_ptr_nonnull(c);
    log_record_scratch_free(&scratch);
    ck_assert_str_eq(c->incoming_x_trace_id, "order-4711");
    ck_assert_str_eq(c->incoming_trace_id_text, "4BF92F3577B34DA6A3CE929D0E0E4736");
    log_record_free(c);
    free(copy);
}
END_TEST

START_TEST(test_record_compare_orders_by_time_then_longest)
{
    struct log_record a = {.time_ms = 10, .duration_ms = 5}, b = {.time_ms = 10, .duration_ms = 9},
                      c = {.time_ms = 9, .duration_ms = NAN},
                      d = {.time_ms = 10, .duration_ms = NAN};

    ck_assert_int_lt(log_record_compare(&c, &a), 0);
    ck_assert_int_lt(log_record_compare(&b, &a), 0); /* same ms: the longer (the parent) first */
    ck_assert_int_lt(log_record_compare(&a, &d), 0); /* null duration counts as 0 */
    d.duration_ms = 5;
    d.seq = 1;
    ck_assert_int_lt(log_record_compare(&a, &d), 0); /* then reading order */
    ck_assert_int_eq(log_record_compare(&a, &a), 0);
}
END_TEST

/* --- hostile input ------------------------------------------------------------------------ */

/* Every prefix of a real line, and the line with one byte changed at every position. */
START_TEST(test_prefixes_and_mutations_never_crash)
{
    struct log_record_scratch scratch = {0};
    struct log_record r;
    size_t len = sizeof(real_line) - 1;

    for (size_t n = 0; n <= len; n++) {
        char *copy = unit_memdup(real_line, n);
        int rc = log_record_parse(copy, n, &scratch, &r);
        ck_assert_msg(n == len ? rc == 0 : rc < 0, "prefix of %zu bytes: %d", n, rc);
        free(copy);
    }
    static const char replacements[] = {'"',  '\\', '{', '}', '[', ']', ':', ',',
                                        '\0', '\n', 'x', '0', '-', 'e', '.', (char)0xff};
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof(replacements); k++) {
            char *copy = unit_memdup(real_line, len);
            copy[i] = replacements[k];
            (void)log_record_parse(copy, len, &scratch, &r);
            free(copy);
        }
    }
    log_record_scratch_free(&scratch);
}
END_TEST

/* The same behind a container tool's time stamp: every prefix of the whole, prefix included. */
START_TEST(test_prefixed_line_prefixes_never_crash)
{
    static const char stamp[] = "[pod/a/tracehop] 2026-11-22T02:47:40.874123456Z ";
    struct log_record_scratch scratch = {0};
    struct log_record r;
    size_t len = sizeof(stamp) - 1 + sizeof(real_line) - 1;
    char *whole = malloc(len);

    ck_assert_ptr_nonnull(whole);
    memcpy(whole, stamp, sizeof(stamp) - 1);
    memcpy(whole + sizeof(stamp) - 1, real_line, sizeof(real_line) - 1);
    for (size_t n = 0; n <= len; n++) {
        char *copy = unit_memdup(whole, n);
        int rc = log_record_parse(copy, n, &scratch, &r);
        ck_assert_msg(n == len ? rc == 0 : rc < 0, "prefix of %zu bytes: %d", n, rc);
        if (rc == 0)
            ck_assert_uint_eq(r.line_len, sizeof(real_line) - 1);
        free(copy);
    }
    free(whole);
    log_record_scratch_free(&scratch);
}
END_TEST

START_TEST(test_random_bytes_never_crash)
{
    static const char alphabet[] =
        "{}[]\":,\\u0123456789abcdefABCDEFtrueflsn -.eE+\t\n\x01\x7f\xc3";
    uint64_t state = unit_prng_seed(0x1095 + (uint64_t)_i);
    struct log_record_scratch scratch = {0};
    struct log_record r;

    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(unit_prng_next(&state) % 300);
        char *buf = malloc(len ? len : 1);
        ck_assert_ptr_nonnull(buf);
        bool structured = round % 2 == 0;
        for (size_t i = 0; i < len; i++) {
            uint64_t x = unit_prng_next(&state);
            buf[i] = structured ? alphabet[x % (sizeof(alphabet) - 1)] : (char)(x >> 24);
        }
        if (structured && len > 2) { /* give some lines a chance of being objects */
            buf[0] = '{';
            buf[len - 1] = '}';
        }
        int rc = log_record_parse(buf, len, &scratch, &r);
        ck_assert(rc == 0 || rc == LOG_RECORD_NOT_JSON || rc == LOG_RECORD_NOT_ACCESS_LOG ||
                  rc == LOG_RECORD_DIAGNOSTIC);
        free(buf);
    }
    log_record_scratch_free(&scratch);
}
END_TEST

static Suite *logs_json_suite(void)
{
    Suite *suite = suite_create("logs-json");
    TCase *scan = tcase_create("scan");
    TCase *record = tcase_create("record");
    TCase *hostile = tcase_create("hostile");

    tcase_add_loop_test(scan, test_object_vectors, 0, (int)ARRAY_SIZE(object_vectors));
    tcase_add_test(scan, test_members_are_located_at_top_level_only);
    tcase_add_test(scan, test_escaped_keys_and_repeated_keys);
    tcase_add_loop_test(scan, test_decode_vectors, 0, (int)ARRAY_SIZE(decode_vectors));
    suite_add_tcase(suite, scan);

    tcase_add_test(record, test_record_of_a_real_line);
    tcase_add_loop_test(record, test_record_vectors, 0, (int)ARRAY_SIZE(record_vectors));
    tcase_add_test(record, test_record_field_types);
    tcase_add_test(record, test_record_incoming_fields);
    tcase_add_test(record, test_record_compare_orders_by_time_then_longest);
    suite_add_tcase(suite, record);

    tcase_set_timeout(hostile, 60);
    tcase_add_test(hostile, test_prefixes_and_mutations_never_crash);
    tcase_add_test(hostile, test_prefixed_line_prefixes_never_crash);
    tcase_add_loop_test(hostile, test_random_bytes_never_crash, 0, 8);
    suite_add_tcase(suite, hostile);
    return suite;
}

int main(void)
{
    return unit_run(logs_json_suite());
}
