/* SPDX-License-Identifier: MIT */

/*
 * tracehop_hop_decide against every row of the table in docs/trace-context.md ("1. The decision"),
 * the W3C suite's hop-level cases (duplicate traceparent, tracestate without traceparent, future
 * versions), the flag rules (sampled of a continued trace never changed, random kept or set where
 * tracehop drew the id, other bits zeroed) and trust_incoming=false.
 *
 * Each vector lists the header fields as received and what the hop must decide. Checks that hold
 * for every decision (ids never zero, tracehop's span differs from the incoming parent, strings
 * NUL-terminated with the right length, only known flags, a new trace id differs from every id
 * that came in and from the next new one) run on all of them. Expected UUID text is computed by
 * the test's own formatter, never by the library.
 */

#include <stdio.h>

#include "tracehop/tracectx.h"
#include "unit-test.h"

#define DONT_CARE  (-1)
#define MAX_FIELDS 4

#define W3C_TRACE     "12345678901234567890123456789012"
#define W3C_PARENT    "1234567890123456"
#define W3C_UUID      "12345678-9012-3456-7890-123456789012" /* W3C_TRACE as a UUID */
#define W3C_TP(flags) "00-" W3C_TRACE "-" W3C_PARENT "-" flags
#define W3C_VALID     W3C_TP("01")

#define UUID_UPPER "F47AC10B-58CC-4372-A567-0E02B2C3D479"
#define UUID_LOWER "f47ac10b-58cc-4372-a567-0e02b2c3d479"
#define UUID_BYTES "f47ac10b58cc4372a5670e02b2c3d479"

enum ratio { RATIO_ONE = 0, RATIO_ZERO, RATIO_HALF };

struct hop_vector {
    const char *name;
    /* Input: field values as received (templates, NULL-terminated lists), and settings. */
    const char *traceparent[MAX_FIELDS];
    const char *tracestate[MAX_FIELDS];
    const char *x_trace_id[MAX_FIELDS];
    bool distrust; /* trust_incoming = false */
    enum ratio ratio;

    /* Expected decision. */
    const char *trace_id;  /* 32 hex digits; NULL: a new random id */
    bool new_uuid_v4;      /* the new id is a version-4 variant-1 UUID */
    const char *parent_id; /* 16 hex digits; NULL: no parent */
    int flags;             /* exact trace-flags */
    enum tracehop_trace_origin origin;
    const char *x_trace_id_out; /* template; NULL: the trace id as a lowercase UUID */
    int x_trace_id_status;      /* enum tracehop_x_trace_id_status or DONT_CARE */
    const char *tracestate_out; /* template; NULL: empty */
    int tracestate_status;      /* enum tracehop_tracestate_status or DONT_CARE */
    enum tracehop_traceparent_error traceparent_error;
    bool traceparent_present;
    bool incoming_valid;
    const char *incoming_trace_id; /* when incoming_valid */
    const char *incoming_parent_id;
    uint8_t incoming_flags;
};

/* What every vector with one valid W3C traceparent (flags 01) expects, trust_incoming true. */
#define CONTINUED                                                                                  \
    .trace_id = W3C_TRACE, .parent_id = W3C_PARENT, .origin = TRACEHOP_ORIGIN_TRACEPARENT,         \
    .traceparent_present = true, .incoming_valid = true, .incoming_trace_id = W3C_TRACE,           \
    .incoming_parent_id = W3C_PARENT

#define ALL_33                                                                                     \
    "a01=1,a02=2,a03=3,a04=4,a05=5,a06=6,a07=7,a08=8,a09=9,a10=10,a11=11,a12=12,"                  \
    "a13=13,a14=14,a15=15,a16=16,a17=17,a18=18,a19=19,a20=20,a21=21,a22=22,a23=23,"                \
    "a24=24,a25=25,a26=26,a27=27,a28=28,a29=29,a30=30,a31=31,a32=32,a33=33"

