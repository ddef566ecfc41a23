//! The dynamic object database: class → ref → fields (in datamodel order), a uuid index, and
//! a change log keyed by generation for `event.from`.

use std::collections::{BTreeMap, HashMap};

use super::datamodel::{Datamodel, Ty};
use crate::model::{Struct, Value};

pub struct Obj {
    pub uuid: String,
    pub fields: Vec<Value>,
    pub created: u64,
    pub modified: u64,
}

#[derive(Default)]
pub struct Table {
    pub objs: BTreeMap<String, Obj>,
    pub by_uuid: HashMap<String, String>,
}

/// One entry of the change log.
#[derive(Clone)]
pub enum Change {
    /// Created or modified; the op is decided when read.
    Touch { class: usize, r: String },
    Deleted {
        class: usize,
        r: String,
        created: u64,
    },
}

impl Change {
    pub fn key(&self) -> (usize, &str) {
        match self {
            Change::Touch { class, r } | Change::Deleted { class, r, .. } => (*class, r),
        }
    }
}

/// Log entries kept before the oldest half is dropped; older tokens fall back to a scan.
const LOG_CAP: usize = 1 << 20;

pub struct Db {
    pub dm: &'static Datamodel,
    pub tables: Vec<Table>,
    pub generation: u64,
    /// Generation of each change, ascending.
    pub log: Vec<(u64, Change)>,
    /// Changes at or below this generation may have been dropped from the log.
    pub log_floor: u64,
    rng: u64,
}

impl Db {
    pub fn new(seed: u64) -> Db {
        let dm = Datamodel::get();
        Db {
            dm,
            tables: dm.classes.iter().map(|_| Table::default()).collect(),
            generation: 0,
            log: Vec::new(),
            log_floor: 0,
            rng: seed | 1,
        }
    }

