//! `slicer`: cuts each chunk into pieces of about `average_size` bytes
//! (± `size_variation`, at least one byte), `delay` microseconds apart, to exercise a peer's
//! handling of partial reads. Every byte goes on exactly once, in order. An
//! `average_size` of 0 leaves chunks whole.

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Fault, Filter, MAX_MILLIS, Step, attribute,
    random_between, step,
};

/// The largest piece: a chunk is never longer.
const MAX_PIECE: u64 = u32::MAX as u64;

struct Slicer {
    average: u64,
    variation: u64,
    delay_us: u64,
}

impl Fault for Slicer {
    fn describe() -> Description {
        Description::new(
            "slicer",
            "Slices data into small pieces with a delay between them",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
        .attribute(attribute::integer(
            "average_size",
            0,
            "average piece size in bytes; 0 = do not slice",
        ))
        .attribute(attribute::integer(
            "size_variation",
            0,
            "random variation of the piece size, ± bytes",
        ))
        .attribute(attribute::integer(
            "delay",
            0,
            "delay between pieces in microseconds",
        ))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        let average = attrs.up_to("average_size", 0, MAX_PIECE, "bytes")?;
        // A variation as large as the average (or larger) is taken, as
        // Toxiproxy takes it: pieces then range from one byte up.
        let variation = attrs.up_to("size_variation", 0, MAX_PIECE, "bytes")?;
        Ok(Self {
            average,
            variation,
            delay_us: attrs.up_to("delay", 0, MAX_MILLIS * 1000, "microseconds")?,
        })
    }
}

impl Filter for Slicer {
    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        if self.average == 0 {
            return vec![step::forward_all(chunk.len)];
        }
        let mut steps = Vec::new();
        let mut offset = 0u32;
        while offset < chunk.len {
            // Never empty, never past the largest piece.
            let smallest = self.average.saturating_sub(self.variation).max(1);
            let largest = (self.average + self.variation).min(MAX_PIECE);
            let size = random_between(smallest as i64, largest as i64).max(1) as u32;
            let end = chunk.len.min(offset.saturating_add(size));
            if offset > 0 && self.delay_us > 0 {
                steps.push(step::sleep_us(self.delay_us));
            }
            steps.push(step::forward(offset, end));
            offset = end;
        }
        steps
    }
}

faultgate_guest::export_fault!(Slicer);
