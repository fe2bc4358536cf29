/* SPDX-License-Identifier: MIT */
/*
 * Resource exhaustion: what tracehop does when connections, file descriptors or memory run out.
 *
 *   - 10,000 idle connections: a fresh client is still served (status, trace headers, log line),
 *     the daemon's RSS stays under a bound derived from the configuration, connections beyond
 *     limits.max_connections are closed at once (none left waiting in the listen backlog), and
 *     after limits.client_timeout_ms every idle one is closed and the fd count is back where it
 *     started.
 *   - File descriptors running out (RLIMIT_NOFILE lowered on the daemon with prlimit, like
 *     `ulimit -n 48`): connections that are open keep being served, the exhaustion is reported
 *     once (one diagnostic line, however often accept fails), the daemon does not spin, and it
 *     accepts again as soon as descriptors free up, also where none of the connections of the
 *     worker that ran out closes (the limit raised back, kept-alive connections left open).
 *   - Memory: (a) hundreds of hostile connections (header blocks just under max_header_bytes that
 *     never end, slow uploads, downloads nobody reads) keep the RSS under a bound computed from the
 *     configuration; (b) with allocations failing at random (the failing-malloc LD_PRELOAD shim)
 *     the daemon never crashes, every request gets a correct response, a 5xx or a closed
 *     connection, and once the pressure ends it serves normally again.
 *
 * Sanitizers and valgrind. tests/run-all runs this suite under ASan+UBSan and TSan, and
 * tests/valgrind-integration with the daemon under memcheck. The allocation-failure part cannot
 * work there (both replace the allocator): it is skipped with a printed reason. RSS bounds are
 * a growth over the baseline RSS (measured in the same build) that the configuration allows in
 * the plain build: under ASan (shadow memory, redzones, quarantine) that allowance is doubled,
 * and under TSan (whose shadow follows what is allocated, not what is touched) and valgrind
 * (whose RSS is its own) the figures are printed but not asserted, saying so. Everything else is
 * asserted in every build. Waits scale with CK_TIMEOUT_MULTIPLIER, which both runners set.
 *
 * Raw sockets for the idle connections (non-blocking connects completed through epoll), libcurl
 * for the requests that must be served.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER      "AddressSanitizer"
#define SANITIZER_ASAN 1
#elif defined(__SANITIZE_THREAD__)
#define SANITIZER "ThreadSanitizer"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER      "AddressSanitizer"
#define SANITIZER_ASAN 1
#elif __has_feature(thread_sanitizer)
#define SANITIZER "ThreadSanitizer"
#endif
#endif

#define WORKERS 2 /* the harness starts every daemon with --workers 2 */
#define KIB     1024l

static char dir[HARNESS_PATH_MAX];
static struct harness_echo echo;
static struct harness_daemon proxy;

static void setup(void)
{
    ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
    ck_assert_int_eq(harness_echo_start(&echo, dir, false), 0);
}

static void teardown(void)
{
    if (proxy.proc.pid > 0 && !proxy.proc.reaped && harness_daemon_stop(&proxy) != 0)
        fprintf(stderr, "tracehop did not exit with 0 at the end of the test\n");
    if (echo.proc.pid > 0)
        harness_echo_stop(&echo);
    harness_tmpdir_remove(dir);
}

/* --- the environment ---------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CK_TIMEOUT_MULTIPLIER (3 under the sanitizers, 10 under valgrind), at least 1. */
static int slowdown(void)
{
    const char *env = getenv("CK_TIMEOUT_MULTIPLIER");
    int m = env ? atoi(env) : 1;
    return m < 1 ? 1 : m;
}

/* True when the daemon runs under valgrind (tests/valgrind-integration's wrapper script). */
static bool daemon_under_valgrind(void)
{
    const char *bin = getenv("TRACEHOP_BIN");
    return bin && strstr(bin, "valgrind");
}

/*
 * The factor the allowed RSS growth gets in this build, 0 when it cannot be asserted (printed
 * either way). The baseline is measured in the same build, so only the growth is scaled. ASan
 * adds shadow memory (1/8 of what is allocated, written when it is poisoned), redzones per
 * allocation and a 16 MiB quarantine (tests/run-all): measured, 10,000 idle connections grow it
 * 3x (4.6 -> 13.9 KiB each), inside 2x the allowance, which has the slack. TSan writes shadow
 * memory for every allocated byte when it is allocated (measured: 70 KiB per idle connection,
 * twice its untouched 32 KiB pool): its RSS says what is allocated, not what is touched, which
 * is what the bounds are about.
 */
static double rss_factor(const char **why)
{
    if (daemon_under_valgrind()) {
        *why = "the daemon runs under valgrind, whose RSS is its own: printed, not asserted";
        return 0;
    }
#ifdef SANITIZER
#ifdef SANITIZER_ASAN
    *why = SANITIZER " build: growth allowed x2 for shadow memory, redzones and quarantine";
    return 2;
#else
    *why = SANITIZER " build: its shadow memory follows what is allocated, not what is touched: "
                     "printed, not asserted";
    return 0;
#endif
#else
    *why = "plain build";
    return 1;
#endif
}

/*
 * meson test sets MALLOC_PERTURB_, which makes glibc fill every allocation with a pattern and so
 * touch every page of it: each idle connection's whole 32 KiB pool would count in the RSS. The
 * daemons whose RSS is measured run without it, as in production.
 */
static char *no_perturb[] = {"MALLOC_PERTURB_=0", NULL};

/* Raise our own RLIMIT_NOFILE to the hard limit (the daemons we start inherit it). */
static rlim_t raise_nofile(void)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    return rl.rlim_cur;
}

/* User + system CPU time of a process in milliseconds, -1 if unknown. */
static long cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long utime, stime;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (long)((utime + stime) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

/*
 * Connections waiting in the accept queues of the sockets listening on 127.0.0.1:port (for a
 * listening socket, /proc/net/tcp's rx_queue is its accept-queue length). -1 if unreadable.
 */
static long accept_queue(unsigned port)
{
    FILE *f = fopen("/proc/net/tcp", "re");
    char line[256];
    long total = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned local_port, state;
        unsigned long rx;
        /* sl: local_address rem_address st tx_queue:rx_queue ... (all hex) */
        if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%lx", &local_port, &state, &rx) == 3 &&
            local_port == port && state == 0x0a /* TCP_LISTEN */)
            total += (long)rx;
    }
    fclose(f);
    return total;
}

/* Diagnostic lines (JSON, on the daemon's stderr) whose message contains `text`. */
static bool match_message(json_t *object, const void *arg)
{
    const char *message = harness_json_str(object, "message");
    return message && strstr(message, arg);
}

/* For a socket inode: "tcp 127.0.0.1:LOCAL -> :REMOTE STATE" from /proc/net/tcp (the daemon
 * uses IPv4 loopback only), "unix" if /proc/net/unix has it; false if neither. */
