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
mod tests {
    use super::*;

    /// The common checks of every fixture: parse gives `expected`, emit gives the bytes back,
    /// every shorter prefix is an error, and a short output buffer is refused.
    fn check(bytes: &[u8], expected: MptcpOption<'_>) {
        assert_eq!(
            MptcpOption::parse(bytes),
            Ok(expected),
            "parse {bytes:02x?}"
        );
        assert_eq!(expected.encoded_len(), bytes.len());
        let mut out = [0u8; MAX_OPTION_LEN + 1];
        assert_eq!(expected.emit(&mut out), Ok(bytes.len()));
        assert_eq!(&out[..bytes.len()], bytes, "emit");
        assert_eq!(out[bytes.len()], 0, "nothing written past the option");
        assert_eq!(
            expected.emit(&mut out[..bytes.len() - 1]),
            Err(WireError::BufferTooSmall)
        );
        for len in 0..bytes.len() {
            assert!(
                MptcpOption::parse(&bytes[..len]).is_err(),
                "{len}-byte prefix of {bytes:02x?}"
            );
        }
        // Bytes after the declared length belong to the next option.
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(&[1, 1, 0]);
        assert_eq!(MptcpOption::parse(&longer), Ok(expected));
    }

    /// Every length but the valid ones is `Malformed` (the buffer always holds them all).
    fn check_only_lengths(header: [u8; 4], valid: &[usize]) {
        for len in 3..=MAX_OPTION_LEN {
            let mut bytes = [0u8; MAX_OPTION_LEN];
            bytes[..4].copy_from_slice(&header);
            bytes[1] = len as u8;
            let result = MptcpOption::parse(&bytes[..len]);
            if valid.contains(&len) {
                assert!(result.is_ok(), "length {len} of {header:02x?}");
            } else {
                assert_eq!(
                    result,
                    Err(WireError::Malformed),
                    "length {len} of {header:02x?}"
                );
            }
        }
    }

    fn capable(flags_byte: u8) -> MpCapable {
        MpCapable {
            version: 1,
            checksum_required: flags_byte & 0x80 != 0,
            extensibility: flags_byte & 0x40 != 0,
            no_new_subflows_to_source: flags_byte & 0x20 != 0,
            hmac_sha256: flags_byte & 0x01 != 0,
            sender_key: None,
            receiver_key: None,
            data_level_length: None,
            checksum: None,
        }
    }

    // MP_CAPABLE (RFC 8684, section 3.1).

    #[test]
    fn mp_capable_syn_from_linux() {
        // Linux SYN with checksums enabled: "mptcp 4 capable v1 csum".
        check(
            &[0x1e, 0x04, 0x01, 0x81],
            MptcpOption::MpCapable(capable(0x81)),
        );
    }

    #[test]
    fn mp_capable_syn_ack_from_linux() {
        let bytes = [
            0x1e, 0x0c, 0x01, 0x81, 0x4e, 0xf8, 0xac, 0xc5, 0x96, 0x81, 0xe6, 0x3d,
        ];
        let mut expected = capable(0x81);
        expected.sender_key = Some(0x4ef8_acc5_9681_e63d);
        check(&bytes, MptcpOption::MpCapable(expected));
    }

    #[test]
    fn mp_capable_third_ack_from_linux() {
        let bytes = [
            0x1e, 0x14, 0x01, 0x81, 0xfb, 0xfe, 0xad, 0x4d, 0xd7, 0xd9, 0x3e, 0x14, 0x4e, 0xf8,
            0xac, 0xc5, 0x96, 0x81, 0xe6, 0x3d,
        ];
        let mut expected = capable(0x81);
        expected.sender_key = Some(0xfbfe_ad4d_d7d9_3e14);
        expected.receiver_key = Some(0x4ef8_acc5_9681_e63d);
        check(&bytes, MptcpOption::MpCapable(expected));
    }

    #[test]
    fn mp_capable_with_data_level_length() {
        // RFC 8684, figure 4, length 22: both keys, then the data-level length (here 0x0102).
        // Flags: H only, plus C (0x20) to see it parsed.
        let bytes = [
            0x1e, 0x16, 0x01, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x01,
            0x02,
        ];
        let mut expected = capable(0x21);
        expected.sender_key = Some(0x0102_0304_0506_0708);
        expected.receiver_key = Some(0x090a_0b0c_0d0e_0f10);
        expected.data_level_length = Some(0x0102);
        assert!(expected.no_new_subflows_to_source && !expected.checksum_required);
        check(&bytes, MptcpOption::MpCapable(expected));
    }

