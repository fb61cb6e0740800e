/* store.h - durable state on SQLite, the only code that speaks SQL. WAL mode, schema created and
 * migrated by version (PRAGMA user_version). Holds: the inbox (every inbound event, unique by
 * its provider id), contacts (name, last inbound time, opt-in, session), the outbox (every
 * message and its delivery state, with the provider's wamid), trigger answers (idempotency),
 * the daily limit's recipients, settings, and broadcast jobs with their recipients.
 *
 * A struct pl_store is one SQLite connection: use it from one thread at a time. Parley opens one
 * for the ingest thread and one for the engine thread on the same file. Every function returns
 * 0 on success, -1 with err (code "store") on failure, unless it says otherwise. */
#ifndef PL_STORE_H
#define PL_STORE_H

#include <stddef.h>

#include "error.h"
#include "webhook.h"

#define PL_STORE_SCHEMA_VERSION 5

struct pl_store;

/* Open (creating the file and its folder, and migrating the schema) the database at path.
 * sync_full: 1 = synchronous=FULL (a commit survives power loss), 0 = NORMAL (a commit survives
 * a crash of the process, kill -9 included; the default). Returns NULL with err. */
struct pl_store *pl_store_open(const char *path, int sync_full, struct pl_error *err);

void pl_store_close(struct pl_store *s);

/* One connection for several threads of this process (the engine's, which the ingest thread
 * shares): SQLite drops a connection's whole page cache whenever another connection has
 * committed, so two connections that write in turn would each read every page again at every
 * transaction. A shared connection is used only by the thread that holds the process's write
 * turn: pl_store_begin takes it for a transaction; any other use goes between pl_store_hold and
 * pl_store_release (which nest). Using a shared connection without it aborts. */
void pl_store_share(struct pl_store *s);
void pl_store_hold(void);
void pl_store_release(void);

/* Checkpoints: SQLite copies the write-ahead log into the database every 1,000 pages, inside
 * whichever commit crosses the mark. The webhook path turns that off on its writers
 * (pl_store_manual_checkpoints) and checkpoints from a thread of its own (pl_store_checkpoint).
 * A passive checkpoint never waits for readers or writers, but under a steady stream of commits
 * it never catches up with the log either, and the log only starts over from its beginning once
 * a checkpoint has copied all of it. So once the log holds more than restart_frames frames, the
 * checkpoint makes more passive passes until the writers add only a few frames during one, and
 * then a last pass in turn with this process's writers (on their mutex): it copies the whole log,
 * and the next commit starts it over. Before that last pass it syncs the log and the database
 * itself, so the writers wait for the copy and the two syncs of those few frames only. If the
 * writers outrun the passes, the last pass runs anyway once the log holds twice restart_frames
 * (unless a reader holds the copies back). The first commit after a restart syncs the log's new
 * header, in the writer. restart_frames 0 never restarts. *log_frames (may be NULL) gets the
 * log's length before, -1 when SQLite answered busy (another checkpoint running); *held_frames
 * (may be NULL) how many frames the last pass copied while the writers waited, or -1 when there
 * was no such pass. */
void pl_store_manual_checkpoints(struct pl_store *s);
int pl_store_checkpoint(struct pl_store *s, int restart_frames, int *log_frames, int *held_frames,
                        struct pl_error *err);

/* The last error of a state file in this process (every SQLite error counts, and
 * parley_store_errors_total with it), until a commit succeeds: 1 with msg and *at (Unix seconds)
 * filled, or 0. Any thread. */
int pl_store_failure(char *msg, size_t size, long long *at);

/* Transactions (BEGIN IMMEDIATE ... COMMIT). Rollback never fails. */
int pl_store_begin(struct pl_store *s, struct pl_error *err);
int pl_store_commit(struct pl_store *s, struct pl_error *err);
void pl_store_rollback(struct pl_store *s);

/* ---- inbox ---- */

enum pl_inbox_state { PL_INBOX_PENDING = 0, PL_INBOX_DONE = 1, PL_INBOX_FAILED = 2 };

/* The dedupe key of an event: "m:<wamid>" for messages and presses, "s:<wamid>:<status>" for
 * statuses, "t:<template id>:<status>:<timestamp>" for template status updates,
 * "q:<waba>:<event>:<timestamp>" for quality updates. Writes into buf; returns buf. */
