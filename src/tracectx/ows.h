/* SPDX-License-Identifier: MIT */
#pragma once
/* Optional whitespace (RFC 9110 OWS: spaces and horizontal tabs) around header values. */
#include <stddef.h>

static inline int tracectx_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Narrow [*value, *value + *len) to exclude leading and trailing OWS. */
static inline void tracectx_trim_ows(const char **value, size_t *len)
{
    while (*len > 0 && tracectx_is_ows(**value)) {
        (*value)++;
        (*len)--;
    }
    while (*len > 0 && tracectx_is_ows((*value)[*len - 1]))
        (*len)--;
}
