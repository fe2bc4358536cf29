/* SPDX-License-Identifier: MIT */
/*
 * One thread, one libcurl easy handle (kept, so the connection to the collector is reused),
 * one request in flight: a sidecar's span rate is far below what one keep-alive connection
 * carries, and a single sender keeps the retry rules simple. The queue is a list under a mutex;
 * a worker holds it only to link one node, and wakes the thread only when a full batch waits.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "observe/otlp_exporter.h"
#include "observe/export_policy.h"
#include "observe/request_summary.h"
#include "observe/span_encode.h"
#include "tracehop/tracectx.h"
#include "config/config.h"
#include "common/diag.h"
#include "common/strbuf.h"

#define RESPONSE_BODY_MAX   (64u * 1024) /* more of a collector's answer is not read */
#define RETRY_INITIAL_MS    500
#define RETRY_MAX_MS        30000
#define SPAN_TEXT_RESERVE   2048 /* a usual span fits without growing the buffer */
#define FAILURE_DIAG_PERIOD 60   /* seconds between repeated export-failure diagnostics */

/*
 * A queued span: this header, then the span's JSON text, in one allocation. The text is
 * encoded into a buffer that starts with room for the header, so that queuing a span costs one
 * malloc and no copy.
 */
struct span_node {
    struct span_node *next;
    int64_t queued_ms; /* CLOCK_MONOTONIC_COARSE: schedule_delay_ms counts from here */
    size_t len;
    char text[];
};

struct otlp_exporter {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;

    /* under lock */
    const struct config *config; /* the settings of the next batch */
    struct span_node *head, **tail;
    unsigned queued;
    bool stopping;
    int64_t stop_deadline_ms; /* monotonic */

    /* exporter thread only */
    CURL *curl;
    struct curl_slist *headers;
    const struct config *curl_config; /* what the handle is set up for */
    struct strbuf body, gzipped, response;
    char retry_after[64], content_type[128];
    size_t retry_after_len, content_type_len;
    char curl_error[CURL_ERROR_SIZE];
    time_t last_failure_diag, last_partial_diag;

    char version[32];
    char instance_id[37];
    struct export_stats stats;
};

