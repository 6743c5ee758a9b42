//! The loaded rules: compiled, their declarations read, swapped atomically on change (a rule
//! that no longer compiles keeps its last good version), and run for a guild with every
//! limit the host enforces. One rule's failure is reported with its guild and name and
//! ends that run only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rhai::{AST, Dynamic, Engine};
use serde::Serialize;
use serde_json::Value;

use super::api::{KV_NAMESPACE, to_dynamic};
use super::effects::Effect;
use super::run::{self, CommandDecl, Declarations, KalturaAccess, Limits, Run};
use super::sandbox;
use crate::config::guild::{GuildEntry, write_atomically_bytes};
use crate::kaltura::Kaltura;
use crate::kaltura::identity::KalturaRole;
use crate::store::{KvStore, NewMessage};
use crate::telemetry::METRICS;

/// The hooks a rule may define, with their argument counts.
pub const HOOKS: &[(&str, usize)] = &[
    ("on_kaltura_event", 1),
    ("on_member_join", 1),
    ("on_scheduled_event", 1),
    ("on_schedule", 0),
    ("on_command", 1),
];

/// One compiled rule.
pub struct Rule {
    /// `global/welcome.rhai` or `guilds/<id>/latest.rhai`.
    pub name: String,
    /// `None` for global rules.
    pub guild: Option<String>,
    pub ast: AST,
    pub hooks: BTreeSet<&'static str>,
    pub declarations: Declarations,
    pub source: String,
}

/// What the API and `script check` show about a rule.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleInfo {
    pub name: String,
    pub guild: Option<String>,
    pub hooks: Vec<String>,
    pub commands: Vec<String>,
    pub schedules: Vec<String>,
    /// The last load or run problem, if any.
    pub problem: Option<String>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

impl Rule {
    pub fn info(&self, problem: Option<String>) -> RuleInfo {
        RuleInfo {
            name: self.name.clone(),
            guild: self.guild.clone(),
            hooks: self.hooks.iter().map(|h| h.to_string()).collect(),
            commands: self
                .declarations
                .commands
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            schedules: self
                .declarations
                .schedules
                .iter()
                .map(|(e, _)| e.clone())
                .collect(),
            problem,
        }
    }
}

/// A run that did not finish.
#[derive(Debug, Clone)]
pub struct RuleError {
    pub message: String,
    /// A limit stopped it (loops, depth, size, deadline, messages, runs per minute).
    pub limit: bool,
}

/// The effects of one rule's run, or why it has none.
pub struct RunOutcome {
    pub rule: String,
    pub result: Result<Vec<Effect>, RuleError>,
    pub printed: Vec<String>,
}

#[derive(Default)]
struct RuleSet {
    rules: BTreeMap<String, Arc<Rule>>,
}

pub struct Rules {
    dir: PathBuf,
    engine: Engine,
    pub limits: Limits,
    current: ArcSwap<RuleSet>,
    /// Rule name → its last load or run problem.
    problems: Mutex<BTreeMap<String, String>>,
    runs: DefaultKeyedRateLimiter<String>,
    kv: Option<Arc<dyn KvStore>>,
    kaltura: Option<RulesKaltura>,
    /// Members' notification subscriptions, read (never changed) by `subscriptions()`.
    preferences: Option<Arc<dyn crate::store::Preferences>>,
    writer: Mutex<()>,
    /// Signalled after every change of the rule set (commands may have changed).
    pub changed: tokio::sync::Notify,
    /// Blocking workers rules may occupy at once.
    workers: Arc<tokio::sync::Semaphore>,
}

/// Commands Discord registers per scope (global, or one guild).
const MAX_COMMANDS: usize = 100;

/// Guilds whose rules run at the same time (each on a blocking thread).
pub const MAX_CONCURRENT_RUNS: usize = 8;
/// Where a guild's run on a worker stands, for the timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    Running,
    Applied,
    Abandoned,
}

/// How long past its budget a guild's run may take before its effects are dropped.
const OVERSTAY_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Kaltura for guild rules: the account, read like a plugin with the `kaltura` capability,
/// so only if the operator's grants (hot-reloaded, asked on every run) allow it.
pub struct RulesKaltura {
    pub account: Arc<Kaltura>,
    pub grants: Arc<arc_swap::ArcSwap<crate::plugins::grants::GrantsConfig>>,
}

impl RulesKaltura {
    /// Kaltura reads for one guild's rules: a VIEWER service caller of the guild, when
    /// the operator granted `kaltura` to rules.
    fn access(&self, guild: &str, config: &Arc<GuildEntry>) -> Result<KalturaAccess, String> {
        if !self.grants.load().rules_read_kaltura() {
            return Err("the operator has not granted `kaltura` to guild rules (config/plugins.json: \"rules\": {\"grants\": [\"kaltura\"]})".into());
        }
        self.account
            .service_caller(
                config,
                "rules",
                Some(guild.to_string()),
                KalturaRole::Viewer,
            )
            .map(|caller| KalturaAccess {
                kaltura: self.account.clone(),
                caller,
            })
            .map_err(|e| e.to_string())
    }
}

