//! The persisted cluster configuration and its text form, `nodes.conf`.
//!
//! The state machine hands out a [`PersistedConfig`] whenever it emits
//! [`crate::cluster::Action::Persist`]; the driver renders it with [`PersistedConfig::render`],
//! writes it to a temporary file, fsyncs, and renames it over `nodes.conf`. At start the driver
//! parses the file back and gives it to [`crate::cluster::ClusterState::restore`].
//!
//! The text is Valkey's `nodes.conf` line format, one node per line —
//! `id ip:port@busport,hostname,shard-id=… flags primary ping_sent pong_recv config_epoch
//! link_state slots… [slot->-id]… [slot-<-id]…` — and a last `vars currentEpoch N lastVoteEpoch M`
//! line, so an operator reads it as they read Valkey's. The parser accepts what the renderer
//! writes plus unknown `name=value` address fields. This module owns no I/O; the file is the
//! driver's. The parser reads a file a person may have edited, so it follows the decoder rules:
//! no unwrap, no indexing, no unchecked arithmetic.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::fmt::{self, Write as _};

use crate::slot::{Slot, SLOT_COUNT};
use crate::topology::{NodeFlags, NodeId, ShardId, SlotBitmap};
use crate::wire::{valid_hostname_byte, valid_ip_byte, MAX_HOSTNAME_LEN, MAX_IP_LEN};

/// Longest `nodes.conf` the parser accepts (a full 1000-node table is far below it).
pub const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

/// One node line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedNode {
    /// Node id.
    pub id: NodeId,
    /// IP text, may be empty.
    pub ip: String,
    /// Client port.
    pub port: u16,
    /// Bus port.
    pub bus_port: u16,
    /// Hostname, may be empty.
    pub hostname: String,
    /// Replica set id.
    pub shard_id: ShardId,
    /// Flags (MYSELF marks the local node).
    pub flags: NodeFlags,
    /// For a replica, its primary.
    pub primary: Option<NodeId>,
    /// Informational: last unanswered ping (ms).
    pub ping_sent_ms: u64,
    /// Informational: last pong (ms).
    pub pong_received_ms: u64,
    /// The node's configEpoch.
    pub config_epoch: u64,
    /// Informational: whether the link was up.
    pub connected: bool,
    /// Slots it owns.
    pub slots: SlotBitmap,
}

/// Everything a node must remember across a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedConfig {
    /// The cluster's currentEpoch as this node knew it.
    pub current_epoch: u64,
    /// The last epoch this node voted in; it never votes in that epoch or an older one again.
    pub last_vote_epoch: u64,
    /// Every known node, the local one flagged MYSELF.
    pub nodes: Vec<PersistedNode>,
    /// Slots the local node is migrating, and where to.
    pub migrating: Vec<(Slot, NodeId)>,
    /// Slots the local node is importing, and from where.
    pub importing: Vec<(Slot, NodeId)>,
}

/// Why a `nodes.conf` text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line number (0 for the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub what: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nodes.conf line {}: {}", self.line, self.what)
    }
}

impl std::error::Error for ConfigError {}

impl PersistedConfig {
    /// The local node's line.
    pub fn myself(&self) -> Option<&PersistedNode> {
        self.nodes
            .iter()
            .find(|n| n.flags.contains(NodeFlags::MYSELF))
    }

    /// The `nodes.conf` text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            render_node_line(&mut out, n);
            if n.flags.contains(NodeFlags::MYSELF) {
                for (slot, id) in &self.migrating {
                    let _ = write!(out, " [{}->-{}]", slot.get(), id);
                }
                for (slot, id) in &self.importing {
                    let _ = write!(out, " [{}-<-{}]", slot.get(), id);
                }
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "vars currentEpoch {} lastVoteEpoch {}",
            self.current_epoch, self.last_vote_epoch
        );
        out
    }

    /// Parses `nodes.conf` text: exactly one MYSELF line, no duplicate ids, valid ids, addresses
    /// and slots, and a `vars` line.
    pub fn parse(text: &str) -> Result<PersistedConfig, ConfigError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError {
                line: 0,
                what: "file too large",
            });
        }
        let mut config = PersistedConfig {
            current_epoch: 0,
            last_vote_epoch: 0,
            nodes: Vec::new(),
            migrating: Vec::new(),
            importing: Vec::new(),
        };
        let mut saw_vars = false;
        for (index, line) in text.lines().enumerate() {
            let line_no = index.saturating_add(1);
            let err = |what| ConfigError {
                line: line_no,
                what,
            };
            let mut fields = line.split(' ').filter(|f| !f.is_empty());
            let Some(first) = fields.next() else {
                continue;
            };
            if first == "vars" {
                let rest: Vec<&str> = fields.collect();
                for pair in rest.chunks(2) {
                    let (Some(name), Some(value)) = (pair.first(), pair.get(1)) else {
                        return Err(err("vars without value"));
                    };
                    let value: u64 = value.parse().map_err(|_| err("bad vars number"))?;
                    match *name {
                        "currentEpoch" => config.current_epoch = value,
                        "lastVoteEpoch" => config.last_vote_epoch = value,
                        _ => {} // unknown vars are skipped, as Valkey does
                    }
                }
                saw_vars = true;
                continue;
            }
            let node = parse_node_line(first, &mut fields, &mut config, line_no)?;
            if config.nodes.iter().any(|n| n.id == node.id) {
                return Err(err("duplicate node id"));
            }
            config.nodes.push(node);
        }
        let myselves = config
            .nodes
            .iter()
            .filter(|n| n.flags.contains(NodeFlags::MYSELF))
            .count();
        if myselves != 1 {
            return Err(ConfigError {
                line: 0,
                what: "there must be exactly one myself line",
            });
        }
        if !saw_vars {
            return Err(ConfigError {
                line: 0,
                what: "missing vars line",
            });
        }
        Ok(config)
    }
}

