//! Where a point's label goes: pure geometry on estimated text boxes, no drawing.

use crate::style::text_width;

/// A text's box in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelBox {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl LabelBox {
    fn overlaps(&self, o: &LabelBox) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

/// The first of eight positions around `at`, inside `bounds`, where `text` overlaps neither
/// a placed label nor a marker of radius `radius` (other than its own point's).
pub fn place_label(
    text: &str,
    font_px: f64,
    at: (i32, i32),
    radius: i32,
    bounds: LabelBox,
    placed: &[LabelBox],
    points: &[(i32, i32)],
) -> Option<LabelBox> {
    let w = text_width(text, font_px).ceil() as i32;
    let h = (font_px * 1.2).ceil() as i32;
    let gap = radius + 3;
    let (x, y) = at;
    let candidates = [
        (x + gap, y - h / 2),
        (x - gap - w, y - h / 2),
        (x - w / 2, y - gap - h),
        (x - w / 2, y + gap),
        (x + gap, y - gap - h),
        (x + gap, y + gap),
        (x - gap - w, y - gap - h),
        (x - gap - w, y + gap),
    ];
    candidates.into_iter().map(|(x0, y0)| LabelBox { x0, y0, x1: x0 + w, y1: y0 + h }).find(|b| {
        b.x0 >= bounds.x0
            && b.x1 <= bounds.x1
            && b.y0 >= bounds.y0
            && b.y1 <= bounds.y1
            && !placed.iter().any(|p| p.overlaps(b))
            && !points.iter().any(|&(px, py)| {
                (px, py) != at
                    && b.overlaps(&LabelBox { x0: px - radius, y0: py - radius, x1: px + radius, y1: py + radius })
            })
    })
}
