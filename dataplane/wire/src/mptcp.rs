//! MPTCP options (TCP option kind 30): RFC 8684 (version 1) section 3, with the version 0
//! encodings of RFC 6824 where mpterm still has to read them (ADD_ADDR, MP_PRIO).
//!
//! Every option starts with kind (30), length and a 4-bit subtype (RFC 8684, section 2; IANA
//! "MPTCP Option Subtypes"). Lengths are checked exactly, as Linux does in
//! `mptcp_parse_option` (net/mptcp/options.c): a length that matches no form of a subtype is
//! `Malformed`. Parsing is context-free: where two forms share a length (MP_CAPABLE with the
//! sender key on a SYN/ACK and on a version 0 SYN) the caller tells them apart by the segment.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::WireError;

/// TCP option kind of every MPTCP option (RFC 8684, section 2).
pub const OPTION_KIND: u8 = 30;

/// MPTCP option subtypes (RFC 8684, section 8, table 2).
pub mod subtype {
    /// Multipath Capable (section 3.1).
    pub const MP_CAPABLE: u8 = 0x0;
    /// Join Connection (section 3.2).
    pub const MP_JOIN: u8 = 0x1;
    /// Data Sequence Signal (section 3.3).
    pub const DSS: u8 = 0x2;
    /// Add Address (section 3.4.1).
    pub const ADD_ADDR: u8 = 0x3;
    /// Remove Address (section 3.4.2).
    pub const REMOVE_ADDR: u8 = 0x4;
    /// Change Subflow Priority (section 3.3.8).
    pub const MP_PRIO: u8 = 0x5;
    /// Fallback (section 3.7).
    pub const MP_FAIL: u8 = 0x6;
    /// Fast Close (section 3.5).
    pub const MP_FASTCLOSE: u8 = 0x7;
    /// Subflow Reset (section 3.6).
    pub const MP_TCPRST: u8 = 0x8;
}

/// MP_CAPABLE option lengths (RFC 8684, section 3.1, figure 4).
pub mod mp_capable_len {
    /// Version 1 SYN: no key.
    pub const SYN: usize = 4;
    /// SYN/ACK (and version 0 SYN): the sender's key.
    pub const SENDER_KEY: usize = 12;
    /// Third ACK: both keys.
    pub const BOTH_KEYS: usize = 20;
    /// First data: both keys and the data-level length.
    pub const WITH_DATA: usize = 22;
    /// First data with a DSS checksum.
    pub const WITH_DATA_AND_CHECKSUM: usize = 24;
}

/// MP_CAPABLE flag A: checksums required (RFC 8684, section 3.1).
const MP_CAPABLE_FLAG_CHECKSUM: u8 = 0x80;
/// MP_CAPABLE flag B: extensibility.
const MP_CAPABLE_FLAG_EXTENSIBILITY: u8 = 0x40;
/// MP_CAPABLE flag C: do not open subflows to the source address.
const MP_CAPABLE_FLAG_NO_SOURCE_SUBFLOWS: u8 = 0x20;
/// MP_CAPABLE flag H: HMAC-SHA256.
const MP_CAPABLE_FLAG_HMAC_SHA256: u8 = 0x01;

/// MP_JOIN option lengths (RFC 8684, section 3.2, figures 5-7).
pub mod mp_join_len {
    /// SYN: receiver's token and sender's random number.
    pub const SYN: usize = 12;
    /// SYN/ACK: truncated HMAC and sender's random number.
    pub const SYN_ACK: usize = 16;
    /// Third ACK: the full 160-bit HMAC.
    pub const ACK: usize = 24;
}

/// MP_JOIN and MP_PRIO flag B: the subflow is a backup path.
const FLAG_BACKUP: u8 = 0x01;

/// DSS flags (RFC 8684, section 3.3, figure 9).
pub mod dss_flag {
    /// A: Data ACK present.
    pub const DATA_ACK: u8 = 0x01;
    /// a: Data ACK is 8 octets.
    pub const DATA_ACK_64: u8 = 0x02;
    /// M: mapping (DSN, subflow sequence number, data-level length) present.
    pub const MAPPING: u8 = 0x04;
    /// m: DSN is 8 octets.
    pub const DATA_SEQ_64: u8 = 0x08;
    /// F: DATA_FIN.
    pub const DATA_FIN: u8 = 0x10;
}

