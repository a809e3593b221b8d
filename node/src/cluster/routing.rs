//! Cluster routing: whether this node serves a command, or which redirect or refusal the client
//! gets, with Valkey's texts and rules (`getNodeByQuery` and `clusterRedirectClient`).
//!
//! The rules, in order:
//!
//! 1. A command without keys is served here.
//! 2. All keys must hash to one slot, else `-CROSSSLOT`.
//! 3. A slot nobody serves is `-CLUSTERDOWN Hash slot not served`.
//! 4. A down cluster refuses keyed commands (`-CLUSTERDOWN The cluster is down`), or only
//!    writes with `cluster-allow-reads-when-down`.
//! 5. While a slot migrates away from us, a command whose keys are all here is served; one
//!    with none here gets `-ASK` to the target; one with some here `-TRYAGAIN`.
//! 6. While a slot is imported, a command after ASKING (or RESTORE-ASKING) is served, unless it
//!    has several keys and some are missing (`-TRYAGAIN`).
//! 7. A READONLY client's reads of our primary's slots are served on a replica.
//! 8. Otherwise the owner serves it: us, or `-MOVED` to it.
//!
//! Rules 5 and 6 need to know whether the keys exist, which only the shard owning the slot
//! can tell: [`check`] then returns [`Verdict::CheckKeys`], and the session asks that shard
//! (after finishing the commands it already sent, so the answer reflects them) and calls
//! [`Pending::finish`].

use super::{ClientFlags, View};
use crate::commands::spec::flag;
use crate::commands::{self, Resolved};
use corekey_bus::{key_slot, Slot};

/// What to do with a command.
pub enum Verdict {
    /// Run it here.
    Serve,
    /// Answer this error instead (a redirect or a refusal).
    Refuse(Vec<u8>),
    /// Ask the owning shard which keys exist, then [`Pending::finish`].
    CheckKeys(Pending),
}

/// A routing decision waiting for the existence of its keys.
pub struct Pending {
    pub slot: Slot,
    /// The keys, owned (they travel to the owning shard).
    pub keys: Vec<Vec<u8>>,
    migrating_to: Option<String>,
    importing: bool,
    asking: bool,
    multiple_keys: bool,
    moved: Option<String>,
    readonly_ok: bool,
}

/// Valkey's texts.
pub const CROSSSLOT: &str = "-CROSSSLOT Keys in request don't hash to the same slot";
pub const TRYAGAIN: &str = "-TRYAGAIN Multiple keys request during rehashing of slot";
pub const DOWN: &str = "-CLUSTERDOWN The cluster is down";
pub const DOWN_RO: &str = "-CLUSTERDOWN The cluster is down and only accepts read commands";
pub const UNBOUND: &str = "-CLUSTERDOWN Hash slot not served";

fn moved(slot: Slot, endpoint: &str) -> Vec<u8> {
    format!("-MOVED {} {endpoint}", slot.get()).into_bytes()
}

/// What a node serves while the cluster is down (`cluster-allow-reads-when-down`,
/// `cluster-allow-pubsubshard-when-down`).
#[derive(Debug, Clone, Copy)]
pub struct WhenDown {
    pub reads: bool,
    pub pubsubshard: bool,
}

impl WhenDown {
    pub fn of(settings: &super::Settings) -> WhenDown {
        WhenDown {
            reads: settings.allow_reads_when_down,
            pubsubshard: settings.allow_pubsubshard_when_down,
        }
    }
}

fn ask(slot: Slot, endpoint: &str) -> Vec<u8> {
    format!("-ASK {} {endpoint}", slot.get()).into_bytes()
}

