/* SPDX-License-Identifier: MIT */
/*
 * The Server-Timing value tracehop sends (server_timing.h). The `trace` metric is the Level 3
 * draft's binding: name `trace` in lowercase, `desc` the traceparent of the server's own span,
 * which is a valid token (hex digits and '-'), so it goes out unquoted. `dur` is milliseconds as
 * a decimal number, which the Server Timing grammar allows; three decimals are microseconds,
 * more than a clock read per request is worth.
 */
#include <stdio.h>
#include <string.h>

#include "proxy/server_timing.h"
#include "tracehop/tracectx.h"

/* Durations above this (31 years) are clamped, so that the value always fits. */
#define DURATION_MAX_MS 1e12

/* The version-00 traceparent shape: only hex digits and '-' where the format has them. */
static bool is_traceparent(const char *s)
{
    if (strlen(s) != TRACEHOP_TRACEPARENT_LEN)
        return false;
    for (size_t i = 0; i < TRACEHOP_TRACEPARENT_LEN; i++) {
        bool dash = i == 2 || i == 35 || i == 52;
        bool hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
        if (dash ? s[i] != '-' : !hex)
            return false;
    }
    return true;
}

static size_t append(char *buf, size_t len, const char *text)
{
    size_t n = strlen(text);

    if (len + n > SERVER_TIMING_VALUE_MAX)
        return len; /* cannot happen with the limits above; never overflow if it did */
    memcpy(buf + len, text, n + 1);
    return len + n;
}

static size_t append_duration(char *buf, size_t len, const char *name, double ms)
{
    char metric[64];

    if (!(ms >= 0)) /* negative or NaN: not measured */
        return len;
    if (ms > DURATION_MAX_MS)
        ms = DURATION_MAX_MS;
    snprintf(metric, sizeof(metric), "%s%s;dur=%.3f", len > 0 ? ", " : "", name, ms);
    return append(buf, len, metric);
}

size_t server_timing_format(const struct server_timing *timing,
                            char buf[SERVER_TIMING_VALUE_MAX + 1])
{
    size_t len = 0;

    buf[0] = '\0';
    if (timing->traceparent && is_traceparent(timing->traceparent)) {
        len = append(buf, len, "trace;desc=");
        len = append(buf, len, timing->traceparent);
    }
    len = append_duration(buf, len, "tracehop", timing->tracehop_ms);
    len = append_duration(buf, len, "upstream", timing->upstream_ms);
    return len;
}
