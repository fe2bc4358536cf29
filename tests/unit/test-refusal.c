/* SPDX-License-Identifier: MIT */
/*
 * tracehop's own answers (src/proxy/refusal.h): the request check with its fixed order of rules
 * (the first that applies wins), the framing it reports, Content-Length parsing, the refusals
 * of a failed upstream transfer together with the classification of libcurl's codes
 * (upstream_error_from_curl, src/proxy/upstream.h), and the outcome of a request libmicrohttpd
 * refused itself.
 *
 * A request head starts valid ("GET / HTTP/1.1" with one Host, no body) and each rule has one
 * mutation that breaks exactly it. The target and the Content-Length value are copied into heap
 * blocks of exactly their length, so a read past either end is caught by ASan.
 */
#include <check.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proxy/refusal.h"
#include "proxy/upstream.h"
#include "unit-test.h"

#define MAX_HEADER_BYTES 64
#define MAX_BODY_BYTES   100

/* A request head as a test writes it; facts() turns it into what request_check reads. */
struct head {
    struct request_head_facts f;
    struct request_limits limits;
    const char *target;         /* NULL: none (a failed copy) */
    const char *content_length; /* the last Content-Length value, NULL: none */
};

static void head_valid(struct head *h)
{
    *h = (struct head){
        .f = {.method = "GET", .version = "HTTP/1.1", .host_count = 1},
        .limits = {.max_header_bytes = MAX_HEADER_BYTES, .max_body_bytes = MAX_BODY_BYTES},
        .target = "/",
    };
}

/* request_check on h, with the target and Content-Length in exactly-sized heap blocks. */
static bool check_head(const struct head *h, struct request_framing *framing, struct refusal *ret)
{
    struct request_head_facts f = h->f;
    char *target = NULL, *cl = NULL;

    if (h->target) {
        f.target_len = strlen(h->target);
        f.target = target = unit_memdup(h->target, f.target_len);
    }
    if (h->content_length) {
        f.content_length_len = strlen(h->content_length);
        f.content_length = cl = unit_memdup(h->content_length, f.content_length_len);
        if (f.content_length_count == 0)
            f.content_length_count = 1;
    }
    /* Poison the outputs: request_check must write both. */
    memset(framing, 0x5a, sizeof(*framing));
    memset(ret, 0x5a, sizeof(*ret));
    bool refused = request_check(&f, &h->limits, framing, ret);
    free(target);
    free(cl);
    return refused;
}

/* --- one mutation per rule, in the order request_check applies them -------------------------- */

/* Which parts of the head a mutation touches (or relies on): two mutations that share one are
 * not combined by the pair test. */
enum {
    M_OOM = 1 << 0,
    M_TARGET = 1 << 1,
    M_TOO_LARGE = 1 << 2,
    M_LAYOUT = 1 << 3,
    M_NAME = 1 << 4,
    M_VALUE = 1 << 5,
    M_METHOD = 1 << 6,
    M_HOST = 1 << 7,
    M_VERSION = 1 << 8,
    M_CL = 1 << 9,
    M_TE = 1 << 10,
};

static void oom(struct head *h)
{
    h->f.out_of_memory = true;
}
static void long_target(struct head *h)
{
    h->target = "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
}
static void too_large(struct head *h)
{
    h->f.too_large = true;
}
static void bad_layout(struct head *h)
{
    h->f.bad_layout = true;
}
static void bad_name(struct head *h)
{
    h->f.bad_name = true;
}
static void bad_value(struct head *h)
{
    h->f.bad_value = true;
}
static void bad_method(struct head *h)
{
    h->f.method = "G ET";
}
static void absolute_target(struct head *h)
{
    h->target = "http://example.com/";
}
static void no_host(struct head *h)
{
    h->f.host_count = 0;
}
static void two_hosts(struct head *h)
{
    h->f.host_count = 2;
}
static void conflicting_cl(struct head *h)
{
    h->f.content_length_count = 2;
    h->f.content_length_conflict = true;
    h->content_length = "5";
}
static void bad_cl(struct head *h)
{
    h->content_length = "-1";
}
static void cl_and_te(struct head *h)
{
    h->content_length = "5";
    h->f.transfer_encoding_count = 1;
    h->f.transfer_encoding_chunked = true;
}
static void te_gzip(struct head *h)
{
    h->f.transfer_encoding_count = 1;
    h->f.transfer_encoding_chunked = false;
}
static void te_in_http10(struct head *h)
{
    h->f.version = "HTTP/1.0";
    h->f.transfer_encoding_count = 1;
    h->f.transfer_encoding_chunked = true;
}
static void body_over_limit(struct head *h)
{
    h->content_length = "101";
}

