/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target: logline_format, the access-log line of docs/access-log.md ("Fields",
 * "Escaping"), and json_escape under it.
 *
 * Input layout (readable, so that seeds can be written by hand): lines; the first byte says what
 * the rest of the line is, and a line starting with '+' continues the previous value after a
 * '\n' (so values can hold newlines).
 *   m method       t target (path, then '?' and the query)      u User-Agent
 *   a client address              x X-Trace-ID sent (at most 128 bytes)
 *   i incoming X-Trace-ID (logged when not trusted)              S service_name
 *   N route name   U route upstream (dropped unless config_parse_upstream accepts it)
 *   h NAME:VALUE   a header of access_log.fields and the request's value of it
 *   H NAME         a header of access_log.fields the request did not carry
 *   r NAME         an access_log.redact entry
 *   # knobs        raw bytes: the rest of the request, see read_knobs (missing bytes are zero)
 * Method, User-Agent, header values and the client address are C strings in struct request, so
 * they end at a NUL; the target and the X-Trace-ID are length-delimited and may hold any byte.
 * The config (service name, trust_incoming, access_log.fields and .redact, one route) is written
 * as JSON and loaded with config_load_text, so the line is only ever built for a config the
 * loader accepts; an input it refuses is skipped. The request is not restricted. Each request
 * value is copied into an exactly-sized heap block (plus the NUL a C string has).
 *
 * Asserted:
 *   - logline_format succeeds, and gives the same bytes twice (the buffer is reused);
 *   - the line is exactly one line: it ends with '\n' and holds no other byte below 0x20, no DEL,
 *     no raw C1 control (U+0080..U+009F), and is valid UTF-8;
 *   - it is one JSON object that jansson accepts with JSON_REJECT_DUPLICATES;
 *   - every always-present field of docs/access-log.md is there, in the documented order, with the
 *     documented type and value: ids in lowercase hex of the request's bytes, null where the docs
 *     say null, the numbers as given, the time as RFC 3339 UTC with milliseconds of the start;
 *   - each client-controlled string decodes to exactly the input bytes when they are UTF-8; when
 *     not, to the input with each offending byte replaced by U+FFFD, and "<name>_raw_b64" right
 *     after it decodes to the exact bytes (the UTF-8 rule is a reference written here);
 *   - redaction: a query parameter named in access_log.redact (ASCII case-insensitively) has the
 *     value "[REDACTED]", so does a logged header named there; nothing else changes;
 *   - the optional members appear exactly when they apply, and there are no others.
 */

#include <errno.h>
#include <jansson.h>
#include <strings.h>
#include <time.h>

#include "config/config.h"
#include "observe/logline.h"
#include "observe/request_summary.h"
#include "common/strbuf.h"

#include "../logline-request.h"
#include "fuzz.h"

#define MAX_FIELDS CONFIG_MAX_LOGGED_HEADERS
#define MAX_REDACT 8
#define REDACTED   "[REDACTED]"
#define KNOBS_SIZE 128

enum value_kind {
    V_METHOD,
    V_TARGET,
    V_USER_AGENT,
    V_CLIENT,
    V_X_TRACE_ID,
    V_INCOMING_X,
    V_SERVICE,
    V_ROUTE_NAME,
    V_UPSTREAM,
    V_COUNT
};

struct value {
    const uint8_t *pieces[8]; /* the line and its '+' continuations */
    size_t lens[8];
    size_t count;
};

struct input {
    struct value values[V_COUNT];
    struct value fields[MAX_FIELDS]; /* "NAME:VALUE" or "NAME" */
    bool field_present[MAX_FIELDS];
    size_t fields_count;
    struct value redact[MAX_REDACT];
    size_t redact_count;
    uint8_t knobs[KNOBS_SIZE];
};

static const char *const outcomes[] = {"ok",
                                       "no_route",
                                       "upstream_connect_failed",
                                       "upstream_timeout",
                                       "upstream_reset",
                                       "client_aborted",
                                       "bad_request",
                                       "too_large"};

