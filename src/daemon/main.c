/* SPDX-License-Identifier: MIT */
/*
 * tracehop's entry point: parse the command line, load the config (exit 1 on any error before
 * anything listens), open the listening sockets, start one worker per core, then wait for
 * signals in the main thread (sigwaitinfo, so no handler code runs in a signal context):
 *   SIGTERM         drain: /readyz fails at once, requests are still served for
 *                   limits.drain_delay_ms (load balancers notice), then no new connections and
 *                   in-flight requests get up to limits.drain_timeout_ms; exit 0
 *   SIGINT          the same without the delay (someone pressed Ctrl-C)
 *   SIGHUP          reload the config file: parsed and validated here, off the workers' path,
 *                   then handed to every worker; an invalid one is refused, the old one serves
 *   SIGUSR1         reopen the access log
 *   SIGUSR2         ignored with a diagnostic: HAProxy and nginx users send it out of habit
 *                   (binary upgrade there), and its default action would kill the process
 * The wait wakes every second to end the intervals of collapsed diagnostics (common/diag.h).
 * With systemd, readiness, reloads and the stop are reported through sd_notify, and a socket
 * passed by socket activation (LISTEN_FDS) replaces the configured listen address.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "tracehop-config.h"
#include "cli/logs.h"
#include "observe/accesslog.h"
#include "observe/admin.h"
#include "proxy/curl_memory.h"
#include "config/config.h"
#include "common/cpu_probe.h"
#include "common/listen_socket.h"
#include "observe/logline.h"
#include "observe/otlp_exporter.h"
#include "daemon/build_info.h"
#include "daemon/config_report.h"
#include "daemon/worker.h"
#include "common/diag.h"

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#else
static int sd_notify(int unset_environment, const char *state)
{
    (void)unset_environment;
    (void)state;
    return 0;
}
static int sd_listen_fds(int unset_environment)
{
    (void)unset_environment;
    return 0;
}
#define SD_LISTEN_FDS_START 3
#endif

#define ACCESSLOG_BUFFER_BYTES (8u * 1024 * 1024)
#define LISTEN_BACKLOG         4096

static void usage(FILE *out)
{
    fputs("Usage: tracehop [--config FILE] [--listen ADDR] [--upstream URL]\n"
          "                [--admin-listen ADDR|off] [--access-log PATH|-]\n"
          "                [--service-name NAME] [--workers N]\n"
          "                [--log-level debug|info|warn|error]\n"
          "       tracehop --check-config --config FILE\n"
          "       tracehop logs [options] FILE...   (see tracehop logs --help)\n"
          "       tracehop --version | --help        (also tracehop version, tracehop help)\n"
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
          "      --log-level LEVEL    debug, info, warn or error (default info)\n"
          "      --check-config       validate, print the effective config, exit 0 or 1\n"
          "\n"
          "Environment: TRACEHOP_LISTEN, TRACEHOP_UPSTREAM, TRACEHOP_ACCESS_LOG,\n"
          "TRACEHOP_ADMIN_LISTEN, TRACEHOP_SERVICE_NAME, TRACEHOP_SAMPLING_RATIO,\n"
          "TRACEHOP_TRACE_HEADER, TRACEHOP_WORKERS, TRACEHOP_LOG_LEVEL, TRACEHOP_CONFIG\n"
          "(flags win over environment over file). Span export (docs/tracing.md) also reads\n"
          "OpenTelemetry's OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME,\n"
          "OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER*, OTEL_BSP_* and OTEL_SDK_DISABLED\n"
          "(below the TRACEHOP_* ones, above the file).\n",
          out);
}

struct listen_set {
    int *fds; /* workers x listen addresses */
    size_t per_worker;
};

/* Socket activation: every worker gets its own dup of the passed socket, so that each can
 * close its copy when it stops accepting. */
