//! A session's outgoing sequence and replay buffer.
//!
//! Every frame the gateway sends to a session gets the next sequence number (`"seq"`,
//! from 1) and is kept until the client acknowledges it (`received`), so that a client
//! that lost its connection can resume and get exactly what it missed, in order. The
//! buffer is bounded in frames and bytes; when it overflows the oldest frames go, and
//! a resume that would have needed them reports a gap instead of hiding it.

use std::collections::VecDeque;
use std::fmt::Write;

use crate::outbound::Frame;

/// Bounds of one session's replay buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    pub frames: usize,
    pub bytes: usize,
}

#[derive(Debug)]
pub struct Replay {
    limits: ReplayLimits,
    /// Sequence number of the next frame.
    next_seq: u64,
    /// Unacknowledged frames, oldest first, as sent (with their `seq`).
    kept: VecDeque<(u64, Frame)>,
    kept_bytes: usize,
    /// The highest sequence number dropped unacknowledged (0: none).
    dropped_through: u64,
}

/// What a resuming client gets: the frames after the last one it saw (with their
/// sequence numbers), and whether any in between are no longer available.
#[derive(Debug)]
pub struct Missed {
    pub frames: Vec<(u64, Frame)>,
    pub gap: bool,
}

/// Slots of the kept frames grown one at a time before the deque doubles as usual.
const SLOTS_ONE_BY_ONE: usize = 4;

impl Replay {
    pub fn new(limits: ReplayLimits) -> Self {
        Self::continuing(limits, 1)
    }

    /// A replay that continues a sequence started elsewhere (a session handed over from
    /// another gateway): the next frame gets `next_seq`.
    pub fn continuing(limits: ReplayLimits, next_seq: u64) -> Self {
        Self { limits, next_seq, kept: VecDeque::new(), kept_bytes: 0, dropped_through: 0 }
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Numbers `frame` (a JSON object) and keeps it; returns the numbered frame.
    pub fn record(&mut self, frame: &Frame) -> Frame {
        let seq = self.next_seq;
        self.next_seq += 1;
        let numbered = with_seq(frame, seq);
        self.keep(seq, numbered.clone());
        numbered
    }

    /// Keeps an already numbered frame (one handed over from another gateway).
    pub fn keep(&mut self, seq: u64, frame: Frame) {
        self.kept_bytes += frame.len();
        // One slot at a time for the first few: an idle session keeps a frame or two
        // (`joined`, a `peer_joined`) for as long as it lives, and a first push would
        // set aside four.
        if self.kept.len() == self.kept.capacity() && self.kept.len() < SLOTS_ONE_BY_ONE {
            self.kept.reserve_exact(1);
        }
        self.kept.push_back((seq, frame));
        self.next_seq = self.next_seq.max(seq + 1);
        while self.kept.len() > self.limits.frames || self.kept_bytes > self.limits.bytes {
            let Some((seq, frame)) = self.kept.pop_front() else { break };
            self.kept_bytes -= frame.len();
            self.dropped_through = seq;
        }
    }

    /// Forgets frames up to and including `seq`, which the client has.
    pub fn acknowledge(&mut self, seq: u64) {
        while let Some((kept_seq, frame)) = self.kept.front() {
            if *kept_seq > seq {
                break;
            }
            self.kept_bytes -= frame.len();
            self.kept.pop_front();
        }
    }

    /// The frames after `last_seq`, which the client says it has seen last.
    pub fn missed_after(&self, last_seq: u64) -> Missed {
        let frames = self.kept.iter().filter(|(seq, _)| *seq > last_seq).cloned().collect();
        Missed { frames, gap: self.dropped_through > last_seq }
    }

    /// Counts a frame that was lost before it reached this gateway (the bus dropped
    /// it): it takes a sequence number and is dropped at once, so a resume from before
    /// it reports a gap.
    pub fn lose_one(&mut self) {
        self.dropped_through = self.next_seq;
        self.next_seq += 1;
    }

    /// Whether a frame was ever dropped unacknowledged or lost upstream.
    pub fn lost_any(&self) -> bool {
        self.dropped_through > 0
    }

    /// Frames kept, for diagnostics and tests.
    pub fn kept(&self) -> usize {
        self.kept.len()
    }
}

/// `{...}` -> `{...,"seq":N}`.
pub fn with_seq(frame: &Frame, seq: u64) -> Frame {
    let text = frame.as_str();
    debug_assert!(text.ends_with('}'), "frames are JSON objects");
    let digits = seq.checked_ilog10().map_or(1, |log| log as usize + 1);
    // Exactly the length: the frame keeps its allocation for as long as it is kept.
    let mut out = String::with_capacity(text.len() + ",\"seq\":".len() + digits);
    out.push_str(&text[..text.len() - 1]);
    let _ = write!(out, ",\"seq\":{seq}}}");
    debug_assert_eq!(out.len(), out.capacity());
    Frame::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Sequenced, ServerMessage};

    fn limits(frames: usize, bytes: usize) -> ReplayLimits {
        ReplayLimits { frames, bytes }
    }

    fn pong() -> Frame {
        Frame::from_static(r#"{"type":"pong"}"#)
    }

    #[test]
    fn numbers_frames_and_replays_what_was_missed() {
        let mut replay = Replay::new(limits(10, 10_000));
        let first = replay.record(&pong());
        let parsed: Sequenced = serde_json::from_str(first.as_str()).unwrap();
        assert_eq!((parsed.seq, parsed.message), (Some(1), ServerMessage::Pong { id: None }));
        replay.record(&pong());
        replay.record(&pong());
        let missed = replay.missed_after(1);
        assert_eq!(missed.frames.len(), 2);
        assert!(!missed.gap);
        replay.acknowledge(2);
        assert_eq!(replay.kept(), 1);
        assert_eq!(replay.missed_after(2).frames.len(), 1);
        assert_eq!(replay.next_seq(), 4);
    }

    #[test]
    fn overflow_drops_the_oldest_and_reports_a_gap() {
        let mut replay = Replay::new(limits(2, 10_000));
        for _ in 0..5 {
            replay.record(&pong());
        }
        let missed = replay.missed_after(1);
        assert_eq!(missed.frames.len(), 2, "frames 4 and 5 are kept");
        assert!(missed.gap, "2 and 3 were dropped unacknowledged");
        assert!(!replay.missed_after(3).gap, "a client that saw 3 misses nothing that was dropped");

        let mut by_bytes = Replay::new(limits(100, 40));
        by_bytes.record(&pong());
        by_bytes.record(&pong());
        assert_eq!(by_bytes.kept(), 1, "two 24-byte frames exceed 40 bytes");
    }

    #[test]
    fn a_frame_lost_upstream_takes_a_number_and_is_a_gap() {
        let mut replay = Replay::new(limits(10, 10_000));
        replay.record(&pong());
        replay.lose_one();
        let after = replay.record(&pong());
        assert!(after.as_str().ends_with(r#""seq":3}"#), "{}", after.as_str());
        let missed = replay.missed_after(1);
        assert!(missed.gap, "seq 2 never existed here");
        assert_eq!(missed.frames.len(), 1, "seq 3 is replayed");
        assert!(!replay.missed_after(2).gap);
    }

    #[test]
    fn a_continued_sequence_picks_up_where_the_old_gateway_stopped() {
        let mut replay = Replay::continuing(limits(10, 10_000), 41);
        replay.keep(39, with_seq(&pong(), 39));
        replay.keep(40, with_seq(&pong(), 40));
        let next = replay.record(&pong());
        assert!(next.as_str().ends_with(r#""seq":41}"#), "{}", next.as_str());
    }
}
