#[telemark::traced(name = "")]
fn f() {}

fn main() {}
