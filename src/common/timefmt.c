/* SPDX-License-Identifier: MIT */
/*
 * Time stamps for logs. The access log writes one per request, so the calendar conversion is
 * cached per thread and redone only when the second changes.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/timefmt.h"

size_t timefmt_rfc3339_ms(char *buf, const struct timespec *ts)
{
    static _Thread_local bool cached_valid;
    static _Thread_local time_t cached_second;
    static _Thread_local char cached[64]; /* "YYYY-MM-DDTHH:MM:SS", room for any int */

    if (!cached_valid || ts->tv_sec != cached_second) {
        struct tm tm;
        gmtime_r(&ts->tv_sec, &tm);
        snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_second = ts->tv_sec;
        cached_valid = true;
    }
    long ms = ts->tv_nsec / 1000000;
    memcpy(buf, cached, 19);
    buf[19] = '.';
    buf[20] = (char)('0' + ms / 100);
    buf[21] = (char)('0' + ms / 10 % 10);
    buf[22] = (char)('0' + ms % 10);
    buf[23] = 'Z';
    buf[24] = '\0';
    return TIMEFMT_RFC3339_MS_LEN;
}

double timefmt_elapsed_ms(const struct timespec *from, const struct timespec *to)
{
    return (double)(to->tv_sec - from->tv_sec) * 1e3 + (double)(to->tv_nsec - from->tv_nsec) / 1e6;
}
