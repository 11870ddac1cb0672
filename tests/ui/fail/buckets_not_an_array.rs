#[telemark::timed(buckets = 0.5)]
fn f() {}

fn main() {}
