"""bench/report.py, the benchmark's arithmetic and verdicts (bench/README.md): table-driven cases
of bench/run's per-run lines, run through the real script. A verdict that passed a lost reply or
a missed target would make `make bench` report numbers it did not measure."""

import os
import subprocess
import sys
import tempfile

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


def test_bench_report_soak(binary):
    problems = []
    for what, rss, changes, status, texts in SOAK_CASES:
        problems += judge(what, *soak(rss, **changes), status, texts)
    assert not problems, "\n".join(problems)
