/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target: the whole daemon request path, in process, fed raw bytes over real sockets.
 *
 * Set-up, once per process (main.c's way, minus signals and admin): a config loaded with
 * config_load from a JSON file in a temporary directory (one worker, max_header_bytes 2048,
 * max_body_bytes 4096, client timeout 1 s, upstream connect/total timeouts 200/300 ms, access log
 * to /dev/null with one logged header), a loopback listener on an ephemeral port, and ONE worker
 * thread (worker_init + worker_start). Routes, first match wins:
 *   /down   a unix socket nobody listens on                       -> 502 upstream_connect_failed
 *   /unix   GET/POST/PUT, the fake upstream over a unix socket
 *   /api    Host api.example, strip_prefix, base path /base, sets X-Gateway: fuzz
 *   /       GET HEAD POST PUT DELETE PATCH OPTIONS                -> any other method: 404
 * The fake upstream is not a thread: the harness runs one poll loop that plays the client and the
 * upstream at once, so that everything but the worker is single-threaded and ordered.
 *
 * Input layout (readable, so that seeds can be written by hand):
 *   byte 0    flags, low 5 bits (seeds write '@' + flags, i.e. '@'..'_'):
 *               1  half-close the client's write side HALF_CLOSE_DELAY_MS after its last byte;
 *                  otherwise only once as many complete responses arrived as the client part
 *                  has lines holding "HTTP/" (its request lines, roughly), or after IDLE_MS of
 *                  silence
 *               2  the upstream keeps a connection open after an answer and answers every
 *                  further request on it; otherwise it half-closes after its answer and drains
 *               4  the upstream answers as soon as it accepts a connection, before reading
 *               8  the client aborts (RST) once the upstream saw a request, or after IDLE_MS
 *              16  the upstream answers after 20 ms instead of at once (slow upstream)
 *   then      the client part: the bytes sent to tracehop on one fresh TCP connection;
 *   "@@UPSTREAM@@"  then the upstream part: what the fake upstream answers to each request
 *             (default: a 200 with a 2-byte body). In either part "@@PAUSE@@" splits the bytes
 *             into writes PAUSE_MS apart.
 *
 * Asserted (CHECK: prints the exchange, then FUZZ_CHECK's abort):
 *   - the daemon closes the client connection within EXCHANGE_DEADLINE_MS, and is idle again (no
 *     request in flight, no connection open) within QUIESCE_DEADLINE_MS after the client left:
 *     a stuck request is a failure report, never a hang of the fuzzer;
 *   - every CANARY_EVERY inputs, and after any input that got no response at all, a well-formed
 *     request is answered 200 with the upstream's body: the worker is alive and serving;
 *   - what the client receives is a sequence of HTTP/1.1 responses: status line "HTTP/1.1 NNN",
 *     token header names, values without controls, at most one Content-Length and not with
 *     Transfer-Encoding (only "chunked"), valid chunked framing; it may be cut short only by the
 *     daemon closing (an abort). A 1xx is exactly MHD's "100 Continue" (never an upstream 101);
 *   - every final response carries exactly one valid version-00 traceparent and one safe
 *     X-Trace-ID, except libmicrohttpd's own refusals (4xx/5xx, one of its canned bodies, no
 *     trace header at all; the doubled head it sends for an unparsable Content-Length is a known
 *     libmicrohttpd 0.9.75 fault, skipped). If the upstream received that span, trace id and
 *     X-Trace-ID are the ones it received; if not, the response is tracehop's own JSON error
 *     (listed status, error/message strings, trace_id/span_id/x_trace_id equal to the headers);
 *   - with the default answer (a well-behaved upstream), never a 502 upstream_reset, but for a
 *     request with a body, which curl cannot resend on a new connection (see
 *     check_no_false_reset);
 *   - every request head the upstream receives: CRLF lines only, no NUL, no bare CR or LF, no
 *     obs-fold, token names, values without controls; origin-form target; one Host, one
 *     X-Forwarded-Proto, at most one X-Forwarded-For/-Host and tracestate; exactly one valid
 *     version-00 traceparent and one safe X-Trace-ID; never Content-Length together with
 *     Transfer-Encoding, at most one of each, Transfer-Encoding only "chunked"; none of
 *     Connection, Keep-Alive, TE, Trailer, Upgrade, Proxy-*, Expect; when the client part holds one
 *     request line, no header its Connection header listed (but those tracehop sets itself); the
 *     body is well framed and at most max_body_bytes;
 *   - for a plain single request (strict CRLF head, clean request line and Host): the upstream
 *     gets the same method, the target route_upstream_target makes (byte for byte), and with a
 *     single Content-Length the same length and, once complete, the same body bytes.
 * A threaded harness cannot be fully deterministic (scheduling decides how reads are split), but
 * each input starts with an idle daemon and no upstream connection left from the previous one.
 *
 * Environment: FUZZ_DAEMON_VERBOSE prints every exchange (and the daemon's debug diagnostics);
 * FUZZ_DAEMON_CANARY_EVERY=N runs the canary every N inputs instead of every CANARY_EVERY.
 *
 * At exit a destructor drains and stops the worker, closes the access log and removes the
 * temporary directory, so LeakSanitizer sees nothing left over. A crashing run leaves the
 * directory (/tmp/fuzz-daemon-*) behind.
 */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "observe/accesslog.h"
#include "config/config.h"
#include "common/listen_socket.h"
#include "observe/metrics.h"
#include "proxy/route.h"
#include "daemon/worker.h"
#include "common/diag.h"

#include "fuzz.h"

#define SEPARATOR            "@@UPSTREAM@@"
#define PAUSE_MARKER         "@@PAUSE@@"
#define MAX_PAUSES           16
#define PAUSE_MS             1
#define IDLE_MS              5
#define HALF_CLOSE_DELAY_MS  1
#define SLOW_UPSTREAM_MS     20
#define EXCHANGE_DEADLINE_MS 5000
#define QUIESCE_DEADLINE_MS  5000
#define CANARY_EVERY         64
#define MAX_UPSTREAM_CONNS   64
#define RECEIVE_CAP          (4 * 1024 * 1024)
#define MAX_HEADER_BYTES     2048
#define MAX_BODY_BYTES       4096
#define MAX_LISTED           64

enum {
    FLAG_HALF_CLOSE = 1,
    FLAG_KEEP_OPEN = 2,
    FLAG_EARLY = 4,
    FLAG_CLIENT_ABORT = 8,
    FLAG_SLOW = 16,
};

static const char DEFAULT_ANSWER[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
static const char CANARY_REQUEST[] = "GET /canary HTTP/1.1\r\nHost: canary\r\n\r\n";
static const char CANARY_ANSWER[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ncanary";
static const char CONTINUE_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* libmicrohttpd 0.9.75's own refusals (REQUEST_TOO_BIG and friends). Its INTERNAL_ERROR body is
 * left out on purpose: it means the access handler queued nothing, a tracehop bug. */
static const char *const MHD_CANNED_BODIES[] = {
    "<html><head><title>Request too big</title></head><body>Your HTTP header was too big for the "
    "memory constraints of this webserver.</body></html>",
    "<html><head><title>Request malformed</title></head><body>Your HTTP request was "
    "syntactically incorrect.</body></html>",
    "<html><head><title>Requested HTTP version is not supported</title></head><body>Requested "
    "HTTP version is too old and not supported.</body></html>",
    "<html><head><title>Requested HTTP version is not supported</title></head><body>Requested "
    "HTTP version is not supported.</body></html>",
    "<html><head><title>&quot;Host:&quot; header required</title></head><body>In HTTP 1.1, "
    "requests must include a &quot;Host:&quot; header, and your HTTP 1.1 request lacked such a "
    "header.</body></html>",
    "<html><head><title>Request content too large</title></head><body>Your HTTP request has too "
    "large value for <b>Content-Length</b> header.</body></html>",
    "<html><head><title>Request malformed</title></head><body>Your HTTP request has wrong value "
    "for <b>Content-Length</b> header.</body></html>",
    "<html><head><title>Request malformed</title></head><body>Your HTTP chunked encoding was "
    "syntactically incorrect.</body></html>",
    "<html><head><title>Request content too large</title></head><body>The chunk size used in "
    "your HTTP chunked encoded request is too large.</body></html>",
};

/* Bytes sent in writes PAUSE_MS apart: a pause before each offset in pauses. */
struct paced {
    uint8_t *data;
    size_t len;
    size_t pauses[MAX_PAUSES];
    size_t pause_count;
};

/* What the harness can tell about the client part without parsing it as libmicrohttpd does. */
struct client_info {
    size_t request_lines; /* lines holding "HTTP/" */
    bool has_head_method; /* "HEAD" anywhere: response bodies cannot be delimited */
    /* Connection-listed names of the first head; only used when request_lines <= 1. */
    struct {
        const uint8_t *ptr;
        size_t len;
    } listed[MAX_LISTED];
    size_t listed_count;
    /* A plain single request: strict CRLF head, clean request line, clean Host. */
    bool plain;
    char method[32];
    const uint8_t *target;
    size_t target_len;
    char host[256];
    bool has_host;
    bool single_content_length;
    uint64_t content_length;
    const uint8_t *body; /* what follows the head */
    size_t body_avail;
};

/* A request head the fake upstream received. */
struct seen_request {
    char span_id[17];
    char trace_id[33];
    char x_trace_id[129];
    bool has_body; /* a non-empty body framed by Content-Length or chunked */
};

enum body_framing { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

struct upstream_conn {
    int fd;
    bool open;
    bool eof;
    uint8_t *in;
    size_t in_len, in_cap;
    size_t parse_pos; /* start of the next request in `in` */
    bool in_body;
    size_t body_start;
    enum body_framing framing;
    uint64_t content_length;
    unsigned requests;
    unsigned owed; /* answers due */
    bool writing;
    size_t out_sent;
    size_t out_pause; /* index of the next pause */
    int64_t resume_ms;
    bool write_shut;
    bool answered_once; /* early mode: the one answer went out */
};

struct exchange {
    unsigned flags;
    struct paced client;
    struct paced answer;
    struct client_info info;
    bool canary;
    int64_t client_ms, quiesce_ms; /* how long the two phases took */
    bool default_answer;           /* no upstream part: a well-behaved upstream */
    bool refused_connection;       /* more than MAX_UPSTREAM_CONNS: one was closed unanswered */

    int client_fd;
    size_t client_sent;
    size_t client_pause;
    int64_t client_resume_ms;
    bool client_write_done;
    bool client_shut;
    bool client_closed; /* by us (abort) */
    bool client_eof;    /* the daemon closed */
    int64_t last_activity_ms;
    uint8_t *received;
    size_t received_len, received_cap;

    struct upstream_conn conns[MAX_UPSTREAM_CONNS];
    size_t conn_count;
    struct seen_request *seen; /* grows: one per head, however many */
    size_t seen_count, seen_cap;
    unsigned heads_seen;
};

static struct {
    bool ready;
    bool verbose;          /* FUZZ_DAEMON_VERBOSE set: print every exchange */
    unsigned canary_every; /* FUZZ_DAEMON_CANARY_EVERY, default CANARY_EVERY */
    char dir[64];
    char config_path[96];
    char unix_path[96];
    struct config *config;
    struct accesslog *log;
    struct worker worker;
    bool worker_started;
    struct sockaddr_in daemon_addr;
    int upstream_tcp_fd, upstream_unix_fd;
    unsigned inputs;
    const struct exchange *current; /* for failure reports */
} g = {.upstream_tcp_fd = -1, .upstream_unix_fd = -1};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- failure reports ---------------------------------------------------------------------- */

static void dump_bytes(const char *what, const uint8_t *p, size_t n)
{
    size_t shown = n < 4096 ? n : 4096;
    fprintf(stderr, "--- %s (%zu bytes%s):\n", what, n, shown < n ? ", first 4096 shown" : "");
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = p[i];
        if (c == '\n')
            fputs("\\n\n", stderr);
        else if (c == '\r')
            fputs("\\r", stderr);
        else if (c < 0x20 || c >= 0x7f || c == '\\')
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
    fputs("\n", stderr);
}

static void dump_exchange(void)
{
    const struct exchange *x = g.current;
    if (!x)
        return;
    fprintf(
        stderr,
        "fuzz-daemon: flags %u%s, %u upstream heads, %lld ms until closed, %lld ms until idle\n",
        x->flags, x->canary ? " (canary)" : "", x->heads_seen, (long long)x->client_ms,
        (long long)x->quiesce_ms);
    dump_bytes("client sent", x->client.data, x->client.len);
    dump_bytes("upstream answer", x->answer.data, x->answer.len);
    dump_bytes("client received", x->received, x->received_len);
    for (size_t i = 0; i < x->conn_count; i++) {
        char what[64];
        snprintf(what, sizeof(what), "upstream connection %zu received", i);
        dump_bytes(what, x->conns[i].in, x->conns[i].in_len);
    }
}

#define CHECK(condition)                                                                           \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            dump_exchange();                                                                       \
            fuzz_fail(__FILE__, __LINE__, #condition);                                             \
        }                                                                                          \
    } while (0)

/* --- small syntax helpers ----------------------------------------------------------------- */

static bool is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const uint8_t *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar(p[i]))
            return false;
    return true;
}

static bool is_field_value(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
            return false;
    return true;
}

static bool name_is(const uint8_t *p, size_t n, const char *literal)
{
    return strlen(literal) == n && strncasecmp((const char *)p, literal, n) == 0;
}

static void trim_ows(const uint8_t **p, size_t *n)
{
    while (*n > 0 && ((*p)[0] == ' ' || (*p)[0] == '\t'))
        (*p)++, (*n)--;
    while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

static bool is_lower_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!fuzz_is_lower_hex((char)p[i]))
            return false;
    return true;
}

static bool all_zero_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != '0')
            return false;
    return true;
}

