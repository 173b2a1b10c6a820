//! `ironmesh-testkit`: test support, used only as a dev-dependency.
//!
//! Owns: helpers shared by the integration tests of every crate — locating the
//! workspace's built binaries, running them with captured output, temporary manifest
//! trees; later a fake control plane, a fake CA, echo servers and the network-namespace
//! harness.
//!
//! Must not: ship in any binary.

#![forbid(unsafe_code)]
