//! Per-member and per-guild command allowances (the operator's `rate_limits`), enforced
//! before any guest runs. Behind a trait so a cluster can share them; `memory/` keeps them
//! in this process.

use async_trait::async_trait;

/// Whose allowance is spent, and how long until one more command is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    User { retry_secs: u64 },
    Guild { retry_secs: u64 },
}

#[async_trait]
pub trait CommandRates: Send + Sync {
    /// Takes one command from the member's allowance, then from the guild's; says whose
    /// is spent (taking nothing from the guild's when the member's is).
    async fn take(&self, user: Option<&str>, guild: Option<&str>) -> Result<(), Limited>;
    /// Forgets members and guilds that have been quiet (bounded memory).
    async fn forget_quiet(&self);
}