/* "00-<32 hex>-<16 hex>-<2 hex>", lowercase, non-zero ids: what tracehop must send. */
static bool is_traceparent_v00(const uint8_t *p, size_t n)
{
    return n == 55 && p[0] == '0' && p[1] == '0' && p[2] == '-' && p[35] == '-' && p[52] == '-' &&
           is_lower_hex(p + 3, 32) && is_lower_hex(p + 36, 16) && is_lower_hex(p + 53, 2) &&
           !all_zero_hex(p + 3, 32) && !all_zero_hex(p + 36, 16);
}

/* docs/trace-context.md "4. X-Trace-ID": 1-128 visible ASCII characters without spaces, quotes or
 * backslashes. */
static bool is_safe_x_trace_id(const uint8_t *p, size_t n)
{
    if (n < 1 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == '"' || p[i] == '\'' || p[i] == '\\')
            return false;
    return true;
}

static const uint8_t *find(const uint8_t *p, size_t n, const char *needle)
{
    return memmem(p, n, needle, strlen(needle));
}

/* --- the input ---------------------------------------------------------------------------- */

/* Copy [p, p + n) without its pause markers, recording where they were. */
static void paced_init(struct paced *out, const uint8_t *p, size_t n)
{
    size_t marker = strlen(PAUSE_MARKER);

    out->data = malloc(n > 0 ? n : 1);
    FUZZ_CHECK(out->data);
    out->len = 0;
    out->pause_count = 0;
    while (n > 0) {
        const uint8_t *m = find(p, n, PAUSE_MARKER);
        size_t take = m ? (size_t)(m - p) : n;
        memcpy(out->data + out->len, p, take);
        out->len += take;
        if (!m)
            break;
        if (out->pause_count < MAX_PAUSES && out->len > 0 &&
            (out->pause_count == 0 || out->pauses[out->pause_count - 1] != out->len))
            out->pauses[out->pause_count++] = out->len;
        p = m + marker;
        n -= take + marker;
    }
}

