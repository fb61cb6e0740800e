/* broadcast.c - `parley broadcast`: one approved template to every contact of a CSV list, as a
 * durable job. Owns the streaming CSV reader, the mapping of the list's columns onto the
 * template's parameters, the import (the list into broadcast_recipients, 1,000 rows per
 * transaction), the send loop (a token bucket at --rate, consent and the daily limit per
 * recipient, the sender's answers recorded before anything more starts), progress output, the
 * final report and `parley broadcast status`. Memory does not grow with the list. */
#include "broadcast.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "outbound.h"
#include "rules.h"
#include "store.h"
#include "templates.h"
#include "utf8.h"

#define IMPORT_CHUNK  1000        /* rows per import transaction */
#define SEND_BATCH    256         /* recipients decided per send transaction, at most */
#define FIELD_MAX     (64 * 1024) /* bytes in one CSV field */
#define FIELDS_MAX    256         /* fields in one CSV record */
#define REFRESH_MS    2000        /* re-read the daily limit, recipients and template status */
#define STOP_GRACE_MS 5000        /* on SIGINT/SIGTERM, how long in-flight sends may finish */
#define BUTTONS_MAX   10
#define EXAMPLES_MAX  10 /* not-sent recipients the report names */

/* ---- small helpers ---- */

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long wall_now(void)
{
    return (long long)time(NULL);
}

/* Peak resident memory of this process in KiB (VmHWM), or -1 when unknown. */
static long peak_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* A new job id: "b-<unix time>-<6 hex digits>". */
static void new_job_id(char *buf, size_t size)
{
    unsigned char r[3] = {0, 0, 0};

    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        unsigned v = (unsigned)now_ms() ^ (unsigned)getpid() * 2654435761u;
        r[0] = (unsigned char)v;
        r[1] = (unsigned char)(v >> 8);
        r[2] = (unsigned char)(v >> 16);
    }
    snprintf(buf, size, "b-%lld-%02x%02x%02x", wall_now(), r[0], r[1], r[2]);
}

static int ascii_ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

static int ascii_ieq_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    char head[32];

    if (strlen(s) < n || n >= sizeof head)
        return 0;
    memcpy(head, s, n);
    head[n] = '\0';
    return ascii_ieq(head, prefix);
}

/* The opt_in column: 1, yes, y, true, да (any case) mean consent; anything else does not. */
static int truthy(const char *v)
{
    static const char *const yes[] = {"1", "yes", "y", "true", "да", "Да", "ДА", NULL};
    for (int i = 0; yes[i] != NULL; i++)
        if (ascii_ieq(v, yes[i]))
            return 1;
    return 0;
}

/* wa_id as written in the list ("+7 (999) 123-45-67") to digits only ("79991234567"). Returns 0,
 * or -1 when it is not digits_min..digits_max digits after dropping a leading + and separators. */
static int normalize_wa_id(const struct pl_limits *lim, const char *in, char *out, size_t size)
{
    size_t n = 0;
    const char *p = in;

    while (*p == ' ')
        p++;
    if (*p == '+')
        p++;
    for (; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n + 1 >= size)
                return -1;
            out[n++] = *p;
        } else if (*p != ' ' && *p != '-' && *p != '(' && *p != ')' && *p != '.') {
            return -1;
        }
    }
    out[n] = '\0';
    return (int)n >= lim->phone_digits_min && (int)n <= lim->phone_digits_max ? 0 : -1;
}

/* ---- the CSV reader: RFC 4180, streaming, one record at a time ---- */

struct csv {
    FILE *f;
    const char *path;
    char delim;
    long long offset; /* bytes consumed */
    long long line;   /* the line the next character is on (1-based) */
    char *buf;        /* the record's fields, each NUL-terminated, back to back */
    size_t len, cap;
    size_t starts[FIELDS_MAX];
    size_t nfields;
};

static int csv_getc(struct csv *c)
{
    int ch = getc(c->f);
    if (ch != EOF) {
        c->offset++;
        if (ch == '\n')
            c->line++;
    }
    return ch;
}

static int csv_put(struct csv *c, char ch, struct pl_error *err, long long line)
{
    if (c->len + 1 >= c->cap) {
        size_t cap = c->cap > 0 ? c->cap * 2 : 1024;
        char *grown;
        if (cap > FIELDS_MAX * (size_t)FIELD_MAX)
            return pl_error_set(err, "broadcast", "%s:%lld: the record is too long", c->path, line);
        grown = realloc(c->buf, cap);
        if (grown == NULL)
            return pl_error_set(err, "broadcast", "out of memory reading %s", c->path);
        c->buf = grown;
        c->cap = cap;
    }
    c->buf[c->len++] = ch;
    return 0;
}

/* End the current field: trim the spaces around an unquoted value. */
static int csv_end_field(struct csv *c, int quoted, struct pl_error *err, long long line)
{
    size_t start = c->starts[c->nfields];

    if (!quoted) {
        while (c->len > start && (c->buf[c->len - 1] == ' ' || c->buf[c->len - 1] == '\t'))
            c->len--;
    }
    if (c->len - start > FIELD_MAX)
        return pl_error_set(err, "broadcast", "%s:%lld: field %zu is longer than %d bytes", c->path,
                            line, c->nfields + 1, FIELD_MAX);
    if (csv_put(c, '\0', err, line) != 0)
        return -1;
    c->nfields++;
    return 0;
}

/* Read the next record into c->buf / starts / nfields; *line is where it starts. Returns 1, 0 at
 * the end of the file, -1 with err (unterminated quote, too many fields, read error). Blank lines
 * are skipped. */
static int csv_next(struct csv *c, long long *line, struct pl_error *err)
{
    for (;;) {
        int ch, quoted = 0, in_quotes = 0, any = 0;

        c->len = 0;
        c->nfields = 0;
        c->starts[0] = 0;
        *line = c->line;
        for (;;) {
            ch = csv_getc(c);
            if (ch == EOF) {
                if (ferror(c->f))
                    return pl_error_set(err, "broadcast", "%s: read error: %s", c->path,
                                        strerror(errno));
                if (in_quotes)
                    return pl_error_set(err, "broadcast",
                                        "%s:%lld: a quoted field is not closed before the end "
                                        "of the file",
                                        c->path, *line);
                if (!any)
                    return 0;
                break;
            }
            any = 1;
            if (in_quotes) {
                if (ch == '"') {
                    int next = getc(c->f);
                    if (next == '"') {
                        c->offset++;
                        if (csv_put(c, '"', err, *line) != 0)
                            return -1;
                        continue;
                    }
                    if (next != EOF)
                        ungetc(next, c->f);
                    in_quotes = 0;
                    continue;
                }
                if (csv_put(c, (char)ch, err, *line) != 0)
                    return -1;
                continue;
            }
            if (ch == '"' && !quoted && c->len == c->starts[c->nfields]) {
                quoted = in_quotes = 1;
                continue;
            }
            if ((ch == ' ' || ch == '\t') && ch != c->delim && !quoted &&
                c->len == c->starts[c->nfields])
                continue; /* spaces before a value */
            if (ch == c->delim) {
                if (c->nfields + 1 >= FIELDS_MAX)
                    return pl_error_set(err, "broadcast", "%s:%lld: more than %d fields", c->path,
                                        *line, FIELDS_MAX);
                if (csv_end_field(c, quoted, err, *line) != 0)
                    return -1;
                c->starts[c->nfields] = c->len;
                quoted = 0;
                continue;
            }
            if (ch == '\r') {
                int next = getc(c->f);
                if (next == '\n') {
                    c->offset++;
                    c->line++;
                } else if (next != EOF) {
                    ungetc(next, c->f);
                }
                break;
            }
            if (ch == '\n')
                break;
            if (csv_put(c, (char)ch, err, *line) != 0)
                return -1;
        }
        if (csv_end_field(c, quoted, err, *line) != 0)
            return -1;
        if (c->nfields == 1 && c->buf[0] == '\0' && !quoted)
            continue; /* a blank line */
        return 1;
    }
}

static const char *csv_field(const struct csv *c, size_t i)
{
    return i < c->nfields ? c->buf + c->starts[i] : "";
}

/* Open path, skip a UTF-8 byte order mark and guess the delimiter from the first line (the one
 * of , ; TAB that occurs most outside quotes; , when none does). */
static int csv_open(struct csv *c, const char *path, struct pl_error *err)
{
    unsigned char bom[3];
    int counts[3] = {0, 0, 0}, ch, in_quotes = 0;
    static const char delims[3] = {',', ';', '\t'};

    memset(c, 0, sizeof *c);
    c->path = path;
    c->line = 1;
    c->delim = ',';
    c->f = fopen(path, "rb");
    if (c->f == NULL)
        return pl_error_set(err, "broadcast", "%s: cannot open: %s", path, strerror(errno));
    if (fread(bom, 1, 3, c->f) == 3 && bom[0] == 0xEF && bom[1] == 0xBB && bom[2] == 0xBF)
        c->offset = 3;
    while ((ch = getc(c->f)) != EOF && (in_quotes || (ch != '\n' && ch != '\r'))) {
        if (ch == '"')
            in_quotes = !in_quotes;
        for (int i = 0; i < 3 && !in_quotes; i++)
            if (ch == delims[i])
                counts[i]++;
    }
    for (int i = 1; i < 3; i++)
        if (counts[i] > counts[0] && counts[i] >= counts[i == 1 ? 2 : 1])
            c->delim = delims[i];
    if (fseeko(c->f, (off_t)c->offset, SEEK_SET) != 0)
        return pl_error_set(err, "broadcast", "%s: cannot read: %s", path, strerror(errno));
    return 0;
}

/* Continue reading at a byte offset and line number (a resumed import). */
static int csv_seek(struct csv *c, long long offset, long long line, struct pl_error *err)
{
    if (fseeko(c->f, (off_t)offset, SEEK_SET) != 0)
        return pl_error_set(err, "broadcast", "%s: cannot seek: %s", c->path, strerror(errno));
    c->offset = offset;
    c->line = line;
    return 0;
}

static void csv_close(struct csv *c)
{
    if (c->f != NULL)
        fclose(c->f);
    free(c->buf);
    memset(c, 0, sizeof *c);
}

