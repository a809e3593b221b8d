//! RESP, the Valkey/Redis wire protocol: the request parser and the reply writer.
//!
//! This module owns the bytes-level protocol only. It knows nothing about sockets (that is
//! `net`), commands (that is `commands`) or shards. The parser never panics and never allocates
//! from a length it has not checked against a limit; the writer shapes each reply for RESP2 or
//! RESP3.

pub mod parse;
pub mod reply;
pub mod split;

pub use parse::{Arg, Parser, ProtoError, ProtoLimits};
pub use reply::Out;
