/* SPDX-License-Identifier: MIT */
/*
 * Upstream transfers with libcurl. Defaults that a proxy must override:
 *   - the target goes through CURLOPT_REQUEST_TARGET, byte for byte (CURLOPT_URL would
 *     normalise dot-segments, strip fragments and re-encode);
 *   - curl adds "Expect: 100-continue" to uploads and "Accept: any" to every request: both are
 *     disabled, so the upstream sees what the client sent;
 *   - no decompression, no redirects, HTTP/1.1 only.
 * The outbound header list is built from curl_slist nodes allocated in the request's arena:
 * curl only reads the list, and this saves two mallocs per header.
 *
 * The three data callbacks never block and never call into libmicrohttpd: a full buffer pauses
 * curl, an empty one pauses the upload, and the request is marked dirty so the worker resumes
 * the other side after the current batch of events.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/upstream.h"
#include "config/config.h"
#include "common/http_syntax.h"
#include "proxy/request.h"
#include "proxy/route.h"
#include "proxy/worker.h"
#include "common/diag.h"

#define MAX_RESPONSE_HEADER_BYTES (64 * 1024)
#define MAX_FORWARDED_FOR_LEN     1024

/* --- curl callbacks ----------------------------------------------------------------------- */

static size_t parse_status_code(const char *line, size_t n)
{
    const char *sp = memchr(line, ' ', n);
    if (!sp || (size_t)(sp - line) + 4 > n)
        return 0;
    size_t code = 0;
    for (int i = 1; i <= 3; i++) {
        char c = sp[i];
        if (c < '0' || c > '9')
            return 0;
        code = code * 10 + (size_t)(c - '0');
    }
    return code;
}

static size_t upstream_protocol_error(struct request *req)
{
    req->header_overflow = true;
    return 0; /* makes curl abort the transfer */
}

size_t upstream_header_callback(char *line, size_t size, size_t nitems, void *userdata)
{
    struct request *req = userdata;
    size_t n = size * nitems;

    if (req->headers_done)
        return n; /* trailers: not forwarded */
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new header block (1xx responses come first): start over. */
        req->response_headers_count = 0;
        req->response_header_bytes = 0;
        req->upstream_content_length = -1;
        req->upstream_status = (long)parse_status_code(line, n);
        if (req->upstream_status < 100)
            return upstream_protocol_error(req);
        return n;
    }
    size_t len = n;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len == 0) {
        if (req->upstream_status == 101)
            return upstream_protocol_error(req); /* we never ask for an upgrade */
        if (req->upstream_status >= 200) {
            req->headers_done = true;
            /* The head is complete: the connection may go back to the pool once the body is
             * read (it is forbidden until now, so that a head cut short is never pooled). */
            curl_easy_setopt(req->easy, CURLOPT_FORBID_REUSE, 0L);
            worker_mark_dirty(req->worker, req);
        }
        return n;
    }
    req->response_header_bytes += n;
    if (req->response_header_bytes > MAX_RESPONSE_HEADER_BYTES ||
        req->response_headers_count == REQUEST_MAX_RESPONSE_HEADERS)
        return upstream_protocol_error(req);
    if (line[0] == ' ' || line[0] == '\t')
        return upstream_protocol_error(req); /* obsolete line folding */
    const char *colon = memchr(line, ':', len);
    if (!colon || !http_is_token(line, (size_t)(colon - line)))
        return upstream_protocol_error(req);
    size_t name_len = (size_t)(colon - line);
    const char *value = colon + 1;
    size_t value_len = len - name_len - 1;
    while (value_len > 0 && (*value == ' ' || *value == '\t'))
        value++, value_len--;
    while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    if (!http_is_field_value(value, value_len))
        return upstream_protocol_error(req);
    /* curl undoes only chunked; any other coding would reach the client unlabelled once the
     * hop-by-hop header is dropped. */
    if (http_name_equals(line, name_len, "Transfer-Encoding") &&
        !(value_len == 7 && strncasecmp(value, "chunked", 7) == 0))
        return upstream_protocol_error(req);
    if (http_name_equals(line, name_len, "Content-Length")) {
        int64_t cl = 0;
        for (size_t i = 0; i < value_len; i++) {
            if (value[i] < '0' || value[i] > '9' || i >= 18)
                return upstream_protocol_error(req);
            cl = cl * 10 + (value[i] - '0');
        }
        if (value_len == 0 ||
            (req->upstream_content_length >= 0 && req->upstream_content_length != cl))
            return upstream_protocol_error(req);
        req->upstream_content_length = cl;
    }
    char *copy = arena_alloc(&req->arena, len + 2);
    if (!copy)
        return upstream_protocol_error(req);
    memcpy(copy, line, name_len);
    copy[name_len] = '\0';
    memcpy(copy + name_len + 1, value, value_len);
    copy[name_len + 1 + value_len] = '\0';
    req->response_headers[req->response_headers_count++] = (struct response_header){
        .name = copy,
        .name_len = name_len,
        .value = copy + name_len + 1,
    };
    return n;
}