/* The members docs/access-log.md requires ("Always present"), in its order. */
static const char *const always[] = {"time",
                                     "service",
                                     "trace_id",
                                     "span_id",
                                     "parent_span_id",
                                     "trace_flags",
                                     "x_trace_id",
                                     "method",
                                     "path",
                                     "query",
                                     "status",
                                     "duration_ms",
                                     "route",
                                     "upstream",
                                     "upstream_status",
                                     "upstream_duration_ms",
                                     "upstream_connect_ms",
                                     "upstream_ttfb_ms",
                                     "bytes_received",
                                     "bytes_sent",
                                     "client_addr",
                                     "user_agent",
                                     "outcome"};

/* --- input ------------------------------------------------------------------------------- */

static void split_input(const uint8_t *data, size_t size, struct input *in)
{
    struct value *last = NULL;
    size_t offset = 0;

    while (offset < size) {
        const uint8_t *line = data + offset;
        const uint8_t *newline = memchr(line, '\n', size - offset);
        size_t len = newline ? (size_t)(newline - line) : size - offset;
        struct value *v = NULL;

        offset += len + 1;
        if (len == 0)
            continue;
        switch (line[0]) {
        case '+':
            if (last && last->count < 8) {
                last->pieces[last->count] = line + 1;
                last->lens[last->count++] = len - 1;
            }
            continue;
        case '#':
            memcpy(in->knobs, line + 1, len - 1 < KNOBS_SIZE ? len - 1 : KNOBS_SIZE);
            last = NULL;
            continue;
        case 'm':
            v = &in->values[V_METHOD];
            break;
        case 't':
            v = &in->values[V_TARGET];
            break;
        case 'u':
            v = &in->values[V_USER_AGENT];
            break;
        case 'a':
            v = &in->values[V_CLIENT];
            break;
        case 'x':
            v = &in->values[V_X_TRACE_ID];
            break;
        case 'i':
            v = &in->values[V_INCOMING_X];
            break;
        case 'S':
            v = &in->values[V_SERVICE];
            break;
        case 'N':
            v = &in->values[V_ROUTE_NAME];
            break;
        case 'U':
            v = &in->values[V_UPSTREAM];
            break;
        case 'h':
        case 'H':
            if (in->fields_count < MAX_FIELDS) {
                in->field_present[in->fields_count] = line[0] == 'h';
                v = &in->fields[in->fields_count++];
            }
            break;
        case 'r':
            if (in->redact_count < MAX_REDACT)
                v = &in->redact[in->redact_count++];
            break;
        default:
            break;
        }
        last = v;
        if (v) {
            v->pieces[0] = line + 1;
            v->lens[0] = len - 1;
            v->count = 1;
        }
    }
}

/* A value's bytes, joined, in an exactly-sized block plus a NUL (not counted in *ret_len). */
static char *value_join(const struct value *v, size_t *ret_len)
{
    size_t len = 0;
    char *out;

    for (size_t i = 0; i < v->count; i++)
        len += v->lens[i] + (i > 0);
    out = malloc(len + 1);
    FUZZ_CHECK(out);
    len = 0;
    for (size_t i = 0; i < v->count; i++) {
        if (i > 0)
            out[len++] = '\n';
        memcpy(out + len, v->pieces[i], v->lens[i]);
        len += v->lens[i];
    }
    out[len] = '\0';
    *ret_len = len;
    return out;
}

/* As a C string: cut at the first NUL, as the request's copy would be. */
static char *value_cstring(const struct value *v)
{
    size_t len;
    char *s = value_join(v, &len);
    char *copy = fuzz_memdup(s, strlen(s) + 1);

    free(s);
    return copy;
}

static uint64_t knob_u64(const uint8_t *k, size_t at, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = v << 8 | k[at + i];
    return v;
}

/* --- references ------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0: RFC 3629, no overlong forms,
 * no surrogates, nothing above U+10FFFF. */
