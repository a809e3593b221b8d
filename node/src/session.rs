//! A client session: the protocol side of one connection. It parses requests, runs each
//! command where it belongs and writes the replies back in the client's order.
//!
//! How a batch runs (everything parsed from one read):
//!
//! - Connection commands (PING, SELECT, HELLO, AUTH…) run here, in order, at once; so a SELECT
//!   or HELLO affects the commands after it in the same pipeline.
//! - A key command whose keys all live on this shard runs here at once; one whose keys live on
//!   another shard joins that shard's group. Groups go out together, one hop per shard per
//!   batch, and run in parallel. Per shard, commands keep their order, and all commands on a
//!   key go to the same shard, so per-key order holds.
//! - A command that involves several shards (a multi-key command spanning shards, KEYS,
//!   FLUSHALL, INFO…) is a barrier: the groups sent so far are finished first, then it runs,
//!   coordinated from here.
//! - Replies are assembled in request order: while nothing is in flight they go straight into
//!   the output buffer, otherwise into a scratch buffer with a slot per command.

use crate::clients::ClientInfo;
use crate::commands::multi::Via;
use crate::commands::{self, ConnCtx, Exec, Lookup, Resolved};
use crate::dispatch::{self, Forward, ReplyBatch};
use crate::net::{Flow, Peer, Session};
use crate::resp::{Out, Parser, ProtoLimits};
use crate::shard::{unix_ms, Shard, Txn};
use smallvec::SmallVec;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The state of a connection that commands may read and change.
pub struct ClientState {
    pub id: u64,
    pub db: usize,
    pub resp3: bool,
    pub authenticated: bool,
    pub info: Rc<ClientInfo>,
    /// Stop running commands and close once the replies so far are written.
    pub close_after_reply: bool,
    /// The transaction being queued, after MULTI.
    pub multi: Option<commands::transaction::MultiState>,
    /// Keys WATCHed, with their database.
    pub watched: Vec<(usize, Vec<u8>)>,
    /// ASKING and READONLY (cluster mode).
    pub cluster: crate::cluster::ClientFlags,
}

impl ClientState {
    /// Whether the client must still authenticate before running most commands.
    pub fn auth_required(&self, shard: &Shard) -> bool {
        !self.authenticated && !shard.config.borrow().requirepass.is_empty()
    }
}

enum Slot {
    Local { start: usize, end: usize },
    Remote { shard: usize, index: usize },
}

/// A connection's session.
pub struct ClientSession {
    shard: Rc<Shard>,
    pub state: ClientState,
    parser: Parser,
    key_pos: Vec<usize>,
    /// Replies of commands run here while others are in flight.
    scratch: Out,
    slots: Vec<Slot>,
    /// Commands waiting to go to each shard.
    groups: Vec<Forward>,
    forwarding: bool,
    /// Bytes left unconsumed in the input after the previous call (the start of a command
    /// still arriving); whatever the input holds beyond them arrived since.
    unparsed_input: usize,
    /// The current batch ran a write (sync mode waits for replicas before replying).
    wrote: bool,
    /// Writes sent to other shards and not yet answered, counted for a manual failover's
    /// write pause (`crate::cluster::pause`) until [`Self::flush`] has their replies.
    forwarded_writes: Vec<crate::cluster::pause::Admission>,
}

impl ClientSession {
    pub fn new(shard: Rc<Shard>, info: Rc<ClientInfo>) -> ClientSession {
        let shards = shard.shards();
        let authenticated = shard.config.borrow().requirepass.is_empty();
        ClientSession {
            state: ClientState {
                id: info.id,
                db: 0,
                resp3: false,
                authenticated,
                info,
                close_after_reply: false,
                multi: None,
                watched: Vec::new(),
                cluster: Default::default(),
            },
            parser: Parser::new(),
            key_pos: Vec::new(),
            scratch: Out::new(false),
            slots: Vec::new(),
            groups: (0..shards).map(|_| Forward::default()).collect(),
            forwarding: false,
            unparsed_input: 0,
            wrote: false,
            forwarded_writes: Vec::new(),
            shard,
        }
    }

