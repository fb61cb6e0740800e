#!/usr/bin/env python3
"""report.py - bench/run's arithmetic: the per-run table, the medians and the verdicts.

    report.py runs RESULTS TARGET_RATE TARGET_P99_MS TARGET_RSS_MIB CONNECTIONS
    report.py layers RESULTS TARGET_RATE CONNECTIONS
    report.py soak RESULT FLAT_PCT RSS_KIB...
    report.py floors RESULTS TARGET_RATE

RESULTS has one line per run of "key=value" fields (bench/run writes them). Exit status 0 for
PASS / FLAT, 1 for FAIL / GROWS. floors exits 0 whatever the floor is, 1 when a part's run failed.
"""

import statistics
import sys


def fields(line):
    f = dict(kv.split("=", 1) for kv in line.split())
    return f, lambda k: int(float(f[k])) if f.get(k, "") not in ("", "n/a") else 0


def check(f, i, conns):
    """The correctness checks of one run: a list of problems (empty when all hold). A run of the
    http layer must store and send nothing, one of the stored layer must store every event and
    send nothing, one of the full path must store and answer every event once."""
    problems = []
    ok, acked, sends = i("ok"), i("acked"), i("sends")
    layer = f.get("layer", "full")
    if layer != "full" and (sends or i("warm_sends")):
        problems.append("%d replies from a layer that sends nothing" % (sends + i("warm_sends")))
    if layer == "full" and (sends != acked or i("warm_sends") != i("warm_acked")):
        problems.append("replies %d != acknowledged %d" % (sends + i("warm_sends"), acked + i("warm_acked")))
    if i("non200"):
        problems.append("%d non-2xx answers" % i("non200"))
    errors = sum(i(k) for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout"))
    if errors:
        problems.append("%d socket errors or timeouts" % errors)
    # wrk counts the 200s it read; parley also answered the requests in flight when wrk stopped
    if not ok <= acked <= ok + conns:
        problems.append("parley acknowledged %d, wrk saw %d" % (acked, ok))
    stored = 0 if layer == "http" else acked + i("warm_acked")
    if f.get("inbox", "n/a") != "n/a" and i("inbox") != stored:
        problems.append("inbox rows %s != %s %d" % (f["inbox"], "stored" if layer == "http" else "acknowledged",
                                                   stored))
    return problems


def runs(path, t_rate, t_p99, t_rss, conns):
    rows = []
    for line in open(path):
        if not line.strip():
            continue
        f, i = fields(line)
        span = (i("last_ns") - i("start_ns")) / 1e9 if i("last_ns") > 0 and i("start_ns") > 0 else 0.0
        problems = check(f, i, conns)
        notes = []
        if not problems:
            notes.append("replies==acked")
            if f.get("inbox", "n/a") != "n/a":
                notes.append("inbox==acked")
        if i("rounds"):
            notes.append("re-signed rounds: %d" % i("rounds"))
        rows.append(dict(
            run=f["run"], ack=i("ok") / (i("duration_us") / 1e6), replies=i("sends") / span if span > 0 else 0.0,
            p50=i("lat_p50_us") / 1000, p99=i("lat_p99_us") / 1000, p999=i("lat_p999_us") / 1000,
            hwm=i("hwm") / 1024, cpu=100 * i("ticks") / i("hz") / span if span > 0 else 0.0,
            load=100 * i("load_busy") / i("load_total") if i("load_total") > 0 else 0.0,
            ok=i("ok"), sends=i("sends"), problems=problems, notes=", ".join(notes + [p.upper() for p in problems])))

    hdr = "%-6s %11s %10s %7s %7s %8s %9s %5s %5s %8s %8s  %s" % (
        "run", "webhooks/s", "replies/s", "p50 ms", "p99 ms", "p99.9 ms", "peak MiB", "cpu%", "load%", "acked", "replies",
        "checks")
    print(hdr)
    print("-" * len(hdr))
    for x in rows:
        print("%-6s %11.0f %10.0f %7.2f %7.2f %8.2f %9.1f %5.0f %5.0f %8d %8d  %s" % (
            x["run"], x["ack"], x["replies"], x["p50"], x["p99"], x["p999"], x["hwm"], x["cpu"], x["load"], x["ok"],
            x["sends"], x["notes"]))
    med = {k: statistics.median(x[k] for x in rows)
           for k in ("ack", "replies", "p50", "p99", "p999", "hwm", "cpu", "load")}
    print("-" * len(hdr))
    print("%-6s %11.0f %10.0f %7.2f %7.2f %8.2f %9.1f %5.0f %5.0f" % (
        "median", med["ack"], med["replies"], med["p50"], med["p99"], med["p999"], med["hwm"], med["cpu"], med["load"]))
    print()
    fails = []
    if med["ack"] < t_rate:
        fails.append("webhooks/s %.0f < %.0f" % (med["ack"], t_rate))
    if med["replies"] < t_rate:
        fails.append("replies/s %.0f < %.0f" % (med["replies"], t_rate))
    if med["p99"] > t_p99:
        fails.append("p99 %.2f ms > %g ms" % (med["p99"], t_p99))
    if med["hwm"] > t_rss:
        fails.append("peak RSS %.1f MiB > %g MiB" % (med["hwm"], t_rss))
    for x in rows:
        if x["problems"]:
            fails.append("run %s: %s" % (x["run"], ", ".join(x["problems"])))
    print("targets: >= %.0f webhooks/s acknowledged and replies/s delivered at %d connections, p99 <= %g ms, "
          "peak RSS <= %g MiB, every acknowledged event committed and answered once" % (t_rate, conns, t_p99, t_rss))
    print("FAIL: " + "; ".join(fails) if fails else "PASS")
    return 1 if fails else 0


LAYERS = ("http", "stored", "full")


def layers(path, t_rate, conns):
    """Each layer's medians, its CPU per webhook (Parley's CPU time from the start of wrk until it
    has answered everything, over the webhooks it acknowledged) and that CPU's share of the full
    path's, and the budget one core gives each event at the target rate."""
    by = {k: [] for k in LAYERS}
    problems = []
    for line in open(path):
        if not line.strip():
            continue
        f, i = fields(line)
        layer = f.get("layer", "full")
        for p in check(f, i, conns):
            problems.append("run %s (%s): %s" % (f["run"], layer, p))
        span = (i("last_ns") - i("start_ns")) / 1e9 if i("last_ns") > 0 and i("start_ns") > 0 else 0.0
        by[layer].append(dict(
            ack=i("ok") / (i("duration_us") / 1e6), replies=i("sends") / span if span > 0 else 0.0,
            p50=i("lat_p50_us") / 1000, p99=i("lat_p99_us") / 1000,
            us=1e6 * i("ticks") / i("hz") / i("acked") if i("acked") > 0 else 0.0, hwm=i("hwm") / 1024))
    med = {k: {c: statistics.median(x[c] for x in v) for c in v[0]} for k, v in by.items() if v}
    hdr = "%-7s %5s %11s %10s %7s %7s %9s %9s %9s" % (
        "layer", "runs", "webhooks/s", "replies/s", "p50 ms", "p99 ms", "peak MiB", "cpu µs/ev", "of full")
    print(hdr)
    print("-" * len(hdr))
    full_us = med.get("full", {}).get("us", 0.0)
    for k in LAYERS:
        if k not in med:
            continue
        m = med[k]
        print("%-7s %5d %11.0f %10.0f %7.2f %7.2f %9.1f %9.1f %8.0f%%" % (
            k, len(by[k]), m["ack"], m["replies"], m["p50"], m["p99"], m["hwm"], m["us"],
            100 * m["us"] / full_us if full_us > 0 else 0.0))
    print("-" * len(hdr))
    budget = 1e6 / t_rate
    print("budget:  %.0f events/s on one core leave %.1f µs of CPU per event for the whole path" % (t_rate, budget))
    if "http" in med and budget > 0:
        print("         the http layer alone takes %.1f µs (%.0f %% of the budget); the rest of the path has %.1f µs"
              % (med["http"]["us"], 100 * med["http"]["us"] / budget, budget - med["http"]["us"]))
    print("medians of each layer's runs; cpu µs/ev is Parley's CPU time until it had answered everything, "
          "over the webhooks it acknowledged")
    if problems:
        print("FAIL: " + "; ".join(problems))
        return 1
    print("checks:  http stored and sent nothing; stored committed every event and sent nothing; "
          "full committed and answered every event once")
    return 0


def soak(result, flat, rss):
    f, i = fields(result)
    dur = i("duration_us") / 1e6 or 1
    print("events:  %d acknowledged by wrk (%.0f/s), %d by parley, %d replies delivered, %s inbox rows; "
          "p50 %.2f ms, p99 %.2f ms; peak RSS %.1f MiB"
          % (i("ok"), i("ok") / dur, i("acked"), i("sends"), f.get("inbox", "n/a"), i("lat_p50_us") / 1000,
             i("lat_p99_us") / 1000, i("hwm") / 1024))
    problems = check(f, i, int(f.get("conns", "16")))
    if len(rss) < 3:
        print("RSS:     too few samples (soak for at least 30 s)")
        return 1
    k = len(rss) // 3
    first, last = sum(rss[:k]) / k, sum(rss[-k:]) / k
    growth = (last - first) / first * 100
    # events between the middles of the first and the last third
    events = i("acked") * (len(rss) - k) / len(rss)
    print("RSS:     first third %.1f MiB, last third %.1f MiB: %+.1f %% (%+.1f bytes per event)"
          % (first / 1024, last / 1024, growth, (last - first) * 1024 / max(1.0, events)))
    if growth >= flat:
        problems.insert(0, "RSS grew %.1f %% (limit %g %%)" % (growth, flat))
        print("GROWS: " + "; ".join(problems))
        return 1
    if problems:
        print("FAIL: flat memory, but " + "; ".join(problems))
        return 1
    print("FLAT (growth %+.1f %% < %g %%)" % (growth, flat))
    return 0


# bench/floors.c's parts: what one event costs of each (the sqlite part at two batch sizes)
FLOOR_PARTS = (("mhd", "libmicrohttpd: read a webhook's body, answer 200"),
               ("curl", "libcurl: send a reply, read the answer"),
               ("sqlite-10", "SQLite: an event's rows, 10 events per transaction"),
               ("sqlite-200", "SQLite: the same, 200 events per transaction"))


def floors(path, t_rate):
    """The median CPU per event of each part alone, and their sum at both SQLite batch sizes: the
    least CPU per event of any program that takes a webhook in through libmicrohttpd, stores it
    and its reply in SQLite and sends the reply through libcurl, against the budget one core
    gives each event at the target rate."""
    by, problems = {}, []
    for line in open(path):
        if not line.strip():
            continue
        f, i = fields(line)
        if i("units") <= 0 or i("failed"):
            problems.append("run %s (%s): %d done, %d failed" % (f["run"], f["part"], i("units"), i("failed")))
            continue
        by.setdefault(f["part"], []).append(i("cpu_us") / i("units"))
    med = {k: statistics.median(v) for k, v in by.items()}
    hdr = "%-11s %5s %10s  %s" % ("part", "runs", "cpu µs/ev", "what one event costs")
    print(hdr)
    print("-" * 78)
    for k, what in FLOOR_PARTS:
        if k in med:
            print("%-11s %5d %10.1f  %s" % (k, len(by[k]), med[k], what))
    print("-" * 78)
    budget = 1e6 / t_rate
    print("budget:  %.0f events/s on one core leave %.1f µs of CPU per event" % (t_rate, budget))
    for batch in ("10", "200"):
        parts = ("mhd", "curl", "sqlite-" + batch)
        if all(med.get(p, 0) > 0 for p in parts):
            total = sum(med[p] for p in parts)
            print("floor:   %.1f µs per event with %s events per transaction: at most %.0f events/s, %s the target"
                  % (total, batch, 1e6 / total, "within" if total <= budget else "out of reach of"))
    print("the parts alone, with nothing of Parley: no signature, no JSON, no Lua, no rules, no threads")
    if problems:
        print("FAIL: " + "; ".join(problems))
        return 1
    return 0


def main():
    a = sys.argv[1:]
    if len(a) == 6 and a[0] == "runs":
        return runs(a[1], float(a[2]), float(a[3]), float(a[4]), int(a[5]))
    if len(a) == 4 and a[0] == "layers":
        return layers(a[1], float(a[2]), int(a[3]))
    if len(a) == 3 and a[0] == "floors":
        return floors(a[1], float(a[2]))
    if len(a) >= 3 and a[0] == "soak":
        return soak(open(a[1]).read(), float(a[2]), [int(x) for x in a[3:]])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
