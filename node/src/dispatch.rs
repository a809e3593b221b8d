//! Running commands on shards: the per-command bookkeeping (statistics, errors), the batches
//! that carry commands to another shard and their replies back, and the entry point of the
//! node-wide commands.

use crate::clients::ClientInfo;
use crate::commands::spec::flag;
use crate::commands::{self, CmdId, KeyCtx, KeyFn, NodeCmd, Resolved};
use crate::resp::Out;
use crate::session::ClientState;
use crate::shard::latency::{self, SlowEntry};
use crate::shard::{unix_ms, Shard};
use smallvec::SmallVec;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Records one executed command in this shard's statistics: calls, time and errors, and
/// (unless it is a blocking command, whose time includes its wait) its latency histogram
/// and a latency monitor event. Returns how long it took, in microseconds.
pub fn record(shard: &Shard, id: CmdId, t0: Instant, failed: bool, errors: Vec<Box<str>>) -> u64 {
    let ns = t0.elapsed().as_nanos() as u64;
    let usec = ns / 1000;
    let config = shard.config.borrow();
    let mut stats = shard.stats.borrow_mut();
    let s = &mut stats.commands[id];
    s.calls += 1;
    s.usec += usec;
    if failed {
        s.failed += 1;
    }
    stats.total_commands += 1;
    if !errors.is_empty() {
        stats.add_errors(errors);
    }
    let spec = commands::registry().all[id].spec;
    if spec.has(flag::BLOCKING) {
        return usec;
    }
    if config.latency_tracking {
        stats.latency[id]
            .get_or_insert_with(Default::default)
            .record(ns);
    }
    let threshold_ms = config.latency_monitor_threshold_ms;
    if threshold_ms > 0 && usec / 1000 >= threshold_ms {
        let event = if spec.has(flag::FAST) {
            "fast-command"
        } else {
            "command"
        };
        shard
            .latency_monitor
            .borrow_mut()
            .add(event, unix_ms() / 1000, usec / 1000);
    }
    usec
}

/// A slow log entry for a command that took `usec`, when the slow log wants it; the address
/// and name of the client are filled in by [`log_slow`] on the client's shard.
pub fn slow_entry(shard: &Shard, r: &Resolved, argv: &[&[u8]], usec: u64) -> Option<SlowEntry> {
    let threshold = shard.config.borrow().slowlog_log_slower_than;
    if threshold < 0
        || usec < threshold as u64
        || r.spec.has(flag::SKIP_SLOWLOG)
        || r.spec.has(flag::BLOCKING)
    {
        return None;
    }
    Some(SlowEntry {
        id: shard.node.slowlog_next_id.fetch_add(1, Ordering::Relaxed),
        time_s: unix_ms() / 1000,
        usec,
        argv: {
            let secret = secret_args(&r.fullname, argv);
            let shown: SmallVec<[&[u8]; 8]> = (0..argv.len())
                .map(|i| {
                    if secret.contains(&i) {
                        REDACTED
                    } else {
                        argv[i]
                    }
                })
                .collect();
            latency::slowlog_args(&shown)
        },
        addr: String::new(),
        name: Vec::new(),
    })
}

/// Adds a slow log entry of `client`'s to this shard's slow log.
pub fn log_slow(shard: &Shard, client: &ClientInfo, mut e: SlowEntry) {
    e.addr.clone_from(&client.addr);
    e.name = client.name.borrow().clone();
    let max_len = shard.config.borrow().slowlog_max_len as usize;
    shard.slowlog.borrow_mut().push(e, max_len);
}

/// Slow log bookkeeping of a command that ran for `client` on this shard.
pub fn check_slow(shard: &Shard, client: &ClientInfo, r: &Resolved, argv: &[&[u8]], usec: u64) {
    if let Some(e) = slow_entry(shard, r, argv, usec) {
        log_slow(shard, client, e);
    }
}

/// Shows an executed command to every MONITOR client of the node, formatted as Valkey does:
/// `+<unix time>.<µs> [<db> <client address>] "arg" ...`. Administrative commands are not
/// shown, and passwords are redacted. Costs one relaxed load when nobody monitors.
pub fn feed_monitors(shard: &Shard, client: &ClientState, r: &Resolved, argv: &[&[u8]]) {
    let node = &shard.node;
    if node.monitors_total.load(Ordering::Relaxed) == 0
        || r.spec.has(flag::ADMIN)
        || r.spec.has(flag::SKIP_MONITOR)
    {
        return;
    }
    let line = monitor_line(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
        client.db,
        &client.info.addr,
        &r.fullname,
        argv,
    );
    for t in 0..node.shards {
        if node.monitors[t].load(Ordering::Relaxed) == 0 {
            continue;
        }
        if t == shard.id {
            deliver_monitor_line(shard, &line);
        } else {
            let line = line.clone();
            shard.post(t, Box::new(move |s| deliver_monitor_line(s, &line)));
        }
    }
}

