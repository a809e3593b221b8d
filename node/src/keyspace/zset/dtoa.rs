//! Scores as text, exactly as Valkey 8 prints them.
//!
//! Valkey's `d2string` writes `nan`, `inf`, `-inf`, `0`, `-0`, integers up to 2^62 as
//! integers, and every other double through `fpconv_dtoa`: Florian Loitsch's Grisu2 (from
//! "Printing Floating-Point Numbers Quickly and Accurately with Integers", 2010) with 64-bit
//! cached powers of ten, followed by its own layout (plain digits for moderate exponents,
//! `d.ddde+XX` otherwise). Grisu2 is not always the *shortest* round-trip text (it is in about
//! 99.9% of cases), so a general shortest-digits algorithm would print a few values
//! differently; this is our own implementation of the same algorithm with the same choices
//! (boundary narrowing, cached power search, digit weeding), checked against the C original
//! over many millions of doubles while it was written.
//!
//! The cached powers (10^k for k = -348, -340, …, 340, as 64-bit significands rounded to
//! nearest) are computed once, with exact integer arithmetic, instead of being a table of
//! magic numbers.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::sync::OnceLock;

/// Longest text [`format_score`] writes: a sign, 17 digits and up to 7 zeros
/// ("-123456789012345670000000", for -1.2345678901234567e23) is 25 bytes.
pub const SCORE_TEXT_MAX: usize = 25;

/// A formatted score: up to [`SCORE_TEXT_MAX`] ASCII bytes, on the stack.
#[derive(Clone, Copy)]
pub struct ScoreText {
    buf: [u8; SCORE_TEXT_MAX],
    len: u8,
}

impl ScoreText {
    fn new() -> ScoreText {
        ScoreText {
            buf: [0; SCORE_TEXT_MAX],
            len: 0,
        }
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
            *slot = b;
            self.len += 1;
        }
    }

    fn push_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl std::fmt::Debug for ScoreText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// Valkey's `d2string`: the text of a score in replies and in listpack entries.
pub fn format_score(v: f64) -> ScoreText {
    let mut t = ScoreText::new();
    if v.is_nan() {
        t.push_all(b"nan");
    } else if v.is_infinite() {
        t.push_all(if v < 0.0 { b"-inf" } else { b"inf" });
    } else if v == 0.0 {
        t.push_all(if v.is_sign_negative() { b"-0" } else { b"0" });
    } else if let Some(n) = as_exact_i64(v) {
        t.push_all(itoa::Buffer::new().format(n).as_bytes());
    } else {
        shortest(v, &mut t);
    }
    t
}

/// Valkey's `double2ll`: the integer equal to `v` when `|v| <= 2^62` and `v` has no fraction.
pub fn as_exact_i64(v: f64) -> Option<i64> {
    // (double)(LLONG_MAX / 2) rounds to 2^62.
    const LIMIT: f64 = 4_611_686_018_427_387_904.0;
    if !(-LIMIT..=LIMIT).contains(&v) {
        return None;
    }
    let n = v as i64;
    (n as f64 == v).then_some(n)
}

/// A 64-bit significand with a binary exponent: `f * 2^e`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fp {
    f: u64,
    e: i32,
}

const FRACTION_BITS: u64 = (1 << 52) - 1;
const HIDDEN_BIT: u64 = 1 << 52;
/// 1075 = bias 1023 + 52 fraction bits.
const EXPONENT_BIAS: i32 = 1075;

/// The exact binary value of a finite, non-zero double.
fn unpack(v: f64) -> Fp {
    let bits = v.to_bits();
    let fraction = bits & FRACTION_BITS;
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: no hidden bit, smallest exponent.
        Fp {
            f: fraction,
            e: 1 - EXPONENT_BIAS,
        }
    } else {
        Fp {
            f: fraction | HIDDEN_BIT,
            e: biased - EXPONENT_BIAS,
        }
    }
}

/// Shifts so that bit 63 is set.
fn normalized(mut x: Fp) -> Fp {
    while x.f & HIDDEN_BIT == 0 {
        x.f <<= 1;
        x.e -= 1;
    }
    Fp {
        f: x.f << 11,
        e: x.e - 11,
    }
}

