"""Broadcasts and templates sync, end to end: `parley broadcast` runs as its own process against
the local stand-in for Cloud API (FakeProvider), next to `parley serve` on the same state file
when a test needs the server. Pacing, the daily limit, kill -9 and resume, consent, bad rows,
delivery counts from status webhooks, constant memory, and `parley templates sync` with paging."""

import json
import os
import pty
import signal
import sqlite3
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness

WABA_ID = "102290129340398"

REGISTRY = {"data": harness.TEMPLATES}

SCRIPT = """
return {
  on_message = function(chat, msg) end,
  on_status = function(chat, status) end,
}
"""

SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def sanitized(binary):
    return os.sep + "san" + os.sep in os.path.abspath(binary)


def setup(binary, provider, daily_limit=100000, max_connections=None, registry=REGISTRY, extra_channel=None):
    channel = {"phone_number_id": harness.PHONE_NUMBER_ID, "script": "scripts/main.lua",
               "templates": "templates.json", "language": "ru", "daily_limit": daily_limit, "waba_id": WABA_ID}
    channel.update(extra_channel or {})
    p = harness.Parley(binary, {"main.lua": SCRIPT}, provider=provider, channels={"shop": channel})
    if max_connections is not None:
        with open(p.config) as f:
            cfg = json.load(f)
        cfg["provider"]["max_connections"] = max_connections
        with open(p.config, "w") as f:
            json.dump(cfg, f)
    if registry is not None:
        with open(os.path.join(p.dir, "templates.json"), "w") as f:
            json.dump(registry, f, ensure_ascii=False)
    return p


