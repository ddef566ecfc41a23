//! Pool events → [`ObjectChange`]s for the router.
//!
//! xapi's `event.from` sends the record *after* a change (and nothing for `del`), so to say
//! "power_state went Halted → Running" we keep the previous snapshot of every watched object.
//! [`ChangeTracker`] holds those snapshots; [`WatchAdapter`] feeds it from the events module's
//! [`Watcher`](crate::events::Watcher) (which owns the `event.from` loop: tokens, listings,
//! resync on a rejected token). xapi coalesces: several changes of one object between two polls arrive as one
//! event carrying the latest record, so intermediate states (Running → Paused → Running) are
//! invisible to every watcher, us included.

use super::call_hooks::to_json;
use super::router::ObjectChange;
use super::spec::{Operation, Spec};
use crate::model::{EventOperation, EventRecord};
use serde_json::Value as Json;
use std::collections::HashMap;

/// One object as last seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub class: String,
    pub snapshot: Json,
}

/// The wire class (`VM`, `VM_guest_metrics`) for an event's lower-case class.
pub fn canonical_class(lower: &str) -> String {
    crate::model::meta::class(lower)
        .map(|c| c.name.to_owned())
        .unwrap_or_else(|| lower.to_owned())
}

fn uuid_of(v: &Json) -> Option<String> {
    v.get("uuid").and_then(Json::as_str).map(str::to_owned)
}

/// Last-known snapshots per ref, and the diffing that turns events into changes.
#[derive(Debug, Default, Clone)]
pub struct ChangeTracker {
    objects: HashMap<String, Known>,
}

impl ChangeTracker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_known(objects: HashMap<String, Known>) -> Self {
        ChangeTracker { objects }
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn get(&self, r: &str) -> Option<&Known> {
        self.objects.get(r)
    }

    pub fn objects(&self) -> &HashMap<String, Known> {
        &self.objects
    }

    /// Takes a listing as the baseline without producing changes (first start).
    pub fn baseline(&mut self, events: &[EventRecord]) {
        for e in events {
            if let Some(s) = &e.snapshot {
                self.objects.insert(
                    e.ref_.clone(),
                    Known {
                        class: canonical_class(&e.class),
                        snapshot: to_json(s),
                    },
                );
            }
        }
    }

    /// Applies one event and returns the change it represents, if any. An `add` for an object
    /// we already know (a re-listing) becomes a `mod` when the record differs, else nothing.
    pub fn apply(&mut self, e: &EventRecord) -> Option<ObjectChange> {
        let class = canonical_class(&e.class);
        match &e.operation {
            EventOperation::Del => {
                let old = self.objects.remove(&e.ref_).map(|k| k.snapshot);
                Some(ObjectChange {
                    uuid: old.as_ref().and_then(uuid_of),
                    class,
                    operation: Operation::Del,
                    ref_: e.ref_.clone(),
                    old,
                    new: None,
                })
            }
            EventOperation::Add | EventOperation::Mod => {
                let new = to_json(e.snapshot.as_ref()?);
                let prev = self.objects.insert(
                    e.ref_.clone(),
                    Known {
                        class: class.clone(),
                        snapshot: new.clone(),
                    },
                );
                let old = prev.map(|k| k.snapshot);
                let operation = match (&e.operation, &old) {
                    (EventOperation::Add, None) => Operation::Add,
                    (_, Some(o)) if *o == new => return None,
                    _ => Operation::Mod,
                };
                Some(ObjectChange {
                    uuid: uuid_of(&new),
                    class,
                    operation,
                    ref_: e.ref_.clone(),
                    old,
                    new: Some(new),
                })
            }
            EventOperation::Unknown(_) => None,
        }
    }

    /// After a rejected token: diffs a full listing against the last-known snapshots. Objects
    /// of the listed classes that are gone become `del`s; new ones `add`s; changed ones one `mod`
    /// from the last-known record to the current one (what happened in between is lost).
    pub fn resync(&mut self, listing: &[EventRecord], classes: &[String]) -> Vec<ObjectChange> {
        let watched = |c: &str| {
            classes
                .iter()
                .any(|w| w == "*" || w.eq_ignore_ascii_case(c))
        };
        let mut out = Vec::new();
        let seen: std::collections::HashSet<&str> =
            listing.iter().map(|e| e.ref_.as_str()).collect();
        let mut gone: Vec<String> = self
            .objects
            .iter()
            .filter(|(r, k)| watched(&k.class) && !seen.contains(r.as_str()))
            .map(|(r, _)| r.clone())
            .collect();
        gone.sort();
        for r in gone {
            if let Some(k) = self.objects.remove(&r) {
                out.push(ObjectChange {
                    uuid: uuid_of(&k.snapshot),
                    class: k.class,
                    operation: Operation::Del,
                    ref_: r,
                    old: Some(k.snapshot),
                    new: None,
                });
            }
        }
        for e in listing {
            let mut e = e.clone();
            e.operation = EventOperation::Add;
            out.extend(self.apply(&e));
        }
        out
    }
}

