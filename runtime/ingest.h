/* ingest.h - the group-commit writer between the HTTP threads and the engine. A webhook's events
 * are written to the inbox together with those of every other webhook waiting at that moment, in
 * one transaction; only then does the webhook get its 200, and only the events not seen before
 * go on to the engine. Acknowledgements wait for the disk, never for a scenario. */
#ifndef PL_INGEST_H
#define PL_INGEST_H

#include <stddef.h>

#include "error.h"
#include "webhook.h"

struct pl_engine;
struct pl_ingest;

/* Open the ingest's own store connection on path and start its thread. The engine is borrowed.
 * Returns NULL with err. */
struct pl_ingest *pl_ingest_start(const char *path, int sync_full, struct pl_engine *engine,
                                  struct pl_error *err);

/* Called from the ingest thread once a batch is stored (rc 0, with how many of its events were
 * already stored before) or could not be (rc -1). */
typedef void (*pl_ingest_done_fn)(void *ud, int rc, size_t duplicates);

/* Store evs durably, then hand the new ones to the engine, without waiting: evs (a malloc'd
 * array of n events, n > 0) is taken over at once, done(ud, …) runs on the ingest thread after
 * the commit, before which the webhook must not be acknowledged. Returns 0, or -1 when stopping
 * (nothing was taken). */
int pl_ingest_submit(struct pl_ingest *g, struct pl_event *evs, size_t n, pl_ingest_done_fn done,
                     void *ud);

/* Stop the thread (after the batches already submitted) and close. */
void pl_ingest_stop(struct pl_ingest *g);

#endif
