/* SPDX-License-Identifier: MIT */
/*
 * The OTLP/HTTP export response policy (src/observe/export_policy.h): what a collector's answer
 * means, Retry-After, the backoff and the next wait.
 *
 * Verdicts follow the OTLP specification's OTLP/HTTP Response section (2xx success with optional
 * partialSuccess; only 429, 502, 503, 504 and no response are retryable). Retry-After vectors
 * follow RFC 9110 sections 10.2.3 and 5.6.7; their epoch seconds were computed outside the code
 * under test (Python's calendar.timegm). Every header value and body is copied into an
 * exactly-sized heap block, so a read past its end is an error under ASan or valgrind.
 */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "observe/export_policy.h"
#include "unit-test.h"

/* Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date */
#define NOW_1994 INT64_C(784111777)
/* Tue, 01 Dec 2026 12:00:00 GMT */
#define NOW_2026 INT64_C(1796126400)
#define CAP      EXPORT_RETRY_AFTER_MAX_MS

/* A body literal with its length (bodies may hold NULs); NO_BODY for none. */
#define B(literal) (literal), (sizeof(literal) - 1)
#define NO_BODY    NULL, 0

/* --- export_parse_retry_after ---------------------------------------------------------------- */

static const struct {
    const char *value;
    size_t len;
    int64_t now;
    int64_t expected_ms;
} retry_after_vectors[] = {
    /* delta-seconds */
    {V("120"), NOW_2026, 120000},
    {V("0"), NOW_2026, 0},
    {V("1"), 0, 1000},
    {V(" 5\t"), NOW_2026, 5000},
    {V("\t 7  "), NOW_2026, 7000},
    {V("3599"), NOW_2026, 3599000},
    {V("3600"), NOW_2026, CAP},
    {V("3601"), NOW_2026, CAP},
    {V("86400"), NOW_2026, CAP},
    {V("99999999999999999999999999999999"), NOW_2026, CAP},
    {V("00000000000000000000000000000042"), NOW_2026, 42000},
    {V(""), NOW_2026, -1},
    {V("   "), NOW_2026, -1},
    {V("-1"), NOW_2026, -1},
    {V("+5"), NOW_2026, -1},
    {V("1.5"), NOW_2026, -1},
    {V("5s"), NOW_2026, -1},
    {V("1 2"), NOW_2026, -1},
    {V("0x10"), NOW_2026, -1},
    {V("12\0003"), NOW_2026, -1},
    {V("\n5"), NOW_2026, -1}, /* only SP and HTAB are OWS */
    {V("soon"), NOW_2026, -1},
    {V("\x80\xff"), NOW_2026, -1},
    /* IMF-fixdate */
    {V("Sun, 06 Nov 1994 08:49:37 GMT"), NOW_1994, 0},
    {V("Sun, 06 Nov 1994 08:50:37 GMT"), NOW_1994, 60000},
    {V("  Sun, 06 Nov 1994 08:50:37 GMT \t"), NOW_1994, 60000},
    {V("Sun, 06 Nov 1994 09:49:37 GMT"), NOW_1994, CAP},
    {V("Sun, 06 Nov 1994 09:49:38 GMT"), NOW_1994, CAP},
    {V("Sun, 06 Nov 1994 08:49:36 GMT"), NOW_1994, 0},
    {V("Sun, 06 Nov 1994 08:49:60 GMT"), NOW_1994, 23000}, /* leap second */
    {V("Thu, 01 Jan 1970 00:00:00 GMT"), NOW_2026, 0},
    {V("Tue, 01 Dec 2026 12:00:30 GMT"), NOW_2026, 30000},
    {V("Tue, 29 Feb 2028 00:00:00 GMT"), INT64_C(1835395200) - 5, 5000},
    {V("Mon, 01 Jan 0001 00:00:00 GMT"), 0, 0},
    {V("Fri, 31 Dec 9999 23:59:59 GMT"), 0, CAP},
    /* the day name is syntax only: RFC 9110 does not ask for it to match the date */
    {V("Mon, 06 Nov 1994 08:50:37 GMT"), NOW_1994, 60000},
    /* absurd clocks: no overflow */
    {V("Sun, 06 Nov 1994 08:49:37 GMT"), INT64_MIN, CAP},
    {V("Sun, 06 Nov 1994 08:49:37 GMT"), INT64_MAX, 0},
    /* rfc850-date; a two-digit year more than 50 years ahead is in the past (RFC 9110 5.6.7) */
    {V("Sunday, 06-Nov-94 08:49:57 GMT"), NOW_1994, 20000},
    {V("Tuesday, 01-Dec-26 12:00:30 GMT"), NOW_2026, 30000},
    {V("Friday, 01-Jan-99 00:00:00 GMT"), NOW_2026, 0},      /* 1999 */
    {V("Wednesday, 01-Jan-70 00:00:00 GMT"), NOW_2026, CAP}, /* 2070 */
    /* the year is read against the clock clamped to 1970; the date is still far ahead of it */
    {V("Thursday, 01-Jan-70 00:00:00 GMT"), INT64_MIN, CAP},
    {V("Thursday, 01-Jan-70 00:00:00 GMT"), 86400, 0},
    {V("Sunday, 06-Nov-1994 08:49:57 GMT"), NOW_1994, -1},
    {V("Sun, 06-Nov-94 08:49:57 GMT"), NOW_1994, -1},
    /* asctime-date */
    {V("Sun Nov  6 08:49:47 1994"), NOW_1994, 10000},
    {V("Sun Nov 06 08:49:47 1994"), NOW_1994, 10000},
    {V("Sun Nov 16 08:49:47 1994"), NOW_1994, CAP},
    {V("Sun Nov  6 08:49:00 1994"), NOW_1994, 0},
    {V("Sun Nov 6 08:49:47 1994"), NOW_1994, -1},
    {V("Sun Nov  6 08:49:47 94"), NOW_1994, -1},
    {V("Sun Nov  6 08:49:47 1994 GMT"), NOW_1994, -1},
    /* invalid dates */
    {V("Wed, 29 Feb 2027 00:00:00 GMT"), NOW_2026, -1},
    {V("Sun, 31 Nov 1994 08:49:37 GMT"), NOW_1994, -1},
    {V("Sun, 00 Nov 1994 08:49:37 GMT"), NOW_1994, -1},
    {V("Sun, 06 Nov 1994 24:00:00 GMT"), NOW_1994, -1},
    {V("Sun, 06 Nov 1994 08:60:00 GMT"), NOW_1994, -1},
    {V("Sun, 06 Nov 1994 08:49:61 GMT"), NOW_1994, -1},
    {V("Sun, 6 Nov 1994 08:49:37 GMT"), NOW_1994, -1},
    {V("Sun,  06 Nov 1994 08:49:37 GMT"), NOW_1994, -1},
    {V("sun, 06 Nov 1994 08:49:37 GMT"), NOW_1994, -1}, /* HTTP-date is case-sensitive */
    {V("Sun, 06 nov 1994 08:49:37 GMT"), NOW_1994, -1},
    {V("Sun, 06 Nov 1994 08:49:37 gmt"), NOW_1994, -1},
    {V("Sun, 06 Nov 1994 08:49:37 UTC"), NOW_1994, -1},
    {V("Sun, 06 Nov 1994 08:49:37 GMT x"), NOW_1994, -1},
    {V("Sun, 06 Nov 1994 08:49:37"), NOW_1994, -1},
    {V("Sunday, 06 Nov 1994 08:49:37 GMT"), NOW_1994, -1},
    {V("Sun, 06 Nov 1994 08:49:37 GMT\0"), NOW_1994, -1},
    {V("1994-11-06T08:49:37Z"), NOW_1994, -1},
};