    /// Runs the commands the parser holds, appending replies to `out`.
    async fn run_batch(
        &mut self,
        parser: &Parser,
        input: &[u8],
        out: &mut Out,
        peer: &mut Peer<'_>,
    ) {
        let now_ms = unix_ms();
        let replies_start = out.buf.len();
        for c in &parser.cmds {
            if self.state.close_after_reply {
                break;
            }
            let argv: SmallVec<[&[u8]; 8]> = parser.args[c.first..c.first + c.argc]
                .iter()
                .map(|&a| parser.arg(input, a))
                .collect();
            self.run_one(&argv, out, now_ms, peer).await;
        }
        self.flush(out).await;
        self.sync_replicas(out, replies_start).await;
    }

    /// Sync mode (`min-replicas-ack N`): when the batch wrote, its replies wait until N
    /// replicas acknowledged everything written so far. If they do not in time, the batch's
    /// replies are withdrawn and the connection closed: a client is never told a write
    /// succeeded that fewer than N replicas hold.
    async fn sync_replicas(&mut self, out: &mut Out, replies_start: usize) {
        if !std::mem::take(&mut self.wrote) {
            return;
        }
        let (needed, timeout_ms) = {
            let c = self.shard.config.borrow();
            (c.repl.min_replicas_ack, c.repl.min_replicas_ack_timeout_ms)
        };
        if needed == 0 || self.shard.node.repl.is_replica() {
            return;
        }
        let via = commands::multi::Via::direct(&self.shard);
        let acked = crate::repl::info::wait_acks(via, needed, timeout_ms).await;
        if acked < needed {
            tracing::warn!(
                client = self.state.id,
                acked,
                needed,
                "sync mode: writes not acknowledged by enough replicas, closing the client"
            );
            out.buf.truncate(replies_start);
            self.state.close_after_reply = true;
        }
    }

    /// Where the reply of a command run here goes now.
    fn local_out<'a>(&'a mut self, out: &'a mut Out) -> &'a mut Out {
        if self.forwarding {
            self.scratch.resp3 = out.resp3;
            &mut self.scratch
        } else {
            out
        }
    }

    /// Records the slot of a reply written by [`Self::local_out`] from `start`.
    fn mark_local(&mut self, start: usize) {
        if self.forwarding {
            self.slots.push(Slot::Local {
                start,
                end: self.scratch.buf.len(),
            });
        }
    }

    fn local_len(&self, out: &Out) -> usize {
        if self.forwarding {
            self.scratch.buf.len()
        } else {
            out.buf.len()
        }
    }

    /// A command refused before running: the error reply, and its statistics. Inside MULTI
    /// the transaction is flagged (EXEC will answer EXECABORT); a refused EXEC discards it.
    async fn reject(&mut self, out: &mut Out, r: Option<&Resolved>, msg: &[u8]) {
        let mut abort_msg = None;
        if let Some(m) = self.state.multi.as_mut() {
            if r.is_some_and(|r| r.fullname == "exec") {
                self.state.multi = None;
                // Valkey's `execCommandAbort` quotes the refusal as formatted, without its
                // leading '-' (and without the "ERR " a plain error reply would carry).
                let reason = msg.strip_prefix(b"-").unwrap_or(msg).to_vec();
                abort_msg = Some(
                    [
                        b"-EXECABORT Transaction discarded because of: ".as_slice(),
                        &reason,
                    ]
                    .concat(),
                );
                let shard = self.shard.clone();
                commands::transaction::unwatch_all(Via::direct(&shard), &mut self.state).await;
            } else {
                m.aborted = true;
            }
        }
        let msg = abort_msg.as_deref().unwrap_or(msg);
        let start = self.local_len(out);
        let o = self.local_out(out);
        o.err(msg);
        let codes = o.take_errors();
        self.mark_local(start);
        let mut stats = self.shard.stats.borrow_mut();
        stats.add_errors(codes);
        if let Some(r) = r {
            stats.commands[r.id].rejected += 1;
        }
    }

