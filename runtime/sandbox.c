/* sandbox.c - the built-in fake provider. Takes the same request bodies Cloud API takes,
 * answers as Meta does (`wamid.` ids, Meta's error envelope for bodies it cannot read), and
 * prints every message as a phone would show it: header, body, footer, buttons, list rows. */
#include "sandbox.h"

#include <jansson.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

static void print_lines(FILE *out, const char *prefix, const char *text)
{
    const char *p = text;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
        fprintf(out, "%s%.*s\n", prefix, (int)n, p);
        p += n;
        if (*p == '\n')
            p++;
    }
}

static void render_media(FILE *out, const char *kind, json_t *media)
{
    fprintf(out, "  [%s] %s", kind, str(media, "link"));
    if (*str(media, "filename") != '\0')
        fprintf(out, " (%s)", str(media, "filename"));
    fputc('\n', out);
    if (*str(media, "caption") != '\0')
        print_lines(out, "  ", str(media, "caption"));
}

static void render_interactive(FILE *out, json_t *ia)
{
    const char *type = str(ia, "type");
    json_t *header = json_object_get(ia, "header"), *action = json_object_get(ia, "action");
    json_t *v;
    size_t i;

    if (header != NULL) {
        const char *ht = str(header, "type");
        if (strcmp(ht, "text") == 0)
            fprintf(out, "  *%s*\n", str(header, "text"));
        else
            render_media(out, ht, json_object_get(header, ht));
    }
    print_lines(out, "  ", str(json_object_get(ia, "body"), "text"));
    if (json_object_get(ia, "footer") != NULL)
        fprintf(out, "  _%s_\n", str(json_object_get(ia, "footer"), "text"));
    if (strcmp(type, "button") == 0) {
        fputs(" ", out);
        json_array_foreach(json_object_get(action, "buttons"), i, v)
            fprintf(out, " [%zu: %s]", i + 1, str(json_object_get(v, "reply"), "title"));
        fputc('\n', out);
    } else if (strcmp(type, "cta_url") == 0) {
        json_t *p = json_object_get(action, "parameters");
        fprintf(out, "  [%s -> %s]\n", str(p, "display_text"), str(p, "url"));
    } else if (strcmp(type, "cta") == 0) {
        json_array_foreach(json_object_get(action, "buttons"), i, v)
        {
            if (strcmp(str(v, "type"), "call") == 0)
                fprintf(out, "  [%s, call %s]\n", str(v, "display_text"), str(v, "phone_number"));
            else
                fprintf(out, "  [%s -> %s]\n", str(v, "display_text"), str(v, "url"));
        }
    } else if (strcmp(type, "list") == 0) {
        json_t *sec, *row;
        size_t s, r, n = 0;
        fprintf(out, "  [≡ %s]\n", str(action, "button"));
        json_array_foreach(json_object_get(action, "sections"), s, sec)
        {
            if (*str(sec, "title") != '\0')
                fprintf(out, "    %s\n", str(sec, "title"));
            json_array_foreach(json_object_get(sec, "rows"), r, row)
            {
                fprintf(out, "    %zu. %s", ++n, str(row, "title"));
                if (*str(row, "description") != '\0')
                    fprintf(out, " - %s", str(row, "description"));
                fputc('\n', out);
            }
        }
    }
}

static void render_template(FILE *out, json_t *t)
{
    json_t *c;
    size_t i;
    fprintf(out, "  [template %s (%s)]\n", str(t, "name"),
            str(json_object_get(t, "language"), "code"));
    json_array_foreach(json_object_get(t, "components"), i, c)
    {
        json_t *p;
        size_t j;
        fprintf(out, "    %s%s%s:", str(c, "type"), json_object_get(c, "index") ? " " : "",
                json_object_get(c, "index") ? str(c, "index") : "");
        json_array_foreach(json_object_get(c, "parameters"), j, p)
        {
            const char *pt = str(p, "type");
            const char *name = str(p, "parameter_name");
            if (*name != '\0')
                fprintf(out, " %s=", name);
            else
                fputc(' ', out);
            if (strcmp(pt, "payload") == 0)
                fprintf(out, "\"%s\"", str(p, "payload"));
            else if (strcmp(pt, "text") == 0)
                fprintf(out, "\"%s\"", str(p, "text"));
            else
                fprintf(out, "<%s>", pt);
        }
        fputc('\n', out);
    }
}

