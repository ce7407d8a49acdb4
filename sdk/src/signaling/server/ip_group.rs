//! Which clients count as "one address" for the per-IP connection limit.
//!
//! An IPv4 client is its address. An IPv6 client is its network prefix (by
//! default the /64 a single subscriber usually gets), since one host can use any
//! of the 2^64 addresses of its prefix. IPv4-mapped IPv6 addresses (a dual-stack
//! listener on `[::]`) count as the IPv4 address they carry.

use std::net::{IpAddr, Ipv4Addr};

/// The key of the per-IP connection count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum IpGroup {
    /// One IPv4 address.
    V4(Ipv4Addr),
    /// The leading bits of an IPv6 address (the rest zeroed).
    V6Prefix(u128),
}

impl IpGroup {
    /// The group of `ip`, with IPv6 addresses cut to `v6_prefix_len` bits (0..=128).
    pub(crate) fn of(ip: IpAddr, v6_prefix_len: u8) -> Self {
        match ip {
            IpAddr::V4(v4) => IpGroup::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpGroup::V4(v4),
                None => {
                    let bits = u32::from(v6_prefix_len.min(128));
                    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                    IpGroup::V6Prefix(u128::from(v6) & mask)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn ipv6_clients_are_grouped_by_prefix() {
        let a = IpGroup::of(ip("2001:db8:1:2::1"), 64);
        let b = IpGroup::of(ip("2001:db8:1:2:ffff:eeee:dddd:cccc"), 64);
        let other = IpGroup::of(ip("2001:db8:1:3::1"), 64);
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_ne!(
            IpGroup::of(ip("2001:db8:1:2::1"), 128),
            IpGroup::of(ip("2001:db8:1:2::2"), 128)
        );
        assert_eq!(
            IpGroup::of(ip("2001:db8::1"), 0),
            IpGroup::of(ip("fe80::1"), 0)
        );
    }

    #[test]
    fn ipv4_and_mapped_ipv4_are_one_address() {
        assert_eq!(
            IpGroup::of(ip("::ffff:192.0.2.7"), 64),
            IpGroup::of(ip("192.0.2.7"), 64)
        );
        assert_ne!(
            IpGroup::of(ip("192.0.2.7"), 64),
            IpGroup::of(ip("192.0.2.8"), 64)
        );
    }
}
