//! The `kaltura` capability: the host's Kaltura account on behalf of the invoking member.
//! Every call is checked against the grant, the guild's `kaltura` config and the member's
//! host-computed role; sessions handed to the guest are USER sessions for the caller.

use std::sync::Arc;

use crate::config::guild::GuildConfigs;
use crate::discord::model::Member;
use crate::kaltura::account::{Player as HostPlayer, UserSession};
use crate::kaltura::error::TRY_AGAIN;
use crate::kaltura::identity::{KalturaRole, mapping_uses_names};
use crate::kaltura::media::{Category as HostCategory, Video};
use crate::kaltura::meetings::{Meeting as HostMeeting, MeetingKind as HostKind};
use crate::kaltura::{Caller as HostCaller, Kaltura, KalturaError};
use crate::plugins::bindings::kaltura_discord::plugin::kaltura::{
    Caller, Category, Entry, Host, Meeting, MeetingKind, Player, Role, SearchResult, Session,
};
use crate::plugins::bindings::types::{CapError, Capability};
use crate::plugins::state::PluginState;

/// What the `kaltura` capability needs: the account (when configured) and the guilds'
/// configuration (each guild's Kaltura settings narrow what a member may do).
pub struct KalturaCap {
    pub kaltura: Option<Arc<Kaltura>>,
    pub guilds: Arc<GuildConfigs>,
    pub directory: Arc<crate::discord::guilds::GuildDirectory>,
}

/// Results per search call.
const MAX_SEARCH: u32 = 10;

impl PluginState {
    /// The account and the resolved caller (resolved once per guest call).
    async fn kaltura(&mut self) -> Result<(Arc<Kaltura>, HostCaller), CapError> {
        self.require(Capability::Kaltura)?;
        let k = self.caps.kaltura.kaltura.clone().ok_or_else(|| {
            CapError::Unavailable(
                "Kaltura is not configured on this host (the operator sets KALTURA_PARTNER_ID and KALTURA_ADMIN_SECRET)".into(),
            )
        })?;
        if let Some(c) = &self.kaltura_caller {
            return Ok((k, c.clone()));
        }
        let user_id = self.scope.user_id.clone().ok_or_else(|| {
            CapError::Invalid("Kaltura calls need an invoking Discord user".into())
        })?;
        let member = Member {
            user_id,
            display_name: self.scope.user_name.clone(),
            guild_id: self.scope.guild_id.clone(),
            roles: self.scope.roles.clone(),
            permissions: self.scope.permissions.clone(),
        };
        let cfg = self
            .caps
            .kaltura
            .guilds
            .guild(self.scope.guild_id.as_deref());
        let names = self
            .caps
            .kaltura
            .directory
            .role_names_if(self.scope.guild_id.as_deref(), mapping_uses_names(&cfg))
            .await;
        let caller = k
            .caller(&cfg, member, &names)
            .map_err(|e| self.kaltura_error(e))?;
        self.kaltura_caller = Some(caller.clone());
        Ok((k, caller))
    }

    /// A Kaltura failure in words for the guest (and so, maybe, the user).
    fn kaltura_error(&self, e: KalturaError) -> CapError {
        match e {
            KalturaError::NotConfigured(m) => CapError::Unavailable(m),
            KalturaError::Denied(m) => CapError::Denied(m),
            KalturaError::Invalid(m) => CapError::Invalid(m),
            KalturaError::NotFound(m) => CapError::NotFound(m),
            e if e.is_not_found() => CapError::NotFound(e.to_string()),
            e @ (KalturaError::Network(_) | KalturaError::Http(_) | KalturaError::Decode(_)) => {
                tracing::warn!(plugin = %self.plugin, error = %e, "Kaltura call failed");
                CapError::Unavailable(TRY_AGAIN.into())
            }
            KalturaError::Api { code, message, .. } => {
                tracing::warn!(plugin = %self.plugin, code = %code, message = %message, "Kaltura refused a call");
                CapError::Failed(format!("Kaltura refused ({code}): {message}"))
            }
        }
    }
}

fn entry(v: Video) -> Entry {
    Entry {
        id: v.id,
        name: v.name,
        description: v.description,
        thumbnail_url: v.thumbnail_url,
        duration: v.duration,
        media_type: v.media_type,
        status: v.status,
        tags: v.tags,
        categories: v.categories,
        plays: v.plays,
        created_at: v.created_at,
    }
}

fn session(s: UserSession) -> Session {
    Session {
        ks: s.ks,
        user_id: s.user_id,
        privileges: s.privileges,
        expires_at: s.expires_at,
    }
}