static const struct hop_vector vectors[] = {
    /* Row 1: valid traceparent, safe X-Trace-ID. */
    {.name = "row 1: traceparent and safe x-trace-id",
     .traceparent = {W3C_VALID},
     .tracestate = {"foo=1,bar=2"},
     .x_trace_id = {"req-abc-123"},
     CONTINUED,
     .flags = 0x01,
     .x_trace_id_out = "req-abc-123",
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_out = "foo=1,bar=2",
     .tracestate_status = TRACEHOP_TS_OK,
     .incoming_flags = 0x01},
    {.name = "row 1: a uuid x-trace-id does not replace the traceparent's trace id",
     .traceparent = {W3C_VALID},
     .x_trace_id = {UUID_UPPER},
     CONTINUED,
     .flags = 0x01,
     .x_trace_id_out = UUID_UPPER,
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = TRACEHOP_TS_ABSENT,
     .incoming_flags = 0x01},
    {.name = "row 1: ows around x-trace-id is not part of it",
     .traceparent = {W3C_VALID},
     .x_trace_id = {" \treq-1 \t"},
     CONTINUED,
     .flags = 0x01,
     .x_trace_id_out = "req-1",
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = TRACEHOP_TS_ABSENT,
     .incoming_flags = 0x01},
    {.name = "row 1: x-trace-id of 128 characters",
     .traceparent = {W3C_VALID},
     .x_trace_id = {"{q*128}"},
     CONTINUED,
     .flags = 0x01,
     .x_trace_id_out = "{q*128}",
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = TRACEHOP_TS_ABSENT,
     .incoming_flags = 0x01},
    {.name = "row 1: w3c tracestate fields combined in order",
     .traceparent = {W3C_TP("00")},
     .tracestate = {"foo=1,bar=2", "rojo=1,congo=2", "baz=3"},
     .x_trace_id = {"abc"},
     CONTINUED,
     .flags = 0x00,
     .x_trace_id_out = "abc",
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_out = "foo=1,bar=2,rojo=1,congo=2,baz=3",
     .tracestate_status = TRACEHOP_TS_OK,
     .incoming_flags = 0x00},

    /* Row 2: valid traceparent, no X-Trace-ID. */
    {.name = "row 2: traceparent without x-trace-id",
     .traceparent = {W3C_VALID},
     CONTINUED,
     .flags = 0x01,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = TRACEHOP_TS_ABSENT,
     .incoming_flags = 0x01},
    {.name = "row 2: w3c traceparent with ows",
     .traceparent = {"\t " W3C_VALID " \t"},
     CONTINUED,
     .flags = 0x01,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = TRACEHOP_TS_ABSENT,
     .incoming_flags = 0x01},
    {.name = "row 2: w3c version cc with trailing data continued",
     .traceparent = {"cc-" W3C_TRACE "-" W3C_PARENT "-01-what-the-future-will-be-like"},
     .tracestate = {"foo=1"},
     CONTINUED,
     .flags = 0x01,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_out = "foo=1",
     .tracestate_status = TRACEHOP_TS_OK,
     .incoming_flags = 0x01},

    /* Row 3: no or invalid traceparent, X-Trace-ID is a UUID (not nil). */
    {.name = "row 3: uppercase uuid x-trace-id",
     .tracestate = {"foo=1"},
     .x_trace_id = {UUID_UPPER},
     .trace_id = UUID_BYTES,
     .flags = 0x01,
     .origin = TRACEHOP_ORIGIN_X_TRACE_ID_UUID,
     .x_trace_id_out = UUID_UPPER,
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = TRACEHOP_TS_DROPPED},
    {.name = "row 3: lowercase v1 uuid",
     .x_trace_id = {"123e4567-e89b-12d3-a456-426614174000"},
     .trace_id = "123e4567e89b12d3a456426614174000",
     .flags = 0x01,
     .origin = TRACEHOP_ORIGIN_X_TRACE_ID_UUID,
     .x_trace_id_out = "123e4567-e89b-12d3-a456-426614174000",
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = DONT_CARE},
    {.name = "row 3: mixed-case v7 uuid",
     .x_trace_id = {"017F22E2-79b0-7CC3-98c4-DC0C0C07398F"},
     .trace_id = "017f22e279b07cc398c4dc0c0c07398f",
     .flags = 0x01,
     .origin = TRACEHOP_ORIGIN_X_TRACE_ID_UUID,
     .x_trace_id_out = "017F22E2-79b0-7CC3-98c4-DC0C0C07398F",
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = DONT_CARE},
    {.name = "row 3: uuid with ows around it",
     .x_trace_id = {" " UUID_LOWER "\t"},
     .trace_id = UUID_BYTES,
     .flags = 0x01,
     .origin = TRACEHOP_ORIGIN_X_TRACE_ID_UUID,
     .x_trace_id_out = UUID_LOWER,
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = DONT_CARE},
    {.name = "row 3: uuid, sampling ratio 0",
     .x_trace_id = {UUID_LOWER},
     .ratio = RATIO_ZERO,
     .trace_id = UUID_BYTES,
     .flags = 0x00,
     .origin = TRACEHOP_ORIGIN_X_TRACE_ID_UUID,
     .x_trace_id_out = UUID_LOWER,
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = DONT_CARE},
    {.name = "row 3: w3c zero trace-id traceparent and uuid",
     .traceparent = {"00-00000000000000000000000000000000-" W3C_PARENT "-01"},
     .tracestate = {"foo=1"},
     .x_trace_id = {UUID_UPPER},
     .trace_id = UUID_BYTES,
     .flags = 0x01,
     .origin = TRACEHOP_ORIGIN_X_TRACE_ID_UUID,
     .x_trace_id_out = UUID_UPPER,
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = TRACEHOP_TS_DROPPED,
     .traceparent_error = TRACEHOP_TP_ZERO_TRACE_ID,
     .traceparent_present = true},
    {.name = "row 3: w3c version ff traceparent and uuid",
     .traceparent = {"ff-" W3C_TRACE "-" W3C_PARENT "-01"},
     .tracestate = {"foo=1"},
     .x_trace_id = {UUID_LOWER},
     .trace_id = UUID_BYTES,
     .flags = 0x01,
     .origin = TRACEHOP_ORIGIN_X_TRACE_ID_UUID,
     .x_trace_id_out = UUID_LOWER,
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = TRACEHOP_TS_DROPPED,
     .traceparent_error = TRACEHOP_TP_VERSION_FF,
     .traceparent_present = true},

    /* Nil UUID: a safe token like any other (row 4). */
    {.name = "nil uuid x-trace-id is row 4",
     .x_trace_id = {"00000000-0000-0000-0000-000000000000"},
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW_KEEP_X_TRACE_ID,
     .x_trace_id_out = "00000000-0000-0000-0000-000000000000",
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = DONT_CARE},

    /* Row 4: no or invalid traceparent, other safe X-Trace-ID. */
    {.name = "row 4: safe token x-trace-id",
     .tracestate = {"foo=1"},
     .x_trace_id = {"order-42"},
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW_KEEP_X_TRACE_ID,
     .x_trace_id_out = "order-42",
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = TRACEHOP_TS_DROPPED},
    {.name = "row 4: sampling ratio 0",
     .x_trace_id = {"order-42"},
     .ratio = RATIO_ZERO,
     .flags = 0x02,
     .origin = TRACEHOP_ORIGIN_NEW_KEEP_X_TRACE_ID,
     .x_trace_id_out = "order-42",
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = DONT_CARE},
    {.name = "row 4: w3c version 00 with trailing data and token",
     .traceparent = {W3C_VALID "-what-the-future-will-be-like"},
     .x_trace_id = {"order-42"},
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW_KEEP_X_TRACE_ID,
     .x_trace_id_out = "order-42",
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = DONT_CARE,
     .traceparent_error = TRACEHOP_TP_BAD_LENGTH,
     .traceparent_present = true},
    {.name = "row 4: uuid without dashes is a token",
     .x_trace_id = {UUID_BYTES},
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW_KEEP_X_TRACE_ID,
     .x_trace_id_out = UUID_BYTES,
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = DONT_CARE},

    /* Row 5: neither. */
    {.name = "row 5: no trace context at all",
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE},
    {.name = "row 5: sampling ratio 0",
     .ratio = RATIO_ZERO,
     .new_uuid_v4 = true,
     .flags = 0x02,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE},
    {.name = "row 5: w3c tracestate without traceparent dropped",
     .tracestate = {"foo=1,bar=2"},
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = TRACEHOP_TS_DROPPED},
    {.name = "row 5: w3c zero parent-id",
     .traceparent = {"00-" W3C_TRACE "-0000000000000000-01"},
     .tracestate = {"foo=1"},
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = TRACEHOP_TS_DROPPED,
     .traceparent_error = TRACEHOP_TP_ZERO_PARENT_ID,
     .traceparent_present = true},
    {.name = "row 5: w3c uppercase traceparent",
     .traceparent = {"00-ABCDEF78901234567890123456789012-" W3C_PARENT "-01"},
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .traceparent_error = TRACEHOP_TP_BAD_TRACE_ID,
     .traceparent_present = true},

    /* Unsafe X-Trace-ID: counts as absent, reported REJECTED, replaced. */
    {.name = "unsafe x-trace-id with traceparent becomes the trace id",
     .traceparent = {W3C_VALID},
     .x_trace_id = {"bad id"},
     CONTINUED,
     .flags = 0x01,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_REJECTED,
     .tracestate_status = DONT_CARE,
     .incoming_flags = 0x01},
    {.name = "unsafe x-trace-id without traceparent becomes a new uuid",
     .x_trace_id = {"bad\"id"},
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_REJECTED,
     .tracestate_status = DONT_CARE},
    {.name = "x-trace-id of 129 characters rejected",
     .x_trace_id = {"{q*129}"},
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_REJECTED,
     .tracestate_status = DONT_CARE},
    {.name = "x-trace-id with CR LF rejected",
     .x_trace_id = {"abc\r\nX-Evil: 1"},
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_REJECTED,
     .tracestate_status = DONT_CARE},
    {.name = "empty x-trace-id rejected",
     .x_trace_id = {""},
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_REJECTED,
     .tracestate_status = DONT_CARE},
    {.name = "two x-trace-id fields rejected",
     .x_trace_id = {"a", "b"},
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_REJECTED,
     .tracestate_status = DONT_CARE},
    {.name = "two identical x-trace-id fields rejected",
     .x_trace_id = {"same", "same"},
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_REJECTED,
     .tracestate_status = DONT_CARE},
    {.name = "two uuid x-trace-id fields are not a uuid",
     .x_trace_id = {UUID_UPPER, UUID_UPPER},
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_REJECTED,
     .tracestate_status = DONT_CARE},
    {.name = "two x-trace-id fields with traceparent",
     .traceparent = {W3C_VALID},
     .x_trace_id = {"a", "b"},
     CONTINUED,
     .flags = 0x01,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_REJECTED,
     .tracestate_status = DONT_CARE,
     .incoming_flags = 0x01},

    /* Duplicate traceparent (w3c test_traceparent_duplicated). */
    {.name = "w3c two traceparent fields start a new trace",
     .traceparent = {"00-12345678901234567890123456789011-" W3C_PARENT "-01",
                     "00-12345678901234567890123456789012-" W3C_PARENT "-01"},
     .tracestate = {"foo=1"},
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = TRACEHOP_TS_DROPPED,
     .traceparent_error = TRACEHOP_TP_DUPLICATE,
     .traceparent_present = true},
    {.name = "two identical traceparent fields",
     .traceparent = {W3C_VALID, W3C_VALID},
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .traceparent_error = TRACEHOP_TP_DUPLICATE,
     .traceparent_present = true},
    {.name = "two traceparent fields and a token",
     .traceparent = {W3C_VALID, W3C_VALID},
     .x_trace_id = {"order-42"},
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW_KEEP_X_TRACE_ID,
     .x_trace_id_out = "order-42",
     .x_trace_id_status = TRACEHOP_XID_ACCEPTED,
     .tracestate_status = DONT_CARE,
     .traceparent_error = TRACEHOP_TP_DUPLICATE,
     .traceparent_present = true},

    /* Flags of a continued trace: sampled never changed, random kept, other bits zeroed. */
    {.name = "flags 00 kept at ratio 1",
     .traceparent = {W3C_TP("00")},
     CONTINUED,
     .flags = 0x00,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .incoming_flags = 0x00},
    {.name = "flags 01 kept at ratio 0",
     .traceparent = {W3C_TP("01")},
     .ratio = RATIO_ZERO,
     CONTINUED,
     .flags = 0x01,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .incoming_flags = 0x01},
    {.name = "flags 00 kept at ratio 0",
     .traceparent = {W3C_TP("00")},
     .ratio = RATIO_ZERO,
     CONTINUED,
     .flags = 0x00,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .incoming_flags = 0x00},
    {.name = "flags 03 kept",
     .traceparent = {W3C_TP("03")},
     CONTINUED,
     .flags = 0x03,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .incoming_flags = 0x03},
    {.name = "flags 02 kept at ratio 1",
     .traceparent = {W3C_TP("02")},
     CONTINUED,
     .flags = 0x02,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .incoming_flags = 0x02},
    {.name = "flags ff become 03",
     .traceparent = {W3C_TP("ff")},
     CONTINUED,
     .flags = 0x03,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .incoming_flags = 0xff},
    {.name = "flags fe become 02",
     .traceparent = {W3C_TP("fe")},
     CONTINUED,
     .flags = 0x02,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .incoming_flags = 0xfe},
    {.name = "flags 04 become 00",
     .traceparent = {W3C_TP("04")},
     CONTINUED,
     .flags = 0x00,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .incoming_flags = 0x04},
    {.name = "flags 81 become 01 at ratio 0",
     .traceparent = {W3C_TP("81")},
     .ratio = RATIO_ZERO,
     CONTINUED,
     .flags = 0x01,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .incoming_flags = 0x81},

    /* trust_incoming = false: always a new trace (last row), X-Trace-ID included. */
    {.name = "distrust: valid traceparent not continued",
     .traceparent = {W3C_VALID},
     .tracestate = {"foo=1"},
     .distrust = true,
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = TRACEHOP_TS_DROPPED,
     .traceparent_present = true,
     .incoming_valid = true,
     .incoming_trace_id = W3C_TRACE,
     .incoming_parent_id = W3C_PARENT,
     .incoming_flags = 0x01},
    {.name = "distrust: ratio 0 applies, not the incoming sampled flag",
     .traceparent = {W3C_VALID},
     .distrust = true,
     .ratio = RATIO_ZERO,
     .new_uuid_v4 = true,
     .flags = 0x02,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .traceparent_present = true,
     .incoming_valid = true,
     .incoming_trace_id = W3C_TRACE,
     .incoming_parent_id = W3C_PARENT,
     .incoming_flags = 0x01},
    {.name = "distrust: safe x-trace-id replaced too",
     .traceparent = {W3C_VALID},
     .x_trace_id = {"req-abc-123"},
     .distrust = true,
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_NOT_TRUSTED,
     .tracestate_status = DONT_CARE,
     .traceparent_present = true,
     .incoming_valid = true,
     .incoming_trace_id = W3C_TRACE,
     .incoming_parent_id = W3C_PARENT,
     .incoming_flags = 0x01},
    {.name = "distrust: uuid x-trace-id not used",
     .x_trace_id = {UUID_LOWER},
     .distrust = true,
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_NOT_TRUSTED,
     .tracestate_status = DONT_CARE},
    {.name = "distrust: invalid traceparent reported",
     .traceparent = {"00-00000000000000000000000000000000-" W3C_PARENT "-01"},
     .distrust = true,
     .new_uuid_v4 = true,
     .flags = 0x03,
     .origin = TRACEHOP_ORIGIN_NEW,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = DONT_CARE,
     .traceparent_error = TRACEHOP_TP_ZERO_TRACE_ID,
     .traceparent_present = true},

    /* tracestate of a continued trace. */
    {.name = "w3c duplicate tracestate key: later one discarded, trace continues",
     .traceparent = {W3C_TP("00")},
     .tracestate = {"foo=1,foo=2"},
     CONTINUED,
     .flags = 0x00,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_out = "foo=1",
     .tracestate_status = TRACEHOP_TS_DEDUPLICATED,
     .incoming_flags = 0x00},
    {.name = "w3c illegal tracestate key dropped, trace continues",
     .traceparent = {W3C_TP("00")},
     .tracestate = {"foo=1", "FOO=2"},
     CONTINUED,
     .flags = 0x00,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = TRACEHOP_TS_INVALID,
     .incoming_flags = 0x00},
    {.name = "w3c 33 tracestate members dropped",
     .traceparent = {W3C_TP("00")},
     .tracestate = {ALL_33},
     CONTINUED,
     .flags = 0x00,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = TRACEHOP_TS_INVALID,
     .incoming_flags = 0x00},
    {.name = "w3c empty tracestate field",
     .traceparent = {W3C_TP("00")},
     .tracestate = {""},
     CONTINUED,
     .flags = 0x00,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_status = TRACEHOP_TS_ABSENT,
     .incoming_flags = 0x00},
    {.name = "w3c empty tracestate field then foo",
     .traceparent = {W3C_TP("00")},
     .tracestate = {"", "foo=1"},
     CONTINUED,
     .flags = 0x00,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_out = "foo=1",
     .tracestate_status = TRACEHOP_TS_OK,
     .incoming_flags = 0x00},
    {.name = "tracestate truncated to 512",
     .traceparent = {W3C_VALID},
     .tracestate = {"a=1,{z*256}={x*256}"},
     CONTINUED,
     .flags = 0x01,
     .x_trace_id_out = W3C_UUID,
     .x_trace_id_status = TRACEHOP_XID_ABSENT,
     .tracestate_out = "a=1",
     .tracestate_status = TRACEHOP_TS_TRUNCATED,
     .incoming_flags = 0x01},
};

