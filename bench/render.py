#!/usr/bin/env python3
"""poolwright's own cost on a large config.

Run through `bench/render` (see `bench/render --help`). Python 3 standard
library only. Generates configs with D databases x U users (each user with a
password from its own environment variable, so `render` computes a SCRAM
verifier per user), then measures, per config:

  * `poolwright render --out DIR`, first run (DIR empty: a new verifier per user);
  * the same again (it reuses the verifiers in DIR/userlist.txt after checking
    that each still matches its password);
  * `poolwright url TARGET` (no verifiers needed);
  * `poolwright validate` (what CI runs);

each once under `/usr/bin/time -v` (wall time, CPU time, peak RSS) and, when
hyperfine is there (it is installed with apt when missing and root), with
hyperfine too. The upstream has no max_connections, so the budget check does
not refuse the 1,000,000 (database, user) pools; poolwright still counts them.
Prints one table and writes JSON.
"""

import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def die(msg):
    print(f"bench/render: {msg}", file=sys.stderr)
    sys.exit(1)


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
    if subprocess.run(cmd, cwd=REPO, stdin=subprocess.DEVNULL).returncode != 0:
        die("cargo build failed")
    return REPO / "target" / profile / "poolwright", profile


def ensure_hyperfine(allow_install):
    path = shutil.which("hyperfine")
    if path or not allow_install:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log("hyperfine not found (not root or no apt-get): /usr/bin/time only")
        return None
    log("hyperfine not found: apt-get install hyperfine")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    p = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "hyperfine"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], stdin=subprocess.DEVNULL, capture_output=True, env=env)
        p = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "hyperfine"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        log(f"apt-get install hyperfine failed: /usr/bin/time only\n{p.stderr.strip()}")
        return None
    return shutil.which("hyperfine")


def password_var(i):
    return f"POOLWRIGHT_BENCH_PW_{i:04d}"


def write_config(path, databases, users, config_dir):
    lines = [
        f"# bench/render: {databases} databases x {users} users = {databases * users} pools",
        "version: 1",
        "targets:",
        "  big:",
        "    provider: pgbouncer",
        '    version: "1.18"',
        # No max_connections: 1,000,000 pools cannot fit any PostgreSQL (262143 at most).
        "    upstream: { host: 127.0.0.1, port: 5432, cores: 2 }",
        "    public_host: 127.0.0.1",
        f"    config_dir: {config_dir}",
        "    databases:",
    ]
    lines += [f"      db{i:04d}: {{}}" for i in range(databases)]
    lines.append("    users:")
    lines += [f'      u{i:04d}: {{ password: "${{{password_var(i)}}}" }}' for i in range(users)]
    lines.append("    pgbouncer: { listen_port: 6432, max_client_conn: 5000 }")
    path.write_text("\n".join(lines) + "\n")


TIME_FIELDS = {
    "wall": r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)",
    "user_s": r"User time \(seconds\): ([\d.]+)",
    "sys_s": r"System time \(seconds\): ([\d.]+)",
    "max_rss_kb": r"Maximum resident set size \(kbytes\): (\d+)",
    "cpu_percent": r"Percent of CPU this job got: (\d+)%",
}


def parse_wall(text):
    parts = [float(p) for p in text.split(":")]
    s = 0.0
    for p in parts:
        s = s * 60 + p
    return s


def time_v(argv, env, prepare=None):
    """One run under /usr/bin/time -v."""
    if prepare:
        prepare()
    p = subprocess.run(["/usr/bin/time", "-v", *argv], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, env=env)
    # poolwright reports what it wrote on stderr, before time's own report.
    out = {"exit_code": p.returncode, "stdout": p.stdout[-2000:],
           "messages": p.stderr.split("\tCommand being timed:")[0][-4000:]}
    for key, pattern in TIME_FIELDS.items():
        m = re.search(pattern, p.stderr)
        out[key] = m.group(1) if m else None
    out["wall_s"] = parse_wall(out.pop("wall")) if out["wall"] else None
    for key in ("user_s", "sys_s"):
        out[key] = float(out[key]) if out[key] else None
    out["max_rss_kb"] = int(out["max_rss_kb"]) if out["max_rss_kb"] else None
    out["cpu_percent"] = int(out["cpu_percent"]) if out["cpu_percent"] else None
    if p.returncode != 0:
        out["stderr"] = p.stderr[-3000:]
    return out


