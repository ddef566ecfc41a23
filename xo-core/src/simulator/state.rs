//! The simulator's shared state: the object database, sessions, hosts, faults, and the
//! background scheduler that drives tasks and guest agents.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::db::Db;
use super::faults::FaultState;

pub struct Session {
    /// Host index the session was opened on.
    pub host: usize,
    /// `slave_local_login_with_password`: valid only on `host`.
    pub local: bool,
    pub originator: String,
    /// Login order, to find the oldest session when over the limit.
    pub seq: u64,
    /// Last call made with the session (idle timeout).
    pub last_active: Instant,
    /// When the `last_active` field in the database was last written.
    pub last_written: Instant,
}

/// A session's legacy event subscription (`event.register` / `event.next`).
pub struct Registration {
    pub classes: Vec<String>,
    /// Changes after this generation are still to be delivered.
    pub since: u64,
    /// Legacy event ids come from a counter.
    pub next_id: u64,
}

pub struct HostSlot {
    pub r: String,
    pub ip: IpAddr,
}

pub struct State {
    pub db: Db,
    pub sessions: HashMap<String, Session>,
    pub users: Vec<(String, String)>,
    pub hosts: Vec<HostSlot>,
    pub master: usize,
    pub pool: String,
    pub task_duration: Duration,
    pub guest_agent_delay: Duration,
    /// Messages created so far (second half of event tokens).
    pub message_gen: u64,
    /// VMs whose guest runs the guest agent (simulator-side knowledge, not in the DB).
    pub tools: HashSet<String>,
    /// Async task → the object whose `current_operations` it holds.
    pub task_ops: HashMap<String, (usize, String)>,
    pub next_domid: i64,
    pub session_seq: u64,
    /// Legacy `event.register` subscriptions, per session.
    pub registrations: HashMap<String, Registration>,
    /// Finished tasks, oldest first (xapi keeps at most `MAX_TASKS`).
    pub completed_tasks: std::collections::VecDeque<String>,
    /// Largest `PUT /import` body accepted.
    pub max_import_bytes: usize,
    /// `event.from` batching delay after the first change.
    pub event_from_delay: Duration,
    /// Idle sessions older than this are destroyed on their next use.
    pub session_idle_timeout: Option<Duration>,
}

/// xapi's `max_tasks`: above this, the oldest completed tasks are deleted.
pub const MAX_TASKS: usize = 200;
/// xapi's session limits: per originator, and for logins without one.
pub const MAX_SESSIONS_PER_ORIGINATOR: usize = 500;
pub const MAX_ANONYMOUS_SESSIONS: usize = 400;

impl State {
    pub fn master_address(&self) -> String {
        self.hosts
            .get(self.master)
            .map(|h| h.ip.to_string())
            .unwrap_or_default()
    }

    /// A locally administered unicast MAC (`x2:…` prefix keeps it out of vendor space).
    pub fn random_mac(&mut self) -> String {
        let u = self.db.uuid();
        let h: Vec<&str> = vec![&u[0..2], &u[2..4], &u[4..6], &u[6..8], &u[9..11]];
        format!("b2:{}:{}:{}:{}:{}", h[0], h[1], h[2], h[3], h[4])
    }

    pub fn host_index_of(&self, host_ref: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.r == host_ref)
    }
}

type Job = Box<dyn FnOnce(&Arc<Shared>) + Send>;

struct Timed {
    at: Instant,
    seq: u64,
    job: Job,
}
impl PartialEq for Timed {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timed {
    // Reversed: BinaryHeap is a max-heap, we want the earliest first.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Timed>,
    seq: u64,
    stop: bool,
}

pub struct Shared {
    state: Mutex<State>,
    /// Notified on every database change (wakes `event.from`).
    pub changed: Condvar,
    queue: Mutex<Queue>,
    queue_cv: Condvar,
    pub faults: Mutex<FaultState>,
    /// Set when the simulator is dropped: long-polls return.
    pub stopped: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn new(state: State) -> Arc<Shared> {
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
            queue: Mutex::new(Queue::default()),
            queue_cv: Condvar::new(),
            faults: Mutex::new(FaultState::default()),
            stopped: Default::default(),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("xapi-sim-scheduler".into())
            .spawn(move || run_scheduler(weak))
            .ok();
        shared
    }

    /// Locks the state. A panic while holding the lock is a simulator bug; keep serving.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `job` on the scheduler thread after `delay`.
    pub fn schedule(&self, delay: Duration, job: impl FnOnce(&Arc<Shared>) + Send + 'static) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.seq += 1;
        let seq = q.seq;
        q.heap.push(Timed {
            at: Instant::now() + delay,
            seq,
            job: Box::new(job),
        });
        self.queue_cv.notify_one();
    }

    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.stop = true;
        q.heap.clear();
        self.queue_cv.notify_all();
    }
}

fn run_scheduler(weak: Weak<Shared>) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let job = {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if q.stop {
                    return;
                }
                let now = Instant::now();
                match q.heap.peek().map(|t| t.at) {
                    Some(at) if at <= now => break q.heap.pop().map(|t| t.job),
                    Some(at) => {
                        let wait = (at - now).min(Duration::from_millis(500));
                        q = shared
                            .queue_cv
                            .wait_timeout(q, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    // Wake now and then so a dropped simulator lets this thread end.
                    None => {
                        q = shared
                            .queue_cv
                            .wait_timeout(q, Duration::from_millis(500))
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                        if Arc::strong_count(&shared) == 1 {
                            return;
                        }
                    }
                }
            }
        };
        if let Some(job) = job {
            job(&shared);
        }
    }
}
