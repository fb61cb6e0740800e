/* luaapi.c - the Lua API: one sandboxed lua_State per loaded channel script, the `chat` object,
 * events and sessions as Lua values, and the CPU and memory budgets that keep a bad script from
 * hurting anything else. Every entry into Lua is a protected call with a traceback handler. */
#include "luaapi.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "log.h"
#include "outbound.h"
#include "utf8.h"

#define HOOK_EVERY     1000   /* instructions between budget checks */
#define JSON_MAX_DEPTH 64     /* session and event nesting */
#define LIST_PARSE_MAX 1000   /* rows or sections of one list read before the rules judge it */
#define JSON_MAX_NODES 100000 /* values in one session */
#define JSON_MAX_BYTES (8 * 1024 * 1024) /* bytes of strings in one session */
#define MAX_FILES      64

static const char *const handler_names[] = {"on_message", "on_button", "on_status", "on_trigger",
                                            NULL};

struct pl_script {
    lua_State *L;
    char *channel;
    char *path;
    char *dir;        /* the script's folder: `require` of plain names resolves here */
    char *stdlib_dir; /* `require "parley.x"` resolves here */
    const struct pl_limits *lim;
    /* memory budget */
    size_t mem_used, mem_limit;
    int mem_exceeded; /* sticky for the current call */
    int fail_pending; /* the last request failed once (before Lua's emergency GC) */
    void *fail_ptr;
    size_t fail_nsize;
    /* CPU budget */
    long cpu_ms;
    struct timespec deadline;
    int timed_out; /* sticky for the current call */
    /* the call in progress (NULL between calls) and its serial, which chat objects carry */
    struct pl_call *call;
    lua_Integer serial;
    long long now;
    int handlers_ref;
    char *files[MAX_FILES + 1];
    size_t nfiles;
};

/* Registry keys (addresses are unique and scripts cannot forge light userdata). */
static const char key_loaded = 'l';
static const char key_traceback = 't';
static const char key_serial = 'n';
static const char key_chat_mt = 'c';

/* ---- budgets ---- */

static void *script_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct pl_script *s = ud;
    void *p;

    if (ptr == NULL)
        osize = 0; /* osize is a type tag, not a size */
    if (nsize == 0) {
        free(ptr);
        s->mem_used -= osize;
        return NULL;
    }
    if (nsize > osize && s->mem_used + (nsize - osize) > s->mem_limit) {
        /* A refusal stands unless the very next request is the same one succeeding (Lua's
         * retry after its emergency collection). Some refusals are never retried (lauxlib's
         * buffers, a collection already running), so a pending refusal counts as final. */
        if (s->fail_pending)
            s->mem_exceeded = 1;
        s->fail_pending = 1;
        s->fail_ptr = ptr;
        s->fail_nsize = nsize;
        return NULL;
    }
    p = realloc(ptr, nsize);
    if (p != NULL) {
        s->mem_used = s->mem_used - osize + nsize;
        if (s->fail_pending && (s->fail_ptr != ptr || s->fail_nsize != nsize))
            s->mem_exceeded = 1; /* the refusal before this one was not retried: it stood */
        s->fail_pending = 0;
    }
    return p;
}

/* The call broke the memory cap: a refusal that stood, or one no retry has resolved (no retry
 * can be pending while Lua code runs: Lua retries at once, inside the same allocation). */
static int over_cap(const struct pl_script *s)
{
    return s->mem_exceeded || s->fail_pending;
}

static struct pl_script *script_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

static void cpu_now(struct timespec *ts)
{
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, ts);
}

static int past(const struct timespec *now, const struct timespec *deadline)
{
    return now->tv_sec > deadline->tv_sec ||
           (now->tv_sec == deadline->tv_sec && now->tv_nsec > deadline->tv_nsec);
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    struct pl_script *s = script_of(L);
    struct timespec now;

    (void)ar;
    if (!s->timed_out && !over_cap(s)) {
        cpu_now(&now);
        if (!past(&now, &s->deadline))
            return;
        s->timed_out = 1;
    }
    /* Fire on every line from now on, so a pcall in the script cannot outrun the abort. */
    lua_sethook(L, budget_hook, LUA_MASKLINE | LUA_MASKCOUNT, 1);
    /* In a hook, level 0 is the interrupted Lua function: that is the author's line. */
    luaL_where(L, 0);
    if (over_cap(s))
        lua_pushfstring(L, "script_memory: the channel's Lua state reached its %d MiB memory cap",
                        (int)(s->mem_limit >> 20));
    else
        lua_pushfstring(L, "script_timeout: the handler used more than %d ms of CPU",
                        (int)s->cpu_ms);
    lua_concat(L, 2);
    lua_error(L);
}

static void budget_start(struct pl_script *s, long ms)
{
    cpu_now(&s->deadline);
    s->deadline.tv_sec += ms / 1000;
    s->deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (s->deadline.tv_nsec >= 1000000000L) {
        s->deadline.tv_sec++;
        s->deadline.tv_nsec -= 1000000000L;
    }
    s->timed_out = s->mem_exceeded = s->fail_pending = 0;
    lua_sethook(s->L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

static void budget_stop(struct pl_script *s)
{
    lua_sethook(s->L, NULL, 0, 0);
}

/* ---- errors ---- */

/* Push "source:line: " of the innermost Lua function on the stack (the author's line), or "". */
static void push_where(lua_State *L)
{
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
    lua_pushliteral(L, "");
}

/* Raise "file:line: code: detail". Never returns. */
static int raise_code(lua_State *L, enum pl_code code, const char *detail)
{
    push_where(L);
    lua_pushfstring(L, "%s: %s", pl_code_name(code), detail);
    lua_concat(L, 2);
    return lua_error(L);
}

/* The message handler: keep the message, remember a traceback beside it. */
static int msgh(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, NULL, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_traceback);
    lua_pushstring(L, msg);
    return 1;
}

/* The code named at the start of a Lua error message ("file:line: code: …"), else
 * PL_SCRIPT_ERROR. */
static enum pl_code code_of_message(const char *msg)
{
    const char *p = msg;
    /* skip "source:line: " prefixes */
    for (;;) {
        const char *colon = strstr(p, ": ");
        const char *q;
        if (colon == NULL)
            break;
        for (int c = PL_OK + 1; c < PL_CODE_COUNT; c++) {
            const char *name = pl_code_name((enum pl_code)c);
            size_t n = strlen(name);
            if ((size_t)(colon - p) == n && strncmp(p, name, n) == 0)
                return (enum pl_code)c;
        }
        q = colon - 1;
        while (q > p && *q >= '0' && *q <= '9')
            q--;
        if (q == colon - 1 || *q != ':')
            break; /* not a "…:<digits>" position prefix */
        p = colon + 2;
    }
    return PL_SCRIPT_ERROR;
}

/* ---- JSON <-> Lua ---- */

/* Push j as a Lua value (objects and arrays become tables, null becomes nil). Raises on
 * memory errors only; depth is bounded by the caller's data (jansson limits it on parse). */
static void push_json(lua_State *L, json_t *j)
{
    const char *key;
    json_t *v;
    size_t i;

    luaL_checkstack(L, 4, "nested JSON");
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        lua_createtable(L, 0, (int)json_object_size(j));
        json_object_foreach(j, key, v)
        {
            if (json_is_null(v))
                continue;
            push_json(L, v);
            lua_setfield(L, -2, key);
        }
        break;
    case JSON_ARRAY:
        lua_createtable(L, (int)json_array_size(j), 0);
        json_array_foreach(j, i, v)
        {
            push_json(L, v);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(j));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(j));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    default:
        lua_pushnil(L);
    }
}

