/* SPDX-License-Identifier: MIT */
/*
 * Time parsing for `tracehop logs` (contracts in log_time.h).
 *
 * The calendar arithmetic is done here (days from a civil date, Howard Hinnant's algorithm)
 * rather than with timegm(3): it runs once per log line, must not depend on the TZ environment,
 * and has to reject impossible dates (February 30th) that timegm silently normalises.
 * Formatting goes through common/timefmt so that the CLI prints times exactly as the daemon
 * writes them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/log_time.h"
#include "common/timefmt.h"

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool is_leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* n decimal digits at *p (bounded by end); advances *p. */
static bool digits(const char **p, const char *end, size_t n, unsigned *ret)
{
    unsigned v = 0;
    if ((size_t)(end - *p) < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *ret = v;
    return true;
}

static bool expect(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return false;
    (*p)++;
    return true;
}

bool log_time_parse_rfc3339(const char *text, size_t len, int64_t *ret_ms)
{
    const char *p = text, *end = text + len;
    unsigned year, month, day, hour = 0, minute = 0, second = 0, ms = 0;
    int64_t offset_min = 0;

    if (!digits(&p, end, 4, &year) || !expect(&p, end, '-') || !digits(&p, end, 2, &month) ||
        !expect(&p, end, '-') || !digits(&p, end, 2, &day))
        return false;
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
        return false;
    if (p < end) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return false;
        p++;
        if (!digits(&p, end, 2, &hour) || !expect(&p, end, ':') || !digits(&p, end, 2, &minute))
            return false;
        if (p < end && *p == ':') {
            p++;
            if (!digits(&p, end, 2, &second))
                return false;
            if (p < end && *p == '.') {
                unsigned scale = 100;
                p++;
                if (p >= end || *p < '0' || *p > '9')
                    return false;
                for (; p < end && *p >= '0' && *p <= '9'; p++) {
                    ms += (unsigned)(*p - '0') * scale;
                    scale /= 10;
                }
            }
        }
        if (hour > 23 || minute > 59 || second > 60) /* 60: a leap second */
            return false;
        if (p < end && (*p == 'Z' || *p == 'z')) {
            p++;
        } else if (p < end && (*p == '+' || *p == '-')) {
            int sign = *p == '-' ? -1 : 1;
            unsigned oh, om;
            p++;
            if (!digits(&p, end, 2, &oh) || !expect(&p, end, ':') || !digits(&p, end, 2, &om) ||
                oh > 23 || om > 59)
                return false;
            offset_min = sign * (int64_t)(oh * 60 + om);
        }
        if (p != end)
            return false;
    }
    int64_t days = days_from_civil(year, month, day);
    int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    *ret_ms = seconds * 1000 + ms;
    return true;
}

bool log_time_parse_duration(const char *text, double bare_unit_ms, double *ret_ms)
{
    const char *p = text;
    double total = 0;
    unsigned groups = 0;

    if (!*p)
        return false;
    while (*p) {
        /* A decimal number by hand: strtod would also take hex, "inf" and exponents. */
        double v = 0, scale = 1;
        bool any = false;
        for (; *p >= '0' && *p <= '9'; p++, any = true)
            v = v * 10 + (*p - '0');
        if (*p == '.') {
            for (p++; *p >= '0' && *p <= '9'; p++, any = true)
                v += (*p - '0') * (scale /= 10);
        }
        if (!any || !isfinite(v))
            return false;
        double unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1, p += 2;
        } else if (*p == 's') {
            unit = 1e3, p++;
        } else if (*p == 'm') {
            unit = 60e3, p++;
        } else if (*p == 'h') {
            unit = 3600e3, p++;
        } else if (*p == 'd') {
            unit = 86400e3, p++;
        } else if (*p == '\0' && groups == 0 && bare_unit_ms > 0) {
            unit = bare_unit_ms;
        } else {
            return false;
        }
        total += v * unit;
        groups++;
    }
    if (!isfinite(total) || total > 1e15) /* about 30,000 years */
        return false;
    *ret_ms = total;
    return true;
}

bool log_time_parse_point(const char *text, int64_t now_ms, int64_t *ret_ms)
{
    double ago;

    if (strcmp(text, "now") == 0) {
        *ret_ms = now_ms;
        return true;
    }
    if (log_time_parse_rfc3339(text, strlen(text), ret_ms))
        return true;
    if (log_time_parse_duration(text, 0, &ago)) {
        *ret_ms = now_ms - (int64_t)ago;
        return true;
    }
    return false;
}

void log_time_format(int64_t ms, char out[LOG_TIME_TEXT_SIZE])
{
    int64_t seconds = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    struct timespec ts = {.tv_sec = (time_t)seconds,
                          .tv_nsec = (long)(ms - seconds * 1000) * 1000000};

    if (ms < -62167219200000LL || ms > 253402300799999LL) { /* outside years 0000-9999 */
        strcpy(out, "(time out of range)");
        return;
    }
    timefmt_rfc3339_ms(out, &ts);
}

int64_t log_time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
