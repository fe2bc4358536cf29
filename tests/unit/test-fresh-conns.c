/* SPDX-License-Identifier: MIT */
/*
 * The list of connections without a request line yet (src/proxy/fresh_conns.h): ordered by
 * age, removal from any position (idempotent), and expiry that shuts down exactly the sockets
 * listed for the timeout or longer - checked on the other end of socket pairs, which must see
 * the end of the stream for expired connections and nothing for the others.
 */
#include <check.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/fresh_conns.h"
#include "unit-test.h"

#define CONNS 5

static int pairs[CONNS][2];
static struct fresh_conn conns[CONNS];
static struct fresh_list list;

static void setup(void)
{
    list = (struct fresh_list){0};
    for (int i = 0; i < CONNS; i++) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pairs[i]), 0);
        conns[i] = (struct fresh_conn){0};
        fresh_add(&list, &conns[i], pairs[i][0], 1000 + 100 * i); /* ages 1000, 1100, ... */
    }
}

static void teardown(void)
{
    for (int i = 0; i < CONNS; i++) {
        close(pairs[i][0]);
        close(pairs[i][1]);
    }
}

/* Whether the peer of connection i sees the end of the stream (the proxy side shut down). */
static bool peer_sees_eof(int i)
{
    char byte;
    ssize_t n = recv(pairs[i][1], &byte, 1, 0);
    if (n == 0)
        return true;
    ck_assert_msg(n < 0 && errno == EAGAIN, "peer %d: unexpected recv result %zd", i, n);
    return false;
}

static size_t listed(void)
{
    size_t n = 0;
    int64_t last = INT64_MIN;
    for (struct fresh_conn *c = list.head; c; c = c->next) {
        ck_assert_msg(c->since_ms >= last, "list out of order");
        ck_assert_ptr_eq(c->next ? c->next->prev : list.tail, c);
        last = c->since_ms;
        n++;
    }
    return n;
}

START_TEST(test_expire_shuts_down_exactly_the_old_ones)
{
    /* Timeout 250 at time 1300: ages 300, 200, 100, 0, -100 -> only the first expires... */
    ck_assert_uint_eq(fresh_expire(&list, 1300, 250), 1);
    ck_assert(peer_sees_eof(0));
    for (int i = 1; i < CONNS; i++)
        ck_assert(!peer_sees_eof(i));
    ck_assert_uint_eq(listed(), CONNS - 1);
    /* ... exactly at the limit counts as expired. */
    ck_assert_uint_eq(fresh_expire(&list, 1350, 250), 1);
    ck_assert(peer_sees_eof(1));
    ck_assert_uint_eq(fresh_expire(&list, 1350, 250), 0);
    ck_assert_uint_eq(fresh_expire(&list, 100000, 250), CONNS - 2);
    ck_assert_ptr_null(list.head);
    ck_assert_ptr_null(list.tail);
    for (int i = 2; i < CONNS; i++)
        ck_assert(peer_sees_eof(i));
}
END_TEST

START_TEST(test_removed_connections_are_never_shut_down)
{
    fresh_remove(&list, &conns[0]);         /* head */
    fresh_remove(&list, &conns[2]);         /* middle */
    fresh_remove(&list, &conns[CONNS - 1]); /* tail */
    fresh_remove(&list, &conns[2]);         /* again: a no-op */
    ck_assert_uint_eq(listed(), CONNS - 3);
    ck_assert_uint_eq(fresh_expire(&list, 100000, 1), CONNS - 3);
    ck_assert(!peer_sees_eof(0));
    ck_assert(peer_sees_eof(1));
    ck_assert(!peer_sees_eof(2));
    ck_assert(peer_sees_eof(3));
    ck_assert(!peer_sees_eof(CONNS - 1));
    fresh_remove(&list, &conns[1]); /* expired ones are off the list already */
    ck_assert_ptr_null(list.head);
}
END_TEST

START_TEST(test_readd_after_remove_goes_to_the_tail)
{
    fresh_remove(&list, &conns[0]);
    fresh_add(&list, &conns[0], pairs[0][0], 5000);
    ck_assert_ptr_eq(list.tail, &conns[0]);
    ck_assert_ptr_eq(list.head, &conns[1]);
    ck_assert_uint_eq(listed(), CONNS);
    ck_assert_uint_eq(fresh_expire(&list, 4999, 1000), CONNS - 1);
    ck_assert(!peer_sees_eof(0));
}
END_TEST

static Suite *fresh_conns_suite(void)
{
    Suite *s = suite_create("fresh_conns");
    TCase *tc = tcase_create("list");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_expire_shuts_down_exactly_the_old_ones);
    tcase_add_test(tc, test_removed_connections_are_never_shut_down);
    tcase_add_test(tc, test_readd_after_remove_goes_to_the_tail);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(fresh_conns_suite());
}
