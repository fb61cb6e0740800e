/* main.c - the `parley` command line: serve, check, post, chat, test, broadcast, templates,
 * version. Parses arguments, wires the subsystems together and maps outcomes to exit statuses
 * (0 ok, 1 a reported problem, 2 bad usage). */
#include <curl/curl.h>
#include <jansson.h>
#include <lua.h>
#include <microhttpd.h>
#include <sqlite3.h>

#include <errno.h>
#include <malloc.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broadcast.h"
#include "chat.h"
#include "config.h"
#include "engine.h"
#include "http.h"
#include "ingest.h"
#include "json.h"
#include "log.h"
#include "luaapi.h"
#include "metrics.h"
#include "post.h"
#include "rules.h"
#include "scenario.h"
#include "sync.h"
#include "templates.h"

#define EXIT_PROBLEM 1
#define EXIT_USAGE   2

static const char usage[] =
    "usage: parley <command> [options]\n"
    "\n"
    "  serve   [-c parley.json]                  run the webhook server and scenarios\n"
    "  chat    [-c parley.json] [--channel ID] [--from WA_ID] [--name NAME]\n"
    "                                            talk to a scenario in the terminal (sandbox)\n"
    "  check   [-c parley.json | SCRIPT.lua...]  load config and scripts; report problems\n"
    "  test    [-v] [TEST.lua...]                run scenario tests (default: tests/scenarios,\n"
    "                                            examples/*/tests)\n"
    "  post    [-c parley.json] [--channel ID] [--from WA_ID] [--name NAME]\n"
    "          (TEXT | --press ID [--title T] | --list ID)\n"
    "                                            post a signed sample webhook to a running "
    "serve\n"
    "  broadcast [-c parley.json] --channel ID --template NAME --to LIST.csv [--lang L]\n"
    "            [--rate N] [--new] [--quiet] [--stats]\n"
    "                                            send a template to every contact of a list, as "
    "a\n"
    "                                            durable job (N messages/s, default 80)\n"
    "  broadcast [-c parley.json] --resume JOB [--rate N] [--quiet] [--stats]\n"
    "                                            continue a stopped or killed job\n"
    "  broadcast status [-c parley.json] [JOB] [--json] [--unsent]\n"
    "                                            a job's recipients and delivery (no JOB: the "
    "recent\n"
    "                                            jobs and the counts per template)\n"
    "  templates sync [-c parley.json] --channel ID\n"
    "                                            fetch the channel's templates from the provider "
    "into\n"
    "                                            its registry file\n"
    "  version                                   print the version\n"
    "\n"
    "-c defaults to ./parley.json. Exit status: 0 ok, 1 a reported problem, 2 bad usage.\n";

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "parley: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    return EXIT_USAGE;
}

/* Options shared by the commands; each command says which it accepts. */
struct args {
    const char *config;
    const char *channel;
    const char *from;
    const char *name;
    const char *press;
    const char *title;
    const char *list;
    const char *template_name;
    const char *to;
    const char *rate;
    const char *lang;
    const char *resume;
    const char **rest;
    int nrest;
};

