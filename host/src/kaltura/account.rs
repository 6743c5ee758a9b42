//! The Kaltura account as the host uses it on behalf of a Discord member: every operation
//! the `kaltura` capability and `/api/v1` offer, with the guild's privileges, the member's
//! host-computed role, and sessions signed here. ADMIN sessions stay inside this module
//! and the client; what leaves is a USER session scoped to its purpose.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use kaltura_ks::SessionType;
use serde::Serialize;
use serde_json::{Value, json};

use super::admin::Admin;
use super::client::{Client, Idempotent, SubRequest};
use super::error::KalturaError;
use super::identity::{self, KalturaRole};
use super::media::{self, Category, Position, SearchResult, Video};
use super::meetings::{BackendName, Meeting, MeetingKind, Meetings, NewMeeting, no_such_meeting};
use super::privileges::{self, OperatorKaltura};
use super::sessions::{Sessions, SignedKs, now};
use super::settings::KalturaSettings;
use crate::config::schema::MeetingBackends;
use crate::discord::model::Member;

/// After eSearch is refused, use `media.list` for this long before asking again.
const ESEARCH_RETRY_AFTER: i64 = 600;
const DEFAULT_MEETING_SECONDS: i64 = 2 * 3600;

/// The guild's Kaltura settings: `kaltura` in its config for what it may choose (on/off,
/// expiry, narrowing), the operator's `kaltura` in `config/plugins.json` for privileges.
#[derive(Debug, Clone)]
pub struct GuildKaltura {
    /// Every session for this guild: the operator's `default` plus the guild's narrowing.
    pub default_privileges: String,
    /// Added to playback sessions.
    pub video_privileges: String,
    /// Added to meeting join sessions.
    pub meeting_privileges: String,
    /// `kaltura.session.expiry.video` (s, default 3600): playback sessions.
    pub video_ttl: i64,
    /// `kaltura.session.expiry.meeting` (s, default 3600): join links.
    pub meeting_ttl: i64,
    /// `kaltura.meetings`: the backend for each kind of meeting.
    pub meetings: MeetingBackends,
}

impl GuildKaltura {
    /// Reads the guild's `kaltura` section; without one (or with `enabled: false`) the
    /// error tells the server's admin what to set. The guild's own privilege items can
    /// only narrow (the config loader refuses the rest); a privacy context must be one
    /// the operator bound to the guild.
    pub fn from_config(
        cfg: &Value,
        guild_id: Option<&str>,
        operator: &OperatorKaltura,
    ) -> Result<Self, KalturaError> {
        let k = &cfg["kaltura"];
        let file = guild_id
            .map(|g| format!("config/guilds/{g}.json"))
            .unwrap_or_else(|| "config/default.json".into());
        if !k.is_object() || k["enabled"] == Value::Bool(false) {
            return Err(KalturaError::NotConfigured(format!(
                "Kaltura is not set up for this server. A server admin adds a `kaltura` section to {file}, e.g. {{\"kaltura\": {{\"enabled\": true}}}}."
            )));
        }
        let narrowing = |name: &str| -> Result<String, KalturaError> {
            let list = k["session"]["privileges"][name]
                .as_str()
                .unwrap_or_default();
            let mut kept = Vec::new();
            for item in privileges::items(list) {
                if let Some(why) = privileges::refused_in_guild(item) {
                    // The loader takes these out; this is the last line of defence.
                    return Err(KalturaError::Denied(format!(
                        "kaltura.session.privileges.{name}: {why}"
                    )));
                }
                if let Some(ctx) = item.strip_prefix("privacycontext:")
                    && !operator.context_bound(guild_id, ctx)
                {
                    return Err(KalturaError::Denied(format!(
                        "kaltura.session.privileges.{name}: `{item}` is not a privacy context the operator bound to this server (config/plugins.json: kaltura.guilds.<id>.privacy_contexts)."
                    )));
                }
                kept.push(item);
            }
            Ok(kept.join(","))
        };
        let ttl = |name: &str| {
            k["session"]["expiry"][name]
                .as_i64()
                .unwrap_or(3600)
                .clamp(60, 86_400)
        };
        let op = operator.lists_for(guild_id);
        Ok(Self {
            default_privileges: privileges::join(&[&op.default, &narrowing("default")?]),
            video_privileges: privileges::join(&[&op.video, &narrowing("video")?]),
            meeting_privileges: privileges::join(&[&op.meeting, &narrowing("meeting")?]),
            video_ttl: ttl("video"),
            meeting_ttl: ttl("meeting"),
            // The loader validated the file; a value it let through but this cannot read
            // (an older host's config) falls back to the defaults.
            meetings: serde_json::from_value(k["meetings"].clone()).unwrap_or_default(),
        })
    }
}

