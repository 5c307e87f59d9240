#!/usr/bin/env python3
"""Candor chaos run: three instances on one PostgreSQL, killed, a flaky channel, the database down.

Run it through `bash tests/chaos/run.sh` (which builds target/release/candor first). Python 3.11,
standard library only. Every request goes to 127.0.0.1; every wait is bounded; the run stops by
itself. Ends with a table of counts and the line `N passed, M failed`; exits non-zero if any
check failed. Logs, sink recordings and evidence land in tests/chaos/out/ (ignored by git).

Scenarios (see RELIABILITY.md):
  KILLS   three `serve --role all` instances; a random one is SIGKILLed every 2-4 s and restarted
          after ~1 s (50 times) while a client writes ~5/s. Nothing acknowledged may be lost,
          no post may be made twice, no scheduled action may happen twice.
  FLAKY   webhook hook-b answers 503 (Retry-After: 2), then 429, for 60 s. Everything queued
          for it is delivered afterwards, in order per incident; hook-a is not delayed.
  DB DOWN PostgreSQL stopped for 30 s under load. The page and v2 JSON never answer 5xx; writes
          answer a clear JSON 503; nothing acknowledged is lost; writes work again on their own.

Knobs (environment): CHAOS_SEED (20261123), CHAOS_KILLS (50), CHAOS_PG_CLUSTER (`chaos`: a
throwaway cluster of its own; `main`: the machine's first cluster, stopped for the DB DOWN
scenario), CHAOS_FLAKY_SECS (60), CHAOS_DB_DOWN_SECS (30).
"""

from __future__ import annotations

import csv
import http.client
import http.server
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "out"
BIN = ROOT / "target" / "release" / "candor"
T0 = time.monotonic()

SEED = int(os.environ.get("CHAOS_SEED", "20261123"))
N_KILLS = int(os.environ.get("CHAOS_KILLS", "50"))
PG_CLUSTER = os.environ.get("CHAOS_PG_CLUSTER", "chaos")
FLAKY_SECS = float(os.environ.get("CHAOS_FLAKY_SECS", "60"))
DB_DOWN_SECS = float(os.environ.get("CHAOS_DB_DOWN_SECS", "30"))

PUBLIC_CHANNELS = ["log", "hook-a", "hook-b"]
LEASE_S = 6.0
OP_DEADLINE_S = 120.0  # one client write is retried (same key) for at most this long
DRAIN_BOUND_S = 90.0  # wait at most this long for the outbox to empty
HOOK_A_P99_BOUND_S = 2.0
SCHED_LATENESS_BOUND_S = 5.0
RECOVERY_BOUND_S = 20.0
NOTE = "reach our status database"
# Estimates given when declaring, in seconds. KILLS: 1-3 minutes, so they pass while instances die.
# DB DOWN: short, so many pass while PostgreSQL is down and are apologised for once it is back.
ETA_RANGE = {"KILLS": (60, 180), "FLAKY": (30, 90), "DB DOWN": (15, 60)}
# Share of writes that declare a new incident (the rest update or resolve one). DB DOWN declares
# more, so that many estimates fall due while PostgreSQL is down.
DECLARE_SHARE = {"KILLS": 0.15, "FLAKY": 0.15, "DB DOWN": 0.4}


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


# ---------------------------------------------------------------------------------------------
# Results


class Results:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.evidence: list[str] = []

    def check(self, scenario: str, name: str, ok: bool, value, expect: str) -> bool:
        self.rows.append((scenario, name, str(value), expect, "PASS" if ok else "FAIL"))
        log(f"{'PASS' if ok else 'FAIL'}  {scenario}: {name} = {value} (expected {expect})")
        return ok

    def info(self, scenario: str, name: str, value) -> None:
        self.rows.append((scenario, name, str(value), "", "info"))

    def skip(self, scenario: str, name: str, why: str) -> None:
        self.rows.append((scenario, name, why, "", "SKIP"))

    def note(self, text: str) -> None:
        self.evidence.append(text)

    def counts(self) -> tuple[int, int, int]:
        p = sum(1 for r in self.rows if r[4] == "PASS")
        f = sum(1 for r in self.rows if r[4] == "FAIL")
        s = sum(1 for r in self.rows if r[4] == "SKIP")
        return p, f, s

    def table(self) -> str:
        head = ("scenario", "count", "measured", "expected", "verdict")
        widths = [max(len(head[i]), *(len(r[i]) for r in self.rows)) for i in range(5)]
        widths[2] = min(widths[2], 70)
        line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(head))
        out = [line, "  ".join("-" * w for w in widths)]
        for r in self.rows:
            out.append("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip())
        return "\n".join(out)


R = Results()


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def run(args: list[str], check: bool = True, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=timeout,
                          start_new_session=True, **kw)


class Postgres:
    """A PostgreSQL server this run may stop and start, and a throwaway database on it."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.root = os.geteuid() == 0
        self.ver = ""
        self.port = 5432
        self.db = f"candor_chaos_{secrets.token_hex(4)}"
        self.created_cluster = False
        self.db_created = False
        self.stopped = False
        self.admin_url = os.environ.get(
            "CHAOS_ADMIN_URL", "postgresql://candor_ci:candor_ci@127.0.0.1:5432/postgres")

    @property
    def can_stop(self) -> bool:
        return self.root

    @property
    def url(self) -> str:
        return f"postgres://candor_ci:candor_ci@127.0.0.1:{self.port}/{self.db}"

    def as_postgres(self, sql: str, db: str = "postgres", check: bool = True):
        return run(["runuser", "-u", "postgres", "--", "psql", "-p", str(self.port), "-d", db,
                    "-v", "ON_ERROR_STOP=1", "-tAq", "-c", sql], check=check, cwd="/")

    def clusters(self) -> list[tuple[str, str, int, str]]:
        r = run(["pg_lsclusters", "--no-header"])
        out = []
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) >= 4:
                out.append((f[0], f[1], int(f[2]), f[3]))
        return out

    def wait_ready(self, bound: float = 30) -> bool:
        end = time.time() + bound
        while time.time() < end:
            if self.as_postgres("SELECT 1", check=False).returncode == 0:
                return True
            time.sleep(0.5)
        return False

    def setup(self) -> None:
        if not self.root:
            log(f"not root: using the running PostgreSQL at {self.admin_url.split('@')[-1]} "
                "(the DB DOWN scenario needs root and is skipped)")
            r = run(["psql", self.admin_url, "-v", "ON_ERROR_STOP=1", "-tAqc",
                     f'CREATE DATABASE "{self.db}"'], check=False)
            if r.returncode != 0:
                raise RuntimeError(f"cannot create a database through {self.admin_url}: {r.stderr.strip()}")
            self.db_created = True
            return
        versions = sorted((p.name for p in Path("/usr/lib/postgresql").iterdir()), key=lambda v: float(v))
        self.ver = versions[-1]
        if self.cluster == "main":
            found = self.clusters()
            if found:
                self.ver, self.cluster, self.port = found[0][0], found[0][1], found[0][2]
            else:
                run(["pg_createcluster", self.ver, "main"])
                self.port = [c for c in self.clusters() if c[1] == "main"][0][2]
        else:
            for ver, name, _port, _st in self.clusters():
                if name == self.cluster:
                    log(f"dropping the leftover cluster {ver} {name} of an earlier run")
                    run(["pg_dropcluster", "--stop", ver, name], check=False)
            self.port = free_port(5500, 5999)
            run(["pg_createcluster", "--start-conf", "manual", "-p", str(self.port), self.ver,
                 self.cluster])
            self.created_cluster = True
        run(["pg_ctlcluster", self.ver, self.cluster, "start"], check=False)
        if not self.wait_ready():
            raise RuntimeError(f"PostgreSQL {self.ver} {self.cluster} did not become ready")
        self.as_postgres("""DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'candor_ci') THEN
    CREATE ROLE candor_ci LOGIN CREATEDB PASSWORD 'candor_ci';
  END IF;
