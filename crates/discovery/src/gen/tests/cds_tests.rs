use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    self, ClusterDiscoveryType, DiscoveryType, LbPolicy,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, UpstreamTlsContext,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{explicit_http_config::ProtocolConfig, UpstreamProtocolOptions},
    HttpProtocolOptions,
};
use ironmesh_registry::model::ServiceOrigin;
use ironmesh_registry::{Endpoint, Locality, Protocol, Resolution, Service, ServicePort, TlsMode};

use super::{cluster, clusters, unpack};
use crate::gen::cds::address_text;
use crate::gen::policy::HTTP_PROTOCOL_OPTIONS;
use crate::testutil::{bookinfo, sidecar, World, BOOKINFO_CONFIG};

fn ty(t: DiscoveryType) -> Option<ClusterDiscoveryType> {
    Some(ClusterDiscoveryType::Type(t as i32))
}

fn productpage() -> crate::Proxy {
    sidecar(
        "productpage-v1-1",
        "default",
        "10.244.0.10",
        &[("app", "productpage"), ("version", "v1")],
    )
}

fn protocol_options(
    c: &envoy_types::pb::envoy::config::cluster::v3::Cluster,
) -> HttpProtocolOptions {
    unpack(&c.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS])
}

#[test]
fn outbound_eds_cluster_has_istio_defaults() {
    let push = bookinfo().config(BOOKINFO_CONFIG).push();
    let c = cluster(
        &push,
        &productpage(),
        "outbound|9080||reviews.default.svc.cluster.local",
    );
    assert_eq!(c.cluster_discovery_type, ty(DiscoveryType::Eds));
    let eds = c.eds_cluster_config.as_ref().unwrap();
    assert_eq!(eds.service_name, c.name);
    assert!(eds
        .eds_config
        .as_ref()
        .unwrap()
        .config_source_specifier
        .is_some());
    assert_eq!(c.connect_timeout.unwrap().seconds, 10);
    assert_eq!(c.lb_policy, LbPolicy::LeastRequest as i32);
    let t = &c.circuit_breakers.as_ref().unwrap().thresholds[0];
    assert_eq!(t.max_connections.unwrap().value, u32::MAX);
    assert_eq!(t.max_retries.unwrap().value, u32::MAX);
    assert!(t.track_remaining);
    // An explicit HTTP/1.1 port needs no protocol options.
    assert!(c.typed_extension_protocol_options.is_empty());
    assert!(c.outlier_detection.is_none());
    assert!(c.transport_socket.is_none());
}

#[test]
fn subsets_and_fixed_clusters() {
    let push = bookinfo().config(BOOKINFO_CONFIG).push();
    let names: Vec<String> = clusters(&push, &productpage())
        .into_iter()
        .map(|c| c.name)
        .collect();
    for want in [
        "BlackHoleCluster",
        "InboundPassthroughCluster",
        "PassthroughCluster",
        "inbound|9080||",
        "outbound|9080|v1|reviews.default.svc.cluster.local",
        "outbound|9080|v2|reviews.default.svc.cluster.local",
        "outbound|9080|v3|reviews.default.svc.cluster.local",
        "outbound|80||istio-ingressgateway.istio-system.svc.cluster.local",
        "outbound|53||kube-dns.kube-system.svc.cluster.local",
        "outbound|9153||kube-dns.kube-system.svc.cluster.local",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:#?}"
        );
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    let p = productpage();
    let pass = cluster(&push, &p, "PassthroughCluster");
    assert_eq!(pass.cluster_discovery_type, ty(DiscoveryType::OriginalDst));
    assert_eq!(pass.lb_policy, LbPolicy::ClusterProvided as i32);
    let bh = cluster(&push, &p, "BlackHoleCluster");
    assert_eq!(bh.cluster_discovery_type, ty(DiscoveryType::Static));
    assert!(bh.load_assignment.is_none());
    let inb = cluster(&push, &p, "InboundPassthroughCluster");
    let bind = inb.upstream_bind_config.unwrap().source_address.unwrap();
    assert_eq!(bind.address, "127.0.0.6");
    // The inbound cluster of the proxy's own port: original destination from 127.0.0.6.
    let own = cluster(&push, &p, "inbound|9080||");
    assert_eq!(own.cluster_discovery_type, ty(DiscoveryType::OriginalDst));
    assert_eq!(
        own.upstream_bind_config
            .unwrap()
            .source_address
            .unwrap()
            .address,
        "127.0.0.6"
    );
}

