/* chat.c - `parley chat`: talk to a channel's real scenario in the terminal, through the real
 * engine and rules, with the sandbox provider in-process. Bot messages are shown as a phone shows
 * them, with numbered choices; commands do what a phone can't (move the clock, fake a delivery
 * status, fire a trigger, show the session, start over). */
#include "chat.h"

#include <editline/readline.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "customer.h"
#include "engine.h"
#include "log.h"
#include "luaapi.h"
#include "sandbox.h"

struct chat {
    struct pl_config *cfg;
    const char *stdlib_dir;
    struct pl_engine *engine;
    struct pl_customer cust;
    char state[96]; /* temporary state folder */
    int color;
    char *versions; /* the channel's last seen version + error, to tell about reloads */
};

static const char *paint(const struct chat *c, const char *code)
{
    return c->color ? code : "";
}

#define RED   "\033[31m"
#define GREEN "\033[32m"
#define DIM   "\033[2m"
#define BOLD  "\033[1m"
#define RESET "\033[0m"

static void on_sent(void *ud, const char *channel, const char *contact, const char *local_id,
                    const char *wamid, const char *body)
{
    struct chat *c = ud;
    (void)contact;
    (void)local_id;
    printf("%s", paint(c, GREEN));
    pl_sandbox_render(channel, body, stdout);
    printf("%s", paint(c, RESET));
    pl_customer_remember(&c->cust, wamid, body);
}

/* Tell the user when the script was reloaded (or failed to) since the last look. */
static void show_reloads(struct chat *c)
{
    char *health = pl_engine_health(c->engine);
    json_t *h = health != NULL ? json_loads(health, 0, NULL) : NULL;
    json_t *ch = json_object_get(json_object_get(h, "channels"), c->cust.channel->id);
    const char *version = json_string_value(json_object_get(ch, "version"));
    const char *error = json_string_value(json_object_get(ch, "last_error"));
    char now[1100];

    snprintf(now, sizeof now, "%s|%s", version != NULL ? version : "", error != NULL ? error : "");
    if (c->versions != NULL && strcmp(c->versions, now) != 0) {
        if (error != NULL)
            printf("%s! the edited script does not load; the previous version keeps "
                   "answering:\n  %s%s\n",
                   paint(c, RED), error, paint(c, RESET));
        else
            printf("%s~ %s reloaded (version %s)%s\n", paint(c, DIM), c->cust.channel->script,
                   version, paint(c, RESET));
    }
    free(c->versions);
    c->versions = strdup(now);
    json_decref(h);
    free(health);
}

/* Before a handler runs: an edited script is picked up, and told, before its answer. */
static void reload_now(struct chat *c)
{
    pl_engine_reload_changed(c->engine);
    show_reloads(c);
}

/* After a handler ran: a failure's message (from the engine's {"error": {...}} answer). Frees
 * body. */
static void show_answer(struct chat *c, int status, char *body)
{
    if (status != 200) {
        json_t *j = body != NULL ? json_loads(body, 0, NULL) : NULL;
        const char *msg = pl_engine_error_message(j);
        printf("%sx %s%s\n", paint(c, RED), msg != NULL ? msg : "the handler failed",
               paint(c, RESET));
        json_decref(j);
    }
    free(body);
}

static void run(struct chat *c, struct pl_event *ev)
{
    char *body = NULL;
    reload_now(c);
    int status = pl_engine_run(c->engine, ev, &body); /* before body is read */
    show_answer(c, status, body);
    show_reloads(c);
}

static int start(struct chat *c, struct pl_error *err)
{
    pl_customer_forget(&c->cust);
    free(c->cfg->state);
    char path[160];
    snprintf(path, sizeof path, "%s/chat.db", c->state);
    unlink(path);
    c->cfg->state = strdup(path);
    c->engine = pl_engine_new(c->cfg, c->stdlib_dir, err);
    if (c->engine == NULL)
        return -1;
    pl_engine_set_sink(c->engine, on_sent, c);
    return 0;
}

static long long parse_duration(const char *s)
{
    char *end;
    double n = strtod(s, &end);
    int unit = *end == 's' || *end == '\0' ? 1
               : *end == 'm'               ? 60
               : *end == 'h'               ? 3600
               : *end == 'd'               ? 86400
                                           : 0;
    if (end == s || unit == 0 || (*end != '\0' && end[1] != '\0') || n < 0)
        return -1;
    return (long long)(n * unit);
}

