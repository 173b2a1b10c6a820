//! The objects the mesh reads: every Istio kind in every served version and the
//! Kubernetes kinds, decoded strictly from JSON values.

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Namespace, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::path::FieldPath;
use crate::validation::{Context, Problems, Validate};
use crate::yaml::LineIndex;
use crate::{extensions, networking, security, telemetry};

/// Where an object came from: file (or `-` for stdin), document index, line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    pub file: Arc<str>,
    /// Zero-based index of the document in its file.
    pub document: usize,
    /// One-based line where the object starts.
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// How an object is named in messages: `VirtualService istio-demo/canary`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// The namespace a manifest without `metadata.namespace` lands in, as with kubectl's
/// default context.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A decoded object, with where it came from.
#[derive(Debug, Clone)]
pub struct Object {
    pub source: Source,
    pub api_version: String,
    pub metadata: ObjectMeta,
    pub resource: Resource,
    /// Lines of the object's fields, for later messages (analysis, registry errors).
    pub lines: Arc<LineIndex>,
}

impl Object {
    pub fn kind(&self) -> &'static str {
        self.resource.kind()
    }

    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }

    /// The object's namespace; `default` when unset. Cluster-scoped kinds have none.
    pub fn namespace(&self) -> &str {
        if !self.resource.is_namespaced() {
            return "";
        }
        self.metadata
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(DEFAULT_NAMESPACE)
    }

    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: self.kind().to_string(),
            namespace: self.namespace().to_string(),
            name: self.name().to_string(),
        }
    }

    /// The line of a field of this object (or of its nearest spelled-out ancestor).
    pub fn line_of(&self, path: &FieldPath) -> usize {
        self.lines.line_of(path).unwrap_or(self.source.line)
    }
}

/// Every kind the mesh understands.
#[derive(Debug, Clone)]
pub enum Resource {
    VirtualService(Box<networking::VirtualService>),
    DestinationRule(Box<networking::DestinationRule>),
    Gateway(Box<networking::Gateway>),
    ServiceEntry(Box<networking::ServiceEntry>),
    Sidecar(Box<networking::Sidecar>),
    WorkloadEntry(Box<networking::WorkloadEntry>),
    WorkloadGroup(Box<networking::WorkloadGroup>),
    EnvoyFilter(Box<networking::EnvoyFilter>),
    ProxyConfig(Box<networking::ProxyConfig>),
    PeerAuthentication(Box<security::PeerAuthentication>),
    AuthorizationPolicy(Box<security::AuthorizationPolicy>),
    RequestAuthentication(Box<security::RequestAuthentication>),
    Telemetry(Box<telemetry::Telemetry>),
    WasmPlugin(Box<extensions::WasmPlugin>),
    Namespace(Box<Namespace>),
    Service(Box<Service>),
    Endpoints(Box<Endpoints>),
    EndpointSlice(Box<EndpointSlice>),
    Pod(Box<Pod>),
    Deployment(Box<Deployment>),
    ReplicaSet(Box<ReplicaSet>),
    StatefulSet(Box<StatefulSet>),
    DaemonSet(Box<DaemonSet>),
    ServiceAccount(Box<ServiceAccount>),
    Secret(Box<Secret>),
    ConfigMap(Box<ConfigMap>),
}

/// A kind's API group, served versions and whether `spec` is required.
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    pub kind: &'static str,
    /// Empty for the Kubernetes core group.
    pub group: &'static str,
    pub versions: &'static [&'static str],
    pub istio: bool,
    pub namespaced: bool,
    pub spec_required: bool,
}

const NET: &[&str] = &["v1", "v1beta1", "v1alpha3"];
const SEC: &[&str] = &["v1", "v1beta1"];

macro_rules! kinds {
    ($($kind:literal, $group:literal, $versions:expr, $istio:literal, $ns:literal, $req:literal;)+) => {
        /// The served kinds, in the order `ironmesh validate` documents them.
        pub const KINDS: &[KindInfo] = &[
            $(KindInfo { kind: $kind, group: $group, versions: $versions, istio: $istio, namespaced: $ns, spec_required: $req },)+
        ];
    };
}

