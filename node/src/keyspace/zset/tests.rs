//! The sorted set value checked against a model: a plain sorted `Vec` of (score, member) with
//! the range semantics written the obvious way. Small encoding limits make the random
//! sequences cross the listpack/skiplist boundary often.

use super::*;
use proptest::prelude::*;

fn limits(entries: usize, value: usize) -> Limits {
    Limits {
        zset_max_listpack_entries: entries,
        zset_max_listpack_value: value,
        ..Limits::default()
    }
}

/// The model: elements in order.
#[derive(Debug, Default, Clone)]
struct Model {
    items: Vec<(f64, Vec<u8>)>,
}

impl Model {
    fn pos(&self, m: &[u8]) -> Option<usize> {
        self.items.iter().position(|(_, x)| x == m)
    }

    fn insert(&mut self, s: f64, m: &[u8]) {
        let at = self.items.partition_point(|(x, y)| before(*x, y, s, m));
        self.items.insert(at, (s, m.to_vec()));
    }

    /// ZADD's rules, written out plainly.
    fn add(&mut self, s: f64, m: &[u8], f: AddFlags) -> Added {
        match self.pos(m) {
            Some(i) => {
                let cur = self.items[i].0;
                if f.nx {
                    return Added::Nop;
                }
                let new = if f.incr { s + cur } else { s };
                if new.is_nan() {
                    return Added::Nan;
                }
                if (f.lt && new >= cur) || (f.gt && new <= cur) {
                    return Added::Nop;
                }
                if new == cur {
                    return Added::Same(new);
                }
                self.items.remove(i);
                self.insert(new, m);
                Added::Updated(new)
            }
            None if f.xx => Added::Nop,
            None => {
                self.insert(s, m);
                Added::New(s)
            }
        }
    }

    fn first_in(&self, r: &impl ZRange) -> Option<usize> {
        let (first, last) = (self.items.first()?, self.items.last()?);
        if r.is_void() || !r.gte_min(last.0, &last.1) || !r.lte_max(first.0, &first.1) {
            return None;
        }
        let i = self.items.iter().position(|(s, m)| r.gte_min(*s, m))?;
        r.lte_max(self.items[i].0, &self.items[i].1).then_some(i)
    }

    fn count_in(&self, r: &impl ZRange) -> usize {
        match self.first_in(r) {
            Some(f) => self.items[f..]
                .iter()
                .take_while(|(s, m)| r.lte_max(*s, m))
                .count(),
            None => 0,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(f64, Vec<u8>, AddFlags),
    Remove(Vec<u8>),
    Pop(bool, usize),
    RemoveRanks(usize, usize),
    Score(ScoreRange),
    Lex(LexRange),
    Rank(Vec<u8>),
}

fn member() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "c", "d", "e", "f", "g", "h", "ab", ""]).prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ]
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            0.0,
            -0.0,
            1.0,
            2.0,
            -1.0,
            1.5,
            f64::INFINITY,
            f64::NEG_INFINITY
        ]),
        (-5i32..5).prop_map(f64::from),
    ]
}