/*
 * Lines as libmicrohttpd 0.9.75 splits a head: "\r\n", a bare "\r" or a bare "\n" ends one.
 * Returns the line's length and sets *next past its terminator, or SIZE_MAX at the end.
 */
static size_t next_line(const uint8_t *p, size_t n, size_t from, size_t *next)
{
    if (from >= n)
        return SIZE_MAX;
    size_t i = from;
    while (i < n && p[i] != '\r' && p[i] != '\n')
        i++;
    if (i >= n)
        return SIZE_MAX; /* unterminated: not a line yet */
    *next = (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') ? i + 2 : i + 1;
    return i - from;
}

static void collect_connection_tokens(struct client_info *info, const uint8_t *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        const uint8_t *token = v + start;
        size_t len = i - start;
        trim_ows(&token, &len);
        if (len > 0 && info->listed_count < MAX_LISTED) {
            info->listed[info->listed_count].ptr = token;
            info->listed[info->listed_count].len = len;
            info->listed_count++;
        }
    }
}

/* A request line "METHOD SP /target SP HTTP/1.1" with nothing odd in it. */
static bool parse_plain_request_line(struct client_info *info, const uint8_t *line, size_t n)
{
    const uint8_t *sp1 = memchr(line, ' ', n);
    if (!sp1 || (size_t)(sp1 - line) >= sizeof(info->method))
        return false;
    size_t method_len = (size_t)(sp1 - line);
    const uint8_t *target = sp1 + 1;
    const uint8_t *sp2 = memchr(target, ' ', n - method_len - 1);
    if (!sp2 || !is_token(line, method_len))
        return false;
    size_t target_len = (size_t)(sp2 - target);
    if (n - method_len - 1 - target_len - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.1", 8) != 0)
        return false;
    if (target_len == 0 || target[0] != '/')
        return false;
    for (size_t i = 0; i < target_len; i++)
        if (target[i] <= 0x20 || target[i] >= 0x7f || target[i] == '#')
            return false;
    memcpy(info->method, line, method_len);
    info->method[method_len] = '\0';
    info->target = target;
    info->target_len = target_len;
    return true;
}

static void analyse_client(struct client_info *info, const uint8_t *p, size_t n)
{
    size_t pos = 0, next = 0, len;
    bool first = true, plain = true;
    size_t content_lengths = 0, transfer_encodings = 0, hosts = 0;

    memset(info, 0, sizeof(*info));
    info->has_head_method = find(p, n, "HEAD") != NULL;
    for (size_t i = 0; i + 5 <= n; i++) {
        if (strncasecmp((const char *)p + i, "http/", 5) != 0)
            continue;
        info->request_lines++; /* once per line */
        while (i < n && p[i] != '\n' && p[i] != '\r')
            i++;
    }

    /* The first head: the first non-empty line, then lines up to an empty one. */
    while ((len = next_line(p, n, pos, &next)) != SIZE_MAX) {
        const uint8_t *line = p + pos;
        if (first) {
            if (len == 0) {
                plain = false; /* libmicrohttpd skips it; keep the simple case simple */
                pos = next;
                continue;
            }
            first = false;
            if (!parse_plain_request_line(info, line, len))
                plain = false;
        } else {
            if (len == 0)
                break;
            const uint8_t *colon = memchr(line, ':', len);
            if (colon) {
                size_t name_len = (size_t)(colon - line);
                const uint8_t *value = colon + 1;
                size_t value_len = len - name_len - 1;
                trim_ows(&value, &value_len);
                if (name_is(line, name_len, "Connection"))
                    collect_connection_tokens(info, value, value_len);
                if (name_is(line, name_len, "Content-Length")) {
                    content_lengths++;
                    uint64_t cl = 0;
                    bool digits = value_len > 0 && value_len <= 18;
                    for (size_t i = 0; i < value_len && digits; i++) {
                        if (value[i] < '0' || value[i] > '9')
                            digits = false;
                        else
                            cl = cl * 10 + (uint64_t)(value[i] - '0');
                    }
                    if (!digits)
                        plain = false;
                    info->content_length = cl;
                }
                if (name_is(line, name_len, "Transfer-Encoding"))
                    transfer_encodings++;
                if (name_is(line, name_len, "Host")) {
                    hosts++;
                    const uint8_t *raw = colon + 1;
                    size_t raw_len = len - name_len - 1;
                    while (raw_len > 0 && (raw[0] == ' ' || raw[0] == '\t'))
                        raw++, raw_len--;
                    if (raw_len == 0 || raw_len >= sizeof(info->host) ||
                        memchr(raw, ' ', raw_len) || memchr(raw, '\t', raw_len) ||
                        !is_field_value(raw, raw_len))
                        plain = false;
                    else {
                        memcpy(info->host, raw, raw_len);
                        info->host[raw_len] = '\0';
                        info->has_host = true;
                    }
                }
            }
        }
        pos = next;
    }
    if (first || len == SIZE_MAX)
        plain = false; /* no complete head */

    /* Strictly CRLF-delimited, no NUL, up to the first empty line. */
    const uint8_t *end = find(p, n, "\r\n\r\n");
    if (!end || (size_t)(end - p) + 4 != pos)
        plain = false;
    for (size_t i = 0; plain && i < pos; i++) {
        if (p[i] == '\0' || (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) ||
            (p[i] == '\r' && (i + 1 >= n || p[i + 1] != '\n')))
            plain = false;
        if (p[i] == '\n' && i + 1 < pos && (p[i + 1] == ' ' || p[i + 1] == '\t'))
            plain = false; /* obs-fold */
    }
    info->plain = plain && info->request_lines == 1 && hosts == 1 && transfer_encodings == 0 &&
                  content_lengths <= 1;
    info->single_content_length = content_lengths == 1;
    if (info->plain) {
        info->body = p + pos;
        info->body_avail = n - pos;
    }
}

/* Header names tracehop (or curl for it) sets on the upstream request itself. */
static bool set_by_tracehop(const uint8_t *name, size_t n)
{
    static const char *const names[] = {
        "Host",
        "traceparent",
        "tracestate",
        "X-Trace-ID",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        "Content-Length",
        "Transfer-Encoding",
        "X-Gateway",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (name_is(name, n, names[i]))
            return true;
    return false;
}

/* --- the fake upstream: what it receives ---------------------------------------------------- */

/* Bytes received before the head was complete: nothing that cannot be in a valid head. */
static void check_partial_head(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(p[i] != '\0');
        if (p[i] == '\n')
            CHECK(i > 0 && p[i - 1] == '\r');
        if (p[i] == '\r')
            CHECK(i + 1 == n || p[i + 1] == '\n');
    }
}

static void check_against_plain_request(struct exchange *x, const uint8_t *method,
                                        size_t method_len, const uint8_t *target, size_t target_len)
{
    const struct client_info *info = &x->info;
    char expected[4096];
    size_t path_len;

    if (!info->plain || x->heads_seen != 1)
        return;
    CHECK(method_len == strlen(info->method) && memcmp(method, info->method, method_len) == 0);
    const uint8_t *q = memchr(info->target, '?', info->target_len);
    path_len = q ? (size_t)(q - info->target) : info->target_len;
    const struct route *r = route_match(g.config, (const char *)info->target, path_len,
                                        info->has_host ? info->host : NULL,
                                        info->has_host ? strlen(info->host) : 0, info->method);
    CHECK(r != NULL); /* no route: the upstream must hear nothing */
    size_t n = route_upstream_target(r, (const char *)info->target, info->target_len, expected,
                                     sizeof(expected));
    CHECK(n > 0);
    CHECK(n == target_len && memcmp(expected, target, n) == 0);
}

/* Validate one complete head [p, p + n) (ending in CRLF CRLF) and note how its body is framed. */
static void check_upstream_head(struct exchange *x, struct upstream_conn *c, const uint8_t *p,
                                size_t n)
{
    size_t pos = 0;
    unsigned traceparents = 0, x_trace_ids = 0, tracestates = 0, hosts = 0, lengths = 0,
             encodings = 0, forwarded_for = 0, forwarded_proto = 0, forwarded_host = 0;
    const uint8_t *traceparent = NULL, *x_trace_id = NULL;
    size_t x_trace_id_len = 0;
    const uint8_t *method = NULL, *target = NULL;
    size_t method_len = 0, target_len = 0;
    bool first = true;

    x->heads_seen++;
    c->requests++;
    check_partial_head(p, n);
    c->framing = BODY_NONE;
    while (pos < n) {
        const uint8_t *crlf = find(p + pos, n - pos, "\r\n");
        CHECK(crlf);
        const uint8_t *line = p + pos;
        size_t len = (size_t)(crlf - line);
        pos += len + 2;
        if (first) {
            first = false;
            const uint8_t *sp1 = memchr(line, ' ', len);
            CHECK(sp1);
            method = line;
            method_len = (size_t)(sp1 - line);
            CHECK(is_token(method, method_len));
            target = sp1 + 1;
            const uint8_t *sp2 = memchr(target, ' ', len - method_len - 1);
            CHECK(sp2);
            target_len = (size_t)(sp2 - target);
            CHECK(target_len > 0 && target[0] == '/');
            for (size_t i = 0; i < target_len; i++)
                CHECK(target[i] > 0x20 && target[i] < 0x7f);
            CHECK(len - method_len - target_len - 2 == 8 && memcmp(sp2 + 1, "HTTP/1.1", 8) == 0);
            continue;
        }
        if (len == 0) {
            CHECK(pos == n);
            break;
        }
        CHECK(line[0] != ' ' && line[0] != '\t');
        const uint8_t *colon = memchr(line, ':', len);
        CHECK(colon);
        size_t name_len = (size_t)(colon - line);
        const uint8_t *value = colon + 1;
        size_t value_len = len - name_len - 1;
        CHECK(is_token(line, name_len));
        trim_ows(&value, &value_len);
        CHECK(is_field_value(value, value_len));

        CHECK(!name_is(line, name_len, "Connection"));
        CHECK(!name_is(line, name_len, "Keep-Alive"));
        CHECK(!name_is(line, name_len, "TE"));
        CHECK(!name_is(line, name_len, "Trailer"));
        CHECK(!name_is(line, name_len, "Upgrade"));
        CHECK(!name_is(line, name_len, "Expect"));
        CHECK(!(name_len >= 6 && strncasecmp((const char *)line, "Proxy-", 6) == 0));
        if (x->info.request_lines <= 1 && !set_by_tracehop(line, name_len))
            for (size_t i = 0; i < x->info.listed_count; i++)
                CHECK(!(x->info.listed[i].len == name_len &&
                        strncasecmp((const char *)x->info.listed[i].ptr, (const char *)line,
                                    name_len) == 0));

        if (name_is(line, name_len, "traceparent")) {
            traceparents++;
            traceparent = value;
            CHECK(is_traceparent_v00(value, value_len));
        } else if (name_is(line, name_len, "X-Trace-ID")) {
            x_trace_ids++;
            x_trace_id = value;
            x_trace_id_len = value_len;
            CHECK(is_safe_x_trace_id(value, value_len));
        } else if (name_is(line, name_len, "tracestate")) {
            tracestates++;
        } else if (name_is(line, name_len, "Host")) {
            hosts++;
        } else if (name_is(line, name_len, "X-Forwarded-For")) {
            forwarded_for++;
        } else if (name_is(line, name_len, "X-Forwarded-Proto")) {
            forwarded_proto++;
        } else if (name_is(line, name_len, "X-Forwarded-Host")) {
            forwarded_host++;
        } else if (name_is(line, name_len, "Content-Length")) {
            lengths++;
            CHECK(value_len > 0 && value_len <= 18);
            uint64_t cl = 0;
            for (size_t i = 0; i < value_len; i++) {
                CHECK(value[i] >= '0' && value[i] <= '9');
                cl = cl * 10 + (uint64_t)(value[i] - '0');
            }
            c->framing = BODY_LENGTH;
            c->content_length = cl;
        } else if (name_is(line, name_len, "Transfer-Encoding")) {
            encodings++;
            CHECK(name_is(value, value_len, "chunked"));
            c->framing = BODY_CHUNKED;
        }
    }
    CHECK(traceparents == 1 && x_trace_ids == 1);
    CHECK(tracestates <= 1 && hosts == 1 && forwarded_proto == 1 && forwarded_for <= 1 &&
          forwarded_host <= 1);
    CHECK(lengths <= 1 && encodings <= 1 && !(lengths && encodings));
    CHECK(c->framing != BODY_LENGTH || c->content_length <= MAX_BODY_BYTES);

    if (x->seen_count == x->seen_cap) {
        x->seen_cap = x->seen_cap ? 2 * x->seen_cap : 16;
        x->seen = realloc(x->seen, x->seen_cap * sizeof(*x->seen));
        FUZZ_CHECK(x->seen);
    }
    struct seen_request *s = &x->seen[x->seen_count++];
    memcpy(s->trace_id, traceparent + 3, 32);
    s->trace_id[32] = '\0';
    memcpy(s->span_id, traceparent + 36, 16);
    s->span_id[16] = '\0';
    memcpy(s->x_trace_id, x_trace_id, x_trace_id_len);
    s->x_trace_id[x_trace_id_len] = '\0';
    s->has_body =
        c->framing == BODY_CHUNKED || (c->framing == BODY_LENGTH && c->content_length > 0);
    check_against_plain_request(x, method, method_len, target, target_len);
    if (x->info.plain && x->heads_seen == 1) {
        if (x->info.single_content_length)
            CHECK(c->framing == BODY_LENGTH && c->content_length == x->info.content_length);
        else
            CHECK(c->framing == BODY_NONE);
    }
}

enum parse_result { PARSE_DONE, PARSE_MORE, PARSE_BAD };

/* Chunked framing as curl writes it: HEX CRLF data CRLF ... 0 CRLF CRLF (no extensions). */
static enum parse_result parse_chunked_request(const uint8_t *p, size_t n, size_t *consumed,
                                               size_t *body_len)
{
    size_t pos = 0, total = 0;
    for (;;) {
        size_t size = 0, digits = 0;
        while (pos + digits < n && isxdigit(p[pos + digits])) {
            if (digits >= 8)
                return PARSE_BAD;
            uint8_t d = p[pos + digits];
            size = size * 16 + (size_t)(d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10);
            digits++;
        }
        if (pos + digits + 2 > n)
            return PARSE_MORE;
        if (digits == 0 || p[pos + digits] != '\r' || p[pos + digits + 1] != '\n')
            return PARSE_BAD;
        pos += digits + 2;
        if (size == 0) {
            /* No trailers from curl: the empty line. */
            if (pos + 2 > n)
                return PARSE_MORE;
            if (p[pos] != '\r' || p[pos + 1] != '\n')
                return PARSE_BAD;
            *consumed = pos + 2;
            *body_len = total;
            return PARSE_DONE;
        }
        if (pos + size + 2 > n)
            return PARSE_MORE;
        if (p[pos + size] != '\r' || p[pos + size + 1] != '\n')
            return PARSE_BAD;
        pos += size + 2;
        total += size;
    }
}

/* Everything buffered on an upstream connection: heads, bodies, answers owed. */
static void upstream_parse(struct exchange *x, struct upstream_conn *c)
{
    for (;;) {
        if (!c->in_body) {
            const uint8_t *start = c->in + c->parse_pos;
            size_t avail = c->in_len - c->parse_pos;
            const uint8_t *end = find(start, avail, "\r\n\r\n");
            if (!end) {
                check_partial_head(start, avail);
                CHECK(avail <= 65536);
                return;
            }
            size_t head_len = (size_t)(end - start) + 4;
            check_upstream_head(x, c, start, head_len);
            c->in_body = true;
            c->body_start = c->parse_pos + head_len;
        }
        const uint8_t *body = c->in + c->body_start;
        size_t avail = c->in_len - c->body_start;
        size_t consumed = 0, body_len = 0;
        if (c->framing == BODY_LENGTH) {
            if (avail < c->content_length)
                return;
            consumed = body_len = (size_t)c->content_length;
            if (x->info.plain && x->heads_seen == 1 && x->info.single_content_length &&
                x->info.body_avail >= body_len)
                CHECK(memcmp(body, x->info.body, body_len) == 0);
        } else if (c->framing == BODY_CHUNKED) {
            enum parse_result r = parse_chunked_request(body, avail, &consumed, &body_len);
            CHECK(r != PARSE_BAD);
            if (r == PARSE_MORE)
                return;
        }
        CHECK(body_len <= MAX_BODY_BYTES);
        c->in_body = false;
        c->parse_pos = c->body_start + consumed;
        if (!(x->flags & FLAG_EARLY))
            c->owed++;
    }
}

/* --- the fake upstream: sockets ------------------------------------------------------------ */

static void upstream_accept(struct exchange *x, int listen_fd)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (x->conn_count == MAX_UPSTREAM_CONNS) {
            x->refused_connection = true;
            close(fd);
            continue;
        }
        struct upstream_conn *c = &x->conns[x->conn_count++];
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        c->open = true;
        if (x->flags & FLAG_EARLY)
            c->owed = 1;
        if (x->flags & FLAG_SLOW)
            c->resume_ms = now_ms() + SLOW_UPSTREAM_MS;
    }
}

