#!/usr/bin/env python3
"""Page rebuilds with a small and a large 90-day window, side by side in one run.

    python3 bench/pages.py target/release/candor      (bench/pages.sh builds and calls this)

For each size (PAGES_SIZES, default "10,10000" past incidents resolved within the window), on a
fresh SQLite database seeded directly (each incident: two updates with component statuses, one
estimate), the script starts `candor serve` as its own process and measures:

- start-up: from exec to the first `GET /` answered (includes opening the database and
  rendering every document once);
- idle CPU per minute: user + system CPU time of the process over PAGES_IDLE_SECS (default 60)
  with no traffic (the minute rebuild and the refresher's polls), scaled to a minute;
- RSS: VmRSS after the idle period, and VmHWM (peak);
- the size of `/` (identity bytes);
- change -> page: PAGES_CHANGES (default 50) updates posted one after another to an open
  incident through the v1 API; for each, the time from just before the POST until `GET /`
  shows the update's words (polled every 2 ms); p50 and p99.

All traffic goes to 127.0.0.1 only; every loop is bounded. The last line is the ratio of idle CPU
per minute, largest size / smallest size (the target is at most 2.0).
"""

import http.client
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

SIZES = [int(x) for x in os.environ.get("PAGES_SIZES", "10,10000").split(",")]
CHANGES = int(os.environ.get("PAGES_CHANGES", "50"))
IDLE = float(os.environ.get("PAGES_IDLE_SECS", "60"))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[pages] {msg}", file=sys.stderr, flush=True)


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp, db_url=None, tag=""):
    """The shipped config with the database at `db_url` (default: a SQLite file in `tmp`) and
    the log channels writing to files in `tmp` (names ending in `tag`, for several instances)."""
    with open(os.path.join(REPO, "config", "candor.yaml")) as f:
        text = f.read()
    db_url = db_url or f"sqlite://{tmp}/candor.db"
    text, n = re.subn(r'url:\s*"sqlite:[^"]*"', f'url: "{db_url}"', text, count=1)
    assert n == 1, "could not point database.url elsewhere"
    paths = iter([f"{tmp}/public{tag}.log", f"{tmp}/ops{tag}.log"])
    text = re.sub(r'path:\s*"-"', lambda m: f'path: "{next(paths, f"{tmp}/other{tag}.log")}"', text)
    conf = os.path.join(tmp, f"candor{tag}.yaml")
    with open(conf, "w") as f:
        f.write(text)
    return conf


def seed(db, n, now_ms):
    """n resolved incidents spread over the last 88 days, written straight into the tables."""
    rng = random.Random(n)
    con = sqlite3.connect(db)
    day = 86_400_000
    with con:
        for i in range(n):
            start = now_ms - rng.randrange(1, 88 * day)
            end = start + 30 * 60_000
            cur = con.execute(
                "INSERT INTO incidents (title, impact, status, eta_at, next_update_at, started_at, "
                "resolved_at, created_at, updated_at, kind) VALUES (?, 'minor', 'resolved', ?, NULL, "
                "?, ?, ?, ?, 'incident')",
                (f"Past incident {i}: slow API responses", start + 3_600_000, start, end, start, end),
            )
            iid = cur.lastrowid
            con.execute(
                "INSERT INTO incident_components (incident_id, component_id, status) VALUES (?, 'api', 'operational')",
                (iid,),
            )
            cur = con.execute(
                "INSERT INTO updates (incident_id, kind, status, message, eta_at, next_update_at, "
                "components, author, created_at) VALUES (?, 'operator', 'investigating', ?, ?, ?, ?, 'bench', ?)",
                (iid, "Some API requests are slow; we are looking into it.", start + 3_600_000,
                 start + 1_800_000, json.dumps({"api": "degraded_performance"}), start),
            )
            con.execute(
                "INSERT INTO eta_revisions (incident_id, update_id, old_eta_at, new_eta_at, actor, created_at) "
                "VALUES (?, ?, NULL, ?, 'bench', ?)",
                (iid, cur.lastrowid, start + 3_600_000, start),
            )
            con.execute(
                "INSERT INTO updates (incident_id, kind, status, message, eta_at, next_update_at, "
                "components, author, created_at) VALUES (?, 'resolution', 'resolved', ?, NULL, NULL, ?, 'bench', ?)",
                (iid, "Fixed: responses are fast again.", json.dumps({"api": "operational"}), end),
            )
    con.close()


