/* SPDX-License-Identifier: MIT */
/*
 * tracehop's entry point: parse the command line, load the config (exit 1 on any error before
 * anything listens), open the listening sockets, start one worker per core, then wait for
 * signals in the main thread (sigwaitinfo, so no handler code runs in a signal context):
 *   SIGTERM/SIGINT  drain: stop accepting, let in-flight requests finish within
 *                   limits.drain_timeout_ms, exit 0
 *   SIGUSR1         reopen the access log
 *   SIGHUP          reload (see issue 5); for now it is reported and ignored
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tracehop-config.h"
#include "accesslog.h"
#include "config.h"
#include "listen.h"
#include "logline.h"
#include "worker.h"
#include "common/diag.h"

#define ACCESSLOG_BUFFER_BYTES (8u * 1024 * 1024)
#define LISTEN_BACKLOG         4096

int tracehop_logs_main(int argc, char **argv);

static void usage(FILE *out)
{
    fputs("Usage: tracehop [--config FILE] [--listen ADDR] [--upstream URL]\n"
          "                [--admin-listen ADDR|off] [--access-log PATH|-]\n"
          "                [--service-name NAME] [--workers N]\n"
          "       tracehop --check-config --config FILE\n"
          "       tracehop --version | --help\n"
          "\n"
          "A sidecar HTTP proxy that continues W3C trace context and X-Trace-ID, forwards to\n"
          "its upstream and writes one JSON access-log line per request.\n"
          "\n"
          "  -c, --config FILE        JSON config file (see docs/configuration.md)\n"
          "  -l, --listen ADDR        HOST:PORT, [IPv6]:PORT or :PORT (default 0.0.0.0:8000)\n"
          "  -u, --upstream URL       http://host:port[/base], https://..., unix:/path.sock;\n"
          "                           replaces the config's routes with one catch-all route\n"
          "      --admin-listen ADDR  admin endpoints (default 127.0.0.1:9901), or off\n"
          "      --access-log PATH    access-log file, - for stdout (default)\n"
          "      --service-name NAME  the service field of every log line\n"
          "      --workers N          event-loop threads (default: one per CPU)\n"
          "      --check-config       validate, print the effective config, exit 0 or 1\n"
          "\n"
          "Environment: TRACEHOP_LISTEN, TRACEHOP_UPSTREAM, TRACEHOP_ACCESS_LOG,\n"
          "TRACEHOP_ADMIN_LISTEN, TRACEHOP_SERVICE_NAME, TRACEHOP_SAMPLING_RATIO,\n"
          "TRACEHOP_TRACE_HEADER, TRACEHOP_WORKERS (flags win over environment over file).\n",
          out);
}

struct listen_set {
    int *fds; /* workers x listen addresses */
    size_t per_worker;
};

/* Open one socket per worker and listen address; port 0 is resolved once and shared. */
static int open_listen_sockets(const struct config *c, struct listen_set *set)
{
    set->per_worker = c->listen_count;
    set->fds = malloc(sizeof(int) * c->workers * c->listen_count);
    if (!set->fds)
        return -ENOMEM;
    for (size_t a = 0; a < c->listen_count; a++) {
        struct sockaddr_storage addr;
        socklen_t addr_len = c->listen[a].addr_len;
        memcpy(&addr, &c->listen[a].addr, addr_len);
        for (unsigned w = 0; w < c->workers; w++) {
            int fd = listen_open((struct sockaddr *)&addr, addr_len, LISTEN_BACKLOG);
            if (fd < 0) {
                diag(DIAG_ERROR, "listen %s: %s", c->listen[a].text, strerror(-fd));
                return fd;
            }
            set->fds[w * c->listen_count + a] = fd;
            if (w == 0) {
                char text[80];
                listen_bound_address(fd, &addr, &addr_len);
                listen_format_address((struct sockaddr *)&addr, text, sizeof(text));
                diag(DIAG_INFO, "listening on %s", text);
            }
        }
    }
    return 0;
}

