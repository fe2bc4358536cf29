/* SPDX-License-Identifier: MIT */
/*
 * The tracestate header (W3C Trace Context Level 2, section 3.3): a list of up to 32
 * `key=value` members, possibly spread over several header fields, which combine in order.
 *
 *   key      = ( lcalpha / DIGIT ) 0*255( keychar )
 *   keychar  = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
 *   value    = 0*255( %x20-2B / %x2D-3C / %x3E-7E ) ( %x21-2B / %x2D-3C / %x3E-7E )
 *
 * Level 2 dropped Level 1's `tenant@system` split: '@' is a key character like the others, allowed
 * anywhere but first. Empty members and OWS around members are allowed and dropped. One broken
 * member or a 33rd member makes the whole header invalid (the official test suite expects it to
 * be discarded rather than repaired). A repeated key no longer does: the draft lets a vendor keep
 * the header and discard duplicates, so the first member of each key is kept and later ones go
 * (status DEDUPLICATED). The result is written in normal form ("a=1,b=2"), truncated to
 * TRACEHOP_TRACESTATE_MAX characters by the order of section 3.3.1.5: members longer than 128
 * characters first, then members from the end.
 *
 * No allocation: member slices live in a fixed array on the stack (32 entries).
 */
#include <string.h>

#include "tracehop/tracectx.h"
#include "ows.h"

#define KEY_MAX            256
#define VALUE_MAX          256
#define LARGE_MEMBER_LIMIT 128 /* members longer than this are truncated away first */

struct member {
    const char *ptr; /* "key=value", OWS trimmed */
    size_t len;
    size_t key_len;
    bool removed;
};

static bool is_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_keychar(char c)
{
    return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '*' || c == '/' || c == '@';
}

static bool keychars_only(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_keychar(s[i]))
            return false;
    return true;
}

static bool key_is_valid(const char *key, size_t len)
{
    return len >= 1 && len <= KEY_MAX && (is_lcalpha(key[0]) || is_digit(key[0])) &&
           keychars_only(key + 1, len - 1);
}

static bool value_is_valid(const char *value, size_t len)
{
    if (len < 1 || len > VALUE_MAX || value[len - 1] == ' ')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
            return false;
    }
    return true;
}

/* Validate one OWS-trimmed, non-empty member and record where its key ends. */
static bool member_parse(const char *ptr, size_t len, struct member *ret)
{
    const char *eq = memchr(ptr, '=', len);

    if (!eq)
        return false;
    size_t key_len = (size_t)(eq - ptr);
    if (!key_is_valid(ptr, key_len) || !value_is_valid(eq + 1, len - key_len - 1))
        return false;
    *ret = (struct member){.ptr = ptr, .len = len, .key_len = key_len};
    return true;
}

static bool key_seen(const struct member *members, size_t n, const struct member *m)
{
    for (size_t i = 0; i < n; i++)
        if (members[i].key_len == m->key_len && memcmp(members[i].ptr, m->ptr, m->key_len) == 0)
            return true;
    return false;
}

/* Length of the normal form of the members not removed: their lengths plus the commas. */
static size_t joined_length(const struct member *members, size_t n)
{
    size_t total = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (members[i].removed)
            continue;
        total += members[i].len;
        kept++;
    }
    return kept ? total + kept - 1 : 0;
}

/* W3C section 3.3.1.5: drop members over 128 characters (from the end), then any from the end. */
static bool truncate_members(struct member *members, size_t n)
{
    size_t total = joined_length(members, n);
    bool truncated = false;

    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t i = n; i-- > 0 && total > TRACEHOP_TRACESTATE_MAX;) {
            if (members[i].removed || (pass == 0 && members[i].len <= LARGE_MEMBER_LIMIT))
                continue;
            members[i].removed = true;
            truncated = true;
            total = joined_length(members, n);
        }
    }
    return truncated;
}

enum tracehop_tracestate_status tracehop_tracestate_normalize(const struct tracehop_slice *fields,
                                                              size_t count, char *out,
                                                              size_t *ret_len)
{
    struct member members[TRACEHOP_TRACESTATE_MEMBERS_MAX];
    size_t n = 0;        /* members kept: the first of each key */
    size_t received = 0; /* every non-empty member, duplicates included, against the limit */
    bool deduplicated = false;

    out[0] = '\0';
    *ret_len = 0;
    for (size_t f = 0; f < count; f++) {
        const char *p = fields[f].ptr;
        const char *end = p + fields[f].len;
        if (fields[f].len == 0)
            continue;
        while (p <= end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *stop = comma ? comma : end;
            const char *item = p;
            size_t item_len = (size_t)(stop - p);
            struct member m;

            tracectx_trim_ows(&item, &item_len);
            if (item_len > 0) {
                if (received == TRACEHOP_TRACESTATE_MEMBERS_MAX ||
                    !member_parse(item, item_len, &m))
                    return TRACEHOP_TS_INVALID;
                received++;
                if (key_seen(members, n, &m))
                    deduplicated = true;
                else
                    members[n++] = m;
            }
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    if (n == 0)
        return TRACEHOP_TS_ABSENT;

    bool truncated = truncate_members(members, n);
    char *w = out;
    for (size_t i = 0; i < n; i++) {
        if (members[i].removed)
            continue;
        if (w != out)
            *w++ = ',';
        memcpy(w, members[i].ptr, members[i].len);
        w += members[i].len;
    }
    *w = '\0';
    *ret_len = (size_t)(w - out);
    if (truncated)
        return TRACEHOP_TS_TRUNCATED;
    return deduplicated ? TRACEHOP_TS_DEDUPLICATED : TRACEHOP_TS_OK;
}