/// Decides where `argv` (a command resolved as `r`) runs. `flags` are the client's; ASKING is
/// consumed here by every command but ASKING itself, as Valkey clears it after each command.
/// `key_pos` is scratch space for the key positions.
pub fn check(
    view: &View,
    flags: &mut ClientFlags,
    r: &Resolved,
    argv: &[&[u8]],
    key_pos: &mut Vec<usize>,
    when_down: WhenDown,
) -> Verdict {
    let spec = r.spec;
    let asking = flags.asking;
    if r.fullname != "asking" {
        flags.asking = false;
    }
    if spec.keys.is_empty() {
        return Verdict::Serve;
    }
    if r.fullname == "migrate" {
        // Its key specs are incomplete; Valkey finds its keys with a function.
        commands::migrate::key_positions(argv, key_pos);
    } else if commands::key_positions_with(spec, argv, key_pos, spec.has(flag::PUBSUB)).is_none() {
        // (Sharded pub/sub channels route like keys, as Valkey's getNodeByQuery does.)
        key_pos.clear();
    }
    if key_pos.is_empty() {
        // Arguments that do not fit the key specs: the command reports its own error.
        return Verdict::Serve;
    }
    let first = argv[key_pos[0]];
    let slot = key_slot(first);
    // An unserved slot is reported before keys in other slots, as Valkey looks at the first
    // key's owner before the other keys.
    let Some(owner) = view.owner(slot) else {
        return Verdict::Refuse(UNBOUND.into());
    };
    let mut multiple_keys = false;
    for &p in &key_pos[1..] {
        if key_slot(argv[p]) != slot {
            return Verdict::Refuse(CROSSSLOT.into());
        }
        multiple_keys |= argv[p] != first;
    }
    let (migrating_to, importing) = if view.i_am_primary() || flags.readonly {
        match view.migrating_to(slot) {
            Some(t) if Some(owner) == view.serving_primary() => (Some(t), false),
            _ => (None, view.importing_from(slot).is_some()),
        }
    } else {
        (None, false)
    };
    let is_write = spec.has(flag::WRITE);
    // Sharded pub/sub: served while the cluster is down when allowed, by a replica of the
    // channel's primary without READONLY, and by a migrating slot's source whatever the
    // channel (Valkey's getNodeByQuery with `pubsubshard_included`).
    let pubsub = spec.has(flag::PUBSUB);
    if !view.cluster_ok() {
        if pubsub {
            if !when_down.pubsubshard {
                return Verdict::Refuse(DOWN.into());
            }
        } else if !when_down.reads {
            return Verdict::Refuse(DOWN.into());
        } else if is_write {
            return Verdict::Refuse(DOWN_RO.into());
        }
    }
    if (migrating_to.is_some() || importing) && r.fullname == "migrate" && view.i_am_primary() {
        return Verdict::Serve;
    }
    let readonly_ok = (flags.readonly || pubsub)
        && !is_write
        && !view.i_am_primary()
        && view.serving_primary() == Some(owner);
    let moved_to = (owner != view.me()).then(|| view.endpoint(owner).to_string());
    let pending = Pending {
        slot,
        keys: Vec::new(),
        migrating_to: migrating_to.map(|t| view.endpoint(t).to_string()),
        importing,
        asking: asking || spec.has(flag::ASKING),
        multiple_keys,
        moved: moved_to,
        readonly_ok,
    };
    if (migrating_to.is_some() || importing) && !pubsub {
        let mut pending = pending;
        pending.keys = key_pos.iter().map(|&p| argv[p].to_vec()).collect();
        return Verdict::CheckKeys(pending);
    }
    pending.finish(0, 0)
}

/// EXEC: the queued commands' keys must all be in one slot, still served here (Valkey's
/// getNodeByQuery over the transaction). A slot being migrated is not re-checked key by key
/// here: each command was checked as it was queued.
pub fn check_queued(
    view: &View,
    cmds: &[crate::commands::transaction::Queued],
    when_down: WhenDown,
) -> Verdict {
    let mut slot: Option<Slot> = None;
    let mut any_write = false;
    let mut any_pubsub = false;
    let mut pos = Vec::new();
    for q in cmds {
        let argv: Vec<&[u8]> = q.args.iter().map(Vec::as_slice).collect();
        let spec = q.r.spec;
        any_write |= spec.has(flag::WRITE);
        any_pubsub |= spec.has(flag::PUBSUB);
        if commands::key_positions_with(spec, &argv, &mut pos, spec.has(flag::PUBSUB)).is_none() {
            continue;
        }
        for &p in &pos {
            let s = key_slot(argv[p]);
            match slot {
                None => slot = Some(s),
                Some(x) if x != s => return Verdict::Refuse(CROSSSLOT.into()),
                Some(_) => {}
            }
        }
    }
    let Some(slot) = slot else {
        return Verdict::Serve;
    };
    let Some(owner) = view.owner(slot) else {
        return Verdict::Refuse(UNBOUND.into());
    };
    if !view.cluster_ok() {
        if any_pubsub {
            if !when_down.pubsubshard {
                return Verdict::Refuse(DOWN.into());
            }
        } else if !when_down.reads {
            return Verdict::Refuse(DOWN.into());
        } else if any_write {
            return Verdict::Refuse(DOWN_RO.into());
        }
    }
    if owner != view.me() && view.importing_from(slot).is_none() {
        return Verdict::Refuse(moved(slot, view.endpoint(owner)));
    }
    Verdict::Serve
}

