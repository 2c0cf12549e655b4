//! lt-report: SVG figures and the HTML report comparing lt runs.
