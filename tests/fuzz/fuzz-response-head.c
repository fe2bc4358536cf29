/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target: response_head_feed, the upstream response head parser (src/proxy/response_head.h).
 *
 * Input layout: the bytes of one or more response heads as an upstream would send them. They are
 * split after each '\n' (the last line may have none), and each line is given to
 * response_head_feed in an exactly-sized heap block, as libcurl hands header lines over. Feeding
 * goes on after INVALID and COMPLETE (the parser must stay consistent even where the daemon would
 * stop), at most MAX_LINES lines.
 *
 * Asserted after every line (the references are written here, not taken from the library):
 *   - at most RESPONSE_HEAD_MAX_FIELDS fields and RESPONSE_HEAD_MAX_BYTES bytes;
 *   - every stored name is a non-empty token (RFC 9110 tchar), NUL-terminated at name_len;
 *     every stored value is NUL-terminated, without CR, LF or another control byte but HTAB, and
 *     without leading or trailing SP/HTAB;
 *   - status is 0 or 100-999; content_length is -1 or 0 to 10^18 - 1, and then a stored
 *     Content-Length field (any case) has exactly that value in digits; every stored
 *     Transfer-Encoding field says "chunked" (any case);
 *   - INVALID leaves status, content_length, count and bytes unchanged;
 *   - COMPLETE only for a blank line (nothing but CR and LF) and status >= 200, never 101; a
 *     blank line with 1 <= status < 200 but 101 is OK;
 *   - an accepted status line ("HTTP/" at the start) empties the head; an accepted field line
 *     adds exactly one field and its n bytes; the new field's name is the line's text before the
 *     first ':'.
 */

#include "common/arena.h"
#include "proxy/response_head.h"

#include "fuzz.h"

#define MAX_LINES 4096

static bool ref_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool ascii_equal_ci(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

/* The value of a stored Content-Length: 1-18 digits, else -2. */
static int64_t ref_length(const char *v)
{
    size_t n = strlen(v);
    int64_t total = 0;
    if (n == 0 || n > 18)
        return -2;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -2;
        total = total * 10 + (v[i] - '0');
    }
    return total;
}

static void check_head(const struct response_head *head)
{
    bool length_seen = false;

    FUZZ_CHECK(head->count <= RESPONSE_HEAD_MAX_FIELDS);
    FUZZ_CHECK(head->bytes <= RESPONSE_HEAD_MAX_BYTES);
    FUZZ_CHECK(head->status == 0 || (head->status >= 100 && head->status <= 999));
    FUZZ_CHECK(head->content_length == -1 ||
               (head->content_length >= 0 && head->content_length <= INT64_C(999999999999999999)));
    for (size_t i = 0; i < head->count; i++) {
        const struct response_header *h = &head->fields[i];
        FUZZ_CHECK(h->name && h->value);
        FUZZ_CHECK(h->name_len > 0);
        FUZZ_CHECK(strlen(h->name) == h->name_len);
        for (size_t k = 0; k < h->name_len; k++)
            FUZZ_CHECK(ref_tchar((unsigned char)h->name[k]));
        size_t vlen = strlen(h->value);
        for (size_t k = 0; k < vlen; k++) {
            unsigned char c = (unsigned char)h->value[k];
            FUZZ_CHECK(c != '\r' && c != '\n');
            FUZZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (vlen > 0) {
            FUZZ_CHECK(h->value[0] != ' ' && h->value[0] != '\t');
            FUZZ_CHECK(h->value[vlen - 1] != ' ' && h->value[vlen - 1] != '\t');
        }
        if (ascii_equal_ci(h->name, "Content-Length")) {
            FUZZ_CHECK(ref_length(h->value) == head->content_length);
            length_seen = true;
        }
        if (ascii_equal_ci(h->name, "Transfer-Encoding"))
            FUZZ_CHECK(ascii_equal_ci(h->value, "chunked"));
    }
    FUZZ_CHECK(length_seen == (head->content_length >= 0));
}

static bool is_blank(const char *line, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (line[i] != '\r' && line[i] != '\n')
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct response_head *head = malloc(sizeof(*head)); /* 4 KiB of fields: not on the stack */
    struct arena arena;
    size_t start = 0;

    if (!head)
        abort();
    response_head_init(head);
    FUZZ_CHECK(head->status == 0 && head->content_length == -1 && head->count == 0 &&
               head->bytes == 0);
    arena_init(&arena, 1024);
    for (int lines = 0; start < size && lines < MAX_LINES; lines++) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t n = nl ? (size_t)(nl - (data + start)) + 1 : size - start;
        char *line = fuzz_memdup(data + start, n);
        struct response_head before = *head;

        enum response_line r = response_head_feed(head, line, n, &arena);
        bool status_line = n >= 5 && memcmp(line, "HTTP/", 5) == 0;
        switch (r) {
        case RESPONSE_LINE_INVALID:
            FUZZ_CHECK(head->status == before.status);
            FUZZ_CHECK(head->content_length == before.content_length);
            FUZZ_CHECK(head->count == before.count);
            FUZZ_CHECK(head->bytes == before.bytes);
            break;
        case RESPONSE_LINE_COMPLETE:
            FUZZ_CHECK(!status_line && is_blank(line, n));
            FUZZ_CHECK(head->status >= 200 && head->status != 101);
            FUZZ_CHECK(head->count == before.count && head->bytes == before.bytes);
            break;
        case RESPONSE_LINE_OK:
            if (status_line) {
                FUZZ_CHECK(head->status >= 100);
                FUZZ_CHECK(head->count == 0 && head->bytes == 0 && head->content_length == -1);
            } else if (is_blank(line, n)) {
                FUZZ_CHECK(head->status < 200 && head->status != 101);
                FUZZ_CHECK(head->count == before.count && head->bytes == before.bytes);
            } else {
                FUZZ_CHECK(head->count == before.count + 1);
                FUZZ_CHECK(head->bytes == before.bytes + n);
                FUZZ_CHECK(head->status == before.status);
                const struct response_header *h = &head->fields[head->count - 1];
                FUZZ_CHECK(h->name_len < n && line[h->name_len] == ':');
                FUZZ_CHECK(memcmp(h->name, line, h->name_len) == 0);
            }
            break;
        default:
            FUZZ_CHECK(!"unknown response_line");
        }
        /* The head holds copies: the caller's line may change or go. */
        memset(line, 0xA5, n);
        free(line);
        check_head(head);
        start += n;
    }
    arena_free(&arena);
    free(head);
    return 0;
}
