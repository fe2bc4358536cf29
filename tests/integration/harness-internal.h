/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * What the harness's own files share and the tests never see: the monotonic clock, the stderr
 * reporter, and the few helpers one job lends another. The tests include harness.h only; every
 * harness-*.c includes this header first.
 */
#include "harness.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static inline int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    return left < 0 ? 0 : (int)left;
}

/* "harness: <message>" on stderr: what a helper waited for and did not get, and the like. */
static inline void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("harness: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* --- harness-process.c ----------------------------------------------------------------- */

/* harness_process_stop with another first signal (the daemon's is SIGINT). */
int harness_process_stop_with(struct harness_process *p, int sig, int timeout_ms);

/* --- harness-files.c ------------------------------------------------------------------- */

/*
 * Call ready(arg) until it returns true, re-checking whenever something in the directory of
 * `path` changes, for at most timeout_ms. Stops early (after one last check) when `watch`
 * exits. Returns what the last call of ready returned.
 */
bool harness_wait_for_file(const char *path, bool (*ready)(void *arg), void *arg, int timeout_ms,
                           struct harness_process *watch);
/* Copy a file (a child's stderr) to our stderr, headed by `what`. */
void harness_dump_file(const char *what, const char *path);

/* --- harness-jsonl.c ------------------------------------------------------------------- */

/*
 * Every complete line of a JSON-lines file that is a JSON object, as an array (a new
 * reference; empty if there is no file). *ret_invalid (may be NULL) counts the other lines.
 */
json_t *harness_jsonl_parse(const char *path, size_t *ret_invalid);

/* --- harness-response.c ---------------------------------------------------------------- */

/* Append a header (the value with surrounding blanks trimmed). */
void harness_response_add_header(struct harness_response *rs, const char *name, size_t name_len,
                                 const char *value, size_t value_len);
/* Forget the headers collected so far (a new header block starts). */
void harness_response_clear_headers(struct harness_response *rs);
/* Hash body bytes into rs->body_hash and count them; append them to rs->body when `keep`. */
void harness_response_add_body(struct harness_response *rs, const char *data, size_t len,
                               bool keep);
