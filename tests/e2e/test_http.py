"""The HTTP contract of DESIGN.md: the verification handshake, webhook signature and limits,
/healthz, /metrics, and the trigger endpoint. Each test returns None on success or raises."""

import datetime
import json
import re
import time

import harness

ECHO = """
return {
  on_message = function(chat, msg) chat:send("echo: " .. (msg.text or msg.type)) end,
  on_trigger = function(chat, event)
    if event.name == "raise" then error("trigger failed on purpose") end
    return chat:send("trigger " .. event.name .. " " .. tostring(event.data and event.data.order))
  end,
}
"""


def with_parley(binary, fn, script=ECHO, **kw):
    harness.with_parley(binary, {"main.lua": script}, fn, **kw)


def test_verification_handshake(binary):
    def run(p, provider):
        ok = p.get("/webhook?hub.mode=subscribe&hub.verify_token=%s&hub.challenge=1158201444" % harness.VERIFY_TOKEN)
        assert ok == (200, b"1158201444"), ok
        odd = p.get("/webhook?hub.mode=subscribe&hub.verify_token=%s&hub.challenge=a%%20b%%2Fc" % harness.VERIFY_TOKEN)
        assert odd == (200, b"a b/c"), odd  # echoed byte for byte after URL decoding
        assert p.get("/webhook?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")[0] == 403
        assert p.get("/webhook?hub.mode=subscribe&hub.challenge=1")[0] == 403
        assert p.get("/webhook?hub.mode=unsubscribe&hub.verify_token=%s&hub.challenge=1" % harness.VERIFY_TOKEN)[0] == 403
        assert harness.VERIFY_TOKEN not in p.log()
    with_parley(binary, run)


def test_signature_required_and_nothing_runs_when_wrong(binary):
    def run(p, provider):
        payload = harness.text_webhook("hi")
        assert p.post_webhook(payload, signature=None) == 401
        assert p.post_webhook(payload, signature="sha256=" + "0" * 64) == 401
        assert p.post_webhook(payload, secret="not-the-secret") == 401
        assert p.post_webhook(payload, signature="sha1=abc") == 401
        h = p.health()
        assert h["events"]["done"] == 0, h
        assert provider.sends() == []
        log = p.log()
        assert "signature=missing" in log and "signature=mismatch" in log, log
        assert harness.APP_SECRET not in log
        # and the correct signature works
        assert p.post_webhook(payload) == 200
        p.wait_idle(1)
        assert len(provider.sends()) == 1
    with_parley(binary, run)


def test_signature_over_escaped_unicode_is_accepted(binary):
    def run(p, provider):
        payload = harness.text_webhook("äöå Привет 😀")
        raw = json.dumps(payload, ensure_ascii=False).encode()
        escaped = json.dumps(payload, ensure_ascii=True).encode()  # Meta signs this form
        assert p.post_webhook(None, raw=raw, signature=harness.sign(escaped)) == 200
        p.wait_idle(1)
        assert provider.wait_sends(1)[0]["text"]["body"] == "echo: äöå Привет 😀"
    with_parley(binary, run)


def test_body_limits_and_non_whatsapp_bodies(binary):
    def run(p, provider):
        big = b"{" + b" " * (3 * 1024 * 1024) + b"}"
        assert p.post_webhook(None, raw=big) == 413
        for raw in (b"not json", b"[]", b'{"object":"page","entry":[]}', b'{"object":"whatsapp_business_account"}'):
            assert p.post_webhook(None, raw=raw) == 400, raw
        assert p.health()["events"]["done"] == 0
        assert provider.sends() == []
    with_parley(binary, run)