/* ---- the list's columns and the template's parameters ---- */

/* Where each of the template's values comes from in a row of the list. */
struct colmap {
    size_t ncols;
    int wa_id, opt_in;
    int header;        /* the header's value (a TEXT parameter or a media link); -1: none */
    int header_media;  /* 1: the header column holds a link (IMAGE, VIDEO, DOCUMENT) */
    char *header_name; /* a named template's header placeholder (malloc'd), or NULL */
    size_t nbody;      /* the body's placeholders */
    int *body_col;     /* the column of each */
    char **body_name;  /* named templates: each placeholder's name (malloc'd) */
    int named;         /* the template's parameters are named */
    int button_col[BUTTONS_MAX]; /* the column with button i+1's value; -1: none */
    char ignored[400];           /* the columns nothing reads, for a note */
};

static void colmap_free(struct colmap *m)
{
    for (size_t i = 0; m->body_name != NULL && i < m->nbody; i++)
        free(m->body_name[i]);
    free(m->body_name);
    free(m->body_col);
    free(m->header_name);
    memset(m, 0, sizeof *m);
}

/* The distinct {{name}} placeholders of text in order of first appearance, as malloc'd strings
 * appended to *names (*n of them). Returns 0, -1 on allocation failure. */
static int placeholder_names(const char *text, char ***names, size_t *n)
{
    const char *p = text;

    while (p != NULL && (p = strstr(p, "{{")) != NULL) {
        const char *end = strstr(p + 2, "}}");
        size_t len, i;
        int dup = 0;
        if (end == NULL)
            break;
        const char *name = p + 2;
        while (*name == ' ')
            name++;
        len = (size_t)(end - name);
        while (len > 0 && name[len - 1] == ' ')
            len--;
        p = end + 2;
        if (len == 0 || (name[0] >= '0' && name[0] <= '9'))
            continue;
        for (i = 0; i < *n; i++)
            if (strlen((*names)[i]) == len && strncmp((*names)[i], name, len) == 0)
                dup = 1;
        if (dup)
            continue;
        char **grown = realloc(*names, (*n + 1) * sizeof *grown);
        if (grown == NULL)
            return -1;
        *names = grown;
        if ((grown[*n] = strndup(name, len)) == NULL)
            return -1;
        (*n)++;
    }
    return 0;
}

static void note_ignored(struct colmap *m, const char *name)
{
    size_t used = strlen(m->ignored);
    snprintf(m->ignored + used, sizeof m->ignored - used, "%s%s", used > 0 ? ", " : "", name);
}

/* Columns named "1", "{{1}}" or "param_1" give positional placeholder 1 by name. */
static int positional_name(const char *name)
{
    char *end;
    long v;

    if (strncmp(name, "{{", 2) == 0)
        name += 2;
    else if (strncmp(name, "param_", 6) == 0)
        name += 6;
    if (*name < '1' || *name > '9')
        return 0;
    v = strtol(name, &end, 10);
    if (strcmp(end, "}}") != 0 && *end != '\0')
        return 0;
    return v > 0 && v < 1000 ? (int)v : 0;
}

/* Map the header row (c's current record) onto tpl. Returns 0, or -1 with err naming the file
 * and line 1: no wa_id column, a placeholder no column gives, a button value no column gives. */
static int colmap_build(struct colmap *m, const struct csv *c, const struct pl_template *tpl,
                        struct pl_error *err)
{
    size_t i, nparam = 0;
    int params[FIELDS_MAX], by_number[FIELDS_MAX];
    const char *file = c->path;
    char list[300] = "";

    memset(m, 0, sizeof *m);
    m->ncols = c->nfields;
    m->wa_id = m->opt_in = m->header = -1;
    m->named = tpl->named;
    for (i = 0; i < BUTTONS_MAX; i++)
        m->button_col[i] = -1;
    for (i = 0; i < FIELDS_MAX; i++)
        by_number[i] = -1;

    const char *hformat = tpl->header_format;
    if (hformat == NULL && tpl->header_text != NULL)
        hformat = "TEXT";
    int header_text_param = hformat != NULL && strcmp(hformat, "TEXT") == 0 &&
                            pl_rules_placeholder_count(tpl->header_text) > 0;
    m->header_media =
        hformat != NULL && strcmp(hformat, "TEXT") != 0 && strcmp(hformat, "LOCATION") != 0;
    if (tpl->named && header_text_param) {
        char **hn = NULL;
        size_t nh = 0;
        if (placeholder_names(tpl->header_text, &hn, &nh) != 0)
            goto oom;
        m->header_name = nh > 0 ? hn[0] : NULL;
        for (i = 1; i < nh; i++)
            free(hn[i]);
        free(hn);
    }

    /* wa_id, opt_in, header and button_N are never body parameters; one the template does not
     * use is ignored (and named in a note) */
    for (i = 0; i < c->nfields; i++) {
        const char *name = csv_field(c, i);
        int pos = 0;
        if (ascii_ieq(name, "wa_id")) {
            if (m->wa_id < 0)
                m->wa_id = (int)i;
        } else if (ascii_ieq(name, "opt_in")) {
            if (m->opt_in < 0)
                m->opt_in = (int)i;
        } else if (ascii_ieq(name, "header") || ascii_ieq(name, "header_1")) {
            if (m->header < 0 && (header_text_param || m->header_media))
                m->header = (int)i;
        } else if (ascii_ieq_prefix(name, "button_") && (pos = atoi(name + 7)) >= 1 &&
                   pos <= BUTTONS_MAX) {
            if ((size_t)pos <= tpl->nbuttons && m->button_col[pos - 1] < 0)
                m->button_col[pos - 1] = (int)i;
        } else {
            int number = tpl->named ? 0 : positional_name(name);
            if (number > 0 && number < FIELDS_MAX)
                by_number[number] = (int)i;
            params[nparam++] = (int)i;
        }
    }
    if (m->wa_id < 0)
        return pl_error_set(err, "broadcast",
                            "%s:1: no wa_id column (the header must name a wa_id column; it has "
                            "%zu column%s, the first is \"%s\")",
                            file, c->nfields, c->nfields == 1 ? "" : "s", csv_field(c, 0));

    /* the body's placeholders */
    if (tpl->named) {
        if (placeholder_names(tpl->body, &m->body_name, &m->nbody) != 0)
            goto oom;
        if ((m->body_col = calloc(m->nbody > 0 ? m->nbody : 1, sizeof *m->body_col)) == NULL)
            goto oom;
        for (i = 0; i < m->nbody; i++) {
            m->body_col[i] = -1;
            for (size_t k = 0; k < nparam; k++)
                if (ascii_ieq(csv_field(c, (size_t)params[k]), m->body_name[i]))
                    m->body_col[i] = params[k];
            if (m->body_col[i] < 0) {
                size_t used = strlen(list);
                snprintf(list + used, sizeof list - used, "%s%s", used > 0 ? ", " : "",
                         m->body_name[i]);
            }
        }
        if (list[0] != '\0')
            return pl_error_set(err, "broadcast",
                                "%s:1: template %s (%s) takes the named parameters of its body; "
                                "no column gives %s",
                                file, tpl->name, tpl->language, list);
    } else {
        int k = pl_rules_placeholder_count(tpl->body);
        m->nbody = k > 0 ? (size_t)k : 0;
        if ((m->body_col = calloc(m->nbody > 0 ? m->nbody : 1, sizeof *m->body_col)) == NULL)
            goto oom;
        int all_numbered = m->nbody > 0;
        for (i = 0; i < m->nbody; i++)
            if (i + 1 >= FIELDS_MAX || by_number[i + 1] < 0)
                all_numbered = 0;
        if (all_numbered) {
            for (i = 0; i < m->nbody; i++)
                m->body_col[i] = by_number[i + 1];
        } else if (nparam != m->nbody) {
            for (size_t p = 0; p < nparam; p++) {
                size_t used = strlen(list);
                snprintf(list + used, sizeof list - used, "%s%s", used > 0 ? ", " : "",
                         csv_field(c, (size_t)params[p]));
            }
            return pl_error_set(err, "broadcast",
                                "%s:1: template %s (%s) takes %zu body parameter%s, in order; "
                                "the list has %zu parameter column%s%s%s%s (every column but "
                                "wa_id, opt_in, header and button_N)",
                                file, tpl->name, tpl->language, m->nbody, m->nbody == 1 ? "" : "s",
                                nparam, nparam == 1 ? "" : "s", nparam > 0 ? " (" : "", list,
                                nparam > 0 ? ")" : "");
        } else {
            for (i = 0; i < m->nbody; i++)
                m->body_col[i] = params[i];
        }
    }

    /* the header */
    if (header_text_param && m->header < 0 && m->header_name != NULL)
        for (size_t k = 0; k < nparam; k++)
            if (ascii_ieq(csv_field(c, (size_t)params[k]), m->header_name))
                m->header = params[k];
    if ((header_text_param || m->header_media) && m->header < 0)
        return pl_error_set(err, "broadcast",
                            "%s:1: template %s (%s) has %s header that takes a value; add a "
                            "header column with %s",
                            file, tpl->name, tpl->language, m->header_media ? "a media" : "a TEXT",
                            m->header_media ? "the link of each recipient's header"
                                            : "each recipient's header parameter");

    /* the buttons */
    for (i = 0; i < tpl->nbuttons && i < BUTTONS_MAX; i++) {
        const struct pl_tpl_button *b = &tpl->buttons[i];
        int dynamic = b->type == PL_TPL_URL && b->url != NULL && strstr(b->url, "{{") != NULL;
        int takes = dynamic || b->type == PL_TPL_QUICK_REPLY || b->type == PL_TPL_COPY_CODE;
        if ((dynamic || b->type == PL_TPL_COPY_CODE) && m->button_col[i] < 0)
            return pl_error_set(err, "broadcast",
                                "%s:1: template %s (%s): button %zu (%s) needs a value for each "
                                "recipient; add a button_%zu column",
                                file, tpl->name, tpl->language, i + 1,
                                b->text != NULL ? b->text : "?", i + 1);
        if (!takes && m->button_col[i] >= 0)
            return pl_error_set(err, "broadcast",
                                "%s:1: template %s (%s): button %zu (%s) takes no value; remove "
                                "the button_%zu column",
                                file, tpl->name, tpl->language, i + 1,
                                b->text != NULL ? b->text : "?", i + 1);
    }