    async fn run_one(&mut self, argv: &[&[u8]], out: &mut Out, now_ms: i64, peer: &mut Peer<'_>) {
        out.resp3 = self.state.resp3;
        let r = match commands::registry().lookup(argv) {
            Lookup::Found(r) => r,
            Lookup::UnknownCommand => {
                let msg = dispatch::unknown_command_message(argv);
                self.reject(out, None, &msg).await;
                return;
            }
            Lookup::UnknownSubcommand => {
                let msg = unknown_subcommand_message(argv);
                self.reject(out, None, &msg).await;
                return;
            }
        };
        let spec = r.spec;
        if !spec.arity_ok(argv.len()) || matches!(spec.exec, Exec::Container) {
            self.reject(out, Some(r), commands::arity_error(&r.fullname).as_bytes())
                .await;
            return;
        }
        if self.state.auth_required(&self.shard) && !spec.has(commands::spec::flag::NO_AUTH) {
            self.reject(out, Some(r), b"-NOAUTH Authentication required.")
                .await;
            return;
        }
        if let Some(msg) = crate::repl::refuse_write(&self.shard, spec) {
            self.reject(out, Some(r), msg).await;
            return;
        }
        // EXEC writes whatever it queued: count it as a write too.
        let write = spec.has(commands::spec::flag::WRITE) || spec.name == "exec";
        self.wrote |= write;
        // A manual failover's write pause holds writes here, before routing: once it ends
        // they are routed with the topology the failover left (MOVED to the new primary).
        // Writes this batch already sent elsewhere finish first, so they never hold up the
        // pause they wait for.
        let mut admission = None;
        if write && self.shard.cluster.enabled() {
            if crate::cluster::pause::paused(&self.shard.node) {
                self.flush(out).await;
            }
            admission = Some(crate::cluster::pause::gate(&self.shard).await);
        }
        if self.state.multi.is_some() && spec.has(commands::spec::flag::NO_MULTI) {
            self.reject(out, Some(r), b"Command not allowed inside a transaction")
                .await;
            return;
        }
        // Cluster mode: redirect (MOVED, ASK) or refuse (CROSSSLOT, CLUSTERDOWN, TRYAGAIN)
        // before the command runs (or is queued); keys of one slot always live on one shard.
        if let Some(view) = self.shard.cluster.view() {
            use crate::cluster::routing::{self, Verdict};
            let allow_reads = routing::WhenDown::of(&self.shard.config.borrow().cluster);
            let mut verdict = match routing::check(
                &view,
                &mut self.state.cluster,
                r,
                argv,
                &mut self.key_pos,
                allow_reads,
            ) {
                Verdict::CheckKeys(pending) => {
                    self.flush(out).await;
                    routing::resolve(&self.shard, pending).await
                }
                v => v,
            };
            // EXEC: the queued commands together must still be served here, in one slot.
            if r.fullname == "exec" && matches!(verdict, Verdict::Serve) {
                if let Some(m) = &self.state.multi {
                    verdict = routing::check_queued(&view, &m.cmds, allow_reads);
                }
            }
            if let Verdict::Refuse(msg) = verdict {
                if r.fullname == "exec" {
                    // A redirected EXEC discards the transaction and answers the redirection
                    // itself (Valkey's processCommand), not EXECABORT.
                    self.state.multi = None;
                    let shard = self.shard.clone();
                    commands::transaction::unwatch_all(Via::direct(&shard), &mut self.state).await;
                }
                self.reject(out, Some(r), &msg).await;
                return;
            }
        }
        // Pub/Sub context (Valkey's `processCommand`): a subscribed RESP2 connection may only
        // (un)subscribe, ping, quit or reset; unsubscribing needs a subscription.
        let subscribed = self.state.info.subs.borrow().total() > 0;
        if subscribed
            && !self.state.resp3
            && !commands::pubsub::allowed_while_subscribed(&r.fullname)
        {
            let msg = format!("Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", r.fullname);
            self.reject(out, Some(r), msg.as_bytes()).await;
            return;
        }
        if !subscribed && commands::pubsub::is_unsubscribe(&r.fullname) {
            let msg = format!(
                "-NOSUB '{}' command executed not in subscribed mode",
                r.fullname
            );
            self.reject(out, Some(r), msg.as_bytes()).await;
            return;
        }
        if !self.forwarding {
            // Messages that arrived before this command go before its reply.
            commands::pubsub::drain_pushes(&self.state, out);
        }
        if let Some(m) = self.state.multi.as_mut() {
            if !commands::transaction::runs_inside_multi(&r.fullname) {
                // Nothing is kept once the transaction is doomed (Valkey does the same).
                if !m.aborted {
                    m.cmds.push(commands::transaction::Queued {
                        r,
                        args: argv.iter().map(|a| a.to_vec()).collect(),
                    });
                }
                let queued = m.cmds.len() as i64;
                self.state.info.multi.set(queued);
                let start = self.local_len(out);
                self.local_out(out).simple("QUEUED");
                self.mark_local(start);
                return;
            }
        }
        let info = self.state.info.clone();
        info.last_cmd.set(static_name(r));
        match spec.exec {
            Exec::Conn(f) => {
                let t0 = Instant::now();
                let start = self.local_len(out);
                let shard = self.shard.clone();
                let resp3 = self.state.resp3;
                let o = if self.forwarding {
                    &mut self.scratch
                } else {
                    &mut *out
                };
                o.resp3 = resp3;
                let before = o.error_count();
                f(
                    &mut ConnCtx {
                        shard: &shard,
                        client: &mut self.state,
                        out: o,
                        now_ms,
                    },
                    argv,
                );
                let failed = o.error_count() > before;
                let codes = o.take_errors();
                self.mark_local(start);
                let usec = dispatch::record(&shard, r.id, t0, failed, codes);
                dispatch::check_slow(&shard, &self.state.info, r, argv, usec);
                dispatch::feed_monitors(&shard, &self.state, r, argv);
                if r.fullname == "reset" {
                    // RESET also leaves the transaction and every watch.
                    commands::transaction::unwatch_all(Via::direct(&shard), &mut self.state).await;
                }
            }
            Exec::Key(f) => {
                let shards = self.shard.shards();
                let target = if shards == 1 {
                    Some(0)
                } else {
                    match commands::key_positions(spec, argv, &mut self.key_pos) {
                        Some(()) if !self.key_pos.is_empty() => {
                            let first = self.shard.shard_of_key(argv[self.key_pos[0]]);
                            if self.key_pos[1..]
                                .iter()
                                .all(|&p| self.shard.shard_of_key(argv[p]) == first)
                            {
                                Some(first)
                            } else {
                                None
                            }
                        }
                        // No keys found (malformed arguments): the command reports its own
                        // error without touching a key, here.
                        _ => Some(self.shard.id),
                    }
                };
                match target {
                    Some(t) if t == self.shard.id => {
                        let shard = self.shard.clone();
                        // Held across the synchronous step below only.
                        let _turn = shard.turn().await;
                        let start = self.local_len(out);
                        let db = self.state.db;
                        let resp3 = self.state.resp3;
                        let o = if self.forwarding {
                            &mut self.scratch
                        } else {
                            &mut *out
                        };
                        o.resp3 = resp3;
                        let usec = dispatch::exec_key(&shard, r, f, db, argv, o, now_ms);
                        self.mark_local(start);
                        dispatch::check_slow(&shard, &self.state.info, r, argv, usec);
                        dispatch::feed_monitors(&shard, &self.state, r, argv);
                    }
                    Some(t) => {
                        // Counted until its reply is back.
                        self.forwarded_writes.extend(admission.take());
                        // Shown to monitors as it leaves (its shard reports slowness back).
                        dispatch::feed_monitors(&self.shard, &self.state, r, argv);
                        let index =
                            self.groups[t].push(r.id, self.state.db, self.state.resp3, argv);
                        self.slots.push(Slot::Remote { shard: t, index });
                        self.forwarding = true;
                    }
                    None => {
                        self.flush(out).await;
                        let t0 = Instant::now();
                        let before = out.error_count();
                        let reply_start = out.buf.len();
                        match spec.multi {
                            Some(coord) => {
                                // With WATCHers about, a write runs under locks on its
                                // shards and, unless it failed, marks its keys before
                                // they are released (so no EXEC checks in between).
                                let held = if spec.has(commands::spec::flag::WRITE)
                                    && self.shard.node.watching_clients.load(Ordering::Relaxed) > 0
                                {
                                    let targets: Vec<usize> = self
                                        .key_pos
                                        .iter()
                                        .map(|&p| self.shard.shard_of_key(argv[p]))
                                        .collect();
                                    let txn = Txn::lock(&self.shard, targets).await;
                                    let present = commands::transaction::keys_present(
                                        &txn,
                                        self.state.db,
                                        argv,
                                        &self.key_pos,
                                    )
                                    .await;
                                    Some((txn, present))
                                } else {
                                    None
                                };
                                coord(commands::multi::MultiCtx {
                                    shard: &self.shard,
                                    client: &self.state,
                                    cmd: r,
                                    argv,
                                    key_pos: &self.key_pos,
                                    out,
                                    txn: held.as_ref().map(|(txn, _)| txn),
                                })
                                .await;
                                // List commands mark what they change themselves.
                                let changed = out.error_count() == before
                                    && spec.group != commands::spec::Group::List
                                    && !dispatch::unchanged(argv, &out.buf[reply_start..]);
                                if let (Some((txn, present)), true) = (&held, changed) {
                                    let signalled: Vec<usize> = (0..self.key_pos.len())
                                        .filter(|&i| dispatch::signals_key(argv, i))
                                        .collect();
                                    let pos: Vec<usize> =
                                        signalled.iter().map(|&i| self.key_pos[i]).collect();
                                    let present: Vec<bool> =
                                        signalled.iter().map(|&i| present[i]).collect();
                                    commands::transaction::touch_keys_present(
                                        txn,
                                        r,
                                        self.state.db,
                                        argv,
                                        &pos,
                                        Some(&present),
                                    )
                                    .await;
                                    let reply = &out.buf[reply_start..];
                                    if let Some((other, i)) = dispatch::other_db_key(argv, reply) {
                                        commands::transaction::touch_keys_present(
                                            txn,
                                            r,
                                            other,
                                            argv,
                                            &[i],
                                            None,
                                        )
                                        .await;
                                    }
                                }
                            }
                            None => {
                                out.err("-CROSSSLOT Keys in request don't hash to the same slot")
                            }
                        }
                        let failed = out.error_count() > before;
                        let codes = out.take_errors();
                        let usec = dispatch::record(&self.shard, r.id, t0, failed, codes);
                        dispatch::check_slow(&self.shard, &self.state.info, r, argv, usec);
                        dispatch::feed_monitors(&self.shard, &self.state, r, argv);
                    }
                }
            }
            Exec::Node(cmd) => {
                self.flush(out).await;
                let t0 = Instant::now();
                let before = out.error_count();
                let shard = self.shard.clone();
                dispatch::run_node(cmd, Via::direct(&shard), &mut self.state, argv, out).await;
                let failed = out.error_count() > before;
                let codes = out.take_errors();
                let usec = dispatch::record(&shard, r.id, t0, failed, codes);
                dispatch::check_slow(&shard, &self.state.info, r, argv, usec);
                dispatch::feed_monitors(&shard, &self.state, r, argv);
            }
            Exec::Block(block) => {
                // A blocking command sees everything sent before it: finish those first.
                self.flush(out).await;
                let t0 = Instant::now();
                let before = out.error_count();
                let mut pos = Vec::new();
                let _ = commands::key_positions(spec, argv, &mut pos);
                let shard = self.shard.clone();
                let ended = commands::blocking::run(
                    block,
                    &shard,
                    &self.state,
                    r,
                    argv,
                    &pos,
                    out,
                    peer,
                    admission.take(),
                )
                .await;
                if ended == commands::blocking::Ended::ClientGone {
                    self.state.close_after_reply = true;
                }
                let failed = out.error_count() > before;
                let codes = out.take_errors();
                // A blocking command's time includes its wait: no slow log entry for it.
                dispatch::record(&shard, r.id, t0, failed, codes);
                dispatch::feed_monitors(&shard, &self.state, r, argv);
            }
            Exec::Container => unreachable!("containers fail the arity check above"),
        }
        // Counted once the command has run, as Valkey's `call()` does: CLIENT INFO shows the
        // commands before itself.
        info.tot_cmds.set(info.tot_cmds.get().saturating_add(1));
        info.multi.set(
            self.state
                .multi
                .as_ref()
                .map_or(-1, |m| m.cmds.len() as i64),
        );
        info.watch.set(self.state.watched.len());
    }

