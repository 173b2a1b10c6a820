use envoy_types::pb::envoy::config::core::v3::transport_socket;
use envoy_types::pb::envoy::config::route::v3::{route, route_action, route_match::PathSpecifier, virtual_host::TlsRequirementType};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::tcp_proxy;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, DownstreamTlsContext,
};

use super::{
    action, hcm_of, listener, listeners, route_config, routes, tcp_cluster, tcp_of, unpack, vhost,
};
use crate::gen::cds::address_text;
use crate::testutil::{bookinfo, router, BOOKINFO_CONFIG};

fn ingress() -> crate::Proxy {
    router(
        "istio-ingressgateway-1",
        "istio-system",
        "10.244.0.2",
        &[("app", "istio-ingressgateway"), ("istio", "ingressgateway")],
    )
}

#[test]
fn server_port_80_listens_on_target_port_8080_like_the_seeds() {
    let push = bookinfo().config(BOOKINFO_CONFIG).push();
    let gw = ingress();
    let names: Vec<String> = listeners(&push, &gw).into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["0.0.0.0_8080"]);
    let l = listener(&push, &gw, "0.0.0.0_8080");
    assert_eq!(address_text(l.address.as_ref().unwrap()), "0.0.0.0:8080");
    assert!(l.bind_to_port.is_none(), "gateways bind their ports");
    let h = hcm_of(&l.filter_chains[0].filters[0]);
    assert!(h.use_remote_address.unwrap().value);
    match h.route_specifier {
        Some(RouteSpecifier::Rds(r)) => assert_eq!(r.route_config_name, "http.8080"),
        other => panic!("{other:?}"),
    }

    let rc = route_config(&push, &gw, "http.8080");
    assert_eq!(rc.virtual_hosts.len(), 1);
    let v = vhost(&rc, "*:80");
    assert_eq!(v.domains, ["*"]);
    // Five matches, five routes, in order (seeds/004).
    let paths: Vec<PathSpecifier> = v
        .routes
        .iter()
        .map(|r| r.r#match.as_ref().unwrap().path_specifier.clone().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            PathSpecifier::Path("/productpage".into()),
            PathSpecifier::Prefix("/static".into()),
            PathSpecifier::Path("/login".into()),
            PathSpecifier::Path("/logout".into()),
            PathSpecifier::Prefix("/api/v1/products".into()),
        ]
    );
    let first = &v.routes[0];
    assert_eq!(
        action(first).cluster_specifier,
        Some(route_action::ClusterSpecifier::Cluster(
            "outbound|9080||productpage.default.svc.cluster.local".into()
        ))
    );
    assert_eq!(
        first.decorator.as_ref().unwrap().operation,
        "productpage.default.svc.cluster.local:9080/productpage"
    );
    assert_eq!(
        v.routes[1].decorator.as_ref().unwrap().operation,
        "productpage.default.svc.cluster.local:9080/static*"
    );
    assert!(format!("{:?}", first.metadata)
        .contains("/apis/networking.istio.io/v1/namespaces/default/virtual-service/bookinfo"));
    assert_eq!(
        action(first)
            .retry_policy
            .as_ref()
            .unwrap()
            .num_retries
            .unwrap()
            .value,
        2
    );
    // The mesh-bound reviews VirtualService is not on the gateway.
    assert!(!format!("{rc:?}").contains("reviews"));
}

#[test]
fn gateways_that_do_not_select_the_proxy_are_ignored() {
    let push = bookinfo().config(BOOKINFO_CONFIG).push();
    let other = router(
        "egress-1",
        "istio-system",
        "10.244.0.9",
        &[("istio", "egressgateway")],
    );
    assert!(listeners(&push, &other).is_empty());
    assert!(routes(&push, &other).is_empty());
}

