//! Real throwaway servers for the integration tests: a PostgreSQL 15 cluster in a
//! temp dir ([`PgCluster`]), a foreground PgBouncer ([`PgBouncer`]), and thin
//! wrappers around the `psql` and `pgbench` clients.
//!
//! Everything listens on 127.0.0.1 only, on ports picked by the kernel, and is
//! stopped on `Drop`. Tests call [`require_servers`] first: without the binaries
//! they skip with a message, unless `POOLWRIGHT_REQUIRE_SERVERS=1` (set in CI)
//! turns the skip into a failure. `scripts/install-test-deps` installs them.
//!
//! PostgreSQL and PgBouncer both refuse to run as root, so when the tests run as
//! root (CI containers) the servers run as the `postgres` Unix user.

// The module is shared by every test file; not all of them use every helper.
#![allow(dead_code)]

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

const PG_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
const SERVICE_USER: &str = "postgres";
/// Only reachable on 127.0.0.1 of a throwaway cluster; URL-safe on purpose so
/// `superuser_url` needs no percent-encoding.
const SUPERUSER_PASSWORD: &str = "poolwright-superuser-pw";

fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        let out = Command::new("id").arg("-u").output().expect("run `id -u`");
        String::from_utf8_lossy(&out.stdout).trim() == "0"
    })
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `preferred` if it exists, else `name` from PATH.
fn find_bin(preferred: &str, name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(preferred);
    if p.is_file() { Some(p) } else { on_path(name) }
}

fn pg_bin_dir() -> Option<PathBuf> {
    if Path::new(PG_BIN_DIR).join("initdb").is_file() {
        return Some(PathBuf::from(PG_BIN_DIR));
    }
    // Debian puts initdb/pg_ctl outside PATH; elsewhere pg_config knows where.
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    dir.join("initdb").is_file().then_some(dir)
}

fn pgbouncer_bin() -> Option<PathBuf> {
    find_bin("/usr/sbin/pgbouncer", "pgbouncer")
}
/// A PgBouncer binary the tests run, with the `major.minor` it reports.
#[derive(Debug, Clone)]
pub struct BouncerBuild {
    pub version: String,
    pub bin: PathBuf,
}

/// Where scripts/install-test-deps builds the current PgBouncer (1.24 from
/// Debian trixie's source package), inside the ignored build area.
pub const NEW_PGBOUNCER: &str = "target/test-pgbouncer/1.24/bin/pgbouncer";

/// `major.minor` of a pgbouncer binary, from `pgbouncer -V`.
pub fn bouncer_version(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("-V").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let full = text
        .lines()
        .next()?
        .strip_prefix("PgBouncer ")?
        .trim()
        .to_string();
    let mut parts = full.split('.');
    Some(format!("{}.{}", parts.next()?, parts.next()?))
}

/// Every PgBouncer the real-server tests run against: the distribution's
/// (1.18 on Debian bookworm) and the one built from trixie's source (1.24).
/// A missing build is a SKIP notice, or a panic under
/// POOLWRIGHT_REQUIRE_SERVERS=1.
pub fn pgbouncer_builds() -> Vec<BouncerBuild> {
    let mut builds = Vec::new();
    let candidates = [
        pgbouncer_bin(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(NEW_PGBOUNCER)),
    ];
    for bin in candidates.into_iter().flatten() {
        match bouncer_version(&bin) {
            Some(version) => {
                if !builds.iter().any(|b: &BouncerBuild| b.version == version) {
                    builds.push(BouncerBuild { version, bin });
                }
            }
            None => {
                let reason = format!("no PgBouncer at {}", bin.display());
                if std::env::var("POOLWRIGHT_REQUIRE_SERVERS").is_ok_and(|v| v == "1") {
                    panic!(
                        "POOLWRIGHT_REQUIRE_SERVERS=1 but {reason}; run scripts/install-test-deps"
                    );
                }
                eprintln!("SKIP: {reason}; run scripts/install-test-deps to test it too");
            }
        }
    }
    builds
}

fn pgbench_bin() -> Option<PathBuf> {
    find_bin("/usr/bin/pgbench", "pgbench")
}
fn psql_bin() -> Option<PathBuf> {
    find_bin("/usr/bin/psql", "psql")
}

pub fn servers_available() -> Result<(), String> {
    let pg = pg_bin_dir().ok_or(format!(
        "initdb not found in {PG_BIN_DIR} or `pg_config --bindir`"
    ))?;
    if !pg.join("pg_ctl").is_file() {
        return Err(format!("pg_ctl missing in {}", pg.display()));
    }
    pgbouncer_bin().ok_or("pgbouncer not found (/usr/sbin or PATH)")?;
    pgbench_bin().ok_or("pgbench not found")?;
    psql_bin().ok_or("psql not found")?;
    if is_root()
        && !Command::new("id")
            .arg(SERVICE_USER)
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return Err(format!(
            "running as root but there is no `{SERVICE_USER}` user to run the servers as"
        ));
    }
    Ok(())
}

