use super::Position;
use super::reader::{BELOW_HORIZON, FeedEvent, decode_row};
use sqlx::PgExecutor;
use std::str::FromStr;

/// One end of a range of events, inclusive, in either of the two forms an operator meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `1200`: an event's `global_position`, the store's insertion order (`0` is before every
    /// event).
    Global(i64),
    /// `812/44`: a feed position, `<transaction id>/<global position>`, as an envelope's
    /// `position` shows it. It bounds the commit order, so a range starting at the last message
    /// a consumer saw also holds the events that committed after it with a lower global position.
    Feed(Position),
}

impl FromStr for Bound {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let parsed = if s.contains('/') {
            s.parse::<Position>().ok().map(Self::Feed)
        } else {
            s.parse::<i64>().ok().filter(|g| *g >= 0).map(Self::Global)
        };
        parsed.ok_or_else(|| {
            format!(
                "`{s}` is not a position: give a global position (a number, like 1200) or a feed position \
                 <transaction id>/<global position> (like 812/44, an envelope's `position`)"
            )
        })
    }
}

/// The events from `from` to `to`, both inclusive; no `to` means up to the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: Bound,
    pub to: Option<Bound>,
}

impl Range {
    /// A bound as the query's parameters: a feed position's two columns, or a global position.
    fn params(bound: Option<Bound>) -> (Option<String>, Option<i64>, Option<i64>) {
        match bound {
            None => (None, None, None),
            Some(Bound::Feed(p)) => (Some(p.transaction_id.to_string()), Some(p.global_position), None),
            Some(Bound::Global(g)) => (None, None, Some(g)),
        }
    }
}

/// Up to `limit` events of `range` after `after`, in commit order, never one that a running
/// transaction could still precede (as [`super::read_after`]).
pub async fn read_range<'e>(
    db: impl PgExecutor<'e>,
    range: &Range,
    after: Position,
    limit: i64,
) -> sqlx::Result<Vec<FeedEvent>> {
    let sql = format!(
        "SELECT transaction_id::text AS tx, global_position, aggregate_type, aggregate_id, sequence, \
                event_type, event_version, payload::text AS payload, metadata, recorded_at \
         FROM events \
         WHERE (transaction_id, global_position) > ($1::text::xid8, $2) AND {BELOW_HORIZON} \
           AND ($4::text IS NULL OR (transaction_id, global_position) >= ($4::text::xid8, $5)) \
           AND ($6::bigint IS NULL OR global_position >= $6) \
           AND ($7::text IS NULL OR (transaction_id, global_position) <= ($7::text::xid8, $8)) \
           AND ($9::bigint IS NULL OR global_position <= $9) \
         ORDER BY transaction_id, global_position \
         LIMIT $3"
    );
    let (from_tx, from_feed, from_global) = Range::params(Some(range.from));
    let (to_tx, to_feed, to_global) = Range::params(range.to);
    let rows = sqlx::query(&sql)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .bind(from_tx)
        .bind(from_feed)
        .bind(from_global)
        .bind(to_tx)
        .bind(to_feed)
        .bind(to_global)
        .fetch_all(db)
        .await?;
    rows.iter().map(decode_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_is_a_global_or_a_feed_position() {
        assert_eq!("1200".parse::<Bound>().unwrap(), Bound::Global(1200));
        assert_eq!(" 812/44".parse::<Bound>().unwrap(), Bound::Feed(Position::new(812, 44)));
        for bad in ["abc", "-3", "812/", "/44", "1.5", ""] {
            let error = bad.parse::<Bound>().unwrap_err();
            assert!(error.contains("is not a position"), "{bad}: {error}");
        }
    }
}