/// Lower-case class names to subscribe to, from the spec's event subscriptions.
pub fn watched_classes(spec: &Spec) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in &spec.events {
        let c = if s.class == "*" {
            "*".to_owned()
        } else {
            s.class.to_ascii_lowercase()
        };
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if out.iter().any(|c| c == "*") {
        return vec!["*".into()];
    }
    out
}

/// Wire class names for the watcher (`VM`, `VM_guest_metrics`, or `*`): it calls
/// `<class>.get_all_records` with them, which wants xapi's spelling.
pub fn watcher_classes(spec: &Spec) -> Vec<String> {
    watched_classes(spec)
        .iter()
        .map(|c| {
            if c == "*" {
                c.clone()
            } else {
                canonical_class(c)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(op: EventOperation, r: &str, snap: Option<serde_json::Value>) -> EventRecord {
        EventRecord {
            id: 1,
            timestamp: "0.0".into(),
            class: "vm".into(),
            operation: op,
            ref_: r.into(),
            snapshot: snap.map(|s| crate::model::to_value(&s).unwrap()),
        }
    }

    fn vm(state: &str) -> serde_json::Value {
        serde_json::json!({"uuid": "u-1", "power_state": state})
    }

    #[test]
    fn mods_carry_the_previous_snapshot() {
        let mut t = ChangeTracker::new();
        let add = t
            .apply(&ev(EventOperation::Add, "r1", Some(vm("Halted"))))
            .unwrap();
        assert_eq!((add.operation, add.class.as_str()), (Operation::Add, "VM"));
        let m = t
            .apply(&ev(EventOperation::Mod, "r1", Some(vm("Running"))))
            .unwrap();
        assert_eq!(m.old.unwrap()["power_state"], "Halted");
        assert_eq!(m.new.unwrap()["power_state"], "Running");
        assert_eq!(m.uuid.as_deref(), Some("u-1"));
        // The same record again (an event with no visible change) produces nothing.
        assert!(t
            .apply(&ev(EventOperation::Mod, "r1", Some(vm("Running"))))
            .is_none());
        let d = t.apply(&ev(EventOperation::Del, "r1", None)).unwrap();
        assert_eq!(d.old.unwrap()["power_state"], "Running");
        assert!(t.is_empty());
    }

    #[test]
    fn resync_diffs_against_last_known() {
        let mut t = ChangeTracker::new();
        t.baseline(&[
            ev(EventOperation::Add, "r1", Some(vm("Halted"))),
            ev(EventOperation::Add, "r2", Some(vm("Halted"))),
        ]);
        let listing = [
            ev(EventOperation::Add, "r1", Some(vm("Running"))),
            ev(EventOperation::Add, "r3", Some(vm("Halted"))),
        ];
        let ch = t.resync(&listing, &["vm".into()]);
        let summary: Vec<_> = ch.iter().map(|c| (c.operation, c.ref_.as_str())).collect();
        assert_eq!(
            summary,
            [
                (Operation::Del, "r2"),
                (Operation::Mod, "r1"),
                (Operation::Add, "r3")
            ]
        );
        assert_eq!(ch[1].old.as_ref().unwrap()["power_state"], "Halted");
        // Unwatched classes are not declared gone.
        let mut t2 = ChangeTracker::new();
        t2.baseline(&[ev(EventOperation::Add, "r1", Some(vm("Halted")))]);
        assert!(t2.resync(&[], &["host".into()]).is_empty());
    }
}

/// Feeds the `events` module's [`Watcher`](crate::events::Watcher) stream into a tracker: on a
/// first start (nothing saved) the listing becomes the baseline; any later listing (a resync
/// after a rejected token) is diffed against the last-known snapshots; `event.from` changes go
/// through [`ChangeTracker::apply`]. `InitDone`/`Bookmark` hand back the token to save once the
/// changes returned so far are queued.
pub struct WatchAdapter {
    pub tracker: ChangeTracker,
    classes: Vec<String>,
    listing: Option<Vec<EventRecord>>,
    /// The next listing is a baseline, not news.
    baseline: bool,
}

fn record(d: &crate::events::ObjectEvent, op: EventOperation) -> EventRecord {
    EventRecord {
        id: 0,
        timestamp: String::new(),
        class: d.class.clone(),
        operation: op,
        ref_: d.ref_.clone(),
        snapshot: d.snapshot.as_ref().map(crate::events::Record::to_value),
    }
}

impl WatchAdapter {
    /// `first_start`: no saved state, so the first listing is a baseline.
    pub fn new(tracker: ChangeTracker, classes: Vec<String>, first_start: bool) -> Self {
        WatchAdapter {
            tracker,
            classes,
            listing: None,
            baseline: first_start,
        }
    }

    /// The changes this watch event completes, and the token to save after queueing them.
    pub fn on_watch_event(
        &mut self,
        ev: &crate::events::WatchEvent,
    ) -> (Vec<ObjectChange>, Option<String>) {
        use crate::events::{Op, WatchEvent};
        match ev {
            WatchEvent::Resync(_) => (Vec::new(), None),
            WatchEvent::Init => {
                self.listing = Some(Vec::new());
                (Vec::new(), None)
            }
            WatchEvent::InitObject(d) => {
                if let Some(l) = self.listing.as_mut() {
                    l.push(record(d, EventOperation::Add));
                }
                (Vec::new(), None)
            }
            WatchEvent::InitDone { token } => {
                let listing = self.listing.take().unwrap_or_default();
                if std::mem::take(&mut self.baseline) {
                    self.tracker.baseline(&listing);
                    (Vec::new(), Some(token.clone()))
                } else {
                    let ch = self.tracker.resync(&listing, &self.classes);
                    (ch, Some(token.clone()))
                }
            }
            WatchEvent::Event(d) => {
                let op = match d.op {
                    Op::Add => EventOperation::Add,
                    Op::Mod => EventOperation::Mod,
                    Op::Del => EventOperation::Del,
                };
                (
                    self.tracker.apply(&record(d, op)).into_iter().collect(),
                    None,
                )
            }
            WatchEvent::Bookmark { token, .. } => (Vec::new(), Some(token.clone())),
        }
    }
}

#[cfg(test)]
mod watch_tests {
    use super::*;
    use crate::events::{ObjectEvent, Op, Record, WatchEvent};

    fn d(op: Op, r: &str, state: Option<&str>) -> ObjectEvent {
        ObjectEvent {
            class: "VM".into(),
            op,
            ref_: r.into(),
            snapshot: state.map(|s| {
                let v = crate::model::to_value(&serde_json::json!({"uuid": r, "power_state": s}));
                Record::decode("VM", v.unwrap())
            }),
        }
    }

    #[test]
    fn watcher_stream_to_changes() {
        let mut a = WatchAdapter::new(ChangeTracker::new(), vec!["vm".into()], true);
        assert!(a.on_watch_event(&WatchEvent::Init).0.is_empty());
        a.on_watch_event(&WatchEvent::InitObject(d(Op::Add, "r1", Some("Halted"))));
        let (ch, tok) = a.on_watch_event(&WatchEvent::InitDone { token: "t1".into() });
        assert!(ch.is_empty(), "first listing is a baseline");
        assert_eq!(tok.as_deref(), Some("t1"));
        let (ch, _) = a.on_watch_event(&WatchEvent::Event(d(Op::Mod, "r1", Some("Running"))));
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].old.as_ref().unwrap()["power_state"], "Halted");
        // A later re-listing (resync) diffs against what we knew.
        a.on_watch_event(&WatchEvent::Init);
        a.on_watch_event(&WatchEvent::InitObject(d(Op::Add, "r1", Some("Halted"))));
        let (ch, _) = a.on_watch_event(&WatchEvent::InitDone { token: "t2".into() });
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].operation, Operation::Mod);
        assert_eq!(ch[0].new.as_ref().unwrap()["power_state"], "Halted");
    }

    #[test]
    fn a_resync_with_nothing_known_is_news() {
        // Saved state that knows no object yet (not a first start): the listing is all adds.
        let mut a = WatchAdapter::new(ChangeTracker::new(), vec!["VM".into()], false);
        a.on_watch_event(&WatchEvent::Resync(
            crate::events::ResyncReason::TokenRejected,
        ));
        a.on_watch_event(&WatchEvent::Init);
        a.on_watch_event(&WatchEvent::InitObject(d(Op::Add, "r1", Some("Halted"))));
        let (ch, tok) = a.on_watch_event(&WatchEvent::InitDone { token: "t".into() });
        assert_eq!(tok.as_deref(), Some("t"));
        let ops: Vec<_> = ch.iter().map(|c| (c.operation, c.ref_.as_str())).collect();
        assert_eq!(ops, [(Operation::Add, "r1")]);
    }
}
