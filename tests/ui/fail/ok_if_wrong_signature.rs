fn is_fine(value: u8) -> bool {
    value > 0
}

#[telemark::counted(ok_if = is_fine)]
fn f() -> u8 {
    1
}

fn main() {}