    #[test]
    fn mp_capable_with_data_level_length_and_checksum() {
        // Length 24: as above with a 2-byte checksum (0xbeef) after the data-level length.
        let bytes = [
            0x1e, 0x18, 0x01, 0x81, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x00,
            0x0b, 0xbe, 0xef,
        ];
        let mut expected = capable(0x81);
        expected.sender_key = Some(0x0102_0304_0506_0708);
        expected.receiver_key = Some(0x090a_0b0c_0d0e_0f10);
        expected.data_level_length = Some(11);
        expected.checksum = Some(0xbeef);
        check(&bytes, MptcpOption::MpCapable(expected));
    }

    #[test]
    fn mp_capable_version_0_syn() {
        // RFC 6824, section 3.1: version 0 sends the sender's key on the SYN (length 12);
        // flags A and H (HMAC-SHA1 there) set, B as the extensibility bit.
        let bytes = [
            0x1e, 0x0c, 0x00, 0xc1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11,
        ];
        let mut expected = capable(0xc1);
        expected.version = 0;
        expected.sender_key = Some(0xaabb_ccdd_eeff_0011);
        assert!(expected.extensibility);
        check(&bytes, MptcpOption::MpCapable(expected));
    }

    #[test]
    fn mp_capable_lengths() {
        check_only_lengths([0x1e, 0, 0x01, 0x81], &[4, 12, 20, 22, 24]);
    }

    #[test]
    fn mp_capable_impossible_field_combinations_are_not_emitted() {
        let mut buf = [0u8; 40];
        let mut receiver_only = capable(0x01);
        receiver_only.receiver_key = Some(1);
        let mut checksum_only = capable(0x01);
        checksum_only.sender_key = Some(1);
        checksum_only.receiver_key = Some(2);
        checksum_only.checksum = Some(3);
        let mut length_without_receiver = capable(0x01);
        length_without_receiver.sender_key = Some(1);
        length_without_receiver.data_level_length = Some(1);
        for bad in [receiver_only, checksum_only, length_without_receiver] {
            assert_eq!(
                MptcpOption::MpCapable(bad).emit(&mut buf),
                Err(WireError::Malformed)
            );
            assert_eq!(MptcpOption::MpCapable(bad).encoded_len(), 0);
        }
    }

    // MP_JOIN (RFC 8684, section 3.2).

    #[test]
    fn mp_join_syn_from_linux() {
        // "mptcp 12 join id 1 token 0xcfd543f2 nonce 0x35766c84".
        let bytes = [
            0x1e, 0x0c, 0x10, 0x01, 0xcf, 0xd5, 0x43, 0xf2, 0x35, 0x76, 0x6c, 0x84,
        ];
        check(
            &bytes,
            MptcpOption::MpJoin(MpJoin::Syn {
                backup: false,
                address_id: 1,
                receiver_token: 0xcfd5_43f2,
                sender_nonce: 0x3576_6c84,
            }),
        );
    }

    #[test]
    fn mp_join_syn_with_backup() {
        // Figure 5 with B set and address ID 7.
        let bytes = [0x1e, 0x0c, 0x11, 0x07, 0, 0, 0, 1, 0, 0, 0, 2];
        check(
            &bytes,
            MptcpOption::MpJoin(MpJoin::Syn {
                backup: true,
                address_id: 7,
                receiver_token: 1,
                sender_nonce: 2,
            }),
        );
    }

    #[test]
    fn mp_join_syn_ack_from_linux() {
        // "mptcp 16 join id 5 hmac 0x3c72f30bdb6cae37 nonce 0x3c3682b4".
        let bytes = [
            0x1e, 0x10, 0x10, 0x05, 0x3c, 0x72, 0xf3, 0x0b, 0xdb, 0x6c, 0xae, 0x37, 0x3c, 0x36,
            0x82, 0xb4,
        ];
        check(
            &bytes,
            MptcpOption::MpJoin(MpJoin::SynAck {
                backup: false,
                address_id: 5,
                truncated_hmac: 0x3c72_f30b_db6c_ae37,
                sender_nonce: 0x3c36_82b4,
            }),
        );
    }

