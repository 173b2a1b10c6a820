//! Cluster and ClusterLoadAssignment → [`Cluster`] and [`Endpoints`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use ironmesh_xds::pb::envoy::config::cluster::v3 as cpb;
use ironmesh_xds::pb::envoy::config::core::v3::{address, socket_address, Address, Metadata};
use ironmesh_xds::pb::envoy::config::endpoint::v3::{lb_endpoint, ClusterLoadAssignment};
use ironmesh_xds::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::{
    explicit_http_config::ProtocolConfig, UpstreamProtocolOptions,
};
use ironmesh_xds::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use ironmesh_xds::pb::google::protobuf::{value::Kind, Value};

use super::{decode, duration, CompileError};
use crate::telemetry::PeerMetadata;

const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
/// Envoy's connect timeout when the cluster sets none.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    LeastRequest,
    RoundRobin,
    Random,
    /// ORIGINAL_DST clusters: the connection's original destination.
    ClusterProvided,
}

/// Which HTTP version the cluster speaks upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    Http2,
    /// Same as the downstream request.
    Downstream,
}

#[derive(Debug, Clone)]
pub enum ClusterKind {
    /// Endpoints come from EDS under this name.
    Eds(String),
    /// Endpoints inline in the cluster (STATIC, and STRICT/LOGICAL_DNS with IP literals).
    Static(Arc<Endpoints>),
    OriginalDst,
}

/// The default-priority circuit breaker thresholds (parsed; enforcement is a later issue).
#[derive(Debug, Clone, Copy, Default)]
pub struct CircuitBreakers {
    pub max_connections: Option<u32>,
    pub max_pending_requests: Option<u32>,
    pub max_requests: Option<u32>,
    pub max_retries: Option<u32>,
}

/// The service a cluster belongs to (metadata `istio.services[0]`), for telemetry.
#[derive(Debug, Clone, Default)]
pub struct ServiceRef {
    pub host: String,
    pub name: String,
    pub namespace: String,
}

#[derive(Debug)]
pub struct Cluster {
    pub name: Arc<str>,
    pub kind: ClusterKind,
    pub lb: LbPolicy,
    pub connect_timeout: Duration,
    pub protocol: UpstreamProtocol,
    /// Source address for upstream connections (`upstream_bind_config`, 127.0.0.6 inbound).
    pub bind: Option<IpAddr>,
    pub idle_timeout: Option<Duration>,
    pub max_requests_per_connection: Option<u32>,
    pub circuit_breakers: CircuitBreakers,
    pub service: Option<ServiceRef>,
}

/// One upstream host.
#[derive(Debug)]
pub struct Host {
    pub addr: SocketAddr,
    pub weight: u32,
    pub healthy: bool,
    pub locality: Option<(String, String, String)>,
    /// Peer labels from endpoint metadata `istio.workload`.
    pub peer: Option<Arc<PeerMetadata>>,
    /// In-flight requests (LEAST_REQUEST).
    pub active: AtomicUsize,
}

/// A cluster's hosts (the compiled ClusterLoadAssignment).
#[derive(Debug, Default)]
pub struct Endpoints {
    pub cluster_name: String,
    pub hosts: Vec<Arc<Host>>,
    /// Indices of healthy hosts, the only ones picked.
    pub healthy: Vec<usize>,
    /// Whether any healthy host has a weight other than the others'.
    pub weighted: bool,
    pub healthy_weight: u64,
    /// Round-robin cursor.
    pub cursor: AtomicU64,
}

type R<T> = Result<T, String>;

pub(crate) fn socket_addr(a: &Option<Address>, what: &str) -> R<SocketAddr> {
    match a.as_ref().and_then(|a| a.address.as_ref()) {
        Some(address::Address::SocketAddress(sa)) => {
            let port = match sa.port_specifier {
                Some(socket_address::PortSpecifier::PortValue(p)) => p as u16,
                _ => return Err(format!("{what}: named ports are not supported")),
            };
            let ip: IpAddr = if sa.address.is_empty() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else if sa.address == "localhost" {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                sa.address
                    .parse()
                    .map_err(|_| format!("{what}: address {:?} is not an IP literal", sa.address))?
            };
            Ok(SocketAddr::new(ip, port))
        }
        Some(_) => Err(format!(
            "{what}: only socket addresses are supported (no pipes or internal addresses)"
        )),
        None => Err(format!("{what}: missing address")),
    }
}

