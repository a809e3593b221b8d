//! Splitting a line into arguments the way Valkey's `sdssplitargs` does: used for inline
//! commands and for valkey.conf lines.
//!
//! Arguments are separated by white space; `"double quotes"` understand `\n \r \t \b \a \\ \"`
//! and `\xHH`; `'single quotes'` understand only `\'`. A closing quote must be followed by white
//! space or the end of the line. `None` means unbalanced quotes.

/// Splits `line` into arguments; `None` when the quotes do not balance.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // Valkey splits a C string: a NUL byte ends the line.
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut in_dquotes = false;
        let mut in_squotes = false;
        loop {
            if in_dquotes {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    current.push(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    current.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    // The closing quote must be followed by a space or nothing at all.
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else if in_squotes {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        i += 1;
                        break;
                    }
                    b'"' => in_dquotes = true,
                    b'\'' => in_squotes = true,
                    c => current.push(c),
                }
            }
            i += 1;
        }
        args.push(current);
    }
}

/// `isspace` in the C locale, as sdssplitargs uses it between arguments.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::split_args;

    fn split(s: &str) -> Option<Vec<String>> {
        split_args(s.as_bytes()).map(|v| {
            v.into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect()
        })
    }

    /// Plain words, runs of spaces and tabs.
    #[test]
    fn words() {
        assert_eq!(split("set  a\tb").unwrap(), ["set", "a", "b"]);
        assert_eq!(split("   ").unwrap(), Vec::<String>::new());
    }

    /// Double quotes with escapes, single quotes, adjacent text inside one argument.
    #[test]
    fn quotes() {
        assert_eq!(split(r#"set "a b" 'c d'"#).unwrap(), ["set", "a b", "c d"]);
        assert_eq!(split(r#""\x41\n" 'it\'s'"#).unwrap(), ["A\n", "it's"]);
        assert_eq!(split(r#"ab"cd ef""#).unwrap(), ["abcd ef"]);
        assert_eq!(split(r#""""#).unwrap(), [""]);
    }

    /// Unbalanced quotes, and a closing quote glued to more text, are errors as in Valkey.
    #[test]
    fn unbalanced() {
        assert!(split(r#"set "a"#).is_none());
        assert!(split("set 'a").is_none());
        assert!(split(r#""a"b"#).is_none());
        assert!(split("'a'b").is_none());
    }
}