START_TEST(test_retry_after)
{
    size_t i = (size_t)_i;
    char *value = unit_memdup(retry_after_vectors[i].value, retry_after_vectors[i].len);
    int64_t got =
        export_parse_retry_after(value, retry_after_vectors[i].len, retry_after_vectors[i].now);

    ck_assert_msg(got == retry_after_vectors[i].expected_ms, "#%zu \"%s\": %lld, expected %lld", i,
                  retry_after_vectors[i].value, (long long)got,
                  (long long)retry_after_vectors[i].expected_ms);
    free(value);
}
END_TEST

START_TEST(test_retry_after_null)
{
    ck_assert_int_eq(export_parse_retry_after(NULL, 0, NOW_2026), -1);
    ck_assert_int_eq(export_parse_retry_after(NULL, 5, NOW_2026), -1);
}
END_TEST

/* --- export_classify ---------------------------------------------------------------------- */

static const struct {
    long status;
    const char *retry_after; /* NUL-terminated here; NULL = absent */
    const char *content_type;
    const char *body;
    size_t body_len;
    enum export_verdict verdict;
    int64_t retry_after_ms;
    uint64_t rejected;
    const char *message;
} classify_vectors[] = {
    /* 2xx */
    {200, NULL, NULL, NO_BODY, EXPORT_OK, -1, 0, "HTTP 200"},
    {200, NULL, "application/json", B("{}"), EXPORT_OK, -1, 0, "HTTP 200"},
    {200, NULL, "application/json", B("{\"partialSuccess\":{}}"), EXPORT_OK, -1, 0, "HTTP 200"},
    {200, NULL, "application/json", B("{\"partialSuccess\":null}"), EXPORT_OK, -1, 0, "HTTP 200"},
    {200, NULL, "application/json", B("{\"partialSuccess\":\"x\"}"), EXPORT_OK, -1, 0, "HTTP 200"},
    {200, NULL, "application/json", B("[1,2]"), EXPORT_OK, -1, 0, "HTTP 200"},
    {200, NULL, "application/json",
     B("{\"partialSuccess\":{\"rejectedSpans\":0,\"errorMessage\":\"\"}}"), EXPORT_OK, -1, 0,
     "HTTP 200"},
    {200, NULL, "application/json", B("{\"partialSuccess\":{\"rejectedSpans\":\"0\"}}"), EXPORT_OK,
     -1, 0, "HTTP 200"},
    {200, NULL, "application/json", B("{\"partialSuccess\":{\"rejectedSpans\":null}}"), EXPORT_OK,
     -1, 0, "HTTP 200"},
    {204, NULL, NULL, NO_BODY, EXPORT_OK, -1, 0, "HTTP 204"},
    {202, NULL, "application/json", B(""), EXPORT_OK, -1, 0, "HTTP 202"},
    /* a 2xx body that is not JSON, or not declared JSON, is still a success */
    {200, NULL, "application/json", B("not json"), EXPORT_OK, -1, 0, "HTTP 200"},
    {200, NULL, NULL, B("\x00\xff\x8b\x08"), EXPORT_OK, -1, 0, "HTTP 200"},
    {200, NULL, "application/json", B("{\"partialSuccess\":{\"rejectedSpans\":\"3\""), EXPORT_OK,
     -1, 0, "HTTP 200"},
    {200, NULL, "application/x-protobuf", B("{\"partialSuccess\":{\"rejectedSpans\":\"3\"}}"),
     EXPORT_OK, -1, 0, "HTTP 200"},
    {200, NULL, "text/html", B("{\"partialSuccess\":{\"rejectedSpans\":\"3\"}}"), EXPORT_OK, -1, 0,
     "HTTP 200"},
    /* partial success: number and string counts, camel and snake case, warnings */
    {200, NULL, "application/json",
     B("{\"partialSuccess\":{\"rejectedSpans\":3,\"errorMessage\":\"3 spans had no name\"}}"),
     EXPORT_PARTIAL, -1, 3, "3 spans had no name"},
    {200, NULL, "application/json", B("{\"partialSuccess\":{\"rejectedSpans\":\"42\"}}"),
     EXPORT_PARTIAL, -1, 42, "42 spans rejected"},
    {200, NULL, NULL, B("{\"partialSuccess\":{\"rejectedSpans\":\"5\"}}"), EXPORT_PARTIAL, -1, 5,
     "5 spans rejected"},
    {200, NULL, "application/json",
     B("{\"partial_success\":{\"rejected_spans\":\"7\",\"error_message\":\"bad\"}}"),
     EXPORT_PARTIAL, -1, 7, "bad"},
    {200, NULL, "application/json", B("{\"partialSuccess\":{\"errorMessage\":\"slow down\"}}"),
     EXPORT_PARTIAL, -1, 0, "slow down"},
    {200, NULL, "Application/JSON; charset=utf-8", B("{\"partialSuccess\":{\"rejectedSpans\":1}}"),
     EXPORT_PARTIAL, -1, 1, "1 spans rejected"},
    {200, NULL, " application/vnd.example+json", B("{\"partialSuccess\":{\"rejectedSpans\":2}}"),
     EXPORT_PARTIAL, -1, 2, "2 spans rejected"},
    {200, NULL, "application/json", B(" {\"partialSuccess\":{\"rejectedSpans\":3.0}} \n"),
     EXPORT_PARTIAL, -1, 3, "3 spans rejected"},
    {200, NULL, "application/json",
     B("{\"partialSuccess\":{\"rejectedSpans\":\"18446744073709551615\"}}"), EXPORT_PARTIAL, -1,
     UINT64_MAX, "18446744073709551615 spans rejected"},
    {200, NULL, "application/json",
     B("{\"partialSuccess\":{\"rejectedSpans\":\"99999999999999999999999\"}}"), EXPORT_PARTIAL, -1,
     UINT64_MAX, "18446744073709551615 spans rejected"},
    /* beyond int64: jansson's numeric overflow, read again as a real */
    {200, NULL, "application/json",
     B("{\"partialSuccess\":{\"rejectedSpans\":9223372036854775808}}"), EXPORT_PARTIAL, -1,
     UINT64_C(9223372036854775808), "9223372036854775808 spans rejected"},
    {200, NULL, "application/json",
     B("{\"partialSuccess\":{\"rejectedSpans\":18446744073709551616}}"), EXPORT_PARTIAL, -1,
     UINT64_MAX, "18446744073709551615 spans rejected"},
    /* a count that is not one */
    {200, NULL, "application/json", B("{\"partialSuccess\":{\"rejectedSpans\":-1}}"),
     EXPORT_PARTIAL, -1, 0, "partialSuccess.rejectedSpans is not a count"},
    {200, NULL, "application/json", B("{\"partialSuccess\":{\"rejectedSpans\":\"3a\"}}"),
     EXPORT_PARTIAL, -1, 0, "partialSuccess.rejectedSpans is not a count"},
    {200, NULL, "application/json", B("{\"partialSuccess\":{\"rejectedSpans\":2.5}}"),
     EXPORT_PARTIAL, -1, 0, "partialSuccess.rejectedSpans is not a count"},
    {200, NULL, "application/json",
     B("{\"partialSuccess\":{\"rejectedSpans\":true,\"errorMessage\":\"why\"}}"), EXPORT_PARTIAL,
     -1, 0, "why"},
    {200, "5", NULL, NO_BODY, EXPORT_OK, 5000, 0, "HTTP 200"},
    /* failures: the google.rpc.Status message when there is one */
    {400, NULL, "application/json", B("{\"code\":3,\"message\":\"invalid span id\"}"),
     EXPORT_FAILED, -1, 0, "invalid span id"},
    {400, NULL, NULL, B("{\"code\":3,\"message\":\"no content type\"}"), EXPORT_FAILED, -1, 0,
     "no content type"},
    {400, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 400"},
    {400, NULL, "text/html", B("{\"message\":\"html\"}"), EXPORT_FAILED, -1, 0, "HTTP 400"},
    {400, NULL, "application/json", B("{\"code\":3,\"message\":\"\"}"), EXPORT_FAILED, -1, 0,
     "HTTP 400"},
    {400, NULL, "application/json", B("{\"code\":3,\"message\":5}"), EXPORT_FAILED, -1, 0,
     "HTTP 400"},
    {400, NULL, "application/json", B("<html>bad</html>"), EXPORT_FAILED, -1, 0, "HTTP 400"},
    {400, NULL, "application/json", B("{\"partialSuccess\":{\"rejectedSpans\":\"3\"}}"),
     EXPORT_FAILED, -1, 0, "HTTP 400"},
    {401, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 401"},
    {403, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 403"},
    {404, NULL, "text/plain", B("404 page not found"), EXPORT_FAILED, -1, 0, "HTTP 404"},
    {408, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 408"},
    {413, "10", NULL, NO_BODY, EXPORT_FAILED, 10000, 0, "HTTP 413"},
    {415, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 415"},
    {500, NULL, "application/json", B("{\"code\":13,\"message\":\"internal\"}"), EXPORT_FAILED, -1,
     0, "internal"},
    {501, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 501"},
    {505, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 505"},
    /* 1xx, 3xx and nonsense statuses are final too */
    {100, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 100"},
    {101, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 101"},
    {301, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 301"},
    {304, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 304"},
    {199, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 199"},
    {300, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 300"},
    {600, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP 600"},
    {-1, NULL, NULL, NO_BODY, EXPORT_FAILED, -1, 0, "HTTP -1"},
    /* retryable */
    {429, NULL, NULL, NO_BODY, EXPORT_RETRY, -1, 0, "HTTP 429"},
    {429, "30", NULL, NO_BODY, EXPORT_RETRY, 30000, 0, "HTTP 429"},
    {429, " 30 ", "application/json", B("{\"code\":8,\"message\":\"quota\"}"), EXPORT_RETRY, 30000,
     0, "quota"},
    {429, "later", NULL, NO_BODY, EXPORT_RETRY, -1, 0, "HTTP 429"},
    {502, NULL, "text/html", B("<html>Bad Gateway</html>"), EXPORT_RETRY, -1, 0, "HTTP 502"},
    {503, NULL, NULL, NO_BODY, EXPORT_RETRY, -1, 0, "HTTP 503"},
    {503, "120", NULL, NO_BODY, EXPORT_RETRY, 120000, 0, "HTTP 503"},
    {503, "99999999999", NULL, NO_BODY, EXPORT_RETRY, CAP, 0, "HTTP 503"},
    {503, "", NULL, NO_BODY, EXPORT_RETRY, -1, 0, "HTTP 503"},
    {503, NULL, "application/json", B("{\"partialSuccess\":{\"rejectedSpans\":\"3\"}}"),
     EXPORT_RETRY, -1, 0, "HTTP 503"},
    {504, NULL, NULL, NO_BODY, EXPORT_RETRY, -1, 0, "HTTP 504"},
    {0, NULL, NULL, NO_BODY, EXPORT_RETRY, -1, 0, "no response"},
    /* no response: a leftover body is not read; a Retry-After is still parsed */
    {0, "3", "application/json", B("{\"message\":\"stale\"}"), EXPORT_RETRY, 3000, 0,
     "no response"},
};

static const char *verdict_name(enum export_verdict v)
{
    switch (v) {
    case EXPORT_OK:
        return "OK";
    case EXPORT_PARTIAL:
        return "PARTIAL";
    case EXPORT_RETRY:
        return "RETRY";
    case EXPORT_FAILED:
        return "FAILED";
    }
    return "?";
}

/* Every pointer of the response points into an exactly-sized heap copy; free them after. */
struct owned_response {
    struct export_response response;
    char *retry_after, *content_type, *body;
};

static void response_make(struct owned_response *o, long status, const char *retry_after,
                          const char *content_type, const char *body, size_t body_len, int64_t now)
{
    memset(o, 0, sizeof(*o));
    o->response.status = status;
    o->response.now_epoch_s = now;
    if (retry_after) {
        o->retry_after = unit_memdup(retry_after, strlen(retry_after));
        o->response.retry_after = o->retry_after;
        o->response.retry_after_len = strlen(retry_after);
    }
    if (content_type) {
        o->content_type = unit_memdup(content_type, strlen(content_type));
        o->response.content_type = o->content_type;
        o->response.content_type_len = strlen(content_type);
    }
    if (body) {
        o->body = unit_memdup(body, body_len);
        o->response.body = o->body;
        o->response.body_len = body_len;
    }
}

static void response_free(struct owned_response *o)
{
    free(o->retry_after);
    free(o->content_type);
    free(o->body);
}

/* Classify into a result first filled with garbage: every field must be written. */
static void classify(const struct export_response *response, struct export_result *ret)
{
    memset(ret, 0xA5, sizeof(*ret));
    export_classify(response, ret);
}

START_TEST(test_classify)
{
    size_t i = (size_t)_i;
    struct owned_response o;
    struct export_result r;

    response_make(&o, classify_vectors[i].status, classify_vectors[i].retry_after,
                  classify_vectors[i].content_type, classify_vectors[i].body,
                  classify_vectors[i].body_len, NOW_2026);
    classify(&o.response, &r);
    ck_assert_msg(r.verdict == classify_vectors[i].verdict, "#%zu (%ld): %s, expected %s", i,
                  classify_vectors[i].status, verdict_name(r.verdict),
                  verdict_name(classify_vectors[i].verdict));
    ck_assert_msg(r.retry_after_ms == classify_vectors[i].retry_after_ms,
                  "#%zu: retry_after_ms %lld, expected %lld", i, (long long)r.retry_after_ms,
                  (long long)classify_vectors[i].retry_after_ms);
    ck_assert_msg(r.rejected_spans == classify_vectors[i].rejected,
                  "#%zu: rejected_spans %llu, expected %llu", i,
                  (unsigned long long)r.rejected_spans,
                  (unsigned long long)classify_vectors[i].rejected);
    ck_assert_msg(memchr(r.message, '\0', sizeof(r.message)) != NULL, "#%zu: no NUL", i);
    ck_assert_msg(strcmp(r.message, classify_vectors[i].message) == 0,
                  "#%zu: message \"%s\", expected \"%s\"", i, r.message,
                  classify_vectors[i].message);
    response_free(&o);
}
END_TEST

START_TEST(test_classify_null_response)
{
    struct export_result r;

    classify(NULL, &r);
    ck_assert_int_eq(r.verdict, EXPORT_RETRY);
    ck_assert_int_eq(r.retry_after_ms, -1);
    ck_assert_uint_eq(r.rejected_spans, 0);
    ck_assert_str_eq(r.message, "no response");
}
END_TEST

/* A pointer without bytes, or a length with a NULL pointer, is taken as absent. */
START_TEST(test_classify_null_fields)
{
    struct export_response response = {
        .status = 400, .retry_after = NULL, .retry_after_len = 9, .body = NULL, .body_len = 9};
    struct export_result r;

    classify(&response, &r);
    ck_assert_int_eq(r.verdict, EXPORT_FAILED);
    ck_assert_int_eq(r.retry_after_ms, -1);
    ck_assert_str_eq(r.message, "HTTP 400");
}
END_TEST

/* The body limit: a body of exactly EXPORT_BODY_PARSE_MAX bytes is read, one more is not. */
START_TEST(test_classify_body_limit)
{
    static const char head[] = "{\"partialSuccess\":{\"rejectedSpans\":\"9\"}}";
    struct owned_response o;
    struct export_result r;
    char *body = malloc(EXPORT_BODY_PARSE_MAX + 1);

    ck_assert_ptr_nonnull(body);
    memcpy(body, head, strlen(head));
    memset(body + strlen(head), ' ', EXPORT_BODY_PARSE_MAX + 1 - strlen(head));

    response_make(&o, 200, NULL, "application/json", body, EXPORT_BODY_PARSE_MAX, NOW_2026);
    classify(&o.response, &r);
    ck_assert_int_eq(r.verdict, EXPORT_PARTIAL);
    ck_assert_uint_eq(r.rejected_spans, 9);
    response_free(&o);

    response_make(&o, 200, NULL, "application/json", body, EXPORT_BODY_PARSE_MAX + 1, NOW_2026);
    classify(&o.response, &r);
    ck_assert_int_eq(r.verdict, EXPORT_OK);
    ck_assert_uint_eq(r.rejected_spans, 0);
    response_free(&o);
    free(body);
}
END_TEST

/* Deep nesting within the limit: jansson's depth limit refuses it, nothing crashes. */
START_TEST(test_classify_deep_nesting)
{
    size_t len;
    char *body = unit_expand("{[*60000}", &len);
    struct owned_response o;
    struct export_result r;

    response_make(&o, 400, NULL, NULL, body, len, NOW_2026);
    classify(&o.response, &r);
    ck_assert_int_eq(r.verdict, EXPORT_FAILED);
    ck_assert_str_eq(r.message, "HTTP 400");
    response_free(&o);
    free(body);
}
END_TEST

/* --- the message ----------------------------------------------------------------------------- */

static const struct {
    const char *json_text; /* the errorMessage as it appears in the JSON body */
    const char *expected;
} message_vectors[] = {
    {"plain", "plain"},
    {"line1\\nline2\\r\\ttab\\u0001end", "line1 line2  tab end"},
    {"nul\\u0000inside", "nul inside"},
    {"del\\u007f", "del "},
    {"caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80!", "caf? ? ?!"},
    {"caf\\u00e9 \\ud83d\\ude00", "caf? ?"},
    {"{a*255}", "{a*255}"},
    {"{a*254}\xc3\xa9", "{a*254}?"},
    {"{a*256}", "{a*252}..."},
    {"{a*300}", "{a*252}..."},
    {"{a*254}\xc3\xa9\xc3\xa9", "{a*252}..."},
    {"{\xe2*1}{\x98*1}{\x83*1}{b*1000}", "?{b*251}..."},
};

/* The message reaches the result through both paths: partialSuccess and google.rpc.Status. */
START_TEST(test_message_sanitised)
{
    size_t i = (size_t)_i, text_len, expected_len;
    char *text = unit_expand(message_vectors[i].json_text, &text_len);
    char *expected = unit_expand(message_vectors[i].expected, &expected_len);
    char *body = malloc(text_len + 64);
    struct export_result r;

    ck_assert_ptr_nonnull(body);
    for (int path = 0; path < 2; path++) {
        struct owned_response o;
        int n = snprintf(body, text_len + 64,
                         path == 0 ? "{\"partialSuccess\":{\"errorMessage\":\"%s\"}}"
                                   : "{\"code\":3,\"message\":\"%s\"}",
                         text);

        response_make(&o, path == 0 ? 200 : 400, NULL, "application/json", body, (size_t)n,
                      NOW_2026);
        classify(&o.response, &r);
        ck_assert_int_eq(r.verdict, path == 0 ? EXPORT_PARTIAL : EXPORT_FAILED);
        ck_assert_msg(strlen(r.message) < EXPORT_MESSAGE_SIZE, "#%zu: too long", i);
        for (const char *p = r.message; *p; p++)
            ck_assert_msg(*p >= 0x20 && *p <= 0x7e, "#%zu: byte 0x%02x", i, (unsigned char)*p);
        ck_assert_msg(strcmp(r.message, expected) == 0, "#%zu path %d: \"%s\", expected \"%s\"", i,
                      path, r.message, expected);
        response_free(&o);
    }
    free(body);
    free(text);
    free(expected);
}
END_TEST

/* --- export_backoff_ms ----------------------------------------------------------------------- */

/* The exponential step, computed here without the library: initial * 2^(attempt-1), cut to max. */
static int64_t reference_step(unsigned attempt, int64_t initial, int64_t max)
{
    int64_t step = initial < max ? initial : max;

    for (unsigned i = 1; i < attempt; i++) {
        if (step >= max - step) /* step * 2 >= max, without overflow */
            return max;
        step *= 2;
    }
    return step;
}

static const struct {
    int64_t initial, max;
} backoff_settings[] = {
    {1, 1},
    {1, 2},
    {500, 30000},
    {1000, 5000},
    {5000, 1000}, /* initial above max: max */
    {1, INT64_MAX},
    {INT64_MAX / 3, INT64_MAX},
    {INT64_MAX, INT64_MAX},
};

START_TEST(test_backoff_bounds)
{
    size_t i = (size_t)_i;
    int64_t initial = backoff_settings[i].initial, max = backoff_settings[i].max;
    uint64_t state = unit_prng_seed(i);

    for (unsigned attempt = 1; attempt <= 100; attempt++) {
        int64_t step = reference_step(attempt, initial, max);
        uint64_t randoms[] = {0, UINT64_MAX, unit_prng_next(&state), unit_prng_next(&state)};

        for (size_t k = 0; k < ARRAY_SIZE(randoms); k++) {
            int64_t wait = export_backoff_ms(attempt, initial, max, randoms[k]);

            ck_assert_msg(wait >= step / 2 && wait <= step && wait <= max,
                          "initial %lld max %lld attempt %u random %llu: %lld not in [%lld, %lld]",
                          (long long)initial, (long long)max, attempt,
                          (unsigned long long)randoms[k], (long long)wait, (long long)(step / 2),
                          (long long)step);
        }
        /* random 0 gives the floor, the top of the range is reachable */
        ck_assert_int_eq(export_backoff_ms(attempt, initial, max, 0), step / 2);
        ck_assert_int_eq(export_backoff_ms(attempt, initial, max, (uint64_t)(step - step / 2)),
                         step);
    }
    for (unsigned attempt = UINT_MAX - 2; attempt != 0; attempt++)
        ck_assert_int_ge(export_backoff_ms(attempt, initial, max, UINT64_MAX), max / 2);
}
END_TEST

START_TEST(test_backoff_values)
{
    ck_assert_int_eq(export_backoff_ms(1, 500, 30000, 0), 250);
    ck_assert_int_eq(export_backoff_ms(1, 500, 30000, 250), 500);
    ck_assert_int_eq(export_backoff_ms(1, 500, 30000, 251), 250);
    ck_assert_int_eq(export_backoff_ms(1, 500, 30000, UINT64_MAX), 250 + 68); /* 2^64-1 mod 251 */
    ck_assert_int_eq(export_backoff_ms(0, 500, 30000, 0), 250);               /* 0 counts as 1 */
    ck_assert_int_eq(export_backoff_ms(2, 500, 30000, 0), 500);
    ck_assert_int_eq(export_backoff_ms(6, 500, 30000, 0), 8000);
    ck_assert_int_eq(export_backoff_ms(7, 500, 30000, 0), 15000); /* 32000 cut to 30000 */
    ck_assert_int_eq(export_backoff_ms(7, 500, 30000, 15000), 30000);
    ck_assert_int_eq(export_backoff_ms(UINT_MAX, 500, 30000, 15000), 30000);
    ck_assert_int_eq(export_backoff_ms(1, 3, 3, 1), 2); /* odd step: [1, 3] */
    /* nothing to wait for */
    ck_assert_int_eq(export_backoff_ms(5, 0, 30000, UINT64_MAX), 0);
    ck_assert_int_eq(export_backoff_ms(5, -5, 30000, UINT64_MAX), 0);
    ck_assert_int_eq(export_backoff_ms(5, 500, 0, UINT64_MAX), 0);
    ck_assert_int_eq(export_backoff_ms(5, 500, -1, UINT64_MAX), 0);
    ck_assert_int_eq(export_backoff_ms(5, INT64_MIN, INT64_MIN, UINT64_MAX), 0);
}
END_TEST

/* Every value of the jitter range is reachable, and nothing outside it. */
START_TEST(test_backoff_covers_range)
{
    bool seen[101] = {false};

    for (uint64_t random = 0; random < 1000; random++) {
        int64_t wait = export_backoff_ms(1, 100, 1000, random);

        ck_assert_int_ge(wait, 50);
        ck_assert_int_le(wait, 100);
        seen[wait] = true;
    }
    for (int v = 50; v <= 100; v++)
        ck_assert_msg(seen[v], "%d never drawn", v);
}
END_TEST

/* --- export_next_wait_ms --------------------------------------------------------------------- */

static struct export_result result_of(enum export_verdict verdict, int64_t retry_after_ms)
{
    struct export_result r = {.verdict = verdict, .retry_after_ms = retry_after_ms};

    return r;
}

START_TEST(test_next_wait)
{
    struct export_result r;

    /* only RETRY waits */
    r = result_of(EXPORT_OK, 1000);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 500, 5000, 60000, 0), -1);
    r = result_of(EXPORT_PARTIAL, -1);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 500, 5000, 60000, 0), -1);
    r = result_of(EXPORT_FAILED, -1);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 500, 5000, 60000, 0), -1);
    ck_assert_int_eq(export_next_wait_ms(NULL, 1, 500, 5000, 60000, 0), -1);

    /* Retry-After wins over the backoff, even above max_ms */
    r = result_of(EXPORT_RETRY, 30000);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 500, 5000, 60000, UINT64_MAX), 30000);
    ck_assert_int_eq(export_next_wait_ms(&r, 9, 500, 5000, 30000, 0), 30000);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 500, 5000, 29999, 0), -1);
    r = result_of(EXPORT_RETRY, 0);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 500, 5000, 0, UINT64_MAX), 0);
    r = result_of(EXPORT_RETRY, INT64_C(1000000000000)); /* not from the parser: still capped */
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 500, 5000, INT64_MAX, 0), CAP);

    /* no Retry-After: the backoff */
    r = result_of(EXPORT_RETRY, -1);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 1000, 5000, 60000, 0), 500);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 1000, 5000, 500, 0), 500);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 1000, 5000, 499, 0), -1);
    ck_assert_int_eq(export_next_wait_ms(&r, 3, 1000, 5000, 60000, 2000), 4000);
    ck_assert_int_eq(export_next_wait_ms(&r, 100, 1000, 5000, 60000, 2500), 5000);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 1000, 5000, -1, 0), -1);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 1000, 5000, INT64_MIN, 0), -1);
}
END_TEST

