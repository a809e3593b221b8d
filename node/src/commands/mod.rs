//! The command table and what commands run against.
//!
//! Each family file (`string.rs`, `generic.rs`, `server.rs`, `connection.rs`…) owns its
//! commands: their table entries ([`CommandSpec`], data in the shape of Valkey's command JSON
//! files), their argument parsing and their logic, with tests beside them. This module joins
//! the families into one registry (lookup by name, ids for statistics), finds the keys of a
//! command from its key specs, and defines the contexts commands run in:
//!
//! - [`KeyCtx`]: a command that reads or writes keys, running on the shard that owns them; it
//!   sees that shard's keyspace and a reply buffer, and is given the time. No I/O.
//! - [`ConnCtx`]: a command about the connection itself (PING, SELECT, HELLO…), run on the
//!   connection's shard.
//! - Node-wide commands (KEYS, FLUSHALL, INFO…) and multi-key commands whose keys span shards
//!   are coordinated in `crate::dispatch`, which calls back into the family files for the work
//!   each shard does.

pub mod blocking;
pub mod cluster;
pub mod connection;
pub mod diagnostics;
pub mod docs;
pub mod generic;
pub mod hash;
pub mod introspect;
pub mod list;
pub mod migrate;
pub mod multi;
pub mod pubsub;
pub mod replication;
pub mod server;
pub mod set;
pub mod sorted_set;
pub mod spec;
pub mod string;
pub mod transaction;

use crate::config::Config;
use crate::keyspace::{Db, Entry, Keyspace};
use crate::resp::Out;
use crate::session::ClientState;
use crate::shard::Shard;
pub use spec::{BeginSearch, CommandSpec, Exec, FindKeys, Group, KeySpec};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;

/// A command's index in the registry (statistics are kept per id).
pub type CmdId = usize;

/// A command that reads or writes keys.
pub type KeyFn = fn(&mut KeyCtx<'_>, &[&[u8]]);
/// A command about the connection.
pub type ConnFn = fn(&mut ConnCtx<'_>, &[&[u8]]);

/// Node-wide commands, coordinated across shards by `crate::dispatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeCmd {
    Keys,
    Scan,
    RandomKey,
    DbSize,
    FlushAll,
    FlushDb,
    SwapDb,
    Info,
    ConfigGet,
    ConfigSet,
    ConfigResetStat,
    ClientList,
    ClientKill,
    Shutdown,
    Publish,
    SPublish,
    PubsubChannels,
    PubsubNumsub,
    PubsubNumpat,
    PubsubShardChannels,
    PubsubShardNumsub,
    Exec,
    Discard,
    Watch,
    Unwatch,
    /// CLUSTER subcommands that leave the connection's shard (`cluster.rs`).
    Cluster(cluster::ClusterCmd),
    ConfigRewrite,
    SlowlogGet,
    SlowlogLen,
    SlowlogReset,
    LatencyLatest,
    LatencyHistory,
    LatencyReset,
    LatencyHistogram,
    LatencyDoctor,
    /// ROLE, WAIT, REPLCONF (`replication.rs`).
    Repl(replication::ReplCmd),
}

/// The context of a key command: the owning shard's keyspace, the client's database, the
/// time, and where the reply goes.
pub struct KeyCtx<'a> {
    pub ks: &'a mut Keyspace,
    pub db: usize,
    pub now_ms: i64,
    pub out: &'a mut Out,
    pub config: &'a Config,
}

