//! Driving one request across its targets, sans I/O: which target and key to try next,
//! how long to wait, when to stop. The edge performs each attempt and reports its
//! [`Outcome`]; breakers and key pools live in [`Health`], which outlives requests (per
//! isolate, optionally synchronised through a Durable Object).

use std::collections::HashMap;

use crate::policy::{decide, Breaker, BreakerPolicy, Decision, KeyPool, Outcome, Progress, RetryPolicy};

/// Breaker and key-pool state, keyed by target id (`provider.model`) and provider id.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Health {
    pub breakers: HashMap<String, Breaker>,
    pub pools: HashMap<String, KeyPool>,
}

impl Health {
    fn pool(&mut self, provider: &str, keys: usize) -> &mut KeyPool {
        let pool = self.pools.entry(provider.to_string()).or_insert_with(|| KeyPool::new(keys));
        if pool.cooldown_until_ms.len() != keys {
            *pool = KeyPool::new(keys);
        }
        pool
    }

    /// Takes in another isolate's view: per target the more recently updated breaker, per
    /// key the later cooldown.
    pub fn merge(&mut self, other: &Health) {
        for (id, theirs) in &other.breakers {
            let ours = self.breakers.entry(id.clone()).or_default();
            if theirs.updated_ms > ours.updated_ms {
                *ours = *theirs;
            }
        }
        for (id, theirs) in &other.pools {
            let ours = self.pools.entry(id.clone()).or_insert_with(|| KeyPool::new(theirs.cooldown_until_ms.len()));
            if ours.cooldown_until_ms.len() != theirs.cooldown_until_ms.len() {
                *ours = theirs.clone();
                continue;
            }
            for (mine, their) in ours.cooldown_until_ms.iter_mut().zip(&theirs.cooldown_until_ms) {
                *mine = (*mine).max(*their);
            }
        }
    }
}

/// A target as the driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub target_id: String,
    pub provider_id: String,
    /// Number of keys in the provider's pool (≥ 1; echo has no upstream).
    pub keys: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Try { target: usize, key: usize },
    Wait { ms: u64 },
    /// Nothing left to try.
    Exhausted,
}

/// One line of the per-request attempt log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttemptRecord {
    pub target: String,
    pub key: Option<usize>,
    pub outcome: String,
    #[serde(rename = "ms")]
    pub duration_ms: u64,
}

pub struct Driver {
    candidates: Vec<Candidate>,
    policy: RetryPolicy,
    breaker: BreakerPolicy,
    started_ms: u64,
    current: usize,
    on_target: u32,
    total: u32,
    wait_ms: Option<u64>,
    attempt_started_ms: u64,
    pub log: Vec<AttemptRecord>,
    /// Whether this request changed breaker or key state (worth sharing across isolates).
    pub changed_health: bool,
}

impl Driver {
    pub fn new(candidates: Vec<Candidate>, policy: RetryPolicy, breaker: BreakerPolicy, now_ms: u64) -> Self {
        Driver { candidates, policy, breaker, started_ms: now_ms, current: 0, on_target: 0, total: 0, wait_ms: None, attempt_started_ms: now_ms, log: Vec::new(), changed_health: false }
    }

    pub fn attempts(&self) -> u32 {
        self.total
    }

    fn skip(&mut self, why: &str) {
        let target = self.candidates[self.current].target_id.clone();
        self.log.push(AttemptRecord { target, key: None, outcome: why.to_string(), duration_ms: 0 });
        self.current += 1;
        self.on_target = 0;
    }

    pub fn next(&mut self, health: &mut Health, now_ms: u64) -> Step {
        if let Some(ms) = self.wait_ms.take() {
            return Step::Wait { ms };
        }
        while self.current < self.candidates.len() {
            let c = self.candidates[self.current].clone();
            let last = self.current + 1 == self.candidates.len();
            if self.on_target == 0 {
                let breaker = health.breakers.entry(c.target_id.clone()).or_default();
                // A breaker never leaves the caller with nothing: when every target before
                // the last was skipped or failed, the last one is tried regardless.
                let forced = last && self.total == 0;
                if !breaker.allow(now_ms, &self.breaker) && !forced {
                    self.skip("skipped: circuit open");
                    continue;
                }
            }
            let pool = health.pool(&c.provider_id, c.keys.max(1));
            match pool.pick(now_ms) {
                Some(key) => {
                    self.on_target += 1;
                    self.total += 1;
                    self.attempt_started_ms = now_ms;
                    return Step::Try { target: self.current, key };
                }
                None if last && self.total == 0 => {
                    // Every key is cooling down and nothing else exists: try the one that
                    // frees up first rather than fail without an attempt.
                    let key = pool.cooldown_until_ms.iter().enumerate().min_by_key(|(_, t)| **t).map(|(i, _)| i).unwrap_or(0);
                    self.on_target += 1;
                    self.total += 1;
                    self.attempt_started_ms = now_ms;
                    return Step::Try { target: self.current, key };
                }
                None => self.skip("skipped: every key cooling down"),
            }
        }
        Step::Exhausted
    }

