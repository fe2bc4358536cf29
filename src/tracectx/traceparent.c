/* SPDX-License-Identifier: MIT */
/*
 * The traceparent header (W3C Trace Context Level 1, section 3.2):
 *
 *   version "-" trace-id "-" parent-id "-" trace-flags      e.g. 00-<32 hex>-<16 hex>-01
 *
 * Every field is lowercase hex of a fixed length. Version ff is forbidden. Version 00 is exactly
 * 55 characters; a higher version is parsed as if it were 00 and may carry more data after one
 * more '-' (section 3.2.4, "Versioning of traceparent"), which we ignore. Surrounding OWS is
 * tolerated because the header is a field value (RFC 9110 section 5.5). We always emit 00.
 */
#include "tracehop/tracectx.h"
#include "bytes.h"
#include "ows.h"

/* Offsets inside the 55-character version-00 layout. */
enum {
    TP_VERSION = 0,
    TP_TRACE_ID = 3,
    TP_PARENT_ID = 36,
    TP_FLAGS = 53,
};

enum tracehop_traceparent_error tracehop_traceparent_parse(const char *value, size_t len,
                                                           struct tracehop_traceparent *ret)
{
    struct tracehop_traceparent tp;

    tracectx_trim_ows(&value, &len);
    if (len < TRACEHOP_TRACEPARENT_LEN)
        return TRACEHOP_TP_BAD_LENGTH;
    if (!tracehop_hex_parse_lower(value + TP_VERSION, 1, &tp.version))
        return TRACEHOP_TP_BAD_VERSION;
    if (tp.version == 0xff)
        return TRACEHOP_TP_VERSION_FF;
    if (value[TP_TRACE_ID - 1] != '-' || value[TP_PARENT_ID - 1] != '-' ||
        value[TP_FLAGS - 1] != '-')
        return TRACEHOP_TP_BAD_DELIMITER;
    if (!tracehop_hex_parse_lower(value + TP_TRACE_ID, TRACEHOP_TRACE_ID_SIZE, tp.trace_id))
        return TRACEHOP_TP_BAD_TRACE_ID;
    if (tracectx_is_all_zero(tp.trace_id, TRACEHOP_TRACE_ID_SIZE))
        return TRACEHOP_TP_ZERO_TRACE_ID;
    if (!tracehop_hex_parse_lower(value + TP_PARENT_ID, TRACEHOP_SPAN_ID_SIZE, tp.parent_id))
        return TRACEHOP_TP_BAD_PARENT_ID;
    if (tracectx_is_all_zero(tp.parent_id, TRACEHOP_SPAN_ID_SIZE))
        return TRACEHOP_TP_ZERO_PARENT_ID;
    if (!tracehop_hex_parse_lower(value + TP_FLAGS, 1, &tp.flags))
        return TRACEHOP_TP_BAD_FLAGS;
    if (len > TRACEHOP_TRACEPARENT_LEN) {
        /* Only a future version may be longer, and only with a '-' before the extra data. */
        if (tp.version == 0x00)
            return TRACEHOP_TP_BAD_LENGTH;
        if (value[TRACEHOP_TRACEPARENT_LEN] != '-')
            return TRACEHOP_TP_BAD_DELIMITER;
    }
    *ret = tp;
    return TRACEHOP_TP_OK;
}

const char *tracehop_traceparent_strerror(enum tracehop_traceparent_error error)
{
    switch (error) {
    case TRACEHOP_TP_OK:
        return "valid";
    case TRACEHOP_TP_BAD_LENGTH:
        return "wrong length";
    case TRACEHOP_TP_BAD_VERSION:
        return "version is not two lowercase hex digits";
    case TRACEHOP_TP_VERSION_FF:
        return "version ff is invalid";
    case TRACEHOP_TP_BAD_DELIMITER:
        return "field delimiter missing";
    case TRACEHOP_TP_BAD_TRACE_ID:
        return "trace-id is not 32 lowercase hex digits";
    case TRACEHOP_TP_ZERO_TRACE_ID:
        return "trace-id is all zeros";
    case TRACEHOP_TP_BAD_PARENT_ID:
        return "parent-id is not 16 lowercase hex digits";
    case TRACEHOP_TP_ZERO_PARENT_ID:
        return "parent-id is all zeros";
    case TRACEHOP_TP_BAD_FLAGS:
        return "trace-flags is not two lowercase hex digits";
    case TRACEHOP_TP_DUPLICATE:
        return "more than one traceparent header";
    }
    return "unknown error";
}

size_t tracehop_traceparent_format(char *buf, const uint8_t trace_id[TRACEHOP_TRACE_ID_SIZE],
                                   const uint8_t span_id[TRACEHOP_SPAN_ID_SIZE], uint8_t flags)
{
    buf[0] = '0';
    buf[1] = '0';
    buf[2] = '-';
    tracehop_hex_format(buf + TP_TRACE_ID, trace_id, TRACEHOP_TRACE_ID_SIZE);
    buf[TP_PARENT_ID - 1] = '-';
    tracehop_hex_format(buf + TP_PARENT_ID, span_id, TRACEHOP_SPAN_ID_SIZE);
    buf[TP_FLAGS - 1] = '-';
    tracehop_hex_format(buf + TP_FLAGS, &flags, 1);
    return TRACEHOP_TRACEPARENT_LEN;
}
