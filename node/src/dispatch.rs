//! Running commands on shards: the per-command bookkeeping (statistics, errors), the batches
//! that carry commands to another shard and their replies back, and the entry point of the
//! node-wide commands.

use crate::commands::{self, CmdId, KeyCtx, KeyFn, NodeCmd, Resolved};
use crate::resp::Out;
use crate::session::ClientState;
use crate::shard::{unix_ms, Shard};
use smallvec::SmallVec;
use std::time::Instant;

/// Records one executed command in this shard's statistics.
pub fn record(shard: &Shard, id: CmdId, t0: Instant, failed: bool, errors: Vec<Box<str>>) {
    let usec = t0.elapsed().as_micros() as u64;
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
}

/// Runs a key command on `shard`, which owns its keys, writing the reply into `out`.
pub fn exec_key(
    shard: &Shard,
    r: &Resolved,
    f: KeyFn,
    db: usize,
    argv: &[&[u8]],
    out: &mut Out,
    now_ms: i64,
) {
    let t0 = Instant::now();
    let before = out.error_count();
    let replicating = crate::repl::capture::before_key_cmd(shard);
    {
        let mut ks = shard.ks.borrow_mut();
        let config = shard.config.borrow();
        // Clients WATCHing a key a write command names see their EXEC fail. Marked here for
        // every write (whatever the family marks itself): keys present before or after.
        let watched = (!ks.watches.is_empty() && r.spec.has(commands::spec::flag::WRITE))
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
        if let Some((pos, before)) = watched {
            for (p, existed) in pos.into_iter().zip(before) {
                let exists = ks.dbs[db].stored(argv[p], now_ms).is_some();
                if existed || exists {
                    ks.watches.touched_exists(db, argv[p], exists);
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
    record(shard, r.id, t0, failed, errors);
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

/// The replies of a [`Forward`], in its order.
pub struct ReplyBatch {
    buf: Vec<u8>,
    ends: Vec<u32>,
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
    for c in &fwd.cmds {
        let argv: SmallVec<[&[u8]; 8]> = (c.first_arg as usize..(c.first_arg + c.argc) as usize)
            .map(|i| fwd.arg(i))
            .collect();
        let r = &registry.all[c.id];
        out.resp3 = c.resp3;
        match r.spec.exec {
            commands::Exec::Key(f) => exec_key(shard, r, f, c.db as usize, &argv, &mut out, now_ms),
            _ => unreachable!("only key commands are forwarded"),
        }
        ends.push(out.buf.len() as u32);
    }
    ReplyBatch { buf: out.buf, ends }
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
