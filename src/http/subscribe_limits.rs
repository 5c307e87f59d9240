//! Limits on the public subscribe form and `POST /api/v1/subscribers`, so neither a burst from
//! one client nor a stranger typing someone's address can turn Candor into a mail cannon:
//!
//! - per client address ([`super::client_addr`]; an IPv6 client counts by its /64), in memory
//!   with governor's keyed limiter: `subscribe_per_client_per_minute`;
//! - per email address per day, in the database (so it holds across instances and restarts):
//!   `subscribe_per_address_per_day` requests, so at most that many confirmation mails;
//! - the site-wide ceiling `subscribe_per_minute` stays, checked last, so one client's burst
//!   cannot use it up.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;

/// Keys above this many are pruned of the ones whose limit has fully recovered.
const PRUNE_ABOVE: usize = 10_000;

/// The per-client limit. (The per-address daily cap is the subscribe command's, in
/// `commands::subscribers`; the site-wide ceiling is the email channel's.)
pub struct SubscribeLimits {
    per_client: DefaultKeyedRateLimiter<IpAddr>,
}

impl SubscribeLimits {
    pub fn new(per_client_per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_client_per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            per_client: RateLimiter::keyed(Quota::per_minute(n)),
        }
    }

    /// Counts a request from `client` (unknown clients share one key).
    pub fn check_client(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        let key = client.map(network).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if self.per_client.len() > PRUNE_ABOVE {
            self.per_client.retain_recent();
        }
        self.per_client.check_key(&key).map_err(|_| {
            ApiError::TooManyRequests(
                "too many subscription requests from your network just now; please try again in a minute"
                    .into(),
            )
        })
    }
}

/// The key a client is counted under: its IPv4 address, or the /64 of its IPv6 address (one
/// household or server holds a whole /64).
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

/// What the form and the API say when the daily cap for an address is reached.
pub const ADDRESS_LIMITED: &str = "This address has been entered several times today, so no more confirmation mails will be sent to it until tomorrow. If you asked for one, please look for it in your inbox (and spam folder).";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_allowance() {
        let l = SubscribeLimits::new(2);
        let a = Some("192.0.2.1".parse().unwrap());
        let b = Some("192.0.2.2".parse().unwrap());
        assert!(l.check_client(a).is_ok());
        assert!(l.check_client(a).is_ok());
        assert!(l.check_client(a).is_err(), "a's third within the minute");
        assert!(l.check_client(b).is_ok(), "b is not held back by a");
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let l = SubscribeLimits::new(1);
        assert!(l
            .check_client(Some("2001:db8:1:2::1".parse().unwrap()))
            .is_ok());
        assert!(l
            .check_client(Some("2001:db8:1:2::99".parse().unwrap()))
            .is_err());
        assert!(l
            .check_client(Some("2001:db8:1:3::1".parse().unwrap()))
            .is_ok());
    }
}
