/* SPDX-License-Identifier: MIT */
/*
 * The upgrade answer parser (see upgrade_handshake.h). Every byte goes through the fixed line
 * buffer, whole chunk or one byte at a time alike, so that the verdict never depends on how the
 * upstream's bytes were split into reads.
 */
#include <string.h>

#include "proxy/upgrade_handshake.h"
#include "common/http_syntax.h"

void upgrade_handshake_init(struct upgrade_handshake *hs, const char *protocol, size_t protocol_len)
{
    response_head_init_upgrade(&hs->head);
    hs->protocol = protocol;
    hs->protocol_len = protocol_len;
    hs->result = UPGRADE_HANDSHAKE_MORE;
    hs->reason = NULL;
    hs->switched = false;
    hs->want_status = true;
    hs->total = 0;
    hs->line_len = 0;
}

/* "HTTP/1.x NNN" then SP or the line's end (RFC 9112 section 4); NNN in 100-599. */
static bool is_status_line(const char *line, size_t n)
{
    size_t len = n;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[7] < '0' || line[7] > '9' ||
        line[8] != ' ')
        return false;
    for (size_t i = 9; i < 12; i++)
        if (line[i] < '0' || line[i] > '9')
            return false;
    if (line[9] < '1' || line[9] > '5')
        return false;
    return len == 12 || line[12] == ' ';
}

/* Nothing but CR and LF: the blank line ending a head, as response_head_feed reads it. */
static bool is_blank(const char *line, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (line[i] != '\r' && line[i] != '\n')
            return false;
    return true;
}

static bool some_field_lists(const struct response_head *head, const char *name, const char *token,
                             size_t token_len)
{
    for (size_t i = 0; i < head->count; i++) {
        const struct response_header *f = &head->fields[i];
        if (http_name_equals(f->name, f->name_len, name) &&
            http_connection_lists(f->value, strlen(f->value), token, token_len))
            return true;
    }
    return false;
}

static enum upgrade_handshake_result fail(struct upgrade_handshake *hs, const char *reason)
{
    hs->result = UPGRADE_HANDSHAKE_INVALID;
    hs->reason = reason;
    return hs->result;
}

/* One whole line (ending in LF) of hs->line. */
static enum upgrade_handshake_result take_line(struct upgrade_handshake *hs, struct arena *arena)
{
    const char *line = hs->line;
    size_t n = hs->line_len;
    bool status_line = n >= 5 && memcmp(line, "HTTP/", 5) == 0;

    if (hs->want_status && !is_status_line(line, n))
        return fail(hs, "no status line HTTP/1.x 100-599 where a head starts");
    if (!hs->want_status && status_line)
        return fail(hs, "a status line inside a head");
    hs->want_status = false;
    switch (response_head_feed(&hs->head, line, n, arena)) {
    case RESPONSE_LINE_INVALID:
        return fail(hs, status_line ? "bad status line" : "bad header field");
    case RESPONSE_LINE_COMPLETE:
        hs->result = UPGRADE_HANDSHAKE_COMPLETE;
        hs->switched = hs->head.status == 101 &&
                       some_field_lists(&hs->head, "Upgrade", hs->protocol, hs->protocol_len) &&
                       some_field_lists(&hs->head, "Connection", "upgrade", 7);
        return hs->result;
    case RESPONSE_LINE_OK:
        /* The blank line ending a 1xx head: the next line starts another head. */
        if (is_blank(line, n))
            hs->want_status = true;
        return UPGRADE_HANDSHAKE_MORE;
    }
    return fail(hs, "unknown line verdict");
}

enum upgrade_handshake_result upgrade_handshake_feed(struct upgrade_handshake *hs, const char *data,
                                                     size_t n, struct arena *arena, size_t *used)
{
    size_t i = 0;

    *used = 0;
    if (hs->result != UPGRADE_HANDSHAKE_MORE)
        return hs->result;
    while (i < n) {
        const char *nl = memchr(data + i, '\n', n - i);
        size_t take = nl ? (size_t)(nl - (data + i)) + 1 : n - i;
        if (hs->line_len + take > UPGRADE_HANDSHAKE_MAX_LINE) {
            *used = i;
            return fail(hs, "a head line too long");
        }
        if (hs->total + take > RESPONSE_HEAD_MAX_BYTES) {
            *used = i;
            return fail(hs, "the head too long");
        }
        memcpy(hs->line + hs->line_len, data + i, take);
        hs->line_len += take;
        hs->total += take;
        i += take;
        if (!nl)
            break;
        enum upgrade_handshake_result r = take_line(hs, arena);
        hs->line_len = 0;
        if (r != UPGRADE_HANDSHAKE_MORE) {
            *used = i;
            return r;
        }
    }
    *used = n;
    return UPGRADE_HANDSHAKE_MORE;
}
