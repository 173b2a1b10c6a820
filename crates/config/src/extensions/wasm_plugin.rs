//! WasmPlugin (extensions.istio.io/v1alpha1): a Wasm module added to the proxies of the
//! selected workloads or gateways. ironmesh parses, validates and keeps it.

use std::collections::BTreeSet;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use crate::path::FieldPath;
use crate::security::target_ref::object_list_fn;
use crate::security::target_ref::{
    empty_string, non_null_string, required, required_string, should_match, validate_attachment,
};
use crate::types::{LabelSelector, PolicyTargetReference, PortSelector};
use crate::validation::{checks, Context, Problems, Validate};

/// `WasmPlugin` spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WasmPlugin {
    /// Workloads the plugin is added to (mutually exclusive with targetRef/targetRefs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Single form of `targetRefs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Gateways or waypoints (via Service/ServiceEntry) the plugin attaches to.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "target_refs"
    )]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Where the module comes from: `oci://`, `file://`, `http(s)://`, or no scheme (OCI).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "url_field"
    )]
    pub url: Option<String>,
    /// Expected SHA-256 of the module, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// When to pull an OCI image again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// Secret (in the plugin's namespace) with OCI registry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,
    /// The plugin's configuration (a protobuf Struct), passed to the module as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<serde_json::Value>,
    /// The plugin's root ID inside the module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_name: Option<String>,
    /// Where in the filter chain the plugin goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PluginPhase>,
    /// Order among plugins of the same phase (higher runs first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// What to do when the module cannot be fetched or fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_strategy: Option<FailStrategy>,
    /// The Wasm VM's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_config: Option<VmConfig>,
    /// Which traffic the plugin applies to; all when empty.
    #[serde(
        default,
        rename = "match",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "match_list"
    )]
    pub match_: Vec<TrafficSelector>,
    /// HTTP or network filter.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<PluginType>,
}

object_list_fn!(target_refs, "spec.targetRefs");
object_list_fn!(match_list, "spec.match");
object_list_fn!(ports_list, "ports");
object_list_fn!(env_list, "spec.vmConfig.env");

fn url_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    non_null_string(d, "spec.url")
}

crate::string_enum! {
    /// `PullPolicy`.
    pub enum PullPolicy {
        UnspecifiedPolicy = "UNSPECIFIED_POLICY",
        IfNotPresent = "IfNotPresent",
        Always = "Always",
    }
}

crate::string_enum! {
    /// `PluginPhase`: before authentication, before authorization, before stats, or
    /// (unspecified) next to the router.
    pub enum PluginPhase {
        UnspecifiedPhase = "UNSPECIFIED_PHASE",
        Authn = "AUTHN",
        Authz = "AUTHZ",
        Stats = "STATS",
    }
}

crate::string_enum! {
    /// `FailStrategy`.
    pub enum FailStrategy {
        FailClose = "FAIL_CLOSE",
        FailOpen = "FAIL_OPEN",
        FailReload = "FAIL_RELOAD",
    }
}

crate::string_enum! {
    /// `PluginType`.
    pub enum PluginType {
        UnspecifiedPluginType = "UNSPECIFIED_PLUGIN_TYPE",
        Http = "HTTP",
        Network = "NETWORK",
    }
}

crate::string_enum! {
    /// `istio.type.v1beta1.WorkloadMode`.
    pub enum WorkloadMode {
        Undefined = "UNDEFINED",
        Client = "CLIENT",
        Server = "SERVER",
        ClientAndServer = "CLIENT_AND_SERVER",
    }
}

crate::string_enum! {
    /// `EnvValueSource`.
    pub enum EnvValueSource {
        /// The value is given inline (the default).
        Inline = "INLINE",
        /// The value is read from the proxy's own environment.
        Host = "HOST",
    }
}

/// `VmConfig`: environment variables for the VM.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VmConfig {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "env_list"
    )]
    pub env: Vec<EnvVar>,
}

/// `EnvVar`: one environment variable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvValueSource>,
    /// The value, when valueFrom is INLINE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `WasmPlugin.TrafficSelector`: mode and ports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkloadMode>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "ports_list"
    )]
    pub ports: Vec<PortSelector>,
}

const SHA256_PATTERN: &str = "(^$|^[a-f0-9]{64}$)";

