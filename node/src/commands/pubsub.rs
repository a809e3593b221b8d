//! The Pub/Sub family: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UN- forms, PUBLISH,
//! SPUBLISH and PUBSUB.
//!
//! Subscriptions are kept by the connection's shard (`crate::pubsub`); (un)subscribing is a
//! connection command. PUBLISH visits every shard, each delivering to its own subscribers,
//! and answers the total. The confirmations are replies in RESP2 and push frames in RESP3, as
//! in Valkey, and count the client's channels plus patterns (shard channels separately).

use super::connection::help_reply;
use super::multi::Via;
use super::spec::{acl, flag, key_at, keyflag as kf, keys_from, CommandSpec, Exec, Group, KeySpec};
use super::{ConnCtx, NodeCmd};
use crate::pubsub::Kind;
use crate::resp::Out;
use crate::session::ClientState;
use crate::shard::Shard;
use std::collections::HashSet;

const SUB: u32 = flag::PUBSUB | flag::NOSCRIPT | flag::LOADING | flag::STALE;
const PUB: u32 = flag::PUBSUB | flag::LOADING | flag::STALE | flag::FAST | flag::MAY_REPLICATE;
const INTRO: u32 = flag::PUBSUB | flag::LOADING | flag::STALE;
const SHARD_CHANNELS: &[KeySpec] = &[keys_from(1, -1, 1, kf::NOT_KEY)];
const SHARD_CHANNEL: &[KeySpec] = &[key_at(1, kf::NOT_KEY)];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        exec: Exec::Conn(subscribe),
        ..CommandSpec::new("subscribe", -2, SUB, acl::PUBSUB, Group::Pubsub, "2.0.0",
            "Listens for messages published to channels.",
            "O(N) where N is the number of channels to subscribe to.", "channel:string...")
    },
    CommandSpec {
        exec: Exec::Conn(unsubscribe),
        ..CommandSpec::new("unsubscribe", -1, SUB, acl::PUBSUB, Group::Pubsub, "2.0.0",
            "Stops listening to messages posted to channels.",
            "O(N) where N is the number of channels to unsubscribe.", "[channel:string...]")
    },
    CommandSpec {
        exec: Exec::Conn(psubscribe),
        ..CommandSpec::new("psubscribe", -2, SUB, acl::PUBSUB, Group::Pubsub, "2.0.0",
            "Listens for messages published to channels that match one or more patterns.",
            "O(N) where N is the number of patterns to subscribe to.", "pattern:pattern...")
    },
    CommandSpec {
        exec: Exec::Conn(punsubscribe),
        ..CommandSpec::new("punsubscribe", -1, SUB, acl::PUBSUB, Group::Pubsub, "2.0.0",
            "Stops listening to messages published to channels that match one or more patterns.",
            "O(N) where N is the number of patterns to unsubscribe.", "[pattern:pattern...]")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::Publish),
        ..CommandSpec::new("publish", 3, PUB, acl::PUBSUB, Group::Pubsub, "2.0.0",
            "Posts a message to a channel.",
            "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).",
            "channel:string message:string")
    },
    CommandSpec {
        subcommands: PUBSUB_SUBCOMMANDS,
        ..CommandSpec::new("pubsub", -2, 0, 0, Group::Pubsub, "2.8.0",
            "A container for Pub/Sub commands.", "Depends on subcommand.", "")
    },
    CommandSpec {
        keys: SHARD_CHANNEL,
        exec: Exec::Node(NodeCmd::SPublish),
        ..CommandSpec::new("spublish", 3, PUB, acl::PUBSUB, Group::Pubsub, "7.0.0",
            "Post a message to a shard channel",
            "O(N) where N is the number of clients subscribed to the receiving shard channel.",
            "shardchannel:string message:string")
    },
    CommandSpec {
        keys: SHARD_CHANNELS,
        exec: Exec::Conn(ssubscribe),
        ..CommandSpec::new("ssubscribe", -2, SUB, acl::PUBSUB, Group::Pubsub, "7.0.0",
            "Listens for messages published to shard channels.",
            "O(N) where N is the number of shard channels to subscribe to.", "shardchannel:string...")
    },
    CommandSpec {
        keys: SHARD_CHANNELS,
        exec: Exec::Conn(sunsubscribe),
        ..CommandSpec::new("sunsubscribe", -1, SUB, acl::PUBSUB, Group::Pubsub, "7.0.0",
            "Stops listening to messages posted to shard channels.",
            "O(N) where N is the number of shard channels to unsubscribe.", "[shardchannel:string...]")
    },
];

static PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        exec: Exec::Node(NodeCmd::PubsubChannels),
        ..CommandSpec::new("channels", -2, INTRO, acl::PUBSUB, Group::Pubsub, "2.8.0",
            "Returns the active channels.",
            "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)",
            "[pattern:pattern]")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::PubsubNumsub),
        ..CommandSpec::new("numsub", -2, INTRO, acl::PUBSUB, Group::Pubsub, "2.8.0",
            "Returns a count of subscribers to channels.",
            "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
            "[channel:string...]")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::PubsubNumpat),
        ..CommandSpec::new("numpat", 2, INTRO, acl::PUBSUB, Group::Pubsub, "2.8.0",
            "Returns a count of unique pattern subscriptions.", "O(1)", "")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::PubsubShardChannels),
        ..CommandSpec::new("shardchannels", -2, INTRO, acl::PUBSUB, Group::Pubsub, "7.0.0",
            "Returns the active shard channels.",
            "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).",
            "[pattern:pattern]")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::PubsubShardNumsub),
        ..CommandSpec::new("shardnumsub", -2, INTRO, acl::PUBSUB, Group::Pubsub, "7.0.0",
            "Returns the count of subscribers of shard channels.",
            "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels",
            "[shardchannel:string...]")
    },
    CommandSpec {
        exec: Exec::Conn(pubsub_help),
        ..CommandSpec::new("help", 2, flag::LOADING | flag::STALE, 0, Group::Pubsub, "6.2.0",
            "Returns helpful text about the different subcommands.", "O(1)", "")
    },
];