static int parse_args(int argc, char **argv, struct args *a, const char *allowed)
{
    static const struct {
        const char *flag, *key;
    } flags[] = {{"-c", "c"},           {"--config", "c"},  {"--channel", "channel"},
                 {"--from", "from"},    {"--name", "name"}, {"--press", "press"},
                 {"--title", "title"},  {"--list", "list"}, {"--template", "template"},
                 {"--to", "to"},        {"--rate", "rate"}, {"--lang", "lang"},
                 {"--resume", "resume"}};

    memset(a, 0, sizeof *a);
    a->config = "parley.json";
    a->rest = calloc((size_t)argc + 1, sizeof *a->rest);
    if (a->rest == NULL)
        return -1;
    for (int i = 2; i < argc; i++) {
        const char *key = NULL;
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
            if (strcmp(argv[i], flags[f].flag) == 0)
                key = flags[f].key;
        if (key == NULL) {
            if (argv[i][0] == '-' && argv[i][1] != '\0')
                return bad_usage("unknown option %s", argv[i]);
            a->rest[a->nrest++] = argv[i];
            continue;
        }
        char want[24];
        snprintf(want, sizeof want, " %s ", key);
        if (strstr(allowed, want) == NULL)
            return bad_usage("option %s does not apply to this command", argv[i]);
        if (i + 1 >= argc)
            return bad_usage("option %s needs a value", argv[i]);
        const char *v = argv[++i];
        if (strcmp(key, "c") == 0)
            a->config = v;
        else if (strcmp(key, "channel") == 0)
            a->channel = v;
        else if (strcmp(key, "from") == 0)
            a->from = v;
        else if (strcmp(key, "name") == 0)
            a->name = v;
        else if (strcmp(key, "press") == 0)
            a->press = v;
        else if (strcmp(key, "title") == 0)
            a->title = v;
        else if (strcmp(key, "list") == 0)
            a->list = v;
        else if (strcmp(key, "template") == 0)
            a->template_name = v;
        else if (strcmp(key, "to") == 0)
            a->to = v;
        else if (strcmp(key, "rate") == 0)
            a->rate = v;
        else if (strcmp(key, "lang") == 0)
            a->lang = v;
        else if (strcmp(key, "resume") == 0)
            a->resume = v;
    }
    return 0;
}

/* Load a->config into cfg. On failure print why, free a's arguments and return -1. */
static int load_config(struct args *a, struct pl_config *cfg)
{
    struct pl_error err;
    if (pl_config_load(a->config, cfg, &err) == 0)
        return 0;
    fprintf(stderr, "parley: %s\n", err.msg);
    free(a->rest);
    return -1;
}

/* The stdlib folder: $PARLEY_STDLIB, else <binary>/../stdlib, else ./stdlib. Static buffer. */
static const char *stdlib_dir(void)
{
    static char dir[PATH_MAX];
    const char *env = getenv("PARLEY_STDLIB");
    char exe[PATH_MAX];
    ssize_t n;

    if (env != NULL && *env != '\0')
        return env;
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 3; up++) {
            char *slash = strrchr(exe, '/');
            if (slash == NULL)
                break;
            *slash = '\0';
            if (strlen(exe) + sizeof "/stdlib" > sizeof dir)
                break;
            memcpy(dir, exe, strlen(exe));
            memcpy(dir + strlen(exe), "/stdlib", sizeof "/stdlib");
            if (access(dir, R_OK) == 0)
                return dir;
        }
    }
    return "stdlib";
}

static void register_secrets(const struct pl_config *cfg)
{
    pl_log_add_secret(cfg->app_secret);
    pl_log_add_secret(cfg->verify_token);
    pl_log_add_secret(cfg->trigger_token);
    pl_log_add_secret(cfg->provider.token);
}

/* SIGHUP: read the config again and hand it to the engine; a bad file changes nothing. */
static void reconfigure(struct pl_engine *engine, const char *path)
{
    struct pl_config *cfg = calloc(1, sizeof *cfg);
    struct pl_error err;

    if (cfg == NULL || pl_config_load(path, cfg, &err) != 0) {
        pl_log(PL_LOG_ERROR, PL_FIELDS("event", "reconfigure", "code", "config"),
               "SIGHUP: %s; the running configuration stays",
               cfg != NULL ? err.msg : "out of memory");
        free(cfg);
        return;
    }
    register_secrets(cfg);
    pl_engine_reconfigure(engine, cfg);
}

