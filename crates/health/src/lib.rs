//! Active health checking of Points of Presence (PoPs) and the lock-free
//! health table read by the DNS query path.
//!
//! # Overview
//!
//! A [`Monitor`] owns one probe task per PoP (tokio tasks, started by
//! [`Monitor::start`]). Each task probes its PoP every `interval` (plus a small
//! jitter, and with a random phase so that PoPs are not probed in lockstep),
//! at most [`MonitorOptions::max_in_flight`] probes run at once (semaphore),
//! and a probe that takes longer than `timeout` is a failure.
//!
//! Whenever the *effective* state of any PoP changes, the monitor builds a new
//! immutable [`HealthTable`] with a larger [`epoch`](HealthTable::epoch) and
//! stores it in an [`ArcSwap`]. The query path keeps a clone of
//! [`Monitor::table`] and does one `table.load()` per query: no lock, no
//! channel, no await. It only reads [`HealthTable::up`] (and
//! [`HealthTable::layout`] to check that its PoP indices match). Probe details
//! (latency, last error, counters) live behind a mutex that only
//! [`Monitor::status`] (the admin API) and the probe tasks take.
//!
//! # State machine (per PoP)
//!
//! * `probe_up` is the hysteresis state driven by probes:
//!   * before the first probe result it is *unknown*, which counts as down;
//!   * the first result sets it directly (success → up, failure → down), so
//!     popdns never serves a PoP it has never probed and does not wait
//!     `rise` probes at startup;
//!   * afterwards a down PoP goes up after `rise` consecutive successes and an
//!     up PoP goes down after `fall` consecutive failures. Any other sequence
//!     (for instance a backend alternating between success and failure faster
//!     than the thresholds) leaves the state unchanged.
//! * `admin` ([`AdminState`]) is the operator's override: `Up`/`Down` force the
//!   effective state regardless of probes (probing continues, so the probe
//!   state is known when the override is lifted), `Auto` follows the probes.
//! * `effective = match admin { Up => true, Down => false, Auto => probe_up }`.
//!   Only a change of some PoP's effective state (or of the PoP list)
//!   publishes a new table; probe results that change nothing effective only
//!   update the details.
//!
//! A PoP with a `none` check is up from the start and never probed.
//!
//! # Invariants
//!
//! * `epoch` strictly increases with every published table; tables are built
//!   and stored while holding the state mutex, so they are published in order.
//! * `up[i]` and `names[i]` are indexed like the PoP list last given to
//!   [`Monitor::new`] / [`Monitor::reconfigure`]; `layout` is
//!   [`layout_of`] that list of names, so a reader can tell whether its own
//!   PoP indices match the table.
//! * The admin state is persisted (atomically) before it takes effect; if the
//!   state file cannot be written, [`Monitor::set_admin`] fails and nothing
//!   changes.
//!
//! # Detection time
//!
//! Probes of one PoP start on a grid of `interval` plus a jitter of at most
//! `interval / 20`. A PoP that dies is therefore marked down at most about
//! `fall × (interval + interval/20) + timeout` after it died, and a revived
//! PoP is up after `rise` successful probes.
//!
//! # Reconfiguration
//!
//! [`Monitor::reconfigure`] keeps everything (probe counters, admin state,
//! `since`) of PoPs whose name and check spec are unchanged; their probe
//! tasks keep running. If only the timings/thresholds of a PoP's check
//! changed, its state is kept and its task restarted with the new timings.
//! If the check kind/target changed, the PoP keeps its current state until the
//! first probe of the new check, whose result is then taken directly. New PoPs
//! count as **down until their first probe completes** (await
//! [`Monitor::first_round`] again to wait for it); removed PoPs stop being
//! probed.

mod check;
mod statefile;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;
use tokio::sync::{Semaphore, watch};
use tokio::task::AbortHandle;

pub use check::{
    CheckKind, CheckSpec, DEFAULT_FALL, DEFAULT_INTERVAL, DEFAULT_RISE, DEFAULT_TIMEOUT,
};

use check::{HttpClients, Probe, ProbeResult};

