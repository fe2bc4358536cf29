/* SPDX-License-Identifier: MIT */
/*
 * The loader's checks across keys and its messages (src/config/config_check.c,
 * docs/configuration.md "Checks"): overlapping listen and admin addresses are refused naming
 * both keys, whichever source set them; the access log's directory must exist; a standard
 * method in the wrong case is refused; shadowed routes, duplicate route names, an otlp section
 * that exports nothing and unknown TRACEHOP_* variables are warnings; a flag or variable over
 * a file value is a note. Also the error texts of issue-level polish: "did you mean" for
 * unknown keys, a missing or directory config file, errors of variables naming the variable,
 * "off" in any case, and every restart-only key in config_needs_restart.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon-test.h"
#include "unit-test.h"

#define R1 "\"routes\": [{\"upstream\": \"http://127.0.0.1:1\"}]"

/* The reason a config is refused (static). */
static const char *refused(const char *json, const struct config_overrides *flags,
                           const struct config_overrides *env)
{
    static char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;

    ck_assert_msg(unit_config_load(json, flags, env, &c, error) < 0, "accepted:\n%s", json);
    ck_assert_ptr_null(c);
    return error;
}

static struct config *loaded(const char *json, const struct config_overrides *flags,
                             const struct config_overrides *env)
{
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;

    ck_assert_msg(unit_config_load(json, flags, env, &c, error) == 0, "refused: %s\n%s", error,
                  json);
    return c;
}

/* The number of messages of that kind that contain text (all of that kind for ""). */
static size_t messages_with(const struct config *c, enum config_message_kind kind, const char *text)
{
    size_t n = 0;
    for (size_t i = 0; i < c->messages_count; i++)
        if (c->messages[i].kind == kind && strstr(c->messages[i].text, text))
            n++;
    return n;
}

