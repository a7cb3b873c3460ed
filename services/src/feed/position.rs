use std::fmt;
use std::str::FromStr;

/// A place in the feed: the `(transaction_id, global_position)` of an event. Positions
/// compare in commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub transaction_id: u64,
    pub global_position: i64,
}

impl Position {
    /// Before every event.
    pub const START: Self = Self { transaction_id: 0, global_position: 0 };

    pub fn new(transaction_id: u64, global_position: i64) -> Self {
        Self { transaction_id, global_position }
    }

    /// From the text forms the SQL reads select (`transaction_id::text`).
    pub fn from_columns(transaction_id: &str, global_position: i64) -> anyhow::Result<Self> {
        Ok(Self { transaction_id: transaction_id.parse()?, global_position })
    }
}

/// `<transaction_id>/<global_position>`, as written in NOTIFY payloads and logs.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.transaction_id, self.global_position)
    }
}

impl FromStr for Position {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tx, pos) = s.split_once('/').ok_or_else(|| anyhow::anyhow!("`{s}` is not a feed position"))?;
        Ok(Self { transaction_id: tx.parse()?, global_position: pos.parse()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_transaction_first() {
        // Transaction 10 inserted position 9; transaction 11 inserted position 7 but
        // committed later: 7 comes after 9 in the feed.
        assert!(Position::new(10, 9) < Position::new(11, 7));
        assert!(Position::START < Position::new(1, 1));
    }

    #[test]
    fn a_position_round_trips_through_its_text_form() {
        let p = Position::new(812, 44);
        assert_eq!(p.to_string().parse::<Position>().unwrap(), p);
        assert!("812".parse::<Position>().is_err());
    }
}
