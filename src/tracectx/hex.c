/* SPDX-License-Identifier: MIT */
/*
 * Hex and UUID text forms of ids. W3C Trace Context allows only lowercase hex on the wire, so the
 * strict parser refuses uppercase; UUIDs (X-Trace-ID) are accepted in any case, as RFC 9562 says
 * they are compared case-insensitively, and always written lowercase.
 */
#include "tracehop/tracectx.h"

static const char hex_digits[16] = "0123456789abcdef";

/* Digit value + 1 for every byte, 0 for non-digits (so the default fill means "not a digit").
 * Tables, because these run for every byte of every id on every request: branchy range checks
 * showed in the hop benchmark. */
#define HEX_DIGITS_LOWER                                                                           \
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,        \
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16

static const unsigned char lower_hex_table[256] = {HEX_DIGITS_LOWER};

static const unsigned char any_hex_table[256] = {
    HEX_DIGITS_LOWER, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* Value of a lowercase hex digit, or -1. */
static inline int lower_hex_value(unsigned char c)
{
    return (int)lower_hex_table[c] - 1;
}

/* Value of a hex digit of either case, or -1. */
static inline int any_hex_value(unsigned char c)
{
    return (int)any_hex_table[c] - 1;
}

size_t tracehop_hex_format(char *buf, const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = hex_digits[bytes[i] >> 4];
        buf[2 * i + 1] = hex_digits[bytes[i] & 0x0f];
    }
    return 2 * n;
}

bool tracehop_hex_parse_lower(const char *src, size_t n, uint8_t *bytes)
{
    for (size_t i = 0; i < n; i++) {
        int hi = lower_hex_value((unsigned char)src[2 * i]);
        int lo = lower_hex_value((unsigned char)src[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Offsets of the four dashes of 8-4-4-4-12. */
static bool is_uuid_dash_position(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

bool tracehop_uuid_parse(const char *value, size_t len, uint8_t out[TRACEHOP_TRACE_ID_SIZE])
{
    uint8_t bytes[TRACEHOP_TRACE_ID_SIZE];
    size_t nibble = 0;

    if (len != TRACEHOP_UUID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (is_uuid_dash_position(i)) {
            if (value[i] != '-')
                return false;
            continue;
        }
        int v = any_hex_value((unsigned char)value[i]);
        if (v < 0)
            return false;
        if (nibble % 2 == 0)
            bytes[nibble / 2] = (uint8_t)(v << 4);
        else
            bytes[nibble / 2] |= (uint8_t)v;
        nibble++;
    }
    for (size_t i = 0; i < TRACEHOP_TRACE_ID_SIZE; i++)
        out[i] = bytes[i];
    return true;
}

size_t tracehop_uuid_format(char *buf, const uint8_t id[TRACEHOP_TRACE_ID_SIZE])
{
    char *p = buf;
    p += tracehop_hex_format(p, id, 4);
    *p++ = '-';
    p += tracehop_hex_format(p, id + 4, 2);
    *p++ = '-';
    p += tracehop_hex_format(p, id + 6, 2);
    *p++ = '-';
    p += tracehop_hex_format(p, id + 8, 2);
    *p++ = '-';
    p += tracehop_hex_format(p, id + 10, 6);
    return (size_t)(p - buf);
}