/// Default cap on probes in flight at once (all PoPs together).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// One PoP to monitor: its name and how to check it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PopCheck {
    /// PoP name, unique within the list.
    pub name: String,
    /// How to probe it.
    pub check: CheckSpec,
}

/// The operator's override of a PoP's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    /// Follow the probes.
    #[default]
    Auto,
    /// Always up, whatever the probes say.
    Up,
    /// Always down (drained), whatever the probes say.
    Down,
}

/// An immutable snapshot of the effective state of every PoP.
///
/// Published through an [`ArcSwap`]; never modified after publication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthTable {
    /// Increases with every published table.
    pub epoch: u64,
    /// [`layout_of`] the PoP names in order; changes whenever the PoP list
    /// (names or order) changes.
    pub layout: u64,
    /// Effective state, indexed like the [`PopCheck`] list given to the monitor.
    pub up: Box<[bool]>,
    /// PoP names, same index as `up`.
    pub names: Box<[String]>,
    /// When this table was built.
    pub published_at: SystemTime,
}

impl HealthTable {
    /// Effective state of the PoP at `index`; `false` when out of range.
    #[inline]
    pub fn is_up(&self, index: usize) -> bool {
        self.up.get(index).copied().unwrap_or(false)
    }

    /// Index of the PoP called `name` (linear search; not for the hot path).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Number of PoPs.
    pub fn len(&self) -> usize {
        self.up.len()
    }

    /// `true` when there is no PoP at all.
    pub fn is_empty(&self) -> bool {
        self.up.is_empty()
    }
}

/// Deterministic fingerprint of an ordered list of PoP names (64-bit FNV-1a
/// over the names and their lengths). [`HealthTable::layout`] is this value
/// for the table's names, so the router can compute it for its own PoP list
/// and know whether the table's indices match.
pub fn layout_of<S: AsRef<str>>(names: &[S]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    feed(&(names.len() as u64).to_le_bytes());
    for n in names {
        let n = n.as_ref().as_bytes();
        feed(&(n.len() as u64).to_le_bytes());
        feed(n);
    }
    h
}

/// Everything known about one PoP, for the admin API and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PopStatus {
    /// PoP name.
    pub name: String,
    /// State used by the query path (admin override applied).
    pub effective_up: bool,
    /// State according to the probes alone (`false` before the first probe).
    pub probe_up: bool,
    /// Operator override.
    pub admin: AdminState,
    /// When the effective state last changed (or the PoP was added).
    pub since: SystemTime,
    /// Whether the last probe succeeded; `None` before the first probe.
    pub last_ok: Option<bool>,
    /// Duration of the last probe.
    pub last_latency: Option<Duration>,
    /// Error of the last probe (`None` when it succeeded), e.g. `"HTTP 503"`,
    /// `"connect: connection refused"`, `"timeout after 1s"`.
    pub last_error: Option<String>,
    /// Number of effective state changes (the initial state is not counted).
    pub transitions: u64,
    /// Number of probes completed.
    pub probes: u64,
    /// Description of the check: `"http URL"`, `"tcp HOST:PORT"` or `"none"`.
    pub check: String,
}

/// Why a [`HealthEvent`] happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventCause {
    /// The first probe of a PoP decided its initial state.
    Initial,
    /// Probe results crossed the rise/fall threshold.
    Probe,
    /// An operator changed the admin state.
    Admin,
    /// A reload changed the PoP's check.
    Reconfigure,
}

/// A change of a PoP's effective state, passed to the listener set with
/// [`Monitor::set_listener`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    /// PoP name.
    pub pop: String,
    /// New effective state.
    pub up: bool,
    /// Human-readable reason (e.g. `"HTTP 503 (3 consecutive failures)"`).
    pub reason: String,
    /// What caused it.
    pub cause: EventCause,
}

