//! License controls over instances: which instances a license admits, and what they inherit from it.
//!
//! With `restrictions.maxInstances`, the oldest instances (by creation time, then name; an instance without a
//! creation time, as in files, counts as the newest) are admitted and the rest refused. Both the license's routing
//! and each instance's workflow use this one function, so a refused instance gets neither a workload nor an
//! active route.

use crate::time::Timestamp;
use std::collections::BTreeSet;

/// The names of the admitted instances among `instances` (name, creation time) of one license.
pub fn admitted<'a>(
    instances: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    max: Option<u32>,
) -> BTreeSet<String> {
    let mut order: Vec<(Option<Timestamp>, &str)> =
        instances.into_iter().map(|(name, created)| (created.and_then(|t| Timestamp::parse(t).ok()), name)).collect();
    // Known creation times first, oldest first; then the rest; ties by name.
    order.sort_by(|(ta, na), (tb, nb)| match (ta, tb) {
        (Some(a), Some(b)) => a.cmp(b).then(na.cmp(nb)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => na.cmp(nb),
    });
    let limit = max.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
    order.into_iter().take(limit).map(|(_, n)| n.to_owned()).collect()
}