/* Render a parsed body; returns 0, or -1 when it is not a message body the sandbox knows. */
static int render(const char *channel, json_t *root, FILE *out)
{
    const char *type = str(root, "type");
    const char *to = str(root, "to");
    json_t *payload = json_object_get(root, type);

    if (*to == '\0')
        to = str(root, "recipient");
    if (strcmp(str(root, "messaging_product"), "whatsapp") != 0 || *to == '\0' ||
        !json_is_object(payload))
        return -1;
    if (out == NULL)
        return 0; /* checked, not shown */
    pthread_mutex_lock(&out_lock);
    fprintf(out, "[sandbox] %s -> %s (%s)\n", channel, to, type);
    if (strcmp(type, "text") == 0)
        print_lines(out, "  ", str(payload, "body"));
    else if (strcmp(type, "interactive") == 0)
        render_interactive(out, payload);
    else if (strcmp(type, "template") == 0)
        render_template(out, payload);
    else
        render_media(out, type, payload);
    fflush(out);
    pthread_mutex_unlock(&out_lock);
    return 0;
}

void pl_sandbox_render(const char *channel, const char *body, FILE *out)
{
    json_t *root = json_loads(body, 0, NULL);
    if (root != NULL)
        render(channel, root, out != NULL ? out : stdout);
    json_decref(root);
}

