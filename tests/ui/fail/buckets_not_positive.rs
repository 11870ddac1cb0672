#[telemark::timed(buckets = [0.0, 1.0])]
fn f() {}

fn main() {}