static bool describe_socket(unsigned long inode, char *out, size_t size)
{
    static const char *const states[] = {"?",          "ESTABLISHED", "SYN_SENT",  "SYN_RECV",
                                         "FIN_WAIT1",  "FIN_WAIT2",   "TIME_WAIT", "CLOSE",
                                         "CLOSE_WAIT", "LAST_ACK",    "LISTEN",    "CLOSING"};
    char line[512];
    bool found = false;
    FILE *f = fopen("/proc/net/tcp", "re");
    while (f && !found && fgets(line, sizeof(line), f)) {
        unsigned local, remote, state;
        unsigned long ino;
        if (sscanf(line, " %*d: %*x:%x %*x:%x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &local, &remote,
                   &state, &ino) == 4 &&
            ino == inode) {
            snprintf(out, size, "tcp :%u -> :%u %s", local, remote,
                     state < sizeof(states) / sizeof(states[0]) ? states[state] : "?");
            found = true;
        }
    }
    if (f)
        fclose(f);
    f = found ? NULL : fopen("/proc/net/unix", "re");
    while (f && !found && fgets(line, sizeof(line), f)) {
        unsigned long ino;
        if (sscanf(line, "%*s %*x %*x %*x %*x %*x %lu", &ino) == 1 && ino == inode) {
            snprintf(out, size, "unix");
            found = true;
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* What a process's fds are, on stderr (for a failed fd-count assertion): each fd's target, with
 * TCP ports and state for sockets; at most `max` lines. */
static void dump_fds(pid_t pid, int max)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int shown = 0, total = 0;
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        char link[320], target[128] = "?", socket_text[96] = "";
        unsigned long inode;
        if (e->d_name[0] == '.')
            continue;
        total++;
        if (shown >= max)
            continue;
        snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        if (sscanf(target, "socket:[%lu]", &inode) == 1 &&
            !describe_socket(inode, socket_text, sizeof(socket_text)))
            snprintf(socket_text, sizeof(socket_text), "(not in /proc/net/tcp or unix)");
        fprintf(stderr, "  pid %d fd %s -> %s %s\n", (int)pid, e->d_name, target, socket_text);
        shown++;
    }
    closedir(d);
    if (total > shown)
        fprintf(stderr, "  ... %d more fds\n", total - shown);
}

/* harness_wait_fd_count_at_most, listing the daemon's fds when it fails. */
static bool wait_fds_at_most(pid_t pid, int max, int timeout_ms, int *last)
{
    if (harness_wait_fd_count_at_most(pid, max, timeout_ms, last))
        return true;
    dump_fds(pid, 64);
    return false;
}

/* How many of a process's fds are TCP connections accepted on `port` (not the listening
 * sockets); -1 if /proc cannot be read. */
static int accepted_connections(pid_t pid, unsigned port)
{
    char path[64], line[512];
    unsigned long inodes[64];
    size_t count = 0;
    int found = 0;
    FILE *f = fopen("/proc/net/tcp", "re");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f) && count < sizeof(inodes) / sizeof(inodes[0])) {
        unsigned local, state;
        unsigned long ino;
        if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &local, &state,
                   &ino) == 3 &&
            local == port && state != 0x0a /* TCP_LISTEN */ && ino != 0)
            inodes[count++] = ino;
    }
    fclose(f);
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));) {
        char link[320], target[64];
        unsigned long ino;
        snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        for (size_t i = 0; sscanf(target, "socket:[%lu]", &ino) == 1 && i < count; i++)
            found += inodes[i] == ino;
    }
    closedir(d);
    return found;
}

/*
 * The daemon's fds when it is ready and holds no client connection: the baseline that fd counts
 * are compared with.
 *   - harness_daemon_start returns once the daemon says "listening on": its listening sockets are
 *     open then, but its workers may not be yet, and each worker opens 5 fds (its epoll set, its
 *     wake-up eventfd, libcurl's wake-up socketpair and libmicrohttpd's epoll fd). A baseline
 *     counted in between is too low by up to 10 (seen: 11 instead of 17, then "19 fds, at most 13
 *     expected" once every client had left). The workers exist when the daemon says "ready".
 *   - The client connections of what ran before (the harness's port probe, curl clients that
 *     just hung up) are closed by the daemon a moment later: waited for, so that the baseline is
 *     not one too high either.
 */
static int settled_fd_count(const struct harness_daemon *d)
{
    json_t *ready = harness_jsonl_wait(d->stderr_path, match_message, " ready: ", 1,
                                       HARNESS_WAIT_MS * slowdown(), NULL);
    ck_assert_msg(json_array_size(ready) == 1, "tracehop did not say it is ready");
    json_decref(ready);
    int64_t deadline = now_ms() + 5000 * slowdown();
    int accepted;
    while ((accepted = accepted_connections(d->proc.pid, d->port)) != 0 && now_ms() < deadline)
        poll(NULL, 0, 20); /* no event for this: poll /proc, as the harness does */
    ck_assert_msg(accepted == 0, "the daemon still holds %d client connections", accepted);
    return harness_fd_count(d->proc.pid);
}

/* Wait until the daemon has at least `min` open fds; false (reported) after timeout_ms. */
static bool wait_fd_count_at_least(pid_t pid, int min, int timeout_ms, int *last)
{
    int64_t deadline = now_ms() + timeout_ms;
    int count;
    for (;;) {
        count = harness_fd_count(pid);
        if (count >= min || now_ms() >= deadline)
            break;
        poll(NULL, 0, 20); /* no event for this: poll /proc, as the harness does */
    }
    if (last)
        *last = count;
    if (count < min)
        fprintf(stderr, "pid %d has %d open fds after %d ms (expected at least %d)\n", (int)pid,
                count, timeout_ms, min);
    return count >= min;
}

static size_t count_diagnostics(const char *text)
{
    json_t *all = harness_jsonl_wait(proxy.stderr_path, match_message, text, 1, 0, NULL);
    size_t n = json_array_size(all);
    json_decref(all);
    return n;
}

/* --- idle connections --------------------------------------------------------------------- */

/* Raw client connections to the daemon that send nothing. */
struct idle_set {
    int *fds;
    bool *closed; /* closed by the daemon (EOF or reset seen) */
    size_t count, cap;
    size_t closed_count;  /* by the daemon */
    size_t dropped_count; /* closed by us (idle_close_some) */
    int epoll_fd;         /* every open fd, EPOLLIN | EPOLLRDHUP: the daemon's close wakes us */
};

static void idle_init(struct idle_set *s, size_t cap)
{
    *s = (struct idle_set){.cap = cap};
    s->fds = calloc(cap, sizeof(int));
    s->closed = calloc(cap, sizeof(bool));
    s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    ck_assert(s->fds && s->closed && s->epoll_fd >= 0);
}

