/* SPDX-License-Identifier: MIT */
/*
 * The response policy of the OTLP/HTTP span exporter, kept pure so that every rule is a table
 * row in a unit test and every byte a collector may send is fuzzed.
 *
 * Classification follows the OTLP specification ("OTLP/HTTP Response"): a 2xx is a success, and
 * its ExportTraceServiceResponse may carry partialSuccess (rejectedSpans and/or errorMessage;
 * a message with 0 rejected is a warning, still reported); only 429, 502, 503 and 504 and a
 * missing response are retryable, every other status is final. An error body may be a
 * google.rpc.Status whose "message" is the best reason to log. Bodies are read in protobuf's
 * JSON mapping: lowerCamelCase keys (snake_case accepted, as protobuf JSON parsers do),
 * 64-bit counts as a decimal string or a number. A body we cannot read never changes the verdict
 * the status gave; it only loses detail.
 *
 * Retry-After is RFC 9110 section 10.2.3; its dates are section 5.6.7, converted to epoch seconds
 * here (days_from_civil): timegm is outside C17 and POSIX.1-2017. Waits are capped so that neither
 * a peer nor a clock skew can produce an overflow or a wait of days.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "observe/export_policy.h"

#define RETRY_AFTER_MAX_S (EXPORT_RETRY_AFTER_MAX_MS / 1000)
/* 9999-12-31T23:59:59Z: the last instant a 4-digit year can name. */
#define LAST_DATE_EPOCH_S INT64_C(253402300799)

/* --- the message ---------------------------------------------------------------------------- */

/*
 * Copy s[0..len) into ret as one printable-ASCII line. A control byte (CR and LF included)
 * becomes a space so that the line stays one line in any log; a UTF-8 character becomes one '?'
 * (its continuation bytes are dropped), so the length in the log says roughly how long the text
 * was. A text that does not fit ends in "..." so that a reader knows it was cut.
 */
static void message_set(char ret[EXPORT_MESSAGE_SIZE], const char *s, size_t len)
{
    size_t out = 0;
    bool cut = false;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c & 0xC0) == 0x80 && i > 0 && ((unsigned char)s[i - 1] & 0x80))
            continue;
        if (out == EXPORT_MESSAGE_SIZE - 1) {
            cut = true;
            break;
        }
        ret[out++] = c < 0x20 || c == 0x7f ? ' ' : c >= 0x80 ? '?' : (char)c;
    }
    if (cut)
        memcpy(ret + out - 3, "...", 3);
    ret[out] = '\0';
}

static void message_status(char ret[EXPORT_MESSAGE_SIZE], long status)
{
    if (status == 0)
        snprintf(ret, EXPORT_MESSAGE_SIZE, "no response");
    else
        snprintf(ret, EXPORT_MESSAGE_SIZE, "HTTP %ld", status);
}

/* --- the body ------------------------------------------------------------------------------- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * Whether a Content-Type names JSON: application/json or any type with a "+json" suffix (RFC
 * 6839), parameters ignored. The OTLP spec has the collector answer in the request's encoding, so
 * another type (an HTML error page of a proxy in between, protobuf) is not mined for fields.
 */
static bool media_type_is_json(const char *type, size_t len)
{
    size_t begin = 0, end;
    static const char suffix[] = "+json";

    while (begin < len && is_ows(type[begin]))
        begin++;
    end = begin;
    while (end < len && type[end] != ';' && !is_ows(type[end]))
        end++;
    type += begin;
    len = end - begin;
    if (len == strlen("application/json") && strncasecmp(type, "application/json", len) == 0)
        return true;
    return memchr(type, '/', len) != NULL && len > strlen(suffix) &&
           strncasecmp(type + len - strlen(suffix), suffix, strlen(suffix)) == 0;
}

/*
 * The body as JSON, or NULL. JSON_ALLOW_NUL keeps a message with "\u0000" readable (message_set
 * turns the NUL into a space). jansson refuses integers beyond int64 as a numeric overflow; a
 * uint64 rejectedSpans may legally be one, so that case is read again with integers as reals.
 */
static json_t *body_load(const struct export_response *response)
{
    json_error_t error;
    json_t *root;

    if (!response->body || response->body_len == 0 || response->body_len > EXPORT_BODY_PARSE_MAX)
        return NULL;
    if (response->content_type &&
        !media_type_is_json(response->content_type, response->content_type_len))
        return NULL;
    root = json_loadb(response->body, response->body_len, JSON_ALLOW_NUL, &error);
    if (!root && json_error_code(&error) == json_error_numeric_overflow)
        root = json_loadb(response->body, response->body_len,
                          JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &error);
    return root;
}

