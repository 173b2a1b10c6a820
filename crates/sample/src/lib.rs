//! `ironmesh-sample`: the sample applications the seeds' scenarios run.
//!
//! Owns: an httpbin-like server, the bookinfo roles (productpage, details, reviews
//! v1/v2/v3, ratings) that call each other and report their version, a static page
//! server (nginx's welcome page) and `sleep`; shipped as the `ironmesh-sample` binary.
//! The library part is only the role model and the mapping from well-known container
//! images to roles, so the local runtime (`ironmesh up`) can run the seeds' manifests
//! unchanged.
//!
//! Must not: depend on any mesh crate; the samples are plain applications.

#![forbid(unsafe_code)]

mod images;

pub use images::{command_for_image, role_for_image};

use std::fmt;
use std::str::FromStr;

/// One application the `ironmesh-sample` binary can run (its first argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Httpbin,
    Static,
    Productpage,
    Details,
    Reviews,
    Ratings,
    Sleep,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Httpbin,
        Role::Static,
        Role::Productpage,
        Role::Details,
        Role::Reviews,
        Role::Ratings,
        Role::Sleep,
    ];

    /// The subcommand name of the binary.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Httpbin => "httpbin",
            Role::Static => "static",
            Role::Productpage => "productpage",
            Role::Details => "details",
            Role::Reviews => "reviews",
            Role::Ratings => "ratings",
            Role::Sleep => "sleep",
        }
    }

    /// The port the role listens on without `--port`, the same as the image it stands
    /// in for (`None` for `sleep`, which does not listen).
    pub fn default_port(self) -> Option<u16> {
        match self {
            Role::Httpbin | Role::Static => Some(80),
            Role::Productpage | Role::Details | Role::Reviews | Role::Ratings => Some(9080),
            Role::Sleep => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown sample role {0:?}; use one of httpbin, static, productpage, details, reviews, ratings, sleep")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}