/// Appends one node line (no newline, no migrating/importing markers) in Valkey's format. The
/// driver may reuse it for `CLUSTER NODES`.
pub fn render_node_line(out: &mut String, n: &PersistedNode) {
    let _ = write!(
        out,
        "{} {}:{}@{},{},shard-id={} {} {} {} {} {} {}",
        n.id,
        n.ip,
        n.port,
        n.bus_port,
        n.hostname,
        n.shard_id,
        n.flags.names(),
        n.primary.map_or_else(|| "-".to_string(), |p| p.to_hex()),
        n.ping_sent_ms,
        n.pong_received_ms,
        n.config_epoch,
        if n.connected {
            "connected"
        } else {
            "disconnected"
        },
    );
    for (a, b) in n.slots.ranges() {
        if a == b {
            let _ = write!(out, " {a}");
        } else {
            let _ = write!(out, " {a}-{b}");
        }
    }
}

fn parse_node_line<'a>(
    id_text: &str,
    fields: &mut impl Iterator<Item = &'a str>,
    config: &mut PersistedConfig,
    line_no: usize,
) -> Result<PersistedNode, ConfigError> {
    let err = |what| ConfigError {
        line: line_no,
        what,
    };
    let id = NodeId::parse_hex(id_text.as_bytes()).ok_or(err("bad node id"))?;
    let address = fields.next().ok_or(err("missing address"))?;
    let flags_text = fields.next().ok_or(err("missing flags"))?;
    let primary_text = fields.next().ok_or(err("missing primary"))?;
    let ping_sent_ms = parse_num(fields.next(), line_no)?;
    let pong_received_ms = parse_num(fields.next(), line_no)?;
    let config_epoch = parse_num(fields.next(), line_no)?;
    let connected = match fields.next() {
        Some("connected") => true,
        Some("disconnected") => false,
        _ => return Err(err("bad link state")),
    };

    // ip:port@busport[,hostname[,name=value…]]
    let mut parts = address.split(',');
    let endpoint = parts.next().ok_or(err("missing address"))?;
    let hostname = parts.next().unwrap_or("").to_string();
    if hostname.len() > MAX_HOSTNAME_LEN || !hostname.bytes().all(valid_hostname_byte) {
        return Err(err("bad hostname"));
    }
    let mut shard_id = None;
    for aux in parts {
        if let Some(value) = aux.strip_prefix("shard-id=") {
            shard_id = Some(ShardId::parse_hex(value.as_bytes()).ok_or(err("bad shard id"))?);
        }
    }
    let (ip_port, bus_port) = endpoint.rsplit_once('@').ok_or(err("missing bus port"))?;
    let (ip, port) = ip_port.rsplit_once(':').ok_or(err("missing port"))?;
    if ip.len() > MAX_IP_LEN || !ip.bytes().all(valid_ip_byte) {
        return Err(err("bad ip"));
    }
    let port: u16 = port.parse().map_err(|_| err("bad port"))?;
    let bus_port: u16 = bus_port.parse().map_err(|_| err("bad bus port"))?;

    let flags = NodeFlags::parse_names(flags_text).ok_or(err("bad flags"))?;
    let primary = match primary_text {
        "-" => None,
        text => Some(NodeId::parse_hex(text.as_bytes()).ok_or(err("bad primary id"))?),
    };

    let mut slots = SlotBitmap::new();
    for field in fields {
        if let Some(inner) = field.strip_prefix('[').and_then(|f| f.strip_suffix(']')) {
            let (slot_text, arrow_id, migrating) = if let Some((s, rest)) = inner.split_once("->-")
            {
                (s, rest, true)
            } else if let Some((s, rest)) = inner.split_once("-<-") {
                (s, rest, false)
            } else {
                return Err(err("bad migration marker"));
            };
            let slot = parse_slot(slot_text, line_no)?;
            let other = NodeId::parse_hex(arrow_id.as_bytes()).ok_or(err("bad node id"))?;
            if migrating {
                config.migrating.push((slot, other));
            } else {
                config.importing.push((slot, other));
            }
            continue;
        }
        let (first, last) = match field.split_once('-') {
            Some((a, b)) => (parse_slot(a, line_no)?, parse_slot(b, line_no)?),
            None => {
                let s = parse_slot(field, line_no)?;
                (s, s)
            }
        };
        if first > last {
            return Err(err("bad slot range"));
        }
        for n in first.get()..=last.get() {
            if let Some(slot) = Slot::new(n) {
                slots.insert(slot);
            }
        }
    }
    Ok(PersistedNode {
        id,
        ip: ip.to_string(),
        port,
        bus_port,
        hostname,
        // Files from before shard ids get one derived from the node (a replica learns its
        // primary's at the first pong).
        shard_id: shard_id.unwrap_or(ShardId::from_bytes(*id.as_bytes())),
        flags,
        primary,
        ping_sent_ms,
        pong_received_ms,
        config_epoch,
        connected,
        slots,
    })
}

