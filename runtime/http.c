/* http.c - the only file that knows libmicrohttpd. Routes requests, enforces the body limit,
 * checks the webhook signature over the exact raw body before anything is parsed, and answers;
 * parsing, running and sending belong to webhook.c, engine.c and outbound.c. */
#include "http.h"

#include <jansson.h>
#include <microhttpd.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "signature.h"
#include "webhook.h"

#define DRAIN_MAX (16 * 1024 * 1024)
/* Each connection's memory for the request line, the headers and reading (bodies stream through
 * it to on_request). libmicrohttpd zeroes it for every request on a kept-alive connection: its
 * default of 32 KiB cost a quarter of the HTTP thread's instructions per webhook. 8 KiB holds
 * the headers providers and CRMs send with room to spare (docs/http.md: larger headers get 431). */
#define CONNECTION_MEMORY 8192

struct pl_http {
    struct MHD_Daemon *daemon;
    struct pl_http_opts opts;
    int port;
    int suspended; /* requests waiting for their answer (atomic): stop waits for them */
    /* Finished requests kept for the next ones, with their body buffers: a keep-alive client's
     * every webhook would otherwise allocate and free both (the body's 4 KiB is past malloc's
     * small sizes, where each allocation sweeps its free lists). Touched on the MHD thread only. */
    struct request *spare;
    int nspare;
};

/* Per-request state: the body as it arrives. */
struct request {
    char *body;
    size_t len, cap;
    int too_big;
    /* A request that waits (its events being stored, a trigger being run) is suspended; the
     * thread that finishes the work stores the answer and resumes it. */
    struct MHD_Connection *conn;
    struct pl_http *h;
    int answered; /* the answer below is ready to send */
    int status;
    char *answer; /* malloc'd body */
    const char *type;
    char channel[65]; /* a trigger's, for its metric */
    struct request *next_spare;
};

#define SPARE_MAX      64          /* requests kept for reuse, about one per busy connection */
#define SPARE_BODY_MAX (64 * 1024) /* a larger body buffer is freed, not kept */

/* A request with every field clear, and a body buffer from an earlier one when there is one. */
static struct request *request_new(struct pl_http *h)
{
    struct request *req = h->spare;
    if (req == NULL)
        return calloc(1, sizeof *req);
    h->spare = req->next_spare;
    h->nspare--;
    char *body = req->body;
    size_t cap = req->cap;
    memset(req, 0, sizeof *req);
    req->body = body;
    req->cap = cap;
    if (body != NULL)
        body[0] = '\0'; /* nothing of the earlier request shows through */
    return req;
}

static void request_destroy(struct request *req)
{
    free(req->body);
    free(req->answer);
    free(req);
}

/* A finished request: kept as a spare when there is room, else destroyed. */
static void request_free(struct pl_http *h, struct request *req)
{
    if (h->nspare < SPARE_MAX && req->cap <= SPARE_BODY_MAX) {
        free(req->answer); /* request_new clears the rest */
        req->answer = NULL;
        req->next_spare = h->spare;
        h->spare = req;
        h->nspare++;
        return;
    }
    request_destroy(req);
}

/* Store the answer of a suspended request and let libmicrohttpd send it (any thread). */
static void resume_with(struct request *req, int status, const char *type, char *body)
{
    struct pl_http *h = req->h;
    req->status = status;
    req->type = type;
    req->answer = body;
    req->answered = 1;
    MHD_resume_connection(req->conn);
    __atomic_sub_fetch(&h->suspended, 1, __ATOMIC_SEQ_CST);
}

static void suspend(struct pl_http *h, struct MHD_Connection *c, struct request *req)
{
    req->conn = c;
    req->h = h;
    __atomic_add_fetch(&h->suspended, 1, __ATOMIC_SEQ_CST);
    MHD_suspend_connection(c);
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
                               const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    return respond(c, status, "text/plain; charset=utf-8", text, strlen(text));
}

static enum MHD_Result respond_error(struct MHD_Connection *c, unsigned status, const char *code,
                                     const char *message)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    enum MHD_Result rc =
        respond(c, status, "application/json", s != NULL ? s : "{}", s != NULL ? strlen(s) : 2);
    free(s);
    json_decref(j);
    return rc;
}

