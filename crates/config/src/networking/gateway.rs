//! Gateway (networking.istio.io): servers exposed by a gateway workload.
//!
//! PLACEHOLDER: the types below are empty until this module is written.

use serde::{Deserialize, Serialize};

use crate::path::FieldPath;
use crate::validation::{Context, Problems, Validate};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gateway {}

impl Validate for Gateway {
    fn validate(&self, _cx: &Context<'_>, _path: &FieldPath, _problems: &mut Problems) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerTlsSettings {}

impl Validate for ServerTlsSettings {
    fn validate(&self, _cx: &Context<'_>, _path: &FieldPath, _problems: &mut Problems) {}
}
