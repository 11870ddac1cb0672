//! Where an instrumented function lives (a shared leaf: imports nothing
//! from the rest of the crate). Each subsystem's call-site data starts
//! with it.

#![allow(missing_docs)] // hidden API for generated code

/// An instrumented function's name and place in the source.
#[derive(Debug)]
pub struct SiteInfo {
    /// `function` label: `name` or `Type::name`.
    pub function: &'static str,
    /// `module` label: `module_path!()` of the function.
    pub module: &'static str,
    /// Source file of the function.
    pub file: &'static str,
    /// Source line of the function's name.
    pub line: u32,
}

impl SiteInfo {
    pub const fn new(
        function: &'static str,
        module: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        SiteInfo {
            function,
            module,
            file,
            line,
        }
    }
}
