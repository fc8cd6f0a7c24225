//! Placeholder: replaced by the allocation-counting benchmark.
fn main() {}
