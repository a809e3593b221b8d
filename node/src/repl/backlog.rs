//! A replication stream's backlog: the latest live frames, with the offset of their first
//! byte, bounded by `repl-backlog-size` (split across shards). A replica that reconnects at an
//! offset the backlog still holds resumes from there (partial resync); older offsets need a
//! full sync.

use std::collections::VecDeque;

/// The smallest per-shard backlog, whatever `repl-backlog-size` says: one large frame must fit.
pub const BACKLOG_BYTES_MIN: usize = 64 * 1024;

pub struct Backlog {
    frames: VecDeque<Vec<u8>>,
    /// Offset of the first byte of the first frame held.
    first_offset: u64,
    /// Offset after the last frame (the stream's `master_repl_offset`).
    end_offset: u64,
    bytes: usize,
    pub bytes_max: usize,
}

impl Backlog {
    /// An empty backlog whose stream continues at `offset`.
    pub fn new(offset: u64, bytes_max: usize) -> Backlog {
        Backlog {
            frames: VecDeque::new(),
            first_offset: offset,
            end_offset: offset,
            bytes: 0,
            bytes_max: bytes_max.max(BACKLOG_BYTES_MIN),
        }
    }

    /// Appends a live frame and drops the oldest ones over the bound (the newest always stays).
    pub fn push(&mut self, frame: Vec<u8>) {
        self.end_offset += frame.len() as u64;
        self.bytes += frame.len();
        self.frames.push_back(frame);
        while self.bytes > self.bytes_max && self.frames.len() > 1 {
            if let Some(f) = self.frames.pop_front() {
                self.bytes -= f.len();
                self.first_offset += f.len() as u64;
            }
        }
    }

    pub fn end_offset(&self) -> u64 {
        self.end_offset
    }

    pub fn first_offset(&self) -> u64 {
        self.first_offset
    }

    /// Bytes held (INFO `repl_backlog_histlen`).
    pub fn len(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The frames from `offset` to the end, when `offset` is a frame boundary the backlog
    /// still holds (or the end itself).
    pub fn frames_from(&self, offset: u64) -> Option<impl Iterator<Item = &Vec<u8>>> {
        if offset < self.first_offset || offset > self.end_offset {
            return None;
        }
        let mut at = self.first_offset;
        let mut skip = 0;
        for f in &self.frames {
            if at >= offset {
                break;
            }
            at += f.len() as u64;
            skip += 1;
        }
        (at == offset).then(|| self.frames.iter().skip(skip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets advance by frame length; old frames fall out past the bound; a resume point
    /// must be a held frame boundary.
    #[test]
    fn offsets_and_trimming() {
        let mut b = Backlog::new(100, 0);
        assert_eq!(b.bytes_max, BACKLOG_BYTES_MIN);
        b.bytes_max = 10;
        b.push(vec![0; 4]);
        b.push(vec![1; 4]);
        assert_eq!((b.first_offset(), b.end_offset(), b.len()), (100, 108, 8));
        assert_eq!(b.frames_from(104).unwrap().count(), 1);
        assert_eq!(b.frames_from(108).unwrap().count(), 0);
        assert!(b.frames_from(102).is_none());
        assert!(b.frames_from(109).is_none());
        b.push(vec![2; 4]);
        assert_eq!((b.first_offset(), b.end_offset()), (104, 112));
        assert!(b.frames_from(100).is_none());
        assert_eq!(b.frames_from(104).unwrap().next().unwrap()[0], 1);
        // A frame larger than the bound stays, alone.
        b.push(vec![3; 50]);
        assert_eq!((b.first_offset(), b.len()), (112, 50));
    }
}