def write_csv(p, name, header, rows):
    path = os.path.join(p.dir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(header + "\n")
        for r in rows:
            f.write(r + "\n")
    return path


def contacts(n, start=1):
    return ["7999%07d" % i for i in range(start, start + n)]


def shipped_rows(wa_ids, opt_in="1"):
    return ["%s,Имя%d,A-%d,A-%d,RA%d,%s" % (w, i, i, i, i, opt_in) for i, w in enumerate(wa_ids)]


SHIPPED_HEADER = "wa_id,name,order,header,button_1,opt_in"


def broadcast(p, *args, timeout=60, check_san=True):
    r = subprocess.run([p.binary, "broadcast", "-c", p.config] + list(args), capture_output=True, text=True,
                       env=p.env, cwd=p.dir, timeout=timeout)
    if check_san:
        for marker in SANITIZER:
            assert marker not in r.stderr, "sanitizer report:\n" + r.stderr[-6000:]
    return r


def status(p, job):
    r = broadcast(p, "status", job, "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    return json.loads(r.stdout)


def job_of(r):
    for line in (r.stdout + r.stderr).splitlines():
        for word in line.replace(":", " ").split():
            if word.startswith("b-") and word.count("-") == 2:
                return word
    raise AssertionError("no job id in the output:\n" + r.stdout + r.stderr)


def by_recipient(sends):
    out = {}
    for s in sends:
        out.setdefault(s["to"], []).append(s)
    return out


def db(p):
    return sqlite3.connect(os.path.join(p.dir, "var", "parley.db"))


def run(binary, fn, provider=True, **kw):
    prov = harness.FakeProvider() if provider else None
    p = setup(binary, prov, **kw)
    try:
        fn(p, prov)
    finally:
        try:
            p.stop()
        finally:
            p.cleanup()
            if prov is not None:
                prov.close()


def test_1000_contacts_at_200_per_second_take_about_5_seconds(binary):
    def go(p, provider):
        wa = contacts(1000)
        path = write_csv(p, "list.csv", SHIPPED_HEADER, shipped_rows(wa))
        t0 = time.time()
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", path, "--rate", "200")
        took = time.time() - t0
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert 4.0 <= took <= 7.0, "1000 messages at 200/s took %.2fs" % took
        assert "sent: 1000\n" in r.stdout and "skipped: 0\n" in r.stdout and "failed: 0\n" in r.stdout, r.stdout
        got = by_recipient(provider.sends())
        assert sorted(got) == wa, "recipients differ: %d got a message" % len(got)
        for i, w in enumerate(wa):
            assert len(got[w]) == 1, "%s got %d messages" % (w, len(got[w]))
            assert got[w][0]["template"] == {
                "name": "order_shipped", "language": {"code": "ru"}, "components": [
                    {"type": "header", "parameters": [{"type": "text", "text": "A-%d" % i}]},
                    {"type": "body", "parameters": [{"type": "text", "text": "Имя%d" % i},
                                                    {"type": "text", "text": "A-%d" % i}]},
                    {"type": "button", "sub_type": "url", "index": "0",
                     "parameters": [{"type": "text", "text": "RA%d" % i}]}]}, got[w][0]
        for req in provider.requests:
            assert req["headers"].get("Authorization") == "Bearer " + harness.WA_TOKEN
            assert req["path"] == "/v21.0/%s/messages" % harness.PHONE_NUMBER_ID
        s = status(p, job_of(r))
        assert s["state"] == "done" and s["recipients"]["sent"] == 1000, s
        assert s["delivery"]["sent"] == 1000, s
        print("  1000 messages at --rate 200: %.2fs" % took)
    run(binary, go)


def test_the_daily_limit_stops_the_job_and_a_tier_raise_resumes_it(binary):
    def go(p, provider):
        wa = contacts(5, 100)
        path = write_csv(p, "list.csv", SHIPPED_HEADER, shipped_rows(wa))
        args = ["--channel", "shop", "--template", "order_shipped", "--to", path, "--rate", "1000"]
        r = broadcast(p, *args)
        assert r.returncode == 0, (r.stdout, r.stderr)
        job = job_of(r)
        assert "stopped at the daily limit" in r.stdout, r.stdout
        assert "sent: 3\n" in r.stdout and "not sent (daily_limit): 2\n" in r.stdout, r.stdout
        assert "broadcast --resume " + job in r.stdout, r.stdout
        assert len(provider.wait_sends(3)) == 3
        # the same command again: the limit still holds, nothing more goes
        r = broadcast(p, *args)
        assert r.returncode == 0 and ("resuming " + job) in r.stderr, (r.stdout, r.stderr)
        assert "not sent (daily_limit): 2\n" in r.stdout, r.stdout
        unsent = broadcast(p, "status", job, "--unsent").stdout.splitlines()
        assert unsent[1:] == ['5,%s,pending,daily_limit,""' % wa[3], '6,%s,pending,daily_limit,""' % wa[4]], unsent
        time.sleep(0.1)
        assert len(provider.sends()) == 3
        # a tier webhook reaches the server: the limit in the state file rises
        p.start()
        tier = {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "time": int(time.time()), "changes": [
            {"field": "phone_number_quality_update", "value": {
                "display_phone_number": "15550783881", "event": "UPGRADE", "current_limit": "TIER_2K"}}]}]}
        assert p.post_webhook(tier) == 200
        p.wait_log("daily limit of business-initiated recipients is now 2000")
        deadline = time.time() + 5
        while time.time() < deadline and not db(p).execute(
                "select value from settings where key = 'limit:shop' and value = '2000'").fetchone():
            time.sleep(0.02)
        r = broadcast(p, "--resume", job)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert ("broadcast %s: done" % job) in r.stdout and "sent: 5\n" in r.stdout, r.stdout
        got = by_recipient(provider.wait_sends(5))
        assert sorted(got) == wa and all(len(v) == 1 for v in got.values()), got.keys()
        # the server counts the broadcast's recipients too: they are in the state file
        assert db(p).execute("select count(*) from business_sends where channel = 'shop'").fetchone()[0] == 5
        assert p.stop() == 0
        # a finished job is not sent again by accident
        r = broadcast(p, *args)
        assert r.returncode == 1 and "--new" in r.stderr, (r.stdout, r.stderr)
    run(binary, go, daily_limit=3)


