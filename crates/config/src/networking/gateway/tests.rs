//! Unit tests for Gateway validation.