static void idle_free(struct idle_set *s)
{
    for (size_t i = 0; i < s->count; i++)
        if (s->fds[i] >= 0)
            close(s->fds[i]);
    if (s->epoll_fd >= 0)
        close(s->epoll_fd);
    free(s->fds);
    free(s->closed);
    *s = (struct idle_set){.epoll_fd = -1};
}

/*
 * Open n more connections to 127.0.0.1:port, at most `batch` handshakes at a time (so that the
 * listen backlog is not what is measured), each completed within timeout_ms. A connect that
 * fails (refused, reset) counts as closed by the daemon. Returns how many were opened.
 */
static size_t idle_open(struct idle_set *s, unsigned port, size_t n, size_t batch, int timeout_ms)
{
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int connecting = epoll_create1(EPOLL_CLOEXEC);
    size_t opened = 0;

    ck_assert_int_ge(connecting, 0);
    ck_assert_uint_le(s->count + n, s->cap);
    while (opened < n) {
        size_t start = s->count, want = n - opened < batch ? n - opened : batch, pending = 0;
        for (size_t i = 0; i < want; i++) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            ck_assert_msg(fd >= 0, "socket: %s (after %zu connections)", strerror(errno), s->count);
            size_t k = s->count++;
            s->fds[k] = fd;
            if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 || errno == EINPROGRESS) {
                struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = k};
                ck_assert_int_eq(epoll_ctl(connecting, EPOLL_CTL_ADD, fd, &ev), 0);
                pending++;
            } else {
                s->closed[k] = true;
                s->closed_count++;
            }
        }
        int64_t deadline = now_ms() + timeout_ms;
        while (pending > 0) {
            struct epoll_event events[256];
            int left = (int)(deadline - now_ms());
            ck_assert_msg(left > 0, "%zu of %zu connects still pending after %d ms", pending, want,
                          timeout_ms);
            int got = epoll_wait(connecting, events, 256, left);
            for (int i = 0; i < got; i++) {
                size_t k = (size_t)events[i].data.u64;
                int err = 0;
                socklen_t len = sizeof(err);
                getsockopt(s->fds[k], SOL_SOCKET, SO_ERROR, &err, &len);
                epoll_ctl(connecting, EPOLL_CTL_DEL, s->fds[k], NULL);
                pending--;
                if (err != 0) {
                    s->closed[k] = true;
                    s->closed_count++;
                    continue;
                }
                struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = k};
                ck_assert_int_eq(epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->fds[k], &ev), 0);
            }
        }
        opened += s->count - start;
    }
    close(connecting);
    return opened;
}

/* Take note of connections the daemon closed, waiting up to timeout_ms for the first. */
static void idle_collect_closed(struct idle_set *s, int timeout_ms)
{
    struct epoll_event events[512];
    int got = epoll_wait(s->epoll_fd, events, 512, timeout_ms);
    for (int i = 0; i < got; i++) {
        size_t k = (size_t)events[i].data.u64;
        char byte;
        ssize_t r = recv(s->fds[k], &byte, 1, MSG_DONTWAIT);
        ck_assert_msg(r <= 0, "the daemon sent %zd bytes on an idle connection", r);
        if (r < 0 && errno == EAGAIN)
            continue;
        epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, s->fds[k], NULL);
        s->closed[k] = true;
        s->closed_count++;
    }
}

/* Wait until at least `want` connections of the set were closed by the daemon. */
static bool idle_wait_closed(struct idle_set *s, size_t want, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (s->closed_count < want) {
        int left = (int)(deadline - now_ms());
        if (left <= 0) {
            fprintf(stderr,
                    "%zu of %zu connections closed by the daemon after %d ms (expected %zu)\n",
                    s->closed_count, s->count, timeout_ms, want);
            return false;
        }
        idle_collect_closed(s, left);
    }
    return true;
}

/* Close (from our side) up to n connections of the set that are still open; returns how many. */
static size_t idle_close_some(struct idle_set *s, size_t n)
{
    size_t done = 0;
    for (size_t k = 0; k < s->count && done < n; k++) {
        if (s->fds[k] < 0 || s->closed[k])
            continue;
        epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, s->fds[k], NULL);
        close(s->fds[k]);
        s->fds[k] = -1;
        s->closed[k] = true;
        done++;
    }
    s->dropped_count += done;
    return done;
}

/* --- requests that must be served --------------------------------------------------------- */

/*
 * A request on a new connection is served: 200, valid traceparent and X-Trace-ID, and an
 * access-log line with the same span id, status and outcome ok.
 */
static void assert_served(const char *what)
{
    char id[17], target[64], trace_id[33], span_id[17], flags[3];
    struct harness_response rs;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/api/fresh-%s", id);
    struct harness_request rq = {.target = target, .timeout_ms = 5000 * slowdown()};
    harness_http(proxy.port, &rq, &rs);
    ck_assert_msg(rs.status == 200, "%s: a fresh client got %ld (%s)", what, rs.status, rs.error);
    ck_assert_msg(
        harness_traceparent_split(harness_header(&rs, "traceparent"), trace_id, span_id, flags),
        "%s: no valid traceparent on the response", what);
    ck_assert_msg(harness_header(&rs, "X-Trace-ID") != NULL, "%s: no X-Trace-ID", what);
    json_t *body = harness_response_json(&rs);
    const char *echoed = body ? harness_json_str(body, "target") : NULL;
    ck_assert_msg(echoed && strcmp(echoed, target) == 0, "%s: the echo body is not the echo of %s",
                  what, target);
    json_decref(body);
    harness_response_free(&rs);

    json_t *log = harness_log_line(&proxy, "span_id", span_id);
    ck_assert_msg(log != NULL, "%s: no access-log line for the fresh request", what);
    const char *schema = harness_log_schema_error(log);
    ck_assert_msg(schema == NULL, "%s: access-log line: %s", what, schema);
    ck_assert_str_eq(harness_json_str(log, "trace_id"), trace_id);
    ck_assert_str_eq(harness_json_str(log, "path"), target);
    ck_assert_int_eq(harness_json_int(log, "status", 0), 200);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "ok");
    json_decref(log);
}

/* --- 10,000 idle connections -------------------------------------------------------------- */

#define IDLE_CONNECTIONS 10000
/* Per worker 5300: SO_REUSEPORT spreads 10,000 connections over 2 workers as 5000 +- 50 (one
 * standard deviation), so none is turned away before the overflow part opens more on purpose. */
#define IDLE_MAX_CONNECTIONS 10600
#define IDLE_OVERFLOW        800
#define IDLE_TIMEOUT_MS      6000
/*
 * What 10,000 idle connections may cost (KiB each). libmicrohttpd gives each connection a pool
 * of max(32 KiB, 2 * max_header_bytes + 16 KiB) = 32 KiB here, allocated when the connection is
 * accepted but only touched as requests arrive, plus its struct MHD_Connection (~1 KiB) and the
 * kernel's epoll item (not in RSS). A connection that never sends anything touches at most the
 * first page of its pool and its struct: 8 KiB is that with room for malloc's headers and
 * fragmentation. The worst case (every pool touched) would be 33 KiB each; docs/operations.md
 * budgets 16 KiB for sizing. The measured figure is printed, and docs/security.md quotes it.
 */
