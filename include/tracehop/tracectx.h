/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * tracehop trace-context library: W3C Trace Context (Level 2: the random flag, the tracestate
 * key grammar and duplicate handling; the Level 3 Server-Timing binding is the proxy's) and the
 * X-Trace-ID convention, as one hop of a proxy sees them.
 *
 * Pure: no I/O, no logging, no allocation. Every output goes into caller-provided storage of the
 * sizes given by the TRACEHOP_*_LEN constants. Inputs are length-delimited and need not be
 * NUL-terminated; they may contain any bytes (embedded NULs included).
 *
 * The only function with a side effect is the id generator, which reads the kernel CSPRNG
 * (getrandom) through a per-thread buffer.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sizes, in characters, without a terminating NUL. */
#define TRACEHOP_TRACE_ID_SIZE          16 /* bytes */
#define TRACEHOP_SPAN_ID_SIZE           8  /* bytes */
#define TRACEHOP_TRACE_ID_HEX_LEN       32
#define TRACEHOP_SPAN_ID_HEX_LEN        16
#define TRACEHOP_TRACEPARENT_LEN        55  /* "00-" 32 "-" 16 "-" 2 */
#define TRACEHOP_UUID_LEN               36  /* 8-4-4-4-12 */
#define TRACEHOP_X_TRACE_ID_MAX         128 /* 1..128 visible ASCII: docs/trace-context.md, 4. */
#define TRACEHOP_TRACESTATE_MAX         512 /* what we forward at most (W3C: propagate >= 512) */
#define TRACEHOP_TRACESTATE_MEMBERS_MAX 32

/* trace-flags bits (W3C Level 1 sampled, Level 2 random). */
#define TRACEHOP_FLAG_SAMPLED 0x01u
#define TRACEHOP_FLAG_RANDOM  0x02u
#define TRACEHOP_FLAGS_KNOWN  (TRACEHOP_FLAG_SAMPLED | TRACEHOP_FLAG_RANDOM)

/* A parsed traceparent. `version` is what was received; we always emit version 00. */
struct tracehop_traceparent {
    uint8_t version;
    uint8_t trace_id[TRACEHOP_TRACE_ID_SIZE];
    uint8_t parent_id[TRACEHOP_SPAN_ID_SIZE];
    uint8_t flags; /* as received, all eight bits */
};

/* Why a traceparent value was refused. TRACEHOP_TP_OK is 0. */
enum tracehop_traceparent_error {
    TRACEHOP_TP_OK = 0,
    TRACEHOP_TP_BAD_LENGTH,     /* too short, or version 00 with trailing data */
    TRACEHOP_TP_BAD_VERSION,    /* not two lowercase hex digits */
    TRACEHOP_TP_VERSION_FF,     /* version ff is forbidden */
    TRACEHOP_TP_BAD_DELIMITER,  /* a '-' missing where the format has one */
    TRACEHOP_TP_BAD_TRACE_ID,   /* not 32 lowercase hex digits */
    TRACEHOP_TP_ZERO_TRACE_ID,  /* all zeros */
    TRACEHOP_TP_BAD_PARENT_ID,  /* not 16 lowercase hex digits */
    TRACEHOP_TP_ZERO_PARENT_ID, /* all zeros */
    TRACEHOP_TP_BAD_FLAGS,      /* not two lowercase hex digits */
    TRACEHOP_TP_DUPLICATE,      /* more than one traceparent field (hop decision only) */
};

/*
 * Parse one traceparent field value. Leading and trailing spaces/tabs are ignored.
 * Version 00 must be exactly 55 characters; a higher version (01..fe) may carry more data after
 * a '-' following the flags, which is ignored (W3C Level 1, section 3.2.4 "Versioning").
 * Returns TRACEHOP_TP_OK and fills *ret only on success.
 */
enum tracehop_traceparent_error tracehop_traceparent_parse(const char *value, size_t len,
                                                           struct tracehop_traceparent *ret);

/* A short English phrase for an error code ("trace-id is all zeros"); never NULL. */
const char *tracehop_traceparent_strerror(enum tracehop_traceparent_error error);

/*
 * Write "00-<trace_id>-<span_id>-<flags>" into buf, which must hold TRACEHOP_TRACEPARENT_LEN
 * bytes (no NUL is written). Returns TRACEHOP_TRACEPARENT_LEN.
 */
size_t tracehop_traceparent_format(char *buf, const uint8_t trace_id[TRACEHOP_TRACE_ID_SIZE],
                                   const uint8_t span_id[TRACEHOP_SPAN_ID_SIZE], uint8_t flags);

/* Outcome of combining and validating the tracestate fields of one request. */
enum tracehop_tracestate_status {
    TRACEHOP_TS_ABSENT = 0,   /* no field, or only empty members */
    TRACEHOP_TS_OK,           /* forwarded complete */
    TRACEHOP_TS_TRUNCATED,    /* valid, but members were removed to fit TRACEHOP_TRACESTATE_MAX
                                 (duplicates may have been discarded too) */
    TRACEHOP_TS_INVALID,      /* a member broke the grammar, or > 32 members (duplicates count) */
    TRACEHOP_TS_DROPPED,      /* not looked at because the trace was not continued */
    TRACEHOP_TS_DEDUPLICATED, /* valid, forwarded without the later members of a repeated key */
};

/* One header field value: length-delimited, not necessarily NUL-terminated. */
struct tracehop_slice {
    const char *ptr;
    size_t len;
};

/*
 * Combine `count` tracestate field values in order (RFC 9110 list semantics), validate every
 * member (key and value grammar of W3C Trace Context Level 2 section 3.3: a key is a lowercase
 * letter or digit then up to 255 of a-z 0-9 _ - * / @), refuse more than 32 members, keep the
 * first member of a repeated key and discard the later ones (DEDUPLICATED), drop empty members
 * and optional whitespace, then truncate to at most TRACEHOP_TRACESTATE_MAX characters: members
 * longer than 128 characters go first, then members from the end (section 3.3.1.5).
 *
 * `out` must hold TRACEHOP_TRACESTATE_MAX + 1 bytes; it always receives a NUL-terminated string
 * (empty unless the status is OK, TRUNCATED or DEDUPLICATED). *ret_len gets its length.
 */
enum tracehop_tracestate_status tracehop_tracestate_normalize(const struct tracehop_slice *fields,
                                                              size_t count, char *out,
                                                              size_t *ret_len);

/*
 * X-Trace-ID. A safe value is 1..128 visible ASCII characters (0x21..0x7e) other than '"',
 * '\'' and '\\' (docs/trace-context.md, "4. X-Trace-ID": no quotes, no backslashes). Surrounding
 * spaces/tabs are not part of the value and are ignored.
 */
bool tracehop_x_trace_id_is_safe(const char *value, size_t len);

/*
 * If value is a UUID (8-4-4-4-12 hex, any case, any version), write its 16 bytes to
 * out and return true. The nil UUID is reported as a UUID too; callers decide about it.
 */
bool tracehop_uuid_parse(const char *value, size_t len, uint8_t out[TRACEHOP_TRACE_ID_SIZE]);

/* Format 16 bytes as a lowercase 8-4-4-4-12 UUID into buf (TRACEHOP_UUID_LEN bytes, no NUL). */
size_t tracehop_uuid_format(char *buf, const uint8_t id[TRACEHOP_TRACE_ID_SIZE]);

/* Lowercase hex of `n` bytes into buf (2n bytes, no NUL). Returns 2n. */
size_t tracehop_hex_format(char *buf, const uint8_t *bytes, size_t n);

/*
 * Parse exactly 2n lowercase hex digits from src into bytes. Returns false (and leaves bytes
 * in an unspecified state) on any other character, uppercase included.
 */
bool tracehop_hex_parse_lower(const char *src, size_t n, uint8_t *bytes);

/*
 * IDs from the kernel CSPRNG (getrandom), through a per-thread buffer so that the system call is
 * amortised over many ids. Never all-zero. Abort()s only if the kernel refuses getrandom, which
 * on Linux >= 3.17 happens only before the entropy pool is first initialised (and then blocks).
 */
void tracehop_random_trace_id(uint8_t out[TRACEHOP_TRACE_ID_SIZE]);
void tracehop_random_span_id(uint8_t out[TRACEHOP_SPAN_ID_SIZE]);
/* A random version-4, variant-1 UUID (RFC 9562): 122 random bits, never nil. */
void tracehop_random_uuid_v4(uint8_t out[TRACEHOP_TRACE_ID_SIZE]);

/* --- the hop decision ---------------------------------------------------------------------- */

/*
 * The sampling rule, named as OpenTelemetry's OTEL_TRACES_SAMPLER values. "parentbased_*" keep
 * the sampled flag of a trusted, valid incoming traceparent and apply the rest of the name to
 * new traces; the others decide every hop themselves, overriding the caller's flag.
 */
enum tracehop_sampler {
    TRACEHOP_SAMPLER_PARENTBASED_TRACEIDRATIO = 0, /* tracehop's default */
    TRACEHOP_SAMPLER_PARENTBASED_ALWAYS_ON,
    TRACEHOP_SAMPLER_PARENTBASED_ALWAYS_OFF,
    TRACEHOP_SAMPLER_TRACEIDRATIO,
    TRACEHOP_SAMPLER_ALWAYS_ON,
    TRACEHOP_SAMPLER_ALWAYS_OFF,
};

/* Settings of the hop that change the decision (config `trace.*`). */
struct tracehop_hop_settings {
    bool trust_incoming;   /* continue incoming traces (true) or always start a new one */
    double sampling_ratio; /* 0..1: the ratio of the *traceidratio samplers */
    enum tracehop_sampler sampler;
};

/* The OTEL_TRACES_SAMPLER name of a sampler ("parentbased_traceidratio", ...). */
const char *tracehop_sampler_name(enum tracehop_sampler sampler);
/* The sampler called `name` (exact, lowercase); false when there is none. */
bool tracehop_sampler_from_name(const char *name, enum tracehop_sampler *ret);

/*
 * The trace-context header fields of one inbound request, as received. Each array lists every
 * field of that name in arrival order (several traceparent fields make the traceparent invalid;
 * several X-Trace-ID fields make the X-Trace-ID unsafe).
 */
struct tracehop_hop_input {
    const struct tracehop_slice *traceparent;
    size_t traceparent_count;
    const struct tracehop_slice *tracestate;
    size_t tracestate_count;
    const struct tracehop_slice *x_trace_id;
    size_t x_trace_id_count;
};

/* Where the trace id of this hop came from (the row of the table in docs/trace-context.md,
 * "1. The decision"). */
enum tracehop_trace_origin {
    TRACEHOP_ORIGIN_TRACEPARENT = 0,     /* continued an incoming W3C trace */
    TRACEHOP_ORIGIN_X_TRACE_ID_UUID,     /* taken from a UUID X-Trace-ID (legacy caller) */
    TRACEHOP_ORIGIN_NEW_KEEP_X_TRACE_ID, /* new random trace, caller's X-Trace-ID kept */
    TRACEHOP_ORIGIN_NEW,                 /* new trace from a new UUIDv4, which is the X-Trace-ID */
};

enum tracehop_x_trace_id_status {
    TRACEHOP_XID_ABSENT = 0,  /* none received: derived from the trace id */
    TRACEHOP_XID_ACCEPTED,    /* received and safe: forwarded as received */
    TRACEHOP_XID_REJECTED,    /* received but unsafe (or repeated): replaced */
    TRACEHOP_XID_NOT_TRUSTED, /* received and safe, but trust_incoming is false: replaced,
                                 kept in incoming_x_trace_id for the log */
};

/* Everything one hop needs; filled by tracehop_hop_decide. */
struct tracehop_hop {
    uint8_t trace_id[TRACEHOP_TRACE_ID_SIZE];
    uint8_t parent_span_id[TRACEHOP_SPAN_ID_SIZE]; /* valid only if has_parent */
    bool has_parent;
    uint8_t span_id[TRACEHOP_SPAN_ID_SIZE]; /* tracehop's own span: the upstream's parent-id */
    uint8_t flags;                          /* trace-flags to send (only known bits) */
    enum tracehop_trace_origin origin;

    char x_trace_id[TRACEHOP_X_TRACE_ID_MAX + 1]; /* NUL-terminated */
    size_t x_trace_id_len;
    enum tracehop_x_trace_id_status x_trace_id_status;

    char tracestate[TRACEHOP_TRACESTATE_MAX + 1]; /* NUL-terminated, empty = send none */
    size_t tracestate_len;
    enum tracehop_tracestate_status tracestate_status;

    /* The incoming traceparent: why it was refused, or (when valid) what it said. */
    enum tracehop_traceparent_error traceparent_error; /* TRACEHOP_TP_OK when absent or valid */
    bool traceparent_present;
    /* A valid incoming traceparent, kept for the log even when trust_incoming is false. */
    bool incoming_valid;
    struct tracehop_traceparent incoming;
    /* With trust_incoming false: the safe X-Trace-ID received (NUL-terminated), else "". */
    char incoming_x_trace_id[TRACEHOP_X_TRACE_ID_MAX + 1];
};

/*
 * Decide the trace context of one hop (docs/trace-context.md, "1. The decision"):
 *
 *   inbound                                   trace_id             parent     x_trace_id
 *   valid traceparent, safe X-Trace-ID        traceparent's        its parent as received
 *   valid traceparent, no X-Trace-ID          traceparent's        its parent trace_id as UUID
 *   no/invalid traceparent, UUID X-Trace-ID   the UUID's 16 bytes  none       as received
 *   no/invalid traceparent, other safe X-ID   new random           none       as received
 *   neither                                   new random UUIDv4    none       that UUID
 *
 * An unsafe X-Trace-ID counts as absent for the table and is reported as REJECTED.
 * With trust_incoming false, every hop starts a new trace as in the last row, X-Trace-ID
 * included; the incoming traceparent is still parsed and reported in `incoming`, a safe
 * incoming X-Trace-ID in `incoming_x_trace_id` (status NOT_TRUSTED).
 * The random flag of a continued trace is kept and other unknown bits are zeroed; the sampled
 * flag is the sampler's decision (enum tracehop_sampler): the default, parent-based one keeps
 * a continued trace's flag and samples new traces by sampling_ratio applied to the trace id, so
 * all hops of a legacy chain that share an X-Trace-ID UUID make the same decision. The random
 * flag is set when tracehop drew the id.
 */
void tracehop_hop_decide(const struct tracehop_hop_input *input,
                         const struct tracehop_hop_settings *settings, struct tracehop_hop *ret);

/*
 * Whether a trace id is sampled at the given ratio: the trace id's last 7 bytes R (the part the
 * Level 2 random flag promises to be random) kept when R >= (1 - ratio) * 2^56, the threshold
 * rule of OpenTelemetry's consistent probability sampling, so that tracehop and an OpenTelemetry
 * SDK sampling at the same ratio keep the same traces. Deterministic.
 */
bool tracehop_sample_trace_id(const uint8_t trace_id[TRACEHOP_TRACE_ID_SIZE], double ratio);

#ifdef __cplusplus
}
#endif
