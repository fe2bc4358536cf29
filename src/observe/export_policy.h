/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * What an OTLP/HTTP export response means and when to try again: pure functions (no I/O, no
 * clock, no randomness of their own) for the span exporter thread, which logs and counts what
 * they decide. The rules are those of the OTLP specification ("OTLP/HTTP Response": partial
 * success, failures, throttling) and RFC 9110 (Retry-After, section 10.2.3; HTTP-date, 5.6.7).
 */
#include <stddef.h>
#include <stdint.h>

/* Retry-After values above this are cut to it, so a peer cannot park the exporter for days. */
#define EXPORT_RETRY_AFTER_MAX_MS INT64_C(3600000)
/* A response body longer than this is not parsed (a truncated body is not JSON either). */
#define EXPORT_BODY_PARSE_MAX ((size_t)64 * 1024)
#define EXPORT_MESSAGE_SIZE   256

enum export_verdict {
    EXPORT_OK,      /* 2xx, everything accepted */
    EXPORT_PARTIAL, /* 2xx with partialSuccess.rejectedSpans > 0 or an errorMessage: counted,
                       never retried */
    EXPORT_RETRY,   /* 429, 502, 503, 504, or no response at all (connection failure, timeout) */
    EXPORT_FAILED,  /* anything else: 400 and other 4xx, other 5xx, 1xx/3xx: never retried */
};

/* One response as the exporter received it. Every pointer is borrowed for the call only. */
struct export_response {
    long status;             /* HTTP status; 0 = no response (connect failure, reset, timeout) */
    const char *retry_after; /* the Retry-After value, NULL when absent; not NUL-terminated */
    size_t retry_after_len;
    const char *content_type; /* NULL when absent; not NUL-terminated */
    size_t content_type_len;
    const char *body; /* response body bytes (may be binary, may be truncated by the caller) */
    size_t body_len;
    int64_t now_epoch_s; /* the caller's clock, for Retry-After HTTP dates */
};

struct export_result {
    enum export_verdict verdict;
    int64_t retry_after_ms;  /* from Retry-After: 0 to EXPORT_RETRY_AFTER_MAX_MS, else -1 */
    uint64_t rejected_spans; /* partialSuccess.rejectedSpans (JSON number or decimal string) */
    /* One line of printable ASCII for diagnostics, always NUL-terminated: the partialSuccess
     * errorMessage, a google.rpc.Status "message" of an error body, "HTTP <status>", or "no
     * response". Control bytes become spaces, other non-ASCII characters '?', and a longer text
     * ends in "...". */
    char message[EXPORT_MESSAGE_SIZE];
};

/*
 * Classify `response` into *ret (every field is written). The body is read as JSON only when it
 * is at most EXPORT_BODY_PARSE_MAX bytes and Content-Type is absent or a JSON media type; a 2xx
 * body that is not JSON is a full success. A NULL `response` is taken as no response.
 */
void export_classify(const struct export_response *response, struct export_result *ret);

/*
 * A Retry-After value (RFC 9110 section 10.2.3), without its field name, surrounding SP/HTAB
 * allowed: delta-seconds, or an HTTP-date as IMF-fixdate or the obsolete RFC 850 and asctime
 * forms (section 5.6.7; case-sensitive, as that section says). Returns the milliseconds from
 * now_epoch_s, 0 for a date in the past, at most EXPORT_RETRY_AFTER_MAX_MS; -1 when invalid.
 */
int64_t export_parse_retry_after(const char *value, size_t len, int64_t now_epoch_s);

/*
 * The wait before retry number `attempt` (1 is the first retry; 0 counts as 1): the exponential
 * step d = initial_ms * 2^(attempt-1), cut to max_ms, with "equal jitter": d/2 plus a uniform
 * draw from [0, d - d/2] taken from `random` (any uniformly random 64-bit value). Returns 0 to
 * max(max_ms, 0); never overflows.
 */
int64_t export_backoff_ms(unsigned attempt, int64_t initial_ms, int64_t max_ms, uint64_t random);

/*
 * The wait before the next try after `result`: the server's Retry-After when it gave a valid
 * one (already capped at EXPORT_RETRY_AFTER_MAX_MS by the parser, and not cut to max_ms: the
 * server knows its load better than our schedule), else export_backoff_ms(attempt, initial_ms,
 * max_ms, random). Returns -1 (drop the batch) when the verdict is not EXPORT_RETRY or the wait
 * is longer than deadline_left_ms, the batch's remaining export budget.
 */
int64_t export_next_wait_ms(const struct export_result *result, unsigned attempt,
                            int64_t initial_ms, int64_t max_ms, int64_t deadline_left_ms,
                            uint64_t random);
