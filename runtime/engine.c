/* engine.c - the engine thread. Owns the channels (config + loaded script), the queue of events
 * waiting to run, the state of each conversation (last inbound time, session, opt-in), the map
 * from provider message ids to ours, and the sender. Other threads only enqueue and read
 * health, under `lock`. */
#include "engine.h"

#include <openssl/evp.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "luaapi.h"
#include "map.h"
#include "metrics.h"
#include "outbound.h"
#include "rules.h"

#define TRIGGER_WAIT_S 30

struct channel {
    const struct pl_channel_config *cfg;
    struct pl_script *script; /* NULL when no version has loaded */
    char version[17];         /* first 16 hex digits of the script's SHA-256 */
    long long loaded_at;
    char *last_error; /* the last load error, NULL after a good load */
};

/* One conversation: (channel, contact). */
struct convo {
    long long last_inbound;
    char *name;
    char *session; /* JSON */
    int opted_in;
};

/* A trigger request waiting for its answer. */
struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t done_cv;
    int done, status;
    char *body;
};

struct queued {
    struct queued *next;
    struct pl_event ev;
    struct waiter *waiter; /* trigger events only */
};

struct pl_engine {
    const struct pl_config *cfg;
    const struct pl_limits *lim;
    char *stdlib_dir;
    struct channel *channels;
    size_t nchannels;
    struct pl_outbound *out;
    struct pl_map *convos;   /* "channel\x1fcontact" -> struct convo (engine thread only) */
    struct pl_map *wamids;   /* wamid -> local id (engine thread only) */
    struct pl_map *triggers; /* "channel\x1fid" -> stored answer JSON (under lock) */
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    struct queued *head, *tail;
    size_t depth;
    unsigned long long done; /* events run so far */
    size_t outbox;           /* messages queued or in flight, as of the last loop */
    int stopping;
    long grace_ms;
    unsigned long long seq;
};

static long long now_s(void)
{
    return (long long)time(NULL);
}

/* ---- channels ---- */

static void hash_file(const char *path, char out[17])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char buf[8192];
    size_t n;
    FILE *f = fopen(path, "rb");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    strcpy(out, "unknown");
    if (f == NULL || ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
        goto out;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen >= 8)
        for (int i = 0; i < 8; i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
out:
    if (f != NULL)
        fclose(f);
    EVP_MD_CTX_free(ctx);
}

/* Load (or reload) a channel's script. On failure the old version keeps serving. */
static void channel_load(struct pl_engine *e, struct channel *ch)
{
    struct pl_script_opts opts = {
        .channel = ch->cfg->id,
        .path = ch->cfg->script,
        .stdlib_dir = e->stdlib_dir,
        .limits = e->lim,
        .cpu_ms = ch->cfg->cpu_ms,
        .memory_mb = ch->cfg->memory_mb,
    };
    struct pl_error err;
    struct pl_script *s = pl_script_load(&opts, &err);
    char labels[160];

    if (s == NULL) {
        pl_log(PL_LOG_ERROR,
               PL_FIELDS("channel", ch->cfg->id, "event", "load", "code", err.code, "script",
                         ch->cfg->script),
               "%s", err.msg);
        snprintf(labels, sizeof labels, "channel=\"%s\",result=\"error\"", ch->cfg->id);
        pl_metrics_add("parley_reloads_total", labels, 1);
        pthread_mutex_lock(&e->lock);
        free(ch->last_error);
        ch->last_error = strdup(err.msg);
        pthread_mutex_unlock(&e->lock);
        return;
    }
    pthread_mutex_lock(&e->lock);
    pl_script_free(ch->script);
    ch->script = s;
    hash_file(ch->cfg->script, ch->version);
    ch->loaded_at = now_s();
    free(ch->last_error);
    ch->last_error = NULL;
    pthread_mutex_unlock(&e->lock);
    snprintf(labels, sizeof labels, "channel=\"%s\",result=\"ok\"", ch->cfg->id);
    pl_metrics_add("parley_reloads_total", labels, 1);
    pl_metrics_drop("parley_script_info", labels); /* placeholder match is harmless */
    snprintf(labels, sizeof labels, "channel=\"%s\",version=\"%s\"", ch->cfg->id, ch->version);
    pl_metrics_set("parley_script_info", labels, 1);
    pl_log(PL_LOG_INFO,
           PL_FIELDS("channel", ch->cfg->id, "event", "load", "script", ch->cfg->script,
                     "version", ch->version),
           "script loaded");
}

