#[telemark::histogram(name = "names", value = name, buckets = [1, 10])]
fn greet(name: String) -> usize {
    name.len()
}

fn main() {}