/// ADD_ADDR flag E: this option echoes an ADD_ADDR received (RFC 8684, section 3.4.1).
const ADD_ADDR_FLAG_ECHO: u8 = 0x01;

/// The fixed lengths of the remaining subtypes.
const MP_PRIO_LEN: usize = 3;
const MP_PRIO_V0_LEN: usize = 4;
const MP_FAIL_LEN: usize = 12;
const MP_FASTCLOSE_LEN: usize = 12;
const MP_TCPRST_LEN: usize = 4;
const REMOVE_ADDR_BASE_LEN: usize = 3;

/// Largest possible MPTCP option: a TCP header holds at most 40 bytes of options.
pub const MAX_OPTION_LEN: usize = 40;

// Owned representations of every MPTCP option subtype (RFC 8684, section 3; RFC 6824 for
// version 0). Their names and fields are the engine's API.

/// MP_CAPABLE (RFC 8684, section 3.1). Which fields are present depends on the segment: SYN
/// (v1: none), SYN/ACK (sender key), third ACK (both keys), first data (both keys, data-level
/// length, optional checksum). Version 0 (RFC 6824) carries the sender key on the SYN too.
///
/// [`MptcpOption::emit`] chooses the length from the `Option` fields that are `Some`; the
/// combinations it accepts are the five of figure 4 (a receiver key needs a sender key, a
/// data-level length needs both keys, a checksum needs a data-level length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpCapable {
    /// 0 for RFC 6824, 1 for RFC 8684.
    pub version: u8,
    /// A: checksum required.
    pub checksum_required: bool,
    /// B: extensibility, must be 0 for now.
    pub extensibility: bool,
    /// C: do not attempt to connect to the source address.
    pub no_new_subflows_to_source: bool,
    /// H: HMAC-SHA256 (must be set in v1).
    pub hmac_sha256: bool,
    /// The sender's 64-bit key (SYN/ACK, third ACK, first data; and the version 0 SYN).
    pub sender_key: Option<u64>,
    /// The receiver's 64-bit key (third ACK and first data).
    pub receiver_key: Option<u64>,
    /// The length of the first data segment's mapping (first data only).
    pub data_level_length: Option<u16>,
    /// The DSS checksum of the first data (only when checksums are in use).
    pub checksum: Option<u16>,
}

impl MpCapable {
    /// The flags octet (A B C D E F G H); flags D to G are written as zero.
    pub fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.checksum_required {
            flags |= MP_CAPABLE_FLAG_CHECKSUM;
        }
        if self.extensibility {
            flags |= MP_CAPABLE_FLAG_EXTENSIBILITY;
        }
        if self.no_new_subflows_to_source {
            flags |= MP_CAPABLE_FLAG_NO_SOURCE_SUBFLOWS;
        }
        if self.hmac_sha256 {
            flags |= MP_CAPABLE_FLAG_HMAC_SHA256;
        }
        flags
    }

    /// The option length for the fields present, or `Malformed` for a combination that
    /// figure 4 does not have.
    fn wire_len(&self) -> Result<usize, WireError> {
        match (
            self.sender_key.is_some(),
            self.receiver_key.is_some(),
            self.data_level_length.is_some(),
            self.checksum.is_some(),
        ) {
            (false, false, false, false) => Ok(mp_capable_len::SYN),
            (true, false, false, false) => Ok(mp_capable_len::SENDER_KEY),
            (true, true, false, false) => Ok(mp_capable_len::BOTH_KEYS),
            (true, true, true, false) => Ok(mp_capable_len::WITH_DATA),
            (true, true, true, true) => Ok(mp_capable_len::WITH_DATA_AND_CHECKSUM),
            _ => Err(WireError::Malformed),
        }
    }
}

/// MP_JOIN in its three forms (RFC 8684, section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpJoin {
    /// The first SYN of an additional subflow (figure 5).
    Syn {
        /// B: the sender wants this subflow as a backup path.
        backup: bool,
        /// The sender's identifier of the address this subflow starts from.
        address_id: u8,
        /// Identifies the connection: the receiver's token (section 3.2).
        receiver_token: u32,
        /// Random number for the HMAC exchange.
        sender_nonce: u32,
    },
    /// The SYN/ACK answering a join (figure 6).
    SynAck {
        /// B: the sender wants this subflow as a backup path.
        backup: bool,
        /// The sender's identifier of the address this subflow uses.
        address_id: u8,
        /// The leftmost 64 bits of the sender's HMAC.
        truncated_hmac: u64,
        /// Random number for the HMAC exchange.
        sender_nonce: u32,
    },
    /// The third ACK of a join (figure 7).
    Ack {
        /// The sender's full HMAC-SHA256 truncated to 160 bits.
        hmac: [u8; 20],
    },
}

