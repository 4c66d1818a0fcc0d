//! A deterministic synthetic corpus shaped like a content site (placeholder).
