//! Foundry version selection: the release catalog, what `spec.foundryVersion` resolves to, and which version
//! changes are allowed.
//!
//! A Foundry release is `generation.build` (`13.351`); the generation is what matters for compatibility, because
//! Foundry migrates world data one way when it moves to a new generation. An instance asks for an exact release
//! (`13.351`, or `13.351.2` to pin the container image revision too), `latest` (the newest stable release), or a
//! generation channel (`13.x`). Releases come from a catalog: the one shipped in `data/foundry-releases.json`,
//! which an operator can replace or extend through the call, never from the network.
//!
//! Rules, in order: resolve against the catalog (channels take the newest stable release the license allows);
//! a channel with the `pinned` update policy keeps the release it resolved to before while its spec is
//! unchanged; moving to a newer generation needs `allowGenerationUpgrade` (an implicit move, through `latest`,
//! stays on the current generation with a warning instead); moving to an older generation is refused.

use crate::error::{InputError, ObjectRef, Rule};
use crate::model::{UpdatePolicy, Warning};
use crate::text::shorten;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The catalog shipped with the project.
const SHIPPED_CATALOG: &str = include_str!("../../data/foundry-releases.json");

/// A Foundry release, `generation.build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Release {
    /// Major generation (13, 14, ...).
    pub generation: u32,
    /// Build number.
    pub build: u32,
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.generation, self.build)
    }
}

fn number(text: &str) -> Option<u32> {
    (!text.is_empty() && text.len() <= 9 && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok())?
}

impl Release {
    /// Parses `generation.build`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (g, b) = text.split_once('.')?;
        Some(Self { generation: number(g)?, build: number(b)? })
    }
}

/// What `spec.foundryVersion` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionSpec {
    /// One release, optionally one container image revision of it.
    Exact {
        /// The release.
        release: Release,
        /// The image revision (`13.351.2` → 2).
        revision: Option<u32>,
    },
    /// The newest stable release.
    Latest,
    /// The newest stable release of a generation.
    Channel(u32),
}

impl VersionSpec {
    /// Parses `latest`, `<generation>.x`, `<generation>.<build>` or `<generation>.<build>.<revision>`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{}` is not a Foundry version: use an exact release such as `13.351` (or `13.351.0`), `latest`, or \
                 a generation channel such as `13.x`",
                shorten(text)
            )
        };
        if text == "latest" {
            return Ok(Self::Latest);
        }
        let parts: Vec<&str> = text.split('.').collect();
        match parts.as_slice() {
            [g, "x"] => number(g).map(Self::Channel).ok_or_else(bad),
            [g, b] => Ok(Self::Exact {
                release: Release { generation: number(g).ok_or_else(bad)?, build: number(b).ok_or_else(bad)? },
                revision: None,
            }),
            [g, b, r] => Ok(Self::Exact {
                release: Release { generation: number(g).ok_or_else(bad)?, build: number(b).ok_or_else(bad)? },
                revision: Some(number(r).ok_or_else(bad)?),
            }),
            _ => Err(bad()),
        }
    }
}

/// Stable releases are what channels resolve to; testing releases are only used when named exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseChannel {
    /// A stable release.
    #[default]
    Stable,
    /// A testing (pre-)release.
    Testing,
}

/// One catalog entry, as written in the catalog file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogEntry {
    version: String,
    #[serde(default)]
    channel: ReleaseChannel,
}

/// A catalog file: `{"image": ..., "releases": [...]}`; an operator's may say `"mode": "extend"` to add to the
/// shipped catalog instead of replacing it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    releases: Vec<CatalogEntry>,
}

/// The known releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Catalog {
    /// Container image repository (tags are the release, e.g. `13.351`).
    pub image: String,
    /// Releases, oldest first, without duplicates.
    pub releases: Vec<(Release, ReleaseChannel)>,
}

fn catalog_error(detail: String) -> InputError {
    InputError::Refused {
        object: ObjectRef::new("Catalog", "", "releases"),
        path: "catalog".into(),
        rule: Rule::InvalidCatalog,
        detail,
    }
}

