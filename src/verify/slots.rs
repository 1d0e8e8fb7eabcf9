//! Who holds the server's connection slots: PgBouncer's server connections,
//! or clients that connect to PostgreSQL directly.
//!
//! When the server is full, "lower the pools" is beside the point if the
//! slots are held by a migration, a cron job or an app that bypasses the
//! pooler. The server's `pg_stat_activity` lists every backend (a role
//! without pg_read_all_stats sees other roles' rows with their user name
//! and application name, but not their address); PgBouncer's `SHOW SERVERS`
//! lists its own server connections with the local port each one uses, which
//! is the client port the server sees. Matching the two tells PgBouncer's
//! backends from the rest. Where no session to the server is possible (a
//! full server refuses verify too), the console alone still says how many
//! of the slots are PgBouncer's.

use std::collections::{BTreeMap, BTreeSet};

use super::connect::{Session, Table};

/// Every client backend on the server, with what identifies its client.
/// `client_port` is -1 for a Unix socket, NULL where the role may not see it.
const BACKENDS: &str = "SELECT coalesce(host(client_addr), ''), client_port, \
     coalesce(application_name, ''), coalesce(usename, ''), coalesce(datname, '') \
     FROM pg_stat_activity \
     WHERE (backend_type = 'client backend' OR backend_type IS NULL) \
     AND datname IS NOT NULL AND pid <> pg_backend_pid()";

/// Clients that share an address, application and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The client's address, "" where the role may not see it, "local" for
    /// a Unix socket.
    pub address: String,
    pub application: String,
    pub user: String,
    pub count: u64,
}

/// The server's client backends, PgBouncer's told from the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holders {
    /// Client backends on the server (verify's own left out).
    pub total: u64,
    /// Those that are PgBouncer's server connections.
    pub pgbouncer: u64,
    /// The others, largest group first.
    pub others: Vec<Group>,
}

impl Holders {
    pub fn other_count(&self) -> u64 {
        self.others.iter().map(|g| g.count).sum()
    }

    /// "35 from 127.0.0.1 as `app` (application `hog`), 2 as `ops`", the
    /// first few groups.
    pub fn describe_others(&self) -> String {
        let mut parts: Vec<String> = self
            .others
            .iter()
            .take(4)
            .map(|g| {
                let mut text = g.count.to_string();
                match g.address.as_str() {
                    "" => {}
                    "local" => text.push_str(" over the local socket"),
                    a => text.push_str(&format!(" from {a}")),
                }
                if !g.user.is_empty() {
                    text.push_str(&format!(" as `{}`", g.user));
                }
                if !g.application.is_empty() {
                    text.push_str(&format!(" (application `{}`)", g.application));
                }
                text
            })
            .collect();
        let rest: u64 = self.others.iter().skip(4).map(|g| g.count).sum();
        if rest > 0 {
            parts.push(format!("{rest} more"));
        }
        parts.join(", ")
    }
}

/// The local ports of PgBouncer's server connections, from `SHOW SERVERS`
/// (the console's own pool has none). A port PgBouncer does not report
/// (Unix socket) is left out; `count` still counts that connection.
#[derive(Debug, Clone, Default)]
pub struct Servers {
    pub count: u64,
    pub local_ports: BTreeSet<u16>,
}

pub fn servers(table: &Table) -> Servers {
    let mut out = Servers::default();
    for row in &table.rows {
        out.count += 1;
        if let Some(port) = table.get(row, "local_port").and_then(|p| p.parse().ok()) {
            out.local_ports.insert(port);
        }
    }
    out
}

/// Reads PgBouncer's server connections through its console.
pub async fn read_servers(console: &Session) -> Result<Servers, String> {
    console.table("SHOW SERVERS").await.map(|t| servers(&t))
}

/// Sorts the server's backends (`table`, as [`BACKENDS`] returns them)
/// into PgBouncer's and the rest. Without `servers` (no console), none is
/// counted as PgBouncer's.
pub fn attribute(table: &Table, servers: Option<&Servers>) -> Holders {
    let mut groups: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let mut holders = Holders::default();
    // PgBouncer's connections over a Unix socket have no port to match:
    // as many local-socket backends of the pools as it reports are its own.
    let mut unmatched_socket = servers.map_or(0, |s| {
        s.count
            .saturating_sub(u64::try_from(s.local_ports.len()).unwrap_or(u64::MAX))
    });
    for row in &table.rows {
        holders.total += 1;
        let col = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let port: Option<i32> = row.get(1).cloned().flatten().and_then(|p| p.parse().ok());
        let ours = match (servers, port) {
            (Some(s), Some(p)) if p > 0 => {
                u16::try_from(p).is_ok_and(|p| s.local_ports.contains(&p))
            }
            (Some(_), Some(-1)) if unmatched_socket > 0 => {
                unmatched_socket -= 1;
                true
            }
            _ => false,
        };
        if ours {
            holders.pgbouncer += 1;
            continue;
        }
        let address = match port {
            Some(-1) => "local".to_string(),
            _ => col(0),
        };
        *groups.entry((address, col(2), col(3))).or_default() += 1;
    }
    holders.others = groups
        .into_iter()
        .map(|((address, application, user), count)| Group {
            address,
            application,
            user,
            count,
        })
        .collect();
    holders.others.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.address.cmp(&b.address))
    });
    holders
}

