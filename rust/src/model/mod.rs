//! The merge rules that turn one piece into token ids.

mod rank;

pub use rank::*;
