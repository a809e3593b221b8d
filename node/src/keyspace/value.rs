//! Values and their encodings. Strings live here; each collection type has its own module
//! (`hash.rs`, `list.rs`, `set.rs`, `zset.rs`) with its compact and large encodings.

use super::bytes::SmallBytes;
use super::hash::HashVal;
use super::list::ListVal;
use super::set::SetVal;
use super::zset::ZSetVal;
use crate::util::parse_i64;
use std::borrow::Cow;

/// Longest string kept as "embstr" (Valkey's OBJ_ENCODING_EMBSTR_SIZE_LIMIT).
pub const EMBSTR_MAX: usize = 44;

/// A string value, in the encoding Valkey would have chosen for it (OBJECT ENCODING tells).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrVal {
    /// A canonical decimal integer ("int").
    Int(i64),
    /// Created whole and short ("embstr").
    Emb(SmallBytes),
    /// Long, or changed in place by APPEND/SETRANGE ("raw").
    Raw(Vec<u8>),
}

impl StrVal {
    /// The encoding Valkey's `tryObjectEncoding` picks for a value received from a client.
    pub fn from_arg(b: &[u8]) -> StrVal {
        if b.len() <= 20 {
            if let Some(n) = parse_i64(b) {
                return StrVal::Int(n);
            }
        }
        StrVal::created(b)
    }

    /// The encoding of a string the server builds itself (`createStringObject`): never "int".
    pub fn created(b: &[u8]) -> StrVal {
        if b.len() <= EMBSTR_MAX {
            StrVal::Emb(SmallBytes::new(b))
        } else {
            StrVal::Raw(b.to_vec())
        }
    }

    /// The string's bytes.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            StrVal::Int(n) => Cow::Owned(crate::util::i64_text(*n)),
            StrVal::Emb(b) => Cow::Borrowed(b),
            StrVal::Raw(v) => Cow::Borrowed(v),
        }
    }

    /// Length in bytes of the string.
    pub fn len(&self) -> usize {
        match self {
            StrVal::Int(n) => itoa::Buffer::new().format(*n).len(),
            StrVal::Emb(b) => b.len(),
            StrVal::Raw(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value as an integer, if it is one (Valkey's `getLongLongFromObject`).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            StrVal::Int(n) => Some(*n),
            StrVal::Emb(b) => parse_i64(b),
            StrVal::Raw(v) => parse_i64(v),
        }
    }

    /// Turns the value into "raw" and hands out its buffer for changes in place.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, StrVal::Raw(_)) {
            *self = StrVal::Raw(self.bytes().into_owned());
        }
        match self {
            StrVal::Raw(v) => v,
            _ => unreachable!("just made raw"),
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            StrVal::Int(_) => "int",
            StrVal::Emb(_) => "embstr",
            StrVal::Raw(_) => "raw",
        }
    }

    /// Heap bytes owned by the value (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        match self {
            StrVal::Int(_) => 0,
            StrVal::Emb(b) => b.heap_bytes(),
            StrVal::Raw(v) => v.capacity(),
        }
    }
}

/// A value of any type. Collections are boxed so that a string entry stays small.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(StrVal),
    Hash(Box<HashVal>),
    List(Box<ListVal>),
    Set(Box<SetVal>),
    ZSet(Box<ZSetVal>),
}

impl Value {
    /// The TYPE name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// The OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::Hash(h) => h.encoding(),
            Value::List(l) => l.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
        }
    }

    pub fn as_str(&self) -> Option<&StrVal> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str_mut(&mut self) -> Option<&mut StrVal> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Heap bytes owned by the value beyond its entry (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_bytes(),
            Value::Hash(h) => std::mem::size_of::<HashVal>() + h.heap_bytes(),
            Value::List(l) => std::mem::size_of::<ListVal>() + l.heap_bytes(),
            Value::Set(s) => std::mem::size_of::<SetVal>() + s.heap_bytes(),
            Value::ZSet(z) => std::mem::size_of::<ZSetVal>() + z.heap_bytes(),
        }
    }

    /// Number of elements (1 for a string), for memory-per-element statistics.
    pub fn element_count(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::Hash(h) => h.len(),
            Value::List(l) => l.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodings follow Valkey's tryObjectEncoding: int, then embstr up to 44 bytes, then raw.
    #[test]
    fn encodings() {
        assert_eq!(StrVal::from_arg(b"123").encoding(), "int");
        assert_eq!(StrVal::from_arg(b"-9223372036854775808").encoding(), "int");
        assert_eq!(StrVal::from_arg(b"0123").encoding(), "embstr");
        assert_eq!(
            StrVal::from_arg(b"9223372036854775808").encoding(),
            "embstr"
        );
        assert_eq!(StrVal::from_arg(&[b'a'; 44]).encoding(), "embstr");
        assert_eq!(StrVal::from_arg(&[b'a'; 45]).encoding(), "raw");
        assert_eq!(StrVal::created(b"12").encoding(), "embstr");
        let mut v = StrVal::from_arg(b"12");
        v.make_raw().push(b'3');
        assert_eq!(v, StrVal::Raw(b"123".to_vec()));
    }
}
