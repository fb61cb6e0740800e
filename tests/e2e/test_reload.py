"""Hot reload and isolation (docs/reload.md): edits take effect without a restart, a broken edit
keeps the old version serving, and no script can hurt another channel or conversation."""

import os
import time

import harness

V1 = 'return { on_message = function(chat, msg) chat:send("v1: " .. msg.text) end }'
V2 = 'return { on_message = function(chat, msg) chat:send("v2: " .. msg.text) end }'


def say(p, provider, text, n_before, wa_id="79991234567", pnid=harness.PHONE_NUMBER_ID):
    assert p.post_webhook(harness.text_webhook(text, wa_id=wa_id, pnid=pnid)) == 200
    sends = provider.wait_sends(n_before + 1)
    assert len(sends) == n_before + 1, sends
    return sends[-1]["text"]["body"]


def wait_version(p, channel, old, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        ch = p.health()["channels"][channel]
        if ch["version"] != old:
            return ch
        time.sleep(0.02)
    raise AssertionError("the script was not reloaded within %ss: %s\n%s" % (timeout, p.health(), p.log()[-2000:]))


def write(p, name, text, by_rename=False):
    path = os.path.join(p.dir, "scripts", name)
    if by_rename:  # how vim and many editors save: write a new file, rename it over the old
        tmp = path + ".swp~"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)
    else:
        with open(path, "w") as f:
            f.write(text)


def run(binary, fn, scripts=None, **kw):
    harness.with_parley(binary, scripts or {"main.lua": V1}, fn, **kw)


def test_an_edit_is_used_by_the_next_message(binary):
    def go(p, provider):
        assert say(p, provider, "a", 0) == "v1: a"
        v1 = p.health()["channels"]["test"]["version"]
        t0 = time.time()
        write(p, "main.lua", V2)
        wait_version(p, "test", v1)
        assert time.time() - t0 < 1.0, "reload took %.2fs" % (time.time() - t0)
        assert say(p, provider, "b", 1) == "v2: b"
        assert 'event=reload' in p.log()
    run(binary, go)


def test_a_save_by_rename_is_seen(binary):
    def go(p, provider):
        v1 = p.health()["channels"]["test"]["version"]
        write(p, "main.lua", V2, by_rename=True)
        wait_version(p, "test", v1)
        assert say(p, provider, "x", 0) == "v2: x"
    run(binary, go)


def test_a_syntax_error_keeps_the_old_version_and_shows_in_healthz(binary):
    def go(p, provider):
        v1 = p.health()["channels"]["test"]["version"]
        write(p, "main.lua", "return { on_message = function(chat, msg) chat:send( end }")
        deadline = time.time() + 5
        while time.time() < deadline and p.health()["channels"]["test"]["last_error"] is None:
            time.sleep(0.02)
        ch = p.health()["channels"]["test"]
        assert ch["version"] == v1 and ch["loaded"], ch
        assert "main.lua:1:" in ch["last_error"], ch
        assert p.health()["status"] == "ok"  # the old version still serves
        assert say(p, provider, "still", 0) == "v1: still"
        # fixing it loads the new version and clears the error
        write(p, "main.lua", V2)
        ch = wait_version(p, "test", v1)
        assert ch["last_error"] is None, ch
        assert say(p, provider, "fixed", 1) == "v2: fixed"
    run(binary, go)


def test_a_changed_module_reloads_the_script_that_requires_it(binary):
    scripts = {
        "main.lua": 'local words = require "words"\nreturn { on_message = function(chat, msg) chat:send(words.hello) end }',
        "words.lua": 'return { hello = "hello 1" }',
    }

    def go(p, provider):
        assert say(p, provider, "a", 0) == "hello 1"
        v1 = p.health()["channels"]["test"]["version"]
        write(p, "words.lua", 'return { hello = "hello 2" }')
        wait_version(p, "test", v1)
        assert say(p, provider, "b", 1) == "hello 2"
    run(binary, go, scripts=scripts)