static size_t ref_utf8_length(const uint8_t *s, size_t n)
{
    static const struct {
        uint8_t lead_min, lead_max, second_min, second_max;
        size_t len;
    } rows[] = {
        {0x00, 0x7f, 0, 0, 1},       {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3},
        {0xe1, 0xec, 0x80, 0xbf, 3}, {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
        {0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
    };

    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        if (s[0] < rows[r].lead_min || s[0] > rows[r].lead_max)
            continue;
        if (rows[r].len > n)
            return 0;
        if (rows[r].len > 1 && (s[1] < rows[r].second_min || s[1] > rows[r].second_max))
            return 0;
        for (size_t i = 2; i < rows[r].len; i++)
            if ((s[i] & 0xc0) != 0x80)
                return 0;
        return rows[r].len;
    }
    return 0;
}

/* The value as the log must show it: each byte outside valid UTF-8 replaced by U+FFFD. Sets
 * *ret_lossy when there was one. */
static char *ref_replace_invalid(const char *s, size_t n, size_t *ret_len, bool *ret_lossy)
{
    char *out = malloc(3 * n + 1);
    size_t len = 0;

    FUZZ_CHECK(out);
    *ret_lossy = false;
    for (size_t i = 0; i < n;) {
        size_t k = ref_utf8_length((const uint8_t *)s + i, n - i);
        if (k == 0) {
            memcpy(out + len, "\xef\xbf\xbd", 3);
            len += 3;
            *ret_lossy = true;
            i++;
        } else {
            memcpy(out + len, s + i, k);
            len += k;
            i += k;
        }
    }
    *ret_len = len;
    return out;
}

static int base64_digit(char c)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(digits, c) : NULL;

    return p ? (int)(p - digits) : -1;
}

/* Strict standard base64 with padding; the decoded bytes in out (capacity 3 * len / 4). */
static bool base64_decode(const char *text, size_t len, uint8_t *out, size_t *ret_len)
{
    size_t n = 0;

    if (len % 4 != 0)
        return false;
    for (size_t i = 0; i < len; i += 4) {
        int d[4];
        size_t pad = 0;
        for (size_t k = 0; k < 4; k++) {
            d[k] = base64_digit(text[i + k]);
            if (text[i + k] == '=' && i + 4 == len && k >= 2) {
                d[k] = 0;
                pad++;
            } else if (d[k] < 0 || pad > 0) {
                return false;
            }
        }
        unsigned v =
            (unsigned)d[0] << 18 | (unsigned)d[1] << 12 | (unsigned)d[2] << 6 | (unsigned)d[3];
        out[n++] = (uint8_t)(v >> 16);
        if (pad < 2)
            out[n++] = (uint8_t)(v >> 8);
        if (pad < 1)
            out[n++] = (uint8_t)v;
    }
    *ret_len = n;
    return true;
}

static bool ref_is_redacted(const struct config *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->access_log_redact_count; i++) {
        const char *r = c->access_log_redact[i];
        bool same = strlen(r) == len;
        for (size_t k = 0; same && k < len; k++)
            same = ((r[k] >= 'A' && r[k] <= 'Z') ? r[k] + 32 : r[k]) ==
                   ((name[k] >= 'A' && name[k] <= 'Z') ? name[k] + 32 : name[k]);
        if (same)
            return true;
    }
    return false;
}

/* The query as logged: each '&'-separated parameter NAME=VALUE whose NAME is redacted becomes
 * NAME=[REDACTED]; parameters without '=' and all separators stay as they are. */
static char *ref_redact_query(const struct config *c, const char *q, size_t n, size_t *ret_len)
{
    char *out = malloc(n + n / 2 * sizeof(REDACTED) + sizeof(REDACTED) + 1);
    size_t len = 0, start = 0;

    FUZZ_CHECK(out);
    for (size_t i = 0; i <= n; i++) {
        if (i < n && q[i] != '&')
            continue;
        const char *part = q + start;
        size_t part_len = i - start;
        const char *eq = memchr(part, '=', part_len);
        if (eq && ref_is_redacted(c, part, (size_t)(eq - part))) {
            memcpy(out + len, part, (size_t)(eq - part) + 1);
            len += (size_t)(eq - part) + 1;
            memcpy(out + len, REDACTED, strlen(REDACTED));
            len += strlen(REDACTED);
        } else {
            memcpy(out + len, part, part_len);
            len += part_len;
        }
        if (i < n)
            out[len++] = '&';
        start = i + 1;
    }
    *ret_len = len;
    return out;
}