const char *pl_store_dedupe_key(const struct pl_event *ev, char *buf, size_t size);

/* Insert the event (all of it, data as JSON, so it can be run again after a crash) unless an
 * event with the same dedupe key exists. *rowid is the new row's id, or 0 for a duplicate. */
int pl_store_inbox_add(struct pl_store *s, const struct pl_event *ev, long long received_at,
                       long long *rowid, struct pl_error *err);

/* Mark an inbox row handled (DONE) or failed (FAILED, with the error code and message). */
int pl_store_inbox_finish(struct pl_store *s, long long rowid, enum pl_inbox_state state,
                          const char *code, const char *message, struct pl_error *err);

/* Call fn for every PENDING row in arrival order (rowid), with the event rebuilt (owned by the
 * store; fn copies what it keeps). fn returns 0 to go on, -1 to stop (then this returns -1). */
int pl_store_inbox_pending(struct pl_store *s,
                           int (*fn)(void *ud, long long rowid, const struct pl_event *ev),
                           void *ud, struct pl_error *err);

/* The same for the PENDING rows after rowid `after`, at most max of them (0: all). *count (may
 * be NULL) gets how many rows were read. */
int pl_store_inbox_pending_after(struct pl_store *s, long long after, size_t max,
                                 int (*fn)(void *ud, long long rowid, const struct pl_event *ev),
                                 void *ud, size_t *count, struct pl_error *err);

/* Counts by state (a scan of the table; tests read them). */
int pl_store_inbox_counts(struct pl_store *s, long long *pending, long long *done,
                          long long *failed, struct pl_error *err);

/* ---- contacts and sessions ---- */

struct pl_contact {
    char *name;             /* may be NULL */
    long long last_inbound; /* unix seconds; 0 = never wrote */
    int opted_in;
    char *opt_in_source; /* may be NULL */
    long long opt_in_at;
    char *session; /* JSON; NULL = no session yet */
};

/* Read (channel, contact) into c (zeroed first; all zeros/NULL when unknown). The caller frees
 * with pl_contact_clear. */
int pl_store_contact_get(struct pl_store *s, const char *channel, const char *contact,
                         struct pl_contact *c, struct pl_error *err);

/* Insert or update (channel, contact) with c. Consent and the last inbound time only move
 * forward: a writer that read the row before another connection recorded an opt-in (a
 * broadcast) does not undo it. The session and a non-NULL name are replaced. With stored not
 * NULL, the row as it now is (the caller clears it; untouched on failure); reading it back
 * costs about as much as the write, so pass NULL when c is known to be the result (the caller
 * read the row, changed it only forward, and no other connection has committed since). */
int pl_store_contact_put(struct pl_store *s, const char *channel, const char *contact,
                         const struct pl_contact *c, struct pl_contact *stored,
                         struct pl_error *err);

/* A deep copy of src into dst (which the caller clears). Returns 0, or -1 on OOM (dst empty). */
int pl_contact_copy(struct pl_contact *dst, const struct pl_contact *src);

void pl_contact_clear(struct pl_contact *c);

/* A number that changes whenever another connection (another process, or another of this
 * process's connections) commits to the state file; commits on s itself do not change it. A
 * cache of what s read is valid while it stays the same. */
int pl_store_data_version(struct pl_store *s, long long *version, struct pl_error *err);

/* Record the opt-in of (channel, contact) with source and time, touching nothing else (name,
 * last inbound time and session stay as they are; a contact not yet known is created). An
 * opt-in already recorded keeps its source and time. One statement, so it cannot overwrite what
 * another connection wrote in between (unlike a get + put). */
int pl_store_contact_opt_in(struct pl_store *s, const char *channel, const char *contact,
                            const char *source, long long at, struct pl_error *err);

/* ---- outbox ---- */

/* Message states, in order; a later state never goes back to an earlier one, except that
 * failed is final from any state. */
enum pl_out_state {
    PL_OUT_QUEUED = 0,
    PL_OUT_SENT = 1, /* the provider accepted it (we have its wamid) */
    PL_OUT_DELIVERED = 2,
    PL_OUT_READ = 3,
    PL_OUT_FAILED = 4
};

