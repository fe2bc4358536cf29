/* SPDX-License-Identifier: MIT */
/*
 * The header filters of both directions (see forward_headers.h). The upstream request's lines
 * are counted first, so the array is one arena allocation; each line is one more.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proxy/forward_headers.h"
#include "config/config.h"
#include "common/arena.h"
#include "common/http_syntax.h"
#include "proxy/response_head.h"

#define MAX_FORWARDED_FOR_LEN 1024
/* Lines tracehop adds besides the client's and the route's: traceparent, tracestate, the
 * request id, X-Forwarded-For, -Proto, -Host, Expect:, Accept:. */
#define ADDED_LINES 8

struct line_list {
    struct arena *arena;
    const char **lines;
    size_t count;
    bool failed;
};

static void add_line(struct line_list *l, const char *line)
{
    if (line)
        l->lines[l->count++] = line;
    else
        l->failed = true;
}

static void add_field(struct line_list *l, const char *name, size_t name_len, const char *value,
                      size_t value_len)
{
    char *line = arena_alloc(l->arena, name_len + value_len + 3);
    if (line) {
        memcpy(line, name, name_len);
        if (value_len == 0) {
            line[name_len] = ';'; /* curl's spelling of "send this header empty" */
            line[name_len + 1] = '\0';
        } else {
            line[name_len] = ':';
            line[name_len + 1] = ' ';
            memcpy(line + name_len + 2, value, value_len);
            line[name_len + 2 + value_len] = '\0';
        }
    }
    add_line(l, line);
}

static void add_field_str(struct line_list *l, const char *name, const char *value)
{
    add_field(l, name, strlen(name), value, strlen(value));
}

static bool is_set_by_route(const struct forward_request *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->route_headers_count; i++)
        if (http_name_equals(name, len, r->route_headers[i].name))
            return true;
    return false;
}

static bool is_listed_in_connection(const struct forward_request *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->connection_count; i++)
        if (http_connection_lists(r->connection[i].ptr, r->connection[i].len, name, len))
            return true;
    return false;
}

/* X-Forwarded-For from the client is kept only if it looks like a list of addresses. */
static bool forwarded_for_is_plausible(const char *v, size_t n)
{
    if (n == 0 || n > MAX_FORWARDED_FOR_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
              c == '.' || c == ':' || c == ',' || c == ' ' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

int forward_request_headers(const struct forward_request *r, struct arena *arena,
                            const char ***ret_lines, size_t *ret_count)
{
    struct line_list l = {.arena = arena};
    char forwarded_for[MAX_FORWARDED_FOR_LEN + 80];
    bool saw_accept = false;

    l.lines =
        arena_alloc(arena, (r->count + r->route_headers_count + ADDED_LINES) * sizeof(char *));
    if (!l.lines)
        return -ENOMEM;
    for (size_t i = 0; i < r->count; i++) {
        const struct header_field *f = &r->fields[i];
        if (http_header_is_hop_by_hop(f->name, f->name_len) ||
            http_header_is_managed(f->name, f->name_len) ||
            http_name_equals(f->name, f->name_len, r->request_id_header) ||
            is_listed_in_connection(r, f->name, f->name_len) ||
            is_set_by_route(r, f->name, f->name_len))
            continue;
        if (http_name_equals(f->name, f->name_len, "Accept"))
            saw_accept = true;
        size_t value_len = f->value_len;
        while (value_len > 0 && (f->value[value_len - 1] == ' ' || f->value[value_len - 1] == '\t'))
            value_len--;
        add_field(&l, f->name, f->name_len, f->value, value_len);
    }
    for (size_t i = 0; i < r->route_headers_count; i++)
        add_field_str(&l, r->route_headers[i].name, r->route_headers[i].value);
    add_field_str(&l, "traceparent", r->traceparent);
    if (r->tracestate_len > 0)
        add_field(&l, "tracestate", 10, r->tracestate, r->tracestate_len);
    add_field(&l, r->request_id_header, strlen(r->request_id_header), r->x_trace_id,
              r->x_trace_id_len);
    if (r->forwarded_for && forwarded_for_is_plausible(r->forwarded_for, r->forwarded_for_len))
        /* the client's address unknown (a unix-socket listener): the client's list alone */
        snprintf(forwarded_for, sizeof(forwarded_for), "%.*s%s%s", (int)r->forwarded_for_len,
                 r->forwarded_for, r->client_addr[0] ? ", " : "", r->client_addr);
    else
        snprintf(forwarded_for, sizeof(forwarded_for), "%s", r->client_addr);
    if (forwarded_for[0])
        add_field_str(&l, "X-Forwarded-For", forwarded_for);
    add_field_str(&l, "X-Forwarded-Proto", "http");
    if (r->host)
        add_field_str(&l, "X-Forwarded-Host", r->host);
    /* Disable what curl would add on its own ("Name:" with no value removes a header). Curl
     * adds Expect only to uploads; every entry here costs a scan per header curl looks up. */
    if (r->has_body)
        add_line(&l, "Expect:");
    if (!saw_accept)
        add_line(&l, "Accept:");
    if (l.failed)
        return -ENOMEM;
    *ret_lines = l.lines;
    *ret_count = l.count;
    return 0;
}

bool forward_response_header(const struct response_head *head, const struct response_header *h,
                             bool echo, const char *request_id_header)
{
    if (http_header_is_hop_by_hop(h->name, h->name_len) ||
        http_name_equals(h->name, h->name_len, "Content-Length"))
        return false;
    if (echo && (http_name_equals(h->name, h->name_len, "traceparent") ||
                 http_name_equals(h->name, h->name_len, request_id_header)))
        return false;
    /* Headers the upstream's Connection header names are hop-by-hop too. */
    for (size_t i = 0; i < head->count; i++) {
        const struct response_header *c = &head->fields[i];
        if (http_name_equals(c->name, c->name_len, "Connection") &&
            http_connection_lists(c->value, strlen(c->value), h->name, h->name_len))
            return false;
    }
    return true;
}
