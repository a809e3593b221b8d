//! Configuration at start-up: bad directives stop corekey with exit code 1 and a message that
//! names the directive; a config file is read and command-line flags override it.

use corekey_tests::server::{lease_port, run_to_exit, Corekey};
use std::time::Duration;

/// How long corekey may take to refuse a bad configuration.
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

/// Runs corekey with good base flags plus `extra` and expects it to exit with 1, printing on
/// stderr a message that contains `needle`.
fn refuses(extra: &[&str], needle: &str) {
    let lease = lease_port();
    let port = lease.port().to_string();
    let mut args = vec!["--port", &port, "--bind", "127.0.0.1", "--cores", "2"];
    args.extend_from_slice(extra);
    let done = run_to_exit("corekey", &Corekey::binary(), &args, EXIT_DEADLINE);
    assert_eq!(
        done.status.code(),
        Some(1),
        "exit status with {extra:?}: {:?}\nstderr: {}",
        done.status,
        done.stderr
    );
    assert!(
        done.stderr.contains(needle),
        "stderr does not name `{needle}`:\n{}\nstdout:\n{}",
        done.stderr,
        done.stdout
    );
}

/// An unknown directive is refused, naming it.
#[test]
fn unknown_directive_exits_1() {
    refuses(&["--nosuch", "1"], "nosuch");
}

/// A value that does not parse is refused, naming the directive.
#[test]
fn bad_value_exits_1() {
    refuses(&["--port", "abc"], "port");
}

/// A config file given as the first argument is read (its `databases 4` limits SELECT), and a
/// flag overrides the file (the file's port is not used, the flag's is).
#[test]
fn config_file_is_read_and_flags_override_it() {
    let file_port = lease_port();
    let path = std::env::temp_dir().join(format!(
        "corekey-test-{}-{}.conf",
        std::process::id(),
        file_port.port()
    ));
    std::fs::write(
        &path,
        format!(
            "# written by config.rs\nport {}\nbind 127.0.0.1\ndatabases 4\n",
            file_port.port()
        ),
    )
    .expect("writing the config file");
    let server = Corekey::start_with_config_file(&path, &[]);
    let _ = std::fs::remove_file(&path);

    assert_ne!(server.port(), file_port.port());
    assert!(
        !corekey_tests::server::answers_ping(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            file_port.port()
        ))),
        "corekey listens on the file's port too"
    );
    let mut c = server.client();
    assert_eq!(c.call_text(&["SELECT", "3"]), "+OK\r\n");
    assert_eq!(
        c.call_text(&["SELECT", "4"]),
        "-ERR DB index is out of range\r\n"
    );
}
