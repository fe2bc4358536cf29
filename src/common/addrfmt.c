/* SPDX-License-Identifier: MIT */
/*
 * Client addresses as text (addrfmt.h): IPv4 by hand, because it runs per request; IPv6
 * through inet_ntop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "common/addrfmt.h"

static size_t format_ipv4(char *out, const struct in_addr *addr)
{
    const uint8_t *octet = (const uint8_t *)&addr->s_addr; /* network order: first octet first */
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = octet[i];
        if (i > 0)
            *p++ = '.';
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
    }
    *p = '\0';
    return (size_t)(p - out);
}

size_t addrfmt(char *out, const struct sockaddr *sa)
{
    out[0] = '\0';
    if (sa->sa_family == AF_INET)
        return format_ipv4(out, &((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6 &&
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, ADDRFMT_MAX))
        return strlen(out);
    out[0] = '\0';
    return 0;
}
