/* SPDX-License-Identifier: MIT */
/*
 * Child processes (contracts in harness.h): starting a program with a clean environment and its
 * output in files, waiting for it to exit, stopping it by PID, and what /proc says about it
 * (resident memory, open file descriptors).
 *
 * An exit is waited for on a pidfd (poll), with a 10 ms re-check where the kernel has no pidfd.
 * Every child gets PR_SET_PDEATHSIG and is tracked for an atexit hook that SIGKILLs what a
 * failing test left behind. Check runs every test in a forked child, while the fixture (an echo
 * upstream and a daemon per test case) lives in the parent. The atexit clean-up therefore only
 * kills the processes that the exiting process itself started. The count of open file
 * descriptors is the one thing here with no event to wait on: /proc is polled every 20 ms.
 */
#include "harness-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_TRACKED 64

static struct {
    pid_t pid;
    pid_t owner;
} tracked[MAX_TRACKED];
static bool cleanup_installed;

static void kill_leftovers(void)
{
    pid_t self = getpid();
    for (size_t i = 0; i < MAX_TRACKED; i++) {
        if (tracked[i].pid > 0 && tracked[i].owner == self) {
            kill(tracked[i].pid, SIGKILL);
            waitpid(tracked[i].pid, NULL, 0);
            tracked[i].pid = 0;
        }
    }
}

static void track(pid_t pid)
{
    if (!cleanup_installed) {
        atexit(kill_leftovers);
        cleanup_installed = true;
    }
    for (size_t i = 0; i < MAX_TRACKED; i++) {
        if (tracked[i].pid == 0) {
            tracked[i].pid = pid;
            tracked[i].owner = getpid();
            return;
        }
    }
}

static void untrack(pid_t pid)
{
    for (size_t i = 0; i < MAX_TRACKED; i++)
        if (tracked[i].pid == pid)
            tracked[i].pid = 0;
}

static int open_output(const char *path)
{
    return open(path ? path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

int harness_spawn(struct harness_process *p, char *const argv[], const char *stdout_path,
                  const char *stderr_path, char *const env_extra[])
{
    size_t n_env = 0, n_extra = 0;
    int in_fd = -1, out_fd = -1, err_fd = -1, rc = 0;
    char **envp;

    *p = (struct harness_process){.pidfd = -1};
    for (char **e = environ; *e; e++)
        n_env++;
    while (env_extra && env_extra[n_extra])
        n_extra++;
    /* Built before fork: the child only calls async-signal-safe functions. */
    envp = calloc(n_env + n_extra + 1, sizeof(char *));
    if (!envp)
        return -ENOMEM;
    size_t k = 0;
    for (char **e = environ; *e; e++) {
        bool replaced = false;
        for (size_t i = 0; i < n_extra && !replaced; i++) {
            const char *eq = strchr(env_extra[i], '=');
            size_t name_len = eq ? (size_t)(eq - env_extra[i]) + 1 : strlen(env_extra[i]);
            replaced = strncmp(*e, env_extra[i], name_len) == 0;
        }
        if (strncmp(*e, "TRACEHOP_", 9) != 0 && strncmp(*e, "OTEL_", 5) != 0 && !replaced)
            envp[k++] = *e;
    }
    for (size_t i = 0; i < n_extra; i++)
        envp[k++] = env_extra[i];

    in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    out_fd = open_output(stdout_path);
    err_fd = open_output(stderr_path);
    if (in_fd < 0 || out_fd < 0 || err_fd < 0) {
        rc = -errno;
        goto out;
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto out;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
            _exit(127);
        /* Die with the test process, whatever way it ends. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    p->pid = pid;
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    track(pid);
out:
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
    if (err_fd >= 0)
        close(err_fd);
    free(envp);
    return rc;
}

static void mark_reaped(struct harness_process *p, int status)
{
    p->reaped = true;
    p->status = status;
    untrack(p->pid);
    if (p->pidfd >= 0) {
        close(p->pidfd);
        p->pidfd = -1;
    }
}

bool harness_process_wait(struct harness_process *p, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;

    if (p->reaped)
        return true;
    if (p->pid <= 0)
        return false;
    for (;;) {
        int status;
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            mark_reaped(p, status);
            return true;
        }
        if (r < 0 && errno != EINTR) {
            say("waitpid(%d): %s", (int)p->pid, strerror(errno));
            return false;
        }
        int left = remaining_ms(deadline);
        if (left == 0)
            return false;
        if (p->pidfd >= 0) {
            struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
            poll(&pfd, 1, left);
        } else {
            poll(NULL, 0, left < 10 ? left : 10);
        }
    }
}

int harness_exit_code(const struct harness_process *p)
{
    if (!p->reaped)
        return -1;
    if (WIFEXITED(p->status))
        return WEXITSTATUS(p->status);
    if (WIFSIGNALED(p->status))
        return 128 + WTERMSIG(p->status);
    return -1;
}

int harness_process_stop_with(struct harness_process *p, int sig, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    if (!p->reaped) {
        kill(p->pid, sig);
        if (!harness_process_wait(p, timeout_ms)) {
            say("pid %d still running %d ms after %s: SIGKILL", (int)p->pid, timeout_ms,
                strsignal(sig));
            kill(p->pid, SIGKILL);
            harness_process_wait(p, 5000);
        }
    }
    return harness_exit_code(p);
}

int harness_process_stop(struct harness_process *p, int timeout_ms)
{
    return harness_process_stop_with(p, SIGTERM, timeout_ms);
}

long harness_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

int harness_fd_count(pid_t pid)
{
    char path[64];
    int count = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            count++;
    closedir(d);
    return count;
}

bool harness_wait_fd_count_at_most(pid_t pid, int max, int timeout_ms, int *last)
{
    int64_t deadline = now_ms() + timeout_ms;
    int count;

    for (;;) {
        count = harness_fd_count(pid);
        if (count >= 0 && count <= max)
            break;
        int left = remaining_ms(deadline);
        if (left == 0) {
            say("pid %d still has %d open fds after %d ms (expected at most %d)", (int)pid, count,
                timeout_ms, max);
            break;
        }
        poll(NULL, 0, left < 20 ? left : 20); /* no event to wait on: poll /proc */
    }
    if (last)
        *last = count;
    return count >= 0 && count <= max;
}
