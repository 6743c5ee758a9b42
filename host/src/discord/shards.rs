//! Which gateway shards this instance connects (`DISCORD_SHARDS`, `DISCORD_SHARD_COUNT`):
//! - unset: one connection, shard 0 of 1 (a bot in up to 2,500 guilds);
//! - `auto`: the count Discord recommends (`GET /gateway/bot`, or `DISCORD_SHARD_COUNT`),
//!   spread over the live instances with leases (`cluster/shards.rs`);
//! - `0-3` (or `5`) with `DISCORD_SHARD_COUNT=8`: exactly that range, for one pod per range;
//! - `none`: no gateway connection here (an HTTP-only instance; others hold the shards).

/// The shards to connect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ShardPlan {
    #[default]
    Single,
    /// Shards `first..=last` of `total`.
    Range { first: u32, last: u32, total: u32 },
    /// Spread over the instances; `total` fixed by the operator or recommended by Discord.
    Auto { total: Option<u32> },
    /// No gateway connection on this instance.
    None,
}

impl ShardPlan {
    /// Reads `DISCORD_SHARDS` and `DISCORD_SHARD_COUNT`; errors say which and why.
    pub fn parse(shards: Option<&str>, count: Option<&str>) -> Result<Self, String> {
        let count = count
            .map(|c| {
                c.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    format!("DISCORD_SHARD_COUNT must be a whole number ≥ 1, not `{c}`")
                })
            })
            .transpose()?;
        let Some(shards) = shards else {
            return match count {
                None | Some(1) => Ok(Self::Single),
                Some(_) => Err(
                    "DISCORD_SHARD_COUNT needs DISCORD_SHARDS (`auto`, or a range such as `0-3`)"
                        .into(),
                ),
            };
        };
        if shards.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto { total: count });
        }
        if shards.eq_ignore_ascii_case("none") {
            return Ok(Self::None);
        }
        let bad = || {
            format!(
                "DISCORD_SHARDS must be `auto`, `none`, a shard id or a range such as `0-3`, not `{shards}`"
            )
        };
        let (first, last) = match shards.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<u32>().map_err(|_| bad())?,
                b.trim().parse::<u32>().map_err(|_| bad())?,
            ),
            None => {
                let n = shards.trim().parse::<u32>().map_err(|_| bad())?;
                (n, n)
            }
        };
        let total = count.ok_or_else(|| {
            format!("DISCORD_SHARDS={shards} needs DISCORD_SHARD_COUNT (how many shards the bot has in all)")
        })?;
        if first > last || last >= total {
            return Err(format!(
                "DISCORD_SHARDS={shards} is not a range within 0-{} (DISCORD_SHARD_COUNT={total})",
                total - 1
            ));
        }
        Ok(Self::Range { first, last, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_and_their_errors() {
        assert_eq!(ShardPlan::parse(None, None), Ok(ShardPlan::Single));
        assert_eq!(
            ShardPlan::parse(Some("auto"), None),
            Ok(ShardPlan::Auto { total: None })
        );
        assert_eq!(
            ShardPlan::parse(Some("AUTO"), Some("8")),
            Ok(ShardPlan::Auto { total: Some(8) })
        );
        assert_eq!(
            ShardPlan::parse(Some("0-3"), Some("8")),
            Ok(ShardPlan::Range {
                first: 0,
                last: 3,
                total: 8
            })
        );
        assert_eq!(
            ShardPlan::parse(Some("5"), Some("8")),
            Ok(ShardPlan::Range {
                first: 5,
                last: 5,
                total: 8
            })
        );
        assert!(
            ShardPlan::parse(Some("0-3"), None)
                .unwrap_err()
                .contains("DISCORD_SHARD_COUNT")
        );
        assert!(
            ShardPlan::parse(Some("4-9"), Some("8"))
                .unwrap_err()
                .contains("within 0-7")
        );
        assert_eq!(ShardPlan::parse(Some("none"), None), Ok(ShardPlan::None));
        assert!(ShardPlan::parse(Some("3-1"), Some("8")).is_err());
        assert!(
            ShardPlan::parse(Some("x"), Some("8"))
                .unwrap_err()
                .contains("`x`")
        );
        assert!(
            ShardPlan::parse(None, Some("0"))
                .unwrap_err()
                .contains("≥ 1")
        );
        assert!(
            ShardPlan::parse(None, Some("4"))
                .unwrap_err()
                .contains("needs DISCORD_SHARDS")
        );
    }
}
