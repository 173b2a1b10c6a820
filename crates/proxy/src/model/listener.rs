//! Listener → [`Listener`]: filter chains, their match criteria and network filters.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use ironmesh_xds::pb::envoy::config::listener::v3 as lpb;
use ironmesh_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager,
};
use ironmesh_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier as TcpSpec, TcpProxy as TcpProxyPb,
};

use super::cluster::socket_addr;
use super::route::{ClusterSpec, HeaderOps, RouteConfig, WeightedTarget};
use super::{decode, duration, type_name, CompileError};
use crate::telemetry::AccessLogs;

const KIND: &str = "Listener";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficDirection {
    Unspecified,
    Inbound,
    Outbound,
}

#[derive(Debug)]
pub struct Listener {
    pub name: Arc<str>,
    pub address: SocketAddr,
    pub bind_to_port: bool,
    pub use_original_dst: bool,
    /// `envoy.filters.listener.original_dst`: chains match the original destination.
    pub original_dst_filter: bool,
    pub direction: TrafficDirection,
    pub chains: Vec<FilterChain>,
    pub default_chain: Option<FilterChain>,
    pub tls_inspector: bool,
    pub http_inspector: bool,
    /// Whether a chain needs the sniffed transport/ALPN/SNI to be selected.
    pub needs_sniffing: bool,
    pub filters_timeout: Option<Duration>,
    pub continue_on_timeout: bool,
}

#[derive(Debug, Default, Clone)]
pub struct ChainMatch {
    pub destination_port: Option<u16>,
    pub prefix_ranges: Vec<IpNet>,
    pub server_names: Vec<String>,
    pub transport_protocol: Option<String>,
    pub application_protocols: Vec<String>,
    pub source_prefix_ranges: Vec<IpNet>,
}

#[derive(Debug)]
pub struct FilterChain {
    pub name: Arc<str>,
    pub matcher: ChainMatch,
    /// A DownstreamTlsContext is configured: the data path terminates TLS first.
    pub terminates_tls: bool,
    /// The compiled DownstreamTlsContext (set exactly when `terminates_tls`).
    pub tls: Option<Arc<super::tls::DownstreamTls>>,
    pub filter: NetworkFilter,
}

#[derive(Debug, Clone)]
pub enum NetworkFilter {
    Http(Arc<HttpManager>),
    Tcp(Arc<TcpProxy>),
}

#[derive(Debug)]
pub enum RouteSource {
    Rds(String),
    Inline(Arc<RouteConfig>),
}

#[derive(Debug)]
pub struct HttpManager {
    pub stat_prefix: String,
    pub routes: RouteSource,
    pub access_logs: AccessLogs,
    pub use_remote_address: bool,
    pub xff_num_trusted_hops: u32,
    pub skip_xff_append: bool,
    pub generate_request_id: bool,
    pub preserve_external_request_id: bool,
    pub stream_idle_timeout: Option<Duration>,
    pub websocket: bool,
    pub server_name: http::HeaderValue,
    pub fault_filter: bool,
    /// `istio.metadata_exchange` is configured: peer metadata headers are exchanged.
    pub metadata_exchange: bool,
    pub direction: TrafficDirection,
}

#[derive(Debug)]
pub struct TcpProxy {
    pub stat_prefix: String,
    pub cluster: ClusterSpec,
    pub idle_timeout: Option<Duration>,
    pub access_logs: AccessLogs,
    pub direction: TrafficDirection,
}

type R<T> = Result<T, String>;

/// Envoy's TCP proxy idle timeout when unset.
const DEFAULT_TCP_IDLE: Duration = Duration::from_secs(3600);
/// Envoy's HCM stream idle timeout when unset.
const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(300);

fn cidr(c: &ironmesh_xds::pb::envoy::config::core::v3::CidrRange, what: &str) -> R<IpNet> {
    let ip: IpAddr = c
        .address_prefix
        .parse()
        .map_err(|_| format!("{what}: bad prefix {:?}", c.address_prefix))?;
    let len = c
        .prefix_len
        .map(|v| v.value)
        .unwrap_or(if ip.is_ipv4() { 32 } else { 128 });
    IpNet::new(ip, len as u8).map_err(|_| format!("{what}: bad prefix length {len}"))
}