def test_sessions_survive_a_reload(binary):
    counter = 'return { on_message = function(chat, msg) chat.session.n = (chat.session.n or 0) + 1; chat:send("%s " .. chat.session.n) end }'

    def go(p, provider):
        assert say(p, provider, "a", 0) == "A 1"
        v1 = p.health()["channels"]["test"]["version"]
        write(p, "main.lua", counter.replace("%s", "B"))
        wait_version(p, "test", v1)
        assert say(p, provider, "b", 1) == "B 2"
    run(binary, go, scripts={"main.lua": counter.replace("%s", "A")})


TWO = {
    "bad.lua": """
return { on_message = function(chat, msg)
  if msg.text == "loop" then
    while true do pcall(function() while true do end end) end
  elseif msg.text == "bomb" then
    local t = {}
    while true do
      pcall(function() for i = 1, 1e6 do t[#t + 1] = ("x"):rep(100000) .. i end end)
    end
  end
  chat:send("bad ok: " .. msg.text)
end }
""",
    "good.lua": 'return { on_message = function(chat, msg) chat:send("good: " .. msg.text) end }',
}


def test_a_runaway_script_is_aborted_and_others_are_answered(binary):
    channels = {
        "bad": {"phone_number_id": "111", "script": "scripts/bad.lua", "cpu_ms": 500, "memory_mb": 16},
        "good": {"phone_number_id": "222", "script": "scripts/good.lua"},
    }

    def go(p, provider):
        for text in ("loop", "bomb"):
            assert p.post_webhook(harness.text_webhook(text, pnid="111")) == 200
        # another contact on the same channel, and another channel, get their answers
        assert p.post_webhook(harness.text_webhook("hi", wa_id="70000000001", pnid="111")) == 200
        assert p.post_webhook(harness.text_webhook("hi", pnid="222")) == 200
        p.wait_idle(4, timeout=20)
        bodies = sorted(s["text"]["body"] for s in provider.sends())
        assert bodies == ["bad ok: hi", "good: hi"], bodies
        log = p.log()
        assert "code=script_timeout" in log, log[-3000:]
        assert "code=script_memory" in log, log[-3000:]
        # the channel keeps serving after both
        assert say(p, provider, "again", 2, pnid="111") == "bad ok: again"
    run(binary, go, scripts=TWO, channels=channels)


def test_sighup_adds_and_removes_channels(binary):
    import json
    import signal

    scripts = {"main.lua": V1, "other.lua": 'return { on_message = function(chat, msg) chat:send("other: " .. msg.text) end }'}

    def go(p, provider):
        assert say(p, provider, "a", 0) == "v1: a"
        with open(p.config) as f:
            cfg = json.load(f)
        cfg["channels"]["second"] = {"phone_number_id": "333", "script": "scripts/other.lua"}
        with open(p.config, "w") as f:
            json.dump(cfg, f)
        p.proc.send_signal(signal.SIGHUP)
        p.wait_log("configuration reloaded")
        assert "second" in p.health()["channels"]
        assert say(p, provider, "b", 1, pnid="333") == "other: b"
        assert say(p, provider, "c", 2) == "v1: c"  # the first channel kept serving
        # a broken config changes nothing
        with open(p.config, "w") as f:
            f.write("{ not json")
        p.proc.send_signal(signal.SIGHUP)
        p.wait_log("the running configuration stays")
        assert set(p.health()["channels"]) == {"test", "second"}
        # removing a channel: its events are acknowledged and counted as unrouted
        del cfg["channels"]["second"]
        with open(p.config, "w") as f:
            json.dump(cfg, f)
        p.proc.send_signal(signal.SIGHUP)
        p.wait_log("channel removed")
        deadline = time.time() + 5
        while "second" in p.health()["channels"] and time.time() < deadline:
            time.sleep(0.02)
        assert set(p.health()["channels"]) == {"test"}
    run(binary, go, scripts=scripts)


