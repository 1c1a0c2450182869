//! How many mbufs each mempool holds, and so how much memory mpterm takes: all of it is
//! allocated when the pools are created, and nothing on the packet path allocates, so the
//! resident size does not grow with traffic.
//!
//! Three pools:
//! - **receive**: every received frame lives in one of these mbufs, and its payload stays there
//!   (referenced, never copied) until the peer on the other side has acknowledged it. The pool
//!   covers the ports' receive rings, the bursts in flight and the payload connections hold;
//!   when connections hold all of the payload part the ports drop frames, and TCP backs off.
//! - **transmit**: headers of outgoing frames, and small frames copied whole; a frame holds one
//!   only until the port has sent it.
//! - **indirect** (no data room): one per outgoing frame that chains received payload.
//!
//! Memory, in bytes, with `m` = mbufs and `d` = data room (2048 + 128 headroom unless the MTU
//! needs more):
//! `(m_rx + m_tx) x (d + MBUF_OVERHEAD) + m_indirect x MBUF_OVERHEAD`, where `MBUF_OVERHEAD`
//! (the `rte_mbuf` struct and the mempool's object header) is about 192 bytes. For the shipped
//! example (two interfaces, MTU 1500) that is about 91 MB.

use mpterm_dpdk::{Mempool, PortConfig, BURST_SIZE};

/// Mbufs of the receive pool set aside for payload that connections hold (received, not yet
/// acknowledged by the other side). This, not the number of connections, bounds the payload
/// memory: 32768 x 2368 bytes is about 78 MB.
pub const RX_PAYLOAD_MBUFS: u32 = 32768;
/// Mbufs per lcore that a mempool cache may hold beyond what is in use (DPDK lets a cache grow
/// to 1.5 times its size).
pub const POOL_CACHE: u32 = 256;
/// The lcores that take mbufs from the pools: the worker and the main thread (which frees the
/// ports' mbufs when it stops them).
const LCORES: u32 = 2;
/// Bytes of every mbuf beyond its data room: the `rte_mbuf` struct (two cache lines) and the
/// mempool's per-object header, rounded up.
pub const MBUF_OVERHEAD: u64 = 192;
/// Headroom DPDK reserves in front of every frame (`RTE_PKTMBUF_HEADROOM`).
const HEADROOM: u16 = Mempool::DEFAULT_DATA_ROOM - 2048;
/// Ethernet header plus one VLAN tag that a port may leave in the frame.
const ETHERNET_OVERHEAD: u16 = 18;

/// The sizes of the three mempools, derived from the configuration by [`PoolPlan::for_config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolPlan {
    /// Mbufs that receive frames.
    pub rx_mbufs: u32,
    /// Mbufs for outgoing headers and copied frames.
    pub tx_mbufs: u32,
    /// Data-less mbufs that chain received payload behind an outgoing header.
    pub indirect_mbufs: u32,
    /// Data room of receive and transmit mbufs: a whole frame of the largest MTU fits one mbuf,
    /// so received frames are never split over several.
    pub data_room: u16,
}

impl PoolPlan {
    /// The pools for `config` with ports set up as `port_config`:
    /// - `rx = interfaces x (rx_descriptors + BURST_SIZE) + RX_PAYLOAD_MBUFS + cache slack`
    /// - `tx = indirect = interfaces x (tx_descriptors + BURST_SIZE) + cache slack`
    /// - `data room = max(2048, largest MTU + 18) + 128`
    ///
    /// where the cache slack is what the lcores' caches may keep (`2 x 1.5 x POOL_CACHE`).
    pub fn for_config(config: &mpterm_control::Config, port_config: &PortConfig) -> PoolPlan {
        let interfaces = config.interfaces.len() as u32;
        let burst = BURST_SIZE as u32;
        let cache_slack = LCORES * (POOL_CACHE + POOL_CACHE / 2);
        let rx_rings = interfaces * (u32::from(port_config.rx_descriptors) + burst);
        let tx_rings = interfaces * (u32::from(port_config.tx_descriptors) + burst);
        let largest_frame = config
            .interfaces
            .iter()
            .map(|interface| interface.mtu + ETHERNET_OVERHEAD)
            .max()
            .unwrap_or(0);
        PoolPlan {
            rx_mbufs: rx_rings + RX_PAYLOAD_MBUFS + cache_slack,
            tx_mbufs: tx_rings + cache_slack,
            indirect_mbufs: tx_rings + cache_slack,
            data_room: largest_frame.max(2048) + HEADROOM,
        }
    }

    /// The memory the pools take, in bytes (the formula in the module documentation).
    pub fn memory_bytes(&self) -> u64 {
        let full = u64::from(self.data_room) + MBUF_OVERHEAD;
        (u64::from(self.rx_mbufs) + u64::from(self.tx_mbufs)) * full
            + u64::from(self.indirect_mbufs) * MBUF_OVERHEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mtus: &[u16]) -> mpterm_control::Config {
        let mut text = String::from("[eal]\nargs = []\n");
        for (index, mtu) in mtus.iter().enumerate() {
            text += &format!(
                "[[interface]]\nname = \"if{index}\"\nport = \"p{index}\"\naddress = \"198.18.{index}.2/24\"\nmtu = {mtu}\n"
            );
        }
        text += "[[proxy]]\nlisten = \"198.18.0.2:80\"\nbackend = \"198.18.0.3:80\"\n";
        mpterm_control::Config::from_toml_str(&text).unwrap()
    }

    #[test]
    fn pools_cover_every_ring_and_the_payload_reserve() {
        let ports = PortConfig::default();
        let plan = PoolPlan::for_config(&config(&[1500, 1500]), &ports);
        // 2 x (1024 + 32) + 32768 + 2 x 384, and 2 x (1024 + 32) + 2 x 384.
        assert_eq!(plan.rx_mbufs, 2112 + 32768 + 768);
        assert_eq!(plan.tx_mbufs, 2112 + 768);
        assert_eq!(plan.indirect_mbufs, 2112 + 768);
        assert_eq!(plan.data_room, Mempool::DEFAULT_DATA_ROOM);
        // (35648 + 2880) x (2176 + 192) + 2880 x 192: the 91 MB the module documents.
        assert_eq!(plan.memory_bytes(), 91_787_264);

        let three = PoolPlan::for_config(&config(&[1500, 1500, 1500]), &ports);
        assert_eq!(three.rx_mbufs - plan.rx_mbufs, 1056);
        assert_eq!(three.tx_mbufs - plan.tx_mbufs, 1056);
    }

    #[test]
    fn a_jumbo_mtu_frame_fits_one_mbuf() {
        let plan = PoolPlan::for_config(&config(&[1500, 9000]), &PortConfig::default());
        assert_eq!(plan.data_room, 9018 + 128);
        let small = PoolPlan::for_config(&config(&[576]), &PortConfig::default());
        assert_eq!(small.data_room, Mempool::DEFAULT_DATA_ROOM);
    }
}
