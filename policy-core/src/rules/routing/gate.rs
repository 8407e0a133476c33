//! Rules 4 and 5: the player gate of a switch away from an eligible current instance in `block` mode, and the
//! grace period after which a held switch proceeds anyway.
//!
//! Only a measured count of zero lets a switch pass; an unknown count (not measured, or the probe failed) holds it
//! like connected players do. The gate also says which instance's players it needed, so a live host can probe
//! that one instance (and no other) when the call did not carry its count.

use super::{Pending, PlayerCheck};
use crate::model::{PlayerObservation, SwitchMode, Warning};
use crate::names;
use crate::text::shorten;
use crate::time::{Duration, Timestamp};

/// The player gate of a switch away from a current instance whose players it protects (rules 4 and 5).
pub(super) struct Gate<'a> {
    pub(super) current: &'a str,
    pub(super) target: Option<&'a str>,
    pub(super) namespace: &'a str,
    pub(super) now: Timestamp,
    pub(super) grace: Option<Duration>,
    pub(super) mode: SwitchMode,
}

/// What the gate decided: hold the switch (`pending`) or let it pass, and what to report.
pub(super) struct GateOutcome {
    pub(super) pending: Option<Pending>,
    pub(super) warning: Option<Warning>,
    pub(super) player_check: Option<PlayerCheck>,
}

impl Gate<'_> {
    /// The in-cluster status endpoint of the current instance.
    fn player_check(&self, observation: Option<&PlayerObservation>) -> PlayerCheck {
        let cur = self.current;
        PlayerCheck {
            instance: cur.to_owned(),
            namespace: self.namespace.to_owned(),
            url: format!(
                "http://{}.{}.svc:{}/api/status",
                names::service_name(cur),
                self.namespace,
                names::INSTANCE_SERVICE_PORT
            ),
            observed: observation.is_some(),
            connected: observation.and_then(|o| o.connected),
        }
    }

    /// `force` mode: the switch happens at once; when players were connected (or their count is unknown) the owner
    /// is told, and the count is asked for so the warning says which.
    fn forced(&self, observation: Option<&PlayerObservation>, blocked: Option<(&'static str, String)>) -> GateOutcome {
        let warning = blocked.map(|(code, message)| {
            let code = match code {
                "SwitchBlockedPlayersConnected" => "SwitchForcedPlayersConnected",
                _ => "SwitchForcedPlayerCountUnknown",
            };
            let message = message.replacen(" is blocked:", " was forced (`switchMode: force`):", 1);
            Warning::new(code, message)
        });
        GateOutcome { pending: None, warning, player_check: Some(self.player_check(observation)) }
    }

    pub(super) fn decide(
        &self,
        observation: Option<&PlayerObservation>,
        pending_since: Option<Timestamp>,
    ) -> GateOutcome {
        let cur = self.current;
        let to_words = self.target.map_or_else(|| "deactivation".to_owned(), |t| format!("switch to `{t}`"));
        let connected = observation.and_then(|o| o.connected);
        let blocked = match (observation, connected) {
            (_, Some(0)) => None,
            (_, Some(n)) => Some((
                "SwitchBlockedPlayersConnected",
                "PlayersConnected",
                format!(
                    "{to_words} is blocked: {n} player{} connected to `{cur}`",
                    if n == 1 { " is" } else { "s are" }
                ),
            )),
            (Some(o), None) => Some((
                "SwitchBlockedPlayerCountUnknown",
                "PlayerCountUnknown",
                format!(
                    "{to_words} is blocked: the player count of `{cur}` is unknown ({})",
                    shorten(o.error.as_deref().unwrap_or("no count"))
                ),
            )),
            (None, None) => Some((
                "SwitchBlockedPlayerCountUnknown",
                "PlayerCountUnknown",
                format!("{to_words} is blocked: the player count of `{cur}` was not measured"),
            )),
        };
        if self.mode == SwitchMode::Force {
            return self.forced(observation, blocked.map(|(code, _, message)| (code, message)));
        }
        // The block started at the recorded time, or now; a recorded time in the future is not trusted.
        let since = pending_since.filter(|s| *s <= self.now).unwrap_or(self.now);
        let waited = self.now.seconds_since(since);
        let grace_over = self.grace.is_some_and(|g| waited >= g.seconds());
        // Once the grace period is over the count no longer matters, so no probe is asked for.
        let player_check = (!grace_over).then(|| self.player_check(observation));
        match (blocked, self.grace) {
            (None, _) => GateOutcome { pending: None, warning: None, player_check },
            (Some((_, _, message)), Some(g)) if grace_over => GateOutcome {
                pending: None,
                warning: Some(Warning::new(
                    "SwitchForcedAfterGracePeriod",
                    format!("{message}, but it has waited longer than the grace period of {g}; switching anyway"),
                )),
                player_check,
            },
            (Some((code, reason, message)), grace) => {
                let message = match grace {
                    Some(g) => format!(
                        "{message}; it proceeds anyway after the grace period of {g} ({} left)",
                        Duration::from_seconds(g.seconds().saturating_sub(waited))
                    ),
                    None => message,
                };
                GateOutcome {
                    pending: Some(Pending { to: self.target.unwrap_or_default().to_owned(), since, reason }),
                    warning: Some(Warning::new(code, message)),
                    player_check,
                }
            }
        }
    }
}

/// The observation for an instance: an entry naming its namespace wins over one without.
pub(super) fn player_observation<'a>(
    players: &'a [PlayerObservation],
    instance: &str,
    namespace: &str,
) -> Option<&'a PlayerObservation> {
    let mut any = None;
    for p in players.iter().filter(|p| p.instance == instance) {
        match p.namespace.as_deref() {
            Some(ns) if ns == namespace => return Some(p),
            None if any.is_none() => any = Some(p),
            _ => {}
        }
    }
    any
}