/* A member by its lowerCamelCase or snake_case name; JSON null counts as absent (proto3 JSON). */
static json_t *member(const json_t *object, const char *camel, const char *snake)
{
    json_t *v = json_object_get(object, camel);

    if (!v || json_is_null(v))
        v = json_object_get(object, snake);
    return v && !json_is_null(v) ? v : NULL;
}

/*
 * A uint64 in the protobuf JSON mapping: a number (integral, >= 0) or a string of decimal digits.
 * Counts beyond UINT64_MAX saturate: still "many rejected". Absent is 0. Returns false when the
 * value is there but is not a count; *ret is then 0.
 */
static bool count_parse(const json_t *v, uint64_t *ret)
{
    *ret = 0;
    if (!v)
        return true;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return false;
        *ret = (uint64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);

        /* from 2^53 on every double is integral; below, the int64 round trip is exact */
        if (!(d >= 0) || (d < 0x1p53 && (double)(int64_t)d != d))
            return false;
        *ret = d >= 0x1p64 ? UINT64_MAX : (uint64_t)d;
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        uint64_t total = 0;

        if (n == 0)
            return false;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            if (total > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
                total = UINT64_MAX;
            else
                total = total * 10 + (uint64_t)(s[i] - '0');
        }
        *ret = total;
        return true;
    }
    return false;
}

/* A 2xx: OK, or PARTIAL when partialSuccess rejects spans or carries a message. */
static void classify_success(const json_t *root, struct export_result *ret)
{
    const json_t *partial =
        json_is_object(root) ? member(root, "partialSuccess", "partial_success") : NULL;
    const json_t *message;
    bool count_valid;

    if (!json_is_object(partial))
        return;
    count_valid =
        count_parse(member(partial, "rejectedSpans", "rejected_spans"), &ret->rejected_spans);
    message = member(partial, "errorMessage", "error_message");
    if (json_is_string(message) && json_string_length(message) > 0)
        message_set(ret->message, json_string_value(message), json_string_length(message));
    else if (!count_valid)
        snprintf(ret->message, sizeof(ret->message), "partialSuccess.rejectedSpans is not a count");
    else if (ret->rejected_spans > 0)
        snprintf(ret->message, sizeof(ret->message), "%" PRIu64 " spans rejected",
                 ret->rejected_spans);
    else
        return;
    ret->verdict = EXPORT_PARTIAL;
}

/* --- the verdict ---------------------------------------------------------------------------- */

static enum export_verdict verdict_of(long status)
{
    if (status >= 200 && status <= 299)
        return EXPORT_OK;
    if (status == 0 || status == 429 || status == 502 || status == 503 || status == 504)
        return EXPORT_RETRY;
    return EXPORT_FAILED;
}

void export_classify(const struct export_response *response, struct export_result *ret)
{
    static const struct export_response none = {.status = 0};
    json_t *root;

    if (!response)
        response = &none;
    memset(ret, 0, sizeof(*ret));
    ret->verdict = verdict_of(response->status);
    ret->retry_after_ms = -1;
    if (response->retry_after)
        ret->retry_after_ms = export_parse_retry_after(
            response->retry_after, response->retry_after_len, response->now_epoch_s);
    message_status(ret->message, response->status);
    if (response->status == 0)
        return; /* a body without a response is the caller's leftover */

    root = body_load(response);
    if (ret->verdict == EXPORT_OK) {
        classify_success(root, ret);
    } else if (json_is_object(root)) {
        /* google.rpc.Status: {"code": 3, "message": "...", "details": [...]} */
        const json_t *message = json_object_get(root, "message");

        if (json_is_string(message) && json_string_length(message) > 0)
            message_set(ret->message, json_string_value(message), json_string_length(message));
    }
    json_decref(root);
}

/* --- Retry-After ---------------------------------------------------------------------------- */

/* A length-delimited cursor over the value being parsed. */
struct cursor {
    const char *p;
    size_t n;
};

static bool eat_literal(struct cursor *c, const char *literal)
{
    size_t len = strlen(literal);

    if (c->n < len || memcmp(c->p, literal, len) != 0)
        return false;
    c->p += len;
    c->n -= len;
    return true;
}

/* Exactly `digits` ASCII digits. */
static bool eat_number(struct cursor *c, unsigned digits, int *ret)
{
    int value = 0;

    if (c->n < digits)
        return false;
    for (unsigned i = 0; i < digits; i++) {
        if (c->p[i] < '0' || c->p[i] > '9')
            return false;
        value = value * 10 + (c->p[i] - '0');
    }
    c->p += digits;
    c->n -= digits;
    *ret = value;
    return true;
}