    #[test]
    fn mp_join_syn_ack_backup_from_linux() {
        // "mptcp 16 join backup id 5 hmac 0x93485e443c4687c1 nonce 0xb26ee212".
        let bytes = [
            0x1e, 0x10, 0x11, 0x05, 0x93, 0x48, 0x5e, 0x44, 0x3c, 0x46, 0x87, 0xc1, 0xb2, 0x6e,
            0xe2, 0x12,
        ];
        check(
            &bytes,
            MptcpOption::MpJoin(MpJoin::SynAck {
                backup: true,
                address_id: 5,
                truncated_hmac: 0x9348_5e44_3c46_87c1,
                sender_nonce: 0xb26e_e212,
            }),
        );
    }

    #[test]
    fn mp_join_ack_from_linux() {
        // "mptcp 24 join hmac 0x23f11612fc09025333faa023c27f8e54d359113e".
        let hmac = [
            0x23, 0xf1, 0x16, 0x12, 0xfc, 0x09, 0x02, 0x53, 0x33, 0xfa, 0xa0, 0x23, 0xc2, 0x7f,
            0x8e, 0x54, 0xd3, 0x59, 0x11, 0x3e,
        ];
        let mut bytes = vec![0x1e, 0x18, 0x10, 0x00];
        bytes.extend_from_slice(&hmac);
        check(&bytes, MptcpOption::MpJoin(MpJoin::Ack { hmac }));
    }

    #[test]
    fn mp_join_lengths() {
        check_only_lengths([0x1e, 0, 0x10, 0x01], &[12, 16, 24]);
    }

    // DSS (RFC 8684, section 3.3).

    #[test]
    fn dss_data_ack_32_from_linux() {
        // "mptcp 8 dss ack 1159120784": flags A.
        check(
            &[0x1e, 0x08, 0x20, 0x01, 0x45, 0x16, 0xc7, 0x90],
            MptcpOption::Dss(Dss {
                data_ack: Some(DataSeqWire::Bits32(0x4516_c790)),
                mapping: None,
                data_fin: false,
            }),
        );
    }

    #[test]
    fn dss_data_ack_64_from_linux() {
        // "mptcp 12 dss ack 6944833978441844635": flags A a.
        check(
            &[
                0x1e, 0x0c, 0x20, 0x03, 0x60, 0x61, 0x01, 0xb5, 0x45, 0x16, 0xc7, 0x9b,
            ],
            MptcpOption::Dss(Dss {
                data_ack: Some(DataSeqWire::Bits64(6_944_833_978_441_844_635)),
                mapping: None,
                data_fin: false,
            }),
        );
    }

    #[test]
    fn dss_ack_32_mapping_64_checksum_from_linux() {
        // "mptcp 24 dss ack 1593742231 seq 6944833978441844624 subseq 1 len 11 csum 0xfb6f":
        // flags A M m.
        let bytes = [
            0x1e, 0x18, 0x20, 0x0d, 0x5e, 0xfe, 0x93, 0x97, 0x60, 0x61, 0x01, 0xb5, 0x45, 0x16,
            0xc7, 0x90, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0b, 0xfb, 0x6f,
        ];
        check(
            &bytes,
            MptcpOption::Dss(Dss {
                data_ack: Some(DataSeqWire::Bits32(1_593_742_231)),
                mapping: Some(DssMapping {
                    data_seq: DataSeqWire::Bits64(6_944_833_978_441_844_624),
                    subflow_seq: 1,
                    data_level_length: 11,
                    checksum: Some(0xfb6f),
                }),
                data_fin: false,
            }),
        );
    }

    #[test]
    fn dss_ack_64_mapping_64_checksum_from_linux() {
        // "mptcp 28 dss ack 6944833978441847638 seq 14739310790519460759 subseq 1 len 26 csum
        // 0xdf8f": flags A a M m.
        let bytes = [
            0x1e, 0x1c, 0x20, 0x0f, 0x60, 0x61, 0x01, 0xb5, 0x45, 0x16, 0xd3, 0x56, 0xcc, 0x8c,
            0x8d, 0x12, 0x5e, 0xfe, 0x93, 0x97, 0x00, 0x00, 0x00, 0x01, 0x00, 0x1a, 0xdf, 0x8f,
        ];
        check(
            &bytes,
            MptcpOption::Dss(Dss {
                data_ack: Some(DataSeqWire::Bits64(6_944_833_978_441_847_638)),
                mapping: Some(DssMapping {
                    data_seq: DataSeqWire::Bits64(14_739_310_790_519_460_759),
                    subflow_seq: 1,
                    data_level_length: 26,
                    checksum: Some(0xdf8f),
                }),
                data_fin: false,
            }),
        );
    }