static struct channel *channel_by_phone(struct pl_engine *e, const char *pnid)
{
    for (size_t i = 0; pnid != NULL && i < e->nchannels; i++)
        if (strcmp(e->channels[i].cfg->phone_number_id, pnid) == 0)
            return &e->channels[i];
    return NULL;
}

static struct channel *channel_by_id(struct pl_engine *e, const char *id)
{
    for (size_t i = 0; id != NULL && i < e->nchannels; i++)
        if (strcmp(e->channels[i].cfg->id, id) == 0)
            return &e->channels[i];
    return NULL;
}

/* ---- conversations ---- */

static void convo_free(void *p)
{
    struct convo *c = p;
    if (c == NULL)
        return;
    free(c->name);
    free(c->session);
    free(c);
}

static struct convo *convo_get(struct pl_engine *e, const char *channel, const char *contact)
{
    char key[512];
    struct convo *c;

    snprintf(key, sizeof key, "%s\x1f%s", channel, contact);
    c = pl_map_get(e->convos, key);
    if (c != NULL)
        return c;
    c = calloc(1, sizeof *c);
    if (c == NULL || pl_map_set(e->convos, key, c, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

static void new_id(void *ud, char *buf, size_t size)
{
    struct pl_engine *e = ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, size, "m%011llx%05llx",
             (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)(ts.tv_nsec / 1000000),
             ++e->seq & 0xfffff);
}

/* ---- deliveries ---- */

static void run_event(struct pl_engine *e, struct queued *q);

/* The sender's verdict on one message: remember the wamid, or tell the scenario it failed. */
static void on_delivery(void *ud, const struct pl_delivery *d)
{
    struct pl_engine *e = ud;

    if (!d->failed) {
        char *local = strdup(d->local_id);
        void *old = NULL;
        if (local != NULL && pl_map_set(e->wamids, d->wamid, local, &old) != 0)
            free(local);
        free(old);
        pl_log(PL_LOG_DEBUG,
               PL_FIELDS("channel", d->channel, "contact", d->contact, "event", "sent", "message",
                         d->local_id, "wamid", d->wamid),
               "the provider accepted the message");
        return;
    }
    /* A send-time failure reaches on_status like a failed status webhook. */
    struct queued q = {0};
    struct channel *ch = channel_by_id(e, d->channel);
    if (ch == NULL)
        return;
    q.ev.kind = PL_EVENT_STATUS;
    q.ev.phone_number_id = ch->cfg->phone_number_id;
    q.ev.contact = (char *)d->contact;
    q.ev.status = "failed";
    q.ev.timestamp = now_s();
    q.ev.data = json_pack("{s:s,s:s,s:I,s:s,s:{s:I,s:s,s:s}}", "message_id", d->local_id,
                          "status", "failed", "timestamp", (json_int_t)q.ev.timestamp,
                          "recipient", d->contact, "error", "code", (json_int_t)d->code, "title",
                          d->title != NULL ? d->title : "", "details",
                          d->details != NULL ? d->details : "");
    run_event(e, &q);
    json_decref(q.ev.data);
}

/* ---- running handlers ---- */

static const char *handler_for(enum pl_event_kind kind)
{
    switch (kind) {
    case PL_EVENT_MESSAGE:
        return "on_message";
    case PL_EVENT_PRESS:
        return "on_button";
    case PL_EVENT_STATUS:
        return "on_status";
    case PL_EVENT_TRIGGER:
        return "on_trigger";
    default:
        return NULL;
    }
}

static void answer(struct waiter *w, int status, char *body)
{
    if (w == NULL) {
        free(body);
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->status = status;
    w->body = body;
    w->done = 1;
    pthread_cond_signal(&w->done_cv);
    pthread_mutex_unlock(&w->lock);
}

static char *error_body(const char *code, const char *message)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}

static void run_event(struct pl_engine *e, struct queued *q)
{
    struct pl_event *ev = &q->ev;
    struct channel *ch = ev->kind == PL_EVENT_TRIGGER ? channel_by_id(e, ev->phone_number_id)
                                                      : channel_by_phone(e, ev->phone_number_id);
    const char *handler = handler_for(ev->kind);
    char labels[256];
    struct pl_error err;
    struct timespec t0, t1;

    if (handler == NULL) {
        pl_log(PL_LOG_INFO,
               PL_FIELDS("event", pl_event_kind_name(ev->kind), "waba", ev->waba_id, "status",
                         ev->status),
               "account notification received");
        return;
    }
    if (ch == NULL) {
        pl_log(PL_LOG_WARN,
               PL_FIELDS("phone_number_id", ev->phone_number_id, "event",
                         pl_event_kind_name(ev->kind)),
               "no channel has this phone_number_id; acknowledged, nothing run");
        pl_metrics_add("parley_events_unrouted_total", "", 1);
        answer(q->waiter, 404, error_body("unknown_channel", "no channel with this id"));
        return;
    }
    snprintf(labels, sizeof labels, "channel=\"%s\",type=\"%s\"", ch->cfg->id,
             pl_event_kind_name(ev->kind));
    pl_metrics_add("parley_events_in_total", labels, 1);

    struct convo *c = convo_get(e, ch->cfg->id, ev->contact);
    if (c == NULL) {
        answer(q->waiter, 500, error_body("internal", "out of memory"));
        return;
    }
    if (ev->contact_name != NULL && (c->name == NULL || strcmp(c->name, ev->contact_name) != 0)) {
        free(c->name);
        c->name = strdup(ev->contact_name);
    }
    if (ev->kind == PL_EVENT_MESSAGE || ev->kind == PL_EVENT_PRESS) {
        /* The window opens when the customer writes (by the provider's clock, never later
         * than now). */
        long long t = ev->timestamp > 0 && ev->timestamp <= now_s() ? ev->timestamp : now_s();
        if (t > c->last_inbound)
            c->last_inbound = t;
    }
    if (ev->kind == PL_EVENT_STATUS && ev->data != NULL && ev->id != NULL) {
        const char *local = pl_map_get(e->wamids, ev->id);
        if (local != NULL)
            json_object_set_new(ev->data, "message_id", json_string(local));
    }
    if (ch->script == NULL || !pl_script_has(ch->script, handler)) {
        if (ch->script == NULL)
            pl_log(PL_LOG_WARN, PL_FIELDS("channel", ch->cfg->id, "event", handler),
                   "the channel has no loaded script; nothing run");
        answer(q->waiter, ch->script == NULL ? 503 : 200,
               ch->script == NULL
                   ? error_body("script_error", "the channel's script has not loaded")
                   : strdup("{\"messages\":[]}"));
        return;
    }

    struct pl_call call = {
        .handler = handler,
        .channel = ch->cfg->id,
        .contact = ev->contact,
        .contact_name = c->name,
        .session_json = c->session,
        .event = ev->data,
        .now = now_s(),
        .last_inbound = c->last_inbound,
        .opted_in = c->opted_in,
        .language = ch->cfg->language,
        .new_id = new_id,
        .new_id_ud = e,
    };
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = pl_script_call(ch->script, &call, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    snprintf(labels, sizeof labels, "channel=\"%s\"", ch->cfg->id);
    pl_metrics_add("parley_handler_seconds_sum", labels,
                   (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    pl_metrics_add("parley_handler_seconds_count", labels, 1);

    if (rc != 0) {
        pl_log(PL_LOG_ERROR,
               PL_FIELDS("channel", ch->cfg->id, "contact", ev->contact, "event", handler, "code",
                         err.code),
               "%s", err.msg);
        if (call.traceback != NULL)
            pl_log(PL_LOG_DEBUG,
                   PL_FIELDS("channel", ch->cfg->id, "contact", ev->contact, "event", handler),
                   "%s", call.traceback);
        snprintf(labels, sizeof labels, "channel=\"%s\",code=\"%s\"", ch->cfg->id, err.code);
        pl_metrics_add("parley_handler_errors_total", labels, 1);
        if (call.code < PL_SCRIPT_ERROR)
            pl_metrics_add("parley_rejections_total", labels, 1);
        answer(q->waiter, 422, error_body(err.code, err.msg));
        pl_call_clear(&call);
        return;
    }

    json_t *ids = json_array();
    for (size_t i = 0; i < call.nsends; i++) {
        struct pl_send *s = &call.sends[i];
        if (pl_outbound_enqueue(e->out, s->local_id, ch->cfg->id, ch->cfg->phone_number_id,
                                ev->contact, s->kind, s->body) != 0)
            pl_log(PL_LOG_ERROR, PL_FIELDS("channel", ch->cfg->id, "message", s->local_id),
                   "out of memory queueing a message; it is lost");
        json_array_append_new(ids, json_string(s->local_id));
    }
    if (call.session_out != NULL) {
        free(c->session);
        c->session = call.session_out;
        call.session_out = NULL;
    }
    if (call.opt_in)
        c->opted_in = 1;
    if (q->waiter != NULL) {
        json_t *j = json_pack("{s:o?,s:o}", "id",
                              json_object_get(ev->data, "id") != NULL
                                  ? json_incref(json_object_get(ev->data, "id"))
                                  : NULL,
                              "messages", ids);
        answer(q->waiter, 200, json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER));
        json_decref(j);
    } else {
        json_decref(ids);
    }
    pl_call_clear(&call);
}

/* ---- the thread ---- */

static struct queued *take_all(struct pl_engine *e, int *stopping)
{
    struct queued *q;
    pthread_mutex_lock(&e->lock);
    q = e->head;
    e->head = e->tail = NULL;
    e->depth = 0;
    *stopping = e->stopping;
    pthread_mutex_unlock(&e->lock);
    return q;
}

static void *engine_main(void *arg)
{
    struct pl_engine *e = arg;
    int stopping = 0;
    struct timespec stop_at = {0};

    for (;;) {
        long due = pl_outbound_next_due_ms(e->out);
        int timeout = due < 0 || due > 1000 ? 1000 : (int)due;
        pl_outbound_poll(e->out, timeout);
        struct queued *q = take_all(e, &stopping);
        pl_metrics_set("parley_queue_depth", "", 0);
        unsigned long long ran = 0;
        while (q != NULL) {
            struct queued *next = q->next;
            run_event(e, q);
            pl_event_clear(&q->ev);
            free(q);
            q = next;
            ran++;
        }
        /* one update, so a reader never sees an event done before its sends are counted */
        pthread_mutex_lock(&e->lock);
        e->done += ran;
        e->outbox = pl_outbound_pending(e->out);
        pthread_mutex_unlock(&e->lock);
        pl_metrics_set("parley_outbox_depth", "", (double)e->outbox);
        if (stopping) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (stop_at.tv_sec == 0) {
                stop_at = now;
                stop_at.tv_sec += e->grace_ms / 1000;
                stop_at.tv_nsec += (e->grace_ms % 1000) * 1000000L;
            }
            if (pl_outbound_pending(e->out) == 0 || now.tv_sec > stop_at.tv_sec ||
                (now.tv_sec == stop_at.tv_sec && now.tv_nsec >= stop_at.tv_nsec))
                break;
        }
    }
    if (pl_outbound_pending(e->out) > 0)
        pl_log(PL_LOG_WARN, PL_FIELDS("event", "stop"),
               "%zu messages were not sent before shutdown", pl_outbound_pending(e->out));
    return NULL;
}

struct pl_engine *pl_engine_new(const struct pl_config *cfg, const char *stdlib_dir,
                                struct pl_error *err)
{
    struct pl_engine *e = calloc(1, sizeof *e);

    if (e == NULL) {
        pl_error_set(err, "io", "out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->lock, NULL);
    e->cfg = cfg;
    e->lim = pl_rules_limits(pl_provider_kind_name(cfg->provider.kind));
    e->stdlib_dir = stdlib_dir != NULL ? strdup(stdlib_dir) : NULL;
    e->channels = calloc(cfg->nchannels > 0 ? cfg->nchannels : 1, sizeof *e->channels);
    e->convos = pl_map_new();
    e->wamids = pl_map_new();
    e->triggers = pl_map_new();
    if (e->lim == NULL || e->channels == NULL || e->convos == NULL || e->wamids == NULL ||
        e->triggers == NULL || (stdlib_dir != NULL && e->stdlib_dir == NULL)) {
        pl_error_set(err, "io", "out of memory");
        pl_engine_free(e);
        return NULL;
    }
    e->out = pl_outbound_new(cfg, on_delivery, e, err);
    if (e->out == NULL) {
        pl_engine_free(e);
        return NULL;
    }
    e->nchannels = cfg->nchannels;
    for (size_t i = 0; i < cfg->nchannels; i++) {
        e->channels[i].cfg = &cfg->channels[i];
        channel_load(e, &e->channels[i]);
    }
    return e;
}

int pl_engine_start(struct pl_engine *e, struct pl_error *err)
{
    int rc = pthread_create(&e->thread, NULL, engine_main, e);
    if (rc != 0)
        return pl_error_set(err, "io", "cannot start the engine thread: %s", strerror(rc));
    e->started = 1;
    return 0;
}

static int enqueue(struct pl_engine *e, struct queued *q)
{
    pthread_mutex_lock(&e->lock);
    if (e->stopping) {
        pthread_mutex_unlock(&e->lock);
        return -1;
    }
    if (e->tail != NULL)
        e->tail->next = q;
    else
        e->head = q;
    e->tail = q;
    e->depth++;
    pl_metrics_set("parley_queue_depth", "", (double)e->depth);
    pthread_mutex_unlock(&e->lock);
    pl_outbound_wakeup(e->out);
    return 0;
}

void pl_engine_submit(struct pl_engine *e, struct pl_event *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct queued *q = calloc(1, sizeof *q);
        if (q == NULL) {
            pl_log(PL_LOG_ERROR, PL_FIELDS("event", "submit"), "out of memory; event dropped");
            pl_event_clear(&evs[i]);
            continue;
        }
        q->ev = evs[i];
        memset(&evs[i], 0, sizeof evs[i]);
        if (enqueue(e, q) != 0) {
            pl_log(PL_LOG_WARN, PL_FIELDS("event", "submit"), "stopping; event not run");
            pl_event_clear(&q->ev);
            free(q);
        }
    }
}

int pl_engine_trigger(struct pl_engine *e, const char *channel, const char *to,
                      const char *event_name, json_t *data, const char *idem_id, char **body)
{
    char key[512];
    struct waiter w = {.done = 0};
    struct queued *q;
    struct timespec deadline;
    int status;

    if (channel_by_id(e, channel) == NULL) {
        *body = error_body("unknown_channel", "no channel with this id");
        return 404;
    }
    if (idem_id != NULL) {
        snprintf(key, sizeof key, "%s\x1f%s", channel, idem_id);
        pthread_mutex_lock(&e->lock);
        const char *stored = pl_map_get(e->triggers, key);
        *body = stored != NULL ? strdup(stored) : NULL;
        pthread_mutex_unlock(&e->lock);
        if (stored != NULL)
            return 200;
    }
    q = calloc(1, sizeof *q);
    if (q == NULL) {
        *body = error_body("internal", "out of memory");
        return 500;
    }
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.done_cv, NULL);
    q->waiter = &w;
    q->ev.kind = PL_EVENT_TRIGGER;
    q->ev.phone_number_id = strdup(channel); /* trigger events route by channel id */
    q->ev.contact = strdup(to);
    q->ev.id = idem_id != NULL ? strdup(idem_id) : NULL;
    q->ev.timestamp = now_s();
    q->ev.data = json_pack("{s:s,s:O,s:s?}", "name", event_name, "data",
                           data != NULL ? data : json_null(), "id", idem_id);
    if (enqueue(e, q) != 0) {
        pl_event_clear(&q->ev);
        free(q);
        *body = error_body("stopping", "Parley is shutting down");
        status = 503;
        goto out;
    }
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += TRIGGER_WAIT_S;
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        if (pthread_cond_timedwait(&w.done_cv, &w.lock, &deadline) == ETIMEDOUT && !w.done) {
            /* The engine still owns q; it will answer into w, so we must wait for it. */
            deadline.tv_sec += 1;
        }
    pthread_mutex_unlock(&w.lock);
    status = w.status;
    *body = w.body;
    if (idem_id != NULL && status == 200 && *body != NULL) {
        char *copy = strdup(*body);
        void *old = NULL;
        pthread_mutex_lock(&e->lock);
        if (copy != NULL && pl_map_set(e->triggers, key, copy, &old) != 0)
            free(copy);
        free(old);
        pthread_mutex_unlock(&e->lock);
    }
out:
    pthread_cond_destroy(&w.done_cv);
    pthread_mutex_destroy(&w.lock);
    return status;
}

char *pl_engine_health(struct pl_engine *e)
{
    json_t *root = json_pack("{s:s,s:s,s:s}", "status", "ok", "version", PL_VERSION, "provider",
                             pl_provider_kind_name(e->cfg->provider.kind));
    json_t *chans = json_object();
    char *out;
    int degraded = 0;

    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->nchannels; i++) {
        struct channel *ch = &e->channels[i];
        json_t *c = json_pack("{s:s,s:s,s:b}", "script", ch->cfg->script, "phone_number_id",
                              ch->cfg->phone_number_id, "loaded", ch->script != NULL);
        if (ch->script != NULL) {
            json_object_set_new(c, "version", json_string(ch->version));
            json_object_set_new(c, "loaded_at", json_integer(ch->loaded_at));
        }
        json_object_set_new(c, "last_error",
                            ch->last_error != NULL ? json_string(ch->last_error) : json_null());
        degraded |= ch->script == NULL;
        json_object_set_new(chans, ch->cfg->id, c);
    }
    json_object_set_new(root, "events",
                        json_pack("{s:I,s:I}", "queued", (json_int_t)e->depth, "done",
                                  (json_int_t)e->done));
    json_object_set_new(root, "outbox", json_integer((json_int_t)e->outbox));
    pthread_mutex_unlock(&e->lock);
    json_object_set_new(root, "channels", chans);
    if (degraded)
        json_object_set_new(root, "status", json_string("degraded"));
    out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return out;
}

void pl_engine_stop(struct pl_engine *e, long grace_ms)
{
    if (!e->started)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    e->grace_ms = grace_ms;
    pthread_mutex_unlock(&e->lock);
    pl_outbound_wakeup(e->out);
    pthread_join(e->thread, NULL);
    e->started = 0;
}

void pl_engine_free(struct pl_engine *e)
{
    if (e == NULL)
        return;
    pl_engine_stop(e, 0);
    while (e->head != NULL) {
        struct queued *q = e->head;
        e->head = q->next;
        pl_event_clear(&q->ev);
        free(q);
    }
    for (size_t i = 0; i < e->nchannels; i++) {
        pl_script_free(e->channels[i].script);
        free(e->channels[i].last_error);
    }
    pl_outbound_free(e->out);
    pl_map_free(e->convos, convo_free);
    pl_map_free(e->wamids, free);
    pl_map_free(e->triggers, free);
    free(e->channels);
    free(e->stdlib_dir);
    pthread_mutex_destroy(&e->lock);
    free(e);
}
