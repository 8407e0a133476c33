//! The platform's limits: which instances a license admits, and how much one call may carry.
//!
//! With `restrictions.maxInstances`, the license's active instance is admitted first (lowering the limit never
//! evicts the instance players are on), then the oldest (by creation time, then name; an instance without a
//! creation time, as in files, counts as the newest), and the rest are refused. Both the license's routing
//! and each instance's workflow use this one function, so a refused instance gets neither a workload nor an
//! active route.
//!
//! The size limits bound time and memory in every host, whatever a caller sends.

use crate::time::Timestamp;
use std::collections::BTreeSet;

/// Most instances (of all licenses) evaluated in one routing decision.
pub(crate) const MAX_INSTANCES: usize = 10_000;
/// Most objects in one preview.
pub const MAX_PREVIEW_OBJECTS: usize = 2 * MAX_INSTANCES;
/// Most objects (licenses, instances and requests together) in one standby page or activation call.
pub(crate) const MAX_STANDBY_OBJECTS: usize = 30_000;

/// The names of the admitted instances among `instances` (name, creation time) of one license whose effective
/// active instance is `active`.
pub(crate) fn admitted<'a>(
    instances: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    max: Option<u32>,
    active: Option<&str>,
) -> BTreeSet<String> {
    let mut order: Vec<(Option<Timestamp>, &str)> =
        instances.into_iter().map(|(name, created)| (created.and_then(|t| Timestamp::parse(t).ok()), name)).collect();
    // The active instance first; then known creation times, oldest first; then the rest; ties by name.
    order.sort_by(|(ta, na), (tb, nb)| {
        let later = |n: &str| Some(n) != active;
        later(na).cmp(&later(nb)).then_with(|| match (ta, tb) {
            (Some(a), Some(b)) => a.cmp(b).then(na.cmp(nb)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => na.cmp(nb),
        })
    });
    let limit = max.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
    order.into_iter().take(limit).map(|(_, n)| n.to_owned()).collect()
}
