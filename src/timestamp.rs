//! UTC instants as whole seconds since the Unix epoch, shown as RFC 3339.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with one-second resolution. Canonical form: `i64` seconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Seconds since the epoch.
    pub fn seconds(self) -> i64 {
        self.0
    }

    /// This instant plus `secs` seconds (saturating).
    pub fn plus_seconds(self, secs: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs))
    }

    /// RFC 3339 with a `Z` suffix, e.g. `2026-04-18T00:00:00Z`.
    pub fn to_rfc3339(self) -> String {
        match DateTime::<Utc>::from_timestamp(self.0, 0) {
            Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Secs, true),
            None => format!("@{}", self.0),
        }
    }

    /// The current wall-clock time. Only the CLI edge calls this; nothing that feeds a
    /// disposition may.
    pub fn now() -> Timestamp {
        Timestamp(Utc::now().timestamp())
    }
}

/// A string that is neither RFC 3339 nor a plain date.
#[derive(Debug, thiserror::Error)]
#[error(
    "'{0}' is not a time: use RFC 3339 such as 2026-04-18T00:00:00Z, or a date such as 2026-04-18"
)]
pub struct ParseTimestampError(pub String);

impl FromStr for Timestamp {
    type Err = ParseTimestampError;
    /// Accepts RFC 3339 (`2026-04-18T09:30:00Z`, offsets allowed) or a date (`2026-04-18`, meaning midnight UTC).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(Timestamp(dt.timestamp()));
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            && let Some(dt) = d.and_hms_opt(0, 0, 0)
        {
            return Ok(Timestamp(dt.and_utc().timestamp()));
        }
        Err(ParseTimestampError(s.to_string()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            Ok(Timestamp(i64::deserialize(d)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_and_dates() {
        let t: Timestamp = "2026-04-18T00:00:00Z".parse().unwrap();
        assert_eq!(t.0, 1_776_470_400);
        assert_eq!("2026-04-18".parse::<Timestamp>().unwrap(), t);
        assert_eq!(t.to_rfc3339(), "2026-04-18T00:00:00Z");
        assert!("yesterday".parse::<Timestamp>().is_err());
    }
}
