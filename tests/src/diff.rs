//! The differential comparator: decides whether two servers' replies to the same command are
//! the same, and runs generated sequences ([`crate::gen`]) against two servers.
//!
//! Replies are compared **byte for byte**. The only exceptions are the normalisations in
//! [`NORMALISATIONS`], each for a reply that is legitimately nondeterministic, with its reason,
//! plus two whole-step checks done by [`run_seed`]: SCAN is compared by iterating the cursor
//! to the end on both servers and comparing the sets of keys (cursors and batch boundaries are
//! implementation details), and RANDOMKEY by checking that both return nil or a key that
//! exists on both. After a SET with an absolute expiry time, the key is looked up once with
//! EXISTS on both (an already-expired key is reclaimed then, not whenever the active expiry
//! cycle gets to it, which would make DBSIZE depend on timing). Every few steps the whole
//! keyspaces are compared, so a write that answered right but stored something wrong is
//! caught too. Known, intended differences between corekey (which follows Valkey 8) and the
//! reference redis-server 7.0 go into [`REFERENCE_DIFFERENCES`], which is meant to stay short.
//!
//! Each command family can bring its own generator: a [`StepSource`] gives the steps (the
//! string/generic [`Generator`]'s, or the collection checks of [`Planned`]), the keys the state
//! check reads and the commands it reads them with. [`run_seed`] runs the string/generic one.

use crate::client::{escape, show_command, Conn, Frame, Reply};
use crate::gen::{Generator, Step, KEYS};
use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;

/// How two replies to one command are compared when their bytes differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Byte for byte (the default for every command not listed).
    Exact,
    /// Two arrays (or sets) with the same elements in any order (a multiset).
    Unordered,
    /// Two integers that are both negative and equal (-1 and -2 are exact answers), or both
    /// non-negative and at most this far apart.
    Tolerance(i64),
    /// OBJECT IDLETIME: as `Tolerance`, and not compared at all when either server holds the
    /// key's value as a shared object (OBJECT REFCOUNT 2147483647): redis-server 7.0 stores
    /// the integers 0..=9999 as one shared object per number, whose access time is that of
    /// every key holding the number, not of this key. (Valkey 8.1 no longer stores shared
    /// integers in the keyspace: valkey-io/valkey#1186, per valkey-io/valkey#1358.) The
    /// runner checks OBJECT REFCOUNT when the readings differ.
    IdleTime(i64),
    /// Only the kind of reply (error or not, and which RESP type) must agree.
    KindOnly,
    /// HELLO: the same map (or RESP2 array) of fields in the same order, with the values of
    /// `server`, `version` and `id` not compared.
    HelloFields,
    /// OBJECT ENCODING of a set or a list: corekey's "listpack" may stand against the
    /// reference's "hashtable" (a set) or "quicklist" (a list); the runner then checks that
    /// the key holds a set (or a list) on both, small enough for a listpack.
    CompactEncoding,
    /// Replies carrying scores: the same structure and bytes, except that a bulk string or a
    /// RESP3 double may be written differently when both texts read as the same double
    /// (same bits, so -0 and 0 still differ).
    ScoreText,
    /// Random picks (ZRANDMEMBER): errors exact; otherwise the same RESP types and array
    /// lengths all the way down, the picked values not compared.
    RandomShape,
    /// ZSCAN and friends: with cursor 0, the cursor is followed to the end on both servers
    /// and the sets of elements (member and score pairs for ZSCAN) are compared, scores as
    /// doubles; pages and cursors are implementation details. Errors exact.
    ElementScan,
}

/// One normalisation: a command (and subcommand), its rule and why it is needed.
#[derive(Debug)]
pub struct Normalisation {
    pub command: &'static str,
    pub subcommand: Option<&'static str>,
    pub rule: Rule,
    pub reason: &'static str,
}

const fn norm(
    command: &'static str,
    subcommand: Option<&'static str>,
    rule: Rule,
    reason: &'static str,
) -> Normalisation {
    Normalisation {
        command,
        subcommand,
        rule,
        reason,
    }
}

/// Every normalisation the comparator applies. Everything else is byte for byte.
#[rustfmt::skip]
pub const NORMALISATIONS: &[Normalisation] = &[
    norm("KEYS", None, Rule::Unordered, "keys come in hash-table order, which differs between implementations"),
    norm("TTL", None, Rule::Tolerance(2), "the two servers read their clocks at slightly different moments"),
    norm("PTTL", None, Rule::Tolerance(2000), "the two servers read their clocks at slightly different moments"),
    norm("EXPIRETIME", None, Rule::Tolerance(2), "a relative TTL becomes an absolute time at each server's own moment"),
    norm("PEXPIRETIME", None, Rule::Tolerance(2000), "a relative TTL becomes an absolute time at each server's own moment"),
    norm("OBJECT", Some("IDLETIME"), Rule::Tolerance(2), "idle time is wall-clock seconds since last access (1 s resolution)"),
    norm("TIME", None, Rule::KindOnly, "the wall clock"),
    norm("INFO", None, Rule::KindOnly, "process facts: pid, uptime, memory, counters"),
    norm("CLIENT", Some("ID"), Rule::KindOnly, "connection ids are per-process counters"),
    norm("CLIENT", Some("LIST"), Rule::KindOnly, "addresses, ids, ages and buffer sizes of connections"),
    norm("CLIENT", Some("INFO"), Rule::KindOnly, "address, id, age and buffer sizes of this connection"),
    norm("HELLO", None, Rule::HelloFields, "server name, version and connection id identify the process, not the behaviour"),
    norm("SMEMBERS", None, Rule::Unordered, "a set's members come in its encoding's order, hash order for a hashtable, which differs between implementations"),
    norm("SINTER", None, Rule::Unordered, "the members come in the order of a set that may be a hashtable (hash order differs between implementations)"),
    norm("SUNION", None, Rule::Unordered, "the union is collected in a hashtable unless every operand is an intset (hash order differs between implementations)"),
    norm("SDIFF", None, Rule::Unordered, "the difference is collected in a hashtable unless every operand is an intset (hash order differs between implementations)"),
    norm("ZRANDMEMBER", None, Rule::RandomShape, "random members"),
    norm("ZSCAN", None, Rule::ElementScan, "pages and cursors depend on the hash table; the elements a full walk returns do not"),
];

