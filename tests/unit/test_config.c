/* test_config.c - parley.json loading: one table row per accepted or rejected config, then the
 * values a good config yields (defaults, `$NAME`, paths, channel order, lookups, file errors).
 * Scripts live in a fresh mkdtemp folder, so the test runs from any working directory. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

static char tmpdir[] = "/tmp/pl_config_test_XXXXXX";

/* The JSON in the tables is written with ' for " to stay readable; this converts it. */
static char *dq(const char *s)
{
    char *t = strdup(s);
    for (char *p = t; *p != '\0'; p++)
        if (*p == '\'')
            *p = '"';
    return t;
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* Parse q-text (with ' for ") as "parley.json" in tmpdir. */
static int parse(const char *qtext, struct pl_config *cfg, struct pl_error *err)
{
    char *text = dq(qtext);
    int rc = pl_config_parse(text, "parley.json", tmpdir, cfg, err);
    free(text);
    return rc;
}

static int is_zero(const struct pl_config *cfg)
{
    static const struct pl_config zero;
    return memcmp(cfg, &zero, sizeof zero) == 0;
}

/* Secret values used below: no error message may contain them. */
static const char *const secrets[] = {"s3cret",  "v3rify",      "t0ken", "envs3cret",
                                      "trigg3r", "40440440440", NULL};

#define SECRETS "'app_secret':'s3cret','verify_token':'v3rify'"
#define SANDBOX "'provider':{'kind':'sandbox'}"
#define CLOUD   "'provider':{'kind':'cloud-api','url':'https://graph.example/v21.0','token':'t0ken'}"
#define MAIN    "'main':{'phone_number_id':'123','script':'demo.lua'"
/* A config that is valid with empty arguments: top-level extras, provider, channel extras. */
#define CFG(top, provider, chan) "{" SECRETS top "," provider ",'channels':{" MAIN chan "}}}"
/* The tail of a sandbox config with one good channel, after the secrets. */
#define REST "," SANDBOX ",'channels':{" MAIN "}}}"
/* A sandbox config whose channels object is body. */
#define CHANNELS(body) "{" SECRETS "," SANDBOX ",'channels':{" body "}}"

struct env {
    const char *name, *value; /* value NULL: unset */
};

struct row {
    const char *name;
    const char *json;
    struct env env[3];
    const char *err; /* NULL: must load; otherwise a substring of the message */
};

static const struct row rows[] = {
    /* accepted */
    {"minimal sandbox config loads", CFG("", SANDBOX, ""), {{0}}, NULL},
    {"cloud-api config with every key loads",
     "{'listen':'0.0.0.0:9000','state':'db/p.db'," SECRETS ",'trigger_token':'trigg3r',"
     "'log_level':'debug','provider':{'kind':'cloud-api','url':'http://localhost:1/v1/',"
     "'token':'t0ken','max_connections':4,'timeout_ms':500},'channels':{'main':{"
     "'phone_number_id':'123','script':'demo.lua','templates':'t.json','language':'pt_BR',"
     "'waba_id':'42','daily_limit':0,'cpu_ms':60000,'memory_mb':4096}}}",
     {{0}},
     NULL},
    {"three-letter language loads", CFG("", SANDBOX, ",'language':'fil'"), {{0}}, NULL},
    {"listen on [::1] loads", CFG(",'listen':'[::1]:0'", SANDBOX, ""), {{0}}, NULL},
    {"listen on localhost loads", CFG(",'listen':'localhost:65535'", SANDBOX, ""), {{0}}, NULL},
    {"sandbox ignores url and token, even unset $NAME",
     CFG("", "'provider':{'kind':'sandbox','url':'nonsense','token':'$PL_TEST_UNSET'}", ""),
     {{"PL_TEST_UNSET", NULL}},
     NULL},
    {"$NAME set for a secret loads",
     CFG(",'trigger_token':'$PL_TEST_SECRET'", SANDBOX, ""),
     {{"PL_TEST_SECRET", "envs3cret"}},
     NULL},
    {"$NAME for an integer loads",
     CFG("", SANDBOX, ",'daily_limit':'$PL_TEST_INT'"),
     {{"PL_TEST_INT", "1000"}},
     NULL},
    {"$NAME for a script path loads",
     "{" SECRETS "," SANDBOX ",'channels':{'main':{'phone_number_id':'$PL_TEST_PHONE',"
     "'script':'$PL_TEST_SCRIPT'}}}",
     {{"PL_TEST_PHONE", "555"}, {"PL_TEST_SCRIPT", "other.lua"}},
     NULL},
    {"$$ gives a literal $",
     CFG(",'trigger_token':'$$PL_TEST_UNSET'", SANDBOX, ""),
     {{"PL_TEST_UNSET", NULL}},
     NULL},

    /* the document */
    {"top level must be an object",
     "[]",
     {{0}},
     "parley.json: expected a JSON object at the top level, got array"},
    {"syntax error names line and column", "{\n  'listen': ,\n}", {{0}}, "parley.json:2:13: "},
    {"empty text is a syntax error", "", {{0}}, "parley.json:1:0: "},
    {"syntax error does not quote a string token",
     "{'app_secret' 's3cret'}",
     {{0}},
     "parley.json:1:22: ':' expected"},
    {"duplicate key is a syntax error",
     "{'listen':'a','listen':'b'}",
     {{0}},
     "duplicate object key"},

    /* required keys */
    {"app_secret missing",
     "{'verify_token':'v3rify'," SANDBOX ",'channels':{" MAIN "}}}",
     {{0}},
     "parley.json: app_secret: required key is missing"},
    {"verify_token missing",
     "{'app_secret':'s3cret'," SANDBOX ",'channels':{" MAIN "}}}",
     {{0}},
     "parley.json: verify_token: required key is missing"},
    {"provider missing",
     "{" SECRETS ",'channels':{" MAIN "}}}",
     {{0}},
     "parley.json: provider: required key is missing"},
    {"channels missing",
     "{" SECRETS "," SANDBOX "}",
     {{0}},
     "parley.json: channels: required key is missing"},
    {"provider.kind missing",
     CFG("", "'provider':{}", ""),
     {{0}},
     "parley.json: provider.kind: required key is missing"},
    {"phone_number_id missing",
     "{" SECRETS "," SANDBOX ",'channels':{'main':{'script':'demo.lua'}}}",
     {{0}},
     "parley.json: channels.main.phone_number_id: required key is missing"},
    {"script missing",
     "{" SECRETS "," SANDBOX ",'channels':{'main':{'phone_number_id':'1'}}}",
     {{0}},
     "parley.json: channels.main.script: required key is missing"},
    {"empty channels object",
     "{" SECRETS "," SANDBOX ",'channels':{}}",
     {{0}},
     "parley.json: channels: at least one channel is required"},
    {"cloud-api without url",
     CFG("", "'provider':{'kind':'cloud-api','token':'t0ken'}", ""),
     {{0}},
     "parley.json: provider.url: required key is missing"},
    {"cloud-api without token",
     CFG("", "'provider':{'kind':'cloud-api','url':'https://x.example'}", ""),
     {{0}},
     "parley.json: provider.token: required key is missing"},

    /* types */
    {"app_secret as integer",
     "{'app_secret':5,'verify_token':'v'}",
     {{0}},
     "parley.json: app_secret: expected a string, got integer"},
    {"provider as array",
     CFG("", "'provider':[]", ""),
     {{0}},
     "parley.json: provider: expected an object, got array"},
    {"channels as string",
     "{" SECRETS "," SANDBOX ",'channels':'main'}",
     {{0}},
     "parley.json: channels: expected an object, got string"},
    {"channel as integer",
     "{" SECRETS "," SANDBOX ",'channels':{'main':5}}",
     {{0}},
     "parley.json: channels.main: expected an object, got integer"},
    {"daily_limit as string",
     CFG("", SANDBOX, ",'daily_limit':'250'"),
     {{0}},
     "parley.json: channels.main.daily_limit: expected an integer, got string"},
    {"cpu_ms as real",
     CFG("", SANDBOX, ",'cpu_ms':2.5"),
     {{0}},
     "parley.json: channels.main.cpu_ms: expected an integer, got real"},
    {"phone_number_id as integer",
     "{" SECRETS "," SANDBOX ",'channels':{'main':{'phone_number_id':123,'script':'demo.lua'}}}",
     {{0}},
     "channels.main.phone_number_id: expected a string, got integer (put it in quotes)"},
    {"log_level as boolean",
     CFG(",'log_level':true", SANDBOX, ""),
     {{0}},
     "parley.json: log_level: expected a string, got boolean"},
    {"trigger_token as null",
     CFG(",'trigger_token':null", SANDBOX, ""),
     {{0}},
     "parley.json: trigger_token: expected a string, got null"},
    {"max_connections as object",
     CFG("", "'provider':{'kind':'sandbox','max_connections':{}}", ""),
     {{0}},
     "parley.json: provider.max_connections: expected an integer, got object"},
    {"sandbox token as integer",
     CFG("", "'provider':{'kind':'sandbox','token':1}", ""),
     {{0}},
     "parley.json: provider.token: expected a string, got integer"},

    /* unknown keys */
    {"unknown top-level key with suggestion",
     CFG(",'lisen':'x'", SANDBOX, ""),
     {{0}},
     "parley.json: lisen: unknown key (did you mean \"listen\"?)"},
    {"unknown top-level key without suggestion",
     CFG(",'colour':'x'", SANDBOX, ""),
     {{0}},
     "parley.json: colour: unknown key"},
    {"unknown provider key with suggestion",
     CFG("", "'provider':{'kind':'sandbox','tokn':'x'}", ""),
     {{0}},
     "parley.json: provider.tokn: unknown key (did you mean \"token\"?)"},
    {"unknown channel key: swapped letters",
     "{" SECRETS "," SANDBOX ",'channels':{'insurance':{'phone_number_id':'1','scirpt':'x'}}}",
     {{0}},
     "parley.json: channels.insurance.scirpt: unknown key (did you mean \"script\"?)"},
    {"unknown key with a newline is escaped",
     CFG(",'a\\nb':1", SANDBOX, ""),
     {{0}},
     "parley.json: a\\x0ab: unknown key"},

    /* the $ rule */
    {"$NAME unset",
     "{'app_secret':'$PL_TEST_SECRET','verify_token':'v3rify'" REST,
     {{"PL_TEST_SECRET", NULL}},
     "parley.json: app_secret: environment variable PL_TEST_SECRET is not set"},
    {"$NAME empty for a required secret",
     "{'app_secret':'$PL_TEST_SECRET','verify_token':'v3rify'" REST,
     {{"PL_TEST_SECRET", ""}},
     "parley.json: app_secret: environment variable PL_TEST_SECRET is empty"},
    {"$NAME unset in a channel",
     CFG("", SANDBOX, ",'waba_id':'$PL_TEST_UNSET'"),
     {{"PL_TEST_UNSET", NULL}},
     "parley.json: channels.main.waba_id: environment variable PL_TEST_UNSET is not set"},
    {"$NAME unset for an integer",
     CFG("", SANDBOX, ",'cpu_ms':'$PL_TEST_UNSET'"),
     {{"PL_TEST_UNSET", NULL}},
     "parley.json: channels.main.cpu_ms: environment variable PL_TEST_UNSET is not set"},
    {"$NAME not an integer",
     CFG("", SANDBOX, ",'cpu_ms':'$PL_TEST_INT'"),
     {{"PL_TEST_INT", "12ms"}},
     "parley.json: channels.main.cpu_ms: environment variable PL_TEST_INT is not an integer"},
    {"$NAME integer out of range",
     CFG("", SANDBOX, ",'cpu_ms':'$PL_TEST_INT'"),
     {{"PL_TEST_INT", "0"}},
     "parley.json: channels.main.cpu_ms: the value of $PL_TEST_INT is out of range (1..60000)"},
    {"a literal integer out of range is shown",
     CFG("", SANDBOX, ",'cpu_ms':0"),
     {{0}},
     "parley.json: channels.main.cpu_ms: 0 is out of range (1..60000)"},
    /* a secret's variable put under the wrong key: the message names it, never its value */
    {"secret as listen",
     CFG(",'listen':'$PL_TEST_SECRET'", SANDBOX, ""),
     {{"PL_TEST_SECRET", "envs3cret"}},
     "parley.json: listen: the value of $PL_TEST_SECRET must be host:port"},
    {"secret as sync",
     CFG(",'sync':'$PL_TEST_SECRET'", SANDBOX, ""),
     {{"PL_TEST_SECRET", "envs3cret"}},
     "parley.json: sync: the value of $PL_TEST_SECRET is not one of normal, full"},
    {"secret as log_level",
     CFG(",'log_level':'$PL_TEST_SECRET'", SANDBOX, ""),
     {{"PL_TEST_SECRET", "envs3cret"}},
     "parley.json: log_level: the value of $PL_TEST_SECRET is not one of debug"},
    {"secret as provider.kind",
     CFG("", "'provider':{'kind':'$PL_TEST_SECRET'}", ""),
     {{"PL_TEST_SECRET", "envs3cret"}},
     "parley.json: provider.kind: the value of $PL_TEST_SECRET is not \"cloud-api\""},
    {"secret as phone_number_id",
     CHANNELS("'c':{'phone_number_id':'$PL_TEST_SECRET','script':'demo.lua'}"),
     {{"PL_TEST_SECRET", "envs3cret"}},
     "parley.json: channels.c.phone_number_id: the value of $PL_TEST_SECRET must be 1-64 digits"},
    {"secret as language",
     CFG("", SANDBOX, ",'language':'$PL_TEST_SECRET'"),
     {{"PL_TEST_SECRET", "envs3cret"}},
     "parley.json: channels.main.language: the value of $PL_TEST_SECRET is not a language code"},
    {"secret as waba_id",
     CFG("", SANDBOX, ",'waba_id':'$PL_TEST_SECRET'"),
     {{"PL_TEST_SECRET", "envs3cret"}},
     "parley.json: channels.main.waba_id: the value of $PL_TEST_SECRET must be 1-64 digits"},
    {"secret as script",
     CHANNELS("'c':{'phone_number_id':'123','script':'$PL_TEST_SECRET'}"),
     {{"PL_TEST_SECRET", "envs3cret"}},
     "parley.json: channels.c.script: the value of $PL_TEST_SECRET: No such file or directory"},
    {"a digits-only secret as queue_max",
     CFG(",'queue_max':'$PL_TEST_INT'", SANDBOX, ""),
     {{"PL_TEST_INT", "40440440440"}},
     "parley.json: queue_max: the value of $PL_TEST_INT is out of range (100..10000000)"},
    {"a digits-only secret as a second channel's phone_number_id",
     CHANNELS("'a':{'phone_number_id':'40440440440','script':'demo.lua'},"
              "'b':{'phone_number_id':'$PL_TEST_INT','script':'demo.lua'}"),
     {{"PL_TEST_INT", "40440440440"}},
     "parley.json: channels.b.phone_number_id: the value of $PL_TEST_INT is already used by "
     "channel \"a\""},
    {"$$ is a string, not an integer",
     CFG("", SANDBOX, ",'cpu_ms':'$$5'"),
     {{0}},
     "parley.json: channels.main.cpu_ms: expected an integer, got string"},
    {"malformed $ reference",
     "{'app_secret':'$1s3cret','verify_token':'v3rify'" REST,
     {{0}},
     "parley.json: app_secret: a value starting with \"$\" must be $NAME"},
    {"empty literal secret",
     "{'app_secret':'','verify_token':'v3rify'" REST,
     {{0}},
     "parley.json: app_secret: must not be empty"},
    {"empty trigger_token",
     CFG(",'trigger_token':''", SANDBOX, ""),
     {{0}},
     "parley.json: trigger_token: must not be empty"},

    /* files */
    {"missing script",
     CHANNELS("'main':{'phone_number_id':'1','script':'nope.lua'}"),
     {{0}},
     "/nope.lua: No such file or directory"},
    {"script is a directory",
     CHANNELS("'main':{'phone_number_id':'1','script':'adir'}"),
     {{0}},
     "/adir: not a regular file"},

    /* listen */
    {"listen without port",
     CFG(",'listen':'127.0.0.1'", SANDBOX, ""),
     {{0}},
     "parley.json: listen: \"127.0.0.1\" must be host:port"},
    {"listen port 70000",
     CFG(",'listen':'127.0.0.1:70000'", SANDBOX, ""),
     {{0}},
     "parley.json: listen: \"127.0.0.1:70000\": port 70000 is out of range (0..65535)"},
    {"listen port not a number",
     CFG(",'listen':'127.0.0.1:http'", SANDBOX, ""),
     {{0}},
     "port must be a number 0..65535"},
    {"listen empty port",
     CFG(",'listen':'127.0.0.1:'", SANDBOX, ""),
     {{0}},
     "port must be a number 0..65535"},
    {"listen garbage host",
     CFG(",'listen':'my host:80'", SANDBOX, ""),
     {{0}},
     "parley.json: listen: \"my host:80\": host is not an IPv4 address or \"localhost\""},
    {"listen bad IPv4",
     CFG(",'listen':'127.0.0.256:80'", SANDBOX, ""),
     {{0}},
     "host is not an IPv4 address"},
    {"listen IPv6 without brackets",
     CFG(",'listen':'::1:8080'", SANDBOX, ""),
     {{0}},
     "put an IPv6 address in brackets"},
    {"listen bad IPv6",
     CFG(",'listen':'[fe80::zz]:80'", SANDBOX, ""),
     {{0}},
     "host is not an IPv6 address"},
    {"listen without host", CFG(",'listen':':8080'", SANDBOX, ""), {{0}}, "has no host"},

    /* channels */
    {"channel id with capitals",
     CHANNELS("'Main':{'phone_number_id':'1','script':'demo.lua'}"),
     {{0}},
     "parley.json: channels.Main: channel id must be 1-64 characters of a-z, 0-9, _ and -"},
    {"channel id of 65 characters",
     CHANNELS("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa':"
              "{'phone_number_id':'1','script':'demo.lua'}"),
     {{0}},
     "channel id must be"},
    {"empty channel id",
     CHANNELS("'':{'phone_number_id':'1','script':'demo.lua'}"),
     {{0}},
     "parley.json: channels.: channel id must be"},
    {"duplicate phone_number_id",
     CHANNELS(MAIN "},'b':{'phone_number_id':'123','script':'other.lua'}"),
     {{0}},
     "parley.json: channels.b.phone_number_id: \"123\" is already used by channel \"main\""},
    {"phone_number_id with a plus",
     CHANNELS("'main':{'phone_number_id':'+123','script':'demo.lua'}"),
     {{0}},
     "parley.json: channels.main.phone_number_id: \"+123\" must be 1-64 digits"},
    {"waba_id not digits",
     CFG("", SANDBOX, ",'waba_id':'abc'"),
     {{0}},
     "parley.json: channels.main.waba_id: \"abc\" must be 1-64 digits"},
    {"language with a hyphen",
     CFG("", SANDBOX, ",'language':'en-US'"),
     {{0}},
     "parley.json: channels.main.language: \"en-US\" is not a language code"},
    {"language spelled out",
     CFG("", SANDBOX, ",'language':'english'"),
     {{0}},
     "\"english\" is not a language code"},
    {"language upper case",
     CFG("", SANDBOX, ",'language':'EN'"),
     {{0}},
     "\"EN\" is not a language code"},
    {"language region lower case",
     CFG("", SANDBOX, ",'language':'pt_br'"),
     {{0}},
     "\"pt_br\" is not a language code"},

    /* ranges */
    {"cpu_ms 0",
     CFG("", SANDBOX, ",'cpu_ms':0"),
     {{0}},
     "parley.json: channels.main.cpu_ms: 0 is out of range (1..60000)"},
    {"memory_mb 5000",
     CFG("", SANDBOX, ",'memory_mb':5000"),
     {{0}},
     "parley.json: channels.main.memory_mb: 5000 is out of range (1..4096)"},
    {"daily_limit negative",
     CFG("", SANDBOX, ",'daily_limit':-1"),
     {{0}},
     "parley.json: channels.main.daily_limit: -1 is out of range (must be 0 or more)"},
    {"max_connections 0",
     CFG("", "'provider':{'kind':'sandbox','max_connections':0}", ""),
     {{0}},
     "parley.json: provider.max_connections: 0 is out of range (1..1024)"},
    {"timeout_ms 50",
     CFG("", "'provider':{'kind':'sandbox','timeout_ms':50}", ""),
     {{0}},
     "parley.json: provider.timeout_ms: 50 is out of range (100..600000)"},

    /* provider and log level */
    {"unknown provider kind",
     CFG("", "'provider':{'kind':'cloud'}", ""),
     {{0}},
     "parley.json: provider.kind: \"cloud\" is not \"cloud-api\" or \"sandbox\""},
    {"url without scheme",
     CFG("", "'provider':{'kind':'cloud-api','url':'graph.facebook.com','token':'t0ken'}", ""),
     {{0}},
     "parley.json: provider.url: must start with http:// or https://"},
    {"url with nothing after the scheme",
     CFG("", "'provider':{'kind':'cloud-api','url':'https:///','token':'t0ken'}", ""),
     {{0}},
     "parley.json: provider.url: has no host after the scheme"},
    {"url with a space",
     CFG("", "'provider':{'kind':'cloud-api','url':'https://a b','token':'t0ken'}", ""),
     {{0}},
     "parley.json: provider.url: must not contain spaces"},
    {"unknown log level",
     CFG(",'log_level':'verbose'", SANDBOX, ""),
     {{0}},
     "parley.json: log_level: \"verbose\" is not one of debug, info, warn, error"},
};

static void set_env(const struct env *env)
{
    for (size_t i = 0; i < 3 && env[i].name != NULL; i++) {
        if (env[i].value != NULL)
            setenv(env[i].name, env[i].value, 1);
        else
            unsetenv(env[i].name);
    }
}

static void clear_env(const struct env *env)
{
    for (size_t i = 0; i < 3 && env[i].name != NULL; i++)
        unsetenv(env[i].name);
}

/* Each row loads or fails as stated; a failure is one line with code "config", names the file,
 * echoes no secret and leaves cfg zeroed. */
static void test_rows(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        struct pl_config cfg;
        struct pl_error err = {{0}, {0}};
        UNIT_CASE(r->name);
        set_env(r->env);
        int rc = parse(r->json, &cfg, &err);
        clear_env(r->env);
        if (r->err == NULL) {
            CHECK_INT(rc, 0);
            if (rc != 0)
                UNIT_FAIL("unexpected error: %s", err.msg);
            pl_config_free(&cfg);
            CHECK(is_zero(&cfg));
            continue;
        }
        CHECK_INT(rc, -1);
        CHECK_STR(err.code, "config");
        CHECK_CONTAINS(err.msg, r->err);
        CHECK(strncmp(err.msg, "parley.json", 11) == 0);
        CHECK(strchr(err.msg, '\n') == NULL);
        for (size_t s = 0; secrets[s] != NULL; s++)
            if (strstr(err.msg, secrets[s]) != NULL)
                UNIT_FAIL("message echoes secret %s: %s", secrets[s], err.msg);
        CHECK(is_zero(&cfg));
        pl_config_free(&cfg); /* safe on a failed load */
    }
}

static char *tmp_path(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

/* Every key of a full cloud-api config lands in its field. */
static void test_full_values(void)
{
    struct pl_config cfg;
    struct pl_error err = {{0}, {0}};
    UNIT_CASE("full config: every value");
    int rc = parse(rows[1].json, &cfg, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        UNIT_FAIL("%s", err.msg);
        return;
    }
    CHECK_STR(cfg.path, "parley.json");
    CHECK_STR(cfg.dir, tmpdir);
    CHECK_STR(cfg.listen_host, "0.0.0.0");
    CHECK_INT(cfg.listen_port, 9000);
    CHECK_STR(cfg.state, tmp_path("db/p.db"));
    CHECK_STR(cfg.app_secret, "s3cret");
    CHECK_STR(cfg.verify_token, "v3rify");
    CHECK_STR(cfg.trigger_token, "trigg3r");
    CHECK_STR(cfg.log_level, "debug");
    CHECK_INT(cfg.provider.kind, PL_PROVIDER_CLOUD_API);
    CHECK_STR(cfg.provider.url, "http://localhost:1/v1");
    CHECK_STR(cfg.provider.token, "t0ken");
    CHECK_INT(cfg.provider.max_connections, 4);
    CHECK_INT(cfg.provider.timeout_ms, 500);
    CHECK_INT(cfg.nchannels, 1);
    const struct pl_channel_config *ch = &cfg.channels[0];
    CHECK_STR(ch->id, "main");
    CHECK_STR(ch->phone_number_id, "123");
    CHECK_STR(ch->script, tmp_path("demo.lua"));
    CHECK_STR(ch->templates, tmp_path("t.json"));
    CHECK_STR(ch->language, "pt_BR");
    CHECK_STR(ch->waba_id, "42");
    CHECK_INT(ch->daily_limit, 0);
    CHECK_INT(ch->cpu_ms, 60000);
    CHECK_INT(ch->memory_mb, 4096);
    pl_config_free(&cfg);
    pl_config_free(&cfg); /* twice is harmless */
}

/* A minimal config gets the documented defaults. */
static void test_defaults(void)
{
    struct pl_config cfg;
    struct pl_error err = {{0}, {0}};
    UNIT_CASE("minimal config: defaults");
    int rc = parse(CFG("", SANDBOX, ""), &cfg, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        UNIT_FAIL("%s", err.msg);
        return;
    }
    CHECK_STR(cfg.listen_host, "127.0.0.1");
    CHECK_INT(cfg.listen_port, 8080);
    CHECK_STR(cfg.state, tmp_path("var/parley.db"));
    CHECK(cfg.trigger_token == NULL);
    CHECK_STR(cfg.log_level, "info");
    CHECK_INT(cfg.provider.kind, PL_PROVIDER_SANDBOX);
    CHECK(cfg.provider.url == NULL);
    CHECK(cfg.provider.token == NULL);
    CHECK_INT(cfg.provider.max_connections, 16);
    CHECK_INT(cfg.provider.timeout_ms, 10000);
    CHECK_INT(cfg.nchannels, 1);
    const struct pl_channel_config *ch = &cfg.channels[0];
    CHECK(ch->templates == NULL);
    CHECK(ch->waba_id == NULL);
    CHECK_STR(ch->language, "en");
    CHECK_INT(ch->daily_limit, 250);
    CHECK_INT(ch->cpu_ms, 200);
    CHECK_INT(ch->memory_mb, 64);
    pl_config_free(&cfg);
}

/* $NAME reads the environment (strings and integers); $$ is a literal $. */
static void test_env_values(void)
{
    struct pl_config cfg;
    struct pl_error err = {{0}, {0}};
    UNIT_CASE("$NAME and $$ values");
    setenv("PL_TEST_SECRET", "envs3cret", 1);
    setenv("PL_TEST_INT", "-0", 1);
    setenv("PL_TEST_LISTEN", "[::1]:8443", 1);
    int rc = parse("{'app_secret':'$PL_TEST_SECRET','verify_token':'$$v3rify',"
                   "'listen':'$PL_TEST_LISTEN','trigger_token':'$$'," SANDBOX ",'channels':{" MAIN
                   ",'daily_limit':'$PL_TEST_INT'}}}",
                   &cfg, &err);
    unsetenv("PL_TEST_SECRET");
    unsetenv("PL_TEST_INT");
    unsetenv("PL_TEST_LISTEN");
    CHECK_INT(rc, 0);
    if (rc != 0) {
        UNIT_FAIL("%s", err.msg);
        return;
    }
    CHECK_STR(cfg.app_secret, "envs3cret");
    CHECK_STR(cfg.verify_token, "$v3rify");
    CHECK_STR(cfg.trigger_token, "$");
    CHECK_STR(cfg.listen_host, "::1");
    CHECK_INT(cfg.listen_port, 8443);
    CHECK_INT(cfg.channels[0].daily_limit, 0);
    pl_config_free(&cfg);
}

/* Relative paths join the config's folder cleanly; absolute paths stay; dir "." adds nothing. */
static void test_paths(void)
{
    struct pl_config cfg;
    struct pl_error err = {{0}, {0}};
    char json[1024], *text;
    int rc;

    UNIT_CASE("paths: relative, ./relative, absolute");
    snprintf(json, sizeof json,
             "{" SECRETS ",'state':'/var/lib/parley/p.db'," SANDBOX ",'channels':{"
             "'a':{'phone_number_id':'1','script':'./scripts/ch.lua','templates':'tpl/a.json'},"
             "'b':{'phone_number_id':'2','script':'%s','templates':'/abs/t.json'}}}",
             tmp_path("other.lua"));
    text = dq(json);
    rc = pl_config_parse(text, "conf/parley.json", tmpdir, &cfg, &err);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        CHECK_STR(cfg.state, "/var/lib/parley/p.db");
        CHECK_STR(cfg.channels[0].script, tmp_path("scripts/ch.lua"));
        CHECK_STR(cfg.channels[0].templates, tmp_path("tpl/a.json"));
        CHECK_STR(cfg.channels[1].script, tmp_path("other.lua"));
        CHECK_STR(cfg.channels[1].templates, "/abs/t.json");
    } else {
        UNIT_FAIL("%s", err.msg);
    }
    pl_config_free(&cfg);

    UNIT_CASE("paths: dir with a trailing slash");
    char dir[600];
    snprintf(dir, sizeof dir, "%s/", tmpdir);
    rc = pl_config_parse(text, "parley.json", dir, &cfg, &err);
    CHECK_INT(rc, 0);
    if (rc == 0)
        CHECK_STR(cfg.channels[0].script, tmp_path("scripts/ch.lua"));
    pl_config_free(&cfg);
    free(text);

    UNIT_CASE("paths: dir \".\" leaves relative paths as written");
    char cwd[600];
    if (getcwd(cwd, sizeof cwd) == NULL || chdir(tmpdir) != 0) {
        UNIT_FAIL("cannot enter %s", tmpdir);
        return;
    }
    text = dq(CFG("", SANDBOX, ",'templates':'./t.json'"));
    rc = pl_config_parse(text, "parley.json", NULL, &cfg, &err);
    free(text);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        CHECK_STR(cfg.dir, ".");
        CHECK_STR(cfg.state, "var/parley.db");
        CHECK_STR(cfg.channels[0].script, "demo.lua");
        CHECK_STR(cfg.channels[0].templates, "t.json");
    } else {
        UNIT_FAIL("%s", err.msg);
    }
    pl_config_free(&cfg);
    if (chdir(cwd) != 0)
        UNIT_FAIL("cannot return to %s", cwd);
}

