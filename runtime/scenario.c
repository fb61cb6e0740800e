/* scenario.c - `parley test`: conversation tests written in Lua. Each test runs the channel's
 * real scenario through the real engine and rules, with the sandbox provider in-process, a
 * fresh state file and a clock the test can move. This file hosts the test DSL's own Lua state
 * (trusted, the author's test file); scenarios still run in their sandbox through luaapi.c. */
#include "scenario.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "customer.h"
#include "engine.h"
#include "log.h"
#include "luaapi.h"
#include "sandbox.h"

/* One message the bot sent, not yet looked at by expect. */
struct sent {
    struct sent *next;
    char *wamid;
    char *body;
};

struct runner {
    const char *file; /* the test file */
    char dir[PATH_MAX];
    char tmp[PATH_MAX]; /* this file's temporary folder (state files) */
    const char *stdlib_dir;
    struct pl_config cfg;
    int have_cfg;
    const struct pl_channel_config *channel;
    struct pl_customer cust;                      /* who the test talks as */
    char default_contact[128], default_name[128]; /* what each test starts as (use()) */
    long long start; /* use(…, {now = …}): the clock each test starts at; 0: now */
    struct pl_engine *engine;
    struct sent *head, *tail; /* messages expect() has not looked at */
};

static const char key_runner = 'r';

static struct runner *runner_of(lua_State *L)
{
    struct runner *r;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_runner);
    r = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return r;
}

static struct runner *active(lua_State *L)
{
    struct runner *r = runner_of(L);
    if (r->engine == NULL)
        luaL_error(L, "%s only works inside test(name, function() … end)",
                   lua_tostring(L, lua_upvalueindex(1)));
    return r;
}

static void clear_sent(struct runner *r)
{
    while (r->head != NULL) {
        struct sent *s = r->head;
        r->head = s->next;
        free(s->wamid);
        free(s->body);
        free(s);
    }
    r->tail = NULL;
}

/* The engine's sink: every message the sandbox accepted. */
static void on_sent(void *ud, const char *channel, const char *contact, const char *local_id,
                    const char *wamid, const char *body)
{
    struct runner *r = ud;
    struct sent *s = calloc(1, sizeof *s);
    (void)channel;
    (void)contact;
    (void)local_id;
    if (s == NULL || (s->wamid = strdup(wamid)) == NULL || (s->body = strdup(body)) == NULL) {
        if (s != NULL)
            free(s->wamid);
        free(s);
        return;
    }
    if (r->tail != NULL)
        r->tail->next = s;
    else
        r->head = s;
    r->tail = s;
    pl_customer_remember(&r->cust, wamid, body);
}

/* The engine's answer (body freed): decoded on 200, else raised as "<test position>: <the
 * error's message>" (or fallback when it has none). */
static json_t *answer_or_raise(lua_State *L, int status, char *body, const char *fallback)
{
    json_t *j = body != NULL ? json_loads(body, 0, NULL) : NULL;
    free(body);
    if (status != 200) {
        const char *msg = pl_engine_error_message(j);
        luaL_where(L, 1);
        lua_pushstring(L, msg != NULL ? msg : fallback);
        json_decref(j);
        lua_concat(L, 2);
        lua_error(L);
    }
    return j;
}

/* Run ev (moved); raise when the handler failed. */
static json_t *run(lua_State *L, struct runner *r, struct pl_event *ev)
{
    char *body = NULL;
    int status = pl_engine_run(r->engine, ev, &body);
    return answer_or_raise(L, status, body, "the handler failed");
}

/* Push the ids of the messages the handler sent (from {"messages": [...]}). */
static int push_ids(lua_State *L, json_t *answer)
{
    pl_lua_push_json(L, json_object_get(answer, "messages"));
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    json_decref(answer);
    return 1;
}

/* send(text): the customer writes text. Returns the ids of the bot's answers. */
static int l_send(lua_State *L)
{
    struct runner *r = active(L);
    const char *text = luaL_checkstring(L, 1);
    struct pl_event ev;

    pl_customer_text(&r->cust, pl_engine_now(r->engine), text, &ev);
    return push_ids(L, run(L, r, &ev));
}

