//! Cluster routing on the client side: the hash slot of a key (CRC16-XMODEM of the key or of
//! its `{hash tag}`, modulo 16384), the slot map read from `CLUSTER SLOTS`, and the MOVED / ASK
//! redirects that correct it. Owns no sockets.

use crate::resp::Value;
use std::net::{SocketAddr, ToSocketAddrs};

pub const SLOTS: usize = 16384;

/// CRC16-XMODEM (polynomial 0x1021, initial value 0), as Redis Cluster uses.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of `key`: only the part inside the first non-empty `{…}` is hashed, if any.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16(hashed) & (SLOTS as u16 - 1)
}

/// Which primary serves each slot. Nodes are numbered in the order they were first seen.
#[derive(Clone, Debug)]
pub struct SlotMap {
    pub nodes: Vec<SocketAddr>,
    /// The node of each slot, or `NO_NODE`.
    pub owner: Vec<u16>,
}

pub const NO_NODE: u16 = u16::MAX;

impl SlotMap {
    /// A map where one node serves every slot (standalone mode).
    pub fn single(addr: SocketAddr) -> SlotMap {
        SlotMap {
            nodes: vec![addr],
            owner: vec![0; SLOTS],
        }
    }

    /// Parses a `CLUSTER SLOTS` reply: `[[start, end, [host, port, …], replicas…], …]`. An empty
    /// host means "the address you reached me on", which is `seed`.
    pub fn from_cluster_slots(reply: &Value, seed: SocketAddr) -> Result<SlotMap, String> {
        let Value::Array(ranges) = reply else {
            return Err(format!("CLUSTER SLOTS: expected an array, got {reply:?}"));
        };
        let mut map = SlotMap {
            nodes: Vec::new(),
            owner: vec![NO_NODE; SLOTS],
        };
        for range in ranges {
            let bad = || format!("CLUSTER SLOTS: malformed entry {range:?}");
            let Value::Array(fields) = range else {
                return Err(bad());
            };
            let (Some(start), Some(end), Some(Value::Array(primary))) = (
                fields.first().and_then(Value::as_int),
                fields.get(1).and_then(Value::as_int),
                fields.get(2),
            ) else {
                return Err(bad());
            };
            let host = primary.first().and_then(Value::as_text).ok_or_else(bad)?;
            let port = primary.get(1).and_then(Value::as_int).ok_or_else(bad)?;
            let addr = if host.is_empty() || host == "?" {
                SocketAddr::new(seed.ip(), port as u16)
            } else {
                resolve(&host, port as u16)?
            };
            if !(0..SLOTS as i64).contains(&start) || !(start..SLOTS as i64).contains(&end) {
                return Err(bad());
            }
            let node = map.node_index(addr);
            for slot in start..=end {
                map.owner[slot as usize] = node;
            }
        }
        if map.nodes.is_empty() {
            return Err("CLUSTER SLOTS: no slot is served (is the cluster set up?)".into());
        }
        Ok(map)
    }

    /// The index of `addr`, added if new.
    pub fn node_index(&mut self, addr: SocketAddr) -> u16 {
        match self.nodes.iter().position(|&a| a == addr) {
            Some(i) => i as u16,
            None => {
                self.nodes.push(addr);
                (self.nodes.len() - 1) as u16
            }
        }
    }

    /// Slots no node serves.
    pub fn unserved(&self) -> usize {
        self.owner.iter().filter(|&&o| o == NO_NODE).count()
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port} resolves to no address"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectKind {
    Moved,
    Ask,
}

/// A parsed `-MOVED <slot> <host>:<port>` or `-ASK <slot> <host>:<port>` error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub kind: RedirectKind,
    pub slot: u16,
    pub addr: SocketAddr,
}

/// Parses a redirect from an error reply's text (without the leading `-` and trailing CRLF).
/// An empty host (`:7000`) means the host of the node that sent it, `from`.
pub fn parse_redirect(error: &[u8], from: SocketAddr) -> Option<Redirect> {
    let text = std::str::from_utf8(error).ok()?;
    let mut words = text.split(' ');
    let kind = match words.next()? {
        "MOVED" => RedirectKind::Moved,
        "ASK" => RedirectKind::Ask,
        _ => return None,
    };
    let slot: u16 = words.next()?.parse().ok()?;
    let target = words.next()?;
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = if host.is_empty() {
        SocketAddr::new(from.ip(), port)
    } else {
        resolve(host, port).ok()?
    };
    (usize::from(slot) < SLOTS).then_some(Redirect { kind, slot, addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known slots from the Redis Cluster specification and `CLUSTER KEYSLOT`.
    #[test]
    fn slots_match_redis() {
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"memtier-1"), 3498);
    }

    #[test]
    fn redirects_parse() {
        let from: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert_eq!(
            parse_redirect(b"MOVED 3999 127.0.0.1:6381", from),
            Some(Redirect {
                kind: RedirectKind::Moved,
                slot: 3999,
                addr: "127.0.0.1:6381".parse().unwrap()
            })
        );
        assert_eq!(
            parse_redirect(b"ASK 1 :7001", from).map(|r| (r.kind, r.addr.port())),
            Some((RedirectKind::Ask, 7001))
        );
        assert_eq!(parse_redirect(b"ERR unknown command", from), None);
        assert_eq!(parse_redirect(b"MOVED 99999 127.0.0.1:1", from), None);
    }

    #[test]
    fn cluster_slots_reply_builds_a_map() {
        let node = |port| {
            Value::Array(vec![
                Value::Bulk(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::Bulk(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![Value::Int(0), Value::Int(8191), node(7000)]),
            Value::Array(vec![
                Value::Int(8192),
                Value::Int(16383),
                node(7001),
                node(7002),
            ]),
        ]);
        let map = SlotMap::from_cluster_slots(&reply, "127.0.0.1:1".parse().unwrap()).unwrap();
        assert_eq!(map.nodes.len(), 2);
        assert_eq!(map.owner[0], 0);
        assert_eq!(map.owner[16383], 1);
        assert_eq!(map.unserved(), 0);
    }
}