static double ratio_value(enum ratio ratio)
{
    switch (ratio) {
    case RATIO_ZERO:
        return 0.0;
    case RATIO_HALF:
        return 0.5;
    case RATIO_ONE:
    default:
        return 1.0;
    }
}

/* The test's own lowercase 8-4-4-4-12 formatter. */
static void uuid_text(const uint8_t id[TRACEHOP_TRACE_ID_SIZE], char out[TRACEHOP_UUID_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    size_t n = 0;

    for (size_t i = 0; i < TRACEHOP_TRACE_ID_SIZE; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[n++] = '-';
        out[n++] = digits[id[i] >> 4];
        out[n++] = digits[id[i] & 0x0f];
    }
    out[n] = '\0';
}

/* Inputs as exactly-sized heap copies, freed by fields_free. */
struct fields {
    struct tracehop_slice slices[MAX_FIELDS];
    size_t count;
};

static void fields_make(struct fields *fields, const char *const *templates)
{
    fields->count = 0;
    while (fields->count < MAX_FIELDS && templates[fields->count] != NULL) {
        size_t len;
        char *expanded = unit_expand(templates[fields->count], &len);

        fields->slices[fields->count].ptr = unit_memdup(expanded, len);
        fields->slices[fields->count].len = len;
        fields->count++;
        free(expanded);
    }
}

static void fields_free(struct fields *fields)
{
    for (size_t i = 0; i < fields->count; i++)
        free((char *)fields->slices[i].ptr);
}

/* If s[from..from+2n) is 2n hex digits (any case), decode them into out. */
static bool hex_at(const char *s, size_t len, size_t from, uint8_t *out, size_t n)
{
    if (len < from + 2 * n)
        return false;
    for (size_t i = 0; i < 2 * n; i++)
        if (unit_hex_digit(s[from + i]) < 0)
            return false;
    for (size_t i = 0; i < n; i++)
        out[i] =
            (uint8_t)(unit_hex_digit(s[from + 2 * i]) << 4 | unit_hex_digit(s[from + 2 * i + 1]));
    return true;
}

/* The 16 bytes of an X-Trace-ID that spells an id (UUID with or without dashes), if any. */
static bool id_in_x_trace_id(const char *s, size_t len, uint8_t out[TRACEHOP_TRACE_ID_SIZE])
{
    char hex[32];
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '-' || s[i] == ' ' || s[i] == '\t')
            continue;
        if (n == sizeof(hex) || unit_hex_digit(s[i]) < 0)
            return false;
        hex[n++] = s[i];
    }
    return n == sizeof(hex) && hex_at(hex, n, 0, out, TRACEHOP_TRACE_ID_SIZE);
}