def test_a_channel_moved_to_another_phone_number_sends_from_it(binary):
    """SIGHUP with the channel's phone_number_id changed: its next reply goes to the new
    number's /<phone_number_id>/messages (the sender re-parses the URL it kept for the channel),
    and a webhook to the old number is no longer routed to it."""
    import json
    import signal

    def go(p, provider):
        assert say(p, provider, "a", 0) == "v1: a"
        version = p.health()["channels"]["test"]["version"]
        with open(p.config) as f:
            cfg = json.load(f)
        cfg["channels"]["test"]["phone_number_id"] = "100200300400500"
        with open(p.config, "w") as f:
            json.dump(cfg, f)
        p.proc.send_signal(signal.SIGHUP)
        p.wait_log("configuration reloaded")
        assert say(p, provider, "b", 1, pnid="100200300400500") == "v1: b"
        assert p.post_webhook(harness.text_webhook("c", pnid=harness.PHONE_NUMBER_ID)) == 200
        assert say(p, provider, "d", 2, pnid="100200300400500") == "v1: d"
        status, body = p.get("/metrics")
        assert b"parley_events_unrouted_total 1" in body, body
        assert p.health()["channels"]["test"]["version"] == version  # the loaded script stayed
        with provider.lock:
            paths = [r["path"] for r in provider.requests]
        assert paths == ["/v21.0/%s/messages" % harness.PHONE_NUMBER_ID] + ["/v21.0/100200300400500/messages"] * 2, paths
    run(binary, go)


def test_a_reply_queued_before_a_number_change_goes_out_from_the_old_number(binary):
    """The provider refuses a reply (500) until Parley is killed; the channel is then moved to
    another phone number and Parley starts again. The reply waiting in the state file goes out
    from the number the customer wrote to (its outbox row keeps it), the next reply from the new
    number."""
    import json
    import signal

    new = "100200300400500"

    def go(p, provider):
        provider.decide = lambda body: (500, {})
        assert p.post_webhook(harness.text_webhook("a")) == 200
        p.wait_log("retrying in")
        p.stop(signal.SIGKILL)
        with open(p.config) as f:
            cfg = json.load(f)
        cfg["channels"]["test"]["phone_number_id"] = new
        with open(p.config, "w") as f:
            json.dump(cfg, f)
        with provider.lock:
            provider.decide = None
            tried = len(provider.requests)
        p.start()
        sends = provider.wait_sends(tried + 1)
        assert [s["text"]["body"] for s in sends[tried:]] == ["v1: a"], sends[tried:]
        assert say(p, provider, "b", tried + 1, pnid=new) == "v1: b"
        with provider.lock:
            paths = [r["path"] for r in provider.requests[tried:]]
        assert paths == ["/v21.0/%s/messages" % harness.PHONE_NUMBER_ID, "/v21.0/%s/messages" % new], paths
    run(binary, go)


def test_reload_under_load_loses_and_duplicates_nothing(binary):
    import threading

    def go(p, provider):
        acked, lock, stop = [], threading.Lock(), threading.Event()

        def poster(k):
            i = 0
            while not stop.is_set():
                text = "%d-%d" % (k, i)
                if p.post_webhook(harness.text_webhook(text, wa_id="7990000%04d" % (i % 97))) == 200:
                    with lock:
                        acked.append(text)
                i += 1

        threads = [threading.Thread(target=poster, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for n in range(15):  # a new version every 100 ms while webhooks pour in
            write(p, "main.lua", (V1 if n % 2 else V2).replace("v1", "v%d" % n).replace("v2", "v%d" % n))
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join()
        p.wait_idle(len(acked), timeout=30)
        bodies = [s["text"]["body"].split(": ", 1)[1] for s in provider.wait_sends(len(acked))]
        assert len(acked) > 200, len(acked)
        assert sorted(bodies) == sorted(acked), "lost %d, duplicated %d" % (
            len(set(acked) - set(bodies)), len(bodies) - len(set(bodies)))
        assert p.log().count("event=reload") >= 5
    run(binary, go)
