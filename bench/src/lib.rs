//! The benchmark workload and the Rego version of the routing rules, shared by the bench binary and the test that
//! holds the Rego to the case corpus.
//!
//! Nothing here is used by the policy or the host: this crate only measures and compares them.

pub mod facts;
pub mod rego;
pub mod workload;