/* Convert the Lua value at idx to JSON without raising (no metamethods, no conversions that
 * allocate). Returns a new reference, or NULL with a message naming the key path in err. */
/* What a conversion may still produce: a table referenced many times is expanded each time,
 * so sharing could otherwise grow the result exponentially. */
struct conv_budget {
    long nodes;
    size_t bytes;
};

static json_t *to_json(lua_State *L, int idx, int depth, char *path, size_t pathsz, char *err,
                       size_t errsz, struct conv_budget *b)
{
    idx = lua_absindex(L, idx);
    if (--b->nodes < 0) {
        snprintf(err, errsz, "%s: more than %d values (a table shared many times?)", path,
                 JSON_MAX_NODES);
        return NULL;
    }
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (len > b->bytes) {
            snprintf(err, errsz, "%s: the session would be larger than %d MiB", path,
                     JSON_MAX_BYTES >> 20);
            return NULL;
        }
        b->bytes -= len;
        json_t *j = json_stringn(s, len);
        if (j == NULL)
            snprintf(err, errsz, "%s is not valid UTF-8 text", path);
        return j;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return json_integer((json_int_t)lua_tointeger(L, idx));
        {
            double d = lua_tonumber(L, idx);
            if (d != d || d > 1e308 || d < -1e308) {
                snprintf(err, errsz, "%s is not a finite number", path);
                return NULL;
            }
            return json_real(d);
        }
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TTABLE:
        break;
    default:
        snprintf(err, errsz, "%s is a %s; a session holds strings, numbers, booleans and tables",
                 path, luaL_typename(L, idx));
        return NULL;
    }
    if (depth >= JSON_MAX_DEPTH || !lua_checkstack(L, 4)) {
        snprintf(err, errsz, "%s is nested too deeply (a cycle?)", path);
        return NULL;
    }
    /* An array when the keys are exactly 1..n; an object when every key is a string. */
    lua_Integer n = 0, count = 0;
    int strings = 0, others = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        count++;
        if (lua_type(L, -1) == LUA_TSTRING)
            strings++;
        else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1)
            n = lua_tointeger(L, -1) > n ? lua_tointeger(L, -1) : n;
        else
            others++;
    }
    size_t plen = strlen(path);
    if (others > 0 || (strings > 0 && strings != count) || (strings == 0 && n != count)) {
        snprintf(err, errsz, "%s mixes keys: use either a list (1..n) or string keys", path);
        return NULL;
    }
    json_t *out = strings > 0 || count == 0 ? json_object() : json_array();
    if (out == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    if (json_is_array(out)) {
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            snprintf(path + plen, pathsz - plen, "[%lld]", (long long)i);
            json_t *v = to_json(L, -1, depth + 1, path, pathsz, err, errsz, b);
            path[plen] = '\0';
            lua_pop(L, 1);
            if (v == NULL || json_array_append_new(out, v) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t klen;
        const char *k = lua_tolstring(L, -2, &klen); /* a string key: no conversion */
        snprintf(path + plen, pathsz - plen, ".%s", k);
        if (memchr(k, '\0', klen) != NULL) { /* JSON could hold it, but no reader takes it back */
            snprintf(err, errsz, "%s has a key with a NUL byte", path);
            path[plen] = '\0';
            lua_pop(L, 2);
            json_decref(out);
            return NULL;
        }
        json_t *v = to_json(L, -1, depth + 1, path, pathsz, err, errsz, b);
        path[plen] = '\0';
        lua_pop(L, 1);
        if (v == NULL || json_object_setn_new(out, k, klen, v) != 0) {
            if (v == NULL) {
                lua_pop(L, 1);
            } else {
                snprintf(err, errsz, "%s has a key that is not valid UTF-8", path);
                lua_pop(L, 1);
            }
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

json_t *pl_session_parse(const char *json)
{
    return json != NULL ? pl_json_parse(json, strlen(json), PL_JSON_ALLOW_NUL, NULL) : NULL;
}

void pl_lua_push_json(lua_State *L, json_t *j)
{
    push_json(L, j);
}

json_t *pl_lua_to_json(lua_State *L, int idx, char *err, size_t errsz)
{
    char path[256] = "value";
    struct conv_budget b = {JSON_MAX_NODES, JSON_MAX_BYTES};
    return to_json(L, idx, 0, path, sizeof path, err, errsz, &b);
}

/* ---- the sandbox ---- */

static int l_print(lua_State *L)
{
    struct pl_script *s = script_of(L);
    luaL_Buffer b;
    int n = lua_gettop(L);

    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    pl_log(PL_LOG_INFO, PL_FIELDS("channel", s->channel, "event", "print"), "%s",
           lua_tostring(L, -1));
    return 0;
}

/* load(chunk [, name [, mode [, env]]]) limited to text chunks. */
static int l_load(lua_State *L)
{
    const char *mode = luaL_optstring(L, 3, "t");
    if (strchr(mode, 'b') != NULL) {
        luaL_pushfail(L);
        lua_pushliteral(L, "binary chunks are not allowed in Parley scripts");
        return 2;
    }
    lua_settop(L, 4);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the original load */
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int l_collectgarbage(lua_State *L)
{
    static const char *const opts[] = {"count", "collect", "step", NULL};
    int o = luaL_checkoption(L, 1, "collect", opts);
    if (o == 0) {
        lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) +
                              (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024);
        return 1;
    }
    lua_gc(L, o == 1 ? LUA_GCCOLLECT : LUA_GCSTEP, 0);
    lua_pushinteger(L, 0);
    return 1;
}

/* os.time() without a table is the rules' clock (the fake clock in tests). */
static int l_os_time(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        struct pl_script *s = script_of(L);
        lua_pushinteger(L, (lua_Integer)(s->call != NULL ? s->now : (long long)time(NULL)));
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* os.date(fmt) without a time formats the rules' clock. */
static int l_os_date(lua_State *L)
{
    if (lua_isnoneornil(L, 2)) {
        struct pl_script *s = script_of(L);
        lua_settop(L, 1);
        lua_pushinteger(L, (lua_Integer)(s->call != NULL ? s->now : (long long)time(NULL)));
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int valid_module_name(const char *name)
{
    int seg = 0;
    if (*name == '\0' || strlen(name) > 200)
        return 0;
    for (const char *p = name; *p; p++) {
        if (*p == '.') {
            if (seg == 0)
                return 0;
            seg = 0;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= '0' && *p <= '9') || *p == '_') {
            seg++;
        } else {
            return 0;
        }
    }
    return seg > 0;
}

static void remember_file(struct pl_script *s, const char *path)
{
    for (size_t i = 0; i < s->nfiles; i++)
        if (strcmp(s->files[i], path) == 0)
            return;
    if (s->nfiles < MAX_FILES) {
        char *copy = strdup(path);
        if (copy != NULL)
            s->files[s->nfiles++] = copy;
    }
}

/* require(name): "parley.x" from stdlib/parley/x.lua, other names from the script's folder;
 * text only;
 * each module loaded once per state. */
static int l_require(lua_State *L)
{
    struct pl_script *s = script_of(L);
    const char *name = luaL_checkstring(L, 1);
    const char *base, *rel;
    luaL_Buffer b;

    if (!valid_module_name(name))
        return luaL_error(L, "require: bad module name '%s' (letters, digits, _ and dots only)",
                          name);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_loaded);
    if (lua_getfield(L, -1, name) != LUA_TNIL) {
        if (lua_type(L, -1) == LUA_TLIGHTUSERDATA)
            return luaL_error(L, "require: module '%s' requires itself (a loop)", name);
        return 1;
    }
    lua_pop(L, 1);
    if (strncmp(name, "parley.", 7) == 0) {
        if (s->stdlib_dir == NULL)
            return luaL_error(L, "require: no stdlib folder for '%s'", name);
        base = s->stdlib_dir; /* stdlib/parley/<x>.lua, laid out as Lua and editors expect */
        rel = name;
    } else {
        base = s->dir;
        rel = name;
    }
    luaL_buffinit(L, &b);
    luaL_addstring(&b, base);
    luaL_addchar(&b, '/');
    for (const char *p = rel; *p; p++)
        luaL_addchar(&b, *p == '.' ? '/' : *p);
    luaL_addstring(&b, ".lua");
    luaL_pushresult(&b);
    const char *path = lua_tostring(L, -1);
    lua_pushlightuserdata(L, (void *)&key_loaded); /* "loading" mark */
    lua_setfield(L, -3, name);
    if (luaL_loadfilex(L, path, "t") != LUA_OK) {
        lua_pushnil(L);
        lua_setfield(L, -4, name);
        return luaL_error(L, "require '%s': %s", name, lua_tostring(L, -1));
    }
    remember_file(s, path);
    lua_pushstring(L, name);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pushnil(L); /* not "loading" any more: a later require tries again */
        lua_setfield(L, -4, name);
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, name);
    return 1;
}

/* setmetatable without __gc: a finalizer runs inside the collector, where no budget reaches
 * (at load, reload and shutdown), so scripts may not have one. */
static int l_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2) && lua_getfield(L, 2, "__gc") != LUA_TNIL)
        return luaL_error(L, "setmetatable: __gc metamethods are not allowed in Parley scripts");
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

/* Lua patterns backtrack inside C, where the CPU budget's hook cannot fire. Before a match,
 * estimate the worst case: each quantified item that can match what another can (a quantified
 * '.', or the same class quantified twice) multiplies the work by the subject's length. Refuse
 * the call when that estimate is beyond what any budget allows. */
#define PATTERN_STEPS_MAX 1e9

static int overlapping_quantifiers(const char *p, size_t len)
{
    char seen[16][24];
    int nseen = 0, k = 0;
    size_t i = 0;

    while (i < len) {
        size_t start = i;
        if (p[i] == '%' && i + 1 < len) {
            if (p[i + 1] == 'b') {
                i += 4;
                continue;
            }
            if (p[i + 1] == 'f') { /* %f[set]: a frontier, never quantified */
                i += 2;
                while (i < len && p[i] != ']')
                    i++;
                i++;
                continue;
            }
            i += 2;
        } else if (p[i] == '[') {
            i++;
            if (i < len && p[i] == '^')
                i++;
            if (i < len && p[i] == ']')
                i++;
            while (i < len && p[i] != ']')
                i += p[i] == '%' ? 2 : 1;
            i++;
        } else {
            i++;
        }
        if (i > len)
            break;
        if (i < len && (p[i] == '*' || p[i] == '+' || p[i] == '-')) {
            size_t n = i - start;
            int again = p[start] == '.' && n == 1;
            for (int j = 0; j < nseen && !again; j++)
                again = strlen(seen[j]) == n && memcmp(seen[j], p + start, n) == 0;
            if (again)
                k++;
            else if (nseen < 16 && n < sizeof seen[0])
                snprintf(seen[nseen++], sizeof seen[0], "%.*s", (int)n, p + start);
            i++;
        }
    }
    return k;
}

static int l_pattern_guard(lua_State *L)
{
    size_t n = 0, plen = 0;
    const char *subject = lua_tolstring(L, 1, &n);
    const char *pattern = lua_tolstring(L, 2, &plen);
    int plain = lua_toboolean(L, lua_upvalueindex(2)) && lua_toboolean(L, 4); /* find's plain */

    if (subject != NULL && pattern != NULL && !plain && n > 64) {
        int k = overlapping_quantifiers(pattern, plen);
        double steps = (double)n;
        for (int i = 0; i < k; i++)
            steps *= (double)n;
        if (k > 0 && steps > PATTERN_STEPS_MAX) {
            luaL_where(L, 1);
            lua_pushfstring(L,
                            "script_timeout: pattern \"%s\" has %d overlapping repetitions; on "
                            "a %d-character string it could run far past the CPU budget "
                            "(use fewer '.-'/'.*' or split the string first)",
                            pattern, k, (int)n);
            lua_concat(L, 2);
            return lua_error(L);
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static const char *const removed_globals[] = {"dofile", "loadfile", "warn", NULL};

/* Open the allowed libraries and trim them. Runs protected. */
static int setup_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},       {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math}, {LUA_UTF8LIBNAME, luaopen_utf8},
        {LUA_OSLIBNAME, luaopen_os},     {NULL, NULL},
    };
    for (const luaL_Reg *lib = libs; lib->func != NULL; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    for (const char *const *g = removed_globals; *g != NULL; g++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *g);
    }
    lua_getfield(L, -1, "load");
    lua_pushcclosure(L, l_load, 1);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, l_collectgarbage);
    lua_setfield(L, -2, "collectgarbage");
    lua_pushcfunction(L, l_print);
    lua_setfield(L, -2, "print");
    lua_pushcfunction(L, l_require);
    lua_setfield(L, -2, "require");
    lua_getfield(L, -1, "setmetatable");
    lua_pushcclosure(L, l_setmetatable, 1);
    lua_setfield(L, -2, "setmetatable");
    /* os: only the clock */
    lua_getfield(L, -1, "os");
    lua_createtable(L, 0, 3);
    lua_getfield(L, -2, "time");
    lua_pushcclosure(L, l_os_time, 1);
    lua_setfield(L, -2, "time");
    lua_getfield(L, -2, "date");
    lua_pushcclosure(L, l_os_date, 1);
    lua_setfield(L, -2, "date");
    lua_getfield(L, -2, "clock");
    lua_setfield(L, -2, "clock");
    lua_setfield(L, -3, "os");
    lua_pop(L, 1);
    /* no string.dump: no bytecode in or out */
    lua_getfield(L, -1, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    for (const char *const *f = (const char *const[]){"find", "match", "gmatch", "gsub", NULL};
         *f != NULL; f++) {
        lua_getfield(L, -1, *f);
        lua_pushboolean(L, strcmp(*f, "find") == 0);
        lua_pushcclosure(L, l_pattern_guard, 2);
        lua_setfield(L, -2, *f);
    }
    lua_pop(L, 2);
    /* LOADED is reachable from nowhere in the script; drop package-ish leftovers */
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_loaded);
    return 0;
}

/* ---- chat ---- */

static struct pl_call *chat_call(lua_State *L)
{
    struct pl_script *s = script_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_rawgetp(L, 1, &key_serial);
    if (s->call == NULL || !lua_isinteger(L, -1) || lua_tointeger(L, -1) != s->serial)
        luaL_error(L, "this chat object belongs to a handler that has returned; use the chat "
                      "passed to the current handler");
    lua_pop(L, 1);
    return s->call;
}

/* t[key] without metamethods; pushes it and returns its type. */
static int rawfield(lua_State *L, int t, const char *key)
{
    lua_pushstring(L, key);
    return lua_rawget(L, t < 0 ? t - 1 : t);
}

/* A string field of table t (absolute index), or NULL when absent; raises on a wrong type.
 * The string stays alive because the table holds it. */
static const char *str_field(lua_State *L, int t, const char *key, const char *what)
{
    const char *v = NULL;
    int type = rawfield(L, t, key);
    if (type == LUA_TSTRING) {
        size_t len;
        v = lua_tolstring(L, -1, &len);
        if (strlen(v) != len)
            raise_code(L, PL_BAD_UTF8, lua_pushfstring(L, "%s.%s contains a NUL byte", what, key));
    } else if (type != LUA_TNIL) {
        luaL_error(L, "%s.%s must be a string, not a %s", what, key, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

/* Raise when table t has a key outside allowed; the message lists the known keys. */
static void check_keys(lua_State *L, int t, const char *const *allowed, const char *what)
{
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        int ok = 0;
        size_t len = 0;
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *key = lua_tolstring(L, -1, &len);
            if (strlen(key) != len) /* "footer\0x" must not pass for footer */
                luaL_error(L, "%s: an option's name contains a NUL byte ('%s…')", what, key);
            for (const char *const *a = allowed; *a != NULL && !ok; a++)
                ok = strcmp(key, *a) == 0;
        }
        if (!ok) {
            luaL_Buffer known;
            luaL_buffinit(L, &known);
            for (const char *const *a = allowed; *a != NULL; a++) {
                if (a != allowed)
                    luaL_addstring(&known, ", ");
                luaL_addstring(&known, *a);
            }
            luaL_pushresult(&known);
            if (lua_type(L, -2) == LUA_TSTRING) {
                const char *key = lua_tostring(L, -2), *best = pl_error_closest(key, allowed);
                if (best != NULL)
                    luaL_error(L, "%s: unknown option '%s' (did you mean '%s'? known: %s)", what,
                               key, best, lua_tostring(L, -1));
                luaL_error(L, "%s: unknown option '%s' (known: %s)", what, key,
                           lua_tostring(L, -1));
            }
            luaL_error(L, "%s: unexpected %s key (known: %s)", what, luaL_typename(L, -2),
                       lua_tostring(L, -1));
        }
    }
}

static void parse_buttons(lua_State *L, int t, struct pl_message *m)
{
    static const char *const keys[] = {"id", "title", "url", "phone", NULL};
    lua_Integer n = (lua_Integer)lua_rawlen(L, t);
    struct pl_button *b;
    char what[48];

    if (n == 0)
        return;
    b = lua_newuserdatauv(L, (size_t)n * sizeof *b, 0); /* freed by Lua with the call */
    memset(b, 0, (size_t)n * sizeof *b);
    for (lua_Integer i = 1; i <= n; i++) {
        struct pl_button *x = &b[i - 1];
        int type = lua_rawgeti(L, t, i);
        snprintf(what, sizeof what, "buttons[%lld]", (long long)i);
        if (type == LUA_TSTRING) {
            size_t len;
            x->kind = PL_BUTTON_REPLY;
            x->title = x->id = lua_tolstring(L, -1, &len);
            if (strlen(x->title) != len)
                raise_code(L, PL_BAD_UTF8, lua_pushfstring(L, "%s contains a NUL byte", what));
        } else if (type == LUA_TTABLE) {
            int bt = lua_absindex(L, -1);
            check_keys(L, bt, keys, what);
            x->title = str_field(L, bt, "title", what);
            x->url = str_field(L, bt, "url", what);
            x->phone = str_field(L, bt, "phone", what);
            x->id = str_field(L, bt, "id", what);
            if (x->url != NULL && x->phone != NULL)
                luaL_error(L, "%s: a button has either url or phone, not both", what);
            x->kind = x->url != NULL     ? PL_BUTTON_URL
                      : x->phone != NULL ? PL_BUTTON_CALL
                                         : PL_BUTTON_REPLY;
            if (x->kind == PL_BUTTON_REPLY && x->id == NULL)
                x->id = x->title;
        } else {
            luaL_error(L, "%s must be a string or a table, not a %s", what, luaL_typename(L, -1));
        }
        lua_pop(L, 1); /* the table t still holds the strings */
    }
    m->buttons = b;
    m->nbuttons = (size_t)n;
}

static void parse_rows(lua_State *L, int t, struct pl_list_section *sec, const char *what)
{
    static const char *const keys[] = {"id", "title", "description", NULL};
    lua_Integer n = (lua_Integer)lua_rawlen(L, t);
    struct pl_list_row *rows;
    char w[64];

    /* the rules judge the count; this only keeps absurd sizes from being built at all */
    if (n > LIST_PARSE_MAX)
        raise_code(L, PL_LIST_INVALID,
                   lua_pushfstring(L, "%s has %d rows; WhatsApp allows at most %d in all sections",
                                   what, (int)n, script_of(L)->lim->list_rows_max));
    rows = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *rows, 0); /* left on top */
    for (lua_Integer i = 1; i <= n; i++) {
        snprintf(w, sizeof w, "%s.rows[%lld]", what, (long long)i);
        if (lua_rawgeti(L, t, i) != LUA_TTABLE)
            luaL_error(L, "%s must be a table {id=, title=, description=}", w);
        int rt = lua_absindex(L, -1);
        check_keys(L, rt, keys, w);
        rows[i - 1].id = str_field(L, rt, "id", w);
        rows[i - 1].title = str_field(L, rt, "title", w);
        rows[i - 1].description = str_field(L, rt, "description", w);
        if (rows[i - 1].id == NULL)
            rows[i - 1].id = rows[i - 1].title;
        lua_pop(L, 1);
    }
    sec->rows = rows;
    sec->nrows = (size_t)n;
}

/* opts.list: { button = "…", sections = { { title = …, rows = { {id, title, description} } } } }
 * or, for one section, { button = "…", rows = { … } }. Leaves its userdata on the stack. */
static void parse_list(lua_State *L, int t, struct pl_message *m)
{
    static const char *const keys[] = {"button", "sections", "rows", "title", NULL};
    struct pl_list *list = lua_newuserdatauv(L, sizeof *list, 0);
    struct pl_list_section *secs;
    lua_Integer n;
    int st, anchor;

    lua_newtable(L); /* keeps each section's rows alive without growing the stack */
    anchor = lua_gettop(L);
    memset(list, 0, sizeof *list);
    check_keys(L, t, keys, "list");
    list->button = str_field(L, t, "button", "list");
    if (rawfield(L, t, "sections") == LUA_TTABLE) {
        st = lua_absindex(L, -1);
        n = (lua_Integer)lua_rawlen(L, st);
        if (n > LIST_PARSE_MAX)
            raise_code(L, PL_LIST_INVALID,
                       lua_pushfstring(L, "%d sections; WhatsApp allows at most %d", (int)n,
                                       script_of(L)->lim->list_sections_max));
        secs = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *secs, 0);
        memset(secs, 0, (size_t)(n > 0 ? n : 1) * sizeof *secs);
        for (lua_Integer i = 1; i <= n; i++) {
            static const char *const skeys[] = {"title", "rows", NULL};
            char what[40];
            snprintf(what, sizeof what, "list.sections[%lld]", (long long)i);
            if (lua_rawgeti(L, st, i) != LUA_TTABLE)
                luaL_error(L, "%s must be a table {title=, rows=}", what);
            int sec = lua_absindex(L, -1);
            check_keys(L, sec, skeys, what);
            secs[i - 1].title = str_field(L, sec, "title", what);
            if (rawfield(L, sec, "rows") != LUA_TTABLE)
                luaL_error(L, "%s.rows must be a list of rows", what);
            parse_rows(L, lua_absindex(L, -1), &secs[i - 1], what);
            /* keep the rows' userdata alive in the sections' own table (not on the stack,
             * which would grow with every section) */
            lua_rawsetp(L, anchor, &secs[i - 1]);
            lua_settop(L, sec - 1);
        }
        list->sections = secs;
        list->nsections = (size_t)n;
        /* stack: … sections secs rowsud… — all anchored until the call returns */
    } else if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        if (rawfield(L, t, "rows") != LUA_TTABLE)
            luaL_error(L, "list needs sections = {…} or rows = {…}");
        secs = lua_newuserdatauv(L, sizeof *secs, 0);
        memset(secs, 0, sizeof *secs);
        secs->title = str_field(L, t, "title", "list");
        parse_rows(L, lua_absindex(L, -2), secs, "list");
        list->sections = secs;
        list->nsections = 1;
    } else {
        luaL_error(L, "list.sections must be a list of sections");
    }
    m->list = list;
}

