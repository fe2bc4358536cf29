/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target: export_classify and the wait functions of the OTLP/HTTP export policy
 * (src/observe/export_policy.h), fed what a collector could answer.
 *
 * Input layout:
 *   bytes 0-1   the HTTP status, big-endian (0 = no response);
 *   byte 2      flags: bit 0 Retry-After present, bit 1 Content-Type present, bits 2-4 pick the
 *               caller's clock from `clocks` below, bits 5-7 are unused;
 *   then        the Retry-After value, a NUL, the Content-Type value, a NUL, and the body (the
 *               rest, NULs included). A missing NUL leaves the later fields empty.
 * The 64-bit `random` of the backoff is an FNV-1a hash of the whole input, and the attempt
 * number and the backoff settings (from `backoffs`) come from its top bits, so a corpus file
 * replays the same way every time.
 *
 * Asserted (references written here, not taken from the library):
 *   - the verdict is the status class of the OTLP spec: 2xx OK or PARTIAL; 0, 429, 502, 503,
 *     504 RETRY; anything else FAILED; OK and non-2xx have rejected_spans 0; OK says
 *     "HTTP <status>" and no response says "no response";
 *   - message is NUL-terminated within its array, non-empty, printable ASCII only;
 *   - retry_after_ms is -1 without the header, else export_parse_retry_after of the same bytes,
 *     in [-1, EXPORT_RETRY_AFTER_MAX_MS]; delta-seconds match a reference parser; the value
 *     padded with SP/HTAB parses the same; a date's wait shrinks by 1000 ms a second later;
 *   - a 2xx whose body is not parsed (over EXPORT_BODY_PARSE_MAX, or not declared JSON) is OK;
 *   - classifying twice gives the same result, message bytes past the NUL included;
 *   - export_backoff_ms is in [step/2, step] for the reference exponential step, for the input's
 *     random, 0 and UINT64_MAX; export_next_wait_ms is -1 but for RETRY, never above the
 *     deadline, and the Retry-After itself when it fits.
 */

#include <inttypes.h>
#include <strings.h>

#include "observe/export_policy.h"

#include "fuzz.h"

static const int64_t clocks[8] = {
    INT64_C(784111777),    /* Sun, 06 Nov 1994 08:49:37 GMT */
    INT64_C(1796126400),   /* Tue, 01 Dec 2026 12:00:00 GMT */
    0,                     /* the epoch */
    -1,                    /* a clock just before it */
    INT64_MIN,             /* absurd clocks */
    INT64_MAX,             /* */
    INT64_C(253402300799), /* Fri, 31 Dec 9999 23:59:59 GMT */
    INT64_C(4102444800),   /* Fri, 01 Jan 2100 00:00:00 GMT */
};

static const struct {
    int64_t initial_ms, max_ms;
} backoffs[8] = {
    {500, 30000},   {1000, 5000},           {1, 1},    {5000, 1000},
    {1, INT64_MAX}, {INT64_MAX, INT64_MAX}, {0, 1000}, {100, -1},
};