kinds! {
    "VirtualService", "networking.istio.io", NET, true, true, false;
    "DestinationRule", "networking.istio.io", NET, true, true, false;
    "Gateway", "networking.istio.io", NET, true, true, false;
    "ServiceEntry", "networking.istio.io", NET, true, true, true;
    "Sidecar", "networking.istio.io", NET, true, true, false;
    "WorkloadEntry", "networking.istio.io", NET, true, true, true;
    "WorkloadGroup", "networking.istio.io", NET, true, true, true;
    "EnvoyFilter", "networking.istio.io", &["v1alpha3"], true, true, false;
    "ProxyConfig", "networking.istio.io", &["v1beta1"], true, true, false;
    "PeerAuthentication", "security.istio.io", SEC, true, true, false;
    "AuthorizationPolicy", "security.istio.io", SEC, true, true, false;
    "RequestAuthentication", "security.istio.io", SEC, true, true, false;
    "Telemetry", "telemetry.istio.io", &["v1", "v1alpha1"], true, true, false;
    "WasmPlugin", "extensions.istio.io", &["v1alpha1"], true, true, false;
    "Namespace", "", &["v1"], false, false, false;
    "Service", "", &["v1"], false, true, false;
    "Endpoints", "", &["v1"], false, true, false;
    "EndpointSlice", "discovery.k8s.io", &["v1"], false, true, false;
    "Pod", "", &["v1"], false, true, false;
    "Deployment", "apps", &["v1"], false, true, false;
    "ReplicaSet", "apps", &["v1"], false, true, false;
    "StatefulSet", "apps", &["v1"], false, true, false;
    "DaemonSet", "apps", &["v1"], false, true, false;
    "ServiceAccount", "", &["v1"], false, true, false;
    "Secret", "", &["v1"], false, true, false;
    "ConfigMap", "", &["v1"], false, true, false;
}

/// Looks a kind up by name.
pub fn kind_info(kind: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.kind == kind)
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::VirtualService(_) => "VirtualService",
            Resource::DestinationRule(_) => "DestinationRule",
            Resource::Gateway(_) => "Gateway",
            Resource::ServiceEntry(_) => "ServiceEntry",
            Resource::Sidecar(_) => "Sidecar",
            Resource::WorkloadEntry(_) => "WorkloadEntry",
            Resource::WorkloadGroup(_) => "WorkloadGroup",
            Resource::EnvoyFilter(_) => "EnvoyFilter",
            Resource::ProxyConfig(_) => "ProxyConfig",
            Resource::PeerAuthentication(_) => "PeerAuthentication",
            Resource::AuthorizationPolicy(_) => "AuthorizationPolicy",
            Resource::RequestAuthentication(_) => "RequestAuthentication",
            Resource::Telemetry(_) => "Telemetry",
            Resource::WasmPlugin(_) => "WasmPlugin",
            Resource::Namespace(_) => "Namespace",
            Resource::Service(_) => "Service",
            Resource::Endpoints(_) => "Endpoints",
            Resource::EndpointSlice(_) => "EndpointSlice",
            Resource::Pod(_) => "Pod",
            Resource::Deployment(_) => "Deployment",
            Resource::ReplicaSet(_) => "ReplicaSet",
            Resource::StatefulSet(_) => "StatefulSet",
            Resource::DaemonSet(_) => "DaemonSet",
            Resource::ServiceAccount(_) => "ServiceAccount",
            Resource::Secret(_) => "Secret",
            Resource::ConfigMap(_) => "ConfigMap",
        }
    }

    pub fn is_namespaced(&self) -> bool {
        kind_info(self.kind()).is_some_and(|k| k.namespaced)
    }

    /// Validates an Istio spec (Kubernetes kinds are checked in `validation::kube`).
    pub fn validate_spec(&self, cx: &Context<'_>, problems: &mut Problems) {
        let path = FieldPath::spec();
        match self {
            Resource::VirtualService(s) => s.validate(cx, &path, problems),
            Resource::DestinationRule(s) => s.validate(cx, &path, problems),
            Resource::Gateway(s) => s.validate(cx, &path, problems),
            Resource::ServiceEntry(s) => s.validate(cx, &path, problems),
            Resource::Sidecar(s) => s.validate(cx, &path, problems),
            Resource::WorkloadEntry(s) => s.validate(cx, &path, problems),
            Resource::WorkloadGroup(s) => s.validate(cx, &path, problems),
            Resource::EnvoyFilter(s) => s.validate(cx, &path, problems),
            Resource::ProxyConfig(s) => s.validate(cx, &path, problems),
            Resource::PeerAuthentication(s) => s.validate(cx, &path, problems),
            Resource::AuthorizationPolicy(s) => s.validate(cx, &path, problems),
            Resource::RequestAuthentication(s) => s.validate(cx, &path, problems),
            Resource::Telemetry(s) => s.validate(cx, &path, problems),
            Resource::WasmPlugin(s) => s.validate(cx, &path, problems),
            _ => {}
        }
    }
}

