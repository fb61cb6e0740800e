/* rules.h - the send gate: every WhatsApp rule Parley enforces, as pure functions.
 * No I/O, no Lua, no clock reads (time is an argument). Every limit lives in one table per
 * provider kind (struct pl_limits), so a provider profile can override it. */
#ifndef PL_RULES_H
#define PL_RULES_H

#include <stddef.h>

/* Stable error codes (DESIGN.md "Error codes", plus the ones Parley adds; docs/rules.md lists
 * them all). pl_code_name() gives the string that appears in Lua errors, logs and metrics. */
enum pl_code {
    PL_OK = 0,
    PL_TOO_MANY_QUICK_REPLIES,
    PL_LABEL_TOO_LONG,
    PL_LABEL_EMPTY,
    PL_DUPLICATE_LABEL,
    PL_MIXED_BUTTONS,
    PL_TOO_MANY_URL_BUTTONS,
    PL_TOO_MANY_CALL_BUTTONS,
    PL_BAD_URL,
    PL_BAD_PHONE,
    PL_BAD_ID,
    PL_TEXT_EMPTY,
    PL_TEXT_TOO_LONG,
    PL_HEADER_TOO_LONG,
    PL_FOOTER_TOO_LONG,
    PL_BAD_UTF8,      /* added by Parley: a string that is not valid UTF-8 */
    PL_LIST_INVALID,  /* added: a list message that breaks Meta's list limits */
    PL_MEDIA_INVALID, /* added: media without a valid http(s) link, misplaced caption or header */
    PL_WINDOW_CLOSED,
    PL_UNKNOWN_TEMPLATE,
    PL_TEMPLATE_NOT_APPROVED,
    PL_TEMPLATE_PARAMS,
    PL_TEMPLATE_PARAM_FORMAT,
    PL_UNREGISTERED_BUTTONS,
    PL_TEMPLATE_INVALID, /* added: a template definition Meta would not accept */
    PL_DAILY_LIMIT,
    PL_NOT_OPTED_IN,
    PL_UNSUPPORTED_BY_PROVIDER,
    PL_SCRIPT_ERROR,
    PL_SCRIPT_TIMEOUT,
    PL_SCRIPT_MEMORY,
    PL_CODE_COUNT
};

/* The code's stable name, e.g. "label_too_long"; "ok" for PL_OK. Never NULL. */
const char *pl_code_name(enum pl_code code);

/* Every limit and capability of one provider kind. One table per kind in rules.c. */
struct pl_limits {
    const char *provider; /* "cloud-api", "sandbox" */
    /* session messages */
    int quick_replies_max;     /* 3 */
    int label_max;             /* 20, in code points */
    int id_max;                /* 256 */
    int url_buttons_max;       /* 1 */
    int call_buttons_max;      /* 1 */
    int text_max;              /* 4096 */
    int text_with_buttons_max; /* 1024: body of an interactive message */
    int header_max;            /* 60 */
    int footer_max;            /* 60 */
    int caption_max;           /* 1024 */
    int list_rows_max;         /* 10, across all sections */
    int list_sections_max;     /* 10 */
    int list_button_max;       /* 20 */
    int section_title_max;     /* 24 */
    int row_title_max;         /* 24 */
    int row_id_max;            /* 200 */
    int row_desc_max;          /* 72 */
    int phone_digits_min;      /* 7 */
    int phone_digits_max;      /* 15 */
    /* templates */
    int tpl_body_max;          /* 1024 */
    int tpl_header_max;        /* 60 */
    int tpl_footer_max;        /* 60 */
    int tpl_buttons_max;       /* 10 */
    int tpl_quick_replies_max; /* 10 */
    int tpl_url_buttons_max;   /* 2 */
    int tpl_phone_buttons_max; /* 1 */
    int tpl_label_max;         /* 25 */
    int tpl_url_max;           /* 2000 */
    int tpl_param_body_max;    /* 1024 */
    int tpl_param_header_max;  /* 60 */
    int tpl_param_spaces_max;  /* 4 consecutive spaces allowed, 5 rejected */
    /* the customer-service window and business-initiated messages */
    long window_seconds;        /* 86400 */
    long flagged_grace_seconds; /* 7 days: FLAGGED turns DISABLED without a newer update */
    /* capabilities: what the provider can carry (0 = unsupported_by_provider) */
    int can_session_call_button; /* cloud-api 0, sandbox 1 */
    int can_url_with_call;       /* a URL and a call button in one session message */
    /* added after the first cut (keep new fields at the end: tables use designated initialisers) */
    int tpl_name_max;                /* 512: template name, lowercase a-z, 0-9 and _ */
    int tpl_header_placeholders_max; /* 1: placeholders in a TEXT template header */
    int tpl_copy_code_buttons_max;   /* 1 */
    /* retries of refused sends (WHATSAPP.md "Provider errors") */
    long retry_first_ms;       /* 1000: the wait after the first refusal */
    int retry_factor;          /* 2: each further refusal multiplies the wait */
    long retry_max_ms;         /* 60000 */
    int pair_retry_factor;     /* 4: 131056, the pair rate limit, backs off 4^n seconds */
    long pair_retry_max_ms;    /* 1024000: 4^5 s, about 17 minutes */
    long send_max_age_seconds; /* 86400: a message not accepted a day after its commit fails */
};

