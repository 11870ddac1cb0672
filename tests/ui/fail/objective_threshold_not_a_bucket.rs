use std::time::Duration;
use telemark::metrics::ObjectivePercentile;
use telemark::Objective;

// 300 ms is not one of the default buckets: Prometheus could not count the
// calls under it.
const SEARCH: Objective =
    Objective::new("search").latency(Duration::from_millis(300), ObjectivePercentile::P99);

#[telemark::timed(objective = SEARCH)]
fn search() {}

fn main() {
    search();
}
