//! The webhookd loop in a child process (this test binary re-run as the daemon, talking to the
//! parent's simulator over HTTP with our client), SIGKILLed at random moments while VMs change
//! state. After a final restart every power transition reached the receiver, always under one
//! message id. Two more runs make the child exit right before and right after a batch's commit
//! (messages + token): after a restart each change is delivered exactly once.

mod webhook_support;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use webhook_support::Receiver;
use xo_core::model::Value;
use xo_core::simulator::{SimConfig, Simulator};
use xo_core::webhooks::daemon::{self, Checkpoint, DaemonOptions, EventState};
use xo_core::webhooks::Spec;

const SPEC: &str = r#"{"version":1,
  "endpoints":[{"id":"up","url":"URL/up","retry":{"schedule":[0.1,0.2,0.3,0.5,1,1,1,1,1,1]}},
               {"id":"down","url":"URL/down","retry":{"schedule":[0.1,0.2,0.3,0.5,1,1,1,1,1,1]}}],
  "events":[{"endpoints":["up"],"class":"VM","operations":["mod"],
             "conditions":[{"field":"power_state","from":"Halted","to":"Running"}]},
            {"endpoints":["down"],"class":"VM","operations":["mod"],
             "conditions":[{"field":"power_state","from":"Running","to":"Halted"}]}]}"#;

/// The child: runs the daemon until killed.
#[test]
#[ignore = "run by webhookd_survives_sigkill as a child process"]
fn webhookd_child_entry() {
    let Ok(state) = std::env::var("XO_WEBHOOKD_STATE") else {
        return;
    };
    let spec = Spec::load(&std::env::var("XO_WEBHOOKD_SPEC").unwrap()).unwrap();
    let url = std::env::var("XAPI_URL").unwrap();
    let client = xo_core::client::Client::connect(
        xo_core::client::ClientConfig::new(url).with_plain_http(true),
        &std::env::var("XAPI_USER").unwrap(),
        std::env::var("XAPI_PASSWORD").unwrap(),
    )
    .unwrap();
    let mut opts = DaemonOptions::new(spec, state);
    opts.poll_timeout = 0.2;
    // Fault injection: exit (no cleanup, like a kill) at the first batch with messages, once.
    if let (Ok(at), Ok(flag)) = (
        std::env::var("XO_WEBHOOKD_CRASH_AT"),
        std::env::var("XO_WEBHOOKD_CRASH_FLAG"),
    ) {
        opts.checkpoint = Some(Arc::new(move |c: Checkpoint| {
            let hit = match c {
                Checkpoint::BeforeCommit { messages } => at == "before" && messages > 0,
                Checkpoint::AfterCommit { messages } => at == "after" && messages > 0,
            };
            if hit && std::fs::remove_file(&flag).is_ok() {
                std::process::exit(CRASH_EXIT);
            }
        }));
    }
    daemon::run(client, opts, Arc::new(AtomicBool::new(false))).unwrap();
}

const CRASH_EXIT: i32 = 86;

fn spawn(sim: &Simulator, spec: &str, state: &str) -> Child {
    spawn_with(sim, spec, state, &[])
}

