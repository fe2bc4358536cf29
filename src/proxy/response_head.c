/* SPDX-License-Identifier: MIT */
/*
 * The upstream response head parser (see response_head.h for the rules). Every check runs on
 * the line as received, before anything is copied, so a refused line leaves no trace.
 */
#include <string.h>
#include <strings.h>

#include "proxy/response_head.h"
#include "common/arena.h"
#include "common/http_syntax.h"

void response_head_init(struct response_head *head)
{
    head->status = 0;
    head->content_length = -1;
    head->count = 0;
    head->bytes = 0;
    head->allow_switch = false;
}

void response_head_init_upgrade(struct response_head *head)
{
    response_head_init(head);
    head->allow_switch = true;
}

/* "HTTP/1.1 200 ..." -> 200; 0 when the three digits after the first space are missing. */
static long parse_status_code(const char *line, size_t n)
{
    const char *sp = memchr(line, ' ', n);
    if (!sp || (size_t)(sp - line) + 4 > n)
        return 0;
    long code = 0;
    for (int i = 1; i <= 3; i++) {
        char c = sp[i];
        if (c < '0' || c > '9')
            return 0;
        code = code * 10 + (c - '0');
    }
    return code;
}

enum response_line response_head_feed(struct response_head *head, const char *line, size_t n,
                                      struct arena *arena)
{
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        long status = parse_status_code(line, n);
        if (status < 100)
            return RESPONSE_LINE_INVALID;
        bool allow_switch = head->allow_switch;
        response_head_init(head); /* a new head: a 1xx one before it is forgotten */
        head->allow_switch = allow_switch;
        head->status = status;
        return RESPONSE_LINE_OK;
    }
    size_t len = n;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len == 0) {
        if (head->status == 101)
            return head->allow_switch ? RESPONSE_LINE_COMPLETE
                                      : RESPONSE_LINE_INVALID; /* no upgrade asked for */
        return head->status >= 200 ? RESPONSE_LINE_COMPLETE : RESPONSE_LINE_OK;
    }
    if (head->bytes + n > RESPONSE_HEAD_MAX_BYTES || head->count == RESPONSE_HEAD_MAX_FIELDS)
        return RESPONSE_LINE_INVALID;
    if (line[0] == ' ' || line[0] == '\t')
        return RESPONSE_LINE_INVALID; /* obsolete line folding */
    const char *colon = memchr(line, ':', len);
    if (!colon || !http_is_token(line, (size_t)(colon - line)))
        return RESPONSE_LINE_INVALID;
    size_t name_len = (size_t)(colon - line);
    const char *value = colon + 1;
    size_t value_len = len - name_len - 1;
    while (value_len > 0 && (*value == ' ' || *value == '\t'))
        value++, value_len--;
    while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    if (!http_is_field_value(value, value_len))
        return RESPONSE_LINE_INVALID;
    if (http_name_equals(line, name_len, "Transfer-Encoding") &&
        !(value_len == 7 && strncasecmp(value, "chunked", 7) == 0))
        return RESPONSE_LINE_INVALID;
    int64_t content_length = head->content_length;
    if (http_name_equals(line, name_len, "Content-Length")) {
        int64_t cl;
        if (!http_parse_length(value, value_len, &cl) ||
            (head->content_length >= 0 && head->content_length != cl))
            return RESPONSE_LINE_INVALID;
        content_length = cl;
    }
    char *copy = arena_alloc(arena, name_len + value_len + 2);
    if (!copy)
        return RESPONSE_LINE_INVALID;
    memcpy(copy, line, name_len);
    copy[name_len] = '\0';
    memcpy(copy + name_len + 1, value, value_len);
    copy[name_len + 1 + value_len] = '\0';
    head->fields[head->count++] = (struct response_header){
        .name = copy,
        .name_len = name_len,
        .value = copy + name_len + 1,
    };
    head->bytes += n;
    head->content_length = content_length;
    return RESPONSE_LINE_OK;
}