#[test]
fn inbound_localhost_mode_is_static() {
    let push = bookinfo()
        .mesh("inboundTrafficPolicy: {mode: LOCALHOST}")
        .push();
    let c = cluster(&push, &productpage(), "inbound|9080||");
    assert_eq!(c.cluster_discovery_type, ty(DiscoveryType::Static));
    let la = c.load_assignment.unwrap();
    let ep = &la.endpoints[0].lb_endpoints[0];
    let Some(envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier::Endpoint(
        e,
    )) = &ep.host_identifier
    else {
        panic!()
    };
    assert_eq!(address_text(e.address.as_ref().unwrap()), "127.0.0.1:9080");
}

#[test]
fn protocols_choose_upstream_http_version() {
    let push = bookinfo().push();
    let p = productpage();
    // grpc-xds → explicit HTTP/2.
    let c = cluster(
        &push,
        &p,
        "outbound|15010||istiod.istio-system.svc.cluster.local",
    );
    match protocol_options(&c).upstream_protocol_options {
        Some(UpstreamProtocolOptions::ExplicitHttpConfig(e)) => {
            assert!(matches!(
                e.protocol_config,
                Some(ProtocolConfig::Http2ProtocolOptions(_))
            ))
        }
        other => panic!("{other:?}"),
    }
    // An unnamed (sniffed) port uses the downstream protocol.
    let c = cluster(
        &push,
        &p,
        "outbound|9153||kube-dns.kube-system.svc.cluster.local",
    );
    assert!(matches!(
        protocol_options(&c).upstream_protocol_options,
        Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(_))
    ));
}

const POLICY: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 3s}
      http: {http1MaxPendingRequests: 10, http2MaxRequests: 1000, maxRetries: 3, idleTimeout: 30s, maxRequestsPerConnection: 5}
    outlierDetection: {consecutive5xxErrors: 7, interval: 5s, baseEjectionTime: 30s, maxEjectionPercent: 50}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: RANDOM}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpHeaderName: x-user}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer:
        consistentHash:
          maglev: {tableSize: 65537}
          httpCookie: {name: session, ttl: 10s}
"#;

