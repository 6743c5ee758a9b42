//! Runtime state kept in this process: what one instance needs, what a cluster shares
//! through other implementations of the same traits.

pub mod discord_limits;
pub mod launches;
pub mod rates;
pub mod rooms;
pub mod tokens;
pub mod voice;

pub use discord_limits::MemoryDiscordLimits;
pub use launches::MemoryLaunches;
pub use rates::MemoryCommandRates;
pub use rooms::MemoryRoomClaims;
pub use tokens::MemoryTokens;
pub use voice::MemoryVoice;
