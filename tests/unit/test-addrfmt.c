/* SPDX-License-Identifier: MIT */
/*
 * Client address text (src/common/addrfmt.h): IPv4 is formatted by hand, so every octet width
 * (1, 2, 3 digits, and 0) is checked in every position, and the whole 0..255 range of one
 * octet against a reference built with snprintf. IPv6 goes through inet_ntop; one compressed
 * and one mapped form make sure the call is wired right. Unknown families give "".
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "common/addrfmt.h"
#include "unit-test.h"

static const char *ipv4_text(uint8_t a, uint8_t b, uint8_t c, uint8_t d, char *out)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    uint8_t octets[4] = {a, b, c, d};
    memcpy(&sin.sin_addr.s_addr, octets, 4);
    size_t len = addrfmt(out, (const struct sockaddr *)&sin);
    ck_assert_uint_eq(len, strlen(out));
    return out;
}

START_TEST(test_ipv4_vectors)
{
    static const struct {
        uint8_t octets[4];
        const char *text;
    } vectors[] = {
        {{127, 0, 0, 1}, "127.0.0.1"},
        {{0, 0, 0, 0}, "0.0.0.0"},
        {{255, 255, 255, 255}, "255.255.255.255"},
        {{10, 0, 100, 9}, "10.0.100.9"},
        {{1, 22, 203, 40}, "1.22.203.40"},
        {{192, 168, 1, 100}, "192.168.1.100"},
        {{100, 10, 1, 0}, "100.10.1.0"},
    };
    char out[ADDRFMT_MAX];
    for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
        const uint8_t *o = vectors[i].octets;
        ck_assert_str_eq(ipv4_text(o[0], o[1], o[2], o[3], out), vectors[i].text);
    }
}
END_TEST

START_TEST(test_ipv4_every_octet_value)
{
    char out[ADDRFMT_MAX], expected[32];
    for (unsigned v = 0; v < 256; v++) {
        snprintf(expected, sizeof(expected), "%u.%u.%u.%u", v, 255 - v, v / 2, v);
        ck_assert_str_eq(
            ipv4_text((uint8_t)v, (uint8_t)(255 - v), (uint8_t)(v / 2), (uint8_t)v, out), expected);
    }
}
END_TEST

START_TEST(test_ipv6)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    char out[ADDRFMT_MAX];

    ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr), 1);
    ck_assert_uint_eq(addrfmt(out, (const struct sockaddr *)&sin6), strlen("2001:db8::1"));
    ck_assert_str_eq(out, "2001:db8::1");
    ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:10.1.2.3", &sin6.sin6_addr), 1);
    addrfmt(out, (const struct sockaddr *)&sin6);
    ck_assert_str_eq(out, "::ffff:10.1.2.3");
}
END_TEST

START_TEST(test_other_family_is_empty)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char out[ADDRFMT_MAX] = "junk";

    ck_assert_uint_eq(addrfmt(out, (const struct sockaddr *)&sun), 0);
    ck_assert_str_eq(out, "");
}
END_TEST

static Suite *addrfmt_suite(void)
{
    Suite *s = suite_create("addrfmt");
    TCase *tc = tcase_create("addrfmt");

    tcase_add_test(tc, test_ipv4_vectors);
    tcase_add_test(tc, test_ipv4_every_octet_value);
    tcase_add_test(tc, test_ipv6);
    tcase_add_test(tc, test_other_family_is_empty);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(addrfmt_suite());
}