/* press(label): the customer presses the button (or picks the list row) with that title or id,
 * on the newest of the bot's recent messages that has one. */
static int l_press(lua_State *L)
{
    struct runner *r = active(L);
    const char *label = luaL_checkstring(L, 1);
    char err[1024];
    struct pl_event ev;

    if (pl_customer_press(&r->cust, pl_engine_now(r->engine), label, &ev, err, sizeof err) != 0)
        return luaL_error(L, "%s", err);
    return push_ids(L, run(L, r, &ev));
}

/* trigger(name [, data [, id]]): an external system posts to /channels/{id}/trigger. */
static int l_trigger(lua_State *L)
{
    struct runner *r = active(L);
    const char *name = luaL_checkstring(L, 1);
    const char *id = luaL_optstring(L, 3, NULL);
    json_t *data = NULL;
    char err[256], *body = NULL;

    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        data = pl_lua_to_json(L, 2, err, sizeof err);
        if (data == NULL)
            return luaL_error(L, "trigger data: %s", err);
    }
    int status =
        pl_engine_trigger(r->engine, r->channel->id, r->cust.contact, name, data, id, &body);
    json_decref(data);
    return push_ids(L, answer_or_raise(L, status, body, "the trigger failed"));
}

/* status(st [, code]): the provider reports st ("delivered", "read", "failed") for the last
 * message the bot sent; with "failed", code is the error code (default 131026). */
static int l_status(lua_State *L)
{
    struct runner *r = active(L);
    const char *st = luaL_checkstring(L, 1);
    lua_Integer code = luaL_optinteger(L, 2, 131026);
    char err[256];
    struct pl_event ev;

    if (pl_customer_status(&r->cust, pl_engine_now(r->engine), st, (long)code, &ev, err,
                           sizeof err) != 0)
        return luaL_error(L, "%s", err);
    json_decref(run(L, r, &ev));
    return 0;
}

/* advance(duration): move the clock on: a number of seconds or "90s", "30m", "25h", "2d". */
static int l_advance(lua_State *L)
{
    struct runner *r = active(L);
    long long seconds;

    if (lua_type(L, 1) == LUA_TNUMBER) {
        seconds = (long long)lua_tointeger(L, 1);
    } else {
        const char *s = luaL_checkstring(L, 1);
        char *end;
        double n = strtod(s, &end);
        int unit = *end == 's'   ? 1
                   : *end == 'm' ? 60
                   : *end == 'h' ? 3600
                   : *end == 'd' ? 86400
                                 : 0;
        if (end == s || unit == 0 || end[1] != '\0' || n < 0)
            return luaL_error(L, "advance(\"%s\"): use seconds or a number with s, m, h or d", s);
        seconds = (long long)(n * unit);
    }
    pl_engine_advance(r->engine, seconds);
    return 0;
}

/* now(): the clock the scenario sees (unix seconds), moved by advance() and use's now. */
static int l_now(lua_State *L)
{
    struct runner *r = active(L);
    lua_pushinteger(L, (lua_Integer)pl_engine_now(r->engine));
    return 1;
}

/* session(): the conversation's chat.session as stored. */
static int l_session(lua_State *L)
{
    struct runner *r = active(L);
    char *s = pl_engine_session(r->engine, r->channel->id, r->cust.contact);
    json_t *j = pl_session_parse(s);
    free(s);
    if (j == NULL)
        lua_newtable(L);
    else
        pl_lua_push_json(L, j);
    json_decref(j);
    return 1;
}

/* contact(wa_id [, name]): talk as another customer from now on. */
static int l_contact(lua_State *L)
{
    struct runner *r = active(L);
    snprintf(r->cust.contact, sizeof r->cust.contact, "%s", luaL_checkstring(L, 1));
    snprintf(r->cust.name, sizeof r->cust.name, "%s", luaL_optstring(L, 2, ""));
    return 0;
}

/* _next(): the next unread message as a view table, or nil. */
static int l_next(lua_State *L)
{
    struct runner *r = active(L);
    struct sent *s = r->head;
    if (s == NULL)
        return 0;
    r->head = s->next;
    if (r->head == NULL)
        r->tail = NULL;
    json_t *view = pl_sandbox_view(s->body);
    if (view == NULL)
        lua_pushnil(L);
    else
        pl_lua_push_json(L, view);
    json_decref(view);
    free(s->wamid);
    free(s->body);
    free(s);
    return 1;
}