static void parse_media(lua_State *L, int opts, const char *key, enum pl_media_kind kind,
                        struct pl_message *m)
{
    static const char *const keys[] = {"link", "caption", "filename", NULL};
    int type = rawfield(L, opts, key);

    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (m->media.kind != PL_MEDIA_NONE)
        luaL_error(L, "a message carries one media: image or document, not both");
    m->media.kind = kind;
    if (type == LUA_TSTRING) {
        m->media.link = lua_tostring(L, -1);
        lua_pop(L, 1);
        return;
    }
    if (type != LUA_TTABLE)
        luaL_error(L, "%s must be a link or a table {link=, caption=%s}", key,
                   kind == PL_MEDIA_DOCUMENT ? ", filename=" : "");
    int t = lua_absindex(L, -1);
    check_keys(L, t, keys, key);
    m->media.link = str_field(L, t, "link", key);
    m->media.caption = str_field(L, t, "caption", key);
    m->media.filename = str_field(L, t, "filename", key);
    lua_pop(L, 1);
}

static void add_send(lua_State *L, struct pl_call *call, char *body, const char *kind,
                     const char *template_name)
{
    char id[64];
    struct pl_send *grown, *x;

    call->new_id(call->new_id_ud, id, sizeof id);
    grown = realloc(call->sends, (call->nsends + 1) * sizeof *grown);
    if (grown == NULL) {
        free(body);
        luaL_error(L, "script_memory: out of memory queueing a message");
    }
    call->sends = grown;
    x = &call->sends[call->nsends];
    x->local_id = strdup(id);
    x->kind = strdup(kind);
    x->template_name = template_name != NULL ? strdup(template_name) : NULL;
    x->body = body;
    if (x->local_id == NULL || x->kind == NULL ||
        (template_name != NULL && x->template_name == NULL)) {
        free(x->local_id);
        free(x->kind);
        free(x->template_name);
        free(body);
        luaL_error(L, "script_memory: out of memory queueing a message");
    }
    call->nsends++;
    lua_pushstring(L, id);
}

