//! Guild rules: Rhai scripts server admins write. `scripts/global/*.rhai` run for every
//! guild, `scripts/guilds/<guild_id>/*.rhai` for one. A rule defines hooks
//! (`on_kaltura_event(ev)`, `on_member_join(member)`, `on_scheduled_event(ev)`,
//! `on_schedule()`, `on_command(ctx)`) and, at its top level, declares commands
//! (`command(...)`) and schedules (`schedule("*/15 * * * *")`). Runs return effects that
//! the host carries out; see `sandbox` for the limits and `api` for what a rule can call.

pub mod admin;
pub mod api;
pub mod effects;
pub mod rules;
pub mod run;
pub mod sandbox;
pub mod schedule;

pub use rules::Rules;