static int64_t clock_ms(clockid_t clock)
{
    struct timespec now;
    clock_gettime(clock, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int64_t now_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

/* Under lock: sleep until the monotonic time until_ms, or a signal (the condvar's clock is
 * CLOCK_MONOTONIC, so a wall-clock step changes nothing). */
static void wait_until(struct otlp_exporter *e, int64_t until_ms)
{
    struct timespec ts = {.tv_sec = until_ms / 1000, .tv_nsec = (until_ms % 1000) * 1000000};
    pthread_cond_timedwait(&e->wake, &e->lock, &ts);
}

static void count(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* --- the workers' side ------------------------------------------------------------------------ */

void otlp_exporter_submit(struct otlp_exporter *e, const struct request_summary *s)
{
    struct strbuf b = {0};

    if (!e || !s->sampled || !s->config->otlp.enabled)
        return;
    /* A full queue (a dead or slow collector) drops the span before it costs an encoding; the
     * check under the lock below stays the one that counts. */
    if (atomic_load_explicit(&e->stats.queue_spans, memory_order_relaxed) >=
        s->config->otlp.max_queue_size) {
        count(&e->stats.spans_dropped[EXPORT_DROP_QUEUE_FULL], 1);
        return;
    }
    if (!strbuf_reserve(&b, sizeof(struct span_node) + SPAN_TEXT_RESERVE))
        goto dropped;
    b.len = sizeof(struct span_node);
    span_encode(&b, s);
    if (b.oom)
        goto dropped;

    /* Give back the reserve: a full queue then holds max_queue_size spans of their own size,
     * not of the buffer's. Shrinking in place is what allocators do, so this rarely copies. */
    struct span_node *node = realloc(b.data, b.len);
    if (!node)
        node = (struct span_node *)(void *)b.data;
    node->next = NULL;
    node->queued_ms = clock_ms(CLOCK_MONOTONIC_COARSE);
    node->len = b.len - sizeof(struct span_node);
    pthread_mutex_lock(&e->lock);
    if (e->stopping || e->queued >= s->config->otlp.max_queue_size) {
        pthread_mutex_unlock(&e->lock);
        free(node); /* b's buffer, possibly moved by realloc: b is stale now */
        count(&e->stats.spans_dropped[EXPORT_DROP_QUEUE_FULL], 1);
        return;
    }
    *e->tail = node;
    e->tail = &node->next;
    e->queued++;
    atomic_store_explicit(&e->stats.queue_spans, e->queued, memory_order_relaxed);
    /* The thread sleeps until the oldest span is due: it needs waking for the first span (to
     * learn the due time) and for a full batch, not for the ones between. */
    if (e->queued == 1 || e->queued == s->config->otlp.max_export_batch_size)
        pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    return;
dropped:
    strbuf_free(&b);
    count(&e->stats.spans_dropped[EXPORT_DROP_QUEUE_FULL], 1);
}

/* --- libcurl ---------------------------------------------------------------------------------- */

static size_t on_response_body(char *data, size_t size, size_t n, void *userdata)
{
    struct otlp_exporter *e = userdata;
    size_t len = size * n;
    size_t room = RESPONSE_BODY_MAX > e->response.len ? RESPONSE_BODY_MAX - e->response.len : 0;
    strbuf_append(&e->response, data, len < room ? len : room);
    return len;
}

/* Keep a header's value (without OWS and CRLF) if its name matches. */
static void keep_header(const char *line, size_t len, const char *name, char *out, size_t out_size,
                        size_t *out_len)
{
    size_t name_len = strlen(name);
    if (len <= name_len || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
        return;
    const char *v = line + name_len + 1;
    size_t vlen = len - name_len - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
                        v[vlen - 1] == '\t'))
        vlen--;
    if (vlen >= out_size)
        vlen = out_size - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
    *out_len = vlen;
}

static size_t on_response_header(char *line, size_t size, size_t n, void *userdata)
{
    struct otlp_exporter *e = userdata;
    size_t len = size * n;
    /* A new status line (after a 100 Continue, say) starts a new set of headers. */
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0)
        e->retry_after_len = e->content_type_len = 0;
    keep_header(line, len, "retry-after", e->retry_after, sizeof(e->retry_after),
                &e->retry_after_len);
    keep_header(line, len, "content-type", e->content_type, sizeof(e->content_type),
                &e->content_type_len);
    return len;
}

/* Abort a transfer the stop's deadline has overtaken. */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct otlp_exporter *e = userdata;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    pthread_mutex_lock(&e->lock);
    bool late = e->stopping && now_mono_ms() >= e->stop_deadline_ms;
    pthread_mutex_unlock(&e->lock);
    return late ? 1 : 0;
}

/* Set the handle up for `c`: only when the config changed, so that the connection stays. */
static int setup_curl(struct otlp_exporter *e, const struct config *c)
{
    const struct otlp_config *o = &c->otlp;

    if (e->curl && e->curl_config == c)
        return 0;
    if (!e->curl && !(e->curl = curl_easy_init()))
        return -ENOMEM;
    curl_slist_free_all(e->headers);
    e->headers = NULL;
    struct curl_slist *list = curl_slist_append(NULL, "Content-Type: application/json");
    for (size_t i = 0; list && i < o->headers_count; i++)
        list = curl_slist_append(list, o->headers[i].line);
    if (list && o->gzip)
        list = curl_slist_append(list, "Content-Encoding: gzip");
    if (list) /* no "Expect: 100-continue" round trip before every batch */
        list = curl_slist_append(list, "Expect:");
    if (!list)
        return -ENOMEM;
    e->headers = list;

    CURL *h = e->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, o->endpoint);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tracehop-otlp-exporter");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_response_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, e);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_response_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, e);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, e);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, e->curl_error);
    if (o->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
    if (o->client_certificate) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, o->client_certificate);
        curl_easy_setopt(h, CURLOPT_SSLKEY, o->client_key);
    }
    e->curl_config = c;
    return 0;
}

/* gzip (RFC 1952) of e->body into e->gzipped. */
static int gzip_body(struct otlp_exporter *e)
{
    z_stream z = {0};

    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    strbuf_clear(&e->gzipped);
    size_t bound = deflateBound(&z, e->body.len);
    if (!strbuf_reserve(&e->gzipped, bound)) {
        deflateEnd(&z);
        return -ENOMEM;
    }
    z.next_in = (Bytef *)e->body.data;
    z.avail_in = (uInt)e->body.len;
    z.next_out = (Bytef *)e->gzipped.data;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    e->gzipped.len = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : -EIO;
}

