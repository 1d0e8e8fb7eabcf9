#!/usr/bin/env python3
"""What the PgBouncer that poolwright renders buys a serverless app.

Run through `bench/pooling` (see `bench/pooling --help`). Python 3 standard
library only. Starts a throwaway PostgreSQL 15 (max_connections 100) and, for
two pool sizings, a PgBouncer whose files `poolwright apply` wrote, then runs
pgbench:

  * through the pooler, connect-per-transaction (`-C`, the serverless
    pattern), select-only (`-S`) and TPC-B-like, at 50, 200 and 1000 clients,
    for both sizings: poolwright's recommendation (no pool size in the
    config: 2 x cores + 1) and the seed guide's fixed default_pool_size 20
    (+ reserve_pool_size 5, reserve_pool_timeout 3);
  * the same through the pooler with persistent client connections;
  * directly against PostgreSQL, `-C`, at the same client counts (it runs out
    of connection slots above ~97: counted as aborted clients);
  * directly with persistent connections at a few client counts <= 95,
    keeping the best: the ceiling.

Every run samples pg_stat_activity for the peak number of server backends
and computes p99 latency from pgbench's `-l` per-transaction logs. It prints
one table and writes the raw results as JSON. Every server it started is
stopped at exit, also on Ctrl-C.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVICE_USER = "postgres"
SUPERUSER_PASSWORD = "bench-superuser-pw"
APP_USER = "app"
APP_PASSWORD = "bench-app-pw"
APP_DB = "bench"
PGBOUNCER_BINS = {
    "1.18": "/usr/sbin/pgbouncer",
    "1.24": str(REPO / "target/test-pgbouncer/1.24/bin/pgbouncer"),
}
SCRIPTS = {"select-only": ["-S"], "tpcb-like": []}

IS_ROOT = os.geteuid() == 0
# The app role's server backends: pgbench's direct connections or PgBouncer's
# server connections (the superuser probes are not counted).
BACKENDS_SQL = (f"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                f"AND usename = '{APP_USER}'")
T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def die(msg):
    print(f"bench/pooling: {msg}", file=sys.stderr)
    sys.exit(1)


def as_service(argv):
    """argv run as the postgres user when root (initdb and pg_ctl refuse root)."""
    return ["runuser", "-u", SERVICE_USER, "--", *argv] if IS_ROOT else list(argv)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, what, env=None, check=True, timeout=600):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=env, timeout=timeout)
    if check and p.returncode != 0:
        die(f"{what} failed (exit {p.returncode}):\n{p.stdout}{p.stderr}")
    return p


def pg_bin_dir():
    d = Path("/usr/lib/postgresql/15/bin")
    if (d / "initdb").is_file():
        return d
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
    except FileNotFoundError:
        out = ""
    if out and (Path(out) / "initdb").is_file():
        return Path(out)
    die("PostgreSQL 15 server binaries not found: run scripts/install-test-deps first")


def which(name):
    p = shutil.which(name)
    if not p:
        die(f"{name} not found: run scripts/install-test-deps first")
    return p


class Cleanup:
    """Stops what we started, in reverse order, once."""

    def __init__(self):
        self.actions = []
        self.done = False

    def add(self, fn):
        self.actions.append(fn)

    def run(self):
        if self.done:
            return
        self.done = True
        for fn in reversed(self.actions):
            try:
                fn()
            except Exception as e:  # keep stopping the rest
                print(f"bench/pooling: cleanup: {e}", file=sys.stderr)


CLEANUP = Cleanup()


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------
# PostgreSQL


class Postgres:
    def __init__(self, work, max_connections):
        self.bin = pg_bin_dir()
        self.dir = work / "pg"
        self.dir.mkdir()
        self.data = self.dir / "data"
        pw = self.dir / "superuser.pw"
        pw.write_text(SUPERUSER_PASSWORD)
        if IS_ROOT:
            run(["chown", "-R", f"{SERVICE_USER}:", str(self.dir)], "chown")
        run(as_service([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                        f"--pwfile={pw}"]), "initdb")
        self.log = self.dir / "pg.log"
        for attempt in range(3):
            self.port = free_port()
            # PostgreSQL's defaults (fsync and synchronous_commit on) except the
            # connection limit: a throwaway cluster, but durable commits, as in production.
            opts = (f"-c max_connections={max_connections} -c listen_addresses=127.0.0.1 "
                    f"-p {self.port} -k '{self.dir}' -c password_encryption=scram-sha-256")
            p = run(as_service([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                                "-w", "-t", "60", "-o", opts, "start"]), "pg_ctl start", check=False)
            if p.returncode == 0:
                CLEANUP.add(self.stop)
                return
            text = self.log.read_text() if self.log.exists() else ""
            if "could not bind" not in text or attempt == 2:
                die(f"pg_ctl start failed:\n{p.stdout}{p.stderr}\n--- pg.log ---\n{text}")

    def stop(self):
        log("stopping PostgreSQL")
        subprocess.run(as_service([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                                   "-t", "30", "stop"]),
                       stdin=subprocess.DEVNULL, capture_output=True)

    def postmaster_pid(self):
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def env(self, user=None):
        env = dict(os.environ)
        env["PGPASSWORD"] = SUPERUSER_PASSWORD if user in (None, "postgres") else APP_PASSWORD
        env["PGCONNECT_TIMEOUT"] = "10"
        return env

    def psql(self, sql, db="postgres"):
        p = run([which("psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                 "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql],
                f"psql: {sql}", env=self.env())
        return p.stdout.strip()

    def client_backends(self):
        return int(self.psql(BACKENDS_SQL))

    def wait_idle(self, timeout=60):
        """Waits until no client backend but ours is left (backends exit asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.client_backends()
            if n == 0:
                return
            if time.monotonic() > deadline:
                die(f"{n} client backends still connected {timeout} s after the run")
            time.sleep(0.2)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def read_procs():
    """{pid: (ppid, comm, utime+stime ticks)} for every process."""
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        procs[int(entry)] = (int(fields[1]), comm, int(fields[11]) + int(fields[12]))
    return procs


class ProcWatch:
    """CPU used by processes that are not this benchmark's (another build or
    test run on the same machine), so that disturbed runs are flagged, and
    runs can wait for a quiet machine. Ours: this process and its
    descendants (pgbench, PgBouncer, psql), and the postmaster and its
    backends."""

    def __init__(self, postmaster_pid):
        self.roots = {os.getpid(), postmaster_pid}
        self.base = {}
        self.last = {}
        self.names = {}

    def foreign(self, procs):
        children = {}
        for pid, (ppid, _, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        ours, todo = set(), [r for r in self.roots if r in procs]
        while todo:
            pid = todo.pop()
            if pid not in ours:
                ours.add(pid)
                todo.extend(children.get(pid, ()))
        return {pid: (comm, ticks) for pid, (_, comm, ticks) in procs.items() if pid not in ours}

    def begin(self):
        self.base = {pid: t for pid, (_, t) in self.foreign(read_procs()).items()}
        self.last = dict(self.base)
        self.names = {}
        self.t0 = time.monotonic()

    def sample(self):
        for pid, (comm, ticks) in self.foreign(read_procs()).items():
            self.last[pid] = ticks
            self.names[pid] = comm

    def end(self):
        """(average cores used by other processes since begin(), top names)."""
        self.sample()
        wall = max(time.monotonic() - self.t0, 1e-3)
        by_name = {}
        for pid, ticks in self.last.items():
            d = ticks - self.base.get(pid, 0)
            if d > 0:
                name = self.names.get(pid, "?")
                by_name[name] = by_name.get(name, 0) + d
        total = sum(by_name.values()) / CLK_TCK / wall
        top = sorted(by_name.items(), key=lambda kv: -kv[1])[:3]
        return round(total, 3), [f"{n} {d / CLK_TCK / wall:.2f}" for n, d in top]

    def wait_quiet(self, threshold, max_wait):
        """Waits (up to max_wait s) until other processes use < threshold cores over 2 s."""
        start = time.monotonic()
        deadline = start + max_wait
        announced = False
        while True:
            self.begin()
            for _ in range(8):
                time.sleep(0.25)
                self.sample()
            cores, top = self.end()
            if cores < threshold:
                return round(time.monotonic() - start, 1)
            if time.monotonic() > deadline:
                log(f"machine still busy after {max_wait} s ({cores:.2f} cores: {', '.join(top)}); running anyway")
                return round(time.monotonic() - start, 1)
            if not announced:
                log(f"waiting for a quiet machine: other processes use {cores:.2f} cores ({', '.join(top)})")
                announced = True


class BackendSampler:
    """Samples the number of client backends every 100 ms over one persistent
    superuser connection (it takes a superuser-reserved slot, so it keeps
    working when the app role has used up every other slot)."""

    QUERY = BACKENDS_SQL + ";\n"

    def __init__(self, pg, watch):
        self.watch = watch
        self.proc = subprocess.Popen(
            [which("psql"), "-X", "-A", "-t", "-q", "-h", "127.0.0.1", "-p", str(pg.port),
             "-U", "postgres", "-d", "postgres"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1, env=pg.env())
        self.lock = threading.Lock()
        self.peak = None
        self.samples = 0
        self.stopped = False
        self.error = None
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        CLEANUP.add(self.stop)

    def loop(self):
        try:
            while not self.stopped:
                self.proc.stdin.write(self.QUERY)
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError("the sampler's psql exited")
                n = int(line.strip())
                with self.lock:
                    if self.peak is not None:
                        self.peak = max(self.peak, n)
                        self.samples += 1
                        if self.samples % 5 == 0:
                            self.watch.sample()
                time.sleep(0.1)
        except Exception as e:
            if not self.stopped:
                self.error = str(e)

    def begin(self):
        with self.lock:
            self.watch.begin()
            self.peak = 0
            self.samples = 0

    def end(self):
        with self.lock:
            peak, samples = self.peak, self.samples
            self.peak = None
            self.other = self.watch.end()
        if self.error:
            die(f"backend sampler failed: {self.error}")
        return peak, samples

    def stop(self):
        self.stopped = True
        try:
            self.proc.stdin.close()
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------
# poolwright and PgBouncer


def build_poolwright(args):
    if args.poolwright:
        path = Path(args.poolwright).resolve()
        if not path.is_file():
            die(f"--poolwright {path}: no such file")
        return path, "given"
    cargo = shutil.which("cargo")
    if not cargo:
        die("cargo not found: install Rust, or pass --poolwright BIN")
    profile = "debug" if args.debug_build else "release"
    cmd = [cargo, "build", "--locked", "--quiet"] + ([] if args.debug_build else ["--release"])
    log(f"building poolwright ({profile}): {' '.join(cmd[1:])}")
    p = subprocess.run(cmd, cwd=REPO, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        die("cargo build failed")
    return REPO / "target" / profile / "poolwright", profile


SIZINGS = {
    # poolwright's own choice: no pool size in the config.
    "recommended": {},
    # The seed guide (examples/automatch-books/poolwright.yaml).
    "fixed-20": {"default_pool_size": 20, "reserve_pool_size": 5, "reserve_pool_timeout": 3},
}


class Bouncer:
    """One sizing: its poolwright.yaml, the files `poolwright apply` writes,
    and a PgBouncer started from them for each run."""

    def __init__(self, work, name, extra, pg, poolwright, bin_path, version, cores):
        self.name = name
        self.dir = work / f"pgbouncer-{name}"
        self.etc = self.dir / "etc"
        self.rundir = self.dir / "run"
        for d in (self.etc, self.rundir, self.dir / "systemd"):
            d.mkdir(parents=True)
        self.port = free_port()
        self.bin = bin_path
        self.poolwright = poolwright
        self.pg = pg
        self.proc = None
        pgb = {
            "listen_addr": "127.0.0.1",
            "listen_port": self.port,
            "unix_socket_dir": str(self.rundir),
            "pidfile": str(self.rundir / "pgbouncer.pid"),
            "max_client_conn": 2000,
            "pool_mode": "transaction",
            **extra,
        }
        pgb_yaml = ", ".join(f"{k}: {json.dumps(v)}" for k, v in pgb.items())
        self.config = self.dir / "poolwright.yaml"
        self.config.write_text(f"""\
# bench/pooling, sizing `{name}`
version: 1
targets:
  bench:
    provider: pgbouncer
    version: "{version}"
    upstream: {{ host: 127.0.0.1, port: {pg.port}, max_connections: 100, cores: {cores} }}
    public_host: 127.0.0.1
    config_dir: {self.etc}
    databases: {{ {APP_DB}: {{}} }}
    users: {{ {APP_USER}: {{ password: "${{POOLWRIGHT_BENCH_PASSWORD}}" }} }}
    systemd: {{ unit_dir: {self.dir / 'systemd'}, user: {SERVICE_USER}, group: {SERVICE_USER} }}
    pgbouncer: {{ {pgb_yaml} }}
""")
        if IS_ROOT:
            run(["chown", "-R", f"{SERVICE_USER}:", str(self.dir)], "chown")
        plan = self.pw("plan")
        self.plan_note = next((l.strip() for l in plan.splitlines() if "default_pool_size" in l), None)
        self.budget = [l.strip() for l in plan.splitlines() if l.strip().startswith("budget")]
        self.apply()
        ini = (self.etc / "pgbouncer.ini").read_text()
        self.ini_settings = dict(re.findall(r"^(default_pool_size|reserve_pool_size|reserve_pool_timeout|"
                                            r"max_client_conn|pool_mode)\s*=\s*(\S+)", ini, re.M))
        self.pool_size = int(self.ini_settings["default_pool_size"])
        self.reserve = int(self.ini_settings.get("reserve_pool_size", 0))

    def pw(self, *argv):
        env = dict(os.environ, POOLWRIGHT_BENCH_PASSWORD=APP_PASSWORD)
        p = run([str(self.poolwright), "--config", str(self.config), *argv],
                f"poolwright {' '.join(argv)}", env=env)
        return p.stdout + p.stderr

    def apply(self):
        # Stores this userlist's SCRAM verifier on the server (the other
        # sizing's apply replaced it), so PgBouncer can log in with it.
        self.apply_output = self.pw("apply")

    def start(self):
        self.apply()
        self.log_path = self.dir / "pgbouncer.log"
        logf = open(self.log_path, "a")
        argv = []
        if IS_ROOT:
            # setpriv execs in place and keeps the raised fd limit; runuser's
            # PAM session would reset the soft limit to 1024.
            argv = ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups"]
        argv += [self.bin, str(self.etc / "pgbouncer.ini")]
        self.proc = subprocess.Popen(
            ["sh", "-c", 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
             "sh", *argv],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        logf.close()
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                die(f"pgbouncer exited ({self.proc.returncode}) before listening:\n{self.log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    die(f"pgbouncer not listening on port {self.port} after 10 s")
                time.sleep(0.05)
        self.nofile = None
        try:
            for line in Path(f"/proc/{self.proc.pid}/limits").read_text().splitlines():
                if line.startswith("Max open files"):
                    self.nofile = int(line.split()[3])
        except (OSError, ValueError, IndexError):
            pass

    def cpu_seconds(self):
        try:
            text = Path(f"/proc/{self.proc.pid}/stat").read_text()
            fields = text[text.rindex(")") + 2:].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, ValueError, AttributeError):
            return None

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.send_signal(signal.SIGTERM)  # fast exit: closes its server connections
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def pgbouncer_version(bin_path):
    p = subprocess.run([bin_path, "-V"], capture_output=True, text=True)
    return p.stdout.splitlines()[0] if p.returncode == 0 and p.stdout else None


# --------------------------------------------------------------------------
# pgbench


ABORTED_RE = re.compile(r"client (\d+) aborted")
CONN_FAIL_RE = re.compile(r"could not create connection for client (\d+)")


def percentile(sorted_values, q):
    """Nearest-rank percentile."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 1)) - 1))
    return sorted_values[k]


def read_latencies(prefix, started_us):
    """From pgbench's -l logs (`client_id transaction_no time script_no
    time_epoch time_us`, one file per thread): each transaction's latency in
    microseconds (`time`: pgbench starts it after connecting, so under -C it
    excludes the connection), and each call's latency: the time from the
    client's previous transaction end (or the start of the run) to this
    transaction's end, which under -C covers disconnect + connect + the
    transaction, what a serverless function waits for."""
    txn, ends = [], {}
    for path in glob.glob(f"{prefix}.*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and parts[2].isdigit():
                    txn.append(int(parts[2]))
                    ends.setdefault(parts[0], []).append(int(parts[4]) * 1_000_000 + int(parts[5]))
        os.unlink(path)
    calls = []
    for times in ends.values():
        times.sort()
        prev = started_us
        for t in times:
            calls.append(t - prev)
            prev = t
    txn.sort()
    calls.sort()
    return txn, calls


def ms(us):
    return None if us is None else round(us / 1000, 3)


def pgbench(args, port, clients, script, per_txn, logdir, label):
    prefix = str(logdir / f"log-{label}")
    argv = [which("pgbench"), "-n", "-h", "127.0.0.1", "-p", str(port), "-U", APP_USER,
            "-c", str(clients), "-j", str(min(args.jobs, clients)), "-T", str(args.duration),
            "-l", f"--log-prefix={prefix}", *SCRIPTS[script]]
    if per_txn:
        argv.append("-C")
    argv.append(APP_DB)
    env = dict(os.environ, PGPASSWORD=APP_PASSWORD, PGCONNECT_TIMEOUT="10")
    started = time.monotonic()
    started_us = int(time.time() * 1_000_000)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                           timeout=args.duration + 180)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", (e.stdout or b"").decode(errors="replace"), (e.stderr or b"").decode(errors="replace")
    wall = time.monotonic() - started
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    pgbench_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    text = out + err

    def num(pattern):
        m = re.search(pattern, text)
        return float(m.group(1)) if m else None

    aborted = set(ABORTED_RE.findall(text)) | set(CONN_FAIL_RE.findall(text))
    lat, calls = read_latencies(prefix, started_us)
    processed = num(r"number of transactions actually processed: (\d+)")
    tps = num(r"tps = ([\d.]+)")
    failed_start = rc == 1  # pgbench could not open its initial connections: nothing ran
    if failed_start:
        tps = 0.0
        # pgbench stops at the first client that cannot connect; every client counts as failed.
        aborted_n = clients
    else:
        aborted_n = len(aborted)
    errors = [l for l in err.splitlines() if "error" in l.lower() or "fatal" in l.lower()]
    return {
        "exit_code": rc,
        "wall_s": round(wall, 2),
        "tps": tps,
        "transactions": int(processed) if processed is not None else None,
        "failed_transactions": num(r"number of failed transactions: (\d+)"),
        "latency_avg_ms": num(r"latency average = ([\d.]+) ms"),
        # From the -l logs: the transaction alone, and the whole call (see read_latencies).
        "txn_latency_avg_ms": ms(sum(lat) / len(lat)) if lat else None,
        "txn_latency_p50_ms": ms(percentile(lat, 0.50)),
        "txn_latency_p99_ms": ms(percentile(lat, 0.99)),
        "call_latency_avg_ms": ms(sum(calls) / len(calls)) if calls else None,
        "call_latency_p99_ms": ms(percentile(calls, 0.99)),
        "logged_transactions": len(lat),
        "connection_time_avg_ms": num(r"average connection time = ([\d.]+) ms"),
        "pgbench_cpu_cores": round(pgbench_cpu / wall, 3),
        "aborted_clients": aborted_n,
        "failed": rc != 0,
        "first_errors": errors[:3],
        "error_lines": len(errors),
        "argv": argv[1:],
        "output_tail": (out[-1500:] + ("\n--- stderr ---\n" + "\n".join(err.splitlines()[-15:]) if err else "")),
    }


# --------------------------------------------------------------------------
# the table


def fmt(v, spec="{:.0f}", none="-"):
    return none if v is None else spec.format(v)


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


LEGEND = """\
  lat avg: pgbench's `latency average` (clients x duration / transactions: under -C it includes connecting).
  p99 txn: 99th percentile of the transaction alone, from pgbench -l logs (pgbench starts the clock after connecting).
  p99 call: 99th percentile of a whole call from the same logs: disconnect + connect + transaction under -C.
  conn ms: pgbench's `average connection time` (-C). peak backends: the app role's server backends, sampled every 100 ms.
  failed conns: clients pgbench aborted (`client N aborted`), or all of them when it could not open its
  connections at start (exit 1: nothing ran); exit 2 = some clients aborted.
  CPU bench/bouncer: cores used by pgbench and by PgBouncer during the run (PostgreSQL gets the rest of the machine).
  other CPU: cores used by processes outside this benchmark during the run; `!` marks a disturbed run.
  pooled/direct: pooled TPS / direct -C TPS at the same client count; pooled/ceiling: / the best direct persistent run."""


def print_table(results, ceilings, quiet, out=sys.stdout):
    head = ["script", "path", "connect", "clients", "TPS", "lat avg ms", "p99 txn ms", "p99 call ms", "conn ms",
            "failed conns", "exit", "peak backends", "CPU bench/bouncer", "other CPU", "pooled/direct",
            "pooled/ceiling"]
    rows = []
    direct = {(r["script"], r["clients"]): r for r in results if r["path"] == "direct" and r["per_txn"]}
    for r in results:
        c = ceilings.get(r["script"])
        vs_direct = vs_ceiling = None
        if r["path"].startswith("pgbouncer"):
            d = direct.get((r["script"], r["clients"])) if r["per_txn"] else None
            vs_direct = ratio(r["tps"], d["tps"]) if d else None
            vs_ceiling = ratio(r["tps"], c["tps"]) if c else None
        path = r["path"]
        if r.get("is_ceiling"):
            path += " = CEILING"
        failed = f"{r['aborted_clients']}/{r['clients']}" if r["aborted_clients"] else "0"
        rows.append([
            r["script"], path, "per txn" if r["per_txn"] else "persistent", str(r["clients"]),
            fmt(r["tps"]), fmt(r["latency_avg_ms"], "{:.1f}"), fmt(r["txn_latency_p99_ms"], "{:.1f}"),
            fmt(r["call_latency_p99_ms"], "{:.1f}"),
            fmt(r["connection_time_avg_ms"], "{:.2f}"), failed, str(r["exit_code"]),
            fmt(r["peak_backends"], "{}"),
            f"{r['pgbench_cpu_cores']:.2f}/{fmt(r.get('pgbouncer_cpu_cores'), '{:.2f}')}",
            f"{r['other_cpu_cores']:.2f}" + (" !" if r["other_cpu_cores"] >= quiet else ""),
            fmt(vs_direct, "{:.2f}x"), fmt(vs_ceiling, "{:.2f}x"),
        ])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |"
    print(line, file=out)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    for row in rows:
        print("| " + " | ".join(v.rjust(w) if i >= 3 else v.ljust(w)
                                for i, (v, w) in enumerate(zip(row, widths))) + " |", file=out)


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(
        prog="bench/pooling",
        description="Benchmark a poolwright-rendered PgBouncer against direct PostgreSQL connections "
                    "(pgbench, serverless connect-per-transaction pattern).")
    ap.add_argument("--quick", action="store_true",
                    help="a short run: -T 3, 50 and 1000 clients, two ceiling counts (~2 min)")
    ap.add_argument("--duration", "-T", type=int, help="seconds per pgbench run (default 10, quick 3)")
    ap.add_argument("--clients", help="client counts, comma-separated (default 50,200,1000)")
    ap.add_argument("--ceiling-clients",
                    help="direct persistent client counts to find the ceiling (default 5,10,20,40,90)")
    ap.add_argument("--scripts", default="select-only,tpcb-like",
                    help="pgbench scripts: select-only, tpcb-like (default both)")
    ap.add_argument("--no-persistent-pooled", action="store_true",
                    help="skip the pooled runs with persistent client connections")
    ap.add_argument("--scale", type=int, default=10, help="pgbench -i scale factor (default 10)")
    ap.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 2,
                    help="pgbench threads (default: nproc)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2,
                    help="upstream.cores in the poolwright config (default: nproc, PostgreSQL runs here)")
    ap.add_argument("--pgbouncer-version", choices=sorted(PGBOUNCER_BINS), default="1.18",
                    help="1.18: Debian's /usr/sbin/pgbouncer; 1.24: the build of scripts/install-test-deps")
    ap.add_argument("--quiet", type=float, default=0.1,
                    help="other processes may use this many cores during a run before it is flagged, "
                         "and each run first waits for that (default 0.1)")
    ap.add_argument("--max-wait", type=float, default=600,
                    help="seconds to wait for a quiet machine before each run (0: never wait; default 600)")
    ap.add_argument("--poolwright", help="use this poolwright binary instead of building one")
    ap.add_argument("--debug-build", action="store_true",
                    help="build and use a debug poolwright (default: cargo build --release)")
    ap.add_argument("--json", default=str(REPO / "target/bench/pooling.json"),
                    help="where to write the raw results (default target/bench/pooling.json)")
    ap.add_argument("--markdown", help="also write the table (and setup) as markdown to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs) for inspection")
    args = ap.parse_args()

    args.duration = args.duration or (3 if args.quick else 10)
    clients = [int(c) for c in (args.clients or ("50,1000" if args.quick else "50,200,1000")).split(",")]
    ceiling_clients = [int(c) for c in (args.ceiling_clients or ("10,40" if args.quick else "5,10,20,40,90")).split(",")]
    scripts = [s.strip() for s in args.scripts.split(",")]
    for s in scripts:
        if s not in SCRIPTS:
            die(f"unknown script {s!r}: choose from {', '.join(SCRIPTS)}")
    if any(c > 95 for c in ceiling_clients):
        die("--ceiling-clients must stay <= 95 (max_connections 100 - 3 superuser slots - the sampler)")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    # pgbench needs a descriptor per client.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(clients) + 512
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(want, 65536), hard) if hard != resource.RLIM_INFINITY else 65536, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < want:
        die(f"the fd limit ({hard}) is too low for {max(clients)} pgbench clients")

    for tool in ("pgbench", "psql"):
        which(tool)
    pgb_bin = PGBOUNCER_BINS[args.pgbouncer_version]
    if not Path(pgb_bin).is_file():
        pgb_bin = shutil.which("pgbouncer") if args.pgbouncer_version == "1.18" else None
    if not pgb_bin:
        die(f"no PgBouncer {args.pgbouncer_version}: run scripts/install-test-deps first")
    if IS_ROOT and subprocess.run(["id", SERVICE_USER], capture_output=True).returncode != 0:
        die(f"running as root but there is no `{SERVICE_USER}` user to run the servers as")

    poolwright, profile = build_poolwright(args)
    work = Path(tempfile.mkdtemp(prefix="poolwright-bench.", dir="/tmp" if IS_ROOT else None))
    os.chmod(work, 0o755)
    if not args.keep:
        CLEANUP.add(lambda: shutil.rmtree(work, ignore_errors=True))
    started_at = datetime.datetime.now(datetime.timezone.utc)
    try:
        return bench(args, work, poolwright, profile, pgb_bin, clients, ceiling_clients, scripts, started_at)
    finally:
        CLEANUP.run()
        if args.keep:
            log(f"work dir kept: {work}")


def bench(args, work, poolwright, profile, pgb_bin, clients, ceiling_clients, scripts, started_at):
    loadavg_before = Path("/proc/loadavg").read_text().split()[:3]
    logdir = work / "pgbench-logs"
    logdir.mkdir()
    log(f"starting PostgreSQL 15 (max_connections 100) in {work}")
    pg = Postgres(work, 100)
    pg.psql(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'")
    pg.psql(f"CREATE DATABASE {APP_DB} OWNER {APP_USER}")
    log(f"pgbench -i -s {args.scale}")
    run([which("pgbench"), "-i", "-q", "-s", str(args.scale), "-h", "127.0.0.1", "-p", str(pg.port),
         "-U", APP_USER, APP_DB], "pgbench -i", env=pg.env(APP_USER))
    server_version = pg.psql("SHOW server_version")

    bouncers = []
    for name, extra in SIZINGS.items():
        b = Bouncer(work, name, extra, pg, poolwright, pgb_bin, args.pgbouncer_version, args.cores)
        CLEANUP.add(b.stop)
        log(f"sizing {name}: default_pool_size {b.pool_size}, reserve_pool_size {b.reserve} "
            f"({b.plan_note or 'set in the config'})")
        bouncers.append(b)
    watch = ProcWatch(pg.postmaster_pid())
    sampler = BackendSampler(pg, watch)

    results = []

    def cell(script, path, per_txn, n, bouncer=None):
        label = f"{script}-{path}-{'C' if per_txn else 'P'}-{n}"
        pg.wait_idle()
        pg.psql("CHECKPOINT")
        waited = watch.wait_quiet(args.quiet, args.max_wait) if args.max_wait > 0 else 0
        if bouncer:
            bouncer.start()
            cpu0 = bouncer.cpu_seconds()
        sampler.begin()
        r = pgbench(args, bouncer.port if bouncer else pg.port, n, script, per_txn, logdir, label)
        peak, samples = sampler.end()
        other, other_top = sampler.other
        if bouncer:
            cpu1 = bouncer.cpu_seconds()
            r["pgbouncer_nofile"] = bouncer.nofile
            r["pgbouncer_cpu_cores"] = (round((cpu1 - cpu0) / r["wall_s"], 3)
                                        if None not in (cpu0, cpu1) else None)
            bouncer.stop()
        r.update(script=script, path=path, per_txn=per_txn, clients=n, peak_backends=peak,
                 backend_samples=samples, other_cpu_cores=other, other_cpu_top=other_top,
                 waited_for_quiet_s=waited)
        if bouncer:
            r.update(default_pool_size=bouncer.pool_size, reserve_pool_size=bouncer.reserve)
        results.append(r)
        log(f"{label}: tps {fmt(r['tps'])}, avg {fmt(r['latency_avg_ms'], '{:.1f}')} ms, "
            f"p99 txn {fmt(r['txn_latency_p99_ms'], '{:.1f}')} ms, "
            f"p99 call {fmt(r['call_latency_p99_ms'], '{:.1f}')} ms, aborted {r['aborted_clients']}, "
            f"exit {r['exit_code']}, peak backends {peak}, CPU pgbench {r['pgbench_cpu_cores']:.2f} "
            f"pgbouncer {fmt(r.get('pgbouncer_cpu_cores'), '{:.2f}')} other {other:.2f}"
            + (f" ({', '.join(other_top)})" if other >= args.quiet else ""))
        return r

    def pooled_path(b):
        return f"pgbouncer {b.name} (pool {b.pool_size}+{b.reserve})"

    ceilings = {}
    for script in scripts:
        # The ceiling: the server alone, persistent connections, best client count.
        best = None
        for n in ceiling_clients:
            r = cell(script, "direct", False, n)
            if r["tps"] and not r["failed"] and (best is None or r["tps"] > best["tps"]):
                best = r
        if best:
            best["is_ceiling"] = True
            ceilings[script] = best
        # The serverless pattern, and the pooler with persistent clients.
        # The two sizings alternate which goes first, so drift hits both alike.
        for i, n in enumerate(clients):
            cell(script, "direct", True, n)
            order = bouncers if i % 2 == 0 else list(reversed(bouncers))
            for b in order:
                cell(script, pooled_path(b), True, n, b)
            # 1000 persistent clients need ~4 s to log in through PgBouncer
            # (SCRAM in pgbench): short runs would measure only that.
            if not args.no_persistent_pooled and not (args.duration < 6 and n > 200):
                for b in reversed(order):
                    cell(script, pooled_path(b), False, n, b)

    # Order the table: per script, ceiling candidates, then per client count.
    def key(r):
        kind = 0 if (r["path"] == "direct" and not r["per_txn"]) else 1
        return (scripts.index(r["script"]), kind, not r["per_txn"], r["clients"],
                r["path"] != "direct", r["path"])
    results.sort(key=key)

    finished_at = datetime.datetime.now(datetime.timezone.utc)
    git = (subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                          capture_output=True, text=True).stdout.strip()
           if profile != "given" else "(given binary)")
    meta = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "runtime_s": round((finished_at - started_at).total_seconds(), 1),
        "machine": {
            "nproc": os.cpu_count(),
            "mem_total_kb": next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), None),
            "kernel": platform.release(),
            "os": next((l.split("=", 1)[1].strip().strip('"') for l in open("/etc/os-release")
                        if l.startswith("PRETTY_NAME=")), None),
        },
        "postgresql": server_version,
        "postgresql_settings": {"max_connections": 100, "fsync": "on", "synchronous_commit": "on",
                                "shared_buffers": pg.psql("SHOW shared_buffers")},
        "pgbouncer": pgbouncer_version(pgb_bin),
        "pgbench": run([which("pgbench"), "--version"], "pgbench --version").stdout.strip(),
        "poolwright": {"binary": str(poolwright), "profile": profile, "git": git,
                       "version": run([str(poolwright), "--version"], "poolwright --version").stdout.strip()},
        "loadavg_before": loadavg_before,
        "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
        "duration_s": args.duration,
        "scale": args.scale,
        "jobs": args.jobs,
        "upstream_cores": args.cores,
        "sizings": {b.name: {"default_pool_size": b.pool_size, "reserve_pool_size": b.reserve,
                             "ini": b.ini_settings, "plan_note": b.plan_note, "plan_budget": b.budget}
                    for b in bouncers},
        "ceiling": {s: {"clients": c["clients"], "tps": c["tps"]} for s, c in ceilings.items()},
        "quick": args.quick,
    }
    jpath = Path(args.json)
    jpath.parent.mkdir(parents=True, exist_ok=True)
    jpath.write_text(json.dumps({"meta": meta, "runs": results}, indent=2) + "\n")

    print()
    print(f"poolwright pooling benchmark: PostgreSQL {server_version} (max_connections 100), "
          f"{meta['pgbouncer']}, pgbench -T {args.duration} -j {args.jobs}, scale {args.scale}, "
          f"{os.cpu_count()} cores; poolwright {profile} build {git}")
    for b in bouncers:
        print(f"  {b.name}: default_pool_size {b.pool_size}, reserve_pool_size {b.reserve}"
              + (f"  [plan: {b.plan_note}]" if b.plan_note else "  [set in the config]"))
    print(LEGEND)
    print()
    print_table(results, ceilings, args.quiet)
    print()
    print(f"raw results: {jpath}   runtime: {meta['runtime_s']:.0f} s")
    if args.markdown:
        import io
        buf = io.StringIO()
        print_table(results, ceilings, args.quiet, out=buf)
        Path(args.markdown).write_text(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