size_t upstream_write_callback(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct request *req = userdata;
    size_t n = size * nmemb;

    if (bytebuf_space(&req->down) < n) {
        req->write_paused = true;
        return CURL_WRITEFUNC_PAUSE; /* curl keeps the chunk and offers it again */
    }
    bytebuf_put(&req->down, data, n);
    if (req->suspended && req->wait == WAIT_BODY_DATA)
        worker_mark_dirty(req->worker, req);
    return n;
}

size_t upstream_read_callback(char *buffer, size_t size, size_t nitems, void *userdata)
{
    struct request *req = userdata;
    size_t n = bytebuf_take(&req->up, buffer, size * nitems);

    if (n > 0) {
        if (req->suspended && req->wait == WAIT_UPLOAD_SPACE)
            worker_mark_dirty(req->worker, req);
        return n;
    }
    if (req->body_complete)
        return 0; /* end of the request body */
    req->read_paused = true;
    return CURL_READFUNC_PAUSE;
}

/* --- the outbound header list ------------------------------------------------------------ */

struct header_list_builder {
    struct request *req;
    const struct upstream_request_info *info;
    struct curl_slist *head, *tail;
    bool saw_accept;
    bool failed;
};

static void header_list_append_node(struct header_list_builder *b, char *line)
{
    struct curl_slist *node = arena_alloc(&b->req->arena, sizeof(*node));
    if (!node) {
        b->failed = true;
        return;
    }
    node->data = line;
    node->next = NULL;
    if (b->tail)
        b->tail->next = node;
    else
        b->head = node;
    b->tail = node;
}

static void header_list_add(struct header_list_builder *b, const char *name, size_t name_len,
                            const char *value, size_t value_len)
{
    char *line = arena_alloc(&b->req->arena, name_len + value_len + 3);
    if (!line) {
        b->failed = true;
        return;
    }
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
    header_list_append_node(b, line);
}

static void header_list_add_str(struct header_list_builder *b, const char *name, const char *value)
{
    header_list_add(b, name, strlen(name), value, strlen(value));
}

static bool is_overridden_by_route(const struct route *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->set_request_headers_count; i++)
        if (http_name_equals(name, len, r->set_request_headers[i].name))
            return true;
    return false;
}

static bool is_listed_in_connection(const struct upstream_request_info *info, const char *name,
                                    size_t len)
{
    for (size_t i = 0; i < info->connection_count; i++)
        if (http_connection_lists(info->connection[i].ptr, info->connection[i].len, name, len))
            return true;
    return false;
}

static enum MHD_Result add_client_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                         size_t name_len, const char *value, size_t value_len)
{
    struct header_list_builder *b = cls;
    const struct config *config = b->req->config;

    (void)kind;
    if (http_header_is_hop_by_hop(name, name_len) || http_header_is_managed(name, name_len) ||
        http_name_equals(name, name_len, config->request_id_header) ||
        is_listed_in_connection(b->info, name, name_len) ||
        is_overridden_by_route(b->req->route, name, name_len))
        return MHD_YES;
    if (http_name_equals(name, name_len, "Accept"))
        b->saw_accept = true;
    while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    header_list_add(b, name, name_len, value, value_len);
    return MHD_YES;
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

static struct curl_slist *build_header_list(struct request *req,
                                            const struct upstream_request_info *info)
{
    struct header_list_builder b = {.req = req, .info = info};
    const struct route *r = req->route;
    char forwarded_for[MAX_FORWARDED_FOR_LEN + 80];

    MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, add_client_header, &b);
    for (size_t i = 0; i < r->set_request_headers_count; i++)
        header_list_add_str(&b, r->set_request_headers[i].name, r->set_request_headers[i].value);
    header_list_add_str(&b, "traceparent", req->traceparent_out);
    if (req->hop.tracestate_len > 0)
        header_list_add(&b, "tracestate", 10, req->hop.tracestate, req->hop.tracestate_len);
    header_list_add(&b, req->config->request_id_header, strlen(req->config->request_id_header),
                    req->hop.x_trace_id, req->hop.x_trace_id_len);
    if (info->forwarded_for &&
        forwarded_for_is_plausible(info->forwarded_for, info->forwarded_for_len))
        snprintf(forwarded_for, sizeof(forwarded_for), "%.*s, %s", (int)info->forwarded_for_len,
                 info->forwarded_for, req->client_addr);
    else
        snprintf(forwarded_for, sizeof(forwarded_for), "%s", req->client_addr);
    if (forwarded_for[0])
        header_list_add_str(&b, "X-Forwarded-For", forwarded_for);
    header_list_add_str(&b, "X-Forwarded-Proto", "http");
    if (req->host)
        header_list_add_str(&b, "X-Forwarded-Host", req->host);
    /* Disable what curl would add on its own ("Name:" with no value removes a header). Curl
     * adds Expect only to uploads; every entry here costs a scan per header curl looks up. */
    if (req->has_body)
        header_list_append_node(&b, (char *)"Expect:");
    if (!b.saw_accept)
        header_list_append_node(&b, (char *)"Accept:");
    return b.failed ? NULL : b.head;
}

