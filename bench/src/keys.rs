//! Which key and which command comes next, with memtier_benchmark's meanings, so that a run of
//! `corekey-bench run` and one of memtier with the same options send the same mix:
//!
//! - `--key-pattern SET:GET`, each side one of `R` (uniform random in the key range), `S`
//!   (sequential: each client walks the whole range from the minimum, wrapping; SETs and GETs
//!   keep separate positions), `G` (Gaussian around `--key-median`, default the middle of the
//!   range, with `--key-stddev`, default a sixth of the range; draws outside the range are
//!   drawn again) and `P` (parallel: the range is cut into one slice per client, and each
//!   client walks its own slice sequentially; `P` must be on both sides).
//! - `--ratio SET:GET`: each client sends `SET` times SET, then `GET` times GET, and again.
//! - Random draws use one seed for every client unless `--distinct-client-seed` (memtier's
//!   default, which makes every client draw the same key sequence); `--randomize` picks the
//!   seed from the clock.

use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    Random,
    Sequential,
    Gaussian,
    Parallel,
}

impl Pattern {
    fn from_char(c: char) -> Option<Pattern> {
        Some(match c {
            'R' => Pattern::Random,
            'S' => Pattern::Sequential,
            'G' => Pattern::Gaussian,
            'P' => Pattern::Parallel,
            _ => return None,
        })
    }

    pub fn letter(self) -> char {
        match self {
            Pattern::Random => 'R',
            Pattern::Sequential => 'S',
            Pattern::Gaussian => 'G',
            Pattern::Parallel => 'P',
        }
    }
}

/// `--key-pattern`: the pattern of SET keys and of GET keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub set: Pattern,
    pub get: Pattern,
}

impl FromStr for KeyPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid key pattern '{s}': expected X:Y with X and Y in R, S, G, P");
        let mut chars = s.chars();
        let (Some(a), Some(':'), Some(b), None) =
            (chars.next(), chars.next(), chars.next(), chars.next())
        else {
            return Err(bad());
        };
        let set = Pattern::from_char(a).ok_or_else(bad)?;
        let get = Pattern::from_char(b).ok_or_else(bad)?;
        if (set == Pattern::Parallel) != (get == Pattern::Parallel) {
            return Err(format!(
                "invalid key pattern '{s}': P (parallel) must be used for both SET and GET"
            ));
        }
        Ok(KeyPattern { set, get })
    }
}

impl std::fmt::Display for KeyPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.set.letter(), self.get.letter())
    }
}

/// `--ratio SET:GET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    pub set: u32,
    pub get: u32,
}

impl FromStr for Ratio {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid ratio '{s}': expected SET:GET, e.g. 1:10");
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        let set = a.trim().parse().map_err(|_| bad())?;
        let get = b.trim().parse().map_err(|_| bad())?;
        if set == 0 && get == 0 {
            return Err(format!("invalid ratio '{s}': SET and GET cannot both be 0"));
        }
        Ok(Ratio { set, get })
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.set, self.get)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Set,
    Get,
}

/// Cycles through SETs and GETs in the ratio's order (memtier's counters).
#[derive(Clone, Debug)]
pub struct RatioCycle {
    ratio: Ratio,
    sets: u32,
    gets: u32,
}

impl RatioCycle {
    pub fn new(ratio: Ratio) -> RatioCycle {
        RatioCycle {
            ratio,
            sets: 0,
            gets: 0,
        }
    }

    pub fn next_op(&mut self) -> Op {
        if self.sets >= self.ratio.set && self.gets >= self.ratio.get {
            self.sets = 0;
            self.gets = 0;
        }
        if self.sets < self.ratio.set {
            self.sets += 1;
            Op::Set
        } else {
            self.gets += 1;
            Op::Get
        }
    }
}