static void dump_messages(const struct config *c)
{
    for (size_t i = 0; i < c->messages_count; i++)
        fprintf(stderr, "  %s: %s\n", c->messages[i].kind == CONFIG_WARNING ? "warning" : "note",
                c->messages[i].text);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* --- overlapping addresses ------------------------------------------------------------------ */

static const struct {
    const char *json;
    struct config_overrides flags, env;
    const char *error_start; /* the message up to the reason */
} overlaps[] = {
    {"{\"listen\": \"0.0.0.0:8000\", \"admin\": {\"listen\": \"127.0.0.1:8000\"}, " R1 "}",
     {0},
     {0},
     "admin.listen: 127.0.0.1:8000 overlaps listen (0.0.0.0:8000): "},
    {"{\"listen\": \"127.0.0.1:8000\", \"admin\": {\"listen\": \"127.0.0.1:8000\"}, " R1 "}",
     {0},
     {0},
     "admin.listen: 127.0.0.1:8000 overlaps listen (127.0.0.1:8000): "},
    {"{\"listen\": [\"127.0.0.1:7000\", \"127.0.0.1:8000\"], \"admin\": {\"listen\": "
     "\"0.0.0.0:8000\"}, " R1 "}",
     {0},
     {0},
     "admin.listen: 0.0.0.0:8000 overlaps listen[1] (127.0.0.1:8000): "},
    {"{\"listen\": [\"127.0.0.1:8000\", \"127.0.0.1:8000\"], " R1 "}",
     {0},
     {0},
     "listen[1]: 127.0.0.1:8000 overlaps listen[0] (127.0.0.1:8000): "},
    {"{\"listen\": [\"[::]:8000\", \"0.0.0.0:8000\"], " R1 "}",
     {0},
     {0},
     "listen[1]: 0.0.0.0:8000 overlaps listen[0] ([::]:8000): "},
    {"{\"listen\": [\"127.0.0.1:8000\", \"[::]:8000\"], " R1 "}",
     {0},
     {0},
     "listen[1]: [::]:8000 overlaps listen[0] (127.0.0.1:8000): "},
    {"{\"listen\": [\"[::1]:8000\", \"[::]:8000\"], " R1 "}",
     {0},
     {0},
     "listen[1]: [::]:8000 overlaps listen[0] ([::1]:8000): "},
    /* flags and variables feed the same check, named as typed */
    {"{" R1 "}",
     {.admin_listen = "127.0.0.1:8000"},
     {0},
     "--admin-listen: 127.0.0.1:8000 overlaps listen (0.0.0.0:8000): "},
    {"{" R1 "}",
     {0},
     {.listen = "127.0.0.1:9901"},
     "admin.listen: 127.0.0.1:9901 overlaps TRACEHOP_LISTEN (127.0.0.1:9901): "},
    {"{\"admin\": {\"listen\": \"127.0.0.1:9000\"}, " R1 "}",
     {.listen = ":9000"},
     {0},
     "admin.listen: 127.0.0.1:9000 overlaps --listen (:9000): "},
};

START_TEST(test_overlapping_addresses_are_refused)
{
    const char *got = refused(overlaps[_i].json, &overlaps[_i].flags, &overlaps[_i].env);
    ck_assert_msg(starts_with(got, overlaps[_i].error_start), "error:    %s\nexpected: %s...", got,
                  overlaps[_i].error_start);
}
END_TEST

START_TEST(test_distinct_addresses_are_accepted)
{
    static const char *const ok[] = {
        "{\"listen\": \"0.0.0.0:8000\", \"admin\": {\"listen\": \"127.0.0.1:8001\"}, " R1 "}",
        "{\"listen\": [\"127.0.0.1:8000\", \"127.0.0.2:8000\"], " R1 "}",
        "{\"listen\": [\"[::1]:8000\", \"0.0.0.0:8000\"], " R1 "}", /* v4 wildcard: v4 only */
        "{\"listen\": [\"127.0.0.1:0\", \"127.0.0.1:0\"], " R1 "}", /* a fresh port each */
        "{\"listen\": \"127.0.0.1:9901\", \"admin\": {\"listen\": \"off\"}, " R1 "}",
    };
    struct config *c = loaded(ok[_i], NULL, NULL);
    config_free(c);
}
END_TEST

/* --- the access log ------------------------------------------------------------------------- */

START_TEST(test_access_log_directory)
{
    char file[512], json[1024];
    unit_temp_path(file, sizeof(file), "tracehop-not-a-dir");

    snprintf(json, sizeof(json),
             "{\"access_log\": {\"path\": \"/nonexistent-dir/a.log\"}, " R1 "}");
    ck_assert_str_eq(refused(json, NULL, NULL), "access_log.path: '/nonexistent-dir/a.log': "
                                                "directory /nonexistent-dir: No such file or "
                                                "directory");
    snprintf(json, sizeof(json), "{\"access_log\": {\"path\": \"%s/a.log\"}, " R1 "}", file);
    char expected[1200];
    snprintf(expected, sizeof(expected), "access_log.path: '%s/a.log': %s is not a directory", file,
             file);
    ck_assert_str_eq(refused(json, NULL, NULL), expected);
    ck_assert_str_eq(refused("{\"access_log\": {\"path\": \"/tmp\"}, " R1 "}", NULL, NULL),
                     "access_log.path: '/tmp' is a directory");

    /* Named as the user set it. */
    const struct config_overrides flag = {.access_log = "/nonexistent-dir/a.log"};
    ck_assert(starts_with(refused("{" R1 "}", &flag, NULL), "--access-log: "));
    ck_assert(starts_with(refused("{" R1 "}", NULL, &flag), "TRACEHOP_ACCESS_LOG: "));

    /* Fine: stdout, a file in an existing directory (it need not exist), a relative name. */
    static const char *const ok[] = {"-", "/tmp/tracehop-unit-new.log", "relative.log", "/a.log"};
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        const struct config_overrides path = {.access_log = ok[i]};
        config_free(loaded("{" R1 "}", &path, NULL));
    }
    unlink(file);
}
END_TEST

/* --- routes --------------------------------------------------------------------------------- */