/* --- checks -------------------------------------------------------------------------------- */

struct checked {
    const char *names[96];
    size_t count;
};

static json_t *member(json_t *obj, const char *name, struct checked *seen)
{
    json_t *v = json_object_get(obj, name);

    FUZZ_CHECK(v);
    if (seen) {
        FUZZ_CHECK(seen->count < 96);
        seen->names[seen->count++] = name;
    }
    return v;
}

/* A client-controlled string member: the value (or null), and the _raw_b64 sibling rule.
 * Returns true if there is a sibling. */
static bool check_string(json_t *obj, const char *name, const char *value, size_t len,
                         struct checked *seen)
{
    json_t *v = member(obj, name, seen);
    char *raw_name = malloc(strlen(name) + sizeof("_raw_b64"));
    json_t *raw;
    size_t expected_len;
    bool lossy;
    char *expected;

    FUZZ_CHECK(raw_name);
    strcpy(raw_name, name);
    strcat(raw_name, "_raw_b64");
    raw = json_object_get(obj, raw_name);
    free(raw_name);
    if (!value) {
        FUZZ_CHECK(json_is_null(v));
        FUZZ_CHECK(!raw);
        return false;
    }
    FUZZ_CHECK(json_is_string(v));
    expected = ref_replace_invalid(value, len, &expected_len, &lossy);
    FUZZ_CHECK(json_string_length(v) == expected_len);
    FUZZ_CHECK(memcmp(json_string_value(v), expected, expected_len) == 0);
    free(expected);
    if (!lossy) {
        FUZZ_CHECK(!raw);
        return false;
    }
    FUZZ_CHECK(json_is_string(raw));
    if (seen) {
        FUZZ_CHECK(seen->count < 96);
        seen->names[seen->count++] = "(raw)";
    }
    uint8_t *decoded = malloc(json_string_length(raw) * 3 / 4 + 1);
    size_t decoded_len;
    FUZZ_CHECK(decoded);
    FUZZ_CHECK(
        base64_decode(json_string_value(raw), json_string_length(raw), decoded, &decoded_len));
    FUZZ_CHECK(decoded_len == len && memcmp(decoded, value, len) == 0);
    free(decoded);
    return true;
}

static void check_hex(json_t *obj, const char *name, const uint8_t *bytes, size_t n,
                      struct checked *seen)
{
    json_t *v = member(obj, name, seen);
    char expected[2 * 16 + 1];

    FUZZ_CHECK(n <= 16);
    for (size_t i = 0; i < n; i++)
        snprintf(expected + 2 * i, 3, "%02x", bytes[i]);
    FUZZ_CHECK(json_is_string(v) && json_string_length(v) == 2 * n &&
               memcmp(json_string_value(v), expected, 2 * n) == 0);
}

static void check_integer_or_null(json_t *obj, const char *name, bool present, uint64_t value,
                                  struct checked *seen)
{
    json_t *v = member(obj, name, seen);

    if (!present) {
        FUZZ_CHECK(json_is_null(v));
        return;
    }
    FUZZ_CHECK(json_is_integer(v) && (uint64_t)json_integer_value(v) == value);
}

static void check_ms(json_t *obj, const char *name, bool present, double ms, struct checked *seen)
{
    json_t *v = member(obj, name, seen);

    if (!present) {
        FUZZ_CHECK(json_is_null(v));
        return;
    }
    FUZZ_CHECK(json_is_number(v));
    double got = json_number_value(v);
    double expected = ms > 0 ? ms : 0;
    FUZZ_CHECK(got >= 0 && got - expected < 0.0006 && expected - got < 0.0006);
}

static void check_text(const char *line, size_t len)
{
    const uint8_t *p = (const uint8_t *)line;

    FUZZ_CHECK(len >= 3 && line[0] == '{' && line[len - 2] == '}' && line[len - 1] == '\n');
    for (size_t i = 0; i < len - 1;) {
        FUZZ_CHECK(p[i] >= 0x20 && p[i] != 0x7f);
        size_t k = ref_utf8_length(p + i, len - 1 - i);
        FUZZ_CHECK(k > 0);
        FUZZ_CHECK(!(p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)); /* raw C1 */
        i += k;
    }
}

