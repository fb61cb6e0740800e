/* luaapi.h - the only file that knows the Lua API: a channel's sandboxed Lua state (struct
 * pl_script), the `chat` object and its methods, events as Lua tables, chat.session <-> JSON,
 * and the CPU and memory budgets. The engine owns scripts and calls handlers through here. */
#ifndef PL_LUAAPI_H
#define PL_LUAAPI_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>

#include "error.h"
#include "rules.h"
#include "templates.h"

struct pl_script;

struct pl_script_opts {
    const char *channel;    /* channel id */
    const char *path;       /* the script file */
    const char *stdlib_dir; /* folder holding parley/<name>.lua modules; may be NULL */
    const struct pl_limits *limits;
    long cpu_ms;    /* CPU budget per handler call (and for loading) */
    long memory_mb; /* memory cap of the state */
};

/* One queued message, produced by chat:send / chat:template. Owned by the call. */
struct pl_send {
    char *local_id;
    char *kind;          /* "text", "interactive", "image", "document", "template" */
    char *body;          /* the provider request body (Cloud API JSON) */
    char *template_name; /* template sends only */
};

/* Everything one handler call needs and produces. The caller fills the inputs, calls
 * pl_script_call, then owns the outputs (pl_call_clear frees them). */
struct pl_call {
    /* inputs (borrowed) */
    const char *handler; /* "on_message", "on_button", "on_status", "on_trigger" */
    const char *channel;
    const char *contact;                  /* wa_id */
    const char *contact_name;             /* may be NULL */
    const char *session_json;             /* the stored session, NULL for a new conversation */
    json_t *event;                        /* the event table's contents */
    long long now;                        /* unix seconds: the clock the rules see */
    long long last_inbound;               /* when the contact last wrote (0 = never): the window */
    int opted_in;                         /* the contact has a recorded opt-in */
    const char *language;                 /* the channel's default template language */
    const struct pl_templates *templates; /* the channel's registry; NULL when it has none */
    /* The daily limit's accounting, asked only when a template goes outside the window: the
     * limit in force (<0: none), the recipients counted in the rolling 24 h, and whether this
     * contact is one of them. Returns 0, or -1 when it cannot tell (the send is refused). */
    int (*business_count)(void *ud, long *limit, long *recent, int *already);
    void *business_ud;
    /* local message ids: the caller's generator writes a NUL-terminated id into buf */
    void (*new_id)(void *ud, char *buf, size_t size);
    void *new_id_ud;
    /* outputs */
    struct pl_send *sends;
    size_t nsends;
    char *session_out; /* the session after the call, as JSON (NULL when unchanged/absent) */
    int opt_in;        /* chat:opt_in() was called */
    int business;      /* a business-initiated message was queued (counts for the limit) */
    char *opt_in_source;
    enum pl_code code; /* PL_OK, or why the call failed */
    char *traceback;   /* on failure, the Lua traceback */
};

/* Create a fresh sandboxed state, load and run the script's top level under the budgets; it
 * must return a table of handlers. Returns NULL with err (code "script_error", msg with
 * file:line) on failure. */
struct pl_script *pl_script_load(const struct pl_script_opts *opts, struct pl_error *err);

void pl_script_free(struct pl_script *s);

/* 1 when the script defines the handler. */
int pl_script_has(const struct pl_script *s, const char *handler);

/* Run one handler. Returns 0 on success with call's outputs set, -1 when the handler raised or
 * broke a budget: err->code is the rule code or script_error/script_timeout/script_memory, and
 * err->msg the Lua message ("scripts/x.lua:12: label_too_long: …"). On failure the sends are
 * discarded (call->nsends == 0) and session_out is NULL. Calling a handler the script lacks is
 * a success that does nothing. */
int pl_script_call(struct pl_script *s, struct pl_call *call, struct pl_error *err);

/* Free a call's outputs and reset them. */
void pl_call_clear(struct pl_call *call);

/* Bytes the state uses now (for /healthz and metrics). */
size_t pl_script_memory(const struct pl_script *s);

/* The files the script has loaded so far (the script, then each module `require`d): a
 * NULL-terminated array owned by the script; the watcher uses it. */
const char *const *pl_script_files(const struct pl_script *s);

/* JSON <-> Lua, the conversions chat.session and events use (for the test runner too).
 * pl_lua_push_json pushes j (objects and arrays become tables, null nil); raises only on memory
 * errors. pl_lua_to_json converts the value at idx without raising: a new reference, or NULL
 * with a message naming the offending key in err. */
void pl_lua_push_json(lua_State *L, json_t *j);
json_t *pl_lua_to_json(lua_State *L, int idx, char *err, size_t errsz);

/* A stored chat.session (the JSON that session_out held) as a tree: a new reference, or NULL
 * when json is NULL or not JSON. Its strings may hold NUL bytes (stored as \u0000). */
json_t *pl_session_parse(const char *json);

#endif
