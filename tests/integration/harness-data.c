/* SPDX-License-Identifier: MIT */
/*
 * Trace context and test data (contracts in harness.h), no I/O but getrandom(2): a traceparent
 * split into its fields (W3C Trace Context, version 00), random hex ids, the UUID form of a trace
 * id, FNV-1a 64, and the echo upstream's download pattern (byte i is i % 251) with its hash, so
 * that large bodies are checked without being kept.
 */
#include "harness-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

bool harness_is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool harness_traceparent_split(const char *tp, char trace_id[33], char span_id[17], char flags[3])
{
    if (!tp || strlen(tp) != 55 || strncmp(tp, "00-", 3) != 0 || tp[35] != '-' || tp[52] != '-' ||
        !harness_is_lower_hex(tp + 3, 32) || !harness_is_lower_hex(tp + 36, 16) ||
        !harness_is_lower_hex(tp + 53, 2))
        return false;
    memcpy(trace_id, tp + 3, 32);
    trace_id[32] = '\0';
    memcpy(span_id, tp + 36, 16);
    span_id[16] = '\0';
    memcpy(flags, tp + 53, 2);
    flags[2] = '\0';
    return true;
}

void harness_random_hex(char *out, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char bytes[256];
    bool nonzero = false;

    if (n > 2 * sizeof(bytes))
        n = 2 * sizeof(bytes);
    if (getrandom(bytes, (n + 1) / 2, 0) < 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        out[i] = digits[(bytes[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
        nonzero |= out[i] != '0';
    }
    if (!nonzero && n > 0)
        out[n - 1] = '1';
    out[n] = '\0';
}

void harness_uuid_from_hex(const char *hex32, char out[37])
{
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex32, hex32 + 8, hex32 + 12, hex32 + 16,
             hex32 + 20);
    for (size_t i = 0; i < 36; i++)
        if (out[i] >= 'A' && out[i] <= 'F')
            out[i] = (char)(out[i] - 'A' + 'a');
}

uint64_t harness_fnv1a64(uint64_t hash, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        hash ^= p[i];
        hash *= 0x100000001b3ull;
    }
    return hash;
}

void harness_pattern_fill(char *buf, size_t len, uint64_t offset)
{
    unsigned value = (unsigned)(offset % 251);
    for (size_t i = 0; i < len; i++) {
        buf[i] = (char)value;
        if (++value == 251)
            value = 0;
    }
}

uint64_t harness_pattern_hash(uint64_t n)
{
    char block[251 * 64];
    uint64_t hash = HARNESS_FNV_OFFSET, done = 0;

    harness_pattern_fill(block, sizeof(block), 0); /* a whole number of periods */
    while (done < n) {
        size_t step = n - done < sizeof(block) ? (size_t)(n - done) : sizeof(block);
        hash = harness_fnv1a64(hash, block, step);
        done += step;
    }
    return hash;
}

void harness_hash_hex(uint64_t hash, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)hash);
}