fn lex_edge() -> impl Strategy<Value = LexEdge> {
    prop_oneof![
        1 => Just(LexEdge::Lowest),
        1 => Just(LexEdge::Highest),
        4 => member().prop_map(LexEdge::Member),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let flags = (any::<[bool; 5]>()).prop_map(|[incr, nx, xx, gt, lt]| AddFlags {
        incr,
        nx: nx && !xx && !gt && !lt,
        xx,
        gt: gt && !lt,
        lt,
    });
    prop_oneof![
        8 => (score(), member(), flags).prop_map(|(s, m, f)| Op::Add(s, m, f)),
        2 => member().prop_map(Op::Remove),
        1 => (any::<bool>(), 0usize..4).prop_map(|(b, n)| Op::Pop(b, n)),
        1 => (0usize..6, 0usize..6).prop_map(|(a, b)| Op::RemoveRanks(a.min(b), a.max(b))),
        2 => (score(), score(), any::<bool>(), any::<bool>()).prop_map(|(min, max, min_ex, max_ex)| Op::Score(ScoreRange { min, max, min_ex, max_ex })),
        2 => (lex_edge(), lex_edge(), any::<bool>(), any::<bool>()).prop_map(|(min, max, a, b)| {
            let ex = |e: &LexEdge, x: bool| !matches!(e, LexEdge::Member(_)) || x;
            Op::Lex(LexRange { min_ex: ex(&min, a), max_ex: ex(&max, b), min, max })
        }),
        1 => member().prop_map(Op::Rank),
    ]
}

fn same_elements(z: &ZSetVal, m: &Model) {
    let got: Vec<(Vec<u8>, u64)> = z.iter().map(|(x, s)| (x.to_vec(), s.to_bits())).collect();
    let want: Vec<(Vec<u8>, u64)> = m
        .items
        .iter()
        .map(|(s, x)| (x.clone(), s.to_bits()))
        .collect();
    assert_eq!(got, want);
    let back: Vec<Vec<u8>> = z
        .iter_from(z.len().saturating_sub(1), true)
        .map(|(x, _)| x.to_vec())
        .collect();
    let mut want_back: Vec<Vec<u8>> = m.items.iter().map(|(_, x)| x.clone()).collect();
    want_back.reverse();
    if !z.is_empty() {
        assert_eq!(back, want_back);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random operations give the model's answers in both encodings; a set converts to a
    /// skiplist exactly when it outgrows the limits and never converts back; the skip list's
    /// links, spans and index stay consistent.
    #[test]
    fn value_matches_model(ops in prop::collection::vec(op(), 1..80), entries in 1usize..6, value in 1usize..4) {
        let lim = limits(entries, value);
        let mut z = ZSetVal::new();
        let mut m = Model::default();
        let mut was_skiplist = false;
        for op in ops {
            match op {
                Op::Add(s, x, f) => {
                    let grows = !z.contains(&x) && !f.xx;
                    let too_big = grows && (z.len() + 1 > entries || x.len() > value);
                    prop_assert_eq!(z.add(s, &x, f, &lim), m.add(s, &x, f));
                    if too_big { prop_assert_eq!(z.encoding(), "skiplist"); }
                }
                Op::Remove(x) => {
                    let had = m.pos(&x).map(|i| m.items.remove(i)).is_some();
                    prop_assert_eq!(z.remove(&x), had);
                }
                Op::Pop(max, n) => {
                    let got: Vec<(Vec<u8>, u64)> = z.pop(max, n).into_iter().map(|(x, s)| (x.to_vec(), s.to_bits())).collect();
                    let k = n.min(m.items.len());
                    let mut want: Vec<(Vec<u8>, u64)> = if max {
                        m.items.drain(m.items.len() - k..).map(|(s, x)| (x, s.to_bits())).collect()
                    } else {
                        m.items.drain(..k).map(|(s, x)| (x, s.to_bits())).collect()
                    };
                    if max { want.reverse(); }
                    prop_assert_eq!(got, want);
                }
                Op::RemoveRanks(a, b) => {
                    if b < m.items.len() {
                        let mut got = Vec::new();
                        z.remove_ranks(a, b, |x, _| got.push(x.to_vec()));
                        let want: Vec<Vec<u8>> = m.items.drain(a..=b).map(|(_, x)| x).collect();
                        prop_assert_eq!(got, want);
                    }
                }
                Op::Score(r) => {
                    prop_assert_eq!(z.first_in(&r), m.first_in(&r));
                    prop_assert_eq!(z.count_in(&r), m.count_in(&r));
                }
                Op::Lex(r) => {
                    // Lexicographic ranges are only well defined when the scores are equal;
                    // a listpack gives Valkey's walk in every case.
                    let equal = m.items.windows(2).all(|w| w[0].0 == w[1].0);
                    if z.is_listpack() || equal {
                        prop_assert_eq!(z.first_in(&r), m.first_in(&r));
                        prop_assert_eq!(z.count_in(&r), m.count_in(&r));
                    }
                }
                Op::Rank(x) => {
                    let want = m.pos(&x).map(|i| (i, m.items[i].0.to_bits()));
                    prop_assert_eq!(z.rank(&x, false).map(|(r, s)| (r, s.to_bits())), want);
                    if let Some((i, _)) = want {
                        prop_assert_eq!(z.rank(&x, true).map(|(r, _)| r), Some(m.items.len() - 1 - i));
                        prop_assert_eq!(z.get(i).map(|(x, _)| x.to_vec()), Some(x.clone()));
                    }
                }
            }
            if z.is_listpack() {
                // A listpack stores an integral score as an integer entry: -0 reads back as 0.
                for it in &mut m.items {
                    if it.0 == 0.0 {
                        it.0 = 0.0;
                    }
                }
            }
            if z.encoding() == "skiplist" { was_skiplist = true; }
            if was_skiplist { prop_assert_eq!(z.encoding(), "skiplist"); }
            z.check();
            same_elements(&z, &m);
        }
    }
}

/// A skiplist of many elements keeps ranks, ranges and removals right (the spans are
/// exercised across many levels), and random picks cover every element.
#[test]
fn large_skiplist() {
    let lim = Limits::default();
    let mut z = ZSetVal::new();
    for i in 0..2000u32 {
        let m = format!("m{:05}", (i * 7919) % 2000);
        z.add(f64::from(i % 50), m.as_bytes(), AddFlags::default(), &lim);
    }
    assert_eq!(z.encoding(), "skiplist");
    z.check();
    let all: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
    for (i, (m, s)) in all.iter().enumerate().step_by(37) {
        assert_eq!(z.rank(m, false), Some((i, *s)));
        assert_eq!(z.get(i).map(|(x, _)| x.to_vec()), Some(m.clone()));
    }
    let r = ScoreRange {
        min: 10.0,
        max: 20.0,
        min_ex: true,
        max_ex: false,
    };
    let want = all.iter().filter(|(_, s)| *s > 10.0 && *s <= 20.0).count();
    assert_eq!(z.count_in(&r), want);
    let first = z.first_in(&r).unwrap();
    assert_eq!(all[first].1, 11.0);
    assert!(first == 0 || all[first - 1].1 <= 10.0);
    // Valkey 8: a negative LIMIT offset counts from the end of the range on a skiplist.
    let last = z.last_in(&r).unwrap();
    assert_eq!(z.range_start(&r, -1, false), Some(last));
    assert_eq!(z.range_start(&r, -1, true), Some(first));
    assert_eq!(z.range_start(&r, i64::MIN, false), None);
    assert_eq!(z.range_start(&r, i64::MAX, true), None);
    let mut removed = 0;
    z.remove_ranks(first, first + want - 1, |_, _| removed += 1);
    assert_eq!(removed, want);
    assert_eq!(z.count_in(&r), 0);
    z.check();
    let mut seen = std::collections::HashSet::new();
    let mut x = 1u64;
    for _ in 0..40_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seen.insert(z.random(x >> 11).unwrap().0.to_vec());
    }
    assert_eq!(seen.len(), z.len());
}

/// ZSCAN over a skiplist returns every member present for the whole scan, even while other
/// members are removed between calls.
#[test]
fn scan_survives_removals() {
    let lim = Limits::default();
    let mut z = ZSetVal::new();
    for i in 0..300 {
        z.add(
            f64::from(i),
            format!("k{i}").as_bytes(),
            AddFlags::default(),
            &lim,
        );
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0;
    let mut round = 0;
    loop {
        cursor = z.scan_step(cursor, 10, |m, _| {
            seen.insert(m.to_vec());
        });
        // Remove a member that is not one of the always-present ones (k0..k99).
        round += 1;
        z.remove(format!("k{}", 100 + round * 3).as_bytes());
        if cursor == 0 {
            break;
        }
    }
    for i in 0..100 {
        assert!(seen.contains(format!("k{i}").as_bytes()), "k{i} missed");
    }
}

/// Encodings follow Valkey's thresholds: a new set sized by its first ZADD, conversion when
/// a member or the count outgrows the listpack, and stored results sized by their content.
#[test]
fn encodings() {
    let lim = Limits::default();
    assert_eq!(ZSetVal::with_hint(128, 64, &lim).encoding(), "listpack");
    assert_eq!(ZSetVal::with_hint(129, 1, &lim).encoding(), "skiplist");
    assert_eq!(ZSetVal::with_hint(1, 65, &lim).encoding(), "skiplist");
    let mut z = ZSetVal::new();
    for i in 0..128 {
        z.add(1.0, format!("{i}").as_bytes(), AddFlags::default(), &lim);
    }
    assert_eq!(z.encoding(), "listpack");
    z.add(
        1.0,
        b"x",
        AddFlags {
            xx: true,
            ..AddFlags::default()
        },
        &lim,
    );
    assert_eq!(z.encoding(), "listpack");
    z.add(1.0, b"x", AddFlags::default(), &lim);
    assert_eq!(z.encoding(), "skiplist");
    z.remove(b"x");
    assert_eq!(z.encoding(), "skiplist");
    let mut y = ZSetVal::new();
    y.add(1.0, &[b'a'; 65], AddFlags::default(), &lim);
    assert_eq!(y.encoding(), "skiplist");
    let items: Vec<(f64, SmallBytes)> = (0..128)
        .map(|i| (f64::from(i), SmallBytes::new(&[b'a'; 64])))
        .collect();
    assert_eq!(ZSetVal::from_sorted(items, &lim).encoding(), "listpack");
    let mut z2 = ZSetVal::new();
    z2.reserve_for(129, 1, &lim);
    assert_eq!(z2.encoding(), "skiplist");
}
