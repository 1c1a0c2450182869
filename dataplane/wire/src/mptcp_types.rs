// Owned representations of every MPTCP option subtype (RFC 8684, section 3; RFC 6824 for
// version 0). The helper that writes mptcp.rs moves these into it and deletes this file.

/// MP_CAPABLE (RFC 8684, section 3.1). Which fields are present depends on the segment: SYN
/// (v1: none), SYN/ACK (sender key), third ACK (both keys), first data (both keys, data-level
/// length, optional checksum). Version 0 (RFC 6824) carries the sender key on the SYN too.
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
    pub sender_key: Option<u64>,
    pub receiver_key: Option<u64>,
    pub data_level_length: Option<u16>,
    pub checksum: Option<u16>,
}

/// MP_JOIN in its three forms (RFC 8684, section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpJoin {
    Syn { backup: bool, address_id: u8, receiver_token: u32, sender_nonce: u32 },
    SynAck { backup: bool, address_id: u8, truncated_hmac: u64, sender_nonce: u32 },
    Ack { hmac: [u8; 20] },
}

/// A data sequence number as carried on the wire: 4 or 8 octets (RFC 8684, section 3.3, flags
/// a and m). A 32-bit value holds the low bits of the 64-bit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSeqWire {
    Bits32(u32),
    Bits64(u64),
}

/// A DSS mapping (RFC 8684, section 3.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DssMapping {
    pub data_seq: DataSeqWire,
    /// Relative to the subflow's initial sequence number (the first data byte is 1).
    pub subflow_seq: u32,
    pub data_level_length: u16,
    /// Present only when DSS checksums were negotiated.
    pub checksum: Option<u16>,
}

/// Data Sequence Signal (RFC 8684, section 3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dss {
    pub data_ack: Option<DataSeqWire>,
    pub mapping: Option<DssMapping>,
    /// F flag: the mapping's last data-level octet is a DATA_FIN (section 3.3.3).
    pub data_fin: bool,
}

/// ADD_ADDR (RFC 8684, section 3.4.1); version 0 (RFC 6824) has no E flag and no HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddAddr {
    pub echo: bool,
    pub address_id: u8,
    pub address: core::net::IpAddr,
    pub port: Option<u16>,
    pub truncated_hmac: Option<u64>,
}

/// MP_TCPRST (RFC 8684, section 3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpTcpRst {
    /// U, V, W, T flags; T means the error is transient.
    pub flags: u8,
    pub reason: u8,
}

/// One MPTCP option (TCP option kind 30).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MptcpOption<'a> {
    MpCapable(MpCapable),
    MpJoin(MpJoin),
    Dss(Dss),
    AddAddr(AddAddr),
    /// REMOVE_ADDR (section 3.4.2): the address IDs, borrowed from the segment.
    RemoveAddr { address_ids: &'a [u8] },
    /// MP_PRIO (section 3.3.8); `address_id` only in version 0 encodings.
    MpPrio { backup: bool, address_id: Option<u8> },
    /// MP_FAIL (section 3.7): the 64-bit data sequence number where the checksum failed.
    MpFail { data_seq: u64 },
    /// MP_FASTCLOSE (section 3.5).
    MpFastclose { receiver_key: u64 },
    MpTcpRst(MpTcpRst),
    /// A subtype this crate does not know, kept so that it can be counted.
    Unknown { subtype: u8 },
}
