//! Graceful shutdown: SIGTERM makes corekey finish the replies it owes and exit with 0, with
//! clients connected.

use corekey_tests::server::Corekey;
use std::time::Duration;

/// How long corekey may take to exit after SIGTERM.
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

/// With idle and recently busy clients connected, SIGTERM ends the process with exit code 0,
/// and each client then sees its connection closed.
#[test]
fn sigterm_with_clients_connected_exits_zero() {
    let mut server = Corekey::start(&[]);
    let mut clients: Vec<_> = (0..10).map(|_| server.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.call_text(&["SET", &format!("k{i}"), "v"]), "+OK\r\n");
    }
    let status = server
        .terminate(EXIT_DEADLINE)
        .unwrap_or_else(|| panic!("corekey still running {EXIT_DEADLINE:?} after SIGTERM"));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status:?}"
    );
    for c in &mut clients {
        let rest = c
            .read_until_closed(Duration::from_secs(5))
            .expect("the connection to be closed");
        assert!(
            rest.is_empty(),
            "an idle client got unexpected replies at shutdown"
        );
    }
}

/// A client whose pipeline is being answered when SIGTERM arrives gets every reply, complete
/// and in order, then a clean close; the process exits with 0.
#[test]
fn pipeline_in_flight_gets_its_replies() {
    const COMMANDS: usize = 200;
    let mut server = Corekey::start(&[]);
    let mut c = server.client();
    let mut bytes = Vec::new();
    for _ in 0..COMMANDS {
        corekey_tests::client::encode_into(&mut bytes, &["INCR", "shutdown-counter"]);
    }
    c.send_raw(&bytes).expect("writing the pipeline");
    // Once the first reply is here the server has the pipeline and is answering it.
    assert_eq!(c.read_reply().expect("the first reply").raw, b":1\r\n");
    server.send_sigterm();
    for i in 2..=COMMANDS {
        let f = c
            .read_reply()
            .unwrap_or_else(|e| panic!("reply #{i} of {COMMANDS} after SIGTERM: {e}"));
        assert_eq!(f.raw, format!(":{i}\r\n").as_bytes(), "reply #{i}");
    }
    let rest = c
        .read_until_closed(EXIT_DEADLINE)
        .expect("a clean close after the replies");
    assert!(rest.is_empty(), "unexpected extra replies: {rest:?}");
    let status = server
        .process()
        .wait_exit(EXIT_DEADLINE)
        .unwrap_or_else(|| panic!("corekey still running {EXIT_DEADLINE:?} after SIGTERM"));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status:?}"
    );
}
