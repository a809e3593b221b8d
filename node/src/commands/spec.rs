//! The shape of the command table: one [`CommandSpec`] per command, in the form of Valkey's
//! `src/commands/*.json` schema (name, arity, flags, ACL categories, key specs, group, since,
//! summary, complexity, arguments). `COMMAND`, `COMMAND INFO|DOCS|GETKEYS`, routing and (later)
//! ACL all read these values; nothing else describes a command.

/// Command flags, as the lower-case names `COMMAND INFO` prints.
pub mod flag {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const ASKING: u32 = 1 << 11;
    pub const FAST: u32 = 1 << 12;
    pub const NO_AUTH: u32 = 1 << 13;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 14;
    pub const NO_ASYNC_LOADING: u32 = 1 << 15;
    pub const NO_MULTI: u32 = 1 << 16;
    pub const ALLOW_BUSY: u32 = 1 << 17;
    /// Not printed by COMMAND INFO (as in Valkey); kept for routing decisions.
    pub const MAY_REPLICATE: u32 = 1 << 18;
    /// Not printed (as in Valkey): the command may touch keys it does not name.
    pub const TOUCHES_ARBITRARY_KEYS: u32 = 1 << 19;

    /// `(flag, name)` in the order `COMMAND INFO` prints them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// ACL categories (`@keyspace`, `@string`…).
pub mod acl {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const SET: u32 = 1 << 3;
    pub const SORTEDSET: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const STRING: u32 = 1 << 7;
    pub const BITMAP: u32 = 1 << 8;
    pub const HYPERLOGLOG: u32 = 1 << 9;
    pub const GEO: u32 = 1 << 10;
    pub const STREAM: u32 = 1 << 11;
    pub const PUBSUB: u32 = 1 << 12;
    pub const ADMIN: u32 = 1 << 13;
    pub const FAST: u32 = 1 << 14;
    pub const SLOW: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const DANGEROUS: u32 = 1 << 17;
    pub const CONNECTION: u32 = 1 << 18;
    pub const TRANSACTION: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;

    /// `(category, name)` in Valkey's order.
    pub const NAMES: &[(u32, &str)] = &[
        (KEYSPACE, "keyspace"),
        (READ, "read"),
        (WRITE, "write"),
        (SET, "set"),
        (SORTEDSET, "sortedset"),
        (LIST, "list"),
        (HASH, "hash"),
        (STRING, "string"),
        (BITMAP, "bitmap"),
        (HYPERLOGLOG, "hyperloglog"),
        (GEO, "geo"),
        (STREAM, "stream"),
        (PUBSUB, "pubsub"),
        (ADMIN, "admin"),
        (FAST, "fast"),
        (SLOW, "slow"),
        (BLOCKING, "blocking"),
        (DANGEROUS, "dangerous"),
        (CONNECTION, "connection"),
        (TRANSACTION, "transaction"),
        (SCRIPTING, "scripting"),
    ];
}

/// Key-spec flags, as `COMMAND INFO` prints them.
pub mod keyflag {
    pub const RO: u32 = 1 << 0;
    pub const RW: u32 = 1 << 1;
    pub const OW: u32 = 1 << 2;
    pub const RM: u32 = 1 << 3;
    pub const ACCESS: u32 = 1 << 4;
    pub const UPDATE: u32 = 1 << 5;
    pub const INSERT: u32 = 1 << 6;
    pub const DELETE: u32 = 1 << 7;
    pub const NOT_KEY: u32 = 1 << 8;
    pub const INCOMPLETE: u32 = 1 << 9;
    pub const VARIABLE_FLAGS: u32 = 1 << 10;

    pub const NAMES: &[(u32, &str)] = &[
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];
}

/// Where the search for keys starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginSearch {
    /// At this argument index (0 is the command name).
    Index(i32),
    /// After the first `keyword` found searching from `startfrom` (negative: from the end).
    Keyword {
        keyword: &'static str,
        startfrom: i32,
    },
    Unknown,
}

/// How keys are found from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindKeys {
    /// Keys up to `lastkey` (relative to the start; negative counts from the end), every
    /// `step` arguments; `limit` > 1 means "only 1/limit of the remaining arguments".
    Range {
        lastkey: i32,
        step: i32,
        limit: i32,
    },
    /// The argument at `keynumidx` (relative to the start) says how many keys follow, the first
    /// at `firstkey` (relative), every `step`.
    Keynum {
        keynumidx: i32,
        firstkey: i32,
        step: i32,
    },
    Unknown,
}

/// One key spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub notes: Option<&'static str>,
    pub flags: u32,
    pub begin: BeginSearch,
    pub find: FindKeys,
}

/// Command groups, as COMMAND DOCS names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Generic,
    String,
    List,
    Set,
    SortedSet,
    Hash,
    Pubsub,
    Transactions,
    Connection,
    Server,
    Scripting,
    Hyperloglog,
    Cluster,
    Sentinel,
    Geo,
    Stream,
    Bitmap,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Generic => "generic",
            Group::String => "string",
            Group::List => "list",
            Group::Set => "set",
            Group::SortedSet => "sorted-set",
            Group::Hash => "hash",
            Group::Pubsub => "pubsub",
            Group::Transactions => "transactions",
            Group::Connection => "connection",
            Group::Server => "server",
            Group::Scripting => "scripting",
            Group::Hyperloglog => "hyperloglog",
            Group::Cluster => "cluster",
            Group::Sentinel => "sentinel",
            Group::Geo => "geo",
            Group::Stream => "stream",
            Group::Bitmap => "bitmap",
        }
    }
}