impl KeyCtx<'_> {
    /// The client's selected database.
    pub fn db(&mut self) -> &mut Db {
        &mut self.ks.dbs[self.db]
    }

    /// A read access to `key` (counts a keyspace hit or miss).
    pub fn read(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let now = self.now_ms;
        let Keyspace { dbs, stats, .. } = &mut *self.ks;
        dbs[self.db].lookup_read(stats, key, now)
    }

    /// A read access that leaves the key's access time alone (Valkey's `LOOKUP_NOTOUCH`, used
    /// by TTL, TYPE and OBJECT): counts a keyspace hit or miss like [`KeyCtx::read`].
    pub fn peek_out(&mut self, key: &[u8]) -> (Option<&Entry>, &mut Out) {
        let now = self.now_ms;
        let Keyspace { dbs, stats, .. } = &mut *self.ks;
        let e = dbs[self.db].get(key, now);
        if e.is_some() {
            stats.hits += 1;
        } else {
            stats.misses += 1;
        }
        (e, &mut *self.out)
    }

    /// [`KeyCtx::read`], also handing out the reply buffer (the two borrows are disjoint).
    pub fn read_out(&mut self, key: &[u8]) -> (Option<&mut Entry>, &mut Out) {
        let now = self.now_ms;
        let Keyspace { dbs, stats, .. } = &mut *self.ks;
        (dbs[self.db].lookup_read(stats, key, now), &mut *self.out)
    }

    /// [`KeyCtx::write`], also handing out the reply buffer.
    pub fn write_out(&mut self, key: &[u8]) -> (Option<&mut Entry>, &mut Out) {
        let now = self.now_ms;
        (self.ks.dbs[self.db].lookup_write(key, now), &mut *self.out)
    }

    /// A write changed `key` (Valkey's `signalModifiedKey`): clients WATCHing it will see
    /// their EXEC fail. Every command that changes a key calls this.
    pub fn modified(&mut self, key: &[u8]) {
        if self.ks.watches.is_empty() {
            return;
        }
        let exists = self.ks.dbs[self.db].stored(key, self.now_ms).is_some();
        self.ks.watches.touched_exists(self.db, key, exists);
    }

    /// `key` may now serve clients blocked on it (Valkey's `signalKeyAsReady`): pushes to
    /// lists and sorted sets call this.
    pub fn key_ready(&mut self, key: &[u8]) {
        self.ks.readiness.signal(self.db, key);
    }

    /// The compact-encoding thresholds in force.
    pub fn limits(&self) -> crate::keyspace::encoding::Limits {
        self.ks.limits
    }

    /// A write access to `key`.
    pub fn write(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let now = self.now_ms;
        self.ks.dbs[self.db].lookup_write(key, now)
    }
}

/// The context of a connection command.
pub struct ConnCtx<'a> {
    pub shard: &'a Rc<Shard>,
    pub client: &'a mut ClientState,
    pub out: &'a mut Out,
    pub now_ms: i64,
}

/// One registered command or subcommand.
pub struct Resolved {
    pub id: CmdId,
    pub spec: &'static CommandSpec,
    pub parent: Option<&'static CommandSpec>,
    /// "get", or "client|list" for a subcommand.
    pub fullname: String,
}

/// All commands, with their ids and a name index.
pub struct Registry {
    pub all: Vec<Resolved>,
    /// Top-level commands by lower-case name.
    top: HashMap<&'static str, CmdId>,
    /// Subcommands by (parent id, lower-case name).
    subs: HashMap<(CmdId, &'static str), CmdId>,
}

/// The families' tables, in the order COMMAND lists them.
fn families() -> [&'static [CommandSpec]; 15] {
    [
        string::COMMANDS,
        hash::COMMANDS,
        list::COMMANDS,
        blocking::COMMANDS,
        set::COMMANDS,
        sorted_set::COMMANDS,
        pubsub::COMMANDS,
        transaction::COMMANDS,
        generic::COMMANDS,
        connection::COMMANDS,
        server::COMMANDS,
        cluster::COMMANDS,
        migrate::COMMANDS,
        diagnostics::COMMANDS,
        replication::COMMANDS,
    ]
}

/// The registry, built once.
pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        let mut all = Vec::new();
        let mut top = HashMap::new();
        let mut subs = HashMap::new();
        for family in families() {
            for spec in family {
                let id = all.len();
                all.push(Resolved {
                    id,
                    spec,
                    parent: None,
                    fullname: spec.name.to_string(),
                });
                let dup = top.insert(spec.name, id);
                assert!(dup.is_none(), "command {} registered twice", spec.name);
                for sub in spec.subcommands {
                    let sid = all.len();
                    all.push(Resolved {
                        id: sid,
                        spec: sub,
                        parent: Some(spec),
                        fullname: format!("{}|{}", spec.name, sub.name),
                    });
                    let dup = subs.insert((id, sub.name), sid);
                    assert!(
                        dup.is_none(),
                        "subcommand {}|{} registered twice",
                        spec.name,
                        sub.name
                    );
                }
            }
        }
        Registry { all, top, subs }
    })
}