/// A data sequence number as carried on the wire: 4 or 8 octets (RFC 8684, section 3.3, flags
/// a and m). A 32-bit value holds the low bits of the 64-bit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSeqWire {
    /// Four octets (flag a or m clear).
    Bits32(u32),
    /// Eight octets (flag a or m set).
    Bits64(u64),
}

impl DataSeqWire {
    /// The number of octets on the wire.
    pub fn wire_len(self) -> usize {
        match self {
            DataSeqWire::Bits32(_) => 4,
            DataSeqWire::Bits64(_) => 8,
        }
    }

    fn write(self, out: &mut [u8]) -> usize {
        match self {
            DataSeqWire::Bits32(value) => out[..4].copy_from_slice(&value.to_be_bytes()),
            DataSeqWire::Bits64(value) => out[..8].copy_from_slice(&value.to_be_bytes()),
        }
        self.wire_len()
    }
}

/// A DSS mapping (RFC 8684, section 3.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DssMapping {
    /// The data sequence number of the first mapped octet.
    pub data_seq: DataSeqWire,
    /// Relative to the subflow's initial sequence number (the first data byte is 1).
    pub subflow_seq: u32,
    /// The number of octets the mapping covers (a DATA_FIN counts as one).
    pub data_level_length: u16,
    /// Present only when DSS checksums were negotiated.
    pub checksum: Option<u16>,
}

/// Data Sequence Signal (RFC 8684, section 3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dss {
    /// Data ACK: the next data sequence number the sender expects.
    pub data_ack: Option<DataSeqWire>,
    /// The mapping of this segment's data onto the data sequence space.
    pub mapping: Option<DssMapping>,
    /// F flag: the mapping's last data-level octet is a DATA_FIN (section 3.3.3).
    pub data_fin: bool,
}

impl Dss {
    /// The flags octet for the fields present.
    pub fn flags(&self) -> u8 {
        let mut flags = 0;
        if let Some(ack) = self.data_ack {
            flags |= dss_flag::DATA_ACK;
            if matches!(ack, DataSeqWire::Bits64(_)) {
                flags |= dss_flag::DATA_ACK_64;
            }
        }
        if let Some(mapping) = self.mapping {
            flags |= dss_flag::MAPPING;
            if matches!(mapping.data_seq, DataSeqWire::Bits64(_)) {
                flags |= dss_flag::DATA_SEQ_64;
            }
        }
        if self.data_fin {
            flags |= dss_flag::DATA_FIN;
        }
        flags
    }

    fn wire_len(&self) -> usize {
        let ack = self.data_ack.map_or(0, DataSeqWire::wire_len);
        let mapping = self.mapping.map_or(0, |mapping| {
            mapping.data_seq.wire_len() + 4 + 2 + mapping.checksum.map_or(0, |_| 2)
        });
        4 + ack + mapping
    }
}

/// ADD_ADDR (RFC 8684, section 3.4.1); version 0 (RFC 6824) has no E flag and no HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddAddr {
    /// E: this option echoes an ADD_ADDR received from the peer.
    pub echo: bool,
    /// The sender's identifier for the address.
    pub address_id: u8,
    /// The address announced.
    pub address: core::net::IpAddr,
    /// The port, when it differs from the connection's.
    pub port: Option<u16>,
    /// The leftmost 64 bits of the HMAC (absent in echoes and in version 0).
    pub truncated_hmac: Option<u64>,
}

impl AddAddr {
    fn address_len(&self) -> usize {
        match self.address {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 16,
        }
    }

    fn wire_len(&self) -> usize {
        4 + self.address_len() + self.port.map_or(0, |_| 2) + self.truncated_hmac.map_or(0, |_| 8)
    }