/// True if the real-server tests can run. Panics instead of skipping when
/// `POOLWRIGHT_REQUIRE_SERVERS=1`, so CI can never go green by skipping them.
pub fn require_servers() -> bool {
    let Err(reason) = servers_available() else {
        return true;
    };
    if std::env::var("POOLWRIGHT_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!("POOLWRIGHT_REQUIRE_SERVERS=1 but real servers are unavailable: {reason}");
    }
    eprintln!("SKIP: real-server test skipped: {reason}; run scripts/install-test-deps");
    false
}

/// A port that was free a moment ago (the kernel picks it; there is a small race
/// until the server binds it, which `PgCluster::start` retries around).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("local_addr of the probe listener")
        .port()
}

/// Makes `path` (recursively) owned by the `postgres` user when running as root,
/// so a server running as that user can read its config and write its pidfile /
/// socket there. No-op when not root (the servers then run as the current user).
pub fn hand_to_service_user(path: &Path) {
    if !is_root() {
        return;
    }
    let status = Command::new("chown")
        .args(["-R", &format!("{SERVICE_USER}:")])
        .arg(path)
        .status()
        .expect("run chown");
    assert!(
        status.success(),
        "chown -R {SERVICE_USER}: {} failed",
        path.display()
    );
}

/// `program` run as the service user when root. `runuser` is fine for these
/// short-lived commands (initdb, pg_ctl); see `PgBouncer::start` for servers.
fn service_command(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", SERVICE_USER, "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run_ok(cmd: &mut Command, what: &str) -> Result<Output, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot spawn: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
/// Standard SQL string literal (PG 15 has standard_conforming_strings=on, so
/// backslashes are literal and only `'` needs doubling).
fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A PostgreSQL cluster in a temp dir, SCRAM auth, superuser `postgres`.
pub struct PgCluster {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub superuser_password: String,
    bin: PathBuf,
}

impl PgCluster {
    pub fn start(max_connections: u32) -> PgCluster {
        let bin = pg_bin_dir().expect("PostgreSQL bin dir (call require_servers() first)");
        // As root, use /tmp explicitly: $TMPDIR might not be traversable by `postgres`.
        let base = if is_root() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("poolwright-pg.")
            .tempdir_in(base)
            .expect("create temp dir for the cluster");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("chmod 0755 the cluster temp dir");
        let pwfile = dir.path().join("superuser.pw");
        fs::write(&pwfile, SUPERUSER_PASSWORD).expect("write the superuser password file");
        hand_to_service_user(dir.path());

        let data = dir.path().join("data");
        run_ok(
            service_command(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ])
                .arg(format!("--pwfile={}", pwfile.display())),
            "initdb",
        )
        .unwrap_or_else(|e| panic!("{e}"));

        // Build the value first so Drop stops a half-started server if we panic below.
        let mut cluster = PgCluster {
            port: 0,
            dir,
            superuser_password: SUPERUSER_PASSWORD.into(),
            bin,
        };
        let log = cluster.dir.path().join("pg.log");
        // Another test may grab the port between free_port() and the bind: retry.
        for attempt in 1..=3 {
            cluster.port = free_port();
            // pg_ctl hands -o to /bin/sh, hence the single quotes around the socket dir.
            let opts = format!(
                "-c password_encryption=scram-sha-256 -c max_connections={max_connections} \
                -c fsync=off -c listen_addresses=127.0.0.1 -p {} -k '{}'",
                cluster.port,
                cluster.dir.path().display()
            );
            let res = run_ok(
                service_command(&cluster.bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(&log)
                    .args(["-w", "-t", "30", "-o", &opts, "start"]),
                "pg_ctl start",
            );
            match res {
                Ok(_) => return cluster,
                Err(e) => {
                    let log_text = fs::read_to_string(&log).unwrap_or_default();
                    if attempt < 3 && log_text.contains("could not bind") {
                        continue;
                    }
                    panic!("{e}\n--- pg.log ---\n{log_text}");
                }
            }
        }
        unreachable!("the retry loop returns or panics")
    }

    pub fn superuser_url(&self, db: &str) -> String {
        format!(
            "postgresql://postgres:{}@127.0.0.1:{}/{db}",
            self.superuser_password, self.port
        )
    }

    /// Lets `role` log in with md5 over TCP (a rule ahead of initdb's
    /// scram-sha-256 ones), as an older setup would, and reloads.
    pub fn allow_md5(&self, role: &str) {
        let hba = self.dir.path().join("data/pg_hba.conf");
        let old = fs::read_to_string(&hba).expect("read pg_hba.conf");
        fs::write(&hba, format!("host all {role} 127.0.0.1/32 md5\n{old}"))
            .expect("write pg_hba.conf");
        self.psql("postgres", "SELECT pg_reload_conf()");
    }

    /// Runs `sql` as superuser in `db`; panics with psql's stderr on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let psql = psql_bin().expect("psql binary (call require_servers() first)");
        let out = run_ok(
            Command::new(psql)
                .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    db,
                    "-c",
                    sql,
                ])
                .env("PGPASSWORD", &self.superuser_password),
            &format!("psql on {db}: {sql}"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// LOGIN role with a SCRAM password; any characters are safe in both arguments.
    pub fn create_role(&self, name: &str, password: &str) {
        self.psql(
            "postgres",
            &format!(
                "CREATE ROLE {} LOGIN PASSWORD {}",
                quote_ident(name),
                quote_literal(password)
            ),
        );
    }

    pub fn create_database(&self, name: &str, owner: &str) {
        self.psql(
            "postgres",
            &format!(
                "CREATE DATABASE {} OWNER {}",
                quote_ident(name),
                quote_ident(owner)
            ),
        );
    }

    /// Server-side client connections of `user` to `db` (excludes the probe
    /// itself unless asking about postgres/postgres).
    pub fn client_backends(&self, db: &str, user: &str) -> u32 {
        let out = self.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
             AND datname = {} AND usename = {}",
                quote_literal(db),
                quote_literal(user)
            ),
        );
        out.parse()
            .unwrap_or_else(|e| panic!("client_backends: bad count {out:?}: {e}"))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate: the data is thrown away anyway, and it is the fastest stop.
        let _ = service_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A foreground PgBouncer; `child` is the pgbouncer process itself.
pub struct PgBouncer {
    pub port: u16,
    child: Child,
    pub log_path: PathBuf,
}

impl PgBouncer {
    /// Starts `pgbouncer INI` (which must listen on 127.0.0.1:`port`), logging
    /// stdout+stderr to `log_path`, and waits until the port accepts connections.
    /// As root, hand the ini, auth_file and pidfile/socket dir to the service user
    /// first (`hand_to_service_user`).
    pub fn start(ini: &Path, port: u16, log_path: &Path) -> Result<PgBouncer, String> {
        let bin = pgbouncer_bin().ok_or("pgbouncer binary not found")?;
        Self::start_with(&bin, ini, port, log_path)
    }

    /// Like [`PgBouncer::start`], with a given binary (see [`pgbouncer_builds`]).
    pub fn start_with(
        bin: &Path,
        ini: &Path,
        port: u16,
        log_path: &Path,
    ) -> Result<PgBouncer, String> {
        let bin = bin.to_path_buf();
        let log =
            File::create(log_path).map_err(|e| format!("create {}: {e}", log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| format!("dup log fd: {e}"))?;
        // Raise the soft fd limit first (max_client_conn needs fds). As root we
        // switch user with setpriv, not runuser: setpriv execs in place, so the
        // child PID is pgbouncer itself (SIGTERM reaches it directly) and it keeps
        // the raised limit, whereas runuser's PAM session resets it to 1024 and a
        // killed runuser lingers ~2 s before killing its child.
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if is_root() {
            argv.extend(
                [
                    "setpriv",
                    "--reuid=postgres",
                    "--regid=postgres",
                    "--init-groups",
                ]
                .map(Into::into),
            );
        }
        argv.push(bin.into());
        argv.push(ini.into());
        let child = Command::new("sh")
            .args(["-c", "ulimit -n 65536 2>/dev/null || ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; exec \"$@\"", "sh"])
            .args(&argv).stdin(Stdio::null()).stdout(log).stderr(log_err)
            .spawn().map_err(|e| format!("spawn pgbouncer: {e}"))?;
        // From here on Drop cleans up, also on the error paths.
        let mut bouncer = PgBouncer {
            port,
            child,
            log_path: log_path.to_path_buf(),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = bouncer
                .child
                .try_wait()
                .map_err(|e| format!("wait on pgbouncer: {e}"))?
            {
                return Err(format!(
                    "pgbouncer exited ({status}) before listening on {addr}:\n{}",
                    bouncer.log()
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(bouncer);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "pgbouncer not listening on {addr} after 10 s:\n{}",
                    bouncer.log()
                ));
            }
            sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return; // already exited and reaped: its PID may belong to someone else now
        }
        // SIGTERM ("fast exit") lets it remove its pidfile and socket; SIGKILL only as a fallback.
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }
}

pub fn pgbench(args: &[&str], env: &[(&str, &str)]) -> Output {
    let bin = pgbench_bin().expect("pgbench binary (call require_servers() first)");
    Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("spawn pgbench")
}

/// Runs one SQL command over `url` (passed with `-d`, so libpq parses it).
pub fn psql_url(url: &str, sql: &str) -> Output {
    let bin = psql_bin().expect("psql binary (call require_servers() first)");
    Command::new(bin)
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .expect("spawn psql")
}