/// Errors of the health monitor.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// Two PoPs have the same name.
    #[error("duplicate PoP name {0:?}")]
    DuplicatePop(String),
    /// A check's parameters are invalid.
    #[error("invalid health check for PoP {pop:?}: {reason}")]
    InvalidCheck {
        /// PoP name.
        pop: String,
        /// What is wrong.
        reason: String,
    },
    /// `set_admin` named a PoP that is not configured.
    #[error("unknown PoP {0:?}")]
    UnknownPop(String),
    /// The admin state file exists but cannot be read or parsed.
    #[error("health state file {}: {message}", path.display())]
    StateFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The admin state file could not be written.
    #[error("cannot write health state file {}: {source}", path.display())]
    Persist {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HTTP client could not be initialised.
    #[error("cannot initialise HTTP client: {0}")]
    HttpClient(String),
}

/// Tunables of a [`Monitor`] that are not per-check.
#[derive(Clone, Debug)]
pub struct MonitorOptions {
    /// Maximum number of probes in flight at once (at least 1).
    pub max_in_flight: usize,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// Checks a PoP list: unique non-empty names, valid checks.
///
/// [`Monitor::new`] returns these errors; [`Monitor::reconfigure`] refuses an
/// invalid list (logging the error and keeping the previous one), so callers
/// should validate new configurations with this function first.
pub fn validate(pops: &[PopCheck]) -> Result<(), HealthError> {
    let mut seen = HashSet::new();
    for p in pops {
        if p.name.is_empty() {
            return Err(HealthError::InvalidCheck {
                pop: String::new(),
                reason: "empty PoP name".into(),
            });
        }
        if !seen.insert(p.name.as_str()) {
            return Err(HealthError::DuplicatePop(p.name.clone()));
        }
        p.check.validate(&p.name)?;
    }
    Ok(())
}

type Listener = dyn Fn(&HealthEvent) + Send + Sync;

/// The health monitor: probes PoPs and publishes [`HealthTable`]s.
///
/// Cheap to clone (all clones share the same state). Probe tasks hold only a
/// weak reference: when the last clone is dropped they stop.
#[derive(Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

struct Inner {
    table: Arc<ArcSwap<HealthTable>>,
    state: Mutex<State>,
    /// Serialises admin changes (and the state file writes) with reconfigures.
    admin_lock: Mutex<()>,
    state_file: Option<PathBuf>,
    listener: RwLock<Option<Arc<Listener>>>,
    /// Bumped whenever a first probe result lands or the PoP list changes.
    progress: watch::Sender<u64>,
    semaphore: Arc<Semaphore>,
    clients: HttpClients,
}

struct State {
    pops: Vec<Entry>,
    epoch: u64,
    layout: u64,
    published_up: Vec<bool>,
    published_layout: u64,
    next_id: u64,
    runtime: Option<Handle>,
    shut_down: bool,
}

struct Entry {
    /// Identifies the probe task feeding this entry; a new id is allocated
    /// whenever the task is replaced, so results of stale tasks are dropped.
    id: u64,
    name: String,
    check: CheckSpec,
    admin: AdminState,
    /// `None` until the first probe result.
    probe_up: Option<bool>,
    /// Whether the current check has produced its first result.
    first_done: bool,
    ok_streak: u32,
    fail_streak: u32,
    since: SystemTime,
    last_ok: Option<bool>,
    last_latency: Option<Duration>,
    last_error: Option<String>,
    transitions: u64,
    probes: u64,
    task: Option<AbortHandle>,
}

impl Entry {
    fn new(id: u64, pc: PopCheck, admin: AdminState) -> Entry {
        let none = pc.check.kind == CheckKind::None;
        Entry {
            id,
            name: pc.name,
            check: pc.check,
            admin,
            probe_up: none.then_some(true),
            first_done: none,
            ok_streak: 0,
            fail_streak: 0,
            since: SystemTime::now(),
            last_ok: None,
            last_latency: None,
            last_error: None,
            transitions: 0,
            probes: 0,
            task: None,
        }
    }

    fn effective(&self) -> bool {
        match self.admin {
            AdminState::Up => true,
            AdminState::Down => false,
            AdminState::Auto => self.probe_up.unwrap_or(false),
        }
    }