impl Validate for WasmPlugin {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        validate_attachment(
            &self.selector,
            &self.target_ref,
            &self.target_refs,
            cx,
            path,
            p,
        );
        if let Some(url) = required_string(
            &self.url,
            p,
            &path.field("url"),
            "where to load the module from, e.g. oci://registry/plugin:1.0",
        ) {
            p.check(&path.field("url"), plugin_url(url));
        }
        if let Some(sha) = &self.sha256 {
            let ok = sha.is_empty()
                || (sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            if !ok {
                should_match(
                    p,
                    &path.field("sha256"),
                    SHA256_PATTERN,
                    "the module's SHA-256 as 64 lower-case hex digits",
                );
            }
        }
        limited(&self.image_pull_secret, 253, "imagePullSecret", path, p);
        limited(&self.plugin_name, 256, "pluginName", path, p);
        if let Some(cfg) = &self.plugin_config {
            if !cfg.is_object() {
                p.error(
                    &path.field("pluginConfig"),
                    "spec.pluginConfig in body must be of type object: the plugin's configuration is a mapping",
                );
            }
        }
        if let Some(vm) = &self.vm_config {
            env(&vm.env, &path.field("vmConfig").field("env"), p);
        }
        for (i, sel) in self.match_.iter().enumerate() {
            for (j, port) in sel.ports.iter().enumerate() {
                let at = path
                    .field("match")
                    .index(i)
                    .field("ports")
                    .index(j)
                    .field("number");
                match port.number {
                    None => required(p, &at, "the port number to match"),
                    Some(n) => p.check(&at, checks::port(n)),
                }
            }
        }
    }
}

/// A string limited in length that must not be empty when given.
fn limited(v: &Option<String>, max: usize, field: &str, path: &FieldPath, p: &mut Problems) {
    let at = path.field(field);
    match v.as_deref() {
        Some("") => empty_string(p, &at, "leave the field out instead"),
        Some(s) if s.len() > max => p.error(
            &at,
            format!("{at}: Too long: may not be longer than {max} characters"),
        ),
        _ => {}
    }
}

fn env(vars: &[EnvVar], path: &FieldPath, p: &mut Problems) {
    let mut seen = BTreeSet::new();
    for (i, e) in vars.iter().enumerate() {
        let at = path.index(i);
        if let Some(name) = required_string(&e.name, p, &at.field("name"), "the variable's name") {
            if name.len() > 256 {
                p.error(
                    &at.field("name"),
                    "Too long: may not be longer than 256 characters",
                );
            }
            if !seen.insert(name) {
                p.error(
                    &at,
                    format!("Duplicate value: env {name:?} is defined more than once"),
                );
            }
        }
        if e.value_from == Some(EnvValueSource::Host) && e.value.is_some() {
            p.error(
                &at.field("value"),
                "value may only be set when valueFrom is INLINE: with valueFrom HOST the value \
                 comes from the proxy's environment",
            );
        }
    }
}

