"""The e2e harness: a real `parley serve` process, a real local HTTP server standing in for the
provider (Meta's Cloud API), and helpers to sign and post webhooks the way Meta does.

Nothing of Parley is mocked: the tests talk HTTP to the built binary, and the binary talks HTTP
(libcurl) to FakeProvider.
"""

import atexit
import hashlib
import hmac
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

APP_SECRET = "e2e-app-secret"
VERIFY_TOKEN = "e2e-verify-token"
TRIGGER_TOKEN = "e2e-trigger-token"
WA_TOKEN = "e2e-wa-token-0123456789"
PHONE_NUMBER_ID = "106540352242922"


def scratch_dir(prefix):
    """A temporary folder that is removed when the suite's process exits, pass or fail."""
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, d, True)
    return d


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeProvider:
    """Cloud API stand-in. Records every request; answers from a queue of canned responses
    (status, body) and then with Meta's success envelope."""

    def __init__(self):
        self.requests = []
        self.responses = []
        self.lock = threading.Lock()
        self.counter = 0
        self.delay = 0.0
        self.path_delays = {}  # a path part (a phone number id) -> seconds its requests take
        self.decide = None  # decide(body) -> (status, payload) or None (then as below), under lock
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body in one write: two small writes meet Nagle and delayed ACKs (40 ms)
            wbufsize = 1 << 16

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with provider.lock:
                    provider.requests.append(
                        {"path": self.path, "at": time.time(), "headers": dict(self.headers), "header_lines": list(self.headers.items()),
                         "body": body, "raw": raw}
                    )
                    canned = provider.decide(body) if provider.decide is not None else None
                    if canned is None and provider.responses:
                        canned = provider.responses.pop(0)
                    provider.counter += 1
                    wamid = "wamid.FAKE%06d" % provider.counter
                delay = next((d for part, d in provider.path_delays.items() if part in self.path), provider.delay)
                if delay:
                    time.sleep(delay)
                if canned is None:
                    status, payload = 200, {
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": (body or {}).get("to"), "wa_id": (body or {}).get("to")}],
                        "messages": [{"id": wamid}],
                    }
                else:
                    status, payload = canned
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client killed mid-request (kill -9 tests) is expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/v21.0" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def sends(self):
        with self.lock:
            return [r["body"] for r in self.requests]

    def wait_sends(self, n, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.sends()) >= n:
                return self.sends()
            time.sleep(0.01)
        return self.sends()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def sign(body, secret=APP_SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_msg_counter = [0]


def text_webhook(text, wa_id="79991234567", name="Анна", pnid=PHONE_NUMBER_ID, msg_id=None, ts=None):
    return message_webhook({"type": "text", "text": {"body": text}}, wa_id, name, pnid, msg_id, ts)


def press_webhook(btn_id, title=None, wa_id="79991234567", name="Анна", pnid=PHONE_NUMBER_ID, msg_id=None):
    return message_webhook(
        {
            "type": "interactive",
            "context": {"from": "15550783881", "id": "wamid.CONTEXT"},
            "interactive": {"type": "button_reply", "button_reply": {"id": btn_id, "title": title or btn_id}},
        },
        wa_id, name, pnid, msg_id, None,
    )


def message_webhook(fields, wa_id="79991234567", name="Анна", pnid=PHONE_NUMBER_ID, msg_id=None, ts=None):
    _msg_counter[0] += 1
    msg = {
        "from": wa_id,
        "id": msg_id or "wamid.E2E%08d%d" % (_msg_counter[0], os.getpid()),
        "timestamp": str(int(ts if ts is not None else time.time())),
    }
    msg.update(fields)
    return envelope({"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [msg]}, pnid)


def status_webhook(wamid, status, wa_id="79991234567", errors=None, pnid=PHONE_NUMBER_ID):
    st = {"id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": wa_id}
    if errors:
        st["errors"] = errors
    return envelope({"statuses": [st]}, pnid)


def envelope(value, pnid=PHONE_NUMBER_ID):
    v = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid}}
    v.update(value)
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"value": v, "field": "messages"}]}]}