fn spawn_with(sim: &Simulator, spec: &str, state: &str, env: &[(&str, &str)]) -> Child {
    let (user, pass) = sim.credentials();
    Command::new(std::env::current_exe().unwrap())
        .args([
            "webhookd_child_entry",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .envs(env.iter().copied())
        .env("XO_WEBHOOKD_STATE", state)
        .env("XO_WEBHOOKD_SPEC", spec)
        .env("XAPI_URL", sim.url())
        .env("XAPI_USER", user)
        .env("XAPI_PASSWORD", pass)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A small xorshift seeded from the clock: random kill points, printed for reruns.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn guests(t: &xo_core::client::Client, state: &str) -> Vec<String> {
    let recs = t.call_value("VM.get_all_records", vec![]).unwrap();
    let mut out: Vec<String> = recs
        .as_struct()
        .unwrap()
        .0
        .iter()
        .filter(|(_, r)| {
            let r = r.as_struct().unwrap();
            let f = |k: &str| r.0.iter().find(|(n, _)| n == k).map(|x| x.1.clone());
            f("is_a_template") == Some(Value::Bool(false))
                && f("is_control_domain") == Some(Value::Bool(false))
                && f("power_state") == Some(Value::String(state.into()))
        })
        .map(|(r, _)| r.clone())
        .collect();
    out.sort();
    out
}

type Key = (String, String, String);

/// Delivered (path, ref, name_label at the time) and how many deliveries each got.
fn delivered(rx: &Receiver) -> HashMap<Key, usize> {
    let mut m = HashMap::new();
    for (key, _) in deliveries(rx) {
        *m.entry(key).or_insert(0) += 1;
    }
    m
}

/// Every successful delivery: the change it describes and its `webhook-id`.
fn deliveries(rx: &Receiver) -> Vec<(Key, String)> {
    let mut out = Vec::new();
    for r in rx.received().iter().filter(|r| r.status_ok()) {
        // A request cut short by a kill arrives with a partial body; its sender never saw the
        // answer and sends it again.
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.body) else {
            continue;
        };
        let s = |x: &serde_json::Value| x.as_str().unwrap_or("").to_owned();
        let key = (
            r.path.clone(),
            s(&v["data"]["ref"]),
            s(&v["data"]["snapshot"]["name_label"]),
        );
        out.push((key, r.id()));
    }
    out
}

/// The ids each change was delivered under.
fn ids_per_change(rx: &Receiver) -> HashMap<Key, HashSet<String>> {
    let mut m: HashMap<Key, HashSet<String>> = HashMap::new();
    for (key, id) in deliveries(rx) {
        m.entry(key).or_default().insert(id);
    }
    m
}

fn queued_messages(dir: &std::path::Path) -> i64 {
    let c = rusqlite::Connection::open(dir.join("queue.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn webhookd_survives_sigkill() {
    let sim = Simulator::start(SimConfig {
        hosts: 1,
        vms: 40,
        ..SimConfig::default()
    })
    .unwrap();
    let sim = Arc::new(sim);
    let t = sim.connect().unwrap();
    let rx = Receiver::start();
    let spec = SPEC.replace("URL", rx.url.trim_end_matches("/hook"));
    let dir = std::env::temp_dir().join(format!("xo-webhookd-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.to_str().unwrap().to_owned();
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);

    let mut child = spawn(&sim, &spec, &state);
    // The first start takes a baseline; changes start once its token is saved.
    webhook_support::eventually(Duration::from_secs(20), || {
        EventState::open(&dir)
            .ok()
            .and_then(|s| s.token().ok().flatten())
    });
    let halted = guests(&t, "Halted");
    assert!(halted.len() >= 8, "need guests: {}", halted.len());
    let mut kills = 0;
    let mut expected: HashSet<Key> = HashSet::new();
    let steps = [
        ("up", "VM.start", "/up"),
        ("down", "VM.hard_shutdown", "/down"),
    ];
    for round in 0..2 {
        // A new name per round tells the rounds' deliveries apart.
        let label = format!("round-{round}");
        for vm in &halted {
            let p = vec![Value::String(vm.clone()), Value::String(label.clone())];
            t.call_value("VM.set_name_label", p).unwrap();
        }
        for (phase, method, path) in steps {
            for vm in &halted {
                let mut params = vec![Value::String(vm.clone())];
                if method == "VM.start" {
                    params.extend([Value::Bool(false), Value::Bool(false)]);
                }
                t.call_value(method, params).unwrap();
                std::thread::sleep(Duration::from_millis(rng.below(60)));
                if rng.below(4) == 0 {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    kills += 1;
                    child = spawn(&sim, &spec, &state);
                }
            }
            // Each VM changes once per phase: wait for the whole phase before the next, so
            // xapi's coalescing cannot fold a start and a stop into no change.
            let want: HashSet<Key> = halted
                .iter()
                .map(|v| (path.to_owned(), v.clone(), label.clone()))
                .collect();
            webhook_support::eventually(Duration::from_secs(60), || {
                let got: HashSet<_> = delivered(&rx).into_keys().collect();
                want.is_subset(&got).then_some(())
            });
            eprintln!(
                "round {round} phase {phase}: all {} transitions delivered",
                want.len()
            );
            expected.extend(want);
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let d = delivered(&rx);
    let got: HashSet<_> = d.keys().cloned().collect();
    assert_eq!(
        got, expected,
        "only the transitions made, each at least once"
    );
    // Duplicates are re-sends of one message, never the change queued again under a new id.
    for (key, ids) in ids_per_change(&rx) {
        assert_eq!(ids.len(), 1, "{key:?} delivered under several ids: {ids:?}");
    }
    let dups: usize = d.values().map(|n| n - 1).sum();
    eprintln!(
        "{kills} kills, {} transitions, {dups} duplicate deliveries",
        expected.len()
    );
    assert!(kills > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child exits at `at` ("before" or "after" the commit of the first batch that queues
/// messages); a restart then delivers every change exactly once, under one id.
fn crash_at_commit(at: &str) {
    let sim = Arc::new(
        Simulator::start(SimConfig {
            hosts: 1,
            vms: 24,
            ..SimConfig::default()
        })
        .unwrap(),
    );
    let t = sim.connect().unwrap();
    let rx = webhook_support::Receiver::start();
    let spec = SPEC.replace("URL", rx.url.trim_end_matches("/hook"));
    let dir = std::env::temp_dir().join(format!("xo-webhookd-commit-{at}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.to_str().unwrap().to_owned();
    let flag = dir.join("crash-once");
    std::fs::write(&flag, b"").unwrap();
    let flag_s = flag.to_str().unwrap().to_owned();
    let env = [
        ("XO_WEBHOOKD_CRASH_AT", at),
        ("XO_WEBHOOKD_CRASH_FLAG", flag_s.as_str()),
    ];
    let mut child = spawn_with(&sim, &spec, &state, &env);
    webhook_support::eventually(Duration::from_secs(20), || {
        EventState::open(&dir)
            .ok()
            .and_then(|s| s.token().ok().flatten())
    });
    let vms = guests(&t, "Halted");
    assert!(vms.len() >= 4, "need guests: {}", vms.len());
    for vm in &vms {
        let p = vec![
            Value::String(vm.clone()),
            Value::Bool(false),
            Value::Bool(false),
        ];
        t.call_value("VM.start", p).unwrap();
    }
    // The child exits at the first batch with messages.
    let status = webhook_support::eventually(Duration::from_secs(30), || child.try_wait().unwrap());
    assert_eq!(status.code(), Some(CRASH_EXIT), "{status:?}");
    assert!(!flag.exists());
    let before_restart = queued_messages(&dir);
    match at {
        "before" => assert_eq!(before_restart, 0),
        _ => assert!(before_restart > 0),
    }

    let mut child = spawn(&sim, &spec, &state);
    let label = |vm: &String| {
        let rec = t.call_value("VM.get_name_label", vec![Value::String(vm.clone())]);
        rec.unwrap().as_str().unwrap_or("").to_owned()
    };
    let want: HashSet<Key> = vms
        .iter()
        .map(|v| ("/up".to_owned(), v.clone(), label(v)))
        .collect();
    webhook_support::eventually(Duration::from_secs(30), || {
        let got: HashSet<Key> = delivered(&rx).into_keys().collect();
        want.is_subset(&got).then_some(())
    });
    // Time for a second copy to show up, if one were queued.
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let d = delivered(&rx);
    let got: HashSet<Key> = d.keys().cloned().collect();
    assert_eq!(got, want, "only the changes made");
    for (key, n) in &d {
        assert_eq!(*n, 1, "{key:?} delivered {n} times");
    }
    let ids: HashSet<String> = deliveries(&rx).into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), want.len(), "one id per change");
    assert_eq!(queued_messages(&dir), want.len() as i64, "queued once each");
    eprintln!(
        "crash {at} commit: {before_restart} queued before the restart, {} changes delivered once",
        want.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn crash_before_commit_delivers_each_change_once() {
    crash_at_commit("before");
}

#[test]
fn crash_after_commit_delivers_each_change_once() {
    crash_at_commit("after");
}