/// The midpoints to the neighbouring doubles, `(lower, upper)`, with upper normalized and
/// lower brought to the same exponent. Below a power of two the lower neighbour is closer.
fn boundaries(x: Fp) -> (Fp, Fp) {
    let mut upper = Fp {
        f: (x.f << 1) + 1,
        e: x.e - 1,
    };
    while upper.f & (HIDDEN_BIT << 1) == 0 {
        upper.f <<= 1;
        upper.e -= 1;
    }
    upper.f <<= 10;
    upper.e -= 10;
    let shift = if x.f == HIDDEN_BIT { 2 } else { 1 };
    let lower = Fp {
        f: ((x.f << shift) - 1) << (x.e - shift - upper.e),
        e: upper.e,
    };
    (lower, upper)
}

/// The product of two values, its significand rounded to 64 bits (half up).
fn times(a: Fp, b: Fp) -> Fp {
    const LOW: u64 = 0xffff_ffff;
    let (ah, al, bh, bl) = (a.f >> 32, a.f & LOW, b.f >> 32, b.f & LOW);
    let hi_lo = ah * bl;
    let lo_hi = al * bh;
    let lo_lo = al * bl;
    let hi_hi = ah * bh;
    let middle = (hi_lo & LOW) + (lo_hi & LOW) + (lo_lo >> 32) + (1 << 31);
    Fp {
        f: hi_hi + (hi_lo >> 32) + (lo_hi >> 32) + (middle >> 32),
        e: a.e + b.e + 64,
    }
}

/// Decimal exponent of the first cached power, and the step between cached powers.
const FIRST_POWER: i32 = -348;
const POWER_STEP: i32 = 8;
const POWER_COUNT: usize = 87;
/// The product's binary exponent must land in this window for digit generation.
const ALPHA: i32 = -60;
const GAMMA: i32 = -32;

/// 10^k for k = FIRST_POWER + POWER_STEP * i, as 64-bit significands rounded to nearest.
fn cached_powers() -> &'static [Fp; POWER_COUNT] {
    static POWERS: OnceLock<[Fp; POWER_COUNT]> = OnceLock::new();
    POWERS.get_or_init(|| {
        let mut out = [Fp { f: 0, e: 0 }; POWER_COUNT];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = power_of_ten(FIRST_POWER + POWER_STEP * i as i32);
        }
        out
    })
}

/// 10^k as a 64-bit significand (top bit set) rounded to nearest, and its binary exponent.
fn power_of_ten(k: i32) -> Fp {
    let n = k.unsigned_abs();
    let mut ten_n = Big::from_u64(1);
    for _ in 0..n {
        ten_n.mul_small(10);
    }
    if k >= 0 {
        // The top 65 bits of 10^n, then round the 65th away.
        let bits = ten_n.bit_len();
        carry_normalize(round_65(ten_n.top_bits(65)), bits as i32 - 64)
    } else {
        // 1 / 10^n by long division, 65 significant quotient bits and a sticky remainder.
        let mut rem = Big::from_u64(1);
        let mut shift = 0i32;
        while rem.cmp(&ten_n) == std::cmp::Ordering::Less {
            rem.shl1();
            shift += 1;
        }
        let mut q: u128 = 0;
        for _ in 0..65 {
            q <<= 1;
            if rem.cmp(&ten_n) != std::cmp::Ordering::Less {
                rem.sub(&ten_n);
                q |= 1;
            }
            rem.shl1();
        }
        // q holds the 65 top bits of 2^(shift + 64) / 10^n: 10^-n is about q * 2^-(shift + 64),
        // so the 64-bit significand q / 2 has exponent -(shift + 63).
        carry_normalize(round_65(q), -shift - 63)
    }
}

/// Rounds a 65-bit value to its top 64 bits, half up (a power of ten is never exactly halfway
/// between two 64-bit significands, so the bits below do not matter).
fn round_65(top: u128) -> u128 {
    (top >> 1) + (top & 1)
}

/// A rounded significand may have carried into bit 64: renormalize.
fn carry_normalize(f: u128, e: i32) -> Fp {
    if f >> 64 != 0 {
        Fp {
            f: (f >> 1) as u64,
            e: e + 1,
        }
    } else {
        Fp { f: f as u64, e }
    }
}

