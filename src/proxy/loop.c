/* SPDX-License-Identifier: MIT */
/*
 * The event loop (see loop.h for the iteration and the deferral rule). Timers are a short list
 * scanned per iteration: a worker has a handful (libcurl's, libmicrohttpd's, housekeeping,
 * draining), never one per request. A watch removed while its batch is being dispatched has its
 * pending events struck from the batch, so no callback ever sees an event meant for an fd that
 * was closed (and maybe reused) by an earlier callback of the same batch.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "proxy/loop.h"

#define MAX_EVENTS 128
/* Rounds of deferred + flush work per iteration before the loop looks at its fds again. */
#define MAX_TASK_ROUNDS 16
/* Deferred tasks per pass: far more than the requests one worker serves at once. */
#define MAX_TASKS_PER_PASS 65536

/* The batch being dispatched, for loop_unwatch (one loop per thread). */
static _Thread_local struct epoll_event *dispatching;
static _Thread_local int dispatch_next, dispatch_count;

int64_t loop_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_wake_fd(void *data, uint32_t events)
{
    struct loop *loop = data;
    uint64_t ignored;
    ssize_t r = read(loop->wake_fd, &ignored, sizeof(ignored));
    (void)r;
    (void)events;
    if (loop->on_wake)
        loop->on_wake(loop->on_wake_data, 0);
}

int loop_init(struct loop *loop, loop_fn *on_wake, void *data)
{
    *loop = (struct loop){.epoll_fd = -1, .wake_fd = -1, .on_wake = on_wake, .on_wake_data = data};
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epoll_fd < 0)
        return -errno;
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0)
        return -errno;
    return loop_watch(loop, &loop->wake_watch, loop->wake_fd, EPOLLIN, on_wake_fd, loop);
}

void loop_destroy(struct loop *loop)
{
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
    if (loop->epoll_fd >= 0)
        close(loop->epoll_fd);
    loop->wake_fd = loop->epoll_fd = -1;
}

int loop_watch(struct loop *loop, struct loop_watch *watch, int fd, uint32_t events, loop_fn *fn,
               void *data)
{
    struct epoll_event ev = {.events = events, .data.ptr = watch};
    int op = watch->watched && watch->fd == fd ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

    if (watch->watched && watch->fd != fd)
        loop_unwatch(loop, watch);
    if (epoll_ctl(loop->epoll_fd, op, fd, &ev) < 0) {
        /* Our record was stale (the fd was closed and reused behind our back): try the other. */
        op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (epoll_ctl(loop->epoll_fd, op, fd, &ev) < 0) {
            int err = errno;
            watch->watched = false;
            return -err;
        }
    }
    watch->fn = fn;
    watch->data = data;
    watch->fd = fd;
    watch->watched = true;
    return 0;
}

void loop_unwatch(struct loop *loop, struct loop_watch *watch)
{
    if (!watch->watched)
        return;
    watch->watched = false;
    epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, watch->fd, NULL);
    for (int i = dispatch_next; dispatching && i < dispatch_count; i++)
        if (dispatching[i].data.ptr == watch)
            dispatching[i].data.ptr = NULL;
}

void loop_timer_add(struct loop *loop, struct loop_timer *timer, loop_fn *fn, void *data)
{
    *timer = (struct loop_timer){.fn = fn, .data = data, .due_ms = -1, .next = loop->timers};
    loop->timers = timer;
}

void loop_timer_remove(struct loop *loop, struct loop_timer *timer)
{
    for (struct loop_timer **t = &loop->timers; *t; t = &(*t)->next) {
        if (*t == timer) {
            *t = timer->next;
            timer->next = NULL;
            timer->due_ms = -1;
            return;
        }
    }
}

static struct loop_task_list *task_list(struct loop *loop, const struct loop_task *task)
{
    return task->phase == LOOP_TASK_FLUSH ? &loop->flush : &loop->deferred;
}