/* The members in line order must be a subsequence-respecting order of `always`. */
static void check_order(json_t *root)
{
    size_t next = 0;
    const char *key;
    json_t *value;

    json_object_foreach(root, key, value)
    {
        for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++) {
            if (strcmp(key, always[i]) != 0)
                continue;
            FUZZ_CHECK(i >= next);
            next = i + 1;
        }
    }
    FUZZ_CHECK(next == sizeof(always) / sizeof(always[0]));
}

/* --- the target ---------------------------------------------------------------------------- */

struct built {
    struct config *config;
    char *header_values[MAX_FIELDS];
    struct logline_request req;
    char *owned[64];
    size_t owned_count;
    unsigned status;
    const char *outcome;
    struct timespec now;
    bool logged_headers_given;
};

static char *own(struct built *b, char *p)
{
    FUZZ_CHECK(b->owned_count < 64);
    b->owned[b->owned_count++] = p;
    return p;
}

/* The config, through the loader itself (config_load_text), so that only what it accepts is
 * logged: a service name, access_log.fields and .redact, and one route (name, upstream). */
static bool load_config(const struct input *in, struct built *b)
{
    const struct config_overrides none = {0};
    json_t *fields = json_array(), *redact = json_array();
    char error[CONFIG_ERROR_MAX];
    bool ok = fields && redact;
    size_t len;
    char *text;

    for (size_t i = 0; ok && i < in->fields_count; i++) {
        text = value_join(&in->fields[i], &len);
        char *colon = in->field_present[i] ? memchr(text, ':', len) : NULL;
        ok = !in->field_present[i] || colon;
        if (ok) {
            size_t name_len = colon ? (size_t)(colon - text) : len;
            ok = json_array_append_new(fields, json_stringn(text, name_len)) == 0;
            b->header_values[i] = colon ? fuzz_memdup(colon + 1, strlen(colon + 1) + 1) : NULL;
        }
        free(text);
    }
    for (size_t i = 0; ok && i < in->redact_count; i++) {
        text = value_join(&in->redact[i], &len);
        ok = json_array_append_new(redact, json_stringn(text, len)) == 0;
        free(text);
    }
    if (!ok) {
        json_decref(fields);
        json_decref(redact);
        return false;
    }
    char *service = value_join(&in->values[V_SERVICE], &len);
    size_t service_len = len;
    char *name = value_join(&in->values[V_ROUTE_NAME], &len);
    size_t name_len = len;
    char *upstream = value_join(&in->values[V_UPSTREAM], &len);
    json_t *root =
        json_pack("{s:s%, s:{s:b}, s:{s:o, s:o}, s:[{s:s%, s:s}]}", "service_name", service,
                  service_len, "trace", "trust_incoming", (in->knobs[0] & 0x20) != 0, "access_log",
                  "fields", fields, "redact", redact, "routes", "name", name, name_len, "upstream",
                  upstream[0] ? upstream : "http://u");
    free(service);
    free(name);
    free(upstream);
    text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!text)
        return false;
    int rc = config_load_text("<fuzz>", text, strlen(text), &none, &none, NULL, &b->config, error);
    free(text);
    return rc == 0;
}