static void upstream_close(struct upstream_conn *c)
{
    if (!c->open)
        return;
    close(c->fd);
    c->open = false;
}

static void upstream_read(struct exchange *x, struct upstream_conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 32768;
            if (cap > RECEIVE_CAP * 4)
                break; /* a runaway peer: stop reading, the deadline will tell */
            c->in = realloc(c->in, cap);
            FUZZ_CHECK(c->in);
            c->in_cap = cap;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
        if (n > 0) {
            c->in_len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            c->eof = true;
            upstream_close(c);
        }
        break;
    }
    upstream_parse(x, c);
}

static void upstream_write(struct exchange *x, struct upstream_conn *c, int64_t now)
{
    const struct paced *a = &x->answer;

    if (!c->open || c->write_shut)
        return;
    if (!c->writing) {
        if (c->owed == 0 || now < c->resume_ms)
            return;
        if ((x->flags & FLAG_EARLY) && c->answered_once)
            return;
        c->owed--;
        c->writing = true;
        c->out_sent = 0;
        c->out_pause = 0;
    }
    while (c->writing && now >= c->resume_ms) {
        size_t until = c->out_pause < a->pause_count ? a->pauses[c->out_pause] : a->len;
        if (c->out_sent < until) {
            ssize_t n = send(c->fd, a->data + c->out_sent, until - c->out_sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                    upstream_close(c);
                return;
            }
            c->out_sent += (size_t)n;
            continue;
        }
        if (c->out_pause < a->pause_count) {
            c->out_pause++;
            c->resume_ms = now + PAUSE_MS;
            return;
        }
        /* One answer complete. */
        c->writing = false;
        c->answered_once = true;
        if (!(x->flags & FLAG_KEEP_OPEN)) {
            shutdown(c->fd, SHUT_WR); /* then drain what curl still sends */
            c->write_shut = true;
        }
        return;
    }
}

