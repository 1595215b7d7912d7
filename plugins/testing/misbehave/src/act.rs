//! Misbehaving on purpose, shared by the misbehaving test plugins.

use faultgate_guest::host;

/// "trap" panics (a wasm trap), "loop" never returns, "alloc" allocates
/// until memory runs out; anything else does nothing.
pub fn act(behaviour: &str) {
    match behaviour {
        "trap" => panic!("misbehave: trapping on purpose"),
        "loop" => {
            // Calling the host keeps the loop from being optimised away.
            let mut sum = 0u64;
            loop {
                sum = sum.wrapping_add(host::now_us());
                if sum == 1 {
                    break;
                }
            }
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                if hoard.len() == usize::MAX {
                    break;
                }
            }
        }
        _ => {}
    }
}

/// Whether `bytes` hold `trigger` (an empty trigger is everywhere).
pub fn triggered(bytes: &[u8], trigger: &[u8]) -> bool {
    trigger.is_empty() || bytes.windows(trigger.len()).any(|w| w == trigger)
}
