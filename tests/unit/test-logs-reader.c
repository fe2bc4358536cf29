/* SPDX-License-Identifier: MIT */

/*
 * The streaming line reader of `tracehop logs` (src/cli/log_reader.c): lines split across
 * reads, lines longer than the limit skipped and counted (never buffered whole), the last line
 * without a newline, a limit offset for second passes, pipes that have nothing yet, and the
 * truncation and rotation checks of --follow. Files live in a private temporary directory.
 */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/log_reader.h"
#include "unit-test.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tracehop-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_dir(void)
{
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const char *data, size_t len, bool append)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* Read every line (and the unterminated tail) of r into out, separated by '|'. */
static void read_all(struct log_reader *r, char *out, size_t size, bool take_partial)
{
    const char *line;
    size_t len, n = 0;
    uint64_t offset;
    int rc;

    out[0] = '\0';
    while ((rc = log_reader_next(r, &line, &len, &offset)) == 1) {
        ck_assert_uint_lt(n + len + 2, size);
        memcpy(out + n, line, len);
        n += len;
        out[n++] = '|';
        out[n] = '\0';
    }
    ck_assert_int_eq(rc, 0);
    if (take_partial && log_reader_take_partial(r, &line, &len, &offset) == 1) {
        ck_assert_uint_lt(n + len + 2, size);
        memcpy(out + n, line, len);
        n += len;
        out[n++] = '$';
        out[n] = '\0';
    }
}

START_TEST(test_lines_offsets_and_the_unterminated_tail)
{
    char path[128], out[256];
    static const char data[] = "one\ntwo\r\n\nthree";
    struct log_reader r;
    const char *line;
    size_t len;
    uint64_t offset;

    snprintf(path, sizeof(path), "%s/a.log", dir);
    write_file(path, data, sizeof(data) - 1, false);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_eq(log_reader_init(&r, fd, 0, UINT64_MAX, 0), 0);
    ck_assert(r.seekable);
    ck_assert_int_eq(log_reader_next(&r, &line, &len, &offset), 1);
    ck_assert(len == 3 && memcmp(line, "one", 3) == 0 && offset == 0);
    ck_assert_int_eq(log_reader_next(&r, &line, &len, &offset), 1);
    ck_assert(len == 4 && memcmp(line, "two\r", 4) == 0 && offset == 4); /* CR kept: as read */
    ck_assert_int_eq(log_reader_next(&r, &line, &len, &offset), 1);
    ck_assert(len == 0 && offset == 9);
    ck_assert_int_eq(log_reader_next(&r, &line, &len, &offset), 0);
    ck_assert(r.at_eof);
    ck_assert_int_eq(log_reader_take_partial(&r, &line, &len, &offset), 1);
    ck_assert(len == 5 && memcmp(line, "three", 5) == 0 && offset == 10);
    ck_assert_int_eq(log_reader_take_partial(&r, &line, &len, &offset), 0);
    ck_assert_uint_eq(log_reader_position(&r), sizeof(data) - 1);
    log_reader_free(&r);

    /* A second reader on the same descriptor, with a limit: stops at byte 9. */
    ck_assert_int_eq(log_reader_init(&r, fd, 0, 9, 0), 0);
    read_all(&r, out, sizeof(out), false);
    ck_assert_str_eq(out, "one|two\r|");
    log_reader_free(&r);
    close(fd);
}
END_TEST

START_TEST(test_long_lines_are_skipped_and_counted)
{
    char path[128], out[512];
    struct log_reader r;
    size_t len;
    /* max_line 16: a 16-byte line is fine, 17 is too long; 3 MB outgrows the buffer. */
    char *data = unit_expand("ok\n{a*16}\n{b*17}\nmid\n{c*3000000}\nend\n{d*40}", &len);

    snprintf(path, sizeof(path), "%s/long.log", dir);
    write_file(path, data, len, false);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_eq(log_reader_init(&r, fd, 0, UINT64_MAX, 16), 0);
    read_all(&r, out, sizeof(out), true);
    ck_assert_str_eq(out, "ok|aaaaaaaaaaaaaaaa|mid|end|");
    ck_assert_uint_eq(r.overlong, 3); /* b, c, and the unterminated d */
    ck_assert_uint_eq(log_reader_position(&r), len);
    log_reader_free(&r);
    close(fd);
    free(data);
}
END_TEST

