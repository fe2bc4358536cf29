/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The text form of a client's address, for X-Forwarded-For and the access log. It runs on
 * every request: IPv4 is formatted by hand (inet_ntop goes through sprintf, ~1,700
 * instructions), IPv6 by inet_ntop.
 */
#include <stddef.h>
#include <sys/socket.h>

/* Large enough for any IPv6 text form (INET6_ADDRSTRLEN is 46). */
#define ADDRFMT_MAX 64

/* Writes the address (no port) as a NUL-terminated string into out, of at least ADDRFMT_MAX
 * bytes. Families other than AF_INET and AF_INET6 give "". Returns the length. */
size_t addrfmt(char *out, const struct sockaddr *sa);
