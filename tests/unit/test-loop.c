/* SPDX-License-Identifier: MIT */
/*
 * The generic event loop (src/proxy/loop.h): watched fds, timers, deferred and flush tasks in
 * their order, the bound on task rounds, and loop_wake from another thread.
 *
 * Nothing here asserts how long a wait took beyond a generous bound (5 s against waits of 10 s
 * or more), so a loaded machine cannot make a test fail; a loop that slept when it must not
 * would still be caught.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "proxy/loop.h"
#include "unit-test.h"

/* Well above any scheduling delay, well below the waits it bounds. */
#define PROMPT_MS 5000
#define LONG_MS   20000

/* An order of calls: each callback appends its letter. */
struct trace {
    char calls[256];
    size_t n;
};

static void trace_add(struct trace *t, char c)
{
    ck_assert_uint_lt(t->n, sizeof(t->calls) - 1);
    t->calls[t->n++] = c;
    t->calls[t->n] = '\0';
}

static void make_pipe(int fds[2])
{
    ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
}

static void close_pipe(int fds[2])
{
    close(fds[0]);
    close(fds[1]);
}

static void write_byte(int fd)
{
    ck_assert_int_eq(write(fd, "x", 1), 1);
}

/* --- watches ---------------------------------------------------------------------------------- */

struct watched {
    struct loop *loop;
    struct loop_watch watch;
    int fd;
    int calls;
    uint32_t events;
    struct watched *other; /* unwatched by this one's callback, when set */
    struct trace *trace;
    char letter;
};

static void on_fd(void *data, uint32_t events)
{
    struct watched *w = data;
    w->calls++;
    w->events = events;
    if (w->trace)
        trace_add(w->trace, w->letter);
    if (w->other)
        loop_unwatch(w->loop, &w->other->watch);
}

START_TEST(test_init_destroy)
{
    struct loop loop;
    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    ck_assert_int_ge(loop.epoll_fd, 0);
    ck_assert_int_ge(loop.wake_fd, 0);
    loop_destroy(&loop);
    ck_assert_int_eq(loop.epoll_fd, -1);
    ck_assert_int_eq(loop.wake_fd, -1);
    loop_destroy(&loop); /* twice is harmless */

    struct loop zeroed;
    memset(&zeroed, 0, sizeof(zeroed));
    zeroed.epoll_fd = zeroed.wake_fd = -1;
    loop_destroy(&zeroed);
}
END_TEST

/* A readable pipe fires EPOLLIN once per iteration (level-triggered) until drained. */
START_TEST(test_watch_pipe)
{
    struct loop loop;
    int fds[2];
    struct watched w = {.loop = &loop};

    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    make_pipe(fds);
    ck_assert_int_eq(loop_watch(&loop, &w.watch, fds[0], EPOLLIN, on_fd, &w), 0);
    ck_assert(w.watch.watched);
    ck_assert_int_eq(loop_run_once(&loop, 0), 0);
    ck_assert_int_eq(w.calls, 0);

    write_byte(fds[1]);
    ck_assert_int_eq(loop_run_once(&loop, LONG_MS), 1);
    ck_assert_int_eq(w.calls, 1);
    ck_assert(w.events & EPOLLIN);
    ck_assert_int_eq(loop_run_once(&loop, 0), 1); /* not drained: again */
    ck_assert_int_eq(w.calls, 2);

    char c;
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    ck_assert_int_eq(loop_run_once(&loop, 0), 0);
    ck_assert_int_eq(w.calls, 2);

    /* the other end closed: EPOLLHUP (always reported) */
    close(fds[1]);
    ck_assert_int_eq(loop_run_once(&loop, LONG_MS), 1);
    ck_assert_int_eq(w.calls, 3);
    ck_assert(w.events & EPOLLHUP);
    loop_unwatch(&loop, &w.watch);
    close(fds[0]);
    loop_destroy(&loop);
}
END_TEST

