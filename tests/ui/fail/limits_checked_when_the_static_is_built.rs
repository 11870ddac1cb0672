// What generated code would be if the macros and the runtime disagreed on a
// limit: bounds the runtime's cells cannot hold are a build error, not an
// index out of bounds at run time.
static CELLS: telemark::__private::TimedCells = telemark::__private::TimedCells::new();
static HISTOGRAM: telemark::__private::Histogram = telemark::__private::Histogram::new(
    "function_calls_duration_seconds",
    &[],
    Some(&[
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
        26, 27, 28, 29, 30,
    ]),
    None,
    &CELLS,
);

fn main() {
    let _ = &HISTOGRAM;
}