/// The module URL: a scheme among file, http, https and oci, or no scheme (read as OCI).
fn plugin_url(url: &str) -> Result<(), String> {
    let err = |why: &str| {
        Err(format!(
            "url must have schema one of [http, https, file, oci]: {url:?} {why}"
        ))
    };
    let scheme_end = url.find(':').filter(|&i| {
        i > 0
            && url[..i].starts_with(|c: char| c.is_ascii_alphabetic())
            && url[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    match scheme_end {
        Some(i) if url[i..].starts_with("://") || url[i + 1..].starts_with('/') => {
            let scheme = url[..i].to_ascii_lowercase();
            if !matches!(scheme.as_str(), "http" | "https" | "file" | "oci") {
                return err(&format!("has scheme {scheme:?}"));
            }
            match url::Url::parse(url) {
                Ok(_) => Ok(()),
                Err(e) => err(&format!("is not a valid URL ({e})")),
            }
        }
        _ => {
            // No scheme: the reference is read as http://<url> would be.
            let authority = url.split('/').next().unwrap_or("");
            let host = authority.rsplit('@').next().unwrap_or("");
            if host.is_empty() || !host_chars_ok(host) {
                return err("is not a valid reference (no scheme, and the host part is invalid)");
            }
            Ok(())
        }
    }
}

/// Characters a URL host (with an optional port) may contain; `%XX` escapes allowed.
fn host_chars_ok(host: &str) -> bool {
    let b = host.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if i + 2 >= b.len() || !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
            continue;
        }
        let ok = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
            );
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::problems_of;
    use serde_json::json;

    fn problems(v: serde_json::Value) -> Vec<String> {
        let s: WasmPlugin = serde_json::from_value(v).unwrap();
        problems_of(&s, &Context::for_test("WasmPlugin"))
    }

    fn has(v: serde_json::Value, fragment: &str) {
        let got = problems(v);
        assert!(
            got.iter().any(|m| m.contains(fragment)),
            "expected {fragment:?} in {got:?}"
        );
    }

    fn clean(v: serde_json::Value) {
        let got = problems(v);
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn valid_plugins() {
        clean(json!({
            "selector": {"matchLabels": {"istio": "ingressgateway"}},
            "url": "file:///opt/filters/openid.wasm",
            "sha256": "1ef0c9a92b0420cf25f7fe5d481b231464bc88f486ca3b9c83ed5cc21d2f6210",
            "phase": "AUTHN",
            "priority": -10,
            "failStrategy": "FAIL_OPEN",
            "imagePullPolicy": "IfNotPresent",
            "imagePullSecret": "creds",
            "pluginName": "openid",
            "type": "HTTP",
            "pluginConfig": {"openid_server": "authn"},
            "match": [{"mode": "SERVER", "ports": [{"number": 8080}]}],
            "vmConfig": {"env": [{"name": "a", "valueFrom": "HOST"}, {"name": "b", "value": "x"}]}
        }));
        clean(json!({"url": "http://test"}));
        clean(json!({"url": "test"}));
        clean(json!({"url": "oci://ghcr.io/org/plugin:1.0"}));
        clean(json!({"url": "ghcr.io/org/plugin:1.0"}));
    }

    #[test]
    fn url_rules() {
        has(json!({}), "url: Required value");
        has(
            json!({"url": ""}),
            "spec.url in body should be at least 1 chars long",
        );
        has(json!({"url": "#%blah$#@"}), "url must have schema one of");
        has(
            json!({"url": "fake://example.com"}),
            "url must have schema one of",
        );
        let e = serde_json::from_value::<WasmPlugin>(json!({"url": null}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("spec.url in body must be of type string: \"null\""),
            "{e}"
        );
    }

    #[test]
    fn field_rules() {
        has(
            json!({"url": "http://t", "sha256": "foo"}),
            "spec.sha256 in body should match",
        );
        has(
            json!({"url": "http://t", "imagePullSecret": ""}),
            "spec.imagePullSecret in body should be at least 1 chars long",
        );
        has(
            json!({"url": "http://t", "pluginName": ""}),
            "spec.pluginName in body should be at least 1 chars long",
        );
        has(
            json!({"url": "http://t", "pluginName": "x".repeat(300)}),
            "Too long",
        );
        has(
            json!({"url": "http://t", "pluginConfig": [1]}),
            "must be of type object",
        );
        has(
            json!({"url": "http://t", "vmConfig": {"env": [{"name": "a"}, {"name": "a"}]}}),
            "Duplicate value",
        );
        has(
            json!({"url": "http://t", "vmConfig": {"env": [{"name": ""}]}}),
            "spec.vmConfig.env[0].name in body should be at least",
        );
        has(
            json!({"url": "http://t", "vmConfig": {"env": [{"value": "x"}]}}),
            "name: Required value",
        );
        has(
            json!({"url": "http://t", "vmConfig": {"env": [{"name": "t", "valueFrom": "HOST", "value": "v"}]}}),
            "value may only be set when valueFrom is INLINE",
        );
        has(
            json!({"url": "http://t", "match": [{"ports": [{}]}]}),
            "spec.match[0].ports[0].number: Required value",
        );
        has(
            json!({"url": "http://t", "match": [{"ports": [{"number": 0}]}]}),
            "port must be between 1-65535",
        );
        has(
            json!({"url": "http://t", "selector": {"matchLabels": {"istio": "bar*"}}}),
            "wildcard not allowed in label value match",
        );
        has(
            json!({"url": "http://t", "selector": {"matchLabels": {"istio*": "bar"}}}),
            "wildcard not allowed in label key match",
        );
        has(
            json!({"url": "http://t", "targetRef": {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "g", "namespace": "x"}}),
            "cross namespace referencing",
        );
    }

    #[test]
    fn enums_and_nulls() {
        let e = serde_json::from_value::<WasmPlugin>(json!({"phase": "LATE"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Unsupported value: \"LATE\""), "{e}");
        let e = serde_json::from_value::<WasmPlugin>(json!({"match": [{"ports": [null]}]}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("spec.match[0].ports[0] in body must be of type object"),
            "{e}"
        );
    }
}