static int cmd_serve(int argc, char **argv)
{
    struct args a;
    struct pl_config cfg;
    struct pl_error err;
    struct pl_engine *engine = NULL;
    struct pl_http *http = NULL;
    struct pl_ingest *ingest = NULL;
    sigset_t sigs;
    int sig, rc = EXIT_PROBLEM;

    if ((rc = parse_args(argc, argv, &a, " c ")) != 0) {
        free(a.rest);
        return rc;
    }
    rc = EXIT_PROBLEM;
    if (a.nrest > 0) {
        rc = bad_usage("serve takes no arguments (got %s)", a.rest[0]);
        free(a.rest);
        return rc;
    }
    if (load_config(&a, &cfg) != 0)
        return EXIT_PROBLEM;
    pl_log_set_level((enum pl_log_level)pl_log_parse_level(cfg.log_level));
    register_secrets(&cfg);

    /* A handful of threads: two malloc arenas are plenty, and keep freed memory in fewer
     * places (RSS stays close to what is in use). */
    mallopt(M_ARENA_MAX, 2);
    /* Signals are taken by this thread alone, with sigwait. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* a file size limit (ulimit -f) makes a write fail (EFBIG) instead of killing the process:
     * the state file's error is answered and reported like a full disk */
    signal(SIGXFSZ, SIG_IGN);

    engine = pl_engine_new(&cfg, stdlib_dir(), &err);
    if (engine == NULL || pl_engine_start(engine, &err) != 0) {
        pl_log(PL_LOG_ERROR, PL_FIELDS("event", "start"), "%s", err.msg);
        goto out;
    }
    struct pl_http_opts hopts = {
        .host = cfg.listen_host,
        .port = cfg.listen_port,
        .app_secret = cfg.app_secret,
        .verify_token = cfg.verify_token,
        .trigger_token = cfg.trigger_token,
        .engine = engine,
    };
    ingest = pl_ingest_start(cfg.state, cfg.sync_full, engine, &err);
    if (ingest == NULL) {
        pl_log(PL_LOG_ERROR, PL_FIELDS("event", "start"), "%s", err.msg);
        goto out;
    }
    hopts.ingest = ingest;
    http = pl_http_start(&hopts, &err);
    if (http == NULL) {
        pl_log(PL_LOG_ERROR, PL_FIELDS("event", "start"), "%s", err.msg);
        goto out;
    }
    char where[300], nch[16];
    snprintf(where, sizeof where, "%s:%d", cfg.listen_host, pl_http_port(http));
    snprintf(nch, sizeof nch, "%zu", cfg.nchannels);
    pl_log(PL_LOG_INFO,
           PL_FIELDS("event", "start", "listen", where, "provider",
                     pl_provider_kind_name(cfg.provider.kind), "channels", nch, "version",
                     PL_VERSION),
           "parley is serving");
    while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
        reconfigure(engine, a.config);
    pl_log(PL_LOG_INFO, PL_FIELDS("event", "stop", "signal", sig == SIGINT ? "INT" : "TERM"),
           "stopping: finishing queued events and sends");
    rc = 0;
out:
    pl_http_stop(http);
    pl_ingest_stop(ingest);
    if (engine != NULL)
        pl_engine_stop(engine, 5000);
    pl_engine_free(engine);
    pl_config_free(&cfg);
    pl_metrics_reset();
    pl_log_clear_secrets();
    free(a.rest);
    return rc;
}

