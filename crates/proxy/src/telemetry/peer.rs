//! Workload metadata: this proxy's own (node metadata / pilot-agent environment), the
//! peer's via Istio's HTTP metadata exchange (`x-envoy-peer-metadata[-id]`), and the
//! destination's from EDS endpoint metadata (`istio.workload`).

use std::collections::BTreeMap;

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use prost::Message;
use prost_types::value::Kind;
use prost_types::{Struct, Value};

use super::PeerMetadata;

/// Base64 of the serialized `google.protobuf.Struct` of the sender's node metadata.
pub const PEER_METADATA_HEADER: &str = "x-envoy-peer-metadata";
/// The sender's node id (`sidecar~IP~pod.ns~ns.svc.cluster.local`).
pub const PEER_METADATA_ID_HEADER: &str = "x-envoy-peer-metadata-id";

/// Label keys Istio reads canonical names from, most specific first.
const CANONICAL_NAME_LABELS: &[&str] = &[
    "service.istio.io/canonical-name",
    "app.kubernetes.io/name",
    "app",
];
const CANONICAL_REVISION_LABELS: &[&str] = &[
    "service.istio.io/canonical-revision",
    "app.kubernetes.io/version",
    "version",
];

fn sv(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_string())),
    }
}

fn get_str<'a>(s: &'a Struct, key: &str) -> Option<&'a str> {
    match s.fields.get(key).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(v)) if !v.is_empty() => Some(v),
        _ => None,
    }
}

/// The pod name inside a node id `type~ip~pod.namespace~domain`.
pub fn pod_name_from_node_id(id: &str) -> Option<&str> {
    let pod_ns = id.split('~').nth(2)?;
    pod_ns.split('.').next().filter(|p| !p.is_empty())
}

impl PeerMetadata {
    /// Fills the canonical service/revision, app and version from the labels the way
    /// Istio does, leaving fields already set alone.
    pub fn with_derived_labels(mut self) -> Self {
        let pick = |keys: &[&str]| keys.iter().find_map(|k| self.labels.get(*k).cloned());
        if self.canonical_service.is_empty() {
            self.canonical_service =
                pick(CANONICAL_NAME_LABELS).unwrap_or_else(|| self.workload.clone());
        }
        if self.canonical_revision.is_empty() {
            self.canonical_revision =
                pick(CANONICAL_REVISION_LABELS).unwrap_or_else(|| "latest".to_string());
        }
        if self.app.is_empty() {
            self.app = pick(&["app", "app.kubernetes.io/name"]).unwrap_or_default();
        }
        if self.version.is_empty() {
            self.version = pick(&["version", "app.kubernetes.io/version"]).unwrap_or_default();
        }
        self
    }

    /// From Envoy node metadata as pilot-agent builds it (`NAME`, `NAMESPACE`,
    /// `LABELS`, `WORKLOAD_NAME`, `CLUSTER_ID`, `SERVICE_ACCOUNT`).
    pub fn from_node_metadata(meta: &Struct) -> PeerMetadata {
        let labels: BTreeMap<String, String> =
            match meta.fields.get("LABELS").and_then(|v| v.kind.as_ref()) {
                Some(Kind::StructValue(l)) => l
                    .fields
                    .iter()
                    .filter_map(|(k, v)| match &v.kind {
                        Some(Kind::StringValue(s)) => Some((k.clone(), s.clone())),
                        _ => None,
                    })
                    .collect(),
                _ => BTreeMap::new(),
            };
        let workload = get_str(meta, "WORKLOAD_NAME")
            .or_else(|| get_str(meta, "NAME"))
            .unwrap_or_default()
            .to_string();
        PeerMetadata {
            workload,
            namespace: get_str(meta, "NAMESPACE").unwrap_or_default().to_string(),
            cluster: get_str(meta, "CLUSTER_ID").unwrap_or_default().to_string(),
            service_account: get_str(meta, "SERVICE_ACCOUNT")
                .unwrap_or_default()
                .to_string(),
            labels,
            ..Default::default()
        }
        .with_derived_labels()
    }