START_TEST(test_method_case)
{
    ck_assert_str_eq(refused("{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": "
                             "{\"methods\": [\"GET\", \"post\"]}}]}",
                             NULL, NULL),
                     "routes[0].match.methods[1]: 'post' never matches: methods are "
                     "case-sensitive: did you mean POST?");
    ck_assert(strstr(refused("{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": "
                             "{\"methods\": [\"Delete\"]}}]}",
                             NULL, NULL),
                     "did you mean DELETE?"));

    /* A custom method: upper case is silent, any other case a warning. */
    struct config *c = loaded("{\"routes\": [{\"upstream\": \"http://a:1\", \"match\": "
                              "{\"methods\": [\"PURGE\", \"mkcol\"]}}]}",
                              NULL, NULL);
    ck_assert_uint_eq(messages_with(c, CONFIG_WARNING, ""), 1);
    ck_assert_uint_eq(messages_with(c, CONFIG_WARNING, "routes[0].match.methods[1]: 'mkcol'"), 1);
    config_free(c);
}
END_TEST

#define ROUTE(extra) "{\"upstream\": \"http://a:1\"" extra "}"

static const struct {
    const char *routes; /* the list's members */
    bool shadowed;      /* routes[1] can never match */
} shadows[] = {
    {ROUTE("") "," ROUTE(", \"match\": {\"path_prefix\": \"/api\"}"), true},
    {ROUTE(", \"match\": {\"path_prefix\": \"/api\"}") "," ROUTE(
         ", \"match\": {\"path_prefix\": \"/api/v1\"}"),
     true},
    {ROUTE(", \"match\": {\"path_prefix\": \"/api/\"}") "," ROUTE(
         ", \"match\": {\"path_prefix\": \"/api/v1\"}"),
     true},
    {ROUTE(", \"match\": {\"path_prefix\": \"/api\"}") "," ROUTE(
         ", \"match\": {\"path_prefix\": \"/api\"}"),
     true},
    {ROUTE(", \"match\": {\"path_prefix\": \"/api\", \"methods\": [\"GET\", \"POST\"]}") "," ROUTE(
         ", \"match\": {\"path_prefix\": \"/api/x\", \"methods\": [\"GET\"]}"),
     true},
    {ROUTE(", \"match\": {\"host\": \"A.example\"}") "," ROUTE(
         ", \"match\": {\"path_prefix\": \"/x\", \"host\": \"a.example\"}"),
     true},
    /* not shadowed: segment boundary, the earlier is narrower somewhere */
    {ROUTE(", \"match\": {\"path_prefix\": \"/api\"}") "," ROUTE(
         ", \"match\": {\"path_prefix\": \"/apix\"}"),
     false},
    {ROUTE(", \"match\": {\"path_prefix\": \"/api/\"}") "," ROUTE(
         ", \"match\": {\"path_prefix\": \"/api\"}"),
     false},
    {ROUTE(", \"match\": {\"path_prefix\": \"/api/v1\"}") "," ROUTE(
         ", \"match\": {\"path_prefix\": \"/api\"}"),
     false},
    {ROUTE(", \"match\": {\"host\": \"a.example\"}") "," ROUTE(""), false},
    {ROUTE(", \"match\": {\"methods\": [\"GET\"]}") "," ROUTE(""), false},
    {ROUTE(", \"match\": {\"methods\": [\"GET\"]}") "," ROUTE(
         ", \"match\": {\"methods\": [\"GET\", \"POST\"]}"),
     false},
    {ROUTE(", \"match\": {\"host\": \"a.example\"}") "," ROUTE(
         ", \"match\": {\"host\": \"b.example\"}"),
     false},
};

START_TEST(test_shadowed_routes_warn)
{
    char json[2048];
    snprintf(json, sizeof(json), "{\"routes\": [%s]}", shadows[_i].routes);
    struct config *c = loaded(json, NULL, NULL);
    size_t n = messages_with(c, CONFIG_WARNING,
                             "routes[1] ('route1'): never matches: routes[0] "
                             "('route0') comes first");
    if (n != (shadows[_i].shadowed ? 1u : 0u)) {
        dump_messages(c);
        ck_abort_msg("%s: %s", json, shadows[_i].shadowed ? "no warning" : "a warning");
    }
    ck_assert_uint_eq(c->messages_count, n); /* and nothing else */
    config_free(c);
}
END_TEST