    #[test]
    fn dss_data_fin_from_linux() {
        // "mptcp 28 dss fin ack 14739310790519460785 seq 6944833978441847648 subseq 0 len 1
        // csum 0x8571": flags F A a M m, the DATA_FIN-only mapping of section 3.3.3.
        let bytes = [
            0x1e, 0x1c, 0x20, 0x1f, 0xcc, 0x8c, 0x8d, 0x12, 0x5e, 0xfe, 0x93, 0xb1, 0x60, 0x61,
            0x01, 0xb5, 0x45, 0x16, 0xd3, 0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x85, 0x71,
        ];
        check(
            &bytes,
            MptcpOption::Dss(Dss {
                data_ack: Some(DataSeqWire::Bits64(14_739_310_790_519_460_785)),
                mapping: Some(DssMapping {
                    data_seq: DataSeqWire::Bits64(6_944_833_978_441_847_648),
                    subflow_seq: 0,
                    data_level_length: 1,
                    checksum: Some(0x8571),
                }),
                data_fin: true,
            }),
        );
    }

    #[test]
    fn dss_mapping_32_without_checksum() {
        // Figure 9 with flags M only: DSN 4 bytes, subflow seq, length, no checksum.
        let bytes = [
            0x1e, 0x0e, 0x20, 0x04, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x10, 0x00, 0x05, 0xb4,
        ];
        check(
            &bytes,
            MptcpOption::Dss(Dss {
                data_ack: None,
                mapping: Some(DssMapping {
                    data_seq: DataSeqWire::Bits32(0x1122_3344),
                    subflow_seq: 0x1000,
                    data_level_length: 1460,
                    checksum: None,
                }),
                data_fin: false,
            }),
        );
    }

    /// Builds a DSS option byte by byte from figure 9, independently of `emit`.
    fn dss_bytes(ack: u8, seq: u8, checksum: bool, fin: bool) -> (Vec<u8>, Dss) {
        let mut flags = 0u8;
        let mut body = Vec::new();
        let data_ack = match ack {
            4 => {
                flags |= 0x01;
                body.extend_from_slice(&[0xa1, 0xa2, 0xa3, 0xa4]);
                Some(DataSeqWire::Bits32(0xa1a2_a3a4))
            }
            8 => {
                flags |= 0x03;
                body.extend_from_slice(&[0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8]);
                Some(DataSeqWire::Bits64(0xa1a2_a3a4_a5a6_a7a8))
            }
            _ => None,
        };
        let data_seq = match seq {
            4 => {
                flags |= 0x04;
                body.extend_from_slice(&[0xd1, 0xd2, 0xd3, 0xd4]);
                Some(DataSeqWire::Bits32(0xd1d2_d3d4))
            }
            8 => {
                flags |= 0x0c;
                body.extend_from_slice(&[0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8]);
                Some(DataSeqWire::Bits64(0xd1d2_d3d4_d5d6_d7d8))
            }
            _ => None,
        };
        let mapping = data_seq.map(|data_seq| {
            body.extend_from_slice(&[0x00, 0x00, 0x00, 0x2a, 0x01, 0x00]);
            if checksum {
                body.extend_from_slice(&[0xc5, 0xc6]);
            }
            DssMapping {
                data_seq,
                subflow_seq: 42,
                data_level_length: 256,
                checksum: checksum.then_some(0xc5c6),
            }
        });
        if fin {
            flags |= 0x10;
        }
        let mut bytes = vec![0x1e, 4 + body.len() as u8, 0x20, flags];
        bytes.extend_from_slice(&body);
        let dss = Dss {
            data_ack,
            mapping,
            data_fin: fin,
        };
        (bytes, dss)
    }

