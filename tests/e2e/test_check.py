"""`parley check` and the command line's exit statuses (DESIGN.md "Command line": 0 ok, 1 a reported
problem, 2 bad usage), and the Lua sandbox proved from inside a running server: what a scenario
can reach, what `require` and `load` refuse, and that the CPU and memory budgets abort a handler
even through pcall while the next message is still answered. Each test returns None or raises."""

import json
import os
import shutil
import subprocess
import tempfile

import harness

OK_SCRIPT = 'return { on_message = function(chat, msg) chat:send("hi") end }\n'


class Folder:
    """A throwaway folder holding a config and scripts; `parley` runs with it as the working
    directory, so the paths it prints are the relative ones written here."""

    def __init__(self, files):
        self.dir = tempfile.mkdtemp(prefix="parley-check-")
        for name, text in files.items():
            path = os.path.join(self.dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text if isinstance(text, str) else json.dumps(text, ensure_ascii=False))

    def run(self, binary, *args, env=None):
        full = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_E2E_")}
        full.update({"WA_APP_SECRET": "s", "WA_VERIFY_TOKEN": "v"})
        full.update(env or {})
        p = subprocess.run([os.path.abspath(binary)] + list(args), cwd=self.dir, env=full,
                           capture_output=True, timeout=30)
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert marker not in err, "sanitizer report:\n" + err
        return p.returncode, out, err

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def config(channels=None, **top):
    cfg = {
        "app_secret": "$WA_APP_SECRET",
        "verify_token": "$WA_VERIFY_TOKEN",
        "provider": {"kind": "sandbox"},
        "channels": channels or {"main": {"phone_number_id": "106540352242922", "script": "scripts/main.lua"}},
    }
    cfg.update(top)
    return cfg


def check(binary, files, *args, env=None):
    f = Folder(files)
    try:
        return f.run(binary, "check", *args, env=env)
    finally:
        f.cleanup()


def expect(got, rc, stdout):
    assert got[0] == rc and got[1] == stdout, "want exit %d and stdout %r, got exit %d, stdout %r, stderr %r" % (
        rc, stdout, got[0], got[1], got[2])


# ---- parley check ----

def test_check_ok_config_exits_0_with_an_ok_line(binary):
    got = check(binary, {"parley.json": config(), "scripts/main.lua": OK_SCRIPT}, "-c", "parley.json")
    expect(got, 0, "ok: parley.json: 1 channel\n")


def test_check_syntax_error_is_file_line_script_error_and_luas_message(binary):
    bad = 'return {\n  on_message = function(chat, msg)\n    chat:send("x"\n  end,\n}\n'
    files = {"parley.json": config(), "scripts/main.lua": bad}
    want = "scripts/main.lua:4: script_error: ')' expected (to close '(' at line 3) near 'end'\n"
    expect(check(binary, files, "scripts/main.lua"), 1, want)
    expect(check(binary, files, "-c", "parley.json"), 1, want)


def test_check_script_that_raises_at_load_names_its_line(binary):
    script = 'local limits = { max = 3 }\nlocal n = limits.max + nil\nreturn {}\n'
    got = check(binary, {"s.lua": script}, "s.lua")
    expect(got, 1, "s.lua:2: script_error: attempt to perform arithmetic on a nil value\n")
    got = check(binary, {"s.lua": 'error("no tariffs configured")\n'}, "s.lua")
    expect(got, 1, "s.lua:1: script_error: no tariffs configured\n")


def test_check_script_returning_a_non_table(binary):
    rc, out, err = check(binary, {"s.lua": "return 42\n"}, "s.lua")
    assert rc == 1, (rc, out, err)
    assert out.startswith("s.lua: script_error: "), out
    assert out.endswith("the script must return a table of handlers (got number)\n"), out
    rc, out, err = check(binary, {"s.lua": "local M = {}\n"}, "s.lua")
    assert rc == 1 and out.endswith("the script must return a table of handlers (got nil)\n"), (rc, out)


