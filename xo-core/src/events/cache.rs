//! The object cache (kube-rs' reflector shape): one writer fed by the watcher, many readers
//! that can read while it updates. A (re)listing is built aside and swapped in at once; each
//! `event.from` batch is applied under one write lock, so readers see whole batches.

use std::any::Any;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::event::{ObjectEvent, Op};
use super::record::Record;
use super::views::guest_addresses;
use super::watcher::{StopHandle, WatchConfig, WatchEvent, Watcher};
use crate::client::Client;
use crate::model::{
    Bond, Host, Network, Pif, Ref, Task, TaskStatusType, Value, Vif, Vlan, Vm, VmGuestMetrics,
    VmMetrics, VmPowerState, XapiRecord,
};
use std::net::IpAddr;

/// One cached object: its record, decoded once when its event was applied.
pub struct Object {
    /// Class as configured (`VM`) or as the server sent it.
    pub class: String,
    /// The object's ref.
    pub ref_: String,
    /// The record: typed for known classes, dynamic for the rest.
    pub record: Record,
    /// The wire form of a typed record, made on first dynamic access only.
    wire: OnceLock<Value>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("class", &self.class)
            .field("ref", &self.ref_)
            .finish_non_exhaustive()
    }
}

impl Object {
    /// An object of `class` with this record.
    pub fn new(class: impl Into<String>, ref_: impl Into<String>, record: Record) -> Self {
        Object {
            class: class.into(),
            ref_: ref_.into(),
            record,
            wire: OnceLock::new(),
        }
    }

    /// The record as `T`, when it was decoded as one.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.record.get::<T>()
    }

    /// The record as a shared `T`, when it was decoded as one.
    pub fn typed<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.record.get_arc::<T>()
    }

    /// The wire form of the record (for classes read by name; typed records are encoded
    /// on first use and kept).
    pub fn value(&self) -> &Value {
        match &self.record {
            Record::Dynamic(v) => v,
            Record::Typed(_) => self.wire.get_or_init(|| self.record.to_value()),
        }
    }

    /// A string field (wire name), e.g. `name_label`, `MAC`.
    pub fn str(&self, field: &str) -> Option<&str> {
        self.value().get(field).and_then(Value::as_str)
    }

    /// A string field, or `""`.
    pub fn text(&self, field: &str) -> &str {
        self.str(field).unwrap_or("")
    }

    /// A boolean field (wire name).
    pub fn bool(&self, field: &str) -> Option<bool> {
        self.value().get(field).and_then(Value::as_bool)
    }

    /// An integer field (wire name).
    pub fn int(&self, field: &str) -> Option<i64> {
        self.value().get(field).and_then(Value::as_i64)
    }

    /// The strings of a set field (e.g. `VIFs`); empty when absent.
    pub fn strs(&self, field: &str) -> Vec<&str> {
        let items = self
            .value()
            .get(field)
            .and_then(Value::as_array)
            .unwrap_or(&[]);
        items.iter().filter_map(Value::as_str).collect()
    }

    /// A `(string -> string) map` field, in wire order; empty when absent.
    pub fn map(&self, field: &str) -> Vec<(&str, &str)> {
        let Some(s) = self.value().get(field).and_then(Value::as_struct) else {
            return Vec::new();
        };
        s.iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?)))
            .collect()
    }

    /// The `uuid` field.
    pub fn uuid(&self) -> &str {
        self.record.uuid()
    }

    /// The `name_label` field.
    pub fn name_label(&self) -> &str {
        self.record.name_label()
    }
}

#[derive(Default)]
struct ClassMap {
    by_ref: HashMap<String, Arc<Object>>,
    by_uuid: HashMap<String, String>,
}

impl ClassMap {
    fn insert(&mut self, obj: Object) {
        if let Some(old) = self.by_ref.get(&obj.ref_) {
            if old.uuid() != obj.uuid() {
                self.by_uuid.remove(old.uuid());
            }
        }
        if !obj.uuid().is_empty() {
            self.by_uuid.insert(obj.uuid().to_owned(), obj.ref_.clone());
        }
        self.by_ref.insert(obj.ref_.clone(), Arc::new(obj));
    }

