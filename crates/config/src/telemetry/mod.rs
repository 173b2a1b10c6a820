//! telemetry.istio.io: v1 and v1alpha1 share one schema.

#[allow(clippy::module_inception)]
pub mod telemetry;

pub use telemetry::Telemetry;