void loop_defer(struct loop *loop, struct loop_task *task)
{
    struct loop_task_list *list = task_list(loop, task);

    if (task->queued)
        return;
    task->queued = true;
    task->next = NULL;
    if (list->tail)
        list->tail->next = task;
    else
        list->head = task;
    list->tail = task;
}

void loop_cancel(struct loop *loop, struct loop_task *task)
{
    struct loop_task_list *list = task_list(loop, task);
    struct loop_task *prev = NULL;

    if (!task->queued)
        return;
    for (struct loop_task *t = list->head; t; prev = t, t = t->next) {
        if (t != task)
            continue;
        if (prev)
            prev->next = t->next;
        else
            list->head = t->next;
        if (list->tail == t)
            list->tail = prev;
        break;
    }
    task->queued = false;
}

void loop_wake(struct loop *loop)
{
    uint64_t one = 1;
    ssize_t r = write(loop->wake_fd, &one, sizeof(one));
    (void)r;
}

/* Deferred tasks run one at a time off the live list: one queued while the pass runs is run in
 * the same pass, and one cancelled (its owner went away) is not run at all. A pass runs at most
 * MAX_TASKS_PER_PASS, so that a task that keeps deferring itself cannot hold the loop. */
static bool run_deferred(struct loop_task_list *list)
{
    struct loop_task *t = list->head;
    unsigned run = 0;

    if (!t)
        return false;
    while ((t = list->head) && run++ < MAX_TASKS_PER_PASS) {
        list->head = t->next;
        if (!list->head)
            list->tail = NULL;
        t->queued = false;
        t->fn(t->data, 0);
    }
    return true;
}

/* Flush tasks run once per pass, the list detached first: one that defers itself again (its
 * library still has work) runs in the next round, never in a tight circle. Flush tasks belong
 * to library adapters that live as long as the loop; they are never cancelled mid-pass. */
static bool run_flush(struct loop_task_list *list)
{
    struct loop_task *t = list->head;

    if (!t)
        return false;
    list->head = list->tail = NULL;
    while (t) {
        struct loop_task *next = t->next;
        t->queued = false;
        t->fn(t->data, 0);
        t = next;
    }
    return true;
}

/* Deferred work first, until none is left; then the flushes; again while either has work, for
 * at most MAX_TASK_ROUNDS passes (the rest waits for the next iteration, which does not sleep). */
static void run_deferred_work(struct loop *loop)
{
    for (int round = 0; round < MAX_TASK_ROUNDS; round++) {
        if (run_deferred(&loop->deferred))
            continue;
        if (!run_flush(&loop->flush))
            return;
    }
}

static void run_due_timers(struct loop *loop, int64_t now)
{
    for (struct loop_timer *t = loop->timers; t; t = t->next) {
        if (t->due_ms < 0 || t->due_ms > now)
            continue;
        t->due_ms = -1;
        t->fn(t->data, 0);
    }
}

static int wait_ms(const struct loop *loop, int64_t now, int max_wait_ms)
{
    int64_t timeout = max_wait_ms;

    if (loop->deferred.head || loop->flush.head)
        return 0;
    for (const struct loop_timer *t = loop->timers; t; t = t->next)
        if (t->due_ms >= 0 && t->due_ms - now < timeout)
            timeout = t->due_ms > now ? t->due_ms - now : 0;
    return (int)timeout;
}

int loop_run_once(struct loop *loop, int max_wait_ms)
{
    struct epoll_event events[MAX_EVENTS];
    int n =
        epoll_wait(loop->epoll_fd, events, MAX_EVENTS, wait_ms(loop, loop_now_ms(), max_wait_ms));

    if (n < 0) {
        if (errno != EINTR)
            return -errno;
        n = 0;
    }
    dispatching = events;
    dispatch_count = n;
    for (int i = 0; i < n; i++) {
        struct loop_watch *w = events[i].data.ptr;
        dispatch_next = i + 1;
        if (w)
            w->fn(w->data, events[i].events);
    }
    dispatching = NULL;
    dispatch_count = dispatch_next = 0;
    run_due_timers(loop, loop_now_ms());
    run_deferred_work(loop);
    return n;
}