/// SplitMix64: small, fast, and good enough to pick keys.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The key range and the Gaussian's shape (`--key-minimum`, `--key-maximum`, `--key-stddev`,
/// `--key-median`; 0 means memtier's default).
#[derive(Clone, Copy, Debug)]
pub struct KeySpace {
    pub min: u64,
    pub max: u64,
    pub stddev: f64,
    pub median: f64,
}

impl KeySpace {
    pub fn new(min: u64, max: u64) -> KeySpace {
        KeySpace {
            min,
            max,
            stddev: 0.0,
            median: 0.0,
        }
    }

    /// The slice of the range that client `index` of `clients` walks under `P:P` (memtier's
    /// split: equal slices, the last one takes the rest).
    pub fn parallel_slice(&self, index: u64, clients: u64) -> (u64, u64) {
        let width = (self.max - self.min) / clients + 1;
        let lo = self.min + width * index;
        let hi = if index + 1 == clients {
            self.max
        } else {
            lo + width - 1
        };
        (lo.min(self.max), hi.min(self.max))
    }
}

/// How many attempts a Gaussian draw makes before it falls back to a uniform draw (beyond
/// the default 3 sigma each attempt succeeds with probability 0.997).
const GAUSSIAN_ATTEMPTS_MAX: usize = 1000;

/// One client's key sequence.
#[derive(Clone, Debug)]
pub struct KeyGen {
    pattern: KeyPattern,
    min: u64,
    max: u64,
    next: [u64; 2],
    rng: Rng,
    spare: Option<f64>,
    stddev: f64,
    median: f64,
}

impl KeyGen {
    /// The generator of client `index` of `clients`.
    pub fn new(
        space: KeySpace,
        pattern: KeyPattern,
        index: u64,
        clients: u64,
        seed: u64,
    ) -> KeyGen {
        let (min, max) = if pattern.set == Pattern::Parallel {
            space.parallel_slice(index, clients)
        } else {
            (space.min, space.max)
        };
        let len = (space.max - space.min) as f64;
        KeyGen {
            pattern,
            min,
            max,
            next: [min, min],
            rng: Rng::new(seed),
            spare: None,
            stddev: if space.stddev > 0.0 {
                space.stddev
            } else {
                len / 6.0
            },
            median: if space.median > 0.0 {
                space.median
            } else {
                len / 2.0 + space.min as f64 + 0.5
            },
        }
    }

    /// The index of the next key for `op`.
    pub fn next_key(&mut self, op: Op) -> u64 {
        let (pattern, slot) = match op {
            Op::Set => (self.pattern.set, 0),
            Op::Get => (self.pattern.get, 1),
        };
        match pattern {
            Pattern::Random => self.uniform(),
            Pattern::Gaussian => self.gaussian(),
            Pattern::Sequential | Pattern::Parallel => {
                let k = self.next[slot];
                self.next[slot] = if k >= self.max { self.min } else { k + 1 };
                k
            }
        }
    }

    fn uniform(&mut self) -> u64 {
        let span = self.max - self.min + 1;
        if span == 0 {
            // The full u64 range.
            return self.rng.next_u64();
        }
        self.min + self.rng.next_u64() % span
    }

    /// A standard normal draw (Marsaglia's polar method, which yields two at a time).
    fn normal(&mut self) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        // Each pass accepts with probability pi/4; bounded in practice, and capped.
        for _ in 0..GAUSSIAN_ATTEMPTS_MAX {
            let u = self.rng.next_f64() * 2.0 - 1.0;
            let v = self.rng.next_f64() * 2.0 - 1.0;
            let s = u * u + v * v;
            if s < 1.0 && s > 0.0 {
                let m = (-2.0 * s.ln() / s).sqrt();
                self.spare = Some(v * m);
                return u * m;
            }
        }
        0.0
    }

    fn gaussian(&mut self) -> u64 {
        if self.min == self.max {
            return self.min;
        }
        for _ in 0..GAUSSIAN_ATTEMPTS_MAX {
            let v = self.normal() * self.stddev + self.median;
            if v >= self.min as f64 && v < (self.max + 1) as f64 {
                return (v as u64).clamp(self.min, self.max);
            }
        }
        self.uniform()
    }
}

