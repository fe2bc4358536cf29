/* SPDX-License-Identifier: MIT */
#include <string.h>
#include <strings.h>

#include "observe/redact.h"
#include "config/config.h"
#include "common/strbuf.h"

bool redact_is_listed(const struct config *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->access_log_redact_count; i++)
        if (strlen(c->access_log_redact[i]) == len &&
            strncasecmp(c->access_log_redact[i], name, len) == 0)
            return true;
    return false;
}

bool redact_enabled(const struct config *c)
{
    return c->access_log_redact_count > 0;
}

void redact_query(const struct config *c, const char *q, size_t len, struct strbuf *out)
{
    size_t i = 0;

    for (;;) {
        const char *amp = memchr(q + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - q) : len;
        const char *eq = memchr(q + i, '=', end - i);
        size_t name_end = eq ? (size_t)(eq - q) : end;
        if (eq && redact_is_listed(c, q + i, name_end - i)) {
            strbuf_append(out, q + i, name_end - i + 1);
            strbuf_append_str(out, REDACTED);
        } else {
            strbuf_append(out, q + i, end - i);
        }
        if (!amp)
            break;
        strbuf_append_char(out, '&');
        i = end + 1;
    }
}