/// A decoding failure at a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub path: FieldPath,
    pub message: String,
}

/// Decodes `value` strictly: unknown fields and wrong types are errors, reported at the
/// field's path under `base`.
pub fn decode_strict<T: DeserializeOwned>(
    value: &Value,
    base: &FieldPath,
) -> Result<T, DecodeError> {
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    match T::deserialize(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = track.path();
            Err(DecodeError {
                path: join_serde_path(base, &path),
                message: humanize_serde(&e.to_string()),
            })
        }
    }
}

/// Decodes a Kubernetes type whose generated deserializer ignores unknown fields, then
/// reports the fields it dropped: any key of the input (with a non-null value) that does
/// not come back when the decoded value is serialized again.
pub fn decode_kube<T: DeserializeOwned + serde::Serialize>(
    value: &Value,
    base: &FieldPath,
) -> Result<T, DecodeError> {
    let decoded: T = decode_strict(value, base)?;
    let back = serde_json::to_value(&decoded).map_err(|e| DecodeError {
        path: base.clone(),
        message: e.to_string(),
    })?;
    if let Some(path) = first_dropped_field(value, &back, base) {
        return Err(DecodeError {
            message: format!(
                "unknown field {:?}: it is not part of this kind's schema (check the spelling and indentation)",
                path.segments().last().cloned().unwrap_or_default()
            ),
            path,
        });
    }
    Ok(decoded)
}

fn first_dropped_field(original: &Value, back: &Value, at: &FieldPath) -> Option<FieldPath> {
    match (original, back) {
        (Value::Object(o), Value::Object(b)) => {
            for (k, v) in o {
                if v.is_null() {
                    continue;
                }
                let here = at.field(k);
                match b.get(k) {
                    None => return Some(here),
                    Some(bv) => {
                        if let Some(p) = first_dropped_field(v, bv, &here) {
                            return Some(p);
                        }
                    }
                }
            }
            None
        }
        (Value::Array(o), Value::Array(b)) => o
            .iter()
            .zip(b.iter())
            .enumerate()
            .find_map(|(i, (ov, bv))| first_dropped_field(ov, bv, &at.index(i))),
        _ => None,
    }
}

fn join_serde_path(base: &FieldPath, path: &serde_path_to_error::Path) -> FieldPath {
    use serde_path_to_error::Segment;
    let mut out = base.clone();
    for seg in path.iter() {
        out = match seg {
            Segment::Seq { index } => out.index(*index),
            Segment::Map { key } => {
                if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !key.is_empty()
                    && !key.starts_with(|c: char| c.is_ascii_digit())
                {
                    out.field(key)
                } else {
                    out.key(key)
                }
            }
            Segment::Enum { variant } => out.field(variant),
            Segment::Unknown => out,
        };
    }
    out
}

/// Rewrites serde's wording into what an operator can act on.
fn humanize_serde(msg: &str) -> String {
    let msg = msg.replace('`', "\"");
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        if let Some((field, allowed)) = rest.split_once(", expected one of ") {
            return format!("unknown field {field}: allowed fields are {allowed}");
        }
        if let Some((field, allowed)) = rest.split_once(", expected ") {
            return format!("unknown field {field}: the only allowed field is {allowed}");
        }
        if let Some((field, _)) = rest.split_once(", there are no fields") {
            return format!("unknown field {field}: this object has no fields");
        }
        return format!("unknown field {rest}");
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return format!("{rest}: Required value");
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        return format!("wrong type: got {rest}");
    }
    if msg.starts_with("Invalid symbol")
        || msg.starts_with("Invalid last symbol")
        || msg.starts_with("Invalid padding")
        || msg.starts_with("Invalid input length")
    {
        return format!(
            "not valid base64 ({msg}): Secret data values are base64; put plain text under stringData instead"
        );
    }
    if let Some(rest) = msg.strip_prefix("invalid value: ") {
        return format!("invalid value: got {rest}");
    }
    msg
}

/// Decodes the document `value` (already known to be a mapping with `apiVersion` and
/// `kind`) into a [`Resource`] and its metadata.
pub(crate) fn decode(
    info: &KindInfo,
    value: &Value,
) -> Result<(ObjectMeta, Resource), DecodeError> {
    if info.istio {
        decode_istio(info, value)
    } else {
        decode_kube_kind(info.kind, value)
    }
}

