#[telemark::counted]
#[telemark::timed]
#[telemark::counted(name = "again_total")]
fn f() {}

fn main() {}
