//! The standby page's view of the cluster: licenses, instances and activation requests, kept up to date by one
//! watch per kind and bounded per namespace, so that no tenant can make the service forget, or stop serving,
//! another tenant's pages.
//!
//! - [`watch`] runs kube-runtime's `watcher` (list, then watch from its resourceVersion, relisting when the API
//!   says the version is gone) with backoff, and feeds every object, trimmed ([`trim`]: no `managedFields`, no
//!   annotations but the platform's, stored as compact JSON text), into the [`Store`]. A failed or slow API keeps
//!   the last state served; nothing re-lists per page view. A relist that runs past its bounds (items or time,
//!   for instance an API that never stops paging) is abandoned and retried later, keeping the last state.
//! - The [`Store`] holds, per kind and namespace, at most [`StoreLimits::objects`] objects and
//!   [`StoreLimits::bytes`] bytes, and at most [`StoreLimits::total_bytes`] of the kind over all namespaces. A namespace over a bound
//!   keeps only the names and sizes of that kind (to notice when it is back under), and its hosts answer 503 with
//!   a log line saying why; once it is back under, the kind is listed again.
//! - [`Store::host`] gives what one page view needs and nothing more: the licenses claiming the host's base
//!   domain (an index by base domain, read through `LicenseSpec::base_domain`), their instances and, with
//!   activation, their requests.
//! - Writes the service makes itself are applied at once ([`Store::apply`], [`Store::remove`]), so the next page
//!   view sees them before the watch does.
//!
//! The store never holds a lock across I/O or a policy evaluation: readers copy `Arc`s out and let go.

use crate::kube::{KubeClient, Resource, scrub};
use futures_util::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use policy_core::model::{API_VERSION, FoundryLicense};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The kinds the store holds, in the order of [`Store`]'s tables.
pub const KINDS: [Resource; 3] = [Resource::License, Resource::Instance, Resource::ActivationRequest];

/// Annotations kept on stored objects (the policy reads `foundry.platform/scheduled-delete-at`).
const KEPT_ANNOTATIONS: &str = "foundry.platform/";

/// Bounds of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Objects of one kind held per namespace.
    pub objects: usize,
    /// Bytes (compact JSON) of one kind held per namespace.
    pub bytes: usize,
    /// Bytes of one kind held over all namespaces (the namespace whose object would pass it is the one over).
    pub total_bytes: usize,
    /// Objects of one kind a (re)list may deliver before it is abandoned.
    pub list_items: usize,
    /// Longest time a (re)list may take before it is abandoned.
    pub list_deadline: Duration,
    /// Page size of the lists.
    pub page_size: u32,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            objects: 1_000,
            bytes: 2 << 20,
            total_bytes: 16 << 20,
            list_items: 200_000,
            list_deadline: Duration::from_secs(120),
            page_size: 250,
        }
    }
}

/// A stored object: its compact JSON and the one field that links it (a license's base domain; an instance's or
/// a request's license).
#[derive(Debug, Clone)]
struct Entry {
    raw: Arc<RawValue>,
    link: Box<str>,
    version: Option<u64>,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.raw.get().len()
    }
}

