//! `flap`: a dependency that comes and goes. From the moment the toxic is
//! attached, it alternates `up` and `down` milliseconds: while down, new
//! connections are reset as they open, and connections open when a down
//! window starts are cut then (unless `keep_open`). One clock for every
//! connection of the toxic: the fault's shared state.

use std::rc::Rc;

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Filter, SharedFault, Step, attribute, host, step,
};

struct Flap {
    up_us: u64,
    down_us: u64,
    keep_open: bool,
    /// When the first up window began: the toxic was attached.
    start_us: u64,
}

impl Flap {
    /// Whether it is down now, and how long until that changes.
    fn now(&self) -> (bool, u64) {
        let period = self.up_us + self.down_us;
        let into = host::now_us().saturating_sub(self.start_us) % period;
        if into < self.up_us {
            (false, self.up_us - into)
        } else {
            (true, period - into)
        }
    }

    /// What a connection does now: reset while down; while up, be woken
    /// when the next down window starts (unless it is kept open).
    fn verdict(&self) -> Vec<Step> {
        match self.now() {
            (true, _) => vec![Step::Reset],
            (false, _) if self.keep_open => Vec::new(),
            (false, until_down) => vec![Step::Wake(until_down)],
        }
    }
}

impl SharedFault for Flap {
    type Filter = FlapConnection;

    fn describe() -> Description {
        Description::new(
            "flap",
            "Alternates up and down windows: while down, connections are reset",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
        .attribute(attribute::integer(
            "up",
            1000,
            "length of each up window, in milliseconds (at least 1)",
        ))
        .attribute(attribute::integer(
            "down",
            1000,
            "length of each down window, in milliseconds (at least 1)",
        ))
        .attribute(attribute::boolean(
            "keep_open",
            false,
            "leave connections opened in an up window alone when a down window starts",
        ))
    }

    fn new(attrs: &Attrs) -> Result<Self, String> {
        let window = |name: &str| -> Result<u64, String> {
            match attrs.non_negative(name, 1000, "milliseconds")? {
                0 => Err(format!(
                    "{name}: a window of 0 milliseconds; give at least 1"
                )),
                ms if ms > 86_400_000 => Err(format!(
                    "{name}: {ms} milliseconds is more than a day; give at most 86400000"
                )),
                ms => Ok(ms * 1000),
            }
        };
        Ok(Self {
            up_us: window("up")?,
            down_us: window("down")?,
            keep_open: attrs.boolean("keep_open", false)?,
            start_us: host::now_us(),
        })
    }

    fn open(fault: &Rc<Self>, _conn: &ConnInfo) -> Result<FlapConnection, String> {
        Ok(FlapConnection {
            fault: fault.clone(),
        })
    }
}

/// One connection direction under the flap.
struct FlapConnection {
    fault: Rc<Flap>,
}

impl Filter for FlapConnection {
    fn on_open(&mut self) -> Vec<Step> {
        self.fault.verdict()
    }

    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        match self.fault.now() {
            (true, _) if !self.fault.keep_open => vec![Step::Reset],
            _ => vec![step::forward_all(chunk.len)],
        }
    }

    fn on_wake(&mut self) -> Vec<Step> {
        self.fault.verdict()
    }
}

faultgate_guest::export_shared_fault!(Flap);