    fn remove(&mut self, r: &str) {
        if let Some(old) = self.by_ref.remove(r) {
            if self.by_uuid.get(old.uuid()).is_some_and(|x| x == r) {
                self.by_uuid.remove(old.uuid());
            }
        }
    }
}

/// Counters kept by the cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Events applied from `event.from` (listings not counted).
    pub events_applied: u64,
    pub batches_applied: u64,
    pub listings: u64,
    pub resyncs: u64,
    /// Errors the watcher reported (it retries them itself).
    pub errors: u64,
    pub last_error: Option<String>,
}

/// The objects, per class. Readers get it through [`CacheReader::read`].
#[derive(Default)]
pub struct Objects {
    classes: HashMap<String, ClassMap>,
    ready: bool,
    token: Option<String>,
    stats: CacheStats,
}

fn key(class: &str) -> String {
    class.to_ascii_lowercase()
}

impl Objects {
    /// Builds a store from records, e.g. for views over a one-off listing.
    pub fn from_records<I: IntoIterator<Item = (String, String, Value)>>(records: I) -> Self {
        let mut o = Objects {
            ready: true,
            ..Objects::default()
        };
        for (class, r, v) in records {
            let record = Record::decode(&class, v);
            o.classes
                .entry(key(&class))
                .or_default()
                .insert(Object::new(class, r, record));
        }
        o
    }

