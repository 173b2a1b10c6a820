//! DestinationRule traffic policies applied to an outbound cluster: which policy applies
//! (top level, port-level settings, subset overrides, as Istio merges them), then load
//! balancing, connection pool limits, outlier detection and upstream protocol options.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    circuit_breakers, cluster, CircuitBreakers, Cluster, OutlierDetection as EnvoyOutlier,
};
use envoy_types::pb::envoy::config::core::v3::{
    Http1ProtocolOptions, Http2ProtocolOptions, HttpProtocolOptions as CoreHttpOptions,
    TcpKeepalive, UpstreamHttpProtocolOptions,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
        UseDownstreamHttpConfig,
    },
    HttpProtocolOptions,
};
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::pb::google::protobuf::UInt64Value;
use ironmesh_config::networking::destination_rule::{
    ClientTlsSettings, ConnectionPoolSettings, ConsistentHashLb, H2UpgradePolicy,
    LoadBalancerSettings, OutlierDetection, PortTrafficPolicy, SimpleLb, Subset, TrafficPolicy,
};
use ironmesh_config::networking::DestinationRule;
use ironmesh_registry::Protocol;

use super::util::{any, duration, u32v};

/// The key Envoy reads upstream HTTP options from.
pub const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// The parts of a TrafficPolicy that shape one cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub connection_pool: Option<ConnectionPoolSettings>,
    pub outlier_detection: Option<OutlierDetection>,
    pub load_balancer: Option<LoadBalancerSettings>,
    pub tls: Option<ClientTlsSettings>,
}

impl Policy {
    fn from_traffic_policy(tp: &TrafficPolicy) -> Policy {
        Policy {
            connection_pool: tp.connection_pool.clone(),
            outlier_detection: tp.outlier_detection.clone(),
            load_balancer: tp.load_balancer.clone(),
            tls: tp.tls.clone(),
        }
    }

    /// Port-level settings replace the whole policy (they do not inherit), as documented.
    fn from_port_level(p: &PortTrafficPolicy) -> Policy {
        Policy {
            connection_pool: p.connection_pool.clone(),
            outlier_detection: p.outlier_detection.clone(),
            load_balancer: p.load_balancer.clone(),
            tls: p.tls.clone(),
        }
    }

    /// The policy for `port` of a host, for `subset` if given: top level (or its
    /// port-level entry), then each component the subset sets, then the subset's
    /// port-level entry.
    pub fn effective(dr: Option<&DestinationRule>, subset: Option<&Subset>, port: u16) -> Policy {
        let port_entry = |tp: &TrafficPolicy| {
            tp.port_level_settings
                .iter()
                .find(|p| p.port.as_ref().and_then(|s| s.number) == Some(u32::from(port)))
                .map(Policy::from_port_level)
        };
        let mut out = dr
            .and_then(|d| d.traffic_policy.as_ref())
            .map(|tp| port_entry(tp).unwrap_or_else(|| Policy::from_traffic_policy(tp)))
            .unwrap_or_default();
        if let Some(sp) = subset.and_then(|s| s.traffic_policy.as_ref()) {
            if sp.connection_pool.is_some() {
                out.connection_pool = sp.connection_pool.clone();
            }
            if sp.outlier_detection.is_some() {
                out.outlier_detection = sp.outlier_detection.clone();
            }
            if sp.load_balancer.is_some() {
                out.load_balancer = sp.load_balancer.clone();
            }
            if sp.tls.is_some() {
                out.tls = sp.tls.clone();
            }
            if let Some(p) = port_entry(sp) {
                out = p;
            }
        }
        out
    }

    pub fn consistent_hash(&self) -> Option<&ConsistentHashLb> {
        self.load_balancer
            .as_ref()
            .and_then(|l| l.consistent_hash.as_ref())
    }

    /// PASSTHROUGH load balancing turns the cluster into ORIGINAL_DST.
    pub fn is_passthrough(&self) -> bool {
        self.load_balancer.as_ref().and_then(|l| l.simple) == Some(SimpleLb::Passthrough)
    }
}

/// Istio's defaults: effectively unlimited, so Envoy's small built-in limits never cause
/// 503s during pod churn.
pub fn default_thresholds() -> circuit_breakers::Thresholds {
    circuit_breakers::Thresholds {
        max_connections: Some(u32v(u32::MAX)),
        max_pending_requests: Some(u32v(u32::MAX)),
        max_requests: Some(u32v(u32::MAX)),
        max_retries: Some(u32v(u32::MAX)),
        track_remaining: true,
        ..Default::default()
    }
}

pub fn default_circuit_breakers() -> CircuitBreakers {
    CircuitBreakers {
        thresholds: vec![default_thresholds()],
        ..Default::default()
    }
}

