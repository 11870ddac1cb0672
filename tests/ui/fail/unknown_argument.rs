#[telemark::counted(nmae = "calls_total")]
fn f() {}

fn main() {}