#define IDLE_KIB_PER_CONNECTION 8
#define IDLE_BASE_SLACK_KIB     (16 * 1024) /* allocator arenas and caches that grow with load */

START_TEST(test_ten_thousand_idle_connections)
{
    char config[1024];
    struct idle_set idle;
    int fds, base_fds;
    const char *why;
    double factor = rss_factor(&why);
    int timeout_ms = IDLE_TIMEOUT_MS * slowdown();

    rlim_t nofile = raise_nofile();
    ck_assert_msg(nofile >= IDLE_CONNECTIONS + IDLE_OVERFLOW + 1000,
                  "RLIMIT_NOFILE hard limit %lu: too low for %d connections", (unsigned long)nofile,
                  IDLE_CONNECTIONS + IDLE_OVERFLOW);
    snprintf(config, sizeof(config),
             "{\"limits\": {\"max_connections\": %d, \"client_timeout_ms\": %d},\n"
             " \"routes\": [{\"name\": \"echo\", \"match\": {\"path_prefix\": \"/\"},"
             " \"upstream\": \"{ECHO}\"}]}\n",
             IDLE_MAX_CONNECTIONS, timeout_ms);
    ck_assert_int_eq(harness_daemon_start_env(&proxy, dir, config, echo.url, NULL, no_perturb), 0);
    pid_t pid = proxy.proc.pid;
    base_fds = settled_fd_count(&proxy); /* no upstream connection yet */
    assert_served("before the idle connections");
    long base_rss = harness_rss_kib(pid);
    ck_assert_int_gt(base_rss, 0);

    /* 10,000 connections that send nothing, all accepted (counted in the daemon's fds). */
    idle_init(&idle, IDLE_CONNECTIONS + IDLE_OVERFLOW);
    int64_t opened_at = now_ms();
    size_t opened = idle_open(&idle, proxy.port, IDLE_CONNECTIONS, 500, 5000 * slowdown());
    ck_assert_uint_eq(opened, IDLE_CONNECTIONS);
    ck_assert_msg(
        wait_fd_count_at_least(pid, base_fds + IDLE_CONNECTIONS, 10000 * slowdown(), &fds),
        "the daemon did not accept the %d connections", IDLE_CONNECTIONS);
    idle_collect_closed(&idle, 0);
    ck_assert_msg(idle.closed_count == 0, "%zu idle connections closed early", idle.closed_count);
    int64_t all_open_ms = now_ms() - opened_at;

    long rss = harness_rss_kib(pid);
    long allowed = IDLE_BASE_SLACK_KIB + IDLE_CONNECTIONS * IDLE_KIB_PER_CONNECTION;
    fprintf(stderr,
            "10,000 idle connections: opened and accepted in %lld ms; daemon fds %d (baseline "
            "%d); VmRSS %ld KiB (baseline %ld KiB, +%ld KiB = %.2f KiB per connection); growth "
            "allowed +%ld KiB x %.0f (%s)\n",
            (long long)all_open_ms, fds, base_fds, rss, base_rss, rss - base_rss,
            (double)(rss - base_rss) / IDLE_CONNECTIONS, allowed, factor, why);
    if (factor > 0)
        ck_assert_msg(rss - base_rss <= (long)(allowed * factor),
                      "VmRSS +%ld KiB with %d idle connections, over the allowed +%ld KiB",
                      rss - base_rss, IDLE_CONNECTIONS, (long)(allowed * factor));

    /* A fresh client is served while they are open. */
    assert_served("with 10,000 idle connections open");

    /* Beyond max_connections: every further connection is either accepted (while its worker
     * has room) or closed by the daemon at once; none is left waiting in the listen backlog
     * for a slot, and at least the excess over max_connections is closed. */
    opened = idle_open(&idle, proxy.port, IDLE_OVERFLOW, IDLE_OVERFLOW, 5000 * slowdown());
    size_t total = IDLE_CONNECTIONS + IDLE_OVERFLOW;
    size_t excess = total - IDLE_MAX_CONNECTIONS;
    ck_assert_msg(idle_wait_closed(&idle, excess, 5000 * slowdown()),
                  "only %zu of %zu connections beyond max_connections %d were closed: the rest "
                  "wait in the listen backlog (accept queue now %ld)",
                  idle.closed_count, excess, IDLE_MAX_CONNECTIONS, accept_queue(proxy.port));
    long queued = -1;
    int64_t deadline = now_ms() + 5000 * slowdown();
    while ((queued = accept_queue(proxy.port)) != 0 && now_ms() < deadline)
        idle_collect_closed(&idle, 20);
    idle_collect_closed(&idle, 100);
    fds = harness_fd_count(pid);
    fprintf(stderr,
            "%zu connections beyond the first %d: %zu closed by the daemon at once, accept queue "
            "%ld, daemon fds %d\n",
            opened, IDLE_CONNECTIONS, idle.closed_count, queued, fds);
    ck_assert_msg(queued == 0, "%ld connections wait in the listen backlog", queued);
    ck_assert_uint_le(idle.closed_count, IDLE_OVERFLOW);
    ck_assert_msg((size_t)(fds - base_fds) + idle.closed_count + WORKERS >= total,
                  "daemon fds %d (baseline %d) and %zu closed do not add up to %zu connections",
                  fds, base_fds, idle.closed_count, total);

    /* At the limit a fresh client is turned away at once or (if its worker still has room)
     * served: never left hanging. Once some slots free up, it is served. */
    struct harness_response rs;
    struct harness_request rq = {.target = "/api/at-the-limit", .timeout_ms = 3000 * slowdown()};
    harness_http(proxy.port, &rq, &rs);
    ck_assert_msg(rs.status == 200 || (rs.status == 0 && rs.result != CURLE_OPERATION_TIMEDOUT),
                  "a client at the limit got status %ld (%s) after %.3f s", rs.status, rs.error,
                  rs.total_s);
    fprintf(stderr, "a client at the limit: %s after %.3f s\n",
            rs.status == 200 ? "served" : rs.error, rs.total_s);
    harness_response_free(&rs);
    fds = harness_fd_count(pid);
    ck_assert_uint_eq(idle_close_some(&idle, 400), 400);
    ck_assert(wait_fds_at_most(pid, fds - 400, 5000 * slowdown(), NULL));
    assert_served("after 400 idle connections left");
    ck_assert_msg(now_ms() - opened_at < timeout_ms,
                  "setting up took %lld ms, longer than client_timeout_ms %d: the test measured "
                  "nothing",
                  (long long)(now_ms() - opened_at), timeout_ms);

    /* After client_timeout_ms the daemon closes every idle connection, and its fds return to
     * the baseline (taken with no upstream connection) plus at most one pooled upstream
     * connection per worker: the test's requests ran one at a time, so a worker's libcurl pool
     * never needed a second one. */
    int64_t waiting_since = now_ms();
    ck_assert(
        idle_wait_closed(&idle, idle.count - idle.dropped_count, timeout_ms + 10000 * slowdown()));
    fprintf(stderr, "all idle connections closed by the daemon %lld ms after the last opened\n",
            (long long)(now_ms() - waiting_since));
    ck_assert(wait_fds_at_most(pid, base_fds + WORKERS, 5000 * slowdown(), &fds));
    fprintf(stderr, "daemon fds after the idle timeout: %d (baseline %d)\n", fds, base_fds);
    idle_free(&idle);
    assert_served("after the idle timeout");
    ck_assert_int_eq(harness_daemon_stop(&proxy), 0);
}
END_TEST