static void decide(const struct hop_vector *vector, struct fields *traceparent,
                   struct fields *tracestate, struct fields *x_trace_id, struct tracehop_hop *hop)
{
    struct tracehop_hop_input input = {
        .traceparent = traceparent->slices,
        .traceparent_count = traceparent->count,
        .tracestate = tracestate->slices,
        .tracestate_count = tracestate->count,
        .x_trace_id = x_trace_id->slices,
        .x_trace_id_count = x_trace_id->count,
    };
    struct tracehop_hop_settings settings = {
        .trust_incoming = !vector->distrust,
        .sampling_ratio = ratio_value(vector->ratio),
    };

    memset(hop, 0x5a, sizeof(*hop));
    tracehop_hop_decide(&input, &settings, hop);
}

START_TEST(test_vectors)
{
    const struct hop_vector *vector = &vectors[_i];
    const char *name = vector->name;
    struct fields traceparent, tracestate, x_trace_id;
    struct tracehop_hop hop, again;
    uint8_t bytes[TRACEHOP_TRACE_ID_SIZE];
    char uuid[TRACEHOP_UUID_LEN + 1], *expect;
    size_t expect_len;

    fields_make(&traceparent, vector->traceparent);
    fields_make(&tracestate, vector->tracestate);
    fields_make(&x_trace_id, vector->x_trace_id);
    decide(vector, &traceparent, &tracestate, &x_trace_id, &hop);

    /* trace id */
    ck_assert_msg(!unit_is_zero(hop.trace_id, sizeof(hop.trace_id)), "%s: zero trace id", name);
    if (vector->trace_id != NULL) {
        unit_hex_to_bytes(vector->trace_id, bytes, sizeof(bytes));
        ck_assert_msg(memcmp(hop.trace_id, bytes, sizeof(bytes)) == 0, "%s: wrong trace id", name);
    } else {
        for (size_t i = 0; i < traceparent.count; i++)
            if (hex_at(traceparent.slices[i].ptr, traceparent.slices[i].len, 3, bytes, 16))
                ck_assert_msg(memcmp(hop.trace_id, bytes, sizeof(bytes)) != 0,
                              "%s: trace id taken from traceparent %zu", name, i);
        for (size_t i = 0; i < x_trace_id.count; i++)
            if (id_in_x_trace_id(x_trace_id.slices[i].ptr, x_trace_id.slices[i].len, bytes))
                ck_assert_msg(memcmp(hop.trace_id, bytes, sizeof(bytes)) != 0,
                              "%s: trace id taken from x-trace-id %zu", name, i);
        /* A new id is drawn afresh each time. */
        decide(vector, &traceparent, &tracestate, &x_trace_id, &again);
        ck_assert_msg(memcmp(hop.trace_id, again.trace_id, sizeof(bytes)) != 0,
                      "%s: the same new trace id twice", name);
    }
    if (vector->new_uuid_v4) {
        ck_assert_msg(hop.trace_id[6] >> 4 == 4, "%s: version nibble %x", name,
                      hop.trace_id[6] >> 4);
        ck_assert_msg((hop.trace_id[8] & 0xc0) == 0x80, "%s: variant bits of %#x", name,
                      hop.trace_id[8]);
    }

    /* parent and our own span */
    if (vector->parent_id != NULL) {
        ck_assert_msg(hop.has_parent, "%s: no parent", name);
        unit_hex_to_bytes(vector->parent_id, bytes, TRACEHOP_SPAN_ID_SIZE);
        ck_assert_msg(memcmp(hop.parent_span_id, bytes, TRACEHOP_SPAN_ID_SIZE) == 0,
                      "%s: wrong parent span id", name);
    } else {
        ck_assert_msg(!hop.has_parent, "%s: has a parent", name);
    }
    ck_assert_msg(!unit_is_zero(hop.span_id, sizeof(hop.span_id)), "%s: zero span id", name);
    for (size_t i = 0; i < traceparent.count; i++)
        if (hex_at(traceparent.slices[i].ptr, traceparent.slices[i].len, 36, bytes, 8))
            ck_assert_msg(memcmp(hop.span_id, bytes, TRACEHOP_SPAN_ID_SIZE) != 0,
                          "%s: span id is the incoming parent id", name);

    /* What goes upstream: a version-00 traceparent with our span that parses back. */
    {
        char sent[TRACEHOP_TRACEPARENT_LEN];
        struct tracehop_traceparent reparsed;

        ck_assert_uint_eq(tracehop_traceparent_format(sent, hop.trace_id, hop.span_id, hop.flags),
                          TRACEHOP_TRACEPARENT_LEN);
        ck_assert_msg(memcmp(sent, "00-", 3) == 0, "%s: sent %.55s", name, sent);
        ck_assert_msg(tracehop_traceparent_parse(sent, sizeof(sent), &reparsed) == TRACEHOP_TP_OK,
                      "%s: sent an invalid traceparent %.55s", name, sent);
        ck_assert_msg(memcmp(reparsed.trace_id, hop.trace_id, sizeof(hop.trace_id)) == 0 &&
                          memcmp(reparsed.parent_id, hop.span_id, sizeof(hop.span_id)) == 0,
                      "%s: sent other ids", name);
    }

    /* flags and origin */
    ck_assert_msg(hop.flags == vector->flags, "%s: flags %#x, expected %#x", name, hop.flags,
                  vector->flags);
    ck_assert_msg(hop.origin == vector->origin, "%s: origin %d, expected %d", name, (int)hop.origin,
                  (int)vector->origin);

    /* X-Trace-ID */
    ck_assert_msg(hop.x_trace_id_len >= 1 && hop.x_trace_id_len <= TRACEHOP_X_TRACE_ID_MAX,
                  "%s: x_trace_id_len %zu", name, hop.x_trace_id_len);
    ck_assert_msg(strlen(hop.x_trace_id) == hop.x_trace_id_len, "%s: x_trace_id not terminated",
                  name);
    if (vector->x_trace_id_out != NULL) {
        expect = unit_expand(vector->x_trace_id_out, &expect_len);
    } else {
        uuid_text(hop.trace_id, uuid);
        expect = unit_expand(uuid, &expect_len);
    }
    ck_assert_msg(hop.x_trace_id_len == expect_len && strcmp(hop.x_trace_id, expect) == 0,
                  "%s: x_trace_id \"%s\", expected \"%s\"", name, hop.x_trace_id, expect);
    free(expect);
    if (vector->x_trace_id_status != DONT_CARE)
        ck_assert_msg((int)hop.x_trace_id_status == vector->x_trace_id_status,
                      "%s: x_trace_id_status %d, expected %d", name, (int)hop.x_trace_id_status,
                      vector->x_trace_id_status);
    if (hop.x_trace_id_status == TRACEHOP_XID_NOT_TRUSTED) {
        /* The caller's id is kept for the log, exactly as received (OWS trimmed). */
        ck_assert_msg(vector->x_trace_id[0] && vector->x_trace_id[1] == NULL,
                      "%s: NOT_TRUSTED needs one received X-Trace-ID", name);
        ck_assert_str_eq(hop.incoming_x_trace_id, vector->x_trace_id[0]);
    } else {
        ck_assert_str_eq(hop.incoming_x_trace_id, "");
    }

    /* tracestate */
    ck_assert_msg(hop.tracestate_len <= TRACEHOP_TRACESTATE_MAX &&
                      strlen(hop.tracestate) == hop.tracestate_len,
                  "%s: tracestate not terminated or too long", name);
    expect = unit_expand(vector->tracestate_out != NULL ? vector->tracestate_out : "", &expect_len);
    ck_assert_msg(hop.tracestate_len == expect_len && strcmp(hop.tracestate, expect) == 0,
                  "%s: tracestate \"%s\", expected \"%s\"", name, hop.tracestate, expect);
    free(expect);
    if (vector->tracestate_status != DONT_CARE)
        ck_assert_msg((int)hop.tracestate_status == vector->tracestate_status,
                      "%s: tracestate_status %d, expected %d", name, (int)hop.tracestate_status,
                      vector->tracestate_status);

    /* what came in */
    ck_assert_msg(hop.traceparent_error == vector->traceparent_error,
                  "%s: traceparent_error %d (%s), expected %d", name, (int)hop.traceparent_error,
                  tracehop_traceparent_strerror(hop.traceparent_error),
                  (int)vector->traceparent_error);
    ck_assert_msg(hop.traceparent_present == vector->traceparent_present,
                  "%s: traceparent_present %d", name, hop.traceparent_present);
    ck_assert_msg(hop.incoming_valid == vector->incoming_valid, "%s: incoming_valid %d", name,
                  hop.incoming_valid);
    if (vector->incoming_valid) {
        unit_hex_to_bytes(vector->incoming_trace_id, bytes, sizeof(bytes));
        ck_assert_msg(memcmp(hop.incoming.trace_id, bytes, sizeof(bytes)) == 0,
                      "%s: incoming trace id", name);
        unit_hex_to_bytes(vector->incoming_parent_id, bytes, TRACEHOP_SPAN_ID_SIZE);
        ck_assert_msg(memcmp(hop.incoming.parent_id, bytes, TRACEHOP_SPAN_ID_SIZE) == 0,
                      "%s: incoming parent id", name);
        ck_assert_msg(hop.incoming.flags == vector->incoming_flags, "%s: incoming flags %#x", name,
                      hop.incoming.flags);
    }

    fields_free(&traceparent);
    fields_free(&tracestate);
    fields_free(&x_trace_id);
}
END_TEST

