//! The Watch Together Activity's server side: the sync rooms (`room`), their wire protocol
//! (`protocol`) and the WebSocket endpoint (`sync`). Sign-in is `POST /api/v1/activity/token`.

pub mod protocol;
pub mod room;
pub mod sync;
