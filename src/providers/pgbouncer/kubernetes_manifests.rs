//! The Kubernetes manifests of a `kubernetes:` target: a ConfigMap with
//! pgbouncer.ini (the pod's own settings), a Secret with userlist.txt, a
//! Deployment whose pod template carries a checksum of both (so a changed
//! config rolls the pods), a Service and a PodDisruptionBudget.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ini_context::ini_context;
use super::kubernetes::{Kubernetes, MOUNT};
use super::rendered_file::RenderedFile;
use super::setting::{Setting, SettingValue};
use super::{Target, budget};
use crate::error::Error;
use crate::render::Templates;

/// The `[pgbouncer]` settings inside a pod: listen everywhere, files from
/// the mount, no pidfile, no Unix socket, logs to stderr.
fn pod_settings(target: &Target) -> Vec<Setting> {
    let mut settings: Vec<Setting> = target
        .settings
        .iter()
        .filter(|s| {
            !matches!(
                s.name.as_str(),
                "pidfile" | "logfile" | "unix_socket_dir" | "user" | "so_reuseport" | "peer_id"
            )
        })
        .cloned()
        .collect();
    for s in &mut settings {
        match s.name.as_str() {
            "listen_addr" => s.value = SettingValue::Text("*".into()),
            "auth_file" => s.value = SettingValue::Text(format!("{MOUNT}/userlist.txt")),
            _ => {}
        }
    }
    // An empty unix_socket_dir turns the socket off (the file system is read-only).
    settings.push(Setting {
        name: "unix_socket_dir".into(),
        value: SettingValue::Text(String::new()),
        span: None,
    });
    settings.sort_by_key(|s| {
        target
            .facts
            .settings
            .iter()
            .position(|spec| spec.name == s.name)
    });
    settings
}

#[derive(Serialize)]
struct ManifestContext<'a> {
    target: &'a str,
    source: &'a str,
    k: &'a Kubernetes,
    version: String,
    port: u16,
    ini: String,
    userlist: String,
    checksum: String,
    /// A user of the admin console for the readiness probe.
    probe_user: String,
    budget: String,
}

/// Renders the manifests; `userlist` is the rendered userlist.txt.
pub fn render(
    target: &Target,
    k: &Kubernetes,
    templates: &Templates,
    source: &str,
    userlist: &str,
) -> Result<Vec<RenderedFile>, Error> {
    let mut pod = target.clone();
    pod.settings = pod_settings(target);
    pod.processes = 1;
    let ini = templates.render("pgbouncer/pgbouncer.ini.tera", &ini_context(&pod, source))?;
    let checksum: String = Sha256::digest(format!("{ini}\0{userlist}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let probe_user = ["admin_users", "stats_users"]
        .iter()
        .filter_map(|list| match target.setting(list) {
            Some(SettingValue::List(items)) => {
                items.iter().find(|u| target.user(u).is_some()).cloned()
            }
            _ => None,
        })
        .next()
        .unwrap_or_else(|| target.url_user.clone());
    let context = ManifestContext {
        target: &target.name,
        source,
        k,
        version: target.version.to_string(),
        port: target.listen_port(),
        ini,
        userlist: userlist.to_string(),
        checksum,
        probe_user,
        budget: budget::compute(target)
            .explain(target, 0)
            .pop()
            .unwrap_or_default(),
    };
    let mut files = Vec::new();
    for (name, secret) in [
        ("configmap", false),
        ("secret", true),
        ("deployment", false),
        ("service", false),
        ("poddisruptionbudget", false),
    ] {
        let text = templates.render(&format!("kubernetes/{name}.yaml.tera"), &context)?;
        files.push(RenderedFile {
            name: format!("kubernetes/{name}.yaml"),
            host_path: String::new(),
            bytes: text.into_bytes(),
            mode: if secret { 0o600 } else { 0o644 },
            secret,
        });
    }
    Ok(files)
}
