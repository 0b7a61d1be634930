//! Helpers shared by the integration tests (from `sgvlm-testdata`).
#![allow(unused_imports)]

pub use sgvlm_testdata::{oracle_rows, shared_dir};
