/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The integration-test harness: the real tracehop binary and the echo upstream as child
 * processes, a libcurl (or raw-socket) client, and readers for what both sides wrote down.
 *
 * Rules every helper keeps:
 *   - Every wait is bounded and waits for an event where there is one (inotify on the
 *     directory of a log file, a pidfd for a process exit, poll on sockets); a helper that
 *     times out says on stderr what it waited for, and returns a failure for the test to assert.
 *   - Child processes are stopped by PID: SIGTERM, a bounded wait, SIGKILL as the last resort.
 *     They also get PR_SET_PDEATHSIG, and an atexit hook kills what a failing test left
 *     behind, so no daemon outlives its test program.
 *   - The binaries come from the environment: TRACEHOP_BIN and ECHO_UPSTREAM_BIN (meson sets
 *     both).
 *
 * Ownership: functions returning json_t* return a new reference (json_decref it); strings from
 * harness_* are owned by the structure they come from unless stated.
 *
 * The helpers are grouped by job, one file each, in the order of the sections below:
 * harness-process.c, harness-files.c, harness-jsonl.c, harness-servers.c,
 * harness-access-log.c, harness-response.c, harness-http.c, harness-socket.c, harness-data.c,
 * harness-otlp.c and harness-check.c. What they share among themselves is in harness-internal.h;
 * the tests include this header only.
 */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HARNESS_PATH_MAX 512
/* Default bound for waiting on a log line, a record or a start-up message. */
#define HARNESS_WAIT_MS 10000

/* --- processes (harness-process.c) -------------------------------------------------------- */

struct harness_process {
    pid_t pid; /* 0 when not running */
    int pidfd; /* -1 when the kernel has no pidfd_open */
    bool reaped;
    int status; /* waitpid() status, valid once reaped */
};

/*
 * Start argv[0] with stdin from /dev/null and stdout/stderr appended to the given files (NULL:
 * /dev/null). TRACEHOP_* and OTEL_* variables are removed from the child's environment (a
 * developer's shell must not change a test's result), then each
 * "NAME=value" of env_extra (NULL-terminated, may be NULL) is added (replacing an inherited NAME).
 * Returns 0 or -errno.
 */
int harness_spawn(struct harness_process *p, char *const argv[], const char *stdout_path,
                  const char *stderr_path, char *const env_extra[]);
/* Wait up to timeout_ms for the process to exit; true (and reaped) if it did. */
bool harness_process_wait(struct harness_process *p, int timeout_ms);
/*
 * SIGTERM, wait up to timeout_ms, then SIGKILL (and wait 5 s more). Returns the exit code, or
 * 128 + signal when it died of a signal, or -1 if it could not be reaped. Accepts a process
 * that already exited or never started (returns its status, or -1).
 */
int harness_process_stop(struct harness_process *p, int timeout_ms);
/* Exit code of a reaped process as harness_process_stop reports it. */
int harness_exit_code(const struct harness_process *p);
/* VmRSS of a running process in KiB, -1 if unknown. */
long harness_rss_kib(pid_t pid);
/* Open file descriptors of a process (entries of /proc/PID/fd), -1 if unknown. */
int harness_fd_count(pid_t pid);
/*
 * Wait until the process has at most `max` open fds, for at most timeout_ms (the kernel gives
 * no event for this: /proc is polled every 20 ms). True if it got there; *last gets the count
 * seen last (may be NULL).
 */
bool harness_wait_fd_count_at_most(pid_t pid, int max, int timeout_ms, int *last);

/* --- temporary directories and files (harness-files.c) ------------------------------------ */

/* Create a fresh directory under $TMPDIR (or /tmp); out gets its path. Returns 0 or -errno. */
int harness_tmpdir(char *out, size_t size);
/* Remove a directory tree made by harness_tmpdir (kept when HARNESS_KEEP is set). */
void harness_tmpdir_remove(const char *dir);
/* Write text to path (truncating). Returns 0 or -errno. */
int harness_write_file(const char *path, const char *text);
/* Wait until `path` exists (e.g. a log file reopened after a rename). */
bool harness_wait_file_exists(const char *path, int timeout_ms);
/* The whole file, NUL-terminated; NULL if it cannot be read. Caller frees. */
char *harness_read_file(const char *path, size_t *ret_len);

