/* SPDX-License-Identifier: MIT */
#pragma once
#include <stddef.h>
#include <time.h>

#define TIMEFMT_RFC3339_MS_LEN 24 /* 2026-11-22T01:55:11.123Z */

/* Write ts as RFC 3339 UTC with milliseconds into buf (25 bytes with the NUL). */
size_t timefmt_rfc3339_ms(char *buf, const struct timespec *ts);

/* Milliseconds between two CLOCK_MONOTONIC readings, as a double. */
double timefmt_elapsed_ms(const struct timespec *from, const struct timespec *to);