/* --- file descriptors running out --------------------------------------------------------- */

#define FD_HEADROOM      24 /* fds the daemon may open beyond its baseline */
#define FD_CLIENTS       80 /* idle connections: far more than the headroom */
#define EXHAUSTED_TEXT   "cannot accept connections"
#define SPIN_WINDOW_MS   1000
#define SPIN_MAX_CPU_PCT 20

/* One keep-alive request on c: 200 with trace headers, logged with outcome ok. */
static void assert_kept_alive_served(struct harness_conn *c, const char *what)
{
    char id[17], request[160], trace_id[33], span_id[17], flags[3];
    struct harness_response rs;

    harness_random_hex(id, 16);
    size_t n = (size_t)snprintf(request, sizeof(request),
                                "GET /api/kept-%s HTTP/1.1\r\nHost: a.example\r\n\r\n", id);
    ck_assert_int_eq(harness_conn_send(c, request, n, 5000 * slowdown()), 0);
    ck_assert_msg(harness_conn_read_response(c, false, 5000 * slowdown(), &rs) == 0,
                  "%s: no response on an open connection (%s)", what, rs.error);
    ck_assert_msg(rs.status == 200, "%s: an open connection got %ld", what, rs.status);
    ck_assert(
        harness_traceparent_split(harness_header(&rs, "traceparent"), trace_id, span_id, flags));
    harness_response_free(&rs);
    json_t *log = harness_log_line(&proxy, "span_id", span_id);
    ck_assert_msg(log != NULL, "%s: no access-log line", what);
    ck_assert_int_eq(harness_json_int(log, "status", 0), 200);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "ok");
    json_decref(log);
}

START_TEST(test_file_descriptors_running_out)
{
    struct harness_conn kept[WORKERS * 4];
    struct idle_set idle;
    int fds;

    ck_assert_int_eq(harness_daemon_start(&proxy, dir,
                                          "{\"limits\": {\"client_timeout_ms\": 120000},"
                                          " \"routes\": [{\"name\": \"echo\", \"match\":"
                                          " {\"path_prefix\": \"/\"}, \"upstream\": \"{ECHO}\"}]}",
                                          echo.url, NULL),
                     0);
    pid_t pid = proxy.proc.pid;
    settled_fd_count(&proxy); /* both workers exist */
    /* Keep-alive connections made before the exhaustion (on both workers, very likely), each
     * with a request served, so each worker's upstream pool holds a connection it can reuse. */
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        ck_assert_int_eq(harness_conn_open(&kept[i], proxy.port, 5000), 0);
        assert_kept_alive_served(&kept[i], "before the limit");
    }
    int base_fds = harness_fd_count(pid);
    /* The soft limit only: the hard one stays, so that the limit can be raised back below. */
    struct rlimit rl = {.rlim_cur = (rlim_t)(base_fds + FD_HEADROOM)}, before;
    ck_assert_int_eq(prlimit(pid, RLIMIT_NOFILE, NULL, &before), 0);
    rl.rlim_max = before.rlim_max;
    ck_assert_msg(prlimit(pid, RLIMIT_NOFILE, &rl, NULL) == 0, "prlimit: %s", strerror(errno));
    fprintf(stderr, "daemon fds %d, RLIMIT_NOFILE now %d\n", base_fds, base_fds + FD_HEADROOM);

    /* Exhaust: more idle clients than the daemon has descriptors left. */
    idle_init(&idle, FD_CLIENTS);
    ck_assert_uint_eq(idle_open(&idle, proxy.port, FD_CLIENTS, FD_CLIENTS, 5000 * slowdown()),
                      FD_CLIENTS);
    ck_assert(wait_fd_count_at_least(pid, base_fds + FD_HEADROOM, 5000 * slowdown(), &fds));
    json_t *reported = harness_jsonl_wait(proxy.stderr_path, match_message, EXHAUSTED_TEXT, 1,
                                          HARNESS_WAIT_MS, &proxy.proc);
    ck_assert_msg(json_array_size(reported) >= 1, "the exhaustion was not reported on stderr");
    json_decref(reported);
    fprintf(stderr, "exhausted: daemon fds %d, accept queue %ld\n", fds, accept_queue(proxy.port));

    /* Open connections keep being served (each worker reuses its pooled upstream connection:
     * a new one would need a descriptor, and would fail with a 502). */
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        assert_kept_alive_served(&kept[i], "while out of file descriptors");

    /* No busy loop while exhausted. A measurement window, not a synchronisation. */
    long cpu_before = cpu_ms(pid);
    poll(NULL, 0, SPIN_WINDOW_MS);
    long cpu_used = cpu_ms(pid) - cpu_before;
    fprintf(stderr, "CPU while exhausted: %ld ms in %d ms\n", cpu_used, SPIN_WINDOW_MS);
    ck_assert_msg(cpu_used * 100 <= SPIN_MAX_CPU_PCT * SPIN_WINDOW_MS * slowdown(),
                  "the daemon used %ld ms of CPU in %d ms while out of file descriptors", cpu_used,
                  SPIN_WINDOW_MS);

    /* Accept attempts keep failing: a few descriptors free up, are taken by clients waiting in
     * the backlog, and accept fails again, five times over. Still one line. */
    for (int round = 0; round < 5; round++) {
        ck_assert_uint_eq(idle_close_some(&idle, 3), 3);
        ck_assert(wait_fd_count_at_least(pid, base_fds + FD_HEADROOM, 5000 * slowdown(), &fds));
    }
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        assert_kept_alive_served(&kept[i], "after repeated exhaustion");
    size_t lines = count_diagnostics(EXHAUSTED_TEXT);
    fprintf(stderr, "exhaustion diagnostics on stderr: %zu\n", lines);
    ck_assert_msg(lines == 1, "%zu diagnostic lines about the exhaustion, expected 1 a minute",
                  lines);

    /*
     * Descriptors free up elsewhere: the limit is raised back, and no client leaves. Every worker
     * that ran out keeps its kept-alive and idle connections open, so none of its own connections
     * closes; to such a worker, descriptors freed by the other worker's clients, by upstream
     * connections or by a raised limit are all the same. libmicrohttpd alone would accept again
     * only once one of its own connections closes, leaving the clients in its listen backlog
     * waiting (the bug retry_accepts in src/proxy/worker.c fixes): all of them are accepted now,
     * and the kept-alive connections are still open and served.
     */
    long queued = accept_queue(proxy.port);
    size_t still_open = idle.count - idle.dropped_count;
    ck_assert_msg(queued > 0, "no client waits in a listen backlog: the test measures nothing");
    ck_assert_int_eq(prlimit(pid, RLIMIT_NOFILE, &before, NULL), 0);
    int64_t freed_at = now_ms(), deadline = freed_at + 5000 * slowdown();
    long queued_before = queued;
    while ((queued = accept_queue(proxy.port)) != 0 && now_ms() < deadline)
        poll(NULL, 0, 20); /* no event for this: poll /proc */
    fprintf(stderr,
            "limit raised back: %ld connections in the listen backlogs, %ld after %lld ms\n",
            queued_before, queued, (long long)(now_ms() - freed_at));
    ck_assert_msg(queued == 0,
                  "%ld connections still wait in the listen backlogs %d ms after descriptors "
                  "freed up: a worker that ran out of them does not accept again",
                  queued, 5000 * slowdown());
    ck_assert(wait_fd_count_at_least(pid, base_fds + (int)still_open, 5000 * slowdown(), &fds));
    idle_collect_closed(&idle, 0);
    ck_assert_msg(idle.closed_count == 0, "the daemon closed %zu idle connections",
                  idle.closed_count);
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        assert_kept_alive_served(&kept[i], "after descriptors freed up");
    assert_served("after descriptors freed up");

    /* Everyone leaves: the fds return to the baseline without the kept-alive connections. */
    idle_free(&idle);
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        harness_conn_close(&kept[i]);
    ck_assert(wait_fds_at_most(pid, base_fds - (int)(sizeof(kept) / sizeof(kept[0])) + WORKERS,
                               5000 * slowdown(), &fds));
    assert_served("after the clients left");
    ck_assert_int_eq(harness_daemon_stop(&proxy), 0);
}
END_TEST