/* tracehop's span id: never zero, never the parent's, new on every hop. */
static int compare_span(const void *a, const void *b)
{
    return memcmp(a, b, TRACEHOP_SPAN_ID_SIZE);
}

START_TEST(test_span_ids_fresh)
{
    enum { HOPS = 10000 };
    static const char *const traceparent_templates[] = {W3C_VALID, NULL};
    static const char *const none[] = {NULL};
    const struct hop_vector vector = {.name = "span ids"};
    uint8_t(*spans)[TRACEHOP_SPAN_ID_SIZE] = calloc(HOPS, TRACEHOP_SPAN_ID_SIZE);
    struct fields traceparent, empty;
    uint8_t parent[TRACEHOP_SPAN_ID_SIZE];

    ck_assert_ptr_nonnull(spans);
    unit_hex_to_bytes(W3C_PARENT, parent, sizeof(parent));
    fields_make(&traceparent, _i == 0 ? traceparent_templates : none);
    fields_make(&empty, none);
    for (int i = 0; i < HOPS; i++) {
        struct tracehop_hop hop;

        decide(&vector, &traceparent, &empty, &empty, &hop);
        ck_assert(!unit_is_zero(hop.span_id, sizeof(hop.span_id)));
        ck_assert(memcmp(hop.span_id, parent, sizeof(parent)) != 0);
        memcpy(spans[i], hop.span_id, TRACEHOP_SPAN_ID_SIZE);
    }
    qsort(spans, HOPS, TRACEHOP_SPAN_ID_SIZE, compare_span);
    for (int i = 1; i < HOPS; i++)
        ck_assert_msg(memcmp(spans[i - 1], spans[i], TRACEHOP_SPAN_ID_SIZE) != 0,
                      "span id repeated within %d hops", HOPS);
    fields_free(&traceparent);
    free(spans);
}
END_TEST