/// `global/x.rhai` or `guilds/<id>/x.rhai` for a path under the scripts folder.
fn rule_name(dir: &Path, path: &Path) -> Option<(String, Option<String>)> {
    let rel = path.strip_prefix(dir).ok()?;
    let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    match parts.as_slice() {
        ["global", file] if file.ends_with(".rhai") => Some((format!("global/{file}"), None)),
        ["guilds", g, file] if file.ends_with(".rhai") && g.chars().all(|c| c.is_ascii_digit()) => {
            Some((format!("guilds/{g}/{file}"), Some(g.to_string())))
        }
        _ => None,
    }
}

/// A rule changed: `(name, guild, source)`; no source: removed; an error: unreadable.
type ChangedRule = (String, Option<String>, Option<Result<String, String>>);

/// The name of a guild's rule file: `guilds/<id>/<file>`.
pub fn rule_key(guild: &str, file: &str) -> String {
    format!("guilds/{guild}/{file}")
}

/// A rule's file name: 1-64 lower-case letters, digits, `-` or `_`, then `.rhai`.
pub fn valid_file_name(name: &str) -> bool {
    name.strip_suffix(".rhai").is_some_and(|stem| {
        (1..=64).contains(&stem.len())
            && stem
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    })
}

/// Every `.rhai` file under `dir/global` and `dir/guilds/*`.
fn rule_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut push_dir = |d: PathBuf| {
        if let Ok(rd) = std::fs::read_dir(d) {
            out.extend(
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "rhai")),
            );
        }
    };
    push_dir(dir.join("global"));
    if let Ok(rd) = std::fs::read_dir(dir.join("guilds")) {
        for g in rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
        {
            push_dir(g);
        }
    }
    out.sort();
    out
}

