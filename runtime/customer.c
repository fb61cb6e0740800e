/* customer.c - events as a customer's phone would cause them, in the shapes webhook.c makes from
 * Meta's webhooks, for the in-process tools (parley test, parley chat). */
#include "customer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox.h"

void pl_customer_remember(struct pl_customer *c, const char *wamid, const char *body)
{
    free(c->history[PL_CUSTOMER_HISTORY - 1]);
    memmove(&c->history[1], &c->history[0], (PL_CUSTOMER_HISTORY - 1) * sizeof c->history[0]);
    memmove(&c->history_wamid[1], &c->history_wamid[0],
            (PL_CUSTOMER_HISTORY - 1) * sizeof c->history_wamid[0]);
    c->history[0] = strdup(body);
    snprintf(c->history_wamid[0], sizeof c->history_wamid[0], "%s", wamid);
}

void pl_customer_forget(struct pl_customer *c)
{
    for (int i = 0; i < PL_CUSTOMER_HISTORY; i++) {
        free(c->history[i]);
        c->history[i] = NULL;
        c->history_wamid[i][0] = '\0';
    }
}

static void base(struct pl_customer *c, struct pl_event *ev, enum pl_event_kind kind, long long now)
{
    char id[96];
    memset(ev, 0, sizeof *ev);
    snprintf(id, sizeof id, "wamid.SIM%lu", ++c->counter);
    ev->kind = kind;
    ev->phone_number_id = strdup(c->channel->phone_number_id);
    ev->contact = strdup(c->contact);
    ev->contact_name = c->name[0] != '\0' ? strdup(c->name) : NULL;
    ev->id = strdup(id);
    ev->timestamp = now;
}

void pl_customer_text(struct pl_customer *c, long long now, const char *text, struct pl_event *ev)
{
    base(c, ev, PL_EVENT_MESSAGE, now);
    ev->data = json_pack("{s:s,s:s,s:s,s:I}", "id", ev->id, "type", "text", "text", text,
                         "timestamp", (json_int_t)now);
}

/* One pressable choice of a message; description only for a list row that has one. */
struct choice {
    const char *kind, *id, *title, *description;
};

static void press_event(struct pl_customer *c, long long now, int at, const struct choice *ch,
                        struct pl_event *ev)
{
    base(c, ev, PL_EVENT_PRESS, now);
    ev->data = json_pack("{s:s,s:s,s:s,s:{s:s},s:I,s:s}", "id", ch->id, "title",
                         ch->title != NULL ? ch->title : ch->id, "kind", ch->kind, "context", "id",
                         c->history_wamid[at], "timestamp", (json_int_t)now, "message_id", ev->id);
    /* as Meta's list_reply: the row's description when it has one */
    if (ev->data != NULL && ch->description != NULL && ch->description[0] != '\0')
        json_object_set_new(ev->data, "description", json_string(ch->description));
}

/* The i-th pressable choice of a view: quick replies, then list rows, then template quick-reply
 * payloads. Returns 1 and fills ch. */
static int choice(json_t *view, size_t i, struct choice *ch)
{
    json_t *list = json_object_get(view, "list");
    const char *type = json_string_value(json_object_get(view, "type"));

    ch->description = NULL;
    if (type != NULL && strcmp(type, "button") == 0) {
        ch->id = json_string_value(json_array_get(json_object_get(view, "button_ids"), i));
        ch->title = json_string_value(json_array_get(json_object_get(view, "buttons"), i));
        ch->kind = "reply";
    } else if (list != NULL) {
        ch->id = json_string_value(json_array_get(json_object_get(list, "ids"), i));
        ch->title = json_string_value(json_array_get(json_object_get(list, "rows"), i));
        ch->description =
            json_string_value(json_array_get(json_object_get(list, "descriptions"), i));
        ch->kind = "list";
    } else {
        ch->id = ch->title =
            json_string_value(json_array_get(json_object_get(view, "button_values"), i));
        ch->kind = "template";
    }
    return ch->id != NULL;
}

int pl_customer_press(struct pl_customer *c, long long now, const char *label, struct pl_event *ev,
                      char *err, size_t errsz)
{
    for (int at = 0; at < PL_CUSTOMER_HISTORY && c->history[at] != NULL; at++) {
        json_t *view = pl_sandbox_view(c->history[at]);
        struct choice ch;
        for (size_t i = 0; view != NULL && choice(view, i, &ch); i++)
            if (strcmp(ch.id, label) == 0 || (ch.title != NULL && strcmp(ch.title, label) == 0)) {
                press_event(c, now, at, &ch, ev);
                json_decref(view);
                return 0;
            }
        json_decref(view);
    }
    json_t *last = c->history[0] != NULL ? pl_sandbox_view(c->history[0]) : NULL;
    char *shown = last != NULL ? json_dumps(last, JSON_COMPACT) : NULL;
    snprintf(err, errsz,
             "press(\"%s\"): no button or list row with that title or id in the bot's recent "
             "messages; the last one: %s",
             label, shown != NULL ? shown : "(none)");
    free(shown);
    json_decref(last);
    return -1;
}

int pl_customer_press_nth(struct pl_customer *c, long long now, int n, struct pl_event *ev,
                          char *err, size_t errsz)
{
    for (int at = 0; at < PL_CUSTOMER_HISTORY && c->history[at] != NULL; at++) {
        json_t *view = pl_sandbox_view(c->history[at]);
        struct choice ch;
        if (view == NULL || !choice(view, 0, &ch)) {
            const char *url = json_string_value(json_object_get(view, "url"));
            if (at == 0 && url != NULL) {
                snprintf(err, errsz, "that button opens %s; it sends nothing to the bot", url);
                json_decref(view);
                return -1;
            }
            json_decref(view);
            continue;
        }
        int ok = n >= 1 && choice(view, (size_t)n - 1, &ch);
        if (ok)
            press_event(c, now, at, &ch, ev);
        else
            snprintf(err, errsz, "the last message has no choice %d", n);
        json_decref(view);
        return ok ? 0 : -1;
    }
    snprintf(err, errsz, "nothing to press: the bot has sent no buttons");
    return -1;
}

int pl_customer_status(struct pl_customer *c, long long now, const char *status, long code,
                       struct pl_event *ev, char *err, size_t errsz)
{
    if (c->history[0] == NULL) {
        snprintf(err, errsz, "%s: the bot has sent nothing yet", status);
        return -1;
    }
    base(c, ev, PL_EVENT_STATUS, now);
    free(ev->id);
    ev->id = strdup(c->history_wamid[0]);
    ev->status = strdup(status);
    ev->data = json_pack("{s:s,s:s,s:I,s:s}", "wamid", c->history_wamid[0], "status", status,
                         "timestamp", (json_int_t)now, "recipient", c->contact);
    if (strcmp(status, "failed") == 0)
        json_object_set_new(ev->data, "error",
                            json_pack("{s:I,s:s,s:s}", "code", (json_int_t)code, "title",
                                      "Simulated failure", "details", "simulated by Parley"));
    return 0;
}
