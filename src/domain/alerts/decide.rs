//! What a notification does to the incident its group is attached to, decided from the states
//! of all the incident's groups (read after the incident's row is locked) and `now`. Pure: the
//! writing is done by `crate::commands::alerts`.
//!
//! The rules:
//! - An incident is quiet when no group attached to it fires, whichever order its groups
//!   resolved in. Until then a resolved group changes nothing for customers or the team.
//! - In `resolve` mode a quiet incident that Alertmanager opened (one of its groups opened it) is
//!   resolved. An incident a person declared is never resolved by Alertmanager: the team is
//!   asked instead, as in `confirm` mode.
//! - The team is asked once, by the notification that made the incident quiet; repeats of
//!   resolved notifications (Alertmanager re-sends them; replicas send them twice) ask nobody.
//!   A group that fires again and resolves again makes the incident quiet again: asked again.
//! - A label value naming no component does not stop the incident: customers feel the problem
//!   whether or not the mapping knows the component. It opens (or joins) with the components
//!   that did match, possibly none; the log warns at every notification carrying it, and the
//!   team is told once, when the group first opens or joins its incident, which label and value
//!   matched nothing and how to fix the mapping.

use chrono::{DateTime, Utc};

use crate::config::OnResolved;

/// One alert group attached to an incident, as the decisions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// Alertmanager's `groupKey`.
    pub group_key: String,
    /// The group opened the incident (false: it joined one already open).
    pub opened: bool,
    /// When Alertmanager said the group resolved; `None` while it fires.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl GroupState {
    pub fn firing(&self) -> bool {
        self.resolved_at.is_none()
    }
}

/// What a resolved notification does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quiet {
    /// Other groups attached to the incident still fire (their keys): nothing changes for
    /// customers, and the team is not told.
    StillFiring(Vec<String>),
    /// No attached group fires and Alertmanager opened the incident: resolve it.
    Resolve,
    /// This notification made the incident quiet: ask the team to confirm.
    AskToConfirm,
    /// Quiet already, and the team was asked when it became so: nothing new.
    AlreadyAsked,
}

/// The decision on a resolved notification, and when its group resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// When the group resolved: when Candor first heard so (`now` for a first word).
    pub resolved_at: DateTime<Utc>,
    pub then: Quiet,
}

/// Decides what group `group_key` resolving does, given the states of every group attached to
/// its incident before this notification (`groups`, which should include it; a group missing
/// from the list counts as one that was firing).
pub fn on_resolved(
    groups: &[GroupState],
    group_key: &str,
    mode: OnResolved,
    now: DateTime<Utc>,
) -> Resolved {
    let this = groups.iter().find(|g| g.group_key == group_key);
    let first_word = this.is_none_or(GroupState::firing);
    let resolved_at = this.and_then(|g| g.resolved_at).unwrap_or(now);
    let firing: Vec<String> = groups
        .iter()
        .filter(|g| g.group_key != group_key && g.firing())
        .map(|g| g.group_key.clone())
        .collect();
    let opened_by_alertmanager = groups.iter().any(|g| g.opened);
    let then = if !firing.is_empty() {
        Quiet::StillFiring(firing)
    } else if mode == OnResolved::Resolve && opened_by_alertmanager {
        // Even on a repeat: a quiet incident Alertmanager opened has nothing left to wait for.
        Quiet::Resolve
    } else if first_word {
        Quiet::AskToConfirm
    } else {
        Quiet::AlreadyAsked
    };
    Resolved { resolved_at, then }
}

/// What a firing notification for a group already attached to an open incident does: it
/// fires again if it had resolved (worth an audit entry), else it is a repeat.
pub fn refiring(group: &GroupState) -> bool {
    !group.firing()
}

/// The team's notice about label values that named no component: which label, which values,
/// what the incident shows instead and how to fix the mapping. `None` when every value matched.
pub struct Unmapped<'a> {
    pub site_name: &'a str,
    pub incident_id: i64,
    pub title: &'a str,
    pub receiver: &'a str,
    /// The configured `alertmanager.component_label`.
    pub label: &'a str,
    pub values: &'a [String],
    /// The names of the components the incident shows, joined ("" when none).
    pub components: &'a str,
    pub incident_url: &'a str,
}