fn deliver_monitor_line(shard: &Shard, line: &[u8]) {
    for c in shard.monitors.borrow().iter() {
        if !c.pushes.push(line) {
            tracing::warn!(client = %c.addr, "closing MONITOR client whose output passed the limit");
            c.kill();
        }
    }
}

/// What MONITOR and SLOWLOG show in place of a password.
const REDACTED: &[u8] = b"(redacted)";

/// The positions of the arguments that are secrets: AUTH's, and HELLO's after AUTH (Valkey's
/// `redactClientCommandArgument`).
fn secret_args(fullname: &str, argv: &[&[u8]]) -> std::ops::Range<usize> {
    match fullname {
        "auth" => 1..argv.len(),
        "hello" => match argv.iter().position(|a| commands::opt_is(a, "auth")) {
            Some(p) => p + 1..p + 3,
            None => 0..0,
        },
        _ => 0..0,
    }
}

/// One MONITOR line. `fullname` tells which arguments are passwords (AUTH's, HELLO's after
/// AUTH), shown as `(redacted)` as Valkey does.
pub fn monitor_line(
    now: std::time::Duration,
    db: usize,
    addr: &str,
    fullname: &str,
    argv: &[&[u8]],
) -> Vec<u8> {
    let mut line = format!(
        "+{}.{:06} [{db} {addr}]",
        now.as_secs(),
        now.subsec_micros()
    )
    .into_bytes();
    let secret = secret_args(fullname, argv);
    for (i, a) in argv.iter().enumerate() {
        line.push(b' ');
        crate::util::repr_into(&mut line, if secret.contains(&i) { REDACTED } else { a });
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// Runs a key command on `shard`, which owns its keys, writing the reply into `out`;
/// returns how long it took in microseconds.
pub fn exec_key(
    shard: &Shard,
    r: &Resolved,
    f: KeyFn,
    db: usize,
    argv: &[&[u8]],
    out: &mut Out,
    now_ms: i64,
) -> u64 {
    let t0 = Instant::now();
    let before = out.error_count();
    let replicating = crate::repl::capture::before_key_cmd(shard);
    {
        let mut ks = shard.ks.borrow_mut();
        let config = shard.config.borrow();
        // Clients WATCHing a key a write command names see their EXEC fail. The list, set,
        // sorted set and hash commands mark the keys they change themselves, exactly where
        // Valkey calls signalModifiedKey; for the others every write that succeeded marks
        // its keys present before or after, unless its reply says it changed nothing.
        let reply_start = out.buf.len();
        let watched = (!ks.watches.is_empty()
            && r.spec.has(commands::spec::flag::WRITE)
            && !marks_own_keys(r.spec.group))
        .then(|| {
            let mut pos = Vec::new();
            commands::key_positions(r.spec, argv, &mut pos)?;
            let before: Vec<bool> = pos
                .iter()
                .map(|&p| ks.dbs[db].stored(argv[p], now_ms).is_some())
                .collect();
            Some((pos, before))
        })
        .flatten();
        let mut ctx = KeyCtx {
            ks: &mut ks,
            db,
            now_ms,
            out: &mut *out,
            config: &config,
        };
        f(&mut ctx, argv);
        let changed = out.error_count() == before && !unchanged(argv, &out.buf[reply_start..]);
        if let Some((pos, before)) = watched.filter(|_| changed) {
            for (i, (p, existed)) in pos.into_iter().zip(before).enumerate() {
                if !signals_key(argv, i) {
                    continue;
                }
                let exists = ks.dbs[db].stored(argv[p], now_ms).is_some();
                if existed || exists {
                    ks.watches.touched_exists(db, argv[p], exists);
                }
            }
            if let Some((other, i)) = other_db_key(argv, &out.buf[reply_start..]) {
                if other < ks.dbs.len() {
                    ks.watches.touched(other, argv[i]);
                }
            }
        }
    }
    let failed = out.error_count() > before;
    if replicating {
        crate::repl::capture::after_key_cmd(shard, r, db, argv, now_ms, failed);
    }
    // The write may have made keys ready for blocked clients: serve them now that it is done.
    crate::shard::block::serve_ready(shard);
    let errors = out.take_errors();
    record(shard, r.id, t0, failed, errors)
}

/// Whether a group's commands mark the keys they change for WATCH themselves.
fn marks_own_keys(group: commands::spec::Group) -> bool {
    use commands::spec::Group;
    matches!(
        group,
        Group::List | Group::Set | Group::SortedSet | Group::Hash
    )
}

/// Whether the reply of a string or generic write says it changed nothing, where Valkey then
/// does not call signalModifiedKey: a condition that did not hold (PERSIST, EXPIRE and its
/// options, SETNX, MSETNX, RENAMENX, COPY, MOVE and SMOVE across shards answering 0; SET NX/XX answering nil without
/// GET), SETRANGE of an empty string, GETEX without an option that changes the TTL.
pub fn unchanged(argv: &[&[u8]], reply: &[u8]) -> bool {
    let name = argv[0];
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    let zero = reply == b":0\r\n";
    let nil = reply == b"$-1\r\n" || reply == b"_\r\n";
    let has_word = |w: &str| {
        argv[1..]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(w.as_bytes()))
    };
    if zero
        && [
            "PERSIST",
            "EXPIRE",
            "PEXPIRE",
            "EXPIREAT",
            "PEXPIREAT",
            "SETNX",
            "MSETNX",
            "RENAMENX",
            "COPY",
            "MOVE",
            "SMOVE",
        ]
        .iter()
        .any(|n| is(n))
    {
        return true;
    }
    if is("SET") && nil && !has_word("GET") {
        return true;
    }
    if is("SETRANGE") && argv.get(3).is_some_and(|v| v.is_empty()) {
        return true;
    }
    if is("GETEX") {
        // Only EX, PX, EXAT, PXAT (a new TTL) and a PERSIST that removed one change the key;
        // a PERSIST on a key without a TTL is not told apart here and counts as a change.
        return argv.len() == 2;
    }
    false
}

/// Whether a write that changed something signals its `i`-th key (in key-spec order) as
/// modified: all of them, except that COPY signals only its destination, and that one only
/// in the current database (with a DB option the copy lands in another; its watchers there
/// are not marked).
pub fn signals_key(argv: &[&[u8]], i: usize) -> bool {
    if argv[0].eq_ignore_ascii_case(b"COPY") {
        let other_db = argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"DB"));
        return i == 1 && !other_db;
    }
    true
}