/* use(config [, {channel=, contact=, name=}]): the parley.json whose channel the tests talk to
 * (relative to the test file). */
static int l_use(lua_State *L)
{
    struct runner *r = runner_of(L);
    const char *path = luaL_checkstring(L, 1);
    char full[PATH_MAX * 2];
    struct pl_error err;
    const char *channel = NULL;

    if (r->have_cfg)
        return luaL_error(L, "use() may be called once per file");
    snprintf(full, sizeof full, "%s%s%s", path[0] == '/' ? "" : r->dir, path[0] == '/' ? "" : "/",
             path);
    pl_config_env_optional(1);
    if (pl_config_load(full, &r->cfg, &err) != 0)
        return luaL_error(L, "%s", err.msg);
    r->have_cfg = 1;
    r->cfg.provider.kind = PL_PROVIDER_SANDBOX; /* tests never reach a real provider */
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "channel");
        channel = lua_tostring(L, -1);
        lua_getfield(L, 2, "contact");
        if (lua_isstring(L, -1))
            snprintf(r->cust.contact, sizeof r->cust.contact, "%s", lua_tostring(L, -1));
        lua_getfield(L, 2, "name");
        if (lua_isstring(L, -1))
            snprintf(r->cust.name, sizeof r->cust.name, "%s", lua_tostring(L, -1));
        lua_getfield(L, 2, "now");
        if (lua_isinteger(L, -1))
            r->start = (long long)lua_tointeger(L, -1);
        else if (!lua_isnil(L, -1))
            return luaL_error(L, "use: now must be unix seconds, e.g. os.time{year=2026, "
                                 "month=11, day=23, hour=10}");
        lua_pop(L, 1);
        lua_pop(L, 2); /* the channel string stays on the stack until we copy the pointer */
    }
    r->channel = channel != NULL ? pl_config_channel(&r->cfg, channel) : &r->cfg.channels[0];
    r->cust.channel = r->channel;
    memcpy(r->default_contact, r->cust.contact, sizeof r->default_contact);
    memcpy(r->default_name, r->cust.name, sizeof r->default_name);
    if (r->channel == NULL)
        return luaL_error(L, "%s has no channel \"%s\"", full, channel);
    return 0;
}

