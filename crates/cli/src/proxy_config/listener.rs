//! `proxy-config listener`: `ADDRESSES PORT MATCH DESTINATION`, one row per filter chain.

use serde::Deserialize;
use serde_json::Value;

use super::dump::{de_opt_u32, de_u32, view, DumpError};
use super::route::{describe_match, RouteConfiguration};
use super::table::Table;

const HTTP_CONNECTION_MANAGER: &str = "envoy.filters.network.http_connection_manager";
const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
const BLACK_HOLE: &str = "BlackHoleCluster";

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Listener {
    pub name: String,
    pub address: Address,
    pub additional_addresses: Vec<AdditionalAddress>,
    pub filter_chains: Vec<FilterChain>,
    pub default_filter_chain: Option<FilterChain>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Address {
    pub socket_address: Option<SocketAddress>,
    pub pipe: Option<Pipe>,
    pub envoy_internal_address: Option<InternalAddress>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SocketAddress {
    pub address: String,
    #[serde(deserialize_with = "de_u32")]
    pub port_value: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Pipe {
    pub path: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InternalAddress {
    pub server_listener_name: String,
    pub endpoint_id: String,
}

impl Address {
    /// The host part as istioctl shows it.
    pub fn host(&self) -> String {
        if let Some(s) = &self.socket_address {
            s.address.clone()
        } else if let Some(p) = &self.pipe {
            p.path.clone()
        } else if let Some(i) = &self.envoy_internal_address {
            format!("envoy://{}", i.server_listener_name)
        } else {
            String::new()
        }
    }

    pub fn port(&self) -> u32 {
        self.socket_address.as_ref().map_or(0, |s| s.port_value)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AdditionalAddress {
    pub address: Address,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FilterChain {
    pub filter_chain_match: Option<FilterChainMatch>,
    pub filters: Vec<Filter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FilterChainMatch {
    #[serde(deserialize_with = "de_opt_u32")]
    pub destination_port: Option<u32>,
    pub prefix_ranges: Vec<CidrRange>,
    pub server_names: Vec<String>,
    pub transport_protocol: String,
    pub application_protocols: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CidrRange {
    pub address_prefix: String,
    #[serde(deserialize_with = "de_u32")]
    pub prefix_len: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Filter {
    pub name: String,
    pub typed_config: Value,
}

impl Filter {
    fn is(&self, well_known: &str, type_suffix: &str) -> bool {
        self.name == well_known
            || self
                .typed_config
                .get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(type_suffix))
    }

    fn is_http(&self) -> bool {
        self.is(HTTP_CONNECTION_MANAGER, ".HttpConnectionManager")
    }

    fn is_tcp(&self) -> bool {
        self.is(TCP_PROXY, ".TcpProxy")
    }

    /// A TCP proxy to the black hole only stops loops; istioctl does not count it.
    fn is_black_hole(&self) -> bool {
        self.typed_config.to_string().contains(BLACK_HOLE)
    }
}

impl Listener {
    pub fn host(&self) -> String {
        self.address.host()
    }

    /// `ADDRESSES`: the listener's address and any additional ones.
    pub fn addresses(&self) -> String {
        let mut all = vec![self.address.host()];
        all.extend(self.additional_addresses.iter().map(|a| a.address.host()));
        all.join(",")
    }

    pub fn port(&self) -> u32 {
        self.address.port()
    }

    fn chains(&self) -> impl Iterator<Item = &FilterChain> {
        self.filter_chains.iter().chain(&self.default_filter_chain)
    }

    /// `HTTP`, `TCP`, `HTTP+TCP` or `UNKNOWN`, as `--type` filters.
    pub fn kind(&self) -> &'static str {
        let filters = || self.chains().flat_map(|c| &c.filters);
        let http = filters().filter(|f| f.is_http()).count();
        let tcp = filters()
            .filter(|f| f.is_tcp() && !f.is_black_hole())
            .count();
        match (http > 0, tcp > 0) {
            (true, false) => "HTTP",
            (true, true) => "HTTP+TCP",
            (false, true) => "TCP",
            (false, false) => "UNKNOWN",
        }
    }
}

#[derive(Debug, Default)]
pub struct ListenerFilter {
    pub address: Option<String>,
    pub port: Option<u32>,
    pub kind: Option<String>,
}

impl ListenerFilter {
    pub fn accepts(&self, l: &Listener) -> bool {
        self.address
            .as_ref()
            .is_none_or(|a| l.host().eq_ignore_ascii_case(a))
            && self.port.is_none_or(|p| l.port() == p)
            && self
                .kind
                .as_ref()
                .is_none_or(|k| l.kind().eq_ignore_ascii_case(k))
    }
}

/// The raw listeners that pass `filter`, each with its parsed view, sorted as istioctl
/// sorts them (port, then address, then type).
pub fn select(
    raw: Vec<Value>,
    filter: &ListenerFilter,
) -> Result<Vec<(Value, Listener)>, DumpError> {
    let mut out = Vec::new();
    for r in raw {
        let l: Listener = view("listener", &r)?;
        if filter.accepts(&l) {
            out.push((r, l));
        }
    }
    out.sort_by(|(_, a), (_, b)| {
        a.port()
            .cmp(&b.port())
            .then_with(|| a.host().cmp(&b.host()))
            .then_with(|| a.kind().cmp(b.kind()))
    });
    Ok(out)
}

pub fn table(listeners: &[Listener]) -> String {
    let mut t = Table::new(1);
    t.row(["ADDRESSES", "PORT", "MATCH", "DESTINATION"]);
    for l in listeners {
        let mut rows: Vec<(String, String)> = l
            .chains()
            .map(|c| (describe_chain_match(c), destination(&c.filters)))
            .collect();
        // Descending by destination, as istioctl orders a listener's chains.
        rows.sort_by(|a, b| b.1.cmp(&a.1));
        for (m, d) in rows {
            t.row([l.addresses(), l.port().to_string(), m, d]);
        }
    }
    t.render()
}

/// Known ALPN sets istioctl names instead of listing.
const NAMED_ALPNS: [(&str, &[&str]); 4] = [
    (
        "App: HTTP TLS",
        &[
            "http/1.0",
            "http/1.1",
            "h2c",
            "istio-http/1.0",
            "istio-http/1.1",
            "istio-h2",
        ],
    ),
    (
        "App: Istio HTTP Plain",
        &["istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"],
    ),
    ("App: TCP TLS", &["istio-peer-exchange", "istio"]),
    ("App: HTTP", &["http/1.0", "http/1.1", "h2c"]),
];

/// `MATCH`: `SNI: …; Trans: …; App: …; Addr: …`, or `ALL` for a chain that matches
/// everything.
pub fn describe_chain_match(chain: &FilterChain) -> String {
    let default = FilterChainMatch::default();
    let m = chain.filter_chain_match.as_ref().unwrap_or(&default);
    let mut parts = Vec::new();
    if !m.server_names.is_empty() {
        parts.push(format!("SNI: {}", m.server_names.join(",")));
    }
    if !m.transport_protocol.is_empty() {
        parts.push(format!("Trans: {}", m.transport_protocol));
    }
    if !m.application_protocols.is_empty() {
        let named = NAMED_ALPNS
            .iter()
            .find(|(_, set)| m.application_protocols == *set)
            .map(|(name, _)| name.to_string());
        parts.push(named.unwrap_or_else(|| format!("App: {}", m.application_protocols.join(","))));
    }
    let port = m
        .destination_port
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    if !m.prefix_ranges.is_empty() {
        let ranges: Vec<String> = m
            .prefix_ranges
            .iter()
            .map(|r| format!("{}/{}", r.address_prefix, r.prefix_len))
            .collect();
        parts.push(format!("Addr: {}{port}", ranges.join(",")));
    } else if !port.is_empty() {
        parts.push(format!("Addr: *{port}"));
    }
    if parts.is_empty() {
        "ALL".into()
    } else {
        parts.join("; ")
    }
}

/// `DESTINATION`: where the first HTTP or TCP proxy filter of a chain sends traffic.
pub fn destination(filters: &[Filter]) -> String {
    for f in filters {
        if f.is_http() {
            let tc = &f.typed_config;
            if let Some(rc) = tc.get("routeConfig") {
                return match serde_json::from_value::<RouteConfiguration>(rc.clone()) {
                    Ok(rc) => describe_inline_route(&rc),
                    Err(e) => format!("unreadable inline route: {e}"),
                };
            }
            if let Some(name) = tc
                .get("rds")
                .and_then(|r| r.get("routeConfigName"))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return format!("Route: {name}");
            }
            return "HTTP".into();
        }
        if f.is_tcp() && !f.is_black_hole() {
            let tc = &f.typed_config;
            if let Some(cluster) = tc.get("cluster").and_then(Value::as_str) {
                return cluster_ref(cluster);
            }
            if let Some(ws) = tc
                .get("weightedClusters")
                .and_then(|w| w.get("clusters"))
                .and_then(Value::as_array)
            {
                let parts: Vec<String> = ws
                    .iter()
                    .map(|c| {
                        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                        match c.get("weight") {
                            Some(w) => format!("{name}({w})"),
                            None => name.to_string(),
                        }
                    })
                    .collect();
                return format!("WeightedClusters: {}", parts.join(", "));
            }
        }
    }
    "Non-HTTP/Non-TCP".into()
}

/// Istio's special clusters (`PassthroughCluster`, `InboundPassthroughClusterIpv4`) stand
/// alone; others read `Cluster: name`.
fn cluster_ref(name: &str) -> String {
    if name.contains("Cluster") {
        name.to_string()
    } else {
        format!("Cluster: {name}")
    }
}

fn describe_inline_route(rc: &RouteConfiguration) -> String {
    if let Some(c) = match_all_cluster(rc) {
        return c;
    }
    let vhosts: Vec<String> = rc
        .virtual_hosts
        .iter()
        .map(|vh| {
            let routes: Vec<String> = vh
                .routes
                .iter()
                .map(|r| describe_match(&r.r#match))
                .collect();
            let routes = routes.join(", ");
            if vh.domains.len() == 1 && vh.domains[0] == "*" {
                routes
            } else {
                format!("{} {routes}", vh.domains.join("/"))
            }
        })
        .collect();
    format!("Inline Route: {}", vhosts.join("; "))
}

/// An inline route that sends everything to one cluster is shown as that cluster.
fn match_all_cluster(rc: &RouteConfiguration) -> Option<String> {
    let [vh] = rc.virtual_hosts.as_slice() else {
        return None;
    };
    if vh.domains != ["*"] {
        return None;
    }
    let [r] = vh.routes.as_slice() else {
        return None;
    };
    if r.r#match.prefix.as_deref() != Some("/") {
        return None;
    }
    let cluster = r.route.as_ref()?.cluster.as_deref()?;
    Some(cluster_ref(cluster))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn listener(v: Value) -> Listener {
        view("listener", &v).unwrap()
    }

    #[test]
    fn chain_matches_render_like_istioctl() {
        let l = listener(json!({"filterChains": [
            {"filterChainMatch": {"transportProtocol": "raw_buffer", "applicationProtocols": ["http/1.1", "h2c"]}},
            {"filterChainMatch": {"destinationPort": 15006}},
            {"filterChainMatch": {"prefixRanges": [{"addressPrefix": "0.0.0.0", "prefixLen": 0}],
                                  "transportProtocol": "tls", "applicationProtocols": ["istio-peer-exchange", "istio"]}},
            {"filterChainMatch": {"destinationPort": 80, "prefixRanges": [{"addressPrefix": "10.0.0.0", "prefixLen": 8}],
                                  "serverNames": ["a.com", "b.com"]}},
            {}
        ]}));
        let got: Vec<String> = l.filter_chains.iter().map(describe_chain_match).collect();
        assert_eq!(
            got,
            [
                "Trans: raw_buffer; App: http/1.1,h2c",
                "Addr: *:15006",
                "Trans: tls; App: TCP TLS; Addr: 0.0.0.0/0",
                "SNI: a.com,b.com; Addr: 10.0.0.0/8:80",
                "ALL"
            ]
        );
    }

    #[test]
    fn destinations_name_routes_clusters_and_inline_routes() {
        let l = listener(json!({"filterChains": [
            {"filters": [{"name": HTTP_CONNECTION_MANAGER, "typedConfig": {"rds": {"routeConfigName": "80"}}}]},
            {"filters": [{"name": TCP_PROXY, "typedConfig": {"cluster": "outbound|53||kube-dns.kube-system.svc.cluster.local"}}]},
            {"filters": [{"name": TCP_PROXY, "typedConfig": {"cluster": "PassthroughCluster"}}]},
            {"filters": [{"name": TCP_PROXY, "typedConfig": {"cluster": "BlackHoleCluster"}}]},
            {"filters": [{"name": HTTP_CONNECTION_MANAGER, "typedConfig": {"routeConfig": {"virtualHosts": [
                {"name": "backend", "domains": ["*"], "routes": [{"match": {"prefix": "/stats/prometheus"},
                  "route": {"cluster": "prometheus_stats"}}]}]}}}]},
            {"filters": [{"name": HTTP_CONNECTION_MANAGER, "typedConfig": {"routeConfig": {"virtualHosts": [
                {"name": "inbound|http|0", "domains": ["*"], "routes": [{"match": {"prefix": "/"},
                  "route": {"cluster": "InboundPassthroughClusterIpv4"}}]}]}}}]},
            {"filters": [{"name": "istio.stats", "typedConfig": {}}]}
        ]}));
        let got: Vec<String> = l
            .filter_chains
            .iter()
            .map(|c| destination(&c.filters))
            .collect();
        assert_eq!(
            got,
            [
                "Route: 80",
                "Cluster: outbound|53||kube-dns.kube-system.svc.cluster.local",
                "PassthroughCluster",
                "Non-HTTP/Non-TCP",
                "Inline Route: /stats/prometheus*",
                "InboundPassthroughClusterIpv4",
                "Non-HTTP/Non-TCP"
            ]
        );
    }

    #[test]
    fn types_ignore_black_hole_proxies() {
        let bh = json!({"filters": [{"name": TCP_PROXY, "typedConfig": {"cluster": "BlackHoleCluster"}}]});
        let tcp = json!({"filters": [{"name": TCP_PROXY, "typedConfig": {"cluster": "x"}}]});
        let http = json!({"filters": [{"name": HTTP_CONNECTION_MANAGER, "typedConfig": {}}]});
        assert_eq!(listener(json!({"filterChains": [bh]})).kind(), "UNKNOWN");
        assert_eq!(
            listener(json!({"filterChains": [tcp.clone()]})).kind(),
            "TCP"
        );
        assert_eq!(
            listener(json!({"filterChains": [http.clone()], "defaultFilterChain": tcp})).kind(),
            "HTTP+TCP"
        );
        assert_eq!(listener(json!({"filterChains": [http]})).kind(), "HTTP");
    }

    #[test]
    fn table_sorts_listeners_and_chains() {
        let raw = vec![
            json!({"name": "virtualOutbound", "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 15001}},
                   "filterChains": [{"filterChainMatch": {"destinationPort": 15001},
                                     "filters": [{"name": TCP_PROXY, "typedConfig": {"cluster": "BlackHoleCluster"}}]}],
                   "defaultFilterChain": {"filters": [{"name": TCP_PROXY, "typedConfig": {"cluster": "PassthroughCluster"}}]}}),
            json!({"name": "10.96.0.10_53", "address": {"socketAddress": {"address": "10.96.0.10", "portValue": 53}},
                   "filterChains": [{"filters": [{"name": TCP_PROXY, "typedConfig": {"cluster": "outbound|53||kube-dns"}}]}]}),
        ];
        let sel = select(raw, &ListenerFilter::default()).unwrap();
        let views: Vec<Listener> = sel.into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            table(&views),
            "ADDRESSES  PORT  MATCH         DESTINATION\n\
             10.96.0.10 53    ALL           Cluster: outbound|53||kube-dns\n\
             0.0.0.0    15001 ALL           PassthroughCluster\n\
             0.0.0.0    15001 Addr: *:15001 Non-HTTP/Non-TCP\n"
        );
    }

    #[test]
    fn filters_by_address_port_and_type() {
        let l = listener(
            json!({"address": {"socketAddress": {"address": "10.96.0.10", "portValue": "53"}},
            "filterChains": [{"filters": [{"name": TCP_PROXY, "typedConfig": {"cluster": "x"}}]}]}),
        );
        assert!(ListenerFilter {
            port: Some(53),
            ..Default::default()
        }
        .accepts(&l));
        assert!(!ListenerFilter {
            port: Some(80),
            ..Default::default()
        }
        .accepts(&l));
        assert!(ListenerFilter {
            kind: Some("tcp".into()),
            ..Default::default()
        }
        .accepts(&l));
        assert!(!ListenerFilter {
            kind: Some("HTTP".into()),
            ..Default::default()
        }
        .accepts(&l));
        assert!(ListenerFilter {
            address: Some("10.96.0.10".into()),
            ..Default::default()
        }
        .accepts(&l));
    }
}
