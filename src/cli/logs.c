/* SPDX-License-Identifier: MIT */
/*
 * `tracehop logs`: read the access logs of any number of services and print what matches, in
 * time order (docs/access-log.md: the command under "`tracehop logs`", the line schema under
 * "Fields").
 *
 * The flow, one room per module:
 *   argv -> log_filter / log_trace (what to select)
 *   log_reader (lines, streamed) -> log_record (parsed) -> filter -> log_merge (time order)
 *   -> printed as they come out of the merge (log_render, or the raw line for --json);
 *   with --trace-id the selected records are kept instead, sorted, printed, and drawn as a
 *   hop tree (log_tree, log_render);
 *   --follow then keeps reading the sources as they grow (log_follow waits for changes).
 *
 * Memory is bounded by the reader buffers, the merge's reorder window and, with --trace-id,
 * the lines of that one trace: a file is never loaded whole.
 *
 * --trace-id and the second pass: a line joins the trace when it shares a trace_id or an
 * x_trace_id with the set built so far, so an id can be learnt after lines carrying it were
 * already read. When the set grows, each source's read position is noted; regular files are
 * then read again up to that position (repeated while it keeps growing, at most
 * MAX_EXTRA_PASSES times). Lines already selected are recognised by a digest of their bytes, so
 * a second pass (or the same file given twice) never duplicates a hop. In the usual case (every
 * hop logs the same trace id, and an x_trace_id that is that id as a UUID) the set never grows
 * and there is no second pass. Stdin cannot be read twice; that case is reported.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/logs.h"
#include "cli/log_filter.h"
#include "cli/log_follow.h"
#include "cli/log_idset.h"
#include "cli/log_merge.h"
#include "cli/log_reader.h"
#include "cli/log_time.h"
#include "cli/log_record.h"
#include "cli/log_render.h"
#include "cli/log_trace.h"
#include "cli/log_tree.h"
#include "common/strbuf.h"

#define EXIT_OK    0
#define EXIT_READ  1
#define EXIT_USAGE 2

/* Reorder window per input (see log_merge.h). */
#define WINDOW_LINES   10000
#define WINDOW_BYTES   (64u * 1024 * 1024)
#define WINDOW_SKEW_MS 10000

#define READ_BATCH       4096 /* lines read from one input before the merge is asked again */
#define OUTPUT_FLUSH     (64 * 1024)
#define FOLLOW_POLL_MS   200
#define MAX_EXTRA_PASSES 8
#define TRACE_LINES_MAX  100000 /* lines of one trace kept for the listing and the tree */
#define ERROR_TEXT       256

struct options {
    struct log_filter filter;
    const char *trace_id;
    bool json;
    bool follow;
    char **paths; /* argv's, or "-" */
    size_t paths_count;
};

struct run {
    const struct options *opt;
    struct log_source *sources;
    bool *opened; /* sources[i] is open */
    size_t count;
    struct log_record_scratch scratch;
    struct log_merge *merge; /* during the first pass */
    uint64_t seq;

    /* --trace-id */
    bool trace_mode;
    struct log_trace_set set;
    struct log_idset seen_lines; /* digests of lines already selected */
    struct log_record **selected;
    size_t selected_count, selected_cap, selected_dropped;
    uint64_t *reread_until; /* per source: read again up to here after the set grew */
    bool set_grew;
    size_t tree_drawn_count; /* hops in the last tree drawn (follow draws again if it grew) */

    /* what was skipped */
    uint64_t not_json, not_access_log;

    struct strbuf out;
    int exit_code;
};