START_TEST(test_duplicate_route_names_warn)
{
    struct config *c =
        loaded("{\"routes\": [" ROUTE(
                   ", \"name\": \"api\", \"match\": "
                   "{\"path_prefix\": \"/a\"}") "," ROUTE(", \"name\": \"web\", "
                                                          "\"match\": {\"path_prefix\": "
                                                          "\"/w\"}") "," ROUTE(", "
                                                                               "\"name\": "
                                                                               "\"api\"") "]}",
               NULL, NULL);
    ck_assert_uint_eq(messages_with(c, CONFIG_WARNING, ""), 1);
    ck_assert_uint_eq(messages_with(c, CONFIG_WARNING,
                                    "routes[2].name: 'api' is also the name of routes[0]: their "
                                    "metrics and log lines merge"),
                      1);
    config_free(c);
}
END_TEST

/* The labels of the metrics slots no route owns cannot be a route's name: its requests would be
 * counted with those no route matched, or those refused before routing. */
START_TEST(test_reserved_route_names_are_refused)
{
    static const char *const reserved[] = {"no_route", "(refused)", "other"};
    char json[256], expected[256];

    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        snprintf(json, sizeof(json),
                 "{\"routes\": [{\"upstream\": \"http://a:1\", \"name\": \"%s\"}]}", reserved[i]);
        snprintf(expected, sizeof(expected),
                 "routes[0].name: '%s' is reserved: the metrics label of requests no route of "
                 "that name handled",
                 reserved[i]);
        ck_assert_str_eq(refused(json, NULL, NULL), expected);
    }
    config_free(
        loaded("{\"routes\": [{\"upstream\": \"http://a:1\", \"name\": \"others\"}]}", NULL, NULL));
}
END_TEST

/* --- otlp ----------------------------------------------------------------------------------- */

START_TEST(test_otlp_section_ignored_warns)
{
    struct config *c = loaded("{\"otlp\": {\"timeout_ms\": 5}, " R1 "}", NULL, NULL);
    ck_assert_uint_eq(messages_with(c, CONFIG_WARNING, "otlp: ignored: no endpoint is set"), 1);
    config_free(c);

    const struct config_overrides disabled = {.otel_sdk_disabled = "true"};
    c = loaded("{\"otlp\": {\"endpoint\": \"http://127.0.0.1:4318\"}, " R1 "}", NULL, &disabled);
    ck_assert_uint_eq(messages_with(c, CONFIG_WARNING, "otlp: ignored: OTEL_SDK_DISABLED"), 1);
    config_free(c);

    /* Off on purpose, on, or no section: nothing to say. */
    static const char *const quiet[] = {
        "{\"otlp\": {\"enabled\": false, \"endpoint\": \"http://127.0.0.1:4318\"}, " R1 "}",
        "{\"otlp\": {\"endpoint\": \"http://127.0.0.1:4318\"}, " R1 "}",
        "{" R1 "}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(quiet); i++) {
        c = loaded(quiet[i], NULL, NULL);
        ck_assert_msg(c->messages_count == 0, "%s: %s", quiet[i],
                      c->messages_count ? c->messages[0].text : "");
        config_free(c);
    }
}
END_TEST

/* --- the environment ------------------------------------------------------------------------ */