    /// Writes address and port after the 4-byte option header; returns the offset after them.
    fn write_address_and_port(&self, out: &mut [u8]) -> usize {
        let mut at = 4;
        match self.address {
            IpAddr::V4(address) => {
                out[at..at + 4].copy_from_slice(&address.octets());
                at += 4;
            }
            IpAddr::V6(address) => {
                out[at..at + 16].copy_from_slice(&address.octets());
                at += 16;
            }
        }
        if let Some(port) = self.port {
            out[at..at + 2].copy_from_slice(&port.to_be_bytes());
            at += 2;
        }
        at
    }

    /// Writes a version 0 ADD_ADDR (RFC 6824, section 3.4.1: IPVer nibble, no echo, no HMAC).
    /// An echo flag or an HMAC cannot be expressed in version 0 and is `Malformed`.
    pub fn emit_v0(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        if self.echo || self.truncated_hmac.is_some() {
            return Err(WireError::Malformed);
        }
        let len = self.wire_len();
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let ip_version = match self.address {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 6,
        };
        write_header(out, subtype::ADD_ADDR, ip_version);
        out[3] = self.address_id;
        self.write_address_and_port(out);
        Ok(len)
    }
}

/// MP_TCPRST (RFC 8684, section 3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpTcpRst {
    /// U, V, W, T flags; T means the error is transient.
    pub flags: u8,
    /// Why the subflow is reset (section 3.6, e.g. 0 unspecified, 1 MPTCP-specific error).
    pub reason: u8,
}

impl MpTcpRst {
    /// Flag T: the error is transient and the subflow may be retried.
    pub const FLAG_TRANSIENT: u8 = 0x01;
}

/// One MPTCP option (TCP option kind 30).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MptcpOption<'a> {
    /// MP_CAPABLE (section 3.1).
    MpCapable(MpCapable),
    /// MP_JOIN (section 3.2).
    MpJoin(MpJoin),
    /// DSS (section 3.3).
    Dss(Dss),
    /// ADD_ADDR (section 3.4.1).
    AddAddr(AddAddr),
    /// REMOVE_ADDR (section 3.4.2): the address IDs, borrowed from the segment.
    RemoveAddr {
        /// The identifiers of the addresses removed.
        address_ids: &'a [u8],
    },
    /// MP_PRIO (section 3.3.8); `address_id` only in version 0 encodings.
    MpPrio {
        /// B: the sender asks for this subflow to be a backup path.
        backup: bool,
        /// The address identifier (version 0 only).
        address_id: Option<u8>,
    },
    /// MP_FAIL (section 3.7): the 64-bit data sequence number where the checksum failed.
    MpFail {
        /// The data sequence number of the data whose checksum failed.
        data_seq: u64,
    },
    /// MP_FASTCLOSE (section 3.5).
    MpFastclose {
        /// The receiver's key, proving the sender knows the connection.
        receiver_key: u64,
    },
    /// MP_TCPRST (section 3.6).
    MpTcpRst(MpTcpRst),
    /// A subtype this crate does not know, kept so that it can be counted.
    Unknown {
        /// The 4-bit subtype.
        subtype: u8,
    },
}

/// Reads the big-endian integers of an option whose length has already been checked.
fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut octets = [0; 4];
    octets.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(octets)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut octets = [0; 8];
    octets.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(octets)
}

fn read_ipv4(bytes: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3])
}

fn read_ipv6(bytes: &[u8], at: usize) -> Ipv6Addr {
    let mut octets = [0; 16];
    octets.copy_from_slice(&bytes[at..at + 16]);
    Ipv6Addr::from(octets)
}

/// Writes kind, length (the slice's length), subtype and the low nibble of the third octet.
fn write_header(out: &mut [u8], subtype: u8, low_nibble: u8) {
    out[0] = OPTION_KIND;
    out[1] = out.len() as u8;
    out[2] = (subtype << 4) | (low_nibble & 0x0f);
}

/// Checks kind and length octets and returns the option cut to its declared length.
fn option_bytes(option: &[u8]) -> Result<&[u8], WireError> {
    if option.len() < 2 {
        return Err(WireError::Truncated);
    }
    if option[0] != OPTION_KIND {
        return Err(WireError::Malformed);
    }
    let len = usize::from(option[1]);
    // Kind, length and the subtype octet are the least any MPTCP option holds.
    if len < 3 {
        return Err(WireError::Malformed);
    }
    option.get(..len).ok_or(WireError::Truncated)
}

