/* ingest.c - group commit for the inbox. HTTP threads queue their parsed events and wait; the
 * ingest thread takes everything queued, inserts it in one transaction (deduplicating by provider
 * id), commits, passes the new events to the engine in arrival order and wakes the waiters. */
#include "ingest.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

struct batch {
    struct batch *next;
    struct pl_event *evs;
    size_t n;
    size_t duplicates;
    /* called from the ingest thread after the commit; the batch and its events array are
     * then freed here */
    pl_ingest_done_fn cb;
    void *cb_ud;
};

struct pl_ingest {
    struct pl_store *store; /* the engine's connection, shared */
    struct pl_engine *engine;
    pthread_t thread;
    pthread_t checkpointer;
    struct pl_store *checkpoints; /* the checkpointer's own connection */
    pthread_mutex_t lock;
    pthread_cond_t work;      /* the thread waits for batches */
    pthread_cond_t work_done; /* the checkpointer's sleep (signalled at stop) */
    struct batch *head, *tail;
    int stopping;
};

/* Store every event of every batch in one transaction. Returns 0 or -1 (nothing stored). */
static int store_batches(struct pl_ingest *g, struct batch *list, long long ***rowids_out)
{
    struct pl_error err;
    long long now = (long long)time(NULL);
    long long **rowids;
    size_t nb = 0, i = 0;

    for (struct batch *b = list; b != NULL; b = b->next)
        nb++;
    rowids = calloc(nb, sizeof *rowids);
    if (rowids == NULL)
        return -1;
    for (struct batch *b = list; b != NULL; b = b->next, i++) {
        rowids[i] = calloc(b->n > 0 ? b->n : 1, sizeof **rowids);
        if (rowids[i] == NULL)
            goto fail_alloc;
    }
    if (pl_store_begin(g->store, &err) != 0)
        goto fail;
    i = 0;
    for (struct batch *b = list; b != NULL; b = b->next, i++)
        for (size_t k = 0; k < b->n; k++)
            if (pl_store_inbox_add(g->store, &b->evs[k], now, &rowids[i][k], &err) != 0) {
                pl_store_rollback(g->store);
                goto fail;
            }
    if (pl_store_commit(g->store, &err) != 0) {
        pl_store_rollback(g->store);
        goto fail;
    }
    *rowids_out = rowids;
    return 0;
fail:
    pl_log(PL_LOG_ERROR, PL_FIELDS("event", "ingest", "code", err.code),
           "could not store webhook events (answering 503 so the provider retries): %s", err.msg);
fail_alloc:
    for (size_t j = 0; j < nb; j++)
        free(rowids[j]);
    free(rowids);
    return -1;
}

/* Past this many frames (4 KiB pages) the write-ahead log is restarted: about 64 MiB. Fewer
 * restarts mean fewer of the short waits they cost the writers. */
#define RESTART_FRAMES 16384

/* How often the log is copied: often enough that a restart has little left to copy while the
 * writers wait. */
#define CHECKPOINT_EVERY_MS 100

/* Copy the write-ahead log into the database ten times a second, so that no commit on the webhook
 * path has to (the writers' automatic checkpoints are off), and keep the log short. */
static void *checkpoint_main(void *arg)
{
    struct pl_ingest *g = arg;
    struct pl_error err;

    pthread_setname_np(pthread_self(), "pl-checkpoint");

    for (;;) {
        struct timespec ts;
        int stop;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += CHECKPOINT_EVERY_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&g->lock);
        if (!g->stopping)
            pthread_cond_timedwait(&g->work_done, &g->lock, &ts);
        stop = g->stopping;
        pthread_mutex_unlock(&g->lock);
        if (pl_store_checkpoint(g->checkpoints, RESTART_FRAMES, NULL, NULL, &err) != 0)
            pl_log(PL_LOG_WARN, PL_FIELDS("event", "checkpoint"), "%s", err.msg);
        if (stop)
            break;
    }
    return NULL;
}