/* Watching a watched fd again changes its events; unwatch stops delivery. */
START_TEST(test_watch_change_and_unwatch)
{
    struct loop loop;
    struct watched w = {.loop = &loop};
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    ck_assert_int_ge(efd, 0);
    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    /* an eventfd at 0 is writable, not readable */
    ck_assert_int_eq(loop_watch(&loop, &w.watch, efd, EPOLLIN, on_fd, &w), 0);
    ck_assert_int_eq(loop_run_once(&loop, 0), 0);
    ck_assert_int_eq(w.calls, 0);
    ck_assert_int_eq(loop_watch(&loop, &w.watch, efd, EPOLLOUT, on_fd, &w), 0);
    ck_assert_int_eq(loop_run_once(&loop, LONG_MS), 1);
    ck_assert_int_eq(w.calls, 1);
    ck_assert(w.events & EPOLLOUT);
    ck_assert(!(w.events & EPOLLIN));
    ck_assert_int_eq(loop_watch(&loop, &w.watch, efd, EPOLLIN | EPOLLOUT, on_fd, &w), 0);
    uint64_t one = 1;
    ck_assert_int_eq(write(efd, &one, sizeof(one)), (ssize_t)sizeof(one));
    ck_assert_int_eq(loop_run_once(&loop, 0), 1);
    ck_assert_uint_eq(w.events & (EPOLLIN | EPOLLOUT), EPOLLIN | EPOLLOUT);

    loop_unwatch(&loop, &w.watch);
    ck_assert(!w.watch.watched);
    ck_assert_int_eq(loop_run_once(&loop, 0), 0);
    ck_assert_int_eq(w.calls, 2);
    loop_unwatch(&loop, &w.watch); /* a no-op when not watched */
    close(efd);
    loop_destroy(&loop);
}
END_TEST

/* Several ready fds in one batch: each watch gets its own events and data. */
START_TEST(test_watch_several)
{
    struct loop loop;
    int a[2], b[2];
    struct watched wa = {.loop = &loop}, wb = {.loop = &loop}, wout = {.loop = &loop};

    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    make_pipe(a);
    make_pipe(b);
    ck_assert_int_eq(loop_watch(&loop, &wa.watch, a[0], EPOLLIN, on_fd, &wa), 0);
    ck_assert_int_eq(loop_watch(&loop, &wb.watch, b[0], EPOLLIN, on_fd, &wb), 0);
    ck_assert_int_eq(loop_watch(&loop, &wout.watch, a[1], EPOLLOUT, on_fd, &wout), 0);
    write_byte(b[1]);
    ck_assert_int_eq(loop_run_once(&loop, LONG_MS), 2); /* b readable, a[1] writable */
    ck_assert_int_eq(wa.calls, 0);
    ck_assert_int_eq(wb.calls, 1);
    ck_assert_int_eq(wout.calls, 1);
    ck_assert(wout.events & EPOLLOUT);
    loop_unwatch(&loop, &wa.watch);
    loop_unwatch(&loop, &wb.watch);
    loop_unwatch(&loop, &wout.watch);
    close_pipe(a);
    close_pipe(b);
    loop_destroy(&loop);
}
END_TEST

/* Two fds ready in one batch, each callback unwatches the other: whichever runs first, the
 * other's pending event is struck and its callback does not run. */
START_TEST(test_unwatch_in_dispatch)
{
    struct loop loop;
    int a[2], b[2];
    struct trace trace = {0};
    struct watched wa = {.loop = &loop, .trace = &trace, .letter = 'a'};
    struct watched wb = {.loop = &loop, .trace = &trace, .letter = 'b'};

    wa.other = &wb;
    wb.other = &wa;
    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    make_pipe(a);
    make_pipe(b);
    ck_assert_int_eq(loop_watch(&loop, &wa.watch, a[0], EPOLLIN, on_fd, &wa), 0);
    ck_assert_int_eq(loop_watch(&loop, &wb.watch, b[0], EPOLLIN, on_fd, &wb), 0);
    write_byte(a[1]);
    write_byte(b[1]);
    /* Both are ready before the wait, so one epoll_wait collects both. */
    ck_assert_int_eq(loop_run_once(&loop, LONG_MS), 2);
    ck_assert_msg(wa.calls + wb.calls == 1, "calls: \"%s\"", trace.calls);
    ck_assert_msg(strcmp(trace.calls, "a") == 0 || strcmp(trace.calls, "b") == 0, "calls: \"%s\"",
                  trace.calls);
    /* The one that ran is still watched (its fd still readable), the other is not. */
    struct watched *ran = wa.calls ? &wa : &wb, *struck = wa.calls ? &wb : &wa;
    ck_assert(ran->watch.watched);
    ck_assert(!struck->watch.watched);
    ran->other = NULL;
    ck_assert_int_eq(loop_run_once(&loop, 0), 1);
    ck_assert_int_eq(ran->calls, 2);
    ck_assert_int_eq(struck->calls, 0);
    loop_unwatch(&loop, &ran->watch);
    close_pipe(a);
    close_pipe(b);
    loop_destroy(&loop);
}
END_TEST