static const struct rule {
    const char *name;
    void (*mutate)(struct head *);
    unsigned touches;
    unsigned status;
    const char *code;
    const char *outcome;
} rules[] = {
    {"out of memory", oom, M_OOM, 500, "internal_error", "bad_request"},
    {"target over max_header_bytes", long_target, M_TARGET, 414, "uri_too_long", "too_large"},
    {"head over max_header_bytes", too_large, M_TOO_LARGE, 431, "headers_too_large", "too_large"},
    {"obs-fold or NUL", bad_layout, M_LAYOUT, 400, "bad_header_syntax", "bad_request"},
    {"header name not a token", bad_name, M_NAME, 400, "bad_header_name", "bad_request"},
    {"control byte in a value", bad_value, M_VALUE, 400, "bad_header_value", "bad_request"},
    {"method not a token", bad_method, M_METHOD, 400, "bad_method", "bad_request"},
    {"absolute-form target", absolute_target, M_TARGET, 400, "bad_target", "bad_request"},
    {"HTTP/1.1 without Host", no_host, M_HOST | M_VERSION, 400, "missing_host", "bad_request"},
    {"two Host", two_hosts, M_HOST, 400, "duplicate_host", "bad_request"},
    {"conflicting Content-Length", conflicting_cl, M_CL, 400, "conflicting_content_length",
     "bad_request"},
    {"negative Content-Length", bad_cl, M_CL, 400, "bad_content_length", "bad_request"},
    {"Content-Length and Transfer-Encoding", cl_and_te, M_CL | M_TE, 400,
     "content_length_with_transfer_encoding", "bad_request"},
    {"Transfer-Encoding: gzip", te_gzip, M_TE, 501, "unsupported_transfer_encoding", "bad_request"},
    {"Transfer-Encoding in HTTP/1.0", te_in_http10, M_TE | M_VERSION, 400,
     "transfer_encoding_in_http10", "bad_request"},
    /* needs "no Transfer-Encoding" too: with one, an earlier framing rule would apply */
    {"Content-Length over max_body_bytes", body_over_limit, M_CL | M_TE, 413, "body_too_large",
     "too_large"},
};

static void assert_refusal(const struct refusal *r, unsigned status, const char *code,
                           const char *outcome, const char *what)
{
    ck_assert_msg(r->status == status, "%s: status %u, expected %u", what, r->status, status);
    ck_assert_msg(r->code && strcmp(r->code, code) == 0, "%s: code %s, expected %s", what,
                  r->code ? r->code : "(null)", code);
    ck_assert_msg(r->outcome && strcmp(r->outcome, outcome) == 0, "%s: outcome %s, expected %s",
                  what, r->outcome ? r->outcome : "(null)", outcome);
    ck_assert_msg(r->message && r->message[0], "%s: no message", what);
}

/* The very constant (its padding aside). */
static void assert_same(const struct refusal *r, const struct refusal *constant)
{
    ck_assert_uint_eq(r->status, constant->status);
    ck_assert_ptr_eq(r->code, constant->code);
    ck_assert_ptr_eq(r->outcome, constant->outcome);
    ck_assert_ptr_eq(r->message, constant->message);
}

START_TEST(test_valid_head_passes)
{
    struct head h;
    struct request_framing framing;
    struct refusal r;

    head_valid(&h);
    ck_assert(!check_head(&h, &framing, &r));
    ck_assert_uint_eq(r.status, 0);
    ck_assert(!framing.has_body);
    ck_assert_int_eq(framing.content_length, 0);
}
END_TEST

/* Each rule alone. */
START_TEST(test_each_rule)
{
    const struct rule *rule = &rules[_i];
    struct head h;
    struct request_framing framing;
    struct refusal r;

    head_valid(&h);
    rule->mutate(&h);
    ck_assert_msg(check_head(&h, &framing, &r), "%s: not refused", rule->name);
    assert_refusal(&r, rule->status, rule->code, rule->outcome, rule->name);
}
END_TEST