static void usage(FILE *out)
{
    fputs("Usage: tracehop logs [options] [FILE...]\n"
          "\n"
          "Read tracehop access logs (JSON lines) of any number of services, from files or from\n"
          "stdin ('-', or when no FILE is given), and print the matching requests in time order.\n"
          "\n"
          "      --trace-id ID    every line of one trace, then its hop tree as a timeline. ID is\n"
          "                       a W3C trace id (32 hex digits, any case), a traceparent, or an\n"
          "                       X-Trace-ID value; a UUID stands for the trace id of its 32 hex\n"
          "                       digits. Lines sharing a trace_id or an x_trace_id with a line\n"
          "                       of the trace join it (a legacy hop that only passed X-Trace-ID\n"
          "                       on is found too)\n"
          "      --since T        requests that started at or after T: RFC 3339\n"
          "                       (2025-01-31T12:00:00Z; UTC without an offset), now, or a time\n"
          "                       ago (15m, 2h, 1d)\n"
          "      --until T        requests that started before T (same forms)\n"
          "      --status S       a code (500), a class (5xx) or none (no response was sent);\n"
          "                       repeat or separate with commas for several\n"
          "      --service NAME   lines of this service; repeatable, or NAME,NAME\n"
          "      --outcome NAME   ok, no_route, upstream_connect_failed, upstream_tls_failed,\n"
          "                       upstream_timeout, upstream_reset, client_aborted,\n"
          "                       bad_request, too_large;\n"
          "                       repeatable\n"
          "      --slow MS        duration_ms >= MS (250, or with a unit: 1.5s)\n"
          "  -f, --follow         after reading, keep printing new matching lines as the files\n"
          "                       grow; truncated and rotated files are read from their start;\n"
          "                       Ctrl-C or SIGTERM ends it\n"
          "      --json           print the matching lines exactly as read (JSON lines), no tree\n"
          "  -h, --help           show this text\n"
          "\n"
          "Filters combine with AND. Output is text unless --json is given, whether or not\n"
          "stdout is a terminal. Lines that are not JSON objects, or are longer than 1 MiB, are\n"
          "skipped and counted on stderr. The schema and a walk-through: docs/access-log.md.\n"
          "Exit status: 0 done (also when nothing matched), 1 a file could not be read,\n"
          "2 bad usage.\n",
          out);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "tracehop logs: <message>" and a hint; returns the usage exit status. */
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("tracehop logs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry 'tracehop logs --help'.\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* --- output -------------------------------------------------------------------------------- */

static void flush_output(struct run *run)
{
    if (run->out.oom) {
        fputs("tracehop logs: out of memory building output\n", stderr);
        run->exit_code = EXIT_READ;
    } else if (run->out.len > 0 && fwrite(run->out.data, 1, run->out.len, stdout) != run->out.len) {
        run->exit_code = EXIT_READ;
    }
    strbuf_clear(&run->out);
}

static void print_record(struct run *run, const struct log_record *r)
{
    if (run->opt->json) {
        strbuf_append(&run->out, r->line, r->line_len);
        strbuf_append_char(&run->out, '\n');
    } else {
        log_render_line(&run->out, r);
    }
    if (run->out.len >= OUTPUT_FLUSH)
        flush_output(run);
}

/* --- selecting lines ------------------------------------------------------------------------ */

static bool is_blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            return false;
    return true;
}

/* A digest of a line's bytes: two 64-bit FNV-1a variants and the length. */
static void line_digest(const char *line, size_t len, uint64_t digest[3])
{
    uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
    for (size_t i = 0; i < len; i++) {
        a = (a ^ (unsigned char)line[i]) * 0x100000001b3ull;
        b = (b ^ (unsigned char)line[i]) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
    }
    digest[0] = a;
    digest[1] = b;
    digest[2] = len;
}

/* The set of the trace grew: every source must be read again up to where it stands now. */
static void note_growth(struct run *run)
{
    run->set_grew = true;
    for (size_t i = 0; i < run->count; i++)
        if (run->opened[i])
            run->reread_until[i] = log_reader_position(&run->sources[i].reader);
}

/*
 * Parse one line and decide. Returns 1 with *ret_keep (a clone the caller owns) when the line
 * is selected, 0 when it is not, -ENOMEM.
 */
static int consider_line(struct run *run, size_t source, const char *line, size_t len,
                         uint64_t offset, struct log_record **ret_keep)
{
    struct log_record r;
    int rc;

    *ret_keep = NULL;
    if (is_blank(line, len))
        return 0;
    rc = log_record_parse(line, len, &run->scratch, &r);
    if (rc == LOG_RECORD_NOT_JSON) {
        run->not_json++;
        return 0;
    }
    if (rc == LOG_RECORD_NOT_ACCESS_LOG) {
        run->not_access_log++;
        return 0;
    }
    if (rc < 0)
        return -ENOMEM;
    r.source = source;
    r.offset = offset;
    r.seq = run->seq++;
    if (run->merge)
        log_merge_saw(run->merge, source, r.time_ms);
    if (run->trace_mode) {
        uint64_t digest[3];
        if (!log_trace_set_contains(&run->set, &r))
            return 0;
        if ((rc = log_trace_set_add(&run->set, &r)) < 0)
            return rc;
        if (rc > 0)
            note_growth(run);
        line_digest(line, len, digest);
        if ((rc = log_idset_add(&run->seen_lines, digest, sizeof(digest))) <= 0)
            return rc; /* 0: selected before (a second pass, or the same line twice) */
    }
    if (!log_filter_match(&run->opt->filter, &r))
        return 0;
    *ret_keep = log_record_clone(&r);
    return *ret_keep ? 1 : -ENOMEM;
}

/* A selected record: printed now, or kept for the trace (ownership passes here). */
static void take_record(struct run *run, struct log_record *r, bool print_now)
{
    if (!run->trace_mode) {
        print_record(run, r);
        log_record_free(r);
        return;
    }
    if (print_now)
        print_record(run, r);
    if (run->selected_count == TRACE_LINES_MAX) {
        run->selected_dropped++;
        log_record_free(r);
        return;
    }
    if (run->selected_count == run->selected_cap) {
        size_t cap = run->selected_cap ? run->selected_cap * 2 : 64;
        struct log_record **bigger = realloc(run->selected, cap * sizeof(*bigger));
        if (!bigger) {
            run->selected_dropped++;
            log_record_free(r);
            return;
        }
        run->selected = bigger;
        run->selected_cap = cap;
    }
    run->selected[run->selected_count++] = r;
}

static void report_read_error(struct run *run, size_t i, int err)
{
    fprintf(stderr, "tracehop logs: %s: %s\n", run->sources[i].name, strerror(-err));
    run->exit_code = EXIT_READ;
}

/* --- the first pass: every source, merged in time order ------------------------------------ */

/*
 * Read up to READ_BATCH lines of source i into the merge. At the end of the source the merge is
 * told; an unterminated last line is taken unless it may still be being written (--follow on
 * a file). Returns 0 or -ENOMEM.
 */
static int read_batch(struct run *run, size_t i)
{
    struct log_source *s = &run->sources[i];
    const char *line;
    size_t len;
    uint64_t offset;
    int rc = 0;

    for (size_t n = 0; n < READ_BATCH; n++) {
        struct log_record *keep;
        int got = log_reader_next(&s->reader, &line, &len, &offset);
        if (got < 0) {
            report_read_error(run, i, got);
            log_merge_set_eof(run->merge, i, true);
            return 0;
        }
        if (got == 0) {
            bool final = !run->opt->follow || (s->is_stdin && s->reader.at_eof);
            if (final && log_reader_take_partial(&s->reader, &line, &len, &offset) == 1 &&
                (rc = consider_line(run, i, line, len, offset, &keep)) > 0 &&
                (rc = log_merge_push(run->merge, keep)) < 0)
                log_record_free(keep);
            log_merge_set_eof(run->merge, i, true);
            return rc < 0 ? rc : 0;
        }
        if ((rc = consider_line(run, i, line, len, offset, &keep)) < 0)
            return rc;
        if (rc > 0 && (rc = log_merge_push(run->merge, keep)) < 0) {
            log_record_free(keep);
            return rc;
        }
    }
    return 0;
}

static int first_pass(struct run *run)
{
    const struct log_merge_limits limits = {WINDOW_LINES, WINDOW_BYTES, WINDOW_SKEW_MS};
    struct log_record *r;
    int rc = log_merge_new(run->count, &limits, &run->merge);

    if (rc < 0)
        return rc;
    for (size_t i = 0; i < run->count; i++)
        if (!run->opened[i])
            log_merge_set_eof(run->merge, i, true);
    for (;;) {
        while ((r = log_merge_pop(run->merge)))
            take_record(run, r, false);
        int next = log_merge_next_source(run->merge);
        if (next < 0)
            break;
        if ((rc = read_batch(run, (size_t)next)) < 0)
            break;
    }
    while ((r = log_merge_pop_any(run->merge)))
        take_record(run, r, false);
    log_merge_free(run->merge);
    run->merge = NULL;
    return rc;
}

/* --- --trace-id: further passes, listing, tree ---------------------------------------------- */

/* Read every regular file again up to where it stood when the set last grew. */
static int extra_passes(struct run *run)
{
    uint64_t *until = calloc(run->count, sizeof(*until));
    int rc = 0;

    if (!until)
        return -ENOMEM;
    for (unsigned pass = 0; run->set_grew && pass < MAX_EXTRA_PASSES && rc >= 0; pass++) {
        memcpy(until, run->reread_until, run->count * sizeof(*until));
        memset(run->reread_until, 0, run->count * sizeof(*until));
        run->set_grew = false;
        for (size_t i = 0; i < run->count && rc >= 0; i++) {
            struct log_source *s = &run->sources[i];
            struct log_reader again;
            const char *line;
            size_t len;
            uint64_t offset;
            if (!run->opened[i] || until[i] == 0)
                continue;
            if (s->is_stdin || !s->reader.seekable) {
                fprintf(stderr,
                        "tracehop logs: %s cannot be read twice: lines of the trace before "
                        "its ids were learnt may be missing (give it as a file)\n",
                        s->name);
                continue;
            }
            if ((rc = log_reader_init(&again, s->fd, 0, until[i], 0)) < 0)
                break;
            int got;
            while ((got = log_reader_next(&again, &line, &len, &offset)) > 0) {
                struct log_record *keep;
                if ((rc = consider_line(run, i, line, len, offset, &keep)) < 0)
                    break;
                if (rc > 0)
                    take_record(run, keep, false);
            }
            if (got < 0)
                report_read_error(run, i, got);
            log_reader_free(&again);
        }
    }
    if (run->set_grew && rc >= 0)
        fprintf(stderr,
                "tracehop logs: the trace kept growing after %d passes; it may be "
                "incomplete\n",
                MAX_EXTRA_PASSES);
    free(until);
    return rc < 0 ? rc : 0;
}

static int compare_selected(const void *a, const void *b)
{
    return log_record_compare(*(struct log_record *const *)a, *(struct log_record *const *)b);
}

static int draw_tree(struct run *run)
{
    struct log_tree tree;
    int rc =
        log_tree_build((const struct log_record *const *)run->selected, run->selected_count, &tree);
    if (rc < 0)
        return rc;
    strbuf_append_char(&run->out, '\n');
    log_render_tree(&run->out, &tree, LOG_RENDER_BAR_COLUMNS);
    log_tree_free(&tree);
    run->tree_drawn_count = run->selected_count;
    flush_output(run);
    return 0;
}

static void sort_selected(struct run *run)
{
    if (run->selected_count > 1)
        qsort(run->selected, run->selected_count, sizeof(*run->selected), compare_selected);
}

static int print_trace(struct run *run)
{
    sort_selected(run);
    for (size_t i = 0; i < run->selected_count; i++)
        print_record(run, run->selected[i]);
    flush_output(run);
    if (run->selected_dropped)
        fprintf(stderr, "tracehop logs: the trace has more than %d lines; %zu were left out\n",
                TRACE_LINES_MAX, run->selected_dropped);
    if (run->set.full)
        fprintf(stderr, "tracehop logs: more than %d ids share this trace; it was cut there\n",
                LOG_TRACE_SET_MAX);
    if (run->selected_count == 0) {
        fprintf(stderr, "tracehop logs: no line of trace %s\n", run->opt->trace_id);
        return 0;
    }
    if (run->opt->json)
        return 0;
    return draw_tree(run);
}

/* --- --follow --------------------------------------------------------------------------- */

/* Read what source i has now and print (or keep) what matches. */
static int follow_read(struct run *run, size_t i)
{
    struct log_source *s = &run->sources[i];
    const char *line;
    size_t len;
    uint64_t offset;
    int got, rc = 0;

    while ((got = log_reader_next(&s->reader, &line, &len, &offset)) > 0) {
        struct log_record *keep;
        if ((rc = consider_line(run, i, line, len, offset, &keep)) < 0)
            return rc;
        if (rc > 0)
            take_record(run, keep, true);
    }
    if (got < 0)
        report_read_error(run, i, got);
    return 0;
}

/* A replaced file's last lines, including an unterminated one: nobody writes it any more. */
static int follow_finish_old(struct run *run, size_t i)
{
    struct log_source *s = &run->sources[i];
    const char *line;
    size_t len;
    uint64_t offset;
    struct log_record *keep;
    int rc = follow_read(run, i);

    if (rc >= 0 && log_reader_take_partial(&s->reader, &line, &len, &offset) == 1 &&
        (rc = consider_line(run, i, line, len, offset, &keep)) > 0)
        take_record(run, keep, true);
    return rc < 0 ? rc : 0;
}

static int follow(struct run *run)
{
    struct log_watch watch;
    const char **paths = calloc(run->count, sizeof(*paths));
    bool stdin_open = false;
    int rc;

    if (!paths)
        return -ENOMEM;
    for (size_t i = 0; i < run->count; i++) {
        paths[i] = run->sources[i].is_stdin ? NULL : run->opt->paths[i];
        if (run->sources[i].is_stdin && run->opened[i] && !run->sources[i].reader.at_eof)
            stdin_open = true;
    }
    rc = log_watch_start(&watch, paths, run->count, stdin_open);
    free(paths);
    if (rc < 0)
        return rc;
    for (;;) {
        for (size_t i = 0; i < run->count && rc >= 0; i++) {
            struct log_source *s = &run->sources[i];
            if (!run->opened[i]) {
                /* A file that did not exist yet may appear (tail -F does the same). */
                if (!s->is_stdin && log_source_open(s, run->opt->paths[i], 0) == 0) {
                    run->opened[i] = true;
                    fprintf(stderr, "tracehop logs: %s: now reading\n", s->name);
                } else {
                    continue;
                }
            }
            enum log_source_change change = log_source_check(s);
            if (change == LOG_SOURCE_REPLACED) {
                rc = follow_finish_old(run, i);
                int err = log_source_reopen(s);
                if (err < 0 && err != -ENOENT)
                    report_read_error(run, i, err);
            } else if (change == LOG_SOURCE_TRUNCATED) {
                fprintf(stderr, "tracehop logs: %s: truncated, reading from the start\n", s->name);
            }
            if (rc >= 0)
                rc = follow_read(run, i);
            if (s->is_stdin && s->reader.at_eof && watch.stdin_fd >= 0) {
                const char *line;
                size_t len;
                uint64_t offset;
                struct log_record *keep;
                if (log_reader_take_partial(&s->reader, &line, &len, &offset) == 1 &&
                    consider_line(run, i, line, len, offset, &keep) > 0)
                    take_record(run, keep, true);
                log_watch_forget_stdin(&watch);
            }
        }
        flush_output(run);
        fflush(stdout);
        if (rc < 0)
            break;
        int stop = log_watch_wait(&watch, FOLLOW_POLL_MS);
        if (stop != 0) {
            rc = stop < 0 ? stop : 0;
            break;
        }
    }
    log_watch_stop(&watch);
    if (rc >= 0 && run->trace_mode && !run->opt->json &&
        run->selected_count != run->tree_drawn_count) {
        sort_selected(run);
        rc = draw_tree(run);
    }
    return rc;
}

/* --- main ------------------------------------------------------------------------------------ */

static void report_skipped(const struct run *run)
{
    uint64_t overlong = 0;

    for (size_t i = 0; i < run->count; i++)
        overlong += run->sources[i].reader.overlong;
    if (!run->not_json && !run->not_access_log && !overlong)
        return;
    fputs("tracehop logs: skipped lines:", stderr);
    const char *sep = " ";
    if (run->not_json) {
        fprintf(stderr, "%snot a JSON object: %llu", sep, (unsigned long long)run->not_json);
        sep = ", ";
    }
    if (run->not_access_log) {
        fprintf(stderr, "%sJSON without the time and trace_id of an access-log line: %llu", sep,
                (unsigned long long)run->not_access_log);
        sep = ", ";
    }
    if (overlong)
        fprintf(stderr, "%slonger than %d bytes: %llu", sep, LOG_READER_MAX_LINE,
                (unsigned long long)overlong);
    fputc('\n', stderr);
}

static int parse_options(int argc, char **argv, struct options *opt)
{
    enum {
        OPT_TRACE_ID = 256,
        OPT_SINCE,
        OPT_UNTIL,
        OPT_STATUS,
        OPT_SERVICE,
        OPT_OUTCOME,
        OPT_SLOW,
        OPT_JSON,
    };
    static const struct option long_options[] = {
        {"trace-id", required_argument, NULL, OPT_TRACE_ID},
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"status", required_argument, NULL, OPT_STATUS},
        {"service", required_argument, NULL, OPT_SERVICE},
        {"outcome", required_argument, NULL, OPT_OUTCOME},
        {"slow", required_argument, NULL, OPT_SLOW},
        {"json", no_argument, NULL, OPT_JSON},
        {"follow", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    char err[ERROR_TEXT];
    int64_t now = log_time_now_ms();
    int c, rc = 0;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":fh", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_TRACE_ID:
            if (opt->trace_id)
                return usage_error("--trace-id given twice");
            opt->trace_id = optarg;
            break;
        case OPT_SINCE:
            rc = log_filter_set_since(&opt->filter, optarg, now, err, sizeof(err));
            break;
        case OPT_UNTIL:
            rc = log_filter_set_until(&opt->filter, optarg, now, err, sizeof(err));
            break;
        case OPT_STATUS:
            rc = log_filter_add_status(&opt->filter, optarg, err, sizeof(err));
            break;
        case OPT_SERVICE:
            rc = log_filter_add_service(&opt->filter, optarg, err, sizeof(err));
            break;
        case OPT_OUTCOME:
            rc = log_filter_add_outcome(&opt->filter, optarg, err, sizeof(err));
            break;
        case OPT_SLOW:
            rc = log_filter_set_slow(&opt->filter, optarg, err, sizeof(err));
            break;
        case OPT_JSON:
            opt->json = true;
            break;
        case 'f':
            opt->follow = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option, or a value where none is taken: '%s'",
                               argv[optind - 1]);
        }
        if (rc == -ENOMEM) {
            fputs("tracehop logs: out of memory\n", stderr);
            return EXIT_READ;
        }
        if (rc < 0)
            return usage_error("%s", err);
    }
    if (log_filter_check(&opt->filter, err, sizeof(err)) < 0)
        return usage_error("%s", err);
    opt->paths = argv + optind;
    opt->paths_count = (size_t)(argc - optind);
    return 0;
}

