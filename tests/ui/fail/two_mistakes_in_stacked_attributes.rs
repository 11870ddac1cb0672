#[telemark::counted(nmae = "calls_total")]
#[telemark::timed(buckets = [])]
#[telemark::traced(kind = rpc)]
fn f() {}

fn main() {}
