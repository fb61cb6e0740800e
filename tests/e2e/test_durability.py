"""Durable state and delivery (docs/delivery.md): duplicates run nothing, sessions survive
restarts, and kill -9 under load loses no acknowledged event."""

import json
import os
import re
import resource
import signal
import sqlite3
import threading
import time

import harness

COUNTER = """
return {
  on_message = function(chat, msg)
    chat.session.n = (chat.session.n or 0) + 1
    chat:send(("%s #%d"):format(msg.text, chat.session.n))
  end,
}
"""


def start(binary, provider, script=COUNTER):
    return harness.Parley(binary, {"main.lua": script}, provider=provider).start()


def test_duplicate_webhook_gets_one_reply(binary):
    def go(p, provider):
        payload = harness.text_webhook("hello", msg_id="wamid.DUPLICATE1")
        for _ in range(3):
            assert p.post_webhook(payload) == 200
        p.wait_idle(1)
        time.sleep(0.2)
        assert [s["text"]["body"] for s in provider.sends()] == ["hello #1"], provider.sends()
        assert b"parley_events_duplicate_total 2" in p.get("/metrics")[1]
        # the same wamid with another status is a new event; the same status again is not
        st = harness.status_webhook("wamid.X", "delivered")
        assert p.post_webhook(st) == 200 and p.post_webhook(st) == 200
        assert p.post_webhook(harness.status_webhook("wamid.X", "read")) == 200
        p.wait_idle(3)
        assert p.stop() == 0
    harness.with_parley(binary, {"main.lua": COUNTER}, go)


def test_session_and_window_survive_a_restart(binary):
    def go(p, provider):
        assert p.post_webhook(harness.text_webhook("one")) == 200
        p.wait_idle(1)
        assert p.stop() == 0
        p.start()
        assert p.post_webhook(harness.text_webhook("two")) == 200
        p.wait_idle(1)
        # the contact wrote before the restart: a trigger may still answer in the window
        status, body = p.trigger("test", {"to": "79991234567", "event": "x"})
        assert status == 200, body  # no on_trigger: nothing sent, but not window-refused
        assert [s["text"]["body"] for s in provider.wait_sends(2)] == ["one #1", "two #2"]
        assert p.stop() == 0
    harness.with_parley(binary, {"main.lua": COUNTER}, go)


def test_session_keeps_every_value_it_can_hold_across_messages_and_a_restart(binary):
    """A string with NUL bytes is a valid session value (stored as \\u0000): it once made the
    next message's session read fail, and the whole session started over empty. A key with a NUL
    byte is refused when the handler ends (the handler fails, the session stays as it was)."""
    script = r"""
return {
  on_message = function(chat, msg)
    local s = chat.session
    if msg.text == "badkey" then
      s["a\0b"] = 1 -- refused: the handler fails and the session stays as it was
      return chat:send("not stored")
    end
    if msg.text == "set" then
      s.blob = "a\0b\0"; s.name = "Ёжик 👍"; s.big = 9007199254740993; s.list = { 1, { x = "y" } }
      return chat:send("stored")
    end
    local hex = (s.blob or ""):gsub(".", function(c) return ("%02x"):format(c:byte()) end)
    chat:send(("%s|%s|%s|%s"):format(hex, tostring(s.name), tostring(s.big),
      s.list and s.list[2].x or "nil"))
  end,
}
"""

    def go(p, provider):
        want = "61006200|Ёжик 👍|9007199254740993|y"
        for text in ("set", "badkey", "get"):
            assert p.post_webhook(harness.text_webhook(text)) == 200
            p.wait_idle(1)
        p.wait_log("has a key with a NUL byte")
        assert p.stop() == 0
        p.start()
        assert p.post_webhook(harness.text_webhook("get")) == 200
        p.wait_idle(1)
        bodies = [s["text"]["body"] for s in provider.wait_sends(3)]
        assert bodies == ["stored", want, want], bodies
        assert p.stop() == 0
    harness.with_parley(binary, {"main.lua": script}, go)


