//! Checks of the command table, in the spirit of Valkey's command-table generator: names are
//! unique, every key argument has a key spec and every key spec a key argument, arity agrees
//! with the documented arguments, and what routing relies on holds.

use super::docs::{self, ArgDoc};
use super::spec::{BeginSearch, Exec, FindKeys};
use super::{key_positions, registry};

/// Commands whose arity deliberately differs from what their argument docs imply, with why.
const ARITY_EXCEPTIONS: &[(&str, &str)] = &[
    ("quit", "accepts and ignores any arguments, as in Valkey"),
    (
        "replconf",
        "an internal command with free-form option pairs; Valkey documents no arguments",
    ),
    (
        "client|kill",
        "the new form needs at least one filter, which the docs syntax cannot say",
    ),
];

fn all_args(args: &[ArgDoc], out: &mut Vec<usize>) {
    for a in args {
        a.key_indexes(out);
    }
}

/// Every command's syntax parses; key arguments and key specs correspond one to one.
#[test]
fn key_args_match_key_specs() {
    for r in &registry().all {
        let args = docs::parse(r.spec.syntax)
            .unwrap_or_else(|e| panic!("{}: bad syntax: {e}", r.fullname));
        let mut used = Vec::new();
        all_args(&args, &mut used);
        for &i in &used {
            assert!(
                i < r.spec.keys.len(),
                "{}: key argument refers to missing key spec {i}",
                r.fullname
            );
        }
        for i in 0..r.spec.keys.len() {
            // A channel named by a NOT_KEY spec (SPUBLISH's, for cluster routing) is a plain
            // string argument in Valkey's docs.
            if r.spec.keys[i].flags & super::spec::keyflag::NOT_KEY != 0 {
                continue;
            }
            assert!(
                used.contains(&i),
                "{}: key spec {i} has no key argument",
                r.fullname
            );
        }
    }
}

/// Arity is what the documented arguments require: exact when nothing is optional or
/// repeated, else negative with the minimum.
#[test]
fn arity_matches_arguments() {
    for r in &registry().all {
        if !r.spec.subcommands.is_empty() || ARITY_EXCEPTIONS.iter().any(|(n, _)| *n == r.fullname)
        {
            continue;
        }
        let args = docs::parse(r.spec.syntax).unwrap_or_else(|e| panic!("{}: {e}", r.fullname));
        let base = if r.parent.is_some() { 2 } else { 1 };
        let (mut min, mut variadic) = (base, false);
        for a in &args {
            let (m, v) = a.min_words();
            min += m;
            variadic |= v;
        }
        let want = if variadic { -(min as i32) } else { min as i32 };
        assert_eq!(
            r.spec.arity, want,
            "{}: arity {} but arguments say {want}",
            r.fullname, r.spec.arity
        );
    }
}

/// Node commands that name keys, with why they are not key commands.
const KEYED_NODE_COMMANDS: &[(&str, &str)] = &[(
    "migrate",
    "waits on the network; it locks and reads its keys' shards itself",
)];

/// Key commands have key specs and only key commands do; containers have subcommands.
#[test]
fn exec_kinds_fit_key_specs() {
    for r in &registry().all {
        if KEYED_NODE_COMMANDS.iter().any(|(n, _)| *n == r.fullname) {
            continue;
        }
        match r.spec.exec {
            Exec::Key(_) | Exec::Block(_) => assert!(
                !r.spec.keys.is_empty(),
                "{}: key command without key specs",
                r.fullname
            ),
            Exec::Container => assert!(
                !r.spec.subcommands.is_empty(),
                "{}: container without subcommands",
                r.fullname
            ),
            // WATCH names keys on any shards and registers on each: a node command.
            Exec::Node(super::NodeCmd::Watch) => {}
            _ => assert!(
                r.spec
                    .keys
                    .iter()
                    .all(|k| k.flags & super::spec::keyflag::NOT_KEY != 0),
                "{}: keys but not run as a key command",
                r.fullname
            ),
        }
    }
}

/// A command that can name several keys says how to run across shards (standalone mode must
/// keep every multi-key command atomic).
#[test]
fn multi_key_commands_have_a_coordinator() {
    for r in &registry().all {
        let several = r.spec.keys.len() > 1
            || r.spec
                .keys
                .iter()
                .any(|k| !matches!(k.find, FindKeys::Range { lastkey: 0, .. }));
        // Blocking commands run across shards through `blocking::run` instead, node commands
        // coordinate their shards themselves; only key commands are routed by their keys.
        if several && matches!(r.spec.exec, Exec::Key(_)) {
            assert!(
                r.spec.multi.is_some(),
                "{}: several keys but no multi-shard coordinator",
                r.fullname
            );
        }
    }
}

/// For fixed-arity commands, every key position lies inside the arguments.
#[test]
fn key_positions_fit_arity() {
    for r in &registry().all {
        if r.spec.arity <= 0 || r.spec.keys.is_empty() {
            continue;
        }
        let argv: Vec<&[u8]> = (0..r.spec.arity).map(|_| &b"x"[..]).collect();
        let mut pos = Vec::new();
        assert!(
            key_positions(r.spec, &argv, &mut pos).is_some(),
            "{}: keys outside arity",
            r.fullname
        );
        for ks in r.spec.keys {
            if let BeginSearch::Index(p) = ks.begin {
                assert!(
                    p < r.spec.arity,
                    "{}: key index {p} beyond arity",
                    r.fullname
                );
            }
        }
    }
}

/// COMMAND INFO's legacy (first, last, step) for a few commands, as Valkey reports them.
#[test]
fn legacy_key_ranges() {
    let info = |n: &str| {
        registry()
            .by_fullname(n.as_bytes())
            .unwrap()
            .spec
            .legacy_range()
    };
    assert_eq!(info("get"), ((1, 1, 1), false));
    assert_eq!(info("mset"), ((1, -1, 2), false));
    assert_eq!(info("del"), ((1, -1, 1), false));
    assert_eq!(info("rename"), ((1, 2, 1), false));
    assert_eq!(info("lcs"), ((1, 2, 1), false));
    assert_eq!(info("object|encoding"), ((2, 2, 1), false));
    assert_eq!(info("ping"), ((0, 0, 0), false));
}

/// Keys are found where Valkey's COMMAND GETKEYS finds them.
#[test]
fn key_extraction() {
    let keys = |argv: &[&[u8]]| {
        let crate::commands::Lookup::Found(r) = registry().lookup(argv) else {
            panic!("lookup")
        };
        let mut pos = Vec::new();
        key_positions(r.spec, argv, &mut pos).map(|_| pos)
    };
    assert_eq!(keys(&[b"mset", b"a", b"1", b"b", b"2"]), Some(vec![1, 3]));
    assert_eq!(keys(&[b"copy", b"a", b"b", b"db", b"1"]), Some(vec![1, 2]));
    assert_eq!(keys(&[b"OBJECT", b"encoding", b"k"]), Some(vec![2]));
    assert_eq!(keys(&[b"get", b"k"]), Some(vec![1]));
}
