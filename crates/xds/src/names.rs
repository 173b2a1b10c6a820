//! Istio's names for Envoy resources, so that tools written for Istio (dashboards,
//! `istioctl proxy-config`, access-log parsers) read ironmesh's config unchanged.
//!
//! - clusters: `outbound|<port>|<subset>|<fqdn>`, `inbound|<port>||`, and the special
//!   clusters [`PASSTHROUGH_CLUSTER`], [`BLACKHOLE_CLUSTER`], [`INBOUND_PASSTHROUGH_CLUSTER`];
//! - the SNI/SRV form of a cluster name: `outbound_.<port>_.<subset>_.<fqdn>`;
//! - listeners: [`VIRTUAL_OUTBOUND`], [`VIRTUAL_INBOUND`], `<ip>_<port>`
//!   (`0.0.0.0_8080`, `10.96.0.10_80`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Catch-all for outbound traffic to destinations the mesh does not know.
pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";
/// Drops traffic (`REGISTRY_ONLY` outbound policy).
pub const BLACKHOLE_CLUSTER: &str = "BlackHoleCluster";
/// Inbound traffic to ports the mesh does not know, delivered to the original
/// destination.
pub const INBOUND_PASSTHROUGH_CLUSTER: &str = "InboundPassthroughCluster";
/// Names older Istio releases used for [`INBOUND_PASSTHROUGH_CLUSTER`]; accepted when
/// parsing, never generated.
pub const LEGACY_INBOUND_PASSTHROUGH_CLUSTERS: [&str; 2] = [
    "InboundPassthroughClusterIpv4",
    "InboundPassthroughClusterIpv6",
];

/// The sidecar's outbound capture listener (port 15001).
pub const VIRTUAL_OUTBOUND: &str = "virtualOutbound";
/// The sidecar's inbound capture listener (port 15006).
pub const VIRTUAL_INBOUND: &str = "virtualInbound";

/// A name that does not follow Istio's conventions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "{0:?} is not a cluster name: expected `outbound|<port>|<subset>|<host>`, \
         `inbound|<port>|<subset>|<host>` or a special cluster such as PassthroughCluster"
    )]
    Cluster(String),
    #[error(
        "{0:?} is not a listener name: expected virtualOutbound, virtualInbound or \
         `<ip>_<port>` such as 0.0.0.0_8080"
    )]
    Listener(String),
}

/// Which way a cluster sends traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of a service cluster name, `<direction>|<port>|<subset>|<host>`. The
/// subset and host are empty when absent (`inbound|8080||`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClusterName {
    pub direction: Direction,
    pub port: u16,
    pub subset: String,
    pub host: String,
}

impl ClusterName {
    /// `outbound|<port>|<subset>|<host>`.
    pub fn outbound(port: u16, subset: &str, host: &str) -> Self {
        Self {
            direction: Direction::Outbound,
            port,
            subset: subset.to_owned(),
            host: host.to_owned(),
        }
    }

    /// `inbound|<port>||`, the form Istio has used for inbound clusters since 1.10.
    pub fn inbound(port: u16) -> Self {
        Self {
            direction: Direction::Inbound,
            port,
            subset: String::new(),
            host: String::new(),
        }
    }

    /// `outbound_.<port>_.<subset>_.<host>`: the SNI Istio sets for mTLS to this cluster
    /// (a DNS-safe rendering of the same key).
    pub fn sni(&self) -> String {
        format!(
            "{}_.{}_.{}_.{}",
            self.direction, self.port, self.subset, self.host
        )
    }

    /// Parses the SNI form produced by [`ClusterName::sni`].
    pub fn parse_sni(sni: &str) -> Result<Self, NameError> {
        let err = || NameError::Cluster(sni.to_owned());
        let mut parts = sni.splitn(4, "_.");
        let (Some(direction), Some(port), Some(subset), Some(host)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        Self::from_parts(direction, port, subset, host).ok_or_else(err)
    }

    fn from_parts(direction: &str, port: &str, subset: &str, host: &str) -> Option<Self> {
        let direction = match direction {
            "outbound" => Direction::Outbound,
            "inbound" => Direction::Inbound,
            _ => return None,
        };
        let port = port.parse().ok()?;
        Some(Self {
            direction,
            port,
            subset: subset.to_owned(),
            host: host.to_owned(),
        })
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}|{}|{}|{}",
            self.direction, self.port, self.subset, self.host
        )
    }
}

impl FromStr for ClusterName {
    type Err = NameError;

    fn from_str(name: &str) -> Result<Self, NameError> {
        let err = || NameError::Cluster(name.to_owned());
        let mut parts = name.splitn(4, '|');
        let (Some(direction), Some(port), Some(subset), Some(host)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        Self::from_parts(direction, port, subset, host).ok_or_else(err)
    }
}

/// `outbound|<port>|<subset>|<host>` as a string.
pub fn outbound_cluster(port: u16, subset: &str, host: &str) -> String {
    ClusterName::outbound(port, subset, host).to_string()
}

/// `inbound|<port>||` as a string.
pub fn inbound_cluster(port: u16) -> String {
    ClusterName::inbound(port).to_string()
}

/// What a cluster name refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cluster {
    /// A service (or inbound port) cluster.
    Service(ClusterName),
    Passthrough,
    BlackHole,
    InboundPassthrough,
}

/// Parses any cluster name Istio generates.
pub fn parse_cluster(name: &str) -> Result<Cluster, NameError> {
    match name {
        PASSTHROUGH_CLUSTER => Ok(Cluster::Passthrough),
        BLACKHOLE_CLUSTER => Ok(Cluster::BlackHole),
        INBOUND_PASSTHROUGH_CLUSTER => Ok(Cluster::InboundPassthrough),
        _ if LEGACY_INBOUND_PASSTHROUGH_CLUSTERS.contains(&name) => Ok(Cluster::InboundPassthrough),
        _ => name.parse().map(Cluster::Service),
    }
}

