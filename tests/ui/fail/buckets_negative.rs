#[telemark::timed(buckets = [-1.0, 1.0])]
fn f() {}

fn main() {}