/* A callback that unwatches itself and an fd that is not in the batch disturbs nothing else. */
struct self_unwatch {
    struct loop *loop;
    struct loop_watch watch;
    struct loop_watch *unrelated;
    int calls;
};

static void on_self_unwatch(void *data, uint32_t events)
{
    struct self_unwatch *s = data;
    (void)events;
    s->calls++;
    loop_unwatch(s->loop, &s->watch);
    loop_unwatch(s->loop, s->unrelated);
}

START_TEST(test_unwatch_self_in_dispatch)
{
    struct loop loop;
    int a[2], b[2], c[2];
    struct self_unwatch s = {.loop = &loop};
    struct watched idle = {.loop = &loop}, other = {.loop = &loop};

    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    make_pipe(a);
    make_pipe(b);
    make_pipe(c);
    s.unrelated = &idle.watch;
    ck_assert_int_eq(loop_watch(&loop, &s.watch, a[0], EPOLLIN, on_self_unwatch, &s), 0);
    ck_assert_int_eq(loop_watch(&loop, &idle.watch, b[0], EPOLLIN, on_fd, &idle), 0);
    ck_assert_int_eq(loop_watch(&loop, &other.watch, c[0], EPOLLIN, on_fd, &other), 0);
    write_byte(a[1]);
    write_byte(c[1]);
    ck_assert_int_eq(loop_run_once(&loop, LONG_MS), 2);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(other.calls, 1); /* still delivered */
    ck_assert(!s.watch.watched);
    ck_assert(!idle.watch.watched);
    write_byte(b[1]);
    ck_assert_int_eq(loop_run_once(&loop, 0), 1); /* only c */
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(idle.calls, 0);
    ck_assert_int_eq(other.calls, 2);
    loop_unwatch(&loop, &other.watch);
    close_pipe(a);
    close_pipe(b);
    close_pipe(c);
    loop_destroy(&loop);
}
END_TEST

START_TEST(test_watch_errors)
{
    struct loop loop;
    struct watched w = {.loop = &loop};
    char path[] = "/tmp/tracehop-loop-XXXXXX";
    int file = mkstemp(path);

    ck_assert_int_ge(file, 0);
    unlink(path);
    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    ck_assert_int_eq(loop_watch(&loop, &w.watch, -1, EPOLLIN, on_fd, &w), -EBADF);
    ck_assert(!w.watch.watched);
    ck_assert_int_eq(loop_watch(&loop, &w.watch, file, EPOLLIN, on_fd, &w), -EPERM);
    ck_assert(!w.watch.watched);
    close(file);
    loop_destroy(&loop);
}
END_TEST

/* --- timers ----------------------------------------------------------------------------------- */

struct timed {
    struct loop_timer timer;
    struct trace *trace;
    char letter;
    int calls;
    int64_t fired_ms;
    int64_t rearm_ms; /* > 0: arm again for now + this, once */
};

static void on_timer(void *data, uint32_t events)
{
    struct timed *t = data;
    ck_assert_uint_eq(events, 0);
    ck_assert_int_eq(t->timer.due_ms, -1); /* disarmed before its fn runs */
    t->calls++;
    t->fired_ms = loop_now_ms();
    trace_add(t->trace, t->letter);
    if (t->rearm_ms > 0) {
        loop_timer_set(&t->timer, loop_now_ms() + t->rearm_ms);
        t->rearm_ms = 0;
    }
}

