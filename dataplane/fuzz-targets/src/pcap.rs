//! Just enough of the classic pcap file format (the one tcpdump `-w` writes) to take the frames
//! out of the committed captures in `dataplane/wire/testdata/` for seed corpora. It reads only
//! files in this repository, never network input.

use core::fmt;

/// Why a capture could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcapError {
    /// The file is shorter than its headers say.
    Truncated,
    /// The first four bytes are no pcap magic number.
    BadMagic(u32),
    /// The link type is not Ethernet (1).
    NotEthernet(u32),
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcapError::Truncated => write!(f, "capture file is truncated"),
            PcapError::BadMagic(magic) => write!(f, "not a pcap file (magic {magic:#010x})"),
            PcapError::NotEthernet(link) => write!(f, "link type {link} is not Ethernet"),
        }
    }
}

impl std::error::Error for PcapError {}

const GLOBAL_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
const LINKTYPE_ETHERNET: u32 = 1;
/// Microsecond and nanosecond timestamps, as written in the file's own byte order.
const MAGICS: [u32; 2] = [0xa1b2_c3d4, 0xa1b2_3c4d];

/// The frames of a pcap file, in capture order.
pub fn ethernet_frames(file: &[u8]) -> Result<Vec<&[u8]>, PcapError> {
    let header = file.get(..GLOBAL_HEADER_LEN).ok_or(PcapError::Truncated)?;
    let magic_le = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let little_endian = if MAGICS.contains(&magic_le) {
        true
    } else if MAGICS.contains(&magic_le.swap_bytes()) {
        false
    } else {
        return Err(PcapError::BadMagic(magic_le));
    };
    let read_u32 = |bytes: &[u8]| {
        let word = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if little_endian {
            u32::from_le_bytes(word)
        } else {
            u32::from_be_bytes(word)
        }
    };
    let link_type = read_u32(&header[20..24]);
    if link_type != LINKTYPE_ETHERNET {
        return Err(PcapError::NotEthernet(link_type));
    }
    let mut frames = Vec::new();
    let mut rest = &file[GLOBAL_HEADER_LEN..];
    while !rest.is_empty() {
        let record = rest.get(..RECORD_HEADER_LEN).ok_or(PcapError::Truncated)?;
        let captured_len = read_u32(&record[8..12]) as usize;
        let end = RECORD_HEADER_LEN
            .checked_add(captured_len)
            .ok_or(PcapError::Truncated)?;
        frames.push(
            rest.get(RECORD_HEADER_LEN..end)
                .ok_or(PcapError::Truncated)?,
        );
        rest = &rest[end..];
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(records: &[&[u8]]) -> Vec<u8> {
        let mut file = Vec::new();
        file.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        file.extend_from_slice(&[2, 0, 4, 0]);
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&65535u32.to_le_bytes());
        file.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        for record in records {
            file.extend_from_slice(&[0; 8]);
            file.extend_from_slice(&(record.len() as u32).to_le_bytes());
            file.extend_from_slice(&(record.len() as u32).to_le_bytes());
            file.extend_from_slice(record);
        }
        file
    }

    #[test]
    fn reads_records_in_order() {
        let file = capture(&[&[1, 2, 3], &[], &[4; 60]]);
        let frames = ethernet_frames(&file).unwrap();
        assert_eq!(frames, vec![&[1u8, 2, 3][..], &[][..], &[4u8; 60][..]]);
    }

    #[test]
    fn rejects_bad_files() {
        let file = capture(&[&[1, 2, 3]]);
        assert_eq!(
            ethernet_frames(&file[..file.len() - 1]),
            Err(PcapError::Truncated)
        );
        assert_eq!(ethernet_frames(&file[..10]), Err(PcapError::Truncated));
        let mut other_link = file.clone();
        other_link[20] = 101;
        assert_eq!(
            ethernet_frames(&other_link),
            Err(PcapError::NotEthernet(101))
        );
        let mut not_pcap = file;
        not_pcap[0] = 0;
        assert!(matches!(
            ethernet_frames(&not_pcap),
            Err(PcapError::BadMagic(_))
        ));
    }

    #[test]
    fn reads_the_committed_captures() {
        for name in ["linux-mptcp-path0.pcap", "linux-mptcp-path1.pcap"] {
            let path = format!("{}/../wire/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
            let file = std::fs::read(&path).unwrap();
            let frames = ethernet_frames(&file).unwrap();
            assert!(frames.len() > 30, "{name}: {} frames", frames.len());
        }
    }
}