def test_kill_9_then_resume_sends_everyone_once_but_the_in_flight(binary):
    def go(p, provider):
        provider.delay = 0.05
        wa = contacts(200, 300)
        path = write_csv(p, "list.csv", SHIPPED_HEADER, shipped_rows(wa))
        args = ["broadcast", "-c", p.config, "--channel", "shop", "--template", "order_shipped", "--to", path,
                "--rate", "1000", "--quiet"]
        proc = subprocess.Popen([p.binary] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=p.env, cwd=p.dir)
        deadline = time.time() + 20
        while len(provider.sends()) < 20 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.005)
        # a second run of the job meanwhile would send its pending recipients twice: refused
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", path)
        assert r.returncode == 1 and "another parley broadcast is running on " in r.stderr, r.stderr
        assert ("(pid %d)" % proc.pid) in r.stderr, r.stderr
        while len(provider.sends()) < 60 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = len(provider.sends())
        assert 60 <= before < 200, "killed after %d sends" % before
        # the server must not send the broadcast's queued messages: the broadcast owns them
        p.start()
        time.sleep(0.5)
        assert p.stop() == 0
        assert len(provider.sends()) == before, "the server sent broadcast messages"
        q = db(p).execute("select count(*) from broadcast_recipients where state = 'queued'").fetchone()[0]
        assert q <= 8, "%d recipients queued at the kill" % q
        provider.delay = 0
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", path, "--rate", "1000")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert "resuming " in r.stderr and "sent: 200\n" in r.stdout, (r.stdout, r.stderr)
        got = by_recipient(provider.sends())
        assert sorted(got) == wa, "not everyone got the message: %d of 200" % len(got)
        dups = sum(len(v) - 1 for v in got.values())
        assert dups <= 4, "%d duplicates; at most max_connections (4) may be in flight" % dups
        print("  kill -9 after %d sends: %d queued rows re-sent, %d duplicates (max_connections 4)" % (before, q, dups))
    run(binary, go, max_connections=4)


def test_sigint_stops_cleanly_and_resume_sends_nothing_twice(binary):
    def go(p, provider):
        provider.delay = 0.02
        wa = contacts(100, 600)
        path = write_csv(p, "list.csv", SHIPPED_HEADER, shipped_rows(wa))
        proc = subprocess.Popen([p.binary, "broadcast", "-c", p.config, "--channel", "shop", "--template",
                                 "order_shipped", "--to", path, "--rate", "1000"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=p.env, cwd=p.dir, text=True)
        deadline = time.time() + 20
        while len(provider.sends()) < 20 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 1, (out, err)
        job = job_of(type("R", (), {"stdout": out, "stderr": err}))
        assert ("broadcast %s: stopped" % job) in out and "why: interrupted: stopped by SIGINT" in out, out
        assert ("resume with: parley broadcast --resume " + job) in out, out
        s = status(p, job)
        assert s["state"] == "stopped" and s["stop_code"] == "interrupted", s
        assert s["recipients"]["queued"] == 0 and s["recipients"]["pending"] > 0, s
        provider.delay = 0
        r = broadcast(p, "--resume", job, "--rate", "1000")
        assert r.returncode == 0 and "sent: 100\n" in r.stdout, (r.stdout, r.stderr)
        got = by_recipient(provider.sends())
        assert sorted(got) == wa and all(len(v) == 1 for v in got.values()), \
            "after a clean stop nobody may get two: %s" % [k for k, v in got.items() if len(v) > 1]
    run(binary, go, max_connections=4)


def test_consent_from_the_list_or_a_conversation_and_not_opted_in_skipped(binary):
    def go(p, provider):
        p.start()
        # 79990000001 wrote to the bot: consent by conversation, no opt_in needed
        assert p.post_webhook(harness.text_webhook("hi", wa_id="79990000001")) == 200
        p.wait_idle(1)
        rows = ["79990000001,Анна,", "79990000002,Оля,yes", "79990000003,Ира,Да", "79990000004,Ева,0",
                "79990000005,Лиза,", "79990000006,Ксения,TRUE"]
        path = write_csv(p, "list.csv", "wa_id,first_name,opt_in", rows)
        r = broadcast(p, "--channel", "shop", "--template", "promo", "--to", path, "--rate", "1000")
        assert r.returncode == 0, (r.stdout, r.stderr)
        job = job_of(r)
        assert "sent: 4\n" in r.stdout and "skipped: 2 (not_opted_in 2)\n" in r.stdout, r.stdout
        assert "list.csv:5: 79990000004: skipped not_opted_in" in r.stdout, r.stdout
        assert sorted(by_recipient(provider.wait_sends(4))) == ["79990000001", "79990000002", "79990000003", "79990000006"]
        sent = {s["to"]: s for s in provider.sends()}
        assert sent["79990000002"]["template"]["components"] == [
            {"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Оля"}]}]
        got = dict((c, (o, src)) for c, o, src in db(p).execute(
            "select contact, opted_in, opt_in_source from contacts where channel = 'shop'"))
        assert got["79990000002"] == (1, "broadcast:" + job), got
        assert got["79990000003"] == (1, "broadcast:" + job), got
        assert got["79990000006"] == (1, "broadcast:" + job), got
        assert got["79990000001"][0] == 0, "a contact who wrote keeps no opt-in it did not give"
        assert "79990000004" not in got and "79990000005" not in got, got
        # inside the window the message is customer-initiated: not counted for the daily limit
        counted = set(c for (c,) in db(p).execute("select contact from business_sends"))
        assert counted == {"79990000002", "79990000003", "79990000006"}, counted
        assert p.stop() == 0
    run(binary, go)