static uint64_t fnv1a(const uint8_t *data, size_t size)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    for (size_t i = 0; i < size; i++) {
        h ^= data[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* The next field: bytes up to a NUL (consumed) or the end. */
static void next_field(const uint8_t **p, size_t *left, const uint8_t **ret, size_t *ret_len)
{
    const uint8_t *nul = memchr(*p, '\0', *left);
    size_t n = nul ? (size_t)(nul - *p) : *left;

    *ret = *p;
    *ret_len = n;
    *p += nul ? n + 1 : n;
    *left -= nul ? n + 1 : n;
}

/* delta-seconds after trimming SP/HTAB, as the reference reads it: -2 when not 1*DIGIT. */
static int64_t ref_delta_ms(const char *v, size_t n)
{
    int64_t seconds = 0;

    fuzz_trim_ows(&v, &n);
    if (n == 0)
        return -2;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -2;
        if (seconds < EXPORT_RETRY_AFTER_MAX_MS / 1000)
            seconds = seconds * 10 + (v[i] - '0');
    }
    return seconds >= EXPORT_RETRY_AFTER_MAX_MS / 1000 ? EXPORT_RETRY_AFTER_MAX_MS : seconds * 1000;
}

static enum export_verdict ref_verdict(long status)
{
    if (status >= 200 && status <= 299)
        return EXPORT_OK;
    if (status == 0 || status == 429 || status == 502 || status == 503 || status == 504)
        return EXPORT_RETRY;
    return EXPORT_FAILED;
}

/* Whether the Content-Type names application/json or a type with a "+json" suffix, any case. */
static bool ref_is_json(const char *v, size_t n)
{
    size_t end = 0;

    while (n > 0 && fuzz_is_ows(v[0])) {
        v++;
        n--;
    }
    while (end < n && v[end] != ';' && !fuzz_is_ows(v[end]))
        end++;
    if (end == 16 && strncasecmp(v, "application/json", 16) == 0)
        return true;
    return end > 5 && memchr(v, '/', end) && strncasecmp(v + end - 5, "+json", 5) == 0;
}

static void check_retry_after(const char *value, size_t len, int64_t now, int64_t got)
{
    int64_t delta = ref_delta_ms(value, len);

    FUZZ_CHECK(got >= -1 && got <= EXPORT_RETRY_AFTER_MAX_MS);
    if (delta != -2) {
        FUZZ_CHECK(got == delta);
        FUZZ_CHECK(export_parse_retry_after(value, len, now ^ 12345) == delta);
    }

    /* surrounding OWS changes nothing */
    char *padded = malloc(len + 3);
    if (!padded)
        abort();
    padded[0] = ' ';
    padded[1] = '\t';
    memcpy(padded + 2, value, len);
    padded[len + 2] = ' ';
    FUZZ_CHECK(export_parse_retry_after(padded, len + 3, now) == got);
    free(padded);

    /* a date a second later: 1000 ms less (nothing below 0, nothing at the cap changes) */
    if (delta == -2 && got > 0 && got < EXPORT_RETRY_AFTER_MAX_MS && now < INT64_MAX)
        FUZZ_CHECK(export_parse_retry_after(value, len, now + 1) == (got >= 1000 ? got - 1000 : 0));
}

static int64_t ref_step(unsigned attempt, int64_t initial, int64_t max)
{
    int64_t step;

    if (max <= 0 || initial <= 0)
        return 0;
    step = initial < max ? initial : max;
    for (unsigned i = 1; i < attempt; i++) {
        if (step >= max - step)
            return max;
        step *= 2;
    }
    return step;
}

static void check_waits(const struct export_result *r, uint64_t random)
{
    unsigned attempt = (unsigned)(random >> 57); /* 0-127: past every cut-off */
    size_t which = (size_t)(random >> 54) & 7;
    int64_t initial = backoffs[which].initial_ms, max = backoffs[which].max_ms;
    int64_t step = ref_step(attempt, initial, max);
    uint64_t randoms[] = {random, 0, UINT64_MAX};
    int64_t deadlines[] = {-1, 0, 1000, 60000, INT64_MAX, (int64_t)(random & 0xffffff)};

    for (size_t i = 0; i < sizeof(randoms) / sizeof(randoms[0]); i++) {
        int64_t wait = export_backoff_ms(attempt, initial, max, randoms[i]);

        FUZZ_CHECK(wait >= step / 2 && wait <= step);
        FUZZ_CHECK(wait >= 0 && (max <= 0 || wait <= max));
    }
    for (size_t i = 0; i < sizeof(deadlines) / sizeof(deadlines[0]); i++) {
        int64_t next = export_next_wait_ms(r, attempt, initial, max, deadlines[i], random);

        FUZZ_CHECK(next >= -1 &&
                   next <= (step > EXPORT_RETRY_AFTER_MAX_MS ? step : EXPORT_RETRY_AFTER_MAX_MS));
        if (r->verdict != EXPORT_RETRY) {
            FUZZ_CHECK(next == -1);
            continue;
        }
        FUZZ_CHECK(next <= deadlines[i]);
        if (r->retry_after_ms >= 0)
            FUZZ_CHECK(next == (r->retry_after_ms <= deadlines[i] ? r->retry_after_ms : -1));
        else
            FUZZ_CHECK(next == -1 || next == export_backoff_ms(attempt, initial, max, random));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *field;
    size_t left = size, field_len;
    struct export_response response = {0};
    struct export_result r, again;
    char *retry_after = NULL, *content_type = NULL, *body = NULL;
    uint64_t random = fnv1a(data, size);
    uint8_t flags;

    if (size < 3)
        return 0;
    response.status = (long)data[0] << 8 | data[1];
    flags = data[2];
    response.now_epoch_s = clocks[(flags >> 2) & 7];
    p += 3;
    left -= 3;

    next_field(&p, &left, &field, &field_len);
    if (flags & 1) {
        retry_after = fuzz_memdup(field, field_len);
        response.retry_after = retry_after;
        response.retry_after_len = field_len;
    }
    next_field(&p, &left, &field, &field_len);
    if (flags & 2) {
        content_type = fuzz_memdup(field, field_len);
        response.content_type = content_type;
        response.content_type_len = field_len;
    }
    body = fuzz_memdup(p, left);
    response.body = body;
    response.body_len = left;

    memset(&r, 0xA5, sizeof(r));
    export_classify(&response, &r);

    /* the verdict */
    FUZZ_CHECK(r.verdict == EXPORT_OK || r.verdict == EXPORT_PARTIAL || r.verdict == EXPORT_RETRY ||
               r.verdict == EXPORT_FAILED);
    if (ref_verdict(response.status) == EXPORT_OK)
        FUZZ_CHECK(r.verdict == EXPORT_OK || r.verdict == EXPORT_PARTIAL);
    else
        FUZZ_CHECK(r.verdict == ref_verdict(response.status));
    if (r.verdict != EXPORT_PARTIAL)
        FUZZ_CHECK(r.rejected_spans == 0);
    if (r.verdict == EXPORT_PARTIAL &&
        (response.body_len > EXPORT_BODY_PARSE_MAX ||
         (content_type && !ref_is_json(content_type, response.content_type_len))))
        FUZZ_CHECK(!"PARTIAL from a body that is not to be parsed");

    /* the message */
    FUZZ_CHECK(memchr(r.message, '\0', sizeof(r.message)) != NULL);
    FUZZ_CHECK(r.message[0] != '\0');
    for (const char *m = r.message; *m; m++)
        FUZZ_CHECK(*m >= 0x20 && *m <= 0x7e);
    if (response.status == 0)
        FUZZ_CHECK(strcmp(r.message, "no response") == 0);
    if (r.verdict == EXPORT_OK) {
        char expected[32];

        snprintf(expected, sizeof(expected), "HTTP %ld", response.status);
        FUZZ_CHECK(strcmp(r.message, expected) == 0);
    }

    /* Retry-After */
    if (!retry_after) {
        FUZZ_CHECK(r.retry_after_ms == -1);
    } else {
        FUZZ_CHECK(r.retry_after_ms == export_parse_retry_after(retry_after,
                                                                response.retry_after_len,
                                                                response.now_epoch_s));
        check_retry_after(retry_after, response.retry_after_len, response.now_epoch_s,
                          r.retry_after_ms);
    }

    /* deterministic, and the input is left alone */
    memset(&again, 0x5A, sizeof(again));
    export_classify(&response, &again);
    FUZZ_CHECK(again.verdict == r.verdict && again.retry_after_ms == r.retry_after_ms &&
               again.rejected_spans == r.rejected_spans);
    FUZZ_CHECK(memcmp(again.message, r.message, sizeof(r.message)) == 0);

    check_waits(&r, random);

    free(retry_after);
    free(content_type);
    free(body);
    return 0;
}
