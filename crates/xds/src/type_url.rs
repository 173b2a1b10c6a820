//! Resource type URLs and the short names Istio uses for them in logs, metrics and
//! debug output (`LDS`, `cds`, …).

/// `envoy.config.listener.v3.Listener`.
pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
/// `envoy.config.route.v3.RouteConfiguration`.
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
/// `envoy.config.cluster.v3.Cluster`.
pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/// `envoy.config.endpoint.v3.ClusterLoadAssignment`.
pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
/// `envoy.extensions.transport_sockets.tls.v3.Secret`.
pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
/// Istio's DNS name table (NDS), served to agents that proxy DNS. Reserved: no
/// generator exists yet, and its proto is not in `envoy-types`.
pub const NAME_TABLE: &str = "type.googleapis.com/istio.networking.nds.v1.NameTable";

/// The short name of a type URL: `LDS`, `RDS`, `CDS`, `EDS`, `SDS`, `NDS`; `None` for
/// any other type.
pub fn short_name(type_url: &str) -> Option<&'static str> {
    Some(match type_url {
        LISTENER => "LDS",
        ROUTE => "RDS",
        CLUSTER => "CDS",
        ENDPOINT => "EDS",
        SECRET => "SDS",
        NAME_TABLE => "NDS",
        _ => return None,
    })
}

/// The type URL of a short name (case-insensitive: `lds`, `LDS`).
pub fn from_short_name(short: &str) -> Option<&'static str> {
    Some(match short.to_ascii_uppercase().as_str() {
        "LDS" => LISTENER,
        "RDS" => ROUTE,
        "CDS" => CLUSTER,
        "EDS" => ENDPOINT,
        "SDS" => SECRET,
        "NDS" => NAME_TABLE,
        _ => return None,
    })
}

/// The label Istio's metrics use for a type (`lds`, `cds`, …); for unknown types the
/// message name after the last `.` in lower case, so a label is always short.
pub fn metric_label(type_url: &str) -> String {
    match short_name(type_url) {
        Some(short) => short.to_ascii_lowercase(),
        None => type_url
            .rsplit(['/', '.'])
            .next()
            .unwrap_or(type_url)
            .to_ascii_lowercase(),
    }
}

/// Whether a first request that names nothing subscribes to everything ("legacy
/// wildcard"): true for LDS, CDS and Istio's own types such as NDS; false for RDS, EDS
/// and SDS, which a client always asks for by name.
pub fn is_wildcard_type(type_url: &str) -> bool {
    !matches!(type_url, ROUTE | ENDPOINT | SECRET)
}

/// The order in which a full push sends types, so that a client never sees a
/// reference before its target: clusters before endpoints, listeners before routes,
/// then secrets and anything else.
pub fn push_order(type_url: &str) -> u8 {
    match type_url {
        CLUSTER => 0,
        ENDPOINT => 1,
        LISTENER => 2,
        ROUTE => 3,
        SECRET => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Name;

    #[test]
    fn urls_match_the_generated_types() {
        use crate::pb::envoy::config;
        use crate::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
        assert_eq!(config::listener::v3::Listener::type_url(), LISTENER);
        assert_eq!(config::route::v3::RouteConfiguration::type_url(), ROUTE);
        assert_eq!(config::cluster::v3::Cluster::type_url(), CLUSTER);
        assert_eq!(
            config::endpoint::v3::ClusterLoadAssignment::type_url(),
            ENDPOINT
        );
        assert_eq!(Secret::type_url(), SECRET);
    }

    #[test]
    fn short_names_round_trip() {
        for url in [LISTENER, ROUTE, CLUSTER, ENDPOINT, SECRET, NAME_TABLE] {
            let short = short_name(url).unwrap();
            assert_eq!(from_short_name(short), Some(url));
            assert_eq!(from_short_name(&short.to_lowercase()), Some(url));
        }
        assert_eq!(short_name("type.googleapis.com/foo.Bar"), None);
        assert_eq!(metric_label(CLUSTER), "cds");
        assert_eq!(metric_label("type.googleapis.com/foo.Bar"), "bar");
    }

    #[test]
    fn push_order_puts_clusters_first() {
        let mut urls = vec![ROUTE, LISTENER, ENDPOINT, SECRET, CLUSTER];
        urls.sort_by_key(|u| push_order(u));
        assert_eq!(urls, vec![CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET]);
    }
}
