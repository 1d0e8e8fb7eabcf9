//! The pool budget against the live server: `validate` checks the pools
//! against the max_connections written in poolwright.yaml; this reads the
//! server's own figures and does the same arithmetic with them, so a YAML
//! that says 500 while the server has 40 cannot hide an overrun.

use super::Check;
use super::connect::Session;
use crate::providers::pgbouncer::{Target, budget};

/// The server's connection limits, as `SHOW` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: u32,
    pub superuser_reserved_connections: u32,
    /// PostgreSQL 16+ (`pg_use_reserved_connections`); 0 before.
    pub reserved_connections: u32,
}

async fn show(direct: &Session, name: &str) -> Result<u32, String> {
    let text = direct.value(&format!("SHOW {name}")).await?;
    text.trim()
        .parse()
        .map_err(|e| format!("SHOW {name} gave {text:?}: {e}"))
}

/// Reads the limits through a direct connection.
pub async fn read(direct: &Session) -> Result<Limits, String> {
    let version = show(direct, "server_version_num").await?;
    Ok(Limits {
        max_connections: show(direct, "max_connections").await?,
        superuser_reserved_connections: show(direct, "superuser_reserved_connections").await?,
        reserved_connections: if version >= 160_000 {
            show(direct, "reserved_connections").await?
        } else {
            0
        },
    })
}

/// `target` with the server's `limits` in place of what the YAML says.
fn with_limits(target: &Target, limits: &Limits) -> Target {
    let mut live = target.clone();
    live.upstream.max_connections = Some(limits.max_connections);
    live.upstream.superuser_reserved_connections = limits.superuser_reserved_connections;
    live.upstream.reserved_connections = limits.reserved_connections;
    live
}

/// The slots the budget keeps for direct connections on the live server.
pub fn direct_slots(target: &Target, limits: &Limits) -> Option<u64> {
    budget::compute(&with_limits(target, limits))
        .slots
        .map(|s| s.direct)
}

/// The budget of `target` redone with the server's `limits`.
pub fn check(target: &Target, limits: &Limits) -> Check {
    let live = with_limits(target, limits);
    let budget = budget::compute(&live);
    let sum = budget.explain(&live, 0).pop().unwrap_or_default();
    let written = target.upstream.max_connections;
    let stale = written.filter(|w| *w != limits.max_connections);
    let name = &target.name;
    let live_max = limits.max_connections;
    if !budget.fits() {
        let opened = budget
            .total
            .map_or_else(|| "unlimited".to_string(), |t| t.to_string());
        let available = budget.available.unwrap_or(0);
        let mut detail = format!(
            "the pools may open {opened} server connections, more than the {available} the server accepts ({sum}, read from the server)"
        );
        if let Some(w) = stale {
            detail.push_str(&format!(
                "; poolwright.yaml says max_connections: {w}, the server has {live_max}"
            ));
        }
        return Check::fail(
            "budget",
            detail,
            format!(
                "lower default_pool_size or reserve_pool_size, cap the pools with max_db_connections, or raise max_connections on the server (restart needed); and set upstream.max_connections: {live_max} in target {name} so `poolwright validate` catches this offline"
            ),
        );
    }
    match (written, stale) {
        (_, Some(w)) => Check::warn(
            "budget",
            format!(
                "{sum} (read from the server); poolwright.yaml says max_connections: {w}, the server has {live_max}"
            ),
            Some(format!(
                "set upstream.max_connections: {live_max} in target {name} so `poolwright validate` checks the real figure"
            )),
        ),
        (None, None) => Check::pass(
            "budget",
            format!(
                "{sum} (read from the server; add upstream.max_connections: {live_max} to target {name} so `poolwright validate` checks it offline too)"
            ),
        ),
        (Some(_), None) => Check::pass("budget", format!("{sum} (read from the server)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Status;

    /// One pool of 20 + 5 on host `db`, with `upstream` extra keys.
    fn target(upstream: &str) -> Target {
        let yaml = format!(
            "version: 1\ntargets:\n  prod:\n    provider: pgbouncer\n    upstream: {{ host: db{upstream} }}\n    public_host: db\n    databases: {{ d: {{}} }}\n    users: {{ app: {{ password: \"${{P}}\" }} }}\n    pgbouncer: {{ default_pool_size: 20, reserve_pool_size: 5 }}\n"
        );
        let env = |k: &str| (k == "P").then(|| "x".to_string());
        let config = crate::config::parse(std::path::Path::new("poolwright.yaml"), yaml, &env)
            .unwrap_or_else(|e| panic!("{e}"));
        let target = config.targets.into_iter().next().unwrap();
        crate::verify::self_hosted(&target)
            .expect("a pgbouncer target")
            .clone()
    }

    fn limits(max: u32, reserved: u32) -> Limits {
        Limits {
            max_connections: max,
            superuser_reserved_connections: 3,
            reserved_connections: reserved,
        }
    }

    #[test]
    fn the_live_figures_decide() {
        // The YAML believes in 500; the server has 20.
        let c = check(&target(", max_connections: 500"), &limits(20, 0));
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(
            c.detail.starts_with("the pools may open 25 server connections, more than the 14 the server accepts (1 pool: 25 connections x 1 process = 25 > 20 max_connections - 3 superuser_reserved_connections - 3 direct_connections = 14, read from the server); poolwright.yaml says max_connections: 500, the server has 20"),
            "{}",
            c.detail
        );
        assert!(c.fix.unwrap().contains("upstream.max_connections: 20"));

        let ok = check(&target(", max_connections: 100"), &limits(100, 0));
        assert_eq!(ok.status, Status::Pass, "{ok:?}");
        assert_eq!(
            ok.detail,
            "1 pool: 25 connections x 1 process = 25 <= 100 max_connections - 3 superuser_reserved_connections - 10 direct_connections = 87 (read from the server)"
        );

        // Fits, but the YAML is stale: validate would check the wrong figure.
        let stale = check(&target(", max_connections: 200"), &limits(100, 0));
        assert_eq!(stale.status, Status::Warn, "{stale:?}");
        assert!(
            stale
                .detail
                .contains("says max_connections: 200, the server has 100")
        );

        // PostgreSQL 16's reserved_connections count too.
        let pg16 = check(&target(""), &limits(40, 4));
        assert_eq!(pg16.status, Status::Pass, "{pg16:?}");
        assert!(
            pg16.detail
                .contains("- 4 reserved_connections - 4 direct_connections = 29"),
            "{}",
            pg16.detail
        );
        assert!(
            pg16.detail.contains("add upstream.max_connections: 40"),
            "{}",
            pg16.detail
        );
        assert_eq!(check(&target(""), &limits(27, 0)).status, Status::Fail);
    }
}
