//! extensions.istio.io/v1alpha1.

pub mod wasm_plugin;

pub use wasm_plugin::WasmPlugin;
