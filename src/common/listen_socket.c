/* SPDX-License-Identifier: MIT */
/*
 * Listening sockets are created here rather than by libmicrohttpd, so that all workers share one
 * port through SO_REUSEPORT even when the port was chosen by the kernel (port 0, as tests use),
 * and so that a bind error is reported before any thread starts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

#include "common/listen_socket.h"

int listen_open(const struct sockaddr *addr, socklen_t addr_len, int backlog)
{
    int one = 1;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    if (addr->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    if (bind(fd, addr, addr_len) < 0 || listen(fd, backlog) < 0)
        goto fail;
    return fd;
fail:;
    int rc = -errno;
    close(fd);
    return rc;
}

int listen_check_free(const struct sockaddr *addr, socklen_t addr_len)
{
    int one = 1, rc = 0;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* SO_REUSEADDR only skips TIME_WAIT leftovers; a live listener still makes bind fail. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (addr->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, addr, addr_len) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int listen_bound_address(int fd, struct sockaddr_storage *ret, socklen_t *ret_len)
{
    *ret_len = sizeof(*ret);
    if (getsockname(fd, (struct sockaddr *)ret, ret_len) < 0)
        return -errno;
    return 0;
}

void listen_format_address(const struct sockaddr *addr, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, size, "?");
    }
}
