//! Property tests for the fuzz targets' invariants: the same check
//! functions (poolwright::invariants), fed structured values that reach the
//! interesting cases faster than random bytes.

use poolwright::invariants::{self, input::encode};
use proptest::prelude::*;

/// Text that is mostly harmless, sometimes hostile: URI and ini
/// delimiters, quotes, blanks, `$`, non-ASCII, line breaks and NUL.
fn awkward() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9_.-]{0,10}",
        3 => "[ -~]{0,16}",
        2 => prop::collection::vec(
            prop_oneof![
                Just("@"), Just(":"), Just("/"), Just("?"), Just("#"), Just("%"), Just("&"),
                Just("="), Just("["), Just("]"), Just(","), Just("'"), Just("\""), Just("''"),
                Just("\"\""), Just(" "), Just("\t"), Just(";"), Just("$"), Just("${PW}"),
                Just("é"), Just("\u{85}"), Just("\n"), Just("\r"), Just("\0"), Just("\\"),
                Just("a"), Just("0"),
            ],
            0..8
        )
        .prop_map(|parts| parts.concat()),
        1 => any::<String>(),
    ]
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9.-]{0,20}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        "[0-9a-f:]{2,12}(%[a-z0-9]{1,4})?",
        "/[a-z/]{0,12}",
        awkward(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A URL built from any parts reads back (libpq's rules and
    /// tokio-postgres) as those parts, or the builder says why it cannot be
    /// written; the masked form never shows the password.
    #[test]
    fn urls_read_back_as_built(
        user in awkward(),
        password in awkward(),
        host in host(),
        port in any::<u16>(),
        database in awkward(),
        params in prop::collection::vec((awkward(), awkward()), 0..4),
    ) {
        let mut fields = vec![user, password, host, port.to_string(), database];
        for (k, v) in params {
            fields.extend([k, v]);
        }
        invariants::check_url(&encode(&fields));
    }

    /// userlist.txt reads back (poolwright's parser and PgBouncer's rules)
    /// as exactly the users and secrets written, or the writer refuses.
    #[test]
    fn userlists_read_back(users in prop::collection::vec((awkward(), awkward()), 0..6)) {
        let fields: Vec<String> = users.into_iter().flat_map(|(u, s)| [u, s]).collect();
        invariants::check_userlist(&encode(&fields));
    }

    /// Whatever config validation accepts renders to a pgbouncer.ini and
    /// userlist.txt that read back as the target, with nothing injected.
    #[test]
    fn pgbouncer_configs_render_and_read_back(
        version in 0u8..4,
        public_host in host(),
        upstream in host(),
        databases in prop::collection::vec((awkward(), host(), awkward(), awkward()), 1..4),
        reset_query in awkward(),
        admin_users in awkward(),
        users in prop::collection::vec((awkward(), awkward()), 1..3),
    ) {
        let mut fields = vec![
            char::from(version).to_string(),
            public_host,
            upstream,
            char::from(u8::try_from(databases.len() - 1).unwrap()).to_string(),
        ];
        for (name, host, dbname, app) in databases {
            fields.extend([name, host, dbname, app]);
        }
        fields.extend([reset_query, admin_users]);
        for (name, password) in users {
            fields.extend([name, password]);
        }
        invariants::check_pgbouncer_ini(&encode(&fields));
    }

    /// A .env merge keeps every byte it does not own, is idempotent, and
    /// every value reads back as written.
    #[test]
    fn env_merges_keep_unowned_bytes(
        lines in prop::collection::vec(
            (
                prop_oneof![
                    "[A-Z_]{1,8}=[a-z0-9:/@%]{0,12}",
                    "export [A-Z_]{1,8}=\"[a-z $'#\\\\]{0,10}\"",
                    "[A-Z_]{1,8}='[a-z \"#]{0,10}'",
                    "DATABASE_URL='[a-z ]{0,6}'( # [a-z]{0,4})?",
                    "# poolwright: target (prod|staging|old)( \\(driver [a-z]+\\))?",
                    "[^\r\n]{0,20}",
                    awkward(),
                ],
                prop_oneof!["\n", "\r\n", ""],
            ),
            0..10,
        ),
        choice in any::<u8>(),
        set in prop::collection::vec(
            (prop_oneof![Just("DATABASE_URL".to_string()), "[A-Z_]{1,8}"], awkward()),
            0..3,
        ),
    ) {
        let text: String = lines.iter().map(|(l, e)| format!("{l}{e}")).collect();
        let mut fields = vec![text, char::from(choice).to_string()];
        for (k, v) in set {
            fields.extend([k, v]);
        }
        invariants::check_env_merge(&encode(&fields));
    }

    /// Config text made of config-shaped fragments and awkward values:
    /// a valid config or a message that says where; never a panic.
    #[test]
    fn configs_load_or_say_where(
        fragments in prop::collection::vec(
            prop_oneof![
                Just("version: 1\n".to_string()),
                Just("targets:\n".to_string()),
                Just("  p:\n    provider: pgbouncer\n    upstream: { host: db }\n    public_host: pgb\n".to_string()),
                Just("    databases: { app: {} }\n    users: { app: { password: \"${PW}\" } }\n".to_string()),
                Just("  s:\n    provider: supabase\n    project_ref: abcdefghijklmnopqrst\n    password: x\n".to_string()),
                Just("  - ".to_string()),
                Just("&a [*a]\n".to_string()),
                awkward().prop_map(|s| format!("    key: {s}\n")),
                awkward(),
            ],
            0..10,
        ),
    ) {
        invariants::check_config(fragments.concat().as_bytes());
    }
}