/// A member resolved against the guild's config: who they are to Kaltura.
#[derive(Debug, Clone)]
pub struct Caller {
    pub member: Member,
    pub kaltura_user_id: String,
    pub role: KalturaRole,
    /// Discord Administrator / Manage Server, or mapped to the Kaltura admin role.
    pub guild_admin: bool,
    pub guild: GuildKaltura,
}

/// A USER session as shown to its owner (never an ADMIN one: this type cannot hold one).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserSession {
    pub ks: String,
    pub user_id: String,
    pub privileges: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl UserSession {
    fn from_signed(s: SignedKs) -> Self {
        debug_assert_eq!(s.session_type, SessionType::User);
        Self {
            ks: s.ks.expose().to_string(),
            user_id: s.user_id,
            privileges: s.privileges,
            expires_at: s.expires_at,
        }
    }
}

/// Everything needed to play an entry with Kaltura Player v7.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Player {
    pub entry_id: String,
    pub partner_id: String,
    pub uiconf_id: String,
    pub script_url: String,
    /// Carries the caller's scoped session: for the caller only.
    pub iframe_url: String,
    /// No session inside: safe to share.
    pub embed_code: String,
    pub session: UserSession,
}

pub struct Kaltura {
    pub settings: KalturaSettings,
    client: Client,
    sessions: Sessions,
    /// Kaltura users known to exist (ensured once per process).
    ensured: Mutex<HashSet<String>>,
    esearch_off_until: AtomicI64,
    meetings: Meetings,
    /// The operator's side of sessions (`kaltura` in `config/plugins.json`), hot-reloaded.
    operator: ArcSwap<OperatorKaltura>,
}

impl Kaltura {
    pub fn new(settings: KalturaSettings) -> Self {
        let client = Client::new(&settings.service_url, settings.timeout);
        let sessions = Sessions::new(settings.partner_id, settings.admin_secrets[0].clone());
        let meetings = Meetings::new(&settings.kaf_url);
        Self {
            settings,
            client,
            sessions,
            ensured: Mutex::new(HashSet::new()),
            esearch_off_until: AtomicI64::new(0),
            meetings,
            operator: ArcSwap::from_pointee(OperatorKaltura::default()),
        }
    }

    /// Takes the operator's (re)loaded `kaltura` section of `config/plugins.json`.
    pub fn set_operator(&self, operator: OperatorKaltura) {
        self.operator.store(Arc::new(operator));
    }

    /// The operator's side of sessions as loaded now.
    pub fn operator(&self) -> Arc<OperatorKaltura> {
        self.operator.load_full()
    }

    /// Resolves a member in a guild: the guild must have Kaltura set up. `role_names`
    /// (the guild's role names by id) are needed only when the mapping names roles
    /// ([`identity::mapping_uses_names`]); the caller reads them from Discord.
    pub fn caller(
        &self,
        cfg: &Value,
        member: Member,
        role_names: &HashMap<String, String>,
    ) -> Result<Caller, KalturaError> {
        let guild =
            GuildKaltura::from_config(cfg, member.guild_id.as_deref(), &self.operator.load())?;
        let mapped = identity::role_for(cfg, &member, role_names);
        let guild_admin = member.has_admin_permission() || mapped == KalturaRole::Admin;
        let role = if guild_admin {
            KalturaRole::Admin
        } else {
            mapped
        };
        Ok(Caller {
            kaltura_user_id: identity::kaltura_user_id(&member.user_id),
            member,
            role,
            guild_admin,
            guild,
        })
    }

    /// A service account (from `config/api.json`) in a guild, with its configured role.
    pub fn service_caller(
        &self,
        cfg: &Value,
        name: &str,
        guild_id: Option<String>,
        role: KalturaRole,
    ) -> Result<Caller, KalturaError> {
        let guild = GuildKaltura::from_config(cfg, guild_id.as_deref(), &self.operator.load())?;
        Ok(Caller {
            member: Member {
                user_id: format!("service:{name}"),
                display_name: name.to_string(),
                guild_id,
                ..Default::default()
            },
            kaltura_user_id: identity::kaltura_user_id(&format!("service:{name}")),
            role,
            guild_admin: role == KalturaRole::Admin,
            guild,
        })
    }

