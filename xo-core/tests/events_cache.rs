//! The cache stays equal to a fresh listing across a long seeded random sequence of creates,
//! modifies and destroys in several classes, with session expiry, transport failures, API
//! errors and lost events injected along the way.

mod memory_xapi;
use memory_xapi::{Fault, MemorySource};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use xo_core::events::{cache, Cache, Objects, Record, WatchConfig, WatchEvent, Watcher};
use xo_core::model::{Struct, Value};

const CLASSES: [&str; 5] = ["VM", "VIF", "network", "VDI", "message"];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn record(name: &str, seq: u64) -> Struct {
    let oc = Value::Struct(Struct(vec![("seq".into(), seq.to_string().into())]));
    Struct(vec![
        ("name_label".into(), name.into()),
        ("other_config".into(), oc),
    ])
}

/// Class → ref → record, from the cache.
fn cached(o: &Objects) -> BTreeMap<String, BTreeMap<String, Value>> {
    CLASSES
        .iter()
        .map(|c| {
            (
                c.to_string(),
                o.objects(c)
                    .map(|x| (x.ref_.clone(), x.value().clone()))
                    .collect(),
            )
        })
        .collect()
}

/// Class → ref → record, straight from the source.
fn truth(src: &MemorySource) -> BTreeMap<String, BTreeMap<String, Value>> {
    CLASSES
        .iter()
        .map(|c| {
            // Decoded as the cache decodes them, so typed classes compare in their wire form.
            let records = src.records(c).into_iter();
            let wire = records.map(|(r, v)| (r, Record::decode(c, v).to_value()));
            (c.to_string(), wire.collect())
        })
        .collect()
}

/// Applies `n` random operations; returns how many faults were injected.
fn random_ops(src: &MemorySource, rng: &mut Rng, n: usize, faults: bool) -> usize {
    let mut injected = 0;
    for i in 0..n {
        let class = CLASSES[rng.below(CLASSES.len() as u64) as usize];
        let refs = src.refs(class);
        let seq = i as u64 + 1;
        match rng.below(10) {
            0..=3 => {
                src.create(class, record(&format!("{class}-{i}"), seq));
            }
            4..=7 if !refs.is_empty() => {
                let r = &refs[rng.below(refs.len() as u64) as usize];
                src.modify(class, r, |rec| {
                    rec.insert(
                        "other_config",
                        Value::Struct(Struct(vec![("seq".into(), seq.to_string().into())])),
                    )
                });
            }
            8 if !refs.is_empty() => {
                src.destroy(class, &refs[rng.below(refs.len() as u64) as usize]);
            }
            _ => {}
        }
        if faults && rng.below(25) == 0 {
            injected += 1;
            match rng.below(5) {
                0 => src.inject_fault(Fault::ExpireSession),
                1 => src.inject_fault(Fault::Transport),
                2 => src.inject_fault(Fault::Api("INTERNAL_ERROR".into())),
                3 => src.forget_history(),
                // A master switch as the client sees it: several failed calls, then a new session.
                _ => {
                    src.inject_fault(Fault::Transport);
                    src.inject_fault(Fault::Transport);
                    src.inject_fault(Fault::ExpireSession);
                }
            }
        }
        if rng.below(20) == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(5)));
        }
    }
    injected
}

fn cfg() -> WatchConfig {
    WatchConfig::new(CLASSES)
        .poll_timeout(0.2)
        .backoff(Duration::from_millis(1), Duration::from_millis(20))
}

#[test]
fn spawned_cache_matches_a_fresh_listing_after_random_changes_under_faults() {
    for seed in [1u64, 7, 42] {
        let src = Arc::new(MemorySource::new());
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        random_ops(&src, &mut rng, 50, false);
        let c = Cache::spawn(memory_xapi::client(&src), cfg()).unwrap();
        assert!(c.wait_ready(Duration::from_secs(5)));
        let injected = random_ops(&src, &mut rng, 600, true);
        assert!(injected > 5, "seed {seed}: only {injected} faults");
        let want = truth(&src);
        let t0 = std::time::Instant::now();
        let ok = c.wait_until(Duration::from_secs(20), |o| cached(o) == want);
        eprintln!("seed {seed}: converged={ok} after {:?}", t0.elapsed());
        let stats = c.stats();
        if !ok {
            let got = cached(&c.read());
            for cl in CLASSES {
                let (g, t) = (&got[cl], &want[cl]);
                let missing: Vec<_> = t.keys().filter(|k| !g.contains_key(*k)).collect();
                let extra: Vec<_> = g.keys().filter(|k| !t.contains_key(*k)).collect();
                let differ: Vec<_> = t
                    .iter()
                    .filter(|(k, v)| g.get(*k).is_some_and(|x| x != *v))
                    .map(|(k, _)| k)
                    .collect();
                eprintln!("{cl}: missing {missing:?} extra {extra:?} differ {differ:?}");
            }
        }
        assert!(ok, "seed {seed}: cache diverged; stats {stats:?}");
        assert!(stats.events_applied + stats.listings > 10, "{stats:?}");
        // Whether a forgotten history hits the watcher depends on timing; errors always do.
        assert!(stats.errors >= 1, "{stats:?}");
        assert!(src.relogins() >= 1);
        // A last change after all the faults still arrives.
        let vm = src.create("VM", record("last", 9999));
        assert!(c.wait_until(Duration::from_secs(5), |o| o.object("VM", &vm).is_some()));
        c.stop();
    }
}

/// Driven by hand on one thread: after every batch, each cached object carries exactly the
/// latest sequence number the source has (nothing lost, nothing stale, nothing applied twice),
/// and every event is for a change that really happened since the previous batch.
#[test]
fn manual_drive_applies_each_batch_exactly() {
    let src = Arc::new(MemorySource::new());
    let mut rng = Rng(0xDEAD_BEEF);
    random_ops(&src, &mut rng, 40, false);
    let (mut writer, reader) = cache();
    let mut w = Watcher::new(memory_xapi::client(&src), cfg());
    let mut applied = 0u64;
    for round in 0..60 {
        random_ops(&src, &mut rng, 10, round % 3 == 0);
        // Pull until the watcher has caught up with the source (an empty poll or a listing).
        loop {
            if w.token().is_some()
                && reader.read().token() == w.token()
                && cached(&reader.read()) == truth(&src)
            {
                break;
            }
            match w.next().unwrap() {
                Ok(WatchEvent::Bookmark {
                    token,
                    valid_ref_counts,
                }) => {
                    writer.apply(WatchEvent::Bookmark {
                        token,
                        valid_ref_counts: valid_ref_counts.clone(),
                    });
                    let o = reader.read();
                    for c in CLASSES {
                        let n = valid_ref_counts
                            .get(&c.to_ascii_lowercase())
                            .copied()
                            .unwrap_or(0);
                        assert_eq!(
                            o.len(c),
                            n as usize,
                            "round {round} class {c}: count after batch"
                        );
                    }
                }
                Ok(WatchEvent::InitDone { token }) => writer.apply(WatchEvent::InitDone { token }),
                Ok(ev) => {
                    if matches!(ev, WatchEvent::Event(_)) {
                        applied += 1;
                    }
                    writer.apply(ev)
                }
                Err(e) => writer.error(&e),
            }
        }
    }
    assert_eq!(reader.stats().events_applied, applied);
    assert!(applied > 200, "{applied}");
}