    fn stop_task(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    fn status(&self) -> PopStatus {
        PopStatus {
            name: self.name.clone(),
            effective_up: self.effective(),
            probe_up: self.probe_up.unwrap_or(false),
            admin: self.admin,
            since: self.since,
            last_ok: self.last_ok,
            last_latency: self.last_latency,
            last_error: self.last_error.clone(),
            transitions: self.transitions,
            probes: self.probes,
            check: self.check.kind.to_string(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the state inconsistent in a
    // way that matters more than stopping health checking altogether.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Monitor {
    /// Creates a monitor for `pops` (validated with [`validate`]) with default
    /// options. Loads the admin states from `state_file` if it exists (names
    /// not in `pops` are ignored; an unreadable or malformed file is an error
    /// naming the file). No probe runs until [`Monitor::start`].
    ///
    /// The initial table (epoch 1) has `none`-checked and admin-`up` PoPs up
    /// and every other PoP down.
    pub fn new(pops: Vec<PopCheck>, state_file: Option<PathBuf>) -> Result<Monitor, HealthError> {
        Monitor::with_options(pops, state_file, MonitorOptions::default())
    }

    /// Like [`Monitor::new`] with explicit options.
    pub fn with_options(
        pops: Vec<PopCheck>,
        state_file: Option<PathBuf>,
        options: MonitorOptions,
    ) -> Result<Monitor, HealthError> {
        validate(&pops)?;
        let admin = match &state_file {
            Some(path) => statefile::load(path)?,
            None => BTreeMap::new(),
        };
        for name in admin.keys() {
            if !pops.iter().any(|p| &p.name == name) {
                tracing::warn!(pop = %name, "health state file names an unknown PoP; ignored");
            }
        }
        let clients = HttpClients::new();
        let mut next_id = 0;
        let entries: Vec<Entry> = pops
            .into_iter()
            .map(|pc| {
                next_id += 1;
                let a = admin.get(&pc.name).copied().unwrap_or_default();
                if a != AdminState::Auto {
                    tracing::info!(pop = %pc.name, admin = ?a, "admin state restored");
                }
                Entry::new(next_id, pc, a)
            })
            .collect();
        let layout = layout_of(&entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>());
        let up: Vec<bool> = entries.iter().map(Entry::effective).collect();
        let table = HealthTable {
            epoch: 1,
            layout,
            up: up.clone().into(),
            names: entries.iter().map(|e| e.name.clone()).collect(),
            published_at: SystemTime::now(),
        };
        let state = State {
            pops: entries,
            epoch: 1,
            layout,
            published_up: up,
            published_layout: layout,
            next_id,
            runtime: None,
            shut_down: false,
        };
        let (progress, _) = watch::channel(0);
        Ok(Monitor {
            inner: Arc::new(Inner {
                table: Arc::new(ArcSwap::from_pointee(table)),
                state: Mutex::new(state),
                admin_lock: Mutex::new(()),
                state_file,
                listener: RwLock::new(None),
                progress,
                semaphore: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
                clients,
            }),
        })
    }

    /// Spawns the probe tasks on the current tokio runtime. Later calls (and
    /// calls after [`Monitor::shutdown`]) do nothing.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn start(&self) {
        let handle = Handle::current();
        let mut st = lock(&self.inner.state);
        if st.runtime.is_some() || st.shut_down {
            return;
        }
        st.runtime = Some(handle);
        self.inner.spawn_missing(&mut st);
    }

    /// Resolves when every configured PoP has had the first probe of its
    /// current check completed (each bounded by its timeout, plus waiting for
    /// a probe slot), or when the monitor is shut down. Never resolves if
    /// [`Monitor::start`] was not called and some PoP needs probing.
    pub async fn first_round(&self) {
        let mut rx = self.inner.progress.subscribe();
        loop {
            {
                let st = lock(&self.inner.state);
                if st.shut_down || st.pops.iter().all(|e| e.first_done) {
                    return;
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// The shared handle to the current table. The query path keeps a clone
    /// and calls `load()` once per query.
    pub fn table(&self) -> Arc<ArcSwap<HealthTable>> {
        Arc::clone(&self.inner.table)
    }

    /// The epoch of the last published table and the details of every PoP,
    /// in table order. Takes the state mutex: for the admin API and metrics,
    /// not for the query path.
    pub fn status(&self) -> (u64, Vec<PopStatus>) {
        let st = lock(&self.inner.state);
        (st.epoch, st.pops.iter().map(Entry::status).collect())
    }

    /// Sets the operator override of `pop`. The state file (if any) is
    /// written first (atomically), then the change takes effect and a new
    /// table is published at once if the effective state changed.
    ///
    /// Blocks briefly on the file write.
    pub fn set_admin(&self, pop: &str, state: AdminState) -> Result<(), HealthError> {
        let inner = &self.inner;
        let _admin = lock(&inner.admin_lock);
        let wanted: BTreeMap<String, AdminState> = {
            let st = lock(&inner.state);
            if !st.pops.iter().any(|e| e.name == pop) {
                return Err(HealthError::UnknownPop(pop.to_owned()));
            }
            st.pops
                .iter()
                .map(|e| {
                    let a = if e.name == pop { state } else { e.admin };
                    (e.name.clone(), a)
                })
                .collect()
        };
        if let Some(path) = &inner.state_file {
            statefile::save(path, &wanted)?;
        }
        let mut events = Vec::new();
        {
            let mut st = lock(&inner.state);
            if let Some(e) = st.pops.iter_mut().find(|e| e.name == pop) {
                let before = e.effective();
                let old = e.admin;
                e.admin = state;
                let after = e.effective();
                tracing::info!(pop, from = ?old, to = ?state, effective_up = after, "admin state changed");
                if before != after {
                    e.since = SystemTime::now();
                    e.transitions += 1;
                    let reason = format!("admin state {}", admin_word(state));
                    log_effective(&e.name, after, &reason);
                    events.push(HealthEvent {
                        pop: e.name.clone(),
                        up: after,
                        reason,
                        cause: EventCause::Admin,
                    });
                }
            }
            inner.publish_if_changed(&mut st);
        }
        inner.dispatch(&events);
        Ok(())
    }

    /// Replaces the PoP list (on reload). See the crate documentation for
    /// what is kept. An invalid list (see [`validate`]) is refused: the error
    /// is logged and the previous list stays in force.
    pub fn reconfigure(&self, pops: Vec<PopCheck>) {
        if let Err(e) = validate(&pops) {
            tracing::error!(error = %e, "health reconfiguration refused; keeping the previous PoP list");
            return;
        }
        let inner = &self.inner;
        let _admin = lock(&inner.admin_lock);
        let mut events = Vec::new();
        {
            let mut st = lock(&inner.state);
            let mut old: HashMap<String, Entry> =
                st.pops.drain(..).map(|e| (e.name.clone(), e)).collect();
            let mut entries = Vec::with_capacity(pops.len());
            for pc in pops {
                st.next_id += 1;
                let id = st.next_id;
                let entry = match old.remove(&pc.name) {
                    Some(e) if e.check == pc.check => e,
                    Some(mut e) if e.check.kind == pc.check.kind => {
                        // Same target, new timings: keep the state, restart the task.
                        e.stop_task();
                        e.id = id;
                        e.check = pc.check;
                        e
                    }
                    Some(mut e) => {
                        // New target: keep the state until its first result.
                        e.stop_task();
                        let before = e.effective();
                        let mut n = Entry::new(id, pc, e.admin);
                        if !n.first_done {
                            n.probe_up = e.probe_up;
                        }
                        n.since = e.since;
                        n.transitions = e.transitions;
                        if n.effective() != before {
                            n.since = SystemTime::now();
                            n.transitions += 1;
                            let reason = format!("check changed to {}", n.check.kind);
                            log_effective(&n.name, n.effective(), &reason);
                            events.push(HealthEvent {
                                pop: n.name.clone(),
                                up: n.effective(),
                                reason,
                                cause: EventCause::Reconfigure,
                            });
                        }
                        n
                    }
                    None => {
                        tracing::info!(pop = %pc.name, check = %pc.check.kind, "PoP added; down until its first probe");
                        Entry::new(id, pc, AdminState::Auto)
                    }
                };
                entries.push(entry);
            }
            for (name, mut e) in old {
                e.stop_task();
                tracing::info!(pop = %name, "PoP removed; probing stopped");
            }
            st.layout = layout_of(&entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>());
            st.pops = entries;
            inner.spawn_missing(&mut st);
            inner.publish_if_changed(&mut st);
        }
        inner.progress.send_modify(|v| *v += 1);
        inner.dispatch(&events);
    }

    /// Stops all probe tasks. The last table stays published; `first_round`
    /// waiters are released. The monitor cannot be restarted.
    pub fn shutdown(&self) {
        {
            let mut st = lock(&self.inner.state);
            st.shut_down = true;
            for e in &mut st.pops {
                e.stop_task();
            }
        }
        self.inner.progress.send_modify(|v| *v += 1);
    }

    /// Sets the function called on every effective state change (after the
    /// new table is published, outside the monitor's locks). Replaces any
    /// previous listener. It runs on a probe task or on the caller of
    /// `set_admin`/`reconfigure`: keep it quick and non-blocking.
    pub fn set_listener(&self, f: Box<dyn Fn(&HealthEvent) + Send + Sync>) {
        let mut l = self
            .inner
            .listener
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *l = Some(Arc::from(f));
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = lock(&self.inner.state);
        f.debug_struct("Monitor")
            .field("epoch", &st.epoch)
            .field("pops", &st.pops.len())
            .field("started", &st.runtime.is_some())
            .field("shut_down", &st.shut_down)
            .finish()
    }
}

fn admin_word(a: AdminState) -> &'static str {
    match a {
        AdminState::Auto => "auto",
        AdminState::Up => "up",
        AdminState::Down => "down",
    }
}

fn log_effective(pop: &str, up: bool, reason: &str) {
    if up {
        tracing::info!(pop, reason, "PoP is now up");
    } else {
        tracing::warn!(pop, reason, "PoP is now down");
    }
}

impl Inner {
    /// Spawns a probe task for every entry that needs one and has none.
    fn spawn_missing(self: &Arc<Self>, st: &mut State) {
        if st.shut_down {
            return;
        }
        let Some(rt) = st.runtime.clone() else {
            return;
        };
        for e in &mut st.pops {
            if e.task.is_some() || e.check.kind == CheckKind::None {
                continue;
            }
            let probe = Probe::prepare(&e.check.kind, &self.clients);
            let fut = probe_loop(
                Arc::downgrade(self),
                e.id,
                e.check.clone(),
                probe,
                Arc::clone(&self.semaphore),
                seed_for(&e.name, e.id),
            );
            e.task = Some(rt.spawn(fut).abort_handle());
        }
    }

    /// Publishes a new table if the effective states or the layout differ
    /// from the last published table. Must be called with the state locked.
    fn publish_if_changed(&self, st: &mut State) {
        let up: Vec<bool> = st.pops.iter().map(Entry::effective).collect();
        if up == st.published_up && st.layout == st.published_layout {
            return;
        }
        st.epoch += 1;
        st.published_layout = st.layout;
        st.published_up.clone_from(&up);
        self.table.store(Arc::new(HealthTable {
            epoch: st.epoch,
            layout: st.layout,
            up: up.into(),
            names: st.pops.iter().map(|e| e.name.clone()).collect(),
            published_at: SystemTime::now(),
        }));
    }

    fn dispatch(&self, events: &[HealthEvent]) {
        if events.is_empty() {
            return;
        }
        let listener = self
            .listener
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(f) = listener {
            for ev in events {
                f(ev);
            }
        }
    }

    /// Applies one probe result of the task `id`. Returns `false` when that
    /// task is stale (PoP removed or its check replaced): the task must stop.
    fn record(&self, id: u64, result: ProbeResult) -> bool {
        let mut events = Vec::new();
        {
            let mut st = lock(&self.state);
            if st.shut_down {
                return false;
            }
            let Some(e) = st.pops.iter_mut().find(|e| e.id == id) else {
                return false;
            };
            let ok = result.error.is_none();
            e.probes += 1;
            e.last_ok = Some(ok);
            e.last_latency = Some(result.latency);
            e.last_error = result.error;
            if ok {
                e.ok_streak = e.ok_streak.saturating_add(1);
                e.fail_streak = 0;
            } else {
                e.fail_streak = e.fail_streak.saturating_add(1);
                e.ok_streak = 0;
            }
            let before_effective = e.effective();
            let old_probe = e.probe_up;
            let first = !e.first_done;
            let new_probe = if first {
                ok
            } else {
                match old_probe {
                    Some(true) => e.fail_streak < e.check.fall,
                    _ => e.ok_streak >= e.check.rise,
                }
            };
            e.first_done = true;
            e.probe_up = Some(new_probe);
            if old_probe != Some(new_probe) || first {
                let reason = probe_reason(e, first);
                if new_probe {
                    tracing::info!(pop = %e.name, reason, admin = ?e.admin, "probe state up");
                } else {
                    tracing::warn!(pop = %e.name, reason, admin = ?e.admin, "probe state down");
                }
                let after = e.effective();
                if after != before_effective {
                    e.since = SystemTime::now();
                    let cause = if old_probe.is_none() {
                        EventCause::Initial
                    } else {
                        e.transitions += 1;
                        EventCause::Probe
                    };
                    log_effective(&e.name, after, &reason);
                    events.push(HealthEvent {
                        pop: e.name.clone(),
                        up: after,
                        reason,
                        cause,
                    });
                }
            }
            self.publish_if_changed(&mut st);
            if first {
                self.progress.send_modify(|v| *v += 1);
            }
        }
        self.dispatch(&events);
        true
    }
}

fn probe_reason(e: &Entry, first: bool) -> String {
    let err = e.last_error.as_deref().unwrap_or("ok");
    match (first, e.probe_up == Some(true)) {
        (true, true) => "first probe succeeded".to_owned(),
        (true, false) => format!("first probe failed: {err}"),
        (false, true) => format!("{} consecutive successful probes", e.ok_streak),
        (false, false) => format!("{err} ({} consecutive failures)", e.fail_streak),
    }
}

fn seed_for(name: &str, id: u64) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    name.hash(&mut h);
    id.hash(&mut h);
    h.finish() | 1
}

/// xorshift64*: enough randomness for jitter.
struct Jitter(u64);

impl Jitter {
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The probe task of one PoP: probe, record, sleep until the next slot.
///
/// The first probe runs at once. Later probes start on a grid of `interval`
/// with a random phase (the second probe comes after 0.5–1 × interval) plus a
/// jitter below `interval / 20`, so PoPs do not probe in lockstep. If a probe
/// overruns its slot, the grid restarts from now (no burst of catch-up probes).
async fn probe_loop(
    inner: Weak<Inner>,
    id: u64,
    spec: CheckSpec,
    probe: Probe,
    semaphore: Arc<Semaphore>,
    seed: u64,
) {
    let mut rng = Jitter(seed);
    let interval = spec.interval;
    let max_jitter = interval / 20;
    let mut grid = tokio::time::Instant::now();
    let mut next = grid;
    let mut first = true;
    loop {
        tokio::time::sleep_until(next).await;
        let result = {
            let Ok(_permit) = semaphore.acquire().await else {
                return;
            };
            probe.run(spec.timeout).await
        };
        match inner.upgrade() {
            Some(inner) => {
                if !inner.record(id, result) {
                    return;
                }
            }
            None => return,
        }
        grid += if first {
            first = false;
            interval.mul_f64(0.5 + 0.5 * rng.unit())
        } else {
            interval
        };
        let now = tokio::time::Instant::now();
        if grid < now {
            grid = now;
        }
        next = grid + max_jitter.mul_f64(rng.unit());
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for e in &mut st.pops {
            e.stop_task();
        }
    }
}
