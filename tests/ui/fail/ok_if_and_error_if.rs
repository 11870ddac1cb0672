#[telemark::counted(ok_if = Option::is_some, error_if = Option::is_none)]
fn f() -> Option<u8> {
    None
}

fn main() {}
