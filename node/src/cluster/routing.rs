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
    allow_reads_when_down: bool,
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
    } else if commands::key_positions(spec, argv, key_pos).is_none() {
        key_pos.clear();
    }
    if key_pos.is_empty() {
        // Arguments that do not fit the key specs: the command reports its own error.
        return Verdict::Serve;
    }
    let first = argv[key_pos[0]];
    let slot = key_slot(first);
    let mut multiple_keys = false;
    for &p in &key_pos[1..] {
        if key_slot(argv[p]) != slot {
            return Verdict::Refuse(CROSSSLOT.into());
        }
        multiple_keys |= argv[p] != first;
    }
    let Some(owner) = view.owner(slot) else {
        return Verdict::Refuse(UNBOUND.into());
    };
    let (migrating_to, importing) = if view.i_am_primary() || flags.readonly {
        match view.migrating_to(slot) {
            Some(t) if Some(owner) == view.serving_primary() => (Some(t), false),
            _ => (None, view.importing_from(slot).is_some()),
        }
    } else {
        (None, false)
    };
    let is_write = spec.has(flag::WRITE);
    if !view.cluster_ok() {
        if !allow_reads_when_down {
            return Verdict::Refuse(DOWN.into());
        }
        if is_write {
            return Verdict::Refuse(DOWN_RO.into());
        }
    }
    if (migrating_to.is_some() || importing) && r.fullname == "migrate" && view.i_am_primary() {
        return Verdict::Serve;
    }
    let readonly_ok = flags.readonly
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
    if migrating_to.is_some() || importing {
        let mut pending = pending;
        pending.keys = key_pos.iter().map(|&p| argv[p].to_vec()).collect();
        return Verdict::CheckKeys(pending);
    }
    pending.finish(0, 0)
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
