//! Exports the protocol micro-benchmark loop to JavaScript: `run(op, iterations)` runs one of
//! the operations of `benches/shared/protocol_ops.rs` that many times; the caller times it.

use std::cell::OnceCell;

use wasm_bindgen::prelude::*;

#[path = "../../shared/protocol_ops.rs"]
mod protocol_ops;

use protocol_ops::{Fixtures, Op};

thread_local! {
    static FIXTURES: OnceCell<Fixtures> = const { OnceCell::new() };
}

/// The number of operations; `op` indexes them in this order.
#[wasm_bindgen]
pub fn op_count() -> usize {
    Op::ALL.len()
}

/// The label of operation `op`, as the native benchmark prints it.
#[wasm_bindgen]
pub fn op_label(op: usize) -> String {
    Op::ALL[op].label().to_owned()
}

/// Iterations per round and rounds per figure, as the native benchmark uses them.
#[wasm_bindgen]
pub fn iterations() -> u32 {
    protocol_ops::ITERATIONS
}

#[wasm_bindgen]
pub fn rounds() -> usize {
    protocol_ops::ROUNDS
}

/// Builds the fixtures (outside any timed call) so the first `run` does not pay for them.
#[wasm_bindgen]
pub fn prepare() {
    FIXTURES.with(|f| {
        f.get_or_init(Fixtures::new);
    });
}

/// Runs operation `op` `iterations` times.
#[wasm_bindgen]
pub fn run(op: usize, iterations: u32) {
    let op = Op::ALL[op];
    FIXTURES.with(|f| {
        let fixtures = f.get_or_init(Fixtures::new);
        for _ in 0..iterations {
            fixtures.run(op);
        }
    });
}