    #[test]
    fn dss_every_flag_combination() {
        let mut forms = 0;
        for ack in [0, 4, 8] {
            for seq in [0, 4, 8] {
                for checksum in [false, true] {
                    if checksum && seq == 0 {
                        continue;
                    }
                    for fin in [false, true] {
                        let (bytes, dss) = dss_bytes(ack, seq, checksum, fin);
                        check(&bytes, MptcpOption::Dss(dss));
                        forms += 1;
                    }
                }
            }
        }
        assert_eq!(forms, 30);
    }

    #[test]
    fn dss_lengths_must_match_flags() {
        // Flags A M m: 4 + 4 + 14 = 22, or 24 with a checksum; nothing else.
        check_only_lengths([0x1e, 0, 0x20, 0x0d], &[22, 24]);
        // No mapping: a checksum cannot be present, so only the exact length is valid.
        check_only_lengths([0x1e, 0, 0x20, 0x03], &[12]);
        check_only_lengths([0x1e, 0, 0x20, 0x00], &[4]);
    }

    #[test]
    fn dss_width_flags_without_their_fields_are_ignored() {
        // Flags a and m without A and M (as Linux reads them): an empty DSS.
        assert_eq!(
            MptcpOption::parse(&[0x1e, 0x04, 0x20, 0x0a]),
            Ok(MptcpOption::Dss(Dss {
                data_ack: None,
                mapping: None,
                data_fin: false,
            }))
        );
    }

    // ADD_ADDR (RFC 8684, section 3.4.1; RFC 6824 for version 0).

    #[test]
    fn add_addr_v4_from_linux() {
        // "mptcp 16 add-addr v1 id 5 198.18.1.2 hmac 0xa17eef9f293a6c29".
        let bytes = [
            0x1e, 0x10, 0x30, 0x05, 0xc6, 0x12, 0x01, 0x02, 0xa1, 0x7e, 0xef, 0x9f, 0x29, 0x3a,
            0x6c, 0x29,
        ];
        check(
            &bytes,
            MptcpOption::AddAddr(AddAddr {
                echo: false,
                address_id: 5,
                address: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
                port: None,
                truncated_hmac: Some(0xa17e_ef9f_293a_6c29),
            }),
        );
    }

    #[test]
    fn add_addr_v4_echo_from_linux() {
        // "mptcp 8 add-addr v1-echo id 5 198.18.1.2".
        check(
            &[0x1e, 0x08, 0x31, 0x05, 0xc6, 0x12, 0x01, 0x02],
            MptcpOption::AddAddr(AddAddr {
                echo: true,
                address_id: 5,
                address: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
                port: None,
                truncated_hmac: None,
            }),
        );
    }

