//! Keyspace tests: unit cases, and a model test that runs random operations against both the
//! keyspace and a plain `BTreeMap` and checks they always agree.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

fn s(v: &str) -> Value {
    Value::Str(StrVal::from_arg(v.as_bytes()))
}

fn text(e: &Entry) -> String {
    String::from_utf8(e.value.as_str().unwrap().bytes().into_owned()).unwrap()
}

/// A key with a deadline disappears once time reaches it, and counts as expired.
#[test]
fn lazy_expiry() {
    let mut db = Db::new(0, 1);
    db.set(b"k", s("v"), 1000, false);
    db.set_expire(b"k", 2000);
    assert!(db.get(b"k", 1999).is_some());
    assert!(db.get(b"k", 2000).is_none());
    assert_eq!(db.len(), 0);
    assert_eq!(db.expired, 1);
    assert_eq!(db.expires_len(), 0);
}

/// SET drops the TTL unless asked to keep it; KEEPTTL cannot revive an expired key's deadline.
#[test]
fn set_and_ttl() {
    let mut db = Db::new(0, 1);
    db.set(b"k", s("1"), 0, false);
    db.set_expire(b"k", 100);
    db.set(b"k", s("2"), 10, true);
    assert_eq!(db.expire_of(b"k"), Some(100));
    db.set(b"k", s("3"), 10, false);
    assert_eq!(db.expire_of(b"k"), None);
    db.set_expire(b"k", 50);
    db.set(b"k", s("4"), 60, true);
    assert_eq!(db.expire_of(b"k"), None);
    assert_eq!(text(db.get(b"k", 60).unwrap()), "4");
}

/// Keys land only on the shard that owns their slot; a wrong routing is caught.
#[test]
#[should_panic(expected = "wrong shard")]
fn wrong_shard_is_a_bug() {
    let mut db = Db::new(0, 2);
    // slot("foo") = 12182, even: shard 0. slot("bar") = 5061, odd: shard 1.
    db.set(b"foo", s("x"), 0, false);
    db.set(b"bar", s("x"), 0, false);
}

/// The active cycle removes expired keys and leaves live ones, within its round bound.
#[test]
fn active_expiry_cycle() {
    let mut db = Db::new(0, 1);
    for i in 0..1000 {
        let k = format!("k{i}");
        db.set(k.as_bytes(), s("v"), 0, false);
        db.set_expire(k.as_bytes(), if i % 2 == 0 { 10 } else { 1_000_000 });
    }
    let mut rounds_left = 1000;
    while db.len() > 500 && rounds_left > 0 {
        db.active_expire(100, &mut || false);
        rounds_left -= 1;
    }
    assert_eq!(db.len(), 500);
    assert_eq!(db.expires_len(), 500);
    assert!(db.avg_ttl_ms > 0);
}

/// A full SCAN returns every key present throughout, even while keys are deleted and added.
#[test]
fn scan_survives_concurrent_changes() {
    let mut db = Db::new(0, 1);
    for i in 0..200 {
        db.set(format!("{{t}}k{i}").as_bytes(), s("v"), 0, false);
    }
    let local = db.local(b"{t}");
    let mut seen = BTreeSet::new();
    let mut cursor = 0;
    let mut step = 0;
    loop {
        let mut out = Vec::new();
        let (next, _) = db.scan_table(local, cursor, 7, &ScanFilter::default(), 0, &mut out);
        seen.extend(out.iter().map(|k| k.to_vec()));
        // Churn: delete a key that is never checked, add new ones.
        db.delete(format!("{{t}}k{}", 199 - step).as_bytes(), 0);
        db.set(format!("{{t}}new{step}").as_bytes(), s("v"), 0, false);
        step += 1;
        match next {
            scan::TableCursor::At(p) => cursor = p,
            scan::TableCursor::Done => break,
        }
    }
    for i in 0..(200 - step) {
        assert!(
            seen.contains(format!("{{t}}k{i}").as_bytes()),
            "missed k{i}"
        );
    }
}

