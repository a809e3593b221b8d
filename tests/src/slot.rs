//! Hash slots as Valkey Cluster computes them (`CRC16-XMODEM(key or its {hash tag}) & 16383`),
//! and corekey's shard of a slot (`slot % shards`, DESIGN.md), so tests can choose keys that
//! live on given shards. Written here rather than imported: the tests use no server crate.

/// Number of hash slots.
pub const SLOTS: u16 = 16384;

/// CRC16-XMODEM (polynomial 0x1021, initial value 0), bit by bit: short and obviously right.
pub fn crc16_xmodem(bytes: &[u8]) -> u16 {
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

/// The part of a key that is hashed: the text between the first `{` and the next `}` when
/// that is not empty, else the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The hash slot of a key.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16_xmodem(hash_tag(key)) & (SLOTS - 1)
}

/// The shard (of `shards`) that owns a key.
pub fn key_shard(key: &[u8], shards: u16) -> u16 {
    key_slot(key) % shards
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRC matches the XMODEM check value and slots match what `CLUSTER KEYSLOT` answers
    /// in Valkey/Redis (values taken from redis-server 7.0 with cluster-enabled).
    #[test]
    fn known_slots() {
        assert_eq!(crc16_xmodem(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b"foo{hash_tag}"), 2515);
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"{}a"), crc16_xmodem(b"{}a") & 16383);
        assert_eq!(key_slot(b"a{}{b}"), crc16_xmodem(b"a{}{b}") & 16383);
        assert_eq!(key_slot(b"}{x}"), key_slot(b"x"));
    }
}
