/* templates.c - a channel's template registry: the Graph API's message_templates answer turned
 * into checked struct pl_template entries (strings in the registry's own arena, stable until
 * pl_templates_free), an index sorted by name and language, and the status overlay that
 * message_template_status_update webhooks drive. Not thread-safe: the owner serialises updates
 * with reads. */
#include "templates.h"
#include "utf8.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REGISTRY_MAX_BYTES (256L * 1024 * 1024) /* 6,000 templates take a few MiB */
#define ARENA_BLOCK        (64 * 1024)
#define QUOTE_BUF          256
#define PREFIX_BUF         (2 * QUOTE_BUF + 16)
#define LANGS_BUF          200

/* ---- the arena: every string and button array of a registry ---- */

struct block {
    struct block *next;
    size_t used, size;
    max_align_t data[];
};

static void *arena_alloc(struct block **arena, size_t n)
{
    struct block *b = *arena;
    size_t align = sizeof(max_align_t), need = (n + align - 1) / align * align;

    if (b == NULL || b->size - b->used < need) {
        size_t size = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        b = malloc(sizeof *b + size);
        if (b == NULL)
            return NULL;
        b->size = size;
        b->used = 0;
        b->next = *arena;
        *arena = b;
    }
    b->used += need;
    return (char *)b->data + b->used - need;
}

