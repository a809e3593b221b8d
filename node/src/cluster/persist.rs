//! `nodes.conf` on disk: read at start-up, replaced atomically after every change.
//!
//! A write goes to a temporary file in the same directory, is fsynced, renamed over the real
//! file, and the directory is fsynced, so that after a crash the file is either the old or the
//! new text, never a mix, and the rename itself survives. The state machine's rule (nothing
//! after a `Persist` happens before the data is durable) rests on this.
//!
//! The file is guarded by an exclusive `flock` on a sidecar `<file>.lock`, held for the life of
//! the process, so that two nodes started in the same directory with the same file do not
//! overwrite each other (Valkey locks the file itself; a lock on the file would be lost at the
//! first rename).
//!
//! The writes are plain blocking system calls on shard 0: they happen only when the cluster
//! configuration changes (Valkey does the same on its main thread).
//!
//! The two fsyncs are skipped when the caller says the change need not survive a power loss
//! (see `driver.rs`: only epochs, votes and roles must); the temporary file and the rename
//! still keep the file whole for any process crash.

use corekey_bus::config::{PersistedConfig, MAX_CONFIG_BYTES};
use std::fs::File;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The open, locked `nodes.conf`.
pub struct ConfFile {
    path: PathBuf,
    _lock: File,
}

impl ConfFile {
    /// Locks `path` for this process and reads it: `None` when it does not exist or is empty
    /// (a new node), an error when it cannot be read or parsed.
    pub fn open(path: impl AsRef<Path>) -> Result<(ConfFile, Option<PersistedConfig>), String> {
        let path = path.as_ref().to_path_buf();
        let lock_path = {
            let mut name = path.as_os_str().to_owned();
            name.push(".lock");
            PathBuf::from(name)
        };
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("Can't open {}: {e}", lock_path.display()))?;
        // SAFETY: flock on a descriptor we own; LOCK_NB returns at once.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!(
                "Sorry, the cluster configuration file {} is already used by a different Cluster node. Please make sure that different nodes use different cluster configuration files.",
                path.display()
            ));
        }
        let conf = ConfFile { path, _lock: lock };
        let text = match std::fs::read(&conf.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((conf, None)),
            Err(e) => {
                return Err(format!(
                    "Can't read the cluster config file {}: {e}",
                    conf.path.display()
                ))
            }
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok((conf, None));
        }
        if text.len() > MAX_CONFIG_BYTES {
            return Err(format!(
                "The cluster config file {} is larger than {MAX_CONFIG_BYTES} bytes",
                conf.path.display()
            ));
        }
        let text = String::from_utf8(text).map_err(|_| {
            format!(
                "Unrecoverable error: corrupted cluster config file \"{}\": not text",
                conf.path.display()
            )
        })?;
        let parsed = PersistedConfig::parse(&text).map_err(|e| {
            format!(
                "Unrecoverable error: corrupted cluster config file \"{}\": {e}",
                conf.path.display()
            )
        })?;
        Ok((conf, Some(parsed)))
    }

    /// Replaces the file with `text`; durably (fsync of the file and its directory) when
    /// `sync` (see the module docs).
    pub fn write(&self, text: &str, sync: bool) -> std::io::Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut tmp_name = self.path.as_os_str().to_owned();
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp_name);
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            if sync {
                f.sync_all()?;
            }
            drop(f);
            std::fs::rename(&tmp, &self.path)?;
            if sync {
                File::open(&dir)?.sync_all()?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A written file reads back the same, a second opener is refused while the first holds
    /// the lock, and an empty file counts as no file.
    #[test]
    fn write_read_lock() {
        let dir = std::env::temp_dir().join(format!("corekey-persist-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nodes.conf");
        std::fs::write(&path, "").unwrap();
        let (conf, loaded) = ConfFile::open(&path).unwrap();
        assert!(loaded.is_none());
        assert!(ConfFile::open(&path).is_err());
        let state = corekey_bus::cluster::ClusterState::new(
            corekey_bus::cluster::ClusterConfig::new("127.0.0.1", 7000),
            0,
            1,
        );
        let text = state.persisted().render();
        conf.write(&text, true).unwrap();
        drop(conf);
        let (_conf, loaded) = ConfFile::open(&path).unwrap();
        assert_eq!(loaded.unwrap().render(), text);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
