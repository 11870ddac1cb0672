#[telemark::timed(buckets = [])]
fn f() {}

fn main() {}
