/* SPDX-License-Identifier: MIT */

/*
 * Replay driver: runs a fuzz target over files, without libFuzzer.
 *
 * Linked with one target's LLVMFuzzerTestOneInput, it is how the committed corpus runs as an
 * ordinary test in every build (gcc included), as systemd's fuzz-main.c does. Each argument is
 * a file or a directory; directories are walked recursively in name order so that a run is
 * reproducible. Every file is read into an exactly-sized heap block and given to the target
 * once. A failed invariant aborts the process, which the test harness reports.
 *
 * Exit status: 0 when every input ran; 1 when an argument cannot be read or a directory (at any
 * depth) holds no input (an empty corpus would make the test pass without testing anything).
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

static int run_file(const char *path, size_t *ran)
{
    struct stat st;
    uint8_t *data = NULL;
    size_t size, done = 0;
    int fd, r = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        goto out;
    }
    size = (size_t)st.st_size;
    data = malloc(size > 0 ? size : 1);
    if (!data) {
        fprintf(stderr, "replay: %s: out of memory\n", path);
        goto out;
    }
    while (done < size) {
        ssize_t n = read(fd, data + done, size - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "replay: %s: short read\n", path);
            goto out;
        }
        done += (size_t)n;
    }

    LLVMFuzzerTestOneInput(data, size);
    (*ran)++;
    r = 0;
out:
    free(data);
    if (fd >= 0)
        close(fd);
    return r;
}

static int hidden_filter(const struct dirent *entry)
{
    return entry->d_name[0] != '.';
}

static int run_path(const char *path, size_t *ran)
{
    struct dirent **entries = NULL;
    size_t ran_here = 0;
    struct stat st;
    int n, r = 0;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path, ran);

    n = scandir(path, &entries, hidden_filter, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(path) + 1 + strlen(entries[i]->d_name) + 1;
        char *child = malloc(len);

        if (!child) {
            r = -1;
        } else {
            snprintf(child, len, "%s/%s", path, entries[i]->d_name);
            if (run_path(child, &ran_here) < 0)
                r = -1;
        }
        free(child);
        free(entries[i]);
    }
    free(entries);
    if (r == 0 && ran_here == 0) {
        fprintf(stderr, "replay: %s: directory holds no input\n", path);
        r = -1;
    }
    *ran += ran_here;
    return r;
}

int main(int argc, char **argv)
{
    size_t total = 0;
    int r = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIRECTORY...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        size_t ran = 0;

        if (run_path(argv[i], &ran) < 0)
            r = 1;
        printf("replay: %s: %zu inputs\n", argv[i], ran);
        total += ran;
    }
    printf("replay: ran %zu inputs\n", total);
    return r;
}
