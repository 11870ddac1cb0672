// A `String` label could take a new value on every call: refused.
#[telemark::counted(labels(customer = customer))]
fn greet(customer: String) -> usize {
    customer.len()
}

fn main() {}
