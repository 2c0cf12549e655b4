//! lt-report: fixture run directories made by code (arrow-rs), the report read back as XML,
//! HTML and a Chromium screenshot.

mod chromium;
mod compare;
mod errors;
mod fixtures;
mod fuzz;
mod input;
mod labels;
mod literature;
mod seeds;
mod svg;
