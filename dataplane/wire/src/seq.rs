//! TCP sequence numbers: 32-bit values compared in modular arithmetic (RFC 9293, section 3.4).

use core::fmt;
use core::ops::{Add, Sub};

/// A 32-bit TCP sequence number. Ordering is modular: `a < b` when `b` is ahead of `a` by less
/// than 2^31 (RFC 9293, section 3.4), so comparisons stay correct across wrap-around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// The signed distance from `earlier` to `self`; positive when `self` is ahead.
    pub fn distance_from(self, earlier: SeqNumber) -> i32 {
        self.0.wrapping_sub(earlier.0) as i32
    }

    /// The larger of two sequence numbers in modular order.
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self.distance_from(other) >= 0 {
            self
        } else {
            other
        }
    }

    /// The smaller of two sequence numbers in modular order.
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if self.distance_from(other) <= 0 {
            self
        } else {
            other
        }
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<core::cmp::Ordering> {
        Some(self.distance_from(*other).cmp(&0))
    }
}

impl Add<u32> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, bytes: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(bytes))
    }
}

impl Sub<u32> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, bytes: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(bytes))
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