def test_bad_rows_are_skipped_with_codes_and_a_bad_list_is_refused(binary):
    def go(p, provider):
        rows = [
            "79990000011,Анна,A-1,A-1,RA1,1",
            "12ab,Bad,A-2,A-2,RA2,1",                     # bad_phone
            "+7 (999) 000-00-11,Dup,A-3,A-3,RA3,1",       # duplicate of line 2
            "79990000013,Ира,A-4,A-4,1",                  # bad_row: 5 fields
            '79990000014,"Tab\tname",A-5,A-5,RA5,1',      # template_param_format
            "79990000015,,A-6,A-6,RA6,1",                 # template_param_format: empty
            '79990000016,"Кавычки ""да""",A-7,A-7,RA7,1',  # quoted, fine
            "",
            "79990000017,Ок,A-8,A-8,RA8,1",
        ]
        path = write_csv(p, "list.csv", SHIPPED_HEADER, rows)
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", path, "--rate", "1000")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert "sent: 3\n" in r.stdout, r.stdout
        assert "skipped: 5 (bad_phone 1, bad_row 1, duplicate 1, template_param_format 2)\n" in r.stdout, r.stdout
        assert "list.csv:3: 12ab: skipped bad_phone" in r.stdout, r.stdout
        assert "list.csv:4: 79990000011: skipped duplicate: 79990000011 is on line 2 already" in r.stdout, r.stdout
        assert "list.csv:5: 79990000013: skipped bad_row: the row has 5 fields; the header has 6" in r.stdout, r.stdout
        sent = by_recipient(provider.wait_sends(3))
        assert sorted(sent) == ["79990000011", "79990000016", "79990000017"], sorted(sent)
        body = sent["79990000016"][0]["template"]["components"][1]["parameters"][0]["text"]
        assert body == 'Кавычки "да"', body
        # the CSV listing of who was not sent and why
        u = broadcast(p, "status", job_of(r), "--unsent")
        assert u.returncode == 0 and u.stdout.splitlines()[0] == "line,wa_id,state,code,detail", u.stdout
        assert len(u.stdout.splitlines()) == 6, u.stdout
        # a list without a wa_id column, a template that does not fit the columns, bad usage
        bad = write_csv(p, "bad.csv", "phone,name,order", ["79990000001,A,B"])
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", bad)
        assert r.returncode == 1 and "bad.csv:1: no wa_id column" in r.stderr, r.stderr
        cols = write_csv(p, "cols.csv", "wa_id,name", ["79990000001,A"])
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", cols)
        assert r.returncode == 1 and "cols.csv:1: template order_shipped (ru) takes 2 body parameters" in r.stderr, r.stderr
        quote = write_csv(p, "quote.csv", "wa_id,first_name", ['79990000001,"open'])
        r = broadcast(p, "--channel", "shop", "--template", "promo", "--to", quote)
        assert r.returncode == 1 and "quote.csv:2: a quoted field is not closed" in r.stderr, r.stderr
        r = broadcast(p, "--channel", "shop", "--template", "nope", "--to", path)
        assert r.returncode == 1 and "unknown_template" in r.stderr, r.stderr
        r = broadcast(p, "--channel", "shop", "--to", path)
        assert r.returncode == 2 and "usage:" in r.stderr, r.stderr
        r = broadcast(p, "--channel", "shop", "--template", "promo", "--to", path, "--rate", "0")
        assert r.returncode == 2, r.stderr
        # no job was created by the refused lists
        assert db(p).execute("select count(*) from broadcasts").fetchone()[0] == 1
    run(binary, go)