    /// From the envoy-types `Struct` (same wire format as `prost_types::Struct`).
    pub fn from_pb_node_metadata(
        meta: &ironmesh_xds::pb::google::protobuf::Struct,
    ) -> PeerMetadata {
        let s = Struct::decode(meta.encode_to_vec().as_slice()).unwrap_or_default();
        Self::from_node_metadata(&s)
    }

    /// From pilot-agent's environment (`POD_NAME`, `POD_NAMESPACE`, `SERVICE_ACCOUNT`,
    /// `ISTIO_META_WORKLOAD_NAME`, `ISTIO_META_CLUSTER_ID`, `ISTIO_METAJSON_LABELS`);
    /// `labels` overrides the JSON labels when given (the downward-API file).
    pub fn from_env(
        env: &BTreeMap<String, String>,
        labels: Option<BTreeMap<String, String>>,
    ) -> PeerMetadata {
        let get = |k: &str| env.get(k).cloned().unwrap_or_default();
        let labels = labels.unwrap_or_else(|| {
            env.get("ISTIO_METAJSON_LABELS")
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default()
        });
        let workload = env
            .get("ISTIO_META_WORKLOAD_NAME")
            .filter(|w| !w.is_empty())
            .cloned()
            .unwrap_or_else(|| get("POD_NAME"));
        PeerMetadata {
            workload,
            namespace: get("POD_NAMESPACE"),
            cluster: env
                .get("ISTIO_META_CLUSTER_ID")
                .filter(|c| !c.is_empty())
                .cloned()
                .unwrap_or_else(|| "Kubernetes".to_string()),
            service_account: get("SERVICE_ACCOUNT"),
            labels,
            ..Default::default()
        }
        .with_derived_labels()
    }

    /// The node-metadata `Struct` Istio exchanges: `NAME`, `NAMESPACE`, `LABELS`,
    /// `WORKLOAD_NAME`, `CLUSTER_ID`, `SERVICE_ACCOUNT`, plus the canonical labels
    /// inside `LABELS` so a peer without them still gets them.
    pub fn to_struct(&self, pod_name: &str) -> Struct {
        let mut labels: BTreeMap<String, Value> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), sv(v)))
            .collect();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                labels.entry(k.to_string()).or_insert_with(|| sv(v));
            }
        };
        put("service.istio.io/canonical-name", &self.canonical_service);
        put(
            "service.istio.io/canonical-revision",
            &self.canonical_revision,
        );
        put("app", &self.app);
        put("version", &self.version);
        let mut fields = BTreeMap::new();
        for (k, v) in [
            ("NAME", pod_name),
            ("NAMESPACE", &self.namespace),
            ("WORKLOAD_NAME", &self.workload),
            ("CLUSTER_ID", &self.cluster),
            ("SERVICE_ACCOUNT", &self.service_account),
        ] {
            if !v.is_empty() {
                fields.insert(k.to_string(), sv(v));
            }
        }
        fields.insert(
            "LABELS".to_string(),
            Value {
                kind: Some(Kind::StructValue(Struct { fields: labels })),
            },
        );
        Struct { fields }
    }

    /// Istio's HTTP metadata-exchange headers for this workload: the node id and
    /// base64 of the serialized metadata `Struct`.
    pub fn to_headers(&self, node_id: &str) -> [(HeaderName, HeaderValue); 2] {
        let pod = pod_name_from_node_id(node_id).unwrap_or(&self.workload);
        let bytes = self.to_struct(pod).encode_to_vec();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let id =
            HeaderValue::from_str(node_id).unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        [
            (HeaderName::from_static(PEER_METADATA_ID_HEADER), id),
            (
                HeaderName::from_static(PEER_METADATA_HEADER),
                HeaderValue::from_str(&b64).unwrap_or_else(|_| HeaderValue::from_static("")),
            ),
        ]
    }

    /// Removes the exchange headers (Istio strips them before the app sees the request
    /// or response).
    pub fn strip_headers(headers: &mut HeaderMap) {
        headers.remove(PEER_METADATA_HEADER);
        headers.remove(PEER_METADATA_ID_HEADER);
    }

    /// Reads a peer's `x-envoy-peer-metadata`; `None` when absent or malformed.
    pub fn from_headers(headers: &HeaderMap) -> Option<PeerMetadata> {
        Self::from_raw(
            headers.get(PEER_METADATA_HEADER)?.as_bytes(),
            headers.get(PEER_METADATA_ID_HEADER).map(|v| v.as_bytes()),
        )
    }

    /// Like [`PeerMetadata::from_headers`], from the two fields' values.
    pub fn from_raw(metadata: &[u8], id: Option<&[u8]>) -> Option<PeerMetadata> {
        let raw = std::str::from_utf8(metadata).ok()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .ok()?;
        let s = Struct::decode(bytes.as_slice()).ok()?;
        let mut m = Self::from_node_metadata(&s);
        if m.workload.is_empty() {
            if let Some(pod) = id
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(pod_name_from_node_id)
            {
                m.workload = pod.to_string();
                m.canonical_service.clear();
                m = m.with_derived_labels();
            }
        }
        Some(m)
    }

    /// Parses discovery's EDS `istio.workload` string
    /// `name;namespace;canonical-service;canonical-revision;cluster`.
    pub fn from_workload_string(s: &str) -> Option<PeerMetadata> {
        let parts: Vec<&str> = s.split(';').collect();
        if parts.len() < 2 || parts[0].is_empty() {
            return None;
        }
        let at = |i: usize| parts.get(i).copied().unwrap_or_default().to_string();
        let canonical_service = at(2);
        let canonical_revision = at(3);
        Some(
            PeerMetadata {
                workload: at(0),
                namespace: at(1),
                // Istio reports app/version from the canonical labels for endpoint-derived
                // peers: the pod labels themselves are not in EDS.
                app: canonical_service.clone(),
                version: canonical_revision.clone(),
                canonical_service,
                canonical_revision,
                cluster: at(4),
                ..Default::default()
            }
            .with_derived_labels(),
        )
    }

    /// The destination workload from an EDS endpoint's `filter_metadata["istio"]["workload"]`.
    pub fn from_endpoint_metadata(
        meta: &ironmesh_xds::pb::envoy::config::core::v3::Metadata,
    ) -> Option<PeerMetadata> {
        use ironmesh_xds::pb::google::protobuf::value::Kind as PbKind;
        let istio = meta.filter_metadata.get("istio")?;
        match istio.fields.get("workload")?.kind.as_ref()? {
            PbKind::StringValue(s) => Self::from_workload_string(s),
            _ => None,
        }
    }
}

