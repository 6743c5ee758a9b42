//! What Discord says about guilds and members, read over REST with the bot token and
//! cached briefly: role names and permissions, the owner, a member's roles. The host
//! computes roles and permissions from this, never from what a client claims.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::rest::{Call, DiscordRest, RestError};
use crate::cache::TtlMap;

const TTL: Duration = Duration::from_secs(60);
const MAX_CACHED: usize = 10_000;
/// Discord's "Unknown Member" error code.
const UNKNOWN_MEMBER: i64 = 10007;

#[derive(Debug, Clone)]
pub struct RoleInfo {
    pub name: String,
    pub permissions: u64,
}

#[derive(Debug, Clone, Default)]
pub struct GuildInfo {
    pub owner_id: String,
    /// By role id; the guild id is the @everyone role.
    pub roles: HashMap<String, RoleInfo>,
}

impl GuildInfo {
    /// Role id → name.
    pub fn role_names(&self) -> HashMap<String, String> {
        self.roles
            .iter()
            .map(|(id, r)| (id.clone(), r.name.clone()))
            .collect()
    }

    /// A member's guild-level permissions: the owner has all; otherwise @everyone's and
    /// their roles' permissions combined.
    pub fn permissions(&self, guild_id: &str, user_id: &str, roles: &[String]) -> u64 {
        if user_id == self.owner_id {
            return u64::MAX;
        }
        std::iter::once(guild_id)
            .chain(roles.iter().map(String::as_str))
            .filter_map(|r| self.roles.get(r))
            .fold(0, |acc, r| acc | r.permissions)
    }
}

type Cached<T> = TtlMap<String, T>;

fn cached<T: Clone>() -> Cached<T> {
    TtlMap::new(TTL, MAX_CACHED)
}

pub struct GuildDirectory {
    rest: Option<Arc<DiscordRest>>,
    guilds: Cached<Arc<GuildInfo>>,
    /// "guild/user" → the member's roles (None: not a member).
    members: Cached<Option<Vec<String>>>,
    /// Guild → its channels.
    channels: Cached<Arc<Vec<Channel>>>,
    /// Paths Discord refused (401, 403, 404) lately, with its answer: a lookup of a random
    /// guild or user id costs one call per minute, not one per request.
    refused: Cached<(u16, i64, String)>,
}

impl GuildDirectory {
    pub fn new(rest: Option<Arc<DiscordRest>>) -> Self {
        Self {
            rest,
            guilds: cached(),
            members: cached(),
            channels: cached(),
            refused: cached(),
        }
    }

    fn rest(&self) -> Result<&DiscordRest, RestError> {
        self.rest
            .as_deref()
            .filter(|r| r.has_bot_token())
            .ok_or(RestError::NotConfigured(
                "reading guilds needs the bot token: set DISCORD_BOT_TOKEN",
            ))
    }

    async fn get(&self, route: &str, path: String) -> Result<Value, RestError> {
        if let Some((status, code, message)) = self.refused.get(&path) {
            return Err(RestError::Api {
                status,
                code,
                message,
            });
        }
        let out = self
            .rest()?
            .send(Call {
                method: reqwest::Method::GET,
                route: route.to_string(),
                path: path.clone(),
                body: None,
                bot_auth: true,
                files: &[],
            })
            .await;
        if let Err(RestError::Api {
            status: status @ (401 | 403 | 404),
            code,
            message,
        }) = &out
        {
            self.refused.insert(path, (*status, *code, message.clone()));
        }
        out
    }

    /// The guild's role names by id when `needed` (a setting names roles), else none.
    /// Discord being unreachable is logged and answered with none: ids still match.
    pub async fn role_names_if(
        &self,
        guild_id: Option<&str>,
        needed: bool,
    ) -> HashMap<String, String> {
        let Some(g) = guild_id.filter(|_| needed) else {
            return HashMap::new();
        };
        match self.guild(g).await {
            Ok(info) => info.role_names(),
            Err(e) => {
                tracing::warn!(guild = %g, error = %e, "cannot read the guild's role names; roles given by name in its config match nobody, ids still do");
                HashMap::new()
            }
        }
    }

