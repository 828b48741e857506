//! Retry, fallback, circuit-breaker and key-pool decisions as pure functions of attempt
//! outcomes and a clock passed in (milliseconds), so every rule is tested natively.
//!
//! The edge asks [`Breaker::allow`] before trying a target and [`KeyPool::pick`] for a
//! key, reports each attempt's [`Outcome`], and follows [`decide`]: retry the same target
//! after a backoff, move to the next target, or give up with the last error. Nothing here
//! is retried once the caller has received a byte.

/// What one attempt produced before any byte went to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Headers (and, for streams, a first good event) arrived: commit to this answer.
    Success,
    /// Connection refused/reset, DNS, TLS: no HTTP answer.
    Connect,
    /// No response headers (or no first event) in time.
    Timeout,
    /// An HTTP error status, with the upstream's retry hint if any.
    Status { code: u16, retry_after_ms: Option<u64> },
    /// A 2xx stream that died or sent an error event before its first content event.
    BrokenStream,
}

impl Outcome {
    /// Whether another attempt may succeed: transport failures, 408, 409, 429, 5xx, 529.
    /// Other 4xx are the caller's problem and are returned as they are.
    pub fn retryable(&self) -> bool {
        match self {
            Outcome::Success => false,
            Outcome::Connect | Outcome::Timeout | Outcome::BrokenStream => true,
            Outcome::Status { code, .. } => matches!(code, 408 | 409 | 429) || *code >= 500,
        }
    }

    /// Whether the failure counts against the target's health (a 4xx from a bad request
    /// does not; a bad key is the key pool's business).
    pub fn is_target_failure(&self) -> bool {
        match self {
            Outcome::Success => false,
            Outcome::Status { code, .. } => matches!(code, 408 | 429) || *code >= 500,
            _ => true,
        }
    }
}

/// Limits that keep one request bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts_per_target: u32,
    pub max_attempts: u32,
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// `retry-after` is honoured up to this; a longer wait moves to the next target.
    pub max_retry_after_ms: u64,
    /// No new attempt starts after this much time since the request arrived.
    pub deadline_ms: u64,
    /// Upstream fetches a request may make (Workers free plan: 50 subrequests).
    pub max_subrequests: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts_per_target: 2,
            max_attempts: 6,
            backoff_ms: 250,
            max_backoff_ms: 4_000,
            max_retry_after_ms: 10_000,
            deadline_ms: 120_000,
            max_subrequests: 40,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try the same target again after this many milliseconds.
    RetrySame { after_ms: u64 },
    /// Move to the next target now.
    NextTarget,
    /// Stop and report the last outcome.
    GiveUp,
}

/// Where a request stands when an attempt has failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Attempts made on the current target, including the one that just failed.
    pub attempts_on_target: u32,
    pub total_attempts: u32,
    pub elapsed_ms: u64,
    /// Targets not tried yet (after the current one).
    pub targets_left: usize,
}

/// What to do after a failed attempt. `jitter` is a number in [0, 1).
pub fn decide(policy: &RetryPolicy, outcome: &Outcome, p: Progress, jitter: f64) -> Decision {
    if !outcome.retryable() {
        return Decision::GiveUp;
    }
    let budget_left = p.total_attempts < policy.max_attempts.min(policy.max_subrequests);
    if !budget_left || p.elapsed_ms >= policy.deadline_ms {
        return Decision::GiveUp;
    }
    let next_or_stop = if p.targets_left > 0 { Decision::NextTarget } else { Decision::GiveUp };
    if p.attempts_on_target >= policy.attempts_per_target {
        return next_or_stop;
    }
    // A retry hint longer than we are willing to wait: another target is the better bet.
    let wait = match outcome {
        Outcome::Status { retry_after_ms: Some(ms), .. } => {
            if *ms > policy.max_retry_after_ms {
                return next_or_stop;
            }
            *ms
        }
        _ => {
            // Exponential backoff with full jitter: base·2^(n-1)·[0.5, 1.5).
            let exp = policy.backoff_ms.saturating_mul(1u64 << (p.attempts_on_target.saturating_sub(1)).min(16));
            let capped = exp.min(policy.max_backoff_ms);
            (capped as f64 * (0.5 + jitter.clamp(0.0, 1.0))) as u64
        }
    };
    // With another target available, a failing target is not worth a long wait.
    if p.targets_left > 0 && matches!(outcome, Outcome::Connect) {
        return Decision::NextTarget;
    }
    if p.elapsed_ms + wait >= policy.deadline_ms {
        return next_or_stop;
    }
    Decision::RetrySame { after_ms: wait }
}

