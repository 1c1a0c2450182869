//! Assembly of received DSS mappings (RFC 8684, section 3.3.1).
//!
//! With checksums on, a mapping's bytes are held until all of them arrived and the checksum
//! over the pseudo-header and the data verified; only then do they reach the data level. With
//! checksums off, bytes pass as soon as they are in order and covered by a mapping.

use std::collections::VecDeque;

use mpterm_wire::checksum::{self, Checksum};

use crate::tcp::{ReceivedChunk, ReceivedMapping};
use crate::Payload;

/// Why a mapping was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingError {
    /// The checksum over the mapping did not verify.
    Checksum,
    /// Data outside any mapping, a mapping that contradicts the current one, or a mapping
    /// that lacks the checksum both ends agreed on.
    Mismatch,
}

#[derive(Debug, Clone, Copy)]
struct CurrentMapping {
    mapping: ReceivedMapping,
    /// Subflow bytes the mapping covers (its data-level length minus a DATA_FIN).
    data_bytes: u32,
    received: u32,
    sum: Checksum,
    /// The mapping ends with a DATA_FIN: on the variant seen first or on a repetition.
    data_fin: bool,
}

impl CurrentMapping {
    fn is_complete(&self) -> bool {
        self.received == self.data_bytes
    }
}

/// The mapping being received and the bytes held for it.
#[derive(Debug)]
pub struct MappingAssembly<P> {
    current: Option<CurrentMapping>,
    held: VecDeque<(u64, P)>,
    held_bytes: usize,
    released: VecDeque<(u64, P)>,
    /// The data sequence number of a DATA_FIN whose mapping was verified, not yet taken.
    verified_data_fin: Option<u64>,
}

impl<P: Payload> Default for MappingAssembly<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Payload> MappingAssembly<P> {
    pub fn new() -> Self {
        MappingAssembly {
            current: None,
            held: VecDeque::new(),
            held_bytes: 0,
            released: VecDeque::new(),
            verified_data_fin: None,
        }
    }

    /// Bytes held for a mapping whose checksum is not verified yet.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Takes the DATA_FIN of a mapping that completed (and verified, with checksums): the
    /// mapping's last data-level octet (RFC 8684 section 3.3.3).
    pub fn take_verified_data_fin(&mut self) -> Option<u64> {
        self.verified_data_fin.take()
    }

    /// The data sequence number where the mapping being received (or the last one) starts:
    /// what MP_FAIL names when its checksum fails (RFC 8684 section 3.7).
    pub fn current_data_seq(&self) -> Option<u64> {
        self.current.map(|current| current.mapping.data_seq)
    }

    /// Forgets the mapping being received and every byte held for it, as if none of it had
    /// arrived (verified bytes of earlier mappings not yet taken stay): what a failed checksum leaves to be sent
    /// again (RFC 8684 section 3.7). Returns where the mapping starts in the subflow's
    /// sequence space, relative.
    pub fn discard(&mut self) -> Option<u32> {
        let start = self.current.take()?.mapping.subflow_seq;
        self.held.clear();
        self.held_bytes = 0;
        Some(start)
    }

    /// Takes the next verified bytes with their data sequence number.
    pub fn pop_released(&mut self) -> Option<(u64, P)> {
        self.released.pop_front()
    }

    /// Adds in-order subflow bytes with the mapping their segment carried, if any.
    pub fn add(&mut self, chunk: ReceivedChunk<P>, checksums: bool) -> Result<(), MappingError> {
        if let Some(mapping) = chunk.mapping {
            self.consider_mapping(mapping, chunk.subflow_seq, checksums)?;
        }
        let current = self
            .current
            .as_mut()
            .filter(|current| !current.is_complete())
            .ok_or(MappingError::Mismatch)?;
        let len = chunk.payload.len() as u32;
        let expected_seq = current.mapping.subflow_seq.wrapping_add(current.received);
        if chunk.subflow_seq != expected_seq || current.received + len > current.data_bytes {
            return Err(MappingError::Mismatch);
        }
        let data_seq = current
            .mapping
            .data_seq
            .wrapping_add(u64::from(current.received));
        current.received += len;
        let fin_seq = current
            .mapping
            .data_seq
            .wrapping_add(u64::from(current.data_bytes));
        if !checksums {
            self.released.push_back((data_seq, chunk.payload));
            if current.is_complete() && current.data_fin {
                self.verified_data_fin = Some(fin_seq);
            }
            return Ok(());
        }
        // The sum taken when the segment arrived, when the chunk is that segment's payload
        // whole: the bytes are not read again.
        match chunk.payload.payload_sum() {
            Some(sum) => current.sum.add_checksum(sum),
            None => current.sum.add_bytes(chunk.payload.as_ref()),
        }
        self.held_bytes += chunk.payload.len();
        self.held.push_back((data_seq, chunk.payload));
        if current.is_complete() {
            // The sum started from the pseudo-header with the received checksum in it, so
            // data that arrived intact sums to zero.
            if current.sum.finish() != 0 {
                return Err(MappingError::Checksum);
            }
            self.held_bytes = 0;
            self.released.extend(self.held.drain(..));
            if current.data_fin {
                self.verified_data_fin = Some(fin_seq);
            }
        }
        Ok(())
    }

    fn consider_mapping(
        &mut self,
        mapping: ReceivedMapping,
        chunk_seq: u32,
        checksums: bool,
    ) -> Result<(), MappingError> {
        if let Some(current) = self
            .current
            .as_mut()
            .filter(|current| !current.is_complete())
        {
            // Section 3.3.1: a mapping repeated on later segments must be identical. The
            // sender may add the DATA_FIN to a mapping already in flight (its last octet, one
            // more data-level octet, a new checksum; Linux does this when the application
            // closes), so the mapped subflow bytes are compared, as Linux compares them; the
            // checksum of the variant seen first is the one verified.
            let same = current.mapping.data_seq == mapping.data_seq
                && current.mapping.subflow_seq == mapping.subflow_seq
                && current.data_bytes == mapped_subflow_bytes(&mapping);
            if !same {
                return Err(MappingError::Mismatch);
            }
            current.data_fin |= mapping.data_fin;
            return Ok(());
        }
        if let Some(previous) = self.current {
            if previous.mapping == mapping {
                // The completed mapping repeated on a segment it no longer covers.
                return Err(MappingError::Mismatch);
            }
        }
        if mapping.subflow_seq != chunk_seq {
            return Err(MappingError::Mismatch);
        }
        let data_bytes = mapped_subflow_bytes(&mapping);
        let mut sum = Checksum::new();
        if checksums {
            let received = mapping.checksum.ok_or(MappingError::Mismatch)?;
            sum = checksum::dss_pseudo_header(
                mapping.data_seq,
                mapping.subflow_seq,
                mapping.data_level_length,
                received,
            );
        }
        self.current = Some(CurrentMapping {
            mapping,
            data_bytes,
            received: 0,
            sum,
            data_fin: mapping.data_fin,
        });
        Ok(())
    }
}

/// Subflow bytes a mapping covers: its data-level length minus the DATA_FIN's octet.
fn mapped_subflow_bytes(mapping: &ReceivedMapping) -> u32 {
    u32::from(mapping.data_level_length).saturating_sub(u32::from(mapping.data_fin))
}
