/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target of the process-metrics parsers (src/observe/process_stats.h): the input, copied
 * into an exactly-sized block, is parsed both as /proc/PID/stat and as /proc/stat. Checked
 * against a reference written here: a /proc/PID/stat text parses exactly when, after its last
 * ')', fields 3 to 24 are present and separated by single-or-more spaces, with fields 14, 15 and
 * 22-24 1-19 decimal digits; the values must equal the reference's. btime must be the value of
 * the first line starting with "btime ". Nothing may read past the end (ASan).
 */
#include "fuzz.h"
#include "observe/process_stats.h"

/* The reference: fields split on spaces after the last ')'. */
static bool reference_stat(const char *t, size_t n, uint64_t out[25])
{
    size_t i = n, field = 3;

    while (i > 0 && t[i - 1] != ')')
        i--;
    if (i == 0)
        return false;
    while (field <= 24) {
        while (i < n && t[i] == ' ')
            i++;
        size_t start = i;
        while (i < n && t[i] != ' ' && t[i] != '\n')
            i++;
        if (i == start)
            return false;
        bool wanted = field == 14 || field == 15 || field >= 22;
        if (wanted) {
            if (i - start > 19)
                return false;
            uint64_t v = 0;
            for (size_t k = start; k < i; k++) {
                if (t[k] < '0' || t[k] > '9')
                    return false;
                v = v * 10 + (uint64_t)(t[k] - '0');
            }
            out[field] = v;
        }
        field++;
    }
    return true;
}

static bool reference_btime(const char *t, size_t n, uint64_t *ret)
{
    for (size_t line = 0; line < n;) {
        size_t end = line;
        while (end < n && t[end] != '\n')
            end++;
        if (end - line > 6 && memcmp(t + line, "btime ", 6) == 0) {
            size_t k = line + 6;
            while (k < end && t[k] == ' ')
                k++;
            if (k == end || end - k > 19)
                return false;
            uint64_t v = 0;
            for (; k < end; k++) {
                if (t[k] < '0' || t[k] > '9')
                    return false;
                v = v * 10 + (uint64_t)(t[k] - '0');
            }
            *ret = v;
            return true;
        }
        line = end + 1;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_memdup(data, size);
    struct process_stat_fields f;
    uint64_t want[25] = {0}, btime = 0, want_btime = 0;

    bool ok = process_stat_parse(text, size, &f);
    FUZZ_CHECK(ok == reference_stat(text, size, want));
    if (ok) {
        FUZZ_CHECK(f.utime_ticks == want[14] && f.stime_ticks == want[15]);
        FUZZ_CHECK(f.start_ticks == want[22] && f.vsize_bytes == want[23] &&
                   f.rss_pages == want[24]);
    }
    ok = process_btime_parse(text, size, &btime);
    FUZZ_CHECK(ok == reference_btime(text, size, &want_btime));
    if (ok)
        FUZZ_CHECK(btime == want_btime);
    free(text);
    return 0;
}
