//! What every generated wrapper uses, whatever its attributes (a shared
//! leaf: imports nothing from the rest of the crate).

#![allow(missing_docs)] // hidden API for generated code

/// A value generated code moves into its wrapper closure so the closure is
/// `FnOnce`, which lets a method return borrows of `&mut self` through it.
pub struct CallOnce;

impl CallOnce {
    #[inline(always)]
    pub fn consume(self) {}
}