static void check_window(lua_State *L, const struct pl_script *s, const struct pl_call *call)
{
    struct pl_verdict v;
    if (pl_rules_check_window(s->lim, call->now, call->last_inbound, &v) != 0)
        raise_code(L, v.code, v.detail);
}

/* chat:send(text [, opts]) -> local message id */
static int l_chat_send(lua_State *L)
{
    static const char *const keys[] = {"buttons", "header", "footer",   "preview_url",
                                       "list",    "image",  "document", NULL};
    struct pl_script *s = script_of(L);
    struct pl_call *call = chat_call(L);
    struct pl_message m;
    struct pl_verdict v;
    struct pl_error err;
    const char *kind;
    char *body;
    size_t len;

    memset(&m, 0, sizeof m);
    if (!lua_isnoneornil(L, 2)) {
        m.text = luaL_checklstring(L, 2, &len);
        if (strlen(m.text) != len)
            raise_code(L, PL_BAD_UTF8, "text contains a NUL byte");
    }
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        check_keys(L, 3, keys, "chat:send options");
        m.header = str_field(L, 3, "header", "opts");
        m.footer = str_field(L, 3, "footer", "opts");
        if (rawfield(L, 3, "preview_url") != LUA_TNIL)
            m.preview_url = lua_toboolean(L, -1);
        lua_pop(L, 1);
        int type = rawfield(L, 3, "buttons");
        if (type == LUA_TTABLE)
            parse_buttons(L, lua_absindex(L, -1), &m);
        else if (type != LUA_TNIL)
            luaL_error(L, "opts.buttons must be a list of buttons");
        type = rawfield(L, 3, "list");
        if (type == LUA_TTABLE)
            parse_list(L, lua_absindex(L, -1), &m);
        else if (type != LUA_TNIL)
            luaL_error(L, "opts.list must be a table");
        parse_media(L, 3, "image", PL_MEDIA_IMAGE, &m);
        parse_media(L, 3, "document", PL_MEDIA_DOCUMENT, &m);
    }
    if (pl_rules_check_message(s->lim, &m, &v) != 0)
        raise_code(L, v.code, v.detail);
    check_window(L, s, call);
    body = pl_outbound_message_json(s->lim, &m, call->contact, &kind, &err);
    if (body == NULL)
        return luaL_error(L, "script_memory: %s", err.msg);
    add_send(L, call, body, kind, NULL);
    return 1;
}

