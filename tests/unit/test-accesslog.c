/* SPDX-License-Identifier: MIT */
/*
 * The access-log sink (src/observe/accesslog.h; docs/access-log.md): lines from many threads are
 * never torn or interleaved, never lost silently (what cannot be written is counted as dropped
 * and announced on stderr), and a reopen after logrotate's rename writes to the new file.
 *
 * Every line a test submits is a JSON object carrying its thread and sequence number, so that
 * the file can be checked line by line: each parses, none repeats, and the count is what the
 * sink's statistics say it wrote.
 *
 * The slow-sink case uses a pipe that nobody reads (opened by path through /proc/self/fd): the
 * writer thread blocks in write(2), the buffer fills, further lines are dropped. Waits on the
 * sink's progress poll its statistics with a short pause and a deadline, because the sink has
 * no event to wait on; every such wait is bounded.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "observe/accesslog.h"
#include "../promtool-check.h" /* promtool_dir, promtool_slurp: temporary directories and files */
#include "unit-test.h"

static char dir[512];

static void dir_setup(void)
{
    promtool_dir(dir, sizeof(dir));
}

static void dir_teardown(void)
{
    promtool_dir_remove(dir);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Assert without Check's per-call mark point (a pipe write in fork mode): for hot loops. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

/* Wait (bounded) until the sink has written at least `want` lines; returns what it has. */
static uint64_t wait_written(struct accesslog *log, uint64_t want, double seconds)
{
    double deadline = now_s() + seconds;
    struct accesslog_stats st;

    for (;;) {
        accesslog_get_stats(log, &st);
        if (st.lines_written >= want || now_s() > deadline)
            return st.lines_written;
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
}

/* A line of about `pad` bytes: {"thread":T,"seq":N,"pad":"xxx..."}\n */
static size_t make_line(char *buf, size_t size, unsigned thread, unsigned seq, size_t pad)
{
    int n = snprintf(buf, size, "{\"thread\":%u,\"seq\":%u,\"pad\":\"", thread, seq);
    CHECK(n > 0 && (size_t)n + pad + 4 < size, "line buffer too small");
    memset(buf + n, 'a' + (char)(seq % 26), pad);
    memcpy(buf + n + pad, "\"}\n", 4);
    return (size_t)n + pad + 3;
}

/*
 * Check every line of `text`: a JSON object of the form above, no (thread, seq) twice. Returns
 * the number of lines; fails the test on a torn or repeated line.
 */
static size_t check_lines(const char *text, size_t len, unsigned threads, unsigned per_thread)
{
    uint8_t *seen = calloc((size_t)threads * per_thread, 1);
    size_t lines = 0;

    CHECK(seen != NULL, "out of memory");
    CHECK(len == 0 || text[len - 1] == '\n', "the file does not end with a newline");
    for (const char *line = text; line < text + len;) {
        const char *eol = memchr(line, '\n', (size_t)(text + len - line));
        CHECK(eol != NULL, "unterminated line");
        json_error_t error;
        json_t *obj = json_loadb(line, (size_t)(eol - line), 0, &error);
        CHECK(obj != NULL, "line %zu is not JSON (%s): %.120s", lines + 1, error.text, line);
        json_int_t thread = json_integer_value(json_object_get(obj, "thread"));
        json_int_t seq = json_integer_value(json_object_get(obj, "seq"));
        const char *pad = json_string_value(json_object_get(obj, "pad"));
        CHECK(thread >= 0 && thread < threads && seq >= 0 && seq < per_thread && pad,
              "line %zu has wrong members: %.120s", lines + 1, line);
        for (const char *p = pad; *p; p++)
            CHECK(*p == 'a' + (char)(seq % 26), "line %zu: mixed content", lines + 1);
        size_t index = (size_t)thread * per_thread + (size_t)seq;
        CHECK(!seen[index], "thread %lld seq %lld written twice", (long long)thread,
              (long long)seq);
        seen[index] = 1;
        json_decref(obj);
        lines++;
        line = eol + 1;
    }
    free(seen);
    return lines;
}

/* --- concurrent producers -------------------------------------------------------------------- */

#define THREADS    4
#define PER_THREAD 25000

struct producer {
    struct accesslog *log;
    unsigned index;
    size_t pad;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    char line[1024];

    for (unsigned seq = 0; seq < PER_THREAD; seq++) {
        /* Lengths vary so that lines straddle buffer and write boundaries. */
        size_t len = make_line(line, sizeof(line), p->index, seq, p->pad + seq % 200);
        accesslog_submit(p->log, line, len);
    }
    return NULL;
}

/*
 * 4 threads x 25000 lines of varying length into a file sink; after all producers are done and
 * the sink has caught up: written + dropped = submitted, the file holds exactly `written` lines,
 * every one whole. With a large buffer nothing should be dropped on a healthy disk; with a small
 * one, drops happen and must be counted, never torn.
 */
static void run_producers(const char *name, size_t buffer_bytes, size_t pad, bool expect_no_drops)
{
    char path[600];
    struct accesslog *log = NULL;
    pthread_t threads[THREADS];
    struct producer producers[THREADS];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_int_eq(accesslog_open(path, buffer_bytes, &log), 0);
    for (unsigned i = 0; i < THREADS; i++) {
        producers[i] = (struct producer){.log = log, .index = i, .pad = pad + 100 * i};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, produce, &producers[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    uint64_t submitted = (uint64_t)THREADS * PER_THREAD;
    struct accesslog_stats st;
    accesslog_get_stats(log, &st);
    wait_written(log, submitted - st.lines_dropped, 60);
    accesslog_get_stats(log, &st);
    ck_assert_msg(st.lines_written + st.lines_dropped == submitted,
                  "written %llu + dropped %llu != submitted %llu",
                  (unsigned long long)st.lines_written, (unsigned long long)st.lines_dropped,
                  (unsigned long long)submitted);
    ck_assert_uint_eq(st.write_errors, 0);
    if (expect_no_drops)
        ck_assert_msg(st.lines_dropped == 0, "%llu lines dropped with a %zu-byte buffer",
                      (unsigned long long)st.lines_dropped, buffer_bytes);
    accesslog_close(log); /* flushes everything queued (nothing is, by now) */

    char *text = promtool_slurp(path);
    size_t lines = check_lines(text, strlen(text), THREADS, PER_THREAD);
    ck_assert_msg(lines == st.lines_written, "file has %zu lines, written stat says %llu", lines,
                  (unsigned long long)st.lines_written);
    ck_assert_msg(lines == submitted - st.lines_dropped, "file has %zu lines, expected %llu", lines,
                  (unsigned long long)(submitted - st.lines_dropped));
    free(text);
}

START_TEST(test_concurrent_lines_are_whole)
{
    /* 100k lines of 60..560 bytes: about 30 MB, more than the buffer holds at once. */
    run_producers("access.log", 64u * 1024 * 1024, 60, true);
}
END_TEST

START_TEST(test_concurrent_lines_with_a_small_buffer)
{
    run_producers("small-buffer.log", 64u * 1024, 20, false);
}
END_TEST

/* --- a sink that cannot keep up ------------------------------------------------------------- */

struct drain {
    int fd;
    char *data;
    size_t len, cap;
};

static void *drain_pipe(void *arg)
{
    struct drain *d = arg;
    for (;;) {
        if (d->len + 65536 > d->cap) {
            d->cap = d->cap ? d->cap * 2 : 1 << 20;
            d->data = realloc(d->data, d->cap);
            if (!d->data)
                return NULL;
        }
        ssize_t n = read(d->fd, d->data + d->len, d->cap - d->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NULL;
        d->len += (size_t)n;
    }
}

/*
 * Submit lines into a sink whose pipe nobody reads until the writer must be stuck: more bytes
 * were accepted (submitted and not dropped) than the pipe holds, so some write(2) cannot
 * complete, and lines have been dropped. Returns the number of lines submitted (bounded).
 */
static unsigned fill_until_blocked(struct accesslog *log, int pipe_fd, unsigned first_seq)
{
    int capacity = fcntl(pipe_fd, F_GETPIPE_SZ);
    struct accesslog_stats st = {0};
    uint64_t accepted_bytes = 0;
    unsigned n = 0;
    char line[256];

    ck_assert_int_gt(capacity, 0);
    while (n < 2000000 && (accepted_bytes <= (uint64_t)capacity || st.lines_dropped == 0)) {
        size_t len = make_line(line, sizeof(line), 0, first_seq + n, 60);
        uint64_t dropped_before = st.lines_dropped;
        accesslog_submit(log, line, len);
        n++;
        accesslog_get_stats(log, &st);
        if (st.lines_dropped == dropped_before)
            accepted_bytes += len; /* single producer: this line was the one accepted */
    }
    ck_assert_msg(accepted_bytes > (uint64_t)capacity && st.lines_dropped > 0,
                  "the writer did not block: %llu bytes accepted into a %d-byte pipe after %u "
                  "lines, %llu dropped",
                  (unsigned long long)accepted_bytes, capacity, n,
                  (unsigned long long)st.lines_dropped);
    return n;
}

START_TEST(test_blocked_sink_drops_whole_lines_and_counts_them)
{
    int fds[2];
    char path[64], line[256], stderr_path[600];
    struct accesslog *log = NULL;

    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    fcntl(fds[1], F_SETPIPE_SZ, 4096); /* fills sooner; the kernel may round it up */
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[1]);

    /* Capture stderr: the sink announces drops there. */
    snprintf(stderr_path, sizeof(stderr_path), "%s/stderr", dir);
    fflush(stderr);
    int saved_stderr = dup(STDERR_FILENO);
    int err_fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert(saved_stderr >= 0 && err_fd >= 0);
    dup2(err_fd, STDERR_FILENO);
    close(err_fd);

    ck_assert_int_eq(accesslog_open(path, 4096, &log), 0);
    close(fds[1]); /* the sink holds its own descriptor of the pipe */

    /* Nobody reads: submit until the writer is stuck, then some more. */
    struct accesslog_stats st = {0};
    unsigned submitted = fill_until_blocked(log, fds[0], 0);
    accesslog_get_stats(log, &st);
    uint64_t dropped_when_stuck = st.lines_dropped;
    for (unsigned i = 0; i < 1000; i++, submitted++) {
        size_t len = make_line(line, sizeof(line), 0, submitted, 60);
        accesslog_submit(log, line, len);
    }
    accesslog_get_stats(log, &st);
    /* The writer can take at most two more buffers (2 x 4096 bytes): the rest was dropped. */
    ck_assert_msg(st.lines_dropped - dropped_when_stuck >= 1000 - 2 * 4096 / 60,
                  "only %llu of 1000 lines into a stuck sink were dropped",
                  (unsigned long long)(st.lines_dropped - dropped_when_stuck));

    /* Now read the pipe: the writer gets going, close flushes what was queued. */
    struct drain d = {.fd = fds[0]};
    pthread_t reader;
    ck_assert_int_eq(pthread_create(&reader, NULL, drain_pipe, &d), 0);
    accesslog_get_stats(log, &st);
    wait_written(log, submitted - st.lines_dropped, 30);
    accesslog_get_stats(log, &st);
    accesslog_close(log);
    pthread_join(reader, NULL); /* EOF: the sink closed the last write end */
    close(fds[0]);

    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);

    ck_assert_ptr_nonnull(d.data);
    size_t lines = check_lines(d.data, d.len, 1, submitted);
    ck_assert_msg(st.lines_written + st.lines_dropped == submitted,
                  "written %llu + dropped %llu != submitted %u",
                  (unsigned long long)st.lines_written, (unsigned long long)st.lines_dropped,
                  submitted);
    ck_assert_msg(lines == st.lines_written, "the pipe got %zu lines, written stat says %llu",
                  lines, (unsigned long long)st.lines_written);
    free(d.data);

    /* The loss was announced on stderr, as a JSON diagnostic with the count. */
    char *diag_text = promtool_slurp(stderr_path);
    ck_assert_msg(strstr(diag_text, "lines dropped") != NULL,
                  "no diagnostic about dropped lines on stderr:\n%s", diag_text);
    free(diag_text);
}
END_TEST

/* accesslog_close in a thread, so that a hang is a bounded failure rather than a hung test. */
static void *close_thread(void *arg)
{
    accesslog_close(arg);
    return NULL;
}

/*
 * Shutdown must stay bounded (docs/operations.md, "Draining": in-flight requests get a drain
 * timeout, then the process exits) even when the access-log sink is stuck: a stdout pipe whose
 * reader stalled, a hung network file system. Closing may try to flush for a while, but it must
 * return, and the lines it could not write are lost loudly, not by hanging the process forever.
 */
START_TEST(test_close_returns_while_the_sink_is_blocked)
{
    int fds[2];
    char path[64];
    struct accesslog *log = NULL;

    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    fcntl(fds[1], F_SETPIPE_SZ, 4096);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[1]);
    ck_assert_int_eq(accesslog_open(path, 4096, &log), 0);
    close(fds[1]);
    fill_until_blocked(log, fds[0], 0);

    pthread_t closer;
    struct timespec deadline;
    ck_assert_int_eq(pthread_create(&closer, NULL, close_thread, log), 0);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    int rc = pthread_timedjoin_np(closer, NULL, &deadline);
    /* On failure the closer stays blocked; the read end stays open so nothing else changes. */
    ck_assert_msg(rc == 0, "accesslog_close did not return within 30 s while its sink was "
                           "blocked: the daemon could never exit");
    close(fds[0]);
}
END_TEST

/* A line longer than the whole buffer can never fit: dropped and counted, not torn. */
START_TEST(test_line_larger_than_the_buffer_is_dropped)
{
    char path[600], big[3000], line[256];
    struct accesslog *log = NULL;

    snprintf(path, sizeof(path), "%s/small.log", dir);
    ck_assert_int_eq(accesslog_open(path, 1024, &log), 0);
    size_t len = make_line(big, sizeof(big), 0, 0, 2000);
    accesslog_submit(log, big, len);
    len = make_line(line, sizeof(line), 0, 1, 10);
    accesslog_submit(log, line, len);
    wait_written(log, 1, 10);
    struct accesslog_stats st;
    accesslog_get_stats(log, &st);
    ck_assert_uint_eq(st.lines_dropped, 1);
    ck_assert_uint_eq(st.lines_written, 1);
    accesslog_close(log);
    char *text = promtool_slurp(path);
    ck_assert_uint_eq(check_lines(text, strlen(text), 1, 2), 1);
    ck_assert_msg(strstr(text, "\"seq\":1,") != NULL, "the small line is missing");
    free(text);
}
END_TEST

/* --- reopen -------------------------------------------------------------------------------------
 */

START_TEST(test_reopen_after_rename_writes_to_the_new_file)
{
    char path[600], rotated[600], line[256];
    struct accesslog *log = NULL;

    snprintf(path, sizeof(path), "%s/rotate.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/rotate.log.1", dir);
    ck_assert_int_eq(accesslog_open(path, 65536, &log), 0);
    for (unsigned i = 0; i < 100; i++)
        accesslog_submit(log, line, make_line(line, sizeof(line), 0, i, 10));
    ck_assert_msg(wait_written(log, 100, 10) == 100, "the first 100 lines were not written");

    ck_assert_int_eq(rename(path, rotated), 0); /* what logrotate does */
    /* Until the reopen, lines still go to the renamed file (same descriptor). */
    accesslog_submit(log, line, make_line(line, sizeof(line), 0, 100, 10));
    ck_assert(wait_written(log, 101, 10) == 101);
    accesslog_request_reopen(log);
    for (unsigned i = 101; i < 150; i++)
        accesslog_submit(log, line, make_line(line, sizeof(line), 0, i, 10));
    accesslog_close(log);

    char *old_text = promtool_slurp(rotated);
    char *new_text = promtool_slurp(path);
    ck_assert_uint_eq(check_lines(old_text, strlen(old_text), 1, 150), 101);
    ck_assert_uint_eq(check_lines(new_text, strlen(new_text), 1, 150), 49);
    ck_assert_msg(strncmp(new_text, "{\"thread\":0,\"seq\":101,", 22) == 0,
                  "the new file starts with: %.60s", new_text);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_msg((st.st_mode & 0777) == 0640, "new file mode %o, expected 0640",
                  st.st_mode & 0777);
    free(old_text);
    free(new_text);
}
END_TEST

/* A reopen that fails (the directory is gone) keeps writing to the old file; nothing is lost. */
START_TEST(test_failed_reopen_keeps_the_old_file)
{
    char sub[600], path[600], line[256];
    struct accesslog *log = NULL;

    snprintf(sub, sizeof(sub), "%s/sub", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(path, sizeof(path), "%s/sub/a.log", dir);
    ck_assert_int_eq(accesslog_open(path, 65536, &log), 0);
    accesslog_submit(log, line, make_line(line, sizeof(line), 0, 0, 10));
    ck_assert(wait_written(log, 1, 10) == 1);
    char moved[600];
    snprintf(moved, sizeof(moved), "%s/moved", dir);
    ck_assert_int_eq(rename(sub, moved), 0); /* the path no longer resolves */
    accesslog_request_reopen(log);
    accesslog_submit(log, line, make_line(line, sizeof(line), 0, 1, 10));
    ck_assert(wait_written(log, 2, 10) == 2);
    struct accesslog_stats st;
    accesslog_get_stats(log, &st);
    ck_assert_uint_eq(st.lines_dropped, 0);
    accesslog_close(log);
    char moved_file[700];
    snprintf(moved_file, sizeof(moved_file), "%s/a.log", moved);
    char *text = promtool_slurp(moved_file);
    ck_assert_uint_eq(check_lines(text, strlen(text), 1, 2), 2);
    free(text);
}
END_TEST

START_TEST(test_open_errors_and_close_null)
{
    struct accesslog *log = (struct accesslog *)&log;
    ck_assert_int_eq(accesslog_open("/nonexistent-dir/x/access.log", 4096, &log), -ENOENT);
    ck_assert_ptr_eq(log, (struct accesslog *)&log); /* untouched on failure */
    ck_assert_ptr_null(accesslog_close(NULL));
}
END_TEST

static Suite *accesslog_suite(void)
{
    Suite *s = suite_create("accesslog");
    TCase *tc = tcase_create("sink");

    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_concurrent_lines_are_whole);
    tcase_add_test(tc, test_concurrent_lines_with_a_small_buffer);
    tcase_add_test(tc, test_blocked_sink_drops_whole_lines_and_counts_them);
    tcase_add_test(tc, test_close_returns_while_the_sink_is_blocked);
    tcase_add_test(tc, test_line_larger_than_the_buffer_is_dropped);
    tcase_add_test(tc, test_reopen_after_rename_writes_to_the_new_file);
    tcase_add_test(tc, test_failed_reopen_keeps_the_old_file);
    tcase_add_test(tc, test_open_errors_and_close_null);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(accesslog_suite());
}