/// Upstream HTTP protocol choice for a port: HTTP/2 for HTTP2/gRPC ports and for HTTP
/// ports upgraded by `h2UpgradePolicy` (the DestinationRule's, else the mesh's), the
/// downstream's protocol for sniffed ports, HTTP/1.1 otherwise.
pub fn protocol_options(
    protocol: Protocol,
    pool: Option<&ConnectionPoolSettings>,
    mesh_upgrade: bool,
) -> HttpProtocolOptions {
    let http = pool.and_then(|p| p.http.as_ref());
    let use_client = http.and_then(|h| h.use_client_protocol) == Some(true);
    let upgrade = match http.and_then(|h| h.h2_upgrade_policy) {
        Some(H2UpgradePolicy::Upgrade) => true,
        Some(H2UpgradePolicy::DoNotUpgrade) => false,
        _ => mesh_upgrade && protocol.is_http(),
    };
    let http2 = upgrade
        || matches!(
            protocol,
            Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb
        );
    let upstream = if use_client || (protocol == Protocol::Unsupported && !http2) {
        UpstreamProtocolOptions::UseDownstreamProtocolConfig(UseDownstreamHttpConfig {
            http_protocol_options: Some(Http1ProtocolOptions::default()),
            http2_protocol_options: Some(Http2ProtocolOptions::default()),
            ..Default::default()
        })
    } else if http2 {
        UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
            protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                Http2ProtocolOptions::default(),
            )),
        })
    } else {
        UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
            protocol_config: Some(ProtocolConfig::HttpProtocolOptions(
                Http1ProtocolOptions::default(),
            )),
        })
    };
    HttpProtocolOptions {
        upstream_protocol_options: Some(upstream),
        ..Default::default()
    }
}

/// Whether a port needs `HttpProtocolOptions` at all: HTTP/2 and sniffed ports do, plain
/// HTTP/1.1 and TCP ports only when the pool or TLS sets per-connection options.
pub fn needs_protocol_options(protocol: Protocol, opts: &HttpProtocolOptions) -> bool {
    matches!(
        protocol,
        Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb | Protocol::Unsupported
    ) || opts.common_http_protocol_options.is_some()
        || opts.upstream_http_protocol_options.is_some()
        || matches!(
            opts.upstream_protocol_options,
            Some(UpstreamProtocolOptions::ExplicitHttpConfig(
                ExplicitHttpConfig {
                    protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(_))
                }
            )) | Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(_))
        )
}

pub fn set_protocol_options(c: &mut Cluster, opts: &HttpProtocolOptions) {
    c.typed_extension_protocol_options =
        HashMap::from([(HTTP_PROTOCOL_OPTIONS.to_string(), any(opts))]);
}

/// Circuit breakers, connect timeout, keepalive and per-connection HTTP limits.
pub fn apply_connection_pool(
    c: &mut Cluster,
    opts: &mut HttpProtocolOptions,
    pool: Option<&ConnectionPoolSettings>,
) {
    let mut t = default_thresholds();
    let mut common = CoreHttpOptions::default();
    let mut set_common = false;
    if let Some(http) = pool.and_then(|p| p.http.as_ref()) {
        if let Some(n) = http.http2_max_requests.filter(|n| *n > 0) {
            t.max_requests = Some(u32v(n as u32));
        }
        if let Some(n) = http.http1_max_pending_requests.filter(|n| *n > 0) {
            t.max_pending_requests = Some(u32v(n as u32));
        }
        if let Some(n) = http.max_retries.filter(|n| *n > 0) {
            t.max_retries = Some(u32v(n as u32));
        }
        if let Some(d) = &http.idle_timeout {
            common.idle_timeout = Some(duration(d.as_std()));
            set_common = true;
        }
        if let Some(n) = http.max_requests_per_connection.filter(|n| *n > 0) {
            common.max_requests_per_connection = Some(u32v(n as u32));
            set_common = true;
        }
    }
    if let Some(tcp) = pool.and_then(|p| p.tcp.as_ref()) {
        if let Some(d) = &tcp.connect_timeout {
            c.connect_timeout = Some(duration(d.as_std()));
        }
        if let Some(n) = tcp.max_connections.filter(|n| *n > 0) {
            t.max_connections = Some(u32v(n as u32));
        }
        if let Some(d) = &tcp.max_connection_duration {
            common.max_connection_duration = Some(duration(d.as_std()));
            set_common = true;
        }
        if common.idle_timeout.is_none() {
            if let Some(d) = &tcp.idle_timeout {
                common.idle_timeout = Some(duration(d.as_std()));
                set_common = true;
            }
        }
        if let Some(ka) = &tcp.tcp_keepalive {
            c.upstream_connection_options = Some(
                envoy_types::pb::envoy::config::cluster::v3::UpstreamConnectionOptions {
                    tcp_keepalive: Some(TcpKeepalive {
                        keepalive_probes: ka.probes.map(u32v),
                        keepalive_time: ka.time.as_ref().map(|d| u32v(d.as_std().as_secs() as u32)),
                        keepalive_interval: ka
                            .interval
                            .as_ref()
                            .map(|d| u32v(d.as_std().as_secs() as u32)),
                    }),
                    ..Default::default()
                },
            );
        }
    }
    c.circuit_breakers = Some(CircuitBreakers {
        thresholds: vec![t],
        ..Default::default()
    });
    if set_common {
        opts.common_http_protocol_options = Some(common);
    }
}