/// One kind in one namespace.
#[derive(Debug, Clone)]
enum Bucket {
    /// Every object, by name.
    Held { entries: BTreeMap<Box<str>, Entry>, bytes: usize },
    /// Over a bound: only a hash and the size of each object, to notice when it is back under; licenses keep their
    /// base domain so their hosts answer 503 rather than 404.
    Over { sizes: HashMap<u64, (usize, Option<Box<str>>)>, bytes: usize, reason: &'static str },
}

impl Default for Bucket {
    fn default() -> Self {
        Self::Held { entries: BTreeMap::new(), bytes: 0 }
    }
}

impl Bucket {
    fn count(&self) -> usize {
        match self {
            Self::Held { entries, .. } => entries.len(),
            Self::Over { sizes, .. } => sizes.len(),
        }
    }
}

fn hash_name(name: &str) -> u64 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

/// Licenses by base domain: `(namespace, name)` of each license claiming it.
type DomainIndex = HashMap<Box<str>, BTreeSet<(Box<str>, Box<str>)>>;

/// One kind across namespaces.
#[derive(Debug, Clone, Default)]
struct Table {
    namespaces: HashMap<Box<str>, Bucket>,
    bytes: usize,
}

/// What the store holds; replaced per kind when a relist completes.
#[derive(Debug, Default)]
struct Inner {
    tables: [Table; 3],
    /// Each kind has been listed completely at least once.
    synced: [bool; 3],
    /// Licenses by base domain: `(namespace, name)`.
    domains: DomainIndex,
    /// Kinds to list again (a namespace came back under its bound).
    relist: [bool; 3],
}

fn index_of(kind: Resource) -> usize {
    match kind {
        Resource::License => 0,
        Resource::Instance => 1,
        Resource::ActivationRequest => 2,
    }
}

/// A stored object as the policy reads it (serializes as the JSON it holds).
#[derive(Debug, Clone)]
pub struct Raw(Arc<RawValue>);

impl Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl Raw {
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

/// What one host's page needs.
#[derive(Debug, Clone, Default)]
pub struct HostObjects {
    /// Every license claiming the host's base domain.
    pub licenses: Vec<Raw>,
    /// Their instances.
    pub instances: Vec<Raw>,
    /// Their activation requests (with activation only).
    pub requests: Vec<Raw>,
}

/// What the store can say about a host.
#[derive(Debug)]
pub enum HostView {
    /// No license claims the host's base domain.
    Unknown,
    /// The objects cannot be given: the kinds are not listed yet, or a namespace is over its bounds.
    Unavailable(String),
    /// The objects.
    Ready(HostObjects),
}

/// One license with its instances and requests, for a review.
#[derive(Debug, Clone)]
pub struct LicenseObjects {
    /// The license's namespace.
    pub namespace: String,
    /// The license's name.
    pub name: String,
    /// The license.
    pub license: Raw,
    /// Its instances.
    pub instances: Vec<Raw>,
    /// Its activation requests.
    pub requests: Vec<Raw>,
}

/// Counts, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Objects held.
    pub objects: usize,
    /// Bytes held.
    pub bytes: usize,
    /// Namespace buckets over a bound.
    pub over: usize,
}

/// The service's view of the cluster (see the module documentation).
#[derive(Debug)]
pub struct Store {
    inner: RwLock<Inner>,
    limits: StoreLimits,
    activation: bool,
}

/// The key facts of a trimmed object.
struct Trimmed {
    namespace: Box<str>,
    name: Box<str>,
    entry: Entry,
}

/// Trims an object as read from the API to what the policy reads: `apiVersion`, `kind`, `metadata` (name,
/// namespace, uid, resourceVersion, creation and deletion times, generation, and the platform's annotations),
/// `spec` and `status`. `None` for an object without a name or namespace.
pub fn trim(kind: Resource, object: &Value) -> Option<Value> {
    let meta = object.get("metadata")?;
    let mut m = Map::new();
    for key in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"] {
        if let Some(v) = meta.get(key).filter(|v| !v.is_null()) {
            m.insert(key.into(), v.clone());
        }
    }
    m.get("name").and_then(Value::as_str)?;
    m.get("namespace").and_then(Value::as_str)?;
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let kept: Map<String, Value> = annotations
            .iter()
            .filter(|(k, _)| k.starts_with(KEPT_ANNOTATIONS))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !kept.is_empty() {
            m.insert("annotations".into(), Value::Object(kept));
        }
    }
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::from(API_VERSION));
    out.insert("kind".into(), Value::from(kind.kind()));
    out.insert("metadata".into(), Value::Object(m));
    for key in ["spec", "status"] {
        if let Some(v) = object.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    Some(Value::Object(out))
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn prepare(kind: Resource, object: &Value) -> Option<Trimmed> {
    let trimmed = trim(kind, object)?;
    let namespace: Box<str> = text(&trimmed, "/metadata/namespace")?.into();
    let name: Box<str> = text(&trimmed, "/metadata/name")?.into();
    let version = text(&trimmed, "/metadata/resourceVersion").and_then(|v| v.parse().ok());
    let link: Box<str> = match kind {
        Resource::License => serde_json::from_value::<FoundryLicense>(trimmed.clone())
            .ok()
            .and_then(|l| l.spec.base_domain().map(Into::into))
            .unwrap_or_default(),
        Resource::Instance | Resource::ActivationRequest => {
            text(&trimmed, "/spec/licenseRef/name").unwrap_or_default().into()
        }
    };
    let raw = serde_json::value::to_raw_value(&trimmed).ok()?;
    Some(Trimmed { namespace, name, entry: Entry { raw: Arc::from(raw), link, version } })
}

impl Inner {
    fn add_domain(&mut self, domain: &str, namespace: &str, name: &str) {
        if !domain.is_empty() {
            self.domains.entry(domain.into()).or_default().insert((namespace.into(), name.into()));
        }
    }

    fn drop_domain(&mut self, domain: &str, namespace: &str, name: &str) {
        if let Some(set) = self.domains.get_mut(domain) {
            set.remove(&(Box::from(namespace), Box::from(name)));
            if set.is_empty() {
                self.domains.remove(domain);
            }
        }
    }

    /// Rebuilds the domain index from the license table.
    fn reindex(&mut self) {
        let mut domains = DomainIndex::new();
        let mut add = |domain: &str, ns: &str, name: &str| {
            if !domain.is_empty() {
                domains.entry(domain.into()).or_default().insert((ns.into(), name.into()));
            }
        };
        for (ns, bucket) in &self.tables[0].namespaces {
            match bucket {
                Bucket::Held { entries, .. } => {
                    for (name, e) in entries {
                        add(&e.link, ns, name);
                    }
                }
                Bucket::Over { sizes, .. } => {
                    for (hash, (_, domain)) in sizes {
                        if let Some(d) = domain {
                            add(d, ns, &format!("#{hash:x}"));
                        }
                    }
                }
            }
        }
        self.domains = domains;
    }
}

/// What [`put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Put {
    /// The object is held.
    Held,
    /// An older copy than the one held: ignored.
    Stale,
    /// The namespace's bucket is over a bound (newly or still), for this reason.
    Over(&'static str),
}

/// Applies one object to a table within `limits`.
fn put(table: &mut Table, limits: &StoreLimits, t: Trimmed) -> Put {
    let Trimmed { namespace, name, entry } = t;
    let size = entry.bytes();
    let bucket = table.namespaces.entry(namespace).or_default();
    match bucket {
        Bucket::Held { entries, bytes } => {
            let old = entries.get(&name).map(Entry::bytes).unwrap_or(0);
            let grows = size.saturating_sub(old);
            let count = entries.len() + usize::from(!entries.contains_key(&name));
            let reason = if count > limits.objects {
                Some("too many objects")
            } else if *bytes - old + size > limits.bytes {
                Some("too many bytes")
            } else if table.bytes + grows > limits.total_bytes {
                Some("the store is full")
            } else {
                None
            };
            match reason {
                None => {
                    if let Some(previous) = entries.get(&name)
                        && let (Some(a), Some(b)) = (previous.version, entry.version)
                        && b < a
                    {
                        // An older copy (a write's answer after the watch brought a newer one): keep the newer.
                        return Put::Stale;
                    }
                    *bytes = *bytes - old + size;
                    table.bytes = table.bytes - old + size;
                    entries.insert(name, entry);
                    Put::Held
                }
                Some(reason) => {
                    // Keep only names and sizes from now on; the objects are dropped.
                    let mut sizes: HashMap<u64, (usize, Option<Box<str>>)> = entries
                        .iter()
                        .map(|(n, e)| (hash_name(n), (e.bytes(), (!e.link.is_empty()).then(|| e.link.clone()))))
                        .collect();
                    sizes.insert(hash_name(&name), (size, (!entry.link.is_empty()).then(|| entry.link.clone())));
                    let total: usize = sizes.values().map(|(s, _)| s).sum();
                    table.bytes -= *bytes;
                    *bucket = Bucket::Over { sizes, bytes: total, reason };
                    Put::Over(reason)
                }
            }
        }
        Bucket::Over { sizes, bytes, reason } => {
            let old = sizes.get(&hash_name(&name)).map(|(s, _)| *s).unwrap_or(0);
            *bytes = *bytes - old + size;
            // The names of a namespace over its bound are kept up to ten times the bound; past that only the
            // count of what is removed matters, and a relist sets it right.
            if sizes.len() < limits.objects.saturating_mul(10) || sizes.contains_key(&hash_name(&name)) {
                sizes.insert(hash_name(&name), (size, (!entry.link.is_empty()).then(|| entry.link.clone())));
            }
            Put::Over(reason)
        }
    }
}

/// Removes one object; returns whether its namespace's bucket came back under its bounds (it must be listed
/// again to hold the objects).
fn take(table: &mut Table, limits: &StoreLimits, namespace: &str, name: &str) -> (Option<Entry>, bool) {
    let Some(bucket) = table.namespaces.get_mut(namespace) else { return (None, false) };
    let result = match bucket {
        Bucket::Held { entries, bytes } => {
            let removed = entries.remove(name);
            if let Some(e) = &removed {
                *bytes -= e.bytes();
                table.bytes -= e.bytes();
            }
            (removed, false)
        }
        Bucket::Over { sizes, bytes, .. } => {
            if let Some((size, _)) = sizes.remove(&hash_name(name)) {
                *bytes = bytes.saturating_sub(size);
            }
            let under = sizes.len() <= limits.objects && *bytes <= limits.bytes;
            (None, under)
        }
    };
    if bucket.count() == 0 && matches!(bucket, Bucket::Held { .. }) {
        table.namespaces.remove(namespace);
    }
    result
}

impl Store {
    /// An empty store; `activation`: requests are read too.
    pub fn new(limits: StoreLimits, activation: bool) -> Self {
        Self { inner: RwLock::new(Inner::default()), limits, activation }
    }

    /// The kinds this store watches.
    pub fn kinds(&self) -> &'static [Resource] {
        if self.activation { &KINDS } else { &KINDS[..2] }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies an object as the API server holds it (a watch event, or the answer to a write of ours).
    pub fn apply(&self, kind: Resource, object: &Value) {
        let Some(t) = prepare(kind, object) else { return };
        let (namespace, name) = (t.namespace.to_string(), t.name.to_string());
        let link = t.entry.link.to_string();
        let mut inner = self.write();
        let i = index_of(kind);
        let previous = match inner.tables.get(i).and_then(|t| t.namespaces.get(namespace.as_str())) {
            Some(Bucket::Held { entries, .. }) => entries.get(name.as_str()).map(|e| e.link.to_string()),
            _ => None,
        };
        let limits = self.limits;
        let Some(table) = inner.tables.get_mut(i) else { return };
        let was_over = matches!(table.namespaces.get(namespace.as_str()), Some(Bucket::Over { .. }));
        let outcome = put(table, &limits, t);
        if let Put::Over(reason) = outcome
            && !was_over
        {
            tracing::error!(
                namespace = %namespace,
                kind = kind.kind(),
                reason,
                objects = limits.objects,
                bytes = limits.bytes,
                "a namespace is over the standby page's bounds: its pages answer 503 until it is back under"
            );
        }
        if kind == Resource::License {
            match outcome {
                Put::Stale => {}
                Put::Held => {
                    if let Some(old) = previous {
                        inner.drop_domain(&old, &namespace, &name);
                    }
                    inner.add_domain(&link, &namespace, &name);
                }
                Put::Over(_) => inner.reindex(),
            }
        }
    }

    /// Removes an object (a watch event, or a deletion of ours).
    pub fn remove(&self, kind: Resource, namespace: &str, name: &str) {
        let mut inner = self.write();
        let i = index_of(kind);
        let limits = self.limits;
        let Some(table) = inner.tables.get_mut(i) else { return };
        let (removed, under) = take(table, &limits, namespace, name);
        if under {
            tracing::info!(namespace, kind = kind.kind(), "a namespace is back under the standby page's bounds");
            if let Some(flag) = inner.relist.get_mut(i) {
                *flag = true;
            }
        }
        if kind == Resource::License {
            match removed {
                Some(e) => inner.drop_domain(&e.link, namespace, name),
                None => inner.reindex(),
            }
        }
    }

    /// Replaces everything held of `kind` with a complete list (the end of a (re)list).
    fn replace(&self, kind: Resource, table: Table) {
        let mut inner = self.write();
        let i = index_of(kind);
        if let Some(slot) = inner.tables.get_mut(i) {
            *slot = table;
        }
        if let Some(s) = inner.synced.get_mut(i) {
            *s = true;
        }
        if let Some(flag) = inner.relist.get_mut(i) {
            *flag = false;
        }
        if kind == Resource::License {
            inner.reindex();
        }
    }

    /// Whether `kind` should be listed again (a namespace came back under its bounds).
    fn wants_relist(&self, kind: Resource) -> bool {
        self.read().relist.get(index_of(kind)).copied().unwrap_or(false)
    }

    /// Every kind has been listed at least once.
    pub fn synced(&self) -> bool {
        let inner = self.read();
        self.kinds().iter().all(|k| inner.synced.get(index_of(*k)).copied().unwrap_or(false))
    }

    /// What the page of a host under `base_domain` needs (see [`HostView`]).
    pub fn host(&self, base_domain: &str) -> HostView {
        let inner = self.read();
        if !self.kinds().iter().all(|k| inner.synced.get(index_of(*k)).copied().unwrap_or(false)) {
            return HostView::Unavailable("the cluster has not been read yet".into());
        }
        let Some(claimants) = inner.domains.get(base_domain) else { return HostView::Unknown };
        let mut out = HostObjects::default();
        for (namespace, name) in claimants {
            for kind in self.kinds() {
                if let Some(Bucket::Over { reason, .. }) =
                    inner.tables.get(index_of(*kind)).and_then(|t| t.namespaces.get(namespace))
                {
                    return HostView::Unavailable(format!(
                        "namespace `{namespace}` is over the bounds of {} ({reason})",
                        kind.qualified()
                    ));
                }
            }
            let bucket =
                |kind: Resource| match inner.tables.get(index_of(kind)).and_then(|t| t.namespaces.get(namespace)) {
                    Some(Bucket::Held { entries, .. }) => Some(entries),
                    _ => None,
                };
            if let Some(license) = bucket(Resource::License).and_then(|e| e.get(name)) {
                out.licenses.push(Raw(license.raw.clone()));
            }
            let linked = |kind: Resource| -> Vec<Raw> {
                bucket(kind)
                    .into_iter()
                    .flat_map(|entries| entries.values())
                    .filter(|e| *e.link == **name)
                    .map(|e| Raw(e.raw.clone()))
                    .collect()
            };
            out.instances.extend(linked(Resource::Instance));
            if self.activation {
                out.requests.extend(linked(Resource::ActivationRequest));
            }
        }
        HostView::Ready(out)
    }

    /// Every license that has activation requests, with its instances and requests, in namespace and name order.
    /// Licenses in a namespace over its bounds are left out (their requests wait until it is back under).
    pub fn licenses_with_requests(&self) -> Vec<LicenseObjects> {
        let inner = self.read();
        if !self.activation || !self.synced_locked(&inner) {
            return Vec::new();
        }
        // `Some(None)`: no object of the kind in the namespace; `None`: the namespace is over its bounds.
        let held = |kind: Resource, ns: &str| match inner.tables.get(index_of(kind)).and_then(|t| t.namespaces.get(ns))
        {
            Some(Bucket::Held { entries, .. }) => Some(Some(entries)),
            Some(Bucket::Over { .. }) => None,
            None => Some(None),
        };
        let empty = BTreeMap::new();
        let mut out = Vec::new();
        let mut namespaces: Vec<&Box<str>> = inner
            .tables
            .get(index_of(Resource::ActivationRequest))
            .into_iter()
            .flat_map(|t| t.namespaces.keys())
            .collect();
        namespaces.sort();
        for ns in namespaces {
            let (Some(Some(requests)), Some(Some(licenses)), Some(instances)) =
                (held(Resource::ActivationRequest, ns), held(Resource::License, ns), held(Resource::Instance, ns))
            else {
                continue;
            };
            let instances = instances.unwrap_or(&empty);
            let wanted: BTreeSet<&str> = requests.values().map(|e| &*e.link).collect();
            for name in wanted {
                let Some(license) = licenses.get(name) else { continue };
                let of = |entries: &BTreeMap<Box<str>, Entry>| -> Vec<Raw> {
                    entries.values().filter(|e| &*e.link == name).map(|e| Raw(e.raw.clone())).collect()
                };
                out.push(LicenseObjects {
                    namespace: ns.to_string(),
                    name: name.to_owned(),
                    license: Raw(license.raw.clone()),
                    instances: of(instances),
                    requests: of(requests),
                });
            }
        }
        out
    }

    fn synced_locked(&self, inner: &Inner) -> bool {
        self.kinds().iter().all(|k| inner.synced.get(index_of(*k)).copied().unwrap_or(false))
    }

    /// Counts, for logs and tests.
    pub fn stats(&self) -> StoreStats {
        let inner = self.read();
        let mut stats = StoreStats::default();
        for table in &inner.tables {
            stats.bytes += table.bytes;
            for bucket in table.namespaces.values() {
                match bucket {
                    Bucket::Held { entries, .. } => stats.objects += entries.len(),
                    Bucket::Over { .. } => stats.over += 1,
                }
            }
        }
        stats
    }
}

/// A (re)list in progress: the table being built, with its own bounds.
struct Relist {
    table: Table,
    items: usize,
    started: Instant,
}

/// Keeps `kind` of `store` up to date until the process ends (see the module documentation).
pub async fn watch(store: Arc<Store>, api: KubeClient, kind: Resource) {
    let limits = store.limits;
    // The watch ends on the server after 45 s without events; a read that waits a minute means a dead connection.
    let client = match api.watch_client(Duration::from_secs(60)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(kind = kind.kind(), error = %e, "cannot make a client to watch with");
            return;
        }
    };
    let resource = kind.api_resource();
    let mut pause = Duration::from_secs(1);
    let mut last_start: Option<Instant> = None;
    loop {
        // A namespace going back and forth across its bound asks for a list each time: at most one every 30 s.
        if let Some(wait) = last_start.and_then(|t| Duration::from_secs(30).checked_sub(t.elapsed())) {
            tokio::time::sleep(wait).await;
        }
        last_start = Some(Instant::now());
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let config = watcher::Config::default().page_size(limits.page_size).timeout(45);
        let mut stream = std::pin::pin!(watcher::watcher(api, config).default_backoff());
        let mut relist: Option<Relist> = None;
        let mut abandoned = None;
        let mut last_error: Option<Instant> = None;
        loop {
            // While a (re)list runs, its deadline is a timer of its own: an API that answers empty pages for
            // ever delivers no event to check it on.
            let next = match relist.as_ref() {
                Some(r) => {
                    let left = limits.list_deadline.saturating_sub(r.started.elapsed());
                    match tokio::time::timeout(left, stream.next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            abandoned = Some(format!("longer than {:?}", limits.list_deadline));
                            break;
                        }
                    }
                }
                None => stream.next().await,
            };
            let Some(event) = next else { break };
            match event {
                Ok(Event::Init) => relist = Some(Relist { table: Table::default(), items: 0, started: Instant::now() }),
                Ok(Event::InitApply(object)) => {
                    let Some(r) = relist.as_mut() else { continue };
                    r.items += 1;
                    if r.items > limits.list_items {
                        abandoned = Some(format!("more than {} objects", limits.list_items));
                        break;
                    }
                    if r.started.elapsed() > limits.list_deadline {
                        abandoned = Some(format!("longer than {:?}", limits.list_deadline));
                        break;
                    }
                    if let Some(t) = serde_json::to_value(&object).ok().and_then(|v| prepare(kind, &v)) {
                        put(&mut r.table, &limits, t);
                    }
                }
                Ok(Event::InitDone) => {
                    if let Some(r) = relist.take() {
                        let over: Vec<String> = r
                            .table
                            .namespaces
                            .iter()
                            .filter_map(|(ns, b)| match b {
                                Bucket::Over { reason, .. } => Some(format!("{ns} ({reason})")),
                                Bucket::Held { .. } => None,
                            })
                            .collect();
                        if !over.is_empty() {
                            tracing::error!(
                                kind = kind.kind(),
                                namespaces = %over.join(", "),
                                "namespaces over the standby page's bounds: their pages answer 503 until they are back under"
                            );
                        }
                        tracing::info!(kind = kind.kind(), objects = r.items, "listed");
                        store.replace(kind, r.table);
                        pause = Duration::from_secs(1);
                    }
                }
                Ok(Event::Apply(object)) => {
                    if let Ok(v) = serde_json::to_value(&object) {
                        store.apply(kind, &v);
                    }
                    if store.wants_relist(kind) {
                        abandoned = None;
                        break;
                    }
                }
                Ok(Event::Delete(object)) => {
                    if let (Some(ns), Some(name)) =
                        (object.metadata.namespace.as_deref(), object.metadata.name.as_deref())
                    {
                        store.remove(kind, ns, name);
                    }
                    if store.wants_relist(kind) {
                        tracing::info!(kind = kind.kind(), "listing again to hold a namespace back under its bounds");
                        break;
                    }
                }
                Err(e) => {
                    // The watcher retries with backoff; say so at most every ten seconds.
                    if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(
                            kind = kind.kind(),
                            error = %scrub(&e.to_string()),
                            detail = %scrub(&root_cause(&e)),
                            "reading the cluster failed; the last state read is still served"
                        );
                        last_error = Some(Instant::now());
                    }
                }
            }
        }
        if let Some(why) = abandoned {
            let since = last_start.map_or(Duration::ZERO, |t| t.elapsed());
            let wait = pause.max(Duration::from_secs(30).saturating_sub(since));
            tracing::error!(
                kind = kind.kind(),
                reason = %why,
                retry_in_secs = wait.as_secs(),
                "a list of the cluster ran past its bounds and was abandoned; the last state read is still served"
            );
            tokio::time::sleep(wait).await;
            pause = (pause * 2).min(Duration::from_secs(300));
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use serde_json::json;

    fn license(ns: &str, name: &str, domain: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": ns, "resourceVersion": "5",
                            "managedFields": [{"manager": "kubectl"}],
                            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}",
                                            "foundry.platform/x": "y"}},
               "spec": {"gateway": {"baseDomain": domain}, "licenseSecretRef": {"name": "s", "key": "k"}}})
    }

    fn instance(ns: &str, name: &str, license: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": ns}, "spec": {"licenseRef": {"name": license}}})
    }

    fn ready(store: &Store) {
        for kind in store.kinds() {
            store.replace(*kind, Table::default());
        }
    }

    #[test]
    fn objects_are_trimmed() {
        let t = trim(Resource::License, &license("a", "l", "a.example.com")).unwrap();
        assert_eq!(t["kind"], "FoundryLicense");
        assert!(t["metadata"].get("managedFields").is_none());
        assert_eq!(t["metadata"]["annotations"], json!({"foundry.platform/x": "y"}));
        assert!(trim(Resource::License, &json!({"metadata": {"name": "x"}})).is_none(), "no namespace");
    }

    #[test]
    fn a_host_gets_only_the_licenses_of_its_domain() {
        let store = Store::new(StoreLimits::default(), false);
        ready(&store);
        store.apply(Resource::License, &license("a", "guild", "a.example.com"));
        store.apply(Resource::License, &license("b", "rivals", "b.example.com"));
        store.apply(Resource::Instance, &instance("a", "alpha", "guild"));
        store.apply(Resource::Instance, &instance("b", "beta", "rivals"));
        let HostView::Ready(objects) = store.host("a.example.com") else { panic!() };
        assert_eq!(objects.licenses.len(), 1);
        assert_eq!(objects.instances.len(), 1);
        assert!(objects.instances[0].get().contains("alpha"));
        assert!(matches!(store.host("c.example.com"), HostView::Unknown));
        // A license moving to another domain leaves the old one.
        store.apply(Resource::License, &license("a", "guild", "c.example.com"));
        assert!(matches!(store.host("a.example.com"), HostView::Unknown));
        assert!(matches!(store.host("c.example.com"), HostView::Ready(_)));
        store.remove(Resource::License, "a", "guild");
        assert!(matches!(store.host("c.example.com"), HostView::Unknown));
    }

    #[test]
    fn a_namespace_over_its_bound_only_blanks_its_own_hosts() {
        let limits = StoreLimits { objects: 10, ..StoreLimits::default() };
        let store = Store::new(limits, false);
        ready(&store);
        store.apply(Resource::License, &license("a", "guild", "a.example.com"));
        store.apply(Resource::License, &license("b", "rivals", "b.example.com"));
        for i in 0..11 {
            store.apply(Resource::Instance, &instance("b", &format!("i{i}"), "rivals"));
        }
        store.apply(Resource::Instance, &instance("a", "alpha", "guild"));
        assert!(matches!(store.host("a.example.com"), HostView::Ready(_)));
        let HostView::Unavailable(why) = store.host("b.example.com") else { panic!() };
        assert!(why.contains("`b`"), "{why}");
        assert_eq!(store.stats().over, 1);
        store.remove(Resource::Instance, "b", "i0");
        assert!(store.wants_relist(Resource::Instance), "back under: list again to hold the objects");
    }

    #[test]
    fn the_store_is_bounded_in_bytes() {
        let limits = StoreLimits { bytes: 2_000, ..StoreLimits::default() };
        let store = Store::new(limits, false);
        ready(&store);
        store.apply(Resource::License, &license("a", "guild", "a.example.com"));
        let mut big = instance("a", "alpha", "guild");
        big["spec"]["padding"] = json!("x".repeat(5_000));
        store.apply(Resource::Instance, &big);
        assert!(matches!(store.host("a.example.com"), HostView::Unavailable(_)));
        assert!(store.stats().bytes < 2_000, "{:?}", store.stats());
    }

    #[test]
    fn an_older_copy_does_not_replace_a_newer_one() {
        let store = Store::new(StoreLimits::default(), false);
        ready(&store);
        let mut l = license("a", "guild", "a.example.com");
        l["metadata"]["resourceVersion"] = json!("9");
        store.apply(Resource::License, &l);
        l["metadata"]["resourceVersion"] = json!("8");
        l["spec"]["gateway"]["baseDomain"] = json!("old.example.com");
        store.apply(Resource::License, &l);
        assert!(matches!(store.host("a.example.com"), HostView::Ready(_)));
    }
}
