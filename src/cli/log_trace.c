/* SPDX-License-Identifier: MIT */
/*
 * Trace selection (contracts and the rules in log_trace.h).
 *
 * Both kinds of id live in one byte-string set with a one-byte tag in front: 'T' + 16 bytes for
 * a trace id, 'X' + text for an X-Trace-ID that is not a UUID. Mapping UUID X-Trace-IDs onto
 * trace ids here is what makes `--trace-id <uuid>` and `--trace-id <32 hex>` find the same
 * lines, and what lets the common case (every hop logs trace_id T and x_trace_id = T as a UUID)
 * add nothing new to the set after the first line, so the reader needs no second pass.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/log_trace.h"

#define KEY_MAX (1 + 4096) /* longer X-Trace-IDs are matched by their first 4096 bytes */

static size_t trace_key(uint8_t *key, const uint8_t trace_id[TRACEHOP_TRACE_ID_SIZE])
{
    key[0] = 'T';
    memcpy(key + 1, trace_id, TRACEHOP_TRACE_ID_SIZE);
    return 1 + TRACEHOP_TRACE_ID_SIZE;
}

/* The key of an X-Trace-ID value: its trace id when it is a UUID, else its text. */
static size_t x_key(uint8_t *key, const char *x)
{
    uint8_t id[TRACEHOP_TRACE_ID_SIZE];
    size_t len = strlen(x);

    if (log_record_uuid_decode(x, len, id))
        return trace_key(key, id);
    if (len > KEY_MAX - 1)
        len = KEY_MAX - 1;
    key[0] = 'X';
    memcpy(key + 1, x, len);
    return 1 + len;
}

int log_trace_query_parse(const char *text, struct log_trace_query *ret, char *err, size_t err_size)
{
    struct log_trace_query q = {0};
    size_t len = strlen(text);
    struct tracehop_traceparent tp;

    if (len == 0) {
        snprintf(err, err_size, "the trace id is empty");
        return -EINVAL;
    }
    if (log_record_hex_decode(text, len, q.trace_id, TRACEHOP_TRACE_ID_SIZE) ||
        tracehop_uuid_parse(text, len, q.trace_id)) {
        q.has_trace_id = true;
    } else if (len == TRACEHOP_TRACEPARENT_LEN &&
               tracehop_traceparent_parse(text, len, &tp) == TRACEHOP_TP_OK) {
        memcpy(q.trace_id, tp.trace_id, TRACEHOP_TRACE_ID_SIZE);
        q.has_trace_id = true;
    }
    q.text = strdup(text);
    if (!q.text)
        return -ENOMEM;
    *ret = q;
    return 0;
}

void log_trace_query_free(struct log_trace_query *q)
{
    free(q->text);
    *q = (struct log_trace_query){0};
}

static int add_key(struct log_trace_set *set, const uint8_t *key, size_t len)
{
    if (log_idset_contains(&set->ids, key, len))
        return 0;
    if (set->ids.count >= LOG_TRACE_SET_MAX) {
        set->full = true;
        return 0;
    }
    return log_idset_add(&set->ids, key, len);
}

int log_trace_set_init(struct log_trace_set *set, const struct log_trace_query *q)
{
    uint8_t key[KEY_MAX];
    int rc = 0;

    *set = (struct log_trace_set){0};
    if (q->has_trace_id)
        rc = add_key(set, key, trace_key(key, q->trace_id));
    if (rc >= 0 && q->text)
        rc = add_key(set, key, x_key(key, q->text));
    return rc < 0 ? rc : 0;
}

void log_trace_set_free(struct log_trace_set *set)
{
    log_idset_free(&set->ids);
    set->full = false;
}

/* The ids of a record that tie it to others: its own, and its caller's at an untrusting edge. */
static size_t record_keys(const struct log_record *r, uint8_t keys[4][KEY_MAX], size_t lens[4])
{
    size_t n = 0;

    if (r->has_trace_id)
        lens[n] = trace_key(keys[n], r->trace_id), n++;
    if (r->x_trace_id)
        lens[n] = x_key(keys[n], r->x_trace_id), n++;
    if (r->has_incoming_trace_id)
        lens[n] = trace_key(keys[n], r->incoming_trace_id), n++;
    if (r->incoming_x_trace_id)
        lens[n] = x_key(keys[n], r->incoming_x_trace_id), n++;
    return n;
}

bool log_trace_set_contains(const struct log_trace_set *set, const struct log_record *r)
{
    uint8_t keys[4][KEY_MAX];
    size_t lens[4], n = record_keys(r, keys, lens);

    for (size_t k = 0; k < n; k++)
        if (log_idset_contains(&set->ids, keys[k], lens[k]))
            return true;
    return false;
}

int log_trace_set_add(struct log_trace_set *set, const struct log_record *r)
{
    uint8_t keys[4][KEY_MAX];
    size_t lens[4], n = record_keys(r, keys, lens);
    int grew = 0, rc;

    for (size_t k = 0; k < n; k++) {
        if ((rc = add_key(set, keys[k], lens[k])) < 0)
            return rc;
        grew |= rc;
    }
    return grew;
}