/// The key a successful MOVE or COPY ... DB wrote in another database: (database, index of
/// the key in `argv`), which Valkey signals as modified there.
pub fn other_db_key(argv: &[&[u8]], reply: &[u8]) -> Option<(usize, usize)> {
    if reply != b":1\r\n" {
        return None;
    }
    let number = |a: &[u8]| std::str::from_utf8(a).ok()?.parse::<usize>().ok();
    if argv[0].eq_ignore_ascii_case(b"MOVE") {
        return Some((number(argv.get(2)?)?, 1));
    }
    if argv[0].eq_ignore_ascii_case(b"COPY") {
        let at = argv
            .iter()
            .skip(3)
            .position(|a| a.eq_ignore_ascii_case(b"DB"))?
            + 3;
        return Some((number(argv.get(at + 1)?)?, 2));
    }
    None
}

#[derive(Debug, Clone, Copy)]
struct FwdCmd {
    id: CmdId,
    db: u32,
    resp3: bool,
    first_arg: u32,
    argc: u32,
}

/// Key commands going to one shard in one hop. Owns copies of the arguments, so that nothing
/// points into the sending shard's buffers.
#[derive(Debug, Default)]
pub struct Forward {
    cmds: Vec<FwdCmd>,
    data: Vec<u8>,
    arg_ends: Vec<u32>,
}

