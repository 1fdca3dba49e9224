//! The merge rules that turn one piece (a word) into token ids, below the encoder:
//! - the rank rule ([`rank`]): tiktoken's, where the pair whose merged bytes have the lowest rank
//!   merges first, written for speed, with its oracle in the tests;
//! - the merge-list rule ([`MergeModel`]): `tokenizers`' BPE, where the pair listed first in the
//!   merge list merges first.
//!
//! Both share one lazy-heap loop for long inputs (`heap.rs`), generic over the pair priority.

mod heap;
mod merge_list;
pub mod rank;

pub use merge_list::{MergeListOptions, MergeModel};
pub use rank::{merge_bytes_into, merge_chars_into, merge_ids_into};
