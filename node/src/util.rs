//! Small exact ports of Valkey's number and pattern helpers, so that parsing and matching give
//! the same answers as Valkey: `string2ll`, `string2ld`/`ld2string` (through `csrc/`) and
//! `stringmatchlen`.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]

/// Valkey's `string2ll`: an optional `-`, no leading zeros or `+`, no spaces, fits in i64.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    // Longest valid text is "-9223372036854775808", 20 bytes (Valkey's LONG_STR_SIZE is 21).
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut v = u64::from(first.wrapping_sub(b'0'));
    for &c in rest {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v
            .checked_mul(10)?
            .checked_add(u64::from(c.wrapping_sub(b'0')))?;
    }
    if negative {
        if v > 1u64 << 63 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// `parse_i64` for an argument that must be a non-negative count or index into memory.
pub fn parse_usize(s: &[u8]) -> Option<usize> {
    parse_i64(s).and_then(|v| usize::try_from(v).ok())
}

/// Formats an integer into `out`.
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// The decimal text of `v`.
pub fn i64_text(v: i64) -> Vec<u8> {
    itoa::Buffer::new().format(v).as_bytes().to_vec()
}

extern "C" {
    fn ck_ld_incr(
        cur: *const u8,
        curlen: usize,
        incr: *const u8,
        incrlen: usize,
        out: *mut u8,
        outlen: usize,
    ) -> libc::c_long;
    fn ck_ld_valid(s: *const u8, slen: usize) -> libc::c_int;
    fn ck_ld_timeout_ms(s: *const u8, slen: usize, ms: *mut libc::c_longlong) -> libc::c_int;
}

/// Why a blocking command's timeout was refused (Valkey's texts in [`TimeoutError::text`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutError {
    NotAFloat,
    OutOfRange,
    Negative,
}

impl TimeoutError {
    pub fn text(self) -> &'static str {
        match self {
            TimeoutError::NotAFloat => "timeout is not a float or out of range",
            TimeoutError::OutOfRange => "timeout is out of range",
            TimeoutError::Negative => "timeout is negative",
        }
    }
}

/// A timeout in seconds (a float, as Valkey reads it in `long double`) as milliseconds,
/// rounded up; 0 means "forever". Valkey turns it into a deadline by adding the time now
/// (`now_ms`, milliseconds since the epoch) and refuses one that would overflow.
pub fn timeout_ms(s: &[u8], now_ms: i64) -> Result<i64, TimeoutError> {
    let mut ms: libc::c_longlong = 0;
    // SAFETY: pointer and length describe `s`; the C side writes one long long into `ms`.
    let r = unsafe { ck_ld_timeout_ms(s.as_ptr(), s.len(), &mut ms) };
    match r {
        0 if ms > 0 && ms.checked_add(now_ms).is_none() => Err(TimeoutError::OutOfRange),
        0 => Ok(ms),
        1 => Err(TimeoutError::NotAFloat),
        2 => Err(TimeoutError::OutOfRange),
        _ => Err(TimeoutError::Negative),
    }
}

/// Why a `long double` increment failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdIncrError {
    /// The current value is not a float ("value is not a valid float").
    Current,
    /// The increment is not a float.
    Increment,
    /// The sum is NaN or infinite ("increment would produce NaN or Infinity").
    NanOrInfinity,
}

