//! Cross-crate integration tests live beside this crate as `[[test]]` targets.
