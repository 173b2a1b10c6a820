//! CDS: outbound clusters per visible service port and DestinationRule subset, inbound
//! clusters for the proxy's own ports, and the fixed Passthrough/BlackHole clusters.

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::socket_address;
use envoy_types::pb::envoy::config::core::v3::BindConfig;
use envoy_types::pb::envoy::config::core::v3::{address, SocketAddress};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
};
use ironmesh_config::mesh::mesh_config::{H2UpgradePolicy, InboundTrafficPolicyMode};
use ironmesh_registry::{Protocol, Resolution, Service, ServicePort};

use super::policy::{self, Policy};
use super::tls::{upstream_tls, TLS_TRANSPORT_SOCKET};
use super::util::{
    ads_config_source, duration, list_value, metadata, socket_address, string_value, struct_value,
    transport_socket,
};
use crate::proxy::Proxy;
use crate::push_context::{labels_subset, DrConfig, PushContext, SidecarScope};

pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";
pub const BLACKHOLE_CLUSTER: &str = "BlackHoleCluster";
pub const INBOUND_PASSTHROUGH_CLUSTER: &str = "InboundPassthroughCluster";
/// Inbound traffic reaches the application from this address, so that the capture rules
/// can tell it apart from the application's own outbound traffic.
pub const INBOUND_SOURCE_ADDRESS: &str = "127.0.0.6";

/// `outbound|<port>|<subset>|<host>`.
pub fn outbound_name(port: u16, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

/// `inbound|<targetPort>||`.
pub fn inbound_name(port: u16) -> String {
    format!("inbound|{port}||")
}

/// One outbound cluster to build: a service port, maybe a subset, and its policy.
#[derive(Debug, Clone)]
pub struct ClusterPlan<'a> {
    pub name: String,
    pub service: Arc<Service>,
    pub port: ServicePort,
    pub subset_labels: BTreeMap<String, String>,
    pub policy: Policy,
    pub rule: Option<&'a DrConfig>,
}

impl ClusterPlan<'_> {
    /// Endpoints come over EDS (rather than DNS or the original destination).
    pub fn is_eds(&self, grpc: bool) -> bool {
        self.service.resolution == Resolution::ClientSideLb
            && (grpc || !self.policy.is_passthrough())
    }
}

/// Outbound clusters for every service port the proxy may see, and one per subset of the
/// DestinationRule that applies to each host. Proxyless gRPC gets no clusters for
/// passthrough services, which it cannot use.
pub fn outbound_plans<'a>(
    push: &'a PushContext,
    proxy: &Proxy,
    scope: &SidecarScope<'_>,
) -> Vec<ClusterPlan<'a>> {
    let grpc = proxy.is_proxyless_grpc();
    let mut out = Vec::new();
    for svc in scope.services() {
        if grpc && svc.resolution == Resolution::Passthrough {
            continue;
        }
        let rule = push.destination_rule(proxy, &svc.hostname);
        let dr = rule.map(|r| r.spec.as_ref());
        for port in svc.ports.iter().filter(|p| p.protocol != Protocol::Udp) {
            out.push(ClusterPlan {
                name: outbound_name(port.port, "", &svc.hostname),
                service: svc.clone(),
                port: port.clone(),
                subset_labels: BTreeMap::new(),
                policy: Policy::effective(dr, None, port.port),
                rule,
            });
            for subset in dr.map(|d| d.subsets.as_slice()).unwrap_or_default() {
                let Some(name) = subset.name.as_deref() else {
                    continue;
                };
                out.push(ClusterPlan {
                    name: outbound_name(port.port, name, &svc.hostname),
                    service: svc.clone(),
                    port: port.clone(),
                    subset_labels: subset.labels.clone(),
                    policy: Policy::effective(dr, Some(subset), port.port),
                    rule,
                });
            }
        }
    }
    out
}

fn discovery(t: cluster::DiscoveryType) -> Option<cluster::ClusterDiscoveryType> {
    Some(cluster::ClusterDiscoveryType::Type(t as i32))
}