/* Every two rules that can break one head together: the earlier one wins, whichever mutation is
 * applied first. */
START_TEST(test_every_pair_first_rule_wins)
{
    size_t combined = 0;

    for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
        for (size_t j = i + 1; j < ARRAY_SIZE(rules); j++) {
            if (rules[i].touches & rules[j].touches)
                continue;
            for (int order = 0; order < 2; order++) {
                struct head h;
                struct request_framing framing;
                struct refusal r;
                char what[200];

                head_valid(&h);
                if (order == 0) {
                    rules[i].mutate(&h);
                    rules[j].mutate(&h);
                } else {
                    rules[j].mutate(&h);
                    rules[i].mutate(&h);
                }
                snprintf(what, sizeof(what), "%s + %s", rules[i].name, rules[j].name);
                ck_assert_msg(check_head(&h, &framing, &r), "%s: not refused", what);
                assert_refusal(&r, rules[i].status, rules[i].code, rules[i].outcome, what);
            }
            combined++;
        }
    }
    /* The masks must not have excluded nearly everything. */
    ck_assert_uint_ge(combined, 100);
}
END_TEST

/* Pairs the generated test leaves out (both touch the same part), written by hand. */
static const struct {
    const char *name;
    const char *method, *version, *target, *content_length;
    size_t host_count, content_length_count, te_count;
    bool conflict, chunked;
    unsigned status;
    const char *code;
} pairs[] = {
    {"long target with a space: 414 before bad_target", "GET", "HTTP/1.1",
     "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL,
     1, 0, 0, false, false, 414, "uri_too_long"},
    {"bad method and bad target: method first", "G(T", "HTTP/1.1", "*", NULL, 1, 0, 0, false, false,
     400, "bad_method"},
    {"bad target and no Host: target first", "GET", "HTTP/1.1", "/a#b", NULL, 0, 0, 0, false, false,
     400, "bad_target"},
    {"conflicting and unparsable: conflict first", "GET", "HTTP/1.1", "/", "x", 1, 2, 0, true,
     false, 400, "conflicting_content_length"},
    {"unparsable Content-Length with chunked: bad CL first", "GET", "HTTP/1.1", "/", "1 2", 1, 1, 1,
     false, true, 400, "bad_content_length"},
    {"Content-Length with gzip: CL+TE before 501", "POST", "HTTP/1.1", "/", "5", 1, 1, 1, false,
     false, 400, "content_length_with_transfer_encoding"},
    {"Content-Length over the limit with chunked: CL+TE", "POST", "HTTP/1.1", "/", "1000", 1, 1, 1,
     false, true, 400, "content_length_with_transfer_encoding"},
    {"two Transfer-Encoding in HTTP/1.0: 501 first", "POST", "HTTP/1.0", "/", NULL, 0, 0, 2, false,
     true, 501, "unsupported_transfer_encoding"},
    {"gzip in HTTP/1.0: 501 first", "POST", "HTTP/1.0", "/", NULL, 0, 0, 1, false, false, 501,
     "unsupported_transfer_encoding"},
    {"bad Content-Length over the limit: bad CL first", "POST", "HTTP/1.1", "/",
     "1000000000000000000", 1, 1, 0, false, false, 400, "bad_content_length"},
    {"two Host and no version: duplicate_host", "GET", NULL, "/", NULL, 2, 0, 0, false, false, 400,
     "duplicate_host"},
};

START_TEST(test_pairs)
{
    struct head h;
    struct request_framing framing;
    struct refusal r;

    head_valid(&h);
    h.f.method = pairs[_i].method;
    h.f.version = pairs[_i].version;
    h.target = pairs[_i].target;
    h.content_length = pairs[_i].content_length;
    h.f.host_count = pairs[_i].host_count;
    h.f.content_length_count = pairs[_i].content_length_count;
    h.f.content_length_conflict = pairs[_i].conflict;
    h.f.transfer_encoding_count = pairs[_i].te_count;
    h.f.transfer_encoding_chunked = pairs[_i].chunked;
    ck_assert_msg(check_head(&h, &framing, &r), "%s: not refused", pairs[_i].name);
    ck_assert_msg(r.status == pairs[_i].status && strcmp(r.code, pairs[_i].code) == 0,
                  "%s: %u %s, expected %u %s", pairs[_i].name, r.status, r.code, pairs[_i].status,
                  pairs[_i].code);
}
END_TEST