impl<'a> MptcpOption<'a> {
    /// Parses one MPTCP option. `option` is the whole TCP option, kind and length included;
    /// bytes after the declared length are ignored. A length shorter than the slice says is
    /// `Truncated`, a length that matches no form of the subtype is `Malformed`, an unknown
    /// subtype is [`MptcpOption::Unknown`].
    pub fn parse(option: &'a [u8]) -> Result<MptcpOption<'a>, WireError> {
        let bytes = option_bytes(option)?;
        let subtype = bytes[2] >> 4;
        let low_nibble = bytes[2] & 0x0f;
        match subtype {
            subtype::MP_CAPABLE => parse_mp_capable(bytes).map(MptcpOption::MpCapable),
            subtype::MP_JOIN => parse_mp_join(bytes).map(MptcpOption::MpJoin),
            subtype::DSS => parse_dss(bytes).map(MptcpOption::Dss),
            subtype::ADD_ADDR => parse_add_addr_v1(bytes).map(MptcpOption::AddAddr),
            subtype::REMOVE_ADDR => {
                // Section 3.4.2: one or more address IDs after the subtype octet.
                if bytes.len() < REMOVE_ADDR_BASE_LEN + 1 {
                    return Err(WireError::Malformed);
                }
                Ok(MptcpOption::RemoveAddr {
                    address_ids: &bytes[REMOVE_ADDR_BASE_LEN..],
                })
            }
            subtype::MP_PRIO => {
                // Section 3.3.8 (length 3); RFC 6824, section 3.3.8 adds an address ID.
                let backup = low_nibble & FLAG_BACKUP != 0;
                match bytes.len() {
                    MP_PRIO_LEN => Ok(MptcpOption::MpPrio {
                        backup,
                        address_id: None,
                    }),
                    MP_PRIO_V0_LEN => Ok(MptcpOption::MpPrio {
                        backup,
                        address_id: Some(bytes[3]),
                    }),
                    _ => Err(WireError::Malformed),
                }
            }
            subtype::MP_FAIL => {
                // Section 3.7, figure 16: 12 reserved bits, then the 64-bit DSN.
                if bytes.len() != MP_FAIL_LEN {
                    return Err(WireError::Malformed);
                }
                Ok(MptcpOption::MpFail {
                    data_seq: read_u64(bytes, 4),
                })
            }
            subtype::MP_FASTCLOSE => {
                // Section 3.5, figure 14: 12 reserved bits, then the receiver's key.
                if bytes.len() != MP_FASTCLOSE_LEN {
                    return Err(WireError::Malformed);
                }
                Ok(MptcpOption::MpFastclose {
                    receiver_key: read_u64(bytes, 4),
                })
            }
            subtype::MP_TCPRST => {
                // Section 3.6, figure 15: flags U V W T in the low nibble, then the reason.
                if bytes.len() != MP_TCPRST_LEN {
                    return Err(WireError::Malformed);
                }
                Ok(MptcpOption::MpTcpRst(MpTcpRst {
                    flags: low_nibble,
                    reason: bytes[3],
                }))
            }
            subtype => Ok(MptcpOption::Unknown { subtype }),
        }
    }

    /// The number of bytes [`MptcpOption::emit`] writes, without padding. For an
    /// [`MptcpOption::Unknown`] and an [`MpCapable`] with an impossible combination of fields
    /// it is 0, and `emit` returns an error instead of writing.
    pub fn encoded_len(&self) -> usize {
        match self {
            MptcpOption::MpCapable(capable) => capable.wire_len().unwrap_or(0),
            MptcpOption::MpJoin(MpJoin::Syn { .. }) => mp_join_len::SYN,
            MptcpOption::MpJoin(MpJoin::SynAck { .. }) => mp_join_len::SYN_ACK,
            MptcpOption::MpJoin(MpJoin::Ack { .. }) => mp_join_len::ACK,
            MptcpOption::Dss(dss) => dss.wire_len(),
            MptcpOption::AddAddr(add) => add.wire_len(),
            MptcpOption::RemoveAddr { address_ids } => REMOVE_ADDR_BASE_LEN + address_ids.len(),
            MptcpOption::MpPrio {
                address_id: None, ..
            } => MP_PRIO_LEN,
            MptcpOption::MpPrio {
                address_id: Some(_),
                ..
            } => MP_PRIO_V0_LEN,
            MptcpOption::MpFail { .. } => MP_FAIL_LEN,
            MptcpOption::MpFastclose { .. } => MP_FASTCLOSE_LEN,
            MptcpOption::MpTcpRst(_) => MP_TCPRST_LEN,
            MptcpOption::Unknown { .. } => 0,
        }
    }

    /// Writes the option (kind, length, subtype and body, no padding) at the start of `buf`
    /// and returns its length. An impossible combination of fields (see [`MpCapable`], an
    /// ADD_ADDR whose HMAC presence contradicts its echo flag, an empty or over-long
    /// REMOVE_ADDR) is `Malformed`; [`MptcpOption::Unknown`] has no body to write and is
    /// `Unsupported`; a short buffer is `BufferTooSmall`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = match self {
            MptcpOption::MpCapable(capable) => capable.wire_len()?,
            MptcpOption::AddAddr(add) if add.echo == add.truncated_hmac.is_some() => {
                // Section 3.4.1: the HMAC is present exactly when E is 0.
                return Err(WireError::Malformed);
            }
            MptcpOption::RemoveAddr { address_ids }
                if address_ids.is_empty()
                    || REMOVE_ADDR_BASE_LEN + address_ids.len() > MAX_OPTION_LEN =>
            {
                return Err(WireError::Malformed);
            }
            MptcpOption::Unknown { .. } => return Err(WireError::Unsupported),
            _ => self.encoded_len(),
        };
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        match self {
            MptcpOption::MpCapable(capable) => {
                write_header(out, subtype::MP_CAPABLE, capable.version);
                out[3] = capable.flags();
                let mut at = 4;
                for key in [capable.sender_key, capable.receiver_key]
                    .into_iter()
                    .flatten()
                {
                    out[at..at + 8].copy_from_slice(&key.to_be_bytes());
                    at += 8;
                }
                for value in [capable.data_level_length, capable.checksum]
                    .into_iter()
                    .flatten()
                {
                    out[at..at + 2].copy_from_slice(&value.to_be_bytes());
                    at += 2;
                }
            }
            MptcpOption::MpJoin(MpJoin::Syn {
                backup,
                address_id,
                receiver_token,
                sender_nonce,
            }) => {
                write_header(out, subtype::MP_JOIN, u8::from(*backup));
                out[3] = *address_id;
                out[4..8].copy_from_slice(&receiver_token.to_be_bytes());
                out[8..12].copy_from_slice(&sender_nonce.to_be_bytes());
            }
            MptcpOption::MpJoin(MpJoin::SynAck {
                backup,
                address_id,
                truncated_hmac,
                sender_nonce,
            }) => {
                write_header(out, subtype::MP_JOIN, u8::from(*backup));
                out[3] = *address_id;
                out[4..12].copy_from_slice(&truncated_hmac.to_be_bytes());
                out[12..16].copy_from_slice(&sender_nonce.to_be_bytes());
            }
            MptcpOption::MpJoin(MpJoin::Ack { hmac }) => {
                write_header(out, subtype::MP_JOIN, 0);
                out[3] = 0;
                out[4..24].copy_from_slice(hmac);
            }
            MptcpOption::Dss(dss) => {
                write_header(out, subtype::DSS, 0);
                out[3] = dss.flags();
                let mut at = 4;
                if let Some(ack) = dss.data_ack {
                    at += ack.write(&mut out[at..]);
                }
                if let Some(mapping) = dss.mapping {
                    at += mapping.data_seq.write(&mut out[at..]);
                    out[at..at + 4].copy_from_slice(&mapping.subflow_seq.to_be_bytes());
                    out[at + 4..at + 6].copy_from_slice(&mapping.data_level_length.to_be_bytes());
                    if let Some(checksum) = mapping.checksum {
                        out[at + 6..at + 8].copy_from_slice(&checksum.to_be_bytes());
                    }
                }
            }
            MptcpOption::AddAddr(add) => {
                write_header(
                    out,
                    subtype::ADD_ADDR,
                    if add.echo { ADD_ADDR_FLAG_ECHO } else { 0 },
                );
                out[3] = add.address_id;
                let at = add.write_address_and_port(out);
                if let Some(hmac) = add.truncated_hmac {
                    out[at..at + 8].copy_from_slice(&hmac.to_be_bytes());
                }
            }
            MptcpOption::RemoveAddr { address_ids } => {
                write_header(out, subtype::REMOVE_ADDR, 0);
                out[REMOVE_ADDR_BASE_LEN..].copy_from_slice(address_ids);
            }
            MptcpOption::MpPrio { backup, address_id } => {
                write_header(out, subtype::MP_PRIO, u8::from(*backup));
                if let Some(id) = address_id {
                    out[3] = *id;
                }
            }
            MptcpOption::MpFail { data_seq } => {
                write_header(out, subtype::MP_FAIL, 0);
                out[3] = 0;
                out[4..12].copy_from_slice(&data_seq.to_be_bytes());
            }
            MptcpOption::MpFastclose { receiver_key } => {
                write_header(out, subtype::MP_FASTCLOSE, 0);
                out[3] = 0;
                out[4..12].copy_from_slice(&receiver_key.to_be_bytes());
            }
            MptcpOption::MpTcpRst(reset) => {
                write_header(out, subtype::MP_TCPRST, reset.flags);
                out[3] = reset.reason;
            }
            MptcpOption::Unknown { .. } => return Err(WireError::Unsupported),
        }
        Ok(len)
    }
}