/* Print a load problem as "file:line: code: detail". */
static void print_problem(const char *file, const struct pl_error *err)
{
    const char *msg = err->msg, *p = msg;
    /* "path:123: rest" → keep the position, put the code in front of the rest */
    const char *colon = strchr(p, ':');
    while (colon != NULL) {
        const char *q = colon + 1;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q > colon + 1 && q[0] == ':' && q[1] == ' ') {
            const char *rest = q + 2;
            size_t clen = strlen(err->code);
            if (strncmp(rest, err->code, clen) == 0 && rest[clen] == ':')
                printf("%s\n", msg);
            else
                printf("%.*s: %s: %s\n", (int)(q - msg), msg, err->code, rest);
            return;
        }
        colon = strchr(colon + 1, ':');
    }
    /* no line: drop a leading "<file>: " the message may already have */
    size_t n = strlen(file);
    if (strncmp(msg, file, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        msg += n + 2;
    printf("%s: %s: %s\n", file, err->code, msg);
}

static int check_script(const char *path, const char *channel, const struct pl_channel_config *c)
{
    struct pl_script_opts opts = {
        .channel = channel,
        .path = path,
        .stdlib_dir = stdlib_dir(),
        .limits = pl_rules_limits("cloud-api"),
        .cpu_ms = c != NULL ? c->cpu_ms : 200,
        .memory_mb = c != NULL ? c->memory_mb : 64,
    };
    struct pl_error err;
    struct pl_script *s = pl_script_load(&opts, &err);
    if (s == NULL) {
        print_problem(path, &err);
        return 1;
    }
    pl_script_free(s);
    return 0;
}

/* Report every template of a registry file that breaks the definition rules. */
static int check_templates(const struct pl_channel_config *c, enum pl_provider_kind kind)
{
    struct pl_tpl_problem *problems = NULL;
    size_t n = 0;
    struct pl_error err;
    struct pl_templates *t;

    if (c->templates == NULL)
        return 0;
    t = pl_templates_load(c->templates, pl_rules_limits(pl_provider_kind_name(kind)), &problems, &n,
                          &err);
    if (t == NULL) {
        printf("%s: templates: %s\n", c->templates, err.msg);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        printf("%s: %s: %s: %s\n", c->templates, problems[i].where, pl_code_name(problems[i].code),
               problems[i].detail);
    free(problems);
    pl_templates_free(t);
    return n > 0;
}

static int cmd_check(int argc, char **argv)
{
    struct args a;
    struct pl_config cfg;
    struct pl_error err;
    int rc, problems = 0;

    if ((rc = parse_args(argc, argv, &a, " c ")) != 0) {
        free(a.rest);
        return rc;
    }
    pl_log_set_level(PL_LOG_ERROR);
    if (a.nrest > 0) {
        for (int i = 0; i < a.nrest; i++)
            problems += check_script(a.rest[i], "check", NULL);
        if (problems == 0)
            printf("ok: %d script%s\n", a.nrest, a.nrest == 1 ? "" : "s");
        free(a.rest);
        return problems > 0 ? EXIT_PROBLEM : 0;
    }
    if (pl_config_load(a.config, &cfg, &err) != 0) {
        /* err.msg is "<file>: <key path>: <problem>": put the code after the file */
        size_t n = strlen(a.config);
        if (strncmp(err.msg, a.config, n) == 0 && err.msg[n] == ':' && err.msg[n + 1] == ' ')
            printf("%s: config: %s\n", a.config, err.msg + n + 2);
        else if (strncmp(err.msg, a.config, n) == 0 && err.msg[n] == ':')
            printf("%s\n", err.msg); /* "<file>:<line>:<col>: …" already says where */
        else
            printf("%s: config: %s\n", a.config, err.msg);
        free(a.rest);
        return EXIT_PROBLEM;
    }
    for (size_t i = 0; i < cfg.nchannels; i++) {
        problems += check_script(cfg.channels[i].script, cfg.channels[i].id, &cfg.channels[i]);
        problems += check_templates(&cfg.channels[i], cfg.provider.kind);
    }
    if (problems == 0)
        printf("ok: %s: %zu channel%s\n", a.config, cfg.nchannels, cfg.nchannels == 1 ? "" : "s");
    pl_config_free(&cfg);
    free(a.rest);
    return problems > 0 ? EXIT_PROBLEM : 0;
}

static int cmd_post(int argc, char **argv)
{
    struct args a;
    struct pl_config cfg;
    struct pl_error err;
    const struct pl_channel_config *ch;
    char url[400];
    int rc, status;

    if ((rc = parse_args(argc, argv, &a, " c channel from name press title list ")) != 0) {
        free(a.rest);
        return rc;
    }
    if ((a.nrest != 1 && a.press == NULL && a.list == NULL) ||
        (a.nrest > 0 && (a.press != NULL || a.list != NULL))) {
        free(a.rest);
        return bad_usage("post needs exactly one of TEXT, --press ID or --list ID%s", "");
    }
    if (load_config(&a, &cfg) != 0)
        return EXIT_PROBLEM;
    ch = a.channel != NULL ? pl_config_channel(&cfg, a.channel) : &cfg.channels[0];
    if (ch == NULL) {
        fprintf(stderr, "parley: no channel '%s' in %s\n", a.channel, a.config);
        pl_config_free(&cfg);
        free(a.rest);
        return EXIT_PROBLEM;
    }
    snprintf(url, sizeof url, "http://%s%s%s:%d/webhook", strchr(cfg.listen_host, ':') ? "[" : "",
             cfg.listen_host, strchr(cfg.listen_host, ':') ? "]" : "", cfg.listen_port);
    struct pl_post p = {
        .url = url,
        .app_secret = cfg.app_secret,
        .phone_number_id = ch->phone_number_id,
        .from = a.from != NULL ? a.from : "79991234567",
        .name = a.name,
        .text = a.nrest > 0 ? a.rest[0] : NULL,
        .press = a.press,
        .press_title = a.title,
        .list = a.list,
    };
    status = pl_post_send(&p, &err);
    if (status < 0)
        fprintf(stderr, "parley: %s\n", err.msg);
    else
        printf("POST %s -> %d\n", url, status);
    pl_config_free(&cfg);
    free(a.rest);
    return status == 200 ? 0 : EXIT_PROBLEM;
}

static int cmd_chat(int argc, char **argv)
{
    struct args a;
    struct pl_config cfg;
    int rc;

    if ((rc = parse_args(argc, argv, &a, " c channel from name ")) != 0) {
        free(a.rest);
        return rc;
    }
    if (a.nrest > 0) {
        rc = bad_usage("chat takes no arguments (got %s)", a.rest[0]);
        free(a.rest);
        return rc;
    }
    pl_config_env_optional(1); /* the sandbox needs no secret */
    if (load_config(&a, &cfg) != 0)
        return EXIT_PROBLEM;
    rc = pl_chat_run(&cfg, a.channel, a.from, a.name, stdlib_dir());
    pl_config_free(&cfg);
    free(a.rest);
    return rc;
}

static int cmd_test(int argc, char **argv)
{
    struct args a;
    int rc, verbose = 0;

    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "-v") == 0) {
            verbose = 1;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof *argv);
            argc--;
            i--;
        }
    if ((rc = parse_args(argc, argv, &a, " ")) != 0) {
        free(a.rest);
        return rc;
    }
    rc = pl_scenario_run(a.rest, a.nrest, stdlib_dir(), verbose);
    free(a.rest);
    return rc;
}