/* --- transfer setup ----------------------------------------------------------------------- */

int upstream_start(struct request *req, const struct upstream_request_info *info)
{
    const struct route *r = req->route;
    struct worker *w = req->worker;
    size_t target_cap = req->target_len + r->upstream.base_path_len + 2;
    char *target = arena_alloc(&req->arena, target_cap);
    CURL *e;

    if (!target || !route_upstream_target(r, req->target, req->target_len, target, target_cap))
        return -ENOMEM;
    req->upstream_headers = build_header_list(req, info);
    if (!req->upstream_headers)
        return -ENOMEM;
    e = worker_new_easy(w);
    if (!e)
        return -ENOMEM;
    req->easy = e;
    /* Every option is checked: the string ones copy their value, and a copy that fails (out
     * of memory) would leave the previous request's value - another target, say - in place. */
    bool set = curl_easy_setopt(e, CURLOPT_URL, r->upstream.curl_url) == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, r->upstream.unix_path) == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, target) == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->upstream_headers) == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_PRIVATE, req) == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_HEADERDATA, req) == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_WRITEDATA, req) == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_READDATA, req) == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms) == CURLE_OK &&
               curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms) == CURLE_OK;
    if (set && req->is_head) {
        set = curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK;
    } else if (set && req->has_body) {
        set = curl_easy_setopt(e, CURLOPT_UPLOAD, 1L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->content_length) ==
                  CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method) == CURLE_OK;
    } else if (set && strcmp(req->method, "GET") != 0) {
        set = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method) == CURLE_OK;
    }
    if (!set) {
        curl_easy_cleanup(e);
        req->easy = NULL;
        return -ENOMEM;
    }
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L); /* until the head is complete */
    clock_gettime(CLOCK_MONOTONIC, &req->upstream_start_mono);
    req->upstream_started = true;
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        /* A failed add (out of memory) can leave the handle half-attached. */
        curl_multi_remove_handle(w->multi, e);
        curl_easy_cleanup(e);
        req->easy = NULL;
        return -EIO;
    }
    req->upstream_active = true;
    return 0;
}

void upstream_cancel(struct request *req)
{
    if (!req->upstream_active)
        return;
    curl_socket_t fd = CURL_SOCKET_BAD;
    curl_easy_getinfo(req->easy, CURLINFO_ACTIVESOCKET, &fd);
    curl_multi_remove_handle(req->worker->multi, req->easy);
    worker_forget_easy(req->worker, req->easy, fd);
    curl_easy_cleanup(req->easy);
    req->easy = NULL;
    req->upstream_active = false;
    clock_gettime(CLOCK_MONOTONIC, &req->upstream_end_mono);
}

void upstream_finish(struct request *req, CURLcode result)
{
    curl_off_t connect_us = 0, ttfb_us = 0;

    curl_easy_getinfo(req->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
    curl_easy_getinfo(req->easy, CURLINFO_STARTTRANSFER_TIME_T, &ttfb_us);
    req->upstream_connect_ms = (double)connect_us / 1000.0;
    req->upstream_ttfb_ms = (double)ttfb_us / 1000.0;
    upstream_cancel(req);
    if (result == CURLE_OK && !req->headers_done && !req->header_overflow) {
        /* libcurl 7.88 reports success when the upstream closes after the status line or in
         * the middle of the head: for us that is a broken upstream. */
        result = CURLE_GOT_NOTHING;
        req->header_overflow = true;
    }
    if (result != CURLE_OK) {
        struct request_ids_hex ids;
        request_ids_hex(req, &ids);
        diag_request(DIAG_WARN, ids.trace_id, ids.span_id, "upstream %s: %s%s",
                     req->route->upstream.text, curl_easy_strerror(result),
                     req->header_overflow
                         ? " (invalid or oversized response header, or an incomplete head)"
                         : "");
    }
    request_on_upstream_done(req, result);
}

void upstream_classify(CURLcode result, struct upstream_failure *ret)
{
    switch (result) {
    case CURLE_OPERATION_TIMEDOUT:
        *ret = (struct upstream_failure){504, "upstream_timeout", "upstream_timeout",
                                         "the upstream did not answer in time"};
        return;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        *ret = (struct upstream_failure){502, "upstream_connect_failed", "upstream_connect_failed",
                                         "could not connect to the upstream"};
        return;
    default:
        *ret = (struct upstream_failure){502, "upstream_reset", "upstream_reset",
                                         "the upstream closed or broke the connection before a "
                                         "complete response"};
        return;
    }
}
