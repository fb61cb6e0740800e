/* customer.h - a simulated customer for parley test and parley chat: the events a phone would
 * cause (a text, a button press, a delivery status) and the bot's recent messages, so a press
 * can find its button. */
#ifndef PL_CUSTOMER_H
#define PL_CUSTOMER_H

#include <jansson.h>

#include "config.h"
#include "webhook.h"

#define PL_CUSTOMER_HISTORY 20 /* how many of the bot's messages a press looks back on */

struct pl_customer {
    const struct pl_channel_config *channel;
    char contact[128];
    char name[128]; /* "" for no profile name */
    unsigned long counter;
    char *history[PL_CUSTOMER_HISTORY]; /* the bot's messages, newest at [0] */
    char history_wamid[PL_CUSTOMER_HISTORY][128];
};

/* Remember a message the bot sent this customer (body: the send request). */
void pl_customer_remember(struct pl_customer *c, const char *wamid, const char *body);

/* Forget the bot's messages (a new conversation). */
void pl_customer_forget(struct pl_customer *c);

/* The customer writes text at `now`: fills ev (the caller frees it or moves it on). */
void pl_customer_text(struct pl_customer *c, long long now, const char *text, struct pl_event *ev);

/* The customer presses the button or picks the list row whose title or id is label, on the
 * newest recent message that has one. Returns 0 with ev filled, or -1 with a message in err. */
int pl_customer_press(struct pl_customer *c, long long now, const char *label, struct pl_event *ev,
                      char *err, size_t errsz);

/* The customer presses choice n (1-based) of the newest message that has choices: its quick
 * replies, else its list rows. Returns 0, or -1 with err (e.g. a URL button, which opens a
 * page instead). */
int pl_customer_press_nth(struct pl_customer *c, long long now, int n, struct pl_event *ev,
                          char *err, size_t errsz);

/* The provider reports status ("delivered", "read", "failed" with code) for the bot's newest
 * message. Returns 0, or -1 with err when the bot has sent nothing. */
int pl_customer_status(struct pl_customer *c, long long now, const char *status, long code,
                       struct pl_event *ev, char *err, size_t errsz);

#endif
