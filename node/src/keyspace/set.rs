//! The set value type and its encodings (placeholder: being written).

/// A set value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetVal {}

impl SetVal {
    /// The OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes owned by the value.
    pub fn heap_bytes(&self) -> usize {
        0
    }
}
