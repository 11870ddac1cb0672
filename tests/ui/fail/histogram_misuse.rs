// No buckets, no name, no value.
#[telemark::histogram(value = size)]
fn no_buckets(size: u32) -> u32 {
    size
}

#[telemark::histogram(value = size, buckets = [1, 10])]
fn no_name(size: u32) -> u32 {
    size
}

#[telemark::histogram(name = "sizes", buckets = [1, 10])]
fn no_value() {}

// Bounds out of order, a name that is not a histogram's, a unit it lacks.
#[telemark::histogram(name = "sizes_total", value = size, buckets = [10, 1])]
fn bad_bounds_and_name(size: u32) -> u32 {
    size
}

#[telemark::histogram(name = "payload_size", value = size, buckets = [1], unit = "bytes")]
fn unit_not_in_name(size: u32) -> u32 {
    size
}

fn main() {}