    /// Sends the pending groups, waits for their replies and writes every reply of the batch
    /// so far, in order, into `out`.
    async fn flush(&mut self, out: &mut Out) {
        if !self.forwarding {
            return;
        }
        let shards = self.shard.shards();
        let mut calls = Vec::new();
        {
            let mut stats = self.shard.stats.borrow_mut();
            for (t, g) in self.groups.iter_mut().enumerate() {
                if g.is_empty() {
                    continue;
                }
                let fwd = std::mem::take(g);
                stats.hops += 1;
                stats.forwarded_commands += fwd.len() as u64;
                calls.push((
                    t,
                    self.shard
                        .start_call(t, move |s| dispatch::exec_forward(s, fwd)),
                ));
            }
        }
        let mut results: Vec<Option<ReplyBatch>> = (0..shards).map(|_| None).collect();
        for (t, call) in calls {
            let mut batch = call.await;
            for e in batch.slow.drain(..) {
                dispatch::log_slow(&self.shard, &self.state.info, e);
            }
            results[t] = Some(batch);
        }
        for slot in self.slots.drain(..) {
            match slot {
                Slot::Local { start, end } => out.raw(&self.scratch.buf[start..end]),
                Slot::Remote { shard, index } => {
                    if let Some(rb) = &results[shard] {
                        out.raw(rb.reply(index));
                    }
                }
            }
        }
        self.scratch.buf.clear();
        self.forwarding = false;
        self.forwarded_writes.clear();
    }
}