/// Number of registered commands and subcommands.
pub fn count() -> usize {
    registry().all.len()
}

/// What the name (and subcommand) of a request resolve to.
pub enum Lookup {
    Found(&'static Resolved),
    UnknownCommand,
    /// The command exists and has subcommands, but not this one.
    UnknownSubcommand,
}

/// Lower-cases `name` into `buf` when it is short enough to be a command name.
fn lower<'b>(name: &[u8], buf: &'b mut [u8; 32]) -> Option<&'b str> {
    let dst = buf.get_mut(..name.len())?;
    for (d, s) in dst.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(dst).ok()
}

impl Registry {
    /// Looks a request up as Valkey's `lookupCommand` does: a container with one argument is
    /// itself (its arity check will fail), with more the subcommand is looked up.
    pub fn lookup(&'static self, argv: &[&[u8]]) -> Lookup {
        let mut buf = [0u8; 32];
        let Some(name) = argv.first().and_then(|n| lower(n, &mut buf)) else {
            return Lookup::UnknownCommand;
        };
        let Some(&id) = self.top.get(name) else {
            return Lookup::UnknownCommand;
        };
        let r = &self.all[id];
        if r.spec.subcommands.is_empty() || argv.len() == 1 {
            return Lookup::Found(r);
        }
        let mut sbuf = [0u8; 32];
        match lower(argv[1], &mut sbuf).and_then(|s| self.subs.get(&(id, s))) {
            Some(&sid) => Lookup::Found(&self.all[sid]),
            None => Lookup::UnknownSubcommand,
        }
    }