/* Parameters from a Lua value: a list (positional) or a table with string keys (named).
 * Values may be strings or numbers. The array lives in a userdata left on the stack. */
static const struct pl_tpl_param *parse_params(lua_State *L, int t, const char *what, size_t *n)
{
    struct pl_tpl_param *p;
    size_t count = 0, named = 0;

    *n = 0;
    if (lua_isnoneornil(L, t))
        return NULL;
    t = lua_absindex(L, t);
    if (lua_type(L, t) == LUA_TSTRING || lua_type(L, t) == LUA_TNUMBER) {
        p = lua_newuserdatauv(L, sizeof *p, 0);
        p->name = NULL;
        p->value = lua_tostring(L, t); /* converted in place on the caller's stack */
        *n = 1;
        return p;
    }
    if (!lua_istable(L, t))
        luaL_error(L, "%s must be a list or a table of values", what);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING)
            named++;
        else if (!lua_isinteger(L, -1))
            luaL_error(L, "%s: keys must be 1..n or parameter names", what);
        if (++count > 100)
            luaL_error(L, "%s: more than 100 parameters", what);
    }
    if (named != 0 && named != count)
        luaL_error(L, "%s: use either a list (positional) or names (named), not both", what);
    p = lua_newuserdatauv(L, (count > 0 ? count : 1) * sizeof *p, 0);
    memset(p, 0, (count > 0 ? count : 1) * sizeof *p);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        int vt = lua_type(L, -1);
        if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
            luaL_error(L, "%s: values must be strings or numbers, not %s", what,
                       luaL_typename(L, -1));
        if (vt == LUA_TNUMBER) { /* store the string form in the table, where it stays alive */
            lua_pushvalue(L, -2);
            lua_pushstring(L, lua_tostring(L, -2));
            lua_rawset(L, t);
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_rawget(L, t);
        }
        if (named == 0) {
            lua_Integer k = lua_tointeger(L, -2);
            if (k < 1 || (size_t)k > count)
                luaL_error(L, "%s: positional parameters are a list 1..n", what);
            p[k - 1].value = lua_tostring(L, -1);
        } else {
            p[i].name = lua_tostring(L, -2);
            p[i].value = lua_tostring(L, -1);
        }
        i++;
        lua_pop(L, 1);
    }
    for (size_t k = 0; named == 0 && k < count; k++)
        if (p[k].value == NULL)
            luaL_error(L, "%s: parameter %d is missing (a list needs 1..n without holes)", what,
                       (int)k + 1);
    *n = count;
    return p;
}

