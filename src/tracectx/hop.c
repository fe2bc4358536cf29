/* SPDX-License-Identifier: MIT */
/*
 * The hop decision: from the trace-context fields of one inbound request to everything this hop
 * sends and logs (the table in docs/trace-context.md, "1. The decision"). It is the only place
 * that knows the table; the daemon just copies the result into headers and the access log.
 *
 * The legacy rule is what lets W3C services and X-Trace-ID-only services share one trace: a
 * UUID X-Trace-ID is the trace id written differently, so a hop that lost its traceparent
 * (because a legacy app forwarded only X-Trace-ID) continues the same trace id, and the next
 * W3C hop derives the same UUID back from it.
 */
#include <math.h>
#include <string.h>

#include "tracehop/tracectx.h"
#include "bytes.h"
#include "ows.h"

bool tracehop_sample_trace_id(const uint8_t trace_id[TRACEHOP_TRACE_ID_SIZE], double ratio)
{
    uint64_t r = 0;

    if (!(ratio > 0.0)) /* also NaN */
        return false;
    if (ratio >= 1.0)
        return true;
    /* Integers, not doubles, so ids near the threshold land on a fixed side. Same rule as
     * OpenTelemetry's consistent probability sampling: keep R >= (1 - ratio) * 2^56. */
    uint64_t threshold = (uint64_t)((1.0 - ratio) * 0x1p56);
    for (size_t i = TRACEHOP_TRACE_ID_SIZE - 7; i < TRACEHOP_TRACE_ID_SIZE; i++)
        r = r << 8 | trace_id[i];
    return r >= threshold;
}

static const char *const sampler_names[] = {
    [TRACEHOP_SAMPLER_PARENTBASED_TRACEIDRATIO] = "parentbased_traceidratio",
    [TRACEHOP_SAMPLER_PARENTBASED_ALWAYS_ON] = "parentbased_always_on",
    [TRACEHOP_SAMPLER_PARENTBASED_ALWAYS_OFF] = "parentbased_always_off",
    [TRACEHOP_SAMPLER_TRACEIDRATIO] = "traceidratio",
    [TRACEHOP_SAMPLER_ALWAYS_ON] = "always_on",
    [TRACEHOP_SAMPLER_ALWAYS_OFF] = "always_off",
};

const char *tracehop_sampler_name(enum tracehop_sampler sampler)
{
    if ((size_t)sampler >= sizeof(sampler_names) / sizeof(sampler_names[0]))
        return "unknown";
    return sampler_names[sampler];
}

bool tracehop_sampler_from_name(const char *name, enum tracehop_sampler *ret)
{
    for (size_t i = 0; i < sizeof(sampler_names) / sizeof(sampler_names[0]); i++)
        if (strcmp(name, sampler_names[i]) == 0) {
            *ret = (enum tracehop_sampler)i;
            return true;
        }
    return false;
}

/*
 * The sampled flag this hop forwards, echoes and exports by. A parent-based sampler keeps a
 * continued trace's flag, so that every hop of a trace agrees with the first; a root is sampled
 * by the rest of the sampler's name. Ratios look at the trace id only, so hops that share a
 * trace id and a ratio agree without talking to each other.
 */
static bool decide_sampled(const struct tracehop_hop_settings *settings,
                           const struct tracehop_hop *ret)
{
    bool continued = ret->origin == TRACEHOP_ORIGIN_TRACEPARENT;

    switch (settings->sampler) {
    case TRACEHOP_SAMPLER_ALWAYS_ON:
        return true;
    case TRACEHOP_SAMPLER_ALWAYS_OFF:
        return false;
    case TRACEHOP_SAMPLER_TRACEIDRATIO:
        return tracehop_sample_trace_id(ret->trace_id, settings->sampling_ratio);
    case TRACEHOP_SAMPLER_PARENTBASED_ALWAYS_ON:
        return continued ? (ret->incoming.flags & TRACEHOP_FLAG_SAMPLED) != 0 : true;
    case TRACEHOP_SAMPLER_PARENTBASED_ALWAYS_OFF:
        return continued ? (ret->incoming.flags & TRACEHOP_FLAG_SAMPLED) != 0 : false;
    case TRACEHOP_SAMPLER_PARENTBASED_TRACEIDRATIO:
    default:
        return continued ? (ret->incoming.flags & TRACEHOP_FLAG_SAMPLED) != 0
                         : tracehop_sample_trace_id(ret->trace_id, settings->sampling_ratio);
    }
}

static void decide_traceparent(const struct tracehop_hop_input *input, struct tracehop_hop *ret)
{
    ret->traceparent_present = input->traceparent_count > 0;
    if (input->traceparent_count == 0)
        return;
    if (input->traceparent_count > 1) {
        ret->traceparent_error = TRACEHOP_TP_DUPLICATE;
        return;
    }
    ret->traceparent_error = tracehop_traceparent_parse(input->traceparent[0].ptr,
                                                        input->traceparent[0].len, &ret->incoming);
    ret->incoming_valid = ret->traceparent_error == TRACEHOP_TP_OK;
}

