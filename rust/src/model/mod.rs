//! The merge rules that turn one piece into token ids.

mod merge_list;
mod rank;

pub use merge_list::MergeModel;
pub use rank::*;