    /* what nothing reads */
    for (i = 0; i < c->nfields; i++) {
        int used = (int)i == m->wa_id || (int)i == m->opt_in || (int)i == m->header;
        for (size_t k = 0; k < m->nbody; k++)
            used |= m->body_col[k] == (int)i;
        for (size_t k = 0; k < BUTTONS_MAX; k++)
            used |= m->button_col[k] == (int)i;
        if (!used)
            note_ignored(m, csv_field(c, i));
    }
    return 0;
oom:
    return pl_error_set(err, "broadcast", "out of memory reading the header of %s", file);
}

/* The row's values as the job stores them: {"body": [..] or {name: ..}, "header": "..",
 * "buttons": {"2": ".."}} (malloc'd JSON text), or NULL on allocation failure. Every field is
 * valid UTF-8 (import_row checks it first). */
static char *row_params(const struct colmap *m, const struct csv *c)
{
    json_t *root = json_object(), *body = m->named ? json_object() : json_array();
    json_t *buttons = json_object();
    char *text = NULL;

    if (root == NULL || body == NULL || buttons == NULL)
        goto out;
    for (size_t i = 0; i < m->nbody; i++) {
        json_t *v = json_string(csv_field(c, (size_t)m->body_col[i])); /* UTF-8: checked */
        if (m->named)
            json_object_set_new(body, m->body_name[i], v);
        else
            json_array_append_new(body, v);
    }
    json_object_set(root, "body", body);
    if (m->header >= 0)
        json_object_set_new(root, "header", json_string(csv_field(c, (size_t)m->header)));
    for (int i = 0; i < BUTTONS_MAX; i++) {
        char key[16];
        const char *v;
        if (m->button_col[i] < 0)
            continue;
        v = csv_field(c, (size_t)m->button_col[i]);
        if (v[0] == '\0')
            continue; /* a quick reply keeps the template's payload; a URL's missing suffix is
                         refused at send time (template_params) */
        snprintf(key, sizeof key, "%d", i + 1);
        json_object_set_new(buttons, key, json_string(v));
    }
    if (json_object_size(buttons) > 0)
        json_object_set(root, "buttons", buttons);
    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
    json_decref(root);
    json_decref(body);
    json_decref(buttons);
    return text;
}

/* ---- the job ---- */

/* One answer of the sender, kept until it is recorded. */
struct answer {
    char *local_id, *wamid, *title;
    long code;
    int failed;
};

/* What a send needs of the template beyond the registry entry. */
struct sendmap {
    int header_media;
    char *header_name; /* a named template's header placeholder */
};

struct job {
    const struct pl_broadcast_opts *o;
    const struct pl_config *cfg;
    const struct pl_channel_config *ch;
    const struct pl_limits *lim;
    struct pl_store *store;
    struct pl_templates *templates;
    const struct pl_template *tpl;
    struct sendmap sm;
    struct pl_outbound *out;
    struct pl_broadcast_row row;
    double rate;
    size_t cap; /* messages queued or in flight in the sender, at most */
    /* the daily limit */
    long daily_limit;
    long long recent;
    long long refreshed_ms;
    /* progress */
    long long counts[PL_RCPT_STATES];
    long long total, started_ms, sent_run, progress_ms;
    /* the sender's answers not yet recorded */
    struct answer *answers;
    size_t nanswers, capanswers;
    int answers_oom;
    /* why the run stopped early: "daily_limit", "interrupted", "template_not_approved" */
    const char *stop_code;
    char stop_detail[600];
};

static void on_answer(void *ud, const struct pl_delivery *d)
{
    struct job *j = ud;
    struct answer *a;

    if (j->nanswers == j->capanswers) {
        size_t cap = j->capanswers > 0 ? j->capanswers * 2 : 64;
        struct answer *grown = realloc(j->answers, cap * sizeof *grown);
        if (grown == NULL) {
            j->answers_oom = 1; /* the row stays queued: sent again when the job resumes */
            return;
        }
        j->answers = grown;
        j->capanswers = cap;
    }
    a = &j->answers[j->nanswers];
    memset(a, 0, sizeof *a);
    a->local_id = strdup(d->local_id);
    a->wamid = d->wamid != NULL ? strdup(d->wamid) : NULL;
    a->title = d->title != NULL ? strdup(d->title) : NULL;
    a->code = d->code;
    a->failed = d->failed;
    if (a->local_id == NULL) {
        free(a->wamid);
        free(a->title);
        j->answers_oom = 1;
        return;
    }
    j->nanswers++;
}

static void no_sink(void *ud, const char *channel, const char *contact, const char *local_id,
                    const char *wamid, const char *body)
{
    (void)ud;
    (void)channel;
    (void)contact;
    (void)local_id;
    (void)wamid;
    (void)body;
}

/* The recipient's line from a local id "<job>:<line>"; 0 when it is not one of ours. */
static long long line_of(const char *local_id)
{
    const char *colon = strrchr(local_id, ':');
    return colon != NULL ? strtoll(colon + 1, NULL, 10) : 0;
}

/* A provider error code as the recipient's code: the number, or provider_error without one. */
static void code_text(long code, char *buf, size_t size)
{
    if (code >= 0)
        snprintf(buf, size, "%ld", code);
    else
        snprintf(buf, size, "provider_error");
}

/* Record what the sender reported, in one transaction: the outbox row and the recipient. */
static int record_answers(struct job *j, struct pl_error *err)
{
    long long at = wall_now();
    size_t i;
    int rc = 0;

    if (j->nanswers == 0)
        return 0;
    if (pl_store_begin(j->store, err) != 0)
        return -1;
    for (i = 0; i < j->nanswers && rc == 0; i++) {
        struct answer *a = &j->answers[i];
        long long line = line_of(a->local_id);
        char code[32];
        if (a->failed) {
            code_text(a->code, code, sizeof code);
            rc = pl_store_outbox_failed(j->store, a->local_id, a->code, a->title, NULL, at, err);
            if (rc == 0)
                rc = pl_store_rcpt_finish(j->store, j->row.id, line, PL_RCPT_FAILED, code, a->title,
                                          err);
        } else {
            rc = pl_store_outbox_sent(j->store, a->local_id, a->wamid, at, err);
            if (rc == 0)
                rc = pl_store_rcpt_finish(j->store, j->row.id, line, PL_RCPT_SENT, NULL, NULL, err);
        }
    }
    if (rc != 0) {
        pl_store_rollback(j->store);
        return -1;
    }
    if (pl_store_commit(j->store, err) != 0)
        return -1;
    for (i = 0; i < j->nanswers; i++) {
        struct answer *a = &j->answers[i];
        j->counts[PL_RCPT_QUEUED]--;
        j->counts[a->failed ? PL_RCPT_FAILED : PL_RCPT_SENT]++;
        if (!a->failed)
            j->sent_run++;
        free(a->local_id);
        free(a->wamid);
        free(a->title);
    }
    j->nanswers = 0;
    return 0;
}

static int count_state(void *ud, enum pl_rcpt_state st, const char *code, long long count)
{
    long long *counts = ud;
    (void)code;
    counts[st] += count;
    return 0;
}

static int load_counts(struct job *j, struct pl_error *err)
{
    memset(j->counts, 0, sizeof j->counts);
    if (pl_store_rcpt_counts(j->store, j->row.id, count_state, j->counts, err) != 0)
        return -1;
    j->total = 0;
    for (int i = 0; i < PL_RCPT_STATES; i++)
        j->total += j->counts[i];
    return 0;
}

/* ---- templates and the daily limit, as the server sees them ---- */

static int apply_status(void *ud, const char *key, const char *value, long long at)
{
    struct job *j = ud;
    /* key: tpl:<channel>:<name>:<language> (language "" for every language) */
    const char *name = key + 4 + strlen(j->ch->id) + 1, *colon = strrchr(key, ':');
    char tname[600];

    if (colon == NULL || colon <= name || value == NULL)
        return 0;
    snprintf(tname, sizeof tname, "%.*s", (int)(colon - name), name);
    pl_templates_set_status(j->templates, tname, colon[1] != '\0' ? colon + 1 : NULL, value, at);
    return 0;
}

/* Re-read what the server may have changed since: the template's status, the daily limit (a
 * tier webhook) and the recipients of business-initiated messages in the last 24 hours. */
static int refresh(struct job *j, struct pl_error *err)
{
    char key[700], *value = NULL;

    snprintf(key, sizeof key, "tpl:%s:%s:", j->ch->id, j->row.template_name);
    if (pl_store_settings_prefix(j->store, key, apply_status, j, err) != 0)
        return -1;
    snprintf(key, sizeof key, "limit:%s", j->ch->id);
    if (pl_store_setting_get(j->store, key, &value, NULL, err) != 0)
        return -1;
    j->daily_limit = value != NULL ? strtol(value, NULL, 10) : j->ch->daily_limit;
    free(value);
    if (pl_store_business_count(j->store, j->ch->id, wall_now() - j->lim->window_seconds,
                                &j->recent, err) != 0)
        return -1;
    j->refreshed_ms = now_ms();
    return 0;
}

static int load_templates(struct job *j, struct pl_error *err)
{
    char prefix[160];

    if (j->ch->templates == NULL)
        return pl_error_set(err, "broadcast",
                            "channel %s has no templates registry (set \"templates\" in its "
                            "config, then run parley templates sync --channel %s)",
                            j->ch->id, j->ch->id);
    j->templates = pl_templates_load(j->ch->templates, j->lim, NULL, NULL, err);
    if (j->templates == NULL)
        return -1;
    snprintf(prefix, sizeof prefix, "tpl:%s:", j->ch->id);
    return pl_store_settings_prefix(j->store, prefix, apply_status, j, err);
}

/* The template in force now: found, approved, and the parts of it a send needs. Returns 0, or
 * -1 with err (code unknown_template / template_not_approved). */