/// Decoded `x-envoy-peer-metadata` values, so a stream of requests from the same peer
/// decodes base64 + protobuf once. Bounded: cleared when full (peers are few; a client
/// sending random values cannot grow it).
#[derive(Debug, Default)]
pub struct PeerCache {
    map: std::sync::RwLock<std::collections::HashMap<Vec<u8>, std::sync::Arc<PeerMetadata>>>,
}

/// Distinct peer headers remembered before the cache starts over.
const PEER_CACHE_MAX: usize = 1024;

impl PeerCache {
    /// The peer described by the request's (or response's) exchange headers.
    pub fn from_headers(&self, headers: &HeaderMap) -> Option<std::sync::Arc<PeerMetadata>> {
        self.from_raw(
            headers.get(PEER_METADATA_HEADER)?.as_bytes(),
            headers.get(PEER_METADATA_ID_HEADER).map(|v| v.as_bytes()),
        )
    }

    /// Like [`PeerCache::from_headers`], from the two fields' values.
    pub fn from_raw(
        &self,
        metadata: &[u8],
        id: Option<&[u8]>,
    ) -> Option<std::sync::Arc<PeerMetadata>> {
        // A connection's requests or answers come from one peer, so each thread first
        // compares with the last two values it looked up (a sidecar's worker alternates
        // between its inbound callers' and its outbound answers' peers): a memcmp or two,
        // instead of hashing a value of several hundred bytes and reading a lock every
        // worker writes.
        if let Some(p) = LAST_PEERS.with_borrow_mut(|last| {
            let hit = last
                .iter()
                .position(|l| l.as_ref().is_some_and(|(raw, _)| **raw == *metadata))?;
            // The most recent first.
            last.swap(0, hit);
            last[0].as_ref().map(|(_, p)| p.clone())
        }) {
            return Some(p);
        }
        #[cfg(test)]
        MAP_LOOKUPS.with(|n| n.set(n.get() + 1));
        let cached = self.map.read().ok()?.get(metadata).cloned();
        let peer = match cached {
            Some(p) => p,
            None => {
                let peer = std::sync::Arc::new(PeerMetadata::from_raw(metadata, id)?);
                let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
                if map.len() >= PEER_CACHE_MAX {
                    map.clear();
                }
                map.insert(metadata.to_vec(), peer.clone());
                peer
            }
        };
        LAST_PEERS.with_borrow_mut(|last| {
            last.swap(0, 1);
            last[0] = Some((metadata.into(), peer.clone()));
        });
        Some(peer)
    }
}

