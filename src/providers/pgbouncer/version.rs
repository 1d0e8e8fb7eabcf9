//! A PgBouncer release, as `major.minor`: the unit in which settings appear.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

impl Version {
    pub const fn new(major: u16, minor: u16) -> Version {
        Version { major, minor }
    }
}

impl FromStr for Version {
    type Err = String;

    /// Accepts `1.18`, `1.18.0` and `1.24.1` (the patch level does not change
    /// which settings exist).
    fn from_str(s: &str) -> Result<Version, String> {
        let mut parts = s.trim().split('.');
        let mut number = |what: &str| -> Result<u16, String> {
            parts.next().and_then(|p| p.parse().ok()).ok_or_else(|| {
                format!("`{s}` is not a PgBouncer version like `1.18` ({what} missing)")
            })
        };
        let major = number("major")?;
        let minor = number("minor")?;
        if let Some(patch) = parts.next()
            && (patch.parse::<u16>().is_err() || parts.next().is_some())
        {
            return Err(format!("`{s}` is not a PgBouncer version like `1.18`"));
        }
        Ok(Version { major, minor })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_versions() {
        assert_eq!("1.18".parse::<Version>().unwrap(), Version::new(1, 18));
        assert_eq!("1.24.1".parse::<Version>().unwrap(), Version::new(1, 24));
        assert!(Version::new(1, 9) < Version::new(1, 18));
        assert!("1.x".parse::<Version>().is_err());
        assert!("1".parse::<Version>().is_err());
        assert!("1.2.3.4".parse::<Version>().is_err());
        assert_eq!(Version::new(1, 20).to_string(), "1.20");
    }
}
