//! `ironmesh-sample`: the sample applications the seeds' scenarios run.
//!
//! Owns: an httpbin-like server (`/headers`, `/status/{code}`, `/delay/{s}`, `/get`,
//! `/ip`), the bookinfo roles (productpage, details, reviews v1/v2/v3, ratings) that
//! call each other and report their version, a static page server and `sleep`; shipped
//! as the `ironmesh-sample` binary by the local-mesh issue.
//!
//! Must not: depend on any mesh crate; the samples are plain applications.
//!
//! Today the crate holds only this contract.

#![forbid(unsafe_code)]