/* test(name, fn): register a test. */
static int l_test(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_getfield(L, LUA_REGISTRYINDEX, "parley.tests");
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

/* The parts of the DSL that read best in Lua. */
static const char prelude[] =
    "local next_message = ...\n"
    "local function show(v)\n"
    "  if type(v) ~= 'table' then return string.format('%q', tostring(v)) end\n"
    "  local keys, out = {}, {}\n"
    "  for k in pairs(v) do keys[#keys + 1] = k end\n"
    "  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)\n"
    "  local list = #v > 0\n"
    "  for _, k in ipairs(keys) do\n"
    "    out[#out + 1] = (list and '' or tostring(k) .. ' = ') .. show(v[k])\n"
    "  end\n"
    "  return '{ ' .. table.concat(out, ', ') .. ' }'\n"
    "end\n"
    "local function same(want, got)\n"
    "  if type(want) ~= 'table' then\n"
    "    if type(want) == 'string' and type(got) == 'string' then\n"
    "      for _, dots in ipairs({ '…', '...' }) do\n"
    "        if want:sub(-#dots) == dots then\n"
    "          local prefix = want:sub(1, -#dots - 1)\n"
    "          return got:sub(1, #prefix) == prefix\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    return want == got\n"
    "  end\n"
    "  if type(got) ~= 'table' then return false end\n"
    "  for k, v in pairs(want) do if not same(v, got[k]) then return false end end\n"
    "  if #want ~= #got then return false end\n"
    "  return true\n"
    "end\n"
    "function expect(spec)\n"
    "  if type(spec) == 'string' then spec = { text = spec } end\n"
    "  local got = next_message()\n"
    "  if got == nil then\n"
    "    error('expected ' .. show(spec) .. ', but the bot sent nothing more', 2)\n"
    "  end\n"
    "  for k, want in pairs(spec) do\n"
    "    if not same(want, got[k]) then\n"
    "      error(('expected %s = %s, got %s\\n  the message: %s'):format(k, show(want),\n"
    "        show(got[k]), show(got)), 2)\n"
    "    end\n"
    "  end\n"
    "  return got\n"
    "end\n"
    "function expect_none()\n"
    "  local got = next_message()\n"
    "  if got ~= nil then error('expected no more messages, got ' .. show(got), 2) end\n"
    "end\n"
    "function skip(n)\n"
    "  for i = 1, n or 1 do\n"
    "    if next_message() == nil then error('skip: only ' .. (i - 1) .. ' messages', 2) end\n"
    "  end\n"
    "end\n"
    "function expect_error(code, fn)\n"
    "  local ok, err = pcall(fn)\n"
    "  if ok then error('expected an error ' .. code .. ', but none was raised', 2) end\n"
    "  err = tostring(err)\n"
    "  if not err:find(code, 1, true) then\n"
    "    error('expected an error ' .. code .. ', got: ' .. err, 2)\n"
    "  end\n"
    "  return err\n"
    "end\n";

static int msgh(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg != NULL ? msg : "(error object is not a string)", 1);
    return 1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The first line of a traceback that points into the test file: "file:line:". */
static void where_in_file(const char *tb, const char *file, char *out, size_t size)
{
    const char *p = tb;
    out[0] = '\0';
    while ((p = strstr(p, file)) != NULL) {
        const char *q = p + strlen(file);
        if (*q == ':' && isdigit((unsigned char)q[1])) {
            const char *e = q + 1;
            while (isdigit((unsigned char)*e))
                e++;
            snprintf(out, size, "%.*s", (int)(e - p), p);
            return;
        }
        p = q;
    }
}

/* Run one registered test (at stack top: {name, fn}). Returns 1 when it passed. */
static int run_test(lua_State *L, struct runner *r, int index)
{
    struct pl_error err;
    char state[PATH_MAX + 64], where[PATH_MAX + 32];
    const char *name;
    int ok;

    lua_rawgeti(L, -1, 1);
    name = lua_tostring(L, -1);
    lua_pop(L, 1);
    snprintf(state, sizeof state, "%s/test-%d.db", r->tmp, index);
    free(r->cfg.state);
    r->cfg.state = strdup(state);
    r->engine = r->cfg.state != NULL ? pl_engine_new(&r->cfg, r->stdlib_dir, &err) : NULL;
    if (r->engine == NULL) {
        printf("FAIL %s: %s\n", name, r->cfg.state != NULL ? err.msg : "out of memory");
        return 0;
    }
    pl_engine_set_sink(r->engine, on_sent, r);
    /* every test starts from nothing: who talks, and when */
    memcpy(r->cust.contact, r->default_contact, sizeof r->cust.contact);
    memcpy(r->cust.name, r->default_name, sizeof r->cust.name);
    if (r->start > 0)
        pl_engine_advance(r->engine, r->start - pl_engine_now(r->engine));
    lua_pushcfunction(L, msgh);
    lua_rawgeti(L, -2, 2);
    ok = lua_pcall(L, 0, 0, -2) == LUA_OK;
    if (ok) {
        printf("ok   %s\n", name);
    } else {
        const char *tb = lua_tostring(L, -1);
        where_in_file(tb != NULL ? tb : "", r->file, where, sizeof where);
        const char *nl = tb != NULL ? strstr(tb, "\nstack traceback:") : NULL;
        printf("FAIL %s%s%s\n  %.*s\n", name, where[0] ? " at " : "", where,
               nl != NULL ? (int)(nl - tb) : (int)strlen(tb != NULL ? tb : ""),
               tb != NULL ? tb : "");
        lua_pop(L, 1);
    }
    lua_pop(L, 1); /* msgh */
    pl_engine_free(r->engine);
    r->engine = NULL;
    clear_sent(r);
    pl_customer_forget(&r->cust);
    return ok;
}

/* Run one test file; adds to *passed and *failed. */
static void run_file(const char *file, const char *stdlib_dir, int *passed, int *failed)
{
    struct runner r;
    lua_State *L;
    const char *slash = strrchr(file, '/');

    memset(&r, 0, sizeof r);
    r.file = file;
    r.stdlib_dir = stdlib_dir;
    snprintf(r.dir, sizeof r.dir, "%.*s", slash != NULL ? (int)(slash - file) : 1,
             slash != NULL ? file : ".");
    snprintf(r.cust.contact, sizeof r.cust.contact, "79991234567");
    snprintf(r.cust.name, sizeof r.cust.name, "Тест");
    memcpy(r.default_contact, r.cust.contact, sizeof r.default_contact);
    memcpy(r.default_name, r.cust.name, sizeof r.default_name);
    snprintf(r.tmp, sizeof r.tmp, "/tmp/parley-test-XXXXXX");
    printf("# %s\n", file);
    if (mkdtemp(r.tmp) == NULL) {
        printf("FAIL %s: cannot make a temporary folder: %s\n", file, strerror(errno));
        (*failed)++;
        return;
    }
    L = luaL_newstate();
    if (L == NULL) {
        printf("FAIL %s: out of memory\n", file);
        (*failed)++;
        return;
    }
    luaL_openlibs(L);
    lua_pushlightuserdata(L, &r);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_runner);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "parley.tests");
    static const luaL_Reg dsl[] = {
        {"use", l_use},         {"test", l_test},       {"send", l_send},
        {"press", l_press},     {"trigger", l_trigger}, {"status", l_status},
        {"advance", l_advance}, {"session", l_session}, {"contact", l_contact},
        {"now", l_now},         {NULL, NULL},
    };
    for (const luaL_Reg *f = dsl; f->name != NULL; f++) {
        lua_pushstring(L, f->name);
        lua_pushcclosure(L, f->func, 1);
        lua_setglobal(L, f->name);
    }
    lua_pushcfunction(L, msgh);
    int base = lua_gettop(L);
    if (luaL_loadbufferx(L, prelude, sizeof prelude - 1, "=parley.test", "t") != LUA_OK) {
        printf("FAIL %s: %s\n", file, lua_tostring(L, -1));
        (*failed)++;
        goto out;
    }
    lua_pushstring(L, "_next");
    lua_pushcclosure(L, l_next, 1);
    if (lua_pcall(L, 1, 0, base) != LUA_OK || luaL_loadfilex(L, file, "t") != LUA_OK ||
        lua_pcall(L, 0, 0, base) != LUA_OK) {
        printf("FAIL %s: %s\n", file, lua_tostring(L, -1));
        (*failed)++;
        goto out;
    }
    if (!r.have_cfg) {
        printf("FAIL %s: call use(\"path/to/parley.json\") at the top of the file\n", file);
        (*failed)++;
        goto out;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "parley.tests");
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n == 0) {
        printf("FAIL %s: no test(name, function() … end) in the file\n", file);
        (*failed)++;
    }
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        if (run_test(L, &r, (int)i))
            (*passed)++;
        else
            (*failed)++;
        lua_pop(L, 1);
    }
out:
    lua_close(L);
    if (r.have_cfg)
        pl_config_free(&r.cfg);
    nftw(r.tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int pl_scenario_run(const char *const *files, int nfiles, const char *stdlib_dir, int verbose)
{
    int passed = 0, failed = 0;
    glob_t g;
    int found = 0;

    pl_log_set_level(verbose ? PL_LOG_DEBUG : (enum pl_log_level)(PL_LOG_ERROR + 1));
    memset(&g, 0, sizeof g);
    if (nfiles == 0) {
        /* by default: the project's and the examples' scenario tests */
        glob("tests/scenarios/*_test.lua", 0, NULL, &g);
        glob("examples/*/tests/*_test.lua", GLOB_APPEND, NULL, &g);
        files = (const char *const *)g.gl_pathv;
        nfiles = (int)g.gl_pathc;
        found = 1;
    }
    for (int i = 0; i < nfiles; i++) {
        if (access(files[i], R_OK) != 0) {
            printf("FAIL %s: %s\n", files[i], strerror(errno));
            failed++;
            continue;
        }
        run_file(files[i], stdlib_dir, &passed, &failed);
    }
    if (found)
        globfree(&g);
    printf("scenarios: %d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed > 0 || passed == 0 ? 1 : 0;
}