def test_check_unknown_handler_is_named(binary):
    script = 'return { on_mesage = function(chat, msg) end }\n'
    rc, out, err = check(binary, {"s.lua": script}, "s.lua")
    assert rc == 1, (rc, out, err)
    assert out.startswith("s.lua: script_error: "), out
    assert "unknown handler 'on_mesage' (handlers are on_message, on_button, on_status, on_trigger)" in out, out
    rc, out, err = check(binary, {"s.lua": 'return { on_message = "hi" }\n'}, "s.lua")
    assert rc == 1 and "handler 'on_message' must be a function, not a string" in out, (rc, out)


def test_check_config_unknown_key_suggests_the_right_one(binary):
    cfg = config({"main": {"phone_number_id": "106540352242922", "scirpt": "scripts/main.lua"}})
    rc, out, err = check(binary, {"parley.json": cfg, "scripts/main.lua": OK_SCRIPT}, "-c", "parley.json")
    assert rc == 1, (rc, out, err)
    assert 'channels.main.scirpt: unknown key (did you mean "script"?)' in out, out
    assert out.count("\n") == 1, out


def test_check_config_missing_env_var_names_key_and_variable(binary):
    cfg = config(trigger_token="$PARLEY_E2E_UNSET_TOKEN")
    rc, out, err = check(binary, {"parley.json": cfg, "scripts/main.lua": OK_SCRIPT}, "-c", "parley.json")
    assert rc == 1, (rc, out, err)
    assert "trigger_token: environment variable PARLEY_E2E_UNSET_TOKEN is not set" in out, out
    # set, it passes: the failure was the variable and nothing else
    rc, out, err = check(binary, {"parley.json": cfg, "scripts/main.lua": OK_SCRIPT}, "-c", "parley.json",
                         env={"PARLEY_E2E_UNSET_TOKEN": "t0ken"})
    assert rc == 0 and out == "ok: parley.json: 1 channel\n", (rc, out, err)


def test_check_every_channel_script_is_reported(binary):
    cfg = config({"a": {"phone_number_id": "1", "script": "scripts/a.lua"},
                  "b": {"phone_number_id": "2", "script": "scripts/b.lua"},
                  "c": {"phone_number_id": "3", "script": "scripts/c.lua"}})
    files = {"parley.json": cfg, "scripts/a.lua": 'error("a is broken")\n', "scripts/b.lua": OK_SCRIPT,
             "scripts/c.lua": 'x = = 1\n'}
    expect(check(binary, files, "-c", "parley.json"), 1,
           "scripts/a.lua:1: script_error: a is broken\n"
           "scripts/c.lua:1: script_error: unexpected symbol near '='\n")


def test_check_standalone_scripts(binary):
    files = {"a.lua": OK_SCRIPT, "b.lua": 'return { on_button = function(chat, press) end }\n',
             "bad.lua": 'error("bad")\n'}
    expect(check(binary, files, "a.lua", "b.lua"), 0, "ok: 2 scripts\n")
    expect(check(binary, files, "a.lua"), 0, "ok: 1 script\n")
    expect(check(binary, files, "a.lua", "bad.lua", "b.lua"), 1, "bad.lua:1: script_error: bad\n")
    rc, out, err = check(binary, files, "missing.lua")
    assert rc == 1 and "missing.lua" in out and "No such file or directory" in out, (rc, out, err)


def test_bad_usage_exits_2_with_the_usage(binary):
    f = Folder({"parley.json": config(), "scripts/main.lua": OK_SCRIPT})
    try:
        for args, why in ((["check", "--bogus"], "unknown option --bogus"),
                          (["frobnicate"], "unknown command 'frobnicate'"),
                          ([], "no command given"),
                          (["check", "-c"], "option -c needs a value"),
                          (["serve", "extra"], "serve takes no arguments")):
            rc, out, err = f.run(binary, *args)
            assert rc == 2, (args, rc, out, err)
            assert why in err and "usage: parley <command>" in err, (args, err)
            assert out == "", (args, out)
    finally:
        f.cleanup()


def test_version_exits_0(binary):
    f = Folder({})
    try:
        rc, out, err = f.run(binary, "version")
        assert rc == 0 and out.startswith("parley ") and "Lua 5.4" in out, (rc, out, err)
    finally:
        f.cleanup()


