/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * access_log.redact: the query parameters and request headers whose values tracehop never
 * records, in the access log (`query`, `request_headers`) and in spans (`url.query`) alike, so
 * that a token in a URL or a header leaves the process by neither way.
 */
#include <stdbool.h>
#include <stddef.h>

struct config;
struct strbuf;

#define REDACTED "[REDACTED]"

/* Whether the config redacts anything (else the query is recorded as received). */
bool redact_enabled(const struct config *c);

/* Whether the query parameter or header `name` (len bytes, compared raw and
 * case-insensitively) is listed. */
bool redact_is_listed(const struct config *c, const char *name, size_t len);

/* Append the query of len bytes (without '?') to out with the listed parameters' values
 * replaced. */
void redact_query(const struct config *c, const char *q, size_t len, struct strbuf *out);
