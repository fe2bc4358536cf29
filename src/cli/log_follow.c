/* SPDX-License-Identifier: MIT */
/*
 * The --follow waiter (contracts in log_follow.h).
 *
 * Signals arrive through a signalfd, so that stopping is just another event in the same poll
 * and no handler code runs in a signal context (the daemon does the same with sigwaitinfo).
 * inotify events are only a wake-up: their content is drained and ignored, because the caller
 * stats every source anyway and a directory event names files we may not care about.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/log_follow.h"

#define WATCH_EVENTS                                                                               \
    (IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB)

static void watch_directory_of(int inotify_fd, const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');

    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else if ((size_t)(slash - path) < sizeof(dir)) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    } else {
        return; /* too long to watch: the timeout covers it */
    }
    inotify_add_watch(inotify_fd, dir, WATCH_EVENTS); /* a failure leaves the timeout */
}

int log_watch_start(struct log_watch *w, const char *const *paths, size_t count, bool watch_stdin)
{
    sigset_t stop;

    *w = (struct log_watch){.inotify_fd = -1, .signal_fd = -1, .stdin_fd = -1};
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &stop, &w->old_mask) < 0)
        return -errno;
    w->signal_fd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
    if (w->signal_fd < 0) {
        int err = errno;
        sigprocmask(SIG_SETMASK, &w->old_mask, NULL);
        return -err;
    }
    w->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    for (size_t i = 0; w->inotify_fd >= 0 && i < count; i++)
        if (paths[i])
            watch_directory_of(w->inotify_fd, paths[i]);
    if (watch_stdin)
        w->stdin_fd = STDIN_FILENO;
    return 0;
}

void log_watch_forget_stdin(struct log_watch *w)
{
    w->stdin_fd = -1;
}

int log_watch_wait(struct log_watch *w, int timeout_ms)
{
    struct pollfd pfds[3] = {
        {.fd = w->signal_fd, .events = POLLIN},
        {.fd = w->inotify_fd, .events = POLLIN},
        {.fd = w->stdin_fd, .events = POLLIN},
    };

    int n = poll(pfds, 3, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    if (pfds[0].revents & POLLIN) {
        struct signalfd_siginfo info;
        /* Consume it: left pending, it would kill us when log_watch_stop unblocks it. */
        while (read(w->signal_fd, &info, sizeof(info)) == sizeof(info))
            ;
        return 1;
    }
    if (pfds[1].revents & POLLIN) {
        char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        while (read(w->inotify_fd, events, sizeof(events)) > 0)
            ;
    }
    return 0;
}

void log_watch_stop(struct log_watch *w)
{
    if (w->signal_fd >= 0) {
        close(w->signal_fd);
        sigprocmask(SIG_SETMASK, &w->old_mask, NULL);
    }
    if (w->inotify_fd >= 0)
        close(w->inotify_fd);
    w->signal_fd = w->inotify_fd = w->stdin_fd = -1;
}