int pl_sandbox_send(const char *channel, const char *body, char **response, FILE *out)
{
    static unsigned long long counter;
    json_t *root = json_loads(body, 0, NULL);
    char wamid[64];
    int status = 200;

    if (root == NULL || render(channel, root, out) != 0) {
        *response = strdup("{\"error\":{\"message\":\"(#100) Invalid parameter\",\"type\":"
                           "\"OAuthException\",\"code\":100,\"error_data\":{\"messaging_product\":"
                           "\"whatsapp\",\"details\":\"The sandbox could not read this body\"}}}");
        json_decref(root);
        return 400;
    }
    snprintf(wamid, sizeof wamid, "wamid.SBX%08lx%012llx", (unsigned long)time(NULL),
             __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    json_t *resp =
        json_pack("{s:s,s:[{s:s,s:s}],s:[{s:s}]}", "messaging_product", "whatsapp", "contacts",
                  "input", str(root, "to"), "wa_id", str(root, "to"), "messages", "id", wamid);
    *response = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(resp);
    json_decref(root);
    return status;
}

/* The view's buttons of an interactive payload: titles and ids in order. */
static void view_buttons(json_t *view, json_t *ia)
{
    json_t *action = json_object_get(ia, "action"), *v, *titles = json_array(), *ids = json_array();
    const char *type = str(ia, "type");
    size_t i;

    if (strcmp(type, "button") == 0) {
        json_array_foreach(json_object_get(action, "buttons"), i, v)
        {
            json_array_append_new(titles, json_string(str(json_object_get(v, "reply"), "title")));
            json_array_append_new(ids, json_string(str(json_object_get(v, "reply"), "id")));
        }
    } else if (strcmp(type, "cta_url") == 0) {
        json_t *p = json_object_get(action, "parameters");
        json_array_append_new(titles, json_string(str(p, "display_text")));
        json_object_set_new(view, "url", json_string(str(p, "url")));
    } else if (strcmp(type, "cta") == 0) {
        json_array_foreach(json_object_get(action, "buttons"), i, v)
        {
            json_array_append_new(titles, json_string(str(v, "display_text")));
            if (strcmp(str(v, "type"), "call") == 0)
                json_object_set_new(view, "phone", json_string(str(v, "phone_number")));
            else
                json_object_set_new(view, "url", json_string(str(v, "url")));
        }
    } else if (strcmp(type, "list") == 0) {
        json_t *sec, *row, *rows = json_array(), *row_ids = json_array(), *descs = json_array();
        size_t s, r;
        json_array_foreach(json_object_get(action, "sections"), s, sec)
            json_array_foreach(json_object_get(sec, "rows"), r, row)
        {
            json_array_append_new(rows, json_string(str(row, "title")));
            json_array_append_new(row_ids, json_string(str(row, "id")));
            json_array_append_new(descs, json_string(str(row, "description")));
        }
        json_object_set_new(view, "list",
                            json_pack("{s:s,s:o,s:o,s:o}", "button", str(action, "button"), "rows",
                                      rows, "ids", row_ids, "descriptions", descs));
    }
    if (json_array_size(titles) > 0) {
        json_object_set_new(view, "buttons", titles);
        json_object_set_new(view, "button_ids", ids);
    } else {
        json_decref(titles);
        json_decref(ids);
    }
}

json_t *pl_sandbox_view(const char *body)
{
    json_t *root = json_loads(body, 0, NULL), *view, *payload;
    const char *type;

    if (root == NULL)
        return NULL;
    type = str(root, "type");
    payload = json_object_get(root, type);
    view = json_pack("{s:s,s:s}", "type", type, "to",
                     *str(root, "to") != '\0' ? str(root, "to") : str(root, "recipient"));
    if (strcmp(type, "text") == 0) {
        json_object_set_new(view, "text", json_string(str(payload, "body")));
    } else if (strcmp(type, "interactive") == 0) {
        json_t *header = json_object_get(payload, "header");
        const char *ht = str(header, "type");
        json_object_set_new(view, "type", json_string(str(payload, "type")));
        json_object_set_new(view, "text",
                            json_string(str(json_object_get(payload, "body"), "text")));
        if (strcmp(ht, "text") == 0)
            json_object_set_new(view, "header", json_string(str(header, "text")));
        else if (*ht != '\0')
            json_object_set_new(view, ht, json_string(str(json_object_get(header, ht), "link")));
        if (json_object_get(payload, "footer") != NULL)
            json_object_set_new(view, "footer",
                                json_string(str(json_object_get(payload, "footer"), "text")));
        view_buttons(view, payload);
    } else if (strcmp(type, "template") == 0) {
        json_t *c, *params = json_array(), *named = json_object(), *buttons = json_array();
        size_t i, j;
        json_object_set_new(view, "template", json_string(str(payload, "name")));
        json_object_set_new(view, "language",
                            json_string(str(json_object_get(payload, "language"), "code")));
        json_array_foreach(json_object_get(payload, "components"), i, c)
        {
            json_t *p;
            const char *ct = str(c, "type");
            json_array_foreach(json_object_get(c, "parameters"), j, p)
            {
                const char *pt = str(p, "type");
                const char *v = strcmp(pt, "payload") == 0 ? str(p, "payload") : str(p, "text");
                if (strcmp(ct, "body") == 0 && *str(p, "parameter_name") != '\0')
                    json_object_set_new(named, str(p, "parameter_name"), json_string(v));
                else if (strcmp(ct, "body") == 0)
                    json_array_append_new(params, json_string(v));
                else if (strcmp(ct, "header") == 0)
                    json_object_set_new(view, "header",
                                        json_string(strcmp(pt, "text") == 0
                                                        ? v
                                                        : str(json_object_get(p, pt), "link")));
                else if (strcmp(ct, "button") == 0)
                    json_array_append_new(buttons, json_string(v));
            }
        }
        json_object_set_new(view, "params", json_object_size(named) > 0 ? named : params);
        if (json_object_size(named) > 0)
            json_decref(params);
        else
            json_decref(named);
        json_object_set_new(view, "button_values", buttons);
    } else {
        json_object_set_new(view, type, json_string(str(payload, "link")));
        if (json_object_get(payload, "caption") != NULL)
            json_object_set_new(view, "text", json_string(str(payload, "caption")));
        if (json_object_get(payload, "filename") != NULL)
            json_object_set_new(view, "filename", json_string(str(payload, "filename")));
    }
    json_decref(root);
    return view;
}