const char *pl_out_state_name(enum pl_out_state st);

/* Add a queued message; *id (when not NULL) gets its row id. local_id is unique. phone_number_id
 * is the number it goes out from (the channel's when it was queued); it and template_name may
 * be NULL. */
int pl_store_outbox_add(struct pl_store *s, const char *local_id, const char *channel,
                        const char *phone_number_id, const char *contact, const char *kind,
                        const char *body, const char *template_name, long long created_at,
                        long long *id, struct pl_error *err);

/* The provider accepted local_id and called it wamid. */
int pl_store_outbox_sent(struct pl_store *s, const char *local_id, const char *wamid, long long at,
                         struct pl_error *err);

/* local_id failed for good with the provider's code (or -1), title and details. */
int pl_store_outbox_failed(struct pl_store *s, const char *local_id, long code, const char *title,
                           const char *details, long long at, struct pl_error *err);

/* A status webhook for wamid: move the row forward to st (sent/delivered/read/failed; never
 * backwards: a "delivered" after "read" changes nothing). Copies the row's local id into
 * local_id (size bytes; "" when no row has this wamid). *changed is 1 when the state moved. */
int pl_store_outbox_status(struct pl_store *s, const char *wamid, enum pl_out_state st, long code,
                           long long at, char *local_id, size_t size, int *changed,
                           struct pl_error *err);

/* Add a queued message that belongs to the broadcast job `job` (outbox.broadcast = job): the
 * same row as pl_store_outbox_add, which the broadcast process owns (see
 * pl_store_outbox_queued). */
int pl_store_outbox_add_job(struct pl_store *s, const char *local_id, const char *channel,
                            const char *phone_number_id, const char *contact, const char *kind,
                            const char *body, const char *template_name, const char *job,
                            long long created_at, struct pl_error *err);

/* Call fn for the QUEUED messages after outbox id `after`, at most max of them (0: all), in
 * creation order (recovery after a restart, and messages read back for the sender), with each
 * row's id and the time it was queued (unix seconds: its maximum age counts from then, across
 * restarts), and the number it goes out from (NULL for a row queued before schema version 5:
 * the channel's current one). *count (may be NULL) gets how many rows were read. Skips the rows of
 * broadcast jobs (outbox.broadcast not NULL): the `parley broadcast` process that queued them sends
 * them again when the job resumes, so the server must not send them too. */
int pl_store_outbox_queued(struct pl_store *s, long long after, size_t max,
                           int (*fn)(void *ud, long long id, const char *local_id,
                                     const char *channel, const char *phone_number_id,
                                     const char *contact, const char *kind, const char *body,
                                     long long created_at),
                           void *ud, size_t *count, struct pl_error *err);

/* Counts per state for a channel (NULL: all channels); counts has PL_OUT_FAILED + 1 slots. */
int pl_store_outbox_counts(struct pl_store *s, const char *channel, long long *counts,
                           struct pl_error *err);

/* Analytics: call fn once per (channel, template, state) with the number of outbox rows of
 * template messages (template_name not NULL) in that state; state is pl_out_state_name's
 * ("queued", "sent", "delivered", "read", "failed"). Absent combinations are not reported (a
 * count is never 0): a caller that exports gauges sets the ones it saw and zeroes the rest.
 * One query over an index, no write; safe to call from any connection every few seconds.
 * fn returns 0 to go on, -1 to stop (then this returns -1 with err untouched). */
int pl_store_outbox_template_counts(struct pl_store *s,
                                    int (*fn)(void *ud, const char *channel,
                                              const char *template_name, const char *state,
                                              long long count),
                                    void *ud, struct pl_error *err);

/* The same per broadcast job, for the jobs created at or after `since` (unix seconds; 0: all):
 * fn once per (job, channel, template, state) with a count > 0. Same contract otherwise. */
int pl_store_outbox_broadcast_counts(struct pl_store *s, long long since,
                                     int (*fn)(void *ud, const char *job, const char *channel,
                                               const char *template_name, const char *state,
                                               long long count),
                                     void *ud, struct pl_error *err);

/* ---- trigger answers ---- */