/* Run iterations of at most LONG_MS until the trace has n calls; at most `rounds` of them. */
static void run_until(struct loop *loop, const struct trace *trace, size_t n, int rounds)
{
    int64_t start = loop_now_ms();
    for (int i = 0; i < rounds && trace->n < n; i++)
        ck_assert_int_ge(loop_run_once(loop, LONG_MS), 0);
    ck_assert_msg(trace->n >= n, "only \"%s\" after %d rounds", trace->calls, rounds);
    ck_assert_int_lt(loop_now_ms() - start, PROMPT_MS);
}

START_TEST(test_timers_in_order)
{
    struct loop loop;
    struct trace trace = {0};
    struct timed a = {.trace = &trace, .letter = 'a'}, b = {.trace = &trace, .letter = 'b'};
    struct timed c = {.trace = &trace, .letter = 'c'}, d = {.trace = &trace, .letter = 'd'};

    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    loop_timer_add(&loop, &d.timer, on_timer, &d);
    loop_timer_add(&loop, &c.timer, on_timer, &c);
    loop_timer_add(&loop, &b.timer, on_timer, &b);
    loop_timer_add(&loop, &a.timer, on_timer, &a);
    ck_assert_int_eq(a.timer.due_ms, -1); /* registered disarmed */
    int64_t now = loop_now_ms();
    loop_timer_set(&a.timer, now + 30);
    loop_timer_set(&b.timer, now + 150);
    loop_timer_set(&c.timer, now + 60);
    loop_timer_set(&c.timer, -1); /* disarmed again: never fires */
    /* d is never armed */
    run_until(&loop, &trace, 2, 20);
    ck_assert_str_eq(trace.calls, "ab");
    ck_assert_int_ge(a.fired_ms, now + 30);
    ck_assert_int_ge(b.fired_ms, now + 150);
    /* nothing armed: a short wait fires nothing */
    ck_assert_int_eq(loop_run_once(&loop, 80), 0);
    ck_assert_str_eq(trace.calls, "ab");
    ck_assert_int_eq(c.calls, 0);
    ck_assert_int_eq(d.calls, 0);
    loop_destroy(&loop);
}
END_TEST

/* A timer re-armed in its fn fires again; one already due fires without a wait. */
START_TEST(test_timer_rearm_and_past_due)
{
    struct loop loop;
    struct trace trace = {0};
    struct timed a = {.trace = &trace, .letter = 'a', .rearm_ms = 20};
    struct timed p = {.trace = &trace, .letter = 'p'};

    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    loop_timer_add(&loop, &a.timer, on_timer, &a);
    loop_timer_add(&loop, &p.timer, on_timer, &p);
    loop_timer_set(&p.timer, loop_now_ms() - 1000);
    int64_t start = loop_now_ms();
    ck_assert_int_eq(loop_run_once(&loop, LONG_MS), 0);
    ck_assert_int_lt(loop_now_ms() - start, PROMPT_MS);
    ck_assert_str_eq(trace.calls, "p");
    loop_timer_set(&a.timer, loop_now_ms() + 10);
    run_until(&loop, &trace, 3, 20);
    ck_assert_str_eq(trace.calls, "paa");
    ck_assert_int_eq(a.timer.due_ms, -1);
    ck_assert_int_eq(p.calls, 1);
    loop_destroy(&loop);
}
END_TEST

/* --- deferred and flush tasks ----------------------------------------------------------------- */

struct task {
    struct loop *loop;
    struct loop_task task;
    struct trace *trace;
    char letter;
    int calls;
    int redefer;         /* defer itself again this many times */
    struct task *defer;  /* defer this one when run */
    struct task *cancel; /* cancel this one when run */
};

static void on_task(void *data, uint32_t events)
{
    struct task *t = data;
    ck_assert_uint_eq(events, 0);
    ck_assert(!t->task.queued);
    t->calls++;
    trace_add(t->trace, t->letter);
    if (t->defer)
        loop_defer(t->loop, &t->defer->task);
    if (t->cancel)
        loop_cancel(t->loop, &t->cancel->task);
    if (t->redefer > 0) {
        t->redefer--;
        loop_defer(t->loop, &t->task);
    }
}

static void task_init(struct task *t, struct loop *loop, struct trace *trace, char letter,
                      enum loop_task_phase phase)
{
    *t = (struct task){.loop = loop, .trace = trace, .letter = letter};
    loop_task_init(&t->task, phase, on_task, t);
}