END $$;""")
        self.as_postgres(f'CREATE DATABASE "{self.db}" OWNER candor_ci')
        self.db_created = True
        log(f"PostgreSQL {self.ver} cluster `{self.cluster}` on 127.0.0.1:{self.port}, database {self.db}")

    def stop(self) -> None:
        self.stopped = True
        run(["pg_ctlcluster", self.ver, self.cluster, "stop", "-m", "fast"])

    def start(self) -> None:
        run(["pg_ctlcluster", self.ver, self.cluster, "start"], check=False)
        if not self.wait_ready():
            raise RuntimeError("PostgreSQL did not come back")
        self.stopped = False

    def query(self, sql: str) -> list[dict]:
        r = run(["psql", self.url, "--csv", "-v", "ON_ERROR_STOP=1", "-c", sql], timeout=60)
        rows = list(csv.DictReader(io.StringIO(r.stdout)))
        return [{k: (None if v == "" else v) for k, v in row.items()} for row in rows]

    def scalar(self, sql: str) -> int:
        rows = self.query(sql)
        v = next(iter(rows[0].values())) if rows else None
        return int(v) if v is not None else 0

    def teardown(self) -> None:
        try:
            if self.root:
                if self.stopped:
                    self.start()
                if self.db_created:
                    self.as_postgres(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)', check=False)
                if self.created_cluster:
                    logf = Path(f"/var/log/postgresql/postgresql-{self.ver}-{self.cluster}.log")
                    if logf.exists():
                        shutil.copy(logf, OUT / "postgresql.log")
                    run(["pg_dropcluster", "--stop", self.ver, self.cluster], check=False)
                    log(f"dropped the throwaway cluster {self.ver} {self.cluster}")
                else:
                    log(f"dropped the database {self.db}")
            elif self.db_created:
                run(["psql", self.admin_url, "-tAqc", f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'],
                    check=False)
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            log(f"cleanup of PostgreSQL failed: {e}")


def free_port(lo: int = 0, hi: int = 0) -> int:
    for _ in range(200):
        port = random.randint(lo, hi) if lo else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


# ---------------------------------------------------------------------------------------------
# Sinks: the webhooks' other end


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address) -> None:
        # A sender killed while the sink was answering: the request was taken all the same.
        pass


class Sink:
    """Records every request. Honours Idempotency-Key like Mastodon: the first accepted request
    per key is a post; later accepted ones with the same key are raw re-sends, not new posts."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = 200  # 200, 503 (with Retry-After: 2) or 429
        self.delay = (0.0, 0.0)  # seconds to think before answering, drawn uniformly
        self.rng = random.Random(SEED + len(name))
        self.lock = threading.Lock()
        self.records: list[dict] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                t = time.time()
                try:
                    doc = json.loads(raw)
                    msg = doc.get("message") or {}
                except ValueError:
                    doc, msg = {}, {}
                with sink.lock:
                    status = sink.mode
                    sink.records.append({
                        "t": t, "status": status, "key": self.headers.get("Idempotency-Key"),
                        "delivery_id": doc.get("delivery_id"), "attempt": doc.get("attempt"),
                        "incident_id": msg.get("incident_id"), "update_id": msg.get("update_id"),
                        "kind": msg.get("kind"), "eta_at": msg.get("eta_at"),
                        "next_update_at": msg.get("next_update_at"),
                    })
                    n_rec = len(sink.records)
                    pause = sink.rng.uniform(*sink.delay)
                if pause:
                    time.sleep(pause)
                body = json.dumps({"id": f"{sink.name}-{n_rec}"}).encode()
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "2")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name=f"sink-{name}", daemon=True).start()

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.records)

    def set_delay(self, lo: float, hi: float) -> None:
        with self.lock:
            self.delay = (lo, hi)

    def set_mode(self, mode: int) -> None:
        with self.lock:
            self.mode = mode

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SinkView:
    """What a sink saw, restricted to some incidents."""

    def __init__(self, records: list[dict], incidents: set[int] | None = None) -> None:
        recs = [r for r in records if incidents is None or r["incident_id"] in incidents]
        self.records = recs
        self.accepted = [r for r in recs if r["status"] == 200]
        self.posts: dict[str, dict] = {}  # key -> the first accepted request
        self.resent: list[dict] = []  # accepted requests with a key already posted
        for r in self.accepted:
            if r["key"] in self.posts:
                self.resent.append(r)
            else:
                self.posts[r["key"]] = r
        self.keys_by_update: dict[int, set[str]] = {}
        for k, r in self.posts.items():
            self.keys_by_update.setdefault(r["update_id"], set()).add(k)
        self.first_seen: dict[int, float] = {}  # update_id -> first request of any answer
        self.first_post: dict[int, float] = {}  # update_id -> first accepted request
        for r in recs:
            self.first_seen.setdefault(r["update_id"], r["t"])
        for r in self.accepted:
            self.first_post.setdefault(r["update_id"], r["t"])

    def posted_twice(self) -> dict[int, set[str]]:
        return {u: ks for u, ks in self.keys_by_update.items() if len(ks) > 1}

    def order_violations(self) -> list[tuple[int, list[int]]]:
        """Incidents whose updates were first attempted out of id order on this channel."""
        inc_of = {r["update_id"]: r["incident_id"] for r in self.records}
        seq: dict[int, list[tuple[float, int]]] = {}
        for u, t in self.first_seen.items():
            seq.setdefault(inc_of[u], []).append((t, u))
        bad = []
        for inc, items in seq.items():
            ids = [u for _, u in sorted(items)]
            if ids != sorted(ids):
                bad.append((inc, ids))
        return bad

    def scheduled_duplicates(self) -> list[tuple]:
        """Two distinct posts of a holding update (or an apology) for one (incident, due time).
        An apology's due time is the estimate it apologises for; a holding update's is the
        promise it keeps: the next_update_at of the post before it."""
        by_inc: dict[int, list[dict]] = {}
        for r in self.posts.values():
            by_inc.setdefault(r["incident_id"], []).append(r)
        seen: dict[tuple, int] = {}
        dups = []
        for inc, posts in by_inc.items():
            per_update: dict[int, dict] = {}
            for p in posts:
                per_update.setdefault(p["update_id"], p)
            ordered = [per_update[u] for u in sorted(per_update)]
            for i, p in enumerate(ordered):
                if p["kind"] == "overdue":
                    key = (inc, "apology", p["eta_at"])
                elif p["kind"] == "scheduled":
                    key = (inc, "holding", ordered[i - 1]["next_update_at"] if i else None)
                else:
                    continue
                if key in seen:
                    dups.append(key + (seen[key], p["update_id"]))
                else:
                    seen[key] = p["update_id"]
        return dups


# ---------------------------------------------------------------------------------------------
# Candor instances


def http_call(port: int, method: str, path: str, body: bytes | None = None,
              headers: dict | None = None, timeout: float = 15) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