const TLS_GATEWAY: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: secure, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*/bookinfo.example.com"]
    tls: {httpsRedirect: true}
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["default/bookinfo.example.com"]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
  - port: {number: 443, name: https-admin, protocol: HTTPS}
    hosts: ["admin.example.com"]
    tls: {mode: MUTUAL, credentialName: admin-cert}
  - port: {number: 15443, name: tls, protocol: TLS}
    hosts: ["*.db.example.com"]
    tls: {mode: PASSTHROUGH}
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo-secure, namespace: default}
spec:
  hosts: [bookinfo.example.com, admin.example.com]
  gateways: [istio-system/secure]
  http:
  - route:
    - destination: {host: productpage, port: {number: 9080}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: ["*.db.example.com", tcp.example.com]
  gateways: [istio-system/secure]
  tls:
  - match:
    - sniHosts: [orders.db.example.com]
    route:
    - destination: {host: ratings, port: {number: 9080}}
  - match:
    - sniHosts: [users.db.example.com]
    route:
    - destination: {host: details}
      weight: 70
    - destination: {host: reviews}
      weight: 30
  tcp:
  - match:
    - port: 31400
    route:
    - destination: {host: details, port: {number: 9080}}
"#;

#[test]
fn https_servers_terminate_tls_per_sni() {
    let push = bookinfo().config(TLS_GATEWAY).push();
    let gw = ingress();
    let l = listener(&push, &gw, "0.0.0.0_8443");
    assert_eq!(
        l.listener_filters[0].name,
        "envoy.filters.listener.tls_inspector"
    );
    assert_eq!(l.filter_chains.len(), 2);
    let chain = &l.filter_chains[0];
    assert_eq!(
        chain.filter_chain_match.as_ref().unwrap().server_names,
        ["bookinfo.example.com"]
    );
    match hcm_of(&chain.filters[0]).route_specifier {
        Some(RouteSpecifier::Rds(r)) => {
            assert_eq!(r.route_config_name, "https.443.https.secure.istio-system")
        }
        other => panic!("{other:?}"),
    }
    let ts = chain.transport_socket.as_ref().unwrap();
    let Some(transport_socket::ConfigType::TypedConfig(a)) = &ts.config_type else {
        panic!()
    };
    let tls: DownstreamTlsContext = unpack(a);
    let common = tls.common_tls_context.unwrap();
    assert_eq!(
        common.tls_certificate_sds_secret_configs[0].name,
        "kubernetes://bookinfo-cert"
    );
    assert_eq!(common.alpn_protocols, ["h2", "http/1.1"]);
    assert!(!tls.require_client_certificate.unwrap().value);

    let Some(transport_socket::ConfigType::TypedConfig(a)) = &l.filter_chains[1]
        .transport_socket
        .as_ref()
        .unwrap()
        .config_type
    else {
        panic!()
    };
    let mtls: DownstreamTlsContext = unpack(a);
    assert!(mtls.require_client_certificate.unwrap().value);
    match mtls.common_tls_context.unwrap().validation_context_type {
        Some(ValidationContextType::CombinedValidationContext(v)) => {
            assert_eq!(
                v.validation_context_sds_secret_config.unwrap().name,
                "kubernetes://admin-cert-cacert"
            )
        }
        other => panic!("{other:?}"),
    }

    let rc = route_config(&push, &gw, "https.443.https.secure.istio-system");
    let names: Vec<&str> = rc.virtual_hosts.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["bookinfo.example.com:443"]);
    assert_eq!(
        rc.virtual_hosts[0].domains,
        ["bookinfo.example.com", "bookinfo.example.com:*"]
    );
}

#[test]
fn https_redirect_requires_tls() {
    let push = bookinfo().config(TLS_GATEWAY).push();
    let rc = route_config(&push, &ingress(), "http.8080");
    let v = vhost(&rc, "bookinfo.example.com:80");
    assert_eq!(v.require_tls, TlsRequirementType::All as i32);
}

#[test]
fn passthrough_routes_by_sni_and_tcp_routes() {
    let push = bookinfo().config(TLS_GATEWAY).push();
    let gw = ingress();
    let l = listener(&push, &gw, "0.0.0.0_15443");
    assert_eq!(l.filter_chains.len(), 2);
    assert_eq!(
        l.filter_chains[0]
            .filter_chain_match
            .as_ref()
            .unwrap()
            .server_names,
        ["orders.db.example.com"]
    );
    assert_eq!(
        tcp_cluster(&l.filter_chains[0].filters[0]),
        "outbound|9080||ratings.default.svc.cluster.local"
    );
    match tcp_of(&l.filter_chains[1].filters[0]).cluster_specifier {
        Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) => {
            let got: Vec<(String, u32)> = w
                .clusters
                .iter()
                .map(|c| (c.name.clone(), c.weight))
                .collect();
            assert_eq!(
                got,
                [
                    (
                        "outbound|9080||details.default.svc.cluster.local".to_string(),
                        70
                    ),
                    (
                        "outbound|9080||reviews.default.svc.cluster.local".to_string(),
                        30
                    )
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    let tcp = listener(&push, &gw, "0.0.0.0_31400");
    assert_eq!(
        tcp_cluster(&tcp.filter_chains[0].filters[0]),
        "outbound|9080||details.default.svc.cluster.local"
    );
}

#[test]
fn no_virtual_service_gives_a_404_vhost() {
    let gw_only = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: lonely, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
"#;
    let push = bookinfo().config(gw_only).push();
    let rc = route_config(&push, &ingress(), "http.8080");
    let v = vhost(&rc, "blackhole:80");
    match &v.routes[0].action {
        Some(route::Action::DirectResponse(d)) => assert_eq!(d.status, 404),
        other => panic!("{other:?}"),
    }
}

#[test]
fn match_gateways_restrict_routes_to_their_gateway() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: default}
spec:
  hosts: [productpage]
  gateways: [bookinfo-gateway, mesh]
  http:
  - match:
    - uri: {prefix: /only-mesh}
      gateways: [mesh]
    route:
    - destination: {host: productpage}
  - match:
    - uri: {prefix: /only-gw}
      gateways: [bookinfo-gateway]
    route:
    - destination: {host: productpage}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
"#;
    let push = bookinfo().config(yaml).push();
    let rc = route_config(&push, &ingress(), "http.8080");
    let v = vhost(&rc, "productpage.default.svc.cluster.local:80");
    assert_eq!(v.routes.len(), 1);
    assert_eq!(
        v.routes[0].r#match.as_ref().unwrap().path_specifier,
        Some(PathSpecifier::Prefix("/only-gw".into()))
    );
    // And the sidecars get the other one.
    let pp = crate::testutil::sidecar(
        "productpage-v1-1",
        "default",
        "10.244.0.10",
        &[("app", "productpage")],
    );
    let rc = route_config(&push, &pp, "9080");
    let v = vhost(&rc, "productpage.default.svc.cluster.local:9080");
    assert_eq!(v.routes.len(), 1);
    assert_eq!(
        v.routes[0].r#match.as_ref().unwrap().path_specifier,
        Some(PathSpecifier::Prefix("/only-mesh".into()))
    );
}