/* One of `names` (case-sensitive, RFC 9110 section 5.6.7); its index goes to *ret. */
static bool eat_name(struct cursor *c, const char *const *names, int count, int *ret)
{
    for (int i = 0; i < count; i++)
        if (eat_literal(c, names[i])) {
            *ret = i;
            return true;
        }
    return false;
}

static const char *const day_names[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const day_names_long[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                             "Friday", "Saturday", "Sunday"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* time-of-day = hour ":" minute ":" second; second 60 is a leap second (RFC 9110 5.6.7). */
static bool eat_time(struct cursor *c, int64_t *ret_seconds)
{
    int hour, minute, second;

    if (!eat_number(c, 2, &hour) || !eat_literal(c, ":") || !eat_number(c, 2, &minute) ||
        !eat_literal(c, ":") || !eat_number(c, 2, &second))
        return false;
    if (hour > 23 || minute > 59 || second > 60)
        return false;
    *ret_seconds = hour * 3600 + minute * 60 + second;
    return true;
}

static bool is_leap(int64_t year)
{
    return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

static int days_in_month(int64_t year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

/* Days from 1970-01-01 to year-month-day of the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil); month 1-12, year 0-9999 here, so nothing overflows. */
static int64_t days_from_civil(int64_t year, int month, int day)
{
    int64_t y = month <= 2 ? year - 1 : year;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t year_of_era = y - era * 400;
    int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;

    return era * 146097 + day_of_era - 719468;
}

/* The civil year of an epoch second, for the two-digit years of RFC 850 dates. */
static int64_t year_of(int64_t epoch_s)
{
    int64_t days, era, day_of_era, year_of_era, day_of_year, mp;

    if (epoch_s < 0)
        epoch_s = 0;
    if (epoch_s > LAST_DATE_EPOCH_S)
        epoch_s = LAST_DATE_EPOCH_S;
    days = epoch_s / 86400 + 719468;
    era = days / 146097;
    day_of_era = days - era * 146097;
    year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    mp = (5 * day_of_year + 2) / 153;
    return year_of_era + era * 400 + (mp >= 10 ? 1 : 0);
}

/*
 * RFC 850's two-digit year (the result lies in 1900-10099 for any clock): RFC 9110 section 5.6.7
 * has a year that "appears to be more than 50 years in the future" read as the most recent past
 * year with those digits; any other reading is the nearest year with those digits at most 50 years
 * ahead.
 */
static int64_t year_from_two_digits(int two_digits, int64_t now_epoch_s)
{
    int64_t now_year = year_of(now_epoch_s);
    int64_t year = now_year - now_year % 100 + two_digits;

    if (year > now_year + 50)
        year -= 100;
    else if (year + 100 <= now_year + 50)
        year += 100;
    return year;
}

/* The fields of a date, as each form spells them; the day is checked against the month later. */
struct civil_time {
    int64_t year;
    int month; /* 0-11, as eat_name gives it */
    int day;
    int64_t time_of_day_s;
};

/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT; each form must take the whole value. */
static bool parse_imf_fixdate(struct cursor c, struct civil_time *ret)
{
    int ignored, year;

    if (!eat_name(&c, day_names, 7, &ignored) || !eat_literal(&c, ", ") ||
        !eat_number(&c, 2, &ret->day) || !eat_literal(&c, " ") ||
        !eat_name(&c, month_names, 12, &ret->month) || !eat_literal(&c, " ") ||
        !eat_number(&c, 4, &year) || !eat_literal(&c, " ") || !eat_time(&c, &ret->time_of_day_s) ||
        !eat_literal(&c, " GMT"))
        return false;
    ret->year = year;
    return c.n == 0;
}

/* rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT */
static bool parse_rfc850_date(struct cursor c, int64_t now_epoch_s, struct civil_time *ret)
{
    int ignored, year;

    if (!eat_name(&c, day_names_long, 7, &ignored) || !eat_literal(&c, ", ") ||
        !eat_number(&c, 2, &ret->day) || !eat_literal(&c, "-") ||
        !eat_name(&c, month_names, 12, &ret->month) || !eat_literal(&c, "-") ||
        !eat_number(&c, 2, &year) || !eat_literal(&c, " ") || !eat_time(&c, &ret->time_of_day_s) ||
        !eat_literal(&c, " GMT"))
        return false;
    ret->year = year_from_two_digits(year, now_epoch_s);
    return c.n == 0;
}

/* asctime-date: Sun Nov  6 08:49:37 1994 (the day is 2DIGIT or SP DIGIT) */
static bool parse_asctime_date(struct cursor c, struct civil_time *ret)
{
    int ignored, year;

    if (!eat_name(&c, day_names, 7, &ignored) || !eat_literal(&c, " ") ||
        !eat_name(&c, month_names, 12, &ret->month) || !eat_literal(&c, " "))
        return false;
    if (eat_literal(&c, " ") ? !eat_number(&c, 1, &ret->day) : !eat_number(&c, 2, &ret->day))
        return false;
    if (!eat_literal(&c, " ") || !eat_time(&c, &ret->time_of_day_s) || !eat_literal(&c, " ") ||
        !eat_number(&c, 4, &year))
        return false;
    ret->year = year;
    return c.n == 0;
}

/* An HTTP-date in any of its three forms, as epoch seconds. */
static bool parse_http_date(struct cursor value, int64_t now_epoch_s, int64_t *ret_epoch_s)
{
    struct civil_time t;

    if (!parse_imf_fixdate(value, &t) && !parse_rfc850_date(value, now_epoch_s, &t) &&
        !parse_asctime_date(value, &t))
        return false;
    if (t.day < 1 || t.day > days_in_month(t.year, t.month + 1))
        return false;
    *ret_epoch_s = days_from_civil(t.year, t.month + 1, t.day) * 86400 + t.time_of_day_s;
    return true;
}

int64_t export_parse_retry_after(const char *value, size_t len, int64_t now_epoch_s)
{
    struct cursor c = {value, len};
    int64_t date;

    if (!value)
        return -1;
    while (c.n > 0 && is_ows(c.p[0])) {
        c.p++;
        c.n--;
    }
    while (c.n > 0 && is_ows(c.p[c.n - 1]))
        c.n--;
    if (c.n == 0)
        return -1;

    if (c.p[0] >= '0' && c.p[0] <= '9') {
        /* delta-seconds = 1*DIGIT; saturate instead of overflowing */
        int64_t seconds = 0;

        for (size_t i = 0; i < c.n; i++) {
            if (c.p[i] < '0' || c.p[i] > '9')
                return -1;
            if (seconds <= RETRY_AFTER_MAX_S)
                seconds = seconds * 10 + (c.p[i] - '0');
        }
        return seconds >= RETRY_AFTER_MAX_S ? EXPORT_RETRY_AFTER_MAX_MS : seconds * 1000;
    }

    if (!parse_http_date(c, now_epoch_s, &date))
        return -1;
    if (date <= now_epoch_s)
        return 0;
    /* date is within years 0-9999, so date - RETRY_AFTER_MAX_S cannot overflow, but
     * date - now_epoch_s can for an absurd clock */
    if (now_epoch_s < date - RETRY_AFTER_MAX_S)
        return EXPORT_RETRY_AFTER_MAX_MS;
    return (date - now_epoch_s) * 1000;
}

/* --- waits ---------------------------------------------------------------------------------- */

/*
 * Equal jitter rather than full jitter: full jitter can draw a wait near 0 at any attempt, so a
 * fleet of sidecars whose collector answered 503 could be back within milliseconds; keeping half
 * of the exponential step as a floor guarantees the collector a real pause, while the other half,
 * drawn at random, still spreads the retries of sidecars that failed at the same moment.
 */
int64_t export_backoff_ms(unsigned attempt, int64_t initial_ms, int64_t max_ms, uint64_t random)
{
    int64_t step, floor, span;

    if (max_ms <= 0 || initial_ms <= 0)
        return 0;
    step = initial_ms < max_ms ? initial_ms : max_ms;
    /* at most 63 doublings before step reaches max_ms, whatever attempt is */
    for (unsigned i = 1; i < attempt && step < max_ms; i++)
        step = step > max_ms / 2 ? max_ms : step * 2;
    floor = step / 2;
    span = step - floor;
    return floor + (int64_t)(random % ((uint64_t)span + 1));
}

int64_t export_next_wait_ms(const struct export_result *result, unsigned attempt,
                            int64_t initial_ms, int64_t max_ms, int64_t deadline_left_ms,
                            uint64_t random)
{
    int64_t wait;

    if (!result || result->verdict != EXPORT_RETRY)
        return -1;
    if (result->retry_after_ms >= 0)
        wait = result->retry_after_ms < EXPORT_RETRY_AFTER_MAX_MS ? result->retry_after_ms
                                                                  : EXPORT_RETRY_AFTER_MAX_MS;
    else
        wait = export_backoff_ms(attempt, initial_ms, max_ms, random);
    return wait > deadline_left_ms ? -1 : wait;
}