    /// Reports the outcome of the attempt `next` returned. `jitter` is in [0, 1).
    pub fn report(&mut self, health: &mut Health, target: usize, key: usize, outcome: &Outcome, now_ms: u64, jitter: f64) {
        let Some(c) = self.candidates.get(target).cloned() else { return };
        self.log.push(AttemptRecord {
            target: c.target_id.clone(),
            key: (c.keys > 1).then_some(key),
            outcome: describe(outcome),
            duration_ms: now_ms.saturating_sub(self.attempt_started_ms),
        });
        let healthy = !outcome.is_target_failure();
        if health.breakers.entry(c.target_id.clone()).or_default().record(healthy, now_ms, &self.breaker) {
            self.changed_health = true;
        }
        let pool = health.pool(&c.provider_id, c.keys.max(1));
        pool.record(key, outcome, now_ms);
        let key_problem = matches!(outcome, Outcome::Status { code: 401 | 403 | 429, .. });
        self.changed_health |= key_problem;
        if *outcome == Outcome::Success {
            self.current = self.candidates.len();
            return;
        }
        // A rejected or rate-limited key: another key of the same provider, right away.
        if key_problem && pool.has_available(now_ms) && self.total < self.policy.max_attempts.min(self.policy.max_subrequests) {
            self.on_target = self.on_target.saturating_sub(1);
            return;
        }
        let progress = Progress {
            attempts_on_target: self.on_target,
            total_attempts: self.total,
            elapsed_ms: now_ms.saturating_sub(self.started_ms),
            targets_left: self.candidates.len().saturating_sub(self.current + 1),
        };
        match decide(&self.policy, outcome, progress, jitter) {
            Decision::RetrySame { after_ms } => self.wait_ms = (after_ms > 0).then_some(after_ms),
            Decision::NextTarget => {
                self.current += 1;
                self.on_target = 0;
            }
            Decision::GiveUp => self.current = self.candidates.len(),
        }
    }
}

pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Success => "ok".into(),
        Outcome::Connect => "connect error".into(),
        Outcome::Timeout => "timeout".into(),
        Outcome::BrokenStream => "stream failed before first event".into(),
        Outcome::Status { code, .. } => format!("http {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::BreakerState;

    fn cands(n: usize, keys: usize) -> Vec<Candidate> {
        (0..n).map(|i| Candidate { target_id: format!("p{i}.m"), provider_id: format!("p{i}"), keys }).collect()
    }

    fn fail(code: u16) -> Outcome {
        Outcome::Status { code, retry_after_ms: None }
    }

    /// Runs a request whose attempts get `outcomes` (by target index) at a fake clock.
    fn run(driver: &mut Driver, health: &mut Health, mut outcome_for: impl FnMut(usize, usize) -> Outcome, now: &mut u64) -> Vec<(usize, usize)> {
        let mut tried = Vec::new();
        for _ in 0..100 {
            match driver.next(health, *now) {
                Step::Try { target, key } => {
                    tried.push((target, key));
                    let o = outcome_for(target, key);
                    *now += 10;
                    driver.report(health, target, key, &o, *now, 0.5);
                }
                Step::Wait { ms } => *now += ms,
                Step::Exhausted => break,
            }
        }
        tried
    }

    #[test]
    fn retries_then_falls_back_to_a_healthy_target() {
        let mut h = Health::default();
        let mut now = 0;
        let mut d = Driver::new(cands(2, 1), RetryPolicy::default(), BreakerPolicy::default(), now);
        let tried = run(&mut d, &mut h, |t, _| if t == 0 { fail(503) } else { Outcome::Success }, &mut now);
        assert_eq!(tried, vec![(0, 0), (0, 0), (1, 0)]);
        assert_eq!(d.attempts(), 3);
        // 250 ms backoff ×1.0 with jitter 0.5, plus 3 × 10 ms of attempts.
        assert_eq!(now, 280);
        assert_eq!(d.log.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(), vec!["http 503", "http 503", "ok"]);
    }

    #[test]
    fn client_errors_are_not_retried() {
        let mut h = Health::default();
        let mut now = 0;
        let mut d = Driver::new(cands(3, 1), RetryPolicy::default(), BreakerPolicy::default(), now);
        assert_eq!(run(&mut d, &mut h, |_, _| fail(400), &mut now), vec![(0, 0)]);
        // …and do not hurt the target's breaker.
        assert_eq!(h.breakers["p0.m"].consecutive_failures, 0);
    }

    #[test]
    fn an_open_breaker_skips_the_target_until_its_probe() {
        let mut h = Health::default();
        let mut now = 0;
        let policy = RetryPolicy { attempts_per_target: 1, ..RetryPolicy::default() };
        // Three requests fail on target 0 (connection refused) and are rescued by target 1.
        for _ in 0..3 {
            let mut d = Driver::new(cands(2, 1), policy, BreakerPolicy::default(), now);
            let tried = run(&mut d, &mut h, |t, _| if t == 0 { Outcome::Connect } else { Outcome::Success }, &mut now);
            assert_eq!(tried, vec![(0, 0), (1, 0)]);
        }
        // Now the breaker is open: target 0 is not even tried.
        let mut d = Driver::new(cands(2, 1), policy, BreakerPolicy::default(), now);
        assert_eq!(run(&mut d, &mut h, |t, _| if t == 0 { Outcome::Connect } else { Outcome::Success }, &mut now), vec![(1, 0)]);
        assert_eq!(d.log[0].outcome, "skipped: circuit open");
        // After the cooldown one probe goes to target 0; it recovered, the breaker closes.
        now += 60_000;
        let mut d = Driver::new(cands(2, 1), policy, BreakerPolicy::default(), now);
        assert_eq!(run(&mut d, &mut h, |_, _| Outcome::Success, &mut now), vec![(0, 0)]);
        assert_eq!(h.breakers["p0.m"].state(now), BreakerState::Closed);
    }

    #[test]
    fn the_last_target_is_tried_even_with_its_breaker_open() {
        let mut h = Health::default();
        h.breakers.insert("p0.m".into(), Breaker { consecutive_failures: 5, open_until_ms: 1_000_000, probe_since_ms: 0, updated_ms: 0 });
        let mut now = 0;
        let mut d = Driver::new(cands(1, 1), RetryPolicy::default(), BreakerPolicy::default(), now);
        assert_eq!(run(&mut d, &mut h, |_, _| Outcome::Success, &mut now), vec![(0, 0)]);
    }

    #[test]
    fn bad_and_rate_limited_keys_rotate_within_a_provider() {
        let mut h = Health::default();
        let mut now = 0;
        let mut d = Driver::new(cands(1, 3), RetryPolicy::default(), BreakerPolicy::default(), now);
        let tried = run(&mut d, &mut h, |_, k| match k { 0 => fail(401), 1 => Outcome::Status { code: 429, retry_after_ms: Some(30_000) }, _ => Outcome::Success }, &mut now);
        assert_eq!(tried, vec![(0, 0), (0, 1), (0, 2)]);
        // The next request starts with the one good key; the others cool down.
        let mut d = Driver::new(cands(1, 3), RetryPolicy::default(), BreakerPolicy::default(), now);
        assert_eq!(run(&mut d, &mut h, |_, _| Outcome::Success, &mut now), vec![(0, 2)]);
        // Key 0 (401 at t=10) and key 1 (429, retry-after 30 s, at t=20) still cool down.
        assert_eq!(h.pools["p0"].cooldown_until_ms[..2], [10 + crate::policy::BAD_KEY_COOLDOWN_MS, 20 + 30_000]);
        assert!(h.pools["p0"].cooldown_until_ms[1] > now);
    }

    #[test]
    fn a_provider_whose_keys_all_cool_down_is_unavailable() {
        let mut h = Health::default();
        h.pools.insert("p0".into(), KeyPool { cooldown_until_ms: vec![5_000], next: 0 });
        let mut now = 0;
        let mut d = Driver::new(cands(2, 1), RetryPolicy::default(), BreakerPolicy::default(), now);
        assert_eq!(run(&mut d, &mut h, |_, _| Outcome::Success, &mut now), vec![(1, 0)]);
        assert_eq!(d.log[0].outcome, "skipped: every key cooling down");
    }

    #[test]
    fn isolates_merge_the_newer_breaker_and_the_later_cooldown() {
        let policy = BreakerPolicy { failures: 1, cooldown_ms: 1_000 };
        let mut a = Health::default();
        let mut b = Health::default();
        a.breakers.entry("t".into()).or_default().record(false, 100, &policy);
        b.breakers.entry("t".into()).or_default().record(true, 200, &policy);
        a.pools.insert("p".into(), KeyPool { cooldown_until_ms: vec![500, 0], next: 1 });
        b.pools.insert("p".into(), KeyPool { cooldown_until_ms: vec![0, 900], next: 0 });
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged.breakers["t"].state(150), BreakerState::Closed);
        assert_eq!(merged.pools["p"].cooldown_until_ms, vec![500, 900]);
        // Merging is idempotent and survives a JSON round trip.
        let text = serde_json::to_string(&merged).unwrap();
        let mut again: Health = serde_json::from_str(&text).unwrap();
        again.merge(&merged);
        assert_eq!(again, merged);
        assert_eq!(serde_json::from_str::<Health>("{}").unwrap(), Health::default());
    }

    #[test]
    fn attempts_stay_bounded() {
        let mut h = Health::default();
        let mut now = 0;
        let policy = RetryPolicy { max_attempts: 4, ..RetryPolicy::default() };
        let mut d = Driver::new(cands(10, 1), policy, BreakerPolicy::default(), now);
        let tried = run(&mut d, &mut h, |_, _| fail(500), &mut now);
        assert_eq!(tried.len(), 4);
        let deadline = RetryPolicy { deadline_ms: 25, ..RetryPolicy::default() };
        let mut d = Driver::new(cands(10, 1), deadline, BreakerPolicy::default(), now);
        let tried = run(&mut d, &mut h, |_, _| { Outcome::Timeout }, &mut now);
        assert!(tried.len() <= 3, "{tried:?}");
    }
}
