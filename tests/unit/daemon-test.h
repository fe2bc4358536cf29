/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Helpers shared by the unit tests of daemon modules that need a loaded config: the JSON text is
 * written to a temporary file and read back through config_load, exactly as the daemon does, so a
 * test's config is always one the real parser accepted.
 *
 * Static inline so that each test includes only what it uses.
 */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "common/cpu_probe.h"

/* A path for a temporary file under $TMPDIR (or /tmp); the file exists and is empty. */
static inline void unit_temp_path(char *out, size_t size, const char *stem)
{
    const char *dir = getenv("TMPDIR");
    int n = snprintf(out, size, "%s/%s-XXXXXX", dir && dir[0] ? dir : "/tmp", stem);

    ck_assert(n > 0 && (size_t)n < size);
    int fd = mkstemp(out);
    ck_assert_msg(fd >= 0, "mkstemp %s failed", out);
    close(fd);
}

static inline void unit_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    ck_assert_int_eq(fclose(f), 0);
}

/*
 * config_load on `json` written to a temporary file (json NULL: no file). flags and env may be
 * NULL (nothing given). Returns config_load's result; error gets its reason.
 */
static inline int unit_config_load(const char *json, const struct config_overrides *flags,
                                   const struct config_overrides *env, struct config **ret,
                                   char error[CONFIG_ERROR_MAX])
{
    static const struct config_overrides none;
    const struct config_machine machine = {.cpus = cpu_probe_usable()}; /* as the daemon does */
    char path[512];
    int rc;

    error[0] = '\0';
    if (!json)
        return config_load(NULL, flags ? flags : &none, env ? env : &none, &machine, ret, error);
    unit_temp_path(path, sizeof(path), "tracehop-unit-config");
    unit_write_text(path, json);
    rc = config_load(path, flags ? flags : &none, env ? env : &none, &machine, ret, error);
    unlink(path);
    return rc;
}

/* A config that must load; the test fails with the loader's reason otherwise. */
static inline struct config *unit_config(const char *json)
{
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;
    int rc = unit_config_load(json, NULL, NULL, &c, error);

    ck_assert_msg(rc == 0, "config refused: %s\n%s", error, json);
    ck_assert_ptr_nonnull(c);
    return c;
}