fn http_manager(h: &HttpConnectionManager, dir: TrafficDirection, what: &str) -> R<HttpManager> {
    let mut fault_filter = false;
    let metadata_exchange = h
        .http_filters
        .iter()
        .any(|f| f.name == "istio.metadata_exchange");
    for f in &h.http_filters {
        match f.name.as_str() {
            "envoy.filters.http.router" => {}
            "envoy.filters.http.fault" => fault_filter = true,
            // Per-route CORS is answered by the application; the filter itself is inert
            // until a route configures a policy.
            "envoy.filters.http.cors" => {}
            // Telemetry and peer metadata are built into the proxy.
            "istio.metadata_exchange"
            | "istio.stats"
            | "istio.alpn"
            | "envoy.filters.http.grpc_stats" => {}
            other if f.is_optional => {
                tracing::debug!(filter = other, "optional HTTP filter skipped")
            }
            other => return Err(format!("{what}: HTTP filter {other} is not supported")),
        }
    }
    let routes = match &h.route_specifier {
        Some(RouteSpecifier::Rds(r)) => RouteSource::Rds(r.route_config_name.clone()),
        Some(RouteSpecifier::RouteConfig(rc)) => RouteSource::Inline(Arc::new(
            RouteConfig::compile(rc).map_err(|e| format!("{what}: inline {e}"))?,
        )),
        Some(_) => return Err(format!("{what}: scoped routes are not supported")),
        None => return Err(format!("{what}: no route configuration")),
    };
    let websocket = h.upgrade_configs.iter().any(|u| {
        u.upgrade_type.eq_ignore_ascii_case("websocket") && u.enabled.is_none_or(|e| e.value)
    });
    for u in &h.upgrade_configs {
        if !u.upgrade_type.eq_ignore_ascii_case("websocket")
            && !u.upgrade_type.eq_ignore_ascii_case("connect")
        {
            return Err(format!(
                "{what}: upgrade type {} is not supported",
                u.upgrade_type
            ));
        }
    }
    let server_name = if h.server_name.is_empty() {
        "envoy"
    } else {
        h.server_name.as_str()
    };
    Ok(HttpManager {
        stat_prefix: h.stat_prefix.clone(),
        routes,
        access_logs: AccessLogs::from_xds(&h.access_log)
            .map_err(|e| format!("{what}: access_log: {e}"))?,
        use_remote_address: h.use_remote_address.map(|b| b.value).unwrap_or(false),
        xff_num_trusted_hops: h.xff_num_trusted_hops,
        skip_xff_append: h.skip_xff_append,
        generate_request_id: h.generate_request_id.map(|b| b.value).unwrap_or(true),
        preserve_external_request_id: h.preserve_external_request_id,
        stream_idle_timeout: match duration(&h.stream_idle_timeout) {
            None => Some(DEFAULT_STREAM_IDLE),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        },
        websocket,
        server_name: http::HeaderValue::from_str(server_name)
            .map_err(|_| format!("{what}: invalid server_name"))?,
        fault_filter,
        metadata_exchange,
        direction: dir,
    })
}

fn tcp_proxy(t: &TcpProxyPb, dir: TrafficDirection, what: &str) -> R<TcpProxy> {
    let cluster = match &t.cluster_specifier {
        Some(TcpSpec::Cluster(c)) => ClusterSpec::Single(c.as_str().into()),
        Some(TcpSpec::WeightedClusters(w)) => {
            let clusters: Vec<WeightedTarget> = w
                .clusters
                .iter()
                .map(|c| WeightedTarget {
                    name: c.name.as_str().into(),
                    weight: c.weight,
                    request_headers: Arc::new(HeaderOps::default()),
                    response_headers: Arc::new(HeaderOps::default()),
                })
                .collect();
            let total = clusters.iter().map(|c| u64::from(c.weight)).sum();
            if total == 0 {
                return Err(format!("{what}: weighted clusters sum to zero"));
            }
            ClusterSpec::Weighted {
                clusters: clusters.into(),
                total,
            }
        }
        None => return Err(format!("{what}: tcp_proxy without a cluster")),
    };
    if t.tunneling_config.is_some() {
        return Err(format!(
            "{what}: tcp_proxy tunneling_config is not supported"
        ));
    }
    Ok(TcpProxy {
        stat_prefix: t.stat_prefix.clone(),
        cluster,
        idle_timeout: match duration(&t.idle_timeout) {
            None => Some(DEFAULT_TCP_IDLE),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        },
        access_logs: AccessLogs::from_xds(&t.access_log)
            .map_err(|e| format!("{what}: access_log: {e}"))?,
        direction: dir,
    })
}

