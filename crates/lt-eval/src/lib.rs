//! lt-eval: Imbalance-aware classification metrics, pure functions.
