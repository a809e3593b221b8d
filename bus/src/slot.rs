//! Hash slots: the 16384 buckets of the Redis Cluster model and the key → slot function.
//!
//! `slot = CRC16-XMODEM(k) & 16383`, where `k` is the whole key, or only the part between the
//! first `{` and the next `}` when that part is non-empty (a "hash tag"), exactly as Valkey's
//! `keyHashSlot`.

/// Number of hash slots in a cluster.
pub const SLOT_COUNT: u16 = 16384;

const _: () = assert!(SLOT_COUNT.is_power_of_two());

/// One hash slot, `0..SLOT_COUNT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(u16);

impl Slot {
    /// The slot with this number; `None` when it is not below [`SLOT_COUNT`].
    pub fn new(n: u16) -> Option<Slot> {
        (n < SLOT_COUNT).then_some(Slot(n))
    }

    /// The slot number.
    pub fn get(self) -> u16 {
        self.0
    }

    /// Every slot, in order.
    pub fn all() -> impl Iterator<Item = Slot> {
        (0..SLOT_COUNT).map(Slot)
    }
}

/// The bytes of `key` that are hashed: the hash tag when there is a non-empty one, else the key.
pub fn key_hash_slice(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        let rest = &key[open + 1..];
        if let Some(close) = rest.iter().position(|&b| b == b'}') {
            if close > 0 {
                return &rest[..close];
            }
        }
    }
    key
}

/// The hash slot of `key`.
pub fn key_slot(key: &[u8]) -> Slot {
    let crc = crc16::State::<crc16::XMODEM>::calculate(key_hash_slice(key));
    Slot(crc & (SLOT_COUNT - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRC16 variant is XMODEM: the check value of "123456789" is 0x31C3 (Redis cluster spec).
    #[test]
    fn crc16_is_xmodem() {
        assert_eq!(
            crc16::State::<crc16::XMODEM>::calculate(b"123456789"),
            0x31C3
        );
    }

    /// Slots of known keys, as `CLUSTER KEYSLOT` answers on Valkey.
    #[test]
    fn known_key_slots() {
        assert_eq!(key_slot(b"foo").get(), 12182);
        assert_eq!(key_slot(b"bar").get(), 5061);
        assert_eq!(key_slot(b"hello").get(), 866);
        assert_eq!(key_slot(b"").get(), 0);
    }

    /// Hash tags: only the first `{...}` counts, and an empty tag means the whole key is hashed.
    #[test]
    fn hash_tags() {
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"{user1000}.followers"), key_slot(b"user1000"));
        assert_eq!(key_hash_slice(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(key_hash_slice(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(key_hash_slice(b"foo{bar}{zap}"), b"bar");
        assert_eq!(key_hash_slice(b"{"), b"{");
        assert_eq!(key_hash_slice(b"a}b{"), b"a}b{");
    }

    /// Every slot number below the count is valid and none above.
    #[test]
    fn slot_bounds() {
        assert!(Slot::new(16383).is_some());
        assert!(Slot::new(16384).is_none());
        assert_eq!(Slot::all().count(), 16384);
    }
}
