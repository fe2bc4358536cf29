/* SPDX-License-Identifier: MIT */

/*
 * Microbenchmark: nanoseconds per hop decision.
 *
 * One "op" is what the request path does per request in the trace-context library:
 * tracehop_hop_decide on the inbound header fields, then tracehop_traceparent_format of the
 * outbound traceparent. Three cases, each timed separately because they take different paths:
 *  - continue:    a valid traceparent, a 3-member tracestate (~60 characters) and a UUID
 *                 X-Trace-ID: parse, validate and copy everything, draw one span id;
 *  - no-header:   nothing received: draw a UUIDv4 trace id and a span id, format the UUID;
 *  - legacy-uuid: only a UUID X-Trace-ID: parse it into the trace id, draw a span id.
 *
 * Each case runs a warm-up, then REPETITIONS timed loops of `iterations` ops (default 3 million,
 * first argument overrides) between two clock_gettime(CLOCK_MONOTONIC) readings, and reports
 * the median loop's ns/op (the median resists a scheduler hiccup better than the mean). An empty
 * asm statement with a "memory" clobber that takes the outputs' addresses sits in the loop body,
 * so that the compiler can neither drop nor hoist the work, even with LTO.
 *
 * Before timing, each case is run once and its origin checked, so that a change in the library
 * cannot make the benchmark quietly measure a different row of the decision table.
 * Output: one human line per case, then one `bench-hop ...` line of key=value pairs for scripts.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tracehop/tracectx.h>

#define REPETITIONS        5
#define DEFAULT_ITERATIONS 3000000ull
#define TARGET_NS          200.0

#define SLICE(literal)                                                                             \
    {                                                                                              \
        .ptr = (literal), .len = sizeof(literal) - 1                                               \
    }

struct bench_case {
    const char *name;
    const char *key; /* in the machine-readable line */
    const char *description;
    struct tracehop_hop_input input;
    enum tracehop_trace_origin expected_origin;
    double median_ns;
};

static const struct tracehop_slice traceparent_fields[] = {
    SLICE("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
};
static const struct tracehop_slice tracestate_fields[] = {
    SLICE("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7, acme@tenant1=Zm9vYmFy"),
};
static const struct tracehop_slice x_trace_id_fields[] = {
    SLICE("3f1c2a9e-8b4d-4e6f-9a1b-2c3d4e5f6a7b"),
};

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One timed loop; returns ns per op. */
static double time_loop(const struct bench_case *bench,
                        const struct tracehop_hop_settings *settings, uint64_t iterations)
{
    struct tracehop_hop hop;
    char traceparent[TRACEHOP_TRACEPARENT_LEN];
    double start = now_ns();

    for (uint64_t i = 0; i < iterations; i++) {
        tracehop_hop_decide(&bench->input, settings, &hop);
        tracehop_traceparent_format(traceparent, hop.trace_id, hop.span_id, hop.flags);
        __asm__ __volatile__("" : : "r"(&hop), "r"(traceparent) : "memory");
    }
    return (now_ns() - start) / (double)iterations;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static int run_case(struct bench_case *bench, const struct tracehop_hop_settings *settings,
                    uint64_t iterations)
{
    double samples[REPETITIONS];
    struct tracehop_hop hop;

    tracehop_hop_decide(&bench->input, settings, &hop);
    if (hop.origin != bench->expected_origin) {
        fprintf(stderr,
                "bench-hop: %s: origin %d, expected %d: the case no longer measures "
                "what it says\n",
                bench->name, (int)hop.origin, (int)bench->expected_origin);
        return -1;
    }

    time_loop(bench, settings, iterations / 10 + 1); /* warm-up: caches, CPU frequency */
    for (int r = 0; r < REPETITIONS; r++)
        samples[r] = time_loop(bench, settings, iterations);
    qsort(samples, REPETITIONS, sizeof(samples[0]), compare_double);
    bench->median_ns = samples[REPETITIONS / 2];

    printf("%-12s %8.1f ns/op  (min %.1f, max %.1f)  %s\n", bench->name, bench->median_ns,
           samples[0], samples[REPETITIONS - 1], bench->description);
    return 0;
}

int main(int argc, char **argv)
{
    const struct tracehop_hop_settings settings = {.trust_incoming = true, .sampling_ratio = 0.5};
    struct bench_case cases[] = {
        {
            .name = "continue",
            .key = "continue_ns",
            .description = "traceparent + 3-member tracestate + UUID X-Trace-ID",
            .input = {.traceparent = traceparent_fields,
                      .traceparent_count = 1,
                      .tracestate = tracestate_fields,
                      .tracestate_count = 1,
                      .x_trace_id = x_trace_id_fields,
                      .x_trace_id_count = 1},
            .expected_origin = TRACEHOP_ORIGIN_TRACEPARENT,
        },
        {
            .name = "no-header",
            .key = "no_header_ns",
            .description = "no trace header: new UUIDv4 trace",
            .input = {0},
            .expected_origin = TRACEHOP_ORIGIN_NEW,
        },
        {
            .name = "legacy-uuid",
            .key = "legacy_uuid_ns",
            .description = "UUID X-Trace-ID only",
            .input = {.x_trace_id = x_trace_id_fields, .x_trace_id_count = 1},
            .expected_origin = TRACEHOP_ORIGIN_X_TRACE_ID_UUID,
        },
    };
    const size_t n_cases = sizeof(cases) / sizeof(cases[0]);
    uint64_t iterations = DEFAULT_ITERATIONS;
    bool over = false;

    if (argc > 1) {
        char *end;

        iterations = strtoull(argv[1], &end, 10);
        if (*end != '\0' || iterations == 0) {
            fprintf(stderr, "usage: %s [ITERATIONS]\n", argv[0]);
            return 2;
        }
    }

    printf("bench-hop: median of %d loops of %" PRIu64 " ops; one op = hop_decide + "
           "traceparent_format\n",
           REPETITIONS, iterations);
    for (size_t i = 0; i < n_cases; i++)
        if (run_case(&cases[i], &settings, iterations) < 0)
            return 1;

    printf("bench-hop");
    for (size_t i = 0; i < n_cases; i++) {
        printf(" %s=%.1f", cases[i].key, cases[i].median_ns);
        over = over || cases[i].median_ns > TARGET_NS;
    }
    printf(" target_ns=%.0f %s\n", TARGET_NS, over ? "over" : "ok");
    return 0;
}