static int find_template(struct job *j, struct pl_error *err)
{
    struct pl_tpl_send probe = {.name = j->row.template_name, .language = j->row.language};
    struct pl_verdict v;
    const char *status;

    j->tpl = pl_templates_find(j->templates, j->row.template_name, j->row.language);
    if (j->tpl == NULL) {
        pl_templates_check(j->templates, j->lim, &probe, wall_now(), NULL, &v);
        return pl_error_set(err, pl_code_name(PL_UNKNOWN_TEMPLATE), "%s: %s",
                            pl_code_name(PL_UNKNOWN_TEMPLATE), v.detail);
    }
    status = pl_templates_status(j->templates, j->tpl, j->lim, wall_now());
    if (pl_rules_check_template_status(status, j->tpl->name, j->tpl->language, &v) != 0)
        return pl_error_set(err, pl_code_name(PL_TEMPLATE_NOT_APPROVED), "%s: %s",
                            pl_code_name(PL_TEMPLATE_NOT_APPROVED), v.detail);
    if (j->sm.header_name == NULL && j->tpl->named && j->tpl->header_text != NULL) {
        char **names = NULL;
        size_t n = 0;
        if (placeholder_names(j->tpl->header_text, &names, &n) != 0)
            return pl_error_set(err, "broadcast", "out of memory");
        j->sm.header_name = n > 0 ? names[0] : NULL;
        for (size_t i = 1; i < n; i++)
            free(names[i]);
        free(names);
    }
    const char *hf = j->tpl->header_format;
    j->sm.header_media = hf != NULL && strcmp(hf, "TEXT") != 0 && strcmp(hf, "LOCATION") != 0;
    return 0;
}

/* ---- import: the list into broadcast_recipients ---- */

/* Decide one record of the list and add it. Returns 0, -1 with err. */
static int import_row(struct job *j, const struct colmap *m, const struct csv *c, long long line,
                      struct pl_error *err)
{
    char wa[32], detail[300];
    const char *raw = m->wa_id < (int)c->nfields ? csv_field(c, (size_t)m->wa_id) : "";
    long long first = 0;
    char *params;
    int rc;

    for (size_t i = 0; i < c->nfields; i++) {
        const char *v = csv_field(c, i);
        if (!pl_utf8_valid(v, strlen(v), NULL)) {
            snprintf(detail, sizeof detail, "column %zu is not valid UTF-8", i + 1);
            return pl_store_rcpt_add(j->store, j->row.id, line, NULL, NULL, 0, PL_RCPT_SKIPPED,
                                     pl_code_name(PL_BAD_UTF8), detail, err);
        }
    }
    if (c->nfields != m->ncols) {
        snprintf(detail, sizeof detail, "the row has %zu field%s; the header has %zu", c->nfields,
                 c->nfields == 1 ? "" : "s", m->ncols);
        return pl_store_rcpt_add(j->store, j->row.id, line, raw, NULL, 0, PL_RCPT_SKIPPED,
                                 "bad_row", detail, err);
    }
    if (normalize_wa_id(j->lim, raw, wa, sizeof wa) != 0) {
        snprintf(detail, sizeof detail,
                 "\"%.60s\" is not a phone number in international format (%d-%d digits, "
                 "country code first)",
                 raw, j->lim->phone_digits_min, j->lim->phone_digits_max);
        return pl_store_rcpt_add(j->store, j->row.id, line, raw, NULL, 0, PL_RCPT_SKIPPED,
                                 pl_code_name(PL_BAD_PHONE), detail, err);
    }
    if (pl_store_rcpt_find_wa(j->store, j->row.id, wa, &first, err) != 0)
        return -1;
    if (first > 0 && first != line) {
        snprintf(detail, sizeof detail, "%s is on line %lld already; nobody gets a broadcast twice",
                 wa, first);
        return pl_store_rcpt_add(j->store, j->row.id, line, wa, NULL, 0, PL_RCPT_SKIPPED,
                                 "duplicate", detail, err);
    }
    params = row_params(m, c);
    if (params == NULL)
        return pl_error_set(err, "broadcast", "out of memory importing %s", c->path);
    rc = pl_store_rcpt_add(j->store, j->row.id, line, wa, params,
                           m->opt_in >= 0 && truthy(csv_field(c, (size_t)m->opt_in)),
                           PL_RCPT_PENDING, NULL, NULL, err);
    free(params);
    return rc;
}

/* Read the list into the job, IMPORT_CHUNK rows per transaction, each with the offset it
 * reached, so a killed import continues where it stopped. Ends with the job "running". */
static int import_list(struct job *j, struct csv *c, const struct colmap *m, struct pl_error *err)
{
    long long line = 0, rows = 0;
    int r = 1;

    if (j->row.import_offset > 0 && csv_seek(c, j->row.import_offset, j->row.import_line, err) != 0)
        return -1;
    if (pl_store_begin(j->store, err) != 0)
        return -1;
    while ((r = csv_next(c, &line, err)) == 1) {
        if (import_row(j, m, c, line, err) != 0)
            goto fail;
        if (++rows % IMPORT_CHUNK == 0) {
            if (pl_store_broadcast_imported(j->store, j->row.id, c->offset, c->line, err) != 0 ||
                pl_store_commit(j->store, err) != 0 || pl_store_begin(j->store, err) != 0)
                goto fail;
            if (j->o->progress == PL_PROGRESS_BAR)
                fprintf(j->o->err, "\rimporting %s: %lld rows\033[K", c->path, rows);
            if (stop_signal != 0) { /* what is committed stays: the import resumes from here */
                pl_error_set(err, "broadcast", "%s: stopped by a signal while importing line %lld",
                             c->path, c->line);
                pl_store_rollback(j->store);
                return -1;
            }
        }
    }
    if (r < 0)
        goto fail;
    if (pl_store_broadcast_imported(j->store, j->row.id, c->offset, c->line, err) != 0 ||
        pl_store_broadcast_set_state(j->store, j->row.id, "running", NULL, 0, j->rate, err) != 0 ||
        pl_store_commit(j->store, err) != 0)
        goto fail;
    if (j->o->progress == PL_PROGRESS_BAR && rows >= IMPORT_CHUNK)
        fprintf(j->o->err, "\r\033[K");
    free(j->row.state);
    j->row.state = strdup("running");
    return j->row.state != NULL ? 0 : pl_error_set(err, "broadcast", "out of memory");
fail:
    pl_store_rollback(j->store);
    return -1;
}

/* Read the whole list once without storing it: its syntax and the number of records. */
static int check_list(struct csv *c, long long *records, struct pl_error *err)
{
    long long line;
    int r;

    *records = 0;
    while ((r = csv_next(c, &line, err)) == 1)
        (*records)++;
    return r;
}

/* ---- send: decide each recipient, pace, record ---- */

enum verdict_kind { V_SEND, V_SKIP, V_STOP };

/* One recipient taken from the job, and what to do with it. */
struct pick {
    long long line;
    char *wa_id, *params;
    int csv_opt_in;
    enum verdict_kind kind;
    char *body;        /* V_SEND: the request body */
    int business;      /* V_SEND: counts for the daily limit */
    int record_opt_in; /* V_SEND: record the list's opt-in with the send */
    const char *code;  /* V_SKIP / V_STOP */
    char detail[512];
};

struct picks {
    struct pick *p;
    size_t n, cap;
};

static int collect_pick(void *ud, long long line, const char *wa_id, const char *params, int opt_in)
{
    struct picks *ps = ud;
    struct pick *p;

    if (ps->n == ps->cap)
        return -1; /* cannot happen: the caller asks for at most cap */
    p = &ps->p[ps->n];
    memset(p, 0, sizeof *p);
    p->line = line;
    p->wa_id = strdup(wa_id != NULL ? wa_id : "");
    p->params = params != NULL ? strdup(params) : NULL;
    p->csv_opt_in = opt_in;
    ps->n++;
    if (p->wa_id == NULL || (params != NULL && p->params == NULL))
        return -1;
    return 0;
}

static void picks_clear(struct picks *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->p[i].wa_id);
        free(ps->p[i].params);
        free(ps->p[i].body);
    }
    ps->n = 0;
}

static void skip(struct pick *p, enum verdict_kind kind, const char *code, const char *detail)
{
    p->kind = kind;
    p->code = code;
    snprintf(p->detail, sizeof p->detail, "%s", detail);
}

/* The send as the template check wants it, from the stored params (json keeps the strings). */
static int build_send(const struct job *j, json_t *params, struct pl_tpl_send *send,
                      struct pl_tpl_param *body, size_t body_max, struct pl_tpl_param *header,
                      struct pl_tpl_button_value *buttons)
{
    json_t *b = json_object_get(params, "body"), *v;
    const char *key;
    size_t i;

    memset(send, 0, sizeof *send);
    send->name = j->row.template_name;
    send->language = j->row.language;
    if (json_is_array(b)) {
        json_array_foreach(b, i, v)
        {
            if (i >= body_max)
                return -1;
            body[i].name = NULL;
            body[i].value = json_string_value(v);
        }
        send->nbody = json_array_size(b);
    } else if (json_is_object(b)) {
        json_object_foreach(b, key, v)
        {
            if (send->nbody >= body_max)
                return -1;
            body[send->nbody].name = key;
            body[send->nbody++].value = json_string_value(v);
        }
    }
    send->body = send->nbody > 0 ? body : NULL;
    const char *h = json_string_value(json_object_get(params, "header"));
    if (h != NULL && j->sm.header_media) {
        send->header_media_link = h;
    } else if (h != NULL) {
        header->name = j->sm.header_name;
        header->value = h;
        send->header = header;
        send->nheader = 1;
    }
    json_object_foreach(json_object_get(params, "buttons"), key, v)
    {
        int pos = atoi(key);
        if (pos < 1 || pos > BUTTONS_MAX || send->nbuttons >= BUTTONS_MAX)
            continue;
        buttons[send->nbuttons].index = pos - 1;
        buttons[send->nbuttons++].value = json_string_value(v);
    }
    send->buttons = send->nbuttons > 0 ? buttons : NULL;
    return 0;
}

/* Decide p: the template check with its parameters, then (outside the customer's 24-hour
 * window) consent and the daily limit, exactly as chat:template decides in the server. */
