//! The IPv6 keys of an interface (`address6`, `gateway6`) and listen addresses of either
//! family: parsed and checked here, so that the rest of the configuration stays IPv4-shaped.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::ConfigError;

/// The appliance's IPv6 identity on one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6InterfaceConfig {
    /// The appliance's own IPv6 address on this link (a global or unique-local unicast one).
    pub address: Ipv6Addr,
    /// Length of the on-link prefix, 1..=128.
    pub prefix_len: u8,
    /// Next hop (router) for IPv6 destinations outside the prefix: on-link or link-local.
    pub gateway: Option<Ipv6Addr>,
}

impl Ipv6InterfaceConfig {
    /// Whether `destination` is inside the on-link prefix.
    pub fn is_on_link(&self, destination: Ipv6Addr) -> bool {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.prefix_len))
            .unwrap_or(0);
        destination.to_bits() & mask == self.address.to_bits() & mask
    }
}

/// `interface[N].address6` (and `gateway6`): `ADDRESS/LEN`, a unicast address that is not
/// unspecified, loopback, link-local (the interface has one of its own for neighbour
/// discovery, this is the address clients reach) or IPv4-mapped.
pub(super) fn parse_interface(
    address6: &str,
    gateway6: Option<&str>,
    key: impl Fn(&str) -> String,
) -> Result<Ipv6InterfaceConfig, ConfigError> {
    let invalid = || ConfigError::InvalidIpv6InterfaceAddress {
        key: key("address6"),
        value: address6.to_owned(),
    };
    let (address, prefix_len) = address6.split_once('/').ok_or_else(invalid)?;
    let address: Ipv6Addr = address.parse().map_err(|_| invalid())?;
    if prefix_len.is_empty() || !prefix_len.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid());
    }
    let prefix_len: u64 = prefix_len.parse().map_err(|_| invalid())?;
    if !(1..=128).contains(&prefix_len) {
        return Err(ConfigError::OutOfRange {
            key: key("address6"),
            value: prefix_len,
            min: 1,
            max: 128,
        });
    }
    let unusable = address.is_unspecified()
        || address.is_loopback()
        || address.is_multicast()
        || address.is_unicast_link_local()
        || address.to_ipv4_mapped().is_some();
    if unusable {
        return Err(ConfigError::NotAnIpv6HostAddress {
            key: key("address6"),
            address,
        });
    }
    let mut interface = Ipv6InterfaceConfig {
        address,
        prefix_len: prefix_len as u8,
        gateway: None,
    };
    if let Some(gateway) = gateway6 {
        let parsed: Ipv6Addr = gateway.parse().map_err(|_| ConfigError::InvalidAddress6 {
            key: key("gateway6"),
            value: gateway.to_owned(),
        })?;
        if parsed == address
            || !(parsed.is_unicast_link_local() || interface.is_on_link(parsed))
            || parsed.is_multicast()
        {
            return Err(ConfigError::Ipv6GatewayNotOnLink {
                key: key("gateway6"),
                gateway: parsed,
            });
        }
        interface.gateway = Some(parsed);
    }
    Ok(interface)
}

/// A listen address of either family, `A.B.C.D:PORT` or `[ADDRESS]:PORT`, port not 0.
pub(super) fn parse_listen(value: &str, key: String) -> Result<SocketAddr, ConfigError> {
    let address: SocketAddr = value
        .parse()
        .map_err(|_| ConfigError::InvalidListenAddress {
            key: key.clone(),
            value: value.to_owned(),
        })?;
    if address.port() == 0 {
        return Err(ConfigError::ZeroPort {
            key,
            value: value.to_owned(),
        });
    }
    Ok(match address {
        // An IPv4-mapped listen address is the IPv4 address.
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => address,
        },
        SocketAddr::V4(_) => address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(field: &str) -> String {
        format!("interface[0].{field}")
    }

    #[test]
    fn an_address_with_prefix_and_a_link_local_router_parses() {
        let parsed = parse_interface("2001:2:0:1::2/64", Some("fe80::1"), key).unwrap();
        assert_eq!(parsed.address, "2001:2:0:1::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(parsed.prefix_len, 64);
        assert_eq!(parsed.gateway, Some("fe80::1".parse().unwrap()));
        assert!(parsed.is_on_link("2001:2:0:1::99".parse().unwrap()));
        assert!(!parsed.is_on_link("2001:2:0:2::1".parse().unwrap()));
    }

    #[test]
    fn unusable_addresses_and_gateways_are_refused_with_their_key() {
        for bad in [
            "2001:2::1",
            "2001:2::1/0",
            "2001:2::1/129",
            "nonsense/64",
            "2001:2::1/+4",
        ] {
            let error = parse_interface(bad, None, key).unwrap_err().to_string();
            assert!(
                error.starts_with("config key interface[0].address6:"),
                "{bad}: {error}"
            );
        }
        for bad in [
            "::/64",
            "::1/128",
            "ff02::1/64",
            "fe80::2/64",
            "::ffff:198.18.0.2/96",
        ] {
            let error = parse_interface(bad, None, key).unwrap_err();
            assert!(
                matches!(error, ConfigError::NotAnIpv6HostAddress { .. }),
                "{bad}: {error}"
            );
        }
        for bad in ["2001:2:0:2::1", "2001:2:0:1::2", "ff02::2"] {
            let error = parse_interface("2001:2:0:1::2/64", Some(bad), key).unwrap_err();
            assert!(
                matches!(error, ConfigError::Ipv6GatewayNotOnLink { .. }),
                "{bad}: {error}"
            );
        }
        let error = parse_interface("2001:2:0:1::2/64", Some("fe80::x"), key).unwrap_err();
        assert!(error.to_string().contains("interface[0].gateway6"));
    }

    #[test]
    fn listen_addresses_of_both_families_parse_and_mapped_ones_are_ipv4() {
        let v4 = parse_listen("198.18.0.2:5000", "proxy[0].listen".into()).unwrap();
        assert_eq!(v4, "198.18.0.2:5000".parse().unwrap());
        let v6 = parse_listen("[2001:2:0:1::2]:5000", "proxy[0].listen".into()).unwrap();
        assert_eq!(v6, "[2001:2:0:1::2]:5000".parse().unwrap());
        let mapped = parse_listen("[::ffff:198.18.0.2]:5000", "proxy[0].listen".into()).unwrap();
        assert_eq!(mapped, v4);
        assert!(matches!(
            parse_listen("[2001:2::2]:0", "proxy[0].listen".into()),
            Err(ConfigError::ZeroPort { .. })
        ));
        assert!(matches!(
            parse_listen("2001:2::2:5000", "proxy[0].listen".into()),
            Err(ConfigError::InvalidListenAddress { .. })
        ));
    }
}
