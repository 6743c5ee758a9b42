//! Runtime state kept in this process: what one instance needs, what a cluster shares
//! through other implementations of the same traits.

pub mod rates;

pub use rates::MemoryCommandRates;
