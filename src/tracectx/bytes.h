/* SPDX-License-Identifier: MIT */
#pragma once
/* Small byte helpers shared inside the trace-context library. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* All-zero ids are invalid in W3C Trace Context; branch-free over the whole id. */
static inline bool tracectx_is_all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}
