//! AuthorizationPolicy (security.istio.io): access control for workloads, gateways and
//! waypoints. Rules match sources, operations and conditions; the action decides what
//! happens to a matching request.

use serde::{Deserialize, Serialize};

use super::target_ref::validate_attachment;
use crate::path::FieldPath;
use crate::security::target_ref::object_list_fn;
use crate::types::{LabelSelector, PolicyTargetReference};
use crate::validation::{Context, Problems, Validate};

#[path = "authorization_policy_validate.rs"]
mod validate;

/// `AuthorizationPolicy` spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationPolicy {
    /// Workloads the policy applies to (mutually exclusive with targetRef/targetRefs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Deprecated single form of `targetRefs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Gateways, waypoints (via Service/ServiceEntry) or GatewayClasses the policy attaches to.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "target_refs"
    )]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Rules to match; an empty list matches nothing (ALLOW then denies everything).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "rules"
    )]
    pub rules: Vec<Rule>,
    /// What to do with a request that matches; ALLOW when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// The extension provider of a CUSTOM policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ExtensionProvider>,
}

object_list_fn!(target_refs, "spec.targetRefs");
object_list_fn!(rules, "spec.rules");
object_list_fn!(from_list, "from");
object_list_fn!(to_list, "to");
object_list_fn!(when_list, "when");

crate::string_enum! {
    /// `AuthorizationPolicy.Action`.
    pub enum Action {
        /// Allow a request only if it matches the rules.
        Allow = "ALLOW",
        /// Deny a request if it matches any of the rules.
        Deny = "DENY",
        /// Audit a request if it matches any of the rules.
        Audit = "AUDIT",
        /// Delegate the decision to an extension provider.
        Custom = "CUSTOM",
    }
}

/// `AuthorizationPolicy.ExtensionProvider`: a provider declared in MeshConfig.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtensionProvider {
    /// The provider's name in `meshConfig.extensionProviders`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `Rule`: matches when one source, one operation and every condition match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Sources; any source when empty.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "from_list"
    )]
    pub from: Vec<RuleFrom>,
    /// Operations; any operation when empty.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "to_list"
    )]
    pub to: Vec<RuleTo>,
    /// Extra conditions, all of which must match.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "when_list"
    )]
    pub when: Vec<Condition>,
}

/// `Rule.From`: one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleFrom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// `Rule.To`: one operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleTo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
}

/// `Source`: who sent the request. Fields are ANDed; values within a field are ORed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    /// Peer identities (`<trust domain>/ns/<namespace>/sa/<service account>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_principals: Vec<String>,
    /// JWT identities (`<iss>/<sub>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_principals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_request_principals: Vec<String>,
    /// Namespaces of the peer identity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_namespaces: Vec<String>,
    /// Service accounts of the peer identity: `<namespace>/<name>`, or `<name>` in the
    /// policy's namespace. Cannot be combined with namespaces or principals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_accounts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_service_accounts: Vec<String>,
    /// Source IPs or CIDRs of the connection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_blocks: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ip_blocks: Vec<String>,
    /// Original client IPs or CIDRs (X-Forwarded-For or PROXY protocol).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_ip_blocks: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_remote_ip_blocks: Vec<String>,
}

/// `Operation`: what the request does. Fields are ANDed; values within a field are ORed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    /// HTTP hosts (case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_hosts: Vec<String>,
    /// Destination ports, as strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<String>,
    /// HTTP methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_methods: Vec<String>,
    /// HTTP paths: exact, `*` prefix/suffix, or `{*}` / `{**}` templates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_paths: Vec<String>,
}

/// `Condition`: an attribute (`key`) and the values it must (not) have.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// An Istio attribute, e.g. `request.headers[x-token]` or `source.ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_values: Vec<String>,
}

impl Validate for AuthorizationPolicy {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        validate_attachment(
            &self.selector,
            &self.target_ref,
            &self.target_refs,
            cx,
            path,
            p,
        );
        validate::policy(self, path, p);
    }
}
