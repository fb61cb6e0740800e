"""bench/report.py, the benchmark's arithmetic and verdicts (bench/README.md): table-driven cases
of bench/run's per-run lines, run through the real script. A verdict that passed a lost reply or
a missed target would make `make bench` report numbers it did not measure."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import urllib.request

import harness

REPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "report.py")

# One good 10 s run of the full path: 160,000 webhooks acknowledged (16,000/s), every one stored
# and answered, the replies over 10 s, p99 4 ms, 50 MiB peak.
GOOD = dict(run=1, layer="full", ok=160000, acked=160005, sends=160005, warm_acked=2000, warm_sends=2000,
            inbox=162005, last_ns=11_000_000_000, start_ns=1_000_000_000, hwm=50 * 1024, ticks=1000, hz=100,
            load_busy=40, load_total=100, non200=0, errors_connect=0, errors_read=0, errors_write=0,
            errors_timeout=0, duration_us=10_000_000, lat_p50_us=800, lat_p99_us=4000, lat_p999_us=6000,
            lat_max_us=9000, rounds=0)


def line(**changes):
    f = dict(GOOD, **changes)
    return " ".join("%s=%s" % kv for kv in f.items())


def report(args, lines):
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as t:
        t.write("\n".join(lines) + "\n")
    try:
        r = subprocess.run([sys.executable, REPORT, args[0], t.name] + [str(a) for a in args[1:]],
                           capture_output=True, text=True, timeout=30)
    finally:
        os.unlink(t.name)
    return r.returncode, r.stdout


RUNS = ["runs", 15000, 5, 64, 16]

# (what, lines, exit status, texts the output must hold)
RUN_CASES = [
    ("three good runs pass", [line(run=1), line(run=2), line(run=3)], 0,
     ["PASS", "16000", "replies==acked, inbox==acked"]),
    ("the medians decide, not the best run", [line(run=1, ok=100000, duration_us=10_000_000),
                                              line(run=2, ok=140000), line(run=3, ok=200000)], 1,
     ["FAIL: webhooks/s 14000 < 15000"]),
    ("replies come from the provider's count over the span to the last reply",
     [line(last_ns=21_000_000_000)], 1, ["replies/s 8000 < 15000"]),
    ("a lost reply fails the run", [line(sends=160004)], 1, ["run 1: replies 162004 != acknowledged 162005"]),
    ("a reply too many fails the run", [line(warm_sends=2001)], 1, ["replies 162006 != acknowledged 162005"]),
    ("an acknowledged event missing from the state file fails", [line(inbox=162004)], 1,
     ["inbox rows 162004 != acknowledged 162005"]),
    ("parley acknowledging fewer than wrk read fails", [line(acked=159999, sends=159999, inbox=161999)], 1,
     ["parley acknowledged 159999, wrk saw 160000"]),
    ("a non-200 answer fails", [line(non200=3)], 1, ["3 non-2xx answers"]),
    ("a socket error fails", [line(errors_timeout=1)], 1, ["1 socket errors or timeouts"]),
    ("p99 over the target fails", [line(lat_p99_us=5100)], 1, ["p99 5.10 ms > 5 ms"]),
    ("p99 at the target passes", [line(lat_p99_us=5000)], 0, ["PASS"]),
    ("peak RSS over the target fails", [line(hwm=65 * 1024)], 1, ["peak RSS 65.0 MiB > 64 MiB"]),
    ("no inbox count (n/a) skips that check only", [line(inbox="n/a")], 0, ["PASS", "replies==acked"]),
]

LAYERS = ["layers", 15000, 16]
HTTP = dict(layer="http", sends=0, warm_sends=0, inbox=0, ticks=160, ok=320000, acked=320000)
STORED = dict(layer="stored", sends=0, warm_sends=0, ticks=960)
FULL = dict(ticks=4160)

LAYER_CASES = [
    ("each layer's checks hold", [line(**HTTP), line(**STORED), line(**FULL)], 0,
     ["http stored and sent nothing", "66.7 µs of CPU per event", "takes 5.0 µs (7 % of the budget)",
      "260.0      100%", "60.0       23%"]),
    ("the http layer stored something", [line(**dict(HTTP, inbox=5)), line(**FULL)], 1,
     ["run 1 (http): inbox rows 5 != stored 0"]),
    ("the stored layer sent a reply", [line(**dict(STORED, sends=1))], 1,
     ["run 1 (stored): 1 replies from a layer that sends nothing"]),
    ("the full layer lost a reply", [line(**dict(FULL, sends=1))], 1, ["run 1 (full): replies"]),
]

FLOORS = ["floors", 15000]


def part(run, name, units, cpu_us, failed=0):
    return "run=%d part=%s units=%d cpu_us=%d failed=%d" % (run, name, units, cpu_us, failed)


# each part's CPU per event: mhd 15, curl 30, sqlite 60 at 10 per commit and 20 at 200
PARTS = [part(1, "mhd", 200000, 3_000_000), part(1, "curl", 100000, 3_000_000),
         part(1, "sqlite-10", 100000, 6_000_000), part(1, "sqlite-200", 100000, 2_000_000)]

FLOOR_CASES = [
    ("the parts add up per batch size, against the budget", PARTS, 0,
     ["66.7 µs of CPU per event", "floor:   105.0 µs per event with 10 events per transaction: at most 9524 "
      "events/s, out of reach of the target", "floor:   65.0 µs per event with 200 events per transaction: at "
      "most 15385 events/s, within the target"]),
    ("the median of each part's runs counts", PARTS + [part(2, "mhd", 100000, 3_000_000),
                                                        part(3, "mhd", 100000, 100_000)],
     0, ["mhd             3       15.0", "floor:   105.0 µs"]),
    ("a part with failed requests fails", PARTS[:1] + [part(1, "curl", 100000, 3_000_000, failed=2)] + PARTS[2:],
     1, ["FAIL: run 1 (curl): 100000 done, 2 failed"]),
    ("a part that did nothing fails, and no floor is made without it", [part(1, "mhd", 0, 0)] + PARTS[1:], 1,
     ["FAIL: run 1 (mhd): 0 done"]),
]

SOAK_RSS = [20000] * 10


def soak(rss, **changes):
    with tempfile.NamedTemporaryFile("w", delete=False) as t:
        t.write(line(**changes) + " conns=16\n")
    try:
        r = subprocess.run([sys.executable, REPORT, "soak", t.name, "10"] + [str(x) for x in rss],
                           capture_output=True, text=True, timeout=30)
    finally:
        os.unlink(t.name)
    return r.returncode, r.stdout


SOAK_CASES = [
    ("flat memory passes", SOAK_RSS, {}, 0, ["FLAT (growth +0.0 %"]),
    ("growth of a tenth grows", [20000] * 3 + [21000] * 4 + [22000] * 3, {}, 1, ["GROWS: RSS grew 10.0 %"]),
    ("flat memory with a lost reply fails", SOAK_RSS, {"sends": 1}, 1, ["FAIL: flat memory, but replies"]),
    ("too few samples cannot tell", [20000] * 2, {}, 1, ["too few samples"]),
]


def judge(what, got, out, status, texts):
    """What is wrong with one case's exit status and output (empty when nothing)."""
    problems = [] if got == status else ["%s: exit %d, want %d\n%s" % (what, got, status, out)]
    return problems + ["%s: no %r in\n%s" % (what, t, out) for t in texts if t not in out]


