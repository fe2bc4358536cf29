/* SPDX-License-Identifier: MIT */
/*
 * The daemon's access log (contracts in harness.h): finding the line of one request, waiting for
 * it like every JSON-lines wait, and checking a line against the always-present fields of
 * docs/access-log.md.
 */
#include "harness-internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

json_t *harness_log_line(struct harness_daemon *d, const char *key, const char *value)
{
    struct harness_field_match m = {key, value};
    json_t *line = harness_jsonl_wait_one(d->access_log, harness_match_field, &m);
    if (!line)
        say("no access-log line with %s = %s", key, value ? value : "null");
    return line;
}

const char *harness_log_schema_error(json_t *line)
{
    /* s: string, S: string or null, n: number, N: number or null, i: integer. */
    static const struct {
        const char *key, *types;
    } fields[] = {
        {"time", "s"},
        {"service", "s"},
        {"trace_id", "s"},
        {"span_id", "s"},
        {"parent_span_id", "S"},
        {"trace_flags", "s"},
        {"x_trace_id", "s"},
        {"method", "S"},
        {"path", "S"},
        {"query", "S"},
        {"status", "N"},
        {"duration_ms", "n"},
        {"route", "S"},
        {"upstream", "S"},
        {"upstream_status", "N"},
        {"upstream_duration_ms", "N"},
        {"bytes_received", "i"},
        {"bytes_sent", "i"},
        {"client_addr", "S"},
        {"user_agent", "S"},
        {"outcome", "s"},
    };
    static char why[160];

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *v = json_object_get(line, fields[i].key);
        char t = fields[i].types[0];
        bool ok = v && ((t == 's' && json_is_string(v)) ||
                        (t == 'S' && (json_is_string(v) || json_is_null(v))) ||
                        (t == 'n' && json_is_number(v)) ||
                        (t == 'N' && (json_is_number(v) || json_is_null(v))) ||
                        (t == 'i' && json_is_integer(v)));
        if (!ok) {
            snprintf(why, sizeof(why), "field %s is %s", fields[i].key,
                     v ? "of the wrong type" : "missing");
            return why;
        }
    }
    const char *time_text = harness_json_str(line, "time");
    struct tm tm = {0};
    const char *rest = strptime(time_text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest || strlen(time_text) != 24 || rest[0] != '.' || !isdigit((unsigned char)rest[1]) ||
        !isdigit((unsigned char)rest[2]) || !isdigit((unsigned char)rest[3]) || rest[4] != 'Z') {
        snprintf(why, sizeof(why), "time '%s' is not RFC 3339 UTC with milliseconds", time_text);
        return why;
    }
    time_t when = timegm(&tm), now = time(NULL);
    if (when < now - 60 || when > now + 60) {
        snprintf(why, sizeof(why), "time '%s' is not now (UTC)", time_text);
        return why;
    }
    const char *trace_id = harness_json_str(line, "trace_id");
    const char *span_id = harness_json_str(line, "span_id");
    if (strlen(trace_id) != 32 || !harness_is_lower_hex(trace_id, 32) || strlen(span_id) != 16 ||
        !harness_is_lower_hex(span_id, 16))
        return "trace_id or span_id is not lowercase hex of the right length";
    return NULL;
}