    /// True once the first listing was swapped in.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The token the cache is current to.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// Lower-case names of the classes that hold objects.
    pub fn classes(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .classes
            .iter()
            .filter(|(_, m)| !m.by_ref.is_empty())
            .map(|(k, _)| k.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// The object of `class` (by name, any case) with ref `r`.
    pub fn object(&self, class: &str, r: &str) -> Option<&Arc<Object>> {
        self.classes.get(&key(class))?.by_ref.get(r)
    }

    /// The object of `class` with this uuid.
    pub fn object_by_uuid(&self, class: &str, uuid: &str) -> Option<&Arc<Object>> {
        let m = self.classes.get(&key(class))?;
        m.by_ref.get(m.by_uuid.get(uuid)?)
    }

    /// Every object of `class` (by name), in no particular order.
    pub fn objects(&self, class: &str) -> impl Iterator<Item = &Arc<Object>> {
        self.classes
            .get(&key(class))
            .into_iter()
            .flat_map(|m| m.by_ref.values())
    }

    /// How many objects of `class` (by name) are cached.
    pub fn len(&self, class: &str) -> usize {
        self.classes.get(&key(class)).map_or(0, |m| m.by_ref.len())
    }

    /// The cached record of `r`.
    pub fn get<T: XapiRecord>(&self, r: &Ref<T>) -> Option<&T> {
        self.object(T::WIRE_NAME, r.as_str())?.get::<T>()
    }

    /// The cached record of `r`, shared (to keep after the read lock is released).
    pub fn get_arc<T: XapiRecord>(&self, r: &Ref<T>) -> Option<Arc<T>> {
        self.object(T::WIRE_NAME, r.as_str())?.typed::<T>()
    }

    /// Every cached record of class `T`, in no particular order.
    pub fn all<T: XapiRecord>(&self) -> impl Iterator<Item = (Ref<T>, &T)> {
        self.objects(T::WIRE_NAME)
            .filter_map(|o| Some((Ref::new(&o.ref_), o.get::<T>()?)))
    }

    /// The record of class `T` with this uuid.
    pub fn by_uuid<T: XapiRecord>(&self, uuid: &str) -> Option<(Ref<T>, &T)> {
        let o = self.object_by_uuid(T::WIRE_NAME, uuid)?;
        Some((Ref::new(&o.ref_), o.get::<T>()?))
    }

    /// Every record of class `T` with this `name_label` (names are not unique).
    pub fn by_name<T: XapiRecord>(&self, name: &str) -> Vec<(Ref<T>, &T)> {
        self.all::<T>()
            .filter(|(_, t)| t.name_label() == name)
            .collect()
    }

    /// Follows a ref field; `None` for the null ref or an object not in the cache.
    pub fn follow<T: XapiRecord>(&self, r: &Ref<T>) -> Option<(Ref<T>, &T)> {
        if r.is_null() {
            return None;
        }
        Some((r.clone(), self.get(r)?))
    }

    /// Follows a set-of-refs field, skipping refs not in the cache.
    pub fn follow_all<T: XapiRecord>(&self, refs: &[Ref<T>]) -> Vec<(Ref<T>, &T)> {
        refs.iter().filter_map(|r| self.follow(r)).collect()
    }

    // Navigation between the objects operators ask about.

    /// The host the VM runs on.
    pub fn vm_host(&self, vm: &Vm) -> Option<(Ref<Host>, &Host)> {
        self.follow(&vm.resident_on)
    }
    /// The VM's VIFs, sorted by device number.
    pub fn vm_vifs(&self, vm: &Vm) -> Vec<(Ref<Vif>, &Vif)> {
        let mut v = self.follow_all(&vm.vifs);
        v.sort_by_key(|(r, vif)| (vif.device.parse::<u64>().unwrap_or(u64::MAX), r.clone()));
        v
    }
    /// The networks the VM's VIFs are on, in VIF order, without repeats.
    pub fn vm_networks(&self, vm: &Vm) -> Vec<(Ref<Network>, &Network)> {
        let mut out: Vec<(Ref<Network>, &Network)> = Vec::new();
        for (_, vif) in self.vm_vifs(vm) {
            if let Some(n) = self.follow(&vif.network) {
                if !out.iter().any(|(r, _)| *r == n.0) {
                    out.push(n);
                }
            }
        }
        out
    }
    /// What the VM's guest agent reports (`None` without tools).
    pub fn vm_guest_metrics(&self, vm: &Vm) -> Option<&VmGuestMetrics> {
        self.follow(&vm.guest_metrics).map(|(_, m)| m)
    }
    /// The VM's metrics (memory actually used, vCPUs…).
    pub fn vm_metrics(&self, vm: &Vm) -> Option<&VmMetrics> {
        self.follow(&vm.metrics).map(|(_, m)| m)
    }
    /// The network a VIF is on.
    pub fn vif_network(&self, vif: &Vif) -> Option<(Ref<Network>, &Network)> {
        self.follow(&vif.network)
    }
    /// The VM a VIF belongs to.
    pub fn vif_vm(&self, vif: &Vif) -> Option<(Ref<Vm>, &Vm)> {
        self.follow(&vif.vm)
    }
    /// The network's PIFs (one per host, or per host and VLAN).
    pub fn network_pifs(&self, net: &Network) -> Vec<(Ref<Pif>, &Pif)> {
        self.follow_all(&net.pifs)
    }
    /// The network's VIFs.
    pub fn network_vifs(&self, net: &Network) -> Vec<(Ref<Vif>, &Vif)> {
        self.follow_all(&net.vifs)
    }
    /// The network a PIF connects.
    pub fn pif_network(&self, pif: &Pif) -> Option<(Ref<Network>, &Network)> {
        self.follow(&pif.network)
    }
    /// The host a PIF belongs to.
    pub fn pif_host(&self, pif: &Pif) -> Option<(Ref<Host>, &Host)> {
        self.follow(&pif.host)
    }
    /// The VLAN this PIF is the untagged end of (`PIF.VLAN_master_of`).
    pub fn pif_vlan(&self, pif: &Pif) -> Option<(Ref<Vlan>, &Vlan)> {
        self.follow(&pif.vlan_master_of)
    }
    /// The bond this PIF is the master of.
    pub fn pif_bond(&self, pif: &Pif) -> Option<(Ref<Bond>, &Bond)> {
        self.follow_all(&pif.bond_master_of).into_iter().next()
    }
    /// The bond this PIF is a slave of.
    pub fn pif_bond_slave_of(&self, pif: &Pif) -> Option<(Ref<Bond>, &Bond)> {
        self.follow(&pif.bond_slave_of)
    }

    fn apply(&mut self, ev: ObjectEvent) {
        let m = self.classes.entry(key(&ev.class)).or_default();
        match (ev.op, ev.snapshot) {
            (Op::Del, _) => m.remove(&ev.ref_),
            (_, Some(snapshot)) => m.insert(Object::new(ev.class, ev.ref_, snapshot)),
            (_, None) => {} // the watcher never yields add/mod without a snapshot
        }
    }
}

struct Shared {
    objects: RwLock<Objects>,
    /// Bumped after every applied batch or listing, with `changed` notified.
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Shared {
    fn bump(&self) {
        let mut g = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        *g += 1;
        self.changed.notify_all();
    }
}

/// The single writer. Feed it every item the watcher yields.
pub struct CacheWriter {
    shared: Arc<Shared>,
    listing: Option<Vec<ObjectEvent>>,
    pending: Vec<ObjectEvent>,
}

/// A cheap, cloneable read handle.
#[derive(Clone)]
pub struct CacheReader {
    shared: Arc<Shared>,
}

/// A read lock on the objects; the writer waits while it is held, so keep it short.
pub struct Snapshot<'a>(RwLockReadGuard<'a, Objects>);

impl Deref for Snapshot<'_> {
    type Target = Objects;
    fn deref(&self) -> &Objects {
        &self.0
    }
}

/// A new, empty cache: the writer to feed and a reader to share.
pub fn cache() -> (CacheWriter, CacheReader) {
    let shared = Arc::new(Shared {
        objects: RwLock::new(Objects::default()),
        generation: Mutex::new(0),
        changed: Condvar::new(),
    });
    (
        CacheWriter {
            shared: shared.clone(),
            listing: None,
            pending: Vec::new(),
        },
        CacheReader { shared },
    )
}

impl CacheWriter {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Objects> {
        self.shared
            .objects
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one watcher item. Listings are swapped in at `InitDone`, events at `Bookmark`.
    pub fn apply(&mut self, ev: WatchEvent) {
        match ev {
            WatchEvent::Resync(_) => {
                self.write().stats.resyncs += 1;
                self.pending.clear();
            }
            WatchEvent::Init => {
                self.listing = Some(Vec::new());
                self.pending.clear();
            }
            WatchEvent::InitObject(e) => self.listing.get_or_insert_with(Vec::new).push(e),
            WatchEvent::InitDone { token } => {
                let mut fresh = HashMap::<String, ClassMap>::new();
                for e in self.listing.take().unwrap_or_default() {
                    if let Some(snapshot) = e.snapshot {
                        fresh
                            .entry(key(&e.class))
                            .or_default()
                            .insert(Object::new(e.class, e.ref_, snapshot));
                    }
                }
                let old = {
                    let mut w = self.write();
                    w.ready = true;
                    w.token = Some(token);
                    w.stats.listings += 1;
                    std::mem::replace(&mut w.classes, fresh)
                };
                drop(old); // freed outside the lock
                self.shared.bump();
            }
            WatchEvent::Event(e) => self.pending.push(e),
            WatchEvent::Bookmark { token, .. } => {
                let n = self.pending.len() as u64;
                let pending = std::mem::take(&mut self.pending);
                {
                    let mut w = self.write();
                    for e in pending {
                        w.apply(e);
                    }
                    w.token = Some(token);
                    w.stats.events_applied += n;
                    w.stats.batches_applied += 1;
                }
                self.shared.bump();
            }
        }
    }