#[test]
fn destination_rule_policies_map_to_cluster_fields() {
    let push = bookinfo().config(POLICY).push();
    let p = productpage();
    // Port-level settings replace the whole top-level policy for their port.
    let c = cluster(
        &push,
        &p,
        "outbound|9080||reviews.default.svc.cluster.local",
    );
    assert_eq!(c.lb_policy, LbPolicy::Random as i32);
    assert!(c.outlier_detection.is_none());
    assert_eq!(
        c.circuit_breakers.unwrap().thresholds[0]
            .max_connections
            .unwrap()
            .value,
        u32::MAX
    );

    // Subsets inherit the top level (or its port entry) and override what they set.
    let v1 = cluster(
        &push,
        &p,
        "outbound|9080|v1|reviews.default.svc.cluster.local",
    );
    assert_eq!(v1.lb_policy, LbPolicy::RingHash as i32);
    match v1.lb_config {
        Some(cluster::LbConfig::RingHashLbConfig(r)) => {
            assert_eq!(r.minimum_ring_size.unwrap().value, 1024)
        }
        other => panic!("{other:?}"),
    }
    let v2 = cluster(
        &push,
        &p,
        "outbound|9080|v2|reviews.default.svc.cluster.local",
    );
    assert_eq!(v2.lb_policy, LbPolicy::Maglev as i32);
    match v2.lb_config {
        Some(cluster::LbConfig::MaglevLbConfig(m)) => {
            assert_eq!(m.table_size.unwrap().value, 65537)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn connection_pool_and_outlier_detection() {
    let yaml = POLICY.replace("    portLevelSettings:\n    - port: {number: 9080}\n      loadBalancer: {simple: RANDOM}\n", "");
    let push = bookinfo().config(&yaml).push();
    let c = cluster(
        &push,
        &productpage(),
        "outbound|9080||reviews.default.svc.cluster.local",
    );
    assert_eq!(c.lb_policy, LbPolicy::RoundRobin as i32);
    assert_eq!(c.connect_timeout.unwrap().seconds, 3);
    let t = &c.circuit_breakers.as_ref().unwrap().thresholds[0];
    assert_eq!(t.max_connections.unwrap().value, 100);
    assert_eq!(t.max_pending_requests.unwrap().value, 10);
    assert_eq!(t.max_requests.unwrap().value, 1000);
    assert_eq!(t.max_retries.unwrap().value, 3);
    let opts = protocol_options(&c);
    let common = opts.common_http_protocol_options.unwrap();
    assert_eq!(common.idle_timeout.unwrap().seconds, 30);
    assert_eq!(common.max_requests_per_connection.unwrap().value, 5);
    // The protocol must be set whenever the options are present.
    assert!(opts.upstream_protocol_options.is_some());
    let od = c.outlier_detection.unwrap();
    assert_eq!(od.consecutive_5xx.unwrap().value, 7);
    assert_eq!(od.enforcing_consecutive_5xx.unwrap().value, 100);
    assert_eq!(od.enforcing_success_rate.unwrap().value, 0);
    assert_eq!(od.interval.unwrap().seconds, 5);
    assert_eq!(od.base_ejection_time.unwrap().seconds, 30);
    assert_eq!(od.max_ejection_percent.unwrap().value, 50);
    assert_eq!(
        c.common_lb_config
            .unwrap()
            .healthy_panic_threshold
            .unwrap()
            .value,
        0.0
    );
}

#[test]
fn tls_origination_simple_mutual_and_credentials() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    tls: {mode: SIMPLE, caCertificates: /etc/certs/ca.pem, subjectAltNames: [ratings.example.com]}
  subsets:
  - name: mtls
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: MUTUAL, clientCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, sni: ratings.internal}
  - name: cred
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: MUTUAL, credentialName: ratings-client}
  - name: istio
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL}
"#;
    let push = bookinfo().config(yaml).push();
    let p = productpage();
    let tls = |name: &str| -> UpstreamTlsContext {
        let c = cluster(&push, &p, name);
        let ts = c
            .transport_socket
            .unwrap_or_else(|| panic!("{name} has no TLS"));
        assert_eq!(ts.name, "envoy.transport_sockets.tls");
        let Some(
            envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(a),
        ) = ts.config_type
        else {
            panic!()
        };
        unpack(&a)
    };
    let simple = tls("outbound|9080||ratings.default.svc.cluster.local");
    // No SNI set: Envoy takes it from the Host header (auto SNI), SANs are given.
    assert_eq!(simple.sni, "");
    let opts = protocol_options(&cluster(
        &push,
        &p,
        "outbound|9080||ratings.default.svc.cluster.local",
    ));
    let up = opts.upstream_http_protocol_options.unwrap();
    assert!(up.auto_sni && !up.auto_san_validation);
    let common = simple.common_tls_context.unwrap();
    assert!(common.tls_certificates.is_empty());
    match common.validation_context_type {
        Some(ValidationContextType::ValidationContext(v)) => {
            assert!(format!("{:?}", v.trusted_ca).contains("/etc/certs/ca.pem"));
            assert_eq!(v.match_typed_subject_alt_names.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    let mutual = tls("outbound|9080|mtls|ratings.default.svc.cluster.local");
    assert_eq!(mutual.sni, "ratings.internal");
    assert!(
        format!("{:?}", mutual.common_tls_context.unwrap().tls_certificates)
            .contains("/etc/certs/key.pem")
    );
    let cred = tls("outbound|9080|cred|ratings.default.svc.cluster.local")
        .common_tls_context
        .unwrap();
    assert_eq!(
        cred.tls_certificate_sds_secret_configs[0].name,
        "kubernetes://ratings-client"
    );
    match cred.validation_context_type {
        Some(ValidationContextType::CombinedValidationContext(v)) => assert_eq!(
            v.validation_context_sds_secret_config.unwrap().name,
            "kubernetes://ratings-client-cacert"
        ),
        other => panic!("{other:?}"),
    }
    // ISTIO_MUTUAL waits for workload certificates: plaintext for now.
    assert!(cluster(
        &push,
        &p,
        "outbound|9080|istio|ratings.default.svc.cluster.local"
    )
    .transport_socket
    .is_none());
}

fn service_entry(host: &str, resolution: Resolution, port: u16) -> Service {
    Service {
        hostname: host.into(),
        name: host.into(),
        namespace: "default".into(),
        vip: None,
        addresses: Vec::new(),
        ports: vec![ServicePort {
            name: "https".into(),
            port,
            protocol: Protocol::Https,
            target_port: None,
        }],
        resolution,
        mesh_external: true,
        labels: BTreeMap::new(),
        export_to: vec!["*".into()],
        origin: ServiceOrigin::ServiceEntry(format!("default/{host}")),
        selector: None,
    }
}

#[test]
fn resolutions_choose_cluster_types() {
    let ep = Endpoint {
        address: "api.example.com".into(),
        port: 443,
        service_port: 443,
        labels: BTreeMap::new(),
        service_account: String::new(),
        locality: Locality::default(),
        weight: 1,
        healthy: true,
        workload_name: "api".into(),
        namespace: "default".into(),
        tls_mode: TlsMode::Disabled,
    };
    let push = World::new()
        .raw_service(service_entry("api.example.com", Resolution::Dns, 443))
        .endpoint("api.example.com", ep)
        .raw_service(service_entry(
            "rr.example.com",
            Resolution::DnsRoundRobin,
            443,
        ))
        .raw_service(service_entry(
            "any.example.com",
            Resolution::Passthrough,
            443,
        ))
        .push();
    let p = sidecar("a", "default", "10.0.0.1", &[]);
    let dns = cluster(&push, &p, "outbound|443||api.example.com");
    assert_eq!(dns.cluster_discovery_type, ty(DiscoveryType::StrictDns));
    assert_eq!(
        dns.dns_lookup_family,
        cluster::DnsLookupFamily::V4Only as i32
    );
    let lb = &dns.load_assignment.unwrap().endpoints[0].lb_endpoints[0];
    assert!(format!("{lb:?}").contains("api.example.com"));
    let rr = cluster(&push, &p, "outbound|443||rr.example.com");
    assert_eq!(rr.cluster_discovery_type, ty(DiscoveryType::LogicalDns));
    // Without endpoints the host itself is resolved.
    assert!(format!("{:?}", rr.load_assignment).contains("rr.example.com"));
    let any = cluster(&push, &p, "outbound|443||any.example.com");
    assert_eq!(any.cluster_discovery_type, ty(DiscoveryType::OriginalDst));
    assert_eq!(any.lb_policy, LbPolicy::ClusterProvided as i32);
    let _ = Arc::new(());
}

#[test]
fn gateways_get_outbound_clusters_and_blackhole_only() {
    let push = bookinfo().config(BOOKINFO_CONFIG).push();
    let gw = crate::testutil::router(
        "istio-ingressgateway-1",
        "istio-system",
        "10.244.0.2",
        &[("app", "istio-ingressgateway"), ("istio", "ingressgateway")],
    );
    let names: Vec<String> = clusters(&push, &gw).into_iter().map(|c| c.name).collect();
    assert!(names.contains(&"BlackHoleCluster".to_string()));
    assert!(names.contains(&"outbound|9080||productpage.default.svc.cluster.local".to_string()));
    assert!(!names
        .iter()
        .any(|n| n.starts_with("inbound|") || n == "PassthroughCluster"));
}

#[test]
fn h2_upgrade_policy_from_mesh_and_destination_rule() {
    let dr = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details, namespace: default}
spec:
  host: details
  trafficPolicy:
    connectionPool:
      http: {h2UpgradePolicy: DO_NOT_UPGRADE}
"#;
    let push = bookinfo()
        .config(dr)
        .mesh("h2UpgradePolicy: UPGRADE")
        .push();
    let p = productpage();
    let h2 = |name: &str| {
        let c = cluster(&push, &p, name);
        if c.typed_extension_protocol_options.is_empty() {
            return false;
        }
        matches!(
            protocol_options(&c).upstream_protocol_options,
            Some(UpstreamProtocolOptions::ExplicitHttpConfig(e))
                if matches!(e.protocol_config, Some(ProtocolConfig::Http2ProtocolOptions(_)))
        )
    };
    assert!(h2("outbound|9080||reviews.default.svc.cluster.local"));
    assert!(!h2("outbound|9080||details.default.svc.cluster.local"));
    // TCP ports are never upgraded.
    assert!(!h2("outbound|53||kube-dns.kube-system.svc.cluster.local"));
}
