//! PeerAuthentication (security.istio.io): the mutual TLS mode of workloads, for the
//! whole mesh (root namespace), a namespace, or the workloads a selector picks, with
//! optional per-port overrides.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::target_ref::validate_selector;
use crate::path::FieldPath;
use crate::types::LabelSelector;
use crate::validation::{checks, Context, Problems, Validate};

/// `PeerAuthentication` spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerAuthentication {
    /// Workloads the policy applies to; without it, every workload of the namespace (or
    /// of the mesh, in the root namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// The mutual TLS mode of the selected workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<PeerAuthenticationMutualTls>,
    /// Per-port overrides, keyed by the workload's port number (a string on the wire).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "port_level_mtls"
    )]
    pub port_level_mtls: BTreeMap<u32, PeerAuthenticationMutualTls>,
}

/// `PeerAuthentication.MutualTLS`: `mode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerAuthenticationMutualTls {
    /// Unset means "inherit from the parent scope" (PERMISSIVE at mesh scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MutualTlsMode>,
}

crate::string_enum! {
    /// How a workload accepts connections.
    pub enum MutualTlsMode {
        /// Inherit from the parent scope.
        Unset = "UNSET",
        /// Plain text only.
        Disable = "DISABLE",
        /// Both plain text and mutual TLS.
        Permissive = "PERMISSIVE",
        /// Mutual TLS only.
        Strict = "STRICT",
    }
}

/// Reads `portLevelMtls`: keys are port numbers written as strings; an empty map is
/// rejected as the CRD schema does (`minProperties: 1`).
fn port_level_mtls<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<u32, PeerAuthenticationMutualTls>, D::Error> {
    let raw = BTreeMap::<String, PeerAuthenticationMutualTls>::deserialize(d)?;
    if raw.is_empty() {
        return Err(de::Error::custom(
            "spec.portLevelMtls in body should have at least 1 properties: list at least one \
             port (e.g. \"8080\": {mode: DISABLE}) or remove portLevelMtls",
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let port: u32 = k.parse().map_err(|_| {
            de::Error::custom(format!(
                "type conversion error from string {k:?} to port number: portLevelMtls keys \
                 must be port numbers between 1 and 65535, e.g. \"8080\""
            ))
        })?;
        out.insert(port, v);
    }
    Ok(out)
}

impl Validate for PeerAuthentication {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        if let Some(s) = &self.selector {
            validate_selector(s, &path.field("selector"), p);
        }
        let has_labels = self
            .selector
            .as_ref()
            .is_some_and(|s| !s.match_labels.is_empty());
        let ports = path.field("portLevelMtls");
        if !self.port_level_mtls.is_empty() && !has_labels {
            p.error(
                &ports,
                "portLevelMtls requires selector: port-level mTLS only applies to the workloads \
                 a selector.matchLabels picks, not to a whole namespace or mesh",
            );
        }
        for (port, mtls) in &self.port_level_mtls {
            let at = ports.key(&port.to_string());
            p.check(&at, checks::port(*port));
            if mtls.mode.is_none() {
                p.warn(
                    &at,
                    "mode is not set: this port inherits the workload's mode, so the entry has no effect",
                );
            }
        }
        if matches!(
            self.mtls.as_ref().and_then(|m| m.mode),
            Some(MutualTlsMode::Unset)
        ) && self.selector.is_none()
            && cx.namespace == cx.root_namespace
        {
            p.warn(
                &path.field("mtls").field("mode"),
                "mode UNSET at mesh scope means PERMISSIVE: plain-text connections are accepted",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::problems_of;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PeerAuthentication {
        serde_json::from_value(v).unwrap()
    }

    fn errors(v: serde_json::Value) -> Vec<String> {
        problems_of(&spec(v), &Context::for_test("PeerAuthentication"))
    }

    #[test]
    fn full_spec_is_valid() {
        let s = spec(json!({
            "selector": {"matchLabels": {"foo": "bar"}},
            "mtls": {"mode": "PERMISSIVE"},
            "portLevelMtls": {"80": {"mode": "STRICT"}}
        }));
        assert_eq!(s.port_level_mtls[&80].mode, Some(MutualTlsMode::Strict));
        assert!(problems_of(&s, &Context::for_test("PeerAuthentication")).is_empty());
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(back["portLevelMtls"]["80"]["mode"], "STRICT");
    }

    #[test]
    fn bad_mode_and_keys_fail_to_decode() {
        let e = serde_json::from_value::<PeerAuthentication>(json!({"mtls": {"mode": "BLAH"}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Unsupported value: \"BLAH\""), "{e}");
        let e = serde_json::from_value::<PeerAuthentication>(
            json!({"portLevelMtls": {"acd": {"mode": "STRICT"}}}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("type conversion error from"), "{e}");
        let e = serde_json::from_value::<PeerAuthentication>(json!({"portLevelMtls": {}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("should have at least 1 properties"), "{e}");
    }

    #[test]
    fn port_level_needs_selector_and_valid_ports() {
        let e = errors(json!({"portLevelMtls": {"80": {"mode": "STRICT"}}}));
        assert!(
            e.iter()
                .any(|m| m.contains("portLevelMtls requires selector")),
            "{e:?}"
        );
        let e = errors(json!({"selector": {}, "portLevelMtls": {"80": {"mode": "STRICT"}}}));
        assert!(
            e.iter()
                .any(|m| m.contains("portLevelMtls requires selector")),
            "{e:?}"
        );
        let e = errors(json!({
            "selector": {"matchLabels": {"a": "b"}},
            "portLevelMtls": {"0": {"mode": "STRICT"}, "42949672": {"mode": "STRICT"}}
        }));
        assert_eq!(
            e.iter()
                .filter(|m| m.contains("port must be between 1-65535"))
                .count(),
            2,
            "{e:?}"
        );
    }

    #[test]
    fn selector_wildcards_are_errors() {
        let e = errors(json!({"selector": {"matchLabels": {"app": "x*"}}}));
        assert!(
            e.iter().any(|m| m.contains("wildcard not allowed")),
            "{e:?}"
        );
    }
}
