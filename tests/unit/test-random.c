/* SPDX-License-Identifier: MIT */

/*
 * The id generator: trace ids, span ids and UUIDv4 from the kernel CSPRNG through a per-thread
 * buffer. It must never return an all-zero id (W3C: invalid), UUIDs must carry version 4 and
 * variant 10xx (RFC 9562), and ids drawn concurrently from several threads must not repeat: a
 * per-thread buffer that was shared, copied across threads or refilled wrongly shows up as
 * duplicates, a cursor that advances too little as ids that overlap, and a buffer inherited
 * across fork() as a child replaying its parent's ids. A coarse bit-frequency check catches
 * bytes that are stuck (a buffer that is not refilled, an offset that skips the random data).
 */

#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tracehop/tracectx.h"
#include "unit-test.h"

#define THREADS        8
#define IDS_PER_THREAD (1000000 / THREADS)

enum id_kind { KIND_TRACE_ID, KIND_SPAN_ID, KIND_UUID_V4 };

static const char *const kind_names[] = {"trace id", "span id", "uuid v4"};

static size_t kind_size(enum id_kind kind)
{
    return kind == KIND_SPAN_ID ? TRACEHOP_SPAN_ID_SIZE : TRACEHOP_TRACE_ID_SIZE;
}

static void draw(enum id_kind kind, uint8_t *out)
{
    switch (kind) {
    case KIND_TRACE_ID:
        tracehop_random_trace_id(out);
        break;
    case KIND_SPAN_ID:
        tracehop_random_span_id(out);
        break;
    case KIND_UUID_V4:
        tracehop_random_uuid_v4(out);
        break;
    }
}

static bool is_uuid_v4(const uint8_t id[TRACEHOP_TRACE_ID_SIZE])
{
    return id[6] >> 4 == 4 && (id[8] & 0xc0) == 0x80;
}

/* Never zero, and (for UUIDs) always version 4 variant 1. */
START_TEST(test_never_zero)
{
    enum id_kind kind = (enum id_kind)_i;
    uint8_t id[TRACEHOP_TRACE_ID_SIZE];

    for (int i = 0; i < 20000; i++) {
        memset(id, 0, sizeof(id));
        draw(kind, id);
        ck_assert_msg(!unit_is_zero(id, kind_size(kind)), "%s all zero", kind_names[kind]);
        if (kind == KIND_UUID_V4)
            ck_assert_msg(is_uuid_v4(id), "uuid version/variant wrong: byte 6 %#x, byte 8 %#x",
                          id[6], id[8]);
    }
}
END_TEST

/*
 * Every bit that should be random is set in 45%..55% of 100,000 ids (the expected spread is
 * about 0.16%); for UUIDs the six fixed bits must be exactly as RFC 9562 says.
 */
START_TEST(test_bit_frequency)
{
    enum { SAMPLES = 100000 };
    enum id_kind kind = (enum id_kind)_i;
    size_t size = kind_size(kind);
    unsigned counts[TRACEHOP_TRACE_ID_SIZE * 8] = {0};

    for (int i = 0; i < SAMPLES; i++) {
        uint8_t id[TRACEHOP_TRACE_ID_SIZE];

        draw(kind, id);
        for (size_t bit = 0; bit < size * 8; bit++)
            counts[bit] += (id[bit / 8] >> (7 - bit % 8)) & 1;
    }
    for (size_t bit = 0; bit < size * 8; bit++) {
        bool version_bit = kind == KIND_UUID_V4 && bit >= 48 && bit < 52; /* byte 6 high */
        bool variant_bit = kind == KIND_UUID_V4 && bit >= 64 && bit < 66; /* byte 8 top */

        if (version_bit) {
            unsigned expect = bit == 49 ? SAMPLES : 0; /* 0100 */

            ck_assert_msg(counts[bit] == expect, "uuid version bit %zu set %u times", bit,
                          counts[bit]);
        } else if (variant_bit) {
            unsigned expect = bit == 64 ? SAMPLES : 0; /* 10 */

            ck_assert_msg(counts[bit] == expect, "uuid variant bit %zu set %u times", bit,
                          counts[bit]);
        } else {
            ck_assert_msg(counts[bit] >= SAMPLES * 45 / 100 && counts[bit] <= SAMPLES * 55 / 100,
                          "%s bit %zu set %u times in %d", kind_names[kind], bit, counts[bit],
                          SAMPLES);
        }
    }
}
END_TEST

/* Two consecutive draws differ (a buffer that is not advanced would repeat). */
START_TEST(test_consecutive_differ)
{
    enum id_kind kind = (enum id_kind)_i;
    size_t size = kind_size(kind);
    uint8_t previous[TRACEHOP_TRACE_ID_SIZE], id[TRACEHOP_TRACE_ID_SIZE];

    draw(kind, previous);
    for (int i = 0; i < 20000; i++) {
        draw(kind, id);
        ck_assert_msg(memcmp(previous, id, size) != 0, "%s repeated at draw %d", kind_names[kind],
                      i);
        memcpy(previous, id, size);
    }
}
END_TEST

/*
 * Consecutive ids share no 7-byte run at any offsets: a buffer cursor that advances by less
 * than the id size hands out overlapping ids, which the duplicate check alone would not see.
 * Kinds are interleaved as the hop draws them. (Chance of a false alarm: below 1e-8.)
 */
