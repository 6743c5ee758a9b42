//! Discord's permission bits that the host checks, defined once.

/// Every permission; overrides channel overwrites.
pub const ADMINISTRATOR: u64 = 1 << 3;
/// Manage Server.
pub const MANAGE_GUILD: u64 = 1 << 5;

/// A permission set as Discord sends it (a decimal string); absent or unreadable: none.
pub fn parse(bits: Option<&str>) -> u64 {
    bits.and_then(|p| p.parse::<u64>().ok()).unwrap_or(0)
}

/// Administrator or Manage Server: may change the guild's bot configuration.
pub fn may_manage_guild(bits: u64) -> bool {
    bits & (ADMINISTRATOR | MANAGE_GUILD) != 0
}

/// Whether `has` covers a command's `default_member_permissions`: Administrator covers
/// everything; `0` means administrators only.
pub fn covers(has: u64, required: u64) -> bool {
    has & ADMINISTRATOR != 0 || (required != 0 && has & required == required)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administrators_cover_everything_and_zero_means_administrators_only() {
        assert!(covers(ADMINISTRATOR, 0));
        assert!(!covers(MANAGE_GUILD, 0));
        assert!(covers(MANAGE_GUILD | 1, MANAGE_GUILD));
        assert!(!covers(1, MANAGE_GUILD));
        assert!(may_manage_guild(parse(Some("32"))));
        assert!(!may_manage_guild(parse(Some("not bits"))));
        assert_eq!(parse(None), 0);
    }
}
