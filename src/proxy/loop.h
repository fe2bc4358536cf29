/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * One thread's event loop: an epoll set, a wake fd, timers and two lists of deferred work.
 * It knows nothing of its clients: everything it runs is a `loop_fn(data, events)` that a client
 * registered, for a watched fd, a due timer or a deferred task.
 *
 * The rule that keeps libmicrohttpd and libcurl out of re-entrancy they do not support: nothing
 * drives one library (resumes a connection, unpauses a transfer, runs it) from inside the other's
 * callback. A callback that needs that defers a task instead; deferred tasks run after the
 * current batch of events, outside every library callback.
 *
 * One iteration (loop_run_once): wait for events (not at all if work is deferred); call the
 * watch of each ready fd; call every due timer (in no particular order); then run deferred tasks
 * in the order they were deferred, and once none is left, the flush tasks - a library adapter's
 * "now push everything that changed into the library in one call" (MHD_run) - repeating both
 * until neither list has anything (bounded: what is left waits for the next iteration, which
 * then does not sleep).
 *
 * Everything but loop_wake belongs to the loop's thread.
 */
#include <stdbool.h>
#include <stdint.h>

typedef void loop_fn(void *data, uint32_t events);

/* A watched fd. Owned by the client; must stay valid (or be unwatched) while watched. */
struct loop_watch {
    loop_fn *fn;
    void *data;
    int fd;
    bool watched; /* in the epoll set */
};

/* A deadline. Registered once (loop_timer_add), then armed and disarmed at will. */
struct loop_timer {
    loop_fn *fn; /* called with events = 0 when due */
    void *data;
    int64_t due_ms; /* loop_now_ms() time; -1 = disarmed */
    struct loop_timer *next;
};

enum loop_task_phase {
    LOOP_TASK_DEFERRED, /* after the current batch of events */
    LOOP_TASK_FLUSH,    /* after that, once no deferred task is left */
};

/* Deferred work. Deferring a queued task again is a no-op. */
struct loop_task {
    loop_fn *fn; /* called with events = 0 */
    void *data;
    enum loop_task_phase phase;
    bool queued;
    struct loop_task *next;
};

struct loop_task_list {
    struct loop_task *head, *tail;
};

struct loop {
    int epoll_fd;
    int wake_fd; /* eventfd: another thread asks this one to look at its commands */
    struct loop_watch wake_watch;
    loop_fn *on_wake; /* the owner's: look at the commands (before the batch's other work) */
    void *on_wake_data;
    struct loop_timer *timers;
    struct loop_task_list deferred, flush;
};

/* A CLOCK_MONOTONIC reading in milliseconds, the unit of every deadline. */
int64_t loop_now_ms(void);

/* 0 or -errno. On failure the loop is left destroyable. on_wake(data, 0) runs when loop_wake
 * woke the loop, in the batch's dispatch: before any deferred or flush task of that batch, so
 * that a command given before an event (a new config before a request) is seen first. */
int loop_init(struct loop *loop, loop_fn *on_wake, void *data);
/* Close the epoll and wake fds; watched fds are not closed. Accepts a zeroed loop. */
void loop_destroy(struct loop *loop);

/*
 * Watch fd for `events` (EPOLLIN, EPOLLOUT, EPOLLRDHUP, ...; level-triggered), calling
 * fn(data, ready events). Watching a watched fd again changes its events. 0 or -errno.
 */
int loop_watch(struct loop *loop, struct loop_watch *watch, int fd, uint32_t events, loop_fn *fn,
               void *data);
/* Stop watching; a no-op when not watched. An event already collected for it is not delivered. */
void loop_unwatch(struct loop *loop, struct loop_watch *watch);

/* Register a disarmed timer; it stays registered until loop_timer_remove or loop_destroy. */
void loop_timer_add(struct loop *loop, struct loop_timer *timer, loop_fn *fn, void *data);
/* Unregister a timer (its owner is going away); a no-op when not registered. */
void loop_timer_remove(struct loop *loop, struct loop_timer *timer);
/* Arm the timer for due_ms (loop_now_ms() time), or disarm it with -1. A due timer is disarmed
 * before its fn runs; fn may arm it again. */
static inline void loop_timer_set(struct loop_timer *timer, int64_t due_ms)
{
    timer->due_ms = due_ms;
}

static inline void loop_task_init(struct loop_task *task, enum loop_task_phase phase, loop_fn *fn,
                                  void *data)
{
    *task = (struct loop_task){.fn = fn, .data = data, .phase = phase};
}
/* Queue the task in its phase (see the top of this file); a no-op when already queued. */
void loop_defer(struct loop *loop, struct loop_task *task);
/* Take a queued task off its list (its owner is going away); a no-op when not queued. */
void loop_cancel(struct loop *loop, struct loop_task *task);

/* Make the loop's thread call on_wake and return from loop_run_once soon. Thread-safe,
 * async-signal-safe. */
void loop_wake(struct loop *loop);

/*
 * One iteration, waiting at most max_wait_ms (or until the earliest timer, or not at all when
 * work is deferred). Returns the number of fd events handled, or -errno when epoll_wait failed
 * for another reason than a signal.
 */
int loop_run_once(struct loop *loop, int max_wait_ms);