/* opts.buttons for a template: values by 1-based position of the template's buttons
 * ({ [2] = "A-17" } or a list); index = position - 1. Userdata left on the stack. */
static const struct pl_tpl_button_value *parse_button_values(lua_State *L, int t, size_t *n)
{
    struct pl_tpl_button_value *b;
    size_t count = 0, i = 0;

    *n = 0;
    if (lua_isnoneornil(L, t))
        return NULL;
    t = lua_absindex(L, t);
    luaL_argcheck(L, lua_istable(L, t), 3, "opts.buttons must be a table of button values");
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        count++;
        lua_pop(L, 1);
    }
    b = lua_newuserdatauv(L, (count > 0 ? count : 1) * sizeof *b, 0);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > 10)
            luaL_error(L, "opts.buttons: keys are button positions 1..10");
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "opts.buttons[%d] must be a string (a URL suffix or a payload)",
                       (int)lua_tointeger(L, -2));
        b[i].index = (int)lua_tointeger(L, -2) - 1;
        b[i].value = lua_tostring(L, -1);
        i++;
        lua_pop(L, 1);
    }
    *n = count;
    return b;
}

/* chat:template(name [, opts]) -> local message id. opts: lang, params, header, buttons. */
static int l_chat_template(lua_State *L)
{
    static const char *const keys[] = {"lang", "params", "header", "buttons", NULL};
    struct pl_script *s = script_of(L);
    struct pl_call *call = chat_call(L);
    struct pl_tpl_send req;
    const struct pl_template *tpl = NULL;
    struct pl_verdict v;
    struct pl_error err;
    char *body;

    memset(&req, 0, sizeof req);
    req.name = luaL_checkstring(L, 2);
    req.language = call->language;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        check_keys(L, 3, keys, "chat:template options");
        const char *lang = str_field(L, 3, "lang", "opts");
        if (lang != NULL)
            req.language = lang;
        rawfield(L, 3, "params");
        req.body = parse_params(L, -1, "opts.params", &req.nbody);
        int ht = rawfield(L, 3, "header");
        if (ht == LUA_TTABLE) {
            static const char *const hkeys[] = {"link", "text", NULL};
            int h = lua_absindex(L, -1);
            check_keys(L, h, hkeys, "opts.header");
            req.header_media_link = str_field(L, h, "link", "opts.header");
            const char *text = str_field(L, h, "text", "opts.header");
            if (text != NULL) {
                lua_pushstring(L, text);
                req.header = parse_params(L, -1, "opts.header", &req.nheader);
            }
        } else if (ht != LUA_TNIL) {
            req.header = parse_params(L, -1, "opts.header", &req.nheader);
        }
        rawfield(L, 3, "buttons");
        req.buttons = parse_button_values(L, -1, &req.nbuttons);
    }
    if (call->templates == NULL) {
        char detail[300];
        snprintf(detail, sizeof detail,
                 "template \"%s\" (%s): channel %s has no templates registry (set \"templates\" in "
                 "its config)",
                 req.name, req.language != NULL ? req.language : "?", call->channel);
        return raise_code(L, PL_UNKNOWN_TEMPLATE, detail);
    }
    if (pl_templates_check(call->templates, s->lim, &req, call->now, &tpl, &v) != 0)
        return raise_code(L, v.code, v.detail);
    /* outside the window a template is business-initiated: consent and the daily limit */
    int business = pl_rules_window_left(s->lim, call->now, call->last_inbound) <= 0;
    if (business) {
        long limit = -1, recent = 0;
        int already = 0;
        if (call->business_count != NULL &&
            call->business_count(call->business_ud, &limit, &recent, &already) != 0)
            return luaL_error(L, "script_error: the daily limit's count could not be read");
        if (call->business) /* an earlier template of this call already counted the contact */
            already = 1;
        if (pl_rules_check_business(call->last_inbound, call->opted_in || call->opt_in, limit,
                                    recent, already, call->contact, &v) != 0)
            return raise_code(L, v.code, v.detail);
    }
    body = pl_outbound_template_json(tpl, &req, call->contact, &err);
    if (body == NULL)
        return luaL_error(L, "script_memory: %s", err.msg);
    add_send(L, call, body, "template", req.name);
    if (business)
        call->business = 1;
    return 1;
}