/* Equal without leaking where they differ. */
static int ct_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), n = la > lb ? la : lb;
    unsigned char diff = la != lb;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(i < la ? a[i] : 0) ^ (unsigned char)(i < lb ? b[i] : 0);
    return diff == 0;
}

static void count_webhook(unsigned status)
{
    char labels[32];
    snprintf(labels, sizeof labels, "status=\"%u\"", status);
    pl_metrics_add("parley_webhooks_total", labels, 1);
}

static enum MHD_Result webhook_verify(struct pl_http *h, struct MHD_Connection *c)
{
    const char *mode = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "hub.mode");
    const char *token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "hub.verify_token");
    const char *challenge = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "hub.challenge");

    if (mode == NULL || strcmp(mode, "subscribe") != 0 || token == NULL || challenge == NULL ||
        !ct_equal(token, h->opts.verify_token)) {
        pl_log(PL_LOG_WARN, PL_FIELDS("event", "verify"),
               "webhook verification refused (wrong mode, token or no challenge)");
        return respond_text(c, MHD_HTTP_FORBIDDEN, "forbidden");
    }
    pl_log(PL_LOG_INFO, PL_FIELDS("event", "verify"), "webhook verified");
    return respond(c, MHD_HTTP_OK, "text/plain", challenge, strlen(challenge));
}

/* The ingest stored (or could not store) a webhook's events: answer it. */
static void webhook_stored(void *ud, int rc, size_t dups)
{
    struct request *req = ud;
    char n[32];

    if (rc != 0) {
        count_webhook(503);
        resume_with(req, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
                    strdup("could not store; try again"));
        return;
    }
    if (dups > 0) {
        snprintf(n, sizeof n, "%zu", dups);
        pl_log(PL_LOG_INFO, PL_FIELDS("event", "webhook", "count", n),
               "events already received: acknowledged, not run again");
    }
    count_webhook(200);
    resume_with(req, MHD_HTTP_OK, "application/json", strdup("{\"ok\":true}"));
}

static enum MHD_Result webhook_post(struct pl_http *h, struct MHD_Connection *c,
                                    struct request *req)
{
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Hub-Signature-256");
    struct pl_event_batch batch;
    struct pl_error err;
    enum pl_sig_result sr;
    char n[32];

    if (req->too_big) {
        count_webhook(413);
        pl_log(PL_LOG_WARN, PL_FIELDS("event", "webhook"), "body over %d bytes refused",
               PL_HTTP_BODY_MAX);
        return respond_text(c, MHD_HTTP_CONTENT_TOO_LARGE, "payload too large");
    }
    sr = pl_signature_verify(h->opts.app_secret, req->body != NULL ? req->body : "", req->len, sig);
    if (sr != PL_SIG_OK) {
        count_webhook(401);
        pl_log(PL_LOG_WARN,
               PL_FIELDS("event", "webhook", "signature", pl_signature_result_name(sr)),
               "X-Hub-Signature-256 check failed; nothing run");
        return respond_text(c, MHD_HTTP_UNAUTHORIZED, "bad signature");
    }
    if (pl_webhook_parse(req->body != NULL ? req->body : "", req->len, &batch, &err) != 0) {
        if (strcmp(err.code, "oom") == 0) { /* ours, not Meta's: let Meta retry */
            count_webhook(503);
            pl_log(PL_LOG_ERROR, PL_FIELDS("event", "webhook"), "out of memory parsing a webhook");
            return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "try again");
        }
        count_webhook(400);
        pl_log(PL_LOG_WARN, PL_FIELDS("event", "webhook", "code", err.code),
               "not a WhatsApp notification: %s", err.msg);
        return respond_text(c, MHD_HTTP_BAD_REQUEST, "not a WhatsApp notification");
    }
    if (batch.groups_ignored > 0) {
        snprintf(n, sizeof n, "%zu", batch.groups_ignored);
        pl_log(PL_LOG_INFO, PL_FIELDS("event", "webhook", "count", n),
               "group messages ignored: the channel does not support groups");
        pl_metrics_add("parley_events_ignored_total", "reason=\"group\"",
                       (double)batch.groups_ignored);
    }
    if (batch.items_invalid > 0) {
        snprintf(n, sizeof n, "%zu", batch.items_invalid);
        pl_log(PL_LOG_WARN, PL_FIELDS("event", "webhook", "count", n),
               "items without a required field skipped");
        pl_metrics_add("parley_events_ignored_total", "reason=\"invalid\"",
                       (double)batch.items_invalid);
    }
    if (batch.changes_ignored > 0)
        pl_metrics_add("parley_events_ignored_total", "reason=\"field\"",
                       (double)batch.changes_ignored);
    if (batch.n == 0) { /* nothing to store (all skipped, or another field) */
        pl_event_batch_free(&batch);
        count_webhook(200);
        return respond(c, MHD_HTTP_OK, "application/json", "{\"ok\":true}", 11);
    }
    /* the 200 waits for the commit, not this thread: suspend until the ingest resumes us */
    suspend(h, c, req);
    if (pl_ingest_submit(h->opts.ingest, batch.events, batch.n, webhook_stored, req) != 0) {
        pl_event_batch_free(&batch);
        webhook_stored(req, -1, 0);
        return MHD_YES;
    }
    batch.events = NULL; /* the ingest owns them now */
    batch.n = 0;
    pl_event_batch_free(&batch);
    return MHD_YES;
}