static void help(const struct chat *c)
{
    printf("%s"
           "  text       send it as the customer\n"
           "  N          press choice N of the last message (buttons, list rows)\n"
           "  /wait D    move the clock on (90s, 30m, 25h, 2d): see the 24-hour window close\n"
           "  /delivered /read   the last message was delivered / read\n"
           "  /fail CODE the last message failed with a provider error code (e.g. 131026)\n"
           "  /trigger NAME [JSON]   an external system posts this event (on_trigger)\n"
           "  /session   show chat.session\n"
           "  /new       start over as a new contact\n"
           "  /quit      leave (also Ctrl-D)\n"
           "%s",
           paint(c, DIM), paint(c, RESET));
}

/* Handle one line. Returns 0 to go on, 1 to quit. */
static int command(struct chat *c, char *line)
{
    struct pl_event ev;
    char err[1024];
    long long now = pl_engine_now(c->engine);
    char *arg;

    while (*line == ' ')
        line++;
    if (*line == '\0')
        return 0;
    if (line[0] != '/') {
        char *end;
        long n = strtol(line, &end, 10);
        if (*end == '\0' && n > 0 && n < 100) {
            if (pl_customer_press_nth(&c->cust, now, (int)n, &ev, err, sizeof err) != 0) {
                printf("%s%s%s\n", paint(c, RED), err, paint(c, RESET));
                return 0;
            }
        } else {
            pl_customer_text(&c->cust, now, line, &ev);
        }
        run(c, &ev);
        return 0;
    }
    arg = strchr(line, ' ');
    if (arg != NULL) {
        *arg++ = '\0';
        while (*arg == ' ')
            arg++;
    }
    if (strcmp(line, "/quit") == 0 || strcmp(line, "/exit") == 0)
        return 1;
    if (strcmp(line, "/help") == 0) {
        help(c);
    } else if (strcmp(line, "/wait") == 0) {
        long long s = arg != NULL ? parse_duration(arg) : -1;
        if (s < 0) {
            printf("%s/wait needs a duration: 90s, 30m, 25h, 2d%s\n", paint(c, RED),
                   paint(c, RESET));
            return 0;
        }
        pl_engine_advance(c->engine, s);
        printf("%s~ %lld s later%s\n", paint(c, DIM), s, paint(c, RESET));
    } else if (strcmp(line, "/read") == 0 || strcmp(line, "/delivered") == 0 ||
               strcmp(line, "/fail") == 0) {
        long code = arg != NULL ? strtol(arg, NULL, 10) : 131026;
        const char *st = strcmp(line, "/fail") == 0 ? "failed" : line + 1;
        if (pl_customer_status(&c->cust, now, st, code, &ev, err, sizeof err) != 0) {
            printf("%s%s%s\n", paint(c, RED), err, paint(c, RESET));
            return 0;
        }
        if (strcmp(st, "failed") == 0)
            printf("%s~ the last message failed with %ld (on_status runs)%s\n", paint(c, DIM), code,
                   paint(c, RESET));
        else
            printf("%s~ the last message was %s (on_status runs)%s\n", paint(c, DIM), st,
                   paint(c, RESET));
        run(c, &ev);
    } else if (strcmp(line, "/trigger") == 0) {
        char *name = arg, *json = NULL, *body = NULL;
        json_t *data = NULL;
        if (name == NULL || *name == '\0') {
            printf("%s/trigger NAME [JSON]%s\n", paint(c, RED), paint(c, RESET));
            return 0;
        }
        json = strchr(name, ' ');
        if (json != NULL) {
            *json++ = '\0';
            json_error_t jerr;
            data = json_loads(json, 0, &jerr);
            if (!json_is_object(data)) {
                printf("%s/trigger: the data must be a JSON object: %s%s\n", paint(c, RED),
                       data == NULL ? jerr.text : "not an object", paint(c, RESET));
                json_decref(data);
                return 0;
            }
        }
        reload_now(c);
        int status = pl_engine_trigger(c->engine, c->cust.channel->id, c->cust.contact, name, data,
                                       NULL, &body);
        json_decref(data);
        show_answer(c, status, body);
    } else if (strcmp(line, "/session") == 0) {
        char *s = pl_engine_session(c->engine, c->cust.channel->id, c->cust.contact);
        json_t *j = pl_session_parse(s);
        char *pretty = j != NULL ? json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
        printf("%s%s%s\n", paint(c, DIM), pretty != NULL ? pretty : "{}", paint(c, RESET));
        free(pretty);
        json_decref(j);
        free(s);
    } else if (strcmp(line, "/new") == 0) {
        /* a new contact on a fresh state: a first-time customer again */
        struct pl_error e;
        pl_engine_free(c->engine);
        c->engine = NULL;
        c->cust.counter += 1000;
        if (start(c, &e) != 0) {
            printf("%s%s%s\n", paint(c, RED), e.msg, paint(c, RESET));
            return 1;
        }
        printf("%s~ a new conversation%s\n", paint(c, DIM), paint(c, RESET));
    } else {
        printf("%sunknown command %s (try /help)%s\n", paint(c, RED), line, paint(c, RESET));
    }
    return 0;
}