# ---- the sandbox, from inside a running scenario ----

def serve(binary, scripts, fn, channel=None, stdlib=None):
    channels = {"test": dict({"phone_number_id": harness.PHONE_NUMBER_ID, "script": "scripts/main.lua",
                              "language": "ru"}, **(channel or {}))}
    harness.with_parley(binary, scripts, fn, channels=channels, stdlib=stdlib)


def say(p, provider, texts):
    """Post each text and wait until it has run; returns the bodies of every text sent so far."""
    for t in texts:
        assert p.post_webhook(harness.text_webhook(t)) == 200
    p.wait_idle(len(texts))
    return [s["text"]["body"] for s in provider.sends()]


REACH = r'''
local names = { "io", "os.execute", "os.getenv", "os.exit", "os.remove", "os.rename", "os.tmpname",
                "debug", "package", "loadfile", "dofile", "string.dump", "collectgarbage", "load",
                "require", "os.time", "os.date", "os.clock", "string.format", "table.concat", "math.floor",
                "utf8.len", "coroutine.wrap", "pcall", "setmetatable" }
return { on_message = function(chat, msg)
  local out = {}
  for _, n in ipairs(names) do
    local v = _ENV
    for part in n:gmatch("[^.]+") do v = type(v) == "table" and v[part] or nil end
    out[#out + 1] = n .. "=" .. type(v)
  end
  out[#out + 1] = "dump via metatable=" .. type(getmetatable("").__index.dump)
  local f, err = load("\27LuaT\0\25\147\r\n\26\n", "bin", "b")
  out[#out + 1] = "load b: " .. tostring(f) .. " " .. tostring(err)
  f, err = load("\27LuaT\0\25\147\r\n\26\n")
  out[#out + 1] = "load bytes: " .. tostring(f) .. " " .. tostring(err)
  f = load("return 6 * 7")
  out[#out + 1] = "load text: " .. tostring(f and f())
  print("printed", 42, nil)
  chat:send(table.concat(out, "\n"))
end }
'''


def test_sandbox_reach(binary):
    def run(p, provider):
        body = say(p, provider, ["what can you reach?"])[0]
        want = ["io=nil", "os.execute=nil", "os.getenv=nil", "os.exit=nil", "os.remove=nil", "os.rename=nil",
                "os.tmpname=nil", "debug=nil", "package=nil", "loadfile=nil", "dofile=nil", "string.dump=nil",
                "collectgarbage=function", "load=function", "require=function", "os.time=function",
                "os.date=function", "os.clock=function", "string.format=function", "table.concat=function",
                "math.floor=function", "utf8.len=function", "coroutine.wrap=function", "pcall=function",
                "setmetatable=function", "dump via metatable=nil",
                "load b: nil binary chunks are not allowed in Parley scripts",
                "load bytes: nil attempt to load a binary chunk (mode is 't')",
                "load text: 42"]
        assert body.split("\n") == want, "\n".join(
            "%-40s %s" % (w, g) for w, g in zip(want, body.split("\n")) if w != g) or body
        p.wait_log(r"level=info channel=test event=print msg=\"printed\\t42\\tnil\"")
    serve(binary, {"main.lua": REACH}, run)


REQUIRE = r'''
local function try(name)
  local ok, v = pcall(require, name)
  if ok then return name .. " -> " .. tostring(v) end
  return name .. " !! " .. tostring(v):gsub("^.-: ", "", 1):gsub("/[^ ]*/parley%-e2e%-[^/]*/", "<dir>/")
end
return { on_message = function(chat, msg)
  local out = {}
  for _, name in ipairs({ "helper", "sub.mod", "parley.greet", "helper", "../x", "/etc/passwd", "..x",
                          "a..b", "parley..greet", "sub/mod", "", "nosuch", "binary" }) do
    out[#out + 1] = try(name)
  end
  chat:send(table.concat(out, "\n"))
end }
'''