static void *ingest_main(void *arg)
{
    struct pl_ingest *g = arg;

    pthread_setname_np(pthread_self(), "pl-ingest");

    for (;;) {
        struct batch *list;
        long long **rowids = NULL;
        int rc;

        pthread_mutex_lock(&g->lock);
        while (g->head == NULL && !g->stopping)
            pthread_cond_wait(&g->work, &g->lock);
        if (g->head == NULL && g->stopping) {
            pthread_mutex_unlock(&g->lock);
            break;
        }
        list = g->head;
        g->head = g->tail = NULL;
        pthread_mutex_unlock(&g->lock);

        rc = store_batches(g, list, &rowids);
        size_t i = 0;
        for (struct batch *b = list; b != NULL; b = b->next, i++) {
            if (rc == 0) {
                /* new events go on to the engine, in arrival order; duplicates stop here */
                size_t fresh = 0;
                for (size_t k = 0; k < b->n; k++) {
                    if (rowids[i][k] == 0) {
                        b->duplicates++;
                        pl_event_clear(&b->evs[k]);
                        continue;
                    }
                    if (fresh != k) {
                        b->evs[fresh] = b->evs[k];
                        memset(&b->evs[k], 0, sizeof b->evs[k]);
                    }
                    rowids[i][fresh++] = rowids[i][k];
                }
                pl_engine_submit(g->engine, b->evs, rowids[i], fresh);
                if (b->duplicates > 0)
                    pl_metrics_add("parley_events_duplicate_total", "", (double)b->duplicates);
                free(rowids[i]);
            }
        }
        free(rowids);
        for (struct batch *b = list, *next; b != NULL; b = next) {
            next = b->next;
            if (rc != 0)
                for (size_t k = 0; k < b->n; k++)
                    pl_event_clear(&b->evs[k]);
            b->cb(b->cb_ud, rc, b->duplicates);
            free(b->evs);
            free(b);
        }
    }
    return NULL;
}

struct pl_ingest *pl_ingest_start(const char *path, int sync_full, struct pl_engine *engine,
                                  struct pl_error *err)
{
    struct pl_ingest *g = calloc(1, sizeof *g);
    int rc;

    if (g == NULL) {
        pl_error_set(err, "io", "out of memory");
        return NULL;
    }
    g->engine = engine;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->work, NULL);
    pthread_cond_init(&g->work_done, NULL);
    g->store = pl_engine_store(engine); /* shared: one warm page cache (see engine.h) */
    g->checkpoints = pl_store_open(path, sync_full, err);
    if (g->checkpoints == NULL)
        goto fail;
    rc = pthread_create(&g->thread, NULL, ingest_main, g);
    if (rc != 0) {
        pl_error_set(err, "io", "cannot start the ingest thread: %s", strerror(rc));
        goto fail;
    }
    rc = pthread_create(&g->checkpointer, NULL, checkpoint_main, g);
    if (rc != 0) {
        pl_error_set(err, "io", "cannot start the checkpoint thread: %s", strerror(rc));
        pthread_mutex_lock(&g->lock);
        g->stopping = 1;
        pthread_cond_signal(&g->work);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->thread, NULL);
        goto fail;
    }
    return g;
fail:
    pl_store_close(g->checkpoints);
    pthread_cond_destroy(&g->work_done);
    pthread_cond_destroy(&g->work);
    pthread_mutex_destroy(&g->lock);
    free(g);
    return NULL;
}

int pl_ingest_submit(struct pl_ingest *g, struct pl_event *evs, size_t n, pl_ingest_done_fn done,
                     void *ud)
{
    struct batch *b = calloc(1, sizeof *b);

    if (b == NULL)
        return -1;
    b->evs = evs;
    b->n = n;
    b->cb = done;
    b->cb_ud = ud;
    pthread_mutex_lock(&g->lock);
    if (g->stopping) {
        pthread_mutex_unlock(&g->lock);
        free(b);
        return -1;
    }
    if (g->tail != NULL)
        g->tail->next = b;
    else
        g->head = b;
    g->tail = b;
    pthread_cond_signal(&g->work);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

void pl_ingest_stop(struct pl_ingest *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    g->stopping = 1;
    pthread_cond_signal(&g->work);
    pthread_cond_signal(&g->work_done);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    pthread_join(g->checkpointer, NULL);
    pl_store_close(g->checkpoints);
    pthread_cond_destroy(&g->work_done);
    pthread_cond_destroy(&g->work);
    pthread_mutex_destroy(&g->lock);
    free(g);
}