    #[test]
    fn add_addr_v6_from_linux() {
        // "mptcp 28 add-addr v1 id 6 2001:2::2 hmac 0x8807acf80c13d51d".
        let bytes = [
            0x1e, 0x1c, 0x30, 0x06, 0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00,
            0x02, 0x88, 0x07, 0xac, 0xf8, 0x0c, 0x13, 0xd5, 0x1d,
        ];
        check(
            &bytes,
            MptcpOption::AddAddr(AddAddr {
                echo: false,
                address_id: 6,
                address: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2)),
                port: None,
                truncated_hmac: Some(0x8807_acf8_0c13_d51d),
            }),
        );
    }

    #[test]
    fn add_addr_v6_echo_from_linux() {
        // "mptcp 20 add-addr v1-echo id 6 2001:2::2".
        let bytes = [
            0x1e, 0x14, 0x31, 0x06, 0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00,
            0x02,
        ];
        check(
            &bytes,
            MptcpOption::AddAddr(AddAddr {
                echo: true,
                address_id: 6,
                address: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2)),
                port: None,
                truncated_hmac: None,
            }),
        );
    }

    #[test]
    fn add_addr_v4_with_port() {
        // Figure 12: address, port 8080 (0x1f90), then the HMAC; length 18.
        let bytes = [
            0x1e, 0x12, 0x30, 0x09, 198, 18, 1, 2, 0x1f, 0x90, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        check(
            &bytes,
            MptcpOption::AddAddr(AddAddr {
                echo: false,
                address_id: 9,
                address: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
                port: Some(8080),
                truncated_hmac: Some(0x0102_0304_0506_0708),
            }),
        );
    }

    #[test]
    fn add_addr_v6_echo_with_port() {
        // Length 22: IPv6 address and port, echo so no HMAC.
        let bytes = [
            0x1e, 0x16, 0x31, 0x02, 0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00,
            0x09, 0x00, 0x50,
        ];
        check(
            &bytes,
            MptcpOption::AddAddr(AddAddr {
                echo: true,
                address_id: 2,
                address: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 9)),
                port: Some(80),
                truncated_hmac: None,
            }),
        );
    }

    #[test]
    fn add_addr_lengths() {
        check_only_lengths([0x1e, 0, 0x30, 0x01], &[16, 18, 28, 30]);
        check_only_lengths([0x1e, 0, 0x31, 0x01], &[8, 10, 20, 22]);
    }

    #[test]
    fn add_addr_echo_and_hmac_must_agree_on_emit() {
        let mut add = AddAddr {
            echo: true,
            address_id: 1,
            address: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            port: None,
            truncated_hmac: Some(1),
        };
        let mut buf = [0u8; 40];
        assert_eq!(
            MptcpOption::AddAddr(add).emit(&mut buf),
            Err(WireError::Malformed)
        );
        add.echo = false;
        add.truncated_hmac = None;
        assert_eq!(
            MptcpOption::AddAddr(add).emit(&mut buf),
            Err(WireError::Malformed)
        );
    }

    /// The checks of [`check`] for the version 0 ADD_ADDR functions.
    fn check_v0(bytes: &[u8], expected: AddAddr) {
        assert_eq!(parse_add_addr_v0(bytes), Ok(expected));
        let mut out = [0u8; MAX_OPTION_LEN];
        assert_eq!(expected.emit_v0(&mut out), Ok(bytes.len()));
        assert_eq!(&out[..bytes.len()], bytes);
        assert_eq!(
            expected.emit_v0(&mut out[..bytes.len() - 1]),
            Err(WireError::BufferTooSmall)
        );
        for len in 0..bytes.len() {
            assert!(parse_add_addr_v0(&bytes[..len]).is_err(), "{len} bytes");
        }
    }

    #[test]
    fn add_addr_version_0() {
        // RFC 6824, figure 12: IPVer 4, address ID 3, 198.18.1.2; then with port 443.
        let v4 = AddAddr {
            echo: false,
            address_id: 3,
            address: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
            port: None,
            truncated_hmac: None,
        };
        check_v0(&[0x1e, 0x08, 0x34, 0x03, 198, 18, 1, 2], v4);
        check_v0(
            &[0x1e, 0x0a, 0x34, 0x03, 198, 18, 1, 2, 0x01, 0xbb],
            AddAddr {
                port: Some(443),
                ..v4
            },
        );
        let v6 = AddAddr {
            address: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2)),
            ..v4
        };
        let mut bytes = vec![0x1e, 0x14, 0x36, 0x03];
        bytes.extend_from_slice(&[0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        check_v0(&bytes, v6);
        bytes[1] = 0x16;
        bytes.extend_from_slice(&[0x01, 0xbb]);
        check_v0(
            &bytes,
            AddAddr {
                port: Some(443),
                ..v6
            },
        );
    }

    #[test]
    fn add_addr_version_0_rejects_mismatches() {
        // IPVer 6 with an IPv4 length, IPVer 5, and another subtype.
        for bytes in [
            [0x1e, 0x08, 0x36, 0x03, 198, 18, 1, 2],
            [0x1e, 0x08, 0x35, 0x03, 198, 18, 1, 2],
            [0x1e, 0x08, 0x44, 0x03, 198, 18, 1, 2],
        ] {
            assert_eq!(parse_add_addr_v0(&bytes), Err(WireError::Malformed));
        }
        let echo = AddAddr {
            echo: true,
            address_id: 0,
            address: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
            port: None,
            truncated_hmac: None,
        };
        assert_eq!(echo.emit_v0(&mut [0; 40]), Err(WireError::Malformed));
    }

    // REMOVE_ADDR (section 3.4.2).

    #[test]
    fn remove_addr_from_linux() {
        // "mptcp 4 rem-addr id 6".
        check(
            &[0x1e, 0x04, 0x40, 0x06],
            MptcpOption::RemoveAddr { address_ids: &[6] },
        );
    }

    #[test]
    fn remove_addr_several_ids() {
        check(
            &[0x1e, 0x06, 0x40, 0x01, 0x02, 0x07],
            MptcpOption::RemoveAddr {
                address_ids: &[1, 2, 7],
            },
        );
    }

    #[test]
    fn remove_addr_needs_an_id() {
        assert_eq!(
            MptcpOption::parse(&[0x1e, 0x03, 0x40]),
            Err(WireError::Malformed)
        );
        assert_eq!(
            MptcpOption::RemoveAddr { address_ids: &[] }.emit(&mut [0; 8]),
            Err(WireError::Malformed)
        );
    }

    // MP_PRIO (section 3.3.8).

    #[test]
    fn mp_prio_from_linux() {
        // "mptcp 3 prio backup" (Linux follows it with a NOP).
        check(
            &[0x1e, 0x03, 0x51],
            MptcpOption::MpPrio {
                backup: true,
                address_id: None,
            },
        );
        check(
            &[0x1e, 0x03, 0x50],
            MptcpOption::MpPrio {
                backup: false,
                address_id: None,
            },
        );
    }

    #[test]
    fn mp_prio_version_0() {
        // RFC 6824, figure 11: length 4 with the address ID.
        check(
            &[0x1e, 0x04, 0x51, 0x02],
            MptcpOption::MpPrio {
                backup: true,
                address_id: Some(2),
            },
        );
        check_only_lengths([0x1e, 0, 0x51, 0x02], &[3, 4]);
    }

    // MP_FAIL (section 3.7), MP_FASTCLOSE (section 3.5), MP_TCPRST (section 3.6).

    #[test]
    fn mp_fail() {
        // Figure 16: subtype 6, 12 reserved bits, the 64-bit DSN.
        check(
            &[
                0x1e, 0x0c, 0x60, 0x00, 0x60, 0x61, 0x01, 0xb5, 0x45, 0x16, 0xc7, 0x9b,
            ],
            MptcpOption::MpFail {
                data_seq: 6_944_833_978_441_844_635,
            },
        );
        check_only_lengths([0x1e, 0, 0x60, 0x00], &[12]);
    }

    #[test]
    fn mp_fastclose_from_linux() {
        // "mptcp 12 fast-close key 0x85c6dcb0acb9e192".
        check(
            &[
                0x1e, 0x0c, 0x70, 0x00, 0x85, 0xc6, 0xdc, 0xb0, 0xac, 0xb9, 0xe1, 0x92,
            ],
            MptcpOption::MpFastclose {
                receiver_key: 0x85c6_dcb0_acb9_e192,
            },
        );
        check_only_lengths([0x1e, 0, 0x70, 0x00], &[12]);
    }

    #[test]
    fn mp_tcprst_from_linux() {
        // Linux's abort: "mptcp 4" with flags 0 and reason 0 (unspecified).
        check(
            &[0x1e, 0x04, 0x80, 0x00],
            MptcpOption::MpTcpRst(MpTcpRst {
                flags: 0,
                reason: 0,
            }),
        );
    }

    #[test]
    fn mp_tcprst_transient_with_reason() {
        // Flag T and reason 0x06 (middlebox interference).
        check(
            &[0x1e, 0x04, 0x81, 0x06],
            MptcpOption::MpTcpRst(MpTcpRst {
                flags: MpTcpRst::FLAG_TRANSIENT,
                reason: 6,
            }),
        );
        check_only_lengths([0x1e, 0, 0x81, 0x06], &[4]);
    }

    // Framing shared by all subtypes.

    #[test]
    fn unknown_subtype_is_a_value() {
        assert_eq!(
            MptcpOption::parse(&[0x1e, 0x05, 0xf0, 0x01, 0x02]),
            Ok(MptcpOption::Unknown { subtype: 0xf })
        );
        assert_eq!(
            MptcpOption::Unknown { subtype: 0xf }.emit(&mut [0; 8]),
            Err(WireError::Unsupported)
        );
    }

    #[test]
    fn framing_errors() {
        // Not kind 30; length below 3; length beyond the slice.
        assert_eq!(
            MptcpOption::parse(&[0x1d, 0x04, 0x01, 0x81]),
            Err(WireError::Malformed)
        );
        assert_eq!(
            MptcpOption::parse(&[0x1e, 0x02, 0x01, 0x81]),
            Err(WireError::Malformed)
        );
        assert_eq!(
            MptcpOption::parse(&[0x1e, 0x05, 0x01, 0x81]),
            Err(WireError::Truncated)
        );
        assert_eq!(MptcpOption::parse(&[0x1e]), Err(WireError::Truncated));
    }
}