class Instance:
    def __init__(self, idx: int, port: int, conf: Path) -> None:
        self.idx = idx
        self.name = f"instance-{idx}"
        self.port = port
        self.conf = conf
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.down = True  # the client leaves it alone while true
        self.stdout = OUT / f"{self.name}.stdout.log"
        self.stderr = OUT / f"{self.name}.stderr.log"

    def start(self) -> None:
        self.starts += 1
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "CANDOR_CONFIG", "CANDOR_LISTEN", "CANDOR_ROLE",
                            "CANDOR_LOG_FORMAT")}
        env["RUST_LOG"] = "info"
        env["HOSTNAME"] = f"chaos{self.idx}"
        with open(self.stderr, "a") as f:
            f.write(f"\n===== chaos: {self.name} start #{self.starts} at {iso(time.time())} UTC =====\n")
        with open(self.stdout, "ab") as fo, open(self.stderr, "ab") as fe:
            self.proc = subprocess.Popen(
                [str(BIN), "--config", str(self.conf), "serve", "--listen",
                 f"127.0.0.1:{self.port}", "--role", "all"],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, env=env)
        self.down = False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        self.down = True
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self) -> None:
        self.down = True
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def wait_healthy(self, bound: float = 30) -> bool:
        end = time.time() + bound
        while time.time() < end:
            if not self.alive():
                return False
            try:
                if http_call(self.port, "GET", "/healthz", timeout=2)[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False


# ---------------------------------------------------------------------------------------------
# The client: incident scripts writing through the API


class Op:
    def __init__(self, kind: str, phase: str, key: str, path: str, body: dict,
                 incident: int | None = None, quiet: bool = False) -> None:
        self.kind, self.phase, self.key, self.path = kind, phase, key, path
        self.body = json.dumps(body).encode()
        self.incident = incident
        self.quiet = quiet


class Client:
    MAX_OUTSTANDING = 24

    def __init__(self, instances: list[Instance], token: str, components: list[str]) -> None:
        self.instances = instances
        self.token = token
        self.components = components
        self.rng = random.Random(SEED)
        self.lock = threading.Lock()
        self.incidents: dict[int, dict] = {}
        self.acks: list[dict] = []
        self.attempts: list[dict] = []
        self.failed: list[dict] = []
        self.seq = 0
        self.rr = 0
        self.outstanding = 0
        self.skipped = 0
        self.pool = ThreadPoolExecutor(max_workers=self.MAX_OUTSTANDING, thread_name_prefix="client")
        self.stop_load = threading.Event()
        self.loader: threading.Thread | None = None

    # -- choosing what to write

    def _key(self, phase: str) -> str:
        self.seq += 1
        return f"chaos-{SEED}-{phase.lower().replace(' ', '-')}-{self.seq}"

    def _declare(self, phase: str) -> Op:
        rng = self.rng
        n = self.seq + 1
        comp = rng.choice(self.components)
        body = {
            "title": f"Chaos {phase} incident {n}",
            "impact": rng.choice(["minor", "major", "critical"]),
            "status": "investigating",
            "message": f"Chaos {phase}: incident {n} declared.",
            "components": {comp: rng.choice(["degraded_performance", "partial_outage", "major_outage"])},
            "eta_in": f"{rng.randint(*ETA_RANGE[phase])}s",
            "next_update_in": "1m",
        }
        # Half the incidents never hear from the client again: the scheduler owes them holding
        # updates every minute and an apology when their estimate passes.
        return Op("declare", phase, self._key(phase), "/api/v1/incidents", body, quiet=rng.random() < 0.5)

    def _update(self, phase: str, inc: int) -> Op:
        rng = self.rng
        body = {"message": f"Chaos {phase}: update {self.seq + 1} on incident {inc}.",
                "status": rng.choice(["investigating", "identified", "monitoring"])}
        if rng.random() < 0.25:
            body["eta_in"] = f"{rng.randint(60, 180)}s"
            body["eta_reason"] = "chaos revises the estimate"
        return Op("update", phase, self._key(phase), f"/api/v1/incidents/{inc}/updates", body, incident=inc)

    def _resolve(self, phase: str, inc: int) -> Op:
        return Op("resolve", phase, self._key(phase), f"/api/v1/incidents/{inc}/resolve",
                  {"message": f"Chaos {phase}: incident {inc} is fixed."}, incident=inc)

    def next_op(self, phase: str) -> Op:
        """Called under the lock. An incident has at most one write in flight, so the newest
        operator update in a response is the one just written."""
        now = time.time()
        chatty = [i for i, s in self.incidents.items()
                  if s["phase"] == phase and not s["resolved"] and not s["busy"] and not s["quiet"]]
        r = self.rng.random()
        if r < DECLARE_SHARE[phase] or not chatty:
            return self._declare(phase)
        inc = self.rng.choice(chatty)
        self.incidents[inc]["busy"] = True
        if r < DECLARE_SHARE[phase] + 0.05 and now - self.incidents[inc]["declared"] > 30:
            return self._resolve(phase, inc)
        return self._update(phase, inc)

    # -- sending

    def pick(self, avoid: Instance | None = None) -> Instance:
        live = [i for i in self.instances if not i.down]
        cands = [i for i in live if i is not avoid] or live or self.instances
        with self.lock:
            self.rr += 1
            return cands[self.rr % len(cands)]

    def run_op(self, op: Op) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                   "Idempotency-Key": op.key}
        first = time.time()
        deadline = first + OP_DEADLINE_S
        inst = self.pick()
        n = 0
        while True:
            n += 1
            t_send = time.time()
            try:
                status, hdrs, data = http_call(inst.port, "POST", op.path, op.body, headers, timeout=15)
            except (OSError, http.client.HTTPException) as e:
                self._attempt(op, inst, t_send, None, {}, b"", type(e).__name__)
                if time.time() > deadline:
                    self._fail(op, f"gave up after {n} attempts: {type(e).__name__}")
                    return
                time.sleep(0.1)
                inst = self.pick(avoid=inst)
                continue
            t_recv = time.time()
            self._attempt(op, inst, t_send, status, hdrs, data, None, t_recv)
            if 200 <= status < 300:
                self._ack(op, inst, data, hdrs, first, t_recv, n)
                return
            if status >= 500 or status == 429:
                if time.time() > deadline:
                    self._fail(op, f"gave up after {n} attempts: HTTP {status}")
                    return
                time.sleep(1.0 if status == 503 else 0.2)
                inst = self.pick(avoid=inst)
                continue
            self._fail(op, f"HTTP {status}: {data[:300]!r}")
            return

    def _attempt(self, op: Op, inst: Instance, t_send: float, status, hdrs: dict, data: bytes,
                 err, t_recv: float | None = None) -> None:
        rec = {"phase": op.phase, "kind": op.kind, "key": op.key, "port": inst.port, "inst": inst.idx,
               "t_send": t_send, "t_recv": t_recv or time.time(), "status": status, "error": err}
        if status is not None and status >= 400:
            try:
                e = json.loads(data).get("error") or {}
                rec["error_code"], rec["error_message"] = e.get("code"), e.get("message")
            except (ValueError, AttributeError):
                rec["error_code"], rec["error_message"] = None, data[:200].decode("utf-8", "replace")
            rec["retry_after"] = hdrs.get("retry-after")
        with self.lock:
            self.attempts.append(rec)

    def _ack(self, op: Op, inst: Instance, data: bytes, hdrs: dict, first: float, t_ack: float, n: int) -> None:
        doc = json.loads(data)
        ups = doc.get("updates") or []
        want = {"declare": "operator", "update": "operator", "resolve": "resolution"}[op.kind]
        ids = [u["id"] for u in ups if u.get("kind") == want]
        uid = (min(ids) if op.kind == "declare" else max(ids)) if ids else None
        ack = {"phase": op.phase, "kind": op.kind, "key": op.key, "incident": doc.get("id"),
               "update_id": uid, "t_first": first, "t_ack": t_ack, "attempts": n, "inst": inst.idx,
               "replayed": hdrs.get("idempotent-replayed") == "true"}
        with self.lock:
            self.acks.append(ack)
            if op.kind == "declare":
                self.incidents[doc["id"]] = {"phase": op.phase, "quiet": op.quiet, "busy": False,
                                             "resolved": False, "declared": t_ack}
            elif op.incident in self.incidents:
                s = self.incidents[op.incident]
                s["busy"] = False
                if op.kind == "resolve":
                    s["resolved"] = True

    def _fail(self, op: Op, why: str) -> None:
        with self.lock:
            self.failed.append({"phase": op.phase, "kind": op.kind, "key": op.key,
                                "incident": op.incident, "why": why, "t": time.time()})
            if op.incident in self.incidents:
                self.incidents[op.incident]["busy"] = False

    def _submit(self, op: Op) -> None:
        def work() -> None:
            try:
                self.run_op(op)
            except Exception as e:  # noqa: BLE001 - a broken response is a finding, not a crash
                self._fail(op, f"client error: {e!r}")
            finally:
                with self.lock:
                    self.outstanding -= 1
        self.pool.submit(work)

    # -- load

    def start(self, phase: str, rate: float) -> None:
        self.stop_load.clear()

        def loop() -> None:
            interval = 1.0 / rate
            nxt = time.monotonic()
            while not self.stop_load.is_set():
                nxt += interval
                delay = nxt - time.monotonic()
                if delay > 0 and self.stop_load.wait(delay):
                    break
                with self.lock:
                    if self.outstanding >= self.MAX_OUTSTANDING:
                        self.skipped += 1
                        continue
                    op = self.next_op(phase)
                    self.outstanding += 1
                self._submit(op)

        self.loader = threading.Thread(target=loop, name=f"load-{phase}", daemon=True)
        self.loader.start()

    def stop(self, bound: float = OP_DEADLINE_S + 30) -> bool:
        self.stop_load.set()
        if self.loader:
            self.loader.join()
        return self.wait_idle(bound)

    def wait_idle(self, bound: float) -> bool:
        end = time.time() + bound
        while time.time() < end:
            with self.lock:
                if self.outstanding == 0:
                    return True
            time.sleep(0.1)
        return False

    def resolve_all(self, phase: str) -> int:
        with self.lock:
            todo = [i for i, s in self.incidents.items() if s["phase"] == phase and not s["resolved"]]
            ops = []
            for i in todo:
                self.incidents[i]["busy"] = True
                ops.append(self._resolve(phase, i))
            self.outstanding += len(ops)
        for op in ops:
            self._submit(op)
        self.wait_idle(OP_DEADLINE_S + 30)
        return len(ops)

    def phase_acks(self, phase: str) -> list[dict]:
        with self.lock:
            return [a for a in self.acks if a["phase"] == phase]

    def phase_attempts(self, phase: str) -> list[dict]:
        with self.lock:
            return [a for a in self.attempts if a["phase"] == phase]

    def phase_failed(self, phase: str) -> list[dict]:
        with self.lock:
            return [a for a in self.failed if a["phase"] == phase]


