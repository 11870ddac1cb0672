#[telemark::gauge(name = "queue_depth_total", value = depth)]
fn counted_name(depth: u32) -> u32 {
    depth
}

#[telemark::gauge(name = "queue_depth", value = depth, buckets = [1])]
fn with_buckets(depth: u32) -> u32 {
    depth
}

#[telemark::gauge(name = "queue_depth", value = 3, labels(queue = queue))]
fn constant_value_and_computed_label(queue: &'static str) -> &'static str {
    queue
}

fn main() {}
