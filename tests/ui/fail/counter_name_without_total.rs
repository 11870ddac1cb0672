#[telemark::counted(name = "jobs")]
fn f() {}

fn main() {}