static int decide(struct job *j, struct pick *p, long long now, struct pl_error *err)
{
    struct pl_tpl_param body[128], header;
    struct pl_tpl_button_value buttons[BUTTONS_MAX];
    struct pl_tpl_send send;
    struct pl_contact contact;
    struct pl_verdict v;
    const struct pl_template *tpl = NULL;
    json_t *params = p->params != NULL ? json_loads(p->params, 0, NULL) : json_object();
    long long at = 0;
    int rc = 0;

    if (params == NULL || build_send(j, params, &send, body, 128, &header, buttons) != 0) {
        skip(p, V_SKIP, pl_code_name(PL_TEMPLATE_PARAMS), "the stored parameters are unreadable");
        goto out;
    }
    if (pl_templates_check(j->templates, j->lim, &send, now, &tpl, &v) != 0) {
        int whole_job = v.code == PL_UNKNOWN_TEMPLATE || v.code == PL_TEMPLATE_NOT_APPROVED;
        skip(p, whole_job ? V_STOP : V_SKIP, pl_code_name(v.code), v.detail);
        goto out;
    }
    if (pl_store_contact_get(j->store, j->ch->id, p->wa_id, &contact, err) != 0 ||
        pl_store_business_at(j->store, j->ch->id, p->wa_id, &at, err) != 0) {
        rc = -1;
        goto out;
    }
    p->business = pl_rules_window_left(j->lim, now, contact.last_inbound) <= 0;
    if (p->business) {
        int already = at > now - j->lim->window_seconds;
        if (pl_rules_check_business(contact.last_inbound, contact.opted_in || p->csv_opt_in,
                                    j->daily_limit, (long)j->recent, already, p->wa_id, &v) != 0) {
            skip(p, v.code == PL_DAILY_LIMIT ? V_STOP : V_SKIP, pl_code_name(v.code), v.detail);
            pl_contact_clear(&contact);
            goto out;
        }
        if (!already)
            j->recent++;
    }
    p->record_opt_in = p->csv_opt_in && !contact.opted_in;
    pl_contact_clear(&contact);
    p->body = pl_outbound_template_json(tpl, &send, p->wa_id, err);
    if (p->body == NULL) {
        rc = -1;
        goto out;
    }
    p->kind = V_SEND;
out:
    json_decref(params);
    return rc;
}

/* Take up to `want` pending recipients after *after, decide them, and commit every decision in
 * one transaction (a send: its outbox row, the recipient queued, the business recipient and the
 * list's opt-in, together); then hand the sends to the sender. Decisions stop at the first V_STOP
 * (the rest stays pending). *taken: recipients read (0: none left). Returns the sends, -1 with
 * err. */
static int send_batch(struct job *j, struct picks *ps, long long *after, int want, size_t *taken,
                      struct pl_error *err)
{
    long long now = wall_now();
    char local_id[128], source[128];
    size_t i, n = 0, nsend = 0, nskip = 0;
    int rc = 0;

    *taken = 0;
    if (pl_store_rcpt_pending(j->store, j->row.id, *after, want, collect_pick, ps, taken, err) !=
        0) {
        picks_clear(ps);
        return pl_error_set(err, "broadcast", "reading the job's recipients: %s",
                            err->msg[0] != '\0' ? err->msg : "out of memory");
    }
    for (i = 0; i < ps->n; i++) {
        if (decide(j, &ps->p[i], now, err) != 0) {
            picks_clear(ps);
            return -1;
        }
        if (ps->p[i].kind == V_STOP) {
            j->stop_code = ps->p[i].code;
            snprintf(j->stop_detail, sizeof j->stop_detail, "%s", ps->p[i].detail);
            break;
        }
    }
    n = i; /* decided; the rest (after a stop) stays pending */
    if (n > 0)
        *after = ps->p[n - 1].line;
    snprintf(source, sizeof source, "broadcast:%s", j->row.id);
    if (n > 0 && pl_store_begin(j->store, err) != 0) {
        picks_clear(ps);
        return -1;
    }
    for (i = 0; i < n && rc == 0; i++) {
        struct pick *p = &ps->p[i];
        if (p->kind == V_SKIP) {
            rc = pl_store_rcpt_set(j->store, j->row.id, p->line, PL_RCPT_SKIPPED, p->code,
                                   p->detail, NULL, err);
            continue;
        }
        snprintf(local_id, sizeof local_id, "%s:%lld", j->row.id, p->line);
        rc =
            pl_store_outbox_add_job(j->store, local_id, j->ch->id, j->ch->phone_number_id, p->wa_id,
                                    "template", p->body, j->row.template_name, j->row.id, now, err);
        if (rc == 0)
            rc = pl_store_rcpt_set(j->store, j->row.id, p->line, PL_RCPT_QUEUED, NULL, NULL,
                                   local_id, err);
        if (rc == 0 && p->business)
            rc = pl_store_business_add(j->store, j->ch->id, p->wa_id, now, err);
        if (rc == 0 && p->record_opt_in)
            rc = pl_store_contact_opt_in(j->store, j->ch->id, p->wa_id, source, now, err);
    }
    if (n > 0 && (rc != 0 || pl_store_commit(j->store, err) != 0)) {
        pl_store_rollback(j->store);
        picks_clear(ps);
        return -1;
    }
    for (i = 0; i < n; i++) {
        struct pick *p = &ps->p[i];
        if (p->kind == V_SKIP) {
            nskip++;
            continue;
        }
        snprintf(local_id, sizeof local_id, "%s:%lld", j->row.id, p->line);
        if (pl_outbound_enqueue(j->out, local_id, j->ch->id, j->ch->phone_number_id, p->wa_id,
                                "template", p->body, 0) != 0) {
            picks_clear(ps);
            return pl_error_set(err, "broadcast", "out of memory queueing a message");
        }
        nsend++;
    }
    j->counts[PL_RCPT_PENDING] -= (long long)(nsend + nskip);
    j->counts[PL_RCPT_QUEUED] += (long long)nsend;
    j->counts[PL_RCPT_SKIPPED] += (long long)nskip;
    picks_clear(ps);
    return (int)nsend;
}

/* Queued recipients of an earlier run (killed, or stopped before the provider answered): their
 * outbox rows go to the sender again, as they are. This is the one duplicate window: a message
 * the provider accepted just before the kill, and we had not recorded, goes out twice. */
static int requeue(void *ud, long long line, const char *wa_id, const char *local_id,
                   const char *body, int out_state, long long created_at,
                   const char *phone_number_id)
{
    struct job *j = ud;
    struct pl_error err;

    /* its maximum age counts from created_at: a resume does not start its day over; it goes
     * out from the number it was queued for, even if the channel has moved to another since */
    if (local_id != NULL && body != NULL && out_state == PL_OUT_QUEUED)
        return pl_outbound_enqueue(j->out, local_id, j->ch->id,
                                   phone_number_id != NULL ? phone_number_id
                                                           : j->ch->phone_number_id,
                                   wa_id, "template", body, created_at);
    /* the outbox row moved on without the recipient (a state file edited by hand): follow it;
     * without an outbox row the recipient is decided again */
    if (body == NULL)
        return pl_store_rcpt_set(j->store, j->row.id, line, PL_RCPT_PENDING, NULL, NULL, NULL,
                                 &err);
    return pl_store_rcpt_finish(j->store, j->row.id, line,
                                out_state == PL_OUT_FAILED ? PL_RCPT_FAILED : PL_RCPT_SENT,
                                out_state == PL_OUT_FAILED ? "provider_error" : NULL, NULL, &err);
}

/* ---- progress and the report ---- */

static void progress(struct job *j, int final)
{
    long long t = now_ms(), left = j->counts[PL_RCPT_PENDING] + j->counts[PL_RCPT_QUEUED];
    long long done = j->total - left;
    double secs = (double)(t - j->started_ms) / 1000.0;
    double measured = secs > 0.5 || (final && secs > 0) ? (double)j->sent_run / secs : 0;
    double pace = measured > 0 && measured < j->rate ? measured : j->rate;
    long long eta = pace > 0 ? (long long)((double)left / pace + 0.5) : 0;
    FILE *f = j->o->err;

    if (j->o->progress == PL_PROGRESS_NONE)
        return;
    if (j->o->progress == PL_PROGRESS_BAR) {
        char bar[24];
        int width = 20, fill = j->total > 0 ? (int)(done * width / j->total) : width;
        if (!final && t - j->progress_ms < 100)
            return;
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(f,
                "\r[%s] %3lld%%  %lld/%lld  sent %lld  skipped %lld  failed %lld  %.1f/s  "
                "ETA %lld:%02lld\033[K",
                bar, j->total > 0 ? done * 100 / j->total : 100, done, j->total,
                j->counts[PL_RCPT_SENT], j->counts[PL_RCPT_SKIPPED], j->counts[PL_RCPT_FAILED],
                measured, eta / 60, eta % 60);
        if (final)
            fputc('\n', f);
        fflush(f);
        j->progress_ms = t;
        return;
    }
    if (!final && t - j->progress_ms < 5000)
        return;
    fprintf(f,
            "progress %s: %lld/%lld (sent %lld, skipped %lld, failed %lld), %.1f/s, ETA %lld s\n",
            j->row.id, done, j->total, j->counts[PL_RCPT_SENT], j->counts[PL_RCPT_SKIPPED],
            j->counts[PL_RCPT_FAILED], measured, eta);
    fflush(f);
    j->progress_ms = t;
}

/* Counts by (state, code) of a job's recipients. */
struct tally {
    long long by_state[PL_RCPT_STATES];
    size_t n;
    struct {
        enum pl_rcpt_state st;
        char code[48];
        long long count;
    } e[64];
};

static int tally_add(void *ud, enum pl_rcpt_state st, const char *code, long long count)
{
    struct tally *t = ud;
    t->by_state[st] += count;
    if (t->n < sizeof t->e / sizeof t->e[0]) {
        t->e[t->n].st = st;
        snprintf(t->e[t->n].code, sizeof t->e[t->n].code, "%s", code != NULL ? code : "");
        t->e[t->n++].count = count;
    }
    return 0;
}