def test_state_file_schema_is_versioned(binary):
    def go(p, provider):
        assert p.post_webhook(harness.text_webhook("one")) == 200
        p.wait_idle(1)
        assert p.stop() == 0
        db = sqlite3.connect(os.path.join(p.dir, "var", "parley.db"))
        assert db.execute("pragma user_version").fetchone()[0] >= 1
        assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
        rows = db.execute("select state, wamid from outbox").fetchall()
        assert rows == [(1, "wamid.FAKE000001")], rows  # sent, with the provider's id
        assert db.execute("select state from inbox").fetchall() == [(1,)]
        db.close()
    harness.with_parley(binary, {"main.lua": COUNTER}, go)


def test_a_message_a_day_old_fails_after_a_restart_instead_of_being_retried_again(binary):
    """The maximum age counts from the commit, not from the start of the process that sends."""
    script = """
return {
  on_message = function(chat, msg) chat:send("late") end,
  on_status = function(chat, st) print("STATUS", st.status, st.error and st.error.code) end,
}
"""
    busy = (500, {"error": {"message": "(#131000) Something went wrong", "code": 131000}})

    def go(p, provider):
        provider.responses += [busy] * 3
        assert p.post_webhook(harness.text_webhook("hi")) == 200
        p.wait_log("send_retry")
        p.stop(signal.SIGKILL)  # a crash while the provider refuses it
        db = sqlite3.connect(os.path.join(p.dir, "var", "parley.db"))
        assert db.execute("select state from outbox").fetchall() == [(0,)]  # still queued
        with db:
            db.execute("update outbox set created_at = created_at - 25 * 3600")
        db.close()
        tries = len(provider.requests)
        p.start()
        p.wait_log(r"STATUS\\tfailed\\t131000")
        assert len(provider.requests) == tries + 1  # sent once more, refused, not retried
        assert p.stop() == 0
        db = sqlite3.connect(os.path.join(p.dir, "var", "parley.db"))
        assert db.execute("select state, error_code from outbox").fetchall() == [(4, 131000)]
        db.close()
    harness.with_parley(binary, {"main.lua": script}, go)


def test_failed_handler_marks_the_event_failed_and_keeps_the_session(binary):
    script = """
return { on_message = function(chat, msg)
  chat.session.seen = (chat.session.seen or 0) + 1
  if msg.text == "bad" then chat:send("x", { buttons = { "1", "2", "3", "4" } }) end
  chat:send("seen " .. chat.session.seen)
end }
"""
    def go(p, provider):
        for text in ("ok", "bad", "ok"):
            assert p.post_webhook(harness.text_webhook(text)) == 200
        p.wait_idle(3)
        assert [s["text"]["body"] for s in provider.wait_sends(2)] == ["seen 1", "seen 2"]
        assert p.stop() == 0
        db = sqlite3.connect(os.path.join(p.dir, "var", "parley.db"))
        states = db.execute("select state, error_code from inbox order by id").fetchall()
        db.close()
        assert states == [(1, None), (2, "too_many_quick_replies"), (1, None)], states
    harness.with_parley(binary, {"main.lua": script}, go)


