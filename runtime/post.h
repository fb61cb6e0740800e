/* post.h - `parley post`: build a Cloud API webhook as Meta would send it (a text message, a
 * button press or a list pick from a customer), sign it with the app secret and POST it to a
 * running Parley. For the tour, for trying a deployment, and for the benchmark's payloads. */
#ifndef PL_POST_H
#define PL_POST_H

#include "error.h"

struct pl_post {
    const char *url; /* e.g. http://127.0.0.1:8080/webhook */
    const char *app_secret;
    const char *phone_number_id; /* the channel's */
    const char *from;            /* the customer's wa_id */
    const char *name;            /* the customer's profile name; may be NULL */
    const char *text;            /* a text message, or */
    const char *press;           /* the id of a quick reply pressed (title = press_title) */
    const char *press_title;
    const char *list; /* the id of a list row picked */
    const char *id;   /* the message id (wamid); NULL: a fresh one */
};

/* Build the webhook body for p: a malloc'd JSON string, or NULL on OOM. */
char *pl_post_body(const struct pl_post *p);

/* Build, sign and POST it. Returns the HTTP status (or -1 with err when the request failed). */
int pl_post_send(const struct pl_post *p, struct pl_error *err);

#endif