/* out_of_memory wins even when the method and target are missing (their copies failed). */
START_TEST(test_out_of_memory_without_method_or_target)
{
    struct head h;
    struct request_framing framing;
    struct refusal r;

    head_valid(&h);
    h.f.out_of_memory = true;
    h.f.method = NULL;
    h.f.version = NULL;
    h.target = NULL;
    ck_assert(check_head(&h, &framing, &r));
    assert_refusal(&r, 500, "internal_error", "bad_request", "out of memory");
    assert_same(&r, &refusal_out_of_memory);
}
END_TEST

/* The target limit is a strict "longer than": exactly max_header_bytes passes. */
START_TEST(test_target_limit_boundary)
{
    char target[MAX_HEADER_BYTES + 2];
    struct head h;
    struct request_framing framing;
    struct refusal r;

    memset(target, 'a', sizeof(target));
    target[0] = '/';
    target[MAX_HEADER_BYTES] = '\0';
    head_valid(&h);
    h.target = target;
    ck_assert_msg(!check_head(&h, &framing, &r), "%u bytes refused: %s", MAX_HEADER_BYTES, r.code);
    target[MAX_HEADER_BYTES] = 'a';
    target[MAX_HEADER_BYTES + 1] = '\0';
    ck_assert(check_head(&h, &framing, &r));
    ck_assert_uint_eq(r.status, 414);
}
END_TEST

static const struct {
    const char *target;
    bool ok;
} targets[] = {
    {"/", true},
    {"/a/b?c=d&e=%20f", true},
    {"/~user/!$&'()*+,;=:@", true},
    {"", false},
    {"*", false},
    {"example.com:443", false},
    {"http://example.com/", false},
    {"https://example.com/a", false},
    {"/a b", false},
    {"/a\tb", false},
    {"/a#frag", false},
    {"/caf\xc3\xa9", false},
    {"/\x80", false},
    {"/a\x7f", false},
    {"/a\x01", false},
    {"/a\r\nX-Injected: 1", false},
};

START_TEST(test_targets)
{
    struct head h;
    struct request_framing framing;
    struct refusal r;

    head_valid(&h);
    h.target = targets[_i].target;
    bool refused = check_head(&h, &framing, &r);
    ck_assert_msg(refused == !targets[_i].ok, "target \"%s\": refused %d (%s)", targets[_i].target,
                  refused, refused ? r.code : "");
    if (refused)
        ck_assert_str_eq(r.code, "bad_target");
}
END_TEST

static const struct {
    const char *method;
    bool ok;
} methods[] = {
    {"GET", true},   {"M-SEARCH", true}, {"PROPFIND", true}, {"x!#$%&'*+.^_`|~", true},
    {"", false},     {"G ET", false},    {"GET\x01", false}, {"G\xc3\x89T", false},
    {"GET/", false}, {"(GET)", false},
};

START_TEST(test_methods)
{
    struct head h;
    struct request_framing framing;
    struct refusal r;

    head_valid(&h);
    h.f.method = methods[_i].method;
    bool refused = check_head(&h, &framing, &r);
    ck_assert_msg(refused == !methods[_i].ok, "method \"%s\": refused %d", methods[_i].method,
                  refused);
    if (refused)
        ck_assert_str_eq(r.code, "bad_method");
}
END_TEST