/* The table for a provider kind ("cloud-api", "sandbox"); NULL for an unknown kind. */
const struct pl_limits *pl_rules_limits(const char *provider_kind);

/* ---- session messages ---- */

enum pl_button_kind { PL_BUTTON_REPLY, PL_BUTTON_URL, PL_BUTTON_CALL };

struct pl_button {
    enum pl_button_kind kind;
    const char *id;    /* reply: the id (defaults to title when the author gave a plain string) */
    const char *title; /* the label */
    const char *url;   /* URL button */
    const char *phone; /* call button, as the author wrote it */
};

struct pl_list_row {
    const char *id;
    const char *title;
    const char *description; /* may be NULL */
};

struct pl_list_section {
    const char *title; /* may be NULL when there is one section */
    const struct pl_list_row *rows;
    size_t nrows;
};

struct pl_list {
    const char *button; /* the text of the button that opens the list */
    const struct pl_list_section *sections;
    size_t nsections;
};

enum pl_media_kind { PL_MEDIA_NONE, PL_MEDIA_IMAGE, PL_MEDIA_DOCUMENT };

struct pl_media {
    enum pl_media_kind kind;
    const char *link;     /* absolute http(s) URL */
    const char *caption;  /* may be NULL; the message text is used when NULL */
    const char *filename; /* document only; may be NULL */
};

/* A free-form (session) message as the author described it. All strings are NUL-terminated
 * and borrowed; NULL means absent. */
struct pl_message {
    const char *text;   /* body; may be NULL only for a media message */
    const char *header; /* text header of an interactive message */
    const char *footer;
    int preview_url;
    const struct pl_button *buttons;
    size_t nbuttons;
    const struct pl_list *list; /* NULL when none */
    struct pl_media media;
};

/* The outcome of a check: code PL_OK, or a code and a one-line detail naming the value and the
 * limit, e.g. `button 2 "Перейти на сайт компании" is 24 characters; WhatsApp allows 20`. */
struct pl_verdict {
    enum pl_code code;
    char detail[512];
};

/* Check a session message against every rule and the provider's capabilities.
 * Returns 0 when it may be sent, -1 with v filled otherwise. The first violation wins, in a
 * fixed order: UTF-8, text, header/footer, buttons, list, media, provider capability. */
int pl_rules_check_message(const struct pl_limits *lim, const struct pl_message *m,
                           struct pl_verdict *v);

/* Write s into out (outsz bytes) for an error detail: in double quotes when `quoted`, cut at 40
 * code points with "…", with quotes, backslashes, controls, invisible spaces and invalid bytes
 * escaped, so that the detail stays one line of valid UTF-8. Never writes past outsz: a value
 * that does not fit is cut with "…" between whole escapes or characters, and a buffer under 6
 * bytes gets "". A NULL s gives (none), cut to fit. Returns out. */
const char *pl_rules_quote(char *out, size_t outsz, const char *s, int quoted);

/* Normalise a phone number written for humans ("+7 (812) 438-16-78") to "+78124381678".
 * Accepts a leading '+' and digits separated by spaces, dashes, dots and parentheses.
 * Returns 0 and writes into out (size outsz), or -1 when it is not an international number
 * of lim->phone_digits_min..max digits. */
int pl_rules_normalize_phone(const struct pl_limits *lim, const char *in, char *out, size_t outsz);

/* ---- the customer-service window ---- */

/* Seconds left in the window at `now` for a contact whose last inbound message was at
 * `last_inbound` (0 = never wrote). 0 when closed. */
long pl_rules_window_left(const struct pl_limits *lim, long long now, long long last_inbound);

/* The window as a verdict: 0 when a free-form message may be sent at `now`, or -1 with
 * PL_WINDOW_CLOSED and a detail saying how long ago it closed (or that the contact never wrote). */
int pl_rules_check_window(const struct pl_limits *lim, long long now, long long last_inbound,
                          struct pl_verdict *v);

/* ---- business-initiated messages ---- */