/* Channels keep the file's order (not sorted, not hashed); lookups by id and phone. */
static void test_order_and_lookup(void)
{
    struct pl_config cfg;
    struct pl_error err = {{0}, {0}};
    static const char *const ids[] = {"zeta", "alpha", "mike", "bravo", "x-1", "c_2", "k"};
    UNIT_CASE("channels: file order and lookups");
    int rc = parse(CHANNELS("'zeta':{'phone_number_id':'10','script':'demo.lua'},"
                            "'alpha':{'phone_number_id':'11','script':'demo.lua'},"
                            "'mike':{'phone_number_id':'12','script':'demo.lua'},"
                            "'bravo':{'phone_number_id':'13','script':'demo.lua'},"
                            "'x-1':{'phone_number_id':'14','script':'demo.lua'},"
                            "'c_2':{'phone_number_id':'15','script':'demo.lua'},"
                            "'k':{'phone_number_id':'16','script':'demo.lua'}"),
                   &cfg, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        UNIT_FAIL("%s", err.msg);
        return;
    }
    CHECK_INT(cfg.nchannels, 7);
    for (size_t i = 0; i < 7 && i < cfg.nchannels; i++)
        CHECK_STR(cfg.channels[i].id, ids[i]);
    CHECK(pl_config_channel(&cfg, "mike") == &cfg.channels[2]);
    CHECK(pl_config_channel(&cfg, "nope") == NULL);
    CHECK(pl_config_channel(&cfg, NULL) == NULL);
    CHECK(pl_config_channel_by_phone(&cfg, "13") == &cfg.channels[3]);
    CHECK(pl_config_channel_by_phone(&cfg, "99") == NULL);
    CHECK(pl_config_channel_by_phone(NULL, "13") == NULL);
    pl_config_free(&cfg);
}

