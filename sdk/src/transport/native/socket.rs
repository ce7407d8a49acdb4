//! placeholder
/// placeholder
pub struct Socket;