def test_headers_of_a_few_kib_are_accepted_and_larger_refused(binary):
    # each connection has 8 KiB for the request line and headers (runtime/http.c)
    def post(p, body, pad):
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": harness.sign(body),
                   "X-Trace": "t" * pad}
        try:
            return p.request("POST", "/webhook", body, headers)[0]
        except OSError:  # refused while the client was still sending: the connection closed
            return "closed"

    def run(p, provider):
        big = json.dumps(harness.text_webhook("big headers", msg_id="wamid.HDR1")).encode()
        assert post(p, big, 6 * 1024) == 200
        too_big = json.dumps(harness.text_webhook("too big", msg_id="wamid.HDR2")).encode()
        assert post(p, too_big, 16 * 1024) in (431, "closed")
        assert p.post_webhook(harness.text_webhook("after", msg_id="wamid.HDR3")) == 200
        p.wait_idle(2)
        assert [s["text"]["body"] for s in provider.sends()] == ["echo: big headers", "echo: after"]
    with_parley(binary, run)


def test_one_connection_carries_bodies_of_every_size_in_turn(binary):
    # runtime/http.c keeps finished requests' body buffers for the next ones (up to 64 KiB):
    # nothing of a longer body may show through a shorter one, on one keep-alive connection
    import http.client

    def run(p, provider):
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)

        def post(text, pad):
            body = json.dumps(harness.text_webhook(text)).encode() + b" " * pad if text else b""
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": harness.sign(body)}
            conn.request("POST", "/webhook", body, headers)
            r = conn.getresponse()
            r.read()
            return r.status

        sizes = [("huge", 200 * 1024), ("small", 0), ("mid", 20 * 1024), (None, 0), ("tiny", 0),
                 ("mid again", 30 * 1024), ("last", 0)]
        got = [post(text, pad) for text, pad in sizes]
        assert got == [200, 200, 200, 400, 200, 200, 200], got
        conn.close()
        p.wait_idle(6)
        assert [s["text"]["body"] for s in provider.sends()] == [
            "echo: " + t for t, _ in sizes if t is not None]
    with_parley(binary, run)


def test_unknown_phone_number_id_is_acknowledged_and_counted(binary):
    def run(p, provider):
        assert p.post_webhook(harness.text_webhook("hi", pnid="999999")) == 200
        p.wait_idle(1)
        assert provider.sends() == []
        status, body = p.get("/metrics")
        assert status == 200
        assert b"parley_events_unrouted_total 1" in body, body
        assert "no channel has this phone_number_id" in p.log()
    with_parley(binary, run)


def test_healthz_reports_each_channel(binary):
    def run(p, provider):
        h = p.health()
        assert h["status"] == "ok" and h["version"], h
        ch = h["channels"]["test"]
        assert ch["loaded"] is True and ch["last_error"] is None and len(ch["version"]) == 16, ch
        assert ch["script"].endswith("scripts/main.lua"), ch
    with_parley(binary, run)


def test_metrics_count_events_and_rejections(binary):
    script = 'return { on_message = function(chat, msg) chat:send("x", { buttons = { "1", "2", "3", "4" } }) end }'

    def run(p, provider):
        assert p.post_webhook(harness.text_webhook("hi")) == 200
        p.wait_idle(1)
        body = p.get("/metrics")[1].decode()
        assert 'parley_events_in_total{channel="test",type="message"} 1' in body, body
        assert 'parley_rejections_total{channel="test",code="too_many_quick_replies"} 1' in body, body
        assert "# TYPE parley_webhooks_total counter" in body
    with_parley(binary, run, script=script)


def test_webhook_batch_runs_every_message_in_order(binary):
    def run(p, provider):
        msgs = [harness.text_webhook("m%d" % i)["entry"][0]["changes"][0]["value"]["messages"][0] for i in range(5)]
        payload = harness.envelope({"contacts": [{"profile": {"name": "A"}, "wa_id": "79991234567"}], "messages": msgs})
        payload["entry"].append(harness.text_webhook("second entry")["entry"][0])
        assert p.post_webhook(payload) == 200
        p.wait_idle(6)
        bodies = [s["text"]["body"] for s in provider.wait_sends(6)]
        assert bodies == ["echo: m0", "echo: m1", "echo: m2", "echo: m3", "echo: m4", "echo: second entry"], bodies
    with_parley(binary, run)