/* pl_config_load reads the file, names it in errors and takes dir from its path. */
static void test_load(void)
{
    struct pl_config cfg;
    struct pl_error err = {{0}, {0}};
    char *text = dq(CFG("", SANDBOX, ""));
    char path[600];

    UNIT_CASE("load: dir comes from the path");
    write_file(tmpdir, "parley.json", text);
    free(text);
    snprintf(path, sizeof path, "%s/parley.json", tmpdir);
    int rc = pl_config_load(path, &cfg, &err);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        CHECK_STR(cfg.path, path);
        CHECK_STR(cfg.dir, tmpdir);
        CHECK_STR(cfg.channels[0].script, tmp_path("demo.lua"));
    } else {
        UNIT_FAIL("%s", err.msg);
    }
    pl_config_free(&cfg);

    UNIT_CASE("load: missing file");
    snprintf(path, sizeof path, "%s/missing.json", tmpdir);
    CHECK_INT(pl_config_load(path, &cfg, &err), -1);
    CHECK_STR(err.code, "config");
    CHECK_CONTAINS(err.msg, "/missing.json: cannot read: No such file or directory");
    CHECK(is_zero(&cfg));

    UNIT_CASE("load: a directory");
    CHECK_INT(pl_config_load(tmp_path("adir"), &cfg, &err), -1);
    CHECK_CONTAINS(err.msg, "/adir: cannot read: Is a directory");
    CHECK(is_zero(&cfg));

    UNIT_CASE("load: syntax error names file, line and column");
    write_file(tmpdir, "bad.json", "{\n  \"listen\": \"x\"\n  \"state\": \"y\"\n}\n");
    snprintf(path, sizeof path, "%s/bad.json", tmpdir);
    CHECK_INT(pl_config_load(path, &cfg, &err), -1);
    char want[700];
    snprintf(want, sizeof want, "%s:3:9: '}' expected", path);
    CHECK_STR(err.msg, want);
    CHECK(is_zero(&cfg));
}