def run_table(cases, args):
    problems = []
    for what, lines, status, texts in cases:
        problems += judge(what, *report(args, lines), status, texts)
    return problems


def test_bench_report_runs_medians_and_checks(binary):
    problems = run_table(RUN_CASES, RUNS)
    assert not problems, "\n".join(problems)


def test_bench_report_layers(binary):
    problems = run_table(LAYER_CASES, LAYERS)
    assert not problems, "\n".join(problems)


def test_bench_report_floors(binary):
    problems = run_table(FLOOR_CASES, FLOORS)
    problems += ["a floor without the mhd part:\n" + out
                 for _, out in [report(FLOORS, [part(1, "mhd", 0, 0)] + PARTS[1:])] if "floor:" in out]
    assert not problems, "\n".join(problems)


def test_bench_report_soak(binary):
    problems = []
    for what, rss, changes, status, texts in SOAK_CASES:
        problems += judge(what, *soak(rss, **changes), status, texts)
    assert not problems, "\n".join(problems)


def test_bench_floors_builds_and_measures_each_part(binary):
    """bench/floors.c, which `bench/run --floors` runs: it builds as bench/run builds it, and each
    part does the work it claims to measure: the SQLite part leaves every event's rows in its
    final state, the libcurl part's sends reach a provider, the libmicrohttpd part answers."""
    root = os.path.join(os.path.dirname(REPORT), "..")
    tmp = tempfile.mkdtemp(prefix="parley-floors-")
    provider = harness.FakeProvider()
    try:
        exe = os.path.join(tmp, "floors")
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libmicrohttpd"], capture_output=True,
                               text=True, check=True).stdout.split()
        subprocess.run(["cc", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", exe,
                        os.path.join(root, "bench", "floors.c")] + flags + ["-lcurl", "-lsqlite3"], check=True)

        def result(out):
            return dict(line.split("=", 1) for line in out.split())

        db = os.path.join(tmp, "floor.db")
        r = subprocess.run([exe, "sqlite", db, "205", "10"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and result(r.stdout)["events"] == "205", r.stdout + r.stderr
        with sqlite3.connect(db) as c:
            assert c.execute("select count(*), sum(state) from inbox").fetchone() == (205, 205)
            assert c.execute("select count(*), count(distinct dedupe) from inbox").fetchone() == (205, 205)
            assert c.execute("select count(*), sum(state = 2), count(wamid) from outbox").fetchone() == (205, 205, 205)
            assert 0 < c.execute("select count(*) from contacts").fetchone()[0] <= 205

        r = subprocess.run([exe, "curl", provider.url + "/106540352242922/messages", "20", "4"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and result(r.stdout)["requests"] == "20" and result(r.stdout)["failed"] == "0", r.stdout
        assert len(provider.sends()) == 20 and provider.sends()[0]["type"] == "interactive"

        mhd = subprocess.Popen([exe, "mhd"], stdout=subprocess.PIPE, text=True)
        try:
            port = mhd.stdout.readline().strip().split("=")[1]
            for i in range(5):
                req = urllib.request.Request("http://127.0.0.1:%s/webhook" % port, data=b'{"n":%d}' % i)
                with urllib.request.urlopen(req, timeout=5) as resp:
                    assert resp.status == 200 and resp.read() == b"{}"
            mhd.send_signal(signal.SIGTERM)
            out = mhd.communicate(timeout=10)[0]
        finally:
            if mhd.poll() is None:
                mhd.kill()
        assert mhd.returncode == 0 and result(out)["requests"] == "5" and int(result(out)["cpu_us"]) > 0, out
    finally:
        provider.close()
        shutil.rmtree(tmp, ignore_errors=True)