/*
 * New traces are sampled by the ratio applied to the trace id: every hop of a legacy chain that
 * shares a UUID X-Trace-ID decides the same, and that decision is tracehop_sample_trace_id's.
 */
START_TEST(test_new_trace_sampling_follows_trace_id)
{
    static const char *const none[] = {NULL};
    const struct hop_vector half = {.name = "ratio 0.5", .ratio = RATIO_HALF};
    uint64_t state = unit_prng_seed(7);
    struct fields empty;
    int sampled = 0;

    fields_make(&empty, none);
    for (int i = 0; i < 2000; i++) {
        uint8_t id[TRACEHOP_TRACE_ID_SIZE];
        char uuid[TRACEHOP_UUID_LEN + 1];
        const char *templates[] = {uuid, NULL};
        struct tracehop_hop first, second, fresh;
        struct fields x_trace_id;

        unit_prng_fill(&state, id, sizeof(id));
        id[0] |= 0x10; /* never nil */
        uuid_text(id, uuid);
        fields_make(&x_trace_id, templates);
        decide(&half, &empty, &empty, &x_trace_id, &first);
        decide(&half, &empty, &empty, &x_trace_id, &second);
        ck_assert_int_eq(first.origin, TRACEHOP_ORIGIN_X_TRACE_ID_UUID);
        ck_assert_mem_eq(first.trace_id, id, sizeof(id));
        ck_assert_int_eq(first.flags, second.flags);
        ck_assert_int_eq((first.flags & TRACEHOP_FLAG_SAMPLED) != 0,
                         tracehop_sample_trace_id(id, 0.5));
        sampled += (first.flags & TRACEHOP_FLAG_SAMPLED) != 0;
        fields_free(&x_trace_id);

        decide(&half, &empty, &empty, &empty, &fresh);
        ck_assert_int_eq(fresh.origin, TRACEHOP_ORIGIN_NEW);
        ck_assert_int_eq((fresh.flags & TRACEHOP_FLAG_SAMPLED) != 0,
                         tracehop_sample_trace_id(fresh.trace_id, 0.5));
        ck_assert_int_ne(fresh.flags & TRACEHOP_FLAG_RANDOM, 0);
    }
    /* Not a constant decision either way. */
    ck_assert_int_gt(sampled, 800);
    ck_assert_int_lt(sampled, 1200);
}
END_TEST

