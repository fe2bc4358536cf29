/* SPDX-License-Identifier: MIT */
#pragma once
#include <stddef.h>
#include <sys/socket.h>

/*
 * Open a non-blocking, close-on-exec TCP listening socket on addr with SO_REUSEPORT, so that
 * every worker can have its own socket on the same port and the kernel spreads connections.
 * If addr has port 0, the caller should open the first socket, read the chosen port back with
 * listen_bound_address and open the others on that. Returns the fd or -errno.
 */
int listen_open(const struct sockaddr *addr, socklen_t addr_len, int backlog);

/*
 * Whether something already listens on addr. SO_REUSEPORT would otherwise let a second
 * tracehop (same user) silently share the port with the first and take half its traffic.
 * Returns 0 if the address is free, -EADDRINUSE if taken, another -errno on other errors.
 */
int listen_check_free(const struct sockaddr *addr, socklen_t addr_len);

/* The address a socket is bound to (resolves port 0). Returns 0 or -errno. */
int listen_bound_address(int fd, struct sockaddr_storage *ret, socklen_t *ret_len);

/* "127.0.0.1:8000" / "[::1]:8000" into buf. */
void listen_format_address(const struct sockaddr *addr, char *buf, size_t size);
