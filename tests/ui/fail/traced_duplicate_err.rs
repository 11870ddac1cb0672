#[telemark::traced(err, err = debug)]
fn f() -> Result<(), String> {
    Ok(())
}

fn main() {}