def hyperfine_runs(seconds, budget):
    """Runs that fit about `budget` seconds: at least 2, at most 10."""
    return max(2, min(10, int(budget / max(seconds, 0.001))))


def hyperfine(bin_path, argv, env, runs, prepare, work, label):
    export = work / f"hyperfine-{label}.json"
    cmd = [bin_path, "--style", "basic", "--runs", str(runs), "--export-json", str(export)]
    if prepare:
        cmd += ["--prepare", prepare]
    cmd += ["--", shlex.join(argv)]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return {"error": (p.stdout + p.stderr)[-2000:]}
    r = json.loads(export.read_text())["results"][0]
    return {k: r.get(k) for k in ("mean", "stddev", "median", "min", "max", "user", "system")} | {"runs": runs}


def main():
    ap = argparse.ArgumentParser(prog="bench/render",
                                 description="Time poolwright render/url/validate on large configs.")
    ap.add_argument("--sizes", help="DATABASESxUSERS, comma-separated "
                                    "(default 1x1000,100x100,300x300,1000x1000)")
    ap.add_argument("--quick", action="store_true", help="sizes 1x1000,100x100,300x300 only")
    ap.add_argument("--no-hyperfine", action="store_true", help="only /usr/bin/time -v")
    ap.add_argument("--hyperfine-budget", type=float, default=20,
                    help="seconds of hyperfine runs to aim for per command (>= 2 runs; default 20)")
    ap.add_argument("--poolwright", help="use this poolwright binary instead of building one")
    ap.add_argument("--debug-build", action="store_true",
                    help="build and use a debug poolwright (default: cargo build --release)")
    ap.add_argument("--json", default=str(REPO / "target/bench/render.json"),
                    help="where to write the raw results (default target/bench/render.json)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (configs, output)")
    args = ap.parse_args()

    sizes_text = args.sizes or ("1x1000,100x100,300x300" if args.quick else "1x1000,100x100,300x300,1000x1000")
    sizes = []
    for s in sizes_text.split(","):
        m = re.fullmatch(r"(\d+)x(\d+)", s.strip())
        if not m or not (1 <= int(m.group(1)) <= 9999 and 1 <= int(m.group(2)) <= 9999):
            die(f"bad size {s!r}: DATABASESxUSERS, each 1..9999")
        sizes.append((int(m.group(1)), int(m.group(2))))
    if not Path("/usr/bin/time").is_file():
        die("/usr/bin/time not found (Debian package `time`)")

    poolwright, profile = build_poolwright(args)
    hf = None if args.no_hyperfine else ensure_hyperfine(True)
    hf_version = subprocess.run([hf, "--version"], capture_output=True, text=True).stdout.strip() if hf else None
    work = Path(tempfile.mkdtemp(prefix="poolwright-render-bench."))
    env = dict(os.environ)
    for i in range(max(u for _, u in sizes)):
        env[password_var(i)] = f"bench-password-{i:04d}"
    started = datetime.datetime.now(datetime.timezone.utc)
    loadavg_before = Path("/proc/loadavg").read_text().split()[:3]
    results = []
    try:
        for databases, users in sizes:
            name = f"{databases}x{users}"
            cfg = work / f"poolwright-{name}.yaml"
            out = work / f"out-{name}"
            write_config(cfg, databases, users, work / f"etc-{name}")
            base = [str(poolwright), "--config", str(cfg)]
            commands = [
                ("render (new verifiers)", base + ["render", "--out", str(out)],
                 lambda: shutil.rmtree(out, ignore_errors=True), f"rm -rf {shlex.quote(str(out))}"),
                ("render (reuses them)", base + ["render", "--out", str(out)], None, None),
                ("url", base + ["url", "big"], None, None),
                ("validate", base + ["validate"], None, None),
            ]
            for label, argv, prepare, hf_prepare in commands:
                log(f"{name}: {label}")
                before = (out / "userlist.txt").read_text() if (out / "userlist.txt").exists() else None
                r = time_v(argv, env, prepare)
                if r["exit_code"] != 0:
                    die(f"{' '.join(argv)} failed:\n{r.get('stderr')}")
                row = {"databases": databases, "users": users, "pools": databases * users,
                       "command": label, "argv": argv[1:], "time_v": r}
                if label.startswith("render"):
                    ini = (out / "pgbouncer.ini").read_text()
                    userlist = (out / "userlist.txt").read_text()
                    row["check"] = {
                        "ini_databases": len(re.findall(r"^db\d{4} = ", ini, re.M)),
                        "userlist_verifiers": userlist.count('"SCRAM-SHA-256$4096:'),
                        "all_unchanged": "wrote " not in r["messages"] and "unchanged" in r["messages"],
                        "userlist_identical_to_before": None if prepare else userlist == before,
                    }
                if hf:
                    runs = hyperfine_runs(r["wall_s"] or 1, args.hyperfine_budget)
                    log(f"{name}: {label}: hyperfine --runs {runs}")
                    row["hyperfine"] = hyperfine(hf, argv, env, runs, hf_prepare, work,
                                                 f"{name}-{len(results)}")
                results.append(row)
                log(f"{name}: {label}: {r['wall_s']:.2f} s, {r['max_rss_kb'] / 1024:.1f} MiB")
    finally:
        if args.keep:
            log(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    finished = datetime.datetime.now(datetime.timezone.utc)
    git = (subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                          capture_output=True, text=True).stdout.strip()
           if profile != "given" else "(given binary)")
    meta = {
        "started_at": started.isoformat(timespec="seconds"),
        "runtime_s": round((finished - started).total_seconds(), 1),
        "nproc": os.cpu_count(),
        "loadavg_before": loadavg_before,
        "poolwright": {"binary": str(poolwright), "profile": profile, "git": git,
                       "version": subprocess.run([str(poolwright), "--version"], capture_output=True,
                                                 text=True).stdout.strip()},
        "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
        "hyperfine": hf_version,
    }
    jpath = Path(args.json)
    jpath.parent.mkdir(parents=True, exist_ok=True)
    jpath.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")

    print()
    print(f"poolwright's own cost: {profile} build {git}, {os.cpu_count()} cores; "
          f"{hf_version or 'no hyperfine'}")
    print("  wall / CPU / peak RSS: one run under /usr/bin/time -v; hyperfine: mean ± stddev (runs).")
    print("  render (new verifiers): empty --out dir, one SCRAM verifier (4096 PBKDF2 rounds) per user;")
    print("  render (reuses them): again into the same dir (each old verifier is checked against its password).")
    print()
    head = ["databases x users", "pools", "command", "wall s", "CPU s", "peak RSS MiB", "hyperfine s"]
    rows = []
    for r in results:
        t = r["time_v"]
        h = r.get("hyperfine")
        if h and "mean" in h:
            hcell = f"{h['mean']:.3f} ± {h['stddev'] or 0:.3f} ({h['runs']})"
        elif h:
            hcell = "error"
        else:
            hcell = "-"
        rows.append([f"{r['databases']} x {r['users']}", f"{r['pools']:,}", r["command"],
                     f"{t['wall_s']:.2f}", f"{(t['user_s'] or 0) + (t['sys_s'] or 0):.2f}",
                     f"{t['max_rss_kb'] / 1024:.1f}", hcell])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(v.ljust(w) if i in (0, 2) else v.rjust(w)
                                for i, (v, w) in enumerate(zip(row, widths))) + " |")
    print()
    print(f"raw results: {jpath}   runtime: {meta['runtime_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
