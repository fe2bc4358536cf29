/* SPDX-License-Identifier: MIT */
/*
 * Text for a terminal (src/common/terminal_text.h): C0 controls, DEL and UTF-8 C1 controls are
 * shown escaped; printable ASCII and other UTF-8 (é, 😀, U+00A0 right after the C1 range) pass
 * unchanged; a lone 0xc2 at the end is not read past.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/terminal_text.h"
#include "unit-test.h"

static char *written(const char *s)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);

    ck_assert_ptr_nonnull(out);
    terminal_text_write(out, s);
    ck_assert_int_eq(fclose(out), 0);
    return text;
}

START_TEST(test_vectors)
{
    static const struct {
        const char *in, *out;
    } vectors[] = {
        {"", ""},
        {"routes[0].name: 'api'", "routes[0].name: 'api'"},
        {"a\nb", "a\\x0ab"},
        {"\x1b[31mred", "\\x1b[31mred"},
        {"tab\there\r", "tab\\x09here\\x0d"},
        {"del\x7f", "del\\x7f"},
        {"csi\xc2\x9b"
         "2J",
         "csi\\u009b2J"},
        {"c1 \xc2\x80 \xc2\x9f", "c1 \\u0080 \\u009f"},
        {"nbsp\xc2\xa0 caf\xc3\xa9 \xf0\x9f\x98\x80", "nbsp\xc2\xa0 caf\xc3\xa9 \xf0\x9f\x98\x80"},
        {"lone\xc2", "lone\xc2"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
        char *got = written(vectors[i].in);
        ck_assert_msg(strcmp(got, vectors[i].out) == 0, "vector %zu: '%s', expected '%s'", i, got,
                      vectors[i].out);
        free(got);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("terminal-text");
    TCase *tc = tcase_create("terminal-text");
    tcase_add_test(tc, test_vectors);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
