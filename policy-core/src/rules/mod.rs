//! The decisions of the platform, by topic. Nothing here renders manifests or statuses (that is `render`) or
//! knows the shape of a call (that is `api`); each rule takes the parts it reads.

pub(crate) mod activation;
pub(crate) mod admission;
pub(crate) mod controls;
pub(crate) mod foundry;
pub(crate) mod instance;
pub(crate) mod limits;
pub(crate) mod migrate;
pub(crate) mod monitor;
pub(crate) mod routing;
pub(crate) mod versions;
pub(crate) mod volumes;
