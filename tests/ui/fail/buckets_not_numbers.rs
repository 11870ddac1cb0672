#[telemark::timed(buckets = ["fast", "slow"])]
fn f() {}

fn main() {}
