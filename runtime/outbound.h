/* outbound.h - the provider's JSON dialect for sends, and the sender that delivers queued
 * messages: libcurl multi for cloud-api (non-blocking, bounded concurrency, keep-alive, retries
 * with backoff), or the in-process sandbox. Driven from the engine thread only. */
#ifndef PL_OUTBOUND_H
#define PL_OUTBOUND_H

#include <stddef.h>

#include "config.h"
#include "error.h"
#include "rules.h"
#include "templates.h"

/* Build the Cloud API request body for a message already passed by the rules.
 * `to` is the contact (a wa_id, or a business-scoped user id "CC.…" sent as `recipient`).
 * Returns a malloc'd JSON string, or NULL with err on allocation failure. *kind is set to the
 * message type ("text", "interactive", "image", "document"). */
char *pl_outbound_message_json(const struct pl_limits *lim, const struct pl_message *m,
                               const char *to, const char **kind, struct pl_error *err);

/* Build the Cloud API request body for a template send already passed by pl_templates_check
 * (the message type is "template"): header, body and one button component per button value,
 * components without parameters left out. `to` as for pl_outbound_message_json. Returns a
 * malloc'd JSON string, or NULL with err on allocation failure or a NULL argument. */
char *pl_outbound_template_json(const struct pl_template *tpl, const struct pl_tpl_send *send,
                                const char *to, struct pl_error *err);

struct pl_outbound;

/* What became of one message: called from pl_outbound_poll on the engine thread. */
struct pl_delivery {
    const char *local_id;
    const char *channel;
    const char *contact;
    const char *wamid;   /* on success */
    int failed;          /* 1 for a permanent failure */
    long code;           /* provider error code (or -1 for transport/age failures) */
    const char *title;   /* error title */
    const char *details; /* error details */
};

typedef void (*pl_delivery_fn)(void *ud, const struct pl_delivery *d);

/* Create the sender for the configured provider. on_done is called once per message, when the
 * provider accepted it or it failed for good. Returns NULL with err. */
struct pl_outbound *pl_outbound_new(const struct pl_config *cfg, pl_delivery_fn on_done, void *ud,
                                    struct pl_error *err);

void pl_outbound_free(struct pl_outbound *o);

/* Queue a message (copies every string). Messages to one contact go out in queue order, the
 * next only after the previous was accepted. created_at (unix seconds; 0 = now) is when the
 * message was committed: a message the provider has not accepted a day after that fails at its
 * next refusal instead of being retried, whether or not Parley restarted in between.
 * Returns 0, or -1 on allocation failure. */
int pl_outbound_enqueue(struct pl_outbound *o, const char *local_id, const char *channel,
                        const char *phone_number_id, const char *contact, const char *kind,
                        const char *body, long long created_at);

/* Wait up to timeout_ms for network activity, pl_outbound_wakeup or extra_fd becoming readable
 * (-1: none), then finish the transfers
 * that are done: on_done for each accepted or failed message, retries scheduled. Starts nothing:
 * the caller records what on_done reported first, then calls pl_outbound_start. That way a
 * message the provider accepted but we have not recorded always holds its connection slot, and
 * a crash can duplicate at most max_connections messages. */
void pl_outbound_poll(struct pl_outbound *o, int timeout_ms, int extra_fd);

/* Start every message that is due, within the connection budget (the sandbox answers at once:
 * on_done runs before this returns). */
void pl_outbound_start(struct pl_outbound *o);

/* Instead of printing sandbox messages, give each accepted one to sink (parley test / chat).
 * body is the request body, wamid the sandbox's id for it. */
typedef void (*pl_sink_fn)(void *ud, const char *channel, const char *contact, const char *local_id,
                           const char *wamid, const char *body);
void pl_outbound_set_sink(struct pl_outbound *o, pl_sink_fn sink, void *ud);

/* Wake a thread blocked in pl_outbound_poll (any thread may call it). */
void pl_outbound_wakeup(struct pl_outbound *o);

/* Messages queued or in flight. */
size_t pl_outbound_pending(const struct pl_outbound *o);

/* Milliseconds until the next retry is due (-1 when none): the engine's poll timeout. */
long pl_outbound_next_due_ms(const struct pl_outbound *o);

#endif
