//! ProxyConfig (networking.istio.io/v1beta1): per-workload proxy settings.
//!
//! PLACEHOLDER: the types below are empty until this module is written.

use serde::{Deserialize, Serialize};

use crate::path::FieldPath;
use crate::validation::{Context, Problems, Validate};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyConfig {}

impl Validate for ProxyConfig {
    fn validate(&self, _cx: &Context<'_>, _path: &FieldPath, _problems: &mut Problems) {}
}
