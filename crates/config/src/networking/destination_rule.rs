//! DestinationRule (networking.istio.io): traffic policy and subsets for a host.
//!
//! PLACEHOLDER: the types below are empty until this module is written.

use serde::{Deserialize, Serialize};

use crate::path::FieldPath;
use crate::validation::{Context, Problems, Validate};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationRule {}

impl Validate for DestinationRule {
    fn validate(&self, _cx: &Context<'_>, _path: &FieldPath, _problems: &mut Problems) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicy {}

impl Validate for TrafficPolicy {
    fn validate(&self, _cx: &Context<'_>, _path: &FieldPath, _problems: &mut Problems) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerSettings {}

impl Validate for LoadBalancerSettings {
    fn validate(&self, _cx: &Context<'_>, _path: &FieldPath, _problems: &mut Problems) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityLoadBalancerSetting {}

impl Validate for LocalityLoadBalancerSetting {
    fn validate(&self, _cx: &Context<'_>, _path: &FieldPath, _problems: &mut Problems) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionPoolSettings {}

impl Validate for ConnectionPoolSettings {
    fn validate(&self, _cx: &Context<'_>, _path: &FieldPath, _problems: &mut Problems) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {}

impl Validate for OutlierDetection {
    fn validate(&self, _cx: &Context<'_>, _path: &FieldPath, _problems: &mut Problems) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTlsSettings {}

impl Validate for ClientTlsSettings {
    fn validate(&self, _cx: &Context<'_>, _path: &FieldPath, _problems: &mut Problems) {}
}