static int l_chat_window(lua_State *L)
{
    struct pl_script *s = script_of(L);
    struct pl_call *call = chat_call(L);
    lua_pushinteger(L, pl_rules_window_left(s->lim, call->now, call->last_inbound));
    return 1;
}

static int l_chat_opt_in(lua_State *L)
{
    struct pl_call *call = chat_call(L);
    const char *source = luaL_optstring(L, 2, "script");
    char *copy = strdup(source);
    if (copy == NULL)
        return luaL_error(L, "script_memory: out of memory");
    free(call->opt_in_source);
    call->opt_in_source = copy;
    call->opt_in = 1;
    return 0;
}

static const luaL_Reg chat_methods[] = {
    {"send", l_chat_send},
    {"template", l_chat_template},
    {"window", l_chat_window},
    {"opt_in", l_chat_opt_in},
    {NULL, NULL},
};

/* Push the chat table for the current call. */
static void push_chat(lua_State *L, struct pl_script *s, struct pl_call *call)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, call->channel);
    lua_setfield(L, -2, "channel");
    lua_createtable(L, 0, 2);
    lua_pushstring(L, call->contact);
    lua_setfield(L, -2, "wa_id");
    if (call->contact_name != NULL) {
        lua_pushstring(L, call->contact_name);
        lua_setfield(L, -2, "name");
    }
    lua_setfield(L, -2, "contact");
    json_t *session = pl_session_parse(call->session_json);
    if (json_is_object(session) || json_is_array(session))
        push_json(L, session);
    else
        lua_newtable(L);
    json_decref(session);
    lua_setfield(L, -2, "session");
    lua_pushinteger(L, s->serial);
    lua_rawsetp(L, -2, &key_serial);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_chat_mt);
    lua_setmetatable(L, -2);
}

/* The protected body of a handler call: stack [call]. */
static int call_body(lua_State *L)
{
    struct pl_script *s = script_of(L);
    struct pl_call *call = lua_touserdata(L, 1);
    char path[256] = "chat.session", err[300] = "";

    lua_rawgeti(L, LUA_REGISTRYINDEX, s->handlers_ref);
    if (lua_getfield(L, -1, call->handler) != LUA_TFUNCTION)
        return 0;
    int handler = lua_absindex(L, -1);
    push_chat(L, s, call);
    int chat = lua_absindex(L, -1);
    lua_pushvalue(L, handler);
    lua_pushvalue(L, chat);
    if (call->event != NULL)
        push_json(L, call->event);
    else
        lua_newtable(L);
    lua_call(L, 2, 0);
    /* the session the handler left behind; converting it cannot raise */
    if (rawfield(L, chat, "session") == LUA_TNIL) {
        call->session_out = strdup("{}");
    } else {
        struct conv_budget b = {JSON_MAX_NODES, JSON_MAX_BYTES};
        json_t *j = to_json(L, -1, 0, path, sizeof path, err, sizeof err, &b);
        if (j == NULL)
            return luaL_error(L, "script_error: %s", err);
        call->session_out = pl_json_dump(j); /* what pl_session_parse reads back */
        json_decref(j);
    }
    if (call->session_out == NULL)
        return luaL_error(L, "script_memory: out of memory saving chat.session");
    return 0;
}

/* ---- loading ---- */