/* Host is required in HTTP/1.1 only. */
START_TEST(test_host_by_version)
{
    static const struct {
        const char *version;
        size_t hosts;
        const char *code; /* NULL: accepted */
    } cases[] = {
        {"HTTP/1.1", 0, "missing_host"},
        {"HTTP/1.1", 1, NULL},
        {"HTTP/1.1", 3, "duplicate_host"},
        {"HTTP/1.0", 0, NULL},
        {"HTTP/1.0", 1, NULL},
        {"HTTP/1.0", 2, "duplicate_host"},
        {NULL, 0, NULL},
        {"HTTP/1.10", 0, NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct head h;
        struct request_framing framing;
        struct refusal r;

        head_valid(&h);
        h.f.version = cases[i].version;
        h.f.host_count = cases[i].hosts;
        bool refused = check_head(&h, &framing, &r);
        ck_assert_msg(refused == (cases[i].code != NULL), "case %zu: refused %d", i, refused);
        if (refused)
            ck_assert_str_eq(r.code, cases[i].code);
    }
}
END_TEST

/* Transfer-Encoding: only one, exactly chunked, never in HTTP/1.0. */
START_TEST(test_transfer_encoding)
{
    static const struct {
        const char *version;
        size_t count;
        bool chunked;
        unsigned status; /* 0: accepted */
        const char *code;
    } cases[] = {
        {"HTTP/1.1", 1, true, 0, NULL},
        {"HTTP/1.1", 1, false, 501, "unsupported_transfer_encoding"},
        {"HTTP/1.1", 2, true, 501, "unsupported_transfer_encoding"},
        {"HTTP/1.1", 2, false, 501, "unsupported_transfer_encoding"},
        {"HTTP/1.0", 1, true, 400, "transfer_encoding_in_http10"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct head h;
        struct request_framing framing;
        struct refusal r;

        head_valid(&h);
        h.f.method = "POST";
        h.f.version = cases[i].version;
        h.f.transfer_encoding_count = cases[i].count;
        h.f.transfer_encoding_chunked = cases[i].chunked;
        bool refused = check_head(&h, &framing, &r);
        ck_assert_msg(r.status == cases[i].status, "case %zu: status %u", i, r.status);
        ck_assert(refused == (cases[i].status != 0));
        if (refused)
            ck_assert_str_eq(r.code, cases[i].code);
        /* Framing is written either way: a chunked body. */
        ck_assert(framing.has_body);
        ck_assert_int_eq(framing.content_length, -1);
    }
}
END_TEST

/* The framing: no body, Content-Length 0 (still a body: the upstream gets "Content-Length: 0"),
 * Content-Length n, chunked. Written even when the head is refused. */
START_TEST(test_framing)
{
    static const struct {
        const char *content_length; /* NULL: none */
        size_t te_count;
        size_t max_body;
        bool has_body;
        int64_t length;
        unsigned status;
    } cases[] = {
        {NULL, 0, 100, false, 0, 0},
        {"0", 0, 100, true, 0, 0},
        {"42", 0, 100, true, 42, 0},
        {" 42\t", 0, 100, true, 42, 0},
        {"100", 0, 100, true, 100, 0},
        {"101", 0, 100, true, 101, 413},
        {"999999999999999999", 0, 0, true, INT64_C(999999999999999999), 0}, /* 0: no limit */
        {"999999999999999999", 0, 100, true, INT64_C(999999999999999999), 413},
        {NULL, 1, 100, true, -1, 0}, /* chunked: no length, no 413 from the head */
        {NULL, 1, 1, true, -1, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct head h;
        struct request_framing framing;
        struct refusal r;

        head_valid(&h);
        h.f.method = "POST";
        h.content_length = cases[i].content_length;
        h.f.transfer_encoding_count = cases[i].te_count;
        h.f.transfer_encoding_chunked = cases[i].te_count > 0;
        h.limits.max_body_bytes = cases[i].max_body;
        bool refused = check_head(&h, &framing, &r);
        ck_assert_msg(r.status == cases[i].status, "case %zu: status %u", i, r.status);
        ck_assert(refused == (cases[i].status != 0));
        ck_assert_msg(framing.has_body == cases[i].has_body, "case %zu: has_body %d", i,
                      framing.has_body);
        ck_assert_msg(framing.content_length == cases[i].length,
                      "case %zu: content_length %" PRId64, i, framing.content_length);
        if (cases[i].status == 413)
            assert_same(&r, &refusal_body_too_large);
    }
}
END_TEST

static const struct {
    const char *v;
    size_t len;
    bool ok;
    int64_t value;
} lengths[] = {
    {V("0"), true, 0},
    {V("42"), true, 42},
    {V("007"), true, 7},
    {V(" 7"), true, 7},
    {V("7 "), true, 7},
    {V("\t 7 \t"), true, 7},
    {V("999999999999999999"), true, INT64_C(999999999999999999)}, /* 18 digits */
    {V("000000000000000001"), true, 1},
    {V("1000000000000000000"), false, 0}, /* 19 digits */
    {V("9223372036854775807"), false, 0},
    {V("99999999999999999999"), false, 0},
    {V(""), false, 0},
    {V(" "), false, 0},
    {V("\t\t"), false, 0},
    {V("+1"), false, 0},
    {V("-1"), false, 0},
    {V("1 2"), false, 0},
    {V("1\t2"), false, 0},
    {V("1,1"), false, 0},
    {V("0x10"), false, 0},
    {V("1a"), false, 0},
    {V("1.0"), false, 0},
    {V("1\0"), false, 0},
    {V("\xd9\xa1"), false, 0}, /* ARABIC-INDIC DIGIT ONE */
};

START_TEST(test_parse_content_length)
{
    char *v = unit_memdup(lengths[_i].v, lengths[_i].len);
    int64_t got = -7;

    bool ok = request_parse_content_length(v, lengths[_i].len, &got);
    ck_assert_msg(ok == lengths[_i].ok, "\"%s\": ok %d", lengths[_i].v, ok);
    if (ok)
        ck_assert_msg(got == lengths[_i].value, "\"%s\": %" PRId64, lengths[_i].v, got);
    else
        ck_assert_msg(got == -7, "\"%s\": output written on failure", lengths[_i].v);
    /* The same value as a whole head's Content-Length. */
    struct head h;
    struct request_framing framing;
    struct refusal r;
    head_valid(&h);
    h.limits.max_body_bytes = 0;
    h.f.content_length_count = 1;
    /* check_head takes C strings; values with a NUL are checked directly above only */
    if (strlen(lengths[_i].v) == lengths[_i].len) {
        h.content_length = lengths[_i].v;
        bool refused = check_head(&h, &framing, &r);
        ck_assert(refused == !lengths[_i].ok);
        if (refused)
            ck_assert_str_eq(r.code, "bad_content_length");
    }
    free(v);
}
END_TEST

/* --- upstream failures ------------------------------------------------------------------------ */

static const struct {
    int curl;
    enum upstream_error error;
} curl_codes[] = {
    {CURLE_OK, UPSTREAM_OK},
    {CURLE_OPERATION_TIMEDOUT, UPSTREAM_TIMEOUT},
    {CURLE_COULDNT_CONNECT, UPSTREAM_CONNECT_FAILED},
    {CURLE_COULDNT_RESOLVE_HOST, UPSTREAM_CONNECT_FAILED},
    /* TLS failures are their own outcome, not a failed connect */
    {CURLE_SSL_CONNECT_ERROR, UPSTREAM_TLS_FAILED},
    {CURLE_PEER_FAILED_VERIFICATION, UPSTREAM_TLS_FAILED},
    {CURLE_SSL_CERTPROBLEM, UPSTREAM_TLS_FAILED},
    {CURLE_SSL_CIPHER, UPSTREAM_TLS_FAILED},
    {CURLE_SSL_CACERT_BADFILE, UPSTREAM_TLS_FAILED},
    {CURLE_SSL_ISSUER_ERROR, UPSTREAM_TLS_FAILED},
    {CURLE_SSL_CLIENTCERT, UPSTREAM_TLS_FAILED},
    {CURLE_SSL_SHUTDOWN_FAILED, UPSTREAM_RESET}, /* after the exchange: not a handshake */
    {CURLE_RECV_ERROR, UPSTREAM_RESET},
    {CURLE_SEND_ERROR, UPSTREAM_RESET},
    {CURLE_GOT_NOTHING, UPSTREAM_RESET},
    {CURLE_PARTIAL_FILE, UPSTREAM_RESET},
    {CURLE_WEIRD_SERVER_REPLY, UPSTREAM_RESET},
    {CURLE_WRITE_ERROR, UPSTREAM_RESET},
    {CURLE_ABORTED_BY_CALLBACK, UPSTREAM_RESET},
    {CURLE_OUT_OF_MEMORY, UPSTREAM_RESET},
    {CURLE_COULDNT_RESOLVE_PROXY, UPSTREAM_RESET},
    {-1, UPSTREAM_RESET},
    {100000, UPSTREAM_RESET},
};

START_TEST(test_upstream_error_from_curl)
{
    enum upstream_error e = upstream_error_from_curl(curl_codes[_i].curl);
    ck_assert_msg(e == curl_codes[_i].error, "curl code %d (%s): %d, expected %d",
                  curl_codes[_i].curl,
                  curl_codes[_i].curl >= 0 ? curl_easy_strerror(curl_codes[_i].curl) : "-", (int)e,
                  (int)curl_codes[_i].error);
}
END_TEST

START_TEST(test_refusal_for_upstream)
{
    static const struct {
        enum upstream_error error;
        unsigned status;
        const char *code;
    } cases[] = {
        {UPSTREAM_TIMEOUT, 504, "upstream_timeout"},
        {UPSTREAM_CONNECT_FAILED, 502, "upstream_connect_failed"},
        {UPSTREAM_RESET, 502, "upstream_reset"},
        {UPSTREAM_TLS_FAILED, 502, "upstream_tls_failed"},
        {UPSTREAM_OK, 502, "upstream_reset"}, /* never asked; still a valid refusal */
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct refusal r = refusal_for_upstream(cases[i].error);
        /* the access-log outcome of an upstream failure is its code (docs/access-log.md) */
        assert_refusal(&r, cases[i].status, cases[i].code, cases[i].code, cases[i].code);
    }
    /* Composed: a refused connection is a 502, a timeout a 504. */
    ck_assert_uint_eq(refusal_for_upstream(upstream_error_from_curl(CURLE_COULDNT_CONNECT)).status,
                      502);
    ck_assert_uint_eq(
        refusal_for_upstream(upstream_error_from_curl(CURLE_OPERATION_TIMEDOUT)).status, 504);
}
END_TEST

START_TEST(test_constant_refusals)
{
    assert_refusal(&refusal_no_route, 404, "no_route", "no_route", "no route");
    assert_refusal(&refusal_body_too_large, 413, "body_too_large", "too_large", "body");
    assert_refusal(&refusal_head_timeout, 408, "request_timeout", "bad_request", "timeout");
    assert_refusal(&refusal_upstream_setup, 502, "upstream_setup_failed", "upstream_connect_failed",
                   "setup");
    assert_refusal(&refusal_out_of_memory, 500, "internal_error", "bad_request", "oom");
    assert_refusal(&refusal_upgrade, 501, "upgrade_not_supported", "upgrade_not_supported",
                   "upgrade");
}
END_TEST

/* --- protocol upgrades ------------------------------------------------------------------ */

static const struct {
    const char *version, *connection, *upgrade; /* NULL: no such field */
    const char *refused;                        /* the protocol named, NULL: not refused */
} upgrades[] = {
    {"HTTP/1.1", "Upgrade", "websocket", "websocket"},
    {"HTTP/1.1", "keep-alive, Upgrade", "WebSocket", "WebSocket"},
    {"HTTP/1.1", "upgrade", "  websocket  ", "websocket"},
    {"HTTP/1.1", "Upgrade", "TLS/1.2", "TLS/1.2"},
    {"HTTP/1.1", "Upgrade, HTTP2-Settings", "h2c", NULL}, /* curl --http2 on http:// */
    {"HTTP/1.1", "Upgrade", "H2C", NULL},
    {"HTTP/1.1", "Upgrade", "h2c, websocket", "websocket"},
    {"HTTP/1.1", "Upgrade", ",, h2c ,websocket/13", "websocket/13"},
    {"HTTP/1.1", "Upgrade", "", NULL},
    {"HTTP/1.1", "Upgrade", " , ", NULL},
    {"HTTP/1.1", "Upgrade", NULL, NULL},
    {"HTTP/1.1", NULL, "websocket", NULL},         /* no "upgrade" option: not for this hop */
    {"HTTP/1.1", "keep-alive", "websocket", NULL}, /* the same */
    {"HTTP/1.1", "upgrades", "websocket", NULL},   /* a different token */
    {"HTTP/1.0", "Upgrade", "websocket", NULL},    /* RFC 9110 7.8: ignored in HTTP/1.0 */
    {"HTTP/1.1", "Upgrade", "h2c/x", NULL},
    {"HTTP/1.1", "Upgrade", "h2cx", "h2cx"},
};

START_TEST(test_upgrades)
{
    struct tracehop_slice upgrade = {0}, connection = {0}, protocol = {"untouched", 9};
    char *u = NULL, *c = NULL;
    struct request_upgrade_facts f = {
        .http11 = strcmp(upgrades[_i].version, "HTTP/1.1") == 0,
        .upgrade = &upgrade,
        .connection = &connection,
    };

    if (upgrades[_i].upgrade) {
        upgrade.len = strlen(upgrades[_i].upgrade);
        upgrade.ptr = u = unit_memdup(upgrades[_i].upgrade, upgrade.len);
        f.upgrade_count = 1;
    }
    if (upgrades[_i].connection) {
        connection.len = strlen(upgrades[_i].connection);
        connection.ptr = c = unit_memdup(upgrades[_i].connection, connection.len);
        f.connection_count = 1;
    }
    bool refused = request_wants_upgrade(&f, &protocol);
    if (upgrades[_i].refused) {
        ck_assert_msg(refused, "case %d: not refused", _i);
        ck_assert_uint_eq(protocol.len, strlen(upgrades[_i].refused));
        ck_assert_msg(memcmp(protocol.ptr, upgrades[_i].refused, protocol.len) == 0,
                      "case %d: protocol %.*s", _i, (int)protocol.len, protocol.ptr);
    } else {
        ck_assert_msg(!refused, "case %d: refused (%.*s)", _i, (int)protocol.len, protocol.ptr);
    }
    free(u);
    free(c);
}
END_TEST

/* Several Upgrade and Connection fields are one list each. */
START_TEST(test_upgrade_in_later_fields)
{
    struct tracehop_slice upgrade[] = {{"h2c", 3}, {"websocket", 9}};
    struct tracehop_slice connection[] = {{"keep-alive", 10}, {"Upgrade", 7}};
    struct tracehop_slice protocol = {0};
    struct request_upgrade_facts f = {true, upgrade, 2, connection, 2};

    ck_assert(request_wants_upgrade(&f, &protocol));
    ck_assert_uint_eq(protocol.len, 9);
    f.connection_count = 1;
    ck_assert(!request_wants_upgrade(&f, &protocol));
}
END_TEST

START_TEST(test_outcome_of_library_status)
{
    static const struct {
        unsigned status;
        bool head_complete;
        const char *outcome; /* NULL: none */
    } cases[] = {
        {431, false, "too_large"},   {413, false, "too_large"},
        {414, false, "too_large"},   {400, false, "bad_request"},
        {505, false, "bad_request"}, {0, false, "client_aborted"},
        {413, true, "too_large"},    {400, true, "bad_request"},
        {431, true, "bad_request"},  {0, true, NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const char *o = refusal_outcome_of_library_status(cases[i].status, cases[i].head_complete);
        if (!cases[i].outcome)
            ck_assert_msg(o == NULL, "case %zu: %s", i, o);
        else
            ck_assert_msg(o && strcmp(o, cases[i].outcome) == 0, "case %zu: %s", i,
                          o ? o : "(null)");
    }
}
END_TEST

static Suite *refusal_suite(void)
{
    Suite *s = suite_create("refusal");
    TCase *tc = tcase_create("request_check");

    tcase_add_test(tc, test_valid_head_passes);
    tcase_add_loop_test(tc, test_each_rule, 0, (int)ARRAY_SIZE(rules));
    tcase_add_test(tc, test_every_pair_first_rule_wins);
    tcase_add_loop_test(tc, test_pairs, 0, (int)ARRAY_SIZE(pairs));
    tcase_add_test(tc, test_out_of_memory_without_method_or_target);
    tcase_add_test(tc, test_target_limit_boundary);
    tcase_add_loop_test(tc, test_targets, 0, (int)ARRAY_SIZE(targets));
    tcase_add_loop_test(tc, test_methods, 0, (int)ARRAY_SIZE(methods));
    tcase_add_test(tc, test_host_by_version);
    tcase_add_test(tc, test_transfer_encoding);
    tcase_add_test(tc, test_framing);
    tcase_add_loop_test(tc, test_parse_content_length, 0, (int)ARRAY_SIZE(lengths));
    suite_add_tcase(s, tc);

    tc = tcase_create("refusals");
    tcase_add_loop_test(tc, test_upstream_error_from_curl, 0, (int)ARRAY_SIZE(curl_codes));
    tcase_add_test(tc, test_refusal_for_upstream);
    tcase_add_test(tc, test_constant_refusals);
    tcase_add_loop_test(tc, test_upgrades, 0, (int)ARRAY_SIZE(upgrades));
    tcase_add_test(tc, test_upgrade_in_later_fields);
    tcase_add_test(tc, test_outcome_of_library_status);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(refusal_suite());
}
