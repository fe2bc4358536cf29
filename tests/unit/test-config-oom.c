/* SPDX-License-Identifier: MIT */
/*
 * The config loader out of memory (src/config/config.h): config_load also runs on SIGHUP in a
 * live daemon, so running out of memory must be an error, not an abort. For every N, the loader
 * is run with every allocation from the Nth on failing, until N is large enough that it
 * succeeds; each failing run must return -ENOMEM with "out of memory" in the error, leave *ret
 * alone, and free everything it allocated: AddressSanitizer's leak check (-Db_sanitize=address)
 * and valgrind report any block a failed load leaves behind.
 *
 * Allocations are counted by wrapping the allocator at link time (tests/unit/meson.build:
 * -Wl,--wrap=malloc and friends, which reroutes the calls made by the test and the statically
 * linked config and common libraries; jansson's allocations come through the loader's own
 * allocation function, src/config/config_json.c, which calls malloc). Allocations inside libc
 * (getaddrinfo's) are not counted. Deterministic: same inputs, same sequence.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "daemon-test.h"
#include "unit-test.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static bool armed;       /* count (and maybe fail) allocations */
static long fail_from;   /* the first allocation to fail; -1: none */
static long allocations; /* counted since armed */

static bool refuse(void)
{
    if (!armed)
        return false;
    return fail_from >= 0 && allocations++ >= fail_from;
}

void *__wrap_malloc(size_t size)
{
    return refuse() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return refuse() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    return refuse() ? NULL : __real_realloc(p, size);
}

char *__wrap_strdup(const char *s)
{
    return refuse() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return refuse() ? NULL : __real_strndup(s, n);
}

static struct config_overrides no_overrides;

struct scenario {
    const char *json; /* NULL: the shipped config/tracehop.json */
    struct config_overrides flags, env;
};

/* Run the loader with allocations failing from the nth on; returns its result. */
static int load_failing_from(const struct scenario *sc, const char *path, long n,
                             char error[CONFIG_ERROR_MAX], struct config **ret)
{
    const struct config_machine machine = {.cpus = 2};

    fail_from = n;
    allocations = 0;
    armed = true;
    int rc = config_load(path, &sc->flags, &sc->env, &machine, ret, error);
    armed = false;
    return rc;
}

/* N = 0, 1, 2, ... until the load succeeds: every run before must fail cleanly. Returns the N
 * it took. */
static long every_failure_point(const struct scenario *sc, const char *path)
{
    long n;

    for (n = 0; n < 100000; n++) {
        char error[CONFIG_ERROR_MAX] = "";
        struct config *c = (struct config *)&no_overrides; /* must stay untouched */
        int rc = load_failing_from(sc, path, n, error, &c);
        if (rc == 0) {
            ck_assert_ptr_ne(c, (struct config *)&no_overrides);
            config_unref(c);
            return n;
        }
        ck_assert_msg(rc == -ENOMEM, "allocation %ld failing: rc %d (%s)", n, rc, error);
        ck_assert_msg(strstr(error, "out of memory"), "allocation %ld failing: '%s'", n, error);
        ck_assert_msg(c == (struct config *)&no_overrides, "*ret written on failure");
    }
    ck_abort_msg("the loader never succeeded");
    return n;
}

static const struct scenario scenarios[] = {
    {.json = NULL, .flags = {.access_log = "-"}}, /* its /var/log/tracehop may not exist here */
    {.json = "{\"service_name\": \"svc\", \"listen\": [\"127.0.0.1:1\", \":2\", \"[::1]:3\"],"
             " \"admin\": {\"listen\": \"off\"}, \"workers\": 3,"
             " \"trace\": {\"request_id_header\": \"X-Request-ID\", \"sampling_ratio\": 0.5},"
             " \"access_log\": {\"path\": \"/tmp/x.log\", \"fields\": [\"X-A\", \"X-B\"],"
             " \"redact\": [\"token\"]},"
             " \"limits\": {\"max_header_bytes\": 4096, \"drain_delay_ms\": 0},"
             " \"routes\": [{\"name\": \"oom-a\", \"match\": {\"path_prefix\": \"/a/\","
             " \"host\": \"a.example\", \"methods\": [\"GET\", \"POST\"]},"
             " \"upstream\": \"https://a.example:8443/base/\", \"strip_prefix\": true,"
             " \"set_request_headers\": {\"X-One\": \"1\", \"X-Two\": \"2\"}},"
             " {\"upstream\": \"unix:/run/oom.sock\"}], \"otlp\": {}}"},
    {.json = "{\"routes\": [{\"name\": \"oom-b\", \"upstream\": \"http://127.0.0.1:1\"}]}",
     .env = {.listen = "127.0.0.1:7",
             .service_name = "env-svc",
             .access_log = "-",
             .sampling_ratio = "0.25",
             .trace_header = "X-Env-ID",
             .workers = "4"},
     .flags = {.listen = "127.0.0.1:8",
               .upstream = "http://127.0.0.1:9/flag",
               .admin_listen = "127.0.0.1:10",
               .service_name = "flag-svc"}},
    /* span export: the otlp section, then OTEL_* variables adding to and replacing its lists */
    {.json = "{\"trace\": {\"sampler\": \"traceidratio\"}, \"otlp\": {\"endpoint\":"
             " \"http://127.0.0.1:4318/\", \"headers\": {\"Authorization\": \"Bearer a\","
             " \"X-A\": \"1\"}, \"ca_file\": \"/ca.pem\", \"client_certificate\": \"/c.pem\","
             " \"client_key\": \"/k.pem\", \"resource_attributes\": {\"a\": \"1\", \"b\": \"2\"},"
             " \"batch\": {\"max_queue_size\": 100}},"
             " \"routes\": [{\"upstream\": \"http://127.0.0.1:1\"}]}",
     .env = {.otel_traces_endpoint = "https://127.0.0.1:4318/v1/traces",
             .otel_headers = "authorization=Bearer%20b, X-B = 2",
             .otel_resource_attributes = "service.name=otel-svc,a=3,c=%34",
             .otel_traces_sampler_arg = "0.5",
             .otel_certificate = "/env-ca.pem",
             .otel_traces_client_certificate = "/env-c.pem",
             .otel_client_key = "/env-k.pem"}},
};

START_TEST(test_every_allocation_failure_is_enomem)
{
    const struct scenario *sc = &scenarios[_i];
    char path[1024];

    if (sc->json) {
        unit_temp_path(path, sizeof(path), "tracehop-oom-config");
        unit_write_text(path, sc->json);
    } else {
        const char *root = getenv("UNIT_SOURCE_ROOT");
        ck_assert_msg(root != NULL, "UNIT_SOURCE_ROOT is not set (meson sets it)");
        snprintf(path, sizeof(path), "%s/config/tracehop.json", root);
    }

    /* First with the route names not yet registered (common/route_slots.h allocates for each),
     * then again with them registered, when every run allocates the same sequence. */
    ck_assert_int_gt(every_failure_point(sc, path), 10);
    ck_assert_int_gt(every_failure_point(sc, path), 10);
    if (sc->json)
        unlink(path);
}
END_TEST

static Suite *config_oom_suite(void)
{
    Suite *s = suite_create("config-oom");
    TCase *tc = tcase_create("oom");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_every_allocation_failure_is_enomem, 0, (int)ARRAY_SIZE(scenarios));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(config_oom_suite());
}