/* Remove a flag without a value (--json, --stats, …) from argv; 1 when it was there. */
static int take_flag(int *argc, char **argv, const char *flag)
{
    int found = 0;
    for (int i = 2; i < *argc; i++)
        if (strcmp(argv[i], flag) == 0) {
            found = 1;
            memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i) * sizeof *argv);
            (*argc)--;
            i--;
        }
    return found;
}

static int cmd_broadcast_status(int argc, char **argv)
{
    struct args a;
    struct pl_config cfg;
    struct pl_error err;
    int rc, json, unsent;

    json = take_flag(&argc, argv, "--json");
    unsent = take_flag(&argc, argv, "--unsent");
    if ((rc = parse_args(argc, argv, &a, " c ")) != 0) {
        free(a.rest);
        return rc;
    }
    if (a.nrest > 1 || (unsent && a.nrest == 0)) {
        free(a.rest);
        return bad_usage("broadcast status takes one job id%s",
                         unsent ? " (--unsent needs it)" : "");
    }
    pl_config_env_optional(1); /* reading the state file needs no secret */
    if (load_config(&a, &cfg) != 0)
        return EXIT_PROBLEM;
    struct pl_status_opts so = {
        .cfg = &cfg,
        .job = a.nrest > 0 ? a.rest[0] : NULL,
        .json = json,
        .unsent = unsent,
        .out = stdout,
    };
    rc = pl_broadcast_status(&so, &err) == 0 ? 0 : EXIT_PROBLEM;
    if (rc != 0)
        fprintf(stderr, "parley: %s\n", err.msg);
    pl_config_free(&cfg);
    free(a.rest);
    return rc;
}

