/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target: upgrade_handshake_feed, the parser of the upstream's answer to an upgrade request
 * (src/proxy/upgrade_handshake.h).
 *
 * Input layout: two bytes choosing a split point (big-endian, modulo the rest's length + 1), then
 * the bytes an upstream answers. The answer is fed three ways, each chunk in an exactly-sized heap
 * block (ASan sees any read past it): whole; in two chunks cut at the split point; one byte at a
 * time.
 *
 * Asserted (the references are written here, not taken from the library):
 *   - the three feedings give the same verdict, status, switched flag and head end;
 *   - every call takes at most the bytes it was given, all of them on MORE, none after a verdict
 *     (a further call repeats the verdict and takes nothing);
 *   - COMPLETE: status 100-599 and 101 or >= 200, at most RESPONSE_HEAD_MAX_BYTES of head bytes,
 *     the head ends right after an LF; switched only for a 101 with a field named Upgrade and
 *     one named Connection (any case); INVALID comes with a reason, the others without.
 */

#include <strings.h>

#include "common/arena.h"
#include "proxy/upgrade_handshake.h"

#include "fuzz.h"

struct verdict {
    enum upgrade_handshake_result result;
    size_t end; /* offset in the answer where the head ended, on COMPLETE */
    long status;
    bool switched;
};

static bool has_field(const struct response_head *head, const char *name)
{
    for (size_t i = 0; i < head->count; i++)
        if (strcasecmp(head->fields[i].name, name) == 0)
            return true;
    return false;
}

/* Feed data[0..size) cut at the given offsets (ascending, last == size). */
static struct verdict feed(const uint8_t *data, size_t size, const size_t *cuts, size_t ncuts)
{
    struct upgrade_handshake *hs = malloc(sizeof(*hs));
    struct arena arena;
    struct verdict v = {UPGRADE_HANDSHAKE_MORE, 0, 0, false};
    size_t at = 0;

    if (!hs)
        abort();
    arena_init(&arena, 1024);
    upgrade_handshake_init(hs, "websocket", 9);
    for (size_t c = 0; c < ncuts && at <= size; c++) {
        size_t take = cuts[c] - at;
        char *chunk = fuzz_memdup(data + at, take);
        size_t used = (size_t)-1;
        enum upgrade_handshake_result r = upgrade_handshake_feed(hs, chunk, take, &arena, &used);
        free(chunk);
        FUZZ_CHECK(used <= take);
        if (r == UPGRADE_HANDSHAKE_MORE) {
            FUZZ_CHECK(used == take);
            at += take;
            continue;
        }
        v.result = r;
        v.end = at + used;
        used = (size_t)-1;
        FUZZ_CHECK(upgrade_handshake_feed(hs, "\n", 1, &arena, &used) == r && used == 0);
        break;
    }
    v.status = hs->head.status;
    v.switched = hs->switched;
    FUZZ_CHECK((v.result == UPGRADE_HANDSHAKE_INVALID) == (hs->reason != NULL));
    FUZZ_CHECK(hs->total <= RESPONSE_HEAD_MAX_BYTES);
    if (v.result == UPGRADE_HANDSHAKE_COMPLETE) {
        FUZZ_CHECK(v.status >= 100 && v.status <= 599);
        FUZZ_CHECK(v.status == 101 || v.status >= 200);
        FUZZ_CHECK(v.end >= 1 && v.end <= size && v.end <= RESPONSE_HEAD_MAX_BYTES);
        FUZZ_CHECK(data[v.end - 1] == '\n');
        if (v.switched)
            FUZZ_CHECK(v.status == 101 && has_field(&hs->head, "Upgrade") &&
                       has_field(&hs->head, "Connection"));
    } else {
        FUZZ_CHECK(!v.switched);
    }
    free(hs);
    arena_free(&arena);
    return v;
}

static void check_same(struct verdict a, struct verdict b)
{
    FUZZ_CHECK(a.result == b.result);
    FUZZ_CHECK(a.switched == b.switched);
    if (a.result == UPGRADE_HANDSHAKE_COMPLETE) {
        FUZZ_CHECK(a.status == b.status);
        FUZZ_CHECK(a.end == b.end);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t split = ((size_t)data[0] << 8 | data[1]) % (size - 2 + 1);
    data += 2;
    size -= 2;

    size_t whole_cut[] = {size};
    struct verdict whole = feed(data, size, whole_cut, 1);

    size_t two_cuts[] = {split, size};
    check_same(whole, feed(data, size, two_cuts, 2));

    size_t *byte_cuts = malloc((size + 1) * sizeof(*byte_cuts));
    if (!byte_cuts)
        abort();
    for (size_t i = 0; i < size; i++)
        byte_cuts[i] = i + 1;
    check_same(whole, feed(data, size, byte_cuts, size));
    free(byte_cuts);
    return 0;
}