/* --- memory: bounded under hostile load --------------------------------------------------- */

#define HOSTILE_MAX_HEADER_BYTES 16384
#define HOSTILE_POOL_KIB         48 /* max(32 KiB, 2 * max_header_bytes + 16 KiB) */
#define HOSTILE_HEADER_STUFFERS  200
#define HOSTILE_UPLOADERS        50
#define HOSTILE_READERS          50
#define HOSTILE_UPLOAD_SENT      (256 * 1024)
/*
 * What one upstream transfer may hold: tracehop's two 64 KiB body buffers, libmicrohttpd's
 * 32 KiB block for a streamed response, curl's 16 KiB download and 64 KiB upload buffers, and
 * 48 KiB for curl's connection and transfer state, the request's arena and header lists.
 */
#define HOSTILE_TRANSFER_KIB 288
/*
 * The bound, from the configuration:
 *   baseline RSS (after warm-up)
 *   + connections x pool            (each connection's libmicrohttpd pool, fully touched)
 *   + transfers x HOSTILE_TRANSFER_KIB
 *   + 16 MiB                        (malloc arenas of the 2 workers and their fragmentation)
 * Bodies are streamed through the fixed buffers, so nothing grows with what clients send or
 * with the 50 MB nobody reads: a bound that does not hold means memory follows the load.
 */
#define HOSTILE_SLACK_KIB (16 * 1024)

/* Send all of data on a non-blocking fd within timeout_ms. */
static void send_all(int fd, const char *data, size_t len, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (len > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int left = (int)(deadline - now_ms());
        ck_assert_msg(left > 0 && poll(&pfd, 1, left) == 1, "send: timed out, %zu bytes left", len);
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        ck_assert_msg(w > 0, "send: %s", strerror(errno));
        data += w;
        len -= (size_t)w;
    }
}

