//! Limits on what one caller can ask of the server: message size, events per batch, concurrent calls
//! (streams) per principal and a per-principal rate. Each refusal is a status that names the limit,
//! its flag and its value, and comes before anything is stored (never a partial batch).
//!
//! - message size: tonic's decoding limit on every service (an oversized message is refused while
//!   being read; the guard reports it as RESOURCE_EXHAUSTED rather than tonic's OUT_OF_RANGE);
//! - events per batch: INVALID_ARGUMENT, checked with the scope before validation;
//! - concurrent calls per principal: RESOURCE_EXHAUSTED at admission; a call counts until its
//!   response body is dropped, so open streams count for their whole life;
//! - rate: a token bucket per principal (capacity one second's worth), one token per call and per
//!   batch of a Submit stream; RESOURCE_EXHAUSTED when empty.
//!
//! The local principal (no principals file, loopback only) is exempt from the last two: it is the
//! operator's own process, e.g. the ingest benchmark.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tonic::Status;

/// Limit settings (the `serve` flags of the same names set them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest accepted gRPC message in bytes.
    pub max_message_bytes: usize,
    /// Most events in one batch (Append or one Submit message).
    pub max_events_per_batch: usize,
    /// Most concurrent calls (open streams included) per principal.
    pub max_streams_per_principal: usize,
    /// Calls plus streamed batches per second per principal (0: unlimited).
    pub rate_per_principal: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 * 1024 * 1024,
            max_events_per_batch: 1000,
            max_streams_per_principal: 32,
            rate_per_principal: 200,
        }
    }
}

impl Limits {
    /// INVALID_ARGUMENT if the batch is larger than allowed.
    pub fn check_batch_size(&self, events: usize) -> Result<(), Status> {
        if events > self.max_events_per_batch {
            return Err(Status::invalid_argument(format!(
                "batch has {events} events; the limit max_events_per_batch \
                 (--max-events-per-batch) is {}",
                self.max_events_per_batch
            )));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Usage {
    in_flight: usize,
    tokens: f64,
    refilled: Instant,
}

/// Per-principal counters.
#[derive(Debug, Default)]
pub struct Meter {
    usage: Mutex<HashMap<String, Usage>>,
}

/// A call's place among its principal's concurrent calls; released on drop.
#[derive(Debug)]
pub struct Permit {
    meter: Arc<Meter>,
    principal: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut usage = self.meter.usage.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = usage.get_mut(&self.principal) {
            u.in_flight = u.in_flight.saturating_sub(1);
        }
    }
}

fn exhausted(what: &str, flag: &str, value: impl std::fmt::Display, principal: &str) -> Status {
    Status::resource_exhausted(format!(
        "{principal}: limit {what} ({flag}) is {value}; retry later"
    ))
}

impl Meter {
    fn with<T>(&self, principal: &str, limits: &Limits, f: impl FnOnce(&mut Usage) -> T) -> T {
        let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let entry = usage.entry(principal.to_string()).or_insert_with(|| Usage {
            in_flight: 0,
            tokens: f64::from(limits.rate_per_principal),
            refilled: Instant::now(),
        });
        f(entry)
    }

    /// Takes one rate token for `principal` (RESOURCE_EXHAUSTED when the bucket is empty).
    pub fn take_token(&self, principal: &str, limits: &Limits) -> Result<(), Status> {
        if limits.rate_per_principal == 0 {
            return Ok(());
        }
        let rate = f64::from(limits.rate_per_principal);
        self.with(principal, limits, |u| {
            let now = Instant::now();
            let elapsed = now.duration_since(u.refilled).as_secs_f64();
            u.tokens = (u.tokens + elapsed * rate).min(rate);
            u.refilled = now;
            if u.tokens < 1.0 {
                return Err(exhausted(
                    "rate_per_principal",
                    "--rate-per-principal",
                    format_args!("{} per second", limits.rate_per_principal),
                    principal,
                ));
            }
            u.tokens -= 1.0;
            Ok(())
        })
    }

    /// Admits one more concurrent call of `principal`, or RESOURCE_EXHAUSTED.
    pub fn admit(self: &Arc<Self>, principal: &str, limits: &Limits) -> Result<Permit, Status> {
        self.with(principal, limits, |u| {
            if u.in_flight >= limits.max_streams_per_principal {
                return Err(exhausted(
                    "max_streams_per_principal",
                    "--max-streams-per-principal",
                    limits.max_streams_per_principal,
                    principal,
                ));
            }
            u.in_flight += 1;
            Ok(())
        })?;
        Ok(Permit {
            meter: Arc::clone(self),
            principal: principal.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_names_the_limit() {
        let limits = Limits {
            max_events_per_batch: 3,
            ..Limits::default()
        };
        assert!(limits.check_batch_size(3).is_ok());
        let status = limits.check_batch_size(4).expect_err("too many");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("max_events_per_batch"));
        assert!(status.message().contains(" 3"));
    }

    #[test]
    fn concurrent_calls_are_counted_until_dropped() {
        let limits = Limits {
            max_streams_per_principal: 2,
            ..Limits::default()
        };
        let meter = Arc::new(Meter::default());
        let a = meter.admit("p", &limits).expect("first");
        let _b = meter.admit("p", &limits).expect("second");
        let refused = meter.admit("p", &limits).expect_err("third");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("max_streams_per_principal"));
        let _other = meter.admit("q", &limits).expect("another principal");
        drop(a);
        let _c = meter.admit("p", &limits).expect("after a drop");
    }

    #[test]
    fn the_rate_bucket_empties_and_names_the_limit() {
        let limits = Limits {
            rate_per_principal: 5,
            ..Limits::default()
        };
        let meter = Meter::default();
        for i in 0..5 {
            meter
                .take_token("p", &limits)
                .unwrap_or_else(|s| panic!("{i}: {s}"));
        }
        let refused = meter.take_token("p", &limits).expect_err("empty");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("5 per second"));
        meter.take_token("q", &limits).expect("own bucket");
        let off = Limits {
            rate_per_principal: 0,
            ..Limits::default()
        };
        for _ in 0..100 {
            meter.take_token("p", &off).expect("unlimited");
        }
    }
}