static void trigger_answered(void *ud, int status, char *body)
{
    struct request *req = ud;
    char labels[160];
    snprintf(labels, sizeof labels, "channel=\"%s\",status=\"%d\"",
             status == 404 ? "" : req->channel, status);
    pl_metrics_add("parley_triggers_total", labels, 1);
    resume_with(req, status, "application/json", body);
}

/* POST /channels/{id}/trigger */
static enum MHD_Result trigger_post(struct pl_http *h, struct MHD_Connection *c,
                                    const char *channel, struct request *req)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    json_error_t jerr;
    json_t *root, *to, *event, *data, *id;

    if (h->opts.trigger_token == NULL || auth == NULL || strncmp(auth, "Bearer ", 7) != 0 ||
        !ct_equal(auth + 7, h->opts.trigger_token)) {
        pl_log(PL_LOG_WARN, PL_FIELDS("event", "trigger", "channel", channel),
               h->opts.trigger_token == NULL ? "trigger refused: no trigger_token configured"
                                             : "trigger refused: missing or wrong bearer token");
        return respond_error(c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                             "missing or wrong bearer token");
    }
    if (req->too_big)
        return respond_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "bad_request", "body too large");
    root = json_loadb(req->body != NULL ? req->body : "", req->len, 0, &jerr);
    to = json_object_get(root, "to");
    event = json_object_get(root, "event");
    data = json_object_get(root, "data");
    id = json_object_get(root, "id");
    if (!json_is_object(root) || !json_is_string(to) || json_string_length(to) == 0 ||
        json_string_length(to) > 128 || !json_is_string(event) || json_string_length(event) == 0 ||
        json_string_length(event) > 128 || (data != NULL && !json_is_object(data)) ||
        (id != NULL && (!json_is_string(id) || json_string_length(id) > 200))) {
        json_decref(root);
        return respond_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "body must be {\"to\": \"<wa_id, up to 128 bytes>\", \"event\": "
                             "\"<name, up to 128>\", \"data\": {…}, \"id\": \"<optional "
                             "idempotency key, up to 200>\"}");
    }
    snprintf(req->channel, sizeof req->channel, "%s", channel);
    suspend(h, c, req); /* the engine answers (trigger_answered) when the handler has run */
    pl_engine_trigger_async(h->opts.engine, channel, json_string_value(to),
                            json_string_value(event), data, json_string_value(id), trigger_answered,
                            req);
    json_decref(root);
    return MHD_YES;
}

static int valid_channel_id(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return 0;
    return 1;
}