static char *arena_strdup(struct block **arena, const char *s, size_t len)
{
    char *p = arena_alloc(arena, len + 1);

    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

static void arena_free(struct block *b)
{
    while (b != NULL) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
}

/* ---- the registry ---- */

struct entry {
    struct pl_template tpl; /* tpl.status: the last status stored (file or update) */
    size_t pos;             /* position in the file's template array */
    long long flagged_at;   /* when it became FLAGGED; meaningful while tpl.status is FLAGGED */
    long long status_at;    /* time of the last applied update; LLONG_MIN: as in the file */
    int flag_from_file;     /* FLAGGED in the file and not updated since: flagged at load time */
    int dup;
};

struct pl_templates {
    struct entry *e; /* file order */
    size_t n;
    struct entry **by_key; /* sorted by name, then language */
    struct block *arena;
    const char **extra; /* statuses outside the known set, interned in the arena */
    size_t nextra, extracap;
    long long loaded_at;
};

/* Every status Meta documents (reference/cloud-api.md §4.2); the strings pl_templates_status
 * returns come from here or from the registry's interned extras. */
static const char *const known_statuses[] = {
    "APPROVED",       "PENDING",  "REJECTED",   "PAUSED",           "DISABLED",
    "IN_APPEAL",      "FLAGGED",  "REINSTATED", "PENDING_DELETION", "DELETED",
    "LIMIT_EXCEEDED", "ARCHIVED", "UNARCHIVED", "LOCKED",           NULL};

/* ---- details ---- */

/* Cut s back so that it does not end inside a UTF-8 sequence (after snprintf truncated it). */
static void trim_partial_utf8(char *s)
{
    size_t len = strlen(s), j = len;

    while (j > 0 && ((unsigned char)s[j - 1] & 0xC0) == 0x80 && len - j < 3)
        j--;
    if (j > 0 && (unsigned char)s[j - 1] >= 0xC0) {
        unsigned char lead = (unsigned char)s[j - 1];
        size_t need = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : 4;
        if (len - (j - 1) < need)
            s[j - 1] = '\0';
    }
}

static void vformat(char *out, size_t outsz, const char *fmt, va_list ap)
{
    int n = vsnprintf(out, outsz, fmt, ap);

    if (n < 0)
        out[0] = '\0';
    else if ((size_t)n >= outsz)
        trim_partial_utf8(out);
}

static int fail(struct pl_verdict *v, enum pl_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill v with code and a printf-style detail; always returns -1. */
static int fail(struct pl_verdict *v, enum pl_code code, const char *fmt, ...)
{
    va_list ap;

    v->code = code;
    va_start(ap, fmt);
    vformat(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
    return -1;
}

#define QUOTE(buf, s) pl_rules_quote((buf), sizeof(buf), (s), 1)
#define PLAIN(buf, s) pl_rules_quote((buf), sizeof(buf), (s), 0)

/* `template "name" (language)`, escaped. */
static const char *prefix_of(char *out, size_t outsz, const char *name, const char *language)
{
    char qn[QUOTE_BUF], ql[QUOTE_BUF];

    if (name == NULL)
        snprintf(qn, sizeof qn, "(no name)");
    else
        QUOTE(qn, name);
    if (language == NULL)
        snprintf(out, outsz, "template %s", qn);
    else
        snprintf(out, outsz, "template %s (%s)", qn, PLAIN(ql, language));
    return out;
}

/* ---- reading the file ---- */

static int ascii_eq_ci(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a >= 'a' && *a <= 'z' ? (char)(*a - 'a' + 'A') : *a;
        char y = *b >= 'a' && *b <= 'z' ? (char)(*b - 'a' + 'A') : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* Copy s into the arena, upper-cased (Meta's enums are upper case; tolerate "named", "header"). */
static char *arena_upper(struct block **arena, const char *s)
{
    char *p = arena_strdup(arena, s, strlen(s));

    for (char *c = p; c != NULL && *c != '\0'; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    return p;
}

/* A status as stored: the known static string, else the registry's interned copy (upper case).
 * NULL on OOM. */
static const char *intern_status(struct pl_templates *t, const char *s)
{
    char *copy;

    for (size_t i = 0; known_statuses[i] != NULL; i++)
        if (ascii_eq_ci(s, known_statuses[i]))
            return known_statuses[i];
    for (size_t i = 0; i < t->nextra; i++)
        if (ascii_eq_ci(s, t->extra[i]))
            return t->extra[i];
    if (t->nextra == t->extracap) {
        size_t cap = t->extracap == 0 ? 4 : t->extracap * 2;
        const char **grown = realloc(t->extra, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        t->extra = grown;
        t->extracap = cap;
    }
    copy = arena_upper(&t->arena, s);
    if (copy == NULL)
        return NULL;
    t->extra[t->nextra++] = copy;
    return copy;
}

/* What one entry of the file is being parsed into, and where problems are reported. */
struct parse {
    struct pl_templates *t;
    struct pl_verdict *v;
    const char *pre; /* `template "name" (language)` or "the template" */
    int oom;
};

/* The string field key of obj: 0 with *out (arena copy, or NULL when absent and !required), -1
 * with v filled when it has the wrong type, is missing but required, or holds a NUL. */
static int str_field(struct parse *p, json_t *obj, const char *key, const char *what, int required,
                     const char **out)
{
    json_t *val = json_object_get(obj, key);
    const char *s;
    size_t len;

    *out = NULL;
    if (val == NULL || json_is_null(val)) {
        if (required)
            return fail(p->v, PL_TEMPLATE_INVALID, "%s has no \"%s\"%s", p->pre, key, what);
        return 0;
    }
    if (!json_is_string(val))
        return fail(p->v, PL_TEMPLATE_INVALID, "%s: \"%s\"%s is not a string", p->pre, key, what);
    s = json_string_value(val);
    len = json_string_length(val);
    if (strlen(s) != len)
        return fail(p->v, PL_TEMPLATE_INVALID, "%s: \"%s\"%s holds a NUL character", p->pre, key,
                    what);
    *out = arena_strdup(&p->t->arena, s, len);
    if (*out == NULL) {
        p->oom = 1;
        return -1;
    }
    return 0;
}

static enum pl_tpl_button_type button_type(const char *s)
{
    static const struct {
        const char *name;
        enum pl_tpl_button_type type;
    } types[] = {{"QUICK_REPLY", PL_TPL_QUICK_REPLY},
                 {"URL", PL_TPL_URL},
                 {"PHONE_NUMBER", PL_TPL_PHONE_NUMBER},
                 {"COPY_CODE", PL_TPL_COPY_CODE}};

    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (ascii_eq_ci(s, types[i].name))
            return types[i].type;
    return PL_TPL_OTHER;
}

static int parse_buttons(struct parse *p, json_t *comp, size_t ci, struct pl_template *tpl)
{
    json_t *list = json_object_get(comp, "buttons"), *b;
    struct pl_tpl_button *out;
    char what[64];
    size_t i;

    if (!json_is_array(list))
        return fail(p->v, PL_TEMPLATE_INVALID,
                    "%s: component %zu (BUTTONS) has no \"buttons\" list", p->pre, ci);
    if (json_array_size(list) == 0)
        return 0;
    out = arena_alloc(&p->t->arena, json_array_size(list) * sizeof *out);
    if (out == NULL) {
        p->oom = 1;
        return -1;
    }
    json_array_foreach(list, i, b)
    {
        const char *type;
        memset(&out[i], 0, sizeof out[i]);
        if (!json_is_object(b))
            return fail(p->v, PL_TEMPLATE_INVALID, "%s: button %zu is not an object", p->pre, i);
        snprintf(what, sizeof what, " of button %zu", i);
        if (str_field(p, b, "type", what, 1, &type) < 0 ||
            str_field(p, b, "text", what, 0, &out[i].text) < 0 ||
            str_field(p, b, "url", what, 0, &out[i].url) < 0 ||
            str_field(p, b, "phone_number", what, 0, &out[i].phone) < 0)
            return -1;
        out[i].type = button_type(type);
    }
    tpl->buttons = out;
    tpl->nbuttons = json_array_size(list);
    return 0;
}

/* 1 when text has a named placeholder ({{ followed by a lower-case letter or _). */
static int has_named_placeholder(const char *text)
{
    for (const char *c = text; c != NULL && (c = strstr(c, "{{")) != NULL; c += 2)
        if ((c[2] >= 'a' && c[2] <= 'z') || c[2] == '_')
            return 1;
    return 0;
}

static int parse_components(struct parse *p, json_t *comps, struct pl_template *tpl)
{
    json_t *c;
    size_t i;
    int seen_header = 0, seen_body = 0, seen_footer = 0, seen_buttons = 0;
    char what[64];

    if (comps == NULL || json_is_null(comps))
        return fail(p->v, PL_TEMPLATE_INVALID, "%s has no \"components\" (a BODY is required)",
                    p->pre);
    if (!json_is_array(comps))
        return fail(p->v, PL_TEMPLATE_INVALID, "%s: \"components\" is not a list", p->pre);
    json_array_foreach(comps, i, c)
    {
        const char *type;
        int *seen = NULL;
        if (!json_is_object(c))
            return fail(p->v, PL_TEMPLATE_INVALID, "%s: component %zu is not an object", p->pre, i);
        snprintf(what, sizeof what, " of component %zu", i);
        if (str_field(p, c, "type", what, 1, &type) < 0)
            return -1;
        if (ascii_eq_ci(type, "HEADER"))
            seen = &seen_header;
        else if (ascii_eq_ci(type, "BODY"))
            seen = &seen_body;
        else if (ascii_eq_ci(type, "FOOTER"))
            seen = &seen_footer;
        else if (ascii_eq_ci(type, "BUTTONS"))
            seen = &seen_buttons;
        else
            continue; /* CAROUSEL, LIMITED_TIME_OFFER, …: nothing Parley sends values for */
        if ((*seen)++)
            return fail(p->v, PL_TEMPLATE_INVALID, "%s has more than one %s component", p->pre,
                        type);
        if (seen == &seen_header) {
            const char *format;
            if (str_field(p, c, "format", " of the header", 0, &format) < 0 ||
                str_field(p, c, "text", " of the header", 0, &tpl->header_text) < 0)
                return -1;
            if (format != NULL &&
                (tpl->header_format = arena_upper(&p->t->arena, format)) == NULL) {
                p->oom = 1;
                return -1;
            }
        } else if (seen == &seen_body) {
            if (str_field(p, c, "text", " of the body", 1, &tpl->body) < 0)
                return -1;
        } else if (seen == &seen_footer) {
            if (str_field(p, c, "text", " of the footer", 1, &tpl->footer) < 0)
                return -1;
        } else if (parse_buttons(p, c, i, tpl) < 0) {
            return -1;
        }
    }
    if (!seen_body)
        return fail(p->v, PL_TEMPLATE_INVALID, "%s has no BODY component", p->pre);
    return 0;
}

/* Turn one element of the template list into e. Returns 0, -1 with v filled (and where naming
 * it), or -2 when out of memory. */
static int parse_entry(struct pl_templates *t, json_t *item, const char *list, size_t pos,
                       struct entry *e, char *where, size_t wheresz, struct pl_verdict *v)
{
    struct pl_template *tpl = &e->tpl;
    const char *name = NULL, *lang = NULL, *status, *format;
    char pre[PREFIX_BUF], qn[QUOTE_BUF], ql[QUOTE_BUF];
    struct parse p = {.t = t, .v = v, .pre = "the template"};
    json_t *jn, *jl;

    memset(e, 0, sizeof *e);
    e->pos = pos;
    e->status_at = LLONG_MIN;
    jn = json_object_get(item, "name");
    jl = json_object_get(item, "language");
    if (json_is_string(jn))
        name = json_string_value(jn);
    if (json_is_string(jl))
        lang = json_string_value(jl);
    snprintf(where, wheresz, "%s[%zu] (%s, %s)", list, pos, name ? PLAIN(qn, name) : "?",
             lang ? PLAIN(ql, lang) : "?");
    if (!json_is_object(item))
        return fail(v, PL_TEMPLATE_INVALID, "entry %zu is not an object (a template)", pos);
    if (name != NULL && lang != NULL)
        p.pre = prefix_of(pre, sizeof pre, name, lang);
    if (str_field(&p, item, "name", "", 1, &tpl->name) < 0 ||
        str_field(&p, item, "language", "", 1, &tpl->language) < 0 ||
        str_field(&p, item, "status", " (fetch the templates with their status)", 1, &status) < 0 ||
        str_field(&p, item, "category", "", 0, &tpl->category) < 0 ||
        str_field(&p, item, "parameter_format", "", 0, &format) < 0 ||
        parse_components(&p, json_object_get(item, "components"), tpl) < 0)
        return p.oom ? -2 : -1;
    tpl->status = intern_status(t, status);
    if (tpl->status == NULL)
        return -2;
    if (format == NULL)
        /* Older answers omit parameter_format; the placeholders say which kind it is. */
        tpl->named = has_named_placeholder(tpl->body) || has_named_placeholder(tpl->header_text);
    else if (ascii_eq_ci(format, "NAMED"))
        tpl->named = 1;
    else if (!ascii_eq_ci(format, "POSITIONAL"))
        return fail(v, PL_TEMPLATE_INVALID, "%s: parameter_format %s is not POSITIONAL or NAMED",
                    p.pre, QUOTE(qn, format));
    if (strcmp(tpl->status, "FLAGGED") == 0)
        e->flag_from_file = 1;
    return 0;
}

static int key_cmp(const char *n1, const char *l1, const char *n2, const char *l2)
{
    int c = strcmp(n1, n2);
    return c != 0 ? c : strcmp(l1, l2);
}

/* qsort over entry pointers: name, language, then file position (so the first comes first). */
static int by_key_pos(const void *a, const void *b)
{
    const struct entry *x = *(const struct entry *const *)a, *y = *(const struct entry *const *)b;
    int c = key_cmp(x->tpl.name, x->tpl.language, y->tpl.name, y->tpl.language);

    if (c != 0)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

struct problem {
    size_t pos;
    struct pl_tpl_problem p;
};

static int by_problem_pos(const void *a, const void *b)
{
    const struct problem *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

struct problems {
    struct problem *list;
    size_t n, cap;
};

static int add_problem(struct problems *ps, size_t pos, const char *where,
                       const struct pl_verdict *v)
{
    struct problem *pr;

    if (ps->n == ps->cap) {
        size_t cap = ps->cap == 0 ? 8 : ps->cap * 2;
        struct problem *grown = realloc(ps->list, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        ps->list = grown;
        ps->cap = cap;
    }
    pr = &ps->list[ps->n++];
    pr->pos = pos;
    snprintf(pr->p.where, sizeof pr->p.where, "%s", where);
    trim_partial_utf8(pr->p.where);
    pr->p.code = v->code;
    snprintf(pr->p.detail, sizeof pr->p.detail, "%s", v->detail);
    return 0;
}

/* Leave out the later copies of each name + language (reporting them), then index the rest. */
static int dedupe_and_index(struct pl_templates *t, struct problems *ps, const char *list)
{
    size_t i, k, first = 0;
    char where[160], qn[QUOTE_BUF], ql[QUOTE_BUF], pre[PREFIX_BUF];
    struct pl_verdict v;

    if (t->n == 0)
        return 0;
    t->by_key = malloc(t->n * sizeof *t->by_key);
    if (t->by_key == NULL)
        return -1;
    for (i = 0; i < t->n; i++)
        t->by_key[i] = &t->e[i];
    qsort(t->by_key, t->n, sizeof *t->by_key, by_key_pos);
    for (i = 1; i < t->n; i++) {
        struct entry *f = t->by_key[first], *e = t->by_key[i];
        if (key_cmp(f->tpl.name, f->tpl.language, e->tpl.name, e->tpl.language) != 0) {
            first = i;
            continue;
        }
        e->dup = 1;
        snprintf(where, sizeof where, "%s[%zu] (%s, %s)", list, e->pos, PLAIN(qn, e->tpl.name),
                 PLAIN(ql, e->tpl.language));
        fail(&v, PL_TEMPLATE_INVALID, "%s is listed twice; the first one (%s[%zu]) is used",
             prefix_of(pre, sizeof pre, e->tpl.name, e->tpl.language), list, f->pos);
        if (add_problem(ps, e->pos, where, &v) < 0)
            return -1;
    }
    for (i = k = 0; i < t->n; i++)
        if (!t->e[i].dup)
            t->e[k++] = t->e[i];
    t->n = k;
    for (i = 0; i < t->n; i++)
        t->by_key[i] = &t->e[i];
    qsort(t->by_key, t->n, sizeof *t->by_key, by_key_pos);
    return 0;
}

/* jansson's message, one line: control characters escaped. */
static void json_message(char *out, size_t outsz, const char *text)
{
    size_t n = 0;

    for (const char *q = text; *q != '\0' && n + 5 < outsz; q++) {
        unsigned char ch = (unsigned char)*q;
        n += (size_t)(ch < 0x20 || ch == 0x7f ? snprintf(out + n, outsz - n, "\\x%02x", ch)
                                              : snprintf(out + n, outsz - n, "%c", ch));
    }
    out[n] = '\0';
}

struct pl_templates *pl_templates_parse(const char *text, size_t len, const char *path,
                                        const struct pl_limits *lim,
                                        struct pl_tpl_problem **problems, size_t *nproblems,
                                        struct pl_error *err)
{
    struct pl_templates *t = NULL;
    struct problems ps = {0};
    json_error_t jerr;
    json_t *root = NULL, *list;
    const char *lname = "data";
    size_t i;
    json_t *item;

    if (problems != NULL)
        *problems = NULL;
    if (nproblems != NULL)
        *nproblems = 0;
    if (path == NULL)
        path = "templates";
    if (lim == NULL) {
        pl_error_set(err, "templates", "%s: no provider limits to check templates against", path);
        return NULL;
    }
    if (text == NULL) {
        pl_error_set(err, "templates", "%s: no text to parse", path);
        return NULL;
    }
    /* Any value at the top, so that a wrong one gets the message below; NULs are let through to
     * be reported against the template that holds them. */
    root = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        char e[sizeof jerr.text * 4 + 8];
        json_message(e, sizeof e, jerr.text);
        if (jerr.line > 0)
            pl_error_set(err, "templates", "%s:%d:%d: %s", path, jerr.line, jerr.column, e);
        else
            pl_error_set(err, "templates", "%s: %s", path, e);
        return NULL;
    }
    if (json_is_array(root)) {
        list = root;
        lname = "";
    } else {
        list = json_object_get(root, "data");
        if (!json_is_object(root) || !json_is_array(list)) {
            pl_error_set(err, "templates",
                         "%s: expected the Graph API's message_templates answer, "
                         "{\"data\": [templates…]}, or a list of templates",
                         path);
            json_decref(root);
            return NULL;
        }
    }
    t = calloc(1, sizeof *t);
    if (t == NULL)
        goto oom;
    t->loaded_at = (long long)time(NULL);
    if (json_array_size(list) > 0) {
        t->e = malloc(json_array_size(list) * sizeof *t->e);
        if (t->e == NULL)
            goto oom;
    }
    json_array_foreach(list, i, item)
    {
        struct pl_verdict v;
        char where[160];
        struct entry *e = &t->e[t->n];
        int rc = parse_entry(t, item, lname, i, e, where, sizeof where, &v);
        if (rc == -2)
            goto oom;
        if (rc < 0 || pl_rules_check_template(lim, &e->tpl, &v) < 0) {
            if (add_problem(&ps, i, where, &v) < 0)
                goto oom;
            continue;
        }
        e->flagged_at = t->loaded_at;
        t->n++;
    }
    if (dedupe_and_index(t, &ps, lname) < 0)
        goto oom;
    if (ps.n > 1)
        qsort(ps.list, ps.n, sizeof *ps.list, by_problem_pos);
    if (problems != NULL && ps.n > 0) {
        *problems = malloc(ps.n * sizeof **problems);
        if (*problems == NULL)
            goto oom;
        for (i = 0; i < ps.n; i++)
            (*problems)[i] = ps.list[i].p;
    }
    if (nproblems != NULL)
        *nproblems = ps.n;
    json_decref(root);
    free(ps.list);
    return t;
oom:
    json_decref(root);
    free(ps.list);
    pl_templates_free(t);
    pl_error_set(err, "templates", "%s: out of memory", path);
    return NULL;
}

struct pl_templates *pl_templates_load(const char *path, const struct pl_limits *lim,
                                       struct pl_tpl_problem **problems, size_t *nproblems,
                                       struct pl_error *err)
{
    struct pl_templates *t = NULL;
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    FILE *f;

    if (problems != NULL)
        *problems = NULL;
    if (nproblems != NULL)
        *nproblems = 0;
    if (path == NULL) {
        pl_error_set(err, "templates", "no templates file given");
        return NULL;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        pl_error_set(err, "io", "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (len + 1 >= cap) {
            size_t ncap = cap == 0 ? 65536 : cap * 2;
            char *grown = realloc(text, ncap);
            if (grown == NULL) {
                pl_error_set(err, "io", "%s: cannot read: out of memory", path);
                goto out;
            }
            text = grown;
            cap = ncap;
        }
        got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (len > (size_t)REGISTRY_MAX_BYTES) {
            pl_error_set(err, "io", "%s: cannot read: larger than %ld bytes", path,
                         REGISTRY_MAX_BYTES);
            goto out;
        }
        if (got == 0) {
            if (ferror(f)) {
                pl_error_set(err, "io", "%s: cannot read: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    text[len] = '\0';
    t = pl_templates_parse(text, len, path, lim, problems, nproblems, err);
out:
    fclose(f);
    free(text);
    return t;
}

void pl_templates_free(struct pl_templates *t)
{
    if (t == NULL)
        return;
    free(t->e);
    free(t->by_key);
    free(t->extra);
    arena_free(t->arena);
    free(t);
}

size_t pl_templates_count(const struct pl_templates *t)
{
    return t != NULL ? t->n : 0;
}

const struct pl_template *pl_templates_get(const struct pl_templates *t, size_t i)
{
    return t != NULL && i < t->n ? &t->e[i].tpl : NULL;
}

/* The first index in by_key whose name (and language, when not NULL) is >= the key. */
static size_t lower_bound(const struct pl_templates *t, const char *name, const char *language)
{
    size_t lo = 0, hi = t->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct pl_template *m = &t->by_key[mid]->tpl;
        int c = strcmp(m->name, name);
        if (c == 0 && language != NULL)
            c = strcmp(m->language, language);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct entry *find_entry(const struct pl_templates *t, const char *name,
                                const char *language)
{
    size_t i;

    if (t == NULL || name == NULL || language == NULL || t->n == 0)
        return NULL;
    i = lower_bound(t, name, language);
    if (i < t->n && strcmp(t->by_key[i]->tpl.name, name) == 0 &&
        strcmp(t->by_key[i]->tpl.language, language) == 0)
        return t->by_key[i];
    return NULL;
}

const struct pl_template *pl_templates_find(const struct pl_templates *t, const char *name,
                                            const char *language)
{
    struct entry *e = find_entry(t, name, language);
    return e != NULL ? &e->tpl : NULL;
}

const struct pl_template *pl_templates_find_name(const struct pl_templates *t, const char *name)
{
    size_t i;

    if (t == NULL || name == NULL || t->n == 0)
        return NULL;
    i = lower_bound(t, name, NULL);
    if (i < t->n && strcmp(t->by_key[i]->tpl.name, name) == 0)
        return &t->by_key[i]->tpl;
    return NULL;
}

void pl_templates_set_loaded_at(struct pl_templates *t, long long at)
{
    if (t == NULL)
        return;
    t->loaded_at = at;
    for (size_t i = 0; i < t->n; i++)
        if (t->e[i].flag_from_file)
            t->e[i].flagged_at = at;
}

/* ---- statuses ---- */

/* One update to one template. Updates older than the last one applied are ignored (webhooks may
 * arrive out of order); the file's own status counts as older than any update. */
static int apply_status(struct entry *e, const char *status, long long at)
{
    if (e->status_at != LLONG_MIN && at < e->status_at)
        return 0;
    if (strcmp(status, "FLAGGED") == 0) {
        /* a repeated FLAGGED keeps the grace period running from the first one */
        if (strcmp(e->tpl.status, "FLAGGED") != 0 || e->flag_from_file)
            e->flagged_at = at;
    }
    e->flag_from_file = 0;
    e->tpl.status = status;
    e->status_at = at;
    return 1;
}

/* Apply an update: status is upper-cased; UNPAUSE(D) and UNFLAGGED (an other_info.title or a
 * provider's wording) are stored as REINSTATED. A language with '-' (Meta's webhook writes
 * "en-US") also matches the template registered as "en_US". Templates the registry does not hold
 * are not counted; the caller logs them. */
int pl_templates_set_status(struct pl_templates *t, const char *name, const char *language,
                            const char *status, long long at)
{
    const char *st;
    char lang[64];
    int changed = 0;

    if (t == NULL || name == NULL || status == NULL || status[0] == '\0')
        return 0;
    if (ascii_eq_ci(status, "UNPAUSE") || ascii_eq_ci(status, "UNPAUSED") ||
        ascii_eq_ci(status, "UNFLAGGED"))
        status = "REINSTATED";
    st = intern_status(t, status);
    if (st == NULL)
        return 0;
    if (language != NULL) {
        struct entry *e = find_entry(t, name, language);
        if (e == NULL && strchr(language, '-') != NULL && strlen(language) < sizeof lang) {
            snprintf(lang, sizeof lang, "%s", language);
            for (char *c = lang; *c != '\0'; c++)
                if (*c == '-')
                    *c = '_';
            e = find_entry(t, name, lang);
        }
        return e != NULL ? apply_status(e, st, at) : 0;
    }
    if (t->n == 0)
        return 0;
    for (size_t i = lower_bound(t, name, NULL);
         i < t->n && strcmp(t->by_key[i]->tpl.name, name) == 0; i++)
        changed += apply_status(t->by_key[i], st, at);
    return changed;
}

/* The registry's entry for tpl, or NULL when tpl is not one of its templates. */
static const struct entry *entry_of(const struct pl_templates *t, const struct pl_template *tpl)
{
    const struct entry *e;

    if (tpl == NULL)
        return NULL;
    e = find_entry(t, tpl->name, tpl->language);
    return e != NULL && &e->tpl == tpl ? e : NULL;
}

static int flag_expired(const struct pl_limits *lim, const struct entry *e, long long now)
{
    return lim != NULL && strcmp(e->tpl.status, "FLAGGED") == 0 &&
           now - e->flagged_at > (long long)lim->flagged_grace_seconds;
}

/* A template that is not the registry's own gets its stored status back, as a static string when
 * it is a known one (else the caller's own string). */
const char *pl_templates_status(const struct pl_templates *t, const struct pl_template *tpl,
                                const struct pl_limits *lim, long long now)
{
    const struct entry *e = entry_of(t, tpl);

    if (e == NULL) {
        if (tpl == NULL || tpl->status == NULL)
            return "UNKNOWN";
        for (size_t i = 0; known_statuses[i] != NULL; i++)
            if (strcmp(tpl->status, known_statuses[i]) == 0)
                return known_statuses[i];
        return tpl->status;
    }
    return flag_expired(lim, e, now) ? "DISABLED" : e->tpl.status;
}

/* ---- checking a send ---- */

/* "ru, uk": the languages name exists in, cut to fit out. */
static const char *languages_of(const struct pl_templates *t, const char *name, char *out,
                                size_t outsz)
{
    size_t o = 0;
    char ql[QUOTE_BUF];

    out[0] = '\0';
    for (size_t i = lower_bound(t, name, NULL);
         i < t->n && strcmp(t->by_key[i]->tpl.name, name) == 0; i++) {
        int n = snprintf(out + o, outsz - o, "%s%s", o > 0 ? ", " : "",
                         PLAIN(ql, t->by_key[i]->tpl.language));
        if (n < 0 || (size_t)n >= outsz - o) {
            snprintf(out + o, outsz - o, "%s", o > 0 ? ", …" : "…");
            break;
        }
        o += (size_t)n;
    }
    return out;
}

/* Forward a verdict from the rules with the template named in front. The rules' own
 * "template expects …" loses its first word, which the prefix now says. */
static int forward(struct pl_verdict *v, const char *pre)
{
    char detail[sizeof v->detail];
    const char *d = v->detail;

    if (strncmp(d, "template ", 9) == 0)
        d += 9;
    snprintf(detail, sizeof detail, "%s", d);
    return fail(v, v->code, "%s: %s", pre, detail);
}

static int check_status(const struct pl_templates *t, const struct entry *e,
                        const struct pl_limits *lim, long long now, const char *pre,
                        struct pl_verdict *v)
{
    char q[QUOTE_BUF];
    const char *status = pl_templates_status(t, &e->tpl, lim, now);

    if (pl_rules_template_sendable(status))
        return 0;
    if (flag_expired(lim, e, now))
        return fail(v, PL_TEMPLATE_NOT_APPROVED,
                    "%s was FLAGGED over %ld days ago with no status update since, so it counts "
                    "as DISABLED (a flagged template that does not recover within %ld days is "
                    "disabled); only APPROVED (or FLAGGED) templates can be sent",
                    pre, lim->flagged_grace_seconds / 86400, lim->flagged_grace_seconds / 86400);
    return fail(v, PL_TEMPLATE_NOT_APPROVED,
                "%s is %s; only APPROVED (or FLAGGED) templates can be sent", pre,
                PLAIN(q, status));
}

static int check_body(const struct pl_limits *lim, const struct pl_template *tpl,
                      const struct pl_tpl_send *send, const char *pre, struct pl_verdict *v)
{
    size_t n = send->body != NULL ? send->nbody : 0;

    if (n > 0 && pl_rules_placeholder_count(tpl->body) == 0)
        return fail(v, PL_TEMPLATE_PARAMS,
                    "%s takes no body parameters (its body has no placeholders); got %zu", pre, n);
    if (pl_rules_check_template_params(lim, tpl->body, PL_TPL_PART_BODY, tpl->named, send->body, n,
                                       v) < 0)
        return forward(v, pre);
    return 0;
}

static int ascii_prefix_ci(const char *s, const char *prefix)
{
    for (; *prefix != '\0'; s++, prefix++) {
        char c = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;
        if (c != *prefix)
            return 0;
    }
    return 1;
}

/* Why link is not an absolute http(s) URL with a host: NULL when it is, else the tail of the
 * sentence "… is not an absolute http(s) URL<tail>". */
static const char *link_problem(const char *link)
{
    size_t start;

    if (!pl_utf8_valid(link, strlen(link), NULL))
        return " (invalid UTF-8)";
    if (ascii_prefix_ci(link, "http://"))
        start = 7;
    else if (ascii_prefix_ci(link, "https://"))
        start = 8;
    else
        return "";
    for (const unsigned char *c = (const unsigned char *)link; *c != '\0'; c++)
        if (*c <= 0x20 || *c == 0x7F)
            return " (it contains a space or control character)";
    if (strchr("/?#:@", link[start]) != NULL) /* also the terminating NUL */
        return " (it has no host)";
    return NULL;
}

static const char *lower_name(const char *format, char *out, size_t outsz)
{
    size_t i;

    for (i = 0; format[i] != '\0' && i + 1 < outsz; i++)
        out[i] = format[i] >= 'A' && format[i] <= 'Z' ? (char)(format[i] - 'A' + 'a') : format[i];
    out[i] = '\0';
    return out;
}

/* "an" before IMAGE, "a" before VIDEO or DOCUMENT. */
static const char *article(const char *word)
{
    return strchr("AEIOU", word[0]) != NULL && word[0] != '\0' ? "an" : "a";
}

static int check_header(const struct pl_limits *lim, const struct pl_template *tpl,
                        const struct pl_tpl_send *send, const char *pre, struct pl_verdict *v)
{
    const char *format = tpl->header_format, *link = send->header_media_link, *problem;
    size_t n = send->header != NULL ? send->nheader : 0;
    char q[QUOTE_BUF], kind[16];

    if (format == NULL && tpl->header_text != NULL)
        format = "TEXT";
    if (format == NULL) {
        if (n > 0 || link != NULL)
            return fail(v, PL_TEMPLATE_PARAMS, "%s has no header; it takes no header %s", pre,
                        n > 0 ? "parameter" : "media link");
        return 0;
    }
    if (strcmp(format, "TEXT") == 0) {
        if (link != NULL)
            return fail(v, PL_TEMPLATE_PARAMS,
                        "%s has a TEXT header; it takes a header parameter, not a media link", pre);
        if (n > 0 && pl_rules_placeholder_count(tpl->header_text) == 0)
            return fail(v, PL_TEMPLATE_PARAMS,
                        "%s has a header without placeholders; it takes no header parameter, "
                        "got %zu",
                        pre, n);
        if (pl_rules_check_template_params(lim, tpl->header_text, PL_TPL_PART_HEADER, tpl->named,
                                           send->header, n, v) < 0)
            return forward(v, pre);
        return 0;
    }
    if (strcmp(format, "LOCATION") == 0)
        return fail(v, PL_TEMPLATE_PARAMS,
                    "%s has a LOCATION header, which needs a location at send time; Parley "
                    "cannot send location headers yet",
                    pre);
    lower_name(format, kind, sizeof kind);
    if (n > 0)
        return fail(v, PL_TEMPLATE_PARAMS,
                    "%s has %s %s header; it takes a link to the %s, not text parameters", pre,
                    article(format), format, kind);
    if (link == NULL || pl_utf8_is_blank(link))
        return fail(v, PL_TEMPLATE_PARAMS,
                    "%s has %s %s header; a link to the %s (absolute http(s) URL) is required", pre,
                    article(format), format, kind);
    problem = link_problem(link);
    if (problem != NULL)
        return fail(v, PL_MEDIA_INVALID, "%s: header %s link %s is not an absolute http(s) URL%s",
                    pre, kind, QUOTE(q, link), problem);
    return 0;
}

static int dynamic_url(const struct pl_tpl_button *b)
{
    return b->type == PL_TPL_URL && b->url != NULL && strstr(b->url, "{{") != NULL;
}

/* One button value against the button at its index. bpre is `"name" (language)`. */
static int check_button_value(const struct pl_limits *lim, const struct pl_template *tpl,
                              const struct pl_tpl_button_value *bv, const char *pre,
                              const char *bpre, struct pl_verdict *v)
{
    const struct pl_tpl_button *b;
    char q[QUOTE_BUF];
    long len;

    if (bv->index < 0 || tpl->buttons == NULL || (size_t)bv->index >= tpl->nbuttons) {
        if (tpl->buttons == NULL || tpl->nbuttons == 0)
            return fail(v, PL_UNREGISTERED_BUTTONS, "%s has no buttons; no button at index %d", pre,
                        bv->index);
        return fail(v, PL_UNREGISTERED_BUTTONS, "%s has %zu button%s; no button at index %d", pre,
                    tpl->nbuttons, tpl->nbuttons == 1 ? "" : "s", bv->index);
    }
    b = &tpl->buttons[bv->index];
    switch (b->type) {
    case PL_TPL_QUICK_REPLY:
        if (bv->value == NULL)
            return 0;
        if (bv->value[0] == '\0')
            return fail(v, PL_TEMPLATE_PARAM_FORMAT,
                        "button %d of %s is a QUICK_REPLY: its value is a payload (what the "
                        "press reports back) and cannot be empty",
                        bv->index, bpre);
        if (!pl_utf8_valid(bv->value, strlen(bv->value), NULL))
            return fail(v, PL_BAD_UTF8, "button %d of %s: the payload is not valid UTF-8",
                        bv->index, bpre);
        return 0;
    case PL_TPL_URL:
        if (!dynamic_url(b))
            return fail(v, PL_UNREGISTERED_BUTTONS,
                        "button %d of %s is a static URL button (%s); it takes no value", bv->index,
                        bpre, QUOTE(q, b->url));
        if (bv->value == NULL)
            return 0; /* reported as missing */
        if (bv->value[0] == '\0')
            return fail(v, PL_TEMPLATE_PARAM_FORMAT,
                        "button %d of %s: the URL suffix for {{1}} is empty", bv->index, bpre);
        if (!pl_utf8_valid(bv->value, strlen(bv->value), NULL))
            return fail(v, PL_BAD_UTF8, "button %d of %s: the URL suffix is not valid UTF-8",
                        bv->index, bpre);
        for (const unsigned char *c = (const unsigned char *)bv->value; *c != '\0'; c++)
            if (*c <= 0x20 || *c == 0x7F)
                return fail(v, PL_TEMPLATE_PARAM_FORMAT,
                            "button %d of %s: the URL suffix %s contains a space or control "
                            "character; percent-encode it",
                            bv->index, bpre, QUOTE(q, bv->value));
        len = pl_utf8_length(b->url) - (long)strlen("{{1}}") + pl_utf8_length(bv->value);
        if (len > lim->tpl_url_max)
            return fail(v, PL_TEMPLATE_PARAM_FORMAT,
                        "button %d of %s: with its suffix the URL is %ld characters; WhatsApp "
                        "allows %d",
                        bv->index, bpre, len, lim->tpl_url_max);
        return 0;
    case PL_TPL_PHONE_NUMBER:
        return fail(v, PL_UNREGISTERED_BUTTONS,
                    "button %d of %s is a PHONE_NUMBER button (%s); it takes no value", bv->index,
                    bpre, QUOTE(q, b->phone));
    case PL_TPL_COPY_CODE:
        if (bv->value == NULL)
            return 0; /* reported as missing */
        if (bv->value[0] == '\0')
            return fail(v, PL_TEMPLATE_PARAM_FORMAT,
                        "button %d of %s is a COPY_CODE: its value is the code to copy and "
                        "cannot be empty",
                        bv->index, bpre);
        if (!pl_utf8_valid(bv->value, strlen(bv->value), NULL))
            return fail(v, PL_BAD_UTF8, "button %d of %s: the code is not valid UTF-8", bv->index,
                        bpre);
        return 0;
    default:
        return fail(v, PL_UNREGISTERED_BUTTONS,
                    "button %d of %s is of a kind Parley sends no values for", bv->index, bpre);
    }
}

static int check_buttons(const struct pl_limits *lim, const struct pl_template *tpl,
                         const struct pl_tpl_send *send, const char *pre, struct pl_verdict *v)
{
    size_t n = send->buttons != NULL ? send->nbuttons : 0, nb, i, j;
    const char *bpre = pre + strlen("template ");
    char q[QUOTE_BUF];

    for (i = 0; i < n; i++) {
        for (j = 0; j < i; j++)
            if (send->buttons[j].index == send->buttons[i].index)
                return fail(v, PL_TEMPLATE_PARAMS, "button %d of %s is given twice",
                            send->buttons[i].index, bpre);
        if (check_button_value(lim, tpl, &send->buttons[i], pre, bpre, v) < 0)
            return -1;
    }
    nb = tpl->buttons != NULL ? tpl->nbuttons : 0;
    for (i = 0; i < nb; i++) {
        const struct pl_tpl_button *b = &tpl->buttons[i];
        int given = 0;
        if (!dynamic_url(b) && b->type != PL_TPL_COPY_CODE)
            continue;
        for (j = 0; j < n && !given; j++)
            given = send->buttons[j].index == (int)i && send->buttons[j].value != NULL;
        if (given)
            continue;
        if (b->type == PL_TPL_COPY_CODE)
            return fail(v, PL_TEMPLATE_PARAMS,
                        "button %zu of %s is a COPY_CODE button; give the code to copy", i, bpre);
        return fail(v, PL_TEMPLATE_PARAMS,
                    "button %zu of %s is a URL button ending in {{1}} (%s); give its suffix", i,
                    bpre, QUOTE(q, b->url));
    }
    return 0;
}

int pl_templates_check(const struct pl_templates *t, const struct pl_limits *lim,
                       const struct pl_tpl_send *send, long long now,
                       const struct pl_template **tpl, struct pl_verdict *v)
{
    struct pl_verdict scratch;
    const struct entry *e;
    char pre[PREFIX_BUF], langs[LANGS_BUF], ql[QUOTE_BUF];

    if (v == NULL)
        v = &scratch;
    v->code = PL_OK;
    v->detail[0] = '\0';
    if (tpl != NULL)
        *tpl = NULL;
    if (send == NULL || send->name == NULL)
        return fail(v, PL_UNKNOWN_TEMPLATE, "no template name given");
    if (lim == NULL)
        return fail(v, PL_TEMPLATE_PARAMS, "no provider limits to check the template against");
    if (send->language == NULL || send->language[0] == '\0')
        return fail(v, PL_UNKNOWN_TEMPLATE,
                    "%s: no language given (set opts.lang or the channel's \"language\")",
                    prefix_of(pre, sizeof pre, send->name, NULL));
    prefix_of(pre, sizeof pre, send->name, send->language);
    e = find_entry(t, send->name, send->language);
    if (e == NULL) {
        if (pl_templates_find_name(t, send->name) != NULL)
            return fail(v, PL_UNKNOWN_TEMPLATE, "%s has no language %s; it exists in %s",
                        prefix_of(pre, sizeof pre, send->name, NULL), QUOTE(ql, send->language),
                        languages_of(t, send->name, langs, sizeof langs));
        if (t == NULL)
            return fail(v, PL_UNKNOWN_TEMPLATE, "%s: the channel has no templates registry", pre);
        return fail(v, PL_UNKNOWN_TEMPLATE, "%s is not in the channel's templates registry", pre);
    }
    if (check_status(t, e, lim, now, pre, v) < 0 || check_body(lim, &e->tpl, send, pre, v) < 0 ||
        check_header(lim, &e->tpl, send, pre, v) < 0 ||
        check_buttons(lim, &e->tpl, send, pre, v) < 0)
        return -1;
    if (tpl != NULL)
        *tpl = &e->tpl;
    return 0;
}
