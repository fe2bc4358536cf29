/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Every answer tracehop gives itself instead of the upstream's - the HTTP status, the error code
 * of the JSON body, the access-log outcome and the message - decided here and nowhere else
 * (docs/security.md, and `outcome` in docs/access-log.md "Always present"). Pure: facts in, a
 * refusal out.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tracehop/tracectx.h"
#include "proxy/upstream.h"

struct refusal {
    unsigned status; /* 0 = no refusal */
    const char *code;
    const char *outcome;
    const char *message;
};

/* What the inbound head showed, as the request check needs it. */
struct request_head_facts {
    bool out_of_memory; /* a copy of the method or target failed */
    const char *method; /* as received (NUL-terminated) */
    const char *version;
    const char *target; /* the raw request target */
    size_t target_len;
    bool too_large;  /* the request line and fields exceed the header limit */
    bool bad_layout; /* obs-fold or NUL: bytes of the head missing from every field */
    bool bad_name, bad_value;
    size_t host_count;
    size_t content_length_count;
    bool content_length_conflict; /* several, with different values */
    const char *content_length;   /* the value of the last one */
    size_t content_length_len;
    size_t transfer_encoding_count;
    bool transfer_encoding_chunked; /* the last one is exactly "chunked" */
};

struct request_limits {
    size_t max_header_bytes;
    size_t max_body_bytes; /* 0 = unlimited */
};

/* The framing the head announces, valid when request_check refused nothing. */
struct request_framing {
    bool has_body;
    int64_t content_length; /* -1 = chunked */
};

/*
 * The first refusal of a request head, in a fixed order (the first reason wins): resources,
 * size limits, syntax, Host, message framing (RFC 9112 section 6), then the body limit. Writes
 * the framing either way. Returns true when the head is refused (*ret filled).
 */
bool request_check(const struct request_head_facts *facts, const struct request_limits *limits,
                   struct request_framing *framing, struct refusal *ret);

/* Content-Length: 1*DIGIT with optional surrounding whitespace, at most 18 digits. */
bool request_parse_content_length(const char *v, size_t n, int64_t *ret);

extern const struct refusal refusal_no_route;       /* 404: no route matches */
extern const struct refusal refusal_body_too_large; /* 413: a chunked body over the limit */
extern const struct refusal refusal_head_timeout;   /* 408: the head came too slowly */
extern const struct refusal refusal_upstream_setup; /* 502: the transfer could not start */
extern const struct refusal refusal_out_of_memory;  /* 500 */

/* What a request head says about a protocol upgrade (RFC 9110 section 7.8). */
struct request_upgrade_facts {
    bool http11;                          /* an HTTP/1.0 request's Upgrade is ignored */
    const struct tracehop_slice *upgrade; /* the Upgrade field values */
    size_t upgrade_count;
    const struct tracehop_slice *connection; /* the Connection field values */
    size_t connection_count;
};

/*
 * Whether the request asks to switch protocols in a way tracehop must refuse rather than
 * silently drop: HTTP/1.1, Connection names "upgrade", and Upgrade offers a protocol other than
 * h2c (cleartext HTTP/2, which a client offers and expects to be ignored when unsupported). The
 * first such protocol (its name and version as sent) goes to *protocol. Upgrades are not
 * supported yet; this is the one place that decides what counts as one.
 */
bool request_wants_upgrade(const struct request_upgrade_facts *facts,
                           struct tracehop_slice *protocol);

extern const struct refusal refusal_upgrade; /* 501: a protocol upgrade (WebSocket ...) */

/* A failed upstream transfer (error != UPSTREAM_OK): 502 or 504. */
struct refusal refusal_for_upstream(enum upstream_error error);

/* The outcome of a request libmicrohttpd refused itself, by the status it answered (0 = none,
 * the client went away). */
const char *refusal_outcome_of_library_status(unsigned status, bool head_complete);
