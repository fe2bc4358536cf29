/* SPDX-License-Identifier: MIT */
/*
 * The loader's error reports and its one string helper (config/config_internal.h). An error is
 * one line, "key.path: reason", written into the caller's CONFIG_ERROR_MAX-byte buffer. Messages
 * quote what the user wrote (key names, hosts, URLs), which can be longer than the buffer: one
 * that does not fit keeps its beginning (the key path) and its end (the reason), with " ... "
 * between, instead of losing the reason (found by fuzz-config: a 340-byte header name pushed the
 * reason out). Running out of memory is reported as "out of memory" with -ENOMEM, never by
 * stopping the process: the loader also runs on SIGHUP in a live daemon, which must keep serving
 * its previous config.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"

/* Back from position i to the start of a UTF-8 character, so that a cut never splits one. */
static size_t utf8_boundary(const char *s, size_t i)
{
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

int config_nomem(char *error)
{
    snprintf(error, CONFIG_ERROR_MAX, "out of memory");
    return -ENOMEM;
}

int config_fail(char *error, const char *fmt, ...)
{
    static const char gap[] = " ... ";
    char line[CONFIG_ERROR_MAX]; /* not error itself: an argument may point into it */
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) {
        snprintf(error, CONFIG_ERROR_MAX, "invalid value (cannot be shown)");
        return -EINVAL;
    }
    size_t len = (size_t)n;
    if (len < CONFIG_ERROR_MAX) {
        memcpy(error, line, len + 1);
        return -EINVAL;
    }

    char *full = malloc(len + 1);
    if (!full)
        return config_nomem(error);
    va_start(ap, fmt);
    vsnprintf(full, len + 1, fmt, ap);
    va_end(ap);
    size_t keep = (CONFIG_ERROR_MAX - sizeof(gap)) / 2; /* each side */
    size_t head = utf8_boundary(full, keep);
    size_t tail = len - keep; /* forward to a character start: at most keep bytes kept */
    while (tail < len && ((unsigned char)full[tail] & 0xC0) == 0x80)
        tail++;
    memcpy(error, full, head);
    memcpy(error + head, gap, sizeof(gap) - 1);
    memcpy(error + head + sizeof(gap) - 1, full + tail, len - tail + 1);
    free(full);
    return -EINVAL;
}

int config_message_add(struct config *c, int kind, char *error, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;

    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return config_nomem(error);
    struct config_message *grown =
        realloc(c->messages, (c->messages_count + 1) * sizeof(*c->messages));
    if (!grown) {
        free(text);
        return config_nomem(error);
    }
    c->messages = grown;
    c->messages[c->messages_count++] =
        (struct config_message){.kind = (enum config_message_kind)kind, .text = text};
    return 0;
}

int config_set_string(char **slot, const char *value, char *error)
{
    char *copy = strdup(value);

    if (!copy)
        return config_nomem(error);
    free(*slot);
    *slot = copy;
    return 0;
}