/* --- the client side ------------------------------------------------------------------------ */

struct response {
    unsigned status;
    bool duplicate_head; /* libmicrohttpd 0.9.75's doubled refusal head: skip it */
    bool head_only;      /* the body could not be delimited */
    unsigned traceparents, x_trace_ids, lengths, encodings;
    const uint8_t *traceparent, *x_trace_id;
    size_t x_trace_id_len;
    uint64_t content_length;
    bool chunked;
    bool json;
    uint8_t *body; /* decoded, malloc'd */
    size_t body_len;
};

/* The first CRLF at or after from; a bare CR or LF is a syntax error. */
static enum parse_result find_crlf(const uint8_t *p, size_t n, size_t from, size_t *at)
{
    for (size_t i = from; i < n; i++) {
        if (p[i] == '\n')
            return PARSE_BAD;
        if (p[i] == '\r') {
            if (i + 1 >= n)
                return PARSE_MORE;
            if (p[i + 1] != '\n')
                return PARSE_BAD;
            *at = i;
            return PARSE_DONE;
        }
    }
    return PARSE_MORE;
}

static void body_append(struct response *r, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    r->body = realloc(r->body, r->body_len + n);
    FUZZ_CHECK(r->body);
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
}

/* One response from p[*pos]. PARSE_DONE advances *pos past it. */
static enum parse_result parse_response(const uint8_t *p, size_t n, size_t *pos, bool at_eof,
                                        bool head_only, struct response *r)
{
    size_t i = *pos, at;
    enum parse_result pr;

    memset(r, 0, sizeof(*r));
    r->head_only = head_only;
    if ((pr = find_crlf(p, n, i, &at)) != PARSE_DONE)
        return pr;
    size_t len = at - i;
    const uint8_t *line = p + i;
    if (len < 12 || memcmp(line, "HTTP/1.1 ", 9) != 0 || line[9] < '1' || line[9] > '9' ||
        line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9' ||
        (len > 12 && line[12] != ' ') || !is_field_value(line, len))
        return PARSE_BAD;
    r->status = (unsigned)((line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
    i = at + 2;
    for (;;) {
        if ((pr = find_crlf(p, n, i, &at)) != PARSE_DONE)
            return pr;
        line = p + i;
        len = at - i;
        i = at + 2;
        if (len == 0)
            break;
        const uint8_t *colon = memchr(line, ':', len);
        if (!colon || !is_token(line, (size_t)(colon - line)))
            return PARSE_BAD;
        size_t name_len = (size_t)(colon - line);
        const uint8_t *value = colon + 1;
        size_t value_len = len - name_len - 1;
        trim_ows(&value, &value_len);
        if (!is_field_value(value, value_len))
            return PARSE_BAD;
        if (name_is(line, name_len, "traceparent")) {
            r->traceparents++;
            if (value_len != 55)
                return PARSE_BAD; /* checked in detail by the caller; keep the pointer safe */
            r->traceparent = value;
        } else if (name_is(line, name_len, "X-Trace-ID")) {
            r->x_trace_ids++;
            r->x_trace_id = value;
            r->x_trace_id_len = value_len;
        } else if (name_is(line, name_len, "Content-Length")) {
            r->lengths++;
            if (value_len == 0 || value_len > 18)
                return PARSE_BAD;
            for (size_t k = 0; k < value_len; k++) {
                if (value[k] < '0' || value[k] > '9')
                    return PARSE_BAD;
                r->content_length = r->content_length * 10 + (uint64_t)(value[k] - '0');
            }
        } else if (name_is(line, name_len, "Transfer-Encoding")) {
            r->encodings++;
            if (!name_is(value, value_len, "chunked"))
                return PARSE_BAD;
            r->chunked = true;
        } else if (name_is(line, name_len, "Content-Type")) {
            r->json = name_is(value, value_len, "application/json");
        }
    }
    if (r->lengths > 1 || r->encodings > 1 || (r->lengths && r->encodings))
        return PARSE_BAD;
    /* libmicrohttpd 0.9.75 sends the head of its own refusal of an unparsable Content-Length
     * ("6 ", "x") twice, then the body once (parse_connection_headers queues it, the state
     * machine then builds the head again). Not tracehop's doing, and it cannot intercept it:
     * the duplicate is skipped, anything else about the stream is still checked. */
    size_t head_len = i - *pos;
    if (r->traceparents == 0 && r->x_trace_ids == 0 && r->status == 400 && n - i >= head_len &&
        memcmp(p + *pos, p + i, head_len) == 0) {
        r->duplicate_head = true;
        *pos = i;
        return PARSE_DONE;
    }
    if (r->status < 200) {
        /* Only libmicrohttpd's own interim answer to Expect: 100-continue. */
        if (i - *pos != strlen(CONTINUE_100) || memcmp(p + *pos, CONTINUE_100, i - *pos) != 0)
            return PARSE_BAD;
        *pos = i;
        return PARSE_DONE;
    }
    if (head_only || r->status == 204 || r->status == 304) {
        *pos = head_only ? n : i;
        return PARSE_DONE;
    }
    if (r->chunked) {
        for (;;) {
            if ((pr = find_crlf(p, n, i, &at)) != PARSE_DONE)
                return pr;
            size_t size = 0, digits = 0;
            while (i + digits < at && isxdigit(p[i + digits])) {
                if (digits >= 15)
                    return PARSE_BAD;
                uint8_t d = p[i + digits];
                size = size * 16 + (size_t)(d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10);
                digits++;
            }
            if (digits == 0 || (i + digits < at && p[i + digits] != ';'))
                return PARSE_BAD;
            i = at + 2;
            if (size == 0)
                break;
            if (n - i < size + 2)
                return PARSE_MORE;
            if (p[i + size] != '\r' || p[i + size + 1] != '\n')
                return PARSE_BAD;
            body_append(r, p + i, size);
            i += size + 2;
        }
        for (;;) { /* trailers */
            if ((pr = find_crlf(p, n, i, &at)) != PARSE_DONE)
                return pr;
            size_t tlen = at - i;
            const uint8_t *colon = memchr(p + i, ':', tlen);
            if (tlen > 0 && (!colon || !is_token(p + i, (size_t)(colon - p - i))))
                return PARSE_BAD;
            i = at + 2;
            if (tlen == 0)
                break;
        }
    } else if (r->lengths) {
        if (n - i < r->content_length)
            return PARSE_MORE;
        body_append(r, p + i, (size_t)r->content_length);
        i += (size_t)r->content_length;
    } else {
        /* Delimited by the close. */
        if (!at_eof)
            return PARSE_MORE;
        body_append(r, p + i, n - i);
        i = n;
    }
    *pos = i;
    return PARSE_DONE;
}

static const struct seen_request *seen_span(const struct exchange *x, const uint8_t *span)
{
    for (size_t i = 0; i < x->seen_count; i++)
        if (memcmp(x->seen[i].span_id, span, 16) == 0)
            return &x->seen[i];
    return NULL;
}

static bool is_canned_body(const struct response *r)
{
    for (size_t i = 0; i < sizeof(MHD_CANNED_BODIES) / sizeof(MHD_CANNED_BODIES[0]); i++)
        if (r->body_len == strlen(MHD_CANNED_BODIES[i]) &&
            memcmp(r->body, MHD_CANNED_BODIES[i], r->body_len) == 0)
            return true;
    return false;
}

static bool json_string_is(json_t *object, const char *key, const uint8_t *expected, size_t n)
{
    json_t *v = json_object_get(object, key);
    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), expected, n) == 0;
}