class Parley:
    """A `parley serve` process in a temporary folder, with its own config and scripts."""

    def __init__(self, binary, scripts, provider=None, channels=None, extra=None, env=None, stdlib=None):
        self.binary = os.path.abspath(binary)
        self.dir = tempfile.mkdtemp(prefix="parley-e2e-")
        self.port = free_port()
        self.provider = provider
        os.makedirs(os.path.join(self.dir, "scripts"))
        for name, text in scripts.items():
            path = os.path.join(self.dir, "scripts", name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        if channels is None:
            first = sorted(scripts)[0]
            channels = {"test": {"phone_number_id": PHONE_NUMBER_ID, "script": "scripts/" + first, "language": "ru"}}
        cfg = {
            "listen": "127.0.0.1:%d" % self.port,
            "state": "var/parley.db",
            "app_secret": "$WA_APP_SECRET",
            "verify_token": "$WA_VERIFY_TOKEN",
            "trigger_token": "$PARLEY_TRIGGER_TOKEN",
            "provider": {"kind": "cloud-api", "url": provider.url, "token": "$WA_TOKEN"} if provider else {"kind": "sandbox"},
            "channels": channels,
        }
        if extra:
            cfg.update(extra)
        self.config = os.path.join(self.dir, "parley.json")
        with open(self.config, "w") as f:
            json.dump(cfg, f, ensure_ascii=False, indent=2)
        self.env = dict(os.environ)
        self.env.update({
            "WA_APP_SECRET": APP_SECRET, "WA_VERIFY_TOKEN": VERIFY_TOKEN,
            "PARLEY_TRIGGER_TOKEN": TRIGGER_TOKEN, "WA_TOKEN": WA_TOKEN,
        })
        if stdlib:
            self.env["PARLEY_STDLIB"] = stdlib
        self.env.update(env or {})
        self.proc = None
        self.base = "http://127.0.0.1:%d" % self.port
        self.file_size_limit = None  # bytes: RLIMIT_FSIZE for the next start (writes past it fail)

    def start(self, wait=True):
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.out_path = os.path.join(self.dir, "stdout.log")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "-c", self.config],
            stdout=open(self.out_path, "wb"), stderr=open(self.log_path, "wb"), env=self.env, cwd=self.dir,
        )
        if self.file_size_limit is not None:
            # parley ignores SIGXFSZ: a write past the limit fails with EFBIG, as on a full disk;
            # the hard limit stays, so a test can lift the soft one again
            resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (self.file_size_limit, resource.RLIM_INFINITY))
        if wait:
            deadline = time.time() + 10
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError("parley exited at start (%s):\n%s" % (self.proc.returncode, self.log()))
                try:
                    self.get("/healthz")
                    return self
                except (OSError, urllib.error.URLError):
                    time.sleep(0.02)
            raise AssertionError("parley did not start:\n" + self.log())
        return self

    def stop(self, sig=signal.SIGTERM):
        """Stop the process; returns its exit status. A sanitizer report is a failure."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("parley did not stop within 20 s:\n" + self.log())
        rc = self.proc.returncode
        self.proc = None
        log = self.log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                raise AssertionError("sanitizer report:\n" + log[-6000:])
        return rc

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stdout(self):
        try:
            with open(self.out_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None):
        data = body if isinstance(body, (bytes, type(None))) else body.encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get(self, path):
        return self.request("GET", path)

    def health(self):
        status, body = self.get("/healthz")
        assert status == 200, status
        return json.loads(body)

    def post_webhook(self, payload, signature=True, secret=APP_SECRET, raw=None):
        body = raw if raw is not None else json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if signature is True:
            headers["X-Hub-Signature-256"] = sign(body, secret)
        elif signature:
            headers["X-Hub-Signature-256"] = signature
        return self.request("POST", "/webhook", body, headers)[0]

    def trigger(self, channel, payload, token=TRIGGER_TOKEN):
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        status, data = self.request("POST", "/channels/%s/trigger" % channel, body, headers)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data

    def wait_idle(self, events, timeout=10):
        """Wait until `events` events have run and no message is waiting to be sent."""
        deadline = time.time() + timeout
        h = None
        while time.time() < deadline:
            h = self.health()
            if h["events"]["done"] >= events and h["events"]["queued"] == 0 and h["outbox"] == 0:
                return h
            time.sleep(0.01)
        raise AssertionError("not idle after %ss (want %d events done): %s\n%s" % (timeout, events, h, self.log()[-3000:]))

    def wait_log(self, pattern, timeout=10):
        import re
        deadline = time.time() + timeout
        while time.time() < deadline:
            if re.search(pattern, self.log()):
                return
            time.sleep(0.02)
        raise AssertionError("log never matched %r:\n%s" % (pattern, self.log()[-3000:]))


def shutdown(p, provider):
    """After a test, pass or fail: stop parley (a failed stop was already reported), remove its
    folder and stop the fake provider."""
    try:
        p.stop()
    except AssertionError:
        pass
    p.cleanup()
    provider.close()


# Two approved templates in Meta's registry form (GET /<waba>/message_templates): one with a text
# header, positional parameters and URL + quick-reply buttons, one with a named parameter.
TEMPLATES = [
    {"name": "order_shipped", "language": "ru", "status": "APPROVED", "category": "UTILITY",
     "components": [
         {"type": "HEADER", "format": "TEXT", "text": "Заказ {{1}}"},
         {"type": "BODY", "text": "Здравствуйте, {{1}}! Заказ {{2}} отправлен."},
         {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Отследить", "url": "https://example.com/track/{{1}}"},
                                         {"type": "QUICK_REPLY", "text": "Спасибо"}]}]},
    {"name": "promo", "language": "ru", "status": "APPROVED", "category": "MARKETING", "parameter_format": "NAMED",
     "components": [{"type": "BODY", "text": "Скидка для вас, {{first_name}}!"}]},
]


def with_parley(binary, scripts, fn, setup=None, **kw):
    """Start parley (with a local FakeProvider) on scripts, run fn(p, provider), and require a
    clean stop: exit status 0 and no sanitizer report. setup(p) may write files before start."""
    provider = FakeProvider()
    p = Parley(binary, scripts, provider=provider, **kw)
    try:
        if setup is not None:
            setup(p)
        p.start()
        fn(p, provider)
        rc = p.stop()
        assert rc == 0, "parley exited %d" % rc
    finally:
        shutdown(p, provider)