def test_columns_by_number_and_an_excel_list_with_semicolons(binary):
    def go(p, provider):
        # numbered columns give {{1}} and {{2}} whatever their order; other columns are ignored
        path = write_csv(p, "numbered.csv", "wa_id,note,2,1,header,button_1,opt_in",
                         ["79990000031,VIP,A-31,Анна,A-31,RA31,1"])
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", path)
        assert r.returncode == 0 and "sent: 1\n" in r.stdout, (r.stdout, r.stderr)
        assert "columns no template value comes from: note" in r.stderr, r.stderr
        body = provider.wait_sends(1)[0]["template"]["components"][1]["parameters"]
        assert [x["text"] for x in body] == ["Анна", "A-31"], body
        # what Excel saves in a Russian locale: a byte order mark, semicolons, CRLF, quotes
        excel = os.path.join(p.dir, "excel.csv")
        with open(excel, "wb") as f:
            f.write("\ufeffWA_ID;First_Name;Opt_In\r\n79990000032;\"Анна; Мария\";Да\r\n\r\n".encode())
        r = broadcast(p, "--channel", "shop", "--template", "promo", "--to", excel)
        assert r.returncode == 0 and "sent: 1\n" in r.stdout, (r.stdout, r.stderr)
        sent = provider.wait_sends(2)[1]
        assert sent["to"] == "79990000032", sent
        assert sent["template"]["components"][0]["parameters"][0]["text"] == "Анна; Мария", sent
    run(binary, go)


def test_status_shows_delivery_from_the_servers_status_webhooks(binary):
    def go(p, provider):
        p.start()  # the server runs next to the broadcast, on the same state file
        wa = contacts(6, 500)
        path = write_csv(p, "list.csv", SHIPPED_HEADER, shipped_rows(wa))
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", path, "--rate", "1000")
        assert r.returncode == 0, (r.stdout, r.stderr)
        job = job_of(r)
        wamids = {}
        for (contact, wamid) in db(p).execute("select contact, wamid from outbox where broadcast = ?", (job,)):
            wamids[contact] = wamid
        assert len(wamids) == 6 and all(w.startswith("wamid.") for w in wamids.values()), wamids
        for w in wa[:4]:
            assert p.post_webhook(harness.status_webhook(wamids[w], "delivered", wa_id=w)) == 200
        for w in wa[:2]:
            assert p.post_webhook(harness.status_webhook(wamids[w], "read", wa_id=w)) == 200
        err = [{"code": 131026, "title": "Message undeliverable"}]
        assert p.post_webhook(harness.status_webhook(wamids[wa[5]], "failed", wa_id=wa[5], errors=err)) == 200
        p.wait_idle(7)
        s = status(p, job)
        assert s["recipients"] == {"total": 6, "pending": 0, "queued": 0, "sent": 6, "skipped": 0, "failed": 0}, s
        assert s["delivery"] == {"queued": 0, "sent": 5, "delivered": 4, "read": 2, "failed": 1}, s["delivery"]
        assert s["delivery_failed"] == {"131026": 1}, s
        text = broadcast(p, "status", job).stdout
        assert "delivery: sent 5, delivered 4, read 2, failed 1, queued 0\n" in text, text
        assert "delivery failed: 131026 1\n" in text, text
        listing = broadcast(p, "status").stdout
        assert job in listing and "shop order_shipped: queued 0, sent 1, delivered 2, read 2, failed 1" in listing, listing
        assert p.stop() == 0
    run(binary, go)


def test_progress_bar_on_a_terminal_and_lines_otherwise(binary):
    def go(p, provider):
        path = write_csv(p, "list.csv", SHIPPED_HEADER, shipped_rows(contacts(20, 700)))
        master, slave = pty.openpty()
        proc = subprocess.Popen([p.binary, "broadcast", "-c", p.config, "--channel", "shop", "--template",
                                 "order_shipped", "--to", path, "--rate", "40"],
                                stdout=subprocess.PIPE, stderr=slave, env=p.env, cwd=p.dir)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        out = proc.stdout.read().decode()
        proc.wait()
        os.close(master)
        tty = b"".join(chunks).decode(errors="replace")
        assert proc.returncode == 0, (out, tty)
        assert "\r[" in tty and "ETA" in tty and "20/20" in tty, repr(tty[-400:])
        assert "sent: 20\n" in out, out
        path = write_csv(p, "list2.csv", SHIPPED_HEADER, shipped_rows(contacts(3, 800)))
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", path)
        assert "\r" not in r.stderr and "progress b-" in r.stderr, r.stderr
    run(binary, go)