/* Copy a single safe X-Trace-ID (OWS trimmed) into ret; several fields count as unsafe. */
static void decide_x_trace_id_status(const struct tracehop_hop_input *input,
                                     struct tracehop_hop *ret)
{
    if (input->x_trace_id_count == 0) {
        ret->x_trace_id_status = TRACEHOP_XID_ABSENT;
        return;
    }
    const char *value = input->x_trace_id[0].ptr;
    size_t len = input->x_trace_id[0].len;
    if (input->x_trace_id_count > 1 || !tracehop_x_trace_id_is_safe(value, len)) {
        ret->x_trace_id_status = TRACEHOP_XID_REJECTED;
        return;
    }
    tracectx_trim_ows(&value, &len);
    memcpy(ret->x_trace_id, value, len);
    ret->x_trace_id[len] = '\0';
    ret->x_trace_id_len = len;
    ret->x_trace_id_status = TRACEHOP_XID_ACCEPTED;
}

static void set_x_trace_id_from_trace_id(struct tracehop_hop *ret)
{
    ret->x_trace_id_len = tracehop_uuid_format(ret->x_trace_id, ret->trace_id);
    ret->x_trace_id[ret->x_trace_id_len] = '\0';
}

static void continue_incoming_trace(const struct tracehop_hop_input *input,
                                    struct tracehop_hop *ret)
{
    memcpy(ret->trace_id, ret->incoming.trace_id, TRACEHOP_TRACE_ID_SIZE);
    memcpy(ret->parent_span_id, ret->incoming.parent_id, TRACEHOP_SPAN_ID_SIZE);
    ret->has_parent = true;
    ret->flags = ret->incoming.flags & TRACEHOP_FLAGS_KNOWN;
    ret->origin = TRACEHOP_ORIGIN_TRACEPARENT;
    ret->tracestate_status = tracehop_tracestate_normalize(
        input->tracestate, input->tracestate_count, ret->tracestate, &ret->tracestate_len);
    if (ret->x_trace_id_status != TRACEHOP_XID_ACCEPTED)
        set_x_trace_id_from_trace_id(ret);
}

static void start_new_trace(const struct tracehop_hop_input *input,
                            const struct tracehop_hop_settings *settings, struct tracehop_hop *ret)
{
    bool keep_x_trace_id =
        settings->trust_incoming && ret->x_trace_id_status == TRACEHOP_XID_ACCEPTED;
    uint8_t uuid[TRACEHOP_TRACE_ID_SIZE];

    ret->tracestate_status = input->tracestate_count > 0 ? TRACEHOP_TS_DROPPED : TRACEHOP_TS_ABSENT;
    if (keep_x_trace_id && tracehop_uuid_parse(ret->x_trace_id, ret->x_trace_id_len, uuid) &&
        !tracectx_is_all_zero(uuid, sizeof(uuid))) {
        memcpy(ret->trace_id, uuid, TRACEHOP_TRACE_ID_SIZE);
        ret->origin = TRACEHOP_ORIGIN_X_TRACE_ID_UUID;
        ret->flags = 0; /* a caller's UUID: we cannot vouch for its randomness */
    } else if (keep_x_trace_id) {
        tracehop_random_trace_id(ret->trace_id);
        ret->origin = TRACEHOP_ORIGIN_NEW_KEEP_X_TRACE_ID;
        ret->flags = TRACEHOP_FLAG_RANDOM;
    } else {
        if (ret->x_trace_id_status == TRACEHOP_XID_ACCEPTED) {
            /* trust_incoming is false: the caller's id is logged, not continued. */
            memcpy(ret->incoming_x_trace_id, ret->x_trace_id, ret->x_trace_id_len + 1);
            ret->x_trace_id_status = TRACEHOP_XID_NOT_TRUSTED;
        }
        /* The trace id doubles as the X-Trace-ID UUID, so it is a proper UUIDv4. */
        tracehop_random_uuid_v4(ret->trace_id);
        set_x_trace_id_from_trace_id(ret);
        ret->origin = TRACEHOP_ORIGIN_NEW;
        ret->flags = TRACEHOP_FLAG_RANDOM;
    }
}

void tracehop_hop_decide(const struct tracehop_hop_input *input,
                         const struct tracehop_hop_settings *settings, struct tracehop_hop *ret)
{
    ret->has_parent = false;
    ret->x_trace_id_len = 0;
    ret->x_trace_id[0] = '\0';
    ret->tracestate_len = 0;
    ret->tracestate[0] = '\0';
    ret->traceparent_error = TRACEHOP_TP_OK;
    ret->incoming_valid = false;
    ret->incoming_x_trace_id[0] = '\0';

    decide_traceparent(input, ret);
    decide_x_trace_id_status(input, ret);
    if (ret->incoming_valid && settings->trust_incoming)
        continue_incoming_trace(input, ret);
    else
        start_new_trace(input, settings, ret);
    if (decide_sampled(settings, ret))
        ret->flags |= TRACEHOP_FLAG_SAMPLED;
    else
        ret->flags &= ~TRACEHOP_FLAG_SAMPLED;

    do
        tracehop_random_span_id(ret->span_id);
    while (ret->has_parent &&
           memcmp(ret->span_id, ret->parent_span_id, TRACEHOP_SPAN_ID_SIZE) == 0);
}
