/* engine.h - the engine: one thread that owns every channel's Lua state and the outbound sender,
 * takes events from the HTTP threads in arrival order, runs the right handler for each, and
 * hands the messages a handler queued to the sender once it returned cleanly. */
#ifndef PL_ENGINE_H
#define PL_ENGINE_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"
#include "outbound.h"
#include "error.h"
#include "webhook.h"

struct pl_engine;

/* Create the engine for cfg (borrowed; must outlive the engine): open the state file, load
 * every channel's script
 * (a script that fails to load is logged and reported by /healthz; its channel runs nothing
 * until a good version loads) and the sender. stdlib_dir may be NULL. Returns NULL with err. */
struct pl_engine *pl_engine_new(const struct pl_config *cfg, const char *stdlib_dir,
                                struct pl_error *err);

/* Recover what the last run left (acknowledged events not yet handled, committed messages not
 * yet accepted by the provider), then start the engine thread. Returns 0, or -1 with err. */
int pl_engine_start(struct pl_engine *e, struct pl_error *err);

/* Hand stored events to the engine (any thread); rowids[i] is evs[i]'s inbox row. Moves the
 * events: afterwards evs[i] is cleared and only the arrays remain the caller's. Never blocks on
 * a scenario. */
void pl_engine_submit(struct pl_engine *e, struct pl_event *evs, const long long *rowids, size_t n);

/* POST /channels/{id}/trigger: run on_trigger for contact `to` and wait for it (in-process, when
 * the engine thread is not started: run it now). data is
 * borrowed. Returns the HTTP status (200, 404 unknown channel, 422 handler raised, 503 engine
 * stopping) and a malloc'd JSON body in *body. A repeated idem_id returns the first result and
 * runs nothing. */
int pl_engine_trigger(struct pl_engine *e, const char *channel, const char *to,
                      const char *event_name, json_t *data, const char *idem_id, char **body);

/* The answer to an asynchronous trigger: status and a malloc'd JSON body the callee owns. */
typedef void (*pl_trigger_fn)(void *ud, int status, char *body);

/* The same without waiting: done(ud, status, body) is called exactly once, from this thread
 * (unknown channel, stopping) or later from the engine thread. data is borrowed. */
void pl_engine_trigger_async(struct pl_engine *e, const char *channel, const char *to,
                             const char *event_name, json_t *data, const char *idem_id,
                             pl_trigger_fn done, void *ud);

/* SIGHUP: switch to cfg (heap-allocated; the engine owns it from now on) between two turns.
 * Channels that are unchanged keep their loaded script, changed and new ones load, removed ones
 * close; events of the others go on. Listen address, secrets and provider need a restart.
 * Returns 0. */
int pl_engine_reconfigure(struct pl_engine *e, struct pl_config *cfg);

/* Bring the analytics gauges (template and broadcast messages by delivery status) up to date
 * from the state file, on a connection of their own; called by GET /metrics (any thread). */
void pl_engine_refresh_analytics(struct pl_engine *e);

/* The /healthz document (malloc'd JSON). */
char *pl_engine_health(struct pl_engine *e);

/* Stop: finish the events already queued, give pending sends up to grace_ms to go out, join
 * the thread. */
void pl_engine_stop(struct pl_engine *e, long grace_ms);

void pl_engine_free(struct pl_engine *e);

/* ---- in-process use (parley test, parley chat): no engine thread is started ---- */

/* Run one event (moved) now, in the caller's thread, with everything it causes (its sends,
 * their acceptance, on_status for failures). Returns 200 with {"messages": [ids]} in *body, or
 * 422 with {"error": {"code", "message"}} when the handler raised. Caller frees *body. */
int pl_engine_run(struct pl_engine *e, struct pl_event *ev, char **body);

/* The message of such an {"error": {"code", "message"}} answer (parsed), or NULL when it has
 * none. It points into answer. */
const char *pl_engine_error_message(const json_t *answer);

/* Load the scripts whose files changed now (pl_engine_run does it too; parley chat calls it
 * first so it can say which version answers). */
void pl_engine_reload_changed(struct pl_engine *e);

/* Give every message the sandbox accepts to sink instead of printing it. */
void pl_engine_set_sink(struct pl_engine *e, pl_sink_fn sink, void *ud);

/* Move the engine's clock (the one the rules and os.time() see) on by seconds. */
void pl_engine_advance(struct pl_engine *e, long long seconds);
/* The engine's state connection. The serving process's other writer (ingest.c) uses it too,
 * so that SQLite keeps one warm page cache instead of two that each commit empties: it is
 * shared (pl_store_share), and used only with the store's write turn held. Closed with the
 * engine, so its users stop first. */
struct pl_store *pl_engine_store(struct pl_engine *e);
long long pl_engine_now(const struct pl_engine *e);

/* The stored chat.session of (channel, contact) as JSON (malloc'd), or NULL. */
char *pl_engine_session(struct pl_engine *e, const char *channel, const char *contact);

#endif
