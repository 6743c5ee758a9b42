//! A rule run's context: what one run may touch (its guild, config, storage, Kaltura
//! reads, limits) and what it produced (effects, printed lines, declarations). A run
//! happens on one (blocking) thread; its context lives in a thread-local while the run
//! lasts, so the API functions reach the run they belong to and nothing else.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, EvalAltResult, Position};
use serde_json::Value;

use super::effects::Effect;
use crate::config::guild::GuildEntry;
use crate::kaltura::{Caller, Kaltura};
use crate::store::KvStore;

/// Operator limits for rules (the same for every guild; guild admins cannot raise them).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    /// Wall-clock time of one run, host calls (Kaltura reads) included.
    pub deadline: Duration,
    /// Host calls (Kaltura reads, kv reads) in one run.
    pub host_calls_per_run: usize,
    /// Wall-clock time of one guild's hooks for one event or minute, all its rules
    /// together: each rule's deadline is cut to what is left of it, so one guild's rules
    /// hold up its events (and, through them, others') for at most this long.
    pub guild_budget: Duration,
    /// `notify` calls in one run.
    pub messages_per_run: usize,
    /// Rule files per guild (global ones not counted).
    pub rules_per_guild: usize,
    /// Runs per guild per minute, all hooks together.
    pub runs_per_minute: u32,
    pub max_source_bytes: usize,
    /// Bytes a guild's rules may keep with `kv_set`.
    pub kv_quota_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: 1_000_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_string_size: 64 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            deadline: Duration::from_secs(2),
            host_calls_per_run: 20,
            guild_budget: Duration::from_secs(5),
            messages_per_run: 10,
            rules_per_guild: 25,
            runs_per_minute: 600,
            max_source_bytes: 64 * 1024,
            kv_quota_bytes: 256 * 1024,
        }
    }
}

/// A slash command a rule declares at its top level.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CommandDecl {
    pub name: String,
    pub description: String,
    pub options: Vec<OptionDecl>,
    /// The command or its options on their way out (`deprecated` in the declaration).
    #[serde(skip)]
    pub deprecations: Vec<crate::discord::command_versions::Deprecation>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OptionDecl {
    pub name: String,
    /// string, integer, number, boolean, user, channel, role
    pub kind: String,
    pub description: String,
    pub required: bool,
}

/// What a rule's top level declares (run once at load).
#[derive(Debug, Clone, Default)]
pub struct Declarations {
    pub commands: Vec<CommandDecl>,
    /// Cron expressions (5 fields, UTC) for `on_schedule`.
    pub schedules: Vec<(String, croner::Cron)>,
}

/// Kaltura reads for a run: the account and the guild's rules identity.
#[derive(Clone)]
pub struct KalturaAccess {
    pub kaltura: Arc<Kaltura>,
    pub caller: Caller,
}

/// Everything one run may touch.
pub struct Run {
    pub guild_id: String,
    pub rule: String,
    pub hook: &'static str,
    pub config: Arc<GuildEntry>,
    /// Stored values (none in dry runs without storage).
    pub kv: Option<Arc<dyn KvStore>>,
    /// Members' notification subscriptions (read only).
    pub preferences: Option<Arc<dyn crate::store::Preferences>>,
    /// The runtime host calls block on (runs are on a blocking thread).
    pub handle: Option<tokio::runtime::Handle>,
    /// Kaltura reads, or why this guild's rules have none.
    pub kaltura: Result<KalturaAccess, String>,
    pub limits: Limits,
    pub effects: Vec<Effect>,
    /// Values set in this run (read back by `kv_get` before they are stored).
    pub kv_pending: BTreeMap<String, Value>,
    /// `Some` while the top level runs at load: declarations are allowed, effects are not.
    pub declaring: Option<Declarations>,
    /// Whether `reply` is possible (a command run).
    pub can_reply: bool,
    pub printed: Vec<String>,
    /// Host calls made so far.
    pub host_calls: usize,
    started: Instant,
}