fn decode_istio(info: &KindInfo, value: &Value) -> Result<(ObjectMeta, Resource), DecodeError> {
    let root = FieldPath::root();
    let obj = value.as_object().expect("caller checked mapping");
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "apiVersion" | "kind" | "metadata" | "spec" | "status"
        ) {
            return Err(DecodeError {
                path: root.field(key),
                message: format!(
                    "unknown field {key:?}: allowed top-level fields are apiVersion, kind, metadata, spec and status"
                ),
            });
        }
    }
    let metadata: ObjectMeta = match obj.get("metadata") {
        Some(m) => decode_kube(m, &root.field("metadata"))?,
        None => ObjectMeta::default(),
    };
    let spec_path = FieldPath::spec();
    let spec = match obj.get("spec") {
        None if info.spec_required => {
            return Err(DecodeError {
                path: spec_path,
                message: "spec: Required value".into(),
            })
        }
        None => Value::Object(Default::default()),
        Some(Value::Object(_)) => obj["spec"].clone(),
        Some(other) => {
            return Err(DecodeError {
                path: spec_path,
                message: format!(
                    "spec in body must be of type object: {:?}",
                    json_type_name(other)
                ),
            })
        }
    };
    let p = &spec_path;
    let resource = match info.kind {
        "VirtualService" => Resource::VirtualService(Box::new(decode_strict(&spec, p)?)),
        "DestinationRule" => Resource::DestinationRule(Box::new(decode_strict(&spec, p)?)),
        "Gateway" => Resource::Gateway(Box::new(decode_strict(&spec, p)?)),
        "ServiceEntry" => Resource::ServiceEntry(Box::new(decode_strict(&spec, p)?)),
        "Sidecar" => Resource::Sidecar(Box::new(decode_strict(&spec, p)?)),
        "WorkloadEntry" => Resource::WorkloadEntry(Box::new(decode_strict(&spec, p)?)),
        "WorkloadGroup" => Resource::WorkloadGroup(Box::new(decode_strict(&spec, p)?)),
        "EnvoyFilter" => Resource::EnvoyFilter(Box::new(decode_strict(&spec, p)?)),
        "ProxyConfig" => Resource::ProxyConfig(Box::new(decode_strict(&spec, p)?)),
        "PeerAuthentication" => Resource::PeerAuthentication(Box::new(decode_strict(&spec, p)?)),
        "AuthorizationPolicy" => Resource::AuthorizationPolicy(Box::new(decode_strict(&spec, p)?)),
        "RequestAuthentication" => {
            Resource::RequestAuthentication(Box::new(decode_strict(&spec, p)?))
        }
        "Telemetry" => Resource::Telemetry(Box::new(decode_strict(&spec, p)?)),
        "WasmPlugin" => Resource::WasmPlugin(Box::new(decode_strict(&spec, p)?)),
        other => unreachable!("kind table lists {other} as an Istio kind without a decoder"),
    };
    Ok((metadata, resource))
}

fn decode_kube_kind(kind: &str, value: &Value) -> Result<(ObjectMeta, Resource), DecodeError> {
    let r = FieldPath::root();
    macro_rules! k {
        ($t:ty, $variant:ident) => {{
            let v: $t = decode_kube(value, &r)?;
            (v.metadata.clone(), Resource::$variant(Box::new(v)))
        }};
    }
    Ok(match kind {
        "Namespace" => k!(Namespace, Namespace),
        "Service" => k!(Service, Service),
        "Endpoints" => k!(Endpoints, Endpoints),
        "EndpointSlice" => k!(EndpointSlice, EndpointSlice),
        "Pod" => k!(Pod, Pod),
        "Deployment" => k!(Deployment, Deployment),
        "ReplicaSet" => k!(ReplicaSet, ReplicaSet),
        "StatefulSet" => k!(StatefulSet, StatefulSet),
        "DaemonSet" => k!(DaemonSet, DaemonSet),
        "ServiceAccount" => k!(ServiceAccount, ServiceAccount),
        "Secret" => k!(Secret, Secret),
        "ConfigMap" => k!(ConfigMap, ConfigMap),
        other => unreachable!("kind table lists {other} as a Kubernetes kind without a decoder"),
    })
}

pub(crate) fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
