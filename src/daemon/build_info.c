/* SPDX-License-Identifier: MIT */
/*
 * --version says what was compiled in, so that an operator can tell from the binary alone whether
 * Type=notify and socket activation will work and which TLS library talks to https upstreams.
 * The library versions are asked of the libraries themselves (the ones loaded now, which a
 * distribution update may have changed since the build), not taken from the build's headers.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <zlib.h>

#include "tracehop-config.h"
#include "common/diag.h"
#include "daemon/build_info.h"

#ifdef HAVE_SYSTEMD
#define SYSTEMD_SUPPORT "yes (sd_notify, socket activation)"
#else
#define SYSTEMD_SUPPORT "no (built without libsystemd: no sd_notify, no socket activation)"
#endif

void build_info_print(FILE *out)
{
    const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);

    fprintf(out, "tracehop %s\n", TRACEHOP_VERSION);
    fprintf(out, "systemd support: %s\n", SYSTEMD_SUPPORT);
    fprintf(out, "libcurl %s (TLS: %s)\n", curl->version,
            curl->ssl_version ? curl->ssl_version : "none");
    fprintf(out, "libmicrohttpd %s\n", MHD_get_version());
    fprintf(out, "jansson %s\n", jansson_version_str());
    fprintf(out, "zlib %s\n", zlibVersion());
}

void build_info_check_notify_socket(void)
{
#ifndef HAVE_SYSTEMD
    const char *socket = getenv("NOTIFY_SOCKET");
    if (socket && socket[0])
        diag(DIAG_WARN, "NOTIFY_SOCKET is set but this tracehop was built without systemd support: "
                        "Type=notify will time out (use Type=exec, or a build with libsystemd; see "
                        "tracehop --version)");
#endif
}