    /// A top-level command by name (COMMAND INFO), case-insensitive.
    pub fn by_name(&'static self, name: &[u8]) -> Option<&'static Resolved> {
        let mut buf = [0u8; 32];
        let name = lower(name, &mut buf)?;
        self.top.get(name).map(|&id| &self.all[id])
    }

    /// A command or subcommand by full name ("client|list").
    pub fn by_fullname(&'static self, name: &[u8]) -> Option<&'static Resolved> {
        let full = String::from_utf8_lossy(name).to_ascii_lowercase();
        match full.split_once('|') {
            None => self.by_name(name),
            Some((parent, sub)) => {
                let &pid = self.top.get(parent)?;
                self.all.iter().find(|r| {
                    r.parent.is_some() && r.fullname == format!("{}|{sub}", self.all[pid].spec.name)
                })
            }
        }
    }

    /// Top-level commands, in registry order.
    pub fn top_level(&'static self) -> impl Iterator<Item = &'static Resolved> {
        self.all.iter().filter(|r| r.parent.is_none())
    }

    /// The subcommands of the command with id `id`.
    pub fn subcommands_of(
        &'static self,
        r: &'static Resolved,
    ) -> impl Iterator<Item = &'static Resolved> {
        let parent = r.spec as *const CommandSpec;
        self.all
            .iter()
            .filter(move |s| s.parent.is_some_and(|p| std::ptr::eq(p, parent)))
    }
}

/// The argument positions of the keys of a request, from its command's key specs (Valkey's
/// `getKeysUsingKeySpecs`). `None` when the arguments do not fit the specs (the command will
/// then report its own syntax error).
pub fn key_positions(spec: &CommandSpec, argv: &[&[u8]], out: &mut Vec<usize>) -> Option<()> {
    key_positions_with(spec, argv, out, false)
}

/// [`key_positions`], also counting the arguments of NOT_KEY specs when `not_keys` (the
/// channels of sharded pub/sub, which cluster mode routes like keys).
pub fn key_positions_with(
    spec: &CommandSpec,
    argv: &[&[u8]],
    out: &mut Vec<usize>,
    not_keys: bool,
) -> Option<()> {
    out.clear();
    let argc = argv.len() as i64;
    for ks in spec.keys {
        if ks.flags & spec::keyflag::NOT_KEY != 0 && !not_keys {
            continue;
        }
        let first: i64 = match ks.begin {
            BeginSearch::Index(pos) => i64::from(pos),
            BeginSearch::Keyword { keyword, startfrom } => {
                let startfrom = i64::from(startfrom);
                let start = if startfrom > 0 {
                    startfrom
                } else {
                    argc + startfrom
                };
                let end = if startfrom > 0 { argc - 1 } else { 1 };
                let mut found = 0;
                let mut i = start;
                // Walks towards `end`; at most argc steps.
                for _ in 0..argc.max(0) {
                    if i == end || i >= argc || i < 1 {
                        break;
                    }
                    if opt_is(argv[i as usize], keyword) {
                        found = i + 1;
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            BeginSearch::Unknown => return None,
        };
        let (first, last, step) = match ks.find {
            FindKeys::Range {
                lastkey,
                step,
                limit,
            } => {
                let lastkey = i64::from(lastkey);
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / i64::from(limit) + lastkey)
                };
                (first, last, i64::from(step))
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                step,
            } => {
                let idx = first + i64::from(keynumidx);
                let n = argv
                    .get(usize::try_from(idx).ok()?)
                    .and_then(|a| crate::util::parse_i64(a))?;
                if n < 0 {
                    return None;
                }
                let f = first + i64::from(firstkey);
                // `n` comes from the client: a huge count must not overflow (it fails the
                // `last >= argc` check below instead).
                (f, f.saturating_add(n - 1), i64::from(step))
            }
            FindKeys::Unknown => return None,
        };
        if last < first {
            // Zero keys (a keynum of 0): nothing to add.
            if last == first - 1 {
                continue;
            }
            return None;
        }
        if last >= argc || first >= argc || step <= 0 {
            return None;
        }
        let mut i = first;
        while i <= last {
            out.push(i as usize);
            i += step;
        }
        if ks.flags & spec::keyflag::INCOMPLETE != 0 {
            return None;
        }
    }
    Some(())
}

/// Valkey's error for an argument that is not an integer.
pub const ERR_NOT_INTEGER: &str = "value is not an integer or out of range";
/// Valkey's `WRONGTYPE` error.
pub const ERR_WRONGTYPE: &str =
    "-WRONGTYPE Operation against a key holding the wrong kind of value";
/// Valkey's generic syntax error.
pub const ERR_SYNTAX: &str = "syntax error";

/// What Valkey's C string functions (`strcasecmp`, `%s` in an error text) see of a client's
/// argument: the bytes before the first NUL.
pub fn cstr(arg: &[u8]) -> &[u8] {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    &arg[..end]
}

/// Whether an option argument is `word`, compared as Valkey's `!strcasecmp(arg, word)` does:
/// ASCII case folded, and only up to a NUL in the argument (so `NX\0junk` is `NX`).
pub fn opt_is(arg: &[u8], word: &str) -> bool {
    cstr(arg).eq_ignore_ascii_case(word.as_bytes())
}

/// An error text that quotes a client's argument, as Valkey's `"...'%s'..."` formats do:
/// `before`, the argument up to a NUL, `after`; the bytes stay as sent (they may not be UTF-8).
pub fn quoted_err(before: &str, arg: &[u8], after: &str) -> Vec<u8> {
    [before.as_bytes(), cstr(arg), after.as_bytes()].concat()
}

/// Parses an integer argument or replies Valkey's error; `None` means the reply was written.
pub fn int_arg(out: &mut Out, arg: &[u8]) -> Option<i64> {
    match crate::util::parse_i64(arg) {
        Some(v) => Some(v),
        None => {
            out.err(ERR_NOT_INTEGER);
            None
        }
    }
}

/// Valkey's `getRangeLongFromObjectOrReply`: an integer within `min..=max`. A non-integer
/// gets `msg` (or the not-an-integer text); an integer out of range gets `msg` (or "value is
/// out of range, value must between MIN and MAX").
pub fn range_arg(out: &mut Out, arg: &[u8], min: i64, max: i64, msg: Option<&str>) -> Option<i64> {
    let Some(v) = crate::util::parse_i64(arg) else {
        out.err(msg.unwrap_or(ERR_NOT_INTEGER));
        return None;
    };
    if v < min || v > max {
        match msg {
            Some(m) => out.err(m),
            None => out.err(format!(
                "value is out of range, value must between {min} and {max}"
            )),
        }
        return None;
    }
    Some(v)
}

/// Valkey's `getPositiveLongFromObjectOrReply`: a non-negative integer; both a non-integer
/// and a negative one get `msg`, by default "value is out of range, must be positive".
pub fn positive_arg(out: &mut Out, arg: &[u8], msg: Option<&str>) -> Option<i64> {
    range_arg(
        out,
        arg,
        0,
        i64::MAX,
        Some(msg.unwrap_or("value is out of range, must be positive")),
    )
}

/// The "wrong number of arguments" error for a command by full name.
pub fn arity_error(fullname: &str) -> String {
    format!("wrong number of arguments for '{fullname}' command")
}

#[cfg(test)]
mod table_tests;

#[cfg(test)]
mod arg_tests {
    use super::{cstr, opt_is, quoted_err};

    /// Options compare as Valkey's `strcasecmp` on C strings: case folded, ended by a NUL.
    #[test]
    fn options_as_c_strings() {
        assert!(opt_is(b"Nx", "nx"));
        assert!(opt_is(b"nx\0anything", "nx"));
        assert!(!opt_is(b"nxx", "nx"));
        assert!(!opt_is(b"\0nx", "nx"));
        assert_eq!(cstr(b"ab\0cd"), b"ab");
        assert_eq!(cstr(b"\xff"), b"\xff");
    }

    /// A key count taken from the arguments (a keynum spec, as EVAL's) cannot overflow the
    /// position arithmetic, however large: the arguments just do not fit the spec.
    #[test]
    fn huge_keynum() {
        use super::spec::{BeginSearch, CommandSpec, FindKeys, Group, KeySpec};
        static KEYS: [KeySpec; 1] = [KeySpec {
            notes: None,
            flags: 0,
            begin: BeginSearch::Index(2),
            find: FindKeys::Keynum {
                keynumidx: 0,
                firstkey: 1,
                step: 1,
            },
        }];
        let spec = CommandSpec {
            keys: &KEYS,
            ..CommandSpec::new("x", -3, 0, 0, Group::Generic, "", "", "", "")
        };
        let mut pos = Vec::new();
        let argv: [&[u8]; 4] = [b"x", b"s", b"9223372036854775807", b"k"];
        assert!(super::key_positions(&spec, &argv, &mut pos).is_none());
        let argv: [&[u8]; 4] = [b"x", b"s", b"1", b"k"];
        assert!(super::key_positions(&spec, &argv, &mut pos).is_some());
        assert_eq!(pos, [3]);
    }

    /// A quoted argument keeps its bytes and ends at a NUL, as `'%s'` does.
    #[test]
    fn quoting() {
        assert_eq!(quoted_err("bad '", b"x\xff\0y", "'"), b"bad 'x\xff'");
    }
}
