/* SPDX-License-Identifier: MIT */
/*
 * The upstream adapter's contract (src/proxy/upstream.h), used the way a second client of the
 * curl multi would use it - a loop, a pool and a spec, no request, no libmicrohttpd: a scripted
 * HTTP server thread on loopback answers one connection, and the test checks what reached the
 * server, which callbacks ran with what, and how failures are reported (a refused connection,
 * an invalid head, a refused scheme), and that a cancelled transfer gets no on_done.
 */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/arena.h"
#include "proxy/loop.h"
#include "proxy/upstream.h"
#include "unit-test.h"

#define MAX_ROUNDS 2000 /* loop iterations (of at most 10 ms each) before a test gives up */

/* --- a scripted server: one connection, read one request, write `answer` ----------------- */

struct server {
    int listen_fd;
    unsigned short port;
    const char *answer; /* NULL: read the request, then hold the connection until closed */
    char request[8192];
    size_t request_len;
    pthread_t thread;
};

/* Whether the request (head, and a Content-Length body) is complete. */
static bool request_complete(const char *r, size_t n)
{
    const char *end = memmem(r, n, "\r\n\r\n", 4);
    if (!end)
        return false;
    const char *cl = strcasestr(r, "\r\nContent-Length: ");
    size_t body = cl && cl < end ? strtoul(cl + 18, NULL, 10) : 0;
    return n >= (size_t)(end + 4 - r) + body;
}

static void *serve(void *arg)
{
    struct server *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    while (!request_complete(s->request, s->request_len)) {
        ssize_t n = read(fd, s->request + s->request_len, sizeof(s->request) - 1 - s->request_len);
        if (n <= 0)
            break;
        s->request_len += (size_t)n;
        s->request[s->request_len] = '\0';
    }
    if (s->answer) {
        ssize_t w = write(fd, s->answer, strlen(s->answer));
        (void)w;
    } else {
        char byte;
        while (read(fd, &byte, 1) > 0)
            ;
    }
    close(fd);
    return NULL;
}

