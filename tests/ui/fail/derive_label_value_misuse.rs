#[derive(telemark::LabelValue)]
struct Region {
    name: &'static str,
}

#[derive(telemark::LabelValue)]
enum Outcome {
    Done,
    Failed(String),
}

#[derive(telemark::LabelValue)]
enum Tier {
    FreePlan,
    #[label_value(rename = "free_plan")]
    Trial,
}

fn main() {}