/* --- JSON lines files: access log, echo records, diagnostics (harness-jsonl.c) ------------ */

typedef bool (*harness_match_fn)(json_t *object, const void *arg);

/* Match objects whose string member `key` equals `value` (value NULL: the member is null). */
struct harness_field_match {
    const char *key;
    const char *value;
};
bool harness_match_field(json_t *object, const void *arg);
/* Match objects whose string member `key` starts with `value`. */
bool harness_match_field_prefix(json_t *object, const void *arg);
/* Match echo records holding a request header `key` (any case) with exactly `value`. */
bool harness_match_record_header(json_t *object, const void *arg);

/* Every JSON object of a JSON-lines file, in order, as an array (empty if no file). */
json_t *harness_jsonl_read(const char *path);
/*
 * Wait until `path` holds at least `want` objects that `match` accepts (match NULL: any), for
 * at most timeout_ms, and return all matching objects seen (possibly fewer than `want` on
 * timeout, which is reported on stderr unless timeout_ms is 0: a plain look). If `watch` is
 * given and exits, stop waiting early.
 */
json_t *harness_jsonl_wait(const char *path, harness_match_fn match, const void *arg, size_t want,
                           int timeout_ms, struct harness_process *watch);
/* The first matching object, waiting up to HARNESS_WAIT_MS; NULL on timeout. */
json_t *harness_jsonl_wait_one(const char *path, harness_match_fn match, const void *arg);

/* JSON accessors: NULL / default when the member is missing or of another type. */
const char *harness_json_str(json_t *object, const char *key);
bool harness_json_is_null(json_t *object, const char *key);
json_int_t harness_json_int(json_t *object, const char *key, json_int_t def);

/* Echo records: the first value of request header `name` (any case), NULL if absent. */
const char *harness_record_header(json_t *record, const char *name);
/* How many request headers named `name` (any case) the record holds. */
size_t harness_record_header_count(json_t *record, const char *name);

/* --- the servers: echo upstream, daemon, bad upstream (harness-servers.c) ----------------- */

struct harness_echo {
    struct harness_process proc;
    unsigned port;                      /* 0 for a unix socket */
    char url[HARNESS_PATH_MAX + 8];     /* http://127.0.0.1:PORT or unix:/path */
    char record_path[HARNESS_PATH_MAX]; /* --record file */
    char unix_path[HARNESS_PATH_MAX];
    char stdout_path[HARNESS_PATH_MAX];
    char stderr_path[HARNESS_PATH_MAX];
};

/* Start echo-upstream in dir, on 127.0.0.1:0 or on dir/echo.sock. Returns 0 or -errno. */
int harness_echo_start(struct harness_echo *e, const char *dir, bool unix_socket);
/* Stop it (SIGTERM, bounded wait); returns its exit code like harness_process_stop. */
int harness_echo_stop(struct harness_echo *e);
/* The record of the request that carried header `name: value`; NULL after HARNESS_WAIT_MS. */
json_t *harness_echo_record(struct harness_echo *e, const char *name, const char *value);

struct harness_daemon {
    struct harness_process proc;
    unsigned port;
    char access_log[HARNESS_PATH_MAX];
    char stderr_path[HARNESS_PATH_MAX];
    char config_path[HARNESS_PATH_MAX];
};

/*
 * Start tracehop in dir with --listen 127.0.0.1:0 --access-log dir/access-PID-N.log --workers 2
 * --admin-listen off, plus --config dir/config-PID-N.json when config_json is given, plus `args`
 * (NULL-terminated, may be NULL). In config_json, every "{ECHO}" becomes echo_url. Waits
 * (bounded) for the "listening on 127.0.0.1:PORT" diagnostic and for the port to accept.
 * Returns 0, or -errno / -ETIMEDOUT (the daemon's stderr is then copied to our stderr).
 */
int harness_daemon_start(struct harness_daemon *d, const char *dir, const char *config_json,
                         const char *echo_url, const char *const *args);