/* Run one iteration that must not sleep. */
static int run_prompt(struct loop *loop)
{
    int64_t start = loop_now_ms();
    int n = loop_run_once(loop, LONG_MS);
    ck_assert_msg(loop_now_ms() - start < PROMPT_MS, "loop_run_once slept with work deferred");
    return n;
}

START_TEST(test_deferred_fifo)
{
    struct loop loop;
    struct trace trace = {0};
    struct task a, b, c;

    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    task_init(&a, &loop, &trace, 'a', LOOP_TASK_DEFERRED);
    task_init(&b, &loop, &trace, 'b', LOOP_TASK_DEFERRED);
    task_init(&c, &loop, &trace, 'c', LOOP_TASK_DEFERRED);
    loop_defer(&loop, &b.task);
    loop_defer(&loop, &a.task);
    loop_defer(&loop, &c.task);
    loop_defer(&loop, &b.task); /* already queued: no-op, keeps its place */
    ck_assert(a.task.queued && b.task.queued && c.task.queued);
    ck_assert_int_eq(run_prompt(&loop), 0);
    ck_assert_str_eq(trace.calls, "bac");
    ck_assert(!a.task.queued && !b.task.queued && !c.task.queued);
    /* run once each; nothing left */
    ck_assert_int_eq(loop_run_once(&loop, 0), 0);
    ck_assert_str_eq(trace.calls, "bac");
    loop_destroy(&loop);
}
END_TEST

/* Deferred tasks run before flush tasks, whatever the order they were deferred in; a flush task
 * that defers a deferred task is followed by it in the same iteration, and then by the flushes
 * again only if one was deferred anew. */
START_TEST(test_deferred_before_flush)
{
    struct loop loop;
    struct trace trace = {0};
    struct task f, g, d, e, late;

    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    task_init(&f, &loop, &trace, 'F', LOOP_TASK_FLUSH);
    task_init(&g, &loop, &trace, 'G', LOOP_TASK_FLUSH);
    task_init(&d, &loop, &trace, 'd', LOOP_TASK_DEFERRED);
    task_init(&e, &loop, &trace, 'e', LOOP_TASK_DEFERRED);
    task_init(&late, &loop, &trace, 'l', LOOP_TASK_DEFERRED);
    f.defer = &late; /* F, running, defers l: l runs after this flush pass */
    late.defer = &g; /* l defers flush G: G runs in the next flush pass */
    loop_defer(&loop, &f.task);
    loop_defer(&loop, &d.task);
    loop_defer(&loop, &e.task);
    ck_assert_int_eq(run_prompt(&loop), 0);
    ck_assert_str_eq(trace.calls, "deFlG");
    loop_destroy(&loop);
}
END_TEST

/* A task deferred while deferred tasks run is run in the same pass, after those before it. */
START_TEST(test_deferred_during_pass)
{
    struct loop loop;
    struct trace trace = {0};
    struct task a, b, c;

    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    task_init(&a, &loop, &trace, 'a', LOOP_TASK_DEFERRED);
    task_init(&b, &loop, &trace, 'b', LOOP_TASK_DEFERRED);
    task_init(&c, &loop, &trace, 'c', LOOP_TASK_DEFERRED);
    a.defer = &c;
    a.redefer = 1; /* a again, after c */
    loop_defer(&loop, &a.task);
    loop_defer(&loop, &b.task);
    ck_assert_int_eq(run_prompt(&loop), 0);
    ck_assert_str_eq(trace.calls, "abca"
                                  "c"); /* the second a defers c again */
    ck_assert_int_eq(loop_run_once(&loop, 0), 0);
    ck_assert_str_eq(trace.calls, "abcac");
    loop_destroy(&loop);
}
END_TEST