START_TEST(test_unknown_variables_warn)
{
    struct config_overrides env = {.unknown = {"TRACEHOP_LISTN=1", "TRACEHOP_FOO=2"},
                                   .unknown_count = 2};
    struct config *c = loaded("{" R1 "}", NULL, &env);
    ck_assert_uint_eq(messages_with(c, CONFIG_WARNING, ""), 2);
    ck_assert_uint_eq(messages_with(c, CONFIG_WARNING,
                                    "TRACEHOP_LISTN: unknown variable, ignored (did you mean "
                                    "TRACEHOP_LISTEN?)"),
                      1);
    ck_assert_uint_eq(messages_with(c, CONFIG_WARNING, "TRACEHOP_FOO: unknown variable, ignored"),
                      1);
    ck_assert_uint_eq(messages_with(c, CONFIG_WARNING, "did you mean"), 1);
    config_free(c);

    /* More than are kept: the rest are counted. */
    env.unknown_count = CONFIG_MAX_UNKNOWN_VARIABLES + 3;
    for (size_t i = 0; i < CONFIG_MAX_UNKNOWN_VARIABLES; i++)
        env.unknown[i] = "TRACEHOP_X=1";
    c = loaded("{" R1 "}", NULL, &env);
    ck_assert_uint_eq(messages_with(c, CONFIG_WARNING, "TRACEHOP_X: "),
                      CONFIG_MAX_UNKNOWN_VARIABLES);
    ck_assert_uint_eq(
        messages_with(c, CONFIG_WARNING, "3 more unknown TRACEHOP_* variables, ignored"), 1);
    config_free(c);
}
END_TEST

START_TEST(test_overrides_from_env_finds_unknown_variables)
{
    struct config_overrides env;

    setenv("TRACEHOP_LISTN", "127.0.0.1:1", 1);
    setenv("TRACEHOP_LOG_LEVEL", "debug", 1); /* known (another setting's variable) */
    setenv("TRACEHOP_WORKERS", "2", 1);
    setenv("XTRACEHOP_OTHER", "1", 1); /* not the prefix */
    config_overrides_from_env(&env);
    bool listn = false;
    for (size_t i = 0; i < env.unknown_count && i < CONFIG_MAX_UNKNOWN_VARIABLES; i++) {
        ck_assert_msg(!starts_with(env.unknown[i], "TRACEHOP_LOG_LEVEL="), "%s", env.unknown[i]);
        ck_assert_msg(!starts_with(env.unknown[i], "TRACEHOP_WORKERS="), "%s", env.unknown[i]);
        ck_assert_msg(starts_with(env.unknown[i], "TRACEHOP_"), "%s", env.unknown[i]);
        listn = listn || strcmp(env.unknown[i], "TRACEHOP_LISTN=127.0.0.1:1") == 0;
    }
    ck_assert_msg(listn, "TRACEHOP_LISTN not reported");
    ck_assert_str_eq(env.workers, "2");
    unsetenv("TRACEHOP_LISTN");
    unsetenv("TRACEHOP_LOG_LEVEL");
    unsetenv("TRACEHOP_WORKERS");
    unsetenv("XTRACEHOP_OTHER");
}
END_TEST

START_TEST(test_variable_errors_name_the_variable)
{
    const struct config_overrides ratio = {.sampling_ratio = "x"};
    ck_assert_str_eq(refused("{" R1 "}", NULL, &ratio),
                     "TRACEHOP_SAMPLING_RATIO: 'x' is not a number in 0..1");
    const struct config_overrides header = {.trace_header = "Bad Header"};
    ck_assert_str_eq(refused("{" R1 "}", NULL, &header),
                     "TRACEHOP_TRACE_HEADER: 'Bad Header' is not a valid header name");
    ck_assert_str_eq(refused("{" R1 "}", &header, NULL),
                     "--trace-header: 'Bad Header' is not a valid header name");
    ck_assert_str_eq(
        refused("{\"trace\": {\"request_id_header\": \"Bad Header\"}, " R1 "}", NULL, NULL),
        "trace.request_id_header: 'Bad Header' is not a valid header name");
    const struct config_overrides empty_service = {.otel_service_name = ""};
    ck_assert_str_eq(refused("{" R1 "}", NULL, &empty_service),
                     "OTEL_SERVICE_NAME: must not be empty");
}
END_TEST

START_TEST(test_admin_off_in_any_case)
{
    static const char *const spellings[] = {"off", "OFF", "Off", "oFF"};
    char json[256];

    for (size_t i = 0; i < ARRAY_SIZE(spellings); i++) {
        snprintf(json, sizeof(json), "{\"admin\": {\"listen\": \"%s\"}, " R1 "}", spellings[i]);
        struct config *c = loaded(json, NULL, NULL);
        ck_assert_msg(!c->admin_enabled, "file: %s", spellings[i]);
        config_free(c);
        const struct config_overrides o = {.admin_listen = spellings[i]};
        c = loaded("{" R1 "}", &o, NULL);
        ck_assert_msg(!c->admin_enabled, "flag: %s", spellings[i]);
        config_free(c);
        c = loaded("{" R1 "}", NULL, &o);
        ck_assert_msg(!c->admin_enabled, "variable: %s", spellings[i]);
        config_free(c);
    }
}
END_TEST

