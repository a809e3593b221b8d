//! Set family tests: each command run against a keyspace directly, replies compared with the
//! bytes Valkey 8 sends.