fn parse_num(field: Option<&str>, line_no: usize) -> Result<u64, ConfigError> {
    field.and_then(|f| f.parse().ok()).ok_or(ConfigError {
        line: line_no,
        what: "bad number",
    })
}

fn parse_slot(text: &str, line_no: usize) -> Result<Slot, ConfigError> {
    text.parse::<u16>()
        .ok()
        .filter(|n| *n < SLOT_COUNT)
        .and_then(Slot::new)
        .ok_or(ConfigError {
            line: line_no,
            what: "bad slot",
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn sample() -> PersistedConfig {
        let mut rng = Rng::new(5);
        let a = NodeId::random(&mut rng);
        let b = NodeId::random(&mut rng);
        let shard = ShardId::random(&mut rng);
        let mut slots = SlotBitmap::new();
        for n in (0..5461).chain([9000, 9002]) {
            slots.insert(Slot::new(n).unwrap());
        }
        PersistedConfig {
            current_epoch: 7,
            last_vote_epoch: 6,
            nodes: vec![
                PersistedNode {
                    id: a,
                    ip: "127.0.0.1".into(),
                    port: 7000,
                    bus_port: 17000,
                    hostname: String::new(),
                    shard_id: shard,
                    flags: NodeFlags::MYSELF.union(NodeFlags::PRIMARY),
                    primary: None,
                    ping_sent_ms: 0,
                    pong_received_ms: 0,
                    config_epoch: 3,
                    connected: true,
                    slots,
                },
                PersistedNode {
                    id: b,
                    ip: "127.0.0.2".into(),
                    port: 7001,
                    bus_port: 17001,
                    hostname: "replica.local".into(),
                    shard_id: shard,
                    flags: NodeFlags::REPLICA.union(NodeFlags::FAIL),
                    primary: Some(a),
                    ping_sent_ms: 10,
                    pong_received_ms: 20,
                    config_epoch: 3,
                    connected: false,
                    slots: SlotBitmap::new(),
                },
            ],
            migrating: vec![(Slot::new(100).unwrap(), b)],
            importing: vec![(Slot::new(9001).unwrap(), b)],
        }
    }

    /// A rendered config parses back to the same value.
    #[test]
    fn round_trip() {
        let config = sample();
        let text = config.render();
        assert_eq!(PersistedConfig::parse(&text).unwrap(), config);
    }

    /// The text has Valkey's shape: address with an empty hostname field and the shard id, flags,
    /// slot runs, migration markers on the myself line, and the vars line.
    #[test]
    fn valkey_line_shape() {
        let text = sample().render();
        let lines: Vec<&str> = text.lines().collect();
        let me = lines[0];
        assert!(me.contains(" 127.0.0.1:7000@17000,,shard-id="));
        assert!(me.contains(" myself,master - 0 0 3 connected 0-5460 9000 9002 [100->-"));
        assert!(me.ends_with(&format!("[9001-<-{}]", sample().nodes[1].id)));
        assert!(lines[1].contains("@17001,replica.local,shard-id="));
        assert!(lines[1].contains(" slave,fail "));
        assert_eq!(lines[2], "vars currentEpoch 7 lastVoteEpoch 6");
    }

    /// Broken files are refused with a line number: no myself, two myselves, bad slots, bad ids.
    #[test]
    fn refuses_broken_files() {
        let text = sample().render();
        let no_vars: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        assert!(PersistedConfig::parse(&no_vars).is_err());
        let two_me = text.replace("slave,fail", "myself,slave");
        assert!(PersistedConfig::parse(&two_me).is_err());
        let bad_slot = text.replace("9002", "16384");
        assert_eq!(PersistedConfig::parse(&bad_slot).unwrap_err().line, 1);
        let bad_id = text.replacen(&sample().nodes[0].id.to_hex()[..4], "XYZW", 1);
        assert!(PersistedConfig::parse(&bad_id).is_err());
        assert!(PersistedConfig::parse("").is_err());
    }

    /// Arbitrary edits to a valid file never panic the parser.
    #[test]
    fn mangled_files_never_panic() {
        let text = sample().render();
        let mut rng = Rng::new(11);
        for _ in 0..2000 {
            let mut bytes = text.clone().into_bytes();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(bytes.len() as u64) as usize;
                bytes[i] = b" -,:@[]<>0123456789abcdefx\n"[rng.below(27) as usize];
            }
            if let Ok(s) = String::from_utf8(bytes) {
                let _ = PersistedConfig::parse(&s);
            }
        }
    }
}