fn parse_file(value: &Value) -> Result<CatalogFile, InputError> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| catalog_error(format!("the release catalog is not valid at `{}`: {}", e.path(), e.inner())))
}

impl Catalog {
    /// The shipped catalog, or the operator's (`null` for none) replacing or extending it.
    pub(crate) fn load(operator: &Value) -> Result<Self, InputError> {
        let shipped: Value = serde_json::from_str(SHIPPED_CATALOG)
            .map_err(|e| catalog_error(format!("the shipped catalog is damaged: {e}")))?;
        let shipped = parse_file(&shipped)?;
        let file = if operator.is_null() {
            shipped
        } else {
            let mut given = parse_file(operator)?;
            match given.mode.as_deref() {
                None | Some("replace") => given,
                Some("extend") => {
                    let mut releases = shipped.releases;
                    releases.append(&mut given.releases);
                    CatalogFile { mode: None, image: given.image.or(shipped.image), releases }
                }
                Some(other) => {
                    return Err(catalog_error(format!("`mode: {}` is neither `replace` nor `extend`", shorten(other))));
                }
            }
        };
        let image = file.image.unwrap_or_default();
        if image.is_empty() || image.contains(char::is_whitespace) || image.contains('@') || image.ends_with(':') {
            return Err(catalog_error(format!("`{}` is not an image repository", shorten(&image))));
        }
        let mut releases = Vec::new();
        for entry in file.releases {
            let release = Release::parse(&entry.version).ok_or_else(|| {
                catalog_error(format!("`{}` is not a release (`generation.build`)", shorten(&entry.version)))
            })?;
            releases.push((release, entry.channel));
        }
        // A release listed twice keeps its most stable channel.
        releases.sort();
        releases.dedup_by_key(|(r, _)| *r);
        if releases.is_empty() {
            return Err(catalog_error("the catalog lists no releases".into()));
        }
        Ok(Self { image, releases })
    }

    fn contains(&self, release: Release) -> bool {
        self.releases.iter().any(|(r, _)| *r == release)
    }

    /// Newest stable release among those `keep` accepts.
    pub(crate) fn newest_stable(&self, keep: impl Fn(Release) -> bool) -> Option<Release> {
        self.releases.iter().rev().find(|(r, c)| *c == ReleaseChannel::Stable && keep(*r)).map(|(r, _)| *r)
    }

    fn generation_list(&self, generation: u32) -> String {
        let list: Vec<String> =
            self.releases.iter().filter(|(r, _)| r.generation == generation).map(|(r, _)| r.to_string()).collect();
        if list.is_empty() { "none".into() } else { list.join(", ") }
    }
}

/// Why an entry of `restrictions.allowedVersions` is not valid, if it is not.
pub(crate) fn allowed_entry_problem(text: &str) -> Option<String> {
    Allowed::parse(text)
        .is_none()
        .then(|| format!("`{}` is not `<generation>.x`, `<generation>.<build>` or `*`", shorten(text)))
}

/// One entry of `restrictions.allowedVersions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allowed {
    Generation(u32),
    Release(Release),
    Any,
}

impl Allowed {
    fn parse(text: &str) -> Option<Self> {
        if text == "*" {
            return Some(Self::Any);
        }
        match VersionSpec::parse(text).ok()? {
            VersionSpec::Channel(g) => Some(Self::Generation(g)),
            VersionSpec::Exact { release, revision: None } => Some(Self::Release(release)),
            _ => None,
        }
    }

    fn allows(self, release: Release) -> bool {
        match self {
            Self::Any => true,
            Self::Generation(g) => release.generation == g,
            Self::Release(r) => r == release,
        }
    }
}

/// What a running instance resolved to before (from its status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PreviousVersion {
    /// The release it runs.
    pub release: Release,
    /// The spec it was resolved from.
    pub spec: String,
}

/// The outcome of version selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The release to run.
    pub release: Release,
    /// The full image reference.
    pub image: String,
    /// Notes for the owner.
    pub warnings: Vec<Warning>,
}