/// Whether a command may run while a RESP2 connection is subscribed (Valkey's list in
/// `processCommand`).
pub fn allowed_while_subscribed(fullname: &str) -> bool {
    matches!(
        fullname,
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}

/// Whether a command is one of the unsubscribe commands, refused outside subscribed mode.
pub fn is_unsubscribe(fullname: &str) -> bool {
    matches!(fullname, "unsubscribe" | "sunsubscribe" | "punsubscribe")
}

/// A subscription confirmation: `[word, channel (or nil), count]`, pushed in RESP3.
fn confirm(out: &mut Out, word: &[u8], channel: Option<&[u8]>, count: usize) {
    out.push(3);
    out.bulk(word);
    match channel {
        Some(c) => out.bulk(c),
        None => out.null(),
    }
    out.int(count as i64);
}

fn subscribe_kind(ctx: &mut ConnCtx<'_>, argv: &[&[u8]], kind: Kind) {
    let info = ctx.client.info.clone();
    let word: &[u8] = match kind {
        Kind::Channel => b"subscribe",
        Kind::Shard => b"ssubscribe",
    };
    for ch in &argv[1..] {
        let mut subs = info.subs.borrow_mut();
        if subs.set(kind).insert(ch.to_vec()) {
            ctx.shard.pubsub.borrow_mut().subscribe(kind, ch, &info);
        }
        let count = match kind {
            Kind::Channel => subs.count(),
            Kind::Shard => subs.shard_count(),
        };
        drop(subs);
        confirm(ctx.out, word, Some(ch), count);
    }
}

fn unsubscribe_kind(ctx: &mut ConnCtx<'_>, argv: &[&[u8]], kind: Kind) {
    let info = ctx.client.info.clone();
    let word: &[u8] = match kind {
        Kind::Channel => b"unsubscribe",
        Kind::Shard => b"sunsubscribe",
    };
    let named: Vec<Vec<u8>> = if argv.len() > 1 {
        argv[1..].iter().map(|c| c.to_vec()).collect()
    } else {
        info.subs.borrow_mut().set(kind).iter().cloned().collect()
    };
    if named.is_empty() {
        let count = match kind {
            Kind::Channel => info.subs.borrow().count(),
            Kind::Shard => info.subs.borrow().shard_count(),
        };
        confirm(ctx.out, word, None, count);
        return;
    }
    for ch in &named {
        let mut subs = info.subs.borrow_mut();
        if subs.set(kind).swap_remove(ch.as_slice()) {
            ctx.shard.pubsub.borrow_mut().unsubscribe(kind, ch, info.id);
        }
        let count = match kind {
            Kind::Channel => subs.count(),
            Kind::Shard => subs.shard_count(),
        };
        drop(subs);
        confirm(ctx.out, word, Some(ch), count);
    }
}

fn subscribe(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    subscribe_kind(ctx, argv, Kind::Channel);
}

fn ssubscribe(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    subscribe_kind(ctx, argv, Kind::Shard);
}

fn unsubscribe(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    unsubscribe_kind(ctx, argv, Kind::Channel);
}

fn sunsubscribe(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    unsubscribe_kind(ctx, argv, Kind::Shard);
}

fn psubscribe(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    let info = ctx.client.info.clone();
    for p in &argv[1..] {
        let mut subs = info.subs.borrow_mut();
        if subs.patterns.insert(p.to_vec()) {
            ctx.shard.pubsub.borrow_mut().psubscribe(p, &info);
        }
        let count = subs.count();
        drop(subs);
        confirm(ctx.out, b"psubscribe", Some(p), count);
    }
}

fn punsubscribe(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    let info = ctx.client.info.clone();
    let named: Vec<Vec<u8>> = if argv.len() > 1 {
        argv[1..].iter().map(|c| c.to_vec()).collect()
    } else {
        info.subs.borrow().patterns.iter().cloned().collect()
    };
    if named.is_empty() {
        let count = info.subs.borrow().count();
        confirm(ctx.out, b"punsubscribe", None, count);
        return;
    }
    for p in &named {
        let mut subs = info.subs.borrow_mut();
        if subs.patterns.swap_remove(p.as_slice()) {
            ctx.shard.pubsub.borrow_mut().punsubscribe(p, info.id);
        }
        let count = subs.count();
        drop(subs);
        confirm(ctx.out, b"punsubscribe", Some(p), count);
    }
}

/// Drops every subscription of a client (RESET, disconnect), without confirmations.
pub fn forget_client(shard: &Shard, client: &ClientState) {
    let info = &client.info;
    shard.pubsub.borrow_mut().forget(info);
    *info.subs.borrow_mut() = Default::default();
}

/// Moves the messages waiting for this client into its reply stream, ahead of the reply of
/// the command about to run.
pub fn drain_pushes(client: &ClientState, out: &mut Out) {
    let mut q = client.info.pushes.bytes.borrow_mut();
    if !q.is_empty() {
        out.raw(&q);
        q.clear();
    }
}

/// PUBLISH and SPUBLISH: delivered by every shard to its subscribers.
pub async fn publish(shard: Via<'_>, kind: Kind, argv: &[&[u8]], out: &mut Out) {
    let mut n = 0;
    if shard.txn.is_some() {
        // Inside EXEC: through the transaction, one shard after another.
        for t in 0..shard.shards() {
            let (ch, msg) = (argv[1].to_vec(), argv[2].to_vec());
            n += shard
                .call(t, move |s| s.pubsub.borrow().publish(kind, &ch, &msg))
                .await;
        }
    } else {
        // The other shards deliver in parallel while this one does.
        let mut calls = Vec::new();
        for t in (0..shard.shards()).filter(|&t| t != shard.id) {
            let (ch, msg) = (argv[1].to_vec(), argv[2].to_vec());
            calls.push(shard.start_call(t, move |s| s.pubsub.borrow().publish(kind, &ch, &msg)));
        }
        n += shard.pubsub.borrow().publish(kind, argv[1], argv[2]);
        for c in calls {
            n += c.await;
        }
    }
    // In cluster mode the other nodes deliver it too (their subscribers are not counted in
    // the reply, as in Valkey); shard 0 runs the bus.
    if shard.cluster.enabled() {
        let (ch, msg) = (argv[1].to_vec(), argv[2].to_vec());
        let sharded = kind == Kind::Shard;
        shard.post(
            0,
            Box::new(move |s| {
                if let Some(d) = s.cluster.driver() {
                    d.propagate_publish(sharded, &ch, &msg);
                }
            }),
        );
    }
    // A message to this very client follows the reply (Valkey holds back pushes to the
    // client running the command until its reply is written).
    out.int(n as i64);
}

/// PUBSUB CHANNELS / SHARDCHANNELS: the union of every shard's active channels.
pub async fn pubsub_channels(shard: Via<'_>, kind: Kind, argv: &[&[u8]], out: &mut Out) {
    if argv.len() > 3 {
        let mut msg = b"unknown subcommand or wrong number of arguments for '".to_vec();
        msg.extend_from_slice(crate::dispatch::clip(argv[1]));
        msg.extend_from_slice(b"'. Try PUBSUB HELP.");
        out.err(msg);
        return;
    }
    let pattern = argv.get(2).map(|p| p.to_vec());
    let mut all = HashSet::new();
    for t in 0..shard.shards() {
        let p = pattern.clone();
        let chans = shard
            .call(t, move |s| s.pubsub.borrow().channels(kind, p.as_deref()))
            .await;
        all.extend(chans);
    }
    out.array(all.len());
    for ch in &all {
        out.bulk(ch);
    }
}

/// PUBSUB NUMSUB / SHARDNUMSUB: subscribers per channel, summed over shards.
pub async fn pubsub_numsub(shard: Via<'_>, kind: Kind, argv: &[&[u8]], out: &mut Out) {
    let channels: Vec<Vec<u8>> = argv[2..].iter().map(|c| c.to_vec()).collect();
    let mut counts = vec![0usize; channels.len()];
    for t in 0..shard.shards() {
        let chans = channels.clone();
        let per = shard
            .call(t, move |s| {
                let reg = s.pubsub.borrow();
                chans
                    .iter()
                    .map(|c| reg.numsub(kind, c))
                    .collect::<Vec<_>>()
            })
            .await;
        for (a, b) in counts.iter_mut().zip(per) {
            *a += b;
        }
    }
    out.array(channels.len() * 2);
    for (c, n) in channels.iter().zip(counts) {
        out.bulk(c);
        out.int(n as i64);
    }
}

/// PUBSUB NUMPAT: distinct patterns subscribed anywhere on the node.
pub async fn pubsub_numpat(shard: Via<'_>, out: &mut Out) {
    let mut all = HashSet::new();
    for t in 0..shard.shards() {
        all.extend(shard.call(t, |s| s.pubsub.borrow().patterns()).await);
    }
    out.int(all.len() as i64);
}

fn pubsub_help(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    help_reply(
        ctx.out,
        argv[0],
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
}
