//! `foundry/catalog/list`: the release catalog as instances see it: every release, and what `latest` and each
//! generation channel resolve to.

use crate::error::InputError;
use crate::rules::versions::Catalog;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use crate::rules::versions::ReleaseChannel;

/// The input of `foundry/catalog/list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogCall {
    /// An operator's catalog (`null`: the shipped one).
    #[serde(default)]
    pub catalog: Value,
}

/// The catalog as instances see it: every release, and what `latest` and each channel resolve to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogListing {
    /// Image repository.
    pub image: String,
    /// Releases, newest first: `[version, channel]`.
    pub releases: Vec<(String, ReleaseChannel)>,
    /// What `latest` resolves to.
    pub latest: Option<String>,
    /// What each generation channel (`13.x`) resolves to.
    pub channels: BTreeMap<String, String>,
}

/// Lists a catalog (`foundry/catalog/list`).
pub fn list(call: &CatalogCall) -> Result<CatalogListing, Vec<InputError>> {
    let catalog = Catalog::load(&call.catalog).map_err(|e| vec![e])?;
    let mut channels = BTreeMap::new();
    for (r, _) in &catalog.releases {
        if let Some(newest) = catalog.newest_stable(|x| x.generation == r.generation) {
            channels.insert(format!("{}.x", r.generation), newest.to_string());
        }
    }
    Ok(CatalogListing {
        image: catalog.image.clone(),
        releases: catalog.releases.iter().rev().map(|(r, c)| (r.to_string(), *c)).collect(),
        latest: catalog.newest_stable(|_| true).map(|r| r.to_string()),
        channels,
    })
}