/* tracehop's own error (docs/security.md, docs/access-log.md): its status and JSON body, ids equal
 * to the headers. */
static void check_tracehop_error(const struct response *r)
{
    static const unsigned statuses[] = {400, 404, 413, 414, 431, 500, 501, 502, 504};
    bool listed = false;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        listed |= r->status == statuses[i];
    CHECK(listed);
    CHECK(r->json);
    json_error_t error;
    json_t *body = json_loadb((const char *)r->body, r->body_len, 0, &error);
    CHECK(json_is_object(body));
    CHECK(json_is_string(json_object_get(body, "error")));
    CHECK(json_is_string(json_object_get(body, "message")));
    CHECK(json_string_is(body, "trace_id", r->traceparent + 3, 32));
    CHECK(json_string_is(body, "span_id", r->traceparent + 36, 16));
    CHECK(json_string_is(body, "x_trace_id", r->x_trace_id, r->x_trace_id_len));
    json_decref(body);
}

static const struct seen_request *seen_span(const struct exchange *x, const uint8_t *span);

/*
 * A well-behaved upstream never makes tracehop report it broken (timeouts aside). It may close
 * a kept-alive connection right after an answer, as HTTP/1.1 allows; curl then retries on a new
 * connection, except a request whose streamed body it already started to send and cannot
 * rewind: that one may end in 502 upstream_reset (as nginx does for non-idempotent requests).
 */
static void check_no_false_reset(const struct exchange *x, const struct response *r)
{
    if (!x->default_answer || x->refused_connection || !r->json || r->status != 502)
        return;
    const struct seen_request *s = seen_span(x, r->traceparent + 36);
    if (s && s->has_body)
        return;
    json_t *body = json_loadb((const char *)r->body, r->body_len, 0, NULL);
    json_t *error = json_object_get(body, "error");
    CHECK(!(json_is_string(error) && strcmp(json_string_value(error), "upstream_reset") == 0));
    json_decref(body);
}

static void check_final_response(const struct exchange *x, const struct response *r)
{
    if (r->traceparents == 0 && r->x_trace_ids == 0) {
        /* libmicrohttpd refused the request itself. */
        CHECK(r->status >= 400 && r->status <= 505);
        if (!r->head_only)
            CHECK(is_canned_body(r));
        return;
    }
    CHECK(r->traceparents == 1 && r->x_trace_ids == 1);
    CHECK(is_traceparent_v00(r->traceparent, 55));
    CHECK(is_safe_x_trace_id(r->x_trace_id, r->x_trace_id_len));
    check_no_false_reset(x, r);
    const struct seen_request *s = seen_span(x, r->traceparent + 36);
    if (s) {
        CHECK(memcmp(s->trace_id, r->traceparent + 3, 32) == 0);
        CHECK(strlen(s->x_trace_id) == r->x_trace_id_len &&
              memcmp(s->x_trace_id, r->x_trace_id, r->x_trace_id_len) == 0);
    } else if (!r->head_only) {
        check_tracehop_error(r);
    }
}

/*
 * Walk what the client received. With check, every complete response is validated and a syntax
 * error fails; without, it only counts complete final responses (to know when to stop waiting).
 */
static size_t walk_responses(const struct exchange *x, bool at_eof, bool check)
{
    size_t pos = 0, finals = 0;
    bool head_only = x->info.has_head_method;

    while (pos < x->received_len) {
        struct response r;
        enum parse_result pr =
            parse_response(x->received, x->received_len, &pos, at_eof, head_only, &r);
        if (check)
            CHECK(pr != PARSE_BAD);
        if (pr == PARSE_DONE && r.duplicate_head)
            continue;
        if (pr == PARSE_DONE && r.status >= 200) {
            finals++;
            if (check)
                check_final_response(x, &r);
        }
        free(r.body);
        if (pr != PARSE_DONE || head_only)
            break; /* cut short by the close (an abort), or nothing more can be delimited */
    }
    return finals;
}