static int use_activated_socket(const struct config *c, struct listen_set *set)
{
    int fd = SD_LISTEN_FDS_START;
    set->per_worker = 1;
    set->fds = malloc(sizeof(int) * c->workers);
    if (!set->fds)
        return -ENOMEM;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -errno;
    for (unsigned w = 0; w < c->workers; w++) {
        set->fds[w] = w == 0 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (set->fds[w] < 0)
            return -errno;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    diag(DIAG_INFO, "listening on the socket passed by the service manager (LISTEN_FDS)");
    return 0;
}

/* Open one socket per worker and listen address; port 0 is resolved once and shared. */
static int open_listen_sockets(const struct config *c, struct listen_set *set)
{
    if (sd_listen_fds(1) >= 1)
        return use_activated_socket(c, set);
    set->per_worker = c->listen_count;
    set->fds = malloc(sizeof(int) * c->workers * c->listen_count);
    if (!set->fds)
        return -ENOMEM;
    for (size_t a = 0; a < c->listen_count; a++) {
        struct sockaddr_storage addr;
        socklen_t addr_len = c->listen[a].addr_len;
        memcpy(&addr, &c->listen[a].addr, addr_len);
        int free_rc = listen_check_free((struct sockaddr *)&addr, addr_len);
        if (free_rc < 0) {
            diag(DIAG_ERROR, "listen %s: %s", c->listen[a].text,
                 free_rc == -EADDRINUSE ? "address already in use (another tracehop?)"
                                        : strerror(-free_rc));
            return free_rc;
        }
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

/* "api, default" for the ready and reload messages; past ROUTE_NAMES_SHOWN names, "+N more". */
#define ROUTE_NAMES_SHOWN 8
static void route_names(const struct config *c, char *out, size_t size)
{
    int head =
        snprintf(out, size, "%zu route%s (", c->routes_count, c->routes_count == 1 ? "" : "s");
    size_t used = head > 0 && (size_t)head < size ? (size_t)head : 0;

    for (size_t i = 0; i < c->routes_count && used < size; i++) {
        int n = i < ROUTE_NAMES_SHOWN
                    ? snprintf(out + used, size - used, "%s%s", i ? ", " : "", c->routes[i].name)
                    : snprintf(out + used, size - used, ", +%zu more", c->routes_count - i);
        if (n < 0 || i >= ROUTE_NAMES_SHOWN)
            break;
        used += (size_t)n;
    }
    if (used < size)
        snprintf(out + used, size - used, ")");
}

static uint64_t now_epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void notify_reloading(void)
{
    char state[64];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    sd_notify(0, state);
}

/* config_load with what the loader needs to know of the machine, probed now: at start and at
 * every reload, so that a changed CPU allowance shows as a changed default worker count. */
static int load_config(const char *path, const struct config_overrides *flags,
                       const struct config_overrides *env, struct config **ret, char *error)
{
    const struct config_machine machine = {.cpus = cpu_probe_usable()};

    return config_load(path, flags, env, &machine, ret, error);
}

/* routes[].tls.insecure_skip_verify: loudly, at every start, reload and --check-config, so that
 * a test setting that reached production is seen. */
static void warn_insecure_routes(const struct config *c)
{
    for (size_t i = 0; i < c->routes_count; i++)
        if (c->routes[i].tls.insecure_skip_verify)
            diag(DIAG_WARN,
                 "route %s (routes[%zu]): tls.insecure_skip_verify is true: the certificate and "
                 "name of %s are NOT verified; for test setups only",
                 c->routes[i].name, i, c->routes[i].upstream.text);
}

/*
 * SIGHUP: load the file again with the same flags and environment, validate it completely
 * here in the main thread, then publish it to every worker. Settings bound to sockets and
 * threads are refused with the reason rather than half-applied.
 */
static void reload(struct config **current, const char *path, const struct config_overrides *flags,
                   const struct config_overrides *env, struct worker *workers, unsigned count,
                   struct otlp_exporter *exporter, struct admin_state *state)
{
    struct config *next = NULL;
    char error[CONFIG_ERROR_MAX], what[CONFIG_ERROR_MAX];

    notify_reloading();
    atomic_store(&state->last_reload_ms, now_epoch_ms());
    if (!path) {
        diag(DIAG_WARN, "SIGHUP: no config file to reload (started without --config)");
        goto failed;
    }
    if (load_config(path, flags, env, &next, error) < 0) {
        diag(DIAG_ERROR, "reload refused, still serving the previous config: %s", error);
        goto failed;
    }
    config_report_messages(next, false);
    if (config_needs_restart(*current, next, what)) {
        diag(DIAG_ERROR,
             "reload refused, still serving the previous config: %s changed, which "
             "need%s a restart",
             what, strchr(what, ',') ? "" : "s");
        config_unref(next);
        goto failed;
    }
    for (unsigned i = 0; i < count; i++) {
        config_ref(next);
        worker_publish_config(&workers[i], next);
    }
    otlp_exporter_publish_config(exporter, next);
    config_unref(*current);
    *current = next;
    atomic_fetch_add(&state->reloads_ok, 1);
    atomic_store(&state->last_reload_ok, true);
    admin_publish_config(state, config_to_text(next));
    diag_set_level(next->log_level);
    char names[256];
    route_names(next, names, sizeof(names));
    diag(DIAG_INFO, "config reloaded from %s: %s", path, names);
    warn_insecure_routes(next);
    sd_notify(0, "READY=1");
    return;
failed:
    atomic_fetch_add(&state->reloads_failed, 1);
    atomic_store(&state->last_reload_ok, false);
    sd_notify(0, "READY=1");
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What is left of limits.drain_timeout_ms since the drain began. */
static long drain_budget_left_ms(int64_t drain_start_ms, long drain_timeout_ms)
{
    int64_t left = drain_start_ms + drain_timeout_ms - monotonic_ms();
    return left > 0 ? (long)left : 0;
}

/* Keep serving while load balancers notice /readyz failing; a second signal cuts it short. */
static void wait_drain_delay(long delay_ms, const sigset_t *signals)
{
    struct timespec deadline, now;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += delay_ms / 1000;
    deadline.tv_nsec += (delay_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L)
        deadline.tv_sec++, deadline.tv_nsec -= 1000000000L;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left_ms =
            (deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1000000;
        if (left_ms <= 0)
            return;
        struct timespec wait = {left_ms / 1000, (left_ms % 1000) * 1000000L};
        int sig = sigtimedwait(signals, NULL, &wait);
        if (sig == SIGTERM || sig == SIGINT) {
            diag(DIAG_INFO, "second stop signal: skipping the rest of the drain delay");
            return;
        }
    }
}

struct run_context {
    struct config *config;
    const char *config_path;
    const struct config_overrides *flags;
    const struct config_overrides *env;
};

static int run(struct run_context *ctx)
{
    struct config *config = ctx->config;
    struct accesslog *log = NULL;
    struct worker *workers = NULL;
    struct listen_set sockets = {0};
    struct admin *admin = NULL;
    struct otlp_exporter *exporter = NULL;
    struct admin_state state = {0};
    unsigned started = 0;
    char names[256];
    sigset_t signals;
    int rc;

    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = accesslog_open(config->access_log_path, ACCESSLOG_BUFFER_BYTES, &log);
    if (rc < 0) {
        diag(DIAG_ERROR, "access log %s: %s", config->access_log_path, strerror(-rc));
        return 1;
    }
    admin_state_init(&state);
    rc = open_listen_sockets(config, &sockets);
    if (rc < 0)
        goto out;
    /* Always started: a reload may turn export on. Idle, it is one sleeping thread. */
    rc = otlp_exporter_start(config, TRACEHOP_VERSION, &exporter);
    if (rc < 0) {
        diag(DIAG_ERROR, "span exporter: %s", strerror(-rc));
        goto out;
    }
    state.export = otlp_exporter_stats(exporter);
    workers = calloc(config->workers, sizeof(*workers));
    state.workers = calloc(config->workers, sizeof(*state.workers));
    if (!workers || !state.workers) {
        rc = -ENOMEM;
        goto out;
    }
    state.workers_count = config->workers;
    state.accesslog = log;
    admin_publish_config(&state, config_to_text(config));
    atomic_store(&state.last_reload_ms, now_epoch_ms());
    atomic_store(&state.last_reload_ok, true);
    for (unsigned i = 0; i < config->workers; i++) {
        char error[256];
        state.workers[i] = &workers[i].metrics;
        rc =
            worker_init(&workers[i], i, config, log, exporter, sockets.fds + i * sockets.per_worker,
                        sockets.per_worker, error, sizeof(error));
        if (rc < 0) {
            diag(DIAG_ERROR, "worker %u: %s", i, error);
            worker_destroy(&workers[i]);
            goto out;
        }
        rc = worker_start(&workers[i]);
        if (rc < 0) {
            diag(DIAG_ERROR, "worker %u: cannot start thread: %s", i, strerror(-rc));
            worker_destroy(&workers[i]);
            goto out;
        }
        started++;
    }
    if (config->admin_enabled && (rc = admin_start(&config->admin_listen, &state, &admin)) < 0)
        goto out;
    atomic_store(&state.ready, true);
    build_info_check_notify_socket();
    sd_notify(0, "READY=1");
    route_names(config, names, sizeof(names));
    diag(DIAG_INFO, "tracehop %s ready: %u workers, %s, access log %s", TRACEHOP_VERSION,
         config->workers, names, config->access_log_path);

    for (;;) {
        siginfo_t info;
        const struct timespec tick = {1, 0};
        int sig = sigtimedwait(&signals, &info, &tick);
        if (sig < 0) {
            diag_tick();
            continue;
        }
        if (sig == SIGUSR2) {
            diag(DIAG_WARN, "SIGUSR2 ignored (tracehop has no binary upgrade; SIGHUP reloads, "
                            "SIGUSR1 reopens the access log)");
        } else if (sig == SIGUSR1) {
            accesslog_request_reopen(log);
        } else if (sig == SIGHUP) {
            reload(&config, ctx->config_path, ctx->flags, ctx->env, workers, started, exporter,
                   &state);
        } else {
            atomic_store(&state.ready, false);
            sd_notify(0, "STOPPING=1");
            long delay = sig == SIGTERM ? config->drain_delay_ms : 0;
            diag(DIAG_INFO,
                 "%s: draining: readiness off, serving for %ld ms more, then up to %ld ms "
                 "for in-flight requests",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", delay, config->drain_timeout_ms);
            wait_drain_delay(delay, &signals);
            break;
        }
    }
    rc = 0;
out:
    atomic_store(&state.ready, false);
    int64_t drain_start_ms = monotonic_ms();
    for (unsigned i = 0; i < started; i++)
        worker_request_drain(&workers[i]);
    for (unsigned i = 0; i < started; i++)
        worker_join(&workers[i]);
    /* The spans of the last requests get what is left of the drain budget. */
    otlp_exporter_stop(exporter, drain_budget_left_ms(drain_start_ms, config->drain_timeout_ms));
    /* After the workers and the exporter: metrics stay readable while draining. */
    admin = admin_stop(admin);
    otlp_exporter_free(exporter);
    unsigned cut_off = 0;
    for (unsigned i = 0; i < started; i++) {
        worker_destroy(&workers[i]);
        cut_off += workers[i].cut_off;
    }
    logline_thread_cleanup();
    diag_flush(); /* the suppressed counts of the last requests */
    admin_state_clear(&state);
    free(workers);
    free(state.workers);
    free(sockets.fds);
    accesslog_close(log);
    ctx->config = config;
    if (rc == 0 && cut_off > 0)
        diag(DIAG_INFO, "stopped; %u request%s cut off by the drain timeout", cut_off,
             cut_off == 1 ? "" : "s");
    else if (rc == 0)
        diag(DIAG_INFO, "stopped");
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    enum { OPT_ADMIN = 256, OPT_ACCESS_LOG, OPT_SERVICE, OPT_WORKERS, OPT_CHECK, OPT_VERSION };
    enum { OPT_LOG_LEVEL = OPT_VERSION + 1 };
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"upstream", required_argument, NULL, 'u'},
        {"admin-listen", required_argument, NULL, OPT_ADMIN},
        {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
        {"service-name", required_argument, NULL, OPT_SERVICE},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
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
    if (argc == 2 && strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "version") == 0) {
        build_info_print(stdout);
        return 0;
    }
    opterr = 0; /* config_report_bad_option says it in one line */
    while ((opt = getopt_long(argc, argv, ":c:l:u:h", options, NULL)) != -1) {
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
        case OPT_LOG_LEVEL:
            flags.log_level = optarg;
            break;
        case OPT_CHECK:
            check_only = true;
            break;
        case OPT_VERSION:
            build_info_print(stdout);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return config_report_bad_option(argv, opt, options);
        }
    }
    if (optind < argc)
        return config_report_bad_argument(argv[optind]);
    config_overrides_from_env(&env);
    bool path_from_env = !config_path && env.config;
    if (path_from_env)
        config_path = env.config;
    if (load_config(config_path, &flags, &env, &config, error) < 0) {
        /* An error about the file itself ("PATH: No such file or directory") says where the path
         * came from when no flag gave it, so that a stale variable is found. */
        char named[CONFIG_ERROR_MAX + 32];
        if (path_from_env && strncmp(error, config_path, strlen(config_path)) == 0) {
            snprintf(named, sizeof(named), "TRACEHOP_CONFIG: %s", error);
            config_report_error(named);
        } else {
            config_report_error(error);
        }
        return 1;
    }
    diag_set_level(config->log_level);
    config_report_messages(config, true);
    warn_insecure_routes(config);
    if (check_only) {
        int rc = config_print(config);
        config_free(config);
        return rc < 0 ? 1 : 0;
    }
    if (curl_memory_global_init() < 0) {
        diag(DIAG_ERROR, "curl_global_init failed (out of memory?)");
        config_free(config);
        return 1;
    }
    struct run_context ctx = {
        .config = config, .config_path = config_path, .flags = &flags, .env = &env};
    int rc = run(&ctx);
    config_unref(ctx.config);
    curl_global_cleanup();
    return rc;
}
