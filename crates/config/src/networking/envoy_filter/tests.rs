//! Unit tests for EnvoyFilter validation.