/* --- one batch -------------------------------------------------------------------------------- */

static void free_nodes(struct span_node *n)
{
    while (n) {
        struct span_node *next = n->next;
        free(n);
        n = next;
    }
}

static uint64_t random_u64(void)
{
    uint8_t bytes[TRACEHOP_SPAN_ID_SIZE];
    uint64_t v = 0;
    tracehop_random_span_id(bytes);
    for (size_t i = 0; i < sizeof(bytes); i++)
        v = v << 8 | bytes[i];
    return v;
}

/* Say a failure on stderr, at most once a minute: a dead collector is one message, not one per
 * batch; the metrics count every one. `why` is the collector's answer or libcurl's error. */
static void say_failure(struct otlp_exporter *e, const char *endpoint, const char *why,
                        const char *what, unsigned spans)
{
    time_t now = time(NULL);
    if (now - e->last_failure_diag < FAILURE_DIAG_PERIOD)
        return;
    e->last_failure_diag = now;
    diag(DIAG_WARN, "otlp: export to %s failed (%s), %s: %u spans dropped (said once a minute)",
         endpoint ? endpoint : "(none)", why, what, spans);
}

/* Milliseconds left before `deadline_ms` (monotonic), and the stop's deadline if earlier. */
static int64_t left_ms(struct otlp_exporter *e, int64_t deadline_ms)
{
    pthread_mutex_lock(&e->lock);
    if (e->stopping && e->stop_deadline_ms < deadline_ms)
        deadline_ms = e->stop_deadline_ms;
    pthread_mutex_unlock(&e->lock);
    return deadline_ms - now_mono_ms();
}

static bool stopping(struct otlp_exporter *e)
{
    pthread_mutex_lock(&e->lock);
    bool stopping = e->stopping;
    pthread_mutex_unlock(&e->lock);
    return stopping;
}

/* Errors no retry can mend within a batch's budget: the endpoint or the TLS setup is wrong. */
static bool curl_error_is_permanent(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return true;
    default:
        return false;
    }
}

/* One POST; fills `response` from what came back (status 0 when nothing did) and returns
 * libcurl's result. */
static CURLcode post_once(struct otlp_exporter *e, const struct config *c,
                          const struct strbuf *payload, int64_t budget_ms,
                          struct export_response *response)
{
    long status = 0;
    struct timespec t0, t1;

