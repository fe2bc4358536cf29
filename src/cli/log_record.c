/* SPDX-License-Identifier: MIT */
/*
 * From an access-log line to a struct log_record (contracts in log_record.h).
 *
 * The scanner (log_json.c) validates the line and locates the members named in `fields`; only
 * those are decoded, all into one scratch block that is reused from line to line, so parsing a
 * line allocates nothing once the scratch has grown to the longest line. A record that is kept
 * (it matched) is cloned into a single allocation: the struct, the raw line and its strings,
 * which makes freeing it one free() and keeps the reorder window's memory easy to count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/log_record.h"
#include "cli/log_json.h"
#include "cli/log_time.h"

enum field {
    F_TIME,
    F_SERVICE,
    F_TRACE_ID,
    F_SPAN_ID,
    F_PARENT_SPAN_ID,
    F_X_TRACE_ID,
    F_METHOD,
    F_PATH,
    F_QUERY,
    F_STATUS,
    F_DURATION_MS,
    F_UPSTREAM_DURATION_MS,
    F_OUTCOME,
    F_INCOMING_TRACE_ID,
    F_INCOMING_PARENT_SPAN_ID,
    F_INCOMING_X_TRACE_ID,
    F_LEVEL,   /* diagnostics */
    F_MESSAGE, /* diagnostics */
    F_COUNT,
};

struct field_name {
    const char *name;
    size_t len;
};

#define FIELD(id, text) [id] = {text, sizeof(text) - 1}
static const struct field_name field_names[F_COUNT] = {
    FIELD(F_TIME, "time"),
    FIELD(F_SERVICE, "service"),
    FIELD(F_TRACE_ID, "trace_id"),
    FIELD(F_SPAN_ID, "span_id"),
    FIELD(F_PARENT_SPAN_ID, "parent_span_id"),
    FIELD(F_X_TRACE_ID, "x_trace_id"),
    FIELD(F_METHOD, "method"),
    FIELD(F_PATH, "path"),
    FIELD(F_QUERY, "query"),
    FIELD(F_STATUS, "status"),
    FIELD(F_DURATION_MS, "duration_ms"),
    FIELD(F_UPSTREAM_DURATION_MS, "upstream_duration_ms"),
    FIELD(F_OUTCOME, "outcome"),
    FIELD(F_INCOMING_TRACE_ID, "incoming_trace_id"),
    FIELD(F_INCOMING_PARENT_SPAN_ID, "incoming_parent_span_id"),
    FIELD(F_INCOMING_X_TRACE_ID, "incoming_x_trace_id"),
    FIELD(F_LEVEL, "level"),
    FIELD(F_MESSAGE, "message"),
};
#undef FIELD

/*
 * The fields by key length, as index + 1 (0: none): a line has two dozen keys, so this runs
 * two dozen times per line and should cost one memcmp. Keep it in step with field_names.
 */
#define FIELD_KEY_MAX   23
#define FIELDS_PER_SLOT 4
static const uint8_t fields_by_length[FIELD_KEY_MAX + 1][FIELDS_PER_SLOT] = {
    [4] = {F_TIME + 1, F_PATH + 1},
    [5] = {F_QUERY + 1, F_LEVEL + 1},
    [6] = {F_METHOD + 1, F_STATUS + 1},
    [7] = {F_SERVICE + 1, F_SPAN_ID + 1, F_OUTCOME + 1, F_MESSAGE + 1},
    [8] = {F_TRACE_ID + 1},
    [10] = {F_X_TRACE_ID + 1},
    [11] = {F_DURATION_MS + 1},
    [14] = {F_PARENT_SPAN_ID + 1},
    [17] = {F_INCOMING_TRACE_ID + 1},
    [19] = {F_INCOMING_X_TRACE_ID + 1},
    [20] = {F_UPSTREAM_DURATION_MS + 1},
    [23] = {F_INCOMING_PARENT_SPAN_ID + 1},
};

static int field_index(const char *key, size_t len)
{
    if (len > FIELD_KEY_MAX)
        return -1;
    for (size_t k = 0; k < FIELDS_PER_SLOT && fields_by_length[len][k]; k++) {
        int i = fields_by_length[len][k] - 1;
        if (memcmp(field_names[i].name, key, len) == 0)
            return i;
    }
    return -1;
}

/*
 * Hex digit values plus one (0: not a hex digit), any case. The reader decodes three ids per
 * line of logs that run to gigabytes, so this is a table rather than tracectx's strict
 * lowercase parser (which is for the wire, where uppercase must be refused).
 */
static const uint8_t hex_value_plus_one[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* Decode 2n hex digits at text (length already checked) into n bytes. */
static bool hex_bytes(const char *text, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned hi = hex_value_plus_one[(unsigned char)text[2 * i]];
        unsigned lo = hex_value_plus_one[(unsigned char)text[2 * i + 1]];
        if (!hi || !lo)
            return false;
        out[i] = (uint8_t)((hi - 1) << 4 | (lo - 1));
    }
    return true;
}

