/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Time for `tracehop logs`: RFC 3339 time stamps (the `time` field, --since/--until) and
 * durations ("15m", "2h30m", "250ms") as milliseconds. Pure: the caller passes "now".
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for log_time_format's output with its NUL. */
#define LOG_TIME_TEXT_SIZE 32

/*
 * Parse an RFC 3339 date-time, YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|+HH:MM|-HH:MM), into
 * milliseconds since the Unix epoch (the fraction is truncated to milliseconds). Also accepted,
 * for people typing --since: a date alone (midnight), HH:MM without seconds, and no offset
 * (UTC). Years 0000-9999. The input is length-delimited. Returns false for anything else.
 */
bool log_time_parse_rfc3339(const char *text, size_t len, int64_t *ret_ms);

/*
 * Parse a duration: one or more <number><unit> groups ("1h30m", "1.5s"), unit one of ms, s, m,
 * h, d. A bare number is taken in `bare_unit_ms` (1 for milliseconds, 0 to refuse bare
 * numbers). Negative values are refused. Returns false on any other text.
 */
bool log_time_parse_duration(const char *text, double bare_unit_ms, double *ret_ms);

/*
 * A --since/--until argument: "now", an RFC 3339 time, or a duration meaning that long before
 * now_ms ("15m": fifteen minutes ago). Returns false if it is none of these.
 */
bool log_time_parse_point(const char *text, int64_t now_ms, int64_t *ret_ms);

/* Write ms since the epoch as RFC 3339 UTC with milliseconds ("2026-11-22T01:55:11.123Z"). */
void log_time_format(int64_t ms, char out[LOG_TIME_TEXT_SIZE]);

/* The current time, CLOCK_REALTIME, in ms since the epoch. */
int64_t log_time_now_ms(void);
