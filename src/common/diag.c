/* SPDX-License-Identifier: MIT */
/*
 * Diagnostic lines. They are rare (startup, config errors, upstream failures), so clarity beats
 * speed: format into a stack buffer, escape, and write the whole line with one write(2) so lines
 * from different threads never interleave.
 *
 * Request diagnostics can come once per request (an upstream down at thousands of requests a
 * second), so they are collapsed: a small fixed table remembers the request messages printed in
 * the last DIAG_REPEAT_INTERVAL_MS with how many identical ones were dropped since. When a
 * message's interval is over (seen at the next diag call or diag_tick), or its slot is needed
 * for a newer message, or at diag_flush, one line reports the count. The table and the writes
 * are under one mutex, so that a count line never overtakes the line it counts; memory stays
 * bounded whatever the traffic.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/diag.h"
#include "common/strbuf.h"
#include "common/timefmt.h"

#define DIAG_MESSAGE_MAX 2048
#define REPEAT_SLOTS     16 /* distinct request messages remembered at once */

struct repeat_slot {
    bool used;
    enum diag_level level;
    int64_t first_ms; /* when the printed occurrence was written */
    unsigned long suppressed;
    char message[DIAG_MESSAGE_MAX];
};

static atomic_int min_level = DIAG_INFO;
static atomic_int output_fd = STDERR_FILENO;
static int64_t (*_Atomic clock_fn)(void);

static pthread_mutex_t repeat_lock = PTHREAD_MUTEX_INITIALIZER;
static struct repeat_slot repeats[REPEAT_SLOTS]; /* under repeat_lock */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void diag_set_level(enum diag_level level)
{
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}

int diag_level_parse(const char *text, enum diag_level *ret)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *ret = (enum diag_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *diag_level_name(enum diag_level level)
{
    return level >= DIAG_DEBUG && level <= DIAG_ERROR ? level_names[level] : "info";
}

void diag_set_output(int fd)
{
    atomic_store(&output_fd, fd);
}

void diag_set_clock(int64_t (*now_ms)(void))
{
    atomic_store(&clock_fn, now_ms);
}

static int64_t now_ms(void)
{
    int64_t (*fn)(void) = atomic_load(&clock_fn);
    struct timespec ts;

    if (fn)
        return fn();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool level_enabled(enum diag_level level)
{
    return (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

/* One finished line, ids optional. */
static void write_line(enum diag_level level, const char *trace_id, const char *span_id,
                       const char *message)
{
    char time_text[TIMEFMT_RFC3339_MS_LEN + 1];
    struct strbuf line = {0};
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    timefmt_rfc3339_ms(time_text, &now);

    strbuf_append_str(&line, "{\"time\":\"");
    strbuf_append_str(&line, time_text);
    strbuf_append_str(&line, "\",\"level\":\"");
    strbuf_append_str(&line, level_names[level]);
    strbuf_append_str(&line, "\",\"message\":");
    strbuf_append_json_string(&line, message, strlen(message));
    if (trace_id) {
        strbuf_append_str(&line, ",\"trace_id\":");
        strbuf_append_json_string(&line, trace_id, strlen(trace_id));
    }
    if (span_id) {
        strbuf_append_str(&line, ",\"span_id\":");
        strbuf_append_json_string(&line, span_id, strlen(span_id));
    }
    strbuf_append_str(&line, "}\n");
    if (!line.oom) {
        ssize_t ignored = write(atomic_load(&output_fd), line.data, line.len);
        (void)ignored; /* nowhere left to report a failing stderr */
    }
    strbuf_free(&line);
}

/* Report a slot's suppressed count (if any) over `elapsed_ms`, and free the slot. Locked. */
static void end_repeat(struct repeat_slot *slot, int64_t elapsed_ms)
{
    if (slot->suppressed > 0) {
        char summary[DIAG_MESSAGE_MAX + 128];
        int64_t seconds = (elapsed_ms + 999) / 1000;
        if (seconds < 1)
            seconds = 1;
        snprintf(summary, sizeof(summary),
                 "\"%s\" repeated %lu more time%s in the last %lld s (suppressed)", slot->message,
                 slot->suppressed, slot->suppressed == 1 ? "" : "s", (long long)seconds);
        write_line(slot->level, NULL, NULL, summary);
    }
    slot->used = false;
}

/* End the intervals that are over at `now` (all of them if `all`). Locked. */
static void end_repeats(int64_t now, bool all)
{
    for (size_t i = 0; i < REPEAT_SLOTS; i++) {
        struct repeat_slot *slot = &repeats[i];
        int64_t elapsed = now - slot->first_ms;
        if (slot->used && (all || elapsed >= DIAG_REPEAT_INTERVAL_MS))
            end_repeat(slot, elapsed < DIAG_REPEAT_INTERVAL_MS ? elapsed : DIAG_REPEAT_INTERVAL_MS);
    }
}

/* True if `message` repeats one printed within the interval (then counted); else it is
 * remembered as printed now, in a free slot or the oldest one. Locked. */
static bool count_repeat(enum diag_level level, const char *message, int64_t now)
{
    struct repeat_slot *oldest = &repeats[0];

    for (size_t i = 0; i < REPEAT_SLOTS; i++) {
        struct repeat_slot *slot = &repeats[i];
        if (slot->used && slot->level == level && strcmp(slot->message, message) == 0) {
            slot->suppressed++;
            return true;
        }
        if (!slot->used ? oldest->used : oldest->used && slot->first_ms < oldest->first_ms)
            oldest = slot;
    }
    if (oldest->used)
        end_repeat(oldest, now - oldest->first_ms);
    oldest->used = true;
    oldest->level = level;
    oldest->first_ms = now;
    oldest->suppressed = 0;
    snprintf(oldest->message, sizeof(oldest->message), "%s", message);
    return false;
}

static void diag_write(enum diag_level level, bool collapse, const char *trace_id,
                       const char *span_id, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static void diag_write(enum diag_level level, bool collapse, const char *trace_id,
                       const char *span_id, const char *fmt, va_list ap)
{
    char message[DIAG_MESSAGE_MAX];

    if (!level_enabled(level))
        return;
    vsnprintf(message, sizeof(message), fmt, ap);

    pthread_mutex_lock(&repeat_lock);
    int64_t now = now_ms();
    end_repeats(now, false);
    if (!collapse || !count_repeat(level, message, now))
        write_line(level, trace_id, span_id, message);
    pthread_mutex_unlock(&repeat_lock);
}

void diag(enum diag_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_write(level, false, NULL, NULL, fmt, ap);
    va_end(ap);
}

void diag_request(enum diag_level level, const char *trace_id_hex, const char *span_id_hex,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_write(level, true, trace_id_hex, span_id_hex, fmt, ap);
    va_end(ap);
}

void diag_tick(void)
{
    pthread_mutex_lock(&repeat_lock);
    end_repeats(now_ms(), false);
    pthread_mutex_unlock(&repeat_lock);
}

void diag_flush(void)
{
    pthread_mutex_lock(&repeat_lock);
    end_repeats(now_ms(), true);
    pthread_mutex_unlock(&repeat_lock);
}