fn meeting(m: HostMeeting) -> Meeting {
    Meeting {
        id: m.id,
        kind: match m.kind {
            HostKind::Meeting => MeetingKind::Meeting,
            HostKind::Webinar => MeetingKind::Webinar,
            HostKind::Classroom => MeetingKind::Classroom,
        },
        title: m.title,
        description: m.description,
        owner_id: m.owner_id,
        starts_at: m.starts_at,
        ends_at: m.ends_at,
        active: m.active,
    }
}

fn player(p: HostPlayer) -> Player {
    Player {
        entry_id: p.entry_id,
        partner_id: p.partner_id,
        uiconf_id: p.uiconf_id,
        script_url: p.script_url,
        iframe_url: p.iframe_url,
        embed_code: p.embed_code,
        session: session(p.session),
    }
}

fn category(c: HostCategory) -> Category {
    Category {
        id: c.id,
        name: c.name,
        full_name: c.full_name,
        entries_count: c.entries_count,
    }
}

impl Host for PluginState {
    async fn whoami(&mut self) -> Result<Caller, CapError> {
        let (_, c) = self.kaltura().await?;
        Ok(Caller {
            kaltura_user_id: c.kaltura_user_id,
            role: match c.role {
                KalturaRole::Viewer => Role::Viewer,
                KalturaRole::Moderator => Role::Moderator,
                KalturaRole::Admin => Role::Admin,
            },
            guild_admin: c.guild_admin,
        })
    }

    async fn search_entries(
        &mut self,
        query: String,
        limit: u32,
    ) -> Result<SearchResult, CapError> {
        let (k, c) = self.kaltura().await?;
        let r = k
            .search(&c, &query, limit.clamp(1, MAX_SEARCH), 1)
            .await
            .map_err(|e| self.kaltura_error(e))?;
        Ok(SearchResult {
            total: r.total,
            entries: r.videos.into_iter().map(entry).collect(),
            engine: r.engine,
        })
    }

    async fn get_entry(&mut self, entry_id: String) -> Result<Entry, CapError> {
        let (k, c) = self.kaltura().await?;
        k.entry(&c, &entry_id)
            .await
            .map(entry)
            .map_err(|e| self.kaltura_error(e))
    }

    async fn list_categories(&mut self) -> Result<Vec<Category>, CapError> {
        let (k, c) = self.kaltura().await?;
        k.categories(&c)
            .await
            .map(|l| l.into_iter().map(category).collect())
            .map_err(|e| self.kaltura_error(e))
    }

    async fn user_session(&mut self, expiry_seconds: u32) -> Result<Session, CapError> {
        let (k, c) = self.kaltura().await?;
        k.user_session(&c, expiry_seconds as i64)
            .await
            .map(session)
            .map_err(|e| self.kaltura_error(e))
    }

    async fn play(&mut self, entry_id: String) -> Result<Player, CapError> {
        let (k, c) = self.kaltura().await?;
        k.player(&c, &entry_id)
            .await
            .map(player)
            .map_err(|e| self.kaltura_error(e))
    }

    async fn create_meeting(
        &mut self,
        kind: MeetingKind,
        title: String,
        description: String,
    ) -> Result<Meeting, CapError> {
        let (k, c) = self.kaltura().await?;
        let kind = match kind {
            MeetingKind::Meeting => HostKind::Meeting,
            MeetingKind::Webinar => HostKind::Webinar,
            MeetingKind::Classroom => HostKind::Classroom,
        };
        k.create_meeting(&c, kind, &title, &description)
            .await
            .map(meeting)
            .map_err(|e| self.kaltura_error(e))
    }

    async fn get_meeting(&mut self, meeting_id: String) -> Result<Meeting, CapError> {
        let (k, c) = self.kaltura().await?;
        k.meeting(&c, &meeting_id)
            .await
            .map(meeting)
            .map_err(|e| self.kaltura_error(e))
    }

    async fn list_meetings(&mut self) -> Result<Vec<Meeting>, CapError> {
        let (k, c) = self.kaltura().await?;
        k.meetings(&c)
            .await
            .map(|l| l.into_iter().map(meeting).collect())
            .map_err(|e| self.kaltura_error(e))
    }

    async fn end_meeting(&mut self, meeting_id: String) -> Result<(), CapError> {
        let (k, c) = self.kaltura().await?;
        k.end_meeting(&c, &meeting_id)
            .await
            .map(|_| ())
            .map_err(|e| self.kaltura_error(e))
    }

    async fn join_meeting(&mut self, meeting_id: String) -> Result<String, CapError> {
        let (k, c) = self.kaltura().await?;
        k.join_meeting(&c, &meeting_id)
            .await
            .map(|(_, url)| url)
            .map_err(|e| self.kaltura_error(e))
    }
}
