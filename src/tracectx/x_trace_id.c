/* SPDX-License-Identifier: MIT */
/*
 * X-Trace-ID: a free-form correlation id that legacy services pass along. We forward it, echo
 * it and log it, so it must not be able to smuggle anything into a header, a JSON line or a
 * terminal: the safe rule (docs/trace-context.md, "4. X-Trace-ID") allows 1..128 visible ASCII
 * characters except quotes (both kinds: log pipelines quote with either) and backslashes.
 */
#include "tracehop/tracectx.h"
#include "ows.h"

bool tracehop_x_trace_id_is_safe(const char *value, size_t len)
{
    tracectx_trim_ows(&value, &len);
    if (len < 1 || len > TRACEHOP_X_TRACE_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\'' || c == '\\')
            return false;
    }
    return true;
}
