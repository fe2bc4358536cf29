/* SPDX-License-Identifier: MIT */
/*
 * Check glue (contracts in harness.h): a test case timeout that CK_DEFAULT_TIMEOUT may only
 * lengthen, and the runner of every integration program's main (libcurl initialised once,
 * SIGPIPE ignored, verbose output unless CK_VERBOSITY says otherwise).
 */
#include "harness-internal.h"

#include <signal.h>
#include <stdlib.h>

void harness_tcase_timeout(TCase *tc, double seconds)
{
    const char *env = getenv("CK_DEFAULT_TIMEOUT");
    if (env && *env) {
        double asked = strtod(env, NULL);
        if (asked > seconds)
            seconds = asked;
    }
    tcase_set_timeout(tc, seconds);
}

int harness_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    srunner_run_all(sr, getenv("CK_VERBOSITY") ? CK_ENV : CK_VERBOSE);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
