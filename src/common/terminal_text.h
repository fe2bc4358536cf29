/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Text for a person's terminal that may hold what a user typed (a route name, a key, a flag):
 * control characters are shown, not obeyed, so that a config cannot move the cursor, recolour
 * the screen or forge another line of output.
 */
#include <stddef.h>
#include <stdio.h>

/*
 * Write s to out with every C0 control character and DEL as "\xHH", and every C1 control
 * character in its UTF-8 form (U+0080-U+009F, which UTF-8 terminals act on) as "\u00HH". Other
 * bytes, UTF-8 included, pass unchanged.
 */
void terminal_text_write(FILE *out, const char *s);
