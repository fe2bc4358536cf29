/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A finished request as an OpenTelemetry span, in OTLP's JSON encoding (the protobuf JSON
 * mapping with OTLP's deviations: ids as lowercase hex, enums as integers, 64-bit integers as
 * decimal strings). What a span holds and why: docs/tracing.md, "What a span contains".
 *
 * Pure text building: no I/O, no clock. The exporter wraps the spans of a batch in the body
 * that span_encode_body_open starts and SPAN_ENCODE_BODY_CLOSE ends.
 */
#include <stddef.h>

struct config;
struct request_summary;
struct strbuf;

/* Attribute values from the request (path, query, user agent, Host) longer than this are cut
 * (at a character boundary), so that a span's size is bounded whatever the client sent. */
#define SPAN_ATTRIBUTE_VALUE_MAX 2048

/* Ends the body span_encode_body_open started: the spans array, the scope, the resource. */
#define SPAN_ENCODE_BODY_CLOSE "]}]}]}"

/*
 * Start an ExportTraceServiceRequest: one resource (service.name from service_name,
 * service.instance.id, service.version, telemetry.sdk.*, then otlp.resource_attributes, which
 * replace tracehop's own value of a key they name; a service.name among them is ignored, since
 * service_name is the one place the name is set) and tracehop's instrumentation scope, up to
 * and including `"spans":[`. `version` is tracehop's.
 */
void span_encode_body_open(struct strbuf *b, const struct config *c, const char *instance_id,
                           const char *version);

/* Append the Span object of one finished request (kind SERVER) to b. */
void span_encode(struct strbuf *b, const struct request_summary *s);