/* The stored answer for (channel, id) into *answer (malloc'd), or *answer = NULL when none. */
int pl_store_trigger_get(struct pl_store *s, const char *channel, const char *id, char **answer,
                         struct pl_error *err);

/* Store the answer for (channel, id) (first one wins). */
int pl_store_trigger_put(struct pl_store *s, const char *channel, const char *id,
                         const char *answer, long long at, struct pl_error *err);

/* ---- business-initiated recipients (the daily limit) ---- */

/* Record a business-initiated message to (channel, contact) at `at` (keeps the latest time). */
int pl_store_business_add(struct pl_store *s, const char *channel, const char *contact,
                          long long at, struct pl_error *err);

/* How many contacts of channel had a business-initiated message after `since`. */
int pl_store_business_count(struct pl_store *s, const char *channel, long long since,
                            long long *count, struct pl_error *err);

/* The time of the last business-initiated message to (channel, contact) into *at; 0 if none. */
int pl_store_business_at(struct pl_store *s, const char *channel, const char *contact,
                         long long *at, struct pl_error *err);

/* ---- settings: small durable values (template statuses, messaging-limit tiers) ---- */

int pl_store_setting_put(struct pl_store *s, const char *key, const char *value, long long at,
                         struct pl_error *err);

/* *value is malloc'd, or NULL when the key is absent; *at (may be NULL) its time. */
int pl_store_setting_get(struct pl_store *s, const char *key, char **value, long long *at,
                         struct pl_error *err);

/* Call fn for every key that starts with prefix, in key order. */
int pl_store_settings_prefix(struct pl_store *s, const char *prefix,
                             int (*fn)(void *ud, const char *key, const char *value, long long at),
                             void *ud, struct pl_error *err);

/* ---- broadcast jobs (`parley broadcast`) ---- */

/* A broadcast job. Strings are malloc'd by the store on reads (pl_broadcast_row_clear frees
 * them) and borrowed on writes. state: "importing" (the list is being read into
 * broadcast_recipients), "running", "stopped" (stop_code says why: daily_limit, interrupted,
 * template_not_approved, …; the rest of the list is pending and the job can resume) or "done". */
struct pl_broadcast_row {
    char *id; /* "b-<unix time>-<6 hex digits>" */
    char *channel, *template_name, *language;
    char *file; /* the list, as an absolute path */
    double rate;
    char *state, *stop_code;
    long long file_size, file_mtime;   /* the list when the job started */
    long long import_offset;           /* bytes of the list imported so far */
    long long import_line;             /* lines of the list imported so far */
    long long created_at, finished_at; /* finished_at: 0 while not done or stopped */
    /* totals written with the last state change: rows, sent, skipped, failed */
    long long total, sent, skipped, failed;
};

void pl_broadcast_row_clear(struct pl_broadcast_row *b);

/* A recipient's state within its job. */
enum pl_rcpt_state {
    PL_RCPT_PENDING = 0, /* not sent yet */
    PL_RCPT_QUEUED,      /* its outbox row is committed; the provider has not accepted it yet */
    PL_RCPT_SENT,        /* the provider accepted it */
    PL_RCPT_SKIPPED,     /* never sent: code says why (bad_phone, duplicate, not_opted_in, …) */
    PL_RCPT_FAILED,      /* the provider refused it for good: code is its error code */
    PL_RCPT_STATES
};

/* "pending", "queued", "sent", "skipped", "failed" (the strings stored in the table). */
const char *pl_rcpt_state_name(enum pl_rcpt_state st);

/* Insert a new job (b->id unique; every string set except stop_code). */
int pl_store_broadcast_create(struct pl_store *s, const struct pl_broadcast_row *b,
                              struct pl_error *err);

/* Read job id into b (zeroed first); *found 0 when there is none (b stays zeroed). */
int pl_store_broadcast_get(struct pl_store *s, const char *id, struct pl_broadcast_row *b,
                           int *found, struct pl_error *err);

/* The newest job for (channel, template, language, file), whatever its state, into b. */
int pl_store_broadcast_find(struct pl_store *s, const char *channel, const char *template_name,
                            const char *language, const char *file, struct pl_broadcast_row *b,
                            int *found, struct pl_error *err);

