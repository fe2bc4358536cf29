/* SPDX-License-Identifier: MIT */
/*
 * JSON-lines files (contracts in harness.h): what the children write down, one JSON object per
 * line: the access log, the echo upstream's records, bad-upstream's events, the daemon's
 * diagnostics on stderr. Every read parses the whole file again and leaves out a last line still
 * being written; waiting for lines re-reads whenever the file's directory changes
 * (harness_wait_for_file, harness-files.c). Also the matchers and accessors the tests apply to
 * those objects.
 */
#include "harness-internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

json_t *harness_jsonl_parse(const char *path, size_t *ret_invalid)
{
    json_t *all = json_array();
    size_t len = 0, invalid = 0;
    char *text = harness_read_file(path, &len);

    if (text) {
        const char *p = text, *end = text + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl)
                break; /* a line still being written */
            if (nl > p) {
                json_t *o = json_loadb(p, (size_t)(nl - p), 0, NULL);
                if (json_is_object(o))
                    json_array_append_new(all, o);
                else {
                    json_decref(o);
                    invalid++;
                }
            }
            p = nl + 1;
        }
        free(text);
    }
    if (ret_invalid)
        *ret_invalid = invalid;
    return all;
}

json_t *harness_jsonl_read(const char *path)
{
    return harness_jsonl_parse(path, NULL);
}

struct jsonl_wait {
    const char *path;
    harness_match_fn match;
    const void *arg;
    size_t want;
    json_t *matches;
};

static bool jsonl_ready(void *arg)
{
    struct jsonl_wait *w = arg;
    json_t *all = harness_jsonl_parse(w->path, NULL);
    size_t i;
    json_t *o;

    json_decref(w->matches);
    w->matches = json_array();
    json_array_foreach(all, i, o) if (!w->match || w->match(o, w->arg))
        json_array_append(w->matches, o);
    json_decref(all);
    return json_array_size(w->matches) >= w->want;
}

json_t *harness_jsonl_wait(const char *path, harness_match_fn match, const void *arg, size_t want,
                           int timeout_ms, struct harness_process *watch)
{
    struct jsonl_wait w = {.path = path, .match = match, .arg = arg, .want = want};

    if (!harness_wait_for_file(path, jsonl_ready, &w, timeout_ms, watch) && timeout_ms > 0)
        say("waited %d ms for %zu matching lines in %s, found %zu", timeout_ms, want, path,
            json_array_size(w.matches));
    return w.matches;
}

json_t *harness_jsonl_wait_one(const char *path, harness_match_fn match, const void *arg)
{
    json_t *all = harness_jsonl_wait(path, match, arg, 1, HARNESS_WAIT_MS, NULL);
    json_t *first = json_incref(json_array_get(all, 0));
    json_decref(all);
    return first;
}

bool harness_match_field(json_t *object, const void *arg)
{
    const struct harness_field_match *m = arg;
    json_t *v = json_object_get(object, m->key);
    if (!m->value)
        return json_is_null(v);
    return json_is_string(v) && strcmp(json_string_value(v), m->value) == 0;
}

bool harness_match_field_prefix(json_t *object, const void *arg)
{
    const struct harness_field_match *m = arg;
    json_t *v = json_object_get(object, m->key);
    return json_is_string(v) && strncmp(json_string_value(v), m->value, strlen(m->value)) == 0;
}

bool harness_match_record_header(json_t *object, const void *arg)
{
    const struct harness_field_match *m = arg;
    const char *v = harness_record_header(object, m->key);
    return v && strcmp(v, m->value) == 0;
}

const char *harness_json_str(json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

bool harness_json_is_null(json_t *object, const char *key)
{
    return json_is_null(json_object_get(object, key));
}

json_int_t harness_json_int(json_t *object, const char *key, json_int_t def)
{
    json_t *v = json_object_get(object, key);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

const char *harness_record_header(json_t *record, const char *name)
{
    size_t i;
    json_t *pair;

    json_array_foreach(json_object_get(record, "headers"), i, pair)
    {
        const char *n = json_string_value(json_array_get(pair, 0));
        if (n && strcasecmp(n, name) == 0)
            return json_string_value(json_array_get(pair, 1));
    }
    return NULL;
}

size_t harness_record_header_count(json_t *record, const char *name)
{
    size_t i, count = 0;
    json_t *pair;

    json_array_foreach(json_object_get(record, "headers"), i, pair)
    {
        const char *n = json_string_value(json_array_get(pair, 0));
        if (n && strcasecmp(n, name) == 0)
            count++;
    }
    return count;
}