/// RANDOMKEY picks among live keys and reports none for an empty database.
#[test]
fn random_key_picks_live_keys() {
    let mut db = Db::new(1, 3);
    let mut n = 0u64;
    let mut rng = || {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        n >> 11
    };
    assert!(db.random_key(&mut rng, 0, 10).is_none());
    let mut keys = BTreeSet::new();
    for i in 0..3000 {
        let k = format!("k{i}");
        if usize::from(key_slot(k.as_bytes()).get()) % 3 == 1 {
            db.set(k.as_bytes(), s("v"), 0, false);
            keys.insert(k.into_bytes());
        }
    }
    for _ in 0..100 {
        let k = db.random_key(&mut rng, 0, 10).unwrap();
        assert!(keys.contains(&k.to_vec()));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Set(u8, u8, Option<i64>),
    Del(u8),
    Get(u8),
    Expire(u8, i64),
    Persist(u8),
    Tick(i64),
    ActiveExpire,
    Scan,
    Flush,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        (0u8..20, 0u8..5, proptest::option::of(1i64..50)).prop_map(|(k, v, t)| Op::Set(k, v, t)),
        (0u8..20).prop_map(Op::Del),
        (0u8..20).prop_map(Op::Get),
        (0u8..20, -5i64..50).prop_map(|(k, t)| Op::Expire(k, t)),
        (0u8..20).prop_map(Op::Persist),
        (0i64..20).prop_map(Op::Tick),
        Just(Op::ActiveExpire),
        Just(Op::Scan),
        Just(Op::Flush),
    ]
}

proptest::proptest! {
    /// The keyspace and a BTreeMap model agree after every operation of a random sequence:
    /// values, TTLs, key counts, full scans, with lazy and active expiry and time moving on.
    #[test]
    fn keyspace_matches_model(ops in proptest::collection::vec(op(), 1..200)) {
        let mut db = Db::new(0, 1);
        let mut model: BTreeMap<Vec<u8>, (String, Option<i64>)> = BTreeMap::new();
        let mut now = 1_000i64;
        for op in ops {
            // The model drops expired keys eagerly; the keyspace may keep them until touched,
            // so only compare what the keyspace shows after expiring.
            model.retain(|_, (_, t)| t.is_none_or(|t| t > now));
            match op {
                Op::Set(k, v, ttl) => {
                    let key = format!("key{k}").into_bytes();
                    db.set(&key, s(&v.to_string()), now, false);
                    if let Some(t) = ttl { db.set_expire(&key, now + t); }
                    model.insert(key, (v.to_string(), ttl.map(|t| now + t)));
                }
                Op::Del(k) => {
                    let key = format!("key{k}").into_bytes();
                    proptest::prop_assert_eq!(db.delete(&key, now), model.remove(&key).is_some());
                }
                Op::Get(k) => {
                    let key = format!("key{k}").into_bytes();
                    let got = db.get(&key, now).map(text);
                    proptest::prop_assert_eq!(got, model.get(&key).map(|(v, _)| v.clone()));
                    if model.contains_key(&key) {
                        proptest::prop_assert_eq!(db.expire_of(&key), model[&key].1);
                    }
                }
                Op::Expire(k, t) => {
                    let key = format!("key{k}").into_bytes();
                    if db.contains(&key, now) {
                        db.set_expire(&key, now + t);
                        model.get_mut(&key).unwrap().1 = Some(now + t);
                    }
                }
                Op::Persist(k) => {
                    let key = format!("key{k}").into_bytes();
                    let had = db.contains(&key, now) && db.persist(&key);
                    let m = model.get_mut(&key).map(|e| e.1.take().is_some()).unwrap_or(false);
                    proptest::prop_assert_eq!(had, m);
                }
                Op::Tick(d) => now += d,
                Op::ActiveExpire => { db.active_expire(now, &mut || false); }
                Op::Scan => {
                    let mut all = BTreeSet::new();
                    for local in 0..db.table_count() {
                        let mut from = 0;
                        for _ in 0..1000 {
                            let mut out = Vec::new();
                            let (next, _) = db.scan_table(local, from, 5, &ScanFilter::default(), now, &mut out);
                            all.extend(out.into_iter().map(|k| k.to_vec()));
                            match next { scan::TableCursor::At(p) => from = p, scan::TableCursor::Done => break }
                        }
                    }
                    model.retain(|_, (_, t)| t.is_none_or(|t| t > now));
                    let want: BTreeSet<Vec<u8>> = model.keys().cloned().collect();
                    proptest::prop_assert_eq!(all, want);
                }
                Op::Flush => { db.clear(); model.clear(); }
            }
            proptest::prop_assert!(db.len() >= model.len());
            proptest::prop_assert_eq!(db.len(), db.slots.iter().map(|t| t.len()).sum::<usize>());
        }
    }
}