def test_100000_recipients_in_constant_memory(binary):
    """The list is read and sent in chunks: peak memory does not grow with it. Under the
    sanitizers (whose allocator keeps freed memory in quarantine) a smaller list proves it works."""
    n = 5000 if sanitized(binary) else 100000

    def go(p, provider):
        path = os.path.join(p.dir, "big.csv")
        with open(path, "w") as f:
            f.write(SHIPPED_HEADER + "\n")
            for i in range(n):
                f.write("7%010d,Имя%d,A-%d,A-%d,RA%d,1\n" % (i, i, i, i, i))
        t0 = time.time()
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", path, "--rate", "1000000",
                      "--stats", "--quiet", timeout=300)
        took = time.time() - t0
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert ("sent: %d\n" % n) in r.stdout, r.stdout
        kib = int(r.stdout.split("VmHWM ")[1].split(" kB")[0])
        if not sanitized(binary):
            assert kib < 40 * 1024, "peak memory %d KiB for %d recipients" % (kib, n)
        print("  %d recipients (sandbox): %.1fs, peak memory %.1f MiB" % (n, took, kib / 1024))
    run(binary, go, provider=False)


# ---- templates sync ----

class Graph:
    """GET /v21.0/<waba>/message_templates in pages, as the Graph API answers it."""

    def __init__(self, pages, status=200):
        self.pages, self.status, self.requests = pages, status, []
        graph = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                graph.requests.append({"path": self.path, "auth": self.headers.get("Authorization")})
                after = self.path.split("after=")[1].split("&")[0] if "after=" in self.path else "0"
                if graph.status != 200:
                    code, body = graph.status, {"error": {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}}
                else:
                    code, body = 200, dict(graph.pages[int(after)])
                    if int(after) + 1 < len(graph.pages):
                        body["paging"] = {"cursors": {"after": str(int(after) + 1)},
                                          "next": "http://127.0.0.1:%d/v21.0/%s/message_templates?limit=100&after=%d"
                                                  % (graph.port, WABA_ID, int(after) + 1)}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/v21.0" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class GraphProvider:
    def __init__(self, url):
        self.url = url


def sync(p, channel="shop"):
    return subprocess.run([p.binary, "templates", "sync", "-c", p.config, "--channel", channel],
                          capture_output=True, text=True, env=p.env, cwd=p.dir, timeout=30)


def test_templates_sync_follows_paging_and_writes_the_file(binary):
    bad = {"name": "starts_with_var", "language": "ru", "status": "APPROVED", "category": "UTILITY",
           "components": [{"type": "BODY", "text": "{{1}} привет"}]}
    pages = [{"data": REGISTRY["data"][:1]}, {"data": REGISTRY["data"][1:] + [bad]}]
    graph = Graph(pages)
    p = setup(binary, GraphProvider(graph.url), registry=None, extra_channel={"templates": "templates/shop.json"})
    try:
        r = sync(p)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert "wrote " in r.stdout and "3 templates from 2 pages" in r.stdout, r.stdout
        assert "data[2] (starts_with_var, ru): template_invalid: " in r.stdout, r.stdout
        assert [q["path"] for q in graph.requests] == [
            "/v21.0/%s/message_templates?limit=100" % WABA_ID,
            "/v21.0/%s/message_templates?limit=100&after=1" % WABA_ID], graph.requests
        assert all(q["auth"] == "Bearer " + harness.WA_TOKEN for q in graph.requests), graph.requests
        with open(os.path.join(p.dir, "templates", "shop.json")) as f:
            written = json.load(f)
        assert [t["name"] for t in written["data"]] == ["order_shipped", "promo", "starts_with_var"], written
        assert written["data"][0] == REGISTRY["data"][0]
        assert not [n for n in os.listdir(os.path.join(p.dir, "templates")) if ".tmp." in n]
        assert harness.WA_TOKEN not in r.stdout + r.stderr
    finally:
        p.cleanup()
        graph.close()