/* Call fn for the newest `limit` jobs, newest first (b borrowed for the call). */
int pl_store_broadcast_list(struct pl_store *s, int limit,
                            int (*fn)(void *ud, const struct pl_broadcast_row *b), void *ud,
                            struct pl_error *err);

/* Set the job's state and stop_code (may be NULL), finished_at (0: not finished), the rate it
 * runs at, and the totals from broadcast_recipients as they are now. */
int pl_store_broadcast_set_state(struct pl_store *s, const char *id, const char *state,
                                 const char *stop_code, long long finished_at, double rate,
                                 struct pl_error *err);

/* Import progress: offset bytes and `line` lines of the list are in broadcast_recipients. Run it
 * in the transaction that added those rows, so a killed import resumes where it stopped. */
int pl_store_broadcast_imported(struct pl_store *s, const char *id, long long offset,
                                long long line, struct pl_error *err);

/* Add recipient `line` (the list's line number where its record starts) of job. params: JSON
 * text (may be NULL); state PENDING or SKIPPED (with code and detail). A line already there is
 * left as it is (an import that resumes may offer it again). */
int pl_store_rcpt_add(struct pl_store *s, const char *job, long long line, const char *wa_id,
                      const char *params, int opt_in, enum pl_rcpt_state state, const char *code,
                      const char *detail, struct pl_error *err);

/* *line: the first line of job with this wa_id, or 0 when none. */
int pl_store_rcpt_find_wa(struct pl_store *s, const char *job, const char *wa_id, long long *line,
                          struct pl_error *err);

/* Call fn for up to `limit` PENDING recipients of job after line `after`, in line order (the
 * statement is reset first: fn may write through the same connection). *n is how many. */
int pl_store_rcpt_pending(struct pl_store *s, const char *job, long long after, int limit,
                          int (*fn)(void *ud, long long line, const char *wa_id, const char *params,
                                    int opt_in),
                          void *ud, size_t *n, struct pl_error *err);

/* Call fn for every QUEUED recipient of job, in line order, with its outbox row's local id,
 * body, state, commit time and phone number (body NULL when the row is missing: a hand-edited
 * file; the number NULL in a row from before schema version 5). */
int pl_store_rcpt_queued(struct pl_store *s, const char *job,
                         int (*fn)(void *ud, long long line, const char *wa_id,
                                   const char *local_id, const char *body, int out_state,
                                   long long created_at, const char *phone_number_id),
                         void *ud, struct pl_error *err);

/* Set recipient (job, line) to state with code, detail and local_id (each may be NULL; a NULL
 * local_id keeps the one it has). */
int pl_store_rcpt_set(struct pl_store *s, const char *job, long long line, enum pl_rcpt_state state,
                      const char *code, const char *detail, const char *local_id,
                      struct pl_error *err);

/* The sender's answer for a QUEUED recipient: SENT, or FAILED with the code. A recipient in any
 * other state is left as it is (0 returned). */
int pl_store_rcpt_finish(struct pl_store *s, const char *job, long long line,
                         enum pl_rcpt_state state, const char *code, const char *detail,
                         struct pl_error *err);

/* Call fn once per (state, code) of job's recipients with the count (code "" when none). */
int pl_store_rcpt_counts(struct pl_store *s, const char *job,
                         int (*fn)(void *ud, enum pl_rcpt_state st, const char *code,
                                   long long count),
                         void *ud, struct pl_error *err);

/* Call fn for every recipient of job that was not sent (pending, queued, skipped, failed), in
 * line order, streaming (constant memory). */
int pl_store_rcpt_unsent(struct pl_store *s, const char *job,
                         int (*fn)(void *ud, long long line, const char *wa_id,
                                   enum pl_rcpt_state st, const char *code, const char *detail),
                         void *ud, struct pl_error *err);

/* Call fn once per (outbox state, error code) of the job's messages with the count: delivery as
 * status webhooks move it. code is -1 for rows without one. */
int pl_store_broadcast_delivery(struct pl_store *s, const char *job,
                                int (*fn)(void *ud, enum pl_out_state st, long code,
                                          long long count),
                                void *ud, struct pl_error *err);

#endif