/// Valkey's INCRBYFLOAT arithmetic: `current + incr` in `long double`, printed as Valkey
/// prints it. `current` is `None` when the key does not exist (it counts as 0).
pub fn long_double_incr(current: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, LdIncrError> {
    const OUT_MAX: usize = 5 * 1024;
    let mut out = vec![0u8; OUT_MAX];
    let (cur_ptr, cur_len) = match current {
        Some(c) => (c.as_ptr(), c.len()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: every pointer comes with the length of the live buffer it points into; the C side
    // copies at most that many bytes and writes at most `out.len()` bytes into `out`.
    let n = unsafe {
        ck_ld_incr(
            cur_ptr,
            cur_len,
            incr.as_ptr(),
            incr.len(),
            out.as_mut_ptr(),
            out.len(),
        )
    };
    match n {
        -1 => Err(LdIncrError::Current),
        -2 => Err(LdIncrError::Increment),
        -3 => Err(LdIncrError::NanOrInfinity),
        n => {
            out.truncate(usize::try_from(n).unwrap_or(0));
            Ok(out)
        }
    }
}

/// Whether `s` parses as a float the way Valkey's `string2ld` accepts it.
pub fn is_long_double(s: &[u8]) -> bool {
    // SAFETY: the pointer and length describe the live slice `s`; the C side only reads it.
    unsafe { ck_ld_valid(s.as_ptr(), s.len()) != 0 }
}

/// Appends `s` quoted as Valkey's `sdscatrepr` does: in double quotes, with `\\`, `\"`,
/// `\n`, `\r`, `\t`, `\a`, `\b` escaped and other unprintable bytes as `\xHH`.
pub fn repr_into(out: &mut Vec<u8>, s: &[u8]) {
    use std::fmt::Write;
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b),
            b => {
                // Two hex digits, lower case, as `sdscatrepr`'s "\\x%02x".
                let _ = write!(HexSink(out), "\\x{b:02x}");
            }
        }
    }
    out.push(b'"');
}

/// Lets `write!` append text to a byte buffer.
struct HexSink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for HexSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Valkey's `stringmatchlen`: glob-style matching with `*`, `?`, `[...]`, `[^...]`, ranges and
/// `\` escapes; `nocase` folds ASCII case.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    glob_impl(pattern, string, nocase, &mut skip_longer, 0)
}