/// A listener name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listener {
    VirtualOutbound,
    VirtualInbound,
    /// `<ip>_<port>`: `0.0.0.0_8080` for a port listener, `<vip>_<port>` for one
    /// service's TCP listener.
    Address {
        ip: String,
        port: u16,
    },
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listener::VirtualOutbound => f.write_str(VIRTUAL_OUTBOUND),
            Listener::VirtualInbound => f.write_str(VIRTUAL_INBOUND),
            Listener::Address { ip, port } => write!(f, "{ip}_{port}"),
        }
    }
}

/// `<ip>_<port>`, the name of a listener bound to (or matching) that address.
pub fn listener_name(ip: &str, port: u16) -> String {
    format!("{ip}_{port}")
}

/// Parses a listener name.
pub fn parse_listener(name: &str) -> Result<Listener, NameError> {
    match name {
        VIRTUAL_OUTBOUND => Ok(Listener::VirtualOutbound),
        VIRTUAL_INBOUND => Ok(Listener::VirtualInbound),
        _ => {
            let err = || NameError::Listener(name.to_owned());
            let (ip, port) = name.rsplit_once('_').ok_or_else(err)?;
            if ip.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
                return Err(err());
            }
            let port = port.parse().map_err(|_| err())?;
            Ok(Listener::Address {
                ip: ip.to_owned(),
                port,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_cluster_round_trips() {
        let name = outbound_cluster(9080, "v1", "reviews.default.svc.cluster.local");
        assert_eq!(name, "outbound|9080|v1|reviews.default.svc.cluster.local");
        let parsed: ClusterName = name.parse().unwrap();
        assert_eq!(parsed.direction, Direction::Outbound);
        assert_eq!(parsed.port, 9080);
        assert_eq!(parsed.subset, "v1");
        assert_eq!(parsed.host, "reviews.default.svc.cluster.local");
        assert_eq!(parsed.to_string(), name);
        let no_subset = outbound_cluster(80, "", "httpbin.default.svc.cluster.local");
        assert_eq!(no_subset, "outbound|80||httpbin.default.svc.cluster.local");
        assert_eq!(no_subset.parse::<ClusterName>().unwrap().subset, "");
    }

    #[test]
    fn inbound_cluster_has_empty_subset_and_host() {
        assert_eq!(inbound_cluster(8080), "inbound|8080||");
        let parsed: ClusterName = "inbound|8080||".parse().unwrap();
        assert_eq!(parsed, ClusterName::inbound(8080));
        // Older Istio releases put the host into inbound names; still parse them.
        let old: ClusterName = "inbound|9080|http|reviews.default.svc.cluster.local"
            .parse()
            .unwrap();
        assert_eq!(old.direction, Direction::Inbound);
        assert_eq!(old.subset, "http");
    }

    #[test]
    fn bad_cluster_names_are_rejected() {
        for bad in [
            "",
            "outbound",
            "outbound|80|v1",
            "sideways|80||a",
            "outbound|http||a",
            "outbound|70000||a",
        ] {
            assert!(bad.parse::<ClusterName>().is_err(), "{bad}");
        }
        let e = "nope".parse::<ClusterName>().unwrap_err().to_string();
        assert!(e.contains("outbound|<port>|<subset>|<host>"), "{e}");
    }

    #[test]
    fn special_clusters_parse() {
        assert_eq!(
            parse_cluster("PassthroughCluster"),
            Ok(Cluster::Passthrough)
        );
        assert_eq!(parse_cluster("BlackHoleCluster"), Ok(Cluster::BlackHole));
        assert_eq!(
            parse_cluster("InboundPassthroughCluster"),
            Ok(Cluster::InboundPassthrough)
        );
        assert_eq!(
            parse_cluster("InboundPassthroughClusterIpv4"),
            Ok(Cluster::InboundPassthrough)
        );
        assert_eq!(
            parse_cluster("outbound|80||a.b"),
            Ok(Cluster::Service(ClusterName::outbound(80, "", "a.b")))
        );
    }

    #[test]
    fn sni_form_round_trips() {
        let name = ClusterName::outbound(9080, "v2", "reviews.default.svc.cluster.local");
        let sni = name.sni();
        assert_eq!(sni, "outbound_.9080_.v2_.reviews.default.svc.cluster.local");
        assert_eq!(ClusterName::parse_sni(&sni).unwrap(), name);
        assert!(ClusterName::parse_sni("outbound_.x_._.a").is_err());
    }

    #[test]
    fn listener_names() {
        assert_eq!(listener_name("0.0.0.0", 8080), "0.0.0.0_8080");
        assert_eq!(
            parse_listener("virtualOutbound"),
            Ok(Listener::VirtualOutbound)
        );
        assert_eq!(
            parse_listener("virtualInbound"),
            Ok(Listener::VirtualInbound)
        );
        let vip = parse_listener("10.96.0.10_80").unwrap();
        assert_eq!(
            vip,
            Listener::Address {
                ip: "10.96.0.10".into(),
                port: 80
            }
        );
        assert_eq!(vip.to_string(), "10.96.0.10_80");
        assert_eq!(
            parse_listener("::_15001"),
            Ok(Listener::Address {
                ip: "::".into(),
                port: 15001
            })
        );
        for bad in [
            "",
            "_80",
            "0.0.0.0",
            "0.0.0.0_x",
            "host_80",
            "virtualoutbound",
        ] {
            assert!(parse_listener(bad).is_err(), "{bad}");
        }
    }
}