/* The same with "NAME=value" variables added to the daemon's environment (NULL-terminated). */
int harness_daemon_start_env(struct harness_daemon *d, const char *dir, const char *config_json,
                             const char *echo_url, const char *const *args,
                             char *const env_extra[]);
/* SIGINT (a drain without the drain delay), bounded wait; exit code like harness_process_stop. */
int harness_daemon_stop(struct harness_daemon *d);
/* Copy the daemon's stderr to ours (for failure reports). */
void harness_daemon_dump_stderr(const struct harness_daemon *d);
/*
 * The admin port of a daemon started with admin.listen 127.0.0.1:0: from its "admin listening on
 * 127.0.0.1:PORT" diagnostic, then waiting for its readiness diagnostic too (the admin listener
 * comes up just before the process is ready, and /readyz says 503 until then). Asserts both.
 */
unsigned harness_daemon_admin_port(struct harness_daemon *d);

/* One echo upstream plus one daemon in a private directory: the usual test fixture. */
struct harness_env {
    char dir[HARNESS_PATH_MAX];
    struct harness_echo echo;
    struct harness_daemon daemon;
};

/* Start both (config_json as for harness_daemon_start; NULL: --upstream <echo url>). */
int harness_env_start(struct harness_env *env, const char *config_json);
/* Stop both and remove the directory. Safe on a partly started env. */
void harness_env_stop(struct harness_env *env);

/* bad-upstream (BAD_UPSTREAM_BIN, see bad-upstream.c) on 127.0.0.1:0, with its events file. */
struct harness_bad {
    struct harness_process proc;
    unsigned port;
    char url[64];                       /* http://127.0.0.1:PORT */
    char events_path[HARNESS_PATH_MAX]; /* JSON lines: head, request, closed */
    char stdout_path[HARNESS_PATH_MAX];
    char stderr_path[HARNESS_PATH_MAX];
};

/* Start it in dir; waits (bounded) for its "listening on" line and its port. 0 or -errno. */
int harness_bad_start(struct harness_bad *b, const char *dir);
/* Stop it (SIGTERM, bounded wait); its exit code like harness_process_stop. */
int harness_bad_stop(struct harness_bad *b);
/*
 * The first bad-upstream event named `event` ("head", "request", "closed") whose target starts
 * with target_prefix, waiting up to timeout_ms; NULL on timeout (reported on stderr).
 */
json_t *harness_bad_event(struct harness_bad *b, const char *event, const char *target_prefix,
                          int timeout_ms);

/* A helper server of a test's own (a script): argv runs in dir with stdout and stderr in
 * dir/NAME.out and dir/NAME.err; it must print "listening on 127.0.0.1:PORT" on stdout. */
struct harness_helper {
    struct harness_process proc;
    unsigned port;
    char url[64]; /* http://127.0.0.1:PORT */
    char stdout_path[HARNESS_PATH_MAX];
    char stderr_path[HARNESS_PATH_MAX];
};

/* Start it; waits (bounded) for its "listening on" line and for its port. 0 or -errno. */
int harness_helper_start(struct harness_helper *h, const char *dir, const char *name,
                         char *const argv[]);
/* Stop it (SIGTERM, bounded wait); its exit code like harness_process_stop. */
int harness_helper_stop(struct harness_helper *h);

/* --- the access log (harness-access-log.c) ------------------------------------------------ */

/* The access-log line whose string member key equals value; NULL after HARNESS_WAIT_MS. */
json_t *harness_log_line(struct harness_daemon *d, const char *key, const char *value);
/*
 * Check an access-log line against docs/access-log.md (Fields, Always present): every
 * always-present field is there, with the right JSON type, and `time` is RFC 3339 UTC with
 * milliseconds within a minute of now.
 * Returns NULL if so, else a description of the first problem (static storage).
 */
const char *harness_log_schema_error(json_t *line);

/* --- responses (harness-response.c) ------------------------------------------------------- */

struct harness_header {
    char *name;
    char *value;
};