/// Parses `retry-after` (seconds or an HTTP date, relative to `now_ms`) or
/// `retry-after-ms` into milliseconds.
pub fn retry_after_ms(retry_after: Option<&str>, retry_after_ms: Option<&str>, now_ms: u64) -> Option<u64> {
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| *v >= 0.0) {
        return Some(ms as u64);
    }
    let v = retry_after?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs >= 0.0).then_some((secs * 1000.0) as u64);
    }
    http_date_ms(v).map(|at| at.saturating_sub(now_ms))
}

/// Milliseconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date_ms(v: &str) -> Option<u64> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.len() != 6 {
        return None;
    }
    let day: u64 = parts[1].parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == parts[2])? as u64
        + 1;
    let year: u64 = parts[3].parse().ok()?;
    let hms: Vec<u64> = parts[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if hms.len() != 3 || year < 1970 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + hms[0] * 3600 + hms[1] * 60 + hms[2]) * 1000)
}

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    pub cooldown_ms: u64,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy { failures: 3, cooldown_ms: 60_000 }
    }
}

/// A per-target circuit breaker: closed, open until a time, then half-open for one probe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Breaker {
    pub consecutive_failures: u32,
    /// Open until this time (ms); 0 when closed.
    pub open_until_ms: u64,
    /// A half-open probe is in flight since this time (ms); 0 when none.
    pub probe_since_ms: u64,
    /// When an outcome was last recorded (ms): the newer state wins when isolates merge.
    pub updated_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl Breaker {
    pub fn state(&self, now_ms: u64) -> BreakerState {
        if self.open_until_ms == 0 {
            BreakerState::Closed
        } else if now_ms < self.open_until_ms {
            BreakerState::Open
        } else {
            BreakerState::HalfOpen
        }
    }

    /// Whether to try this target now. In half-open state only one probe goes through at
    /// a time (a probe that never reports back frees the slot after a cooldown).
    pub fn allow(&mut self, now_ms: u64, policy: &BreakerPolicy) -> bool {
        match self.state(now_ms) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => {
                if self.probe_since_ms == 0 || now_ms >= self.probe_since_ms + policy.cooldown_ms {
                    self.probe_since_ms = now_ms.max(1);
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Records an outcome; returns whether the breaker's state changed (worth sharing).
    /// A success while the breaker is open (a request that started before it opened)
    /// does not close it: only the half-open probe decides.
    pub fn record(&mut self, success: bool, now_ms: u64, policy: &BreakerPolicy) -> bool {
        if success {
            if self.state(now_ms) == BreakerState::Open {
                return false;
            }
            let changed = self.consecutive_failures != 0 || self.open_until_ms != 0;
            *self = Breaker { updated_ms: now_ms, ..Breaker::default() };
            return changed;
        }
        self.probe_since_ms = 0;
        self.updated_ms = now_ms;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let was_probing = self.open_until_ms != 0;
        if was_probing || self.consecutive_failures >= policy.failures {
            self.open_until_ms = now_ms + policy.cooldown_ms;
        }
        true
    }
}

/// How long a key is benched after the upstream rejected it.
pub const BAD_KEY_COOLDOWN_MS: u64 = 10 * 60_000;
/// A 429 without a retry hint benches the key this long.
pub const RATE_LIMIT_COOLDOWN_MS: u64 = 30_000;

/// Rotation over a provider's keys with per-key cooldowns.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct KeyPool {
    /// Per key: cooling down until (ms); 0 when available.
    pub cooldown_until_ms: Vec<u64>,
    pub next: usize,
}

impl KeyPool {
    pub fn new(keys: usize) -> Self {
        KeyPool { cooldown_until_ms: vec![0; keys], next: 0 }
    }

    /// The next available key (round robin), or `None` when every key is cooling down.
    pub fn pick(&mut self, now_ms: u64) -> Option<usize> {
        let n = self.cooldown_until_ms.len();
        for i in 0..n {
            let idx = (self.next + i) % n;
            if self.cooldown_until_ms[idx] <= now_ms {
                self.next = (idx + 1) % n;
                return Some(idx);
            }
        }
        None
    }

    /// Benches a key after `outcome`: 401/403 for long, 429 for its retry hint.
    pub fn record(&mut self, key: usize, outcome: &Outcome, now_ms: u64) {
        let Some(slot) = self.cooldown_until_ms.get_mut(key) else { return };
        match outcome {
            Outcome::Status { code: 401 | 403, .. } => *slot = now_ms + BAD_KEY_COOLDOWN_MS,
            Outcome::Status { code: 429, retry_after_ms } => {
                *slot = now_ms + retry_after_ms.unwrap_or(RATE_LIMIT_COOLDOWN_MS).max(1000)
            }
            _ => {}
        }
    }

    /// Whether some key is available at `now_ms` (without rotating).
    pub fn has_available(&self, now_ms: u64) -> bool {
        self.cooldown_until_ms.iter().any(|t| *t <= now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(on_target: u32, total: u32, elapsed: u64, left: usize) -> Progress {
        Progress { attempts_on_target: on_target, total_attempts: total, elapsed_ms: elapsed, targets_left: left }
    }

    #[test]
    fn what_is_retried() {
        for code in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(Outcome::Status { code, retry_after_ms: None }.retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 413, 422] {
            assert!(!Outcome::Status { code, retry_after_ms: None }.retryable(), "{code}");
        }
        assert!(Outcome::Connect.retryable() && Outcome::Timeout.retryable() && Outcome::BrokenStream.retryable());
        assert!(!Outcome::Status { code: 401, retry_after_ms: None }.is_target_failure());
    }

    #[test]
    fn retries_then_falls_back_then_gives_up() {
        let p = RetryPolicy::default();
        let e500 = Outcome::Status { code: 500, retry_after_ms: None };
        assert!(matches!(decide(&p, &e500, progress(1, 1, 0, 1), 0.5), Decision::RetrySame { after_ms: 250 }));
        assert_eq!(decide(&p, &e500, progress(2, 2, 0, 1), 0.5), Decision::NextTarget);
        assert_eq!(decide(&p, &e500, progress(2, 4, 0, 0), 0.5), Decision::GiveUp);
        let bad = Outcome::Status { code: 400, retry_after_ms: None };
        assert_eq!(decide(&p, &bad, progress(1, 1, 0, 3), 0.5), Decision::GiveUp);
        // Connection refused with another target: move on at once.
        assert_eq!(decide(&p, &Outcome::Connect, progress(1, 1, 0, 1), 0.5), Decision::NextTarget);
        assert!(matches!(decide(&p, &Outcome::Connect, progress(1, 1, 0, 0), 0.0), Decision::RetrySame { after_ms: 125 }));
    }

    #[test]
    fn honours_retry_after_up_to_a_cap() {
        let p = RetryPolicy::default();
        let short = Outcome::Status { code: 429, retry_after_ms: Some(2_000) };
        assert_eq!(decide(&p, &short, progress(1, 1, 0, 1), 0.9), Decision::RetrySame { after_ms: 2_000 });
        let long = Outcome::Status { code: 429, retry_after_ms: Some(60_000) };
        assert_eq!(decide(&p, &long, progress(1, 1, 0, 1), 0.9), Decision::NextTarget);
        assert_eq!(decide(&p, &long, progress(1, 1, 0, 0), 0.9), Decision::GiveUp);
    }

    #[test]
    fn limits_bound_the_request() {
        let p = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let e = Outcome::Timeout;
        assert_eq!(decide(&p, &e, progress(1, 3, 0, 5), 0.5), Decision::GiveUp);
        assert_eq!(decide(&p, &e, progress(1, 1, 120_000, 5), 0.5), Decision::GiveUp);
        // A backoff that would cross the deadline skips to the next target.
        assert_eq!(decide(&p, &e, progress(1, 1, 119_900, 5), 0.5), Decision::NextTarget);
        let sub = RetryPolicy { max_subrequests: 2, ..RetryPolicy::default() };
        assert_eq!(decide(&sub, &e, progress(1, 2, 0, 5), 0.5), Decision::GiveUp);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy { attempts_per_target: 10, max_attempts: 20, ..RetryPolicy::default() };
        let waits: Vec<u64> = (1..=6)
            .map(|n| match decide(&p, &Outcome::Timeout, progress(n, n, 0, 0), 0.5) {
                Decision::RetrySame { after_ms } => after_ms,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(waits, vec![250, 500, 1000, 2000, 4000, 4000]);
    }

    #[test]
    fn parses_retry_hints() {
        assert_eq!(retry_after_ms(Some("7"), None, 0), Some(7_000));
        assert_eq!(retry_after_ms(Some("1.5"), None, 0), Some(1_500));
        assert_eq!(retry_after_ms(Some("7"), Some("250"), 0), Some(250));
        assert_eq!(retry_after_ms(Some("nonsense"), None, 0), None);
        let at = http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(at, 784_111_777_000);
        assert_eq!(retry_after_ms(Some("Sun, 06 Nov 1994 08:49:37 GMT"), None, at - 3_000), Some(3_000));
        assert_eq!(retry_after_ms(None, None, 0), None);
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let policy = BreakerPolicy::default();
        let mut b = Breaker::default();
        for t in 0..2 {
            b.record(false, t, &policy);
            assert!(b.allow(t, &policy));
        }
        b.record(false, 10, &policy);
        assert_eq!(b.state(11), BreakerState::Open);
        assert!(!b.allow(11, &policy));
        assert!(!b.allow(60_009, &policy));
        // Half-open: exactly one probe.
        assert!(b.allow(60_010, &policy));
        assert!(!b.allow(60_011, &policy));
        // A failed probe re-opens for a full cooldown.
        b.record(false, 60_020, &policy);
        assert!(!b.allow(60_021, &policy));
        assert!(b.allow(120_020, &policy));
        b.record(true, 120_030, &policy);
        assert_eq!(b.state(120_031), BreakerState::Closed);
        assert_eq!(b.updated_ms, 120_030);
        assert_eq!(b.consecutive_failures, 0);
    }

    #[test]
    fn a_straggler_success_does_not_close_an_open_breaker() {
        let policy = BreakerPolicy { failures: 1, cooldown_ms: 1_000 };
        let mut b = Breaker::default();
        assert!(b.record(false, 0, &policy));
        assert!(!b.record(true, 500, &policy));
        assert_eq!(b.state(600), BreakerState::Open);
        // The probe's success does.
        assert!(b.allow(1_000, &policy));
        assert!(b.record(true, 1_010, &policy));
        assert_eq!(b.state(1_011), BreakerState::Closed);
        // A success on a clean breaker changes nothing worth sharing.
        assert!(!b.record(true, 1_020, &policy));
    }

    #[test]
    fn a_lost_probe_frees_its_slot_after_a_cooldown() {
        let policy = BreakerPolicy { failures: 1, cooldown_ms: 100 };
        let mut b = Breaker::default();
        b.record(false, 0, &policy);
        assert!(b.allow(100, &policy));
        assert!(!b.allow(150, &policy));
        assert!(b.allow(200, &policy));
    }

    #[test]
    fn key_pool_rotates_and_benches() {
        let mut pool = KeyPool::new(3);
        assert_eq!((pool.pick(0), pool.pick(0), pool.pick(0), pool.pick(0)), (Some(0), Some(1), Some(2), Some(0)));
        pool.record(1, &Outcome::Status { code: 401, retry_after_ms: None }, 0);
        pool.record(2, &Outcome::Status { code: 429, retry_after_ms: Some(5_000) }, 0);
        assert_eq!((pool.pick(10), pool.pick(10)), (Some(0), Some(0)));
        assert_eq!(pool.pick(5_000), Some(2));
        pool.record(0, &Outcome::Status { code: 403, retry_after_ms: None }, 5_000);
        pool.record(2, &Outcome::Status { code: 429, retry_after_ms: None }, 5_000);
        assert_eq!(pool.pick(6_000), None);
        assert!(!pool.has_available(5_000 + RATE_LIMIT_COOLDOWN_MS - 1));
        assert!(pool.has_available(5_000 + RATE_LIMIT_COOLDOWN_MS));
        // 5xx does not bench a key.
        let mut pool = KeyPool::new(1);
        pool.record(0, &Outcome::Status { code: 500, retry_after_ms: None }, 0);
        assert_eq!(pool.pick(0), Some(0));
    }
}
