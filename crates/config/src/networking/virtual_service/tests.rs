//! Unit tests for VirtualService validation.