struct harness_response {
    CURLcode result; /* CURLE_OK, or why no complete response arrived */
    char error[CURL_ERROR_SIZE];
    long status;                    /* 0 when no response */
    struct harness_header *headers; /* of the final response, in order */
    size_t headers_count;
    char *body;         /* NUL-terminated; NULL when the request asked to discard it */
    size_t body_len;    /* bytes received (also when discarded) */
    uint64_t body_hash; /* FNV-1a 64 of the body */
    double total_s;
    long local_port;
    long connects; /* new connections this transfer opened (0: reused) */
};

void harness_response_free(struct harness_response *rs);
/* First value of response header `name` (any case), NULL if absent. */
const char *harness_header(const struct harness_response *rs, const char *name);
size_t harness_header_count(const struct harness_response *rs, const char *name);
/* The response body parsed as JSON; NULL if it is not JSON. */
json_t *harness_response_json(const struct harness_response *rs);

/* --- the libcurl client (harness-http.c) -------------------------------------------------- */

typedef void (*harness_progress_fn)(void *arg);

struct harness_request {
    const char *method;         /* NULL: GET */
    const char *target;         /* raw request target, sent byte for byte */
    const char *const *headers; /* NULL-terminated "Name: value" lines; may be NULL */
    const void *body;           /* sent with Content-Length, or chunked if `chunked` */
    size_t body_len;
    uint64_t pattern_body_bytes; /* instead of body: this many pattern bytes, generated */
    bool chunked;
    bool discard_body;            /* hash the response body, do not keep it */
    uint64_t abort_after_bytes;   /* non-zero: hang up once this much body has arrived */
    long timeout_ms;              /* 0: 15000 */
    harness_progress_fn progress; /* called now and then while the transfer runs */
    void *progress_arg;
};

/* A prepared libcurl transfer; fields are readable, the rest is the harness's business. */
struct harness_transfer {
    CURL *easy;
    bool owns_easy;
    struct curl_slist *header_list;
    struct harness_request request;
    struct harness_response response;
    uint64_t upload_pos;
    bool in_headers; /* inside a header block */
};

/*
 * Prepare a transfer to http://127.0.0.1:port with the request target rq->target. `easy` may be
 * a handle to reuse (keep-alive); NULL makes a new one. rq's pointers must stay valid until the
 * transfer ends. Returns NULL on allocation failure.
 */
struct harness_transfer *harness_transfer_new(CURL *easy, unsigned port,
                                              const struct harness_request *rq);
/* Record the result and transfer info after curl finished it (easy or multi). */
void harness_transfer_done(struct harness_transfer *t, CURLcode result);
/* Free the transfer (and its easy handle unless it was passed in). */
void harness_transfer_free(struct harness_transfer *t);

/* One blocking request. rs must be freed with harness_response_free. */
void harness_http(unsigned port, const struct harness_request *rq, struct harness_response *rs);
/* The value of one series (name and labels exactly as rendered) on GET /metrics of the admin
 * port, NAN when absent. Asserts that the scrape answered 200. */
double harness_metric_value(unsigned admin_port, const char *series);
/* The same on a given easy handle, so that its connection is reused. */
void harness_http_on(CURL *easy, unsigned port, const struct harness_request *rq,
                     struct harness_response *rs);

/* --- raw sockets (harness-socket.c) ------------------------------------------------------- */

/* Wait until 127.0.0.1:port accepts a TCP connection. */
bool harness_wait_port_open(unsigned port, int timeout_ms);
/* Wait until connecting to 127.0.0.1:port is refused (ECONNREFUSED). */
bool harness_wait_port_refused(unsigned port, int timeout_ms);
/* A port on 127.0.0.1 that nothing listens on (bound, then closed). */
unsigned harness_closed_port(void);
/*
 * Send raw bytes on a new connection and read one response (status line, headers, body framed
 * by Content-Length or chunked, else up to EOF), within timeout_ms. Returns 0 if a response was
 * read, -1 if the connection closed or timed out first (rs->status is then 0).
 * `head` says that the request was HEAD (no body follows the headers).
 */
int harness_raw(unsigned port, const char *data, size_t len, bool head, int timeout_ms,
                struct harness_response *rs);

/* A raw client connection that can read several responses (pipelining, keep-alive). */
struct harness_conn {
    int fd;
    char *buf; /* received, not yet parsed */
    size_t len, cap;
    bool eof;   /* the peer closed (or reset) the connection */
    bool reset; /* ... with a reset */
};

