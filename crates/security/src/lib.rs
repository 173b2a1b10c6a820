//! `ironmesh-security`: identities and certificates.
//!
//! Owns: SPIFFE identities (`spiffe://<trust-domain>/ns/<ns>/sa/<sa>`), the CA
//! (root/intermediate, plug-in `cacerts`), the CSR protocol
//! (`istio.v1.auth.IstioCertificateService/CreateCertificate`), certificate rotation,
//! rustls configuration builders, and JWT/JWKS verification.
//!
//! Must not: know about routing.
//!
//! Built by the security issue; today the crate holds only this contract.

#![forbid(unsafe_code)]