/* "8 (bad_phone 2, not_opted_in 6)" for one state. */
static void by_code(const struct tally *t, enum pl_rcpt_state st, char *buf, size_t size)
{
    size_t used;
    int first = 1;

    snprintf(buf, size, "%lld", t->by_state[st]);
    for (size_t i = 0; i < t->n; i++) {
        if (t->e[i].st != st || t->e[i].code[0] == '\0')
            continue;
        used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s %lld", first ? " (" : ", ", t->e[i].code,
                 t->e[i].count);
        first = 0;
    }
    if (!first) {
        used = strlen(buf);
        snprintf(buf + used, size - used, ")");
    }
}

struct examples {
    FILE *out;
    const char *file;
    int shown;
    long long more;
};

static int show_example(void *ud, long long line, const char *wa_id, enum pl_rcpt_state st,
                        const char *code, const char *detail)
{
    struct examples *x = ud;
    if (st != PL_RCPT_SKIPPED && st != PL_RCPT_FAILED)
        return 0;
    if (x->shown >= EXAMPLES_MAX) {
        x->more++;
        return 0;
    }
    fprintf(x->out, "  %s:%lld: %s: %s %s%s%s\n", x->file, line, wa_id != NULL ? wa_id : "",
            pl_rcpt_state_name(st), code != NULL ? code : "", detail != NULL ? ": " : "",
            detail != NULL ? detail : "");
    x->shown++;
    return 0;
}

static void report(struct job *j, enum pl_broadcast_end end, const char *config)
{
    struct tally t;
    struct pl_error err;
    char line[1200];
    FILE *out = j->o->out;

    memset(&t, 0, sizeof t);
    if (pl_store_rcpt_counts(j->store, j->row.id, tally_add, &t, &err) != 0) {
        fprintf(out, "broadcast %s: cannot read the totals: %s\n", j->row.id, err.msg);
        return;
    }
    fprintf(out, "broadcast %s: %s\n", j->row.id,
            end == PL_BROADCAST_DONE          ? "done"
            : end == PL_BROADCAST_DAILY_LIMIT ? "stopped at the daily limit"
                                              : "stopped");
    fprintf(out, "template: %s (%s), channel %s\n", j->row.template_name, j->row.language,
            j->ch->id);
    fprintf(out, "list: %s (%lld recipients)\n", j->row.file,
            t.by_state[PL_RCPT_PENDING] + t.by_state[PL_RCPT_QUEUED] + t.by_state[PL_RCPT_SENT] +
                t.by_state[PL_RCPT_SKIPPED] + t.by_state[PL_RCPT_FAILED]);
    fprintf(out, "sent: %lld\n", t.by_state[PL_RCPT_SENT]);
    by_code(&t, PL_RCPT_SKIPPED, line, sizeof line);
    fprintf(out, "skipped: %s\n", line);
    by_code(&t, PL_RCPT_FAILED, line, sizeof line);
    fprintf(out, "failed: %s\n", line);
    fprintf(out, "not sent (daily_limit): %lld\n",
            end == PL_BROADCAST_DAILY_LIMIT ? t.by_state[PL_RCPT_PENDING] : 0);
    if (end != PL_BROADCAST_DONE)
        fprintf(out, "pending: %lld\n", t.by_state[PL_RCPT_PENDING] + t.by_state[PL_RCPT_QUEUED]);
    if (j->stop_code != NULL && j->stop_detail[0] != '\0')
        fprintf(out, "why: %s: %s\n", j->stop_code, j->stop_detail);
    if (t.by_state[PL_RCPT_SKIPPED] + t.by_state[PL_RCPT_FAILED] > 0) {
        struct examples x = {out, j->row.file, 0, 0};
        fprintf(out, "not sent:\n");
        pl_store_rcpt_unsent(j->store, j->row.id, show_example, &x, &err);
        if (x.more > 0)
            fprintf(out, "  … and %lld more: parley broadcast status %s --unsent%s%s\n", x.more,
                    j->row.id, config != NULL ? " -c " : "", config != NULL ? config : "");
    }
    if (end == PL_BROADCAST_DAILY_LIMIT)
        fprintf(out,
                "the daily limit of business-initiated recipients (%ld in 24 hours) is reached; "
                "the rest stays pending. Resume later (or after a tier upgrade) with: parley "
                "broadcast --resume %s%s%s\n",
                j->daily_limit, j->row.id, config != NULL ? " -c " : "",
                config != NULL ? config : "");
    else if (end == PL_BROADCAST_STOPPED)
        fprintf(out, "resume with: parley broadcast --resume %s%s%s\n", j->row.id,
                config != NULL ? " -c " : "", config != NULL ? config : "");
    if (j->o->stats) {
        long kib = peak_kib();
        fprintf(out, "peak memory: %.1f MiB (VmHWM %ld kB)\n", (double)kib / 1024.0, kib);
    }
    fflush(out);
}

/* ---- the run ---- */

static int run_send(struct job *j, struct pl_error *err)
{
    struct picks ps = {NULL, 0, SEND_BATCH};
    long long after = 0, deadline = 0, last = now_ms();
    double burst = j->rate / 20 > 1 ? j->rate / 20 : 1, tokens = 1;
    int exhausted = 0, stopping = 0, rc = -1;

    ps.p = calloc(SEND_BATCH, sizeof *ps.p);
    if (ps.p == NULL)
        return pl_error_set(err, "broadcast", "out of memory");
    if (pl_store_rcpt_queued(j->store, j->row.id, requeue, j, err) != 0) {
        if (err->msg[0] == '\0')
            pl_error_set(err, "broadcast", "out of memory queueing the job's messages again");
        goto out;
    }
    if (load_counts(j, err) != 0)
        goto out;
    j->started_ms = j->progress_ms = now_ms();
    j->progress_ms -= 100000; /* the first progress shows at once */
    progress(j, 0);
    for (;;) {
        long long t = now_ms();
        long timeout;

        if (stop_signal != 0 && !stopping) {
            j->stop_code = "interrupted";
            snprintf(j->stop_detail, sizeof j->stop_detail, "stopped by %s",
                     stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
            deadline = t + STOP_GRACE_MS;
        }
        stopping = j->stop_code != NULL;
        if (!stopping && t - j->refreshed_ms >= REFRESH_MS && refresh(j, err) != 0)
            goto out;
        tokens += (double)(t - last) * j->rate / 1000.0;
        if (tokens > burst)
            tokens = burst;
        last = t;
        while (!stopping && !exhausted && tokens >= 1 && pl_outbound_pending(j->out) < j->cap) {
            size_t room = j->cap - pl_outbound_pending(j->out), taken = 0;
            int want = (int)tokens, sent;
            if ((size_t)want > room)
                want = (int)room;
            if (want > SEND_BATCH)
                want = SEND_BATCH;
            sent = send_batch(j, &ps, &after, want, &taken, err);
            if (sent < 0)
                goto out;
            exhausted = taken == 0;
            tokens -= sent;
            stopping = j->stop_code != NULL;
            pl_outbound_start(j->out); /* the sandbox answers at once */
            if (record_answers(j, err) != 0)
                goto out;
        }
        pl_outbound_start(j->out);
        if (record_answers(j, err) != 0)
            goto out;
        progress(j, 0);
        if ((exhausted || stopping) && pl_outbound_pending(j->out) == 0)
            break;
        if (deadline > 0 && t >= deadline)
            break; /* in-flight sends stay queued: the next run sends them */
        if (exhausted || stopping || pl_outbound_pending(j->out) >= j->cap)
            timeout = 100;
        else if (tokens < 1)
            timeout = (long)ceil((1 - tokens) * 1000.0 / j->rate);
        else
            timeout = 0;
        long due = pl_outbound_next_due_ms(j->out);
        if (due >= 0 && due < timeout)
            timeout = due;
        if (timeout > 100)
            timeout = 100;
        pl_outbound_poll(j->out, (int)timeout, -1);
        if (record_answers(j, err) != 0)
            goto out;
        if (j->answers_oom) {
            pl_error_set(err, "broadcast", "out of memory recording the provider's answers");
            goto out;
        }
    }
    rc = 0;
out:
    progress(j, 1);
    picks_clear(&ps);
    free(ps.p);
    return rc;
}

/* The newest job for (channel, template, language, file), to resume: 1 found (moved into
 * j->row), 0 none (or --new), -1 with err. A finished job is not resumed: sending the same list
 * again needs --new. */
static int existing_job(struct job *j, const char *file, struct pl_error *err)
{
    struct pl_broadcast_row b;
    int found = 0;

    if (pl_store_broadcast_find(j->store, j->ch->id, j->row.template_name, j->row.language, file,
                                &b, &found, err) != 0)
        return -1;
    if (!found || j->o->fresh) {
        pl_broadcast_row_clear(&b);
        return 0;
    }
    if (strcmp(b.state, "done") == 0) {
        char when[32];
        time_t t = (time_t)b.finished_at;
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
        pl_error_set(err, "broadcast",
                     "%s was sent to every recipient of %s by %s (done %s); to send it to the "
                     "same list again, run with --new",
                     b.template_name, file, b.id, when);
        pl_broadcast_row_clear(&b);
        return -1;
    }
    pl_broadcast_row_clear(&j->row);
    j->row = b;
    return 1;
}

static int same_file(const struct pl_broadcast_row *b, struct pl_error *err)
{
    struct stat sb;

    if (stat(b->file, &sb) != 0)
        return pl_error_set(err, "broadcast", "%s: cannot read the list of %s: %s", b->file, b->id,
                            strerror(errno));
    if ((long long)sb.st_size != b->file_size || (long long)sb.st_mtime != b->file_mtime)
        return pl_error_set(err, "broadcast",
                            "%s changed while %s was importing it; restore it, or start a new "
                            "job with --new",
                            b->file, b->id);
    return 0;
}

/* One broadcast at a time per state file: an exclusive flock on "<state>.broadcast.lock", held
 * for the whole run and released by the kernel when the process ends, however it ends. Two runs
 * of one job would send its pending recipients twice. Returns the descriptor, or -1 with err. */
static int lock_state(const char *state, struct pl_error *err)
{
    char path[PATH_MAX], pid[32] = "";
    int fd;
    ssize_t n;

    snprintf(path, sizeof path, "%s.broadcast.lock", state);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return pl_error_set(err, "broadcast", "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        return pl_error_set(err, "broadcast",
                            "another parley broadcast is running on %s%s%s%s; one broadcast at a "
                            "time per state file",
                            state, pid[0] != '\0' ? " (pid " : "", pid, pid[0] != '\0' ? ")" : "");
    }
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, strlen(pid), 0) < 0) {
        /* the pid is only for the message above; the lock holds without it */
    }
    return fd;
}