static void run_free(struct run *run)
{
    for (size_t i = 0; i < run->count; i++)
        if (run->opened[i])
            log_source_close(&run->sources[i]);
    for (size_t i = 0; i < run->selected_count; i++)
        log_record_free(run->selected[i]);
    free(run->selected);
    free(run->sources);
    free(run->opened);
    free(run->reread_until);
    log_record_scratch_free(&run->scratch);
    log_trace_set_free(&run->set);
    log_idset_free(&run->seen_lines);
    strbuf_free(&run->out);
}

int tracehop_logs_main(int argc, char **argv)
{
    static char *stdin_path[] = {"-"};
    struct options opt = {0};
    struct run run = {.opt = &opt};
    struct log_trace_query query = {0};
    char err[ERROR_TEXT];
    int rc;

    log_filter_init(&opt.filter);
    rc = parse_options(argc, argv, &opt);
    if (rc != 0) {
        log_filter_free(&opt.filter);
        return rc < 0 ? EXIT_OK : rc; /* -1: --help was shown */
    }
    if (opt.paths_count == 0) {
        opt.paths = stdin_path;
        opt.paths_count = 1;
    }
    if (opt.trace_id) {
        if ((rc = log_trace_query_parse(opt.trace_id, &query, err, sizeof(err))) < 0) {
            log_filter_free(&opt.filter);
            return rc == -ENOMEM ? EXIT_READ : usage_error("--trace-id: %s", err);
        }
        run.trace_mode = true;
    }

    run.count = opt.paths_count;
    run.sources = calloc(run.count, sizeof(*run.sources));
    run.opened = calloc(run.count, sizeof(*run.opened));
    run.reread_until = calloc(run.count, sizeof(*run.reread_until));
    rc = run.sources && run.opened && run.reread_until ? 0 : -ENOMEM;
    if (rc == 0 && run.trace_mode)
        rc = log_trace_set_init(&run.set, &query);
    for (size_t i = 0; rc == 0 && i < run.count; i++) {
        int open_rc = log_source_open(&run.sources[i], opt.paths[i], 0);
        if (open_rc == -ENOMEM) {
            rc = open_rc;
        } else if (open_rc < 0) {
            /* Exit status 1 unless --follow sees the file appear later (see the end). */
            fprintf(stderr, "tracehop logs: %s: %s\n", opt.paths[i], strerror(-open_rc));
            run.sources[i].name = opt.paths[i];
        } else {
            run.opened[i] = true;
            if (opt.follow && run.sources[i].is_stdin)
                run.sources[i].reader.poll_first = true;
            if (run.sources[i].is_stdin && isatty(STDIN_FILENO))
                fputs("tracehop logs: reading access-log lines from the terminal (give files, "
                      "or pipe the lines in; Ctrl-D ends)\n",
                      stderr);
        }
    }
    if (rc == 0)
        rc = first_pass(&run);
    if (rc == 0 && run.trace_mode) {
        rc = extra_passes(&run);
        if (rc == 0)
            rc = print_trace(&run);
    }
    flush_output(&run);
    if (rc == 0 && opt.follow) {
        fflush(stdout);
        rc = follow(&run);
    }
    flush_output(&run);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "tracehop logs: writing the output: %s\n", strerror(errno));
        run.exit_code = EXIT_READ;
    }
    report_skipped(&run);
    for (size_t i = 0; i < run.count; i++)
        if (!run.opened[i])
            run.exit_code = EXIT_READ;
    if (rc < 0) {
        fprintf(stderr, "tracehop logs: %s\n", strerror(-rc));
        run.exit_code = EXIT_READ;
    }
    rc = run.exit_code;
    run_free(&run);
    log_trace_query_free(&query);
    log_filter_free(&opt.filter);
    return rc;
}
