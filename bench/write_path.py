#!/usr/bin/env python3
"""The write path against its ceiling: Candor's declares per second vs a bare SQLite loop running
a transaction of the same shape, alternated in pairs in one run.

    python3 bench/write_path.py target/release/candor      (bench/write_path.sh builds first)

Candor: `candor serve` on a fresh SQLite file (the shipped config: WAL, synchronous = FULL, the
`log` channels writing to files), flooded by wrk with `POST /api/v1/incidents` (the documented
body, one component, an estimate) from WRITE_CLIENTS connections (default 8) for WRITE_SECS
(default 10) seconds; counted: 201 answers per second.

The anchor: Python's sqlite3 on a fresh file with Candor's own schema (migrated by the same
binary), WAL and synchronous = FULL, one thread, looping for the same time over one transaction
per declare with the statements a declare writes: the incident, its component, the update, the
estimate revision, the change counter and its change row, the audit entry, and one delivery per
channel (public and ops). Counted: commits per second.

Pairs: WRITE_PAIRS (default 3), the order swapped every pair. All traffic is to 127.0.0.1; every
loop is bounded. The last line is the median ratio Candor / bare loop (target: at least 0.25).
"""

import json
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

CLIENTS = int(os.environ.get("WRITE_CLIENTS", "8"))
SECS = int(os.environ.get("WRITE_SECS", "10"))
PAIRS = int(os.environ.get("WRITE_PAIRS", "3"))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer TOKEN"
wrk.body = '{"title": "Elevated API error rates", "impact": "major", "message": "About 20% of API requests fail with 502. We are looking into it.", "components": {"api": "partial_outage"}, "eta_in": "45m"}'
"""


def log(msg):
    print(f"[write_path] {msg}", file=sys.stderr, flush=True)


def prepare(candor, tmp):
    with open(os.path.join(REPO, "config", "candor.yaml")) as f:
        text = f.read()
    text, n = re.subn(r'url:\s*"sqlite:[^"]*"', f'url: "sqlite://{tmp}/candor.db"', text, count=1)
    assert n == 1
    paths = iter([f"{tmp}/public.log", f"{tmp}/ops.log"])
    text = re.sub(r'path:\s*"-"', lambda m: f'path: "{next(paths, tmp + "/other.log")}"', text)
    conf = os.path.join(tmp, "candor.yaml")
    with open(conf, "w") as f:
        f.write(text)
    env = dict(os.environ, RUST_LOG="warn")
    for k in ("DATABASE_URL", "CANDOR_LISTEN", "CANDOR_CONFIG"):
        env.pop(k, None)
    out = subprocess.run([candor, "--config", conf, "token", "create", "--name", "bench"],
                         env=env, check=True, capture_output=True, text=True).stdout
    return conf, env, out.strip().splitlines()[-1]


def candor_run(candor):
    tmp = tempfile.mkdtemp(prefix="candor-write-bench.")
    try:
        conf, env, token = prepare(candor, tmp)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        p = subprocess.Popen([candor, "--config", conf, "serve", "--listen", f"127.0.0.1:{port}"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(500):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.02)
            lua = os.path.join(tmp, "post.lua")
            with open(lua, "w") as f:
                f.write(LUA.replace("TOKEN", token))
            # Accepted = requests minus wrk's count of non-2xx answers.
            out = subprocess.run(["timeout", str(SECS + 60), "wrk", "-t2", f"-c{CLIENTS}", f"-d{SECS}s",
                                  "-s", lua, f"http://127.0.0.1:{port}/api/v1/incidents"],
                                 check=True, capture_output=True, text=True).stdout
            reqs = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out).group(1))
            secs = float(re.search(r"requests in ([\d.]+)s", out).group(1))
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            bad = int(non2xx.group(1)) if non2xx else 0
            return (reqs - bad) / secs, bad
        finally:
            p.terminate()
            p.wait(15)
    finally:
        subprocess.run(["rm", "-rf", tmp])


def bare_run(candor):
    tmp = tempfile.mkdtemp(prefix="candor-write-bench.")
    try:
        prepare(candor, tmp)  # Candor's own schema, by its own migrations
        con = sqlite3.connect(os.path.join(tmp, "candor.db"), isolation_level=None)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        con.execute("PRAGMA foreign_keys = ON")
        payload = json.dumps({"title": "Elevated API error rates", "message": "About 20% of API requests fail.",
                              "components": {"api": "partial_outage"}, "eta": 1})
        n = 0
        end = time.monotonic() + SECS
        t0 = time.monotonic()
        while time.monotonic() < end:
            now = int(time.time() * 1000)
            con.execute("BEGIN IMMEDIATE")
            iid = con.execute(
                "INSERT INTO incidents (title, impact, status, eta_at, next_update_at, started_at, created_at, "
                "updated_at, kind) VALUES ('Elevated API error rates', 'major', 'investigating', ?, ?, ?, ?, ?, "
                "'incident') RETURNING id", (now + 2_700_000, now + 1_800_000, now, now, now)).fetchone()[0]
            con.execute("INSERT INTO incident_components (incident_id, component_id, status) "
                        "VALUES (?, 'api', 'partial_outage')", (iid,))
            uid = con.execute(
                "INSERT INTO updates (incident_id, kind, status, message, eta_at, next_update_at, components, "
                "author, created_at) VALUES (?, 'operator', 'investigating', ?, ?, ?, ?, 'token:bench', ?) "
                "RETURNING id", (iid, "About 20% of API requests fail with 502.", now + 2_700_000,
                                 now + 1_800_000, '{"api":"partial_outage"}', now)).fetchone()[0]
            con.execute("INSERT INTO eta_revisions (incident_id, update_id, old_eta_at, new_eta_at, actor, "
                        "created_at) VALUES (?, ?, NULL, ?, 'token:bench', ?)", (iid, uid, now + 2_700_000, now))
            v = con.execute("UPDATE changes SET version = version + 1 WHERE id = 1 RETURNING version").fetchone()[0]
            con.execute("INSERT INTO public_changes (version, incident_id) VALUES (?, ?)", (v, iid))
            con.execute("INSERT INTO audit_log (actor, action, incident_id, detail, created_at) "
                        "VALUES ('token:bench', 'declare', ?, ?, ?)", (iid, payload, now))
            for channel, audience in (("log", "public"), ("ops", "ops")):
                con.execute("INSERT INTO deliveries (incident_id, update_id, channel, audience, payload, state, "
                            "attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                            (iid, uid, channel, audience, payload, now, now))
            con.execute("COMMIT")
            n += 1
        rate = n / (time.monotonic() - t0)
        con.close()
        return rate
    finally:
        subprocess.run(["rm", "-rf", tmp])


def main():
    candor = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "target/release/candor")
    rows = []
    for pair in range(PAIRS):
        order = ["candor", "bare"] if pair % 2 == 0 else ["bare", "candor"]
        r = {}
        for who in order:
            log(f"pair {pair + 1}: {who} ...")
            if who == "candor":
                r["candor"], r["refused"] = candor_run(candor)
            else:
                r["bare"] = bare_run(candor)
        rows.append(r)
    print(f"write path: {os.cpu_count()} CPUs, {SECS} s per run, {PAIRS} alternating pairs, "
          f"{CLIENTS} wrk connections; load average at the end {os.getloadavg()[0]:.2f}")
    print("| pair | Candor declares/s (201) | bare sqlite3 transactions/s | ratio |")
    print("| --- | --- | --- | --- |")
    for i, r in enumerate(rows, 1):
        extra = f" ({r['refused']} refused)" if r["refused"] else ""
        print(f"| {i} | {r['candor']:.0f}{extra} | {r['bare']:.0f} | {r['candor'] / r['bare']:.3f} |")
    ratios = [r["candor"] / r["bare"] for r in rows]
    print(f"ratio Candor declares/s / bare sqlite3 loop (median of {PAIRS}): {statistics.median(ratios):.3f} "
          f"(range {min(ratios):.3f}–{max(ratios):.3f})")


if __name__ == "__main__":
    main()
