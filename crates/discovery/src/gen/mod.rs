//! Envoy v3 resource builders, one module per concern. [`crate::generate`] picks the
//! ones a proxy needs.

pub mod cds;
pub mod eds;
pub mod filters;
pub mod gateway;
pub mod grpc;
pub mod inbound;
pub mod l4_route;
pub mod lds;
pub mod nds;
pub mod policy;
pub mod rds;
pub mod route;
pub mod route_match;
pub mod sds;
pub mod tls;
pub mod util;

#[cfg(test)]
mod tests;
