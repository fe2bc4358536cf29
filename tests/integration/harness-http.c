/* SPDX-License-Identifier: MIT */
/*
 * The libcurl client (contracts in harness.h): a request to the daemon as a prepared transfer
 * (struct harness_transfer) that harness_http runs blocking, or a test runs on its own multi
 * handle. HTTP/1.1, the request target sent byte for byte, no content decoding, no redirects, no
 * "Expect: 100-continue" unless the test sends one; a request body is given or generated (the
 * echo upstream's pattern). The response is captured into struct harness_response as it arrives.
 */
#include "harness-internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t on_header(char *line, size_t size, size_t nitems, void *userdata)
{
    struct harness_transfer *t = userdata;
    size_t n = size * nitems, len = n;

    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        harness_response_clear_headers(&t->response); /* a new block (after 1xx) starts over */
        return n;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    const char *colon = memchr(line, ':', len);
    if (len > 0 && colon)
        harness_response_add_header(&t->response, line, (size_t)(colon - line), colon + 1,
                                    len - (size_t)(colon - line) - 1);
    return n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct harness_transfer *t = userdata;
    harness_response_add_body(&t->response, data, size * nmemb, !t->request.discard_body);
    if (t->request.abort_after_bytes && t->response.body_len >= t->request.abort_after_bytes)
        return 0; /* curl aborts the transfer and closes the connection */
    return size * nmemb;
}

static size_t on_read(char *buffer, size_t size, size_t nitems, void *userdata)
{
    struct harness_transfer *t = userdata;
    size_t max = size * nitems;
    uint64_t total =
        t->request.pattern_body_bytes ? t->request.pattern_body_bytes : t->request.body_len;
    uint64_t left = total - t->upload_pos;
    size_t n = left < max ? (size_t)left : max;

    if (t->request.pattern_body_bytes)
        harness_pattern_fill(buffer, n, t->upload_pos);
    else
        memcpy(buffer, (const char *)t->request.body + t->upload_pos, n);
    t->upload_pos += n;
    return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct harness_transfer *t = userdata;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    if (t->request.progress)
        t->request.progress(t->request.progress_arg);
    return 0;
}

struct harness_transfer *harness_transfer_new(CURL *easy, unsigned port,
                                              const struct harness_request *rq)
{
    struct harness_transfer *t = calloc(1, sizeof(*t));
    char url[64];
    bool has_expect = false;

    if (!t)
        return NULL;
    t->easy = easy ? easy : curl_easy_init();
    t->owns_easy = !easy;
    t->request = *rq;
    t->response.body_hash = HARNESS_FNV_OFFSET;
    if (!t->easy) {
        free(t);
        return NULL;
    }
    CURL *e = t->easy;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, rq->target ? rq->target : "/");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, rq->timeout_ms ? rq->timeout_ms : 15000L);
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->response.error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    /* The method, from a clean slate (a reused handle remembers the last one). */
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    const char *method = rq->method ? rq->method : "GET";
    bool has_body = rq->body || rq->pattern_body_bytes;
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (has_body) {
        curl_off_t size =
            rq->pattern_body_bytes ? (curl_off_t)rq->pattern_body_bytes : (curl_off_t)rq->body_len;
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, t);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, rq->chunked ? (curl_off_t)-1 : size);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    for (size_t i = 0; rq->headers && rq->headers[i]; i++) {
        if (strncasecmp(rq->headers[i], "Expect:", 7) == 0)
            has_expect = true;
        t->header_list = curl_slist_append(t->header_list, rq->headers[i]);
    }
    if (!has_expect) /* curl would add "Expect: 100-continue" to larger uploads */
        t->header_list = curl_slist_append(t->header_list, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->header_list);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, rq->progress ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
    return t;
}

void harness_transfer_done(struct harness_transfer *t, CURLcode result)
{
    struct harness_response *rs = &t->response;

    rs->result = result;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &rs->status);
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &rs->total_s);
    curl_easy_getinfo(t->easy, CURLINFO_LOCAL_PORT, &rs->local_port);
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &rs->connects);
    if (!rs->body && !t->request.discard_body)
        rs->body = calloc(1, 1);
    if (result != CURLE_OK && !rs->error[0])
        snprintf(rs->error, sizeof(rs->error), "%s", curl_easy_strerror(result));
}

void harness_transfer_free(struct harness_transfer *t)
{
    if (!t)
        return;
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, NULL);
    if (t->owns_easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->header_list);
    harness_response_free(&t->response);
    free(t);
}

void harness_http_on(CURL *easy, unsigned port, const struct harness_request *rq,
                     struct harness_response *rs)
{
    struct harness_transfer *t = harness_transfer_new(easy, port, rq);

    *rs = (struct harness_response){.result = CURLE_OUT_OF_MEMORY};
    if (!t)
        return;
    harness_transfer_done(t, curl_easy_perform(t->easy));
    *rs = t->response;
    t->response = (struct harness_response){0};
    harness_transfer_free(t);
}

void harness_http(unsigned port, const struct harness_request *rq, struct harness_response *rs)
{
    harness_http_on(NULL, port, rq, rs);
}

double harness_metric_value(unsigned admin_port, const char *series)
{
    struct harness_request rq = {.target = "/metrics"};
    struct harness_response rs;
    double value = NAN;

    harness_http(admin_port, &rq, &rs);
    ck_assert_msg(rs.result == CURLE_OK && rs.status == 200, "GET /metrics: %s (%ld)", rs.error,
                  rs.status);
    size_t n = strlen(series);
    for (const char *line = rs.body; line && *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            value = strtod(line + n + 1, NULL);
            break;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    harness_response_free(&rs);
    return value;
}
