/* SPDX-License-Identifier: MIT */
/*
 * Per-thread config pins (src/config/config_pins.h): requests pin the current config; a swap
 * releases the old one at once when nobody uses it, else when its last request ends.
 *
 * The configs are real ones, loaded through config_load. The test holds one reference of its own
 * on each, so a release by the pins shows as `refs` dropping from 2 to 1 (and a config is never
 * freed under the test's feet); the test drops its own at the end, which frees them (LeakSanitizer
 * would report a config the pins forgot to release only as an extra reference, hence the counts).
 */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>

#include "config/config.h"
#include "config/config_pins.h"
#include "daemon-test.h"
#include "unit-test.h"

#define GENERATIONS 20

static struct config *configs[GENERATIONS];

/* A config with a distinct service name, holding the test's reference plus one for the pins. */
static const struct config *generation(int i)
{
    char json[256];
    snprintf(json, sizeof(json),
             "{\"service_name\": \"gen-%d\", "
             "\"routes\": [{\"upstream\": \"http://127.0.0.1:1\"}]}",
             i);
    if (!configs[i]) {
        configs[i] = unit_config(json);
        ck_assert_int_eq(atomic_load(&configs[i]->refs), 1);
    }
    config_ref(configs[i]); /* the pins' reference */
    return configs[i];
}

static int refs(int i)
{
    return atomic_load(&configs[i]->refs);
}

/* The pins' reference is gone: only the test's is left. */
#define ck_assert_released(i) ck_assert_msg(refs(i) == 1, "config %d: refs %d", i, refs(i))
#define ck_assert_held(i)     ck_assert_msg(refs(i) == 2, "config %d: refs %d", i, refs(i))

static void drop_configs(void)
{
    for (int i = 0; i < GENERATIONS; i++) {
        if (configs[i]) {
            ck_assert_msg(refs(i) == 1, "config %d still has %d references", i, refs(i));
            config_unref(configs[i]);
            configs[i] = NULL;
        }
    }
}

START_TEST(test_take_release)
{
    struct config_pins pins;
    config_pins_init(&pins, generation(0));
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_eq(config_pins_take(&pins), configs[0]);
    ck_assert_uint_eq(pins.current_users, 3);
    for (int i = 3; i > 0; i--) {
        config_pins_release(&pins, configs[0]);
        ck_assert_uint_eq(pins.current_users, (unsigned)i - 1);
        ck_assert_held(0); /* the current config is never released by its requests */
    }
    config_pins_destroy(&pins);
    ck_assert_released(0);
    drop_configs();
}
END_TEST

START_TEST(test_swap_without_users)
{
    struct config_pins pins;
    config_pins_init(&pins, generation(0));
    config_pins_release(&pins, config_pins_take(&pins));
    ck_assert_int_eq(config_pins_swap(&pins, generation(1)), 0);
    ck_assert_released(0); /* at once */
    ck_assert_uint_eq(pins.retired_count, 0);
    ck_assert_ptr_eq(config_pins_take(&pins), configs[1]);
    ck_assert_uint_eq(pins.current_users, 1);
    config_pins_release(&pins, configs[1]);
    ck_assert_held(1);
    config_pins_destroy(&pins);
    ck_assert_released(1);
    drop_configs();
}
END_TEST

START_TEST(test_swap_with_users)
{
    struct config_pins pins;
    config_pins_init(&pins, generation(0));
    const struct config *a = config_pins_take(&pins);
    const struct config *b = config_pins_take(&pins);
    ck_assert_int_eq(config_pins_swap(&pins, generation(1)), 0);
    ck_assert_held(0); /* still used */
    ck_assert_uint_eq(pins.retired_count, 1);
    ck_assert_uint_eq(pins.current_users, 0);
    /* new requests get the new config */
    const struct config *c = config_pins_take(&pins);
    ck_assert_ptr_eq(c, configs[1]);
    config_pins_release(&pins, a);
    ck_assert_held(0);
    config_pins_release(&pins, c);
    ck_assert_held(1);
    ck_assert_held(0);
    config_pins_release(&pins, b); /* the last user */
    ck_assert_released(0);
    ck_assert_uint_eq(pins.retired_count, 0);
    ck_assert_held(1);
    config_pins_destroy(&pins);
    ck_assert_released(1);
    drop_configs();
}
END_TEST