START_TEST(test_default_limit_is_one_mebibyte)
{
    char path[128];
    struct log_reader r;
    const char *line;
    size_t len, total;
    uint64_t offset;
    char *data = malloc(3 * LOG_READER_MAX_LINE);

    ck_assert_ptr_nonnull(data);
    /* A line of exactly the limit, then one byte more, then a short one. */
    memset(data, 'x', LOG_READER_MAX_LINE);
    data[LOG_READER_MAX_LINE] = '\n';
    memset(data + LOG_READER_MAX_LINE + 1, 'y', LOG_READER_MAX_LINE + 1);
    data[2 * LOG_READER_MAX_LINE + 2] = '\n';
    memcpy(data + 2 * LOG_READER_MAX_LINE + 3, "{}\n", 3);
    total = 2 * LOG_READER_MAX_LINE + 6;
    snprintf(path, sizeof(path), "%s/mib.log", dir);
    write_file(path, data, total, false);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_eq(log_reader_init(&r, fd, 0, UINT64_MAX, 0), 0);
    ck_assert_int_eq(log_reader_next(&r, &line, &len, &offset), 1);
    ck_assert_uint_eq(len, LOG_READER_MAX_LINE);
    ck_assert_int_eq(log_reader_next(&r, &line, &len, &offset), 1);
    ck_assert(len == 2 && memcmp(line, "{}", 2) == 0);
    ck_assert_uint_eq(offset, 2 * LOG_READER_MAX_LINE + 3);
    ck_assert_uint_eq(r.overlong, 1);
    ck_assert_uint_le(r.cap, LOG_READER_MAX_LINE + LOG_READER_CHUNK + 1);
    log_reader_free(&r);
    close(fd);
    free(data);
}
END_TEST

START_TEST(test_pipe_delivers_lines_in_pieces)
{
    int p[2];
    struct log_reader r;
    const char *line;
    size_t len;
    uint64_t offset;

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(log_reader_init(&r, p[0], 0, UINT64_MAX, 0), 0);
    ck_assert(!r.seekable);
    r.poll_first = true; /* as --follow on stdin: never block */
    ck_assert_int_eq(log_reader_next(&r, &line, &len, &offset), 0);
    ck_assert(!r.at_eof);
    ck_assert_int_eq(write(p[1], "{\"a\":", 5), 5);
    ck_assert_int_eq(log_reader_next(&r, &line, &len, &offset), 0);
    ck_assert_int_eq(write(p[1], "1}\n{", 4), 4);
    ck_assert_int_eq(log_reader_next(&r, &line, &len, &offset), 1);
    ck_assert(len == 7 && memcmp(line, "{\"a\":1}", 7) == 0 && offset == 0);
    ck_assert_int_eq(log_reader_next(&r, &line, &len, &offset), 0);
    close(p[1]);
    ck_assert_int_eq(log_reader_next(&r, &line, &len, &offset), 0);
    ck_assert(r.at_eof);
    ck_assert_int_eq(log_reader_take_partial(&r, &line, &len, &offset), 1);
    ck_assert(len == 1 && line[0] == '{' && offset == 8);
    log_reader_free(&r);
    close(p[0]);
}
END_TEST

START_TEST(test_random_chunks_give_the_same_lines)
{
    int p[2];
    struct log_reader r;
    const char *line;
    size_t len, count = 0;
    uint64_t offset, state = unit_prng_seed(7), expect_offset = 0;
    char text[20000];
    size_t text_len = 0;

    /* Lines of random lengths 0..199 made of one letter each. */
    for (size_t i = 0; text_len < sizeof(text) - 300; i++) {
        size_t n = (size_t)(unit_prng_next(&state) % 200);
        memset(text + text_len, 'a' + (int)(i % 26), n);
        text_len += n;
        text[text_len++] = '\n';
    }
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(log_reader_init(&r, p[0], 0, UINT64_MAX, 0), 0);
    r.poll_first = true;
    for (size_t sent = 0; sent < text_len;) {
        size_t n = 1 + (size_t)(unit_prng_next(&state) % 700);
        if (n > text_len - sent)
            n = text_len - sent;
        ck_assert_int_eq(write(p[1], text + sent, n), (ssize_t)n);
        sent += n;
        while (log_reader_next(&r, &line, &len, &offset) == 1) {
            ck_assert(offset == expect_offset);
            ck_assert(memcmp(line, text + offset, len) == 0 && text[offset + len] == '\n');
            expect_offset = offset + len + 1;
            count++;
        }
    }
    ck_assert_uint_eq(expect_offset, text_len);
    ck_assert_uint_gt(count, 100);
    close(p[1]);
    log_reader_free(&r);
    close(p[0]);
}
END_TEST