/*
 * The six samplers (OTEL_TRACES_SAMPLER): for a sampled caller, an unsampled caller and no
 * caller, the sampled flag the hop decides, which is the one it forwards and exports by.
 * Parent-based ones keep a trusted caller's flag; with trust_incoming false every request is a
 * root. The trace ids are chosen on either side of the ratio 0.5 (random part 0x80...: kept;
 * 0x7f...: dropped), so that the ratio samplers' decisions are known.
 */
struct sampler_row {
    enum tracehop_sampler sampler;
    bool trust;
    const char *trace_id;              /* incoming (and, for "none", irrelevant) */
    bool from_sampled, from_unsampled; /* a caller's 01 and 00 */
    bool from_none;                    /* no traceparent: a new random trace id */
    bool none_is_ratio;                /* from_none is tracehop_sample_trace_id(new id, 0.5) */
};

#define KEPT    "4bf92f3577b34da6a380000000000001" /* kept at ratio 0.5 */
#define DROPPED "4bf92f3577b34da6a37ffffffffffff0" /* dropped at ratio 0.5 */

static const struct sampler_row sampler_rows[] = {
    {TRACEHOP_SAMPLER_PARENTBASED_TRACEIDRATIO, true, DROPPED, true, false, false, true},
    {TRACEHOP_SAMPLER_PARENTBASED_TRACEIDRATIO, true, KEPT, true, false, false, true},
    {TRACEHOP_SAMPLER_PARENTBASED_ALWAYS_ON, true, DROPPED, true, false, true, false},
    {TRACEHOP_SAMPLER_PARENTBASED_ALWAYS_OFF, true, KEPT, true, false, false, false},
    {TRACEHOP_SAMPLER_TRACEIDRATIO, true, KEPT, true, true, false, true},
    {TRACEHOP_SAMPLER_TRACEIDRATIO, true, DROPPED, false, false, false, true},
    {TRACEHOP_SAMPLER_ALWAYS_ON, true, DROPPED, true, true, true, false},
    {TRACEHOP_SAMPLER_ALWAYS_OFF, true, KEPT, false, false, false, false},
    /* Not trusted: the caller's flag counts for nothing; a new id is drawn every time. */
    {TRACEHOP_SAMPLER_PARENTBASED_ALWAYS_ON, false, KEPT, true, true, true, false},
    {TRACEHOP_SAMPLER_PARENTBASED_ALWAYS_OFF, false, KEPT, false, false, false, false},
};

static bool sampler_decides(const struct sampler_row *row, const char *flags,
                            struct tracehop_hop *hop)
{
    char traceparent[64];
    struct tracehop_slice slice = {traceparent, 0};
    struct tracehop_hop_input input = {0};
    struct tracehop_hop_settings settings = {
        .trust_incoming = row->trust, .sampling_ratio = 0.5, .sampler = row->sampler};

    if (flags) {
        slice.len = (size_t)snprintf(traceparent, sizeof(traceparent), "00-%s-00f067aa0ba902b7-%s",
                                     row->trace_id, flags);
        input.traceparent = &slice;
        input.traceparent_count = 1;
    }
    tracehop_hop_decide(&input, &settings, hop);
    return (hop->flags & TRACEHOP_FLAG_SAMPLED) != 0;
}

START_TEST(test_samplers)
{
    const struct sampler_row *row = &sampler_rows[_i];
    const char *name = tracehop_sampler_name(row->sampler);
    struct tracehop_hop hop;

    ck_assert_msg(sampler_decides(row, "01", &hop) == row->from_sampled, "%s (trust %d): caller 01",
                  name, row->trust);
    ck_assert_int_eq(hop.has_parent, row->trust);
    ck_assert_msg(sampler_decides(row, "03", &hop) == row->from_sampled, "%s: caller 03", name);
    if (row->trust) /* the random flag of a continued trace is kept */
        ck_assert_int_ne(hop.flags & TRACEHOP_FLAG_RANDOM, 0);
    ck_assert_msg(sampler_decides(row, "00", &hop) == row->from_unsampled,
                  "%s (trust %d): caller 00", name, row->trust);
    bool sampled = sampler_decides(row, NULL, &hop);
    bool want = row->none_is_ratio ? tracehop_sample_trace_id(hop.trace_id, 0.5) : row->from_none;
    ck_assert_msg(sampled == want, "%s (trust %d): no caller", name, row->trust);
    ck_assert_int_ne(hop.flags & TRACEHOP_FLAG_RANDOM, 0);
}
END_TEST