/// A static endpoint list for DNS clusters: the endpoints' host names (or the service's
/// own host when it lists none).
fn dns_load_assignment(
    push: &PushContext,
    plan: &ClusterPlan<'_>,
    single: bool,
) -> ClusterLoadAssignment {
    let all = push
        .registry()
        .endpoints(&plan.service.hostname, plan.port.port);
    let mut eps: Vec<(String, u32)> = all
        .iter()
        .filter(|e| labels_subset(&plan.subset_labels, &e.labels))
        .map(|e| (e.address.clone(), u32::from(e.port)))
        .collect();
    // LOGICAL_DNS needs exactly one endpoint, so an empty subset resolves the host too.
    if all.is_empty() || (single && eps.is_empty()) {
        let port = plan.port.target_port.unwrap_or(plan.port.port);
        eps.push((plan.service.hostname.clone(), u32::from(port)));
    }
    if single {
        eps.truncate(1);
    }
    ClusterLoadAssignment {
        cluster_name: plan.name.clone(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: eps
                .into_iter()
                .map(|(host, port)| LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
                        address: Some(socket_address(&host, port)),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn services_metadata(
    svc: &Service,
    rule: Option<&DrConfig>,
) -> envoy_types::pb::envoy::config::core::v3::Metadata {
    let mut fields = vec![(
        "services",
        list_value(vec![struct_value(vec![
            ("host", string_value(&svc.hostname)),
            ("name", string_value(&svc.name)),
            ("namespace", string_value(&svc.namespace)),
        ])]),
    )];
    if let Some(r) = rule {
        fields.push(("config", string_value(&r.config_path())));
    }
    metadata("istio", fields)
}

/// Builds one outbound cluster.
pub fn build_outbound(push: &PushContext, proxy: &Proxy, plan: &ClusterPlan<'_>) -> Cluster {
    let grpc = proxy.is_proxyless_grpc();
    let mesh = push.mesh();
    let mut c = Cluster {
        name: plan.name.clone(),
        connect_timeout: Some(duration(mesh.connect_timeout())),
        metadata: Some(services_metadata(&plan.service, plan.rule)),
        ..Default::default()
    };
    // The DNS settings Istio sends; Envoy still honours these cluster fields.
    #[allow(deprecated)]
    let dns = |c: &mut Cluster| {
        c.dns_refresh_rate = Some(duration(mesh.dns_refresh_rate()));
        c.respect_dns_ttl = true;
        c.dns_lookup_family = if proxy.ip_addresses.iter().any(|ip| ip.is_ipv6()) {
            cluster::DnsLookupFamily::Auto as i32
        } else {
            cluster::DnsLookupFamily::V4Only as i32
        };
    };
    match plan.service.resolution {
        _ if plan.is_eds(grpc) => {
            c.cluster_discovery_type = discovery(cluster::DiscoveryType::Eds);
            c.eds_cluster_config = Some(cluster::EdsClusterConfig {
                eds_config: Some(ads_config_source()),
                service_name: plan.name.clone(),
            });
        }
        Resolution::Dns if !grpc => {
            c.cluster_discovery_type = discovery(cluster::DiscoveryType::StrictDns);
            c.load_assignment = Some(dns_load_assignment(push, plan, false));
            dns(&mut c);
        }
        Resolution::Dns | Resolution::DnsRoundRobin => {
            c.cluster_discovery_type = discovery(cluster::DiscoveryType::LogicalDns);
            c.load_assignment = Some(dns_load_assignment(push, plan, true));
            dns(&mut c);
        }
        Resolution::Passthrough | Resolution::ClientSideLb => {
            c.cluster_discovery_type = discovery(cluster::DiscoveryType::OriginalDst);
        }
    }

    let pool = plan.policy.connection_pool.as_ref();
    let mesh_upgrade = mesh.h2_upgrade_policy() == H2UpgradePolicy::Upgrade;
    let mut opts = policy::protocol_options(plan.port.protocol, pool, mesh_upgrade);
    policy::apply_connection_pool(&mut c, &mut opts, pool);
    policy::apply_outlier_detection(&mut c, plan.policy.outlier_detection.as_ref());
    let default_lb = if grpc {
        cluster::LbPolicy::RoundRobin
    } else {
        cluster::LbPolicy::LeastRequest
    };
    policy::apply_load_balancer(&mut c, plan.policy.load_balancer.as_ref(), default_lb);

    // Proxyless gRPC reads TLS only from certificate providers; DestinationRule TLS for
    // it is not mapped.
    if let Some(tls) = plan.policy.tls.as_ref().filter(|_| !grpc) {
        let h2 = matches!(
            plan.port.protocol,
            Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb
        );
        if let Some(ctx) = upstream_tls(tls, h2) {
            c.transport_socket = Some(transport_socket(TLS_TRANSPORT_SOCKET, &ctx));
            // Without an explicit SNI (or SANs) Envoy takes them from the request's host,
            // as Istio configures it.
            let auto_sni = ctx.sni.is_empty();
            let auto_san = auto_sni
                && tls.subject_alt_names.is_empty()
                && tls.insecure_skip_verify != Some(true);
            policy::set_auto_sni(&mut opts, auto_sni, auto_san);
        }
    }
    if !grpc && policy::needs_protocol_options(plan.port.protocol, &opts) {
        policy::set_protocol_options(&mut c, &opts);
    }
    c
}

fn original_dst(name: &str, push: &PushContext) -> Cluster {
    Cluster {
        name: name.to_string(),
        cluster_discovery_type: discovery(cluster::DiscoveryType::OriginalDst),
        lb_policy: cluster::LbPolicy::ClusterProvided as i32,
        connect_timeout: Some(duration(push.mesh().connect_timeout())),
        circuit_breakers: Some(policy::default_circuit_breakers()),
        ..Default::default()
    }
}

fn bind_inbound_source(c: &mut Cluster) {
    c.upstream_bind_config = Some(BindConfig {
        source_address: Some(SocketAddress {
            address: INBOUND_SOURCE_ADDRESS.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(0)),
            ..Default::default()
        }),
        ..Default::default()
    });
}

/// `PassthroughCluster`: to wherever the application dialled.
pub fn passthrough(push: &PushContext) -> Cluster {
    let mut c = original_dst(PASSTHROUGH_CLUSTER, push);
    policy::set_protocol_options(
        &mut c,
        &policy::protocol_options(Protocol::Unsupported, None, false),
    );
    c
}

/// `InboundPassthroughCluster`: inbound traffic to ports no service declares.
pub fn inbound_passthrough(push: &PushContext) -> Cluster {
    let mut c = original_dst(INBOUND_PASSTHROUGH_CLUSTER, push);
    bind_inbound_source(&mut c);
    policy::set_protocol_options(
        &mut c,
        &policy::protocol_options(Protocol::Unsupported, None, false),
    );
    c
}

/// `BlackHoleCluster`: no endpoints, so every connection fails.
pub fn blackhole(push: &PushContext) -> Cluster {
    Cluster {
        name: BLACKHOLE_CLUSTER.to_string(),
        cluster_discovery_type: discovery(cluster::DiscoveryType::Static),
        connect_timeout: Some(duration(push.mesh().connect_timeout())),
        ..Default::default()
    }
}

/// `inbound|<targetPort>||` for each port the proxy's workload serves: to the original
/// destination from 127.0.0.6 (PASSTHROUGH), or to 127.0.0.1 (LOCALHOST).
pub fn inbound_clusters(push: &PushContext, proxy: &Proxy) -> Vec<Cluster> {
    let localhost =
        push.mesh().inbound_traffic_policy_mode() == InboundTrafficPolicyMode::Localhost;
    push.service_targets(proxy)
        .into_iter()
        .map(|t| {
            let name = inbound_name(t.target_port);
            let mut c = if localhost {
                Cluster {
                    name: name.clone(),
                    cluster_discovery_type: discovery(cluster::DiscoveryType::Static),
                    connect_timeout: Some(duration(push.mesh().connect_timeout())),
                    circuit_breakers: Some(policy::default_circuit_breakers()),
                    load_assignment: Some(ClusterLoadAssignment {
                        cluster_name: name,
                        endpoints: vec![LocalityLbEndpoints {
                            lb_endpoints: vec![LbEndpoint {
                                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(
                                    EnvoyEndpoint {
                                        address: Some(socket_address(
                                            "127.0.0.1",
                                            u32::from(t.target_port),
                                        )),
                                        ..Default::default()
                                    },
                                )),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            } else {
                let mut c = original_dst(&name, push);
                bind_inbound_source(&mut c);
                c
            };
            c.metadata = Some(services_metadata(&t.service, None));
            if matches!(
                t.port.protocol,
                Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb | Protocol::Unsupported
            ) {
                policy::set_protocol_options(
                    &mut c,
                    &policy::protocol_options(t.port.protocol, None, false),
                );
            }
            c
        })
        .collect()
}

/// All clusters for `proxy`, sorted by name.
pub fn generate(push: &PushContext, proxy: &Proxy) -> Vec<Cluster> {
    let scope = push.scope(proxy);
    let mut out: Vec<Cluster> = outbound_plans(push, proxy, &scope)
        .iter()
        .map(|p| build_outbound(push, proxy, p))
        .collect();
    if !proxy.is_proxyless_grpc() {
        out.push(blackhole(push));
        if !proxy.is_router() {
            out.push(passthrough(push));
            out.push(inbound_passthrough(push));
            out.extend(inbound_clusters(push, proxy));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// `ip:port` of a socket address, for tests and debugging.
pub fn address_text(a: &envoy_types::pb::envoy::config::core::v3::Address) -> String {
    match &a.address {
        Some(address::Address::SocketAddress(s)) => match s.port_specifier {
            Some(socket_address::PortSpecifier::PortValue(p)) => format!("{}:{p}", s.address),
            _ => s.address.clone(),
        },
        _ => String::new(),
    }
}
