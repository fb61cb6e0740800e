/* metrics.c - the series store behind /metrics: a small hash table of (name, labels) → value
 * guarded by one mutex, and the table of every metric Parley exports with its help text. */
#include "metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metric_def {
    const char *name;
    const char *type; /* "counter" or "gauge" */
    const char *help;
};

static const struct metric_def defs[] = {
    {"parley_webhooks_total", "counter", "POST /webhook requests by HTTP status answered"},
    {"parley_events_in_total", "counter", "Inbound events by channel and type"},
    {"parley_events_unrouted_total", "counter",
     "Inbound events for a phone_number_id no channel has (acknowledged, nothing run)"},
    {"parley_events_ignored_total", "counter", "Inbound items skipped, by reason"},
    {"parley_events_duplicate_total", "counter", "Inbound events already seen, by channel"},
    {"parley_store_errors_total", "counter",
     "State file operations that failed (SQLite errors: webhooks answered 503, turns run again)"},
    {"parley_messages_out_total", "counter",
     "Messages accepted by the provider, by channel and type"},
    {"parley_rejections_total", "counter", "Sends refused by the rules, by channel and code"},
    {"parley_handler_errors_total", "counter", "Handlers that raised, by channel and code"},
    {"parley_provider_errors_total", "counter", "Provider errors by channel and code"},
    {"parley_send_retries_total", "counter", "Send attempts retried, by channel"},
    {"parley_sends_failed_total", "counter", "Messages that failed for good, by channel and code"},
    {"parley_handler_seconds_sum", "counter", "Total handler run time, by channel"},
    {"parley_handler_seconds_count", "counter", "Handler calls, by channel"},
    {"parley_queue_depth", "gauge", "Events waiting for the engine"},
    {"parley_outbox_depth", "gauge", "Messages waiting to be sent or in flight"},
    {"parley_reloads_total", "counter", "Script loads by channel and result"},
    {"parley_script_info", "gauge", "The loaded script version of each channel (value 1)"},
    {"parley_triggers_total", "counter",
     "POST /channels/{id}/trigger requests by channel and status"},
    {"parley_template_messages", "gauge",
     "Template messages by channel, template and delivery status (queued, sent, delivered, "
     "read, failed), from the state file"},
    {"parley_broadcast_messages", "gauge",
     "Messages of broadcasts started in the last 7 days, by job, channel, template and "
     "delivery status"},
};

#define NDEFS    (sizeof defs / sizeof defs[0])
#define NBUCKETS 256

struct series {
    struct series *next;
    size_t def;
    char *labels;
    double value;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series *buckets[NBUCKETS];

static int find_def(const char *name)
{
    for (size_t i = 0; i < NDEFS; i++)
        if (strcmp(defs[i].name, name) == 0)
            return (int)i;
    return -1;
}

static unsigned hash(size_t def, const char *labels)
{
    uint32_t h = 2166136261u ^ (uint32_t)def;
    for (const unsigned char *p = (const unsigned char *)labels; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % NBUCKETS;
}

/* The series for (def, labels), created at 0 when absent; NULL on OOM. Lock held. */
static struct series *lookup(size_t def, const char *labels)
{
    unsigned b = hash(def, labels);
    struct series *s;

    for (s = buckets[b]; s != NULL; s = s->next)
        if (s->def == def && strcmp(s->labels, labels) == 0)
            return s;
    s = calloc(1, sizeof *s);
    if (s == NULL || (s->labels = strdup(labels)) == NULL) {
        free(s);
        return NULL;
    }
    s->def = def;
    s->next = buckets[b];
    buckets[b] = s;
    return s;
}

static void update(const char *name, const char *labels, double v, int set)
{
    int def = find_def(name);
    struct series *s;

    if (def < 0)
        return;
    pthread_mutex_lock(&lock);
    s = lookup((size_t)def, labels != NULL ? labels : "");
    if (s != NULL)
        s->value = set ? v : s->value + v;
    pthread_mutex_unlock(&lock);
}

void pl_metrics_add(const char *name, const char *labels, double v)
{
    update(name, labels, v, 0);
}

void pl_metrics_set(const char *name, const char *labels, double v)
{
    update(name, labels, v, 1);
}

void pl_metrics_drop(const char *name, const char *match)
{
    int def = find_def(name);

    if (def < 0)
        return;
    pthread_mutex_lock(&lock);
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct series **pp = &buckets[b];
        while (*pp != NULL) {
            struct series *s = *pp;
            if (s->def == (size_t)def && strstr(s->labels, match) != NULL) {
                *pp = s->next;
                free(s->labels);
                free(s);
            } else {
                pp = &s->next;
            }
        }
    }
    pthread_mutex_unlock(&lock);
}

char *pl_metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);

    if (out == NULL)
        return NULL;
    pthread_mutex_lock(&lock);
    for (size_t d = 0; d < NDEFS; d++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", defs[d].name, defs[d].help, defs[d].name,
                defs[d].type);
        for (size_t b = 0; b < NBUCKETS; b++)
            for (struct series *s = buckets[b]; s != NULL; s = s->next) {
                if (s->def != d)
                    continue;
                if (s->labels[0] != '\0')
                    fprintf(out, "%s{%s} %.17g\n", defs[d].name, s->labels, s->value);
                else
                    fprintf(out, "%s %.17g\n", defs[d].name, s->value);
            }
    }
    pthread_mutex_unlock(&lock);
    if (fclose(out) != 0) {
        free(buf);
        return NULL;
    }
    if (len != NULL)
        *len = size;
    return buf;
}

void pl_metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    for (size_t b = 0; b < NBUCKETS; b++)
        while (buckets[b] != NULL) {
            struct series *s = buckets[b];
            buckets[b] = s->next;
            free(s->labels);
            free(s);
        }
    pthread_mutex_unlock(&lock);
}