impl Rules {
    pub fn new(
        dir: &Path,
        limits: Limits,
        kv: Option<Arc<dyn KvStore>>,
        kaltura: Option<RulesKaltura>,
    ) -> Self {
        let per_minute = NonZeroU32::new(limits.runs_per_minute.max(1)).expect("at least 1");
        Self {
            // Canonical, so paths from the file watcher match.
            dir: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
            engine: sandbox::engine(&limits),
            runs: RateLimiter::keyed(Quota::per_minute(per_minute)),
            limits,
            current: ArcSwap::from_pointee(RuleSet::default()),
            problems: Mutex::new(BTreeMap::new()),
            kv,
            kaltura,
            preferences: None,
            writer: Mutex::new(()),
            changed: tokio::sync::Notify::new(),
            workers: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_RUNS)),
        }
    }

    /// Rules may read members' notification subscriptions.
    pub fn reading_subscriptions(
        mut self,
        preferences: Arc<dyn crate::store::Preferences>,
    ) -> Self {
        self.preferences = Some(preferences);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads every rule file; returns the problems (each also logged). Invalid rules are
    /// left out; the others serve.
    pub fn load_all(&self) -> Vec<String> {
        let files = rule_files(&self.dir);
        // The first load is not a change: the command sync reads the rules when it starts.
        self.load_files(&files)
    }

    /// How many rule files the rules folder holds.
    pub fn file_count(&self) -> usize {
        rule_files(&self.dir).len()
    }

    /// Compiles a rule and runs its top level to read its declarations. Errors say
    /// `name:line:col: what`.
    pub fn compile(&self, name: &str, guild: Option<String>, source: &str) -> Result<Rule, String> {
        if source.len() > self.limits.max_source_bytes {
            return Err(format!(
                "{name}: the rule is {} bytes; the limit is {}",
                source.len(),
                self.limits.max_source_bytes
            ));
        }
        let ast = self.engine.compile(source).map_err(|e| {
            let p = e.position();
            format!(
                "{name}:{}:{}: {}",
                p.line().unwrap_or(0),
                p.position().unwrap_or(0),
                e.err_type()
            )
        })?;
        let mut hooks = BTreeSet::new();
        for f in ast.iter_functions() {
            if let Some((hook, arity)) = HOOKS.iter().find(|(h, _)| *h == f.name) {
                if f.params.len() != *arity {
                    return Err(format!(
                        "{name}: fn {hook} takes {arity} parameter{}, not {}",
                        if *arity == 1 { "" } else { "s" },
                        f.params.len()
                    ));
                }
                hooks.insert(*hook);
            }
        }
        let mut run = Run::new(
            guild.as_deref().unwrap_or(""),
            name,
            "load",
            Arc::new(GuildEntry::default()),
            self.limits.clone(),
        );
        run.declaring = Some(Declarations::default());
        let (out, run) = run::with_run(run, || self.engine.run_ast(&ast));
        out.map_err(|e| sandbox::describe(name, &e, &self.limits).0)?;
        let declarations = run.declaring.unwrap_or_default();
        if !declarations.commands.is_empty() && !hooks.contains("on_command") {
            return Err(format!(
                "{name}: it declares commands but has no fn on_command(ctx)"
            ));
        }
        if !declarations.schedules.is_empty() && !hooks.contains("on_schedule") {
            return Err(format!(
                "{name}: it declares a schedule but has no fn on_schedule()"
            ));
        }
        if hooks.is_empty() {
            return Err(format!(
                "{name}: it defines no hook ({})",
                HOOKS.iter().map(|(h, _)| *h).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(Rule {
            name: name.to_string(),
            guild,
            ast,
            hooks,
            declarations,
            source: source.to_string(),
        })
    }

    /// Applies changed rule files (hot reload): a valid file replaces its rule, a deleted
    /// one removes it, an invalid one keeps its last good version. Returns the problems.
    pub fn apply_changes(&self, paths: &[PathBuf]) -> Vec<String> {
        let problems = self.load_files(paths);
        self.changed.notify_one();
        problems
    }

    fn load_files(&self, paths: &[PathBuf]) -> Vec<String> {
        let changes = paths
            .iter()
            .filter_map(|path| {
                let (name, guild) = rule_name(&self.dir, path)?;
                let source = path
                    .exists()
                    .then(|| std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}")));
                Some((name, guild, source))
            })
            .collect();
        self.apply_changed(changes)
    }

    /// Applies rules changed elsewhere (the shared database): `(name, guild, source)`, a
    /// source of `None` removing the rule, each as a file change would be. Returns the
    /// problems.
    pub fn apply_sources(
        &self,
        changes: Vec<(String, Option<String>, Option<String>)>,
    ) -> Vec<String> {
        let changes = changes
            .into_iter()
            .map(|(name, guild, source)| (name, guild, source.map(Ok)))
            .collect();
        let problems = self.apply_changed(changes);
        self.changed.notify_one();
        problems
    }

    /// A valid source replaces its rule, a removed one goes, an invalid one (or one that
    /// could not be read) keeps its last good version.
    fn apply_changed(&self, changes: Vec<ChangedRule>) -> Vec<String> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut set: BTreeMap<String, Arc<Rule>> = self.current.load().rules.clone();
        let mut problems = Vec::new();
        for (name, guild, source) in changes {
            let Some(source) = source else {
                set.remove(&name);
                self.problems.lock().unwrap().remove(&name);
                tracing::info!(rule = %name, "rule removed");
                continue;
            };
            let result = source
                .and_then(|src| self.compile(&name, guild.clone(), &src))
                .and_then(|rule| {
                    self.check_quota(&set, &rule)?;
                    Ok(rule)
                });
            match result {
                Ok(rule) => {
                    tracing::info!(rule = %name, hooks = ?rule.hooks, "rule loaded");
                    set.insert(name.clone(), Arc::new(rule));
                    self.problems.lock().unwrap().remove(&name);
                }
                Err(e) => {
                    tracing::error!(error = %e, "rule not loaded; its last good version (if any) stays");
                    self.problems.lock().unwrap().insert(name, e.clone());
                    problems.push(e);
                }
            }
        }
        self.current.store(Arc::new(RuleSet { rules: set }));
        problems
    }

    fn check_quota(&self, set: &BTreeMap<String, Arc<Rule>>, rule: &Rule) -> Result<(), String> {
        // Commands are registered per scope (a guild, or global): names are unique there
        // and Discord takes at most 100 of them.
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for other in set
            .values()
            .filter(|r| r.guild == rule.guild && r.name != rule.name)
        {
            names.extend(other.declarations.commands.iter().map(|c| c.name.as_str()));
        }
        for c in &rule.declarations.commands {
            if !names.insert(c.name.as_str()) {
                return Err(format!(
                    "{}: /{} is already declared by another rule {}",
                    rule.name,
                    c.name,
                    rule.guild
                        .as_ref()
                        .map_or("of every guild".to_string(), |g| format!("of guild {g}"))
                ));
            }
        }
        if names.len() > MAX_COMMANDS {
            return Err(format!(
                "{}: the rules would declare {} commands; Discord allows {MAX_COMMANDS}",
                rule.name,
                names.len()
            ));
        }
        let Some(g) = &rule.guild else { return Ok(()) };
        let others = set
            .values()
            .filter(|r| r.guild.as_ref() == Some(g) && r.name != rule.name)
            .count();
        if others >= self.limits.rules_per_guild {
            return Err(format!(
                "{}: guild {g} already has {others} rules (the limit is {})",
                rule.name, self.limits.rules_per_guild
            ));
        }
        Ok(())
    }

    /// Checks a guild's rule as [`Rules::put`] would (its file name, compiling it, the
    /// guild's quotas against the rules loaded now) without keeping it; returns its name.
    pub fn check(
        &self,
        guild: &str,
        file: &str,
        source: &str,
    ) -> Result<(String, RuleInfo), String> {
        let (name, rule) = self.checked(guild, file, source)?;
        self.check_quota(&self.current.load().rules, &rule)?;
        Ok((name, rule.info(None)))
    }

    fn checked(&self, guild: &str, file: &str, source: &str) -> Result<(String, Rule), String> {
        if !valid_file_name(file) {
            return Err(format!(
                "`{file}` is not a rule file name: 1-64 lower-case letters, digits, - or _, ending in .rhai"
            ));
        }
        let name = rule_key(guild, file);
        let rule = self.compile(&name, Some(guild.to_string()), source)?;
        Ok((name, rule))
    }

    /// Validates, dry-run-compiles, writes atomically and activates a guild's rule.
    pub fn put(&self, guild: &str, file: &str, source: &str) -> Result<RuleInfo, String> {
        let (name, rule) = self.checked(guild, file, source)?;
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut set = self.current.load().rules.clone();
        self.check_quota(&set, &rule)?;
        let path = self.dir.join("guilds").join(guild).join(file);
        write_atomically_bytes(&path, source.as_bytes()).map_err(|e| format!("{name}: {e}"))?;
        let info = rule.info(None);
        set.insert(name.clone(), Arc::new(rule));
        self.problems.lock().unwrap().remove(&name);
        self.current.store(Arc::new(RuleSet { rules: set }));
        self.changed.notify_one();
        Ok(info)
    }

    /// Deletes a guild's rule; `false` if it had none of that name.
    pub fn delete(&self, guild: &str, file: &str) -> Result<bool, String> {
        if !valid_file_name(file) {
            return Ok(false);
        }
        let name = rule_key(guild, file);
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.dir.join("guilds").join(guild).join(file);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{name}: {e}")),
        }
        let mut set = self.current.load().rules.clone();
        let had = set.remove(&name).is_some();
        self.problems.lock().unwrap().remove(&name);
        self.current.store(Arc::new(RuleSet { rules: set }));
        self.changed.notify_one();
        Ok(had)
    }

    /// The rules that run for a guild (global ones first), with their problems.
    pub fn list(&self, guild: &str) -> Vec<RuleInfo> {
        let problems = self.problems.lock().unwrap().clone();
        let mut out: Vec<RuleInfo> = self
            .for_guild(guild)
            .iter()
            .map(|r| r.info(problems.get(&r.name).cloned()))
            .collect();
        // Guild files that never compiled are listed too.
        let prefix = format!("guilds/{guild}/");
        for (name, p) in &problems {
            if name.starts_with(&prefix) && !out.iter().any(|r| &r.name == name) {
                out.push(RuleInfo {
                    name: name.clone(),
                    guild: Some(guild.to_string()),
                    hooks: vec![],
                    commands: vec![],
                    schedules: vec![],
                    problem: Some(p.clone()),
                });
            }
        }
        out
    }

    pub fn source(&self, guild: &str, file: &str) -> Option<String> {
        self.current
            .load()
            .rules
            .get(&rule_key(guild, file))
            .map(|r| r.source.clone())
    }

    /// Global rules, then the guild's own.
    pub fn for_guild(&self, guild: &str) -> Vec<Arc<Rule>> {
        let set = self.current.load();
        let (mut global, mut own): (Vec<_>, Vec<_>) = set
            .rules
            .values()
            .filter(|r| r.guild.as_deref().is_none_or(|g| g == guild))
            .cloned()
            .partition(|r| r.guild.is_none());
        global.append(&mut own);
        global
    }

    /// Guilds that have rules of their own.
    /// Every rule loaded, by name.
    pub fn all(&self) -> Vec<Arc<Rule>> {
        self.current.load().rules.values().cloned().collect()
    }

    pub fn guild_ids(&self) -> BTreeSet<String> {
        self.current
            .load()
            .rules
            .values()
            .filter_map(|r| r.guild.clone())
            .collect()
    }

    /// The rule that declares a command for a guild (its own rules win over global ones).
    pub fn command_owner(&self, guild: &str, command: &str) -> Option<(Arc<Rule>, CommandDecl)> {
        self.for_guild(guild).into_iter().rev().find_map(|r| {
            r.declarations
                .commands
                .iter()
                .find(|c| c.name == command)
                .cloned()
                .map(|c| (r.clone(), c))
        })
    }

    /// The commands rules declare for a guild (`None`: global rules' commands).
    pub fn commands(&self, guild: Option<&str>) -> Vec<CommandDecl> {
        self.current
            .load()
            .rules
            .values()
            .filter(|r| r.guild.as_deref() == guild)
            .flat_map(|r| r.declarations.commands.clone())
            .collect()
    }

    /// Runs a hook of every rule of the guild that defines it. Blocking: call from a
    /// blocking thread. `dry` runs change nothing (kv writes are returned, not stored).
    pub fn run_hook(
        &self,
        guild: &str,
        config: &Arc<GuildEntry>,
        hook: &'static str,
        arg: Option<&Value>,
        only: Option<&[String]>,
    ) -> Vec<RunOutcome> {
        let disabled = &config.typed.rules.disabled;
        let budget_ends = Instant::now() + self.limits.guild_budget;
        self.for_guild(guild)
            .into_iter()
            .filter(|r| r.hooks.contains(hook) && only.is_none_or(|o| o.contains(&r.name)))
            .filter(|r| !disabled.contains(&r.name))
            .map(|r| {
                let left = budget_ends.saturating_duration_since(Instant::now());
                self.run_within(&r, guild, config, hook, arg, left)
            })
            .collect()
    }

    /// One rule, one hook, every limit.
    pub fn run_one(
        &self,
        rule: &Rule,
        guild: &str,
        config: &Arc<GuildEntry>,
        hook: &'static str,
        arg: Option<&Value>,
    ) -> RunOutcome {
        self.run_within(rule, guild, config, hook, arg, self.limits.deadline)
    }

    /// [`Rules::run_one`] with at most `left` of the guild's budget for this event.
    fn run_within(
        &self,
        rule: &Rule,
        guild: &str,
        config: &Arc<GuildEntry>,
        hook: &'static str,
        arg: Option<&Value>,
        left: std::time::Duration,
    ) -> RunOutcome {
        let started = Instant::now();
        let fail = |message: String, limit: bool, printed: Vec<String>| {
            let outcome = if limit { "limit" } else { "error" };
            METRICS.rule_runs.with_label_values(&[hook, outcome]).inc();
            tracing::warn!(guild, rule = %rule.name, hook, error = %message, "rule run failed");
            self.problems
                .lock()
                .unwrap()
                .insert(rule.name.clone(), message.clone());
            RunOutcome {
                rule: rule.name.clone(),
                result: Err(RuleError { message, limit }),
                printed,
            }
        };
        if left.is_zero() {
            return fail(
                format!(
                    "{}: not run: guild {guild}'s rules used their {} ms for this {hook}",
                    rule.name,
                    self.limits.guild_budget.as_millis()
                ),
                true,
                vec![],
            );
        }
        if self.runs.check_key(&guild.to_string()).is_err() {
            return fail(
                format!(
                    "{}: not run: guild {guild} is over {} rule runs per minute",
                    rule.name, self.limits.runs_per_minute
                ),
                true,
                vec![],
            );
        }
        let mut limits = self.limits.clone();
        limits.deadline = limits.deadline.min(left);
        let mut run = Run::new(guild, &rule.name, hook, config.clone(), limits);
        run.kv = self.kv.clone();
        run.preferences = self.preferences.clone();
        run.can_reply = hook == "on_command";
        if let Some(k) = &self.kaltura {
            run.kaltura = k.access(guild, config);
        }
        let args: Vec<Dynamic> = arg.map(to_dynamic).into_iter().collect();
        let (out, run) = run::with_run(run, || {
            let mut scope = rhai::Scope::new();
            let opts = rhai::CallFnOptions::new()
                .eval_ast(false)
                .rewind_scope(true);
            self.engine
                .call_fn_with_options::<Dynamic>(opts, &mut scope, &rule.ast, hook, args)
        });
        METRICS
            .rule_latency
            .with_label_values(&[hook])
            .observe(started.elapsed().as_secs_f64());
        match out {
            Ok(_) => {
                METRICS.rule_runs.with_label_values(&[hook, "ok"]).inc();
                RunOutcome {
                    rule: rule.name.clone(),
                    result: Ok(run.effects),
                    printed: run.printed,
                }
            }
            Err(e) => {
                let (message, limit) = sandbox::describe(&rule.name, &e, &self.limits);
                let limit = limit || message.contains("message limit reached");
                fail(message, limit, run.printed)
            }
        }
    }

    /// Carries out a run's kv writes and turns its notifications into outbox messages
    /// (replies are the caller's business). A failed kv write fails that run's messages
    /// too: a rule's effects happen together or not at all.
    pub async fn apply(&self, guild: &str, outcome: &RunOutcome) -> Vec<NewMessage> {
        let Ok(effects) = &outcome.result else {
            return Vec::new();
        };
        if let Some(store) = &self.kv {
            for e in effects {
                if let Effect::KvSet { key, value } = e
                    && let Err(err) = store
                        .set(
                            KV_NAMESPACE,
                            guild,
                            key,
                            value.to_string().as_bytes(),
                            self.limits.kv_quota_bytes,
                        )
                        .await
                {
                    let message = format!("{}: kv_set(\"{key}\"): {err}", outcome.rule);
                    tracing::warn!(guild, rule = %outcome.rule, error = %message, "rule effects dropped");
                    self.problems
                        .lock()
                        .unwrap()
                        .insert(outcome.rule.clone(), message);
                    return Vec::new();
                }
            }
        }
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Notify { channel, message } => Some(NewMessage {
                    guild_id: guild.to_string(),
                    channel: channel.clone(),
                    body: message.clone(),
                    source: format!("rule:{}", outcome.rule),
                }),
                _ => None,
            })
            .collect()
    }

    /// Runs a hook for a guild on a blocking thread and returns the messages to queue.
    pub async fn dispatch(
        self: &Arc<Self>,
        guild: &str,
        config: Arc<GuildEntry>,
        hook: &'static str,
        arg: Option<Value>,
    ) -> Vec<NewMessage> {
        self.dispatch_only(guild, config, hook, arg, None).await
    }

    /// Like [`Rules::dispatch`], for some rules only (`only`, by name) or all. The guild's
    /// rules share its `guild_budget` (each run's deadline is cut to what is left); should a
    /// run still overstay (a host function that does not return), the guild's run is
    /// recorded as failed after the budget plus a grace and its effects are dropped. At most
    /// `MAX_CONCURRENT_RUNS` guilds' rules run at once (waiting for a worker is not timed:
    /// each holder finishes within its budget).
    pub async fn dispatch_only(
        self: &Arc<Self>,
        guild: &str,
        config: Arc<GuildEntry>,
        hook: &'static str,
        arg: Option<Value>,
        only: Option<Vec<String>>,
    ) -> Vec<NewMessage> {
        let me = self.clone();
        let g = guild.to_string();
        let Ok(permit) = self.workers.clone().acquire_owned().await else {
            return Vec::new();
        };
        // Effects are applied only if the run is still wanted when it ends.
        let state = Arc::new(Mutex::new(RunState::Running));
        let seen = state.clone();
        let handle = tokio::runtime::Handle::current();
        let mut task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let outcomes = me.run_hook(&g, &config, hook, arg.as_ref(), only.as_deref());
            let mut state = seen.lock().unwrap_or_else(|e| e.into_inner());
            if *state == RunState::Abandoned {
                return None;
            }
            // Applied under the state lock: an abandoned run keeps nothing.
            let messages: Vec<NewMessage> = handle.block_on(async {
                let mut all = Vec::new();
                for o in &outcomes {
                    all.extend(me.apply(&g, o).await);
                }
                all
            });
            *state = RunState::Applied;
            Some(messages)
        });
        let bound = self.limits.guild_budget + OVERSTAY_GRACE;
        if let Ok(done) = tokio::time::timeout(bound, &mut task).await {
            return done.ok().flatten().unwrap_or_default();
        }
        let applied = {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            if *s == RunState::Running {
                *s = RunState::Abandoned;
            }
            *s == RunState::Applied
        };
        if applied {
            // It finished at the same moment: its effects are already kept.
            return task.await.ok().flatten().unwrap_or_default();
        }
        let message = format!(
            "stopped: guild {guild}'s rules took longer than {} ms for {hook}; nothing they did was kept",
            bound.as_millis()
        );
        METRICS
            .rule_runs
            .with_label_values(&[hook, "timeout"])
            .inc();
        tracing::warn!(guild, hook, error = %message, "rule run timed out");
        let mut problems = self.problems.lock().unwrap();
        for r in self
            .for_guild(guild)
            .iter()
            .filter(|r| r.hooks.contains(hook))
        {
            problems.insert(r.name.clone(), format!("{}: {message}", r.name));
        }
        Vec::new()
    }

    /// Rules whose schedule matches this minute, by guild (global ones for every guild in
    /// `audience`).
    pub fn due(
        &self,
        now: &chrono::DateTime<chrono::Utc>,
        audience: &BTreeSet<String>,
    ) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for r in self.current.load().rules.values() {
            let due = r
                .declarations
                .schedules
                .iter()
                .any(|(_, c)| c.is_time_matching(now).unwrap_or(false));
            if !due {
                continue;
            }
            match &r.guild {
                Some(g) => out.entry(g.clone()).or_default().push(r.name.clone()),
                None => {
                    for g in audience {
                        out.entry(g.clone()).or_default().push(r.name.clone());
                    }
                }
            }
        }
        out
    }

    /// Problems of files under the scripts folder, by rule name.
    pub fn problems(&self) -> BTreeMap<String, String> {
        self.problems.lock().unwrap().clone()
    }
}