/* --- notes ---------------------------------------------------------------------------------- */

START_TEST(test_override_notes)
{
    const struct config_overrides flags = {.listen = "127.0.0.1:9000", .workers = "3"};
    const struct config_overrides env = {.listen = "127.0.0.1:9500", .service_name = "env-svc"};

    /* A file value replaced by a flag. */
    struct config *c = loaded("{\"listen\": \"0.0.0.0:8000\", " R1 "}", &flags, NULL);
    ck_assert_uint_eq(messages_with(c, CONFIG_NOTE, ""), 1);
    ck_assert_uint_eq(messages_with(c, CONFIG_NOTE,
                                    "listen: file value 0.0.0.0:8000 overridden by --listen "
                                    "(127.0.0.1:9000)"),
                      1);
    ck_assert_uint_eq(messages_with(c, CONFIG_WARNING, ""), 0);
    config_free(c);

    /* By a variable, then the variable's by a flag; service_name and workers from the file. */
    c = loaded("{\"listen\": \"0.0.0.0:8000\", \"service_name\": \"file-svc\", \"workers\": 2, " R1
               "}",
               &flags, &env);
    ck_assert_uint_eq(messages_with(c, CONFIG_NOTE,
                                    "listen: file value 0.0.0.0:8000 overridden by "
                                    "TRACEHOP_LISTEN (127.0.0.1:9500)"),
                      1);
    ck_assert_uint_eq(messages_with(c, CONFIG_NOTE,
                                    "listen: TRACEHOP_LISTEN's value 127.0.0.1:9500 overridden by "
                                    "--listen (127.0.0.1:9000)"),
                      1);
    ck_assert_uint_eq(messages_with(c, CONFIG_NOTE,
                                    "service_name: file value file-svc overridden by "
                                    "TRACEHOP_SERVICE_NAME (env-svc)"),
                      1);
    ck_assert_uint_eq(
        messages_with(c, CONFIG_NOTE, "workers: file value 2 overridden by --workers (3)"), 1);
    ck_assert_uint_eq(messages_with(c, CONFIG_NOTE, ""), 4);
    config_free(c);

    /* OpenTelemetry's variables over the file, and a TRACEHOP_* variable over those. */
    const struct config_overrides otel = {.otel_service_name = "otel-svc",
                                          .otel_traces_sampler_arg = "0.25",
                                          .sampling_ratio = "0.5"};
    c = loaded("{\"service_name\": \"file-svc\", \"trace\": {\"sampling_ratio\": 0.1}, " R1 "}",
               NULL, &otel);
    ck_assert_uint_eq(messages_with(c, CONFIG_NOTE,
                                    "service_name: file value file-svc overridden by "
                                    "OTEL_SERVICE_NAME (otel-svc)"),
                      1);
    ck_assert_uint_eq(messages_with(c, CONFIG_NOTE,
                                    "trace.sampling_ratio: file value 0.1 overridden by "
                                    "OTEL_TRACES_SAMPLER_ARG (0.25)"),
                      1);
    ck_assert_uint_eq(messages_with(c, CONFIG_NOTE,
                                    "trace.sampling_ratio: OTEL_TRACES_SAMPLER_ARG's value 0.25 "
                                    "overridden by TRACEHOP_SAMPLING_RATIO (0.5)"),
                      1);
    ck_assert_uint_eq(messages_with(c, CONFIG_NOTE, ""), 3);
    config_free(c);

    /* A default replaced: nothing to say. */
    c = loaded("{" R1 "}", &flags, NULL);
    ck_assert_uint_eq(c->messages_count, 0);
    config_free(c);

    /* --upstream over the file's routes. */
    const struct config_overrides upstream = {.upstream = "http://127.0.0.1:2"};
    c = loaded("{" R1 "}", &upstream, NULL);
    ck_assert_uint_eq(messages_with(c, CONFIG_NOTE,
                                    "routes: file value (1 route) overridden by --upstream "
                                    "(http://127.0.0.1:2)"),
                      1);
    config_free(c);
}
END_TEST

