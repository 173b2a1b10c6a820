//! EDS: one ClusterLoadAssignment per EDS cluster, endpoints filtered by subset labels
//! and grouped by locality with locality weights (proxyless gRPC needs them).

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{HealthStatus, Locality as EnvoyLocality};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
};
use ironmesh_registry::{Endpoint, Locality};

use super::cds::{outbound_plans, ClusterPlan};
use super::util::{metadata, socket_address, string_value, u32v};
use crate::proxy::Proxy;
use crate::push_context::{labels_subset, PushContext};

/// The cluster Istio reports in workload metadata when the registry has no other.
const DEFAULT_CLUSTER_ID: &str = "Kubernetes";

/// `name;namespace;canonical-service;canonical-revision;cluster`, which telemetry uses
/// to label the destination.
fn workload_metadata(e: &Endpoint) -> String {
    let label = |keys: &[&str]| keys.iter().find_map(|k| e.labels.get(*k).cloned());
    let canonical = label(&[
        "service.istio.io/canonical-name",
        "app.kubernetes.io/name",
        "app",
    ])
    .unwrap_or_else(|| e.workload_name.clone());
    let revision = label(&[
        "service.istio.io/canonical-revision",
        "app.kubernetes.io/version",
        "version",
    ])
    .unwrap_or_else(|| "latest".to_string());
    format!(
        "{};{};{};{};{}",
        e.workload_name, e.namespace, canonical, revision, DEFAULT_CLUSTER_ID
    )
}

fn lb_endpoint(e: &Endpoint) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
            address: Some(socket_address(&e.address, u32::from(e.port))),
            ..Default::default()
        })),
        health_status: if e.healthy {
            HealthStatus::Healthy as i32
        } else {
            HealthStatus::Unhealthy as i32
        },
        metadata: Some(metadata(
            "istio",
            vec![("workload", string_value(&workload_metadata(e)))],
        )),
        load_balancing_weight: Some(u32v(e.weight.max(1))),
    }
}

/// The load assignment of one EDS cluster.
pub fn load_assignment(push: &PushContext, plan: &ClusterPlan<'_>) -> ClusterLoadAssignment {
    let mut by_locality: BTreeMap<&Locality, Vec<&Endpoint>> = BTreeMap::new();
    for e in push
        .registry()
        .endpoints(&plan.service.hostname, plan.port.port)
    {
        if labels_subset(&plan.subset_labels, &e.labels) {
            by_locality.entry(&e.locality).or_default().push(e);
        }
    }
    ClusterLoadAssignment {
        cluster_name: plan.name.clone(),
        endpoints: by_locality
            .into_iter()
            .map(|(loc, eps)| LocalityLbEndpoints {
                locality: Some(EnvoyLocality {
                    region: loc.region.clone(),
                    zone: loc.zone.clone(),
                    sub_zone: loc.subzone.clone(),
                }),
                load_balancing_weight: Some(u32v(
                    eps.iter().map(|e| e.weight.max(1)).sum::<u32>().max(1),
                )),
                lb_endpoints: eps.into_iter().map(lb_endpoint).collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Load assignments for every EDS cluster the proxy receives, sorted by cluster name.
pub fn generate(push: &PushContext, proxy: &Proxy) -> Vec<ClusterLoadAssignment> {
    let scope = push.scope(proxy);
    let grpc = proxy.is_proxyless_grpc();
    let mut out: Vec<ClusterLoadAssignment> = outbound_plans(push, proxy, &scope)
        .iter()
        .filter(|p| p.is_eds(grpc))
        .map(|p| load_assignment(push, p))
        .collect();
    out.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
    out
}
