/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The line filters of `tracehop logs`: --since, --until, --status, --service, --outcome,
 * --slow. Different options combine with AND; repeating --status, --service or --outcome (or
 * giving a comma-separated list) widens that option with OR. Parsing is pure: errors come back
 * as text for the caller to print.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/log_record.h"

#define LOG_FILTER_STATUS_MAX 999

/* The status codes --status accepts: HTTP's three-digit range (RFC 9110, section 15). */
#define LOG_FILTER_STATUS_LOWEST  100
#define LOG_FILTER_STATUS_HIGHEST 599

/*
 * Every `outcome` the daemon writes (docs/access-log.md, "Fields"), NULL-terminated: the one
 * list --outcome is checked against and --help prints. A new outcome in the daemon goes here.
 */
extern const char *const log_filter_outcomes[];

struct log_filter {
    bool has_since, has_until;
    int64_t since_ms; /* time >= since */
    int64_t until_ms; /* time < until */

    bool has_status;
    bool status_null; /* "none": lines whose status is null (no response was sent) */
    uint8_t status_set[(LOG_FILTER_STATUS_MAX + 8) / 8]; /* bit per code 0..999 */

    char **services; /* exact names, owned */
    size_t services_count;
    char **outcomes;
    size_t outcomes_count;

    bool has_slow;
    double slow_ms; /* duration_ms >= slow_ms */
};

/* An empty filter (matches every line). */
void log_filter_init(struct log_filter *f);
void log_filter_free(struct log_filter *f);

/*
 * --status: "500" (an exact code, 100..599), "5xx" (a class, 1xx..5xx, any case of x), "none"
 * (null status), or a comma-separated list of these. Anything else ("600", "6xx", "99", "0")
 * is -EINVAL with the reason in err. Returns 0, -EINVAL or -ENOMEM.
 */
int log_filter_add_status(struct log_filter *f, const char *text, char *err, size_t err_size);

/* --since / --until: see log_time_parse_point. Returns 0 or -EINVAL (reason in err). */
int log_filter_set_since(struct log_filter *f, const char *text, int64_t now_ms, char *err,
                         size_t err_size);
int log_filter_set_until(struct log_filter *f, const char *text, int64_t now_ms, char *err,
                         size_t err_size);

/*
 * --service / --outcome: a name or a comma-separated list. An outcome must be one of
 * log_filter_outcomes (-EINVAL naming the valid ones otherwise). Returns 0, -EINVAL or -ENOMEM.
 */
int log_filter_add_service(struct log_filter *f, const char *text, char *err, size_t err_size);
int log_filter_add_outcome(struct log_filter *f, const char *text, char *err, size_t err_size);

/* --slow: milliseconds ("250"), or a duration with a unit ("1.5s"). 0 or -EINVAL. */
int log_filter_set_slow(struct log_filter *f, const char *text, char *err, size_t err_size);

/* After all options: reject contradictions (--until before --since). 0 or -EINVAL. */
int log_filter_check(const struct log_filter *f, char *err, size_t err_size);

/* Whether r passes every filter that was set. */
bool log_filter_match(const struct log_filter *f, const struct log_record *r);
