/* SPDX-License-Identifier: MIT */
/*
 * /proc/self/stat, /proc/stat and /proc/self/fd, read at scrape time on the admin thread
 * (process_stats.h). Every file is read into a bounded buffer; text that does not parse leaves
 * its metrics out rather than reporting a wrong value.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "observe/process_stats.h"

/* /proc/self/stat is a few hundred bytes; /proc/stat has one line per CPU before btime. */
#define STAT_MAX      4096
#define PROC_STAT_MAX (256 * 1024)

/* One unsigned decimal at *p after spaces (at most 19 digits), which must end at a space, a
 * newline or the end of the text. */
static bool next_u64(const char **p, const char *end, uint64_t *ret)
{
    const char *s = *p;
    uint64_t v = 0;
    int digits = 0;

    while (s < end && *s == ' ')
        s++;
    while (s < end && *s >= '0' && *s <= '9' && digits < 19) {
        v = v * 10 + (uint64_t)(*s - '0');
        s++;
        digits++;
    }
    if (digits == 0 || (s < end && *s != ' ' && *s != '\n'))
        return false;
    *p = s;
    *ret = v;
    return true;
}

/* Skip one field of any content (a signed number, a state letter). */
static bool skip_field(const char **p, const char *end)
{
    const char *s = *p;
    while (s < end && *s == ' ')
        s++;
    const char *start = s;
    while (s < end && *s != ' ' && *s != '\n')
        s++;
    *p = s;
    return s > start;
}

bool process_stat_parse(const char *text, size_t len, struct process_stat_fields *ret)
{
    const char *end = text + len, *close = NULL;

    for (const char *s = text; s < end; s++)
        if (*s == ')')
            close = s;
    if (!close)
        return false;
    const char *p = close + 1;
    uint64_t v = 0;
    /* Fields 3 (state) to 13 are skipped; 14-15 utime, stime; 16-21 skipped; 22-24. */
    for (int field = 3; field <= 24; field++) {
        bool wanted = field == 14 || field == 15 || field >= 22;
        if (!wanted) {
            if (!skip_field(&p, end))
                return false;
            continue;
        }
        if (!next_u64(&p, end, &v))
            return false;
        if (field == 14)
            ret->utime_ticks = v;
        else if (field == 15)
            ret->stime_ticks = v;
        else if (field == 22)
            ret->start_ticks = v;
        else if (field == 23)
            ret->vsize_bytes = v;
        else
            ret->rss_pages = v;
    }
    return true;
}

bool process_btime_parse(const char *text, size_t len, uint64_t *ret)
{
    const char *end = text + len;

    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *line_end = nl ? nl : end;
        if (line_end - line > 6 && memcmp(line, "btime ", 6) == 0) {
            const char *p = line + 6;
            return next_u64(&p, line_end, ret) && p == line_end;
        }
        line = nl ? nl + 1 : end;
    }
    return false;
}

/* The start of a file, up to size - 1 bytes (NUL-terminated); the length, or -1. */
static ssize_t read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t n = 0;

    if (fd < 0)
        return -1;
    while (n < size - 1) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return (ssize_t)n;
}

static bool count_open_fds(uint64_t *ret)
{
    DIR *dir = opendir("/proc/self/fd");
    uint64_t n = 0;
    struct dirent *e;

    if (!dir)
        return false;
    while ((e = readdir(dir)))
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    *ret = n > 0 ? n - 1 : 0; /* not the directory's own fd */
    return true;
}

void process_stats_read(struct process_stats *ret)
{
    char stat[STAT_MAX];
    char *proc_stat = NULL;
    struct process_stat_fields f = {0};
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    struct rlimit nofile;
    uint64_t btime = 0;

    *ret = (struct process_stats){0};
    ssize_t n = read_file("/proc/self/stat", stat, sizeof(stat));
    if (n > 0 && process_stat_parse(stat, (size_t)n, &f)) {
        if (ticks > 0) {
            ret->have_cpu = true;
            ret->cpu_seconds = (double)(f.utime_ticks + f.stime_ticks) / (double)ticks;
        }
        if (page > 0) {
            ret->have_memory = true;
            ret->virtual_bytes = f.vsize_bytes;
            ret->resident_bytes = f.rss_pages * (uint64_t)page;
        }
        proc_stat = malloc(PROC_STAT_MAX); /* per scrape: several admin threads may read */
        n = proc_stat ? read_file("/proc/stat", proc_stat, PROC_STAT_MAX) : -1;
        if (ticks > 0 && n > 0 && process_btime_parse(proc_stat, (size_t)n, &btime)) {
            ret->have_start_time = true;
            ret->start_time_seconds = (double)btime + (double)f.start_ticks / (double)ticks;
        }
        free(proc_stat);
    }
    ret->have_open_fds = count_open_fds(&ret->open_fds);
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
        ret->have_max_fds = true;
        ret->max_fds = (uint64_t)nofile.rlim_cur;
    }
}