impl Forward {
    /// Adds a command; returns its index in the batch.
    pub fn push(&mut self, id: CmdId, db: usize, resp3: bool, argv: &[&[u8]]) -> usize {
        let first_arg = self.arg_ends.len() as u32;
        for a in argv {
            self.data.extend_from_slice(a);
            self.arg_ends.push(self.data.len() as u32);
        }
        self.cmds.push(FwdCmd {
            id,
            db: db as u32,
            resp3,
            first_arg,
            argc: argv.len() as u32,
        });
        self.cmds.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    fn arg(&self, i: usize) -> &[u8] {
        let start = if i == 0 {
            0
        } else {
            self.arg_ends[i - 1] as usize
        };
        &self.data[start..self.arg_ends[i] as usize]
    }
}

/// The replies of a [`Forward`], in its order, and the slow log entries of its slow
/// commands (for the client's shard to complete and keep).
pub struct ReplyBatch {
    buf: Vec<u8>,
    ends: Vec<u32>,
    pub slow: Vec<SlowEntry>,
}

impl ReplyBatch {
    pub fn reply(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.buf[start..self.ends[i] as usize]
    }
}

/// Runs a forwarded batch on the shard that received it.
pub fn exec_forward(shard: &Shard, fwd: Forward) -> ReplyBatch {
    let now_ms = unix_ms();
    let registry = commands::registry();
    let mut out = Out::new(false);
    let mut ends = Vec::with_capacity(fwd.cmds.len());
    let mut slow = Vec::new();
    for c in &fwd.cmds {
        let argv: SmallVec<[&[u8]; 8]> = (c.first_arg as usize..(c.first_arg + c.argc) as usize)
            .map(|i| fwd.arg(i))
            .collect();
        let r = &registry.all[c.id];
        out.resp3 = c.resp3;
        let usec = match r.spec.exec {
            commands::Exec::Key(f) => exec_key(shard, r, f, c.db as usize, &argv, &mut out, now_ms),
            _ => unreachable!("only key commands are forwarded"),
        };
        slow.extend(slow_entry(shard, r, &argv, usec));
        ends.push(out.buf.len() as u32);
    }
    ReplyBatch {
        buf: out.buf,
        ends,
        slow,
    }
}

/// At most 128 bytes of a client-supplied word, up to any NUL (Valkey prints `%.128s`). The
/// bytes stay as sent: Valkey quotes them unchanged, whether or not they are UTF-8.
pub fn clip(arg: &[u8]) -> &[u8] {
    let word = commands::cstr(arg);
    &word[..word.len().min(128)]
}

/// Valkey's text for an unknown command.
pub fn unknown_command_message(argv: &[&[u8]]) -> Vec<u8> {
    let mut args = Vec::new();
    for a in argv.iter().skip(1) {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        let word = commands::cstr(a);
        args.push(b'\'');
        args.extend_from_slice(&word[..word.len().min(room)]);
        args.extend_from_slice(b"' ");
    }
    [
        b"unknown command '".as_slice(),
        clip(argv.first().copied().unwrap_or_default()),
        b"', with args beginning with: ",
        &args,
    ]
    .concat()
}

/// Runs a node-wide command.
pub async fn run_node(
    cmd: NodeCmd,
    shard: commands::multi::Via<'_>,
    client: &mut ClientState,
    argv: &[&[u8]],
    out: &mut Out,
) {
    use crate::pubsub::Kind;
    use commands::diagnostics as D;
    use commands::pubsub as P;
    match cmd {
        NodeCmd::Keys => commands::generic::keys(shard, client, argv, out).await,
        NodeCmd::Scan => commands::generic::scan(shard, client, argv, out).await,
        NodeCmd::RandomKey => commands::generic::randomkey(shard, client, out).await,
        NodeCmd::DbSize => commands::server::dbsize(shard, client, out).await,
        NodeCmd::FlushAll => commands::server::flushall(shard, argv, out).await,
        NodeCmd::FlushDb => commands::server::flushdb(shard, client, argv, out).await,
        NodeCmd::SwapDb => commands::server::swapdb(shard, argv, out).await,
        NodeCmd::Info => commands::server::info(shard, client, argv, out).await,
        NodeCmd::ConfigGet => commands::server::config_get(shard.shard, argv, out),
        NodeCmd::ConfigSet => commands::server::config_set(shard, argv, out).await,
        NodeCmd::ConfigResetStat => commands::server::config_resetstat(shard, out).await,
        NodeCmd::ClientList => commands::connection::client_list(shard, client, argv, out).await,
        NodeCmd::ClientKill => commands::connection::client_kill(shard, client, argv, out).await,
        NodeCmd::Shutdown => commands::server::shutdown(shard.shard, client, argv, out),
        NodeCmd::Publish => P::publish(shard, Kind::Channel, argv, out).await,
        NodeCmd::SPublish => P::publish(shard, Kind::Shard, argv, out).await,
        NodeCmd::PubsubChannels => P::pubsub_channels(shard, Kind::Channel, argv, out).await,
        NodeCmd::PubsubShardChannels => P::pubsub_channels(shard, Kind::Shard, argv, out).await,
        NodeCmd::PubsubNumsub => P::pubsub_numsub(shard, Kind::Channel, argv, out).await,
        NodeCmd::PubsubShardNumsub => P::pubsub_numsub(shard, Kind::Shard, argv, out).await,
        NodeCmd::PubsubNumpat => P::pubsub_numpat(shard, out).await,
        NodeCmd::Exec => commands::transaction::exec(shard.shard, client, out).await,
        NodeCmd::Discard => commands::transaction::discard(shard, client, out).await,
        NodeCmd::Watch => commands::transaction::watch(shard, client, argv, out).await,
        NodeCmd::Unwatch => commands::transaction::unwatch(shard, client, out).await,
        NodeCmd::Cluster(c) => commands::cluster::run(c, shard, client, argv, out).await,
        NodeCmd::ConfigRewrite => commands::server::config_rewrite(shard, out),
        NodeCmd::SlowlogGet => D::slowlog_get(shard, argv, out).await,
        NodeCmd::SlowlogLen => D::slowlog_len(shard, out).await,
        NodeCmd::SlowlogReset => D::slowlog_reset(shard, out).await,
        NodeCmd::LatencyLatest => D::latency_latest(shard, out).await,
        NodeCmd::LatencyHistory => D::latency_history(shard, argv, out).await,
        NodeCmd::LatencyReset => D::latency_reset(shard, argv, out).await,
        NodeCmd::LatencyHistogram => D::latency_histogram(shard, argv, out).await,
        NodeCmd::LatencyDoctor => D::latency_doctor(shard, out).await,
        NodeCmd::Repl(c) => commands::replication::run(c, shard, argv, out).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unknown-command text quotes at most ~128 bytes of arguments, as Valkey does.
    #[test]
    fn unknown_command_text() {
        assert_eq!(
            unknown_command_message(&[b"foo", b"a", b"b"]),
            b"unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            unknown_command_message(&[b"foo"]),
            b"unknown command 'foo', with args beginning with: "
        );
        let long = vec![b'x'; 300];
        let msg = unknown_command_message(&[b"foo", &long, b"z"]);
        assert!(msg.ends_with(format!("'{}' ", "x".repeat(128)).as_bytes()));
    }

    /// Bytes that are not UTF-8 are quoted as sent (Valkey does not re-encode them), and a NUL
    /// ends a word, as `%s` does.
    #[test]
    fn unknown_command_binary() {
        assert_eq!(
            unknown_command_message(&[b"foo\xff", b"a\xfe", b"b\x00c"]),
            b"unknown command 'foo\xff', with args beginning with: 'a\xfe' 'b' "
        );
        assert_eq!(clip(b"x\x00y"), b"x");
    }

    /// MONITOR lines quote arguments as `sdscatrepr` and hide passwords, as Valkey.
    #[test]
    fn monitor_lines() {
        let now = std::time::Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(
            monitor_line(
                now,
                0,
                "127.0.0.1:5000",
                "set",
                &[b"set", b"k", b"a \"b\"\n\x01"]
            ),
            b"+1700000000.123456 [0 127.0.0.1:5000] \"set\" \"k\" \"a \\\"b\\\"\\n\\x01\"\r\n"
        );
        assert_eq!(
            monitor_line(now, 3, "[::1]:1", "hello", &[b"hello", b"3", b"AUTH", b"u", b"p", b"SETNAME", b"n"]),
            b"+1700000000.123456 [3 [::1]:1] \"hello\" \"3\" \"AUTH\" \"(redacted)\" \"(redacted)\" \"SETNAME\" \"n\"\r\n"
        );
        assert_eq!(secret_args("auth", &[b"auth", b"u", b"p"]), 1..3);
    }

    /// A forwarded batch carries each command's arguments intact.
    #[test]
    fn forward_roundtrip() {
        let mut f = Forward::default();
        f.push(3, 0, false, &[b"set", b"k", b""]);
        f.push(4, 2, true, &[b"get", b"k"]);
        assert_eq!(f.len(), 2);
        assert_eq!(f.arg(0), b"set");
        assert_eq!(f.arg(2), b"");
        assert_eq!(f.arg(4), b"k");
    }
}
