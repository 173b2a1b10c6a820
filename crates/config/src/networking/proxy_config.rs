//! ProxyConfig (networking.istio.io/v1beta1): per-workload proxy settings (concurrency,
//! environment variables, image type) that override MeshConfig `defaultConfig`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::path::FieldPath;
use crate::types::LabelSelector;
use crate::validation::{checks, Context, Problems, Validate};

/// `ProxyConfig` spec. Without a selector it applies to the whole namespace (or the
/// whole mesh in the root namespace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyConfig {
    /// Workloads this configuration applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Worker threads of the proxy; 0 means one per core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<i32>,
    /// Extra environment variables for the proxy.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment_variables: BTreeMap<String, String>,
    /// Which proxy image variant to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ProxyImage>,
}

/// `ProxyImage`: the image variant (`default`, `debug` or `distroless`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyImage {
    /// The variant's name, appended to the image tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_type: Option<String>,
}

/// Image variants Istio publishes.
const IMAGE_TYPES: &[&str] = &["default", "debug", "distroless"];

/// An environment variable name as Kubernetes accepts it (`C_IDENTIFIER`-like: letters,
/// digits, `_`, `-`, `.`, not starting with a digit).
fn env_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("environment variable name must not be empty".into());
    }
    let ok = !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !ok {
        return Err(format!(
            "environment variable name {name:?} is invalid: use letters, digits, '_', '-' and '.', not starting with a digit"
        ));
    }
    Ok(())
}

impl Validate for ProxyConfig {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        if let Some(sel) = &self.selector {
            checks::selector_labels(
                &sel.match_labels,
                &path.field("selector").field("matchLabels"),
                p,
            );
        }
        if let Some(c) = self.concurrency.filter(|c| *c < 0) {
            p.error(
                &path.field("concurrency"),
                format!(
                    "spec.concurrency in body should be greater than or equal to 0 (got {c}): \
                     concurrency must be greater than or equal to 0; 0 means one worker per CPU core"
                ),
            );
        }
        for k in self.environment_variables.keys() {
            p.check(&path.field("environmentVariables").key(k), env_name(k));
        }
        if let Some(t) = self.image.as_ref().and_then(|i| i.image_type.as_deref()) {
            if !IMAGE_TYPES.contains(&t) {
                p.warn(
                    &path.field("image").field("imageType"),
                    format!(
                        "imageType {t:?} is not one Istio publishes ({}); the proxy image must exist with that suffix",
                        IMAGE_TYPES.join(", ")
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validation::problems_of;

    fn check(v: serde_json::Value) -> Vec<String> {
        let spec: ProxyConfig = serde_json::from_value(v).expect("decodes");
        problems_of(&spec, &Context::for_test("ProxyConfig"))
    }

    #[test]
    fn full_spec_is_valid() {
        let p = check(json!({
            "selector": {"matchLabels": {"app": "ratings"}},
            "concurrency": 2,
            "environmentVariables": {"ISTIO_META_DNS_CAPTURE": "true"},
            "image": {"imageType": "distroless"}
        }));
        assert!(p.is_empty(), "{p:?}");
        assert!(check(json!({})).is_empty());
        assert!(check(json!({"selector": {"matchLabels": {}}})).is_empty());
        assert!(check(json!({"concurrency": 0})).is_empty());
    }

    #[test]
    fn negative_concurrency() {
        let p = check(json!({"concurrency": -1}));
        assert!(
            p[0].contains("spec.concurrency in body should be greater than or equal to 0"),
            "{p:?}"
        );
    }

    #[test]
    fn selector_keys() {
        let p = check(json!({"selector": {"matchLabels": {"": "bar"}}}));
        assert!(p[0].contains("key must not be empty"), "{p:?}");
        let p = check(json!({"selector": {"matchLabels": {"app": "foo*"}}}));
        assert!(p[0].contains("wildcard"), "{p:?}");
    }

    #[test]
    fn environment_variable_names() {
        let p = check(json!({"environmentVariables": {"": "x"}}));
        assert!(p[0].contains("must not be empty"), "{p:?}");
        let p = check(json!({"environmentVariables": {"1ABC": "x"}}));
        assert!(p[0].contains("is invalid"), "{p:?}");
    }

    #[test]
    fn unknown_image_type_is_a_warning() {
        let p = check(json!({"image": {"imageType": "foo"}}));
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("imageType \"foo\""), "{p:?}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_value::<ProxyConfig>(json!({"concurency": 1})).is_err());
    }
}
