//! Compile-time behaviour of the attributes: every supported function shape
//! compiles (and runs), every misuse is refused with a pinned message.
#![cfg(not(feature = "disable-instrumentation"))]

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