/* A message sent outside the window is business-initiated. It may go only to a contact who
 * wrote before (last_inbound > 0) or whose opt-in is recorded (not_opted_in), and only while
 * the channel has messaged fewer than daily_limit unique contacts in the rolling 24 hours
 * (daily_limit; a negative limit is unlimited). `recent` is that count now, `already` whether
 * this contact is one of them (then it costs nothing more). Returns 0 or -1 with v filled. */
int pl_rules_check_business(long long last_inbound, int opted_in, long daily_limit, long recent,
                            int already, const char *contact, struct pl_verdict *v);

/* The daily limit of a Meta messaging-limit tier, as phone_number_quality_update's
 * current_limit names it: "TIER_250" -> 250, "TIER_UNLIMITED" -> -1 (no limit); -2 for a tier
 * Parley does not know (the limit then stays as it is). */
long pl_rules_tier_limit(const char *tier);

/* ---- provider errors ---- */

/* How a refused send is retried (WHATSAPP.md "Provider errors"): not at all for the codes
 * the table in rules.c does not list; with the sender's exponential backoff for the transient
 * ones, and for network errors, HTTP 5xx and 429 whatever the code; and for the pair rate limit
 * (131056: too many messages to one customer) per recipient only. code < 0: the answer carried
 * none. */
enum pl_retry { PL_RETRY_NONE = 0, PL_RETRY_BACKOFF = 1, PL_RETRY_RECIPIENT = 2 };
enum pl_retry pl_rules_retry(long http, long code, int transport_failed);

/* The wait before a retry, in ms, after `attempts` tries (1 = the first send failed), from the
 * limits table: retry_first_ms times retry_factor^(attempts-1) up to retry_max_ms, which the
 * sender jitters, or for PL_RETRY_RECIPIENT with pair_retry_factor up to pair_retry_max_ms.
 * PL_RETRY_NONE: 0. */
long long pl_rules_retry_wait_ms(const struct pl_limits *lim, enum pl_retry how, int attempts);

/* ---- templates (definitions and send-time parameters) ---- */

enum pl_tpl_button_type {
    PL_TPL_QUICK_REPLY,
    PL_TPL_URL,
    PL_TPL_PHONE_NUMBER,
    PL_TPL_COPY_CODE,
    PL_TPL_OTHER
};

struct pl_tpl_button {
    enum pl_tpl_button_type type;
    const char *text;  /* label */
    const char *url;   /* URL: may end with one {{1}} */
    const char *phone; /* PHONE_NUMBER */
};

/* A template definition, as in the Graph API's message_templates answer. */
struct pl_template {
    const char *name;
    const char *language;
    const char *status;        /* APPROVED, PENDING, … */
    const char *category;      /* MARKETING, UTILITY, AUTHENTICATION */
    const char *header_format; /* NULL, "TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION" */
    const char *header_text;   /* TEXT header; may hold one placeholder */
    const char *body;
    const char *footer;
    int named; /* parameter_format "named" */
    const struct pl_tpl_button *buttons;
    size_t nbuttons;
};

/* Check a definition as Meta would accept it (placeholders, lengths, buttons).
 * Returns 0, or -1 with v->code PL_TEMPLATE_INVALID and the detail. */
int pl_rules_check_template(const struct pl_limits *lim, const struct pl_template *t,
                            struct pl_verdict *v);

/* Whether a template status may be sent: 1 sendable (APPROVED, FLAGGED, REINSTATED…), 0 not. */
int pl_rules_template_sendable(const char *status);

/* pl_rules_template_sendable as a verdict: 0 when sendable, or -1 with PL_TEMPLATE_NOT_APPROVED
 * and a detail naming the template (name and language may be NULL) and its status. */
int pl_rules_check_template_status(const char *status, const char *name, const char *language,
                                   struct pl_verdict *v);

/* One send-time parameter: name is NULL for a positional one. */
struct pl_tpl_param {
    const char *name;
    const char *value;
};

/* Where a parameter goes. */
enum pl_tpl_part { PL_TPL_PART_BODY, PL_TPL_PART_HEADER };

/* Check send-time parameters for one part of a template against its text (body or header):
 * exactly the placeholders it has (count for positional, names for named), each value non-empty,
 * valid UTF-8, no newline or tab, at most tpl_param_spaces_max consecutive spaces, and within the
 * part's length limit. Returns 0 or -1 with PL_TEMPLATE_PARAMS / PL_TEMPLATE_PARAM_FORMAT. */
int pl_rules_check_template_params(const struct pl_limits *lim, const char *part_text,
                                   enum pl_tpl_part part, int named,
                                   const struct pl_tpl_param *params, size_t nparams,
                                   struct pl_verdict *v);

/* Count the placeholders in text: positional {{1}}…{{n}} → n; named → number of distinct names.
 * Returns -1 when the text mixes kinds or has a malformed placeholder. */
int pl_rules_placeholder_count(const char *text);

#endif