static bool share_run(const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size)
{
    enum { RUN = 7 };

    for (size_t i = 0; i + RUN <= a_size; i++)
        for (size_t j = 0; j + RUN <= b_size; j++)
            if (memcmp(a + i, b + j, RUN) == 0)
                return true;
    return false;
}

START_TEST(test_no_overlap)
{
    uint8_t previous[TRACEHOP_TRACE_ID_SIZE], id[TRACEHOP_TRACE_ID_SIZE];
    enum id_kind previous_kind = KIND_SPAN_ID;

    draw(previous_kind, previous);
    for (int i = 0; i < 100000; i++) {
        enum id_kind kind = (enum id_kind)(i % 3);

        draw(kind, id);
        ck_assert_msg(!share_run(previous, kind_size(previous_kind), id, kind_size(kind)),
                      "%s and the %s after it overlap (draw %d)", kind_names[previous_kind],
                      kind_names[kind], i);
        memcpy(previous, id, sizeof(id));
        previous_kind = kind;
    }
}
END_TEST

/*
 * A child process must not replay ids buffered in its parent: draw once so the per-thread buffer
 * is filled, fork, and compare the next id of each side.
 */
START_TEST(test_fork_does_not_replay)
{
    uint8_t parent_id[TRACEHOP_TRACE_ID_SIZE], child_id[TRACEHOP_TRACE_ID_SIZE];
    int fds[2], status;
    pid_t pid;

    tracehop_random_trace_id(parent_id);
    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tracehop_random_trace_id(child_id);
        _exit(write(fds[1], child_id, sizeof(child_id)) == (ssize_t)sizeof(child_id) ? 0 : 1);
    }
    close(fds[1]);
    tracehop_random_trace_id(parent_id);
    ck_assert_int_eq(read(fds[0], child_id, sizeof(child_id)), (ssize_t)sizeof(child_id));
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_msg(memcmp(parent_id, child_id, sizeof(child_id)) != 0,
                  "parent and child drew the same trace id after fork");
}
END_TEST

struct worker {
    pthread_t thread;
    enum id_kind kind;
    uint8_t *ids; /* IDS_PER_THREAD ids of kind_size(kind) bytes */
    size_t zeros;
};

static void *worker_run(void *data)
{
    struct worker *worker = data;
    size_t size = kind_size(worker->kind);

    for (size_t i = 0; i < IDS_PER_THREAD; i++) {
        uint8_t *id = worker->ids + i * size;

        draw(worker->kind, id);
        if (unit_is_zero(id, size))
            worker->zeros++;
    }
    return NULL;
}

static size_t sort_size;

static int compare_ids(const void *a, const void *b)
{
    return memcmp(a, b, sort_size);
}

/* 1,000,000 ids from 8 threads at once: no zeros, no duplicates (sorted, adjacent compared). */
START_TEST(test_threads_unique)
{
    enum id_kind kind = (enum id_kind)_i;
    size_t size = kind_size(kind), total = (size_t)THREADS * IDS_PER_THREAD;
    uint8_t *ids = malloc(total * size);
    struct worker workers[THREADS];

    ck_assert_ptr_nonnull(ids);
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (struct worker){
            .kind = kind,
            .ids = ids + (size_t)t * IDS_PER_THREAD * size,
        };
        ck_assert_int_eq(pthread_create(&workers[t].thread, NULL, worker_run, &workers[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        ck_assert_int_eq(pthread_join(workers[t].thread, NULL), 0);
        ck_assert_msg(workers[t].zeros == 0, "thread %d drew %zu zero %ss", t, workers[t].zeros,
                      kind_names[kind]);
    }

    sort_size = size;
    qsort(ids, total, size, compare_ids);
    for (size_t i = 1; i < total; i++)
        ck_assert_msg(memcmp(ids + (i - 1) * size, ids + i * size, size) != 0,
                      "%s repeated among %zu drawn by %d threads", kind_names[kind], total,
                      THREADS);
    if (kind == KIND_UUID_V4)
        for (size_t i = 0; i < total; i++)
            ck_assert(is_uuid_v4(ids + i * size));
    free(ids);
}
END_TEST

static Suite *random_suite(void)
{
    Suite *suite = suite_create("random");
    TCase *single = tcase_create("single thread");
    TCase *threads = tcase_create("threads");

    tcase_add_loop_test(single, test_never_zero, KIND_TRACE_ID, KIND_UUID_V4 + 1);
    tcase_add_loop_test(single, test_bit_frequency, KIND_TRACE_ID, KIND_UUID_V4 + 1);
    tcase_add_loop_test(single, test_consecutive_differ, KIND_TRACE_ID, KIND_UUID_V4 + 1);
    tcase_add_test(single, test_no_overlap);
    tcase_add_test(single, test_fork_does_not_replay);
    tcase_set_timeout(single, 60);
    suite_add_tcase(suite, single);

    tcase_add_loop_test(threads, test_threads_unique, KIND_TRACE_ID, KIND_UUID_V4 + 1);
    tcase_set_timeout(threads, 100);
    suite_add_tcase(suite, threads);
    return suite;
}

int main(void)
{
    return unit_run(random_suite());
}
