//! Unit tests for Sidecar validation.