/// The cached power that brings a value with binary exponent `e` into [ALPHA, GAMMA], found
/// from the same first estimate as fpconv (so the same power is chosen when two would do).
/// Returns the power and its decimal exponent.
fn cached_power_for(e: i32) -> (Fp, i32) {
    const LOG10_2: f64 = 0.301_029_995_663_981_14;
    let powers = cached_powers();
    let approx = (f64::from(-(e + POWER_COUNT as i32)) * LOG10_2) as i32;
    let mut idx = (approx - FIRST_POWER) / POWER_STEP;
    // The estimate is never more than a step or two away; the bound only keeps a bug from
    // looping forever.
    for _ in 0..POWER_COUNT {
        let i = usize::try_from(idx).unwrap_or(0).min(POWER_COUNT - 1);
        let p = powers.get(i).copied().unwrap_or(Fp { f: 1 << 63, e: 0 });
        let current = e + p.e + 64;
        if current < ALPHA {
            idx += 1;
        } else if current > GAMMA {
            idx -= 1;
        } else {
            return (p, FIRST_POWER + i as i32 * POWER_STEP);
        }
    }
    unreachable!("no cached power of ten fits binary exponent {e}")
}

const TENS: [u64; 20] = [
    10_000_000_000_000_000_000,
    1_000_000_000_000_000_000,
    100_000_000_000_000_000,
    10_000_000_000_000_000,
    1_000_000_000_000_000,
    100_000_000_000_000,
    10_000_000_000_000,
    1_000_000_000_000,
    100_000_000_000,
    10_000_000_000,
    1_000_000_000,
    100_000_000,
    10_000_000,
    1_000_000,
    100_000,
    10_000,
    1_000,
    100,
    10,
    1,
];

/// Up to 18 decimal digits (as ASCII) and their count.
struct Digits {
    d: [u8; 18],
    n: usize,
}