static void test_kind_names(void)
{
    UNIT_CASE("provider kind names");
    CHECK_STR(pl_provider_kind_name(PL_PROVIDER_CLOUD_API), "cloud-api");
    CHECK_STR(pl_provider_kind_name(PL_PROVIDER_SANDBOX), "sandbox");
}

static int make_fixtures(void)
{
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    if (mkdir(tmp_path("scripts"), 0755) != 0 || mkdir(tmp_path("adir"), 0755) != 0)
        return -1;
    if (write_file(tmpdir, "demo.lua", "return {}\n") != 0 ||
        write_file(tmpdir, "other.lua", "return {}\n") != 0 ||
        write_file(tmpdir, "scripts/ch.lua", "return {}\n") != 0)
        return -1;
    return 0;
}

static void remove_fixtures(void)
{
    static const char *const files[] = {"demo.lua",    "other.lua", "scripts/ch.lua",
                                        "parley.json", "bad.json",  NULL};
    for (size_t i = 0; files[i] != NULL; i++)
        unlink(tmp_path(files[i]));
    rmdir(tmp_path("scripts"));
    rmdir(tmp_path("adir"));
    rmdir(tmpdir);
}

/* "did you mean": the nearest known word within two edits (config keys and the Lua API's
 * option names share pl_error_closest). */
static void test_closest(void)
{
    static const char *const known[] = {"buttons", "header", "footer", "list", "go", "run", NULL};
    static const struct {
        const char *name, *word, *want;
    } cases[] = {
        {"one letter missing", "buttns", "buttons"},
        {"an adjacent swap counts one", "haeder", "header"},
        {"two edits", "fotr", "footer"},
        {"three edits is too far", "fooo", NULL},
        {"the nearer of two wins", "got", "go"},
        {"a tie goes to the first in order", "ro", "go"},
        {"the same word is its own nearest", "list", "list"},
        {"empty", "", "go"},
        {"too long to compare",
         "buttonsbuttonsbuttonsbuttonsbuttonsbuttonsbuttonsbuttonsbuttonsbuttonsbuttonsbuttons",
         NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        UNIT_CASE(cases[i].name);
        CHECK_STR(pl_error_closest(cases[i].word, known), cases[i].want);
    }
}

int main(void)
{
    test_closest();
    if (make_fixtures() != 0) {
        perror("test_config: fixtures");
        return 1;
    }
    test_rows();
    test_full_values();
    test_defaults();
    test_env_values();
    test_paths();
    test_order_and_lookup();
    test_load();
    test_kind_names();
    remove_fixtures();
    return unit_report("config");
}