    /// The guild's owner and roles.
    pub async fn guild(&self, guild_id: &str) -> Result<Arc<GuildInfo>, RestError> {
        if let Some(g) = self.guilds.get(guild_id) {
            return Ok(g);
        }
        let v = self
            .get(
                &format!("GET guilds/{guild_id}"),
                format!("/guilds/{guild_id}"),
            )
            .await?;
        let roles = v["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some((
                    r["id"].as_str()?.to_string(),
                    RoleInfo {
                        name: r["name"].as_str().unwrap_or_default().to_string(),
                        permissions: r["permissions"]
                            .as_str()
                            .and_then(|p| p.parse().ok())
                            .unwrap_or(0),
                    },
                ))
            })
            .collect();
        let info = Arc::new(GuildInfo {
            owner_id: v["owner_id"].as_str().unwrap_or_default().to_string(),
            roles,
        });
        self.guilds.insert(guild_id.to_string(), info.clone());
        Ok(info)
    }

    /// The member's role ids, or `None` when the user is not in the guild.
    pub async fn member_roles(
        &self,
        guild_id: &str,
        user_id: &str,
    ) -> Result<Option<Vec<String>>, RestError> {
        let key = format!("{guild_id}/{user_id}");
        if let Some(m) = self.members.get(&key) {
            return Ok(m);
        }
        let roles = match self
            .get(
                &format!("GET guilds/{guild_id}/members"),
                format!("/guilds/{guild_id}/members/{user_id}"),
            )
            .await
        {
            Ok(v) => Some(
                v["roles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str().map(String::from))
                    .collect(),
            ),
            Err(RestError::Api {
                code: UNKNOWN_MEMBER,
                ..
            }) => None,
            Err(e) => return Err(e),
        };
        self.members.insert(key, roles.clone());
        Ok(roles)
    }
}

/// Why a channel reference names no channel the guild may post to.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("this server has no text channel named #{0}")]
    Unknown(String),
    /// A numeric id of a channel that is not the guild's (another guild's, a DM, or none).
    #[error("channel {0} is not in this guild")]
    Foreign(String),
    #[error(transparent)]
    Rest(#[from] RestError),
}

/// A guild's channel as the directory keeps it.
#[derive(Debug, Clone)]
struct Channel {
    id: String,
    name: String,
    kind: u64,
}

/// A miss re-reads the guild's channels at most this often (a foreign id cannot make the
/// host call Discord on every message).
const CHANNELS_REFRESH: Duration = Duration::from_secs(10);

impl GuildDirectory {
    /// The channel id for a reference, always a channel of `guild_id`: a name (with or
    /// without `#`, any case) is looked up among the guild's text channels; an id must be
    /// one of the guild's channels. The list is cached and re-read on a miss.
    pub async fn resolve_channel(
        &self,
        guild_id: &str,
        reference: &str,
    ) -> Result<String, ChannelError> {
        let r = reference.trim();
        let by_id = !r.is_empty() && r.chars().all(|c| c.is_ascii_digit());
        let name = r.trim_start_matches('#');
        let find = |list: &[Channel]| {
            list.iter()
                .find(|c| {
                    if by_id {
                        c.id == r
                    } else {
                        // Text (0) and announcement (5) channels take messages.
                        matches!(c.kind, 0 | 5) && c.name.eq_ignore_ascii_case(name)
                    }
                })
                .map(|c| c.id.clone())
        };
        if let Some((age, list)) = self.channels.aged(guild_id) {
            match find(&list) {
                Some(id) if age < TTL => return Ok(id),
                None if age < CHANNELS_REFRESH => return Err(missing(by_id, r, name)),
                _ => {}
            }
        }
        let v = self
            .get(
                &format!("GET guilds/{guild_id}/channels"),
                format!("/guilds/{guild_id}/channels"),
            )
            .await?;
        let list: Vec<Channel> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some(Channel {
                    id: c["id"].as_str()?.to_string(),
                    name: c["name"].as_str().unwrap_or_default().to_string(),
                    kind: c["type"].as_u64().unwrap_or(0),
                })
            })
            .collect();
        let found = find(&list);
        self.channels.insert(guild_id.to_string(), Arc::new(list));
        found.ok_or_else(|| missing(by_id, r, name))
    }
}

fn missing(by_id: bool, id: &str, name: &str) -> ChannelError {
    if by_id {
        ChannelError::Foreign(id.to_string())
    } else {
        ChannelError::Unknown(name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_combine_everyone_and_roles_and_the_owner_has_all() {
        let role = |name: &str, permissions| RoleInfo {
            name: name.into(),
            permissions,
        };
        let g = GuildInfo {
            owner_id: "1".into(),
            roles: [
                ("9".to_string(), role("@everyone", 1024)),
                ("5".to_string(), role("Mods", 32)),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(g.permissions("9", "2", &["5".into()]), 1024 | 32);
        assert_eq!(g.permissions("9", "2", &[]), 1024);
        assert_eq!(g.permissions("9", "1", &[]), u64::MAX);
        assert_eq!(g.role_names()["5"], "Mods");
    }
}