/// The rules folder, hot-reloaded: changed rules are compiled and loaded again (problems
/// are logged, as at start).
pub struct RuleFolder {
    rules: Arc<Rules>,
    dir: PathBuf,
}

impl RuleFolder {
    pub fn new(rules: Arc<Rules>) -> Self {
        let dir = crate::reload::canonical_dir(rules.dir());
        Self { rules, dir }
    }
}

#[async_trait::async_trait]
impl crate::reload::Reloadable for RuleFolder {
    fn watches(&self) -> Vec<crate::reload::Watch> {
        crate::reload::Watch::tree(&self.dir)
    }

    fn claims(&self, path: &Path) -> bool {
        path.starts_with(&self.dir) && path.extension().is_some_and(|e| e == "rhai")
    }

    async fn apply(&self, paths: Vec<PathBuf>) {
        // Compiling is CPU work: off the async runtime.
        let rules = self.rules.clone();
        let _ = tokio::task::spawn_blocking(move || rules.apply_changes(&paths)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(dir: &Path) -> Rules {
        Rules::new(
            dir,
            Limits::default(),
            Some(crate::store::Stores::in_memory().unwrap().kv),
            None,
        )
    }

    fn write(dir: &Path, rel: &str, src: &str) -> PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, src).unwrap();
        p
    }