static enum MHD_Result route(struct pl_http *h, struct MHD_Connection *c, const char *url,
                             const char *method, struct request *req)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int post = strcmp(method, "POST") == 0;

    if (strcmp(url, "/webhook") == 0) {
        if (get)
            return webhook_verify(h, c);
        if (post)
            return webhook_post(h, c, req);
        return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    }
    if (strcmp(url, "/healthz") == 0 && get) {
        char *s = pl_engine_health(h->opts.engine);
        enum MHD_Result rc = respond(c, MHD_HTTP_OK, "application/json", s != NULL ? s : "{}",
                                     s != NULL ? strlen(s) : 2);
        free(s);
        return rc;
    }
    if (strcmp(url, "/metrics") == 0 && get) {
        size_t len = 0;
        pl_engine_refresh_analytics(h->opts.engine);
        char *s = pl_metrics_render(&len);
        enum MHD_Result rc = respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4",
                                     s != NULL ? s : "", s != NULL ? len : 0);
        free(s);
        return rc;
    }
    if (strncmp(url, "/channels/", 10) == 0) {
        const char *id = url + 10, *slash = strchr(id, '/');
        if (slash != NULL && strcmp(slash, "/trigger") == 0 &&
            valid_channel_id(id, (size_t)(slash - id))) {
            char channel[65];
            snprintf(channel, sizeof channel, "%.*s", (int)(slash - id), id);
            if (!post)
                return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
            return trigger_post(h, c, channel, req);
        }
    }
    return respond_text(c, MHD_HTTP_NOT_FOUND, "not found");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct pl_http *h = cls;
    struct request *req = *con_cls;

    (void)version;
    if (req != NULL && req->answered) /* resumed: the waited-for answer is ready */
        return respond(c, (unsigned)req->status, req->type, req->answer != NULL ? req->answer : "",
                       req->answer != NULL ? strlen(req->answer) : 0);
    if (req == NULL) {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        req = request_new(h);
        if (req == NULL)
            return MHD_NO;
        *con_cls = req;
        /* Far too large: answer now and let MHD close. Merely too large: read and drop the
         * body, then answer 413, so the client sees the answer rather than a reset. */
        if (cl != NULL && strtoull(cl, NULL, 10) > DRAIN_MAX) {
            if (strcmp(url, "/webhook") == 0)
                count_webhook(413);
            return respond_text(c, MHD_HTTP_CONTENT_TOO_LARGE, "payload too large");
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!req->too_big && req->len + *upload_size > PL_HTTP_BODY_MAX) {
            req->too_big = 1;
            free(req->body);
            req->body = NULL;
            req->len = req->cap = 0;
        }
        if (!req->too_big) {
            if (req->len + *upload_size + 1 > req->cap) {
                size_t cap = req->cap ? req->cap : 4096;
                while (cap < req->len + *upload_size + 1)
                    cap *= 2;
                char *grown = realloc(req->body, cap);
                if (grown == NULL)
                    return MHD_NO;
                req->body = grown;
                req->cap = cap;
            }
            memcpy(req->body + req->len, upload_data, *upload_size);
            req->len += *upload_size;
            req->body[req->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return route(h, c, url, method, req);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request *req = *con_cls;
    (void)c;
    (void)toe;
    if (req != NULL) {
        request_free(cls, req);
        *con_cls = NULL;
    }
}

struct pl_http *pl_http_start(const struct pl_http_opts *opts, struct pl_error *err)
{
    struct pl_http *h = calloc(1, sizeof *h);
    struct addrinfo hints = {0}, *ai = NULL;
    char port[16];
    /* One epoll thread; requests that wait are suspended, not parked on a thread each. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    int rc;

    if (h == NULL) {
        pl_error_set(err, "io", "out of memory");
        return NULL;
    }
    h->opts = *opts;
    snprintf(port, sizeof port, "%d", opts->port);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(opts->host, port, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        pl_error_set(err, "io", "listen %s:%d: %s", opts->host, opts->port, gai_strerror(rc));
        free(h);
        return NULL;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)opts->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (h->daemon == NULL) {
        pl_error_set(err, "io", "cannot listen on %s:%d (address in use or not allowed)",
                     opts->host, opts->port);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info != NULL && info->port != 0 ? info->port : opts->port;
    return h;
}

int pl_http_port(const struct pl_http *h)
{
    return h->port;
}

void pl_http_stop(struct pl_http *h)
{
    if (h == NULL)
        return;
    /* Take no new connections, let every suspended request get its answer (stopping them
     * suspended is not allowed), then stop. */
    MHD_quiesce_daemon(h->daemon);
    for (int i = 0; i < 30000 && __atomic_load_n(&h->suspended, __ATOMIC_SEQ_CST) > 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(h->daemon);
    while (h->spare != NULL) {
        struct request *req = h->spare;
        h->spare = req->next_spare;
        request_destroy(req);
    }
    free(h);
}