def test_trigger_endpoint(binary):
    def run(p, provider):
        # the contact writes first, so the window is open
        assert p.post_webhook(harness.text_webhook("hi")) == 200
        p.wait_idle(1)
        status, body = p.trigger("test", {"to": "79991234567", "event": "order_ready", "data": {"order": "A-17"}, "id": "crm-1"})
        assert status == 200 and body["id"] == "crm-1" and len(body["messages"]) == 1, (status, body)
        again = p.trigger("test", {"to": "79991234567", "event": "order_ready", "data": {"order": "A-17"}, "id": "crm-1"})
        assert again == (200, body), again  # idempotent: same answer, nothing run
        p.wait_idle(2)
        assert [s["text"]["body"] for s in provider.sends()] == ["echo: hi", "trigger order_ready A-17"]
        assert p.trigger("test", {"to": "79991234567", "event": "x"}, token="wrong")[0] == 401
        assert p.trigger("test", {"to": "79991234567", "event": "x"}, token=None)[0] == 401
        assert p.trigger("nope", {"to": "79991234567", "event": "x"})[0] == 404
        assert p.trigger("test", b"not json")[0] == 400
        assert p.trigger("test", {"event": "x"})[0] == 400
        status, body = p.trigger("test", {"to": "79991234567", "event": "raise"})
        assert status == 422 and body["error"]["code"] == "script_error", body
        assert "main.lua:5: trigger failed on purpose" in body["error"]["message"], body
        # a contact who never wrote: free-form is refused before it leaves
        status, body = p.trigger("test", {"to": "70000000000", "event": "order_ready"})
        assert status == 422 and body["error"]["code"] == "window_closed", body
        assert harness.TRIGGER_TOKEN not in p.log()
        assert len(provider.sends()) == 2
    with_parley(binary, run)


def test_status_webhook_reaches_on_status_with_local_id(binary):
    script = """
return {
  on_message = function(chat, msg) chat.session.sent = chat:send("hello") end,
  on_status = function(chat, st)
    if st.status == "failed" then
      chat:send(("status %s %s %s %s"):format(st.status, tostring(st.message_id == chat.session.sent), st.error.code, st.wamid))
    end
  end,
}
"""

    def run(p, provider):
        assert p.post_webhook(harness.text_webhook("hi")) == 200
        p.wait_idle(1)
        assert p.post_webhook(harness.status_webhook("wamid.FAKE000001", "failed",
                                                     errors=[{"code": 131049, "title": "t", "message": "t", "error_data": {"details": "d"}}])) == 200
        p.wait_idle(2)
        bodies = [s["text"]["body"] for s in provider.wait_sends(2)]
        assert bodies == ["hello", "status failed true 131049 wamid.FAKE000001"], bodies
    with_parley(binary, run, script=script)


def test_provider_500_then_200_delivers_once(binary):
    def run(p, provider):
        err = {"error": {"message": "(#131000) Something went wrong", "code": 131000}}
        provider.responses += [(500, err), (500, err)]
        assert p.post_webhook(harness.text_webhook("hi")) == 200
        sends = provider.wait_sends(3, timeout=15)
        p.wait_idle(1, timeout=15)
        assert len(provider.sends()) == 3, provider.sends()
        assert all(s == sends[0] for s in sends)
        assert "send_retry" in p.log()
    with_parley(binary, run)