    fn cfg() -> Arc<GuildEntry> {
        Arc::new(GuildEntry::default())
    }

    /// The text of the first message the first rule's `on_kaltura_event` sends in `guild`.
    /// Runs block on the stores, as they do on the rules' blocking threads (needs the
    /// multi-threaded runtime).
    async fn first_notice(r: &Rules, guild: &str) -> String {
        let out = tokio::task::block_in_place(|| {
            r.run_hook(guild, &cfg(), "on_kaltura_event", Some(&json!({})), None)
        });
        let msgs = r.apply(guild, &out[0]).await;
        msgs[0].body["content"].as_str().unwrap().to_string()
    }

    #[test]
    fn compile_errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let r = rules(dir.path());
        let err = r
            .compile("global/x.rhai", None, "fn on_schedule() {\n  let = 1;\n}")
            .unwrap_err();
        assert!(err.starts_with("global/x.rhai:2:"), "{err}");
        let err = r
            .compile("global/x.rhai", None, "fn on_kaltura_event() {}")
            .unwrap_err();
        assert!(err.contains("takes 1 parameter, not 0"), "{err}");
        let err = r.compile("global/x.rhai", None, "let x = 1;").unwrap_err();
        assert!(err.contains("defines no hook"), "{err}");
        let err = r
            .compile(
                "global/x.rhai",
                None,
                "notify(\"#a\", \"hi\");\nfn on_schedule() {}",
            )
            .unwrap_err();
        assert!(err.contains("only be called inside a hook"), "{err}");
        let err = r
            .compile(
                "global/x.rhai",
                None,
                "schedule(\"every day\");\nfn on_schedule() {}",
            )
            .unwrap_err();
        assert!(err.contains("5 fields"), "{err}");
        let ok = r
            .compile(
                "global/x.rhai",
                None,
                "command(\"latest\", \"The latest video\", [#{name: \"count\", type: \"integer\"}]);\nschedule(\"0 9 * * 1\");\nfn on_command(ctx) {}\nfn on_schedule() {}",
            )
            .unwrap();
        assert_eq!(ok.declarations.commands[0].options[0].kind, "integer");
        assert_eq!(ok.declarations.schedules[0].0, "0 9 * * 1");
    }

    #[test]
    fn hot_reload_keeps_the_last_good_rule() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "global/a.rhai",
            "fn on_kaltura_event(ev) { notify(\"#a\", \"one\"); }",
        );
        let r = rules(dir.path());
        assert!(r.load_all().is_empty());
        std::fs::write(&p, "fn on_kaltura_event(ev) { notify(").unwrap();
        let problems = r.apply_changes(std::slice::from_ref(&p));
        assert!(problems[0].starts_with("global/a.rhai:1:"), "{problems:?}");
        let out = r.run_hook("1", &cfg(), "on_kaltura_event", Some(&json!({})), None);
        assert!(matches!(&out[0].result, Ok(e) if e.len() == 1));
        std::fs::remove_file(&p).unwrap();
        r.apply_changes(&[p]);
        assert!(
            r.run_hook("1", &cfg(), "on_kaltura_event", Some(&json!({})), None)
                .is_empty()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn kv_belongs_to_the_guild_by_construction() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "global/count.rhai",
            "fn on_kaltura_event(ev) { let n = kv_get(\"n\"); if n == () { n = 0; } kv_set(\"n\", n + 1); notify(\"#c\", `n=${n + 1}`); }",
        );
        let r = rules(dir.path());
        r.load_all();
        assert_eq!(first_notice(&r, "1").await, "n=1");
        assert_eq!(first_notice(&r, "1").await, "n=2");
        // Guild 2 sees its own storage only, whatever the key.
        assert_eq!(first_notice(&r, "2").await, "n=1");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rules_read_this_guilds_subscriptions_only() {
        use crate::store::preferences::{Subscription, Topic};
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "global/subs.rhai",
            "fn on_kaltura_event(ev) { let s = subscriptions(\"71\"); notify(\"#c\", if s.is_empty() { \"none\" } else { `${s[0].what}:${s[0].name}` }); }",
        );
        let stores = crate::store::Stores::in_memory().unwrap();
        let live = Subscription {
            guild_id: "1".into(),
            user_id: "71".into(),
            topic: Topic::Tag,
            value: "rust".into(),
            created_at: 1,
        };
        stores.preferences.subscribe(&live, 5).await.unwrap();
        let r = rules(dir.path()).reading_subscriptions(stores.preferences.clone());
        r.load_all();
        assert_eq!(first_notice(&r, "1").await, "tag:rust");
        assert_eq!(first_notice(&r, "2").await, "none");
    }

    #[tokio::test]
    async fn a_rule_trying_to_send_a_thousand_messages_is_stopped_and_others_run() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "global/flood.rhai",
            "fn on_kaltura_event(ev) { for i in 0..1000 { notify(\"#x\", `m${i}`); } }",
        );
        write(
            dir.path(),
            "guilds/5/ok.rhai",
            "fn on_kaltura_event(ev) { notify(\"#y\", \"fine\"); }",
        );
        let r = rules(dir.path());
        r.load_all();
        let out = r.run_hook("5", &cfg(), "on_kaltura_event", Some(&json!({})), None);
        assert_eq!(out.len(), 2);
        let err = out[0].result.as_ref().unwrap_err();
        assert!(
            err.limit
                && err.message.contains("global/flood.rhai")
                && err.message.contains("message limit"),
            "{}",
            err.message
        );
        assert!(
            r.apply("5", &out[0]).await.is_empty(),
            "a stopped run has no effects"
        );
        assert_eq!(r.apply("5", &out[1]).await.len(), 1);
        assert!(
            r.list("5")
                .iter()
                .any(|i| i.name == "global/flood.rhai" && i.problem.is_some())
        );
    }

    #[test]
    fn rule_commands_are_held_to_discords_limits_at_upload() {
        let dir = tempfile::tempdir().unwrap();
        let r = rules(dir.path());
        let with_options =
            |opts: &str| format!("command(\"c\", \"d\", [{opts}]);\nfn on_command(ctx) {{}}");
        let refused = |opts: &str| r.put("7", "a.rhai", &with_options(opts)).unwrap_err();
        let many: Vec<String> = (0..26).map(|i| format!("#{{name: \"o{i}\"}}")).collect();
        let err = refused(&many.join(","));
        assert!(err.contains("26 options; Discord allows 25"), "{err}");
        let err = refused("#{name: \"x\"}, #{name: \"x\"}");
        assert!(err.contains("declared twice"), "{err}");
        let err = refused("#{name: \"x\"}, #{name: \"y\", required: true}");
        assert!(err.contains("required options first"), "{err}");
        r.put("7", "a.rhai", &with_options("")).unwrap();
        let err = r.put("7", "b.rhai", &with_options("")).unwrap_err();
        assert!(
            err.contains("/c is already declared by another rule of guild 7"),
            "{err}"
        );
        // Another guild may use the name.
        r.put("8", "b.rhai", &with_options("")).unwrap();
    }

    #[test]
    fn reply_only_in_commands_and_puts_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let r = rules(dir.path());
        let err = r
            .put("7", "../evil.rhai", "fn on_schedule() {}")
            .unwrap_err();
        assert!(err.contains("not a rule file name"), "{err}");
        let err = r.put("7", "bad.rhai", "fn on_schedule( {").unwrap_err();
        assert!(err.starts_with("guilds/7/bad.rhai:1:"), "{err}");
        assert!(!dir.path().join("guilds/7/bad.rhai").exists());
        r.put("7", "r.rhai", "fn on_kaltura_event(ev) { reply(\"x\"); }")
            .unwrap();
        assert!(dir.path().join("guilds/7/r.rhai").exists());
        let out = r.run_hook("7", &cfg(), "on_kaltura_event", Some(&json!({})), None);
        assert!(
            out[0]
                .result
                .as_ref()
                .unwrap_err()
                .message
                .contains("only works in on_command")
        );
        assert!(r.delete("7", "r.rhai").unwrap());
        assert!(r.list("7").is_empty());
    }
}
