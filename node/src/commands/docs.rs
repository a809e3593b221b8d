//! Command argument docs: a small syntax for a command's arguments, parsed into the tree that
//! COMMAND DOCS prints (Valkey's `arguments` schema), and that the table's consistency test
//! checks against arity and key specs.
//!
//! Syntax, close to the usage lines in Valkey's documentation:
//!
//! ```text
//! key:key value:string [NX|XX] [GET] [EX seconds:integer|PX milliseconds:integer|KEEPTTL]
//! (key:key value:string)...        a repeated block
//! [condition=NX|XX]                a named one-of
//! key:key@1                        a key argument of key spec 1
//! ```
//!
//! `name:type` is an argument (types: string integer double key pattern unix-time); an
//! upper-case word is a token, alone a pure token, or followed by `name:type` a token with a
//! value. `[...]` is optional, `(...)` groups, `|` separates alternatives, `...` repeats.
//!
//! A `{...}` word right after an argument annotates it with what COMMAND DOCS also reports:
//! `{since=6.2.0}` (the version that added it), `{display=ip:port}` (its display text when
//! not its name), `{deprecated=2.8.12}`; several are separated by commas:
//! `[GET{since=6.2.0}]`, `addr:string{display=ip:port,since=6.2.0}`.

/// One documented argument.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgDoc {
    pub name: String,
    pub kind: &'static str,
    pub token: Option<String>,
    pub key_spec_index: Option<usize>,
    pub optional: bool,
    pub multiple: bool,
    /// The version that added the argument, when later than the command.
    pub since: Option<String>,
    /// The version that deprecated the argument.
    pub deprecated_since: Option<String>,
    /// What COMMAND DOCS shows as `display_text`, when not the name.
    pub display: Option<String>,
    /// For `oneof` and `block`.
    pub args: Vec<ArgDoc>,
}