/// Everything version selection looks at.
#[derive(Debug, Clone)]
pub(crate) struct VersionRequest<'a> {
    /// The instance.
    pub object: &'a ObjectRef,
    /// Where the spec came from (`spec.foundryVersion` or the license default).
    pub path: &'a str,
    /// The spec text.
    pub spec: &'a str,
    /// The license's allowed versions.
    pub allowed: &'a [String],
    /// What the instance ran before.
    pub previous: Option<PreviousVersion>,
    /// The update policy.
    pub policy: UpdatePolicy,
    /// `allowGenerationUpgrade`.
    pub allow_generation_upgrade: bool,
}

/// Selects the release an instance runs.
pub(crate) fn resolve(req: &VersionRequest<'_>, catalog: &Catalog) -> Result<Resolved, InputError> {
    let refuse = |rule: Rule, detail: String| InputError::Refused {
        object: req.object.clone(),
        path: req.path.to_owned(),
        rule,
        detail,
    };
    let spec = VersionSpec::parse(req.spec).map_err(|detail| InputError::InvalidField {
        object: req.object.clone(),
        path: req.path.to_owned(),
        detail,
    })?;
    let mut allowed = Vec::new();
    for (i, text) in req.allowed.iter().enumerate() {
        allowed.push(Allowed::parse(text).ok_or_else(|| InputError::InvalidField {
            object: req.object.clone(),
            path: format!("license spec.restrictions.allowedVersions[{i}]"),
            detail: format!("`{}` is not `<generation>.x`, `<generation>.<build>` or `*`", shorten(text)),
        })?);
    }
    let permitted = |r: Release| allowed.is_empty() || allowed.iter().any(|a| a.allows(r));
    let allowed_text = req.allowed.join(", ");
    let mut warnings = Vec::new();

    let (mut release, revision) = match spec {
        VersionSpec::Exact { release, revision } => {
            if !catalog.contains(release) {
                return Err(refuse(
                    Rule::UnknownVersion,
                    format!(
                        "Foundry `{release}` is not in the release catalog (known releases of generation {}: {})",
                        release.generation,
                        catalog.generation_list(release.generation)
                    ),
                ));
            }
            if !permitted(release) {
                return Err(refuse(
                    Rule::VersionNotAllowed,
                    format!("Foundry `{release}` is not allowed by the license (allowed: {allowed_text})"),
                ));
            }
            (release, revision)
        }
        VersionSpec::Latest | VersionSpec::Channel(_) => {
            let in_channel = |r: Release| match spec {
                VersionSpec::Channel(g) => r.generation == g,
                _ => true,
            };
            let newest = catalog.newest_stable(|r| in_channel(r) && permitted(r)).ok_or_else(|| {
                let what = match spec {
                    VersionSpec::Channel(g) => format!("generation {g}"),
                    _ => "any generation".into(),
                };
                if catalog.newest_stable(in_channel).is_some() {
                    refuse(
                        Rule::VersionNotAllowed,
                        format!("no stable release of {what} is allowed by the license (allowed: {allowed_text})"),
                    )
                } else {
                    refuse(Rule::UnknownVersion, format!("the release catalog has no stable release of {what}"))
                }
            })?;
            // A pinned channel keeps its release while the spec is unchanged and the release still qualifies.
            let pinned = match &req.previous {
                Some(p)
                    if req.policy == UpdatePolicy::Pinned
                        && p.spec == req.spec
                        && in_channel(p.release)
                        && permitted(p.release)
                        && catalog.contains(p.release) =>
                {
                    Some(p.release)
                }
                _ => None,
            };
            if let Some(p) = pinned
                && p < newest
            {
                warnings.push(Warning {
                    code: "NewerReleaseAvailable".into(),
                    message: format!(
                        "Foundry `{newest}` is available on `{}`; the instance stays on `{p}` (update policy `pinned`)",
                        req.spec
                    ),
                });
            }
            (pinned.unwrap_or(newest), None)
        }
    };

    if let Some(prev) = &req.previous {
        let from = prev.release;
        if release.generation < from.generation {
            return Err(refuse(
                Rule::GenerationDowngradeRefused,
                format!(
                    "the instance runs Foundry `{from}`; `{release}` is an older generation, and worlds migrated to \
                     generation {} cannot be opened by generation {}",
                    from.generation, release.generation
                ),
            ));
        }
        if release.generation > from.generation && !req.allow_generation_upgrade {
            // A move the owner did not name (through `latest`) waits on the current generation instead of failing.
            let stay = (spec == VersionSpec::Latest)
                .then(|| catalog.newest_stable(|r| r.generation == from.generation && permitted(r)))
                .flatten();
            match stay {
                Some(stay) => {
                    warnings.push(Warning {
                        code: "GenerationUpgradeAvailable".into(),
                        message: format!(
                            "`latest` is now Foundry `{release}` (generation {}); the instance stays on generation {} \
                             (`{stay}`) until `spec.allowGenerationUpgrade` is set",
                            release.generation, from.generation
                        ),
                    });
                    release = stay;
                }
                None => {
                    return Err(refuse(
                        Rule::GenerationUpgradeNotAllowed,
                        format!(
                            "the instance runs Foundry `{from}`; moving to `{release}` (generation {}) migrates its \
                             worlds one way and needs `spec.allowGenerationUpgrade: true`",
                            release.generation
                        ),
                    ));
                }
            }
        }
        if release.generation == from.generation && release < from {
            warnings.push(Warning {
                code: "VersionDowngrade".into(),
                message: format!(
                    "Foundry goes back from `{from}` to `{release}` within generation {}",
                    from.generation
                ),
            });
        }
    }
    let tag = match revision {
        Some(rev) => format!("{release}.{rev}"),
        None => release.to_string(),
    };
    Ok(Resolved { release, image: format!("{}:{tag}", catalog.image), warnings })
}

