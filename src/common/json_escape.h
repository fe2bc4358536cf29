/* SPDX-License-Identifier: MIT */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/*
 * Escape n bytes of s as the inside of a JSON string into out, which must hold 6 * n bytes.
 * Returns the number of bytes written (no NUL).
 *
 * Every control character is escaped: C0 (0x00-0x1f), DEL (0x7f) and the C1 range
 * U+0080-U+009F, as \uXXXX (or \n, \t, \r, \b, \f where JSON has a short form); '"' and '\\'
 * get their short escapes. Valid UTF-8 otherwise passes through unchanged. Each byte that is not
 * part of valid UTF-8 (overlong forms and surrogates included) becomes U+FFFD and *ret_lossy is
 * set (if not NULL), so the caller can also record the raw bytes; the output is always valid
 * UTF-8 JSON that jansson and jq accept.
 */
size_t json_escape(char *out, const char *s, size_t n, bool *ret_lossy);

/* True if the n bytes of s are valid UTF-8 by the same rule: no overlong forms, no surrogates,
 * nothing above U+10FFFF. */
bool utf8_is_valid(const char *s, size_t n);
