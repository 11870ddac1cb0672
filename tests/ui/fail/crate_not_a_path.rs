#[telemark::counted(crate = "telemark")]
fn f() {}

fn main() {}
