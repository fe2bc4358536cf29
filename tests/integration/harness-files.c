/* SPDX-License-Identifier: MIT */
/*
 * Files on disk (contracts in harness.h): a private temporary directory per fixture, whole-file
 * writes and reads, and waiting for a file to change.
 *
 * harness_wait_for_file is the one wait on files; the JSON-lines readers and the start-up waits
 * of the servers are built on it. A log file is watched through inotify on its directory (any
 * write there wakes us, and we re-read; the files are small), its writer through its pidfd. Each
 * wait also has a deadline, and a short poll cap as a fallback should an event be missed, so a
 * lost wake-up costs milliseconds rather than a hung test.
 */
#include "harness-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

int harness_tmpdir(char *out, size_t size)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base || strlen(base) > 60) /* unix socket paths must stay short */
        base = "/tmp";
    if ((size_t)snprintf(out, size, "%s/tracehop-it-XXXXXX", base) >= size)
        return -ENAMETOOLONG;
    return mkdtemp(out) ? 0 : -errno;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void harness_tmpdir_remove(const char *dir)
{
    if (!dir || !dir[0])
        return;
    if (getenv("HARNESS_KEEP")) {
        say("keeping %s", dir);
        return;
    }
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int harness_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len;
    if (fclose(f) != 0 || !ok)
        return -EIO;
    return 0;
}

char *harness_read_file(const char *path, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t cap = 4096, len = 0;
    char *buf;

    if (fd < 0)
        return NULL;
    buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (cap - len < 4096) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (buf) {
        buf[len] = '\0';
        if (ret_len)
            *ret_len = len;
    }
    return buf;
}

bool harness_wait_for_file(const char *path, bool (*ready)(void *arg), void *arg, int timeout_ms,
                           struct harness_process *watch)
{
    int64_t deadline = now_ms() + timeout_ms;
    char dir[HARNESS_PATH_MAX];
    int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    bool done = false;

    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    if (ifd >= 0 &&
        inotify_add_watch(ifd, dir, IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
        close(ifd);
        ifd = -1;
    }
    for (;;) {
        if ((done = ready(arg)))
            break;
        int left = remaining_ms(deadline);
        if (left == 0)
            break;
        struct pollfd pfds[2] = {{.fd = ifd, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
        if (watch && !watch->reaped && watch->pidfd >= 0)
            pfds[1].fd = watch->pidfd;
        poll(pfds, 2, left < 250 ? left : 250);
        if (pfds[0].revents & POLLIN) {
            char events[4096];
            while (read(ifd, events, sizeof(events)) > 0)
                ;
        }
        if (pfds[1].revents & POLLIN) {
            done = ready(arg);
            break; /* the writer is gone: nothing more will come */
        }
    }
    if (ifd >= 0)
        close(ifd);
    return done;
}

static bool file_exists_ready(void *arg)
{
    return access(arg, F_OK) == 0;
}

bool harness_wait_file_exists(const char *path, int timeout_ms)
{
    return harness_wait_for_file(path, file_exists_ready, (void *)path, timeout_ms, NULL);
}

void harness_dump_file(const char *what, const char *path)
{
    char *text = harness_read_file(path, NULL);
    say("--- %s (%s) ---\n%s--- end ---", what, path, text ? text : "(unreadable)\n");
    free(text);
}
