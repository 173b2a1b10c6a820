//! The entry point the ADS server calls: every resource of one type for one proxy.

use prost::{Message, Name};

use crate::gen::{cds, eds, gateway, grpc, lds, nds, rds, sds};
use crate::proxy::Proxy;
use crate::push_context::PushContext;

pub const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT_TYPE: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
/// Istio's DNS name table (NDS), for agents that proxy DNS.
pub const NAME_TABLE_TYPE: &str = ironmesh_xds::nds::TYPE_URL;
/// Gateway certificates from Kubernetes Secrets (SDS).
pub const SECRET_TYPE: &str = ironmesh_xds::type_url::SECRET;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenError {
    #[error("no generator for resource type {0:?}: discovery serves Listener, RouteConfiguration, Cluster and ClusterLoadAssignment (v3) Istio's NameTable (NDS) and, to gateways, Secret (SDS)")]
    UnsupportedType(String),
}

fn pack<M: Message + Name>(name: String, m: &M) -> (String, prost_types::Any) {
    (
        name,
        prost_types::Any {
            type_url: M::type_url(),
            value: m.encode_to_vec(),
        },
    )
}

/// All resources of `type_url` for `proxy`, as `(name, Any)`, sorted by name. The ADS
/// server filters them by the proxy's subscription.
pub fn generate(
    push: &PushContext,
    proxy: &Proxy,
    type_url: &str,
) -> Result<Vec<(String, prost_types::Any)>, GenError> {
    let grpc = proxy.is_proxyless_grpc();
    let out = match type_url {
        LISTENER_TYPE => {
            let ls = if grpc {
                grpc::listeners(push, proxy)
            } else if proxy.is_router() {
                gateway::listeners(push, proxy)
            } else {
                lds::generate(push, proxy)
            };
            ls.iter().map(|l| pack(l.name.clone(), l)).collect()
        }
        ROUTE_TYPE => {
            let rs = if grpc {
                grpc::route_configs(push, proxy)
            } else if proxy.is_router() {
                gateway::route_configs(push, proxy)
            } else {
                rds::generate(push, proxy)
            };
            rs.iter().map(|r| pack(r.name.clone(), r)).collect()
        }
        CLUSTER_TYPE => cds::generate(push, proxy)
            .iter()
            .map(|c| pack(c.name.clone(), c))
            .collect(),
        ENDPOINT_TYPE => eds::generate(push, proxy)
            .iter()
            .map(|c| pack(c.cluster_name.clone(), c))
            .collect(),
        // One table, named "" as Istio names it.
        NAME_TABLE_TYPE => vec![pack(String::new(), &nds::generate(push, proxy))],
        SECRET_TYPE => sds::generate(push, proxy)
            .iter()
            .map(|s| pack(s.name.clone(), s))
            .collect(),
        other => return Err(GenError::UnsupportedType(other.to_string())),
    };
    Ok(out)
}
