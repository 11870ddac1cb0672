#[telemark::timed(name = "function_calls_concurrent")]
fn f() {}

fn main() {}