/* A cancelled task does not run: cancelled before the iteration, or by an earlier task. */
START_TEST(test_cancel)
{
    struct loop loop;
    struct trace trace = {0};
    struct task a, b, c, d, f;

    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    task_init(&a, &loop, &trace, 'a', LOOP_TASK_DEFERRED);
    task_init(&b, &loop, &trace, 'b', LOOP_TASK_DEFERRED);
    task_init(&c, &loop, &trace, 'c', LOOP_TASK_DEFERRED);
    task_init(&d, &loop, &trace, 'd', LOOP_TASK_DEFERRED);
    task_init(&f, &loop, &trace, 'F', LOOP_TASK_FLUSH);
    a.cancel = &c; /* the middle of the list */
    b.cancel = &f; /* a flush task, cancelled before its pass */
    loop_defer(&loop, &a.task);
    loop_defer(&loop, &b.task);
    loop_defer(&loop, &c.task);
    loop_defer(&loop, &d.task);
    loop_defer(&loop, &f.task);
    loop_cancel(&loop, &d.task); /* the tail, before the iteration */
    ck_assert(!d.task.queued);
    loop_cancel(&loop, &d.task); /* a no-op when not queued */
    ck_assert_int_eq(run_prompt(&loop), 0);
    ck_assert_str_eq(trace.calls, "ab");
    ck_assert(!c.task.queued && !f.task.queued);
    /* the lists are intact: new work still runs, in order */
    loop_defer(&loop, &d.task);
    loop_defer(&loop, &c.task);
    ck_assert_int_eq(run_prompt(&loop), 0);
    ck_assert_str_eq(trace.calls, "abdc");
    loop_destroy(&loop);
}
END_TEST

/* A flush task that defers itself again runs in the next round, not in a tight circle: one
 * iteration runs it a bounded number of times and returns; the next iteration does not sleep. */
START_TEST(test_flush_redefers_itself)
{
    struct loop loop;
    struct trace trace = {0};
    struct task f, g;

    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    task_init(&f, &loop, &trace, 'F', LOOP_TASK_FLUSH);
    task_init(&g, &loop, &trace, 'G', LOOP_TASK_FLUSH);
    f.redefer = 1000000;
    loop_defer(&loop, &f.task);
    loop_defer(&loop, &g.task);
    ck_assert_int_eq(run_prompt(&loop), 0);
    ck_assert_msg(f.calls >= 2, "F ran %d times: not again in the next round", f.calls);
    ck_assert_msg(f.calls <= 100, "F ran %d times in one iteration", f.calls);
    ck_assert_int_eq(g.calls, 1); /* once per pass, after F in the first */
    ck_assert(trace.calls[0] == 'F' && trace.calls[1] == 'G');
    ck_assert(f.task.queued);
    int first = f.calls;
    ck_assert_int_eq(run_prompt(&loop), 0); /* queued work: no sleep */
    ck_assert_int_gt(f.calls, first);
    f.redefer = 0;
    ck_assert_int_eq(run_prompt(&loop), 0);
    ck_assert(!f.task.queued);
    int last = f.calls;
    ck_assert_int_eq(loop_run_once(&loop, 0), 0);
    ck_assert_int_eq(f.calls, last);
    loop_destroy(&loop);
}
END_TEST

/* Deferred work means no wait, even with a long max_wait and a far timer. */
START_TEST(test_no_sleep_with_deferred_work)
{
    struct loop loop;
    struct trace trace = {0};
    struct task d, f;
    struct timed far = {.trace = &trace, .letter = 't'};

    ck_assert_int_eq(loop_init(&loop, NULL, NULL), 0);
    loop_timer_add(&loop, &far.timer, on_timer, &far);
    loop_timer_set(&far.timer, loop_now_ms() + 60000);
    task_init(&d, &loop, &trace, 'd', LOOP_TASK_DEFERRED);
    task_init(&f, &loop, &trace, 'F', LOOP_TASK_FLUSH);
    loop_defer(&loop, &d.task);
    ck_assert_int_eq(run_prompt(&loop), 0);
    loop_defer(&loop, &f.task);
    ck_assert_int_eq(run_prompt(&loop), 0);
    ck_assert_str_eq(trace.calls, "dF");
    loop_destroy(&loop);
}
END_TEST

/* --- wake ------------------------------------------------------------------------------------- */

struct woken {
    struct loop loop;
    struct trace trace;
    int wakes;
    int wake_delay_ms;
};

static void on_wake(void *data, uint32_t events)
{
    struct woken *w = data;
    ck_assert_uint_eq(events, 0);
    w->wakes++;
    trace_add(&w->trace, 'w');
}