/// How a command is carried out; the dispatcher (`crate::dispatch`) reads this.
#[derive(Clone, Copy)]
pub enum Exec {
    /// Reads or writes keys: runs on the shard owning them (see `crate::commands::KeyCtx`).
    /// Commands whose keys can span shards in standalone mode also name a coordinator in
    /// `Multi`.
    Key(super::KeyFn),
    /// Needs only the connection and this shard's view of the node (PING, ECHO, SELECT…).
    Conn(super::ConnFn),
    /// Coordinates several shards or the whole node (KEYS, FLUSHALL, INFO, CLIENT LIST…);
    /// see `crate::dispatch::run_node`.
    Node(super::NodeCmd),
    /// Has subcommands and nothing of its own (CLIENT, CONFIG, OBJECT…).
    Container,
    /// Reads and writes keys and may wait for them (BLPOP…): see `crate::commands::blocking`.
    Block(&'static super::blocking::BlockSpec),
}

/// One command or subcommand.
pub struct CommandSpec {
    /// Lower-case name; for a subcommand only the subcommand part ("id" for CLIENT ID).
    pub name: &'static str,
    /// Valkey's arity: `n` means exactly n arguments (with the name), `-n` at least n.
    pub arity: i32,
    pub flags: u32,
    /// Explicit ACL categories; the implied ones (from flags) are added when printed.
    pub acl: u32,
    pub keys: &'static [KeySpec],
    pub group: Group,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    /// The arguments after the name, in the small syntax of `crate::commands::docs`.
    pub syntax: &'static str,
    pub tips: &'static [&'static str],
    pub doc_flags: &'static [&'static str],
    pub deprecated: Option<(&'static str, &'static str)>,
    pub history: &'static [(&'static str, &'static str)],
    pub subcommands: &'static [CommandSpec],
    pub exec: Exec,
    /// How a multi-key command is split across shards, when its keys are on several.
    pub multi: Option<super::multi::Coord>,
}

impl CommandSpec {
    /// Whether `argc` arguments (with the name) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// The ACL categories with the ones Valkey implies from the flags.
    pub fn acl_categories(&self) -> u32 {
        let mut c = self.acl;
        if self.has(flag::WRITE) {
            c |= acl::WRITE;
        }
        if self.has(flag::READONLY) && self.acl & acl::SCRIPTING == 0 {
            c |= acl::READ;
        }
        if self.has(flag::ADMIN) {
            c |= acl::ADMIN | acl::DANGEROUS;
        }
        if self.has(flag::PUBSUB) {
            c |= acl::PUBSUB;
        }
        if self.has(flag::FAST) {
            c |= acl::FAST;
        }
        if self.has(flag::BLOCKING) {
            c |= acl::BLOCKING;
        }
        if c & acl::FAST == 0 {
            c |= acl::SLOW;
        }
        c
    }

    /// Valkey's `populateCommandLegacyRangeSpec`: the legacy `(first, last, step)` triple of
    /// COMMAND INFO, and whether the command has "movable keys" (positions that the triple
    /// cannot describe).
    pub fn legacy_range(&self) -> ((i32, i32, i32), bool) {
        let absolute = |pos: i32, lastkey: i32| if lastkey >= 0 { lastkey + pos } else { lastkey };
        if let [only] = self.keys {
            if let (BeginSearch::Index(pos), FindKeys::Range { lastkey, step, .. }) =
                (only.begin, only.find)
            {
                let movable = only.flags & keyflag::INCOMPLETE != 0;
                return ((pos, absolute(pos, lastkey), step), movable);
            }
        }
        let mut movable = false;
        let mut first = i32::MAX;
        let mut last: i32 = 0;
        let mut prev_last: i32 = 0;
        for ks in self.keys {
            let (BeginSearch::Index(pos), FindKeys::Range { lastkey, step, .. }) =
                (ks.begin, ks.find)
            else {
                movable = true;
                continue;
            };
            if step != 1 || (prev_last != 0 && prev_last != pos - 1) {
                movable = true;
                continue;
            }
            if ks.flags & keyflag::INCOMPLETE != 0 {
                movable = true;
            }
            first = first.min(pos);
            // Valkey compares as unsigned so that a negative (from the end) last key wins.
            let abs = absolute(pos, lastkey);
            last = if (abs as u32) > (last as u32) {
                abs
            } else {
                last
            };
            prev_last = last;
        }
        if first == i32::MAX {
            return ((0, 0, 0), !self.keys.is_empty() || movable);
        }
        ((first, last, 1), movable)
    }

    /// Whether COMMAND INFO lists the `movablekeys` flag.
    pub fn movable_keys(&self) -> bool {
        self.legacy_range().1
    }
}

impl CommandSpec {
    /// A command with the given identity and no keys, subcommands or tips; the table fills
    /// in the rest with struct update syntax.
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        acl: u32,
        group: Group,
        since: &'static str,
        summary: &'static str,
        complexity: &'static str,
        syntax: &'static str,
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags,
            acl,
            keys: &[],
            group,
            since,
            summary,
            complexity,
            syntax,
            tips: &[],
            doc_flags: &[],
            deprecated: None,
            history: &[],
            subcommands: &[],
            exec: Exec::Container,
            multi: None,
        }
    }
}

/// One key at argument `pos`.
pub const fn key_at(pos: i32, flags: u32) -> KeySpec {
    KeySpec {
        notes: None,
        flags,
        begin: BeginSearch::Index(pos),
        find: FindKeys::Range {
            lastkey: 0,
            step: 1,
            limit: 0,
        },
    }
}

/// Keys from argument `pos` to `lastkey` (relative; -1 = the last argument), every `step`.
pub const fn keys_from(pos: i32, lastkey: i32, step: i32, flags: u32) -> KeySpec {
    KeySpec {
        notes: None,
        flags,
        begin: BeginSearch::Index(pos),
        find: FindKeys::Range {
            lastkey,
            step,
            limit: 0,
        },
    }
}