impl Unmapped<'_> {
    /// The words of the notice (plain text, one paragraph), or `None` when nothing is unmapped.
    pub fn notice(&self) -> Option<String> {
        if self.values.is_empty() {
            return None;
        }
        let values: Vec<String> = self
            .values
            .iter()
            .map(|v| format!("`{}`", crate::channels::truncate(v, 100)))
            .collect();
        let (noun, verb) = if values.len() == 1 {
            ("value", "names")
        } else {
            ("values", "name")
        };
        let shows = if self.components.is_empty() {
            "shows no affected component".to_string()
        } else {
            format!("shows only {}", self.components)
        };
        Some(format!(
            "[{site}] Incident #{id} \"{title}\": Alertmanager ({receiver}) sent label `{label}` \
             with {noun} {values}, which {verb} no configured component, so the public incident \
             {shows}. If customers are affected elsewhere, post an update naming the \
             components; map the {noun} under `alertmanager.components` in the config (or fix \
             the alert's label) so the next alert finds it. {url}",
            site = self.site_name,
            id = self.incident_id,
            title = self.title,
            receiver = self.receiver,
            label = self.label,
            values = values.join(", "),
            url = self.incident_url,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, minute, 0).unwrap()
    }

    fn group(key: &str, opened: bool, resolved_at: Option<u32>) -> GroupState {
        GroupState {
            group_key: key.into(),
            opened,
            resolved_at: resolved_at.map(at),
        }
    }

    #[test]
    fn a_lone_group_resolving_resolves_or_asks_as_configured() {
        let groups = [group("a", true, None)];
        let r = on_resolved(&groups, "a", OnResolved::Resolve, at(40));
        assert_eq!(r.then, Quiet::Resolve);
        assert_eq!(r.resolved_at, at(40));
        let r = on_resolved(&groups, "a", OnResolved::Confirm, at(40));
        assert_eq!(r.then, Quiet::AskToConfirm);
    }

    #[test]
    fn the_incident_is_quiet_only_when_no_attached_group_fires_in_either_order() {
        for mode in [OnResolved::Resolve, OnResolved::Confirm] {
            // The opener resolves first while the joined group fires...
            let groups = [group("a", true, None), group("b", false, None)];
            let r = on_resolved(&groups, "a", mode, at(40));
            assert_eq!(r.then, Quiet::StillFiring(vec!["b".into()]), "{mode:?}");
            // ...then the joined one: the incident is quiet.
            let groups = [group("a", true, Some(40)), group("b", false, None)];
            let r = on_resolved(&groups, "b", mode, at(45));
            let quiet = match mode {
                OnResolved::Resolve => Quiet::Resolve,
                OnResolved::Confirm => Quiet::AskToConfirm,
            };
            assert_eq!(r.then, quiet, "{mode:?}");
            assert_eq!(r.resolved_at, at(45));

            // The other order.
            let groups = [group("a", true, None), group("b", false, None)];
            let r = on_resolved(&groups, "b", mode, at(40));
            assert_eq!(r.then, Quiet::StillFiring(vec!["a".into()]), "{mode:?}");
            let groups = [group("a", true, None), group("b", false, Some(40))];
            assert_eq!(on_resolved(&groups, "a", mode, at(45)).then, quiet);
        }
    }

    #[test]
    fn repeats_keep_the_first_time_and_ask_nobody_twice() {
        let groups = [group("a", true, Some(40)), group("b", false, Some(45))];
        let r = on_resolved(&groups, "b", OnResolved::Confirm, at(50));
        assert_eq!(r.then, Quiet::AlreadyAsked);
        assert_eq!(r.resolved_at, at(45), "when it first resolved");
        let r = on_resolved(&groups, "a", OnResolved::Confirm, at(50));
        assert_eq!(r.then, Quiet::AlreadyAsked);
        // A repeat while another still fires stays silent too.
        let groups = [group("a", true, Some(40)), group("b", false, None)];
        let r = on_resolved(&groups, "a", OnResolved::Confirm, at(50));
        assert_eq!(r.then, Quiet::StillFiring(vec!["b".into()]));
        assert_eq!(r.resolved_at, at(40));
    }

    #[test]
    fn a_persons_incident_is_never_resolved_by_alertmanager() {
        let groups = [group("a", false, None), group("b", false, Some(30))];
        let r = on_resolved(&groups, "a", OnResolved::Resolve, at(40));
        assert_eq!(r.then, Quiet::AskToConfirm);
        let groups = [group("a", false, Some(40)), group("b", false, Some(30))];
        let r = on_resolved(&groups, "a", OnResolved::Resolve, at(41));
        assert_eq!(r.then, Quiet::AlreadyAsked);
    }

    #[test]
    fn a_group_missing_from_the_list_counts_as_its_first_word() {
        let groups = [group("b", false, Some(30))];
        let r = on_resolved(&groups, "a", OnResolved::Confirm, at(40));
        assert_eq!(r.then, Quiet::AskToConfirm);
        assert_eq!(r.resolved_at, at(40));
    }

    #[test]
    fn a_group_that_had_resolved_fires_again() {
        assert!(refiring(&group("a", true, Some(40))));
        assert!(!refiring(&group("a", true, None)));
    }

    #[test]
    fn the_unmapped_notice_names_the_label_the_values_and_the_fix() {
        let values = vec!["mainframe".to_string()];
        let mut u = Unmapped {
            site_name: "Acme",
            incident_id: 7,
            title: "Checkout errors",
            receiver: "candor",
            label: "component",
            values: &values,
            components: "",
            incident_url: "https://status.acme.test/incidents/7",
        };
        let words = u.notice().unwrap();
        assert!(words.contains("#7"), "{words}");
        assert!(
            words.contains("label `component` with value `mainframe`"),
            "{words}"
        );
        assert!(words.contains("shows no affected component"), "{words}");
        assert!(words.contains("alertmanager.components"), "{words}");
        let two = vec!["x".to_string(), "y".repeat(300)];
        u.values = &two;
        u.components = "Website";
        let words = u.notice().unwrap();
        assert!(words.contains("values `x`, `yyy"), "{words}");
        assert!(words.contains("…`"), "long values are cut: {words}");
        assert!(words.contains("shows only Website"), "{words}");
        u.values = &[];
        assert_eq!(u.notice(), None);
    }
}