static void job_free(struct job *j)
{
    pl_outbound_free(j->out);
    pl_templates_free(j->templates);
    pl_store_close(j->store);
    pl_broadcast_row_clear(&j->row);
    for (size_t i = 0; i < j->nanswers; i++) {
        free(j->answers[i].local_id);
        free(j->answers[i].wamid);
        free(j->answers[i].title);
    }
    free(j->answers);
    free(j->sm.header_name);
}

/* Open the list and read its header; map it onto the template. */
static int open_list(struct job *j, struct csv *c, struct colmap *m, const char *file,
                     struct pl_error *err)
{
    long long line;
    int r;

    if (csv_open(c, file, err) != 0)
        return -1;
    r = csv_next(c, &line, err);
    if (r == 0)
        return pl_error_set(err, "broadcast",
                            "%s:1: the list is empty (it needs a header line "
                            "with a wa_id column)",
                            file);
    if (r < 0)
        return -1;
    return colmap_build(m, c, j->tpl, err);
}

int pl_broadcast_run(const struct pl_broadcast_opts *o, enum pl_broadcast_end *end,
                     struct pl_error *err)
{
    const struct pl_config *cfg = o->cfg;
    struct job j;
    struct csv c;
    struct colmap m;
    struct sigaction sa, old_int, old_term;
    char file[PATH_MAX], id[64];
    const char *config = strcmp(cfg->path, "parley.json") == 0 ? NULL : cfg->path;
    int rc = -1, created = 0, lock = -1;

    memset(&j, 0, sizeof j);
    memset(&c, 0, sizeof c);
    memset(&m, 0, sizeof m);
    *end = PL_BROADCAST_DONE;
    j.o = o;
    j.cfg = cfg;
    j.lim = pl_rules_limits(pl_provider_kind_name(cfg->provider.kind));
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    j.store = pl_store_open(cfg->state, cfg->sync_full, err);
    if (j.store == NULL || (lock = lock_state(cfg->state, err)) < 0)
        goto out;
    if (o->resume != NULL) {
        int found = 0;
        if (pl_store_broadcast_get(j.store, o->resume, &j.row, &found, err) != 0)
            goto out;
        if (!found) {
            pl_error_set(err, "broadcast", "no broadcast job %s in %s", o->resume, cfg->state);
            goto out;
        }
        j.ch = pl_config_channel(cfg, j.row.channel);
        if (j.ch == NULL) {
            pl_error_set(err, "broadcast", "job %s is for channel %s, which %s no longer has",
                         j.row.id, j.row.channel, cfg->path);
            goto out;
        }
        snprintf(file, sizeof file, "%s", j.row.file);
    } else {
        j.ch = pl_config_channel(cfg, o->channel);
        if (j.ch == NULL) {
            pl_error_set(err, "broadcast", "no channel '%s' in %s", o->channel, cfg->path);
            goto out;
        }
        if (realpath(o->file, file) == NULL) {
            pl_error_set(err, "broadcast", "%s: cannot open: %s", o->file, strerror(errno));
            goto out;
        }
        j.row.template_name = strdup(o->template_name);
        j.row.language = strdup(o->language != NULL      ? o->language
                                : j.ch->language != NULL ? j.ch->language
                                                         : "en");
        if (j.row.template_name == NULL || j.row.language == NULL) {
            pl_error_set(err, "broadcast", "out of memory");
            goto out;
        }
        if (existing_job(&j, file, err) < 0)
            goto out;
    }
    if (load_templates(&j, err) != 0 || find_template(&j, err) != 0)
        goto out;
    j.rate = o->rate > 0 ? o->rate : j.row.rate > 0 ? j.row.rate : PL_BROADCAST_RATE;

    if (j.row.id == NULL) { /* a new job: the whole list is checked before anything is stored */
        long long records = 0;
        struct stat sb;
        if (open_list(&j, &c, &m, file, err) != 0 || check_list(&c, &records, err) != 0)
            goto out;
        csv_close(&c);
        colmap_free(&m);
        if (stat(file, &sb) != 0 || open_list(&j, &c, &m, file, err) != 0) {
            if (err->msg[0] == '\0')
                pl_error_set(err, "broadcast", "%s: %s", file, strerror(errno));
            goto out;
        }
        new_job_id(id, sizeof id);
        j.row.id = strdup(id);
        j.row.channel = strdup(j.ch->id);
        j.row.file = strdup(file);
        j.row.state = strdup("importing");
        if (j.row.id == NULL || j.row.channel == NULL || j.row.file == NULL ||
            j.row.state == NULL) {
            pl_error_set(err, "broadcast", "out of memory");
            goto out;
        }
        j.row.rate = j.rate;
        j.row.file_size = (long long)sb.st_size;
        j.row.file_mtime = (long long)sb.st_mtime;
        j.row.created_at = wall_now();
        if (pl_store_broadcast_create(j.store, &j.row, err) != 0)
            goto out;
        created = 1;
        fprintf(o->err, "broadcast %s: %s (%s) on %s to %lld row%s of %s at %g/s\n", j.row.id,
                j.row.template_name, j.row.language, j.ch->id, records, records == 1 ? "" : "s",
                file, j.rate);
        if (m.ignored[0] != '\0')
            fprintf(o->err, "note: %s: columns no template value comes from: %s\n", file,
                    m.ignored);
    } else {
        fprintf(o->err, "resuming %s (%s, %s)\n", j.row.id, j.row.state,
                j.row.stop_code != NULL ? j.row.stop_code : "");
        if (strcmp(j.row.state, "importing") == 0 &&
            (same_file(&j.row, err) != 0 || open_list(&j, &c, &m, j.row.file, err) != 0))
            goto out;
    }
    fflush(o->err);
    if (strcmp(j.row.state, "importing") == 0 && import_list(&j, &c, &m, err) != 0)
        goto out;
    csv_close(&c);
    colmap_free(&m);
    if (strcmp(j.row.state, "done") == 0) {
        report(&j, PL_BROADCAST_DONE, config);
        rc = 0;
        goto out;
    }

    j.out = pl_outbound_new(cfg, on_answer, &j, err);
    if (j.out == NULL)
        goto out;
    if (cfg->provider.kind == PL_PROVIDER_SANDBOX)
        pl_outbound_set_sink(j.out, no_sink, NULL);
    /* the sandbox answers each send before the next starts; a real provider has at most
     * max_connections in flight, and twice that waiting bounds the memory the sender uses */
    long conns = cfg->provider.max_connections > 0 ? cfg->provider.max_connections : 16;
    j.cap = cfg->provider.kind == PL_PROVIDER_SANDBOX ? SEND_BATCH : (size_t)(2 * conns);
    if (refresh(&j, err) != 0 ||
        pl_store_broadcast_set_state(j.store, j.row.id, "running", NULL, 0, j.rate, err) != 0)
        goto out;
    if (run_send(&j, err) != 0)
        goto out;
    if (j.stop_code == NULL)
        *end = PL_BROADCAST_DONE;
    else if (strcmp(j.stop_code, pl_code_name(PL_DAILY_LIMIT)) == 0)
        *end = PL_BROADCAST_DAILY_LIMIT;
    else
        *end = PL_BROADCAST_STOPPED;
    if (pl_store_broadcast_set_state(j.store, j.row.id,
                                     *end == PL_BROADCAST_DONE ? "done" : "stopped", j.stop_code,
                                     wall_now(), j.rate, err) != 0)
        goto out;
    report(&j, *end, config);
    rc = 0;
out:
    if (rc != 0 && j.row.id != NULL && j.store != NULL &&
        (created || o->resume != NULL || j.row.state != NULL))
        fprintf(o->err,
                "broadcast %s keeps what it did; resume it with: parley broadcast "
                "--resume %s%s%s\n",
                j.row.id, j.row.id, config != NULL ? " -c " : "", config != NULL ? config : "");
    csv_close(&c);
    colmap_free(&m);
    job_free(&j);
    if (lock >= 0)
        close(lock);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}

/* ---- `parley broadcast status` ---- */

/* Delivery of a job's messages, cumulative: each stage counts the messages that reached it at
 * least (a read message was delivered and sent too). */
struct delivery {
    long long by_state[PL_OUT_FAILED + 1];
    long long accepted, delivered, read;
    size_t n;
    struct {
        long code;
        long long count;
    } failed[32];
};

static int delivery_add(void *ud, enum pl_out_state st, long code, long long count)
{
    struct delivery *d = ud;
    d->by_state[st] += count;
    if (st == PL_OUT_SENT || st == PL_OUT_DELIVERED || st == PL_OUT_READ)
        d->accepted += count;
    if (st == PL_OUT_DELIVERED || st == PL_OUT_READ)
        d->delivered += count;
    if (st == PL_OUT_READ)
        d->read += count;
    if (st == PL_OUT_FAILED) {
        size_t i;
        for (i = 0; i < d->n && d->failed[i].code != code; i++)
            ;
        if (i == d->n && d->n < sizeof d->failed / sizeof d->failed[0]) {
            d->failed[i].code = code;
            d->failed[i].count = 0;
            d->n++;
        }
        if (i < d->n)
            d->failed[i].count += count;
    }
    return 0;
}

static void time_text(long long t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    if (t <= 0)
        snprintf(buf, size, "-");
    else
        strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", gmtime(&tt));
}

static json_t *codes_json(const struct tally *t, enum pl_rcpt_state st)
{
    json_t *o = json_object();
    for (size_t i = 0; i < t->n; i++)
        if (t->e[i].st == st && t->e[i].code[0] != '\0')
            json_object_set_new(o, t->e[i].code, json_integer(t->e[i].count));
    return o;
}