def test_kill_9_under_load_loses_no_acknowledged_event(binary):
    """Post many webhooks from several threads, kill -9 in the middle, restart: every event that
    got a 200 is answered; duplicates are at most the sends in flight."""
    provider = harness.FakeProvider()
    provider.delay = 0.002  # a provider with some latency keeps sends in flight
    echo = 'return { on_message = function(chat, msg) chat:send("re " .. msg.text) end }'
    p = start(binary, provider, echo)
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def poster(k):
        i = 0
        while not stop.is_set():
            text = "t%d-%d" % (k, i)
            try:
                status = p.post_webhook(harness.text_webhook(text, wa_id="7999000%04d" % (i % 50), msg_id="wamid.K%d-%d" % (k, i)))
            except OSError:
                return
            if status == 200:
                with lock:
                    acked.append(text)
            i += 1

    try:
        threads = [threading.Thread(target=poster, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        deadline = time.time() + 10
        while len(acked) < 300 and time.time() < deadline:
            time.sleep(0.01)
        p.proc.send_signal(signal.SIGKILL)
        p.proc.wait()
        stop.set()
        for t in threads:
            t.join()
        p.proc = None
        n = len(acked)
        assert n >= 100, "too few webhooks acknowledged before the kill: %d" % n
        p.start()
        # every acknowledged event is answered after the restart
        deadline = time.time() + 30
        while time.time() < deadline:
            got = {s["text"]["body"][3:] for s in provider.sends()}
            if set(acked) <= got:
                break
            time.sleep(0.05)
        p.wait_idle(0)
        bodies = [s["text"]["body"][3:] for s in provider.sends()]
        missing = set(acked) - set(bodies)
        assert not missing, "acknowledged but never answered: %d, e.g. %s" % (len(missing), sorted(missing)[:5])
        dups = len(bodies) - len(set(bodies))
        print("  kill -9 after %d acknowledged webhooks: %d replies, %d duplicates (max_connections 16)" % (n, len(bodies), dups))
        assert dups <= 16, "more duplicates than sends that can be in flight: %d" % dups
        assert p.stop() == 0
    finally:
        stop.set()
        harness.shutdown(p, provider)


def post_backlog(p, n, contacts, prefix):
    """Post n text webhooks from `contacts` contacts in turn; returns the texts, in order."""
    sent = []
    for i in range(n):
        text = "m%03d" % i
        assert p.post_webhook(harness.text_webhook(text, wa_id="799%04d%04d" % (contacts, i % contacts),
                                                   msg_id="wamid.%s%d" % (prefix, i))) == 200
        sent.append(text)
    return sent


def watch_backlog(p, n, sample):
    """Poll /healthz until n events are done and the outbox is empty; sample(h) each time."""
    deadline = time.time() + 30
    while time.time() < deadline:
        h = p.health()
        sample(h)
        if h["events"]["done"] >= n and h["outbox"] == 0:
            return
        time.sleep(0.01)


def check_once_in_order(replies, bodies, sent):
    """Every text answered exactly once, and each contact's replies in the order it wrote."""
    assert sorted(bodies) == sent, "lost or duplicated: %d replies" % len(bodies)
    for to in {r["to"] for r in replies}:
        mine = [b for r, b in zip(replies, bodies) if r["to"] == to]
        assert mine == sorted(mine), "reordered for a contact: %s" % mine


def test_messages_past_queue_max_wait_in_the_outbox_and_go_out_in_order(binary):
    """A provider slower than the scenario: past queue_max (100) committed messages wait as
    outbox rows, not in the sender's memory, and every one goes out once, in order per contact."""
    def one_connection(p):
        with open(p.config) as f:
            cfg = json.load(f)
        cfg["provider"]["max_connections"] = 1
        with open(p.config, "w") as f:
            json.dump(cfg, f)

    def go(p, provider):
        # one connection, 0.2 s a send while the backlog is posted: the sender falls behind
        # however slowly the posting goes (on a busy machine it may take seconds), then a few
        # ms a send once a sample has seen the spill, so that the drain is quick
        provider.delay = 0.2
        sent = post_backlog(p, 300, 10, "O")
        seen = {"peak": 0, "spilled": 0, "metric": 0}

        def sample(h):
            if h["outbox"] - h["sending"] > 0:
                provider.delay = 0.001
            seen["peak"] = max(seen["peak"], h["sending"])
            seen["spilled"] = max(seen["spilled"], h["outbox"] - h["sending"])
            depth = re.search(rb"^parley_outbox_depth (\d+)", p.get("/metrics")[1], re.M)
            seen["metric"] = max(seen["metric"], int(depth.group(1)))
        watch_backlog(p, 300, sample)
        replies = provider.wait_sends(300)
        check_once_in_order(replies, [r["text"]["body"].split(" #")[0] for r in replies], sent)
        assert seen["spilled"] > 0, "the backlog never waited in the outbox"
        assert seen["peak"] <= 100, "more than queue_max messages held by the sender: %d" % seen["peak"]
        # the gauge counts what waits in the state file too, like /healthz's outbox
        assert seen["metric"] > 100, "parley_outbox_depth left out the spilled messages"
    harness.with_parley(binary, {"main.lua": COUNTER}, go, setup=one_connection, extra={"queue_max": 100})


def test_a_backlog_past_queue_max_waits_in_the_inbox_and_is_answered_in_order(binary):
    """With queue_max 100 and a slow scenario, hundreds of acknowledged webhooks wait in the
    inbox, not in memory, and every one is answered once, in order per contact."""
    slow = """
return { on_message = function(chat, msg)
  local t = os.clock() while os.clock() - t < 0.002 do end
  chat:send("re " .. msg.text)
end }
"""
    provider = harness.FakeProvider()
    p = harness.Parley(binary, {"main.lua": slow}, provider=provider, extra={"queue_max": 100}).start()
    try:
        sent = post_backlog(p, 400, 20, "Q")  # a contact's replies go one at a time, in order
        seen = {"peak": 0}

        def sample(h):
            seen["peak"] = max(seen["peak"], h["events"]["queued"])
        watch_backlog(p, 400, sample)
        replies = provider.wait_sends(400)
        check_once_in_order(replies, [r["text"]["body"][3:] for r in replies], sent)
        peak = seen["peak"]
        assert peak <= 100, "more than queue_max events held in memory: %d" % peak
        assert p.stop() == 0
    finally:
        harness.shutdown(p, provider)


def test_acknowledging_webhooks_comes_first_the_engine_runs_at_a_lower_priority(binary):
    """When the CPU is short the HTTP and ingest threads (nice 0) go before the engine (+5)."""
    def go(p, provider):
        nice = {}
        tasks = "/proc/%d/task" % p.proc.pid
        for tid in os.listdir(tasks):
            with open(os.path.join(tasks, tid, "stat")) as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            nice[comm] = int(stat[stat.rindex(")") + 2:].split()[16])  # field 19: nice
        assert nice.get("pl-engine") == 5, nice
        assert nice.get("pl-ingest") == 0 and nice.get("MHD-single") == 0, nice
    harness.with_parley(binary, {"main.lua": "return {}"}, go)


def test_a_full_disk_answers_503_loses_nothing_acknowledged_and_recovers(binary):
    """Writes to the state file start failing (RLIMIT_FSIZE: EFBIG, which SQLite reports as code
    778, a write I/O error; a full disk gives 13): webhooks get 503 with a logged reason naming
    the file and SQLite's code, the process stays up, and
    once there is room again every acknowledged event is answered and the refused ones, posted
    again as Meta does, are taken."""
    provider = harness.FakeProvider()
    echo = 'return { on_message = function(chat, msg) chat:send("re " .. msg.text) end }'
    p = harness.Parley(binary, {"main.lua": echo}, provider=provider)
    try:
        p.start()  # the schema is created with room
        assert p.stop() == 0
        p.file_size_limit = os.path.getsize(os.path.join(p.dir, "var", "parley.db")) + 1536 * 1024
        p.start()
        acked, refused = [], []
        for i in range(4000):
            payload = harness.text_webhook("d%d" % i, wa_id="7999100%04d" % (i % 40), msg_id="wamid.DISK%d" % i)
            status = p.post_webhook(payload)
            assert status in (200, 503), status
            (acked if status == 200 else refused).append((i, payload))
            if len(refused) >= 5:
                break
        assert len(refused) >= 5, "the state file never filled up (%d acknowledged)" % len(acked)
        assert len(acked) >= 20, "too few webhooks acknowledged before the disk filled: %d" % len(acked)
        p.wait_log(r"event=ingest.*could not store webhook events \(answering 503")
        assert re.search(r"var/parley\.db: \w+: .*\(SQLite code \d+\)", p.log()), p.log()[-3000:]
        h = p.health()  # still serving, and saying what is wrong
        assert h["status"] == "degraded", h
        assert "(SQLite code" in h["store"]["error"] and h["store"]["failed_at"] > 0, h
        errors = re.search(rb"^parley_store_errors_total (\d+)$", p.get("/metrics")[1], re.M)
        assert errors and int(errors.group(1)) >= len(refused), p.get("/metrics")[1]
        # room again, without a restart: the refused webhooks, posted again as Meta does, are taken
        resource.prlimit(p.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        for _, payload in refused:
            assert p.post_webhook(payload) == 200
        deadline = time.time() + 10  # an engine turn that failed before may report after them
        while (h := p.health())["status"] != "ok" and time.time() < deadline:
            time.sleep(0.02)
        assert h["status"] == "ok" and h["store"] == {"error": None}, h
        assert p.post_webhook(acked[0][1]) == 200  # and a duplicate runs nothing
        want = {"d%d" % i for i, _ in acked + refused}
        deadline = time.time() + 30
        while time.time() < deadline and not want <= {s["text"]["body"][3:] for s in provider.sends()}:
            time.sleep(0.05)
        bodies = [s["text"]["body"][3:] for s in provider.sends()]
        assert want <= set(bodies), "never answered: %s" % sorted(want - set(bodies))[:5]
        assert set(bodies) <= want, "answered but never acknowledged: %s" % sorted(set(bodies) - want)[:5]
        # a turn whose commit failed sent nothing; its events ran again once there was room
        assert len(bodies) == len(want), "answered twice: %d replies for %d events" % (len(bodies), len(want))
        assert p.stop() == 0
        with sqlite3.connect(os.path.join(p.dir, "var", "parley.db")) as db:
            assert db.execute("select count(*) from inbox where state = 1").fetchone()[0] == len(want)
    finally:
        harness.shutdown(p, provider)


def test_each_channel_sends_to_its_own_phone_numbers_endpoint(binary):
    # the sender keeps each phone number's parsed URL (runtime/outbound.c): interleaved
    # channels must still reach their own /<phone_number_id>/messages, through one connection,
    # so that one reused libcurl handle alternates between the two
    provider = harness.FakeProvider()
    channels = {"a": {"phone_number_id": harness.PHONE_NUMBER_ID, "script": "scripts/main.lua"},
                "b": {"phone_number_id": "100200300400500", "script": "scripts/main.lua"}}
    one = {"provider": {"kind": "cloud-api", "url": provider.url, "token": "$WA_TOKEN", "max_connections": 1}}
    p = harness.Parley(binary, {"main.lua": COUNTER}, provider=provider, channels=channels, extra=one)
    try:
        p.start()
        for i in range(3):
            for pnid, who in ((harness.PHONE_NUMBER_ID, "a"), ("100200300400500", "b")):
                assert p.post_webhook(harness.text_webhook("%s%d" % (who, i), pnid=pnid)) == 200
        provider.wait_sends(6)
        p.wait_idle(6)
        with provider.lock:
            got = sorted((r["path"], r["body"]["text"]["body"]) for r in provider.requests)
        want = sorted([("/v21.0/%s/messages" % harness.PHONE_NUMBER_ID, "a%d #%d" % (i, i + 1)) for i in range(3)]
                      + [("/v21.0/100200300400500/messages", "b%d #%d" % (i, i + 1)) for i in range(3)])
        assert got == want, got
        assert p.stop() == 0
    finally:
        harness.shutdown(p, provider)


def sends_to(provider, pnid):
    """The sends the fake provider has taken for one phone number, answered or not."""
    with provider.lock:
        return sum(1 for r in provider.requests if "/%s/" % pnid in r["path"])


def post_to_contacts(p, pnid, tag, n):
    """One webhook from each of n contacts of their own to the channel of phone number pnid."""
    for i in range(n):
        assert p.post_webhook(harness.text_webhook("%s%d" % (tag, i), pnid=pnid,
                                                   wa_id="7999%03d%04d" % (ord(tag[0]), i))) == 200


def held_by(provider, pnid, at_least):
    """The sends in flight for pnid once it has at least at_least, or 5 s have passed, and a
    fifth of a second more: would it take one more connection?"""
    deadline = time.time() + 5
    while sends_to(provider, pnid) < at_least and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    return sends_to(provider, pnid)


def seconds_to_answer(p, provider, pnid, tag, n):
    """Post n contacts' webhooks to a channel whose provider answers at once, and time how long
    until all n replies reached the provider (10 s at most)."""
    started = time.time()
    post_to_contacts(p, pnid, tag, n)
    while sends_to(provider, pnid) < n and time.time() - started < 10:
        time.sleep(0.01)
    assert sends_to(provider, pnid) == n
    return time.time() - started


def with_hanging_channels(binary, pnids, hanging, seconds, max_connections):
    """A fake provider that answers the channels named in hanging after seconds and the others
    at once, and a Parley (not started) with a channel per entry of pnids."""
    provider = harness.FakeProvider()
    provider.path_delays = {"/%s/" % pnids[ch]: seconds for ch in hanging}
    channels = {ch: {"phone_number_id": pnid, "script": "scripts/main.lua"} for ch, pnid in pnids.items()}
    cfg = {"provider": {"kind": "cloud-api", "url": provider.url, "token": "$WA_TOKEN",
                        "max_connections": max_connections}}
    return provider, harness.Parley(binary, {"main.lua": COUNTER}, provider=provider, channels=channels, extra=cfg)


def every_event_answered_once(p, provider, n):
    """Once the hanging sends are answered: n replies in all, and Parley stops cleanly."""
    provider.wait_sends(n, timeout=30)
    p.wait_idle(n, timeout=30)
    assert len(provider.sends()) == n
    assert p.stop() == 0


def test_a_channel_whose_sends_hang_leaves_connections_for_the_others(binary):
    """Channel a's phone number answers after 2 s (a partner throttling it) and a has a message
    for each of 6 contacts. With max_connections 4 and two channels configured, a may hold 3 of
    them, so b's replies go out at once instead of waiting behind a's."""
    slow_pnid, pnid_b = harness.PHONE_NUMBER_ID, "100200300400500"
    provider, p = with_hanging_channels(binary, {"a": slow_pnid, "b": pnid_b}, ["a"], 2.0, 4)
    try:
        p.start()
        post_to_contacts(p, slow_pnid, "a", 6)
        assert held_by(provider, slow_pnid, 3) == 3, "a holds %d connections, not 3 of 4" % sends_to(provider, slow_pnid)
        took = seconds_to_answer(p, provider, pnid_b, "b", 3)
        assert took < 1.0, "b's replies waited %.1f s behind a's hanging sends" % took
        every_event_answered_once(p, provider, 9)
    finally:
        harness.shutdown(p, provider)


def test_two_channels_whose_sends_hang_leave_connections_for_a_third(binary):
    """Channels a and b both answer after 3 s, each with a message for 6 contacts; c's phone
    number answers at once. With max_connections 8, a second connection is taken only while 2
    stay free: a holds 6, b its first, and c's replies go out at once. When each hanging channel
    could hold 6 of 8 on its own, a and b together held all 8 and c waited behind them."""
    pnids = {"a": harness.PHONE_NUMBER_ID, "b": "100200300400500", "c": "100200300400600"}
    provider, p = with_hanging_channels(binary, pnids, ["a", "b"], 3.0, 8)
    try:
        p.start()
        post_to_contacts(p, pnids["a"], "a", 6)
        assert held_by(provider, pnids["a"], 6) == 6, "a holds %d connections, not 6 of 8" % sends_to(provider, pnids["a"])
        post_to_contacts(p, pnids["b"], "b", 6)
        assert held_by(provider, pnids["b"], 1) == 1, "b holds %d connections, not its first only" % sends_to(provider, pnids["b"])
        took = seconds_to_answer(p, provider, pnids["c"], "c", 3)
        assert took < 1.5, "c's replies waited %.1f s behind a's and b's hanging sends" % took
        every_event_answered_once(p, provider, 15)
    finally:
        harness.shutdown(p, provider)


def test_a_freed_connection_is_used_at_once(binary):
    """One connection, replies to ten contacts: each send starts as soon as the one before it
    is answered. A transfer that libcurl finished while Parley was starting others was once left
    uncollected until the sender's next one-second wake-up, its connection counted as busy."""
    provider = harness.FakeProvider()
    cfg = {"provider": {"kind": "cloud-api", "url": provider.url, "token": "$WA_TOKEN", "max_connections": 1}}
    p = harness.Parley(binary, {"main.lua": COUNTER}, provider=provider, extra=cfg)
    try:
        p.start()
        started = time.time()
        for i in range(10):
            assert p.post_webhook(harness.text_webhook("c%d" % i, wa_id="7999300%04d" % i)) == 200
        provider.wait_sends(10)
        p.wait_idle(10)
        with provider.lock:
            at = [r["at"] - started for r in provider.requests]
        gaps = [b - a for a, b in zip(at, at[1:])]
        assert len(at) == 10 and max(gaps) < 0.5, "sends at %s" % ["%.3f" % t for t in at]
        assert p.stop() == 0
    finally:
        harness.shutdown(p, provider)


def test_a_long_provider_url_reaches_the_provider_whole(binary):
    # a partner's gateway may put a long prefix before /<phone_number_id>/messages: the sender
    # sizes the URL to fit (it once cut it at 1,023 bytes and sent to a wrong path)
    provider = harness.FakeProvider()
    prefix = "/gw/" + "p" * 1500
    cfg = {"provider": {"kind": "cloud-api", "url": provider.url + prefix, "token": "$WA_TOKEN"}}
    p = harness.Parley(binary, {"main.lua": COUNTER}, provider=provider, extra=cfg)
    try:
        p.start()
        assert p.post_webhook(harness.text_webhook("long")) == 200
        provider.wait_sends(1)
        p.wait_idle(1)
        with provider.lock:
            paths = [r["path"] for r in provider.requests]
        assert paths == ["/v21.0%s/%s/messages" % (prefix, harness.PHONE_NUMBER_ID)], [x[-60:] for x in paths]
        assert p.stop() == 0
    finally:
        harness.shutdown(p, provider)


def test_a_turn_that_cannot_commit_is_retried_at_a_steady_pace_then_answered_once(binary):
    """A handler's effects that do not fit on the disk (a 6 MiB session against a file size
    limit of 4 MiB more than the state file) fail the turn's commit, while the webhooks' own
    small commits still fit in the log. The turn runs again RETRY_AFTER_STORE_ERROR_MS (500 ms)
    after each failure, also while newer events wait (they once turned the wait into a spin that
    retried and logged on every pass); it grows to at most TURN_MAX (128) events, the rest wait
    in the queue; and once there is room every event is answered once."""
    provider = harness.FakeProvider()
    script = """
return {
  on_message = function(chat, msg)
    if msg.text == "big" then chat.session.blob = string.rep("x", 6 * 1024 * 1024) end
    chat:send("re " .. msg.text)
  end,
}
"""
    p = harness.Parley(binary, {"main.lua": script}, provider=provider)
    try:
        p.start()
        assert p.stop() == 0
        p.file_size_limit = os.path.getsize(os.path.join(p.dir, "var", "parley.db")) + 4 * 1024 * 1024
        p.start()
        failure = "could not commit handler effects"
        assert p.post_webhook(harness.text_webhook("big", msg_id="wamid.BIG")) == 200
        p.wait_log(failure)
        # newer events arrive for 2 s, acknowledged (their inbox rows fit in the log) and queued
        # behind the failing turn: the turn still runs again only every 500 ms
        smalls, began = 150, time.time()
        before = p.log().count(failure)
        for i in range(smalls):
            status = p.post_webhook(harness.text_webhook("small%d" % i, wa_id="799920000%02d" % (i % 20)))
            assert status == 200, (i, status, p.log()[-2000:])
            time.sleep(max(0, began + 2.0 * (i + 1) / smalls - time.time()))
        during, elapsed = p.log().count(failure) - before, time.time() - began
        # one per 500 ms and the attempt's own time (longer under the sanitizers); a spin makes dozens
        assert during <= 2 + elapsed / 0.5, "%d failed commits in %.1f s" % (during, elapsed)
        assert during >= 1 or elapsed < 1.5, "no commit tried again in %.1f s" % elapsed
        # one more attempt: by then the turn has taken all it may (the big one and 127 more)
        seen, deadline = p.log().count(failure), time.time() + 5
        while p.log().count(failure) == seen and time.time() < deadline:
            time.sleep(0.02)
        depth = re.search(rb"^parley_queue_depth (\d+)", p.get("/metrics")[1], re.M)
        assert depth and int(depth.group(1)) == smalls - 127, p.get("/metrics")[1]
        assert provider.sends() == [], "a turn that did not commit sent something"
        resource.prlimit(p.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        provider.wait_sends(1 + smalls)
        time.sleep(0.3)
        bodies = [s["text"]["body"] for s in provider.sends()]
        assert sorted(bodies) == sorted(["re big"] + ["re small%d" % i for i in range(smalls)]), bodies
        assert p.stop() == 0
        with sqlite3.connect(os.path.join(p.dir, "var", "parley.db")) as db:
            (session,) = db.execute("select session from contacts where contact = '79991234567'").fetchone()
            assert len(json.loads(session)["blob"]) == 6 * 1024 * 1024
    finally:
        harness.shutdown(p, provider)


def test_a_proxys_connect_carries_the_user_agent_and_not_the_token(binary):
    # the user agent is one of the request's header lines, which libcurl keeps from a proxy;
    # CURLOPT_PROXYHEADER gives the proxy its own copy (and the token stays with the provider)
    import socket
    seen, lock = [], threading.Lock()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(10)

    def proxy():
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            with lock:
                seen.append(data.decode("latin-1"))
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=proxy, daemon=True)
    thread.start()
    cfg = {"provider": {"kind": "cloud-api", "url": "https://graph.example.invalid/v21.0", "token": "$WA_TOKEN"}}
    env = {"https_proxy": "http://127.0.0.1:%d" % server.getsockname()[1], "HTTPS_PROXY": "", "no_proxy": "", "NO_PROXY": ""}
    p = harness.Parley(binary, {"main.lua": COUNTER}, extra=cfg, env=env)
    try:
        p.start()
        assert p.post_webhook(harness.text_webhook("hi")) == 200
        thread.join(10)
        with lock:
            assert seen, "the proxy saw no request"
            head = seen[0]
        assert head.startswith("CONNECT graph.example.invalid:443 HTTP/1.1\r\n"), head
        assert re.search(r"(?im)^User-Agent: parley/\d+\.\d+\.\d+\r$", head), head
        assert "Bearer" not in head and harness.WA_TOKEN not in head, head
        assert p.stop() == 0
    finally:
        server.close()
        p.cleanup()