def test_templates_sync_errors_say_what_went_wrong(binary):
    graph = Graph([], status=400)
    p = setup(binary, GraphProvider(graph.url), registry=None)
    try:
        r = sync(p)
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "HTTP 400: (#100) Invalid parameter (code 100)" in r.stderr, r.stderr
        assert harness.WA_TOKEN not in r.stderr
        assert not os.path.exists(os.path.join(p.dir, "templates.json"))
        with open(p.config) as f:
            cfg = json.load(f)
        del cfg["channels"]["shop"]["waba_id"]
        with open(p.config, "w") as f:
            json.dump(cfg, f)
        r = sync(p)
        assert r.returncode == 1 and "no waba_id" in r.stderr, r.stderr
        r = sync(p, channel="nope")
        assert r.returncode == 1 and "no channel 'nope'" in r.stderr, r.stderr
        r = subprocess.run([p.binary, "templates", "sync", "-c", p.config], capture_output=True, text=True, env=p.env)
        assert r.returncode == 2, r.stderr
    finally:
        p.cleanup()
        graph.close()


def test_templates_sync_on_the_sandbox_writes_a_sample_that_broadcasts(binary):
    def go(p, provider):
        r = sync(p)
        assert r.returncode == 0 and "2 sample templates (sandbox provider)" in r.stdout, (r.stdout, r.stderr)
        c = subprocess.run([p.binary, "check", "-c", p.config], capture_output=True, text=True, env=p.env)
        assert c.returncode == 0, c.stdout
        path = write_csv(p, "list.csv", "wa_id,name,order,header,button_1,opt_in", ["79990000001,Анна,A-17,A-17,RA1,1"])
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", path)
        assert r.returncode == 0 and "sent: 1\n" in r.stdout, (r.stdout, r.stderr)
    run(binary, go, provider=False, registry=None)


def kill_while_refused(p, provider):
    """A one-recipient broadcast killed (-9) while the provider refuses its message (500): the
    message stays queued, waiting for a retry. Returns the recipients file."""
    busy = (500, {"error": {"message": "(#131000) Something went wrong", "code": 131000}})
    provider.responses += [busy] * 3
    path = write_csv(p, "list.csv", SHIPPED_HEADER, shipped_rows(["79990000001"]))
    proc = subprocess.Popen([p.binary, "broadcast", "-c", p.config, "--channel", "shop", "--template",
                             "order_shipped", "--to", path, "--rate", "1000", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=p.env, cwd=p.dir)
    deadline = time.time() + 20
    while not provider.requests and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return path


def test_a_resumed_message_a_day_old_fails_instead_of_being_retried_again(binary):
    """The maximum age of a broadcast's message counts from its commit, across a kill -9 and
    the resume: the resume must not start the message's day over."""
    def go(p, provider):
        path = kill_while_refused(p, provider)
        with db(p) as conn:
            assert conn.execute("select state from outbox").fetchall() == [(0,)]
            conn.execute("update outbox set created_at = created_at - 25 * 3600")
        tries = len(provider.requests)
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", path, "--rate", "1000")
        assert "resuming " in r.stderr, (r.stdout, r.stderr)
        assert len(provider.requests) == tries + 1, "sent %d more times" % (len(provider.requests) - tries)
        assert "failed: 1" in r.stdout, (r.stdout, r.stderr)
        assert db(p).execute("select state, error_code from outbox").fetchall() == [(4, 131000)]
    run(binary, go)


def test_a_resumed_message_goes_out_from_the_number_it_was_queued_for(binary):
    """A broadcast killed while its message waits for a retry, then the channel moved to another
    phone number: the resume sends the queued message from the number it was queued for (its
    outbox row keeps it), not from the channel's new one."""
    def go(p, provider):
        path = kill_while_refused(p, provider)
        with db(p) as conn:
            assert conn.execute("select state, phone_number_id from outbox").fetchall() == [
                (0, harness.PHONE_NUMBER_ID)]
        with open(p.config) as f:
            cfg = json.load(f)
        cfg["channels"]["shop"]["phone_number_id"] = "100200300400500"
        with open(p.config, "w") as f:
            json.dump(cfg, f)
        with provider.lock:
            provider.responses.clear()
            tries = len(provider.requests)
        r = broadcast(p, "--channel", "shop", "--template", "order_shipped", "--to", path, "--rate", "1000")
        assert "resuming " in r.stderr, (r.stdout, r.stderr)
        with provider.lock:
            paths = [q["path"] for q in provider.requests[tries:]]
        assert paths == ["/v21.0/%s/messages" % harness.PHONE_NUMBER_ID], paths
        assert db(p).execute("select state from outbox").fetchall() == [(1,)]
    run(binary, go)