/// Known differences between corekey (Valkey 8 behaviour) and the reference redis-server 7.0,
/// where corekey is right to differ. Each entry names the Valkey change; nothing here is a
/// guess. They take precedence over [`NORMALISATIONS`].
#[rustfmt::skip]
pub const REFERENCE_DIFFERENCES: &[Normalisation] = &[
    norm("OBJECT", Some("IDLETIME"), Rule::IdleTime(2), "redis 7.0 keeps 0..=9999 as shared objects whose idle time is not the key's; Valkey 8.1 stores no shared integers in the keyspace (valkey-io/valkey#1186)"),
    norm("OBJECT", Some("ENCODING"), Rule::CompactEncoding, "sets (redis/redis#11290) and lists (redis/redis#11303) gained a listpack encoding in Redis 7.2, which Valkey 8 has; redis 7.0 keeps small sets that are not all integers (and SPOP's survivors) as hashtables, and every list as a quicklist"),
    // Valkey 8 prints a score as the shortest text that reads back as the same double
    // (fpconv_dtoa, from redis/redis#10587 in Redis 7.2, which Valkey forked);
    // redis-server 7.0 prints "%.17g" (0.1 is "0.10000000000000001"). Only the text
    // differs, never the value.
    norm("ZSCORE", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZMSCORE", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZINCRBY", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZADD", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZRANGE", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZREVRANGE", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZRANGEBYSCORE", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZREVRANGEBYSCORE", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZPOPMIN", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZPOPMAX", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZMPOP", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZUNION", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZINTER", None, Rule::ScoreText, SCORE_TEXT),
    norm("ZDIFF", None, Rule::ScoreText, SCORE_TEXT),
    norm("BZPOPMIN", None, Rule::ScoreText, SCORE_TEXT),
    norm("BZPOPMAX", None, Rule::ScoreText, SCORE_TEXT),
    norm("BZMPOP", None, Rule::ScoreText, SCORE_TEXT),
];

/// Why scores may be written differently (see [`REFERENCE_DIFFERENCES`]).
const SCORE_TEXT: &str = "Valkey 8 prints scores as the shortest round-trip text (fpconv_dtoa, redis/redis#10587, Redis 7.2), redis 7.0 with %.17g";

/// The rule for a command.
pub fn rule_for(command: &[Vec<u8>]) -> Rule {
    let upper = |i: usize| {
        command
            .get(i)
            .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
    };
    let (Some(name), sub) = (upper(0), upper(1)) else {
        return Rule::Exact;
    };
    REFERENCE_DIFFERENCES
        .iter()
        .chain(NORMALISATIONS)
        .find(|n| n.command == name && n.subcommand.is_none_or(|s| sub.as_deref() == Some(s)))
        .map_or(Rule::Exact, |n| n.rule)
}

/// The RESP type of a reply, for [`Rule::KindOnly`].
fn kind(reply: &Reply) -> std::mem::Discriminant<Reply> {
    std::mem::discriminant(reply)
}

/// Decides whether two replies to `command` are the same; Err explains how they differ.
pub fn compare(command: &[Vec<u8>], a: &Frame, b: &Frame) -> Result<(), String> {
    if a.raw == b.raw {
        return Ok(());
    }
    let rule = rule_for(command);
    let ok = match rule {
        Rule::Exact => false,
        Rule::KindOnly => kind(&a.reply) == kind(&b.reply),
        Rule::Tolerance(t) | Rule::IdleTime(t) => match (&a.reply, &b.reply) {
            (Reply::Integer(x), Reply::Integer(y)) if *x >= 0 && *y >= 0 => {
                x.abs_diff(*y) <= t as u64
            }
            _ => false,
        },
        Rule::Unordered => match (a.reply.as_list(), b.reply.as_list()) {
            (Some(x), Some(y)) if kind(&a.reply) == kind(&b.reply) => sorted(x) == sorted(y),
            _ => false,
        },
        Rule::HelloFields => match (hello_fields(&a.reply), hello_fields(&b.reply)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        Rule::CompactEncoding => {
            a.reply == Reply::Bulk(b"listpack".to_vec())
                && [&b"hashtable"[..], b"quicklist"]
                    .iter()
                    .any(|e| b.reply == Reply::Bulk(e.to_vec()))
        }
        Rule::ScoreText => same_but_score_text(&a.reply, &b.reply),
        Rule::RandomShape => same_shape(&a.reply, &b.reply),
        // Compared by `element_scan_step`; a single page is never enough.
        Rule::ElementScan => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("replies differ (rule {rule:?})"))
    }
}

/// A reply's text read as a double, the way both servers write scores (`inf`, `-inf`,
/// `nan`, decimal or exponent notation).
fn as_double(r: &Reply) -> Option<f64> {
    match r {
        Reply::Double(d) => Some(*d),
        Reply::Bulk(b) => std::str::from_utf8(b).ok()?.parse::<f64>().ok(),
        _ => None,
    }
}

/// Whether two replies are the same but for how their scores are written (see
/// [`Rule::ScoreText`]).
fn same_but_score_text(a: &Reply, b: &Reply) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Reply::Array(x), Reply::Array(y)) | (Reply::Set(x), Reply::Set(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_but_score_text(p, q))
        }
        (Reply::Bulk(_), Reply::Bulk(_)) | (Reply::Double(_), Reply::Double(_)) => {
            match (as_double(a), as_double(b)) {
                (Some(x), Some(y)) => x.to_bits() == y.to_bits(),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether two replies have the same shape (see [`Rule::RandomShape`]).
fn same_shape(a: &Reply, b: &Reply) -> bool {
    match (a, b) {
        (Reply::Error(x), Reply::Error(y)) => x == y,
        (Reply::Array(x), Reply::Array(y)) | (Reply::Set(x), Reply::Set(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_shape(p, q))
        }
        _ => kind(a) == kind(b),
    }
}

fn sorted(items: &[Reply]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|r| format!("{r:?}")).collect();
    v.sort();
    v
}

/// HELLO's fields as (name, value) with the per-process values blanked; None if not a HELLO
/// reply (an error is compared exactly).
fn hello_fields(reply: &Reply) -> Option<Vec<(String, String)>> {
    let pairs: Vec<(&Reply, &Reply)> = match reply {
        Reply::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        Reply::Array(v) if v.len() % 2 == 0 => v.chunks(2).map(|p| (&p[0], &p[1])).collect(),
        _ => return None,
    };
    Some(
        pairs
            .into_iter()
            .map(|(k, v)| {
                let name = format!("{k:?}");
                let blank = matches!(k.as_bytes(), Some(b"server" | b"version" | b"id"));
                (
                    name,
                    if blank {
                        String::new()
                    } else {
                        format!("{v:?}")
                    },
                )
            })
            .collect(),
    )
}

/// One side of a differential run.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub name: &'a str,
    pub addr: SocketAddr,
}

