#[telemark::counted(labels(shard = shard), cardinality_limit = 0)]
fn zero(shard: u8) -> u8 {
    shard
}

#[telemark::counted(labels(shard = shard), cardinality_limit = 1_000_000)]
fn too_many(shard: u8) -> u8 {
    shard
}

#[telemark::counted(labels(shard = shard), cardinality_limit = "50")]
fn not_a_number(shard: u8) -> u8 {
    shard
}

fn main() {}