/* The exporter's walk: classify, then ask for the wait. */
START_TEST(test_classify_then_wait)
{
    struct owned_response o;
    struct export_result r;

    response_make(&o, 503, "Tue, 01 Dec 2026 12:00:02 GMT", NULL, NO_BODY, NOW_2026);
    classify(&o.response, &r);
    ck_assert_int_eq(r.verdict, EXPORT_RETRY);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 5000, 30000, 10000, 0), 2000);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 5000, 30000, 1999, 0), -1);
    response_free(&o);

    response_make(&o, 400, "1", NULL, NO_BODY, NOW_2026);
    classify(&o.response, &r);
    ck_assert_int_eq(export_next_wait_ms(&r, 1, 5000, 30000, 10000, 0), -1);
    response_free(&o);
}
END_TEST

static Suite *export_policy_suite(void)
{
    Suite *s = suite_create("export_policy");
    TCase *tc = tcase_create("retry_after");

    tcase_add_loop_test(tc, test_retry_after, 0, (int)ARRAY_SIZE(retry_after_vectors));
    tcase_add_test(tc, test_retry_after_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("classify");
    tcase_add_loop_test(tc, test_classify, 0, (int)ARRAY_SIZE(classify_vectors));
    tcase_add_test(tc, test_classify_null_response);
    tcase_add_test(tc, test_classify_null_fields);
    tcase_add_test(tc, test_classify_body_limit);
    tcase_add_test(tc, test_classify_deep_nesting);
    tcase_add_loop_test(tc, test_message_sanitised, 0, (int)ARRAY_SIZE(message_vectors));
    suite_add_tcase(s, tc);

    tc = tcase_create("waits");
    tcase_add_loop_test(tc, test_backoff_bounds, 0, (int)ARRAY_SIZE(backoff_settings));
    tcase_add_test(tc, test_backoff_values);
    tcase_add_test(tc, test_backoff_covers_range);
    tcase_add_test(tc, test_next_wait);
    tcase_add_test(tc, test_classify_then_wait);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(export_policy_suite());
}