/// How many earlier steps a mismatch report shows (at least STATE_CHECK_STEPS, so a state
/// difference is reported with every step since the last good check).
const HISTORY_STEPS: usize = 30;
/// Every this many steps, and at the end, the whole keyspace of both servers is compared
/// (values and TTLs of every generated key in every database used), so a write that answered
/// right but stored something wrong is caught near where it happened.
const STATE_CHECK_STEPS: usize = 25;
/// The databases the generator uses (SELECT/MOVE/COPY/SWAPDB pick 0..=3).
const DATABASES_USED: u32 = 4;
/// Most SCAN calls in one full iteration (the key space has a few dozen keys).
const SCAN_CALLS_MAX: usize = 100_000;

/// A step of a family's run: one of the string/generic generator's steps, or a whole-step
/// check for the random and cursor commands of collections, whose single replies the two
/// servers may legitimately answer differently.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    Step(Step),
    /// A whole SSCAN iteration (the command as given, cursor "0" at argument 2, then each
    /// returned cursor until 0): the sets of returned members must agree. Cursors and page
    /// boundaries are implementation details (a hashtable's cursor is corekey's own).
    KeyScanAll(Vec<Vec<u8>>),
    /// SPOP or SRANDMEMBER, which pick members at random: both replies must have the same
    /// shape and size, hold members of the set (distinct ones where Valkey picks distinct
    /// ones); after a SPOP the reference's set is made equal to the other's with SADD/SREM.
    SetSample(Vec<Vec<u8>>),
}

/// Where a differential run gets its steps, and what its state check reads.
pub trait StepSource {
    fn next_planned(&mut self) -> Planned;
    /// The keys whose values the state check compares.
    fn state_keys(&self) -> &[&[u8]] {
        KEYS
    }
    /// The commands the state check reads each key with: the first word, then the key, then
    /// the other words ("LRANGE 0 -1" reads `LRANGE key 0 -1`).
    fn state_reads(&self) -> &[&str] {
        &["GET", "PTTL"]
    }

    /// Called when two replies to `cmd` differ in bytes, before the rules of
    /// [`NORMALISATIONS`]: `Some` when the family decides (it may ask both servers more on
    /// the same connections), `None` to leave it to the rules. A family uses it where a
    /// reply's order depends on the encoding, or a reply is a random pick.
    fn check(
        &mut self,
        _cmd: &[Vec<u8>],
        _replies: (&Frame, &Frame),
        _a: Pair,
        _b: Pair,
    ) -> Option<Result<(), String>> {
        None
    }
}

impl StepSource for Generator {
    fn next_planned(&mut self) -> Planned {
        Planned::Step(self.next_step())
    }

    fn state_keys(&self) -> &[&[u8]] {
        KEYS
    }

    fn state_reads(&self) -> &[&str] {
        &["GET", "PTTL"]
    }
}

/// Runs `steps` generated steps of `seed` against both servers (after FLUSHALL on both, on
/// fresh connections) and stops at the first difference, with a report that names the seed,
/// the step, the command, both replies and the steps before it.
pub fn run_seed(a: Side, b: Side, seed: u64, steps: usize) -> Result<(), String> {
    run_source(a, b, seed, steps, &mut Generator::new(seed))
}

/// The seeds a differential test runs: `COREKEY_DIFF_SEED=<seed>` replays one,
/// `COREKEY_DIFF_SEEDS=<n>` soaks with seeds 1..=n, else `default`.
pub fn seeds_from_env(default: &[u64]) -> Vec<u64> {
    let var = |name: &str| {
        std::env::var(name).ok().map(|s| {
            s.parse::<u64>()
                .unwrap_or_else(|_| panic!("{name} must be an integer"))
        })
    };
    if let Some(seed) = var("COREKEY_DIFF_SEED") {
        return vec![seed];
    }
    match var("COREKEY_DIFF_SEEDS") {
        Some(n) => (1..=n).collect(),
        None => default.to_vec(),
    }
}

/// Runs `steps` steps of each seed's source (`make(seed)`) and panics with every mismatch
/// report; stops early when `both_alive` says a server no longer answers.
pub fn run_seeds<S: StepSource>(
    a: Side,
    b: Side,
    seeds: &[u64],
    steps: usize,
    make: impl Fn(u64) -> S,
    both_alive: impl Fn() -> bool,
) {
    let mut reports = Vec::new();
    for &seed in seeds {
        if let Err(report) = run_source(a, b, seed, steps, &mut make(seed)) {
            reports.push(report);
            if !both_alive() {
                reports.push(
                    "a server no longer answers PING; the remaining seeds were not run".into(),
                );
                break;
            }
        }
    }
    assert!(
        reports.is_empty(),
        "{} of {} seeds differ:\n\n{}",
        reports.len(),
        seeds.len(),
        reports.join("\n\n")
    );
}