/// An `x-envoy-peer-metadata` value and the peer it names.
type Looked = (Box<[u8]>, std::sync::Arc<PeerMetadata>);

thread_local! {
    /// The two values this thread last looked up in a [`PeerCache`], the most recent
    /// first, and their peers. (Shared by every cache on the thread: like their maps,
    /// they are keyed by the value alone.)
    static LAST_PEERS: std::cell::RefCell<[Option<Looked>; 2]> =
        const { std::cell::RefCell::new([None, None]) };
}

#[cfg(test)]
thread_local! {
    /// Lookups that missed the per-thread memo (tests only).
    static MAP_LOOKUPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PeerMetadata {
        PeerMetadata {
            workload: "productpage-v1".into(),
            namespace: "default".into(),
            cluster: "Kubernetes".into(),
            service_account: "bookinfo-productpage".into(),
            labels: [
                ("app", "productpage"),
                ("version", "v1"),
                ("pod-template-hash", "abc"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        }
        .with_derived_labels()
    }

    #[test]
    fn derived_labels_follow_istio_precedence() {
        let m = sample();
        assert_eq!(m.canonical_service, "productpage");
        assert_eq!(m.canonical_revision, "v1");
        assert_eq!((m.app.as_str(), m.version.as_str()), ("productpage", "v1"));
        let bare = PeerMetadata {
            workload: "w".into(),
            ..Default::default()
        }
        .with_derived_labels();
        assert_eq!(bare.canonical_service, "w");
        assert_eq!(bare.canonical_revision, "latest");
        assert_eq!(bare.app, "");
    }

    #[test]
    fn headers_round_trip() {
        let m = sample();
        let id =
            "sidecar~10.213.0.5~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local";
        let hs = m.to_headers(id);
        assert_eq!(hs[0].0.as_str(), "x-envoy-peer-metadata-id");
        assert_eq!(hs[0].1.to_str().unwrap(), id);
        let mut map = HeaderMap::new();
        for (k, v) in hs {
            map.insert(k, v);
        }
        let back = PeerMetadata::from_headers(&map).expect("decodes");
        let mut stripped = map.clone();
        stripped.insert("x-other", HeaderValue::from_static("kept"));
        PeerMetadata::strip_headers(&mut stripped);
        assert_eq!(stripped.len(), 1);
        assert_eq!(back.workload, m.workload);
        assert_eq!(back.namespace, m.namespace);
        assert_eq!(back.canonical_service, "productpage");
        assert_eq!(back.service_account, "bookinfo-productpage");
        assert_eq!(
            back.labels.get("pod-template-hash").map(String::as_str),
            Some("abc")
        );
        // The Struct carries Istio's key names, with NAME from the node id.
        let raw = base64::engine::general_purpose::STANDARD
            .decode(map.get(PEER_METADATA_HEADER).unwrap().as_bytes())
            .unwrap();
        let s = Struct::decode(raw.as_slice()).unwrap();
        assert_eq!(get_str(&s, "NAME"), Some("productpage-v1-6b746f74dc-9stvs"));
        assert_eq!(get_str(&s, "WORKLOAD_NAME"), Some("productpage-v1"));
        assert_eq!(get_str(&s, "CLUSTER_ID"), Some("Kubernetes"));
    }

    #[test]
    fn cache_returns_the_same_peer() {
        let cache = PeerCache::default();
        let mut map = HeaderMap::new();
        for (k, v) in sample().to_headers("sidecar~10.213.0.5~p.default~default.svc.cluster.local")
        {
            map.insert(k, v);
        }
        let a = cache.from_headers(&map).unwrap();
        let b = cache.from_headers(&map).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b));
        assert_eq!(a.workload, "productpage-v1");
        assert!(cache.from_headers(&HeaderMap::new()).is_none());
    }

    #[test]
    fn alternating_peers_are_told_apart() {
        // The per-thread memo of the last lookup must not answer for another value.
        let cache = PeerCache::default();
        let id = "sidecar~10.213.0.5~p.default~default.svc.cluster.local";
        let value = |m: PeerMetadata| {
            m.to_headers(id)
                .into_iter()
                .find(|(k, _)| k == PEER_METADATA_HEADER)
                .map(|(_, v)| v.as_bytes().to_vec())
                .unwrap()
        };
        let a = value(sample());
        let b = value(
            PeerMetadata {
                workload: "reviews-v2".into(),
                ..sample()
            }
            .with_derived_labels(),
        );
        let misses = || MAP_LOOKUPS.with(std::cell::Cell::get);
        let before = misses();
        for _ in 0..3 {
            let pa = cache.from_raw(&a, None).unwrap();
            let pb = cache.from_raw(&b, None).unwrap();
            assert_eq!(
                (pa.workload.as_str(), pb.workload.as_str()),
                ("productpage-v1", "reviews-v2")
            );
        }
        // Two peers in turn are both remembered: only their first lookups miss.
        assert_eq!(misses() - before, 2);
        let mut broken = a.clone();
        broken[3] = b'!';
        assert!(cache.from_raw(&broken, None).is_none(), "not base64");
        assert_eq!(cache.from_raw(&a, None).unwrap().workload, "productpage-v1");
    }

    #[test]
    fn malformed_headers_are_ignored() {
        let mut map = HeaderMap::new();
        assert!(PeerMetadata::from_headers(&map).is_none());
        map.insert(
            PEER_METADATA_HEADER,
            HeaderValue::from_static("!!not base64!!"),
        );
        assert!(PeerMetadata::from_headers(&map).is_none());
    }

    #[test]
    fn workload_string_and_endpoint_metadata() {
        use ironmesh_xds::pb::envoy::config::core::v3::Metadata;
        use ironmesh_xds::pb::google::protobuf::{value, Struct as PbStruct, Value as PbValue};
        let s = PbStruct {
            fields: [(
                "workload".to_string(),
                PbValue {
                    kind: Some(value::Kind::StringValue(
                        "ratings-v1;default;ratings;v1;Kubernetes".into(),
                    )),
                },
            )]
            .into_iter()
            .collect(),
        };
        let meta = Metadata {
            filter_metadata: [("istio".to_string(), s)].into_iter().collect(),
            ..Default::default()
        };
        let p = PeerMetadata::from_endpoint_metadata(&meta).expect("parsed");
        assert_eq!(p.workload, "ratings-v1");
        assert_eq!(p.namespace, "default");
        assert_eq!(p.canonical_service, "ratings");
        assert_eq!(p.canonical_revision, "v1");
        assert_eq!(p.cluster, "Kubernetes");
        assert!(PeerMetadata::from_endpoint_metadata(&Metadata::default()).is_none());
        assert!(PeerMetadata::from_workload_string("").is_none());
    }

    #[test]
    fn env_and_node_metadata_agree() {
        let env: BTreeMap<String, String> = [
            ("POD_NAME", "reviews-v2-abc"),
            ("POD_NAMESPACE", "bookinfo"),
            ("SERVICE_ACCOUNT", "reviews"),
            ("ISTIO_META_WORKLOAD_NAME", "reviews-v2"),
            (
                "ISTIO_METAJSON_LABELS",
                r#"{"app":"reviews","version":"v2"}"#,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let e = PeerMetadata::from_env(&env, None);
        assert_eq!(e.workload, "reviews-v2");
        assert_eq!(e.cluster, "Kubernetes");
        assert_eq!(e.canonical_revision, "v2");
        let mut n = PeerMetadata::from_node_metadata(&e.to_struct("reviews-v2-abc"));
        // to_struct adds the canonical labels so peers need not derive them.
        assert_eq!(
            n.labels
                .remove("service.istio.io/canonical-name")
                .as_deref(),
            Some("reviews")
        );
        assert_eq!(
            n.labels
                .remove("service.istio.io/canonical-revision")
                .as_deref(),
            Some("v2")
        );
        assert_eq!(n, e);
    }
}