fn string_field(v: &Value) -> Option<&str> {
    match &v.kind {
        Some(Kind::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn istio_field<'a>(m: &'a Option<Metadata>, key: &str) -> Option<&'a Value> {
    m.as_ref()?.filter_metadata.get("istio")?.fields.get(key)
}

/// Parses Istio's `istio.workload` = `name;namespace;canonical_service;revision;cluster`.
pub fn peer_from_workload(w: &str) -> PeerMetadata {
    let mut it = w.split(';');
    let mut next = || it.next().unwrap_or("").to_string();
    let workload = next();
    let namespace = next();
    let canonical_service = next();
    let canonical_revision = next();
    let cluster = next();
    PeerMetadata {
        workload,
        namespace,
        app: canonical_service.clone(),
        version: canonical_revision.clone(),
        canonical_service,
        canonical_revision,
        cluster,
        service_account: String::new(),
        labels: BTreeMap::new(),
    }
}

impl Endpoints {
    pub fn compile(cla: &ClusterLoadAssignment) -> Result<Endpoints, CompileError> {
        Self::inner(cla)
            .map_err(|m| CompileError::new("ClusterLoadAssignment", &cla.cluster_name, m))
    }

    fn inner(cla: &ClusterLoadAssignment) -> R<Endpoints> {
        let mut hosts = Vec::new();
        for loc in &cla.endpoints {
            let locality = loc
                .locality
                .as_ref()
                .map(|l| (l.region.clone(), l.zone.clone(), l.sub_zone.clone()));
            for ep in &loc.lb_endpoints {
                let addr = match &ep.host_identifier {
                    Some(lb_endpoint::HostIdentifier::Endpoint(e)) => {
                        socket_addr(&e.address, "endpoint")?
                    }
                    _ => return Err("named endpoints are not supported".into()),
                };
                // HEALTHY=1, UNKNOWN=0, DEGRADED=5 are routable; UNHEALTHY, DRAINING, TIMEOUT are not.
                let healthy = matches!(ep.health_status, 0 | 1 | 5);
                let peer = istio_field(&ep.metadata, "workload")
                    .and_then(string_field)
                    .map(|w| Arc::new(peer_from_workload(w)));
                hosts.push(Arc::new(Host {
                    addr,
                    weight: ep
                        .load_balancing_weight
                        .map(|w| w.value)
                        .unwrap_or(1)
                        .max(1),
                    healthy,
                    locality: locality.clone(),
                    peer,
                    active: AtomicUsize::new(0),
                }));
            }
        }
        Ok(Endpoints::from_hosts(cla.cluster_name.clone(), hosts))
    }

    pub fn from_hosts(cluster_name: String, hosts: Vec<Arc<Host>>) -> Endpoints {
        let healthy: Vec<usize> = (0..hosts.len()).filter(|i| hosts[*i].healthy).collect();
        let first = healthy.first().map(|i| hosts[*i].weight);
        let weighted = healthy.iter().any(|i| Some(hosts[*i].weight) != first);
        let healthy_weight = healthy.iter().map(|i| u64::from(hosts[*i].weight)).sum();
        Endpoints {
            cluster_name,
            hosts,
            healthy,
            weighted,
            healthy_weight,
            cursor: AtomicU64::new(0),
        }
    }
}

#[allow(deprecated)]
fn protocol(c: &cpb::Cluster) -> R<(UpstreamProtocol, Option<Duration>, Option<u32>)> {
    let mut proto = UpstreamProtocol::Http1;
    let (mut idle, mut max_req) = (None, c.max_requests_per_connection.map(|v| v.value));
    #[allow(deprecated)]
    if c.http2_protocol_options.is_some() {
        proto = UpstreamProtocol::Http2;
    }
    for (name, any) in &c.typed_extension_protocol_options {
        if name != HTTP_PROTOCOL_OPTIONS {
            return Err(format!(
                "typed_extension_protocol_options {name} is not supported"
            ));
        }
        let o: HttpProtocolOptions = decode(any)?;
        proto = match o.upstream_protocol_options {
            Some(UpstreamProtocolOptions::ExplicitHttpConfig(e)) => match e.protocol_config {
                Some(ProtocolConfig::Http2ProtocolOptions(_)) => UpstreamProtocol::Http2,
                Some(ProtocolConfig::HttpProtocolOptions(_)) | None => UpstreamProtocol::Http1,
                Some(ProtocolConfig::Http3ProtocolOptions(_)) => {
                    return Err("HTTP/3 upstreams are not supported".into())
                }
            },
            Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(_)) => {
                UpstreamProtocol::Downstream
            }
            Some(UpstreamProtocolOptions::AutoConfig(_)) => {
                return Err("auto_config (ALPN) needs upstream TLS, not supported".into())
            }
            None => proto,
        };
        if let Some(common) = &o.common_http_protocol_options {
            idle = duration(&common.idle_timeout);
            if let Some(m) = common.max_requests_per_connection {
                max_req = Some(m.value);
            }
        }
    }
    Ok((proto, idle, max_req))
}

impl Cluster {
    pub fn compile(c: &cpb::Cluster) -> Result<Cluster, CompileError> {
        Self::inner(c).map_err(|m| CompileError::new("Cluster", &c.name, m))
    }