/// memtier's `--requests allkeys`: the key range's width (`max - min`), divided among the
/// clients under `P:P`.
pub fn all_keys_requests(space: &KeySpace, pattern: KeyPattern, clients: u64) -> u64 {
    let n = space.max - space.min;
    if pattern.set == Pattern::Parallel {
        n / clients + 1
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_like_memtier() {
        assert_eq!(
            "R:S".parse::<KeyPattern>(),
            Ok(KeyPattern {
                set: Pattern::Random,
                get: Pattern::Sequential
            })
        );
        assert!("P:R".parse::<KeyPattern>().is_err());
        assert!("R:X".parse::<KeyPattern>().is_err());
        assert!("RR".parse::<KeyPattern>().is_err());
        assert_eq!("1:10".parse::<Ratio>(), Ok(Ratio { set: 1, get: 10 }));
        assert!("0:0".parse::<Ratio>().is_err());
    }

    /// The ratio 1:3 gives SET GET GET GET, again and again; 0:1 only GETs.
    #[test]
    fn ratio_cycles_in_order() {
        let mut c = RatioCycle::new(Ratio { set: 1, get: 3 });
        let ops: Vec<Op> = (0..8).map(|_| c.next_op()).collect();
        use Op::*;
        assert_eq!(ops, [Set, Get, Get, Get, Set, Get, Get, Get]);
        let mut c = RatioCycle::new(Ratio { set: 0, get: 1 });
        assert!((0..5).all(|_| c.next_op() == Get));
        let mut c = RatioCycle::new(Ratio { set: 2, get: 0 });
        assert!((0..5).all(|_| c.next_op() == Set));
    }

    /// Sequential walks wrap; SET and GET keep their own positions.
    #[test]
    fn sequential_wraps_per_side() {
        let space = KeySpace::new(5, 7);
        let p = "S:S".parse().unwrap();
        let mut g = KeyGen::new(space, p, 0, 1, 1);
        let sets: Vec<u64> = (0..4).map(|_| g.next_key(Op::Set)).collect();
        assert_eq!(sets, [5, 6, 7, 5]);
        assert_eq!(g.next_key(Op::Get), 5);
    }

    /// Parallel slices cover the range exactly once, and `allkeys` visits every key.
    #[test]
    fn parallel_slices_cover_the_range() {
        let space = KeySpace::new(1, 1000);
        let p: KeyPattern = "P:P".parse().unwrap();
        let clients = 7;
        let per_client = all_keys_requests(&space, p, clients);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..clients {
            let mut g = KeyGen::new(space, p, i, clients, 1);
            let (lo, hi) = space.parallel_slice(i, clients);
            for _ in 0..per_client.min(hi - lo + 1) {
                seen.insert(g.next_key(Op::Set));
            }
        }
        assert_eq!(seen.len(), 1000);
        assert_eq!(seen.first(), Some(&1));
        assert_eq!(seen.last(), Some(&1000));
    }

    /// Gaussian draws stay in range and gather around the median.
    #[test]
    fn gaussian_centres_on_the_median() {
        let space = KeySpace::new(0, 6000);
        let mut g = KeyGen::new(space, "G:G".parse().unwrap(), 0, 1, 42);
        let draws: Vec<u64> = (0..20_000).map(|_| g.next_key(Op::Get)).collect();
        assert!(draws.iter().all(|&k| k <= 6000));
        let within_one_sigma = draws
            .iter()
            .filter(|&&k| (2000..=4000).contains(&k))
            .count();
        // About 68% of a normal distribution lies within one standard deviation.
        assert!(
            (12_600..14_600).contains(&within_one_sigma),
            "{within_one_sigma}"
        );
    }
}
