//! Carrying out a `holds` step: its check repeated every `every`, which
//! must pass each time for `for`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::outcome::{Done, Failed};
use super::scenario::HoldsStep;
use super::steps::Context;
use super::trace::Attempt;

impl Context<'_> {
    pub(super) async fn holds(&mut self, h: &HoldsStep) -> Result<Done, Failed> {
        let started = Instant::now();
        let attempt_limit = h.every.max(Duration::from_secs(1));
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let at = self.trace.now();
            let offset = started.elapsed();
            let attempt = tokio::time::timeout(attempt_limit, self.run(&h.check)).await;
            let miss = match attempt {
                Ok(Ok(_)) => None,
                Ok(Err(stop @ (Failed::Stack(_) | Failed::BadScenario(_)))) => return Err(stop),
                Ok(Err(Failed::Check(m))) => Some(m),
                Err(_) => Some(format!("the check took longer than {attempt_limit:?}")),
            };
            self.trace.attempts.push(Attempt {
                at,
                took: self.trace.now().saturating_sub(at),
                passed: miss.is_none(),
                message: miss.clone(),
            });
            if let Some(miss) = miss {
                return Err(Failed::Check(format!(
                    "stopped holding at +{:.2}s (attempt {attempts}, of a hold for {:?}): {miss}",
                    offset.as_secs_f64(),
                    h.duration
                )));
            }
            let elapsed = started.elapsed();
            if elapsed >= h.duration {
                return Ok(Done {
                    note: Some(format!(
                        "held for {:.2}s ({attempts} attempts)",
                        elapsed.as_secs_f64()
                    )),
                    values: BTreeMap::from([("attempts".into(), attempts.to_string())]),
                    json: None,
                });
            }
            // The last attempt comes at `for`, so the whole span is covered.
            tokio::time::sleep(h.every.min(h.duration - elapsed)).await;
        }
    }
}
