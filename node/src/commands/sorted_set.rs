//! The sorted set family (being written).

use super::spec::CommandSpec;

pub static COMMANDS: &[CommandSpec] = &[];
