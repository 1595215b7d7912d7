//! A toxic's client filter (`"clients"`, an extension): the addresses or
//! CIDR ranges of the connecting clients the toxic applies to. A connection
//! from any other client is left alone, as if the toxic's toxicity roll had
//! spared it; `every` then counts only the connections of those clients.

use std::net::IpAddr;

/// The clients a toxic applies to, as given (for reading back) and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFilter {
    given: Vec<String>,
    ranges: Vec<IpRange>,
}

/// An address and how many of its leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl ClientFilter {
    /// Reads each entry as an address (`127.0.0.2`, `::1`) or a range
    /// (`10.0.0.0/8`, `fd00::/8`). The error names the entry and what is
    /// wrong with it.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let ranges = entries
            .iter()
            .map(|entry| IpRange::parse(entry).map_err(|why| format!("clients: {entry:?} {why}")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            given: entries.to_vec(),
            ranges,
        })
    }

    /// The entries as given.
    pub fn entries(&self) -> &[String] {
        &self.given
    }

    /// Whether a connection from `client` is one the toxic applies to. An
    /// IPv4 client reached over an IPv6 socket (`::ffff:a.b.c.d`) counts as
    /// its IPv4 address.
    pub fn admits(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        self.ranges.iter().any(|range| range.contains(client))
    }
}

impl IpRange {
    fn parse(entry: &str) -> Result<Self, String> {
        let (address, prefix) = match entry.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (entry, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| {
            "is not an IP address or CIDR range (e.g. \"127.0.0.2\", \"10.0.0.0/8\", \"::1\")"
                .to_owned()
        })?;
        let network = network.to_canonical();
        let bits = match network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => bits,
            Some(text) => match text.trim().parse::<u8>() {
                Ok(prefix) if prefix <= bits => prefix,
                _ => {
                    return Err(format!(
                        "has a prefix length {text:?}; expected 0 to {bits} after the '/'"
                    ));
                }
            },
        };
        Ok(Self { network, prefix })
    }

    fn contains(&self, client: IpAddr) -> bool {
        match (self.network, client) {
            (IpAddr::V4(network), IpAddr::V4(client)) => leading_bits_match(
                network.to_bits().into(),
                client.to_bits().into(),
                32,
                self.prefix,
            ),
            (IpAddr::V6(network), IpAddr::V6(client)) => {
                leading_bits_match(network.to_bits(), client.to_bits(), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of the `width` low bits of `a` and `b` agree.
fn leading_bits_match(a: u128, b: u128, width: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix);
    (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(entries: &[&str]) -> Result<ClientFilter, String> {
        ClientFilter::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_and_ranges_admit_exactly_their_clients() {
        let only = filter(&["127.0.0.2", "10.0.0.0/8", "fd00::/8"]).unwrap();
        assert!(only.admits(ip("127.0.0.2")));
        assert!(!only.admits(ip("127.0.0.1")));
        assert!(only.admits(ip("10.200.3.4")));
        assert!(!only.admits(ip("11.0.0.1")));
        assert!(only.admits(ip("fd12::1")));
        assert!(!only.admits(ip("::1")));
        // An IPv4 client seen through an IPv6 socket.
        assert!(only.admits(ip("::ffff:127.0.0.2")));
        assert!(filter(&["0.0.0.0/0"]).unwrap().admits(ip("192.0.2.1")));
        assert!(filter(&["127.0.0.0/31"]).unwrap().admits(ip("127.0.0.1")));
        assert!(!filter(&["127.0.0.0/31"]).unwrap().admits(ip("127.0.0.2")));
    }

    #[test]
    fn a_bad_entry_is_named_with_what_is_wrong() {
        assert_eq!(
            filter(&["127.0.0.1", "localhost"]).unwrap_err(),
            "clients: \"localhost\" is not an IP address or CIDR range (e.g. \"127.0.0.2\", \"10.0.0.0/8\", \"::1\")"
        );
        assert_eq!(
            filter(&["10.0.0.0/33"]).unwrap_err(),
            "clients: \"10.0.0.0/33\" has a prefix length \"33\"; expected 0 to 32 after the '/'"
        );
        assert!(filter(&["::1/129"]).unwrap_err().contains("0 to 128"));
    }
}
