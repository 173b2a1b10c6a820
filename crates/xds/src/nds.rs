//! Istio's name table (NDS): the DNS answers discovery pushes to agents that proxy DNS.
//!
//! Wire-compatible with Istio's `istio.networking.nds.v1.NameTable`
//! (`pkg/dns/proto/nds.proto`), so an Istio agent and ironmesh agree on the bytes. The
//! messages are written by hand because `envoy-types` does not ship Istio's protos.

use std::collections::BTreeMap;

/// `type.googleapis.com/istio.networking.nds.v1.NameTable`.
pub const TYPE_URL: &str = crate::type_url::NAME_TABLE;

/// Host name → what it resolves to.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NameTable {
    /// Keyed by fully qualified host name (`reviews.default.svc.cluster.local`, or a
    /// ServiceEntry host).
    #[prost(btree_map = "string, message", tag = "1")]
    pub table: BTreeMap<String, NameInfo>,
    /// Istio's per-resource form (one host per resource); ironmesh sends one table and
    /// leaves this empty, but decodes it so nothing is lost.
    #[prost(message, optional, tag = "2")]
    pub name_info: Option<NameInfo>,
}

/// One host's addresses and, for Kubernetes services, the parts the search-domain
/// forms are made of.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NameInfo {
    #[prost(string, repeated, tag = "1")]
    pub ips: Vec<String>,
    /// `Kubernetes` for Kubernetes services; `External` for ServiceEntry hosts.
    #[prost(string, tag = "2")]
    pub registry: String,
    /// The Kubernetes Service name (`reviews`); empty for other registries.
    #[prost(string, tag = "3")]
    pub shortname: String,
    /// The Kubernetes namespace; empty for other registries.
    #[prost(string, tag = "4")]
    pub namespace: String,
    /// Deprecated in Istio; carried for wire compatibility only.
    #[prost(string, repeated, tag = "5")]
    pub alt_hosts: Vec<String>,
}

impl prost::Name for NameTable {
    const NAME: &'static str = "NameTable";
    const PACKAGE: &'static str = "istio.networking.nds.v1";
    fn full_name() -> String {
        "istio.networking.nds.v1.NameTable".into()
    }
    fn type_url() -> String {
        TYPE_URL.into()
    }
}

impl prost::Name for NameInfo {
    const NAME: &'static str = "NameTable.NameInfo";
    const PACKAGE: &'static str = "istio.networking.nds.v1";
    fn full_name() -> String {
        "istio.networking.nds.v1.NameTable.NameInfo".into()
    }
    fn type_url() -> String {
        "type.googleapis.com/istio.networking.nds.v1.NameTable.NameInfo".into()
    }
}

/// The registry name Istio uses for Kubernetes services.
pub const REGISTRY_KUBERNETES: &str = "Kubernetes";
/// The registry name ironmesh uses for ServiceEntry hosts.
pub const REGISTRY_EXTERNAL: &str = "External";

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn sample() -> NameTable {
        let mut t = NameTable::default();
        t.table.insert(
            "httpbin.istio-demo.svc.cluster.local".into(),
            NameInfo {
                ips: vec!["240.240.0.7".into()],
                registry: REGISTRY_KUBERNETES.into(),
                shortname: "httpbin".into(),
                namespace: "istio-demo".into(),
                alt_hosts: vec![],
            },
        );
        t
    }

    #[test]
    fn packs_with_istios_type_url_and_round_trips() {
        let any = crate::pack(&sample());
        assert_eq!(
            any.type_url,
            "type.googleapis.com/istio.networking.nds.v1.NameTable"
        );
        assert_eq!(NameTable::decode(any.value.as_slice()).unwrap(), sample());
    }

    #[test]
    fn field_numbers_match_istios_proto() {
        // Hand-encoded: table entry (field 1, map<string, NameInfo>) with key "a" and a
        // NameInfo carrying ips=["1.2.3.4"] (1), registry="K" (2), shortname="s" (3),
        // namespace="n" (4).
        let info: Vec<u8> = [
            &[0x0a, 7][..],
            b"1.2.3.4",
            &[0x12, 1],
            b"K",
            &[0x1a, 1],
            b"s",
            &[0x22, 1],
            b"n",
        ]
        .concat();
        let mut entry = vec![0x0a, 1, b'a', 0x12, info.len() as u8];
        entry.extend_from_slice(&info);
        let mut bytes = vec![0x0a, entry.len() as u8];
        bytes.extend_from_slice(&entry);
        let t = NameTable::decode(bytes.as_slice()).unwrap();
        let i = &t.table["a"];
        assert_eq!(i.ips, vec!["1.2.3.4"]);
        assert_eq!(
            (&*i.registry, &*i.shortname, &*i.namespace),
            ("K", "s", "n")
        );
        assert_eq!(t.encode_to_vec(), bytes);
    }

    #[test]
    fn json_rendering_declines_without_panicking() {
        // Config dumps go through prost-reflect, whose descriptor pool has no Istio
        // protos: the answer is an error, never a panic.
        assert!(crate::any_to_json(&crate::pack(&sample())).is_err());
    }
}