static void server_start(struct server *s, const char *answer)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);

    memset(s, 0, sizeof(*s));
    s->answer = answer;
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s->listen_fd, 0);
    ck_assert_int_eq(bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ck_assert_int_eq(listen(s->listen_fd, 4), 0);
    ck_assert_int_eq(getsockname(s->listen_fd, (struct sockaddr *)&addr, &len), 0);
    s->port = ntohs(addr.sin_port);
    ck_assert_int_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_join(struct server *s)
{
    shutdown(s->listen_fd, SHUT_RDWR); /* a server that got no connection stops accepting */
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}

/* --- the client: what the callbacks saw ---------------------------------------------------- */

struct client {
    int heads, bodies, spaces, dones;
    struct upstream_outcome outcome;
    char detail[UPSTREAM_DETAIL_MAX]; /* outcome.detail is valid during on_done only */
    struct upstream_transfer *transfer;
    struct loop loop;
    struct upstream_pool *pool;
    struct arena arena;
    struct bytebuf upload, download;
    char upload_data[256], download_data[256];
    struct response_head head;
    char url[64];
};

static void on_head(void *data)
{
    ((struct client *)data)->heads++;
}

static void on_body(void *data)
{
    ((struct client *)data)->bodies++;
}

static void on_upload_space(void *data)
{
    ((struct client *)data)->spaces++;
}

static void on_done(void *data, const struct upstream_outcome *outcome)
{
    struct client *c = data;
    c->dones++;
    c->outcome = *outcome;
    snprintf(c->detail, sizeof(c->detail), "%s", outcome->detail);
    c->outcome.detail = c->detail;
    c->transfer = NULL;
}

static const struct upstream_callbacks callbacks = {on_head, on_body, on_upload_space, on_done};

static void client_init(struct client *c, unsigned short port)
{
    memset(c, 0, sizeof(*c));
    ck_assert_int_eq(loop_init(&c->loop, NULL, NULL), 0);
    ck_assert_int_eq(upstream_pool_new(&c->loop, &c->pool), 0);
    arena_init(&c->arena, 1024);
    c->upload = (struct bytebuf){.data = c->upload_data, .cap = sizeof(c->upload_data)};
    c->download = (struct bytebuf){.data = c->download_data, .cap = sizeof(c->download_data)};
    snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%u/", port);
}

static void client_free(struct client *c)
{
    c->pool = upstream_pool_free(c->pool);
    loop_destroy(&c->loop);
    arena_free(&c->arena);
}

static struct upstream_spec spec_for(struct client *c, const char *method, const char *target,
                                     const char *const *lines, size_t count)
{
    return (struct upstream_spec){
        .url = c->url,
        .target = target,
        .method = method,
        .header_lines = lines,
        .header_count = count,
        .connect_timeout_ms = 2000,
        .timeout_ms = 5000,
        .arena = &c->arena,
        .upload = &c->upload,
        .download = &c->download,
        .head = &c->head,
    };
}

static void run_until_done(struct client *c)
{
    for (int i = 0; i < MAX_ROUNDS && c->dones == 0; i++)
        ck_assert_int_ge(loop_run_once(&c->loop, 10), 0);
    ck_assert_int_eq(c->dones, 1);
}

static const char *field(const struct response_head *h, const char *name)
{
    for (size_t i = 0; i < h->count; i++)
        if (strcasecmp(h->fields[i].name, name) == 0)
            return h->fields[i].value;
    return NULL;
}

/* --- tests --------------------------------------------------------------------------------- */

START_TEST(test_get_reaches_the_server_and_the_answer_the_callbacks)
{
    struct server s;
    struct client c;
    static const char *const lines[] = {"X-Test: one", "X-Empty;", "Accept:"};

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello");
    client_init(&c, s.port);
    struct upstream_spec spec = spec_for(&c, "GET", "/a/../b?q=1#", lines, 3);
    ck_assert_int_eq(upstream_start(c.pool, &spec, &callbacks, &c, &c.transfer), 0);
    run_until_done(&c);
    server_join(&s);

    ck_assert_msg(strncmp(s.request, "GET /a/../b?q=1# HTTP/1.1\r\n", 27) == 0,
                  "the target must go out byte for byte: %s", s.request);
    ck_assert_ptr_nonnull(strstr(s.request, "\r\nX-Test: one\r\n"));
    ck_assert_ptr_nonnull(strstr(s.request, "\r\nX-Empty:"));
    ck_assert_ptr_null(strcasestr(s.request, "\r\nAccept:"));
    ck_assert_int_eq(c.outcome.error, UPSTREAM_OK);
    ck_assert(!c.outcome.bad_response);
    ck_assert_int_eq(c.heads, 1);
    ck_assert_int_ge(c.bodies, 1);
    ck_assert_int_eq(c.head.status, 200);
    ck_assert_int_eq(c.head.content_length, 5);
    ck_assert_str_eq(field(&c.head, "X-A"), "b");
    ck_assert_uint_eq(bytebuf_len(&c.download), 5);
    ck_assert_int_eq(memcmp(c.download.data + c.download.head, "hello", 5), 0);
    client_free(&c);
}
END_TEST

START_TEST(test_post_uploads_the_lent_buffer_until_complete)
{
    struct server s;
    struct client c;

    server_start(&s, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    client_init(&c, s.port);
    struct upstream_spec spec = spec_for(&c, "POST", "/up", NULL, 0);
    spec.has_body = true;
    spec.content_length = 6;
    ck_assert_int_eq(upstream_start(c.pool, &spec, &callbacks, &c, &c.transfer), 0);
    bytebuf_put(&c.upload, "abc", 3);
    for (int i = 0; i < 20; i++) /* the transfer takes the first half, then waits */
        loop_run_once(&c.loop, 10);
    ck_assert_int_eq(c.dones, 0);
    bytebuf_put(&c.upload, "def", 3);
    upstream_upload_complete(c.transfer);
    upstream_resume(c.transfer);
    run_until_done(&c);
    server_join(&s);

    ck_assert_int_eq(c.outcome.error, UPSTREAM_OK);
    ck_assert_int_eq(c.head.status, 201);
    ck_assert_int_ge(c.spaces, 1);
    ck_assert_ptr_nonnull(strstr(s.request, "\r\n\r\nabcdef"));
    ck_assert_ptr_nonnull(strstr(s.request, "Content-Length: 6\r\n"));
    client_free(&c);
}
END_TEST

START_TEST(test_refused_connection_is_connect_failed_without_a_head)
{
    struct client c;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);

    /* A port that was just bound and closed: nothing listens there. */
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    client_init(&c, ntohs(addr.sin_port));
    struct upstream_spec spec = spec_for(&c, "GET", "/", NULL, 0);
    ck_assert_int_eq(upstream_start(c.pool, &spec, &callbacks, &c, &c.transfer), 0);
    run_until_done(&c);
    ck_assert_int_eq(c.outcome.error, UPSTREAM_CONNECT_FAILED);
    ck_assert_int_eq(c.heads, 0);
    /* libcurl's error buffer and the errno text behind it */
    ck_assert_msg(strstr(c.detail, "Failed to connect to 127.0.0.1 port") &&
                      strstr(c.detail, "(Connection refused)") && !strstr(c.detail, " after "),
                  "detail: %s", c.detail);
    client_free(&c);
}
END_TEST

/* A TLS handshake that never completes (the peer accepted TCP, then says nothing) runs into the
 * connect timeout: a connect failure (502), not an upstream timeout (504). */
START_TEST(test_connect_timeout_is_connect_failed)
{
    struct client c;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    char url[64];

    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ck_assert_int_eq(listen(fd, 8), 0); /* the kernel completes the handshake; nobody answers */
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    client_init(&c, ntohs(addr.sin_port));
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/", ntohs(addr.sin_port));
    struct upstream_spec spec = spec_for(&c, "GET", "/", NULL, 0);
    spec.url = url;
    spec.connect_timeout_ms = 200;
    ck_assert_int_eq(upstream_start(c.pool, &spec, &callbacks, &c, &c.transfer), 0);
    run_until_done(&c);
    ck_assert_int_eq(c.outcome.error, UPSTREAM_CONNECT_FAILED);
    ck_assert_int_eq(c.heads, 0);
    ck_assert_msg(strstr(c.detail, "time") && !strstr(c.detail, " after "), "detail: %s", c.detail);
    client_free(&c);
    close(fd);
}
END_TEST

START_TEST(test_invalid_head_is_a_reset_marked_bad_response)
{
    struct server s;
    struct client c;

    server_start(&s, "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n");
    client_init(&c, s.port);
    struct upstream_spec spec = spec_for(&c, "GET", "/", NULL, 0);
    ck_assert_int_eq(upstream_start(c.pool, &spec, &callbacks, &c, &c.transfer), 0);
    run_until_done(&c);
    server_join(&s);
    ck_assert_int_eq(c.outcome.error, UPSTREAM_RESET);
    ck_assert(c.outcome.bad_response);
    ck_assert_int_eq(c.heads, 0);
    client_free(&c);
}
END_TEST

START_TEST(test_cancelled_transfer_gets_no_done)
{
    struct server s;
    struct client c;

    server_start(&s, NULL); /* never answers */
    client_init(&c, s.port);
    struct upstream_spec spec = spec_for(&c, "GET", "/slow", NULL, 0);
    ck_assert_int_eq(upstream_start(c.pool, &spec, &callbacks, &c, &c.transfer), 0);
    for (int i = 0; i < MAX_ROUNDS && s.request_len == 0; i++)
        loop_run_once(&c.loop, 10);
    ck_assert_uint_gt(s.request_len, 0);
    upstream_cancel(c.transfer);
    for (int i = 0; i < 10; i++)
        loop_run_once(&c.loop, 10);
    ck_assert_int_eq(c.dones, 0);
    client_free(&c); /* closes the connection: the server thread ends */
    server_join(&s);
}
END_TEST

START_TEST(test_refused_scheme_is_reported_once_as_a_failure)
{
    struct client c;
    static const char *const lines[] = {"X-A: 1"};

    client_init(&c, 9);
    struct upstream_spec spec = spec_for(&c, "GET", "/", lines, 1);
    spec.url = "gopher://127.0.0.1:9/"; /* not in CURLOPT_PROTOCOLS_STR: refused when it runs */
    ck_assert_int_eq(upstream_start(c.pool, &spec, &callbacks, &c, &c.transfer), 0);
    run_until_done(&c);
    for (int i = 0; i < 10; i++)
        loop_run_once(&c.loop, 10);
    ck_assert_int_eq(c.dones, 1);
    ck_assert_int_eq(c.heads + c.bodies, 0);
    ck_assert_int_eq(c.outcome.error, UPSTREAM_RESET);
    client_free(&c);
}
END_TEST

static Suite *upstream_suite(void)
{
    Suite *s = suite_create("upstream");
    TCase *tc = tcase_create("contract");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_get_reaches_the_server_and_the_answer_the_callbacks);
    tcase_add_test(tc, test_post_uploads_the_lent_buffer_until_complete);
    tcase_add_test(tc, test_refused_connection_is_connect_failed_without_a_head);
    tcase_add_test(tc, test_connect_timeout_is_connect_failed);
    tcase_add_test(tc, test_invalid_head_is_a_reset_marked_bad_response);
    tcase_add_test(tc, test_cancelled_transfer_gets_no_done);
    tcase_add_test(tc, test_refused_scheme_is_reported_once_as_a_failure);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = unit_run(upstream_suite());
    curl_global_cleanup();
    return failed;
}
