//! The proxy's own runtime model: immutable types compiled from Envoy's xDS protos.
//!
//! Every xDS resource goes through a `TryFrom`-style compile step here before the data
//! path sees it. A resource that needs something the data path does not honour fails to
//! compile with a [`CompileError`] naming the resource and the field, and the update is
//! NACKed with that text (docs/xds-support.md lists what is honoured).

pub mod cluster;
pub mod listener;
pub mod route;
pub mod snapshot;
pub mod tls;

pub use cluster::{Cluster, ClusterKind, Endpoints, Host, LbPolicy, UpstreamProtocol};
pub use listener::{ChainMatch, FilterChain, HttpManager, Listener, NetworkFilter, TcpProxy};
pub use route::{Action, ClusterSpec, RouteConfig, VirtualHost};
pub use snapshot::Snapshot;

use std::time::Duration;

use ironmesh_xds::pb::google::protobuf::Duration as PbDuration;
use ironmesh_xds::Any;

/// Why a resource was rejected (the NACK's `error_detail`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {name:?}: {message}")]
pub struct CompileError {
    /// `Listener`, `RouteConfiguration`, `Cluster`, `ClusterLoadAssignment`.
    pub kind: &'static str,
    pub name: String,
    pub message: String,
}

impl CompileError {
    pub fn new(kind: &'static str, name: &str, message: impl Into<String>) -> Self {
        CompileError {
            kind,
            name: name.to_string(),
            message: message.into(),
        }
    }
}

/// Converts a protobuf duration; negative values clamp to zero.
pub(crate) fn duration(d: &Option<PbDuration>) -> Option<Duration> {
    d.as_ref().map(|d| {
        if d.seconds < 0 || d.nanos < 0 {
            Duration::ZERO
        } else {
            Duration::new(d.seconds as u64, d.nanos as u32)
        }
    })
}

/// Decodes an `Any` that must hold `M`.
pub(crate) fn decode<M: prost::Message + prost::Name + Default>(any: &Any) -> Result<M, String> {
    let want = M::type_url();
    if any.type_url != want {
        return Err(format!("expected {want}, got {}", any.type_url));
    }
    M::decode(any.value.as_slice()).map_err(|e| format!("cannot decode {want}: {e}"))
}

/// The name an `Any` carries in its type URL, for messages.
pub(crate) fn type_name(any: &Any) -> &str {
    any.type_url.rsplit('/').next().unwrap_or(&any.type_url)
}