/// Reads what an instance resolved to before from its status (a damaged status counts as none).
pub(crate) fn previous_version(status: Option<&Value>) -> Option<PreviousVersion> {
    let status = status?;
    let release = Release::parse(status.get("resolvedVersion")?.as_str()?)?;
    let spec = status.get("resolvedFrom").and_then(Value::as_str).unwrap_or_default().to_owned();
    Some(PreviousVersion { release, spec })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj() -> ObjectRef {
        ObjectRef::new("FoundryInstance", "ns", "a")
    }

    fn resolve_text(spec: &str, previous: Option<&str>, upgrade: bool) -> Result<Resolved, InputError> {
        let object = obj();
        let req = VersionRequest {
            object: &object,
            path: "spec.foundryVersion",
            spec,
            allowed: &[],
            previous: previous.map(|p| PreviousVersion { release: Release::parse(p).unwrap(), spec: "x".into() }),
            policy: UpdatePolicy::Pinned,
            allow_generation_upgrade: upgrade,
        };
        resolve(&req, &Catalog::load(&Value::Null).unwrap())
    }

    #[test]
    fn every_version_form_resolves_against_the_shipped_catalog() {
        assert_eq!(resolve_text("13.348", None, false).unwrap().image, "ghcr.io/felddy/foundryvtt:13.348");
        assert_eq!(resolve_text("13.348.0", None, false).unwrap().image, "ghcr.io/felddy/foundryvtt:13.348.0");
        assert_eq!(resolve_text("13.x", None, false).unwrap().release.to_string(), "13.351");
        assert_eq!(resolve_text("latest", None, false).unwrap().release.to_string(), "14.369");
        assert!(resolve_text("13.999", None, false).is_err());
        assert!(resolve_text("v13", None, false).is_err());
        assert!(resolve_text("14.356", None, false).is_ok(), "testing releases resolve when named");
    }

    #[test]
    fn generation_rules() {
        assert_eq!(resolve_text("14.369", Some("13.351"), false).unwrap_err().code(), "GenerationUpgradeNotAllowed");
        assert!(resolve_text("14.369", Some("13.351"), true).is_ok());
        assert_eq!(resolve_text("12.343", Some("13.351"), true).unwrap_err().code(), "GenerationDowngradeRefused");
        let stay = resolve_text("latest", Some("13.348"), false).unwrap();
        assert_eq!(stay.release.to_string(), "13.351");
        assert_eq!(stay.warnings[0].code, "GenerationUpgradeAvailable");
        assert_eq!(resolve_text("13.347", Some("13.351"), false).unwrap().warnings[0].code, "VersionDowngrade");
    }
}
