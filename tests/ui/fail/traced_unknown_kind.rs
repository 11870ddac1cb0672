#[telemark::traced(kind = rpc)]
fn f() {}

fn main() {}