/// [`run_seed`] with the steps of `source` (made from `seed`, which the report names).
pub fn run_source(
    a: Side,
    b: Side,
    seed: u64,
    steps: usize,
    source: &mut dyn StepSource,
) -> Result<(), String> {
    let connect = |s: Side| {
        Conn::connect(s.addr)
            .map_err(|e| format!("cannot connect to {} at {}: {e}", s.name, s.addr))
    };
    let (mut ca, mut cb) = (connect(a)?, connect(b)?);
    for (c, s) in [(&mut ca, a), (&mut cb, b)] {
        let r = c
            .try_call(&["FLUSHALL"])
            .map_err(|e| format!("{}: FLUSHALL: {e}", s.name))?;
        if r.raw != b"+OK\r\n" {
            return Err(format!("{}: FLUSHALL answered {r}", s.name));
        }
    }
    // Separate connections for state checks, so they do not disturb the SELECTed database or
    // protocol of the connections under test.
    let (mut ka, mut kb) = (connect(a)?, connect(b)?);
    let mut history: VecDeque<String> = VecDeque::new();
    let report = |index: usize, shown: &str, why: &str, history: &VecDeque<String>| {
        let earlier: Vec<&str> = history.iter().map(String::as_str).collect();
        format!(
            "differential mismatch: seed {seed}, step #{index}\n  command: {shown}\n{why}\nearlier steps (with {}'s replies):\n{}",
            a.name,
            earlier.join("\n")
        )
    };
    for index in 0..steps {
        let step = source.next_planned();
        let (shown, result) = match &step {
            Planned::KeyScanAll(cmd) => (
                format!("full iteration like {}", show_command(cmd)),
                key_scan_step(cmd, (&mut ca, a), (&mut cb, b)),
            ),
            Planned::SetSample(cmd) => (
                show_command(cmd),
                set_sample_step(cmd, (&mut ca, a), (&mut cb, b)),
            ),
            Planned::Step(Step::Command(cmd)) => (
                show_command(cmd),
                command_step(cmd, (&mut ca, a), (&mut cb, b), source),
            ),
            Planned::Step(Step::ScanAll {
                pattern,
                count,
                kind,
            }) => {
                let cmd = scan_args(b"0", pattern.as_deref(), *count, kind.as_deref());
                (
                    format!("full SCAN iteration like {}", show_command(&cmd)),
                    scan_step(&cmd, (&mut ca, a), (&mut cb, b)),
                )
            }
            Planned::Step(Step::RandomKey) => (
                "RANDOMKEY (checked for existence on both)".to_string(),
                randomkey_step((&mut ca, a), (&mut cb, b)),
            ),
        };
        match result {
            Ok(summary) => {
                if history.len() == HISTORY_STEPS {
                    history.pop_front();
                }
                history.push_back(format!("  #{index}: {shown} -> {summary}"));
            }
            Err(why) => return Err(report(index, &shown, &why, &history)),
        }
        if (index + 1) % STATE_CHECK_STEPS == 0 || index + 1 == steps {
            let (keys, reads) = (source.state_keys(), source.state_reads());
            if let Err(why) = state_check((&mut ka, a), (&mut kb, b), keys, reads) {
                let why = format!("  after this step the keyspaces differ:\n{why}");
                return Err(report(index, &shown, &why, &history));
            }
        }
    }
    Ok(())
}