static bool build(const struct input *in, struct built *b)
{
    const uint8_t *k = in->knobs;
    struct logline_request *req = &b->req;
    struct tracehop_hop *hop = &req->hop;
    size_t len;

    if (!load_config(in, b))
        return false;
    req->config = b->config;
    b->logged_headers_given = !(k[0] & 0x80);
    if (b->logged_headers_given)
        req->logged_headers = (const char **)b->header_values;
    if (k[0] & 0x02)
        req->route = &b->config->routes[0];

    /* The request. */
    if (in->values[V_METHOD].count)
        req->method = own(b, value_cstring(&in->values[V_METHOD]));
    if (in->values[V_TARGET].count) {
        char *t = own(b, value_join(&in->values[V_TARGET], &req->target_len));
        const char *q = memchr(t, '?', req->target_len);
        req->target = own(b, fuzz_memdup(t, req->target_len));
        req->path_len = q ? (size_t)(q - t) : req->target_len;
    }
    if (in->values[V_USER_AGENT].count)
        req->user_agent = own(b, value_cstring(&in->values[V_USER_AGENT]));
    {
        char *addr = own(b, value_cstring(&in->values[V_CLIENT]));
        snprintf(req->client_addr, sizeof(req->client_addr), "%s", addr);
    }
    {
        char *x = own(b, value_join(&in->values[V_X_TRACE_ID], &len));
        if (len > TRACEHOP_X_TRACE_ID_MAX)
            return false;
        memcpy(hop->x_trace_id, x, len);
        hop->x_trace_id[len] = '\0';
        hop->x_trace_id_len = len;
        char *incoming = own(b, value_cstring(&in->values[V_INCOMING_X]));
        snprintf(hop->incoming_x_trace_id, sizeof(hop->incoming_x_trace_id), "%s", incoming);
    }
    hop->has_parent = k[0] & 0x01;
    req->headers_done = k[0] & 0x04;
    req->upstream_started = k[0] & 0x08;
    hop->incoming_valid = k[0] & 0x10;
    hop->x_trace_id_status = (enum tracehop_x_trace_id_status)(k[1] % 4);
    /* every result, and one past them (a result added later) */
    hop->tracestate_status = (enum tracehop_tracestate_status)((k[1] >> 2) % 7);
    hop->traceparent_error = (enum tracehop_traceparent_error)(k[2] % (TRACEHOP_TP_DUPLICATE + 1));
    b->outcome = outcomes[k[3] % 8];
    b->status = k[0] & 0x40 ? 0 : (unsigned)knob_u64(k, 4, 2);
    /* Byte counts as a client can make them: below 2^63 (jansson's integers are signed). */
    req->bytes_received = knob_u64(k, 6, 8) >> 1;
    req->bytes_sent = knob_u64(k, 14, 8) >> 1;
    req->upstream_status = (long)knob_u64(k, 22, 2);
    req->upstream_connect_ms = (double)knob_u64(k, 24, 4) / 1000.0;
    req->upstream_ttfb_ms = (double)knob_u64(k, 28, 4) / 1000.0;
    if (k[1] & 0x40) /* never connected: unknown */
        req->upstream_connect_ms = -1;
    if (k[1] & 0x80) /* no response byte */
        req->upstream_ttfb_ms = -1;
    /* Times: a start, the end `now` up to ~71 minutes later (or earlier: a clock oddity). */
    req->start_mono =
        (struct timespec){.tv_sec = 1000000, .tv_nsec = (long)(knob_u64(k, 32, 4) % 1000000000)};
    b->now =
        (struct timespec){.tv_sec = 1000000 + (time_t)(knob_u64(k, 36, 4) % 4294) - (k[40] & 1),
                          .tv_nsec = (long)(knob_u64(k, 41, 4) % 1000000000)};
    req->upstream_start_mono = req->start_mono;
    req->upstream_end_mono = (struct timespec){.tv_sec = 1000000 + (time_t)(k[45] % 60),
                                               .tv_nsec = (long)(knob_u64(k, 46, 4) % 1000000000)};
    req->start_real = (struct timespec){.tv_sec = (time_t)knob_u64(k, 50, 4),
                                        .tv_nsec = (long)(knob_u64(k, 54, 4) % 1000000000)};
    memcpy(hop->trace_id, k + 58, TRACEHOP_TRACE_ID_SIZE);
    memcpy(hop->span_id, k + 74, TRACEHOP_SPAN_ID_SIZE);
    memcpy(hop->parent_span_id, k + 82, TRACEHOP_SPAN_ID_SIZE);
    hop->flags = k[90];
    memcpy(hop->incoming.trace_id, k + 91, TRACEHOP_TRACE_ID_SIZE);
    memcpy(hop->incoming.parent_id, k + 107, TRACEHOP_SPAN_ID_SIZE);
    return true;
}

static double elapsed_ms(const struct timespec *from, const struct timespec *to)
{
    return (double)(to->tv_sec - from->tv_sec) * 1000.0 +
           (double)(to->tv_nsec - from->tv_nsec) / 1e6;
}

