//! Declared by the contract; the Kaltura client arrives with the [kaltura] work. Until then
//! every call (once granted) answers `unavailable`, never a trap.

use crate::plugins::bindings::kaltura_discord::plugin::kaltura::{Entry, Host, Meeting};
use crate::plugins::bindings::types::{CapError, Capability};
use crate::plugins::state::PluginState;

impl PluginState {
    fn kaltura(&self) -> Result<std::convert::Infallible, CapError> {
        self.require(Capability::Kaltura)?;
        Err(CapError::Unavailable(
            "Kaltura is not available on this host yet; try again later".into(),
        ))
    }
}

impl Host for PluginState {
    async fn search_entries(
        &mut self,
        _query: String,
        _limit: u32,
    ) -> Result<Vec<Entry>, CapError> {
        match self.kaltura()? {}
    }
    async fn get_entry(&mut self, _entry_id: String) -> Result<Entry, CapError> {
        match self.kaltura()? {}
    }
    async fn user_session(&mut self, _expiry_seconds: u32) -> Result<String, CapError> {
        match self.kaltura()? {}
    }
    async fn player_embed(&mut self, _entry_id: String) -> Result<String, CapError> {
        match self.kaltura()? {}
    }
    async fn create_meeting(&mut self, _title: String) -> Result<Meeting, CapError> {
        match self.kaltura()? {}
    }
    async fn list_meetings(&mut self) -> Result<Vec<Meeting>, CapError> {
        match self.kaltura()? {}
    }
    async fn end_meeting(&mut self, _meeting_id: String) -> Result<(), CapError> {
        match self.kaltura()? {}
    }
}