bool log_record_hex_decode(const char *text, size_t len, uint8_t *out, size_t n)
{
    return len == 2 * n && hex_bytes(text, out, n);
}

bool log_record_uuid_decode(const char *text, size_t len, uint8_t out[TRACEHOP_TRACE_ID_SIZE])
{
    return len == TRACEHOP_UUID_LEN && text[8] == '-' && text[13] == '-' && text[18] == '-' &&
           text[23] == '-' && hex_bytes(text, out, 4) && hex_bytes(text + 9, out + 4, 2) &&
           hex_bytes(text + 14, out + 6, 2) && hex_bytes(text + 19, out + 8, 2) &&
           hex_bytes(text + 24, out + 10, 6);
}

static bool grow_scratch(struct log_record_scratch *s, size_t need)
{
    if (need <= s->cap)
        return true;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < need)
        cap *= 2;
    char *p = realloc(s->data, cap);
    if (!p)
        return false;
    s->data = p;
    s->cap = cap;
    return true;
}

/* Decode a string member into the scratch at *used; NULL for any other type. */
static const char *take_string(const struct log_json_value *v, char *scratch, size_t *used)
{
    if (v->type != LOG_JSON_STRING)
        return NULL;
    char *out = scratch + *used;
    *used += log_json_decode_string(v, out) + 1;
    return out;
}

/* A duration in ms; a negative or absurd one (beyond 10^12 ms, 30 years) counts as absent. */
static double take_ms(const struct log_json_value *v)
{
    double ms;
    if (!log_json_number(v, &ms) || !(ms >= 0 && ms <= 1e12))
        return NAN;
    return ms;
}

static bool take_span_id(const char *text, uint64_t *ret)
{
    uint8_t bytes[TRACEHOP_SPAN_ID_SIZE];
    uint64_t v = 0;

    if (!text || !log_record_hex_decode(text, strlen(text), bytes, sizeof(bytes)))
        return false;
    for (size_t i = 0; i < sizeof(bytes); i++)
        v = v << 8 | bytes[i];
    *ret = v;
    return true;
}

/*
 * How many bytes of container-tool prefixes line[0..len) starts with: up to LOG_RECORD_PREFIXES
 * tokens, each an RFC 3339 time or "[...]", followed by one space.
 */
static size_t prefix_length(const char *line, size_t len)
{
    size_t at = 0;

    for (unsigned k = 0; k < LOG_RECORD_PREFIXES && at < len && line[at] != '{'; k++) {
        const char *space = memchr(line + at, ' ', len - at);
        int64_t ms;
        if (!space || space == line + at)
            break;
        size_t token = (size_t)(space - (line + at));
        bool bracketed = token >= 2 && line[at] == '[' && line[at + token - 1] == ']';
        if (!bracketed && !log_time_parse_rfc3339(line + at, token, &ms))
            break;
        at += token + 1;
    }
    return at;
}

/* The members every access-log line has and no diagnostic line has (see log_record.h). */
static bool is_access_log(const struct log_json_value *v)
{
    return v[F_TIME].type == LOG_JSON_STRING && v[F_TRACE_ID].type == LOG_JSON_STRING &&
           v[F_SPAN_ID].type == LOG_JSON_STRING && v[F_SERVICE].type != LOG_JSON_ABSENT &&
           v[F_METHOD].type != LOG_JSON_ABSENT && v[F_STATUS].type != LOG_JSON_ABSENT &&
           v[F_OUTCOME].type != LOG_JSON_ABSENT;
}

/* Why an object is not a record: a diagnostic of the daemon's, or other JSON. */
static int not_a_record(const struct log_json_value *v)
{
    return v[F_LEVEL].type == LOG_JSON_STRING && v[F_MESSAGE].type == LOG_JSON_STRING
               ? LOG_RECORD_DIAGNOSTIC
               : LOG_RECORD_NOT_ACCESS_LOG;
}

int log_record_parse(const char *line, size_t len, struct log_record_scratch *scratch,
                     struct log_record *ret)
{
    struct log_json_value v[F_COUNT] = {0};
    struct log_record r = {.status = -1};
    size_t used = 0, prefix = prefix_length(line, len);
    double number;

    line += prefix;
    len -= prefix;
    r.line = line;
    r.line_len = len;
    if (log_json_scan_object(line, len, field_index, v, F_COUNT) < 0)
        return LOG_RECORD_NOT_JSON;
    if (!is_access_log(v))
        return not_a_record(v);
    /* Decoded strings are never longer than their JSON text, which lies within the line. */
    if (!grow_scratch(scratch, len + F_COUNT + 1))
        return LOG_RECORD_NO_MEMORY;