/* The protected body of loading: sandbox, compile, run the top level, check the result. */
static int load_body(lua_State *L)
{
    struct pl_script *s = lua_touserdata(L, 1);

    setup_sandbox(L);
    luaL_newlib(L, chat_methods);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "chat");
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_chat_mt);
    lua_pop(L, 1);

    lua_pushfstring(L, "@%s", s->path);
    const char *chunkname = lua_tostring(L, -1);
    FILE *f = fopen(s->path, "rb");
    if (f == NULL)
        return luaL_error(L, "%s: cannot read: %s", s->path, strerror(errno));
    fclose(f);
    (void)chunkname;
    if (luaL_loadfilex(L, s->path, "t") != LUA_OK)
        return lua_error(L);
    remember_file(s, s->path);
    lua_call(L, 0, 1);
    if (!lua_istable(L, -1))
        return luaL_error(L, "%s: the script must return a table of handlers (got %s)", s->path,
                          luaL_typename(L, -1));
    /* every on_* key must be a known handler and a function */
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING && strncmp(lua_tostring(L, -2), "on_", 3) == 0) {
            const char *k = lua_tostring(L, -2);
            int known = 0;
            for (const char *const *h = handler_names; *h != NULL; h++)
                known |= strcmp(k, *h) == 0;
            if (!known)
                return luaL_error(L,
                                  "%s: unknown handler '%s' (handlers are on_message, "
                                  "on_button, on_status, on_trigger)",
                                  s->path, k);
            if (!lua_isfunction(L, -1))
                return luaL_error(L, "%s: handler '%s' must be a function, not a %s", s->path, k,
                                  luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
    s->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_gc(L, LUA_GCCOLLECT, 0); /* here, under the load budget */
    return 0;
}

static char *dirname_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

struct pl_script *pl_script_load(const struct pl_script_opts *opts, struct pl_error *err)
{
    struct pl_script *s = calloc(1, sizeof *s);
    int rc;

    if (s == NULL) {
        pl_error_set(err, "script_memory", "out of memory");
        return NULL;
    }
    s->channel = strdup(opts->channel);
    s->path = strdup(opts->path);
    s->dir = dirname_of(opts->path);
    s->stdlib_dir = opts->stdlib_dir != NULL ? strdup(opts->stdlib_dir) : NULL;
    s->lim = opts->limits;
    s->cpu_ms = opts->cpu_ms > 0 ? opts->cpu_ms : 200;
    s->mem_limit = (size_t)(opts->memory_mb > 0 ? opts->memory_mb : 64) << 20;
    s->handlers_ref = LUA_NOREF;
    if (s->channel == NULL || s->path == NULL || s->dir == NULL ||
        (opts->stdlib_dir != NULL && s->stdlib_dir == NULL) ||
        (s->L = lua_newstate(script_alloc, s)) == NULL) {
        pl_error_set(err, "script_memory", "%s: out of memory creating a Lua state", opts->path);
        pl_script_free(s);
        return NULL;
    }
    lua_pushcfunction(s->L, msgh);
    lua_pushcfunction(s->L, load_body);
    lua_pushlightuserdata(s->L, s);
    budget_start(s, s->cpu_ms * 5); /* loading may require modules: a little more room */
    rc = lua_pcall(s->L, 1, 0, 1);
    budget_stop(s);
    if (rc != LUA_OK || s->timed_out || over_cap(s)) {
        const char *msg = rc == LUA_ERRMEM || over_cap(s)
                              ? "script_memory: the script reached its memory cap while loading"
                              : lua_tostring(s->L, -1);
        pl_error_set(err,
                     rc == LUA_ERRMEM || over_cap(s) ? "script_memory"
                     : s->timed_out                  ? "script_timeout"
                                                     : "script_error",
                     "%s", msg != NULL ? msg : "unknown error");
        pl_script_free(s);
        return NULL;
    }
    lua_settop(s->L, 0);
    return s;
}

void pl_script_free(struct pl_script *s)
{
    if (s == NULL)
        return;
    if (s->L != NULL)
        lua_close(s->L);
    for (size_t i = 0; i < s->nfiles; i++)
        free(s->files[i]);
    free(s->channel);
    free(s->path);
    free(s->dir);
    free(s->stdlib_dir);
    free(s);
}

int pl_script_has(const struct pl_script *s, const char *handler)
{
    int has;
    lua_rawgeti(s->L, LUA_REGISTRYINDEX, s->handlers_ref);
    has = lua_getfield(s->L, -1, handler) == LUA_TFUNCTION;
    lua_pop(s->L, 2);
    return has;
}

void pl_call_clear(struct pl_call *call)
{
    for (size_t i = 0; i < call->nsends; i++) {
        free(call->sends[i].local_id);
        free(call->sends[i].kind);
        free(call->sends[i].body);
        free(call->sends[i].template_name);
    }
    free(call->sends);
    free(call->session_out);
    free(call->opt_in_source);
    free(call->traceback);
    call->sends = NULL;
    call->nsends = 0;
    call->session_out = NULL;
    call->opt_in_source = NULL;
    call->opt_in = 0;
    call->business = 0;
    call->traceback = NULL;
    call->code = PL_OK;
}

int pl_script_call(struct pl_script *s, struct pl_call *call, struct pl_error *err)
{
    lua_State *L = s->L;
    int rc;

    call->code = PL_OK;
    s->call = call;
    s->serial++;
    s->now = call->now;
    lua_settop(L, 0);
    lua_pushcfunction(L, msgh);
    lua_pushcfunction(L, call_body);
    lua_pushlightuserdata(L, call);
    budget_start(s, s->cpu_ms);
    rc = lua_pcall(L, 1, 0, 1);
    budget_stop(s);
    s->call = NULL;
    if (rc == LUA_OK && !s->timed_out && !over_cap(s)) {
        lua_settop(L, 0);
        return 0;
    }
    /* failed: nothing it queued leaves, the session stays as it was */
    const char *msg = lua_tostring(L, -1);
    enum pl_code code;
    if (rc == LUA_ERRMEM || over_cap(s)) {
        code = PL_SCRIPT_MEMORY;
        if (rc == LUA_ERRMEM || msg == NULL || strstr(msg, "script_memory") == NULL)
            msg = "script_memory: the channel's Lua state reached its memory cap";
    } else if (s->timed_out) {
        code = PL_SCRIPT_TIMEOUT;
        if (msg == NULL || strstr(msg, "script_timeout") == NULL)
            msg = "script_timeout: the handler ran out of CPU time";
    } else {
        code = msg != NULL ? code_of_message(msg) : PL_SCRIPT_ERROR;
    }
    pl_error_set(err, pl_code_name(code), "%s", msg != NULL ? msg : "unknown error");
    pl_call_clear(call);
    call->code = code;
    if (rc != LUA_ERRMEM) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &key_traceback);
        if (lua_isstring(L, -1))
            call->traceback = strdup(lua_tostring(L, -1));
    }
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_traceback);
    lua_settop(L, 0);
    return -1;
}

size_t pl_script_memory(const struct pl_script *s)
{
    return s->mem_used;
}

const char *const *pl_script_files(const struct pl_script *s)
{
    return (const char *const *)s->files;
}
