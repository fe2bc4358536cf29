/* SPDX-License-Identifier: MIT */
/* Control characters made visible for a terminal (common/terminal_text.h). */
#include "common/terminal_text.h"

void terminal_text_write(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\x%02x", *p);
            p++;
        } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            fprintf(out, "\\u%04x", p[1]);
            p += 2;
        } else {
            fputc(*p, out);
            p++;
        }
    }
}