/* Connect to 127.0.0.1:port. Returns 0 or -errno. */
int harness_conn_open(struct harness_conn *c, unsigned port, int timeout_ms);
/* Send all of data; 0, or -errno (e.g. -EPIPE / -ECONNRESET once the peer closed). */
int harness_conn_send(struct harness_conn *c, const void *data, size_t len, int timeout_ms);
/*
 * Read the next whole response (interim 1xx responses are skipped; framing as harness_raw
 * does, chunked trailers included) and consume its bytes, so that the next call reads the
 * following one. 0 if complete; -1 if the connection closed or timeout_ms passed first (rs then
 * says why in rs->error; rs->status is 0).
 */
int harness_conn_read_response(struct harness_conn *c, bool head, int timeout_ms,
                               struct harness_response *rs);
/*
 * Wait up to timeout_ms for the peer to close the connection, reading and dropping whatever it
 * sends (counted in *discarded if not NULL). True if it closed (FIN or reset) in time.
 */
bool harness_conn_wait_closed(struct harness_conn *c, int timeout_ms, size_t *discarded);
void harness_conn_close(struct harness_conn *c);

/* --- trace context and data (harness-data.c) ---------------------------------------------- */

/* Split "00-<32 hex>-<16 hex>-<2 hex>" (lowercase) into NUL-terminated parts; false if not so. */
bool harness_traceparent_split(const char *traceparent, char trace_id[33], char span_id[17],
                               char flags[3]);
/* n random lowercase hex digits plus a NUL into out (n + 1 bytes); never all zeros. */
void harness_random_hex(char *out, size_t n);
/* The 8-4-4-4-12 form of 32 hex digits, lowercase, into out (37 bytes). */
void harness_uuid_from_hex(const char *hex32, char out[37]);
bool harness_is_lower_hex(const char *s, size_t n);

#define HARNESS_FNV_OFFSET 0xcbf29ce484222325ull
uint64_t harness_fnv1a64(uint64_t hash, const void *data, size_t len);
/* The echo upstream's download pattern: byte at offset i is i % 251. */
void harness_pattern_fill(char *buf, size_t len, uint64_t offset);
/* FNV-1a 64 of the first n pattern bytes. */
uint64_t harness_pattern_hash(uint64_t n);
/* The 16-hex-digit form of a hash, as the echo upstream writes it (out: 17 bytes). */
void harness_hash_hex(uint64_t hash, char out[17]);

/* --- an OTLP/HTTP receiver (harness-otlp.c) ----------------------------------------------- */

/*
 * A thread in the test process listening on 127.0.0.1:0 that speaks enough HTTP/1.1 for an
 * OTLP/HTTP exporter (keep-alive; bodies framed by Content-Length or chunked), records every
 * request (gunzipping a Content-Encoding: gzip body and parsing it as JSON) and answers as the
 * test scripted. Each connection has a thread of its own, so a hanging answer blocks only its
 * connection. Check forks a process per test: start the receiver inside the test (or a checked
 * fixture), never in an unchecked one, or its threads stay behind in the parent.
 */
enum harness_otlp_action {
    HARNESS_OTLP_OK,      /* 200 {} */
    HARNESS_OTLP_PARTIAL, /* 200 {"partialSuccess":{"rejectedSpans":"<rejected>",...}} */
    HARNESS_OTLP_STATUS,  /* `status` with a google.rpc.Status body (code 3 for 400, 14 for 503,
                             8 for 429, 2 otherwise) and Retry-After if retry_after_s >= 0 */
    HARNESS_OTLP_HANG,    /* read the request, never answer until the receiver stops */
    HARNESS_OTLP_CLOSE,   /* read the request, close the connection without a response */
};

struct harness_otlp_reply {
    enum harness_otlp_action action;
    int status;        /* HARNESS_OTLP_STATUS */
    int retry_after_s; /* Retry-After seconds; -1: no header */
    long rejected;     /* HARNESS_OTLP_PARTIAL */
    const char *message;
};

