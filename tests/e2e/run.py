"""Run the end-to-end suite: every case file in tests/e2e/cases/*.t (data: a script, webhooks,
the exact JSON that must leave, log lines) and every test_* function in tests/e2e/test_*.py.
Prints one line per test and closes with "e2e: N passed, N failed".

    python3 tests/e2e/run.py --parley build/parley [-k NAME]
"""

import argparse
import glob
import importlib.util
import json
import os
import re
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_case_file(path):
    """Cases are `=== name` blocks of `--- section` parts, like Test::Nginx."""
    cases, case, section = [], None, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("=== "):
                case = {"name": line[4:].strip(), "file": os.path.basename(path), "sections": {}}
                cases.append(case)
                section = None
            elif line.startswith("--- ") and case is not None:
                section = line[4:].strip()
                case["sections"][section] = ""
            elif section is not None:
                case["sections"][section] += line
    return cases


def subset(want, got, where="$"):
    """want must be equal to got, except that objects in want may omit keys got has only when
    want says so with "...": true. Returns a description of the first difference or None."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return "%s: want an object, got %r" % (where, got)
        loose = want.get("...") is True
        for k, v in want.items():
            if k == "...":
                continue
            if k not in got:
                return "%s.%s: missing (got keys %s)" % (where, k, sorted(got))
            d = subset(v, got[k], where + "." + k)
            if d:
                return d
        if not loose:
            extra = sorted(set(got) - set(want))
            if extra:
                return "%s: unexpected keys %s" % (where, extra)
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return "%s: want %d items, got %r" % (where, len(want), got)
        for i, (w, g) in enumerate(zip(want, got)):
            d = subset(w, g, "%s[%d]" % (where, i))
            if d:
                return d
        return None
    if want != got:
        return "%s: want %r, got %r" % (where, want, got)
    return None


def run_case(parley_bin, case):
    s = case["sections"]
    scripts = {"main.lua": s["script"]}
    provider = harness.FakeProvider()
    for line in s.get("provider_responses", "").strip().splitlines():
        status, _, body = line.partition(" ")
        provider.responses.append((int(status), json.loads(body)))
    p = harness.Parley(parley_bin, scripts, provider=provider)
    try:
        p.start()
        events = 0
        # inbound: one webhook per line of "--- text" / "--- press", or raw JSON "--- webhook"
        posts = []
        for line in s.get("text", "").splitlines():
            if line.strip():
                posts.append(harness.text_webhook(line))
        for line in s.get("press", "").splitlines():
            if line.strip():
                bid, _, title = line.strip().partition(" ")
                posts.append(harness.press_webhook(bid, title or None))
        if "webhook" in s:
            posts.append(json.loads(s["webhook"]))
        want_status = int(s.get("status", "200").strip())
        for payload in posts:
            status = p.post_webhook(payload)
            if status != want_status:
                return "webhook answered %d, want %d" % (status, want_status)
            if status == 200:
                events += sum(len(c["value"].get("messages", [])) + len(c["value"].get("statuses", []))
                              for e in payload.get("entry", []) for c in e.get("changes", []))
        p.wait_idle(events)
        got = provider.sends()
        if "sends" in s:
            want = json.loads(s["sends"])
            d = subset(want, got)
            if d:
                return "sends differ: %s\nall sends: %s" % (d, json.dumps(got, ensure_ascii=False))
        if "sends_count" in s and len(got) != int(s["sends_count"]):
            return "want %s sends, got %d: %s" % (s["sends_count"].strip(), len(got), json.dumps(got, ensure_ascii=False))
        rc = p.stop()
        log = p.log()
        for pat in s.get("log", "").strip().splitlines():
            if not re.search(pat, log):
                return "log does not match %r:\n%s" % (pat, log[-3000:])
        for pat in s.get("no_log", "").strip().splitlines():
            if re.search(pat, log):
                return "log matches %r but must not:\n%s" % (pat, log[-3000:])
        if rc != 0:
            return "parley exited %d" % rc
        # every request carried the token, JSON's type and Parley's user agent, and went to
        # the channel's messages endpoint
        for r in provider.requests:
            if r["headers"].get("Authorization") != "Bearer " + harness.WA_TOKEN:
                return "a send lacked the bearer token"
            if r["headers"].get("Content-Type") != "application/json":
                return "a send's Content-Type was %r" % r["headers"].get("Content-Type")
            if not re.fullmatch(r"parley/\d+\.\d+\.\d+", r["headers"].get("User-Agent") or ""):
                return "a send's User-Agent was %r" % r["headers"].get("User-Agent")
            names = [k.lower() for k, _ in r["header_lines"]]
            if len(names) != len(set(names)):
                return "a send repeated a header: %s" % names
            if r["path"] != "/v21.0/%s/messages" % harness.PHONE_NUMBER_ID:
                return "a send went to %s" % r["path"]
        return None
    finally:
        harness.shutdown(p, provider)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parley", required=True)
    ap.add_argument("-k", default=None, help="run only tests whose name contains this")
    args = ap.parse_args()

    tests = []
    for path in sorted(glob.glob(os.path.join(HERE, "cases", "*.t"))):
        for case in parse_case_file(path):
            tests.append(("%s: %s" % (case["file"], case["name"]), lambda c=case: run_case(args.parley, c)))
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name in sorted(n for n in dir(mod) if n.startswith("test_")):
            fn = getattr(mod, name)
            tests.append(("%s: %s" % (os.path.basename(path), name), lambda fn=fn: fn(args.parley)))

    passed = failed = 0
    for name, fn in tests:
        if args.k and args.k not in name:
            continue
        t0 = time.time()
        try:
            problem = fn()
        except Exception:  # a test that raises has failed; say where
            problem = traceback.format_exc()
        if problem:
            failed += 1
            print("FAIL %s (%.2fs)\n  %s" % (name, time.time() - t0, str(problem).replace("\n", "\n  ")))
        else:
            passed += 1
            print("ok %s (%.2fs)" % (name, time.time() - t0))
        sys.stdout.flush()
    print("e2e: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
