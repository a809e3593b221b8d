//! Replication commands: REPLICAOF (and its old name SLAVEOF), ROLE, WAIT, and REPLCONF, the
//! handshake a corekey replica opens with (`crate::repl`).

use super::spec::{acl, flag};
use super::{CommandSpec, ConnCtx, Exec, Group, NodeCmd};
use crate::commands::multi::Via;
use crate::resp::Out;

/// The replication commands that need more than the connection's shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplCmd {
    Role,
    Wait,
    Replconf,
}

const fn node(cmd: ReplCmd) -> Exec {
    Exec::Node(NodeCmd::Repl(cmd))
}

const ADMIN: u32 = flag::ADMIN | flag::NOSCRIPT | flag::STALE | flag::NO_ASYNC_LOADING;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        exec: Exec::Conn(replicaof),
        ..CommandSpec::new("replicaof", 3, ADMIN, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Group::Server, "5.0.0",
            "Configures a server as replica of another, or promotes it to a primary.", "O(1)", "args=(host:string port:integer|NO ONE)")
    },
    CommandSpec {
        exec: Exec::Conn(replicaof),
        deprecated: Some(("5.0.0", "`REPLICAOF`")),
        ..CommandSpec::new("slaveof", 3, ADMIN, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Group::Server, "1.0.0",
            "Sets a server as a replica of another, or promotes it to being a primary.", "O(1)", "args=(host:string port:integer|NO ONE)")
    },
    CommandSpec {
        exec: node(ReplCmd::Role),
        ..CommandSpec::new("role", 1, flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST, acl::ADMIN | acl::FAST | acl::DANGEROUS, Group::Server, "2.8.12",
            "Returns the replication role.", "O(1)", "")
    },
    CommandSpec {
        exec: node(ReplCmd::Wait),
        ..CommandSpec::new("wait", 3, 0, acl::SLOW | acl::CONNECTION, Group::Generic, "3.0.0",
            "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
            "O(1)", "numreplicas:integer timeout:integer")
    },
    CommandSpec {
        exec: node(ReplCmd::Replconf),
        ..CommandSpec::new("replconf", -1, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::ALLOW_BUSY, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Group::Server, "3.0.0",
            "An internal command for configuring the replication stream.", "O(1)", "")
    },
];

/// REPLICAOF host port | NO ONE.
fn replicaof(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    if ctx.shard.cluster.enabled() {
        ctx.out.err("REPLICAOF not allowed in cluster mode.");
        return;
    }
    if argv[1].eq_ignore_ascii_case(b"no") && argv[2].eq_ignore_ascii_case(b"one") {
        crate::repl::set_primary(ctx.shard, None);
        ctx.out.ok();
        return;
    }
    let Some(port) = super::int_arg(ctx.out, argv[2]) else {
        return;
    };
    let Ok(port) = u16::try_from(port) else {
        ctx.out.err("Invalid master port");
        return;
    };
    let host = String::from_utf8_lossy(argv[1]).into_owned();
    let me = ctx.shard.config().port;
    if port == me && (host == "127.0.0.1" || host == "localhost") {
        // Valkey would loop on itself; we refuse it plainly.
        ctx.out.err("Can't replicate from myself");
        return;
    }
    if crate::repl::set_primary(ctx.shard, Some((host, port))) {
        ctx.out.ok();
    } else {
        ctx.out.simple("OK Already connected to specified master");
    }
}

/// Runs a node-wide replication command.
pub async fn run(cmd: ReplCmd, via: Via<'_>, argv: &[&[u8]], out: &mut Out) {
    match cmd {
        ReplCmd::Role => crate::repl::info::role(via, out).await,
        ReplCmd::Wait => wait(via, argv, out).await,
        ReplCmd::Replconf => replconf(via, argv, out).await,
    }
}

/// WAIT numreplicas timeout.
async fn wait(via: Via<'_>, argv: &[&[u8]], out: &mut Out) {
    if via.node.repl.is_replica() {
        out.err("WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
        return;
    }
    let Some(n) = super::int_arg(out, argv[1]) else {
        return;
    };
    let Some(timeout) = super::int_arg(out, argv[2]) else {
        return;
    };
    if timeout < 0 {
        out.err("timeout is negative");
        return;
    }
    let needed = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
    let got = crate::repl::info::wait_acks(via, needed, timeout as u64).await;
    out.int(got as i64);
}

/// REPLCONF: `corekey-layout` answers the replication port of each shard; the subcommands a
/// Valkey replica sends are accepted and ignored (corekey streams are not Valkey's).
async fn replconf(via: Via<'_>, argv: &[&[u8]], out: &mut Out) {
    if argv.len() == 2 && argv[1].eq_ignore_ascii_case(b"corekey-layout") {
        let ports = crate::repl::layout(via).await;
        let mut line = String::from("corekey-layout");
        for p in ports {
            line.push(' ');
            line.push_str(&p.to_string());
        }
        out.simple(&line);
        return;
    }
    if !(argv.len() - 1).is_multiple_of(2) {
        out.err("syntax error");
        return;
    }
    out.ok();
}
