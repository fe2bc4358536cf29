/* SPDX-License-Identifier: MIT */
/*
 * "Did you mean" (src/common/edit_distance.h): the distance on hand-computed vectors (each kind
 * of edit, a swap of neighbours counting one, case ignored, the length limit), and which name
 * edit_distance_closest picks: the closest within the allowance for the word's length, none for
 * a word far from all, none for an exact name.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "common/edit_distance.h"
#include "unit-test.h"

START_TEST(test_distance_vectors)
{
    static const struct {
        const char *a, *b;
        size_t distance;
    } vectors[] = {
        {"", "", 0},
        {"abc", "", 3},
        {"", "abc", 3},
        {"listen", "listen", 0},
        {"servce_name", "service_name", 1},   /* insertion */
        {"service_namee", "service_name", 1}, /* deletion */
        {"workerz", "workers", 1},            /* substitution */
        {"wokrers", "workers", 1},            /* swap of neighbours */
        {"WORKERS", "workers", 0},            /* case ignored */
        {"sampling", "sampler", 3},
        {"kitten", "sitting", 3},
        {"bogus", "otlp", 4},
    };
    for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
        ck_assert_msg(edit_distance(vectors[i].a, vectors[i].b) == vectors[i].distance,
                      "'%s' / '%s': %zu, expected %zu", vectors[i].a, vectors[i].b,
                      edit_distance(vectors[i].a, vectors[i].b), vectors[i].distance);
        ck_assert_uint_eq(edit_distance(vectors[i].b, vectors[i].a), vectors[i].distance);
    }
    char long_word[EDIT_DISTANCE_MAX_LEN + 2];
    memset(long_word, 'a', sizeof(long_word) - 1);
    long_word[sizeof(long_word) - 1] = '\0';
    ck_assert_uint_eq(edit_distance(long_word, "a"), SIZE_MAX);
    long_word[EDIT_DISTANCE_MAX_LEN] = '\0'; /* exactly the limit: computed */
    ck_assert_uint_eq(edit_distance(long_word, ""), EDIT_DISTANCE_MAX_LEN);
}
END_TEST

START_TEST(test_closest)
{
    static const char *const keys[] = {"service_name", "listen", "admin",  "workers", "trace",
                                       "access_log",   "limits", "routes", "otlp"};
    static const struct {
        const char *word, *expected; /* expected NULL: no suggestion */
    } cases[] = {
        {"servce_name", "service_name"},
        {"listn", "listen"},
        {"worker", "workers"},
        {"otpl", "otlp"},
        {"Routes", "routes"},
        {"bogus", NULL},
        {"listen", NULL}, /* not a typo */
        {"x", NULL},
        {"access", NULL}, /* 4 edits from access_log: too far for a 6-letter word */
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const char *got = edit_distance_closest(cases[i].word, keys, ARRAY_SIZE(keys));
        if (!cases[i].expected)
            ck_assert_msg(got == NULL, "'%s': suggested '%s'", cases[i].word, got);
        else
            ck_assert_msg(got && strcmp(got, cases[i].expected) == 0, "'%s': got '%s'",
                          cases[i].word, got ? got : "(none)");
    }
    ck_assert_ptr_null(edit_distance_closest("listen", keys, 0));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("edit-distance");
    TCase *tc = tcase_create("edit-distance");
    tcase_add_test(tc, test_distance_vectors);
    tcase_add_test(tc, test_closest);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
