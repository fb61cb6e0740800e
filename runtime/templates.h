/* templates.h - a channel's template registry: the approved message templates it may send
 * outside the 24-hour window, loaded from a JSON file in the shape of the Graph API's
 * GET /{waba_id}/message_templates answer, validated with the definition rules, with statuses
 * that follow message_template_status_update webhooks. Pure apart from reading the file. */
#ifndef PL_TEMPLATES_H
#define PL_TEMPLATES_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"
#include "rules.h"

struct pl_templates;

/* One problem found while loading: where (e.g. "data[3] (order_shipped, ru)"), code and detail. */
struct pl_tpl_problem {
    char where[160];
    enum pl_code code;
    char detail[512];
};

/* Load the registry from path. Templates that break the definition rules are left out and
 * reported in problems (a malloc'd array of *nproblems; caller frees; may be NULL when the
 * caller does not want them). A missing file, bad JSON or a wrong top-level shape is an error:
 * NULL with err ("<path>: …", with line:column for JSON syntax). */
struct pl_templates *pl_templates_load(const char *path, const struct pl_limits *lim,
                                       struct pl_tpl_problem **problems, size_t *nproblems,
                                       struct pl_error *err);

/* The same from JSON text (tests, `templates sync`); path only names it in errors. */
struct pl_templates *pl_templates_parse(const char *text, size_t len, const char *path,
                                        const struct pl_limits *lim,
                                        struct pl_tpl_problem **problems, size_t *nproblems,
                                        struct pl_error *err);

void pl_templates_free(struct pl_templates *t);

/* Number of templates loaded. */
size_t pl_templates_count(const struct pl_templates *t);

/* The template with this exact name and language (case-sensitive), or NULL. Borrowed. */
const struct pl_template *pl_templates_find(const struct pl_templates *t, const char *name,
                                            const char *language);

/* Any template with this name, in any language (for the "did you mean lang X?" detail). */
const struct pl_template *pl_templates_find_name(const struct pl_templates *t, const char *name);

/* Apply a status update (message_template_status_update's event: APPROVED, PAUSED, DISABLED,
 * FLAGGED, REINSTATED, …) at time `at`. language NULL: every language of that name. Returns the
 * number of templates changed. */
int pl_templates_set_status(struct pl_templates *t, const char *name, const char *language,
                            const char *status, long long at);

/* The status in force at `now`: a template FLAGGED for longer than lim->flagged_grace_seconds
 * with no newer update is DISABLED (seed 002). Returns a static string. */
const char *pl_templates_status(const struct pl_templates *t, const struct pl_template *tpl,
                                const struct pl_limits *lim, long long now);

/* A dynamic value for one of the template's buttons: index into its BUTTONS component; the URL
 * button's suffix for {{1}}, or a quick reply's payload. */
struct pl_tpl_button_value {
    int index;
    const char *value;
};

/* A template send as a script asked for it. */
struct pl_tpl_send {
    const char *name;
    const char *language;
    const struct pl_tpl_param *body; /* positional (name NULL) or named */
    size_t nbody;
    const struct pl_tpl_param *header; /* a TEXT header's parameter */
    size_t nheader;
    const char *header_media_link; /* an IMAGE/VIDEO/DOCUMENT header's link */
    const struct pl_tpl_button_value *buttons;
    size_t nbuttons;
};

/* Check a send against the registry at `now`: unknown_template (no such name + language; the
 * detail names the languages that exist), template_not_approved (status in force),
 * template_params / template_param_format (via pl_rules_check_template_params, for the body and
 * the header), unregistered_buttons (a button value for an index the template has no button at,
 * or for a button that takes no value: a static URL, a phone number), and a missing required
 * value (a URL button with {{1}} and no suffix → template_params). Returns 0 with *tpl set, or -1
 * with v filled. */
int pl_templates_check(const struct pl_templates *t, const struct pl_limits *lim,
                       const struct pl_tpl_send *send, long long now,
                       const struct pl_template **tpl, struct pl_verdict *v);

/* ---- added by templates.c (the declarations above are the integration contract) ---- */

/* The template at position i of the loaded ones, in file order, or NULL past the end. Borrowed;
 * for `parley check` and `templates sync` listings. */
const struct pl_template *pl_templates_get(const struct pl_templates *t, size_t i);

/* The time the registry counts as loaded. Parsing reads the clock once for it (the only clock
 * read here); tests and callers that know better set it. A template the file lists as FLAGGED
 * carries no flag time, so it counts as flagged at the load time until a status update says
 * otherwise: the grace period runs from when Parley first saw it flagged. */
void pl_templates_set_loaded_at(struct pl_templates *t, long long at);

#endif
