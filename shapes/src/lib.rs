//! The embedded world: objects drawn procedurally (a shape, a colour, a surface pattern, a size
//! and a background), the captions a small CLIP learns them from, and downstream datasets whose
//! classes are combinations of attributes. Everything is a pure function of seeds, computed
//! with IEEE-exact arithmetic, so the same seed gives the same bytes on every machine.
pub mod attributes;
pub mod captions;
pub mod datasets;
pub mod render;

pub use attributes::{Attributes, Background, Colour, Pattern, Shape, Size};
pub use datasets::{RuleKey, WorldDataset, DATASETS};