/// Valkey's text for a subcommand its container does not know: the subcommand quoted as sent
/// (`%.128s`), the container's name in upper case (ASCII only, as `sdstoupper`).
fn unknown_subcommand_message(argv: &[&[u8]]) -> Vec<u8> {
    let mut msg = b"unknown subcommand '".to_vec();
    msg.extend_from_slice(dispatch::clip(argv.get(1).copied().unwrap_or_default()));
    msg.extend_from_slice(b"'. Try ");
    msg.extend(commands::cstr(argv.first().copied().unwrap_or_default()).to_ascii_uppercase());
    msg.extend_from_slice(b" HELP.");
    msg
}

/// The full name of a command as a `&'static str` (for CLIENT LIST's `cmd=`).
fn static_name(r: &'static Resolved) -> &'static str {
    r.fullname.as_str()
}

impl Session for ClientSession {
    async fn on_input(
        &mut self,
        input: &mut Vec<u8>,
        output: &mut Vec<u8>,
        peer: &mut Peer<'_>,
    ) -> Flow {
        let mut parser = std::mem::take(&mut self.parser);
        let mut out = Out::with_buf(std::mem::take(output), self.state.resp3);
        let mut flow = Flow::Continue;
        self.state.info.last_interaction_ms.set(unix_ms());
        // Bytes read count before the commands in them run, as in Valkey (a CLIENT INFO
        // counts its own request in tot-net-in).
        let fresh = input.len().saturating_sub(self.unparsed_input) as u64;
        let info = &self.state.info;
        info.tot_net_in
            .set(info.tot_net_in.get().saturating_add(fresh));
        self.shard.stats.borrow_mut().net_input_bytes += fresh;
        // Bounded: each pass consumes at least one command or stops.
        for _ in 0..input.len() + 1 {
            let auth_required = self.state.auth_required(&self.shard);
            let limits = ProtoLimits {
                max_bulk_len: self.shard.config.borrow().proto_max_bulk_len,
                auth_required,
            };
            // Before AUTH, parse one command at a time: the limits change once it succeeds.
            let max_cmds = if auth_required { 1 } else { usize::MAX };
            let res = parser.parse(input, &limits, max_cmds);
            let ran = !parser.cmds.is_empty();
            if ran {
                self.run_batch(&parser, input, &mut out, peer).await;
            }
            parser.clear_batch();
            if let Err(e) = res {
                out.err(e.message());
                let codes = out.take_errors();
                self.shard.stats.borrow_mut().add_errors(codes);
                tracing::debug!(client = self.state.id, error = %e.message(), "protocol error, closing");
                flow = Flow::Close;
                break;
            }
            if peer.is_closed() {
                flow = Flow::Abort;
                break;
            }
            if self.state.close_after_reply {
                flow = Flow::Close;
                break;
            }
            if !ran || !auth_required {
                break;
            }
        }
        let consumed = parser.consumed();
        input.drain(..consumed);
        self.unparsed_input = input.len();
        parser.drained(consumed);
        self.parser = parser;
        *output = out.buf;
        let info = &self.state.info;
        info.qbuf.set(input.len());
        info.qbuf_free.set(input.capacity() - input.len());
        info.obuf.set(output.len());
        // Valkey closes, without a reply, a client whose query buffer passes the limit (1 MB
        // before AUTH).
        let limit = if self.state.auth_required(&self.shard) {
            1024 * 1024
        } else {
            self.shard.config.borrow().client_query_buffer_limit
        };
        if input.len() as u64 > limit {
            tracing::warn!(client = %info.addr, qbuf = input.len(), "closing client that reached max query buffer length");
            return Flow::Abort;
        }
        flow
    }

    fn wants_pushes(&self) -> bool {
        let info = &self.state.info;
        info.subs.borrow().total() > 0
            || info.monitor.get()
            || !info.pushes.bytes.borrow().is_empty()
    }

    async fn pushes_ready(&self) {
        let q = &self.state.info.pushes;
        std::future::poll_fn(|cx| {
            if q.bytes.borrow().is_empty() {
                *q.waker.borrow_mut() = Some(cx.waker().clone());
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await
    }

    fn take_pushes(&mut self, output: &mut Vec<u8>) {
        let mut q = self.state.info.pushes.bytes.borrow_mut();
        if output.is_empty() {
            std::mem::swap(output, &mut q);
        } else {
            output.extend_from_slice(&q);
            q.clear();
        }
    }

    fn wanted(&self, input: &[u8]) -> Option<usize> {
        self.parser.big_arg_missing(input.len())
    }

    fn should_stop(&self) -> bool {
        self.state.info.killed.get() || self.shard.node.is_shutting_down()
    }

    fn on_io(&mut self, _read: usize, written: usize, input_cap: usize) {
        // Bytes read were counted in `on_input`, before their commands ran.
        let info = &self.state.info;
        info.tot_net_out
            .set(info.tot_net_out.get() + written as u64);
        let mut stats = self.shard.stats.borrow_mut();
        stats.net_output_bytes += written as u64;
        stats.reads_processed += 1;
        stats.writes_processed += u64::from(written > 0);
        stats.client_recent_max_input_buffer =
            stats.client_recent_max_input_buffer.max(input_cap as u64);
        stats.client_recent_max_output_buffer =
            stats.client_recent_max_output_buffer.max(written as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::unknown_subcommand_message;

    /// The unknown-subcommand error quotes the subcommand as sent (up to a NUL, at most 128
    /// bytes, not re-encoded) and names the container in upper case, as Valkey does.
    #[test]
    fn unknown_subcommand_text() {
        assert_eq!(
            unknown_subcommand_message(&[b"client", b"foo\xff"]),
            b"unknown subcommand 'foo\xff'. Try CLIENT HELP."
        );
        assert_eq!(
            unknown_subcommand_message(&[b"Config", b"a\x00b"]),
            b"unknown subcommand 'a'. Try CONFIG HELP."
        );
    }
}