static void client_read(struct exchange *x, int64_t now)
{
    for (;;) {
        if (x->received_cap - x->received_len < 16384) {
            size_t cap = x->received_cap ? x->received_cap * 2 : 32768;
            CHECK(cap <= RECEIVE_CAP);
            x->received = realloc(x->received, cap);
            FUZZ_CHECK(x->received);
            x->received_cap = cap;
        }
        ssize_t n = recv(x->client_fd, x->received + x->received_len,
                         x->received_cap - x->received_len, MSG_DONTWAIT);
        if (n > 0) {
            x->received_len += (size_t)n;
            x->last_activity_ms = now;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            x->client_eof = true; /* closed, or reset: an abort */
        return;
    }
}

static void client_write(struct exchange *x, int64_t now)
{
    const struct paced *c = &x->client;

    while (!x->client_write_done && now >= x->client_resume_ms) {
        size_t until = x->client_pause < c->pause_count ? c->pauses[x->client_pause] : c->len;
        if (x->client_sent < until) {
            ssize_t n = send(x->client_fd, c->data + x->client_sent, until - x->client_sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                    x->client_write_done = true; /* the daemon closed already */
                return;
            }
            x->client_sent += (size_t)n;
            x->last_activity_ms = now;
            continue;
        }
        if (x->client_pause < c->pause_count) {
            x->client_pause++;
            x->client_resume_ms = now + PAUSE_MS;
            return;
        }
        x->client_write_done = true;
        x->last_activity_ms = now;
    }
}

/* Half-close or abort when the flags say it is time. */
static void client_decide(struct exchange *x, int64_t now)
{
    if (!x->client_write_done || x->client_shut || x->client_closed)
        return;
    bool idle = now - x->last_activity_ms >= IDLE_MS;
    if (x->flags & FLAG_CLIENT_ABORT) {
        if (x->heads_seen > 0 || idle) {
            struct linger hard = {.l_onoff = 1, .l_linger = 0};
            setsockopt(x->client_fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
            close(x->client_fd);
            x->client_fd = -1;
            x->client_closed = true;
        }
        return;
    }
    /* A FIN that arrives with the last bytes is missed by libmicrohttpd 0.9.75 until its
     * connection timeout (edge-triggered epoll, and a short read clears its read-ready flag):
     * half-close a little later, so that most inputs do not pay the client timeout. */
    bool settled = now - x->last_activity_ms >= HALF_CLOSE_DELAY_MS;
    if (((x->flags & FLAG_HALF_CLOSE) && settled) || idle ||
        walk_responses(x, false, false) >= (x->info.request_lines ? x->info.request_lines : 1)) {
        shutdown(x->client_fd, SHUT_WR);
        x->client_shut = true;
    }
}

/* --- the loop ------------------------------------------------------------------------------ */

static int64_t earlier(int64_t a, int64_t b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* One poll round over the client (if watching), the listeners and the upstream connections. */
static void poll_round(struct exchange *x, int64_t deadline_ms, bool watch_client)
{
    struct pollfd fds[3 + MAX_UPSTREAM_CONNS];
    size_t conn_slot[MAX_UPSTREAM_CONNS];
    nfds_t n = 0;
    int64_t now = now_ms(), wake = deadline_ms;
    bool client_watched = watch_client && x->client_fd >= 0 && !x->client_eof;

    if (client_watched) {
        short events = POLLIN;
        if (!x->client_write_done) {
            if (now >= x->client_resume_ms)
                events |= POLLOUT;
            else
                wake = earlier(wake, x->client_resume_ms);
        } else if (!x->client_shut && !x->client_closed) {
            wake =
                earlier(wake, x->last_activity_ms +
                                  ((x->flags & FLAG_HALF_CLOSE) ? HALF_CLOSE_DELAY_MS : IDLE_MS));
        }
        fds[n++] = (struct pollfd){.fd = x->client_fd, .events = events};
    }
    size_t listeners = n;
    fds[n++] = (struct pollfd){.fd = g.upstream_tcp_fd, .events = POLLIN};
    fds[n++] = (struct pollfd){.fd = g.upstream_unix_fd, .events = POLLIN};
    size_t first_conn = n;
    for (size_t i = 0; i < x->conn_count; i++) {
        struct upstream_conn *c = &x->conns[i];
        if (!c->open)
            continue;
        short events = POLLIN;
        if (c->writing || c->owed > 0) {
            if (now >= c->resume_ms)
                events |= POLLOUT;
            else
                wake = earlier(wake, c->resume_ms);
        }
        conn_slot[n - first_conn] = i;
        fds[n++] = (struct pollfd){.fd = c->fd, .events = events};
    }
    int timeout = wake <= now ? 0 : (int)(wake - now);
    int ready = poll(fds, n, timeout);
    if (ready < 0 && errno != EINTR)
        CHECK(!"poll failed");
    now = now_ms();

    if (fds[listeners].revents)
        upstream_accept(x, g.upstream_tcp_fd);
    if (fds[listeners + 1].revents)
        upstream_accept(x, g.upstream_unix_fd);
    for (size_t k = first_conn; k < n; k++) {
        struct upstream_conn *c = &x->conns[conn_slot[k - first_conn]];
        if (fds[k].revents & (POLLIN | POLLHUP | POLLERR))
            upstream_read(x, c);
    }
    for (size_t i = 0; i < x->conn_count; i++)
        upstream_write(x, &x->conns[i], now);
    if (client_watched) {
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
            client_read(x, now);
        client_write(x, now);
        client_decide(x, now);
    }
}

static bool daemon_is_idle(void)
{
    return atomic_load(&g.worker.metrics.in_flight) == 0 &&
           atomic_load(&g.worker.metrics.open_connections) == 0;
}

/*
 * A loopback connection to the daemon. Running out of local ports is the machine's limit, not a
 * daemon fault: wait for some (bounded), then report it as what it is.
 */
/* A blocking connect interrupted by a signal goes on in the background: wait for its end. */
static bool connect_completes(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int error = 0;
    socklen_t len = sizeof(error);
    int n;
    while ((n = poll(&p, 1, 5000)) < 0 && errno == EINTR)
        ;
    return n == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0;
}

static void connect_to_daemon(int fd)
{
    for (int attempt = 0;; attempt++) {
        if (connect(fd, (struct sockaddr *)&g.daemon_addr, sizeof(g.daemon_addr)) == 0)
            return;
        if (errno == EINTR && connect_completes(fd)) /* libFuzzer's SIGALRM */
            return;
        if (errno != EADDRNOTAVAIL || attempt == 100) {
            fprintf(stderr, "fuzz-daemon: connect to the daemon: %s\n", strerror(errno));
            CHECK(!"cannot connect to the daemon");
        }
        usleep(10000);
    }
}

/*
 * The client half-closes first, so its side would keep the port in TIME_WAIT for a minute: at a
 * few hundred connections a second that exhausts the local ports. The exchange is over, so end
 * it with a reset instead (zero linger), which leaves nothing behind.
 */
static void close_without_time_wait(int fd)
{
    struct linger hard = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    close(fd);
}

static void exchange_run(struct exchange *x)
{
    int64_t start = now_ms();

    g.current = x;
    x->client_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(x->client_fd >= 0);
    int one = 1;
    setsockopt(x->client_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    connect_to_daemon(x->client_fd);
    x->last_activity_ms = start;

    /* The client's part: until the daemon closes, or we aborted. */
    while (!x->client_eof && !x->client_closed) {
        CHECK(now_ms() - start < EXCHANGE_DEADLINE_MS); /* the daemon never closed */
        poll_round(x, start + EXCHANGE_DEADLINE_MS, true);
    }
    if (x->client_fd >= 0)
        close_without_time_wait(x->client_fd);
    x->client_fd = -1;
    x->client_ms = now_ms() - start;

    /* The daemon lets go of everything; the upstream keeps being served meanwhile. */
    int64_t left = now_ms();
    while (!daemon_is_idle()) {
        CHECK(now_ms() - left < QUIESCE_DEADLINE_MS); /* a request or connection is stuck */
        poll_round(x, now_ms() + 1, false);
    }
    x->quiesce_ms = now_ms() - left;
    /* Whatever the upstream got until now is in its socket buffers. */
    for (size_t i = 0; i < x->conn_count; i++)
        if (x->conns[i].open)
            upstream_read(x, &x->conns[i]);
    upstream_accept(x, g.upstream_tcp_fd);
    upstream_accept(x, g.upstream_unix_fd);

    walk_responses(x, true, true);
    if (g.verbose)
        dump_exchange();
    for (size_t i = 0; i < x->conn_count; i++) {
        struct upstream_conn *c = &x->conns[i];
        if (c->in_body || c->parse_pos < c->in_len)
            check_partial_head(c->in + c->parse_pos, c->in_body ? 0 : c->in_len - c->parse_pos);
        upstream_close(c);
    }
    g.current = NULL;
}

/* The upstream connections' buffers live until here: a failed check after exchange_run (the
 * canary's) still prints what they received. */
static void exchange_free(struct exchange *x)
{
    for (size_t i = 0; i < x->conn_count; i++)
        free(x->conns[i].in);
    free(x->client.data);
    free(x->answer.data);
    free(x->received);
    free(x->seen);
}

/* A well-formed request must get the upstream's 200 through a live worker. */
static void run_canary(void)
{
    struct exchange x = {.flags = FLAG_HALF_CLOSE, .canary = true};

    paced_init(&x.client, (const uint8_t *)CANARY_REQUEST, strlen(CANARY_REQUEST));
    paced_init(&x.answer, (const uint8_t *)CANARY_ANSWER, strlen(CANARY_ANSWER));
    analyse_client(&x.info, x.client.data, x.client.len);
    exchange_run(&x);
    g.current = &x;
    size_t pos = 0;
    struct response r;
    CHECK(parse_response(x.received, x.received_len, &pos, true, false, &r) == PARSE_DONE);
    CHECK(r.status == 200 && r.body_len == 6 && memcmp(r.body, "canary", 6) == 0);
    CHECK(r.traceparents == 1 && x.seen_count == 1);
    free(r.body);
    g.current = NULL;
    exchange_free(&x);
}

/* --- set-up and tear-down ----------------------------------------------------------------- */

static int open_upstream_listeners(int *ret_port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);

    g.upstream_tcp_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (g.upstream_tcp_fd < 0 || bind(g.upstream_tcp_fd, (struct sockaddr *)&addr, len) < 0 ||
        listen(g.upstream_tcp_fd, 64) < 0 ||
        getsockname(g.upstream_tcp_fd, (struct sockaddr *)&addr, &len) < 0)
        return -errno;
    *ret_port = ntohs(addr.sin_port);

    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", g.unix_path);
    g.upstream_unix_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (g.upstream_unix_fd < 0 ||
        bind(g.upstream_unix_fd, (struct sockaddr *)&un, sizeof(un)) < 0 ||
        listen(g.upstream_unix_fd, 64) < 0)
        return -errno;
    return 0;
}

static void write_config(int upstream_port)
{
    FILE *f = fopen(g.config_path, "we");
    FUZZ_CHECK(f);
    fprintf(f,
            "{\n"
            "  \"service_name\": \"fuzz-daemon\",\n"
            "  \"listen\": \"127.0.0.1:0\",\n"
            "  \"admin\": {\"listen\": \"off\"},\n"
            "  \"workers\": 1,\n"
            "  \"trace\": {\"sampling_ratio\": 0.5, \"trust_incoming\": true, \"echo\": true},\n"
            "  \"access_log\": {\"path\": \"/dev/null\", \"fields\": [\"X-Tenant-ID\"],\n"
            "                  \"redact\": [\"token\", \"Authorization\"]},\n"
            "  \"limits\": {\"max_header_bytes\": %d, \"max_body_bytes\": %d,\n"
            "             \"max_connections\": 64, \"client_timeout_ms\": 1000,\n"
            "             \"drain_delay_ms\": 0, \"drain_timeout_ms\": 1000},\n"
            "  \"routes\": [\n"
            "    {\"name\": \"down\", \"match\": {\"path_prefix\": \"/down\"},\n"
            "     \"upstream\": \"unix:%s/nobody.sock\",\n"
            "     \"connect_timeout_ms\": 200, \"timeout_ms\": 300},\n"
            "    {\"name\": \"unix\", \"match\": {\"path_prefix\": \"/unix\",\n"
            "                                  \"methods\": [\"GET\", \"POST\", \"PUT\"]},\n"
            "     \"upstream\": \"unix:%s\", \"connect_timeout_ms\": 200, \"timeout_ms\": 300},\n"
            "    {\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\", \"host\": "
            "\"api.example\"},\n"
            "     \"upstream\": \"http://127.0.0.1:%d/base\", \"strip_prefix\": true,\n"
            "     \"connect_timeout_ms\": 200, \"timeout_ms\": 300,\n"
            "     \"set_request_headers\": {\"X-Gateway\": \"fuzz\"}},\n"
            "    {\"name\": \"default\", \"match\": {\"path_prefix\": \"/\", \"methods\":\n"
            "       [\"GET\", \"HEAD\", \"POST\", \"PUT\", \"DELETE\", \"PATCH\", \"OPTIONS\"]},\n"
            "     \"upstream\": \"http://127.0.0.1:%d\",\n"
            "     \"connect_timeout_ms\": 200, \"timeout_ms\": 300}\n"
            "  ]\n"
            "}\n",
            MAX_HEADER_BYTES, MAX_BODY_BYTES, g.dir, g.unix_path, upstream_port, upstream_port);
    FUZZ_CHECK(fclose(f) == 0);
}

static void setup(void)
{
    struct config_overrides none = {0};
    char error[CONFIG_ERROR_MAX];
    int port = 0;

    signal(SIGPIPE, SIG_IGN); /* MHD_OPTION_SIGPIPE_HANDLED_BY_APP, as main.c */
    g.verbose = getenv("FUZZ_DAEMON_VERBOSE") != NULL;
    const char *every = getenv("FUZZ_DAEMON_CANARY_EVERY");
    g.canary_every = every && atoi(every) > 0 ? (unsigned)atoi(every) : CANARY_EVERY;
    diag_set_level(g.verbose ? DIAG_DEBUG : DIAG_ERROR);
    snprintf(g.dir, sizeof(g.dir), "/tmp/fuzz-daemon-XXXXXX");
    FUZZ_CHECK(mkdtemp(g.dir));
    snprintf(g.config_path, sizeof(g.config_path), "%s/config.json", g.dir);
    snprintf(g.unix_path, sizeof(g.unix_path), "%s/up.sock", g.dir);
    FUZZ_CHECK(open_upstream_listeners(&port) == 0);
    write_config(port);
    if (config_load(g.config_path, &none, &none, NULL, &g.config, error) < 0) {
        fprintf(stderr, "fuzz-daemon: config: %s\n", error);
        abort();
    }
    FUZZ_CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
    FUZZ_CHECK(accesslog_open(g.config->access_log_path, 1024 * 1024, &g.log) == 0);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = listen_open((struct sockaddr *)&addr, sizeof(addr), 128);
    FUZZ_CHECK(fd >= 0);
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    FUZZ_CHECK(listen_bound_address(fd, &bound, &bound_len) == 0);
    memcpy(&g.daemon_addr, &bound, sizeof(g.daemon_addr));

    if (worker_init(&g.worker, 0, g.config, g.log, NULL, &fd, 1, error, sizeof(error)) < 0) {
        fprintf(stderr, "fuzz-daemon: worker: %s\n", error);
        abort();
    }
    FUZZ_CHECK(worker_start(&g.worker) == 0);
    g.worker_started = true;
    g.ready = true;
}

__attribute__((destructor)) static void teardown(void)
{
    if (!g.ready)
        return;
    if (g.worker_started) {
        worker_request_drain(&g.worker);
        worker_join(&g.worker);
    }
    worker_destroy(&g.worker);
    g.log = accesslog_close(g.log);
    config_unref(g.config);
    curl_global_cleanup();
    close(g.upstream_tcp_fd);
    close(g.upstream_unix_fd);
    unlink(g.unix_path);
    unlink(g.config_path);
    rmdir(g.dir);
    g.ready = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct exchange x = {0};

    if (!g.ready)
        setup();
    if (size < 1)
        return 0;
    x.flags = data[0] & 0x1f;
    const uint8_t *rest = data + 1;
    size_t rest_len = size - 1;
    const uint8_t *sep = find(rest, rest_len, SEPARATOR);
    if (sep) {
        size_t client_len = (size_t)(sep - rest);
        paced_init(&x.client, rest, client_len);
        paced_init(&x.answer, sep + strlen(SEPARATOR), rest_len - client_len - strlen(SEPARATOR));
    } else {
        paced_init(&x.client, rest, rest_len);
        paced_init(&x.answer, (const uint8_t *)DEFAULT_ANSWER, strlen(DEFAULT_ANSWER));
        x.default_answer = true;
    }
    analyse_client(&x.info, x.client.data, x.client.len);
    exchange_run(&x);
    bool answered = x.received_len > 0;
    exchange_free(&x);

    if (++g.inputs % g.canary_every == 0 || (!answered && !(x.flags & FLAG_CLIENT_ABORT)))
        run_canary();
    return 0;
}
