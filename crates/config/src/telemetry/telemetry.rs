//! Telemetry (telemetry.istio.io): metrics, access logging and tracing settings for the
//! mesh (root namespace), a namespace, or selected workloads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::security::target_ref::{object_list_fn, validate_attachment};
use crate::types::{Duration, LabelSelector, PolicyTargetReference};

#[path = "telemetry_validate.rs"]
mod validate;

/// `Telemetry` spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Telemetry {
    /// Workloads the settings apply to (mutually exclusive with targetRef/targetRefs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Single form of `targetRefs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Gateways or waypoints (via Service/ServiceEntry) the settings attach to.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "target_refs"
    )]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Tracing settings (Istio supports one entry).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "tracing"
    )]
    pub tracing: Vec<Tracing>,
    /// Metrics settings, per provider.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "metrics"
    )]
    pub metrics: Vec<Metrics>,
    /// Access log settings, per provider.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "access_logging"
    )]
    pub access_logging: Vec<AccessLogging>,
}

object_list_fn!(target_refs, "spec.targetRefs");
object_list_fn!(tracing, "spec.tracing");
object_list_fn!(metrics, "spec.metrics");
object_list_fn!(access_logging, "spec.accessLogging");
object_list_fn!(providers, "providers");
object_list_fn!(overrides, "overrides");

/// `ProviderRef`: a provider from `meshConfig.extensionProviders` (or a built-in one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

crate::string_enum! {
    /// `WorkloadMode`: which side of the traffic a setting applies to.
    pub enum WorkloadMode {
        ClientAndServer = "CLIENT_AND_SERVER",
        Client = "CLIENT",
        Server = "SERVER",
    }
}

/// `Tracing`: how spans are sampled, tagged and reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tracing {
    /// Which traffic this entry applies to.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<TracingSelector>,
    /// Tracing providers (Istio supports one).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "providers"
    )]
    pub providers: Vec<ProviderRef>,
    /// Extra span tags, by tag name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_tags: BTreeMap<String, CustomTag>,
    /// Do not report spans (context is still propagated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_span_reporting: Option<bool>,
    /// Percentage of requests to sample, 0.0-100.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_sampling_percentage: Option<f64>,
    /// Use the request ID to decide sampling (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_request_id_for_trace_sampling: Option<bool>,
    /// Add Istio's own tags (canonical service etc.) to spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_istio_tags: Option<bool>,
    /// Do not propagate trace context headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_context_propagation: Option<bool>,
}

/// `Tracing.TracingSelector`: `mode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkloadMode>,
}

/// `Tracing.CustomTag`: exactly one source of the tag's value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomTag {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<LiteralTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatter: Option<FormatterTag>,
}

/// `Tracing.Literal`: a fixed value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LiteralTag {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `Tracing.Environment`: the proxy's environment variable `name`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentTag {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

/// `Tracing.RequestHeader`: the request header `name`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderTag {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

/// `Tracing.Formatter`: an Envoy substitution format string.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FormatterTag {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `Metrics`: which providers get metrics, with overrides per metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metrics {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "providers"
    )]
    pub providers: Vec<ProviderRef>,
    /// Applied in order; a later override wins.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "overrides"
    )]
    pub overrides: Vec<MetricsOverrides>,
    /// How often TCP metrics are reported (at least 1ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_interval: Option<Duration>,
}

/// `MetricsOverrides`: turn metrics off or change their tags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricsOverrides {
    /// Which metrics; all of them when unset.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<MetricSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Tag changes, by tag name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tag_overrides: BTreeMap<String, TagOverride>,
}

/// `MetricSelector`: one standard metric or a custom one, and a mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<IstioMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkloadMode>,
}

crate::string_enum! {
    /// `MetricSelector.IstioMetric`: Istio's standard metrics.
    pub enum IstioMetric {
        AllMetrics = "ALL_METRICS",
        RequestCount = "REQUEST_COUNT",
        RequestDuration = "REQUEST_DURATION",
        RequestSize = "REQUEST_SIZE",
        ResponseSize = "RESPONSE_SIZE",
        TcpOpenedConnections = "TCP_OPENED_CONNECTIONS",
        TcpClosedConnections = "TCP_CLOSED_CONNECTIONS",
        TcpSentBytes = "TCP_SENT_BYTES",
        TcpReceivedBytes = "TCP_RECEIVED_BYTES",
        GrpcRequestMessages = "GRPC_REQUEST_MESSAGES",
        GrpcResponseMessages = "GRPC_RESPONSE_MESSAGES",
    }
}

/// `MetricsOverrides.TagOverride`: set (UPSERT, the default) or remove a tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<TagOperation>,
    /// A CEL expression for the tag's value (UPSERT only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

crate::string_enum! {
    /// `TagOverride.Operation`.
    pub enum TagOperation {
        Upsert = "UPSERT",
        Remove = "REMOVE",
    }
}

/// `AccessLogging`: which providers log, and which requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogging {
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<LogSelector>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "providers"
    )]
    pub providers: Vec<ProviderRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Only log requests for which this CEL expression is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<AccessLogFilter>,
}

/// `AccessLogging.LogSelector`: `mode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkloadMode>,
}

/// `AccessLogging.Filter`: a CEL expression, e.g. `response.code >= 400`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

impl crate::validation::Validate for Telemetry {
    fn validate(
        &self,
        cx: &crate::validation::Context<'_>,
        path: &crate::path::FieldPath,
        p: &mut crate::validation::Problems,
    ) {
        validate_attachment(
            &self.selector,
            &self.target_ref,
            &self.target_refs,
            cx,
            path,
            p,
        );
        validate::telemetry(self, path, p);
    }
}