    fn inner(c: &cpb::Cluster) -> R<Cluster> {
        use cpb::cluster::{ClusterDiscoveryType, DiscoveryType, LbPolicy as P};
        if c.transport_socket.is_some() || !c.transport_socket_matches.is_empty() {
            return Err("upstream TLS (transport_socket) is not supported yet".into());
        }
        if c.lb_subset_config.is_some() {
            return Err("lb_subset_config is not supported".into());
        }
        let lb = match P::try_from(c.lb_policy) {
            Ok(P::LeastRequest) => LbPolicy::LeastRequest,
            Ok(P::RoundRobin) => LbPolicy::RoundRobin,
            Ok(P::Random) => LbPolicy::Random,
            Ok(P::ClusterProvided) => LbPolicy::ClusterProvided,
            Ok(other) => {
                return Err(format!(
                    "lb_policy {} is not supported (consistent hashing is a later issue)",
                    other.as_str_name()
                ))
            }
            Err(_) => return Err(format!("unknown lb_policy {}", c.lb_policy)),
        };
        let discovery = match &c.cluster_discovery_type {
            Some(ClusterDiscoveryType::Type(t)) => {
                DiscoveryType::try_from(*t).map_err(|_| format!("unknown discovery type {t}"))?
            }
            Some(ClusterDiscoveryType::ClusterType(t)) => {
                return Err(format!("custom cluster type {:?} is not supported", t.name))
            }
            None => DiscoveryType::Static,
        };
        let inline = |c: &cpb::Cluster| -> R<Arc<Endpoints>> {
            let mut cla = c.load_assignment.clone().unwrap_or_default();
            cla.cluster_name = c.name.clone();
            // DNS clusters: only IP literals and localhost resolve (the proxy does no DNS).
            Endpoints::inner(&cla).map(Arc::new)
        };
        let kind = match discovery {
            DiscoveryType::Eds => {
                let name = c
                    .eds_cluster_config
                    .as_ref()
                    .map(|e| e.service_name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| c.name.clone());
                ClusterKind::Eds(name)
            }
            DiscoveryType::Static => ClusterKind::Static(inline(c)?),
            DiscoveryType::StrictDns | DiscoveryType::LogicalDns => {
                // The proxy does no DNS: IP literals and `localhost` are kept; other
                // names are dropped (logged), leaving a cluster that answers 503 UH
                // rather than NACKing every cluster of the mesh.
                let mut c = c.clone();
                if let Some(cla) = c.load_assignment.as_mut() {
                    for loc in &mut cla.endpoints {
                        loc.lb_endpoints.retain(|ep| match &ep.host_identifier {
                            Some(lb_endpoint::HostIdentifier::Endpoint(e)) => {
                                let ok = socket_addr(&e.address, "endpoint").is_ok();
                                if !ok {
                                    tracing::warn!(cluster = %c.name, "DNS endpoint skipped: the proxy resolves only IP literals and localhost");
                                }
                                ok
                            }
                            _ => false,
                        });
                    }
                }
                ClusterKind::Static(inline(&c)?)
            }
            DiscoveryType::OriginalDst => ClusterKind::OriginalDst,
        };
        let (protocol, idle_timeout, max_requests_per_connection) = protocol(c)?;
        let bind = match c.upstream_bind_config.as_ref() {
            Some(b) => Some(
                b.source_address
                    .as_ref()
                    .map(|s| s.address.parse::<IpAddr>())
                    .transpose()
                    .map_err(|_| "upstream_bind_config: source address is not an IP".to_string())?
                    .ok_or("upstream_bind_config without a source address")?,
            ),
            None => None,
        };
        let mut cb = CircuitBreakers::default();
        if let Some(t) = c
            .circuit_breakers
            .as_ref()
            .and_then(|c| c.thresholds.iter().find(|t| t.priority == 0))
        {
            cb = CircuitBreakers {
                max_connections: t.max_connections.map(|v| v.value),
                max_pending_requests: t.max_pending_requests.map(|v| v.value),
                max_requests: t.max_requests.map(|v| v.value),
                max_retries: t.max_retries.map(|v| v.value),
            };
        }
        let service = match istio_field(&c.metadata, "services").and_then(|v| v.kind.as_ref()) {
            Some(Kind::ListValue(l)) => l.values.first().and_then(|v| match &v.kind {
                Some(Kind::StructValue(s)) => {
                    let get = |k: &str| {
                        s.fields
                            .get(k)
                            .and_then(string_field)
                            .unwrap_or("")
                            .to_string()
                    };
                    Some(ServiceRef {
                        host: get("host"),
                        name: get("name"),
                        namespace: get("namespace"),
                    })
                }
                _ => None,
            }),
            _ => None,
        };
        Ok(Cluster {
            name: c.name.as_str().into(),
            kind,
            lb,
            connect_timeout: duration(&c.connect_timeout).unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            protocol,
            bind,
            idle_timeout,
            max_requests_per_connection,
            circuit_breakers: cb,
            service,
        })
    }
}