    strbuf_clear(&e->response);
    e->retry_after_len = e->content_type_len = 0;
    e->curl_error[0] = '\0';
    long timeout = c->otlp.timeout_ms < budget_ms ? c->otlp.timeout_ms : (long)budget_ms;
    curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, timeout > 0 ? timeout : 1L);
    curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, payload->data);
    curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)payload->len);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CURLcode rc = curl_easy_perform(e->curl);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == CURLE_OK)
        curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
    metrics_observe_seconds(&e->stats.duration,
                            (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    *response = (struct export_response){
        .status = status,
        .retry_after = e->retry_after_len ? e->retry_after : NULL,
        .retry_after_len = e->retry_after_len,
        .content_type = e->content_type_len ? e->content_type : NULL,
        .content_type_len = e->content_type_len,
        .body = e->response.data,
        .body_len = e->response.len,
        .now_epoch_s = time(NULL),
    };
    if (rc != CURLE_OK && !e->curl_error[0])
        snprintf(e->curl_error, sizeof(e->curl_error), "%s", curl_easy_strerror(rc));
    return rc;
}

/* Export `spans` (n of them) with `c`'s settings, retrying within export_timeout_ms. Returns
 * true when the batch is done with (sent, rejected or dropped); false when the stop's deadline
 * cut it short, so that the caller counts it as dropped at shutdown. */
static bool export_batch(struct otlp_exporter *e, const struct config *c, struct span_node *spans,
                         unsigned n)
{
    int64_t deadline = now_mono_ms() + c->otlp.export_timeout_ms;

    strbuf_clear(&e->body);
    span_encode_body_open(&e->body, c, e->instance_id, e->version);
    for (struct span_node *s = spans; s; s = s->next) {
        if (s != spans)
            strbuf_append_char(&e->body, ',');
        strbuf_append(&e->body, s->text, s->len);
    }
    strbuf_append_str(&e->body, SPAN_ENCODE_BODY_CLOSE);
    if (e->body.oom || setup_curl(e, c) < 0 || (c->otlp.gzip && gzip_body(e) < 0)) {
        count(&e->stats.spans_dropped[EXPORT_DROP_EXPORT_FAILED], n);
        say_failure(e, c->otlp.endpoint, "out of memory", "before sending", n);
        return true;
    }
    const struct strbuf *payload = c->otlp.gzip ? &e->gzipped : &e->body;

    for (unsigned attempt = 1;; attempt++) {
        struct export_response response;
        struct export_result result;
        int64_t budget = left_ms(e, deadline);
        if (budget <= 0)
            goto out_of_time;
        CURLcode rc = post_once(e, c, payload, budget, &response);
        export_classify(&response, &result);
        if (curl_error_is_permanent(rc)) {
            result.verdict = EXPORT_FAILED;
            snprintf(result.message, sizeof(result.message), "%s", e->curl_error);
        }
        switch (result.verdict) {
        case EXPORT_OK:
            count(&e->stats.requests[EXPORT_RESULT_OK], 1);
            count(&e->stats.spans_exported, n);
            return true;
        case EXPORT_PARTIAL: {
            uint64_t rejected = result.rejected_spans < n ? result.rejected_spans : n;
            count(&e->stats.requests[EXPORT_RESULT_PARTIAL], 1);
            count(&e->stats.spans_exported, n - rejected);
            count(&e->stats.spans_rejected, rejected);
            if (time(NULL) - e->last_partial_diag >= FAILURE_DIAG_PERIOD) {
                e->last_partial_diag = time(NULL);
                diag(DIAG_WARN,
                     "otlp: the collector rejected %llu of %u spans: %s (said once a minute)",
                     (unsigned long long)rejected, n, result.message);
            }
            return true;
        }
        case EXPORT_FAILED:
            count(&e->stats.requests[EXPORT_RESULT_FAILED], 1);
            count(&e->stats.spans_dropped[EXPORT_DROP_EXPORT_FAILED], n);
            say_failure(e, c->otlp.endpoint, result.message, "not retried", n);
            return true;
        case EXPORT_RETRY:
            break;
        }
        count(&e->stats.requests[EXPORT_RESULT_RETRY], 1);
        int64_t wait = export_next_wait_ms(&result, attempt, RETRY_INITIAL_MS, RETRY_MAX_MS,
                                           left_ms(e, deadline), random_u64());
        if (wait < 0) {
            if (stopping(e))
                return false; /* unsent at shutdown */
            count(&e->stats.spans_dropped[EXPORT_DROP_EXPORT_FAILED], n);
            say_failure(e, c->otlp.endpoint, response.status ? result.message : e->curl_error,
                        "retried until batch.export_timeout_ms", n);
            return true;
        }
        count(&e->stats.retries, 1);
        /* Wait as told, unless a stop's deadline comes first: then the next round finds no
         * time left and the batch counts as dropped at shutdown. */
        int64_t until = now_mono_ms() + wait;
        pthread_mutex_lock(&e->lock);
        while (now_mono_ms() < until && !(e->stopping && e->stop_deadline_ms < until))
            wait_until(e, until);
        pthread_mutex_unlock(&e->lock);
    }
out_of_time:
    if (stopping(e))
        return false;
    count(&e->stats.spans_dropped[EXPORT_DROP_EXPORT_FAILED], n);
    say_failure(e, c->otlp.endpoint, e->curl_error[0] ? e->curl_error : "no answer",
                "retried until batch.export_timeout_ms", n);
    return true;
}

/* --- the thread ------------------------------------------------------------------------------- */

/* Under lock: whether a batch should leave now. */
static bool batch_due(const struct otlp_exporter *e)
{
    if (e->queued == 0)
        return false;
    if (e->stopping || e->queued >= e->config->otlp.max_export_batch_size)
        return true;
    return clock_ms(CLOCK_MONOTONIC_COARSE) - e->head->queued_ms >=
           e->config->otlp.schedule_delay_ms;
}

/* Under lock: unlink up to max spans from the head. */
static struct span_node *take_batch(struct otlp_exporter *e, unsigned max, unsigned *n)
{
    struct span_node *first = e->head, **link = &e->head;
    unsigned taken = 0;

    while (*link && taken < max) {
        link = &(*link)->next;
        taken++;
    }
    e->head = *link;
    *link = NULL;
    if (!e->head)
        e->tail = &e->head;
    e->queued -= taken;
    atomic_store_explicit(&e->stats.queue_spans, e->queued, memory_order_relaxed);
    *n = taken;
    return first;
}

static void *exporter_main(void *arg)
{
    struct otlp_exporter *e = arg;

    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (!batch_due(e)) {
            if (e->stopping)
                goto out;
            /* The coarse clock lags by a tick at most; the due time is not that precise. */
            int64_t due = e->queued ? e->head->queued_ms + e->config->otlp.schedule_delay_ms + 5
                                    : now_mono_ms() + 3600 * 1000;
            wait_until(e, due);
        }
        if (e->stopping && now_mono_ms() >= e->stop_deadline_ms)
            goto out;
        const struct config *c = e->config;
        config_ref(c);
        unsigned n;
        struct span_node *batch = take_batch(e, c->otlp.max_export_batch_size, &n);
        pthread_mutex_unlock(&e->lock);

        bool done = !c->otlp.enabled || !c->otlp.endpoint;
        if (done) /* turned off by a reload after these were queued */
            count(&e->stats.spans_dropped[EXPORT_DROP_EXPORT_FAILED], n);
        else
            done = export_batch(e, c, batch, n);
        if (!done)
            count(&e->stats.spans_dropped[EXPORT_DROP_SHUTDOWN], n);
        free_nodes(batch);
        config_unref(c);
        pthread_mutex_lock(&e->lock);
    }
out:
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

int otlp_exporter_start(const struct config *config, const char *version,
                        struct otlp_exporter **ret)
{
    struct otlp_exporter *e = calloc(1, sizeof(*e));
    uint8_t uuid[TRACEHOP_TRACE_ID_SIZE];
    int rc;

    if (!e)
        return -ENOMEM;
    e->tail = &e->head;
    snprintf(e->version, sizeof(e->version), "%s", version);
    /* service.instance.id: a random UUID per process, as OpenTelemetry recommends, so that two
     * replicas of one service are told apart. */
    tracehop_random_uuid_v4(uuid);
    tracehop_uuid_format(e->instance_id, uuid);
    e->instance_id[36] = '\0';
    config_ref(config);
    e->config = config;
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&e->wake, &attr);
    pthread_condattr_destroy(&attr);
    if ((rc = pthread_create(&e->thread, NULL, exporter_main, e)) != 0) {
        config_unref(config);
        pthread_cond_destroy(&e->wake);
        pthread_mutex_destroy(&e->lock);
        free(e);
        return -rc;
    }
    *ret = e;
    return 0;
}