    /// Reads for `c`: an ADMIN session of the caller's Kaltura user with entitlement on,
    /// so Kaltura shows only what that user may see (private categories stay private).
    fn reader(&self, c: &Caller) -> Admin<'_> {
        Admin::new(
            &self.client,
            &self.sessions,
            &c.kaltura_user_id,
            privileges::join(&[&c.guild.default_privileges, "enableentitlement"]),
        )
    }

    /// Writes for `c` (users, meetings) under an ADMIN session with the guild's default
    /// privileges.
    fn admin(&self, c: &Caller) -> Admin<'_> {
        Admin::new(
            &self.client,
            &self.sessions,
            &c.kaltura_user_id,
            c.guild.default_privileges.clone(),
        )
    }

    /// The Kaltura user the host made for a Discord user (`discord_<id>`), as a person's
    /// export shows it; `None` if there is none.
    pub async fn user_record(&self, discord_id: &str) -> Result<Option<Value>, KalturaError> {
        let id = identity::kaltura_user_id(discord_id);
        let admin = Admin::new(&self.client, &self.sessions, &id, String::new());
        match admin
            .call("user", "get", json!({"userId": id}), Idempotent::Read)
            .await
        {
            Ok(u) => {
                let mut out = serde_json::Map::new();
                for field in [
                    "id",
                    "screenName",
                    "fullName",
                    "email",
                    "externalId",
                    "createdAt",
                    "status",
                ] {
                    if !u[field].is_null() {
                        out.insert(field.into(), u[field].clone());
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            Err(e) if e.code() == Some("INVALID_USER_ID") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Forgets that a Kaltura user was made (after an erasure: made again on next use).
    pub fn forget_user(&self, discord_id: &str) {
        self.ensured
            .lock()
            .unwrap()
            .remove(&identity::kaltura_user_id(discord_id));
    }

    /// Makes sure `discord_<id>` exists in Kaltura: `user.get`, then `user.add` if it is
    /// missing, in one multirequest round trip; remembered for the life of the process.
    pub async fn ensure_user(&self, c: &Caller) -> Result<(), KalturaError> {
        if self.ensured.lock().unwrap().contains(&c.kaltura_user_id) {
            return Ok(());
        }
        let id = &c.kaltura_user_id;
        let user = json!({"objectType": "KalturaUser", "id": id, "screenName": c.member.display_name,
            "externalId": c.member.user_id, "isAdmin": false});
        let results = self
            .admin(c)
            .multi(
                vec![
                    SubRequest {
                        service: "user",
                        action: "get",
                        params: json!({"userId": id}),
                    },
                    SubRequest {
                        service: "user",
                        action: "add",
                        params: json!({"user": user}),
                    },
                ],
                Idempotent::Write,
            )
            .await?;
        let exists = match (&results[0], &results[1]) {
            (Ok(_), _) | (_, Ok(_)) => true,
            (Err(_), Err(e)) if e.code() == Some("DUPLICATE_USER_BY_ID") => true,
            (Err(_), Err(e)) => return Err(e.clone()),
        };
        if exists {
            self.ensured.lock().unwrap().insert(id.clone());
        }
        Ok(())
    }

    /// Free-text search over ready media, one page; eSearch first, `media.list` with
    /// `freeText` when the account has no eSearch.
    pub async fn search(
        &self,
        c: &Caller,
        query: &str,
        limit: u32,
        page: u32,
    ) -> Result<SearchResult, KalturaError> {
        let at = Position::Page {
            p: page.clamp(1, MAX_PAGE),
        };
        Ok(self.search_from(c, query, limit, Some(at)).await?.0)
    }

    /// A listing from `at` (the start when `None`) and where the next one goes on from
    /// (`None` after the last). Text goes to eSearch, ranked, in pages; no text, or an
    /// account without eSearch, lists newest first, by keyset unless `at` is a page.
    pub async fn search_from(
        &self,
        c: &Caller,
        query: &str,
        limit: u32,
        at: Option<Position>,
    ) -> Result<(SearchResult, Option<Position>), KalturaError> {
        let q = media::clean_query(query);
        let limit = limit.clamp(1, 50);
        let admin = self.reader(c);
        let esearch_page = match &at {
            None => Some(1),
            Some(Position::Page { p }) => Some(*p),
            Some(Position::Before { .. }) => None,
        };
        if let Some(page) = esearch_page
            .filter(|_| !q.is_empty() && now() >= self.esearch_off_until.load(Ordering::Relaxed))
        {
            match admin
                .call(
                    "elasticsearch_esearch",
                    "searchEntry",
                    media::esearch_params(&q, limit, page),
                    Idempotent::Read,
                )
                .await
            {
                Ok(v) => {
                    let r = media::parse_list(v, "esearch").map(ready_only)?;
                    let next = next_page(page, limit, r.total);
                    return Ok((r, next));
                }
                Err(e) if e.is_forbidden_service() => {
                    tracing::info!(error = %e, "eSearch is not available on this account; using media.list");
                    self.esearch_off_until
                        .store(now() + ESEARCH_RETRY_AFTER, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        let v = admin
            .call(
                "media",
                "list",
                media::list_params(&q, limit, at.as_ref()),
                Idempotent::Read,
            )
            .await?;
        let r = media::parse_list(v, "media.list").map(ready_only)?;
        let next = match &at {
            Some(Position::Page { p }) => next_page(*p, limit, r.total),
            _ if r.videos.len() < limit as usize => None,
            _ => Position::before_last(at.as_ref(), &r.videos),
        };
        Ok((r, next))
    }

    pub async fn entry(&self, c: &Caller, entry_id: &str) -> Result<Video, KalturaError> {
        let not_found = || KalturaError::NotFound(format!("There is no video `{entry_id}`."));
        if !valid_entry_id(entry_id) {
            return Err(not_found());
        }
        let v = self
            .reader(c)
            .call(
                "media",
                "get",
                json!({"entryId": entry_id}),
                Idempotent::Read,
            )
            .await
            .map_err(|e| if e.is_not_found() { not_found() } else { e })?;
        Video::from_wire(v)
    }

    pub async fn categories(&self, c: &Caller) -> Result<Vec<Category>, KalturaError> {
        let v = self
            .reader(c)
            .call(
                "category",
                "list",
                json!({"filter": {"objectType": "KalturaCategoryFilter", "orderBy": "+fullName"},
                       "pager": {"objectType": "KalturaFilterPager", "pageSize": 500}}),
                Idempotent::Read,
            )
            .await?;
        let objects = v["objects"].as_array().cloned().unwrap_or_default();
        objects
            .into_iter()
            .map(|o| {
                serde_json::from_value(o)
                    .map_err(|e| KalturaError::Decode(format!("a category: {e}")))
            })
            .collect()
    }

    /// The caller's own USER session with the guild's default privileges.
    pub async fn user_session(&self, c: &Caller, ttl: i64) -> Result<UserSession, KalturaError> {
        self.ensure_user(c).await?;
        let s = self.sessions.get(
            &c.kaltura_user_id,
            SessionType::User,
            &c.guild.default_privileges,
            ttl.clamp(60, 86_400),
        );
        Ok(UserSession::from_signed(s))
    }

    /// Player details with a USER session scoped to the entry (`sview:<entry>`).
    pub async fn player(&self, c: &Caller, entry_id: &str) -> Result<Player, KalturaError> {
        let uiconf = self.settings.player_uiconf_id.clone().ok_or_else(|| {
            KalturaError::NotConfigured(
                "Playback is not set up on this host: the operator sets KALTURA_PLAYER_UICONF_ID (a Player v7 id from the KMC).".into(),
            )
        })?;
        let video = self.entry(c, entry_id).await?;
        if !video.is_ready() {
            return Err(KalturaError::Invalid(format!(
                "`{}` is not ready to play yet (it may still be processing).",
                video.name
            )));
        }
        self.ensure_user(c).await?;
        let scope = format!("sview:{}", video.id);
        let privs = privileges::join(&[
            &scope,
            &c.guild.default_privileges,
            &c.guild.video_privileges,
        ]);
        let s = self.sessions.get(
            &c.kaltura_user_id,
            SessionType::User,
            &privs,
            c.guild.video_ttl,
        );
        let session = UserSession::from_signed(s);
        let pid = self.settings.partner_id;
        let script_url = format!(
            "{}/p/{pid}/embedPlaykitJs/uiconf_id/{uiconf}",
            self.settings.cdn_url
        );
        let embed = format!("{script_url}?iframeembed=true&entry_id={}", video.id);
        let ks: String = url::form_urlencoded::byte_serialize(session.ks.as_bytes()).collect();
        Ok(Player {
            iframe_url: format!("{embed}&ks={ks}"),
            embed_code: format!(
                "<iframe src=\"{embed}\" width=\"640\" height=\"360\" allowfullscreen allow=\"autoplay *; fullscreen *; encrypted-media *\" frameborder=\"0\" title=\"{}\"></iframe>",
                html_attr(&video.name)
            ),
            entry_id: video.id,
            partner_id: pid.to_string(),
            uiconf_id: uiconf,
            script_url,
            session,
        })
    }

    fn guild_of<'c>(&self, c: &'c Caller) -> Result<&'c str, KalturaError> {
        c.member.guild_id.as_deref().ok_or_else(|| {
            KalturaError::Invalid(
                "Meetings belong to a server: use this in a server channel.".into(),
            )
        })
    }

    pub async fn create_meeting(
        &self,
        c: &Caller,
        kind: MeetingKind,
        title: &str,
        description: &str,
    ) -> Result<Meeting, KalturaError> {
        let guild_id = self.guild_of(c)?.to_string();
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(KalturaError::Invalid(
                "A meeting title needs 1 to 200 characters.".into(),
            ));
        }
        if description.chars().count() > 2000 {
            return Err(KalturaError::Invalid(
                "A meeting description is at most 2000 characters.".into(),
            ));
        }
        self.ensure_user(c).await?;
        let new = NewMeeting {
            kind,
            title: title.to_string(),
            description: description.trim().to_string(),
            owner_discord_id: c.member.user_id.clone(),
            owner_kaltura_id: c.kaltura_user_id.clone(),
            guild_id,
            duration: DEFAULT_MEETING_SECONDS,
        };
        let backend = self.meeting_backend(c, kind)?;
        self.meetings
            .backend(backend)
            .create(&self.admin(c), &new)
            .await
    }

    /// The backend the caller's guild hosts `kind` on, if the operator allows it.
    fn meeting_backend(&self, c: &Caller, kind: MeetingKind) -> Result<BackendName, KalturaError> {
        let backend = c.guild.meetings.for_kind(kind);
        if self
            .operator
            .load()
            .allows_backend(c.member.guild_id.as_deref(), backend)
        {
            return Ok(backend);
        }
        Err(KalturaError::NotConfigured(format!(
            "This server hosts {}s on Kaltura {}, which the bot's operator has not turned on. A server admin sets `kaltura.meetings.{}` to another backend, or the operator adds \"{}\" to `kaltura.meeting_backends` in config/plugins.json.",
            kind.as_str(),
            backend.as_str().replace('_', " "),
            kind.as_str(),
            backend.as_str()
        )))
    }

    /// A meeting of the caller's guild (others are "not found").
    pub async fn meeting(&self, c: &Caller, id: &str) -> Result<Meeting, KalturaError> {
        let guild_id = self.guild_of(c)?;
        let id = id.trim();
        let m = self.meetings.holding(id)?.get(&self.admin(c), id).await?;
        if m.guild_id != guild_id {
            return Err(no_such_meeting(id));
        }
        Ok(m)
    }

    /// The guild's active meetings on every backend it hosts a kind of meeting on.
    pub async fn meetings(&self, c: &Caller) -> Result<Vec<Meeting>, KalturaError> {
        let guild_id = self.guild_of(c)?;
        let operator = self.operator.load();
        let backends: BTreeSet<BackendName> = MeetingKind::ALL
            .into_iter()
            .map(|k| c.guild.meetings.for_kind(k))
            .filter(|b| operator.allows_backend(Some(guild_id), *b))
            .collect();
        let admin = self.admin(c);
        let lists = futures::future::try_join_all(
            backends
                .iter()
                .map(|b| self.meetings.backend(*b).list_active(&admin, guild_id)),
        )
        .await?;
        let mut all: Vec<Meeting> = lists.into_iter().flatten().collect();
        all.sort_by_key(|m| m.starts_at);
        Ok(all)
    }

    /// Ends a meeting: only its owner or a guild admin.
    pub async fn end_meeting(&self, c: &Caller, id: &str) -> Result<Meeting, KalturaError> {
        let mut m = self.meeting(c, id).await?;
        if m.owner_id != c.member.user_id && !c.guild_admin {
            return Err(KalturaError::Denied(format!(
                "Only the meeting's owner (<@{}>) or a server admin can end “{}”.",
                m.owner_id, m.title
            )));
        }
        if m.active {
            self.meetings
                .holding(&m.id)?
                .end(&self.admin(c), &m)
                .await?;
            m.active = false;
        }
        Ok(m)
    }

    /// A personal join link with the caller's role (the owner joins as a moderator).
    pub async fn join_meeting(
        &self,
        c: &Caller,
        id: &str,
    ) -> Result<(Meeting, String), KalturaError> {
        let m = self.meeting(c, id).await?;
        if !m.active {
            return Err(KalturaError::Invalid(format!("“{}” has ended.", m.title)));
        }
        self.ensure_user(c).await?;
        let role = if m.owner_id == c.member.user_id {
            c.role.max(KalturaRole::Moderator)
        } else {
            c.role
        };
        let backend = self.meetings.holding(&m.id)?;
        let scoped = backend.join_privileges(&m, role, &c.member.display_name);
        let privs = privileges::join(&[
            &scoped,
            &c.guild.default_privileges,
            &c.guild.meeting_privileges,
        ]);
        let ttl = c.guild.meeting_ttl.min((m.ends_at - now()).max(60));
        let s = self
            .sessions
            .get(&c.kaltura_user_id, SessionType::User, &privs, ttl);
        let url = backend.join_url(&m, s.ks.expose());
        Ok((m, url))
    }
}

/// Search results people see: ready entries only (eSearch finds entries still processing).
/// The deepest page a listing by page index reaches (Kaltura's own limit is 10,000 results).
pub const MAX_PAGE: u32 = 1000;

/// The page after `page` when there is one.
fn next_page(page: u32, limit: u32, total: u32) -> Option<Position> {
    (page < MAX_PAGE && u64::from(page) * u64::from(limit) < u64::from(total))
        .then_some(Position::Page { p: page + 1 })
}

fn ready_only(mut r: SearchResult) -> SearchResult {
    r.videos.retain(Video::is_ready);
    r
}

/// Kaltura entry ids look like `0_abc123de`; anything else is not sent on.
fn valid_entry_id(id: &str) -> bool {
    (3..=20).contains(&id.len())
        && id.contains('_')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn html_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guild_without_kaltura_config_is_told_what_to_set() {
        let op = OperatorKaltura::default();
        let e = GuildKaltura::from_config(&json!({}), Some("42"), &op).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("config/guilds/42.json") && text.contains("\"kaltura\""),
            "{text}"
        );
        let g = GuildKaltura::from_config(
            &json!({"kaltura": {"session": {"expiry": {"video": 5}}}}),
            None,
            &op,
        )
        .unwrap();
        assert_eq!(g.video_ttl, 60, "clamped to at least a minute");
    }

    #[test]
    fn privileges_come_from_the_operator_and_guilds_only_narrow() {
        let op: OperatorKaltura = serde_json::from_value(json!({
            "privileges": {"default": "a:1", "video": "v:1"},
            "guilds": {"42": {"privacy_contexts": ["club"]}}
        }))
        .unwrap();
        let cfg = |p: &str| json!({"kaltura": {"session": {"privileges": {"default": p}}}});
        let g = GuildKaltura::from_config(&cfg("privacycontext:club"), Some("42"), &op).unwrap();
        assert_eq!(g.default_privileges, "a:1,privacycontext:club");
        assert_eq!(g.video_privileges, "v:1");
        // Another guild cannot use a context bound to 42.
        let e = GuildKaltura::from_config(&cfg("privacycontext:club"), Some("43"), &op)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a privacy context the operator bound"),
            "{e}"
        );
        // Widening never reaches a session, even if a config got past the loader.
        let e = GuildKaltura::from_config(&cfg("disableentitlement,sview:*"), Some("42"), &op)
            .unwrap_err()
            .to_string();
        assert!(e.contains("refused"), "{e}");
    }

    #[test]
    fn privilege_lists_join_without_empty_parts() {
        assert_eq!(
            privileges::join(&["sview:0_a", "", " x:y, "]),
            "sview:0_a,x:y"
        );
    }

    #[test]
    fn entry_ids_are_checked_before_they_are_sent() {
        assert!(valid_entry_id("1_ujzde8gx"));
        assert!(!valid_entry_id("0_\"; drop"));
        assert!(!valid_entry_id("nounderscore"));
    }
}