START_TEST(test_memory_is_bounded_under_hostile_load)
{
    char config[1024];
    struct idle_set stuffers, uploaders, readers;
    const char *why;
    double factor = rss_factor(&why);
    int fds;

    raise_nofile();
    snprintf(config, sizeof(config),
             "{\"limits\": {\"max_header_bytes\": %d, \"client_timeout_ms\": %d},\n"
             " \"routes\": [{\"name\": \"echo\", \"match\": {\"path_prefix\": \"/\"},"
             " \"upstream\": \"{ECHO}\"}]}\n",
             HOSTILE_MAX_HEADER_BYTES, 60000);
    ck_assert_int_eq(harness_daemon_start_env(&proxy, dir, config, echo.url, NULL, no_perturb), 0);
    pid_t pid = proxy.proc.pid;
    /* Warm up: an upload and a download through both workers (very likely), then measure. */
    for (int i = 0; i < 8; i++) {
        struct harness_response rs;
        struct harness_request down = {.target = "/download?bytes=1000000", .discard_body = true};
        harness_http(proxy.port, &down, &rs);
        ck_assert_int_eq(rs.status, 200);
        harness_response_free(&rs);
        struct harness_request up = {
            .method = "POST", .target = "/upload", .pattern_body_bytes = 1000000};
        harness_http(proxy.port, &up, &rs);
        ck_assert_int_eq(rs.status, 200);
        harness_response_free(&rs);
    }
    int base_fds = settled_fd_count(&proxy);
    long base_rss = harness_rss_kib(pid);
    ck_assert_int_gt(base_rss, 0);

    /* 200 header blocks just under max_header_bytes that never end. */
    size_t pad = HOSTILE_MAX_HEADER_BYTES - 512;
    char *stuffing = malloc(pad + 128);
    ck_assert_ptr_nonnull(stuffing);
    int n = snprintf(stuffing, 128, "GET /api/stuffed HTTP/1.1\r\nHost: a.example\r\nX-Pad: ");
    memset(stuffing + n, 'p', pad);
    idle_init(&stuffers, HOSTILE_HEADER_STUFFERS);
    ck_assert_uint_eq(
        idle_open(&stuffers, proxy.port, HOSTILE_HEADER_STUFFERS, 100, 5000 * slowdown()),
        HOSTILE_HEADER_STUFFERS);
    for (size_t i = 0; i < stuffers.count; i++)
        send_all(stuffers.fds[i], stuffing, (size_t)n + pad, 5000 * slowdown());
    free(stuffing);

    /* 50 uploads of a promised 10 MB that stall after 256 KiB. */
    char *body = malloc(HOSTILE_UPLOAD_SENT);
    ck_assert_ptr_nonnull(body);
    harness_pattern_fill(body, HOSTILE_UPLOAD_SENT, 0);
    const char upload_head[] = "POST /upload HTTP/1.1\r\nHost: a.example\r\n"
                               "Content-Length: 10000000\r\n\r\n";
    idle_init(&uploaders, HOSTILE_UPLOADERS);
    ck_assert_uint_eq(idle_open(&uploaders, proxy.port, HOSTILE_UPLOADERS, 100, 5000 * slowdown()),
                      HOSTILE_UPLOADERS);
    for (size_t i = 0; i < uploaders.count; i++) {
        send_all(uploaders.fds[i], upload_head, sizeof(upload_head) - 1, 5000 * slowdown());
        send_all(uploaders.fds[i], body, HOSTILE_UPLOAD_SENT, 10000 * slowdown());
    }
    free(body);

    /* 50 downloads of 50 MB that nobody reads. */
    const char download[] = "GET /download?bytes=50000000 HTTP/1.1\r\nHost: a.example\r\n\r\n";
    idle_init(&readers, HOSTILE_READERS);
    ck_assert_uint_eq(idle_open(&readers, proxy.port, HOSTILE_READERS, 100, 5000 * slowdown()),
                      HOSTILE_READERS);
    for (size_t i = 0; i < readers.count; i++)
        send_all(readers.fds[i], download, sizeof(download) - 1, 5000 * slowdown());

    /* Every connection is open and every transfer has its upstream connection. */
    int connections = HOSTILE_HEADER_STUFFERS + HOSTILE_UPLOADERS + HOSTILE_READERS;
    int transfers = HOSTILE_UPLOADERS + HOSTILE_READERS;
    ck_assert(wait_fd_count_at_least(pid, base_fds + connections, 10000 * slowdown(), &fds));
    struct harness_field_match started_match = {"target", "/download?bytes=50000000"};
    json_t *started = harness_jsonl_wait(echo.record_path, harness_match_field, &started_match,
                                         HOSTILE_READERS, HARNESS_WAIT_MS * slowdown(), NULL);
    ck_assert_uint_eq(json_array_size(started), HOSTILE_READERS);
    json_decref(started);
    fds = harness_fd_count(pid);
    /* Other clients are served meanwhile; the peak RSS over a few of their round trips. */
    long peak = 0;
    for (int i = 0; i < 5; i++) {
        assert_served("under hostile load");
        long rss = harness_rss_kib(pid);
        peak = rss > peak ? rss : peak;
    }
    long allowed = (long)connections * HOSTILE_POOL_KIB + (long)transfers * HOSTILE_TRANSFER_KIB +
                   HOSTILE_SLACK_KIB;
    fprintf(stderr,
            "hostile load: %d header stuffers (%zu-byte unfinished header blocks), %d stalled "
            "uploads, %d unread 50 MB downloads; daemon fds %d; VmRSS peak %ld KiB (baseline "
            "%ld KiB, +%ld KiB); growth allowed +%ld KiB x %.0f (%s)\n",
            HOSTILE_HEADER_STUFFERS, (size_t)n + pad, HOSTILE_UPLOADERS, HOSTILE_READERS, fds, peak,
            base_rss, peak - base_rss, allowed, factor, why);
    if (factor > 0)
        ck_assert_msg(peak - base_rss <= (long)(allowed * factor),
                      "VmRSS +%ld KiB under hostile load, over the allowed +%ld KiB",
                      peak - base_rss, (long)(allowed * factor));

    /* They leave: every one of them is logged, and the fds return to the baseline. */
    idle_free(&stuffers);
    idle_free(&uploaders);
    idle_free(&readers);
    struct harness_field_match aborted = {"outcome", "client_aborted"};
    json_t *lines = harness_jsonl_wait(proxy.access_log, harness_match_field, &aborted,
                                       (size_t)connections, HARNESS_WAIT_MS * slowdown(), NULL);
    ck_assert_msg(json_array_size(lines) == (size_t)connections,
                  "%zu client_aborted access-log lines for %d hostile connections",
                  json_array_size(lines), connections);
    json_decref(lines);
    ck_assert(wait_fds_at_most(pid, base_fds + WORKERS, 10000 * slowdown(), &fds));
    fprintf(stderr, "after they left: daemon fds %d (baseline %d), VmRSS %ld KiB\n", fds, base_fds,
            harness_rss_kib(pid));
    assert_served("after the hostile load");
    ck_assert_int_eq(harness_daemon_stop(&proxy), 0);
}
END_TEST

/* --- memory: allocations failing ---------------------------------------------------------- */

#define FAILING_RATE_PPM         5000 /* 0.5 %: a request makes ~100 allocations, so ~40 % meet one */
#define FAILING_REQUESTS         200
#define FAILING_BODY             50000
#define FAILING_ROUTE_TIMEOUT_MS 2000

static bool match_shim_rate(json_t *object, const void *arg)
{
    return strcmp(harness_json_str(object, "ppm") ? harness_json_str(object, "ppm") : "", arg) == 0;
}

/* Set the shim's failure rate and wait until the daemon's shim has taken it. The shim re-reads
 * its control file on an allocation at most every 10 ms: requests (whatever their outcome) make
 * the daemon allocate. */
static void set_failure_rate(const char *control, const char *report, const char *ppm)
{
    /* Only a report line written after this call counts: the shim's first line already says
     * "0", and taking that for the answer let the test go on while allocations still failed. */
    json_t *before = harness_jsonl_read(report);
    size_t earlier = json_array_size(before);
    json_decref(before);
    ck_assert_int_eq(harness_write_file(control, ppm), 0);
    int64_t deadline = now_ms() + 5000 * slowdown();
    for (;;) {
        struct harness_response rs;
        struct harness_request rq = {.target = "/api/nudge", .timeout_ms = 2000 * slowdown()};
        harness_http(proxy.port, &rq, &rs);
        harness_response_free(&rs);
        json_t *lines = harness_jsonl_read(report);
        bool taken = false;
        for (size_t i = earlier; i < json_array_size(lines) && !taken; i++)
            taken = match_shim_rate(json_array_get(lines, i), ppm);
        json_decref(lines);
        if (taken)
            return;
        ck_assert_msg(now_ms() < deadline, "the shim did not take the failure rate %s ppm", ppm);
    }
}

/* How requests under failing allocations ended. */
struct pressure_tally {
    int ok, server_error, closed; /* what may happen */
    int wrong;                    /* a hang, or a 200 that is not the right response */
};

/* A response that is none of the acceptable outcomes, described on stderr. */
static void wrong(struct pressure_tally *t, int i, const char *target, const char *what)
{
    fprintf(stderr, "DAEMON BUG under failing allocations: request %d (%s): %s\n", i, target, what);
    t->wrong++;
}

/*
 * One request under failing allocations: a correct response (200, trace headers, the right
 * body), a 5xx, or a closed connection. Anything else (another status: asserted at once) or a
 * hang or a wrong 200 (tallied in t->wrong) is a bug.
 */
