#[telemark::counted(name = "2fast-calls")]
fn f() {}

fn main() {}
