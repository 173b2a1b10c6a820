//! Fuzzes the proxy's xDS compile step: any bytes, decoded as a Listener,
//! RouteConfiguration, Cluster or ClusterLoadAssignment, must compile to the runtime
//! model or to a `CompileError` (a NACK), never panic. Discovery is not the only
//! possible control plane, so nothing it does not emit may crash the proxy.

#![no_main]

use ironmesh_proxy::model::{Cluster, Endpoints, Listener, RouteConfig};
use ironmesh_xds::pb::envoy::config::{
    cluster::v3 as cpb, endpoint::v3 as epb, listener::v3 as lpb, route::v3 as rpb,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 4 {
        0 => {
            if let Ok(l) = lpb::Listener::decode(bytes) {
                let _ = Listener::compile(&l).map_err(|e| e.to_string());
            }
        }
        1 => {
            if let Ok(r) = rpb::RouteConfiguration::decode(bytes) {
                let _ = RouteConfig::compile(&r).map_err(|e| e.to_string());
            }
        }
        2 => {
            if let Ok(c) = cpb::Cluster::decode(bytes) {
                let _ = Cluster::compile(&c).map_err(|e| e.to_string());
            }
        }
        _ => {
            if let Ok(cla) = epb::ClusterLoadAssignment::decode(bytes) {
                let _ = Endpoints::compile(&cla).map_err(|e| e.to_string());
            }
        }
    }
});