static void request_under_pressure(int i, struct pressure_tally *t)
{
    char target[64], trace_id[33], span_id[17], flags[3];
    struct harness_response rs;
    struct harness_request rq = {.timeout_ms = 5000 * slowdown(), .target = target};
    int kind = i % 3;

    if (kind == 0) {
        snprintf(target, sizeof(target), "/download?bytes=%d", FAILING_BODY);
        rq.discard_body = true;
    } else if (kind == 1) {
        snprintf(target, sizeof(target), "/upload");
        rq.method = "POST";
        rq.pattern_body_bytes = FAILING_BODY;
    } else {
        snprintf(target, sizeof(target), "/api/pressure-%d", i);
    }
    harness_http(proxy.port, &rq, &rs);
    if (rs.status == 0 && rs.result == CURLE_OPERATION_TIMEDOUT) {
        wrong(t, i, target, "no response and no close within the client's timeout");
    } else if (rs.status == 0) {
        t->closed++;
    } else if (rs.status >= 500) {
        t->server_error++;
    } else {
        ck_assert_msg(rs.status == 200, "request %d (%s) got %ld under failing allocations", i,
                      target, rs.status);
        json_t *body = kind == 0 ? NULL : harness_response_json(&rs);
        const char *echoed = harness_json_str(body, "target");
        char hash[17];
        harness_hash_hex(harness_pattern_hash(FAILING_BODY), hash);
        if (!harness_traceparent_split(harness_header(&rs, "traceparent"), trace_id, span_id,
                                       flags) ||
            !harness_header(&rs, "X-Trace-ID"))
            wrong(t, i, target, "a 200 without its trace headers");
        else if (kind == 0 && (rs.body_len != FAILING_BODY ||
                               rs.body_hash != harness_pattern_hash(FAILING_BODY)))
            wrong(t, i, target, "a 200 download with a wrong body");
        else if (kind == 1 && (harness_json_int(body, "bytes", -1) != FAILING_BODY ||
                               !harness_json_str(body, "hash") ||
                               strcmp(harness_json_str(body, "hash"), hash) != 0))
            wrong(t, i, target, "a 200 for an upload the upstream received damaged");
        else if (kind == 2 && (!echoed || strcmp(echoed, target) != 0))
            wrong(t, i, target, echoed ? echoed : "a 200 without the echo body");
        else
            t->ok++;
        json_decref(body);
    }
    harness_response_free(&rs);
}

START_TEST(test_allocation_failures_never_crash_the_daemon)
{
    char control[HARNESS_PATH_MAX + 64], report[HARNESS_PATH_MAX + 64];
    char preload[HARNESS_PATH_MAX + 64], control_env[HARNESS_PATH_MAX + 128],
        report_env[HARNESS_PATH_MAX + 128];
    const char *shim = getenv("FAILING_MALLOC_SO");

#ifdef SANITIZER
    fprintf(stderr, "SKIPPED allocation failures: " SANITIZER
                    " replaces the allocator, so the failing-malloc shim cannot be preloaded\n");
    return;
#endif
    if (daemon_under_valgrind()) {
        fprintf(stderr, "SKIPPED allocation failures: the daemon runs under valgrind, which "
                        "replaces the allocator, so the failing-malloc shim cannot be preloaded\n");
        return;
    }
    ck_assert_msg(shim && *shim, "FAILING_MALLOC_SO is not set: run the tests through meson");
    snprintf(control, sizeof(control), "%s/failing-malloc.control", dir);
    snprintf(report, sizeof(report), "%s/failing-malloc.jsonl", dir);
    snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", shim);
    snprintf(control_env, sizeof(control_env), "FAILING_MALLOC_CONTROL=%s", control);
    snprintf(report_env, sizeof(report_env), "FAILING_MALLOC_REPORT=%s", report);
    char *env[] = {preload, control_env, report_env,
                   getenv("FAILING_MALLOC_BACKTRACE") ? "FAILING_MALLOC_BACKTRACE=1" : NULL, NULL};
    /* The route's timeout bounds what libcurl cannot report: when an allocation fails inside
     * curl_multi_socket_action while it registers a socket, the transfer loses its socket
     * without an error and only its timeout ends it (a 504; tracehop ends a transfer libcurl
     * forgot one second after its route's timeout). */
    char config[512];
    snprintf(config, sizeof(config),
             "{\"routes\": [{\"name\": \"echo\", \"match\": {\"path_prefix\": \"/\"},"
             " \"upstream\": \"{ECHO}\", \"timeout_ms\": %d}]}",
             FAILING_ROUTE_TIMEOUT_MS * slowdown());
    ck_assert_int_eq(harness_daemon_start_env(&proxy, dir, config, echo.url, NULL, env), 0);
    assert_served("before the pressure");

    struct pressure_tally t = {0};
    set_failure_rate(control, report, "5000");
    for (int i = 0; i < FAILING_REQUESTS; i++) {
        request_under_pressure(i, &t);
        ck_assert_msg(!harness_process_wait(&proxy.proc, 0),
                      "the daemon died under failing allocations (exit code %d) after %d requests",
                      harness_exit_code(&proxy.proc), i + 1);
    }
    set_failure_rate(control, report, "0");
    json_t *all = harness_jsonl_read(report);
    json_t *last = json_array_get(all, json_array_size(all) - 1);
    long long seen = harness_json_int(last, "seen", 0),
              failed = harness_json_int(last, "failed", 0);
    json_decref(all);
    fprintf(stderr,
            "%d requests with 0.5 %% of allocations failing (%lld of %lld failed): %d correct "
            "200s, %d 5xx, %d closed connections, %d wrong (hung, or a wrong 200)\n",
            FAILING_REQUESTS, failed, seen, t.ok, t.server_error, t.closed, t.wrong);
    ck_assert_msg(failed > 0, "no allocation failed: the test injected nothing");
    ck_assert_int_eq(t.ok + t.server_error + t.closed + t.wrong, FAILING_REQUESTS);
    /* Found by this test and fixed: unchecked string options (a request forwarded with the
     * previous request's target), handles lent out after a failed detach, responses sent
     * without the trace headers, and libcurl's own crash (see src/proxy/curl_memory.h). */
    ck_assert_msg(t.wrong == 0, "%d requests under failing allocations went wrong", t.wrong);

    /* The pressure is over: normal service again, every response correct, and a clean stop. */
    for (int i = 0; i < 10; i++)
        assert_served("after the pressure");
    struct pressure_tally after = {0};
    for (int i = 0; i < 9; i++)
        request_under_pressure(i, &after);
    ck_assert_msg(after.ok == 9, "after the pressure: %d of 9 requests served correctly", after.ok);
    ck_assert_int_eq(harness_daemon_stop(&proxy), 0);
}
END_TEST

static Suite *resources_suite(void)
{
    Suite *s = suite_create("resources");
    TCase *tc = tcase_create("resources");

    tcase_add_checked_fixture(tc, setup, teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_test(tc, test_ten_thousand_idle_connections);
    tcase_add_test(tc, test_file_descriptors_running_out);
    tcase_add_test(tc, test_memory_is_bounded_under_hostile_load);
    tcase_add_test(tc, test_allocation_failures_never_crash_the_daemon);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(resources_suite());
}