impl Digits {
    fn push(&mut self, digit: u64) {
        if let Some(slot) = self.d.get_mut(self.n) {
            *slot = b'0' + digit as u8;
            self.n += 1;
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.d.get(..self.n).unwrap_or_default()
    }

    /// Moves the last digit down while that brings the value closer to the exact one and
    /// stays inside the safe interval (Grisu's "weeding").
    fn weed(&mut self, delta: u64, mut rest: u64, ten_kappa: u64, distance: u64) {
        while rest < distance
            && delta.wrapping_sub(rest) >= ten_kappa
            && (rest.wrapping_add(ten_kappa) < distance
                || distance.wrapping_sub(rest)
                    > rest.wrapping_add(ten_kappa).wrapping_sub(distance))
        {
            if let Some(last) = self.n.checked_sub(1).and_then(|i| self.d.get_mut(i)) {
                *last = last.wrapping_sub(1);
            }
            rest = rest.wrapping_add(ten_kappa);
        }
    }
}

/// Grisu2 digit generation: the digits of a number inside (lower, upper), scaled so that
/// their product exponents sit in [ALPHA, GAMMA]; `k` gets the decimal exponent of the last
/// digit added to it.
fn generate(w: Fp, upper: Fp, lower: Fp, k: &mut i32) -> Digits {
    let mut digits = Digits { d: [0; 18], n: 0 };
    let distance = upper.f - w.f;
    let mut delta = upper.f - lower.f;
    let shift = (-upper.e) as u32;
    let one = 1u64 << shift;
    let mut integral = upper.f >> shift;
    let mut fraction = upper.f & (one - 1);
    let mut kappa: i32 = 10;
    // Integral part: divisors 10^9 down to 10^0.
    for &div in TENS.iter().skip(10) {
        let digit = integral / div;
        if digit != 0 || digits.n != 0 {
            digits.push(digit);
        }
        integral -= digit * div;
        kappa -= 1;
        let rest = (integral << shift) + fraction;
        if rest <= delta {
            *k += kappa;
            digits.weed(delta, rest, div << shift, distance);
            return digits;
        }
    }
    // Fractional part, one digit at a time.
    let mut unit = 18usize;
    loop {
        fraction = fraction.wrapping_mul(10);
        delta = delta.wrapping_mul(10);
        kappa -= 1;
        let digit = fraction >> shift;
        if digit != 0 || digits.n != 0 {
            digits.push(digit);
        }
        fraction &= one - 1;
        if fraction < delta {
            *k += kappa;
            let scale = TENS.get(unit).copied().unwrap_or(1);
            digits.weed(delta, fraction, one, distance.wrapping_mul(scale));
            return digits;
        }
        unit = unit.saturating_sub(1);
    }
}

/// Grisu2: digits of `v` (finite, non-zero; the sign is ignored) and the decimal exponent
/// of the last digit.
fn grisu2(v: f64) -> (Digits, i32) {
    let exact = unpack(v);
    let (lower, upper) = boundaries(exact);
    let w = normalized(exact);
    let (power, k) = cached_power_for(upper.e);
    let w = times(w, power);
    let mut upper = times(upper, power);
    let mut lower = times(lower, power);
    // Stay strictly inside the interval despite the rounding of the products.
    lower.f += 1;
    upper.f -= 1;
    let mut exponent = -k;
    let digits = generate(w, upper, lower, &mut exponent);
    (digits, exponent)
}

/// fpconv's layout of the digits `digits * 10^k`.
fn lay_out(digits: &[u8], k: i32, negative: bool, out: &mut ScoreText) {
    let n = digits.len() as i32;
    let exp = (k + n - 1).abs();
    if k >= 0 && exp < n + 7 {
        // An integer: the digits and k zeros.
        out.push_all(digits);
        for _ in 0..k {
            out.push(b'0');
        }
        return;
    }
    if k < 0 && (k > -7 || exp < 4) {
        let point = n + k;
        if point <= 0 {
            out.push_all(b"0.");
            for _ in 0..-point {
                out.push(b'0');
            }
            out.push_all(digits);
        } else {
            let (int, frac) = digits.split_at(point as usize);
            out.push_all(int);
            out.push(b'.');
            out.push_all(frac);
        }
        return;
    }
    // Scientific: d.ddde±X, at most 18 digits (17 for a negative number).
    let shown = n.min(18 - i32::from(negative)) as usize;
    let (first, rest) = digits.split_at(1.min(digits.len()));
    out.push_all(first);
    if shown > 1 {
        out.push(b'.');
        out.push_all(rest.get(..shown - 1).unwrap_or(rest));
    }
    out.push(b'e');
    out.push(if k + shown as i32 - 1 < 0 { b'-' } else { b'+' });
    let mut e = exp;
    let hundreds = e / 100;
    if e > 99 {
        out.push(b'0' + hundreds as u8);
        e -= hundreds * 100;
    }
    if e > 9 {
        let tens = e / 10;
        out.push(b'0' + tens as u8);
        e -= tens * 10;
    } else if hundreds > 0 {
        out.push(b'0');
    }
    out.push(b'0' + (e % 10) as u8);
}

/// fpconv_dtoa for a finite, non-zero double.
fn shortest(v: f64, out: &mut ScoreText) {
    let negative = v.is_sign_negative();
    if negative {
        out.push(b'-');
    }
    let (digits, k) = grisu2(v);
    lay_out(digits.as_slice(), k, negative, out);
}

/// Just enough unsigned big-integer arithmetic to compute the cached powers of ten exactly.
struct Big {
    /// Little-endian 32-bit limbs.
    limbs: Vec<u32>,
}

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big {
            limbs: vec![v as u32, (v >> 32) as u32],
        };
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.limbs {
            let p = u64::from(*limb) * u64::from(m) + carry;
            *limb = p as u32;
            carry = p >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
    }

    fn shl1(&mut self) {
        let mut carry = 0u32;
        for limb in &mut self.limbs {
            let next = *limb >> 31;
            *limb = (*limb << 1) | carry;
            carry = next;
        }
        if carry != 0 {
            self.limbs.push(carry);
        }
    }

