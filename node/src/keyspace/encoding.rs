//! The thresholds at which small collections leave their compact encodings, as Valkey's
//! `*-max-listpack-*` and `set-max-intset-entries` directives set them. The keyspace gets a
//! copy from the configuration; commands pass it to the collection types.

/// Encoding limits (Valkey's defaults in [`Limits::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub set_max_listpack_entries: usize,
    pub set_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    /// Positive: most entries per list node; negative: -1..-5 for 4, 8, 16, 32, 64 KiB.
    pub list_max_listpack_size: i64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
        }
    }
}
