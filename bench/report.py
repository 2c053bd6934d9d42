#!/usr/bin/env python3
"""Turns bench/run.sh's raw measurements into the figures: a markdown table and JSON lines.

usage: report.py RAW.jsonl TABLE.md FIGURES.jsonl

Every ratio is against a baseline measured in the same run. Prints the table and the JSON lines
to stdout as well, and exits 1 (after printing) when a check fails: a wrk run with errors or
non-2xx answers, or a proxied run that nginx did not see through that proxy.
"""
import json
import statistics
import sys


def load(path):
    by_name = {}
    for line in open(path):
        rec = json.loads(line)
        by_name.setdefault(rec["name"], []).append(rec)
    return by_name


def wrk(raw, name):
    w = raw[name][0]["wrk"]
    secs = w["duration_us"] / 1e6
    return {
        "rps": w["requests"] / secs,
        "p50_ms": w["p50_us"] / 1000,
        "p99_ms": w["p99_us"] / 1000,
        "requests": w["requests"],
        "errors": w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"],
        "non_2xx": w["status_errors"],
    }


def div(a, b):
    """a / b, or None when there is nothing to divide by (a run that completed no request)."""
    return a / b if b else None


def fmt(x, spec):
    return "—" if x is None else format(x, spec)


def main(raw_path, table_path, lines_path):
    raw = load(raw_path)
    setup = raw["setup"][0]
    checks = []
    notes = []
    for name in ("direct", "squid", "egret_cold", "egret"):
        r = wrk(raw, name)
        if r["requests"] == 0 and name != "egret_cold":
            checks.append(f"{name}: no request completed")
        if r["errors"] or r["non_2xx"]:
            checks.append(f"{name}: {r['errors']} socket errors/timeouts, {r['non_2xx']} non-2xx answers")
    for name in ("nginx_proxy", "haproxy"):
        r = wrk(raw, name)
        if r["requests"] == 0:
            checks.append(f"{name}: no request completed")
        if r["errors"] or r["non_2xx"]:
            checks.append(f"{name}: {r['errors']} socket errors/timeouts, {r['non_2xx']} non-2xx answers")
        logged = raw[f"{name}_logged"][0]
        short = logged["requests"] - logged["lines"]
        # HAProxy's `log stdout` writes without blocking and drops a line when the pipe is full
        # (its design: logging never stalls traffic), so a few lines per hundred thousand go
        # missing under wrk. More than 0.1 % would mean the peer skipped the job.
        if short > logged["requests"] / 1000:
            checks.append(f"{name} wrote {logged['lines']} access-log lines for {logged['requests']} requests")
        elif short > 0:
            notes.append(f"{name} wrote {logged['lines']} access-log lines for {logged['requests']} "
                         f"requests (its non-blocking log output drops lines when the pipe is full)")
    for name, via in (("egret_seen_by_nginx", "Egret"), ("squid_seen_by_nginx", "Squid"),
                      ("nginx_proxy_seen_by_nginx", "nginx-proxy"), ("haproxy_seen_by_nginx", "HAProxy")):
        s = raw[name][0]
        if s["logged"] < s["requests"]:
            checks.append(f"nginx logged {s['logged']} requests via {via}, wrk completed {s['requests']}")

    direct, squid, egret, cold = (wrk(raw, n) for n in ("direct", "squid", "egret", "egret_cold"))

    def mibs(name):
        return [r["mib"] / r["seconds"] for r in raw[name]]

    c_direct, c_egret, c_squid = mibs("connect_direct"), mibs("connect_egret"), mibs("connect_squid")
    # Ratios per round (each round runs the three back to back), then the median of the rounds.
    r_egret = [e / d for e, d in zip(c_egret, c_direct)]
    r_squid = [s / d for s, d in zip(c_squid, c_direct)]
    nc_direct, nc_egret = raw["newconn_direct"][0], raw["newconn_egret"][0]
    cpu = raw["egret_cpu"][0]
    cpu_per_10k = div(cpu["cpu_s"] * 10000, cpu["requests"])
    mem = raw["memory"][0]
    hwm = mem["egret_hwm_kb"] / 1024
    squid_hwm = mem["squid_hwm_kb"] / 1024
    ready = raw["ready"][0]["ms"]
    ready_cpu = raw["ready"][0]["cpu_s"]
    cold_cpu = raw["egret_cold_cpu"][0]
    cold_cpu_per_10k = div(cold_cpu["cpu_s"] * 10000, cold_cpu["requests"])
    med = statistics.median
    # The memory limit Egret ran under: its -XX:MaxRAM (the profile's sizing), 128 MiB if none.
    limit_mib = 128.0
    for arg in setup["jvm"]:
        if arg.startswith("-XX:MaxRAM="):
            v = arg.split("=", 1)[1].lower()
            limit_mib = float(v[:-1]) * {"k": 1 / 1024, "m": 1, "g": 1024}[v[-1]] if v[-1] in "kmg" else float(v) / 2**20

    def rng(xs, fmt="{:.2f}"):
        return fmt.format(min(xs)) + "–" + fmt.format(max(xs))

    figures = [
        {
            "figure": "upgrade_rps", "unit": "req/s", "egret": egret["rps"],
            "baseline": {"direct": direct["rps"], "squid": squid["rps"]},
            "ratio": {"direct": egret["rps"] / direct["rps"], "squid": egret["rps"] / squid["rps"]},
            "target": ">= 0.6x direct and >= 3x squid",
            "met": egret["rps"] >= 0.6 * direct["rps"] and egret["rps"] >= 3 * squid["rps"],
        },
        {
            "figure": "upgrade_p99", "unit": "ms", "egret": egret["p99_ms"],
            "baseline": {"direct": direct["p99_ms"], "squid": squid["p99_ms"]},
            "ratio": {"direct": egret["p99_ms"] / direct["p99_ms"]},
            "target": "<= direct p99 + 1 ms",
            "met": egret["requests"] > 0 and egret["p99_ms"] <= direct["p99_ms"] + 1,
        },
        {
            "figure": "cold_rps", "unit": "req/s", "egret": cold["rps"], "p99_ms": cold["p99_ms"],
            "baseline": {"egret_warm": egret["rps"]}, "ratio": {"egret_warm": div(cold["rps"], egret["rps"])},
            "target": ">= 0.5x warm", "met": egret["rps"] > 0 and cold["rps"] >= 0.5 * egret["rps"],
        },
        {
            "figure": "connect_mibs", "unit": "MiB/s", "egret": med(c_egret), "rounds": c_egret,
            "baseline": {"direct": med(c_direct), "squid": med(c_squid)},
            "ratio": {"direct": med(r_egret), "squid_vs_direct": med(r_squid)},
            "ratio_rounds": r_egret, "target": ">= 0.9x direct", "met": med(r_egret) >= 0.9,
        },
        {
            "figure": "newconn_p50", "unit": "ms", "egret": nc_egret["p50_ms"],
            "baseline": {"direct_tls": nc_direct["p50_ms"]},
            "ratio": {"direct_tls": nc_egret["p50_ms"] / nc_direct["p50_ms"]},
            "target": "< direct TLS", "met": nc_egret["p50_ms"] < nc_direct["p50_ms"],
        },
        {
            "figure": "cpu_per_10k", "unit": "CPU s", "egret": cpu_per_10k,
            "cold": cold_cpu_per_10k, "baseline": {},
            "ratio": {"cold_vs_warm": div(cold_cpu_per_10k, cpu_per_10k) if cold_cpu_per_10k else None},
            "target": None, "met": None,
        },
        {
            "figure": "peak_rss", "unit": "MiB", "egret": hwm, "baseline": {"squid": squid_hwm},
            "ratio": {"squid": hwm / squid_hwm if squid_hwm else None},
            "target": f"<= {limit_mib:.0f} MiB", "met": hwm <= limit_mib,
        },
        {
            "figure": "ready", "unit": "ms", "egret": ready, "cpu_s": ready_cpu, "baseline": {},
            "ratio": {},
            "target": "<= 1000 ms", "met": ready <= 1000,
        },
    ]

    t = f"{setup['threads']} threads / {setup['connections']} connections, {setup['duration_s']} s"
    # The peers on Egret's upgrade job, every figure also as a ratio to nginx-proxy's, same run.
    def mib_of(kb):
        return kb / 1024 if kb else None
    peers = {}
    for key, label, cpu_name, hwm_kb in (
            ("nginx_proxy", "nginx (proxy_pass https, upstream keepalive)", "nginx_proxy_cpu", mem.get("nginx_proxy_hwm_kb")),
            ("haproxy", "HAProxy (ssl verify required, http-reuse always)", "haproxy_cpu", mem.get("haproxy_hwm_kb")),
            ("egret", f"Egret ({setup.get('profile', 'sidecar')} profile)", "egret_cpu", mem["egret_hwm_kb"]),
            ("squid", "Squid (plain HTTP both sides: a lighter job)", None, mem["squid_hwm_kb"]),
            ("direct", "direct HTTPS to the upstream (no proxy)", None, None)):
        r = wrk(raw, key)
        c = raw[cpu_name][0] if cpu_name else None
        peers[key] = {"label": label, "rps": r["rps"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
                      "cpu_ms_per_req": div(c["cpu_s"] * 1000, c["requests"]) if c else None,
                      "peak_rss_mib": mib_of(hwm_kb)}
    base = peers["nginx_proxy"]
    for key, p in peers.items():
        p["ratio_to_nginx"] = {k: div(p[k], base[k]) if p[k] is not None and base[k] else None
                               for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_req", "peak_rss_mib")}
        figures.append({"figure": "peer_upgrade", "peer": key, **p, "target": None, "met": None})

    def cell(p, k, spec, unit=""):
        if p[k] is None:
            return "—"
        r = p["ratio_to_nginx"][k]
        return f"{format(p[k], spec)}{unit} ({fmt(r, '.2f')}×)"

    peer_rows = [
        f"\nThe upgrade job, absolute-form http:// in, TLS 1.3 out (verified), pooled keep-alive, one access-log "
        f"line per request; wrk {t} each, warm. Every figure with its ratio to nginx's, same run "
        f"(CPU: the proxy's own user+system ticks from /proc/PID/stat, workers included, over the measured run):\n",
        "| proxy | req/s | p50 | p99 | CPU per request | peak RSS |",
        "| --- | --- | --- | --- | --- | --- |",
    ] + [
        f"| {p['label']} | {cell(p, 'rps', ',.0f')} | {cell(p, 'p50_ms', '.2f', ' ms')} | {cell(p, 'p99_ms', '.2f', ' ms')} "
        f"| {cell(p, 'cpu_ms_per_req', '.3f', ' ms')} | {cell(p, 'peak_rss_mib', '.0f', ' MiB')} |"
        for p in peers.values()
    ]

    def mark(f):
        return "" if f["met"] is None else (" ✅" if f["met"] else " ❌")

    rows = [
        ("| figure | baseline(s), same run | Egret | ratio | target |"),
        ("| --- | --- | --- | --- | --- |"),
        f"| upgrade path, 100 B, wrk {t} | direct HTTPS {direct['rps']:,.0f} req/s; Squid (plain) {squid['rps']:,.0f} req/s "
        f"| {egret['rps']:,.0f} req/s | {egret['rps'] / direct['rps']:.2f}× direct, {egret['rps'] / squid['rps']:.2f}× Squid "
        f"| ≥ 0.6× direct and ≥ 3× Squid{mark(figures[0])} |",
        f"| p99 of that run | direct {direct['p99_ms']:.2f} ms; Squid {squid['p99_ms']:.2f} ms | {egret['p99_ms']:.2f} ms "
        f"| direct + {egret['p99_ms'] - direct['p99_ms']:.2f} ms | ≤ direct + 1 ms{mark(figures[1])} |",
        f"| first 5 s after ready (cold) | warm Egret {egret['rps']:,.0f} req/s | {cold['rps']:,.0f} req/s, p99 {cold['p99_ms']:.1f} ms "
        f"| {fmt(div(cold['rps'], egret['rps']), '.2f')}× warm | ≥ 0.5× warm{mark(figures[2])} |",
        f"| CONNECT, 1 MiB bodies, curl keep-alive, median of {len(c_direct)} rounds | direct {med(c_direct):,.0f} MiB/s; "
        f"Squid {med(c_squid):,.0f} MiB/s ({med(r_squid):.2f}× direct, rounds {rng(r_squid)}) | {med(c_egret):,.0f} MiB/s "
        f"| {med(r_egret):.2f}× direct (rounds {rng(r_egret)}) | ≥ 0.9× direct{mark(figures[3])} |",
        f"| new client connection per request, p50 of {nc_egret['count']} | new direct TLS connection {nc_direct['p50_ms']:.2f} ms "
        f"| {nc_egret['p50_ms']:.2f} ms | {nc_egret['p50_ms'] / nc_direct['p50_ms']:.2f}× | lower than direct{mark(figures[4])} |",
        f"| Egret CPU per 10k upgrade requests | cold (first 5 s) {fmt(cold_cpu_per_10k, '.2f')} CPU s "
        f"| warm {fmt(cpu_per_10k, '.2f')} CPU s "
        f"| cold {fmt(div(cold_cpu_per_10k, cpu_per_10k) if cold_cpu_per_10k else None, '.1f')}× warm | — |",
        f"| peak RSS (VmHWM) after all of the above | Squid {squid_hwm:.0f} MiB | {hwm:.0f} MiB | {hwm / squid_hwm:.1f}× Squid "
        f"| ≤ {limit_mib:.0f} MiB{mark(figures[6])} |",
        f"| process start to /readyz 200 | — | {ready} ms ({ready_cpu:.2f} CPU s) | — | ≤ 1000 ms{mark(figures[7])} |",
    ] + peer_rows
    jvm = " ".join(setup["jvm"])
    table = "\n".join(rows) + (
        f"\n\nMachine: {setup['cpus']} CPUs ({setup['cpu_model']}), client, servers and proxies on the same CPUs; "
        f"load average before/after the run {setup['load_before']} / {setup['load_after']}; "
        f"{setup['java']}; Egret JVM: `{jvm}`.\n")
    if notes:
        table += "\nNotes:\n" + "".join(f"- {c}\n" for c in notes)
    if checks:
        table += "\nCHECKS FAILED:\n" + "".join(f"- {c}\n" for c in checks)
    open(table_path, "w").write(table)
    with open(lines_path, "w") as f:
        for fig in figures:
            f.write(json.dumps(fig) + "\n")
    print(table)
    for fig in figures:
        print(json.dumps(fig))
    return 1 if checks else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