def test_many_contacts_waiting_for_a_retry_each_go_out_at_their_own_time(binary):
    """A provider outage leaves every contact with a message waiting for its retry. Forty
    contacts' first sends are refused with 500; each is sent again after its own jittered
    backoff (0.5-1 s, as the log says), in the order the retries fall due, and each is
    delivered once."""
    contacts = ["7999100%04d" % i for i in range(40)]

    def run(p, provider):
        err = {"error": {"message": "(#131000) Something went wrong", "code": 131000}}
        refused = set()

        def first_refused(body):  # each contact's first send gets the 500, the next a 200
            to = (body or {}).get("to")
            if to in refused:
                return None
            refused.add(to)
            return (500, err)
        provider.decide = first_refused
        for i, wa_id in enumerate(contacts):
            assert p.post_webhook(harness.text_webhook("hi %d" % i, wa_id=wa_id)) == 200
        p.wait_idle(len(contacts), timeout=30)
        with provider.lock:
            requests = list(provider.requests)
        assert len(requests) == 2 * len(contacts), len(requests)
        planned, due, retried = {}, {}, {}
        for line in p.log().splitlines():
            m = re.search(r"^ts=(\S+) .*contact=(\d+) event=send_retry .*retrying in (\d+) ms", line)
            if m:
                logged = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
                logged = logged.replace(tzinfo=datetime.timezone.utc).timestamp()
                planned[m.group(2)] = int(m.group(3)) / 1000
                due[m.group(2)] = logged + planned[m.group(2)]  # when parley meant to retry
        assert sorted(planned) == sorted(contacts), planned
        for wa_id in contacts:
            first, second = [r["at"] for r in requests if r["body"]["to"] == wa_id]
            assert 0.49 <= planned[wa_id] <= 1.0, planned[wa_id]  # 50-100 % of 1 s
            # never before its time, and not held back behind a retry due later
            assert second - first >= planned[wa_id] - 0.02, (wa_id, second - first, planned[wa_id])
            assert due[wa_id] - 0.02 <= second <= due[wa_id] + 0.3, (wa_id, second - due[wa_id])
            retried[wa_id] = second
        late = [(a, b) for a in contacts for b in contacts
                if due[a] + 0.15 < due[b] and retried[a] > retried[b]]
        assert late == [], late
    with_parley(binary, run)


def test_pair_rate_limit_backs_off_that_recipient_only(binary):
    """131056 (too many messages to one customer) holds that contact's queue for 4^n s (1 s the
    first time); another contact's message goes out meanwhile."""
    def run(p, provider):
        provider.responses.append((400, {"error": {"message": "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                                                   "code": 131056}}))
        assert p.post_webhook(harness.text_webhook("a", wa_id="79990000001")) == 200
        provider.wait_sends(1)
        refused = time.time()
        assert p.post_webhook(harness.text_webhook("b", wa_id="79990000002")) == 200
        provider.wait_sends(2)
        assert provider.sends()[1]["to"] == "79990000002"
        assert time.time() - refused < 0.9  # not held behind the other contact's back-off
        provider.wait_sends(3, timeout=5)
        waited = time.time() - refused
        assert provider.sends()[2]["to"] == "79990000001"
        assert 0.9 <= waited < 3, waited
        p.wait_idle(2)
        assert len(provider.sends()) == 3
    with_parley(binary, run)


def test_permanent_provider_error_is_not_retried_and_reaches_on_status(binary):
    script = """
return {
  on_message = function(chat, msg) chat:send("will fail") end,
  on_status = function(chat, st) print("STATUS", st.status, st.error and st.error.code, st.message_id ~= nil) end,
}
"""

    def run(p, provider):
        provider.responses.append((400, {"error": {"message": "(#131026) Message Undeliverable", "code": 131026,
                                                   "error_data": {"details": "not on WhatsApp"}}}))
        assert p.post_webhook(harness.text_webhook("hi")) == 200
        p.wait_idle(1)
        p.wait_log(r"STATUS\\tfailed\\t131026\\ttrue")
        assert len(provider.sends()) == 1
    with_parley(binary, run, script=script)


def test_shutdown_on_sigterm_is_clean(binary):
    def run(p, provider):
        assert p.post_webhook(harness.text_webhook("bye")) == 200
        p.wait_idle(1)
    with_parley(binary, run)