/// Compares the keyspaces: DBSIZE of each database used, and each of `reads` (GET and PTTL
/// for the string generator) of every key in `keys` in each (one pipeline per server).
fn state_check((ca, a): Pair, (cb, b): Pair, keys: &[&[u8]], reads: &[&str]) -> Result<(), String> {
    let mut commands: Vec<Vec<Vec<u8>>> = Vec::new();
    for db in 0..DATABASES_USED {
        commands.push(vec![b"SELECT".to_vec(), db.to_string().into_bytes()]);
        commands.push(vec![b"DBSIZE".to_vec()]);
        for key in keys {
            for read in reads {
                let mut words = read.split(' ').map(|w| w.as_bytes().to_vec());
                let mut cmd: Vec<Vec<u8>> = words.next().into_iter().collect();
                cmd.push(key.to_vec());
                cmd.extend(words);
                commands.push(cmd);
            }
        }
    }
    let ra = ca
        .pipeline(&commands)
        .map_err(|e| format!("  {}: state check: {e}", a.name))?;
    let rb = cb
        .pipeline(&commands)
        .map_err(|e| format!("  {}: state check: {e}", b.name))?;
    let mut db = 0;
    let mut diffs = Vec::new();
    for ((cmd, x), y) in commands.iter().zip(&ra).zip(&rb) {
        if cmd[0] == b"SELECT" {
            db = String::from_utf8_lossy(&cmd[1]).parse().unwrap_or(0);
        }
        if compare(cmd, x, y).is_err() {
            diffs.push(format!(
                "  db {db}: {}\n    {}: \"{x}\"\n    {}: \"{y}\"",
                show_command(cmd),
                a.name,
                b.name
            ));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n"))
    }
}

/// One side's connection under test and its name.
pub type Pair<'c, 's> = (&'c mut Conn, Side<'s>);

fn call(c: &mut Conn, side: Side, cmd: &[Vec<u8>]) -> Result<Frame, String> {
    c.try_call(cmd)
        .map_err(|e| format!("  {}: no reply: {e}", side.name))
}

/// Sends one command to both and compares; Ok carries A's reply for the history.
fn command_step(
    cmd: &[Vec<u8>],
    (ca, a): Pair,
    (cb, b): Pair,
    source: &mut dyn StepSource,
) -> Result<String, String> {
    if rule_for(cmd) == Rule::ElementScan {
        return element_scan_step(cmd, (ca, a), (cb, b));
    }
    let ra = call(ca, a, cmd)?;
    let rb = call(cb, b, cmd)?;
    // A family's own judgement comes first; its `None` leaves the replies to the rules.
    let judged = if ra.raw == rb.raw {
        None
    } else {
        source.check(cmd, (&ra, &rb), (&mut *ca, a), (&mut *cb, b))
    };
    let compared = judged.unwrap_or_else(|| {
        compare(cmd, &ra, &rb).and_then(|()| {
            if rule_for(cmd) == Rule::CompactEncoding && ra.raw != rb.raw {
                fits_listpack(cmd, &rb, (&mut *ca, a), (&mut *cb, b))
            } else {
                Ok(())
            }
        })
    });
    if let Err(why) = compared {
        if matches!(rule_for(cmd), Rule::IdleTime(_)) && value_is_shared(cmd, (ca, a), (cb, b))? {
            return Ok(format!(
                "\"{ra}\" (value is a shared object, idle times not compared)"
            ));
        }
        return Err(format!(
            "  {why}\n  {}: \"{ra}\"\n  {}: \"{rb}\"",
            a.name, b.name
        ));
    }
    if let Some(key) = leaves_expired_key(cmd) {
        // SET with EXAT/PXAT in the past stores a key that is already expired. Until it is
        // looked up, DBSIZE still counts it, and whether the server's active expiry cycle has
        // reclaimed it by then is a matter of timing. Looking it up at once (EXISTS reclaims
        // an expired key) takes the timing out; the two EXISTS replies are compared too.
        let exists = [b"EXISTS".to_vec(), key.to_vec()];
        let (xa, xb) = (call(ca, a, &exists)?, call(cb, b, &exists)?);
        if xa.raw != xb.raw {
            return Err(format!(
                "  replies to {} (sent right after it) differ\n  {}: \"{xa}\"\n  {}: \"{xb}\"",
                show_command(&exists),
                a.name,
                b.name
            ));
        }
    }
    Ok(format!("\"{ra}\""))
}

/// Valkey's default `set-max-listpack-entries` and `set-max-listpack-value`, which the
/// servers of a differential run keep.
const SET_LISTPACK_ENTRIES_MAX: usize = 128;
const SET_LISTPACK_VALUE_MAX: usize = 64;
/// The bytes of Valkey's default `list-max-listpack-size` (-2: 8 KiB).
const LIST_LISTPACK_BYTES_MAX: usize = 8192;

/// For [`Rule::CompactEncoding`]: the key of `OBJECT ENCODING key` must hold a set (when the
/// reference said "hashtable") or a list ("quicklist") on both servers (TYPE does not touch
/// the key), small enough to be a listpack (SMEMBERS or LRANGE on the first).
fn fits_listpack(
    cmd: &[Vec<u8>],
    reference: &Frame,
    (ca, a): Pair,
    (cb, b): Pair,
) -> Result<(), String> {
    let Some(key) = cmd.get(2) else {
        return Err("OBJECT ENCODING without a key".into());
    };
    let list = reference.reply == Reply::Bulk(b"quicklist".to_vec());
    let want_type: &[u8] = if list { b"+list\r\n" } else { b"+set\r\n" };
    let kind = [b"TYPE".to_vec(), key.clone()];
    for (c, s) in [(&mut *ca, a), (cb, b)] {
        let r = call(c, s, &kind)?;
        if r.raw != want_type {
            return Err(format!(
                "listpack against {}, but TYPE on {} answered \"{r}\"",
                reference.reply.as_bytes().map(escape).unwrap_or_default(),
                s.name
            ));
        }
    }
    if list {
        let range = [
            b"LRANGE".to_vec(),
            key.clone(),
            b"0".to_vec(),
            b"-1".to_vec(),
        ];
        let elements = picked_members(&call(ca, a, &range)?.reply).unwrap_or_default();
        let bytes = listpack_bytes_counted(&elements);
        if bytes > LIST_LISTPACK_BYTES_MAX {
            return Err(format!(
                "{} says listpack for a list of {} elements, which count {bytes} bytes, more than {LIST_LISTPACK_BYTES_MAX}",
                a.name,
                elements.len()
            ));
        }
        return Ok(());
    }
    let members = member_set(&call(ca, a, &[b"SMEMBERS".to_vec(), key.clone()])?.reply);
    if members.len() > SET_LISTPACK_ENTRIES_MAX
        || members.iter().any(|m| m.len() > SET_LISTPACK_VALUE_MAX)
    {
        return Err(format!(
            "{} says listpack for a set of {} members, too large for one",
            a.name,
            members.len()
        ));
    }
    Ok(())
}

/// A listpack's header (total bytes, element count) and end byte.
const LISTPACK_HEADER_BYTES: usize = 7;

/// A lower bound on what Valkey counts for a list it keeps as a listpack: the header, and the
/// length of each element that is not an integer. Valkey checks a listpack's bytes plus the
/// raw lengths of the elements a write adds (`listTypeTryConvertListpack`) against the limit,
/// not the bytes they then take (1 to 5 more each), and counts none for an integer LMOVE
/// carries out of a quicklist; a non-integer's entry takes at least its length. So a listpack
/// may pass 8192 bytes, but not this count.
pub fn listpack_bytes_counted(elements: &[Vec<u8>]) -> usize {
    LISTPACK_HEADER_BYTES
        + elements
            .iter()
            .filter(|e| canonical_i64(e).is_none())
            .map(Vec::len)
            .sum::<usize>()
}

/// The integer a text is the canonical decimal form of (no sign but a leading '-', no
/// leading zero, no "-0"), as Valkey's `lpStringToInt64` and `string2ll` read them.
fn canonical_i64(text: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(text).ok()?;
    let v: i64 = s.parse().ok()?;
    (v.to_string() == s).then_some(v)
}

/// Whether either server holds the value of the key of `OBJECT IDLETIME key` as a shared
/// object (see [`Rule::IdleTime`]). OBJECT REFCOUNT does not touch the key.
fn value_is_shared(cmd: &[Vec<u8>], (ca, a): Pair, (cb, b): Pair) -> Result<bool, String> {
    /// Valkey's OBJ_SHARED_REFCOUNT (INT_MAX), the refcount reported for shared objects.
    const SHARED_REFCOUNT: i64 = i32::MAX as i64;
    let Some(key) = cmd.get(2) else {
        return Ok(false);
    };
    let refcount = [b"OBJECT".to_vec(), b"REFCOUNT".to_vec(), key.clone()];
    let (xa, xb) = (call(ca, a, &refcount)?, call(cb, b, &refcount)?);
    Ok([xa, xb]
        .iter()
        .any(|x| x.reply == Reply::Integer(SHARED_REFCOUNT)))
}

/// The key of a SET that carries an absolute expiry time (which may be in the past).
fn leaves_expired_key(cmd: &[Vec<u8>]) -> Option<&[u8]> {
    let is = |arg: &[u8], word: &str| arg.eq_ignore_ascii_case(word.as_bytes());
    let absolute = cmd
        .iter()
        .skip(3)
        .any(|arg| is(arg, "EXAT") || is(arg, "PXAT"));
    (cmd.len() > 3 && is(&cmd[0], "SET") && absolute).then(|| cmd[1].as_slice())
}

/// What a full walk of an element SCAN (ZSCAN key 0 …) found: the set of elements, or the
/// first reply that was not a well-formed page (compared exactly).
#[derive(Debug, PartialEq)]
enum ElementScan {
    /// Member, and the score as the bits of its double (or its text if it is not one).
    Elements(BTreeSet<(Vec<u8>, Vec<u8>)>),
    Other(Vec<u8>),
}

/// Follows an element scan's cursor to the end. Where the cursor argument is the command's
/// third word (ZSCAN key cursor …); with NOSCORES the elements are members alone.
fn element_scan_all(c: &mut Conn, side: Side, first: &[Vec<u8>]) -> Result<ElementScan, String> {
    let pairs = !first
        .iter()
        .skip(3)
        .any(|a| a.eq_ignore_ascii_case(b"NOSCORES"));
    let mut cmd = first.to_vec();
    let mut found = BTreeSet::new();
    for _ in 0..SCAN_CALLS_MAX {
        let r = call(c, side, &cmd)?;
        let Some([Reply::Bulk(cursor), page]) = r.reply.as_list() else {
            return Ok(ElementScan::Other(r.raw));
        };
        let Some(items) = page.as_list() else {
            return Ok(ElementScan::Other(r.raw));
        };
        let step = if pairs { 2 } else { 1 };
        if items.len() % step != 0 {
            return Ok(ElementScan::Other(r.raw));
        }
        for chunk in items.chunks(step) {
            let Some(member) = chunk[0].as_bytes() else {
                return Ok(ElementScan::Other(r.raw));
            };
            let score = match chunk.get(1) {
                Some(s) => match as_double(s) {
                    Some(d) => d.to_bits().to_be_bytes().to_vec(),
                    None => s.as_bytes().unwrap_or_default().to_vec(),
                },
                None => Vec::new(),
            };
            found.insert((member.to_vec(), score));
        }
        if cursor == b"0" {
            return Ok(ElementScan::Elements(found));
        }
        match cmd.get_mut(2) {
            Some(arg) => *arg = cursor.clone(),
            None => return Ok(ElementScan::Other(r.raw)),
        }
    }
    Err(format!(
        "  {}: {} did not come back to cursor 0 within {SCAN_CALLS_MAX} calls",
        side.name,
        show_command(first)
    ))
}

fn element_scan_step(first: &[Vec<u8>], (ca, a): Pair, (cb, b): Pair) -> Result<String, String> {
    let sa = element_scan_all(ca, a, first)?;
    let sb = element_scan_all(cb, b, first)?;
    if sa == sb {
        return Ok(match sa {
            ElementScan::Elements(e) => format!("{} elements", e.len()),
            ElementScan::Other(raw) => format!("\"{}\"", escape(&raw)),
        });
    }
    Err(format!(
        "  full walks differ\n  {}: {sa:?}\n  {}: {sb:?}",
        a.name, b.name
    ))
}

fn scan_args(
    cursor: &[u8],
    pattern: Option<&[u8]>,
    count: Option<u64>,
    kind: Option<&[u8]>,
) -> Vec<Vec<u8>> {
    let mut cmd = vec![b"SCAN".to_vec(), cursor.to_vec()];
    if let Some(p) = pattern {
        cmd.extend([b"MATCH".to_vec(), p.to_vec()]);
    }
    if let Some(n) = count {
        cmd.extend([b"COUNT".to_vec(), n.to_string().into_bytes()]);
    }
    if let Some(t) = kind {
        cmd.extend([b"TYPE".to_vec(), t.to_vec()]);
    }
    cmd
}

/// What a full SCAN iteration found: the set of keys, or the first reply that was not a
/// well-formed SCAN page (an error is compared exactly).
#[derive(Debug, PartialEq)]
enum ScanOutcome {
    Keys(BTreeSet<Vec<u8>>),
    Other(Vec<u8>),
}

/// Iterates `first` (whose cursor is argument `cursor_at`) until the cursor comes back to 0.
fn scan_all(
    c: &mut Conn,
    side: Side,
    first: &[Vec<u8>],
    cursor_at: usize,
) -> Result<ScanOutcome, String> {
    let mut cmd = first.to_vec();
    let mut keys = BTreeSet::new();
    for _ in 0..SCAN_CALLS_MAX {
        let r = call(c, side, &cmd)?;
        let (cursor, items) = match r.reply.as_list() {
            Some([Reply::Bulk(cursor), page]) => match page.as_list() {
                Some(items) => (cursor.clone(), items),
                None => return Ok(ScanOutcome::Other(r.raw)),
            },
            _ => return Ok(ScanOutcome::Other(r.raw)),
        };
        for item in items {
            match item {
                Reply::Bulk(k) => {
                    keys.insert(k.clone());
                }
                _ => return Ok(ScanOutcome::Other(r.raw)),
            }
        }
        if cursor == b"0" {
            return Ok(ScanOutcome::Keys(keys));
        }
        cmd[cursor_at] = cursor;
    }
    Err(format!(
        "  {}: SCAN did not come back to cursor 0 within {SCAN_CALLS_MAX} calls",
        side.name
    ))
}

fn show_keys(keys: &BTreeSet<Vec<u8>>) -> String {
    keys.iter()
        .map(|k| format!("\"{}\"", escape(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn scan_step(first: &[Vec<u8>], (ca, a): Pair, (cb, b): Pair) -> Result<String, String> {
    scan_compare(first, 1, (ca, a), (cb, b))
}

/// See [`Planned::KeyScanAll`].
fn key_scan_step(first: &[Vec<u8>], (ca, a): Pair, (cb, b): Pair) -> Result<String, String> {
    scan_compare(first, 2, (ca, a), (cb, b))
}

fn scan_compare(
    first: &[Vec<u8>],
    cursor_at: usize,
    (ca, a): Pair,
    (cb, b): Pair,
) -> Result<String, String> {
    let sa = scan_all(ca, a, first, cursor_at)?;
    let sb = scan_all(cb, b, first, cursor_at)?;
    match (&sa, &sb) {
        (ScanOutcome::Keys(x), ScanOutcome::Keys(y)) if x == y => {
            Ok(format!("{{{}}}", show_keys(x)))
        }
        (ScanOutcome::Other(x), ScanOutcome::Other(y)) if x == y => {
            Ok(format!("\"{}\"", escape(x)))
        }
        (ScanOutcome::Keys(x), ScanOutcome::Keys(y)) => Err(format!(
            "  the key sets differ\n  only on {}: {{{}}}\n  only on {}: {{{}}}",
            a.name,
            show_keys(&x.difference(y).cloned().collect()),
            b.name,
            show_keys(&y.difference(x).cloned().collect())
        )),
        _ => Err(format!("  {}: {sa:?}\n  {}: {sb:?}", a.name, b.name)),
    }
}

fn randomkey_step((ca, a): Pair, (cb, b): Pair) -> Result<String, String> {
    let cmd = [b"RANDOMKEY".to_vec()];
    let ra = call(ca, a, &cmd)?;
    let rb = call(cb, b, &cmd)?;
    match (&ra.reply, &rb.reply) {
        (Reply::Null, Reply::Null) if ra.raw == rb.raw => Ok(format!("\"{ra}\"")),
        (Reply::Bulk(ka), Reply::Bulk(kb)) => {
            // Each key must exist on both servers (EXISTS does not touch the key's LRU time).
            for key in [ka, kb] {
                let exists = [b"EXISTS".to_vec(), key.clone()];
                for (c, s) in [(&mut *ca, a), (&mut *cb, b)] {
                    let r = call(c, s, &exists)?;
                    if r.reply != Reply::Integer(1) {
                        return Err(format!(
                            "  RANDOMKEY answered \"{}\" on {} and \"{}\" on {}, but EXISTS \"{}\" on {} answered \"{r}\"",
                            escape(ka),
                            a.name,
                            escape(kb),
                            b.name,
                            escape(key),
                            s.name
                        ));
                    }
                }
            }
            Ok(format!("\"{ra}\""))
        }
        _ => Err(format!(
            "  RANDOMKEY replies differ\n  {}: \"{ra}\"\n  {}: \"{rb}\"",
            a.name, b.name
        )),
    }
}

/// The members a SPOP/SRANDMEMBER reply holds: one bulk string, or an array or set of them.
fn picked_members(reply: &Reply) -> Option<Vec<Vec<u8>>> {
    match reply {
        Reply::Bulk(m) => Some(vec![m.clone()]),
        other => other
            .as_list()?
            .iter()
            .map(|r| match r {
                Reply::Bulk(m) => Some(m.clone()),
                _ => None,
            })
            .collect(),
    }
}

/// The members of an SMEMBERS reply (none for an error).
fn member_set(reply: &Reply) -> BTreeSet<Vec<u8>> {
    picked_members(reply)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// See [`Planned::SetSample`].
fn set_sample_step(cmd: &[Vec<u8>], (ca, a): Pair, (cb, b): Pair) -> Result<String, String> {
    let key = cmd.get(1).cloned().unwrap_or_default();
    let smembers = [b"SMEMBERS".to_vec(), key.clone()];
    let same_members = |ca: &mut Conn, cb: &mut Conn, when: &str| -> Result<Frame, String> {
        let (xa, xb) = (call(ca, a, &smembers)?, call(cb, b, &smembers)?);
        match compare(&smembers, &xa, &xb) {
            Ok(()) => Ok(xa),
            Err(why) => Err(format!(
                "  {when}, SMEMBERS differs ({why})\n  {}: \"{xa}\"\n  {}: \"{xb}\"",
                a.name, b.name
            )),
        }
    };
    let before = member_set(&same_members(ca, cb, "before the step")?.reply);
    let ra = call(ca, a, cmd)?;
    let rb = call(cb, b, cmd)?;
    let differ = |why: String| format!("  {why}\n  {}: \"{ra}\"\n  {}: \"{rb}\"", a.name, b.name);
    let (Some(pa), Some(pb)) = (picked_members(&ra.reply), picked_members(&rb.reply)) else {
        // Errors and nils are deterministic.
        return if ra.raw == rb.raw {
            Ok(format!("\"{ra}\""))
        } else {
            Err(differ("replies differ".into()))
        };
    };
    if kind(&ra.reply) != kind(&rb.reply) || pa.len() != pb.len() {
        return Err(differ("the replies differ in kind or size".into()));
    }
    let pop = cmd[0].eq_ignore_ascii_case(b"SPOP");
    // SPOP and SRANDMEMBER with a positive count pick distinct members.
    let distinct = pop || cmd.get(2).is_some_and(|c| !c.starts_with(b"-"));
    for (picked, side) in [(&pa, a), (&pb, b)] {
        if let Some(m) = picked.iter().find(|m| !before.contains(*m)) {
            return Err(differ(format!(
                "{} answered \"{}\", which is not a member",
                side.name,
                escape(m)
            )));
        }
        if distinct && picked.iter().collect::<BTreeSet<_>>().len() != picked.len() {
            return Err(differ(format!("{} repeated a member", side.name)));
        }
    }
    if pop {
        // Give the reference the members the other server popped instead of its own.
        let (pa, pb): (BTreeSet<_>, BTreeSet<_>) =
            (pa.into_iter().collect(), pb.into_iter().collect());
        let back: Vec<Vec<u8>> = pb.difference(&pa).cloned().collect();
        let away: Vec<Vec<u8>> = pa.difference(&pb).cloned().collect();
        for (name, members) in [(&b"SADD"[..], back), (b"SREM", away)] {
            if members.is_empty() {
                continue;
            }
            let mut fix = vec![name.to_vec(), key.clone()];
            fix.extend(members);
            let r = call(cb, b, &fix)?;
            if r.reply.is_error() {
                return Err(format!(
                    "  {}: {} answered \"{r}\"",
                    b.name,
                    show_command(&fix)
                ));
            }
        }
        same_members(ca, cb, "after making the reference pop the same members")?;
    }
    Ok(format!("\"{ra}\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::parse;

    fn frame(raw: &[u8]) -> Frame {
        parse(raw).unwrap().unwrap().0
    }

    fn cmd(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    /// Different bytes differ unless a listed normalisation says why they may.
    #[test]
    fn exact_by_default() {
        assert!(compare(
            &cmd(&["GET", "a"]),
            &frame(b"$1\r\nx\r\n"),
            &frame(b"$1\r\nx\r\n")
        )
        .is_ok());
        assert!(compare(
            &cmd(&["GET", "a"]),
            &frame(b"$1\r\nx\r\n"),
            &frame(b"$1\r\ny\r\n")
        )
        .is_err());
        // Same value, different encoding is still a difference.
        assert!(compare(&cmd(&["GET", "a"]), &frame(b"$-1\r\n"), &frame(b"_\r\n")).is_err());
    }

    /// KEYS is a multiset: order is free, duplicates and the reply type are not.
    #[test]
    fn keys_unordered() {
        let k = cmd(&["keys", "*"]);
        assert!(compare(
            &k,
            &frame(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
            &frame(b"*2\r\n$1\r\nb\r\n$1\r\na\r\n")
        )
        .is_ok());
        assert!(compare(
            &k,
            &frame(b"*2\r\n$1\r\na\r\n$1\r\na\r\n"),
            &frame(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n")
        )
        .is_err());
        assert!(compare(
            &k,
            &frame(b"*1\r\n$1\r\na\r\n"),
            &frame(b"~1\r\n$1\r\na\r\n")
        )
        .is_err());
    }

    /// TTL readings may differ by the tolerance, but -1/-2 and errors are exact.
    #[test]
    fn ttl_tolerance() {
        let t = cmd(&["TTL", "a"]);
        assert!(compare(&t, &frame(b":1000\r\n"), &frame(b":999\r\n")).is_ok());
        assert!(compare(&t, &frame(b":1000\r\n"), &frame(b":990\r\n")).is_err());
        assert!(compare(&t, &frame(b":-1\r\n"), &frame(b":-2\r\n")).is_err());
        assert!(compare(&t, &frame(b":0\r\n"), &frame(b":-2\r\n")).is_err());
        assert!(compare(
            &cmd(&["OBJECT", "idletime", "a"]),
            &frame(b":3\r\n"),
            &frame(b":4\r\n")
        )
        .is_ok());
        assert!(compare(
            &cmd(&["OBJECT", "refcount", "a"]),
            &frame(b":3\r\n"),
            &frame(b":4\r\n")
        )
        .is_err());
    }

    /// Set-member replies are multisets; their reply type (RESP3 set or array) still counts.
    #[test]
    fn set_members_unordered() {
        for name in ["SMEMBERS", "sinter", "SUNION", "sdiff"] {
            let c = cmd(&[name, "s"]);
            assert!(compare(
                &c,
                &frame(b"~2\r\n$1\r\na\r\n$1\r\nb\r\n"),
                &frame(b"~2\r\n$1\r\nb\r\n$1\r\na\r\n")
            )
            .is_ok());
            assert!(compare(
                &c,
                &frame(b"~1\r\n$1\r\na\r\n"),
                &frame(b"*1\r\n$1\r\na\r\n")
            )
            .is_err());
        }
        // The STORE forms answer a count: exact.
        assert!(compare(
            &cmd(&["SUNIONSTORE", "d", "s"]),
            &frame(b":1\r\n"),
            &frame(b":2\r\n")
        )
        .is_err());
    }

    /// Score replies may write the same double differently (Valkey 8's shortest text against
    /// redis 7.0's %.17g), and nothing else may differ: not the value, not -0 against 0, not
    /// a member.
    #[test]
    fn score_text() {
        let z = cmd(&["ZSCORE", "k", "m"]);
        assert!(compare(
            &z,
            &frame(b"$3\r\n0.1\r\n"),
            &frame(b"$19\r\n0.10000000000000001\r\n")
        )
        .is_ok());
        assert!(compare(&z, &frame(b",0.1\r\n"), &frame(b",0.10000000000000001\r\n")).is_ok());
        assert!(compare(&z, &frame(b"$3\r\n0.1\r\n"), &frame(b"$3\r\n0.2\r\n")).is_err());
        assert!(compare(&z, &frame(b"$2\r\n-0\r\n"), &frame(b"$1\r\n0\r\n")).is_err());
        assert!(compare(&z, &frame(b"$3\r\n0.1\r\n"), &frame(b",0.1\r\n")).is_err());
        let r = cmd(&["ZRANGE", "k", "0", "-1", "WITHSCORES"]);
        assert!(compare(
            &r,
            &frame(b"*2\r\n$1\r\na\r\n$3\r\n0.1\r\n"),
            &frame(b"*2\r\n$1\r\na\r\n$19\r\n0.10000000000000001\r\n")
        )
        .is_ok());
        assert!(compare(
            &r,
            &frame(b"*2\r\n$1\r\na\r\n$3\r\n0.1\r\n"),
            &frame(b"*2\r\n$1\r\nb\r\n$3\r\n0.1\r\n")
        )
        .is_err());
    }

    /// OBJECT ENCODING lets corekey's listpack stand against the reference's hashtable or
    /// quicklist, and nothing else (the runner then checks that the key is a set or a list
    /// small enough for one).
    #[test]
    fn listpack_against_hashtable_or_quicklist() {
        let c = cmd(&["OBJECT", "ENCODING", "s"]);
        let (listpack, hashtable, intset, quicklist) = (
            frame(b"$8\r\nlistpack\r\n"),
            frame(b"$9\r\nhashtable\r\n"),
            frame(b"$6\r\nintset\r\n"),
            frame(b"$9\r\nquicklist\r\n"),
        );
        assert!(compare(&c, &listpack, &hashtable).is_ok());
        assert!(compare(&c, &listpack, &quicklist).is_ok());
        assert!(compare(&c, &hashtable, &listpack).is_err());
        assert!(compare(&c, &quicklist, &listpack).is_err());
        assert!(compare(&c, &intset, &hashtable).is_err());
        assert!(compare(&c, &listpack, &intset).is_err());
        assert!(compare(&c, &hashtable, &quicklist).is_err());
    }

    /// The listpack plausibility count: the header, and non-integers' lengths only.
    #[test]
    fn listpack_counts() {
        let elements: Vec<Vec<u8>> = [&b"0"[..], b"-9223372036854775808", b"-0", b"01", b"", b"ab"]
            .iter()
            .map(|e| e.to_vec())
            .collect();
        assert_eq!(listpack_bytes_counted(&elements), 7 + 2 + 2 + 2);
        assert_eq!(listpack_bytes_counted(&[vec![b'x'; 8185]]), 8192);
    }

    /// Random picks compare by shape only; errors stay exact.
    #[test]
    fn random_shape() {
        let r = cmd(&["ZRANDMEMBER", "k", "2"]);
        assert!(compare(
            &r,
            &frame(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
            &frame(b"*2\r\n$1\r\nc\r\n$1\r\na\r\n")
        )
        .is_ok());
        assert!(compare(
            &r,
            &frame(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
            &frame(b"*1\r\n$1\r\nc\r\n")
        )
        .is_err());
        assert!(compare(&r, &frame(b"-ERR x\r\n"), &frame(b"-ERR y\r\n")).is_err());
    }

    /// HELLO ignores server, version and id, but not the other fields or their order.
    #[test]
    fn hello_fields_masked() {
        let h = cmd(&["HELLO", "3"]);
        let a = frame(b"%3\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.1\r\n$5\r\nproto\r\n:3\r\n");
        let b = frame(b"%3\r\n$6\r\nserver\r\n$6\r\nvalkey\r\n$7\r\nversion\r\n$5\r\n8.0.0\r\n$5\r\nproto\r\n:3\r\n");
        let c = frame(b"%3\r\n$6\r\nserver\r\n$6\r\nvalkey\r\n$7\r\nversion\r\n$5\r\n8.0.0\r\n$5\r\nproto\r\n:2\r\n");
        assert!(compare(&h, &a, &b).is_ok());
        assert!(compare(&h, &a, &c).is_err());
        assert!(compare(&h, &frame(b"-NOPROTO x\r\n"), &frame(b"-NOPROTO y\r\n")).is_err());
    }
}