/* Several generations retired at once, released in an order unlike the one they retired in. */
START_TEST(test_several_generations)
{
    struct config_pins pins;
    config_pins_init(&pins, generation(0));
    const struct config *a1 = config_pins_take(&pins);
    ck_assert_int_eq(config_pins_swap(&pins, generation(1)), 0);
    const struct config *b1 = config_pins_take(&pins);
    const struct config *b2 = config_pins_take(&pins);
    ck_assert_int_eq(config_pins_swap(&pins, generation(2)), 0);
    const struct config *c1 = config_pins_take(&pins);
    ck_assert_int_eq(config_pins_swap(&pins, generation(3)), 0);
    ck_assert_int_eq(config_pins_swap(&pins, generation(4)), 0); /* 3 had no user */
    ck_assert_released(3);
    ck_assert_uint_eq(pins.retired_count, 3);
    ck_assert_held(0);
    ck_assert_held(1);
    ck_assert_held(2);

    config_pins_release(&pins, b1);
    ck_assert_held(1);
    config_pins_release(&pins, c1);
    ck_assert_released(2);
    ck_assert_held(0);
    ck_assert_held(1);
    config_pins_release(&pins, a1);
    ck_assert_released(0);
    ck_assert_held(1);
    config_pins_release(&pins, b2);
    ck_assert_released(1);
    ck_assert_uint_eq(pins.retired_count, 0);
    ck_assert_held(4);
    config_pins_destroy(&pins);
    ck_assert_released(4);
    drop_configs();
}
END_TEST

/* More retired generations than the first allocation holds, released from the middle out. */
START_TEST(test_many_generations)
{
    struct config_pins pins;
    const struct config *users[GENERATIONS];
    config_pins_init(&pins, generation(0));
    for (int i = 0; i < GENERATIONS - 1; i++) {
        users[i] = config_pins_take(&pins);
        ck_assert_ptr_eq(users[i], configs[i]);
        ck_assert_int_eq(config_pins_swap(&pins, generation(i + 1)), 0);
    }
    ck_assert_uint_eq(pins.retired_count, GENERATIONS - 1);
    for (int i = 0; i < GENERATIONS - 1; i++)
        ck_assert_held(i);
    /* release 9, 10, 8, 11, 7, ... */
    int order[GENERATIONS - 1], n = 0, mid = (GENERATIONS - 1) / 2;
    order[n++] = mid;
    for (int d = 1; n < GENERATIONS - 1; d++) {
        if (mid + d < GENERATIONS - 1)
            order[n++] = mid + d;
        if (mid - d >= 0)
            order[n++] = mid - d;
    }
    for (int k = 0; k < GENERATIONS - 1; k++) {
        int i = order[k];
        config_pins_release(&pins, users[i]);
        ck_assert_released(i);
        for (int j = k + 1; j < GENERATIONS - 1; j++)
            ck_assert_held(order[j]);
        ck_assert_uint_eq(pins.retired_count, (size_t)(GENERATIONS - 2 - k));
    }
    ck_assert_held(GENERATIONS - 1);
    config_pins_destroy(&pins);
    drop_configs();
}
END_TEST

/* destroy releases the current config and every retired one, users or not. */
START_TEST(test_destroy_releases_everything)
{
    struct config_pins pins;
    config_pins_init(&pins, generation(0));
    config_pins_take(&pins);
    config_pins_take(&pins);
    ck_assert_int_eq(config_pins_swap(&pins, generation(1)), 0);
    config_pins_take(&pins);
    ck_assert_int_eq(config_pins_swap(&pins, generation(2)), 0);
    config_pins_take(&pins);
    ck_assert_held(0);
    ck_assert_held(1);
    ck_assert_held(2);
    config_pins_destroy(&pins);
    ck_assert_released(0);
    ck_assert_released(1);
    ck_assert_released(2);
    ck_assert_ptr_null(pins.current);
    ck_assert_ptr_null(pins.retired);
    ck_assert_uint_eq(pins.retired_count, 0);
    drop_configs();
}
END_TEST

static Suite *config_pins_suite(void)
{
    Suite *s = suite_create("config_pins");
    TCase *tc = tcase_create("pins");

    tcase_add_test(tc, test_take_release);
    tcase_add_test(tc, test_swap_without_users);
    tcase_add_test(tc, test_swap_with_users);
    tcase_add_test(tc, test_several_generations);
    tcase_add_test(tc, test_many_generations);
    tcase_add_test(tc, test_destroy_releases_everything);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(config_pins_suite());
}
