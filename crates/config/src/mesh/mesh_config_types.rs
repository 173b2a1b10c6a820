//! The message and enum types MeshConfig's fields use (traffic policies, certificates,
//! selectors, TLS settings, retry policy, ...).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::networking::destination_rule::ClientTlsSettings;
use crate::types::Duration;

crate::string_enum! {
    /// Access log encoding.
    pub enum AccessLogEncoding { Text = "TEXT", Json = "JSON" }
}

crate::string_enum! {
    /// Which Kubernetes Ingress resources the Istio ingress controller handles.
    pub enum IngressControllerMode {
        Unspecified = "UNSPECIFIED",
        Off = "OFF",
        Default = "DEFAULT",
        Strict = "STRICT",
    }
}

crate::string_enum! {
    /// `outboundTrafficPolicy.mode`.
    pub enum OutboundTrafficPolicyMode {
        RegistryOnly = "REGISTRY_ONLY",
        AllowAny = "ALLOW_ANY",
        AllowAnyDynamicDns = "ALLOW_ANY_DYNAMIC_DNS",
    }
}

crate::string_enum! {
    /// `inboundTrafficPolicy.mode`.
    pub enum InboundTrafficPolicyMode { Passthrough = "PASSTHROUGH", Localhost = "LOCALHOST" }
}

crate::string_enum! {
    /// Whether HTTP/1.1 connections are upgraded to HTTP/2 by default.
    pub enum H2UpgradePolicy { DoNotUpgrade = "DO_NOT_UPGRADE", Upgrade = "UPGRADE" }
}

crate::string_enum! {
    /// URL path normalization applied by sidecars and gateways.
    pub enum NormalizationType {
        Default = "DEFAULT",
        None = "NONE",
        Base = "BASE",
        MergeSlashes = "MERGE_SLASHES",
        DecodeAndMergeSlashes = "DECODE_AND_MERGE_SLASHES",
    }
}

crate::string_enum! {
    /// TLS protocol versions.
    pub enum TlsProtocol { TlsAuto = "TLS_AUTO", TlsV1_2 = "TLSV1_2", TlsV1_3 = "TLSV1_3" }
}

crate::string_enum! {
    /// Resources a config source provides.
    pub enum ConfigResource { ServiceRegistry = "SERVICE_REGISTRY" }
}

crate::string_enum! {
    /// Ambient multicluster service scope.
    pub enum ServiceScope { Local = "LOCAL", Global = "GLOBAL" }
}

crate::string_enum! {
    /// Label selector requirement operators.
    pub enum SelectorOperator {
        In = "In",
        NotIn = "NotIn",
        Exists = "Exists",
        DoesNotExist = "DoesNotExist",
    }
}

/// `outboundTrafficPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboundTrafficPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<OutboundTrafficPolicyMode>,
    /// TLS origination for `ALLOW_ANY_DYNAMIC_DNS` traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
}

/// `inboundTrafficPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboundTrafficPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<InboundTrafficPolicyMode>,
}

/// A source of configuration (MCP / xDS server, Kubernetes, files).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigSource {
    /// `xds://host:port`, `k8s://`, `fs:///dir` or `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(
        default,
        alias = "tls_settings",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_settings: Option<ClientTlsSettings>,
    #[serde(
        default,
        alias = "subscribed_resources",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subscribed_resources: Vec<ConfigResource>,
}

/// `caCertificates[]`: an extra trust anchor; exactly one of `pem` or `spiffeBundleUrl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    #[serde(
        default,
        alias = "spiffe_bundle_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub spiffe_bundle_url: Option<String>,
    #[serde(default, alias = "cert_signers", skip_serializing_if = "Vec::is_empty")]
    pub cert_signers: Vec<String>,
    #[serde(
        default,
        alias = "trust_domains",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub trust_domains: Vec<String>,
}

/// `serviceSettings[].settings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSettingsSettings {
    /// Endpoints stay within the client's cluster.
    #[serde(
        default,
        alias = "cluster_local",
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_local: Option<bool>,
}

/// `serviceSettings[]`: settings for the services matching `hosts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<ServiceSettingsSettings>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// A Kubernetes label selector requirement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<SelectorOperator>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A Kubernetes `LabelSelector` (`matchLabels` and `matchExpressions`, ANDed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeLabelSelector {
    #[serde(
        default,
        alias = "match_labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_labels: BTreeMap<String, String>,
    #[serde(
        default,
        alias = "match_expressions",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// `serviceScopeConfigs[]`: the ambient multicluster scope of the selected services.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceScopeConfigs {
    #[serde(
        default,
        alias = "namespace_selector",
        skip_serializing_if = "Option::is_none"
    )]
    pub namespace_selector: Option<KubeLabelSelector>,
    #[serde(
        default,
        alias = "services_selector",
        skip_serializing_if = "Option::is_none"
    )]
    pub services_selector: Option<KubeLabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ServiceScope>,
}

/// `ca`: an external CA that istiod forwards CSRs to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaConfig {
    /// REQUIRED `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(
        default,
        alias = "tls_settings",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_settings: Option<ClientTlsSettings>,
    /// Default 10s.
    #[serde(
        default,
        alias = "request_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub request_timeout: Option<Duration>,
    /// Default true.
    #[serde(
        default,
        alias = "istiod_side",
        skip_serializing_if = "Option::is_none"
    )]
    pub istiod_side: Option<bool>,
}

/// `defaultProviders`: provider names used when a resource names none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultProviders {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracing: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<String>,
    #[serde(
        default,
        alias = "access_logging",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub access_logging: Vec<String>,
}

/// `pathNormalization`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyPathNormalization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<NormalizationType>,
}

/// `meshMTLS` / `tlsDefaults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(
        default,
        alias = "min_protocol_version",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_protocol_version: Option<TlsProtocol>,
    #[serde(default, alias = "ecdh_curves", skip_serializing_if = "Vec::is_empty")]
    pub ecdh_curves: Vec<String>,
    #[serde(
        default,
        alias = "cipher_suites",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cipher_suites: Vec<String>,
}

/// `defaultHttpRetryPolicy`: the mesh-wide HTTP retry policy (VirtualService `HTTPRetry`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRetry {
    /// Default 2; 0 disables retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// Not applied mesh-wide.
    #[serde(
        default,
        alias = "per_try_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub per_try_timeout: Option<Duration>,
    /// Default `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`.
    #[serde(default, alias = "retry_on", skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
    #[serde(
        default,
        alias = "retry_remote_localities",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_remote_localities: Option<bool>,
    /// Base interval of the exponential back-off between retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Duration>,
}

/// `certificates[]` (deprecated): DNS certificates istiod provisions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificate {
    #[serde(
        default,
        alias = "secret_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_name: Option<String>,
    #[serde(default, alias = "dns_names", skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
}