/// MP_CAPABLE (RFC 8684, section 3.1, figure 4): version in the low nibble, flags, then keys,
/// data-level length and checksum according to the length.
fn parse_mp_capable(bytes: &[u8]) -> Result<MpCapable, WireError> {
    let len = bytes.len();
    if !matches!(
        len,
        mp_capable_len::SYN
            | mp_capable_len::SENDER_KEY
            | mp_capable_len::BOTH_KEYS
            | mp_capable_len::WITH_DATA
            | mp_capable_len::WITH_DATA_AND_CHECKSUM
    ) {
        return Err(WireError::Malformed);
    }
    let flags = bytes[3];
    Ok(MpCapable {
        version: bytes[2] & 0x0f,
        checksum_required: flags & MP_CAPABLE_FLAG_CHECKSUM != 0,
        extensibility: flags & MP_CAPABLE_FLAG_EXTENSIBILITY != 0,
        no_new_subflows_to_source: flags & MP_CAPABLE_FLAG_NO_SOURCE_SUBFLOWS != 0,
        hmac_sha256: flags & MP_CAPABLE_FLAG_HMAC_SHA256 != 0,
        sender_key: (len >= mp_capable_len::SENDER_KEY).then(|| read_u64(bytes, 4)),
        receiver_key: (len >= mp_capable_len::BOTH_KEYS).then(|| read_u64(bytes, 12)),
        data_level_length: (len >= mp_capable_len::WITH_DATA).then(|| read_u16(bytes, 20)),
        checksum: (len == mp_capable_len::WITH_DATA_AND_CHECKSUM).then(|| read_u16(bytes, 22)),
    })
}