/// Reads the server's backends through `server` (a direct session, or a
/// pooled one: either runs on a backend of the server) and sorts them.
/// Through the pooler, the backend running the query is one of
/// PgBouncer's, which the query itself leaves out: it is counted back in.
pub async fn read(
    server: &Session,
    servers: Option<&Servers>,
    through_pooler: bool,
) -> Result<Holders, String> {
    let table = server.table(BACKENDS).await?;
    let mut holders = attribute(&table, servers);
    if through_pooler {
        holders.total += 1;
        holders.pgbouncer += 1;
    }
    Ok(holders)
}

/// The fix for slots held by clients that bypass the pooler.
pub fn fix(holders: &Holders, target: &str, direct_connections: Option<u64>) -> String {
    let example = holders
        .others
        .iter()
        .find(|g| !g.application.is_empty())
        .map(|g| {
            format!(
                " (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{}')",
                g.application.replace('\'', "''")
            )
        })
        .unwrap_or_default();
    let kept = match direct_connections {
        Some(1) => "keeps 1 slot".to_string(),
        Some(n) => format!("keeps {n} slots"),
        None => "keeps some slots".to_string(),
    };
    format!(
        "point the clients that connect directly at the pooled URL (`poolwright url {target}`), or end the ones that should not be there{example}; the budget {kept} for direct connections (upstream.direct_connections): raise it if these clients are meant to stay, then `poolwright apply {target}`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str], rows: &[&[Option<&str>]]) -> Table {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| v.map(str::to_string)).collect())
                .collect(),
        }
    }

    fn backends(rows: &[&[Option<&str>]]) -> Table {
        table(&["addr", "port", "app", "user", "db"], rows)
    }

    #[test]
    fn pgbouncers_backends_are_told_by_their_port() {
        let servers = servers(&table(
            &["type", "user", "local_addr", "local_port"],
            &[
                &[Some("S"), Some("app"), Some("127.0.0.1"), Some("41000")],
                &[Some("S"), Some("app"), Some("127.0.0.1"), Some("41001")],
            ],
        ));
        let hog = [
            Some("127.0.0.1"),
            Some("50000"),
            Some("hog"),
            Some("app"),
            Some("db"),
        ];
        let holders = attribute(
            &backends(&[
                &[
                    Some("127.0.0.1"),
                    Some("41000"),
                    Some(""),
                    Some("app"),
                    Some("db"),
                ],
                &[
                    Some("127.0.0.1"),
                    Some("41001"),
                    Some(""),
                    Some("app"),
                    Some("db"),
                ],
                &hog,
                &hog,
                &[None, None, Some("cron"), Some("ops"), Some("db")],
            ]),
            Some(&servers),
        );
        assert_eq!(holders.total, 5);
        assert_eq!(holders.pgbouncer, 2);
        assert_eq!(holders.other_count(), 3);
        assert_eq!(
            holders.describe_others(),
            "2 from 127.0.0.1 as `app` (application `hog`), 1 as `ops` (application `cron`)"
        );
        let fix = fix(&holders, "prod", Some(4));
        assert!(fix.contains("application_name = 'hog'"), "{fix}");
        assert!(fix.contains("keeps 4 slots"), "{fix}");
    }

    #[test]
    fn socket_connections_count_as_pgbouncers_up_to_what_it_reports() {
        let servers = Servers {
            count: 1,
            local_ports: BTreeSet::new(),
        };
        let socket = [Some(""), Some("-1"), Some(""), Some("app"), Some("db")];
        let holders = attribute(&backends(&[&socket, &socket]), Some(&servers));
        assert_eq!(holders.pgbouncer, 1);
        assert_eq!(
            holders.describe_others(),
            "1 over the local socket as `app`"
        );
        // Without the console nothing is PgBouncer's.
        assert_eq!(attribute(&backends(&[&socket]), None).pgbouncer, 0);
    }
}