impl ArgDoc {
    /// Applies a `{key=value,...}` annotation word.
    fn annotate(&mut self, word: &str) -> Result<(), String> {
        let body = word
            .strip_prefix('{')
            .and_then(|w| w.strip_suffix('}'))
            .ok_or_else(|| format!("bad annotation '{word}'"))?;
        for item in body.split(',') {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("annotation '{item}' needs key=value"))?;
            let slot = match key {
                "since" => &mut self.since,
                "deprecated" => &mut self.deprecated_since,
                "display" => &mut self.display,
                _ => return Err(format!("unknown annotation '{key}'")),
            };
            *slot = Some(value.to_string());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open(char),
    Close(char),
    Pipe,
    Dots,
    Word(String),
}

fn lex(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Tok>| {
        if !word.is_empty() {
            if let Some(w) = word.strip_suffix("...") {
                if !w.is_empty() {
                    out.push(Tok::Word(w.to_string()));
                }
                out.push(Tok::Dots);
            } else {
                out.push(Tok::Word(word.clone()));
            }
            word.clear();
        }
    };
    let mut in_note = false;
    for c in s.chars() {
        if in_note {
            word.push(c);
            if c == '}' {
                in_note = false;
                flush(&mut word, &mut out);
            }
            continue;
        }
        match c {
            '{' => {
                // An annotation is a word of its own, even written right after its argument.
                flush(&mut word, &mut out);
                word.push(c);
                in_note = true;
            }
            '[' | '(' => {
                flush(&mut word, &mut out);
                out.push(Tok::Open(c));
            }
            ']' | ')' => {
                flush(&mut word, &mut out);
                out.push(Tok::Close(c));
            }
            '|' => {
                flush(&mut word, &mut out);
                out.push(Tok::Pipe);
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

const TYPES: &[&str] = &["string", "integer", "double", "key", "pattern", "unix-time"];

struct P {
    toks: Vec<Tok>,
    pos: usize,
    next_key: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn is_token_word(w: &str) -> bool {
        // `""`: MIGRATE's empty-string key selector.
        w == "\"\""
            || (!w.contains(':')
                && w.chars().any(|c| c.is_ascii_uppercase())
                && !w.chars().any(|c| c.is_ascii_lowercase()))
    }

    fn typed(&mut self, w: &str) -> Result<ArgDoc, String> {
        let (name, ty) = w
            .split_once(':')
            .ok_or_else(|| format!("argument '{w}' needs name:type"))?;
        let (ty, explicit_key) = match ty.split_once('@') {
            Some((t, n)) => (
                t,
                Some(
                    n.parse::<usize>()
                        .map_err(|_| format!("bad key spec index in '{w}'"))?,
                ),
            ),
            None => (ty, None),
        };
        let kind = TYPES
            .iter()
            .find(|t| **t == ty)
            .ok_or_else(|| format!("unknown type '{ty}' in '{w}'"))?;
        let key_spec_index = if *kind == "key" {
            let i = explicit_key.unwrap_or(self.next_key);
            self.next_key = self.next_key.max(i + 1);
            Some(i)
        } else {
            None
        };
        Ok(ArgDoc {
            name: name.into(),
            kind,
            key_spec_index,
            ..ArgDoc::default()
        })
    }

    fn item(&mut self) -> Result<Option<ArgDoc>, String> {
        let mut arg = match self.peek().cloned() {
            None | Some(Tok::Close(_)) | Some(Tok::Pipe) => return Ok(None),
            Some(Tok::Dots) => return Err("'...' with nothing before it".into()),
            Some(Tok::Open(c)) => {
                self.pos += 1;
                let close = if c == '[' { ']' } else { ')' };
                let mut name = None;
                if let Some(Tok::Word(w)) = self.peek().cloned() {
                    if let Some((n, rest)) = w.split_once('=') {
                        name = Some(n.to_string());
                        if rest.is_empty() {
                            self.pos += 1;
                        } else {
                            self.toks[self.pos] = Tok::Word(rest.to_string());
                        }
                    }
                }
                let alts = self.alts()?;
                match self.next() {
                    Some(Tok::Close(x)) if x == close => {}
                    _ => return Err(format!("expected '{close}'")),
                }
                let mut a = group(alts, name)?;
                if c == '[' {
                    a.optional = true;
                }
                a
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                if let Some(name) = w.strip_suffix('=') {
                    // `name=(...)` or `name=[...]`: a named group.
                    if !matches!(self.peek(), Some(Tok::Open(_))) {
                        return Err(format!("'{w}' must be followed by a group"));
                    }
                    let mut a = self.item()?.ok_or("empty group")?;
                    a.name = name.to_string();
                    return Ok(Some(a));
                }
                if Self::is_token_word(&w) {
                    let follows_group = match self.peek() {
                        Some(Tok::Open(_)) => true,
                        Some(Tok::Word(v)) => v.ends_with('='),
                        _ => false,
                    };
                    if follows_group {
                        // A token introducing a group: `TYPE (NORMAL|MASTER)`.
                        let mut a = self.item()?.ok_or("empty group")?;
                        a.token = Some(w.clone());
                        return Ok(Some(a));
                    }
                    let value = match self.peek() {
                        Some(Tok::Word(v)) if v.contains(':') && !v.starts_with('{') => {
                            let v = v.clone();
                            self.pos += 1;
                            Some(self.typed(&v)?)
                        }
                        _ => None,
                    };
                    match value {
                        Some(mut a) => {
                            a.token = Some(w.clone());
                            a
                        }
                        None => ArgDoc {
                            name: if w == "\"\"" {
                                "empty-string".into()
                            } else {
                                w.to_ascii_lowercase()
                            },
                            kind: "pure-token",
                            token: Some(w.clone()),
                            ..ArgDoc::default()
                        },
                    }
                } else {
                    self.typed(&w)?
                }
            }
        };
        if self.peek() == Some(&Tok::Dots) {
            self.pos += 1;
            arg.multiple = true;
        }
        while let Some(Tok::Word(w)) = self.peek().cloned() {
            if !w.starts_with('{') {
                break;
            }
            self.pos += 1;
            arg.annotate(&w)?;
        }
        Ok(Some(arg))
    }

    fn seq(&mut self) -> Result<Vec<ArgDoc>, String> {
        let mut v = Vec::new();
        while let Some(a) = self.item()? {
            v.push(a);
        }
        Ok(v)
    }

    fn alts(&mut self) -> Result<Vec<Vec<ArgDoc>>, String> {
        let mut alts = vec![self.seq()?];
        while self.peek() == Some(&Tok::Pipe) {
            self.pos += 1;
            alts.push(self.seq()?);
        }
        Ok(alts)
    }
}

/// Turns the alternatives inside brackets into one argument.
fn group(alts: Vec<Vec<ArgDoc>>, name: Option<String>) -> Result<ArgDoc, String> {
    let block = |items: Vec<ArgDoc>, name: Option<String>| -> Result<ArgDoc, String> {
        match items.len() {
            0 => Err("empty group".into()),
            1 => {
                let mut a = items.into_iter().next().ok_or("empty group")?;
                if let Some(n) = name {
                    a.name = n;
                }
                Ok(a)
            }
            _ => Ok(ArgDoc {
                name: name.unwrap_or_else(|| {
                    items
                        .iter()
                        .map(|a| a.name.clone())
                        .collect::<Vec<_>>()
                        .join("-")
                }),
                kind: "block",
                args: items,
                ..ArgDoc::default()
            }),
        }
    };
    if alts.len() == 1 {
        let only = alts.into_iter().next().ok_or("empty group")?;
        return block(only, name);
    }
    let args = alts
        .into_iter()
        .map(|a| block(a, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ArgDoc {
        name: name.unwrap_or_else(|| {
            args.iter()
                .map(|a| a.name.clone())
                .collect::<Vec<_>>()
                .join("-")
        }),
        kind: "oneof",
        args,
        ..ArgDoc::default()
    })
}

/// Parses a syntax string into its argument list.
pub fn parse(syntax: &str) -> Result<Vec<ArgDoc>, String> {
    let mut p = P {
        toks: lex(syntax),
        pos: 0,
        next_key: 0,
    };
    let v = p.seq()?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected {:?}", p.toks[p.pos]));
    }
    Ok(v)
}

impl ArgDoc {
    /// Fewest words this argument takes on the command line, and whether it can take more.
    pub fn min_words(&self) -> (usize, bool) {
        let variadic = self.optional || self.multiple;
        // A group introduced by a token (`AUTH username password`) takes that word too.
        let token = usize::from(self.token.is_some());
        let own = match self.kind {
            "oneof" => {
                let mins: Vec<(usize, bool)> = self.args.iter().map(ArgDoc::min_words).collect();
                let min = mins.iter().map(|m| m.0).min().unwrap_or(0);
                let max_differs = mins.iter().any(|m| m.0 != min || m.1);
                (min + token, max_differs)
            }
            "block" => {
                let parts: Vec<(usize, bool)> = self.args.iter().map(ArgDoc::min_words).collect();
                (
                    parts.iter().map(|m| m.0).sum::<usize>() + token,
                    parts.iter().any(|m| m.1),
                )
            }
            "pure-token" => (1, false),
            _ => (1 + usize::from(self.token.is_some()), false),
        };
        if self.optional {
            (0, true)
        } else {
            (own.0, own.1 || variadic)
        }
    }

    /// Every key argument in this subtree.
    pub fn key_indexes(&self, out: &mut Vec<usize>) {
        if let Some(i) = self.key_spec_index {
            out.push(i);
        }
        for a in &self.args {
            a.key_indexes(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SET's usage line parses into Valkey's shape: key, value, two one-ofs and a pure token.
    #[test]
    fn set_syntax() {
        let a = parse("key:key value:string [condition=NX|XX] [GET] [expiration=EX seconds:integer|PX milliseconds:integer|KEEPTTL]").unwrap();
        assert_eq!(a.len(), 5);
        assert_eq!(a[0].key_spec_index, Some(0));
        assert_eq!(a[2].kind, "oneof");
        assert_eq!(a[2].name, "condition");
        assert!(a[2].optional);
        assert_eq!(a[2].args[0].kind, "pure-token");
        assert_eq!(a[3].name, "get");
        assert_eq!(a[4].args[0].token.as_deref(), Some("EX"));
        assert_eq!(a[4].args[0].name, "seconds");
        let words: Vec<(usize, bool)> = a.iter().map(ArgDoc::min_words).collect();
        assert_eq!(
            words,
            [(1, false), (1, false), (0, true), (0, true), (0, true)]
        );
    }

    /// `{...}` annotations give an argument its `since`, `deprecated_since` and display text,
    /// written after a typed word, a pure token, a closing bracket or `...`; and a token may
    /// introduce a named block (`AUTH auth=(...)`), which then counts the token's word.
    #[test]
    fn annotations() {
        let a = parse("[GET]{since=6.2.0} [EX seconds:integer{since=2.6.12}] a:string{display=ip:port,deprecated=2.8.12} [ID id:integer...]{since=6.2.0}").unwrap();
        assert_eq!(
            (a[0].name.as_str(), a[0].since.as_deref()),
            ("get", Some("6.2.0"))
        );
        assert!(a[0].optional);
        assert_eq!(
            (a[1].token.as_deref(), a[1].since.as_deref()),
            (Some("EX"), Some("2.6.12"))
        );
        assert_eq!(a[2].display.as_deref(), Some("ip:port"));
        assert_eq!(a[2].deprecated_since.as_deref(), Some("2.8.12"));
        assert!(a[3].multiple && a[3].optional);
        assert_eq!(a[3].since.as_deref(), Some("6.2.0"));
        let a = parse("[AUTH auth=(username:string password:string)]").unwrap();
        assert_eq!(
            (a[0].name.as_str(), a[0].kind, a[0].token.as_deref()),
            ("auth", "block", Some("AUTH"))
        );
        let a = parse("AUTH auth=(username:string password:string)").unwrap();
        assert_eq!(a[0].min_words(), (3, false));
        assert!(parse("x:string{nosuch=1}").is_err());
        assert!(parse("x:string{since}").is_err());
    }

    /// Repeated blocks and explicit key spec indexes.
    #[test]
    fn blocks_and_keys() {
        let a = parse("(key:key value:string)...").unwrap();
        assert_eq!(a[0].kind, "block");
        assert!(a[0].multiple);
        assert_eq!(a[0].min_words(), (2, true));
        let a = parse("data=(key:key value:string)...").unwrap();
        assert_eq!(a[0].name, "data");
        assert!(a[0].multiple);
        let a = parse("[TYPE client-type=(NORMAL|MASTER)]").unwrap();
        assert_eq!(
            (a[0].name.as_str(), a[0].kind, a[0].token.as_deref()),
            ("client-type", "oneof", Some("TYPE"))
        );
        assert!(a[0].optional);
        let a =
            parse("source:key destination:key@1 [DB destination-db:integer] [REPLACE]").unwrap();
        assert_eq!(a[1].key_spec_index, Some(1));
        assert!(parse("[NX").is_err());
        assert!(parse("key:nosuch").is_err());
    }
}