fn glob_impl(
    mut p: &[u8],
    mut s: &[u8],
    nocase: bool,
    skip_longer: &mut bool,
    nesting: u32,
) -> bool {
    // Protection against abusive patterns, as in Valkey.
    if nesting > 1000 {
        return false;
    }
    let at = |x: &[u8], i: usize| -> u8 { x.get(i).copied().unwrap_or(0) };
    let fold = |c: u8| if nocase { c.to_ascii_lowercase() } else { c };
    while !p.is_empty() && !s.is_empty() {
        match at(p, 0) {
            b'*' => {
                while p.len() > 1 && at(p, 1) == b'*' {
                    p = p.get(1..).unwrap_or_default();
                }
                if p.len() == 1 {
                    return true;
                }
                let rest = p.get(1..).unwrap_or_default();
                while !s.is_empty() {
                    if glob_impl(rest, s, nocase, skip_longer, nesting.saturating_add(1)) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = s.get(1..).unwrap_or_default();
                }
                *skip_longer = true;
                return false;
            }
            b'?' => {
                s = s.get(1..).unwrap_or_default();
            }
            b'[' => {
                p = p.get(1..).unwrap_or_default();
                let not = at(p, 0) == b'^';
                if not {
                    p = p.get(1..).unwrap_or_default();
                }
                let c = at(s, 0);
                let mut matched = false;
                loop {
                    if at(p, 0) == b'\\' && p.len() >= 2 {
                        p = p.get(1..).unwrap_or_default();
                        if at(p, 0) == c {
                            matched = true;
                        }
                    } else if at(p, 0) == b']' && !p.is_empty() {
                        break;
                    } else if p.is_empty() {
                        // An unterminated class ends at the end of the pattern; the final
                        // `p = p[1..]` below must leave the pattern empty, as in Valkey.
                        break;
                    } else if p.len() >= 3 && at(p, 1) == b'-' {
                        // C compares `char`s, which are signed on x86_64: so do we.
                        let (mut start, mut end) = (at(p, 0) as i8, at(p, 2) as i8);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        let sfold = |x: i8| fold(x as u8) as i8;
                        let (start, end, cc) = (sfold(start), sfold(end), sfold(c as i8));
                        p = p.get(2..).unwrap_or_default();
                        if cc >= start && cc <= end {
                            matched = true;
                        }
                    } else if fold(at(p, 0)) == fold(c) {
                        matched = true;
                    }
                    p = p.get(1..).unwrap_or_default();
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = s.get(1..).unwrap_or_default();
            }
            first => {
                let lit = if first == b'\\' && p.len() >= 2 {
                    p = p.get(1..).unwrap_or_default();
                    at(p, 0)
                } else {
                    first
                };
                if fold(lit) != fold(at(s, 0)) {
                    return false;
                }
                s = s.get(1..).unwrap_or_default();
            }
        }
        p = p.get(1..).unwrap_or_default();
        if s.is_empty() {
            while at(p, 0) == b'*' && !p.is_empty() {
                p = p.get(1..).unwrap_or_default();
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// string2ll accepts exactly canonical decimal integers in range.
    #[test]
    fn parse_i64_is_string2ll() {
        for ok in [
            "0",
            "1",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
            "10",
        ] {
            assert_eq!(parse_i64(ok.as_bytes()), ok.parse().ok(), "{ok}");
        }
        for bad in [
            "",
            "-",
            "-0",
            "01",
            "+1",
            " 1",
            "1 ",
            "9223372036854775808",
            "1.0",
            "0x1",
            "-9223372036854775809",
            "123456789012345678901",
        ] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad}");
        }
    }

    /// INCRBYFLOAT sums print as Valkey prints them (long double, %.17Lf, zeros trimmed).
    #[test]
    fn long_double_increment() {
        let t = |cur: Option<&str>, by: &str| {
            long_double_incr(cur.map(str::as_bytes), by.as_bytes())
                .map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(t(Some("10.50"), "0.1").unwrap(), "10.6");
        assert_eq!(t(None, "0.1").unwrap(), "0.1");
        assert_eq!(t(Some("0.1"), "0.2").unwrap(), "0.3");
        assert_eq!(t(Some("5.0e3"), "2.0e2").unwrap(), "5200");
        assert_eq!(t(Some("3"), "-3").unwrap(), "0");
        assert_eq!(t(Some("1"), "-1.5").unwrap(), "-0.5");
        assert_eq!(t(Some("abc"), "1"), Err(LdIncrError::Current));
        assert_eq!(t(Some("1"), " 1"), Err(LdIncrError::Increment));
        assert_eq!(t(Some("1"), "nan"), Err(LdIncrError::Increment));
        assert_eq!(t(Some("1"), "inf"), Err(LdIncrError::NanOrInfinity));
        // strtold stops at a NUL inside the text: Valkey refuses such values.
        assert_eq!(t(Some("1\u{0}2"), "1"), Err(LdIncrError::Current));
        assert_eq!(t(Some("1"), "1\u{0}"), Err(LdIncrError::Increment));
    }

    /// Timeouts parse as Valkey's getTimeoutFromObjectOrReply reads seconds.
    #[test]
    fn timeouts() {
        let now = 1_700_000_000_000;
        assert_eq!(timeout_ms(b"0", now), Ok(0));
        assert_eq!(timeout_ms(b"0.1", now), Ok(100));
        assert_eq!(timeout_ms(b"0.0001", now), Ok(1));
        assert_eq!(timeout_ms(b"1e3", now), Ok(1_000_000));
        assert_eq!(timeout_ms(b"-1", now), Err(TimeoutError::Negative));
        assert_eq!(timeout_ms(b"x", now), Err(TimeoutError::NotAFloat));
        assert_eq!(timeout_ms(b"inf", now), Err(TimeoutError::OutOfRange));
        // Fits a long long as milliseconds, but not once the time now is added.
        let huge = b"9223372036854775";
        assert_eq!(timeout_ms(huge, 0), Ok(9_223_372_036_854_775_000));
        assert_eq!(timeout_ms(huge, now), Err(TimeoutError::OutOfRange));
    }

    /// Glob patterns behave as Valkey's stringmatchlen.
    #[test]
    fn glob() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("a*", "a"));
        assert!(m("a**", "a"));
        assert!(!m("a?", "a"));
        assert!(m("[abc", "a"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(!m(&"*a".repeat(40), &"a".repeat(50).replace('a', "b")));
    }
}
