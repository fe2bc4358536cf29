/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * What this tracehop binary was built with: for --version, and for the start-up warning when
 * the service manager expects a readiness notification that this build cannot send.
 */
#include <stdio.h>

/* "tracehop VERSION", then one line each: systemd support, and the versions of the libraries
 * as linked at run time (libcurl with its TLS backend, libmicrohttpd, jansson, zlib). */
void build_info_print(FILE *out);

/* Warn on stderr when NOTIFY_SOCKET is set (systemd's Type=notify) but this build has no systemd
 * support: the service manager would wait for a READY=1 that never comes. */
void build_info_check_notify_socket(void);