/* --- the file and its keys ------------------------------------------------------------------ */

START_TEST(test_config_file_errors)
{
    char error[CONFIG_ERROR_MAX];
    struct config *c = NULL;
    const struct config_overrides none = {0};

    ck_assert_int_lt(config_load("/nonexistent/tracehop.json", &none, &none, NULL, &c, error), 0);
    ck_assert_str_eq(error, "/nonexistent/tracehop.json: No such file or directory");
    ck_assert_int_lt(config_load("/tmp", &none, &none, NULL, &c, error), 0);
    ck_assert_str_eq(error, "/tmp: is a directory, not a config file");
    ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_unknown_keys_suggest)
{
    static const struct {
        const char *json, *error;
    } cases[] = {
        {"{\"servce_name\": \"x\", " R1 "}",
         "servce_name: unknown key (did you mean service_name?)"},
        {"{\"routes\": [{\"upstrem\": \"http://a:1\"}]}",
         "routes[0].upstrem: unknown key (did you mean upstream?)"},
        {"{\"limits\": {\"max_header_byte\": 5}, " R1 "}",
         "limits.max_header_byte: unknown key (did you mean max_header_bytes?)"},
        {"{\"bogus\": 1, " R1 "}", "bogus: unknown key"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        ck_assert_str_eq(refused(cases[i].json, NULL, NULL), cases[i].error);
}
END_TEST

/* --- reload --------------------------------------------------------------------------------- */

START_TEST(test_needs_restart_lists_every_key)
{
    struct config *old =
        loaded("{\"listen\": \"127.0.0.1:18000\", \"workers\": 2, " R1 "}", NULL, NULL);
    struct config *next = loaded("{\"listen\": \"127.0.0.1:18001\", \"workers\": 3, \"limits\": "
                                 "{\"max_header_bytes\": 4096}, " R1 "}",
                                 NULL, NULL);
    char what[CONFIG_ERROR_MAX];

    ck_assert(config_needs_restart(old, next, what));
    ck_assert_str_eq(what, "listen, workers, limits.max_header_bytes");
    ck_assert(!config_needs_restart(old, old, what));
    config_free(next);
    config_free(old);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config-checks");
    TCase *tc = tcase_create("addresses");
    tcase_add_loop_test(tc, test_overlapping_addresses_are_refused, 0, (int)ARRAY_SIZE(overlaps));
    tcase_add_loop_test(tc, test_distinct_addresses_are_accepted, 0, 5);
    suite_add_tcase(s, tc);

    tc = tcase_create("access-log");
    tcase_add_test(tc, test_access_log_directory);
    suite_add_tcase(s, tc);

    tc = tcase_create("routes");
    tcase_add_test(tc, test_method_case);
    tcase_add_loop_test(tc, test_shadowed_routes_warn, 0, (int)ARRAY_SIZE(shadows));
    tcase_add_test(tc, test_duplicate_route_names_warn);
    tcase_add_test(tc, test_reserved_route_names_are_refused);
    tcase_add_test(tc, test_otlp_section_ignored_warns);
    suite_add_tcase(s, tc);

    tc = tcase_create("environment");
    tcase_add_test(tc, test_unknown_variables_warn);
    tcase_add_test(tc, test_overrides_from_env_finds_unknown_variables);
    tcase_add_test(tc, test_variable_errors_name_the_variable);
    tcase_add_test(tc, test_admin_off_in_any_case);
    tcase_add_test(tc, test_override_notes);
    suite_add_tcase(s, tc);

    tc = tcase_create("polish");
    tcase_add_test(tc, test_config_file_errors);
    tcase_add_test(tc, test_unknown_keys_suggest);
    tcase_add_test(tc, test_needs_restart_lists_every_key);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
