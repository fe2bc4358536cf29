/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Waiting for `tracehop logs --follow`: wakes up when a followed file may have changed, when
 * stdin has data, when SIGINT/SIGTERM arrives, or after a bounded timeout at the latest.
 *
 * Files are watched through inotify on their directories (not on the files), which also sees
 * a rotated file being replaced by a new one of the same name. The timeout is the safety net
 * for what inotify does not report (network file systems, an exhausted watch limit): the
 * caller re-checks every source after each wake-up, so a missed event costs one timeout.
 */
#include <stdbool.h>
#include <stddef.h>
#include <signal.h>

struct log_watch {
    int inotify_fd; /* -1 when inotify is unavailable: timeouts only */
    int signal_fd;  /* SIGINT and SIGTERM, blocked for this process while watching */
    int stdin_fd;   /* -1 when stdin is not followed */
    sigset_t old_mask;
};

/*
 * Start watching the directories of `paths` (NULL entries are skipped) and, if watch_stdin,
 * standard input. Blocks SIGINT and SIGTERM (restored by log_watch_stop). Returns 0 or -errno.
 */
int log_watch_start(struct log_watch *w, const char *const *paths, size_t count, bool watch_stdin);

/* Stop following stdin (it reached its end). */
void log_watch_forget_stdin(struct log_watch *w);

/*
 * Wait at most timeout_ms for something to look at. Returns 1 when SIGINT or SIGTERM arrived
 * (time to stop), 0 otherwise, -errno on failure.
 */
int log_watch_wait(struct log_watch *w, int timeout_ms);

/* Close the descriptors and restore the signal mask. Accepts a stopped watch. */
void log_watch_stop(struct log_watch *w);