struct unsent {
    FILE *out;
    const char *stop_code; /* a stopped job's reason: why its pending recipients were not sent */
};

static int print_unsent(void *ud, long long line, const char *wa_id, enum pl_rcpt_state st,
                        const char *code, const char *detail)
{
    struct unsent *u = ud;
    const char *d = detail != NULL ? detail : "";

    if (code == NULL && st == PL_RCPT_PENDING && u->stop_code != NULL)
        code = u->stop_code;
    fprintf(u->out, "%lld,%s,%s,%s,\"", line, wa_id != NULL ? wa_id : "", pl_rcpt_state_name(st),
            code != NULL ? code : "");
    for (; *d != '\0'; d++) {
        if (*d == '"')
            fputc('"', u->out);
        fputc(*d, u->out);
    }
    fputs("\"\n", u->out);
    return 0;
}

static int show_job(const struct pl_status_opts *o, struct pl_store *s,
                    const struct pl_broadcast_row *b, struct pl_error *err)
{
    struct tally t;
    struct delivery d;
    char line[1200], created[40], finished[40];
    FILE *out = o->out;

    memset(&t, 0, sizeof t);
    memset(&d, 0, sizeof d);
    if (pl_store_rcpt_counts(s, b->id, tally_add, &t, err) != 0 ||
        pl_store_broadcast_delivery(s, b->id, delivery_add, &d, err) != 0)
        return -1;
    long long total = 0;
    for (int i = 0; i < PL_RCPT_STATES; i++)
        total += t.by_state[i];
    if (o->unsent) {
        struct unsent u = {out, strcmp(b->state, "stopped") == 0 ? b->stop_code : NULL};
        fprintf(out, "line,wa_id,state,code,detail\n");
        return pl_store_rcpt_unsent(s, b->id, print_unsent, &u, err);
    }
    if (o->json) {
        json_t *fails = json_object();
        for (size_t i = 0; i < d.n; i++) {
            char code[32];
            code_text(d.failed[i].code, code, sizeof code);
            json_object_set_new(fails, code, json_integer(d.failed[i].count));
        }
        json_t *root = json_pack(
            "{s:s,s:s,s:s?,s:s,s:s,s:s,s:s,s:f,s:I,s:I,"
            "s:{s:I,s:I,s:I,s:I,s:I,s:I},s:o,s:o,s:{s:I,s:I,s:I,s:I,s:I},s:o}",
            "job", b->id, "state", b->state, "stop_code", b->stop_code, "channel", b->channel,
            "template", b->template_name, "language", b->language, "file", b->file, "rate", b->rate,
            "created_at", (json_int_t)b->created_at, "finished_at", (json_int_t)b->finished_at,
            "recipients", "total", (json_int_t)total, "pending",
            (json_int_t)t.by_state[PL_RCPT_PENDING], "queued",
            (json_int_t)t.by_state[PL_RCPT_QUEUED], "sent", (json_int_t)t.by_state[PL_RCPT_SENT],
            "skipped", (json_int_t)t.by_state[PL_RCPT_SKIPPED], "failed",
            (json_int_t)t.by_state[PL_RCPT_FAILED], "skipped", codes_json(&t, PL_RCPT_SKIPPED),
            "failed", codes_json(&t, PL_RCPT_FAILED), "delivery", "queued",
            (json_int_t)d.by_state[PL_OUT_QUEUED], "sent", (json_int_t)d.accepted, "delivered",
            (json_int_t)d.delivered, "read", (json_int_t)d.read, "failed",
            (json_int_t)d.by_state[PL_OUT_FAILED], "delivery_failed", fails);
        if (root == NULL)
            return pl_error_set(err, "broadcast", "out of memory");
        json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', out);
        json_decref(root);
        return 0;
    }
    time_text(b->created_at, created, sizeof created);
    time_text(b->finished_at, finished, sizeof finished);
    fprintf(out, "job: %s\n", b->id);
    fprintf(out, "state: %s%s%s%s\n", b->state, b->stop_code != NULL ? " (" : "",
            b->stop_code != NULL ? b->stop_code : "", b->stop_code != NULL ? ")" : "");
    fprintf(out, "channel: %s\ntemplate: %s (%s)\nlist: %s\nrate: %g/s\n", b->channel,
            b->template_name, b->language, b->file, b->rate);
    fprintf(out, "created: %s\nfinished: %s\n", created, finished);
    fprintf(out, "recipients: %lld\n", total);
    fprintf(out, "sent: %lld\n", t.by_state[PL_RCPT_SENT]);
    by_code(&t, PL_RCPT_SKIPPED, line, sizeof line);
    fprintf(out, "skipped: %s\n", line);
    by_code(&t, PL_RCPT_FAILED, line, sizeof line);
    fprintf(out, "failed: %s\n", line);
    fprintf(out, "pending: %lld\nqueued: %lld\n", t.by_state[PL_RCPT_PENDING],
            t.by_state[PL_RCPT_QUEUED]);
    fprintf(out, "delivery: sent %lld, delivered %lld, read %lld, failed %lld, queued %lld\n",
            d.accepted, d.delivered, d.read, d.by_state[PL_OUT_FAILED], d.by_state[PL_OUT_QUEUED]);
    if (d.n > 0) {
        fprintf(out, "delivery failed:");
        for (size_t i = 0; i < d.n; i++) {
            char code[32];
            code_text(d.failed[i].code, code, sizeof code);
            fprintf(out, "%s %s %lld", i > 0 ? "," : "", code, d.failed[i].count);
        }
        fputc('\n', out);
    }
    return 0;
}

struct listing {
    const struct pl_status_opts *o;
    struct pl_store *s;
    json_t *jobs;
    int n;
};

static int list_job(void *ud, const struct pl_broadcast_row *b)
{
    struct listing *l = ud;
    if (l->jobs != NULL) {
        json_array_append_new(
            l->jobs, json_pack("{s:s,s:s,s:s?,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "job", b->id,
                               "state", b->state, "stop_code", b->stop_code, "channel", b->channel,
                               "template", b->template_name, "language", b->language, "created_at",
                               (json_int_t)b->created_at, "finished_at", (json_int_t)b->finished_at,
                               "total", (json_int_t)b->total, "sent", (json_int_t)b->sent,
                               "skipped", (json_int_t)b->skipped, "failed", (json_int_t)b->failed));
    } else {
        char created[40];
        time_text(b->created_at, created, sizeof created);
        fprintf(l->o->out,
                "%s  %-8s %s  %s (%s)  %s  recipients %lld: sent %lld, skipped %lld, "
                "failed %lld%s%s\n",
                b->id, b->state, b->channel, b->template_name, b->language, created, b->total,
                b->sent, b->skipped, b->failed, b->stop_code != NULL ? ", stopped: " : "",
                b->stop_code != NULL ? b->stop_code : "");
    }
    l->n++;
    return 0;
}

struct tpl_line {
    FILE *out;
    json_t *list;
    char channel[128], name[600];
    long long counts[5];
    int any;
};

static void tpl_flush(struct tpl_line *t)
{
    if (!t->any)
        return;
    if (t->list != NULL)
        json_array_append_new(t->list,
                              json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "channel", t->channel,
                                        "template", t->name, "queued", (json_int_t)t->counts[0],
                                        "sent", (json_int_t)t->counts[1], "delivered",
                                        (json_int_t)t->counts[2], "read", (json_int_t)t->counts[3],
                                        "failed", (json_int_t)t->counts[4]));
    else
        fprintf(t->out, "  %s %s: queued %lld, sent %lld, delivered %lld, read %lld, failed %lld\n",
                t->channel, t->name, t->counts[0], t->counts[1], t->counts[2], t->counts[3],
                t->counts[4]);
    memset(t->counts, 0, sizeof t->counts);
    t->any = 0;
}

static int tpl_count(void *ud, const char *channel, const char *name, const char *state,
                     long long count)
{
    static const char *const states[5] = {"queued", "sent", "delivered", "read", "failed"};
    struct tpl_line *t = ud;

    if (t->any && (strcmp(t->channel, channel) != 0 || strcmp(t->name, name) != 0))
        tpl_flush(t);
    snprintf(t->channel, sizeof t->channel, "%s", channel);
    snprintf(t->name, sizeof t->name, "%s", name);
    for (int i = 0; i < 5; i++)
        if (strcmp(states[i], state) == 0)
            t->counts[i] += count;
    t->any = 1;
    return 0;
}

int pl_broadcast_status(const struct pl_status_opts *o, struct pl_error *err)
{
    struct pl_store *s = pl_store_open(o->cfg->state, o->cfg->sync_full, err);
    int rc = -1;

    if (s == NULL)
        return -1;
    if (o->job != NULL) {
        struct pl_broadcast_row b;
        int found = 0;
        if (pl_store_broadcast_get(s, o->job, &b, &found, err) == 0) {
            if (!found)
                pl_error_set(err, "broadcast", "no broadcast job %s in %s", o->job, o->cfg->state);
            else
                rc = show_job(o, s, &b, err);
        }
        pl_broadcast_row_clear(&b);
        pl_store_close(s);
        return rc;
    }
    struct listing l = {o, s, o->json ? json_array() : NULL, 0};
    struct tpl_line t;
    memset(&t, 0, sizeof t);
    t.out = o->out;
    t.list = o->json ? json_array() : NULL;
    if (!o->json)
        fprintf(o->out, "broadcasts (newest first):\n");
    if (pl_store_broadcast_list(s, 20, list_job, &l, err) != 0)
        goto out;
    if (!o->json && l.n == 0)
        fprintf(o->out, "  none\n");
    if (!o->json)
        fprintf(o->out, "template messages by state (all of them, not only broadcasts):\n");
    if (pl_store_outbox_template_counts(s, tpl_count, &t, err) != 0)
        goto out;
    tpl_flush(&t);
    if (o->json) {
        json_t *root = json_pack("{s:O,s:O}", "jobs", l.jobs, "templates", t.list);
        json_dumpf(root, o->out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', o->out);
        json_decref(root);
    }
    rc = 0;
out:
    json_decref(l.jobs);
    json_decref(t.list);
    pl_store_close(s);
    return rc;
}