impl Pending {
    /// The verdict once the owning shard said how many of the keys are missing and how many
    /// exist.
    pub fn finish(self, missing: usize, existing: usize) -> Verdict {
        if let Some(target) = &self.migrating_to {
            if missing > 0 {
                return Verdict::Refuse(if existing > 0 {
                    TRYAGAIN.into()
                } else {
                    ask(self.slot, target)
                });
            }
        }
        if self.importing && self.asking {
            return if self.multiple_keys && missing > 0 {
                Verdict::Refuse(TRYAGAIN.into())
            } else {
                Verdict::Serve
            };
        }
        if self.readonly_ok {
            return Verdict::Serve;
        }
        match self.moved {
            Some(endpoint) => Verdict::Refuse(moved(self.slot, &endpoint)),
            None => Verdict::Serve,
        }
    }
}

/// How many of `keys` are missing and how many exist in database 0 of this shard (which owns
/// their slot). Expired keys count as missing.
pub fn count_keys(shard: &crate::shard::Shard, keys: &[Vec<u8>]) -> (usize, usize) {
    let now = shard.now_ms();
    let mut ks = shard.ks.borrow_mut();
    let existing = keys.iter().filter(|k| ks.dbs[0].contains(k, now)).count();
    (keys.len() - existing, existing)
}