static int cmd_broadcast(int argc, char **argv)
{
    struct args a;
    struct pl_config cfg;
    struct pl_error err;
    enum pl_broadcast_end end;
    double rate = 0;
    int rc, fresh, quiet, stats;

    /* `broadcast status`: the first word that is not an option or an option's value (so
     * `broadcast -c x.json status JOB` works too); it is dropped before the options parse */
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        if (strcmp(argv[i], "status") == 0) {
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof *argv);
            return cmd_broadcast_status(argc - 1, argv);
        }
        break;
    }
    fresh = take_flag(&argc, argv, "--new");
    quiet = take_flag(&argc, argv, "--quiet");
    stats = take_flag(&argc, argv, "--stats");
    if ((rc = parse_args(argc, argv, &a, " c channel template to rate lang resume ")) != 0) {
        free(a.rest);
        return rc;
    }
    if (a.nrest > 0) {
        rc = bad_usage("broadcast takes no arguments (got %s)", a.rest[0]);
        free(a.rest);
        return rc;
    }
    if (a.resume != NULL &&
        (a.channel != NULL || a.template_name != NULL || a.to != NULL || a.lang != NULL || fresh)) {
        free(a.rest);
        return bad_usage("--resume JOB takes no --channel, --template, --to, --lang or --new%s",
                         "");
    }
    if (a.resume == NULL && (a.channel == NULL || a.template_name == NULL || a.to == NULL)) {
        free(a.rest);
        return bad_usage("broadcast needs --channel ID, --template NAME and --to LIST.csv (or "
                         "--resume JOB)%s",
                         "");
    }
    if (a.rate != NULL) {
        char *end_ = NULL;
        rate = strtod(a.rate, &end_);
        if (end_ == a.rate || *end_ != '\0' || !(rate > 0) || rate > 1000000) {
            rc = bad_usage("--rate must be a number of messages per second above 0 (got %s)",
                           a.rate);
            free(a.rest);
            return rc;
        }
    }
    if (load_config(&a, &cfg) != 0)
        return EXIT_PROBLEM;
    register_secrets(&cfg);
    int tty = isatty(STDERR_FILENO);
    /* a bar owns the terminal line: the report and the state file hold every failure, so the
     * per-message log lines stay out of its way; without a bar, warnings and errors show */
    int level = pl_log_parse_level(cfg.log_level);
    pl_log_set_level(quiet || tty ? (enum pl_log_level)(PL_LOG_ERROR + 1)
                                  : (enum pl_log_level)(level > PL_LOG_WARN ? level : PL_LOG_WARN));
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    struct pl_broadcast_opts bo = {
        .cfg = &cfg,
        .channel = a.channel,
        .template_name = a.template_name,
        .language = a.lang,
        .file = a.to,
        .resume = a.resume,
        .rate = rate,
        .fresh = fresh,
        .progress = quiet ? PL_PROGRESS_NONE
                    : tty ? PL_PROGRESS_BAR
                          : PL_PROGRESS_LINES,
        .stats = stats,
        .out = stdout,
        .err = stderr,
    };
    if (pl_broadcast_run(&bo, &end, &err) != 0) {
        fprintf(stderr, "parley: %s\n", err.msg);
        rc = EXIT_PROBLEM;
    } else {
        rc = end == PL_BROADCAST_STOPPED ? EXIT_PROBLEM : 0;
    }
    pl_config_free(&cfg);
    pl_metrics_reset();
    pl_log_clear_secrets();
    free(a.rest);
    return rc;
}

