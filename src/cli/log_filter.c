/* SPDX-License-Identifier: MIT */
/*
 * Line filters (contracts in log_filter.h).
 *
 * Status codes are a bitmap over 0..999, so --status 5xx,404 is one bit test per line however
 * many codes were named. Name lists are short (a handful of services), so a linear strcmp is
 * the fastest honest structure. Parse errors name the option and the offending text.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/log_filter.h"
#include "cli/log_time.h"

/* Keep in step with docs/access-log.md ("outcome" under "Fields"). */
const char *const log_filter_outcomes[] = {
    "ok",
    "no_route",
    "upstream_connect_failed",
    "upstream_tls_failed",
    "upstream_timeout",
    "upstream_reset",
    "client_aborted",
    "bad_request",
    "too_large",
    "upgrade_not_supported",
    "shutdown",
    NULL,
};

void log_filter_init(struct log_filter *f)
{
    *f = (struct log_filter){0};
}

static void free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

void log_filter_free(struct log_filter *f)
{
    free_names(f->services, f->services_count);
    free_names(f->outcomes, f->outcomes_count);
    log_filter_init(f);
}

static void set_status_bit(struct log_filter *f, unsigned code)
{
    f->status_set[code / 8] |= (uint8_t)(1u << (code % 8));
}

static bool status_bit(const struct log_filter *f, int code)
{
    return code >= 0 && code <= LOG_FILTER_STATUS_MAX &&
           (f->status_set[code / 8] & (1u << (code % 8)));
}

/* One element of a --status list, item[0..len). */
static int add_one_status(struct log_filter *f, const char *item, size_t len, char *err,
                          size_t err_size)
{
    const char lowest_class = '0' + LOG_FILTER_STATUS_LOWEST / 100;
    const char highest_class = '0' + LOG_FILTER_STATUS_HIGHEST / 100;
    bool in_range = len == 3 && item[0] >= lowest_class && item[0] <= highest_class;
    bool digits = in_range;
    for (size_t i = 1; digits && i < 3; i++)
        digits = item[i] >= '0' && item[i] <= '9';
    bool is_class =
        in_range && (item[1] == 'x' || item[1] == 'X') && (item[2] == 'x' || item[2] == 'X');

    if (len == 4 && memcmp(item, "none", 4) == 0) {
        f->status_null = true;
    } else if (digits) {
        set_status_bit(f, (unsigned)((item[0] - '0') * 100 + (item[1] - '0') * 10 + item[2] - '0'));
    } else if (is_class) {
        unsigned base = (unsigned)(item[0] - '0') * 100;
        for (unsigned code = base; code < base + 100; code++)
            set_status_bit(f, code);
    } else {
        snprintf(err, err_size,
                 "--status: '%.*s' is not a status code (%d..%d), a class (%cxx..%cxx) or 'none'",
                 (int)(len > 64 ? 64 : len), item, LOG_FILTER_STATUS_LOWEST,
                 LOG_FILTER_STATUS_HIGHEST, lowest_class, highest_class);
        return -EINVAL;
    }
    f->has_status = true;
    return 0;
}

int log_filter_add_status(struct log_filter *f, const char *text, char *err, size_t err_size)
{
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int rc = add_one_status(f, p, len, err, err_size);
        if (rc < 0)
            return rc;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int set_point(const char *option, const char *text, int64_t now_ms, int64_t *ret, char *err,
                     size_t err_size)
{
    if (!log_time_parse_point(text, now_ms, ret)) {
        snprintf(err, err_size,
                 "%s: '%.64s' is neither an RFC 3339 time (2025-01-31T12:00:00Z) nor a "
                 "duration ago (15m, 2h, 1d)",
                 option, text);
        return -EINVAL;
    }
    return 0;
}

int log_filter_set_since(struct log_filter *f, const char *text, int64_t now_ms, char *err,
                         size_t err_size)
{
    int rc = set_point("--since", text, now_ms, &f->since_ms, err, err_size);
    f->has_since = rc == 0;
    return rc;
}

int log_filter_set_until(struct log_filter *f, const char *text, int64_t now_ms, char *err,
                         size_t err_size)
{
    int rc = set_point("--until", text, now_ms, &f->until_ms, err, err_size);
    f->has_until = rc == 0;
    return rc;
}

static int add_names(const char *option, char ***names, size_t *count, const char *text, char *err,
                     size_t err_size)
{
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0) {
            snprintf(err, err_size, "%s: empty name in '%.64s'", option, text);
            return -EINVAL;
        }
        char **bigger = realloc(*names, (*count + 1) * sizeof(char *));
        if (!bigger)
            return -ENOMEM;
        *names = bigger;
        if (!(bigger[*count] = strndup(p, len)))
            return -ENOMEM;
        (*count)++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int log_filter_add_service(struct log_filter *f, const char *text, char *err, size_t err_size)
{
    return add_names("--service", &f->services, &f->services_count, text, err, err_size);
}

static bool is_known_outcome(const char *name)
{
    for (size_t i = 0; log_filter_outcomes[i]; i++)
        if (strcmp(name, log_filter_outcomes[i]) == 0)
            return true;
    return false;
}

int log_filter_add_outcome(struct log_filter *f, const char *text, char *err, size_t err_size)
{
    size_t before = f->outcomes_count;
    int rc = add_names("--outcome", &f->outcomes, &f->outcomes_count, text, err, err_size);

    for (size_t i = before; rc == 0 && i < f->outcomes_count; i++) {
        if (is_known_outcome(f->outcomes[i]))
            continue;
        int n = snprintf(err, err_size, "--outcome: '%.64s' is not an outcome; the outcomes are",
                         f->outcomes[i]);
        for (size_t k = 0; log_filter_outcomes[k] && n >= 0 && (size_t)n < err_size; k++)
            n += snprintf(err + n, err_size - (size_t)n, "%s %s", k ? "," : "",
                          log_filter_outcomes[k]);
        rc = -EINVAL;
    }
    return rc;
}

int log_filter_set_slow(struct log_filter *f, const char *text, char *err, size_t err_size)
{
    if (!log_time_parse_duration(text, 1, &f->slow_ms)) {
        snprintf(err, err_size,
                 "--slow: '%.64s' is not a duration in ms (250) or with a unit (1.5s)", text);
        return -EINVAL;
    }
    f->has_slow = true;
    return 0;
}

int log_filter_check(const struct log_filter *f, char *err, size_t err_size)
{
    if (f->has_since && f->has_until && f->until_ms <= f->since_ms) {
        snprintf(err, err_size, "--until is not after --since: no line could match");
        return -EINVAL;
    }
    return 0;
}

static bool name_in(const char *name, char *const *names, size_t count)
{
    if (!name)
        return false;
    for (size_t i = 0; i < count; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

bool log_filter_match(const struct log_filter *f, const struct log_record *r)
{
    if (f->has_since && r->time_ms < f->since_ms)
        return false;
    if (f->has_until && r->time_ms >= f->until_ms)
        return false;
    if (f->has_status && !(r->status < 0 ? f->status_null : status_bit(f, r->status)))
        return false;
    if (f->services_count && !name_in(r->service, f->services, f->services_count))
        return false;
    if (f->outcomes_count && !name_in(r->outcome, f->outcomes, f->outcomes_count))
        return false;
    if (f->has_slow && !(r->duration_ms >= f->slow_ms)) /* NAN (null) never matches */
        return false;
    return true;
}