def pct(xs, q):
    """The q-quantile of xs (nearest rank)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def proc_mem(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) / 1024
    return out


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def post(port, token, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", path, json.dumps(body), {"authorization": f"Bearer {token}",
                                               "content-type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status // 100 != 2:
        raise SystemExit(f"POST {path}: {r.status} {data[:300]!r}")
    return json.loads(data)


def stop(p, tmp):
    """Stops a Candor started by a run and removes its temporary directory."""
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
    subprocess.run(["rm", "-rf", tmp])


def run(candor, n):
    tmp = tempfile.mkdtemp(prefix="candor-pages-bench.")
    conf = write_config(tmp)
    env = dict(os.environ, RUST_LOG="warn")
    for k in ("DATABASE_URL", "CANDOR_LISTEN", "CANDOR_CONFIG"):
        env.pop(k, None)
    token = subprocess.run([candor, "--config", conf, "token", "create", "--name", "bench"],
                           env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    seed(os.path.join(tmp, "candor.db"), n, int(time.time() * 1000))
    port = free_port()
    t0 = time.monotonic()
    p = subprocess.Popen([candor, "--config", conf, "serve", "--listen", f"127.0.0.1:{port}"],
                         env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "err"), "w"))
    try:
        for _ in range(5000):
            try:
                if get(port, "/")[0] == 200:
                    break
            except OSError:
                pass
            if p.poll() is not None:
                raise SystemExit(open(os.path.join(tmp, "err")).read())
            time.sleep(0.002)
        startup = time.monotonic() - t0
        # An open incident whose updates the changes post.
        inc = post(port, token, "/api/v1/incidents", {
            "title": "Checkout errors", "impact": "minor", "message": "Some checkouts fail.",
            "components": {"web": "partial_outage"}, "next_update_in": "24h"})["id"]
        time.sleep(1)
        cpu0, w0 = proc_cpu(p.pid), time.monotonic()
        time.sleep(IDLE)
        idle_cpu = (proc_cpu(p.pid) - cpu0) / (time.monotonic() - w0) * 60
        mem = proc_mem(p.pid)
        size = len(get(port, "/")[1])
        lat = []
        for k in range(CHANGES):
            words = f"Progress note {k} {random.randrange(10**9)}"
            t = time.monotonic()
            post(port, token, f"/api/v1/incidents/{inc}/updates", {"message": words})
            needle = words.encode()
            for _ in range(5000):
                if needle in get(port, "/")[1]:
                    break
                time.sleep(0.002)
            else:
                raise SystemExit(f"change {k} never reached the page")
            lat.append((time.monotonic() - t) * 1000)
        p99 = pct(lat, 0.99)
        return {"n": n, "startup_s": startup, "idle_cpu_s_per_min": idle_cpu, "rss_mb": mem["VmRSS"],
                "hwm_mb": mem["VmHWM"], "index_kb": size / 1024, "change_p50_ms": statistics.median(lat),
                "change_p99_ms": p99}
    finally:
        stop(p, tmp)


def main():
    candor = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "target/release/candor")
    rows = []
    for n in SIZES:
        log(f"{n} incidents in the window ...")
        rows.append(run(candor, n))
    print(f"page rebuilds: {os.cpu_count()} CPUs, idle {IDLE:.0f} s, {CHANGES} changes, "
          f"load before the run {os.getloadavg()[0]:.2f}")
    print("| incidents | start-up s | idle CPU s/min | RSS MB (peak) | / KB | change→page p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['n']} | {r['startup_s']:.2f} | {r['idle_cpu_s_per_min']:.2f} | "
              f"{r['rss_mb']:.0f} ({r['hwm_mb']:.0f}) | {r['index_kb']:.0f} | "
              f"{r['change_p50_ms']:.0f} | {r['change_p99_ms']:.0f} |")
    small, large = rows[0], rows[-1]
    print(f"idle CPU per minute, {large['n']} / {small['n']} incidents: "
          f"{large['idle_cpu_s_per_min'] / max(small['idle_cpu_s_per_min'], 1e-3):.2f}")


if __name__ == "__main__":
    main()