static int cmd_templates(int argc, char **argv)
{
    struct args a;
    struct pl_config cfg;
    struct pl_error err;
    struct pl_sync_result r;
    const struct pl_channel_config *ch;
    int rc;

    if (argc < 3 || strcmp(argv[2], "sync") != 0)
        return bad_usage("templates needs a subcommand: sync%s", "");
    memmove(&argv[2], &argv[3], (size_t)(argc - 2) * sizeof *argv);
    argc--;
    if ((rc = parse_args(argc, argv, &a, " c channel ")) != 0) {
        free(a.rest);
        return rc;
    }
    if (a.nrest > 0 || a.channel == NULL) {
        free(a.rest);
        return bad_usage("templates sync needs --channel ID and takes no arguments%s", "");
    }
    if (load_config(&a, &cfg) != 0)
        return EXIT_PROBLEM;
    register_secrets(&cfg);
    ch = pl_config_channel(&cfg, a.channel);
    if (ch == NULL) {
        fprintf(stderr, "parley: no channel '%s' in %s\n", a.channel, a.config);
        rc = EXIT_PROBLEM;
    } else if (pl_templates_sync(&cfg, ch, &r, &err) != 0) {
        fprintf(stderr, "parley: templates sync: %s\n", err.msg);
        rc = EXIT_PROBLEM;
    } else {
        /* the problems as `parley check` prints them; the file keeps those templates, the
         * server leaves them out when it loads it */
        for (size_t i = 0; i < r.nproblems; i++)
            printf("%s: %s: %s: %s\n", ch->templates, r.problems[i].where,
                   pl_code_name(r.problems[i].code), r.problems[i].detail);
        free(r.problems);
        if (cfg.provider.kind == PL_PROVIDER_SANDBOX)
            printf("wrote %s: %zu sample template%s (sandbox provider)\n", ch->templates,
                   r.templates, r.templates == 1 ? "" : "s");
        else
            printf("wrote %s: %zu template%s from %zu page%s%s\n", ch->templates, r.templates,
                   r.templates == 1 ? "" : "s", r.pages, r.pages == 1 ? "" : "s",
                   r.nproblems > 0 ? " (the ones listed above will not be sendable)" : "");
        rc = 0;
    }
    pl_config_free(&cfg);
    pl_log_clear_secrets();
    free(a.rest);
    return rc;
}

static int cmd_version(void)
{
    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    printf("parley %s (%s, libmicrohttpd %s, libcurl %s, jansson %s, SQLite %s)\n", PL_VERSION,
           LUA_RELEASE, MHD_get_version(), cv->version, jansson_version_str(),
           sqlite3_libversion());
    return 0;
}

int main(int argc, char **argv)
{
    int rc;

    if (argc < 2)
        return bad_usage("no command given%s", "");
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)
        return cmd_version();
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pl_json_scratch_init(); /* jansson's allocator is a global: set it before any thread starts */
    if (strcmp(argv[1], "serve") == 0)
        rc = cmd_serve(argc, argv);
    else if (strcmp(argv[1], "check") == 0)
        rc = cmd_check(argc, argv);
    else if (strcmp(argv[1], "post") == 0)
        rc = cmd_post(argc, argv);
    else if (strcmp(argv[1], "test") == 0)
        rc = cmd_test(argc, argv);
    else if (strcmp(argv[1], "chat") == 0)
        rc = cmd_chat(argc, argv);
    else if (strcmp(argv[1], "broadcast") == 0)
        rc = cmd_broadcast(argc, argv);
    else if (strcmp(argv[1], "templates") == 0)
        rc = cmd_templates(argc, argv);
    else
        rc = bad_usage("unknown command '%s'", argv[1]);
    curl_global_cleanup();
    return rc;
}
