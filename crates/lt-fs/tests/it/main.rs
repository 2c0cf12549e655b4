//! lt-fs: staged replacement, the marker rule and the protected paths. Every test works in
//! its own temporary directory; the protected-path refusals are checked on the pure checking
//! functions, never by pointing a replacement at them.

mod guard;
mod staging;