fn chain(fc: &lpb::FilterChain, dir: TrafficDirection) -> R<FilterChain> {
    let what = format!("filter chain {:?}", fc.name);
    let what = what.as_str();
    let m = fc.filter_chain_match.clone().unwrap_or_default();
    if !m.source_ports.is_empty() || !m.direct_source_prefix_ranges.is_empty() || m.source_type != 0
    {
        return Err(format!("{what}: source_ports/direct_source_prefix_ranges/source_type matches are not supported"));
    }
    let matcher = ChainMatch {
        destination_port: m.destination_port.map(|p| p.value as u16),
        prefix_ranges: m
            .prefix_ranges
            .iter()
            .map(|c| cidr(c, what))
            .collect::<R<_>>()?,
        server_names: m
            .server_names
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        transport_protocol: (!m.transport_protocol.is_empty())
            .then(|| m.transport_protocol.clone()),
        application_protocols: m.application_protocols.clone(),
        source_prefix_ranges: m
            .source_prefix_ranges
            .iter()
            .map(|c| cidr(c, what))
            .collect::<R<_>>()?,
    };
    let mut tls = None;
    let terminates_tls = match &fc.transport_socket {
        None => false,
        Some(ts) if ts.name == "envoy.transport_sockets.raw_buffer" => false,
        Some(ts) if ts.name == "envoy.transport_sockets.tls" => {
            let any = match &ts.config_type {
                Some(ironmesh_xds::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(a)) => a,
                None => return Err(format!("{what}: tls transport socket without typed_config")),
            };
            tls = Some(Arc::new(
                super::tls::downstream(any).map_err(|e| format!("{what}: {e}"))?,
            ));
            true
        }
        Some(ts) => {
            return Err(format!(
                "{what}: transport socket {} is not supported",
                ts.name
            ))
        }
    };
    let mut terminal = None;
    for f in &fc.filters {
        use lpb::filter::ConfigType;
        let any = match &f.config_type {
            Some(ConfigType::TypedConfig(a)) => Some(a),
            _ => None,
        };
        let nf = match (f.name.as_str(), any) {
            ("envoy.filters.network.http_connection_manager", Some(a)) => {
                let h: HttpConnectionManager = decode(a).map_err(|e| format!("{what}: {e}"))?;
                Some(NetworkFilter::Http(Arc::new(http_manager(&h, dir, what)?)))
            }
            ("envoy.filters.network.tcp_proxy", Some(a)) => {
                let t: TcpProxyPb = decode(a).map_err(|e| format!("{what}: {e}"))?;
                Some(NetworkFilter::Tcp(Arc::new(tcp_proxy(&t, dir, what)?)))
            }
            (
                "istio.metadata_exchange"
                | "istio.stats"
                | "envoy.filters.network.connection_limit",
                _,
            ) => None,
            (name, a) => {
                let t = a.map(type_name).unwrap_or("");
                return Err(format!(
                    "{what}: network filter {name} ({t}) is not supported"
                ));
            }
        };
        if let Some(nf) = nf {
            if terminal.is_some() {
                return Err(format!("{what}: more than one terminal network filter"));
            }
            terminal = Some(nf);
        }
    }
    let filter = terminal
        .ok_or_else(|| format!("{what}: no http_connection_manager or tcp_proxy filter"))?;
    Ok(FilterChain {
        name: fc.name.as_str().into(),
        matcher,
        terminates_tls,
        tls,
        filter,
    })
}

impl Listener {
    pub fn compile(l: &lpb::Listener) -> Result<Listener, CompileError> {
        Self::inner(l).map_err(|m| CompileError::new(KIND, &l.name, m))
    }

    fn inner(l: &lpb::Listener) -> R<Listener> {
        let address = socket_addr(&l.address, "address")?;
        if l.api_listener.is_some() || l.filter_chain_matcher.is_some() {
            return Err("api_listener and filter_chain_matcher are not supported".into());
        }
        let direction = match l.traffic_direction {
            1 => TrafficDirection::Inbound,
            2 => TrafficDirection::Outbound,
            _ => TrafficDirection::Unspecified,
        };
        let (mut tls_inspector, mut http_inspector, mut original_dst_filter) =
            (false, false, false);
        for f in &l.listener_filters {
            match f.name.as_str() {
                "envoy.filters.listener.tls_inspector" => tls_inspector = true,
                "envoy.filters.listener.http_inspector" => http_inspector = true,
                "envoy.filters.listener.original_dst" => original_dst_filter = true,
                other => return Err(format!("listener filter {other} is not supported")),
            }
        }
        let chains = l
            .filter_chains
            .iter()
            .map(|c| chain(c, direction))
            .collect::<R<Vec<_>>>()?;
        let default_chain = l
            .default_filter_chain
            .as_ref()
            .map(|c| chain(c, direction))
            .transpose()?;
        let needs_sniffing = chains.iter().chain(default_chain.iter()).any(|c| {
            c.matcher.transport_protocol.is_some()
                || !c.matcher.application_protocols.is_empty()
                || !c.matcher.server_names.is_empty()
        });
        Ok(Listener {
            name: l.name.as_str().into(),
            address,
            bind_to_port: l.bind_to_port.map(|b| b.value).unwrap_or(true),
            use_original_dst: l.use_original_dst.map(|b| b.value).unwrap_or(false),
            original_dst_filter,
            direction,
            chains,
            default_chain,
            tls_inspector,
            http_inspector,
            needs_sniffing,
            filters_timeout: duration(&l.listener_filters_timeout),
            continue_on_timeout: l.continue_on_listener_filters_timeout,
        })
    }
}