static void check_line(const struct built *b, json_t *root)
{
    const struct logline_request *req = &b->req;
    const struct config *c = b->config;
    const struct tracehop_hop *hop = &req->hop;
    struct checked seen = {0};
    char time_text[32];
    struct tm tm;

    FUZZ_CHECK(json_is_object(root));
    check_order(root);

    gmtime_r(&req->start_real.tv_sec, &tm);
    size_t n = strftime(time_text, sizeof(time_text), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(time_text + n, sizeof(time_text) - n, ".%03ldZ", req->start_real.tv_nsec / 1000000);
    json_t *v = member(root, "time", &seen);
    FUZZ_CHECK(json_is_string(v) && strcmp(json_string_value(v), time_text) == 0);

    check_string(root, "service", c->service_name, strlen(c->service_name), &seen);
    check_hex(root, "trace_id", hop->trace_id, TRACEHOP_TRACE_ID_SIZE, &seen);
    check_hex(root, "span_id", hop->span_id, TRACEHOP_SPAN_ID_SIZE, &seen);
    if (hop->has_parent)
        check_hex(root, "parent_span_id", hop->parent_span_id, TRACEHOP_SPAN_ID_SIZE, &seen);
    else
        check_string(root, "parent_span_id", NULL, 0, &seen);
    check_hex(root, "trace_flags", &hop->flags, 1, &seen);
    check_string(root, "x_trace_id", hop->x_trace_id, hop->x_trace_id_len, &seen);
    check_string(root, "method", req->method, req->method ? strlen(req->method) : 0, &seen);
    check_string(root, "path", req->target, req->path_len, &seen);
    if (req->target && req->path_len < req->target_len) {
        size_t q_len;
        char *q = ref_redact_query(c, req->target + req->path_len + 1,
                                   req->target_len - req->path_len - 1, &q_len);
        check_string(root, "query", q, q_len, &seen);
        free(q);
    } else {
        check_string(root, "query", NULL, 0, &seen);
    }
    check_integer_or_null(root, "status", b->status != 0, b->status, &seen);
    check_ms(root, "duration_ms", true, elapsed_ms(&req->start_mono, &b->now), &seen);
    check_string(root, "route", req->route ? req->route->name : NULL,
                 req->route ? strlen(req->route->name) : 0, &seen);
    check_string(root, "upstream", req->route ? req->route->upstream.text : NULL,
                 req->route ? strlen(req->route->upstream.text) : 0, &seen);
    check_integer_or_null(root, "upstream_status", req->headers_done,
                          (uint64_t)req->upstream_status, &seen);
    check_ms(root, "upstream_duration_ms", req->upstream_started,
             elapsed_ms(&req->upstream_start_mono, &req->upstream_end_mono), &seen);
    check_ms(root, "upstream_connect_ms", req->upstream_started && req->upstream_connect_ms >= 0,
             req->upstream_connect_ms, &seen);
    check_ms(root, "upstream_ttfb_ms", req->upstream_started && req->upstream_ttfb_ms >= 0,
             req->upstream_ttfb_ms, &seen);
    check_integer_or_null(root, "bytes_received", true, req->bytes_received, &seen);
    check_integer_or_null(root, "bytes_sent", true, req->bytes_sent, &seen);
    check_string(root, "client_addr", req->client_addr[0] ? req->client_addr : NULL,
                 strlen(req->client_addr), &seen);
    check_string(root, "user_agent", req->user_agent, req->user_agent ? strlen(req->user_agent) : 0,
                 &seen);
    v = member(root, "outcome", &seen);
    FUZZ_CHECK(json_is_string(v) && strcmp(json_string_value(v), b->outcome) == 0);

    if (c->access_log_fields_count > 0 && req->logged_headers) {
        json_t *headers = member(root, "request_headers", &seen);
        size_t members = 0;
        FUZZ_CHECK(json_is_object(headers));
        for (size_t i = 0; i < c->access_log_fields_count; i++) {
            const char *name = c->access_log_fields[i];
            const char *value = req->logged_headers[i];
            size_t name_len = strlen(name);
            char *lower = malloc(name_len + 1);
            FUZZ_CHECK(lower);
            for (size_t k = 0; k <= name_len; k++)
                lower[k] = (name[k] >= 'A' && name[k] <= 'Z') ? (char)(name[k] + 32) : name[k];
            if (value && ref_is_redacted(c, name, name_len))
                value = REDACTED;
            members += 1 + check_string(headers, lower, value, value ? strlen(value) : 0, NULL);
            free(lower);
        }
        FUZZ_CHECK(json_object_size(headers) == members);
    } else {
        FUZZ_CHECK(!json_object_get(root, "request_headers"));
    }

    bool rejected = hop->x_trace_id_status == TRACEHOP_XID_REJECTED;
    v = json_object_get(root, "x_trace_id_rejected");
    FUZZ_CHECK(rejected ? json_is_true(v) : !v);
    if (rejected)
        seen.names[seen.count++] = "x_trace_id_rejected";
    if (hop->traceparent_error != TRACEHOP_TP_OK) {
        const char *why = tracehop_traceparent_strerror(hop->traceparent_error);
        check_string(root, "traceparent_rejected", why, strlen(why), &seen);
    } else {
        FUZZ_CHECK(!json_object_get(root, "traceparent_rejected"));
    }
    static const char *const tracestate_names[] = {
        NULL, NULL, "truncated", "invalid", "dropped", "deduplicated", "changed"};
    const char *tracestate = tracestate_names[hop->tracestate_status];
    if (tracestate)
        check_string(root, "tracestate_status", tracestate, strlen(tracestate), &seen);
    else
        FUZZ_CHECK(!json_object_get(root, "tracestate_status"));
    if (hop->incoming_valid && !c->trust_incoming) {
        check_hex(root, "incoming_trace_id", hop->incoming.trace_id, TRACEHOP_TRACE_ID_SIZE, &seen);
        check_hex(root, "incoming_parent_span_id", hop->incoming.parent_id, TRACEHOP_SPAN_ID_SIZE,
                  &seen);
    } else {
        FUZZ_CHECK(!json_object_get(root, "incoming_trace_id"));
        FUZZ_CHECK(!json_object_get(root, "incoming_parent_span_id"));
    }
    if (hop->x_trace_id_status == TRACEHOP_XID_NOT_TRUSTED)
        check_string(root, "incoming_x_trace_id", hop->incoming_x_trace_id,
                     strlen(hop->incoming_x_trace_id), &seen);
    else
        FUZZ_CHECK(!json_object_get(root, "incoming_x_trace_id"));

    /* Nothing else: every member was accounted for (a _raw_b64 sibling counts as "(raw)"). */
    FUZZ_CHECK(json_object_size(root) == seen.count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input *in = calloc(1, sizeof(*in));
    struct built *b = calloc(1, sizeof(*b));
    struct strbuf line = {0};
    char *first;
    size_t first_len;
    json_error_t jerr;
    json_t *root;

    FUZZ_CHECK(in && b);
    split_input(data, size, in);
    if (!build(in, b))
        goto out;

    struct request_summary summary;
    logline_request_summary(&b->req, b->status, b->outcome, &b->now, &summary);
    FUZZ_CHECK(logline_format(&line, &summary) == 0);
    first_len = line.len;
    first = fuzz_memdup(line.data, line.len);
    FUZZ_CHECK(logline_format(&line, &summary) == 0);
    FUZZ_CHECK(line.len == first_len && memcmp(line.data, first, first_len) == 0);
    free(first);

    check_text(line.data, line.len);
    root = json_loadb(line.data, line.len - 1, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        fprintf(stderr, "not JSON (%s at %d): %s", jerr.text, jerr.position, line.data);
        FUZZ_CHECK(!"the line is JSON");
    }
    check_line(b, root);
    json_decref(root);

out:
    strbuf_free(&line);
    config_free(b->config);
    for (size_t i = 0; i < MAX_FIELDS; i++)
        free(b->header_values[i]);
    for (size_t i = 0; i < b->owned_count; i++)
        free(b->owned[i]);
    free(b);
    free(in);
    return 0;
}