static int run(struct config *config)
{
    struct accesslog *log = NULL;
    struct worker *workers = NULL;
    struct listen_set sockets = {0};
    unsigned started = 0;
    sigset_t signals;
    int rc;

    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = accesslog_open(config->access_log_path, ACCESSLOG_BUFFER_BYTES, &log);
    if (rc < 0) {
        diag(DIAG_ERROR, "access log %s: %s", config->access_log_path, strerror(-rc));
        return 1;
    }
    rc = open_listen_sockets(config, &sockets);
    if (rc < 0)
        goto out;
    workers = calloc(config->workers, sizeof(*workers));
    if (!workers) {
        rc = -ENOMEM;
        goto out;
    }
    for (unsigned i = 0; i < config->workers; i++) {
        char error[256];
        rc = worker_init(&workers[i], i, config, log, sockets.fds + i * sockets.per_worker,
                         sockets.per_worker, error, sizeof(error));
        if (rc < 0) {
            diag(DIAG_ERROR, "worker %u: %s", i, error);
            workers[i].daemons_count = 0;
            goto out;
        }
        rc = worker_start(&workers[i]);
        if (rc < 0) {
            diag(DIAG_ERROR, "worker %u: cannot start thread: %s", i, strerror(-rc));
            goto out;
        }
        started++;
    }
    diag(DIAG_INFO, "tracehop %s ready: %u workers, %zu routes, access log %s", TRACEHOP_VERSION,
         config->workers, config->routes_count, config->access_log_path);

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&signals, &info);
        if (sig < 0)
            continue;
        if (sig == SIGUSR1) {
            accesslog_request_reopen(log);
        } else if (sig == SIGHUP) {
            diag(DIAG_WARN, "SIGHUP: configuration reload is not supported yet; still serving");
        } else {
            diag(DIAG_INFO, "%s: draining (up to %ld ms for in-flight requests)",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", config->drain_timeout_ms);
            break;
        }
    }
    rc = 0;
out:
    for (unsigned i = 0; i < started; i++)
        worker_request_drain(&workers[i]);
    for (unsigned i = 0; i < started; i++)
        worker_join(&workers[i]);
    for (unsigned i = 0; i < started; i++)
        worker_destroy(&workers[i]);
    logline_thread_cleanup();
    free(workers);
    free(sockets.fds);
    accesslog_close(log);
    if (rc == 0)
        diag(DIAG_INFO, "stopped");
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    enum { OPT_ADMIN = 256, OPT_ACCESS_LOG, OPT_SERVICE, OPT_WORKERS, OPT_CHECK, OPT_VERSION };
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"upstream", required_argument, NULL, 'u'},
        {"admin-listen", required_argument, NULL, OPT_ADMIN},
        {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
        {"service-name", required_argument, NULL, OPT_SERVICE},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct config_overrides flags = {0}, env;
    const char *config_path = NULL;
    bool check_only = false;
    struct config *config = NULL;
    char error[CONFIG_ERROR_MAX];
    int opt;

    if (argc > 1 && strcmp(argv[1], "logs") == 0)
        return tracehop_logs_main(argc - 1, argv + 1);
    while ((opt = getopt_long(argc, argv, "c:l:u:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'l':
            flags.listen = optarg;
            break;
        case 'u':
            flags.upstream = optarg;
            break;
        case OPT_ADMIN:
            flags.admin_listen = optarg;
            break;
        case OPT_ACCESS_LOG:
            flags.access_log = optarg;
            break;
        case OPT_SERVICE:
            flags.service_name = optarg;
            break;
        case OPT_WORKERS:
            flags.workers = optarg;
            break;
        case OPT_CHECK:
            check_only = true;
            break;
        case OPT_VERSION:
            printf("tracehop %s\n", TRACEHOP_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tracehop: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    config_overrides_from_env(&env);
    if (config_load(config_path, &flags, &env, &config, error) < 0) {
        diag(DIAG_ERROR, "config: %s", error);
        return 1;
    }
    if (check_only) {
        int rc = config_print(config);
        config_free(config);
        return rc < 0 ? 1 : 0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        diag(DIAG_ERROR, "curl_global_init failed");
        config_free(config);
        return 1;
    }
    int rc = run(config);
    config_free(config);
    curl_global_cleanup();
    return rc;
}
