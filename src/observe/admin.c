/* SPDX-License-Identifier: MIT */
/*
 * Four read-only endpoints. /readyz turns 503 the moment a drain starts, before the listener
 * stops accepting, so that load balancers and kubelets move traffic away while requests are
 * still being served (docs/operations.md, "Admin endpoints" and the drain timeline in "Draining").
 * /config shows the running config as the daemon published it (admin_publish_config, at start
 * and after every reload): the admin knows the text, not the config's owner.
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "observe/admin.h"
#include "observe/accesslog.h"
#include "observe/process_stats.h"
#include "config/config.h"
#include "common/listen_socket.h"
#include "common/diag.h"

struct admin {
    struct MHD_Daemon *daemon;
    struct admin_state *state;
};

void admin_state_init(struct admin_state *state)
{
    pthread_mutex_init(&state->config_lock, NULL);
    state->config_text = NULL;
}

void admin_state_clear(struct admin_state *state)
{
    free(state->config_text);
    state->config_text = NULL;
    pthread_mutex_destroy(&state->config_lock);
}

void admin_publish_config(struct admin_state *state, char *text)
{
    pthread_mutex_lock(&state->config_lock);
    char *old = state->config_text;
    state->config_text = text;
    pthread_mutex_unlock(&state->config_lock);
    free(old);
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Every endpoint is read-only (RFC 9110, 15.5.6: a 405 lists the methods in Allow). */
static enum MHD_Result method_not_allowed(struct MHD_Connection *conn)
{
    static const char body[] = "method not allowed\n";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/plain");
    MHD_add_response_header(resp, "Allow", "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, 405, resp);
    MHD_destroy_response(resp);
    return rc;
}

static bool wants_openmetrics(struct MHD_Connection *conn)
{
    const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
    return accept && strstr(accept, "application/openmetrics-text") != NULL;
}

static enum MHD_Result serve_metrics(struct admin *a, struct MHD_Connection *conn)
{
    struct admin_state *s = a->state;
    struct metrics_process p = {
        .reloads_ok = atomic_load(&s->reloads_ok),
        .reloads_failed = atomic_load(&s->reloads_failed),
        .last_reload_timestamp = (double)atomic_load(&s->last_reload_ms) / 1000.0,
        .last_reload_ok = atomic_load(&s->last_reload_ok),
        .ready = atomic_load(&s->ready),
        .export = s->export,
    };
    struct process_stats os;
    process_stats_read(&os); /* /proc/self, now */
    p.os = &os;
    struct accesslog_stats log_stats = {0};
    bool openmetrics = wants_openmetrics(conn);
    char *text;
    size_t len;

    if (s->accesslog)
        accesslog_get_stats(s->accesslog, &log_stats);
    p.log_lines_written = log_stats.lines_written;
    p.log_lines_dropped = log_stats.lines_dropped;
    if (metrics_render(s->workers, s->workers_count, &p, openmetrics, &text, &len) < 0)
        return respond(conn, 500, "text/plain", "out of memory\n", 14, MHD_RESPMEM_PERSISTENT);
    return respond(conn, 200,
                   openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                               : "text/plain; version=0.0.4; charset=utf-8",
                   text, len, MHD_RESPMEM_MUST_FREE);
}

/* A copy of the published text, so that a reload may replace it while this response is sent. */
static enum MHD_Result serve_config(struct admin *a, struct MHD_Connection *conn)
{
    struct admin_state *s = a->state;
    char *copy = NULL;
    size_t len = 0;

    pthread_mutex_lock(&s->config_lock);
    if (s->config_text) {
        len = strlen(s->config_text);
        copy = malloc(len + 2);
        if (copy) {
            memcpy(copy, s->config_text, len);
            copy[len++] = '\n';
            copy[len] = '\0';
        }
    }
    bool published = s->config_text != NULL;
    pthread_mutex_unlock(&s->config_lock);
    if (!published)
        return respond(conn, 503, "text/plain", "config not available\n", 21,
                       MHD_RESPMEM_PERSISTENT);
    if (!copy)
        return respond(conn, 500, "text/plain", "out of memory\n", 14, MHD_RESPMEM_PERSISTENT);
    return respond(conn, 200, "application/json", copy, len, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result on_admin_request(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **con_cls)
{
    struct admin *a = cls;
    static int first_call_marker;

    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = &first_call_marker; /* answer once the request is complete */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0; /* ignore bodies */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return method_not_allowed(conn);
    if (strcmp(url, "/healthz") == 0)
        return respond(conn, 200, "text/plain", "ok\n", 3, MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/readyz") == 0) {
        if (atomic_load(&a->state->ready))
            return respond(conn, 200, "text/plain", "ready\n", 6, MHD_RESPMEM_PERSISTENT);
        return respond(conn, 503, "text/plain", "not ready\n", 10, MHD_RESPMEM_PERSISTENT);
    }
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(a, conn);
    if (strcmp(url, "/config") == 0)
        return serve_config(a, conn);
    static const char not_found[] = "not found: try /healthz, /readyz, /metrics or /config\n";
    return respond(conn, 404, "text/plain", (char *)not_found, sizeof(not_found) - 1,
                   MHD_RESPMEM_PERSISTENT);
}

int admin_start(const struct listen_address *addr, struct admin_state *state, struct admin **ret)
{
    struct admin *a = calloc(1, sizeof(*a));
    int fd;

    if (!a)
        return -ENOMEM;
    a->state = state;
    fd = listen_open((const struct sockaddr *)&addr->addr, addr->addr_len, 64);
    if (fd < 0) {
        diag(DIAG_ERROR, "admin listen %s: %s", addr->text, strerror(-fd));
        free(a);
        return fd;
    }
    a->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG,
                                 0, NULL, NULL, on_admin_request, a, MHD_OPTION_LISTEN_SOCKET, fd,
                                 MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT,
                                 10u, MHD_OPTION_END);
    if (!a->daemon) {
        diag(DIAG_ERROR, "admin listen %s: libmicrohttpd refused to start", addr->text);
        close(fd);
        free(a);
        return -EIO;
    }
    struct sockaddr_storage bound;
    socklen_t bound_len;
    char text[80];
    if (listen_bound_address(fd, &bound, &bound_len) == 0) {
        listen_format_address((struct sockaddr *)&bound, text, sizeof(text));
        diag(DIAG_INFO, "admin listening on %s (/healthz /readyz /metrics /config)", text);
    }
    *ret = a;
    return 0;
}

struct admin *admin_stop(struct admin *a)
{
    if (!a)
        return NULL;
    MHD_stop_daemon(a->daemon);
    free(a);
    return NULL;
}