static void *wake_later(void *data)
{
    struct woken *w = data;
    struct timespec ts = {0, (long)w->wake_delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    loop_wake(&w->loop);
    return NULL;
}

/* loop_wake from another thread ends a long wait and runs on_wake. */
START_TEST(test_wake_from_thread)
{
    struct woken w = {.wake_delay_ms = 50};
    pthread_t thread;

    ck_assert_int_eq(loop_init(&w.loop, on_wake, &w), 0);
    ck_assert_int_eq(pthread_create(&thread, NULL, wake_later, &w), 0);
    int64_t start = loop_now_ms();
    while (w.wakes == 0 && loop_now_ms() - start < PROMPT_MS)
        ck_assert_int_ge(loop_run_once(&w.loop, LONG_MS), 0);
    ck_assert_int_lt(loop_now_ms() - start, PROMPT_MS);
    ck_assert_int_eq(w.wakes, 1);
    ck_assert_int_eq(pthread_join(thread, NULL), 0);
    /* the wake was consumed: no further call */
    ck_assert_int_eq(loop_run_once(&w.loop, 0), 0);
    ck_assert_int_eq(w.wakes, 1);
    loop_destroy(&w.loop);
}
END_TEST

/* Several wakes before the loop looks: one on_wake. on_wake runs before the batch's deferred
 * work. */
START_TEST(test_wake_coalesces_and_runs_first)
{
    struct woken w = {0};
    struct task d, f;

    ck_assert_int_eq(loop_init(&w.loop, on_wake, &w), 0);
    task_init(&d, &w.loop, &w.trace, 'd', LOOP_TASK_DEFERRED);
    task_init(&f, &w.loop, &w.trace, 'F', LOOP_TASK_FLUSH);
    loop_defer(&w.loop, &f.task);
    loop_defer(&w.loop, &d.task);
    loop_wake(&w.loop);
    loop_wake(&w.loop);
    loop_wake(&w.loop);
    ck_assert_int_eq(run_prompt(&w.loop), 1);
    ck_assert_str_eq(w.trace.calls, "wdF");
    ck_assert_int_eq(w.wakes, 1);
    ck_assert_int_eq(loop_run_once(&w.loop, 0), 0);
    ck_assert_int_eq(w.wakes, 1);
    loop_destroy(&w.loop);
}
END_TEST

/* Without on_wake, a wake still ends the wait. */
START_TEST(test_wake_without_callback)
{
    struct woken w = {.wake_delay_ms = 20};
    pthread_t thread;

    ck_assert_int_eq(loop_init(&w.loop, NULL, NULL), 0);
    ck_assert_int_eq(pthread_create(&thread, NULL, wake_later, &w), 0);
    int64_t start = loop_now_ms();
    int handled = 0;
    while (handled == 0 && loop_now_ms() - start < PROMPT_MS)
        handled = loop_run_once(&w.loop, LONG_MS);
    ck_assert_int_eq(handled, 1);
    ck_assert_int_lt(loop_now_ms() - start, PROMPT_MS);
    ck_assert_int_eq(pthread_join(thread, NULL), 0);
    loop_destroy(&w.loop);
}
END_TEST

static Suite *loop_suite(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("watch");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_init_destroy);
    tcase_add_test(tc, test_watch_pipe);
    tcase_add_test(tc, test_watch_change_and_unwatch);
    tcase_add_test(tc, test_watch_several);
    tcase_add_test(tc, test_unwatch_in_dispatch);
    tcase_add_test(tc, test_unwatch_self_in_dispatch);
    tcase_add_test(tc, test_watch_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("timer");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_timers_in_order);
    tcase_add_test(tc, test_timer_rearm_and_past_due);
    suite_add_tcase(s, tc);

    tc = tcase_create("task");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_deferred_fifo);
    tcase_add_test(tc, test_deferred_before_flush);
    tcase_add_test(tc, test_deferred_during_pass);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_flush_redefers_itself);
    tcase_add_test(tc, test_no_sleep_with_deferred_work);
    suite_add_tcase(s, tc);

    tc = tcase_create("wake");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_wake_from_thread);
    tcase_add_test(tc, test_wake_coalesces_and_runs_first);
    tcase_add_test(tc, test_wake_without_callback);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(loop_suite());
}