/* Every name maps back to its sampler; anything else (other case, blanks) is no sampler. */
START_TEST(test_sampler_names)
{
    static const char *const names[] = {"parentbased_traceidratio",
                                        "parentbased_always_on",
                                        "parentbased_always_off",
                                        "traceidratio",
                                        "always_on",
                                        "always_off"};
    static const char *const bad[] = {"", "ALWAYS_ON", "always_on ", "parentbased",
                                      "jaeger_remote"};
    enum tracehop_sampler sampler;

    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        ck_assert(tracehop_sampler_from_name(names[i], &sampler));
        ck_assert_int_eq(sampler, (int)i);
        ck_assert_str_eq(tracehop_sampler_name(sampler), names[i]);
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        ck_assert_msg(!tracehop_sampler_from_name(bad[i], &sampler), "'%s' accepted", bad[i]);
    ck_assert_str_eq(tracehop_sampler_name((enum tracehop_sampler)99), "unknown");
}
END_TEST

struct sample_vector {
    const char *name;
    const char *trace_id;
    double ratio;
    bool sampled;
};

/* Kept when the last 7 bytes R satisfy R >= (1 - ratio) * 2^56 (OpenTelemetry's rule). */
static const struct sample_vector sample_vectors[] = {
    {"ratio 0, random part zero", "ffffffffffffffffff00000000000000", 0.0, false},
    {"ratio 0, random part max", "000000000000000000ffffffffffffff", 0.0, false},
    {"ratio 1, random part max", "000000000000000000ffffffffffffff", 1.0, true},
    {"ratio 1, all f", "ffffffffffffffffffffffffffffffff", 1.0, true},
    {"ratio 1, random part zero", "ffffffffffffffffff00000000000000", 1.0, true},
    {"ratio 0.5, just below half", "0000000000000000007ffffffffffff0", 0.5, false},
    {"ratio 0.5, exactly half", "00000000000000000080000000000000", 0.5, true},
    {"ratio 0.5, just above half", "0000000000000000008000000000000f", 0.5, true},
    {"ratio 0.5, first nine bytes ignored", "ffffffffffffffffff7ffffffffffff0", 0.5, false},
    {"ratio 0.5, first nine bytes ignored (above)", "ffffffffffffffffff80000000000001", 0.5, true},
    {"ratio 0.25, below three quarters", "abababababababab00bffffffffffff0", 0.25, false},
    {"ratio 0.25, above three quarters", "abababababababab00c0000000000001", 0.25, true},
    {"tiny ratio, random part small", "1234567890123456780000000000000f", 1e-6, false},
    {"tiny ratio, random part max", "123456789012345678ffffffffffffff", 1e-6, true},
    {"ratio 0.99, random part zero", "00000000000000000000000000000000", 0.99, false},
    {"ratio 0.99, random part max", "000000000000000000ffffffffffffff", 0.99, true},
};

START_TEST(test_sample_vectors)
{
    const struct sample_vector *vector = &sample_vectors[_i];
    uint8_t id[TRACEHOP_TRACE_ID_SIZE];

    unit_hex_to_bytes(vector->trace_id, id, sizeof(id));
    ck_assert_msg(tracehop_sample_trace_id(id, vector->ratio) == vector->sampled, "%s: expected %s",
                  vector->name, vector->sampled ? "sampled" : "not sampled");
    ck_assert_msg(tracehop_sample_trace_id(id, vector->ratio) == vector->sampled,
                  "%s: not deterministic", vector->name);
}
END_TEST

/* Ratio 0 never, ratio 1 always, 0.5 about half; monotonic in the ratio. */
START_TEST(test_sample_statistics)
{
    enum { IDS = 100000 };
    static const double ratios[] = {0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0};
    int half = 0, quarter = 0;

    for (int i = 0; i < IDS; i++) {
        uint8_t id[TRACEHOP_TRACE_ID_SIZE];
        bool previous = false;

        tracehop_random_trace_id(id);
        for (size_t r = 0; r < ARRAY_SIZE(ratios); r++) {
            bool sampled = tracehop_sample_trace_id(id, ratios[r]);

            ck_assert_msg(!previous || sampled, "sampled at %g but not at %g", ratios[r - 1],
                          ratios[r]);
            previous = sampled;
        }
        ck_assert(!tracehop_sample_trace_id(id, 0.0));
        ck_assert(tracehop_sample_trace_id(id, 1.0));
        half += tracehop_sample_trace_id(id, 0.5);
        quarter += tracehop_sample_trace_id(id, 0.25);
        ck_assert_int_eq(tracehop_sample_trace_id(id, 0.5), tracehop_sample_trace_id(id, 0.5));
    }
    ck_assert_msg(half >= IDS * 48 / 100 && half <= IDS * 52 / 100, "ratio 0.5 sampled %d of %d",
                  half, IDS);
    ck_assert_msg(quarter >= IDS * 23 / 100 && quarter <= IDS * 27 / 100,
                  "ratio 0.25 sampled %d of %d", quarter, IDS);
}
END_TEST

static Suite *hop_suite(void)
{
    Suite *suite = suite_create("hop");
    TCase *decision = tcase_create("decide");
    TCase *sampling = tcase_create("sampling");

    tcase_add_loop_test(decision, test_vectors, 0, (int)ARRAY_SIZE(vectors));
    tcase_add_loop_test(decision, test_span_ids_fresh, 0, 2);
    tcase_set_timeout(decision, 60);
    suite_add_tcase(suite, decision);

    tcase_add_loop_test(sampling, test_sample_vectors, 0, (int)ARRAY_SIZE(sample_vectors));
    tcase_add_test(sampling, test_new_trace_sampling_follows_trace_id);
    tcase_add_test(sampling, test_sample_statistics);
    tcase_add_loop_test(sampling, test_samplers, 0, (int)ARRAY_SIZE(sampler_rows));
    tcase_add_test(sampling, test_sampler_names);
    tcase_set_timeout(sampling, 60);
    suite_add_tcase(suite, sampling);
    return suite;
}

int main(void)
{
    return unit_run(hop_suite());
}