void otlp_exporter_publish_config(struct otlp_exporter *e, const struct config *config)
{
    config_ref(config);
    pthread_mutex_lock(&e->lock);
    const struct config *old = e->config;
    e->config = config;
    pthread_cond_signal(&e->wake); /* the batch size or delay may have changed */
    pthread_mutex_unlock(&e->lock);
    config_unref(old);
}

const struct export_stats *otlp_exporter_stats(const struct otlp_exporter *e)
{
    return &e->stats;
}

void otlp_exporter_stop(struct otlp_exporter *e, long budget_ms)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    e->stop_deadline_ms = now_mono_ms() + (budget_ms > 0 ? budget_ms : 0);
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);

    unsigned left = e->queued;
    free_nodes(e->head);
    e->head = NULL;
    e->tail = &e->head;
    e->queued = 0;
    atomic_store_explicit(&e->stats.queue_spans, 0, memory_order_relaxed);
    count(&e->stats.spans_dropped[EXPORT_DROP_SHUTDOWN], left);
    uint64_t dropped = atomic_load(&e->stats.spans_dropped[EXPORT_DROP_SHUTDOWN]);
    if (dropped > 0)
        diag(DIAG_WARN, "otlp: %llu spans dropped at shutdown: not sent within the drain budget",
             (unsigned long long)dropped);
}

void otlp_exporter_free(struct otlp_exporter *e)
{
    if (!e)
        return;
    curl_slist_free_all(e->headers);
    if (e->curl)
        curl_easy_cleanup(e->curl);
    strbuf_free(&e->body);
    strbuf_free(&e->gzipped);
    strbuf_free(&e->response);
    config_unref(e->config);
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->lock);
    free(e);
}