START_TEST(test_source_truncation_and_rotation)
{
    char path[128], rotated[128], out[256];
    struct log_source s;

    snprintf(path, sizeof(path), "%s/live.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/live.log.1", dir);
    write_file(path, "1\n2\n", 4, false);
    ck_assert_int_eq(log_source_open(&s, path, 0), 0);
    read_all(&s.reader, out, sizeof(out), false);
    ck_assert_str_eq(out, "1|2|");
    ck_assert_int_eq(log_source_check(&s), LOG_SOURCE_SAME);

    write_file(path, "3\n", 2, true);
    ck_assert_int_eq(log_source_check(&s), LOG_SOURCE_SAME);
    read_all(&s.reader, out, sizeof(out), false);
    ck_assert_str_eq(out, "3|");

    /* copytruncate: the same file, shorter than what was read. */
    write_file(path, "4\n", 2, false);
    ck_assert_int_eq(log_source_check(&s), LOG_SOURCE_TRUNCATED);
    read_all(&s.reader, out, sizeof(out), false);
    ck_assert_str_eq(out, "4|");

    /* Rotation: renamed away (and written to once more), a new file in its place. */
    ck_assert_int_eq(rename(path, rotated), 0);
    ck_assert_int_eq(log_source_check(&s), LOG_SOURCE_SAME); /* nothing there yet */
    write_file(rotated, "5\n", 2, true);
    write_file(path, "6\n", 2, false);
    ck_assert_int_eq(log_source_check(&s), LOG_SOURCE_REPLACED);
    read_all(&s.reader, out, sizeof(out), true); /* the old file's last lines */
    ck_assert_str_eq(out, "5|");
    ck_assert_int_eq(log_source_reopen(&s), 0);
    read_all(&s.reader, out, sizeof(out), false);
    ck_assert_str_eq(out, "6|");
    ck_assert_int_eq(log_source_check(&s), LOG_SOURCE_SAME);
    log_source_close(&s);
}
END_TEST

START_TEST(test_open_errors)
{
    char path[128];
    struct log_source s;

    snprintf(path, sizeof(path), "%s/missing.log", dir);
    ck_assert_int_eq(log_source_open(&s, path, 0), -ENOENT);
    ck_assert_int_eq(log_source_open(&s, dir, 0), -EISDIR);
    ck_assert_int_eq(log_source_open(&s, "-", 0), 0);
    ck_assert(s.is_stdin);
    ck_assert_str_eq(s.name, "(stdin)");
    ck_assert(!s.reader.seekable);
    log_source_close(&s);
}
END_TEST

static Suite *logs_reader_suite(void)
{
    Suite *suite = suite_create("logs-reader");
    TCase *lines = tcase_create("lines");
    TCase *sources = tcase_create("sources");

    tcase_add_checked_fixture(lines, make_dir, remove_dir);
    tcase_set_timeout(lines, 60);
    tcase_add_test(lines, test_lines_offsets_and_the_unterminated_tail);
    tcase_add_test(lines, test_long_lines_are_skipped_and_counted);
    tcase_add_test(lines, test_default_limit_is_one_mebibyte);
    tcase_add_test(lines, test_pipe_delivers_lines_in_pieces);
    tcase_add_test(lines, test_random_chunks_give_the_same_lines);
    suite_add_tcase(suite, lines);

    tcase_add_checked_fixture(sources, make_dir, remove_dir);
    tcase_add_test(sources, test_source_truncation_and_rotation);
    tcase_add_test(sources, test_open_errors);
    suite_add_tcase(suite, sources);
    return suite;
}

int main(void)
{
    return unit_run(logs_reader_suite());
}