# ---------------------------------------------------------------------------------------------
# The poller: readers refreshing the status page during an outage


class Poller:
    """One reader per instance, each GETting / and /api/v2/summary.json every ~100 ms."""

    PATHS = ["/", "/api/v2/summary.json"]

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = instances
        self.lock = threading.Lock()
        self.records: list[dict] = []
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self.loop, args=(i,), name=f"poller-{i.idx}", daemon=True)
                        for i in instances]

    def loop(self, inst: Instance) -> None:
        while not self.stop_ev.is_set():
            t_round = time.time()
            for path in self.PATHS:
                t = time.time()
                rec = {"t": t, "inst": inst.idx, "path": path, "status": None, "note": None}
                try:
                    status, _h, body = http_call(inst.port, "GET", path, timeout=5)
                    rec["status"] = status
                    if path == "/":
                        rec["note"] = NOTE in body.decode("utf-8", "replace")
                except (OSError, http.client.HTTPException) as e:
                    rec["error"] = type(e).__name__
                with self.lock:
                    self.records.append(rec)
            self.stop_ev.wait(max(0.0, 0.1 - (time.time() - t_round)))

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=10)


# ---------------------------------------------------------------------------------------------
# Set-up


def make_config(pg: Postgres, sink_a: Sink, sink_b: Sink) -> Path:
    """A copy of config/candor.yaml with the database, channels and timings of this run."""
    text = (ROOT / "config" / "candor.yaml").read_text()
    # One public URL for all instances (left out, it would follow each one's --listen port), so
    # every instance writes the same links.
    site_url = '  # public_url: "https://status.example.com"\n'
    if site_url not in text:
        raise RuntimeError("config/candor.yaml no longer has the commented site.public_url line")
    text = text.replace(site_url, '  public_url: "http://127.0.0.1:8080"\n', 1)
    replace = {
        "database": f'database:\n  url: "{pg.url}"\n  max_connections: 8\n',
        "policies": "policies:\n" + "".join(f"  {i}: {{ update_every: 1m }}\n"
                                            for i in ("none", "minor", "major", "critical")),
        "status_page": "status_page:\n  refresh: 500ms\n  max_age: 10s\n",
        "scheduler": "scheduler:\n  tick: 500ms\n",
        "outbox": ("outbox:\n  lease: 6s\n  poll_interval: 200ms\n  backoff_min: 1s\n"
                   "  backoff_max: 5s\n  max_attempts: 100\n"),
        "ops": "ops:\n  channels: [ops-log]\n  remind_before: 20s\n",
        "channels": (
            "channels:\n"
            '  log: { type: log, path: "-", limits: { timeout: 5s } }\n'
            '  ops-log: { type: log, path: "-", limits: { concurrency: 1, timeout: 5s } }\n'
            f'  hook-a: {{ type: webhook, url: "http://127.0.0.1:{sink_a.port}/hook", '
            "limits: { concurrency: 4, timeout: 5s } }\n"
            f'  hook-b: {{ type: webhook, url: "http://127.0.0.1:{sink_b.port}/hook", '
            "limits: { concurrency: 4, timeout: 5s } }\n"),
    }
    out, lines, i = [], text.splitlines(keepends=True), 0
    done = set()
    while i < len(lines):
        m = re.match(r"^([A-Za-z_][\w-]*):", lines[i])
        if m and m.group(1) in replace:
            key = m.group(1)
            out.append(replace[key])
            done.add(key)
            i += 1
            while i < len(lines) and (lines[i].startswith((" ", "\t")) or not lines[i].strip()):
                i += 1
            continue
        out.append(lines[i])
        i += 1
    for key, block in replace.items():
        if key not in done:
            out.append(block)
    conf = OUT / "candor.yaml"
    conf.write_text("".join(out))
    r = run([str(BIN), "--config", str(conf), "check-config"], check=False, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"the chaos config does not pass check-config: {r.stderr.strip()}")
    return conf


def create_token(conf: Path) -> str:
    r = run([str(BIN), "--config", str(conf), "token", "create", "--name", "chaos", "--scope", "all"], cwd=ROOT,
            env={**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, "RUST_LOG": "warn"})
    return r.stdout.strip().splitlines()[-1].strip()


# ---------------------------------------------------------------------------------------------
# Reading back what happened


def as_int(v):
    return None if v is None else int(v)


class DbView:
    """The rows of the tables the checks read, as of one moment."""

    def __init__(self, pg: Postgres) -> None:
        self.incidents = {int(r["id"]): r for r in pg.query(
            "SELECT id, title, resolved_at, created_at FROM incidents")}
        self.updates = {}
        for r in pg.query("SELECT id, incident_id, kind, eta_at, next_update_at, created_at "
                          "FROM updates ORDER BY id"):
            self.updates[int(r["id"])] = {
                "id": int(r["id"]), "incident": int(r["incident_id"]), "kind": r["kind"],
                "eta_at": as_int(r["eta_at"]), "next_update_at": as_int(r["next_update_at"]),
                "created_at": int(r["created_at"])}
        self.deliveries = []
        for r in pg.query("SELECT id, incident_id, update_id, channel, audience, state, attempts, "
                          "created_at, delivered_at, last_error FROM deliveries ORDER BY id"):
            self.deliveries.append({
                "id": int(r["id"]), "incident": as_int(r["incident_id"]), "update_id": as_int(r["update_id"]),
                "channel": r["channel"], "audience": r["audience"], "state": r["state"],
                "attempts": int(r["attempts"]), "created_at": int(r["created_at"]),
                "delivered_at": as_int(r["delivered_at"]), "last_error": r["last_error"]})
        self.actions = [{"incident": int(r["incident_id"]), "action": r["action"], "due_at": int(r["due_at"]),
                         "done_at": int(r["done_at"]), "update_id": as_int(r["update_id"])}
                        for r in pg.query("SELECT incident_id, action, due_at, done_at, update_id "
                                          "FROM scheduled_actions")]
        self.by_update_channel: dict[tuple, list[dict]] = {}
        for d in self.deliveries:
            if d["update_id"] is not None:
                self.by_update_channel.setdefault((d["update_id"], d["channel"]), []).append(d)

    def phase_incidents(self, phase: str) -> set[int]:
        return {i for i, r in self.incidents.items() if r["title"].startswith(f"Chaos {phase} ")}


