/* sandbox.h - the built-in fake provider: accepts Cloud API send bodies in-process, answers like
 * Meta (a `wamid.…` id), and prints each message readably so a conversation can be followed with
 * no account and no network. */
#ifndef PL_SANDBOX_H
#define PL_SANDBOX_H

#include <jansson.h>
#include <stdio.h>

/* Handle one POST /{phone_number_id}/messages body. Prints the message to `out` (NULL: not
 * shown; the caller renders it) as a phone would show it, labelled with the channel. Returns the
 * HTTP status (200, or 400 for a body it cannot read) and stores a malloc'd response body (Meta's
 * success or error envelope) in *response. */
int pl_sandbox_send(const char *channel, const char *body, char **response, FILE *out);

/* Render a send body readably into out without answering (used by `parley chat`). */
void pl_sandbox_render(const char *channel, const char *body, FILE *out);

/* What a send body looks like to the customer, as a flat object for tests (new reference, or
 * NULL for a body that is not JSON): type ("text", "button", "cta_url", "cta", "list",
 * "image", "document", "template"), to, text, header, footer, buttons (titles), button_ids,
 * url, phone, list {button, rows, ids}, image / document (link), filename, template, language,
 * params (list, or object for named), button_values. */
json_t *pl_sandbox_view(const char *body);

#endif