    fn sub(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let o = i64::from(other.limbs.get(i).copied().unwrap_or(0));
            let mut d = i64::from(*limb) - o - borrow;
            borrow = 0;
            if d < 0 {
                d += 1 << 32;
                borrow = 1;
            }
            *limb = d as u32;
        }
        self.trim();
    }

    fn cmp(&self, other: &Big) -> std::cmp::Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }

    fn bit_len(&self) -> u32 {
        match self.limbs.last() {
            Some(&top) => (self.limbs.len() as u32 - 1) * 32 + (32 - top.leading_zeros()),
            None => 0,
        }
    }

    fn bit(&self, i: u32) -> bool {
        self.limbs
            .get((i / 32) as usize)
            .is_some_and(|l| (l >> (i % 32)) & 1 == 1)
    }

    /// The top `n` bits (n <= 128).
    fn top_bits(&self, n: u32) -> u128 {
        let len = self.bit_len();
        let mut v = 0u128;
        for i in 0..n {
            v <<= 1;
            if let Some(pos) = len.checked_sub(1 + i) {
                v |= u128::from(self.bit(pos));
            }
        }
        v
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn text(v: f64) -> String {
        String::from_utf8(format_score(v).as_bytes().to_vec()).unwrap()
    }

    /// Special values, integers and the layouts Valkey 8 prints (checked against
    /// valkey-server 8.0.1 replies).
    #[test]
    fn layouts() {
        assert_eq!(text(f64::NAN), "nan");
        assert_eq!(text(f64::INFINITY), "inf");
        assert_eq!(text(f64::NEG_INFINITY), "-inf");
        assert_eq!(text(0.0), "0");
        assert_eq!(text(-0.0), "-0");
        assert_eq!(text(1.0), "1");
        assert_eq!(text(-42.0), "-42");
        assert_eq!(text(4_611_686_018_427_387_904.0), "4611686018427387904");
        // 2^63 is past double2ll's range: Grisu2's 16 digits and zeros.
        assert_eq!(text(9_223_372_036_854_775_807.0), "9223372036854776000");
        assert_eq!(text(-1.1783348420979686e23), "-117833484209796860000000");
        assert_eq!(text(1e20), "1e+20");
        assert_eq!(text(1.2345678901234567e23), "123456789012345670000000");
        assert_eq!(text(1e21), "1e+21");
        assert_eq!(text(1.5), "1.5");
        assert_eq!(text(0.1), "0.1");
        assert_eq!(text(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(text(-0.25), "-0.25");
        assert_eq!(text(1e-5), "0.00001");
        assert_eq!(text(1e-7), "1e-7");
        assert_eq!(text(1.5e-7), "1.5e-7");
        assert_eq!(text(2.5e-3), "0.0025");
        assert_eq!(text(1e308), "1e+308");
        assert_eq!(text(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(text(f64::MIN_POSITIVE), "2.2250738585072014e-308");
        assert_eq!(text(5e-324), "5e-324");
        assert_eq!(text(123456.789e3), "123456789");
        assert_eq!(text(1234567.125), "1234567.125");
    }

    /// The cached powers computed here are the correctly rounded 64-bit significands of the
    /// powers of ten (spot checks of values every Grisu implementation shares).
    #[test]
    fn cached_powers_are_exact() {
        let p = cached_powers();
        // 10^0 would be 2^63 * 2^-63; the table starts at 10^-348 and steps by 8.
        assert_eq!(
            p[42],
            Fp {
                f: 10141204801825835212,
                e: -103
            }
        ); // 10^-12
        assert_eq!(
            p[43],
            Fp {
                f: 15111572745182864684,
                e: -77
            }
        ); // 10^-4
        assert_eq!(
            p[44],
            Fp {
                f: 11258999068426240000,
                e: -50
            }
        ); // 10^4
        assert_eq!(
            p[46],
            Fp {
                f: 12500000000000000000,
                e: 3
            }
        ); // 10^20
        assert_eq!(
            p[0],
            Fp {
                f: 18054884314459144840,
                e: -1220
            }
        ); // 10^-348
        assert_eq!(
            p[86],
            Fp {
                f: 12648080533535911531,
                e: 1066
            }
        ); // 10^340
        for (i, f) in p.iter().enumerate() {
            assert!(f.f >> 63 == 1, "power {i} not normalized");
        }
    }

    /// Every output parses back to the same double, over a spread of magnitudes.
    #[test]
    fn round_trips() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if !v.is_finite() {
                continue;
            }
            let t = text(v);
            let back: f64 = t.parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v:e} printed as {t}");
        }
    }
}
