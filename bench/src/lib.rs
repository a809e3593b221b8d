//! corekey-bench: a memtier_benchmark-style load generator (`run`) and a side-by-side
//! comparison of corekey with reference servers (`compare`). It owns load generation, the
//! measurement of server processes through /proc, and the reports. It talks to servers over
//! sockets only and never links the server's crates (DESIGN.md, dependency rule); it never
//! asserts on speed — it measures and reports.
//!
//! - [`resp`]: RESP request encoding, a reply scanner, a small blocking client.
//! - [`keys`]: memtier's key patterns (R, S, G, P) and SET:GET ratio.
//! - [`slots`]: hash slots, the cluster slot map, MOVED and ASK.
//! - [`load`]: the load generator's worker threads (one readiness loop each).
//! - [`stats`]: the summary table and memtier-layout JSON of one run.
//! - [`run`]: the `run` command.
//! - [`procfs`]: CPU time, RSS and CPU pinning of processes; the machine's description.
//! - [`servers`]: starting and stopping the servers under test.
//! - [`driver`]: one run of the built-in generator or of memtier_benchmark, as a child process.
//! - [`compare`]: the `compare` command.
//! - [`report`]: the comparison as Markdown and as an SVG chart.

pub mod compare;
pub mod driver;
pub mod keys;
pub mod load;
pub mod procfs;
pub mod report;
pub mod resp;
pub mod run;
pub mod servers;
pub mod slots;
pub mod stats;