/// MP_JOIN (RFC 8684, section 3.2): the length tells SYN (12), SYN/ACK (16) and ACK (24).
fn parse_mp_join(bytes: &[u8]) -> Result<MpJoin, WireError> {
    let backup = bytes[2] & FLAG_BACKUP != 0;
    match bytes.len() {
        mp_join_len::SYN => Ok(MpJoin::Syn {
            backup,
            address_id: bytes[3],
            receiver_token: read_u32(bytes, 4),
            sender_nonce: read_u32(bytes, 8),
        }),
        mp_join_len::SYN_ACK => Ok(MpJoin::SynAck {
            backup,
            address_id: bytes[3],
            truncated_hmac: read_u64(bytes, 4),
            sender_nonce: read_u32(bytes, 12),
        }),
        mp_join_len::ACK => {
            let mut hmac = [0; 20];
            hmac.copy_from_slice(&bytes[4..24]);
            Ok(MpJoin::Ack { hmac })
        }
        _ => Err(WireError::Malformed),
    }
}

/// DSS (RFC 8684, section 3.3, figure 9). The flags give the widths of Data ACK and DSN; the
/// mapping carries a checksum iff the length has two more octets than the flags need
/// (section 3.3.1; Linux infers it the same way). Flags a and m without A and M are ignored,
/// as Linux does.
fn parse_dss(bytes: &[u8]) -> Result<Dss, WireError> {
    let Some(&flags) = bytes.get(3) else {
        return Err(WireError::Malformed);
    };
    let has_ack = flags & dss_flag::DATA_ACK != 0;
    let ack64 = flags & dss_flag::DATA_ACK_64 != 0;
    let has_mapping = flags & dss_flag::MAPPING != 0;
    let seq64 = flags & dss_flag::DATA_SEQ_64 != 0;
    let ack_len = match (has_ack, ack64) {
        (false, _) => 0,
        (true, false) => 4,
        (true, true) => 8,
    };
    let mapping_len = match (has_mapping, seq64) {
        (false, _) => 0,
        (true, false) => 4 + 4 + 2,
        (true, true) => 8 + 4 + 2,
    };
    let expected = 4 + ack_len + mapping_len;
    let has_checksum = if bytes.len() == expected {
        false
    } else if has_mapping && bytes.len() == expected + 2 {
        true
    } else {
        return Err(WireError::Malformed);
    };
    let mut at = 4;
    let data_ack = match (has_ack, ack64) {
        (false, _) => None,
        (true, false) => Some(DataSeqWire::Bits32(read_u32(bytes, at))),
        (true, true) => Some(DataSeqWire::Bits64(read_u64(bytes, at))),
    };
    at += ack_len;
    let mapping = has_mapping.then(|| {
        let (data_seq, seq_len) = if seq64 {
            (DataSeqWire::Bits64(read_u64(bytes, at)), 8)
        } else {
            (DataSeqWire::Bits32(read_u32(bytes, at)), 4)
        };
        let at = at + seq_len;
        DssMapping {
            data_seq,
            subflow_seq: read_u32(bytes, at),
            data_level_length: read_u16(bytes, at + 4),
            checksum: has_checksum.then(|| read_u16(bytes, at + 6)),
        }
    });
    Ok(Dss {
        data_ack,
        mapping,
        data_fin: flags & dss_flag::DATA_FIN != 0,
    })
}