    /// Records an error the watcher reported (it keeps going).
    pub fn error(&mut self, e: &dyn std::fmt::Display) {
        let mut w = self.write();
        w.stats.errors += 1;
        w.stats.last_error = Some(e.to_string());
    }

    pub fn reader(&self) -> CacheReader {
        CacheReader {
            shared: self.shared.clone(),
        }
    }
}

impl CacheReader {
    pub fn read(&self) -> Snapshot<'_> {
        Snapshot(
            self.shared
                .objects
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    pub fn is_ready(&self) -> bool {
        self.read().is_ready()
    }

    pub fn stats(&self) -> CacheStats {
        self.read().stats().clone()
    }

    /// How many batches or listings were applied so far (changes on every update).
    pub fn generation(&self) -> u64 {
        *self
            .shared
            .generation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `f` returns `Some` on the objects (checked now and after every applied
    /// batch), or the timeout ends (`None`).
    pub fn wait_for<R>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&Objects) -> Option<R>,
    ) -> Option<R> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.generation();
            if let Some(r) = f(&self.read()) {
                return Some(r);
            }
            let mut g = self
                .shared
                .generation
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            while *g == seen {
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                g = self
                    .shared
                    .changed
                    .wait_timeout(g, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }

    /// Waits until the predicate holds; false on timeout.
    pub fn wait_until(&self, timeout: Duration, mut pred: impl FnMut(&Objects) -> bool) -> bool {
        self.wait_for(timeout, |o| pred(o).then_some(())).is_some()
    }

    /// The cached record of `r`, shared.
    pub fn get<T: XapiRecord>(&self, r: &Ref<T>) -> Option<Arc<T>> {
        self.read().get_arc(r)
    }

    /// Waits for the VM's first guest address (the guest agent's, IPv4 first; VIF order).
    /// Watch `VM`, `VIF` and `VM_guest_metrics` for this to see anything.
    pub fn wait_for_guest_ip(&self, vm: &Ref<Vm>, timeout: Duration) -> Option<IpAddr> {
        self.wait_for(timeout, |o| {
            let v = o.get(vm)?;
            if v.power_state != VmPowerState::Running {
                return None;
            }
            let gm = o.vm_guest_metrics(v)?;
            o.vm_vifs(v)
                .into_iter()
                .find_map(|(_, vif)| guest_addresses(gm, &vif.device).into_iter().next())
        })
    }

    /// Waits until the VM is in `state`; false on timeout.
    pub fn wait_for_power_state(
        &self,
        vm: &Ref<Vm>,
        state: VmPowerState,
        timeout: Duration,
    ) -> bool {
        self.wait_until(timeout, |o| {
            o.get(vm).is_some_and(|v| v.power_state == state)
        })
    }

    /// Waits until the task succeeded, failed or was cancelled and returns its record (`None` on timeout).
    /// Watch `task` for this to see anything.
    pub fn wait_for_task(&self, task: &Ref<Task>, timeout: Duration) -> Option<Arc<Task>> {
        self.wait_for(timeout, |o| {
            o.get_arc(task).filter(|t| {
                use TaskStatusType::{Cancelled, Failure, Success};
                matches!(t.status, Success | Failure | Cancelled)
            })
        })
    }

    /// Waits for the first listing.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, Objects::is_ready)
    }
}

/// A cache kept in sync by a watcher on its own thread.
pub struct Cache {
    reader: CacheReader,
    stop: StopHandle,
    thread: Option<JoinHandle<()>>,
}

impl Cache {
    /// Starts watching `cfg.classes` through `client` in a new thread.
    pub fn spawn(client: Client, cfg: WatchConfig) -> std::io::Result<Cache> {
        let (mut writer, reader) = cache();
        let watcher = Watcher::new(client, cfg);
        let stop = watcher.stop_handle();
        let thread = std::thread::Builder::new()
            .name("xo-events".into())
            .spawn(move || {
                for item in watcher {
                    match item {
                        Ok(ev) => writer.apply(ev),
                        Err(e) => writer.error(&e),
                    }
                }
            })?;
        Ok(Cache {
            reader,
            stop,
            thread: Some(thread),
        })
    }

    pub fn reader(&self) -> CacheReader {
        self.reader.clone()
    }

    /// Stops the watcher and waits for its thread (at most about the poll timeout).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Deref for Cache {
    type Target = CacheReader;
    fn deref(&self) -> &CacheReader {
        &self.reader
    }
}

impl Drop for Cache {
    /// Signals the watcher without waiting: its thread ends after its current poll.
    fn drop(&mut self) {
        self.stop.stop();
    }
}
