//! Crash test: a child process accepts a stream of messages and is SIGKILLed at random moments,
//! 20 times. After a final restart, every message the child reported as accepted (it prints the
//! id after `submit` returned, i.e. after the durable commit) must reach the receiver at least
//! once. Duplicates are allowed (at-least-once) and reported.
//!
//! The child is this test binary re-run with `XO_WEBHOOK_CRASH_CHILD` set.

mod webhook_support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webhook_support::{Receiver, Reply};
use xo_core::webhooks::engine::{Engine, EngineOptions, Submission};
use xo_core::webhooks::spec::Spec;
use xo_core::webhooks::store::{SqliteStore, Store};

const KILLS: usize = 20;

fn child_spec(url: &str) -> Spec {
    Spec::load(&format!(
        r#"{{"version":1,"endpoints":[{{"id":"e","url":"{url}","timeoutSeconds":2,
            "retry":{{"schedule":[0.02,0.05,0.1,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2],"jitter":0.2}}}}]}}"#
    ))
    .unwrap()
}

/// The child: runs the engine on the given database; in "feed" mode submits batches forever,
/// printing `ACCEPTED <id>` for each message once `submit_many` has returned.
#[test]
#[ignore = "run by webhooks_crash as a child process"]
fn crash_child_entry() {
    let Ok(db) = std::env::var("XO_WEBHOOK_CRASH_CHILD") else {
        return;
    };
    let url = std::env::var("XO_WEBHOOK_CRASH_URL").unwrap();
    let feed = std::env::var("XO_WEBHOOK_CRASH_MODE").as_deref() == Ok("feed");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    let opts = EngineOptions {
        workers: 4,
        poll_interval: Duration::from_millis(20),
        ..EngineOptions::default()
    };
    let eng = Engine::start(store, child_spec(&url), opts).unwrap();
    let out = std::io::stdout();
    let mut n = 0u64;
    loop {
        if feed {
            let batch: Vec<Submission> = (0..4)
                .map(|i| Submission::json("e", format!("{{\"n\":{}}}", n + i)))
                .collect();
            n += 4;
            let ids = eng.submit_many(batch).unwrap();
            let mut o = out.lock();
            for id in ids {
                writeln!(o, "ACCEPTED {id}").unwrap();
            }
            o.flush().unwrap();
            std::thread::sleep(Duration::from_millis(2));
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn spawn_child(db: &str, url: &str, mode: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("XO_WEBHOOK_CRASH_CHILD", db)
        .env("XO_WEBHOOK_CRASH_URL", url)
        .env("XO_WEBHOOK_CRASH_MODE", mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn sigkill_loses_nothing() {
    // A receiver that fails ~1 in 8 requests, so retries are in flight when the kills land.
    let rx = Receiver::with(|_, n| Reply::status(if n % 8 == 3 { 500 } else { 200 }));
    let dir = std::env::temp_dir().join(format!(
        "xo-webhooks-crash-{}-{}",
        std::process::id(),
        xo_core::webhooks::secret::random_id("")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("queue.db").to_string_lossy().into_owned();
    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let started = Instant::now();

    for _ in 0..KILLS {
        let mut child = spawn_child(&db, &rx.url, "feed");
        let stdout = child.stdout.take().unwrap();
        let acc = accepted.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line.strip_prefix("ACCEPTED ") {
                    if id.len() == 28 && id.starts_with("msg_") {
                        acc.lock().unwrap().push(id.to_string());
                    }
                }
            }
        });
        std::thread::sleep(Duration::from_millis(80 + rng.next() % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
    }

    // Final restart: deliver whatever is left.
    let mut child = spawn_child(&db, &rx.url, "drain");
    let want: HashSet<String> = accepted.lock().unwrap().iter().cloned().collect();
    assert!(want.len() > 100, "only {} messages accepted", want.len());
    let deadline = Instant::now() + Duration::from_secs(40);
    let (seen, missing) = loop {
        let seen: HashMap<String, usize> =
            rx.received()
                .iter()
                .filter(|r| r.status_ok())
                .fold(HashMap::new(), |mut m, r| {
                    *m.entry(r.id()).or_default() += 1;
                    m
                });
        let missing = want.iter().filter(|id| !seen.contains_key(*id)).count();
        if missing == 0 || Instant::now() > deadline {
            break (seen, missing);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let delivered_total: usize = want
        .iter()
        .map(|id| seen.get(id).copied().unwrap_or(0))
        .sum();
    let duplicates = delivered_total - (want.len() - missing);
    eprintln!(
        "crash test: {KILLS} SIGKILLs, {} accepted, {missing} lost, {duplicates} duplicate deliveries, {:.1} s",
        want.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(missing, 0, "accepted messages were lost");
    let _ = std::fs::remove_dir_all(&dir);
}