    /// A fresh version-4 uuid from a fast generator (these are identifiers, not secrets).
    pub fn uuid(&mut self) -> String {
        let mut b = [0u8; 16];
        for chunk in b.chunks_mut(8) {
            // splitmix64
            self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes());
        }
        format_uuid(b)
    }

    pub fn new_ref(&mut self) -> String {
        format!("OpaqueRef:{}", self.uuid())
    }

    fn bump(&mut self, class: usize, change: Change) -> u64 {
        self.generation += 1;
        if self.dm.classes[class].gen_events {
            if self.log.len() >= LOG_CAP {
                let cut = self.log.len() / 2;
                self.log_floor = self.log[cut - 1].0;
                self.log.drain(..cut);
            }
            self.log.push((self.generation, change));
        }
        self.generation
    }

    /// Inserts a loaded row as is (relations are rebuilt afterwards with `rebuild_relations`).
    pub fn insert_raw(&mut self, class: usize, r: String, fields: Vec<Value>) {
        let dm = self.dm;
        let uuid = dm.classes[class]
            .field_index
            .get("uuid")
            .and_then(|&i| fields[i].as_str())
            .unwrap_or_default()
            .to_owned();
        let g = self.bump(
            class,
            Change::Touch {
                class,
                r: r.clone(),
            },
        );
        let table = &mut self.tables[class];
        if !uuid.is_empty() {
            table.by_uuid.insert(uuid.clone(), r.clone());
        }
        table.objs.insert(
            r,
            Obj {
                uuid,
                fields,
                created: g,
                modified: g,
            },
        );
    }

    /// Recomputes every one-to-many set from the child side.
    pub fn rebuild_relations(&mut self) {
        let dm = self.dm;
        for (pi, p) in dm.classes.iter().enumerate() {
            for &(pf, ci, gi) in &p.relations {
                let mut children: HashMap<String, Vec<Value>> = HashMap::new();
                for (r, o) in &self.tables[ci].objs {
                    if let Some(t) = o.fields[gi].as_str() {
                        children
                            .entry(t.to_owned())
                            .or_default()
                            .push(Value::String(r.clone()));
                    }
                }
                for (r, o) in self.tables[pi].objs.iter_mut() {
                    let mut computed = children.remove(r).unwrap_or_default();
                    // Keep the order a dump gave when it lists the same members.
                    if let Value::Array(loaded) = &o.fields[pf] {
                        let mut a: Vec<&Value> = loaded.iter().collect();
                        let mut b: Vec<&Value> = computed.iter().collect();
                        a.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
                        b.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
                        if a == b {
                            computed = loaded.clone();
                        }
                    }
                    o.fields[pf] = Value::Array(computed);
                }
            }
        }
    }

    pub fn exists(&self, class: usize, r: &str) -> bool {
        self.tables[class].objs.contains_key(r)
    }

    /// Inserts an object with all fields at their defaults, then `set`s the given ones.
    /// Relations (parent ref sets) are updated. Returns the ref.
    pub fn create(
        &mut self,
        class: usize,
        r: Option<String>,
        uuid: Option<String>,
        values: Vec<(&str, Value)>,
    ) -> String {
        let r = r.unwrap_or_else(|| self.new_ref());
        let uuid = uuid.unwrap_or_else(|| self.uuid());
        let dm = self.dm;
        let c = &dm.classes[class];
        let mut fields: Vec<Value> = c.fields.iter().map(|f| f.default.clone()).collect();
        if let Some(&ui) = c.field_index.get("uuid") {
            fields[ui] = Value::String(uuid.clone());
        }
        let mut linked = Vec::new();
        for (name, v) in values {
            if let Some(&i) = c.field_index.get(name) {
                if matches!(c.fields[i].ty, Ty::Ref(_)) {
                    linked.push(i);
                }
                fields[i] = v;
            }
        }
        let g = self.bump(
            class,
            Change::Touch {
                class,
                r: r.clone(),
            },
        );
        let table = &mut self.tables[class];
        table.by_uuid.insert(uuid.clone(), r.clone());
        table.objs.insert(
            r.clone(),
            Obj {
                uuid,
                fields,
                created: g,
                modified: g,
            },
        );
        for i in linked {
            let target = self.tables[class].objs[&r].fields[i].clone();
            self.link(class, i, &r, &target, true);
        }
        r
    }

    /// Adds or removes `r` in the parent's relation set for child field `fi`.
    fn link(&mut self, class: usize, fi: usize, r: &str, target: &Value, add: bool) {
        let Some(t) = target.as_str() else { return };
        let dm = self.dm;
        let Ty::Ref(pc) = &dm.classes[class].fields[fi].ty else {
            return;
        };
        let Some(pi) = dm.index(pc) else { return };
        let Some(&(pf, _, _)) = dm.classes[pi]
            .relations
            .iter()
            .find(|(_, ci, gi)| *ci == class && *gi == fi)
        else {
            return;
        };
        if !self.exists(pi, t) {
            return;
        }
        let t = t.to_owned();
        self.touch(pi, &t);
        if let Some(Value::Array(set)) = self.tables[pi].objs.get_mut(&t).map(|o| &mut o.fields[pf])
        {
            if add {
                set.push(Value::String(r.to_owned()));
            } else {
                set.retain(|v| v.as_str() != Some(r));
            }
        }
    }

    pub fn destroy(&mut self, class: usize, r: &str) -> bool {
        let Some(obj) = self.tables[class].objs.remove(r) else {
            return false;
        };
        self.tables[class].by_uuid.remove(&obj.uuid);
        let dm = self.dm;
        let c = &dm.classes[class];
        for (i, f) in c.fields.iter().enumerate() {
            if matches!(f.ty, Ty::Ref(_)) {
                self.link(class, i, r, &obj.fields[i], false);
            }
        }
        self.bump(
            class,
            Change::Deleted {
                class,
                r: r.to_owned(),
                created: obj.created,
            },
        );
        true
    }

    /// Marks an object modified (an event without a field change, like `event.inject`).
    pub fn touch(&mut self, class: usize, r: &str) -> bool {
        if !self.exists(class, r) {
            return false;
        }
        let g = self.bump(
            class,
            Change::Touch {
                class,
                r: r.to_owned(),
            },
        );
        if let Some(o) = self.tables[class].objs.get_mut(r) {
            o.modified = g;
        }
        true
    }

    pub fn get(&self, class: usize, r: &str, field: &str) -> Option<&Value> {
        let fi = *self.dm.classes[class].field_index.get(field)?;
        self.tables[class].objs.get(r).map(|o| &o.fields[fi])
    }

    pub fn get_str(&self, class: usize, r: &str, field: &str) -> String {
        self.get(class, r, field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    pub fn get_i64(&self, class: usize, r: &str, field: &str) -> i64 {
        self.get(class, r, field)
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    pub fn get_bool(&self, class: usize, r: &str, field: &str) -> bool {
        self.get(class, r, field)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Sets a field, keeping relations in step. Unknown objects or fields are ignored.
    pub fn set(&mut self, class: usize, r: &str, field: &str, v: Value) {
        let Some(&fi) = self.dm.classes[class].field_index.get(field) else {
            return;
        };
        self.set_index(class, r, fi, v);
    }

    pub fn set_index(&mut self, class: usize, r: &str, fi: usize, v: Value) {
        let Some(old) = self.tables[class].objs.get(r).map(|o| o.fields[fi].clone()) else {
            return;
        };
        let is_ref = matches!(self.dm.classes[class].fields[fi].ty, Ty::Ref(_));
        if is_ref && old != v {
            self.link(class, fi, r, &old, false);
            self.link(class, fi, r, &v, true);
        }
        self.touch(class, r);
        if let Some(o) = self.tables[class].objs.get_mut(r) {
            o.fields[fi] = v;
        }
    }

    /// Mutates a map field in place.
    pub fn update_map(&mut self, class: usize, r: &str, field: &str, f: impl FnOnce(&mut Struct)) {
        let Some(&fi) = self.dm.classes[class].field_index.get(field) else {
            return;
        };
        if !self.touch(class, r) {
            return;
        }
        if let Some(Value::Struct(s)) = self.tables[class]
            .objs
            .get_mut(r)
            .map(|o| &mut o.fields[fi])
        {
            f(s);
        }
    }

    /// Mutates a set field in place.
    pub fn update_set(
        &mut self,
        class: usize,
        r: &str,
        field: &str,
        f: impl FnOnce(&mut Vec<Value>),
    ) {
        let Some(&fi) = self.dm.classes[class].field_index.get(field) else {
            return;
        };
        if !self.touch(class, r) {
            return;
        }
        if let Some(Value::Array(s)) = self.tables[class]
            .objs
            .get_mut(r)
            .map(|o| &mut o.fields[fi])
        {
            f(s);
        }
    }

    /// The record as `get_record` returns it: every field, options that are unset left out.
    pub fn record(&self, class: usize, r: &str) -> Option<Value> {
        let o = self.tables[class].objs.get(r)?;
        Some(Value::Struct(record_of(&self.dm.classes[class], o)))
    }

    pub fn refs(&self, class: usize) -> impl Iterator<Item = &String> {
        self.tables[class].objs.keys()
    }

    pub fn by_uuid(&self, class: usize, uuid: &str) -> Option<&String> {
        self.tables[class].by_uuid.get(uuid)
    }

    /// Refs of `class` whose `field` equals the string `v`.
    pub fn find(&self, class: usize, field: &str, v: &str) -> Vec<String> {
        let Some(&fi) = self.dm.classes[class].field_index.get(field) else {
            return Vec::new();
        };
        self.tables[class]
            .objs
            .iter()
            .filter(|(_, o)| o.fields[fi].as_str() == Some(v))
            .map(|(r, _)| r.clone())
            .collect()
    }

    pub fn count(&self, class: usize) -> usize {
        self.tables[class].objs.len()
    }

    pub fn class_index(&self, name: &str) -> usize {
        // Only called with names the simulator itself spells; all exist in the spec.
        self.dm.index(name).unwrap_or(0)
    }
}

pub fn record_of(c: &super::datamodel::Class, o: &Obj) -> Struct {
    Struct(
        c.fields
            .iter()
            .zip(&o.fields)
            .filter(|(_, v)| !matches!(v, Value::Nil))
            .map(|(f, v)| (f.name.clone(), v.clone()))
            .collect(),
    )
}

pub fn format_uuid(mut b: [u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 15)]));
    }
    out
}