/// Resolves a [`Verdict::CheckKeys`] by asking the shard that owns the slot.
pub async fn resolve(shard: &std::rc::Rc<crate::shard::Shard>, mut pending: Pending) -> Verdict {
    let target = shard.shard_of_slot(pending.slot.get());
    let keys = std::mem::take(&mut pending.keys);
    let (missing, existing) = shard.call(target, move |s| count_keys(s, &keys)).await;
    pending.finish(missing, existing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{registry, Lookup};
    use corekey_bus::topology::NO_OWNER;
    use corekey_bus::topology::{NodeFlags, NodeId, NodeView, ShardId, SlotBitmap, Topology};
    use std::sync::Arc;

    const ME: u8 = 1;
    const OTHER: u8 = 2;

    fn id(b: u8) -> NodeId {
        NodeId::from_bytes([b; 20])
    }

    fn node(b: u8, port: u16, flags: NodeFlags, primary: Option<NodeId>) -> NodeView {
        NodeView {
            id: id(b),
            ip: "127.0.0.1".into(),
            port,
            bus_port: port + 10000,
            hostname: String::new(),
            shard_id: ShardId::from_bytes([b; 20]),
            flags,
            primary,
            config_epoch: u64::from(b),
            slots: SlotBitmap::new(),
            ping_sent_ms: 0,
            pong_received_ms: 0,
            link_connected: true,
            repl_offset: 0,
        }
    }

    /// Two nodes: slots below 8192 are ours (or our primary's when `replica`), 8192..16000 the
    /// other node's, the rest unserved.
    fn view(replica: bool, ok: bool, migrating: &[u16], importing: &[u16]) -> View {
        let me = if replica {
            node(
                ME,
                7001,
                NodeFlags::MYSELF.union(NodeFlags::REPLICA),
                Some(id(OTHER)),
            )
        } else {
            node(ME, 7001, NodeFlags::MYSELF.union(NodeFlags::PRIMARY), None)
        };
        let other = node(OTHER, 7002, NodeFlags::PRIMARY, None);
        let mut slot_owner = vec![NO_OWNER; 16384];
        for (s, o) in slot_owner.iter_mut().enumerate() {
            if s < 8192 {
                *o = if replica { 1 } else { 0 };
            } else if s < 16000 {
                *o = 1;
            }
        }
        let slot = |n: &u16| Slot::new(*n).unwrap();
        View::new(Arc::new(Topology {
            version: 1,
            myself: id(ME),
            myself_index: 0,
            current_epoch: 2,
            last_vote_epoch: 0,
            cluster_ok: ok,
            nodes: vec![me, other],
            slot_owner,
            migrating: migrating.iter().map(|s| (slot(s), id(OTHER))).collect(),
            importing: importing.iter().map(|s| (slot(s), id(OTHER))).collect(),
            size: 2,
        }))
    }

    /// A key of `slot`.
    fn key_in(slot: u16) -> String {
        (0..)
            .map(|i| format!("k{i}"))
            .find(|k| key_slot(k.as_bytes()).get() == slot)
            .unwrap()
    }

    fn route(v: &View, flags: &mut ClientFlags, argv: &[&str]) -> Verdict {
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        let Lookup::Found(r) = registry().lookup(&argv) else {
            panic!("unknown command {argv:?}")
        };
        let when_down = WhenDown {
            reads: false,
            pubsubshard: false,
        };
        check(v, flags, r, &argv, &mut Vec::new(), when_down)
    }

    fn text(v: Verdict) -> String {
        match v {
            Verdict::Serve => "serve".into(),
            Verdict::Refuse(m) => String::from_utf8(m).unwrap(),
            Verdict::CheckKeys(_) => "check".into(),
        }
    }

    /// Keyless commands are served; keys in our slots are served, others get MOVED with the
    /// owner's address; keys of several slots are CROSSSLOT, unless the first is unserved.
    #[test]
    fn moved_crossslot_unbound() {
        let v = view(false, true, &[], &[]);
        let mut f = ClientFlags::default();
        let (mine, theirs, free) = (key_in(5), key_in(9000), key_in(16100));
        assert_eq!(text(route(&v, &mut f, &["PING"])), "serve");
        assert_eq!(text(route(&v, &mut f, &["GET", &mine])), "serve");
        assert_eq!(
            text(route(&v, &mut f, &["GET", &theirs])),
            "-MOVED 9000 127.0.0.1:7002"
        );
        assert_eq!(
            text(route(&v, &mut f, &["MSET", &mine, "1", &theirs, "2"])),
            CROSSSLOT
        );
        assert_eq!(
            text(route(&v, &mut f, &["MSET", &free, "1", &mine, "2"])),
            UNBOUND
        );
    }

    /// A down cluster refuses keyed commands, or only writes with allow-reads-when-down.
    #[test]
    fn cluster_down() {
        let v = view(false, false, &[], &[]);
        let mut f = ClientFlags::default();
        let k = key_in(5);
        assert_eq!(text(route(&v, &mut f, &["GET", &k])), DOWN);
        let r = |argv: &[&str]| {
            let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
            let Lookup::Found(r) = registry().lookup(&argv) else {
                panic!()
            };
            text(check(
                &v,
                &mut ClientFlags::default(),
                r,
                &argv,
                &mut Vec::new(),
                WhenDown {
                    reads: true,
                    pubsubshard: false,
                },
            ))
        };
        assert_eq!(r(&["GET", &k]), "serve");
        assert_eq!(r(&["SET", &k, "v"]), DOWN_RO);
        assert_eq!(r(&["SPUBLISH", &k, "m"]), DOWN);
        assert_eq!(text(route(&v, &mut f, &["PING"])), "serve");
        // cluster-allow-pubsubshard-when-down (on by default) serves sharded pub/sub only.
        let argv: Vec<&[u8]> = vec![b"SPUBLISH", k.as_bytes(), b"m"];
        let Lookup::Found(spublish) = registry().lookup(&argv) else {
            panic!()
        };
        let pubsub_only = WhenDown {
            reads: false,
            pubsubshard: true,
        };
        let mut flags = ClientFlags::default();
        assert_eq!(
            text(check(
                &v,
                &mut flags,
                spublish,
                &argv,
                &mut Vec::new(),
                pubsub_only
            )),
            "serve"
        );
        let argv: Vec<&[u8]> = vec![b"GET", k.as_bytes()];
        let Lookup::Found(get) = registry().lookup(&argv) else {
            panic!()
        };
        assert_eq!(
            text(check(
                &v,
                &mut flags,
                get,
                &argv,
                &mut Vec::new(),
                pubsub_only
            )),
            DOWN
        );
    }

    /// A migrating slot: all keys here → served, none here → ASK the target, some → TRYAGAIN.
    #[test]
    fn migrating_slot() {
        let v = view(false, true, &[5], &[]);
        let mut f = ClientFlags::default();
        let (a, b) = (key_in(5), format!("{{{}}}x", key_in(5)));
        let pending = |argv: &[&str]| match route(&v, &mut ClientFlags::default(), argv) {
            Verdict::CheckKeys(p) => p,
            other => panic!("expected a key check, got {}", text(other)),
        };
        assert_eq!(pending(&["GET", &a]).keys, vec![a.clone().into_bytes()]);
        assert_eq!(text(pending(&["GET", &a]).finish(0, 1)), "serve");
        assert_eq!(
            text(pending(&["GET", &a]).finish(1, 0)),
            "-ASK 5 127.0.0.1:7002"
        );
        assert_eq!(text(pending(&["MGET", &a, &b]).finish(1, 1)), TRYAGAIN);
        // MIGRATE itself runs here while the slot is open.
        let m = ["MIGRATE", "h", "1", "", "0", "100", "KEYS", &a];
        assert_eq!(text(route(&v, &mut f, &m)), "serve");
    }

    /// An importing slot: MOVED without ASKING; after ASKING (for one command) or with
    /// RESTORE-ASKING served, unless several keys are partly missing.
    #[test]
    fn importing_slot_and_asking() {
        let v = view(false, true, &[], &[9000]);
        let k = key_in(9000);
        let k2 = format!("{{{k}}}2");
        let mut f = ClientFlags::default();
        let finish = |v: Verdict, missing, existing| match v {
            Verdict::CheckKeys(p) => text(p.finish(missing, existing)),
            other => text(other),
        };
        assert_eq!(
            finish(route(&v, &mut f, &["GET", &k]), 1, 0),
            "-MOVED 9000 127.0.0.1:7002"
        );
        assert_eq!(text(route(&v, &mut f, &["ASKING"])), "serve");
        f.asking = true;
        assert_eq!(finish(route(&v, &mut f, &["GET", &k]), 1, 0), "serve");
        assert!(!f.asking, "ASKING lasts one command");
        f.asking = true;
        assert_eq!(
            finish(route(&v, &mut f, &["MGET", &k, &k2]), 1, 1),
            TRYAGAIN
        );
        assert_eq!(
            finish(route(&v, &mut f, &["RESTORE-ASKING", &k, "0", "x"]), 1, 0),
            "serve"
        );
    }

    /// A replica serves reads of its primary's slots after READONLY; writes and other reads go
    /// to the primary.
    #[test]
    fn replica_readonly() {
        let v = view(true, true, &[], &[]);
        let k = key_in(5);
        let mut f = ClientFlags::default();
        assert_eq!(
            text(route(&v, &mut f, &["GET", &k])),
            "-MOVED 5 127.0.0.1:7002"
        );
        f.readonly = true;
        assert_eq!(text(route(&v, &mut f, &["GET", &k])), "serve");
        assert_eq!(
            text(route(&v, &mut f, &["SET", &k, "v"])),
            "-MOVED 5 127.0.0.1:7002"
        );
        // Sharded pub/sub is served by a replica of the channel's primary without READONLY.
        let mut f = ClientFlags::default();
        assert_eq!(text(route(&v, &mut f, &["SSUBSCRIBE", &k])), "serve");
        assert_eq!(text(route(&v, &mut f, &["SPUBLISH", &k, "m"])), "serve");
        assert_eq!(text(route(&v, &mut f, &["SUNSUBSCRIBE", &k])), "serve");
    }
}