def test_require_is_limited_to_stdlib_and_the_script_folder(binary):
    stdlib = tempfile.mkdtemp(prefix="parley-stdlib-")
    os.makedirs(os.path.join(stdlib, "parley"))
    with open(os.path.join(stdlib, "parley", "greet.lua"), "w") as f:
        f.write('return "stdlib greet"\n')
    scripts = {
        "main.lua": REQUIRE,
        "helper.lua": 'COUNT = (COUNT or 0) + 1\nreturn "helper " .. COUNT\n',  # loaded once
        "sub/mod.lua": 'return "sub.mod"\n',
        "binary.lua": "\x1bLuaT\x00\x19\x93\r\n\x1a\n",
    }

    def run(p, provider):
        body = say(p, provider, ["require"])[0]
        want = [
            "helper -> helper 1",
            "sub.mod -> sub.mod",
            "parley.greet -> stdlib greet",
            "helper -> helper 1",
            "../x !! bad module name '../x' (letters, digits, _ and dots only)",
            "/etc/passwd !! bad module name '/etc/passwd' (letters, digits, _ and dots only)",
            "..x !! bad module name '..x' (letters, digits, _ and dots only)",
            "a..b !! bad module name 'a..b' (letters, digits, _ and dots only)",
            "parley..greet !! bad module name 'parley..greet' (letters, digits, _ and dots only)",
            "sub/mod !! bad module name 'sub/mod' (letters, digits, _ and dots only)",
            " !! bad module name '' (letters, digits, _ and dots only)",
            "nosuch !! cannot open <dir>/scripts/nosuch.lua: No such file or directory",
            "binary !! attempt to load a binary chunk (mode is 't')",
        ]
        got = body.split("\n")
        assert got == want, "\n".join("want %r\n got %r" % (w, g) for w, g in zip(want, got) if w != g) or body
    try:
        serve(binary, scripts, run, stdlib=stdlib)
    finally:
        shutil.rmtree(stdlib, ignore_errors=True)


BUDGET = r'''
return { on_message = function(chat, msg)
  if msg.text == "loop" then
    local ok, err = pcall(function() while true do end end)
    chat:send("escaped the budget: " .. tostring(err))
  elseif msg.text == "loop in a coroutine" then
    for _ = 1, 1000 do pcall(coroutine.wrap(function() while true do end end)) end
    chat:send("escaped the budget in a coroutine")
  elseif msg.text == "table bomb" then
    local ok, err = pcall(function()
      local t = {}
      while true do t[#t + 1] = ("x"):rep(100) .. #t end
    end)
    chat:send("escaped the cap: " .. tostring(err))
  elseif msg.text == "string bomb" then
    local ok, err = pcall(string.rep, "x", 64 * 1024 * 1024)
    chat:send("escaped the cap: " .. tostring(err))
  else
    chat:send("pong " .. msg.text)
  end
end }
'''


def test_infinite_loop_is_aborted_even_inside_pcall_and_the_next_message_is_answered(binary):
    def run(p, provider):
        bodies = say(p, provider, ["loop", "ping 1", "loop in a coroutine", "ping 2"])
        assert bodies == ["pong ping 1", "pong ping 2"], bodies
        log = p.log()
        lines = [l for l in log.splitlines() if "code=script_timeout" in l]
        assert len(lines) == 2, log
        for line in lines:
            assert 'script_timeout: the handler used more than 100 ms of CPU"' in line, line
            assert "event=on_message" in line and "level=error" in line, line
    serve(binary, {"main.lua": BUDGET}, run, channel={"cpu_ms": 100})


def test_memory_bomb_is_aborted_even_inside_pcall_and_the_next_message_is_answered(binary):
    def run(p, provider):
        bodies = say(p, provider, ["table bomb", "ping 1", "string bomb", "ping 2"])
        assert bodies == ["pong ping 1", "pong ping 2"], bodies
        log = p.log()
        lines = [l for l in log.splitlines() if "code=script_memory" in l]
        assert len(lines) == 2, log
        for line in lines:
            assert 'msg="script_memory: ' in line or 'script_memory: the channel' in line, line
    serve(binary, {"main.lua": BUDGET}, run, channel={"memory_mb": 8, "cpu_ms": 5000})  # memory must win