/// ADD_ADDR version 1 (RFC 8684, section 3.4.1, figure 12). The address family and the
/// port's presence follow from the length; the truncated HMAC is present exactly when E is
/// 0. The lengths are Linux's `TCPOLEN_MPTCP_ADD_ADDR*`.
fn parse_add_addr_v1(bytes: &[u8]) -> Result<AddAddr, WireError> {
    let echo = bytes[2] & ADD_ADDR_FLAG_ECHO != 0;
    let hmac_len = if echo { 0 } else { 8 };
    let (is_v6, has_port) = match bytes.len().checked_sub(hmac_len) {
        Some(8) => (false, false),
        Some(10) => (false, true),
        Some(20) => (true, false),
        Some(22) => (true, true),
        _ => return Err(WireError::Malformed),
    };
    let mut add = read_address_and_port(bytes, is_v6, has_port);
    add.echo = echo;
    if !echo {
        add.truncated_hmac = Some(read_u64(bytes, bytes.len() - 8));
    }
    Ok(add)
}

/// Reads address ID, address and port of an ADD_ADDR whose length has been checked.
fn read_address_and_port(bytes: &[u8], is_v6: bool, has_port: bool) -> AddAddr {
    let (address, port_at) = if is_v6 {
        (IpAddr::V6(read_ipv6(bytes, 4)), 20)
    } else {
        (IpAddr::V4(read_ipv4(bytes, 4)), 8)
    };
    AddAddr {
        echo: false,
        address_id: bytes[3],
        address,
        port: has_port.then(|| read_u16(bytes, port_at)),
        truncated_hmac: None,
    }
}

/// Parses a version 0 ADD_ADDR (RFC 6824, section 3.4.1, figure 12): the low nibble of the
/// third octet is the IP version (4 or 6), there is no echo flag and no HMAC, and the port is
/// optional. Version 0 and version 1 share lengths (8 is a v0 IPv4 address and a v1 echo),
/// so the caller picks this function by the version negotiated in MP_CAPABLE.
pub fn parse_add_addr_v0(option: &[u8]) -> Result<AddAddr, WireError> {
    let bytes = option_bytes(option)?;
    if bytes[2] >> 4 != subtype::ADD_ADDR {
        return Err(WireError::Malformed);
    }
    let (is_v6, has_port) = match (bytes[2] & 0x0f, bytes.len()) {
        (4, 8) => (false, false),
        (4, 10) => (false, true),
        (6, 20) => (true, false),
        (6, 22) => (true, true),
        _ => return Err(WireError::Malformed),
    };
    Ok(read_address_and_port(bytes, is_v6, has_port))
}

#[cfg(test)]
#[path = "mptcp_tests.rs"]
mod tests;