/* One request as received; never changes once recorded. */
struct harness_otlp_request {
    char method[16];
    char target[256];
    struct harness_header *headers; /* in arrival order, as sent */
    size_t headers_count;
    char *raw_body; /* as received (gzip-compressed when so sent); NUL-terminated */
    size_t raw_len;
    char *body; /* decoded (gunzipped); NULL if it could not be decoded */
    size_t body_len;
    json_t *json;        /* the body parsed; NULL if it is not JSON */
    char error[256];     /* why body or json is NULL */
    int64_t received_ms; /* CLOCK_MONOTONIC ms when the body was complete */
    int answered_status; /* the status sent back, 0 when none (hang, close, down) */
};

struct harness_otlp;

/* Start a receiver; NULL on failure (said on stderr). Default answer: 200 {}. */
struct harness_otlp *harness_otlp_start(void);
unsigned harness_otlp_port(const struct harness_otlp *r);
/* "http://127.0.0.1:PORT" (no path). */
const char *harness_otlp_url(const struct harness_otlp *r);
/* Answers for the next requests, one each in order; afterwards the default answer. */
void harness_otlp_script(struct harness_otlp *r, const struct harness_otlp_reply *replies,
                         size_t n);
/* The answer once the script is used up. */
void harness_otlp_set_default(struct harness_otlp *r, const struct harness_otlp_reply *reply);
/* Close the listener and every connection (hanging ones too): the receiver is down; new
 * connections are refused. Requests recorded so far stay readable. */
void harness_otlp_down(struct harness_otlp *r);
/* Stop it (down first) and free everything, the records included. NULL is fine. */
void harness_otlp_stop(struct harness_otlp *r);

/* Requests recorded so far. */
size_t harness_otlp_count(struct harness_otlp *r);
/* Wait (condition variable, at most timeout_ms) until at least n requests are recorded; returns
 * the count then (less than n on timeout, which is said on stderr). */
size_t harness_otlp_wait(struct harness_otlp *r, size_t n, int timeout_ms);
/* Request i (0-based) in arrival order; NULL if there is none yet. Valid until stop. */
const struct harness_otlp_request *harness_otlp_request(struct harness_otlp *r, size_t i);
/* First value of a request header (any case), NULL if absent. */
const char *harness_otlp_header(const struct harness_otlp_request *rq, const char *name);

/* Every span of every recorded request, in order, as an array (a new reference). Each element
 * is the span itself (a borrowed-then-increfed object of the request's JSON). */
json_t *harness_otlp_spans(struct harness_otlp *r);
/* The spans of one request. */
json_t *harness_otlp_request_spans(const struct harness_otlp_request *rq);
/*
 * Wait until `want` spans with the string attribute `key` equal to `value` were received (e.g.
 * url.path = a unique path), for at most timeout_ms; return all such spans seen (possibly fewer;
 * the timeout is said on stderr unless timeout_ms is 0).
 */
json_t *harness_otlp_wait_spans(struct harness_otlp *r, const char *key, const char *value,
                                size_t want, int timeout_ms);
/* The one span with attribute url.path = path, waiting up to HARNESS_WAIT_MS; NULL if none. */
json_t *harness_otlp_span_by_path(struct harness_otlp *r, const char *path);
/* The value object ({"stringValue": ...}) of attribute `key` of a span or resource; NULL if
 * absent. Borrowed. */
json_t *harness_otlp_attr(json_t *owner, const char *key);
/* The attribute's stringValue / intValue (decimal string) / doubleValue, or NULL/false. */
const char *harness_otlp_attr_str(json_t *owner, const char *key);
const char *harness_otlp_attr_int(json_t *owner, const char *key);
bool harness_otlp_attr_double(json_t *owner, const char *key, double *ret);
/* How many attributes named key the owner has (each key must appear once). */
size_t harness_otlp_attr_count(json_t *owner, const char *key);

/* --- Check (harness-check.c) -------------------------------------------------------------- */

/* tcase_set_timeout with `seconds`, or CK_DEFAULT_TIMEOUT when that asks for more. */
void harness_tcase_timeout(TCase *tc, double seconds);
/* Run one suite with the usual runner; returns the process exit status. */
int harness_run_suite(Suite *s);