int pl_chat_run(struct pl_config *cfg, const char *channel, const char *from, const char *name,
                const char *stdlib_dir)
{
    struct chat c;
    struct pl_error err;
    int tty = isatty(STDIN_FILENO), rc = 0;

    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    c.stdlib_dir = stdlib_dir;
    c.color = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL;
    c.cust.channel = channel != NULL ? pl_config_channel(cfg, channel) : &cfg->channels[0];
    if (c.cust.channel == NULL) {
        fprintf(stderr, "parley: no channel '%s' in %s\n", channel, cfg->path);
        return 1;
    }
    snprintf(c.cust.contact, sizeof c.cust.contact, "%s", from != NULL ? from : "79991234567");
    snprintf(c.cust.name, sizeof c.cust.name, "%s", name != NULL ? name : "");
    cfg->provider.kind = PL_PROVIDER_SANDBOX;
    snprintf(c.state, sizeof c.state, "/tmp/parley-chat-XXXXXX");
    if (mkdtemp(c.state) == NULL) {
        perror("parley: mkdtemp");
        return 1;
    }
    pl_log_set_level((enum pl_log_level)(PL_LOG_ERROR + 1)); /* we show what matters ourselves */
    if (start(&c, &err) != 0) {
        fprintf(stderr, "parley: %s\n", err.msg);
        rmdir(c.state);
        return 1;
    }
    show_reloads(&c);
    if (c.versions != NULL && strchr(c.versions, '|')[1] != '\0') {
        fprintf(stderr, "parley: %s does not load:\n  %s\n", c.cust.channel->script,
                strchr(c.versions, '|') + 1);
        rc = 1;
        goto out;
    }
    printf("%sChatting with channel %s (%s) as %s. Type a message, a number to press a button, "
           "/help for more.%s\n",
           paint(&c, BOLD), c.cust.channel->id, c.cust.channel->script, c.cust.contact,
           paint(&c, RESET));
    for (;;) {
        char *line;
        if (tty) {
            line = readline("you> ");
            if (line != NULL && *line != '\0')
                add_history(line);
        } else {
            char buf[4096];
            if (fgets(buf, sizeof buf, stdin) == NULL)
                break;
            buf[strcspn(buf, "\r\n")] = '\0';
            printf("you> %s\n", buf);
            line = strdup(buf);
        }
        if (line == NULL)
            break;
        int quit = command(&c, line);
        free(line);
        fflush(stdout);
        if (quit)
            break;
    }
out:
    pl_engine_free(c.engine);
    pl_customer_forget(&c.cust);
    free(c.versions);
    char path[160];
    snprintf(path, sizeof path, "%s/chat.db", c.state);
    for (const char *suffix = ""; suffix != NULL; suffix = *suffix == '\0'               ? "-wal"
                                                           : strcmp(suffix, "-wal") == 0 ? "-shm"
                                                                                         : NULL) {
        char f[180];
        snprintf(f, sizeof f, "%s%s", path, suffix);
        unlink(f);
    }
    rmdir(c.state);
    return rc;
}
