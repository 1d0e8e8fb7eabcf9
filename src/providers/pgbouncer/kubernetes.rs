//! `kubernetes:` on a self-hosted target: PgBouncer as a Kubernetes
//! Deployment instead of (or beside) a systemd service. This file holds the
//! settings and their decoder; `kubernetes_manifests` renders them.
//!
//! Rendered under `kubernetes/`: a ConfigMap with pgbouncer.ini, a Secret
//! with userlist.txt, a Deployment (one PgBouncer per pod, scaled by
//! replicas; a checksum of both files in the pod template, so a changed
//! config rolls the pods), a Service and a PodDisruptionBudget. Inside the
//! pod PgBouncer listens on all addresses, logs to stderr (kubectl logs) and
//! reads both files from one projected volume at /etc/pgbouncer.

use serde::Serialize;

use crate::yaml::reader::{MapView, Reader};

/// The image when the config names none: CloudNativePG's PgBouncer images
/// (Debian, PgBouncer at /usr/bin/pgbouncer, user 998 group 996, pg_isready).
const DEFAULT_IMAGE: &str = "ghcr.io/cloudnative-pg/pgbouncer";
/// Where the files are mounted in the pod.
pub const MOUNT: &str = "/etc/pgbouncer";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kubernetes {
    pub name: String,
    pub namespace: Option<String>,
    pub replicas: u32,
    /// Extra pods a rolling update may start (they hold pools too).
    pub max_surge: u32,
    pub image: String,
    pub run_as_user: u32,
    pub fs_group: u32,
    pub cpu_request: String,
    pub memory_request: String,
    pub cpu_limit: Option<String>,
    pub memory_limit: String,
    pub service_type: String,
}

impl Kubernetes {
    /// How many PgBouncers may run at once: every replica plus the surge
    /// of a rolling update, each with its own pools.
    pub fn max_pods(&self) -> u32 {
        self.replicas + self.max_surge
    }

    /// The Service's name inside the cluster, which apps use.
    pub fn service_host(&self) -> String {
        format!(
            "{}.{}.svc",
            self.name,
            self.namespace.as_deref().unwrap_or("default")
        )
    }
}

fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The newest release of a PgBouncer version that the default image has.
fn default_tag(version: super::version::Version) -> String {
    let patch = match (version.major, version.minor) {
        (1, 18) => "1.18.0",
        (1, 19) => "1.19.1",
        (1, 20) => "1.20.1",
        (1, 21) => "1.21.0",
        (1, 22) => "1.22.1",
        (1, 23) => "1.23.1",
        (1, 24) => "1.24.1",
        _ => "1.25.2",
    };
    format!("{DEFAULT_IMAGE}:{patch}")
}

/// Reads the `kubernetes:` mapping of target `name`.
pub fn decode(
    reader: &mut Reader<'_>,
    map: &mut MapView<'_>,
    name: &str,
    version: super::version::Version,
) -> Option<Kubernetes> {
    let field = map.field("kubernetes");
    let node = map.get("kubernetes")?;
    let mut k = reader.map(node, &field)?;
    let default_name = format!(
        "{}-pgbouncer",
        name.to_ascii_lowercase().replace(['_', '.'], "-")
    );
    let string = |k: &mut MapView<'_>, key: &'static str, reader: &mut Reader<'_>| {
        k.get(key).and_then(|n| reader.string(n, &k.field(key)))
    };
    let name_value = string(&mut k, "name", reader).unwrap_or(default_name);
    let namespace = string(&mut k, "namespace", reader);
    let image = string(&mut k, "image", reader).unwrap_or_else(|| default_tag(version));
    let cpu_request = string(&mut k, "cpu_request", reader).unwrap_or_else(|| "100m".into());
    let memory_request = string(&mut k, "memory_request", reader).unwrap_or_else(|| "64Mi".into());
    // PgBouncer is single-threaded: one core is all a pod can use.
    let cpu_limit = string(&mut k, "cpu_limit", reader);
    let memory_limit = string(&mut k, "memory_limit", reader).unwrap_or_else(|| "256Mi".into());
    let service_type = match k.get("service_type") {
        Some(n) => reader.choice(
            n,
            &k.field("service_type"),
            &["ClusterIP", "NodePort", "LoadBalancer"],
        )?,
        None => "ClusterIP".into(),
    };
    let int = |k: &mut MapView<'_>,
               key: &'static str,
               default: i64,
               min: i64,
               max: i64,
               reader: &mut Reader<'_>| {
        match k.get(key) {
            Some(n) => reader.integer(n, &k.field(key), min, max).map(|v| v as u32),
            None => Some(default as u32),
        }
    };
    let replicas = int(&mut k, "replicas", 2, 1, 1000, reader);
    let max_surge = int(&mut k, "max_surge", 1, 0, 1000, reader);
    let run_as_user = int(&mut k, "run_as_user", 998, 1, i64::from(u32::MAX), reader);
    let fs_group = int(&mut k, "fs_group", 996, 0, i64::from(u32::MAX), reader);
    let span = k.span;
    k.finish(reader);
    for (what, value) in [
        ("name", Some(&name_value)),
        ("namespace", namespace.as_ref()),
    ] {
        if let Some(v) = value
            && !dns_label(v)
        {
            reader.error(span, &format!("{field}.{what}"), format!("`{v}` is not a valid Kubernetes {what}")).hint =
                    Some("lowercase letters, digits and `-`, at most 63, starting and ending with a letter or digit".into());
        }
    }
    Some(Kubernetes {
        name: name_value,
        namespace,
        replicas: replicas?,
        max_surge: max_surge?,
        image,
        run_as_user: run_as_user?,
        fs_group: fs_group?,
        cpu_request,
        memory_request,
        cpu_limit,
        memory_limit,
        service_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_names_are_dns_labels() {
        assert!(dns_label("prod-pgbouncer"));
        assert!(!dns_label("Prod"));
        assert!(!dns_label("a_b"));
        assert!(!dns_label(&"a".repeat(64)));
    }
}