    const char *time_text = take_string(&v[F_TIME], scratch->data, &used);
    if (!log_time_parse_rfc3339(time_text, strlen(time_text), &r.time_ms))
        return not_a_record(v);
    used = 0; /* the time text is not kept */

    r.trace_id_text = take_string(&v[F_TRACE_ID], scratch->data, &used);
    r.span_id_text = take_string(&v[F_SPAN_ID], scratch->data, &used);
    r.parent_span_id_text = take_string(&v[F_PARENT_SPAN_ID], scratch->data, &used);
    r.service = take_string(&v[F_SERVICE], scratch->data, &used);
    r.x_trace_id = take_string(&v[F_X_TRACE_ID], scratch->data, &used);
    r.method = take_string(&v[F_METHOD], scratch->data, &used);
    r.path = take_string(&v[F_PATH], scratch->data, &used);
    r.query = take_string(&v[F_QUERY], scratch->data, &used);
    r.outcome = take_string(&v[F_OUTCOME], scratch->data, &used);
    r.incoming_trace_id_text = take_string(&v[F_INCOMING_TRACE_ID], scratch->data, &used);
    r.incoming_x_trace_id = take_string(&v[F_INCOMING_X_TRACE_ID], scratch->data, &used);
    const char *incoming_parent = take_string(&v[F_INCOMING_PARENT_SPAN_ID], scratch->data, &used);
    r.strings = scratch->data;
    r.strings_len = used;

    r.has_trace_id = log_record_hex_decode(r.trace_id_text, strlen(r.trace_id_text), r.trace_id,
                                           TRACEHOP_TRACE_ID_SIZE);
    r.has_span_id = take_span_id(r.span_id_text, &r.span_id);
    r.has_parent = take_span_id(r.parent_span_id_text, &r.parent_span_id);
    r.has_incoming_trace_id =
        r.incoming_trace_id_text &&
        log_record_hex_decode(r.incoming_trace_id_text, strlen(r.incoming_trace_id_text),
                              r.incoming_trace_id, TRACEHOP_TRACE_ID_SIZE);
    r.has_incoming_parent = take_span_id(incoming_parent, &r.incoming_parent_span_id);
    if (log_json_number(&v[F_STATUS], &number) && number >= 0 && number <= 99999 &&
        number == floor(number))
        r.status = (int)number;
    r.duration_ms = take_ms(&v[F_DURATION_MS]);
    r.upstream_duration_ms = take_ms(&v[F_UPSTREAM_DURATION_MS]);
    *ret = r;
    return 0;
}

void log_record_scratch_free(struct log_record_scratch *scratch)
{
    free(scratch->data);
    *scratch = (struct log_record_scratch){0};
}

static const char *rebase(const char *p, const char *from, char *to)
{
    return p ? to + (p - from) : NULL;
}

struct log_record *log_record_clone(const struct log_record *r)
{
    struct log_record *c = malloc(sizeof(*c) + r->line_len + 1 + r->strings_len);
    if (!c)
        return NULL;
    char *line = (char *)(c + 1);
    char *strings = line + r->line_len + 1;

    *c = *r;
    if (r->line_len)
        memcpy(line, r->line, r->line_len);
    line[r->line_len] = '\0';
    if (r->strings_len)
        memcpy(strings, r->strings, r->strings_len);
    c->line = line;
    c->strings = strings;
    c->trace_id_text = rebase(r->trace_id_text, r->strings, strings);
    c->span_id_text = rebase(r->span_id_text, r->strings, strings);
    c->parent_span_id_text = rebase(r->parent_span_id_text, r->strings, strings);
    c->service = rebase(r->service, r->strings, strings);
    c->x_trace_id = rebase(r->x_trace_id, r->strings, strings);
    c->method = rebase(r->method, r->strings, strings);
    c->path = rebase(r->path, r->strings, strings);
    c->query = rebase(r->query, r->strings, strings);
    c->outcome = rebase(r->outcome, r->strings, strings);
    c->incoming_trace_id_text = rebase(r->incoming_trace_id_text, r->strings, strings);
    c->incoming_x_trace_id = rebase(r->incoming_x_trace_id, r->strings, strings);
    return c;
}

void log_record_free(struct log_record *r)
{
    free(r);
}

int log_record_compare(const struct log_record *a, const struct log_record *b)
{
    if (a->time_ms != b->time_ms)
        return a->time_ms < b->time_ms ? -1 : 1;
    double da = isnan(a->duration_ms) ? 0 : a->duration_ms;
    double db = isnan(b->duration_ms) ? 0 : b->duration_ms;
    if (da != db)
        return da > db ? -1 : 1;
    if (a->source != b->source)
        return a->source < b->source ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return 0;
}