pub fn set_auto_sni(opts: &mut HttpProtocolOptions, auto_sni: bool, auto_san: bool) {
    if auto_sni || auto_san {
        opts.upstream_http_protocol_options = Some(UpstreamHttpProtocolOptions {
            auto_sni,
            auto_san_validation: auto_san,
            ..Default::default()
        });
    }
}

/// Outlier detection, with success-rate ejection off and the panic threshold taken from
/// `minHealthPercent` (0 by default: Kubernetes services have few pods).
pub fn apply_outlier_detection(c: &mut Cluster, od: Option<&OutlierDetection>) {
    let Some(od) = od else { return };
    let enforce = |v: u32| u32v(if v > 0 { 100 } else { 0 });
    let mut out = EnvoyOutlier {
        enforcing_success_rate: Some(u32v(0)),
        ..Default::default()
    };
    #[allow(deprecated)]
    let legacy = od.consecutive_errors.filter(|n| *n > 0).map(|n| n as u32);
    if let Some(v) = od.consecutive_5xx_errors.or(legacy) {
        out.consecutive_5xx = Some(u32v(v));
        out.enforcing_consecutive_5xx = Some(enforce(v));
    }
    if let Some(v) = od.consecutive_gateway_errors {
        out.consecutive_gateway_failure = Some(u32v(v));
        out.enforcing_consecutive_gateway_failure = Some(enforce(v));
    }
    if let Some(d) = &od.interval {
        out.interval = Some(duration(d.as_std()));
    }
    if let Some(d) = &od.base_ejection_time {
        out.base_ejection_time = Some(duration(d.as_std()));
    }
    if let Some(n) = od.max_ejection_percent.filter(|n| *n > 0) {
        out.max_ejection_percent = Some(u32v(n as u32));
    }
    if od.split_external_local_origin_errors == Some(true) {
        out.split_external_local_origin_errors = true;
        if let Some(n) = od.consecutive_local_origin_failures.filter(|n| *n > 0) {
            out.consecutive_local_origin_failure = Some(u32v(n));
            out.enforcing_consecutive_local_origin_failure = Some(u32v(100));
        }
        out.enforcing_local_origin_success_rate = Some(u32v(0));
    }
    c.outlier_detection = Some(out);
    let min_health = od.min_health_percent.unwrap_or(0);
    if min_health >= 0 {
        let common = c.common_lb_config.get_or_insert_with(Default::default);
        common.healthy_panic_threshold = Some(Percent {
            value: f64::from(min_health),
        });
    }
}

/// `lb_policy` and its config. ORIGINAL_DST clusters always use CLUSTER_PROVIDED.
pub fn apply_load_balancer(
    c: &mut Cluster,
    lb: Option<&LoadBalancerSettings>,
    default: cluster::LbPolicy,
) {
    if c.cluster_discovery_type
        == Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::OriginalDst as i32,
        ))
    {
        c.lb_policy = cluster::LbPolicy::ClusterProvided as i32;
        return;
    }
    let slow_start =
        lb.and_then(|l| l.warmup_duration_secs.as_ref())
            .map(|d| cluster::SlowStartConfig {
                slow_start_window: Some(duration(d.as_std())),
                ..Default::default()
            });
    let simple = lb.and_then(|l| l.simple);
    let policy = match simple {
        Some(SimpleLb::Random) => cluster::LbPolicy::Random,
        Some(SimpleLb::RoundRobin) => cluster::LbPolicy::RoundRobin,
        Some(SimpleLb::LeastConn | SimpleLb::LeastRequest) => cluster::LbPolicy::LeastRequest,
        _ => default,
    };
    c.lb_policy = policy as i32;
    if let Some(ss) = slow_start {
        c.lb_config = match policy {
            cluster::LbPolicy::RoundRobin => Some(cluster::LbConfig::RoundRobinLbConfig(
                cluster::RoundRobinLbConfig {
                    slow_start_config: Some(ss),
                },
            )),
            cluster::LbPolicy::LeastRequest => Some(cluster::LbConfig::LeastRequestLbConfig(
                cluster::LeastRequestLbConfig {
                    slow_start_config: Some(ss),
                    ..Default::default()
                },
            )),
            _ => None,
        };
    }
    let Some(ch) = lb.and_then(|l| l.consistent_hash.as_ref()) else {
        return;
    };
    if let Some(m) = &ch.maglev {
        c.lb_policy = cluster::LbPolicy::Maglev as i32;
        c.lb_config = m.table_size.filter(|n| *n > 0).map(|n| {
            cluster::LbConfig::MaglevLbConfig(cluster::MaglevLbConfig {
                table_size: Some(UInt64Value { value: n }),
            })
        });
    } else {
        c.lb_policy = cluster::LbPolicy::RingHash as i32;
        #[allow(deprecated)]
        let size = ch
            .ring_hash
            .as_ref()
            .and_then(|r| r.minimum_ring_size)
            .or(ch.minimum_ring_size)
            .filter(|n| *n > 0)
            .unwrap_or(1024);
        c.lb_config = Some(cluster::LbConfig::RingHashLbConfig(
            cluster::RingHashLbConfig {
                minimum_ring_size: Some(UInt64Value { value: size }),
                ..Default::default()
            },
        ));
    }
}