impl Run {
    pub fn new(
        guild_id: &str,
        rule: &str,
        hook: &'static str,
        config: Arc<GuildEntry>,
        limits: Limits,
    ) -> Self {
        Self {
            guild_id: guild_id.to_string(),
            rule: rule.to_string(),
            hook,
            config,
            kv: None,
            preferences: None,
            handle: tokio::runtime::Handle::try_current().ok(),
            kaltura: Err("Kaltura is not configured on this host".into()),
            limits,
            effects: Vec::new(),
            kv_pending: BTreeMap::new(),
            declaring: None,
            can_reply: false,
            printed: Vec::new(),
            host_calls: 0,
            started: Instant::now(),
        }
    }

    /// Wall-clock time the run has taken so far.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What is left of the deadline: a host call made now must end within it.
    pub fn remaining(&self) -> Duration {
        self.limits.deadline.saturating_sub(self.elapsed())
    }

    /// Counts one host call; an error once the run has made `host_calls_per_run` or is
    /// past its deadline.
    pub fn host_call(&mut self, what: &str) -> Result<(), String> {
        if self.host_calls >= self.limits.host_calls_per_run {
            return Err(format!(
                "{what}(): host call limit reached ({} per run)",
                self.limits.host_calls_per_run
            ));
        }
        if self.remaining().is_zero() {
            return Err(format!(
                "{what}(): ran longer than {} ms",
                self.limits.deadline.as_millis()
            ));
        }
        self.host_calls += 1;
        Ok(())
    }

    /// Waits for a host call's future, at most for what is left of the deadline (a slow
    /// service cannot hold the rule's thread past it).
    pub fn wait<T>(&self, what: &str, call: impl Future<Output = T>) -> Result<T, String> {
        let handle = self
            .handle
            .as_ref()
            .ok_or_else(|| format!("{what}(): not available in this run"))?;
        handle
            .block_on(tokio::time::timeout(self.remaining(), call))
            .map_err(|_| {
                format!(
                    "{what}(): ran longer than {} ms",
                    self.limits.deadline.as_millis()
                )
            })
    }
}

thread_local! {
    static RUN: RefCell<Option<Run>> = const { RefCell::new(None) };
}

/// Runs `f` with `run` as the current run; returns its result and the run (with effects).
pub fn with_run<R>(run: Run, f: impl FnOnce() -> R) -> (R, Run) {
    RUN.with(|r| *r.borrow_mut() = Some(run));
    // The run is taken back even if `f` panics, so a later run on this thread starts clean.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            RUN.with(|r| r.borrow_mut().take());
        }
    }
    let guard = Reset;
    let out = f();
    let run = RUN
        .with(|r| r.borrow_mut().take())
        .expect("the run was set above");
    drop(guard);
    (out, run)
}

/// The current run, for the API functions. An error outside a run (cannot happen through
/// the host, which always sets one).
pub fn current<R>(f: impl FnOnce(&mut Run) -> Result<R, String>) -> Result<R, Box<EvalAltResult>> {
    RUN.with(|r| match r.borrow_mut().as_mut() {
        Some(run) => f(run),
        None => Err("no rule run in progress".into()),
    })
    .map_err(|msg| {
        Box::new(EvalAltResult::ErrorRuntime(
            Dynamic::from(msg),
            Position::NONE,
        ))
    })
}

/// Whether the current run is past its deadline (the engine's progress check).
pub fn past_deadline() -> bool {
    RUN.with(|r| {
        r.borrow()
            .as_ref()
            .is_some_and(|run| run.elapsed() > run.limits.deadline)
    })
}

/// A line the current run printed: logged, and kept (the first 100) for dry runs.
pub fn printed(text: &str) {
    RUN.with(|r| {
        if let Some(run) = r.borrow_mut().as_mut() {
            let text = crate::telemetry::one_line(text);
            tracing::info!(guild = %run.guild_id, rule = %run.rule, "{text}");
            if run.printed.len() < 100 {
                run.printed.push(text.to_string());
            }
        }
    })
}

/// A `debug` line of the current run: logged at debug level.
pub fn debugged(text: &str, line: Option<usize>) {
    RUN.with(|r| {
        if let Some(run) = r.borrow().as_ref() {
            let text = crate::telemetry::one_line(text);
            tracing::debug!(guild = %run.guild_id, rule = %run.rule, line, "{text}");
        }
    })
}