def log_channel_updates() -> dict[int, int]:
    """update_id -> lines the `log` channel wrote for it, over every instance's stdout."""
    seen: dict[int, int] = {}
    for f in OUT.glob("instance-*.stdout.log"):
        with open(f, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.startswith("{"):
                    continue
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if d.get("channel") == "log" and d.get("update_id") is not None:
                    seen[d["update_id"]] = seen.get(d["update_id"], 0) + 1
    return seen


SPAN_FIELDS = re.compile(r"deliver\{([^}]*)\}")
ID_FIELD = re.compile(r"\b(delivery\.id|incident\.id)=(\d+)")


def leaked_span_lines() -> tuple[int, str]:
    """Log lines labelled with a delivery they are not about: a `deliver{...}` span nested in
    another (a span entered across `.await` leaks into whatever runs next on that thread), or a
    line whose own `delivery.id`/`incident.id` differs from its span's. Judged by the ids, not by
    which module or library wrote the line (a slow-statement warning from the connection pool
    inside a delivery's span is that delivery's own work)."""
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    nested = mislabelled = total = 0
    for f in OUT.glob("instance-*.stderr.log"):
        with open(f, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = ansi.sub("", line)
                spans = SPAN_FIELDS.findall(line)
                if not spans:
                    continue
                total += 1
                if len(spans) > 1:
                    nested += 1
                    continue
                span_ids = dict(ID_FIELD.findall(spans[0]))
                rest = line[line.index("}", line.index("deliver{")) + 1:]
                own = dict(ID_FIELD.findall(rest))
                if any(k in span_ids and span_ids[k] != v for k, v in own.items()):
                    mislabelled += 1
    bad = nested + mislabelled
    return bad, f"{bad} of {total} ({nested} nested deliver spans, {mislabelled} lines naming another delivery)"


def wait_drained(pg: Postgres, bound: float = DRAIN_BOUND_S, where: str = "TRUE") -> tuple[bool, float, int]:
    t = time.time()
    n = -1
    while time.time() - t < bound:
        try:
            n = pg.scalar(f"SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'in_flight') AND {where}")
        except subprocess.CalledProcessError:
            n = -1
        if n == 0:
            return True, time.time() - t, 0
        time.sleep(0.5)
    return False, time.time() - t, n


def check_deliveries(scn: str, phase: str, client: Client, db: DbView, sinks: dict[str, Sink]) -> dict:
    """Lost, dead, unfinished and doubled deliveries for one scenario's incidents."""
    incs = db.phase_incidents(phase)
    acks = client.phase_acks(phase)
    views = {name: SinkView(s.snapshot(), incs) for name, s in sinks.items()}
    logged = log_channel_updates()

    missing_db = [a for a in acks if a["update_id"] is None or a["update_id"] not in db.updates]
    R.check(scn, "acknowledged writes missing from the database", not missing_db, len(missing_db), "0")
    if missing_db:
        R.note(f"{scn}: acknowledged writes missing from the database: {missing_db[:20]}")

    def lost_for(update_ids) -> list[tuple]:
        lost = []
        for uid in update_ids:
            for ch in PUBLIC_CHANNELS:
                rows = db.by_update_channel.get((uid, ch), [])
                if not rows:
                    lost.append((uid, ch, "no delivery row"))
                    continue
                for d in rows:
                    if d["state"] != "delivered":
                        lost.append((uid, ch, f"delivery {d['id']} is {d['state']} after {d['attempts']} "
                                              f"attempts: {d['last_error']}"))
                if ch == "log" and uid not in logged:
                    lost.append((uid, ch, "no line in any instance's log output"))
                if ch in views and uid not in views[ch].first_post:
                    lost.append((uid, ch, "the sink never accepted it"))
        return lost

    acked_ids = sorted({a["update_id"] for a in acks if a["update_id"] is not None})
    lost = lost_for(acked_ids)
    R.check(scn, f"deliveries lost ({len(acked_ids)} acknowledged updates x {len(PUBLIC_CHANNELS)} channels)",
            not lost, len(lost), "0")
    all_ids = sorted(u for u, r in db.updates.items() if r["incident"] in incs)
    lost_all = lost_for(all_ids)
    R.check(scn, f"deliveries lost, every update incl. Candor's own ({len(all_ids)} updates)",
            not lost_all, len(lost_all), "0")
    if lost or lost_all:
        R.note(f"{scn}: lost deliveries (update_id, channel, why), first 30: {(lost or lost_all)[:30]}")

    phase_deliveries = [d for d in db.deliveries if d["incident"] in incs]
    dead = [d for d in phase_deliveries if d["state"] == "dead"]
    R.check(scn, "deliveries dead", not dead, len(dead), "0")
    if dead:
        R.note(f"{scn}: dead deliveries: {dead[:10]}")
    unfinished = [d for d in phase_deliveries if d["state"] in ("pending", "in_flight")]
    R.check(scn, "deliveries still pending/in_flight after the wait", not unfinished, len(unfinished), "0")
    if unfinished:
        R.note(f"{scn}: unfinished deliveries: {unfinished[:10]}")
    dup_rows = {k: v for k, v in db.by_update_channel.items()
                if len(v) > 1 and db.updates.get(k[0], {}).get("incident") in incs}
    R.check(scn, "updates with two delivery rows on one channel", not dup_rows, len(dup_rows), "0")

    for name, v in views.items():
        twice = v.posted_twice()
        R.check(scn, f"posts made twice on {name} (distinct posts per update_id > 1)", not twice,
                len(twice), "0")
        if twice:
            R.note(f"{scn}: {name} posted these updates under several keys: {list(twice.items())[:10]}")
    return {"views": views, "incidents": incs, "acks": acks, "phase_deliveries": phase_deliveries}


def check_scheduled(scn: str, phase: str, db: DbView, view_a: SinkView, window: tuple | None,
                    lateness_bound: float, must_happen: bool,
                    outage: tuple[float, float] | None = None) -> tuple[int, int]:
    """Holding updates and apologies: each done once, each with its scheduled_actions row."""
    incs = db.phase_incidents(phase)
    ups = sorted((u for u in db.updates.values() if u["incident"] in incs), key=lambda u: u["id"])
    by_update = {a["update_id"]: a for a in db.actions if a["update_id"] is not None}
    sched = [u for u in ups if u["kind"] in ("scheduled", "overdue")]
    orphans = [u for u in sched if u["id"] not in by_update]
    prev: dict[int, dict] = {}
    seen: dict[tuple, int] = {}
    dups, late, due_of, early = [], [], {}, []
    for u in ups:
        p = prev.get(u["incident"])
        prev[u["incident"]] = u
        if u["kind"] == "overdue":
            key, due = (u["incident"], "apology", u["eta_at"]), u["eta_at"]
        elif u["kind"] == "scheduled":
            due = p["next_update_at"] if p else None
            key = (u["incident"], "holding", due)
        else:
            continue
        if key in seen:
            dups.append(key + (seen[key], u["id"]))
        seen[key] = u["id"]
        due_of[u["id"]] = due
        if due is not None:
            if u["created_at"] < due:
                early.append((u["id"], u["incident"], u["kind"], u["created_at"], due))
            start = due
            if outage and u["created_at"] >= outage[0] * 1000 and due <= outage[1] * 1000:
                # It had to wait for the database: count from when it was back (this run's
                # clock says "back" only once psql answered, so Candor may beat it: then 0).
                start = max(due, min(outage[1] * 1000, u["created_at"]))
            late.append((u["created_at"] - start) / 1000.0)
    action_keys: dict[tuple, int] = {}
    for a in db.actions:
        if a["incident"] in incs:
            k = (a["incident"], a["action"], a["due_at"])
            action_keys[k] = action_keys.get(k, 0) + 1
    dup_actions = [k for k, n in action_keys.items() if n > 1]
    shared = {}
    for a in db.actions:
        if a["incident"] in incs and a["update_id"] is not None:
            shared.setdefault(a["update_id"], []).append(a)
    shared = {k: v for k, v in shared.items() if len(v) > 1}
    sink_dups = view_a.scheduled_duplicates()
    twice = len(orphans) + len(dups) + len(dup_actions) + len(shared) + len(sink_dups)
    R.check(scn, "scheduled actions done twice (DB orphans/dups + hook-a dups)", twice == 0,
            f"{twice} ({len(orphans)} orphans, {len(dups) + len(dup_actions) + len(shared)} DB dups, "
            f"{len(sink_dups)} hook-a dups)", "0")
    if twice:
        R.note(f"{scn}: scheduled actions done twice: orphans={orphans[:5]} dups={dups[:5]} "
               f"dup_actions={dup_actions[:5]} shared={list(shared.items())[:5]} sink_dups={sink_dups[:5]}")
    holding = sum(1 for u in sched if u["kind"] == "scheduled")
    apologies = sum(1 for u in sched if u["kind"] == "overdue")
    reminders = sum(1 for a in db.actions if a["incident"] in incs and a["action"] == "ops_reminder")
    h_txt, a_txt = str(holding), str(apologies)
    if window:
        # KILLS: done while instances were being killed; DB DOWN: fell due while the database
        # was down (so done after it came back).
        lo, hi, label, by_due = window[0] * 1000, window[1] * 1000, window[2], window[3]

        def within(u: dict) -> bool:
            t = due_of.get(u["id"]) if by_due else u["created_at"]
            return t is not None and lo <= t <= hi
        h_in = sum(1 for u in sched if u["kind"] == "scheduled" and within(u))
        a_in = sum(1 for u in sched if u["kind"] == "overdue" and within(u))
        h_txt += f" ({h_in} {label})"
        a_txt += f" ({a_in} {label})"
    if must_happen:
        R.check(scn, "holding updates posted by the scheduler", holding > 0, h_txt, "> 0")
        R.check(scn, "apologies posted by the scheduler", apologies > 0, a_txt, "> 0")
    else:
        R.info(scn, "holding updates posted by the scheduler", h_txt)
        R.info(scn, "apologies posted by the scheduler", a_txt)
    R.info(scn, "team reminders (ops_reminder actions)", reminders)
    worst = max(late) if late else 0.0
    R.check(scn, "scheduled actions done before they were due", not early, len(early), "0")
    if early:
        R.note(f"{scn}: scheduled actions done early (update, incident, kind, created_at, due ms): {early[:10]}")
    R.check(scn, "latest scheduled action after its due time" + (
        " (or after PostgreSQL was back, if it fell due while it was down)" if outage else "") + " (s)",
            worst <= lateness_bound, f"{worst:.2f}", f"<= {lateness_bound:g}")
    return holding, apologies


def check_order(scn: str, views: dict[str, SinkView], names: list[str]) -> None:
    for name in names:
        bad = views[name].order_violations()
        R.check(scn, f"incidents whose updates reached {name} out of order", not bad, len(bad), "0")
        if bad:
            R.note(f"{scn}: {name} received updates out of order: {bad[:5]}")


# ---------------------------------------------------------------------------------------------
# Scenarios


def scenario_kills(pg: Postgres, client: Client, instances: list[Instance], sinks: dict[str, Sink]) -> None:
    scn = "KILLS"
    log(f"== {scn}: {N_KILLS} SIGKILLs, one every 2-4 s, restart after ~1 s; client ~5 writes/s")
    rng = random.Random(SEED + 1)
    kills: list[tuple[float, int]] = []
    unexpected: list[str] = []
    # The sinks take 0-150 ms to answer, so that kills often land while a delivery is in flight:
    # the post is made, the worker dies before recording it, and another instance must take the
    # delivery over when its lease expires (and send it again under the same key).
    for s in sinks.values():
        s.set_delay(0.0, 0.15)
    client.start(scn, rate=5.0)
    time.sleep(3)
    t_first = time.time()
    for k in range(1, N_KILLS + 1):
        time.sleep(max(0.0, rng.uniform(2.0, 4.0) - 1.0))
        for inst in instances:
            if not inst.alive():
                unexpected.append(f"{inst.name} exited by itself with {inst.proc.returncode} "
                                  f"(start #{inst.starts}); see {inst.stderr.name}")
                inst.start()
        victim = rng.choice(instances)
        t = time.time()
        victim.kill()
        kills.append((t, victim.idx))
        with client.lock:
            n_acks = len(client.acks)
        log(f"kill {k}/{N_KILLS}: {victim.name} at {iso(t)}; {n_acks} writes acknowledged so far")
        time.sleep(1.0)
        victim.start()
    t_last = time.time()
    log("killing stopped; all three instances up; letting the load run 5 s more")
    for inst in instances:
        if not inst.wait_healthy(30):
            unexpected.append(f"{inst.name} is not healthy after the kills")
    time.sleep(5)
    if not client.stop():
        log("some client writes were still outstanding after the bound")
    for s in sinks.values():
        s.set_delay(0.0, 0.0)
    n_res = client.resolve_all(scn)
    log(f"client stopped; resolved the {n_res} incidents it left open; waiting for the outbox")
    ok, took, left = wait_drained(pg)
    log(f"outbox {'empty' if ok else f'still has {left} unfinished'} after {took:.1f} s")

    R.check(scn, "instances SIGKILLed and restarted", len(kills) >= N_KILLS, len(kills), f">= {N_KILLS}")
    R.check(scn, "instances that exited or failed on their own", not unexpected, len(unexpected), "0")
    for u in unexpected:
        R.note(f"{scn}: {u}")
    acks = client.phase_acks(scn)
    attempts = client.phase_attempts(scn)
    failed = client.phase_failed(scn)
    kinds = {k: sum(1 for a in acks if a["kind"] == k) for k in ("declare", "update", "resolve")}
    retried = sum(1 for a in acks if a["attempts"] > 1)
    replayed = sum(1 for a in acks if a["replayed"])
    R.info(scn, "writes acknowledged (declare/update/resolve)",
           f"{len(acks)} ({kinds['declare']}/{kinds['update']}/{kinds['resolve']})")
    R.info(scn, "acknowledged after a retry with the same key (of which replayed)", f"{retried} ({replayed})")
    conn_errors = sum(1 for a in attempts if a["status"] is None)
    by_status: dict = {}
    for a in attempts:
        by_status[a["status"]] = by_status.get(a["status"], 0) + 1
    R.info(scn, "client attempts by answer", ", ".join(f"{k or 'conn-error'}: {v}" for k, v in
                                                     sorted(by_status.items(), key=lambda kv: str(kv[0]))))
    R.check(scn, "writes never acknowledged (refused or given up)", not failed, len(failed), "0")
    for f in failed[:10]:
        R.note(f"{scn}: write not acknowledged: {f}")
    s500 = [a for a in attempts if a["status"] is not None and a["status"] >= 500]
    R.info(scn, "5xx answers to writes while instances died (retried)", len(s500))
    R.info(scn, "connection errors while instances died (retried elsewhere)", conn_errors)
    R.check(scn, "outbox drained after the kills (s)", ok, f"{took:.1f}" if ok else f"{left} left after {took:.0f}",
            f"<= {DRAIN_BOUND_S:g}")

    db = DbView(pg)
    res = check_deliveries(scn, scn, client, db, sinks)
    views: dict[str, SinkView] = res["views"]
    taken_over = {ch: sum(1 for d in res["phase_deliveries"] if d["channel"] == ch and d["attempts"] > 1)
                  for ch in PUBLIC_CHANNELS}
    R.info(scn, "deliveries claimed again after their worker was killed (attempts > 1)",
           ", ".join(f"{ch}: {n}" for ch, n in taken_over.items()))
    for name, v in views.items():
        resent = v.resent
        explained = [r for r in resent if any(tk - LEASE_S <= r_first(v, r) <= tk + 1.0 for tk, _ in kills)]
        R.check(scn, f"raw re-sends to {name} (same key accepted again)", len(resent) <= len(kills),
                len(resent), f"<= kills ({len(kills)})")
        R.check(scn, f"re-sends to {name} not explained by a kill just after the first send",
                len(explained) == len(resent), len(resent) - len(explained), "0")
        if resent:
            R.note(f"{scn}: {name} re-sends (key, first post, re-send): " + "; ".join(
                f"{r['key']} {iso(r_first(v, r))} {iso(r['t'])}" for r in resent[:20]))
    check_order(scn, views, ["hook-a", "hook-b"])
    check_scheduled(scn, scn, db, views["hook-a"], (t_first, t_last, "while instances were being killed", False),
                    SCHED_LATENESS_BOUND_S, True)
    log(f"{scn}: {len(kills)} kills between {iso(t_first)} and {iso(t_last)} UTC")


def r_first(view: SinkView, rec: dict) -> float:
    return view.posts[rec["key"]]["t"]


def scenario_flaky(pg: Postgres, client: Client, instances: list[Instance], sinks: dict[str, Sink]) -> None:
    scn = "FLAKY"
    sink_b = sinks["hook-b"]
    log(f"== {scn}: hook-b answers 503 then 429 for {FLAKY_SECS:g} s; client ~3 writes/s")
    client.start(scn, rate=3.0)
    time.sleep(5)
    t_f0 = time.time()
    sink_b.set_mode(503)
    log("hook-b now answers 503 with Retry-After: 2")
    time.sleep(FLAKY_SECS * 2 / 3)
    sink_b.set_mode(429)
    log("hook-b now answers 429 (no Retry-After: Candor's own backoff)")
    time.sleep(FLAKY_SECS / 3)
    backlog_max = pg.scalar("SELECT COALESCE(MAX(id), 0) FROM deliveries WHERE channel = 'hook-b'")
    backlog = pg.scalar("SELECT COUNT(*) FROM deliveries WHERE channel = 'hook-b' "
                        "AND state IN ('pending', 'in_flight')")
    t_f1 = time.time()
    sink_b.set_mode(200)
    log(f"hook-b answers 200 again; {backlog} deliveries queued for it")
    ok_b, took_b, left_b = wait_drained(pg, DRAIN_BOUND_S, f"channel = 'hook-b' AND id <= {backlog_max}")
    log(f"hook-b backlog {'delivered' if ok_b else f'NOT delivered ({left_b} left)'} after {took_b:.1f} s")
    time.sleep(max(0.0, t_f1 + 10 - time.time()))
    client.stop()
    n_res = client.resolve_all(scn)
    log(f"client stopped; resolved {n_res} incidents; waiting for the outbox")
    ok, took, left = wait_drained(pg)

    recs_b = [r for r in sink_b.snapshot() if t_f0 <= r["t"] <= t_f1]
    refused = {s: sum(1 for r in recs_b if r["status"] == s) for s in (503, 429)}
    R.info(scn, "hook-b requests refused during the flaky minute (503/429)", f"{refused[503]}/{refused[429]}")
    R.check(scn, "hook-b deliveries queued when it recovered", backlog > 0, backlog, "> 0")
    R.check(scn, "hook-b backlog delivered after recovery (s)", ok_b,
            f"{took_b:.1f}" if ok_b else f"{left_b} left after {took_b:.0f}", f"<= {DRAIN_BOUND_S:g}")
    R.check(scn, "outbox drained at the end (s)", ok, f"{took:.1f}" if ok else f"{left} left", f"<= {DRAIN_BOUND_S:g}")
    failed = client.phase_failed(scn)
    R.check(scn, "writes never acknowledged", not failed, len(failed), "0")
    for f in failed[:10]:
        R.note(f"{scn}: write not acknowledged: {f}")
    acks = client.phase_acks(scn)
    R.info(scn, "writes acknowledged", len(acks))

    db = DbView(pg)
    res = check_deliveries(scn, scn, client, db, sinks)
    views: dict[str, SinkView] = res["views"]
    check_order(scn, views, ["hook-b", "hook-a"])
    for name, v in views.items():
        R.info(scn, f"raw re-sends to {name} (no kills here)", len(v.resent))
    va = views["hook-a"]
    lat = [va.first_post[a["update_id"]] - a["t_ack"] for a in acks
           if t_f0 <= a["t_ack"] <= t_f1 and a["update_id"] in va.first_post]
    p50, p99, worst = pct(lat, 50), pct(lat, 99), max(lat) if lat else float("nan")
    R.check(scn, f"hook-a latency during the flaky minute, p99 (s) [n={len(lat)}, p50 {p50:.3f}, max {worst:.3f}]",
            bool(lat) and p99 < HOOK_A_P99_BOUND_S, f"{p99:.3f}", f"< {HOOK_A_P99_BOUND_S:g}")
    check_scheduled(scn, scn, db, va, None, SCHED_LATENESS_BOUND_S, False)


def scenario_db_down(pg: Postgres, client: Client, instances: list[Instance], sinks: dict[str, Sink]) -> None:
    scn = "DB DOWN"
    if not pg.can_stop:
        R.skip(scn, "PostgreSQL stopped under load", "needs root to stop and start PostgreSQL")
        return
    if DB_DOWN_SECS <= 0:
        R.skip(scn, "PostgreSQL stopped under load", "CHAOS_DB_DOWN_SECS=0")
        return
    log(f"== {scn}: PostgreSQL stopped for {DB_DOWN_SECS:g} s under ~3 writes/s and a reader polling "
        "/ and /api/v2/summary.json on every instance every ~100 ms")
    poller = Poller(instances)
    poller.start()
    client.start(scn, rate=3.0)
    time.sleep(10)
    t_stop0 = time.time()
    pg.stop()
    t_down = time.time()
    log(f"PostgreSQL stopped (took {t_down - t_stop0:.1f} s)")
    time.sleep(DB_DOWN_SECS)
    t_start0 = time.time()
    pg.start()
    t_up = time.time()
    log(f"PostgreSQL back (start took {t_up - t_start0:.1f} s; down {t_up - t_stop0:.1f} s in all)")
    time.sleep(25)
    client.stop()
    time.sleep(2)
    poller.stop()
    n_res = client.resolve_all(scn)
    log(f"client stopped; resolved {n_res} incidents; waiting for the outbox")
    ok, took, left = wait_drained(pg)

    recs = poller.records
    bad = [r for r in recs if r["status"] is None or r["status"] >= 500]
    by_status: dict = {}
    for r in recs:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    R.check(scn, f"status page / v2 JSON answers that were 5xx or failed (of {len(recs)})", not bad, len(bad), "0")
    R.info(scn, "status page / v2 JSON answers by status",
           ", ".join(f"{k or 'conn-error'}: {v}" for k, v in sorted(by_status.items(), key=lambda kv: str(kv[0]))))
    if bad:
        R.note(f"{scn}: page answers that were 5xx or failed: {bad[:10]}")
    during = [r for r in recs if r["path"] == "/" and t_down <= r["t"] <= t_start0]
    noted = [r for r in during if r["note"]]
    noted_insts = sorted({r["inst"] for r in noted})
    first_note = min((r["t"] for r in noted), default=None)
    R.check(scn, "/ showed the 'can't reach our status database' note during the outage",
            bool(noted), f"{len(noted)}/{len(during)} answers, instances {noted_insts}"
            + (f", first {first_note - t_down:.1f} s into it" if first_note else ""), "> 0 answers")
    after = [r for r in recs if r["path"] == "/" and r["t"] > t_up]
    last_note = max((r["t"] for r in after if r["note"]), default=None)
    tail = [r for r in after if r["t"] > t_up + 10]
    tail_noted = [r for r in tail if r["note"]]
    R.check(scn, "/ answers still showing the note 10 s after PostgreSQL was back", bool(tail) and not tail_noted,
            f"{len(tail_noted)}/{len(tail)}" + (f" (last note {last_note - t_up:.1f} s after restart)"
                                                 if last_note else " (note gone at once)"), "0")

    attempts = client.phase_attempts(scn)
    out_att = [a for a in attempts if a["t_send"] >= t_down and a["t_recv"] < t_start0]
    n503 = [a for a in out_att if a["status"] == 503]
    clear = [a for a in n503 if a.get("error_code") == "unavailable" and a.get("error_message")
             and "database" in a["error_message"] and a.get("retry_after")]
    other = [a for a in out_att if a["status"] != 503]
    R.check(scn, "writes during the outage answered 503", bool(out_att) and not other,
            f"{len(n503)}/{len(out_att)}", "all")
    if other:
        R.note(f"{scn}: writes during the outage not answered 503: {other[:10]}")
    msg = n503[0].get("error_message") if n503 else None
    R.check(scn, "503s with a JSON error {code: unavailable, message naming the database} and Retry-After",
            bool(n503) and len(clear) == len(n503), f"{len(clear)}/{len(n503)} (\"{msg}\")", "all")
    s5xx = [a for a in attempts if a["status"] is not None and a["status"] >= 500 and a["status"] != 503]
    R.check(scn, "writes answered another 5xx (500, 502, 504)", not s5xx, len(s5xx), "0")
    if s5xx:
        R.note(f"{scn}: writes answered 5xx other than 503: {s5xx[:10]}")
    rec_times = {}
    for inst in instances:
        oks = [a["t_recv"] for a in attempts if a["inst"] == inst.idx and a["status"] is not None
               and 200 <= a["status"] < 300 and a["t_recv"] >= t_up]
        rec_times[inst.idx] = (min(oks) - t_up) if oks else None
    worst = max((v for v in rec_times.values() if v is not None), default=None)
    R.check(scn, "writes succeed again after PostgreSQL is back, no restart (s, slowest instance)",
            worst is not None and all(v is not None for v in rec_times.values()) and worst <= RECOVERY_BOUND_S,
            f"{worst:.2f}" if worst is not None else "never", f"<= {RECOVERY_BOUND_S:g}")
    R.info(scn, "recovery per instance (s after PostgreSQL accepted connections)",
           ", ".join(f"instance-{k}: {'never' if v is None else f'{v:.2f}'}" for k, v in rec_times.items()))
    failed = client.phase_failed(scn)
    R.check(scn, "writes never acknowledged (retried with their key until 120 s)", not failed, len(failed), "0")
    for f in failed[:10]:
        R.note(f"{scn}: write not acknowledged: {f}")
    R.info(scn, "writes acknowledged (of which after a 503 and a retry)",
           f"{len(client.phase_acks(scn))} ({sum(1 for a in client.phase_acks(scn) if a['attempts'] > 1)})")
    R.check(scn, "outbox drained after recovery (s)", ok, f"{took:.1f}" if ok else f"{left} left",
            f"<= {DRAIN_BOUND_S:g}")

    # Every write acknowledged before the stop, read back through the API after recovery.
    with client.lock:
        before = [a for a in client.acks if a["t_ack"] < t_stop0]
    by_inc: dict[int, set[int]] = {}
    for a in before:
        by_inc.setdefault(a["incident"], set()).add(a["update_id"])
    missing = []
    for n, (inc, uids) in enumerate(sorted(by_inc.items())):
        port = instances[n % len(instances)].port
        status, _h, body = http_call(port, "GET", f"/api/v1/incidents/{inc}",
                                     headers={"Authorization": f"Bearer {client.token}"})
        have = {u["id"] for u in json.loads(body).get("updates", [])} if status == 200 else set()
        missing.extend((inc, u, status) for u in uids if u not in have)
    R.check(scn, f"writes acknowledged before the stop missing afterwards (GET {len(by_inc)} incidents, "
                 f"{len(before)} writes)", not missing, len(missing), "0")
    if missing:
        R.note(f"{scn}: acknowledged before the stop, missing after recovery: {missing[:20]}")

    db = DbView(pg)
    res = check_deliveries(scn, scn, client, db, sinks)
    for name, v in res["views"].items():
        R.info(scn, f"raw re-sends to {name} (outcomes not recorded while the database was down)",
               len(v.resent))
    check_order(scn, res["views"], ["hook-a", "hook-b"])
    check_scheduled(scn, scn, db, res["views"]["hook-a"], (t_stop0, t_up, "fell due while PostgreSQL was down", True),
                    SCHED_LATENESS_BOUND_S, False, outage=(t_stop0, t_up))


# ---------------------------------------------------------------------------------------------


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for f in OUT.iterdir():
        if f.is_file():
            f.unlink()
    started = time.time()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not BIN.exists():
        print(f"{BIN} is missing: run `cargo build --release` (tests/chaos/run.sh does)", file=sys.stderr)
        return 2
    head = run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT).stdout.strip()
    dirty = run(["git", "status", "--porcelain", "--", "src", "migrations", "Cargo.toml"],
                check=False, cwd=ROOT).stdout.strip()
    log(f"candor at {head}{' (with uncommitted changes in src/)' if dirty else ''}; seed {SEED}; "
        f"{os.cpu_count()} cores")
    pg = Postgres(PG_CLUSTER)
    sinks = {"hook-a": Sink("hook-a"), "hook-b": Sink("hook-b")}
    instances: list[Instance] = []
    client: Client | None = None
    try:
        pg.setup()
        conf = make_config(pg, sinks["hook-a"], sinks["hook-b"])
        token = create_token(conf)
        ports = [free_port() for _ in range(3)]
        instances = [Instance(i + 1, p, conf) for i, p in enumerate(ports)]
        for inst in instances:
            inst.start()
        for inst in instances:
            if not inst.wait_healthy(60):
                raise RuntimeError(f"{inst.name} did not come up; see {inst.stderr}")
        log("instances up on ports " + ", ".join(str(p) for p in ports)
            + f"; sinks hook-a :{sinks['hook-a'].port}, hook-b :{sinks['hook-b'].port}")
        _s, _h, body = http_call(ports[0], "GET", "/api/v1/components")
        components = [c["id"] for c in json.loads(body)["components"]]
        client = Client(instances, token, components)

        scenario_kills(pg, client, instances, sinks)
        scenario_flaky(pg, client, instances, sinks)
        scenario_db_down(pg, client, instances, sinks)

        # Across the whole run: every acknowledged write is in the database.
        db = DbView(pg)
        with client.lock:
            acks = list(client.acks)
        gone = [a for a in acks if a["update_id"] not in db.updates]
        R.check("ALL", f"acknowledged writes missing from the database at the end (of {len(acks)})",
                not gone, len(gone), "0")
        for inst in instances:
            if not inst.alive():
                R.check("ALL", f"{inst.name} still running at the end", False, "exited", "running")
        leaked, leaked_text = leaked_span_lines()
        R.check("ALL", "log lines labelled with another delivery's span (a span entered across .await)",
                leaked == 0, leaked_text, "0")
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        import traceback
        traceback.print_exc()
        R.check("RUN", "the chaos run completed", False, f"{type(e).__name__}: {e}", "no error")
    finally:
        if client:
            client.stop_load.set()
        for inst in instances:
            inst.stop()
        if client:
            with client.lock:
                dump = {"acks": client.acks, "failed": client.failed, "attempts": client.attempts}
            (OUT / "client.json").write_text(json.dumps(dump))
            client.pool.shutdown(wait=False, cancel_futures=True)
        for name, s in sinks.items():
            (OUT / f"sink-{name}.json").write_text(json.dumps(s.snapshot()))
            s.close()
        pg.teardown()

    print("\n" + R.table())
    if R.evidence:
        print("\nEvidence:")
        for e in R.evidence:
            print("  - " + e[:2000])
    (OUT / "results.txt").write_text(R.table() + "\n\n" + "\n".join(R.evidence) + "\n")
    passed, failed, skipped = R.counts()
    print(f"\n(chaos run took {time.time() - started:.0f} s; logs in {OUT.relative_to(ROOT)}/)")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
