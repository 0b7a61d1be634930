//! Draws one scene graph onto an image: each object's box in its palette colour with an `id name` tag, and each
//! relation as an arrow from the subject's box centre to the object's, labelled with its predicate.
//!
//! Coordinates are on the model's canvas (640×480 by default) and scaled to the image's size. Objects are
//! coloured by their position in the graph ([`color`]), so the GT and predicted pictures use the same palette.

use crate::canvas;
use image::{Rgb, RgbImage};
use sgvlm_graph::eval_parse::EvalGraph;

/// Distinct, saturated colours; object `i` gets `PALETTE[i % len]`.
pub const PALETTE: [Rgb<u8>; 10] = [
    Rgb([230, 25, 75]),
    Rgb([60, 180, 75]),
    Rgb([0, 130, 200]),
    Rgb([245, 130, 48]),
    Rgb([145, 30, 180]),
    Rgb([70, 240, 240]),
    Rgb([240, 50, 230]),
    Rgb([210, 245, 60]),
    Rgb([255, 225, 25]),
    Rgb([0, 128, 128]),
];

/// The colour of the `i`-th object.
pub fn color(i: usize) -> Rgb<u8> {
    PALETTE[i % PALETTE.len()]
}

/// Black or white, whichever reads better on `bg`.
fn ink(bg: Rgb<u8>) -> Rgb<u8> {
    let [r, g, b] = bg.0;
    let luma = 299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b);
    if luma > 128_000 {
        Rgb([0, 0, 0])
    } else {
        Rgb([255, 255, 255])
    }
}

/// At most `n` characters of a label.
fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).chain(['.']).collect()
    }
}

/// How big to draw: line thickness and text scale, from the image size.
struct Style {
    thickness: u32,
    scale: u32,
}

impl Style {
    fn for_image(img: &RgbImage) -> Style {
        let big = img.width().max(img.height()) >= 400;
        Style { thickness: if big { 3 } else { 2 }, scale: if big { 2 } else { 1 } }
    }
}

/// Draws `g` onto `img`; `canvas` is the coordinate space of the graph (width, height).
pub fn draw_graph(img: &mut RgbImage, g: &EvalGraph, canvas: (u32, u32)) {
    let style = Style::for_image(img);
    let sx = f64::from(img.width()) / f64::from(canvas.0.max(1));
    let sy = f64::from(img.height()) / f64::from(canvas.1.max(1));
    let boxes: Vec<[f64; 4]> =
        g.objects.iter().map(|o| [o.bbox[0] * sx, o.bbox[1] * sy, o.bbox[2] * sx, o.bbox[3] * sy]).collect();
    for (i, b) in boxes.iter().enumerate() {
        canvas::rect(img, b[0], b[1], b[2], b[3], style.thickness, color(i));
    }
    // Relations between box centres; the subject's colour; the predicate at the middle.
    let index_of = |id: u64| g.objects.iter().rposition(|o| o.id == id);
    let centre = |b: &[f64; 4]| ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    let head = f64::from(style.thickness * 4 + 2);
    for r in &g.relations {
        let (Some(s), Some(o)) = (index_of(r.subj), index_of(r.obj)) else { continue };
        let (a, b) = (centre(&boxes[s]), centre(&boxes[o]));
        canvas::arrow(img, a, b, style.thickness.saturating_sub(1).max(1), head, color(s));
        let label = truncate(&r.pred, 20);
        let (w, h) = canvas::text_size(&label, style.scale);
        let mid = ((a.0 + b.0) / 2.0 - f64::from(w) / 2.0, (a.1 + b.1) / 2.0 - f64::from(h) / 2.0);
        canvas::text(img, mid.0, mid.1, &label, style.scale, Rgb([255, 255, 255]), Some(Rgb([30, 30, 30])));
    }
    // Tags last, so arrows do not hide them: inside the box's top-left corner.
    for (i, (o, b)) in g.objects.iter().zip(&boxes).enumerate() {
        let label = format!("{} {}", o.id, truncate(&o.name, 20));
        let pad = f64::from(style.scale + style.thickness);
        let (x, y) = (b[0].min(b[2]) + pad, b[1].min(b[3]) + pad);
        canvas::text(img, x, y, &label, style.scale, ink(color(i)), Some(color(i)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_colours() {
        assert_eq!(truncate("a long predicate name", 6), "a lon.");
        assert_eq!(truncate("on", 6), "on");
        assert_eq!(ink(Rgb([255, 225, 25])), Rgb([0, 0, 0]));
        assert_eq!(ink(Rgb([0, 0, 0])), Rgb([255, 255, 255]));
        assert_eq!(color(11), PALETTE[1]);
    }

    #[test]
    fn hostile_coordinates_and_ids_draw_without_hanging() {
        let text = "obj[3]{id,name,x1,y1,x2,y2}:\n1,a,nan,-1e308,inf,5\n1,b,0,0,1e300,1e300\n9,c,2,2,4,4\n\
                    rel[2]{subj,pred,obj}:\n1,x,1\n7,y,9\n";
        let g = sgvlm_graph::eval_parse::parse(text).unwrap();
        let mut img = RgbImage::new(8, 6);
        draw_graph(&mut img, &g, (0, 0));
        // Canvas 0×0 is read as 1×1: object `9` is scaled far outside; the huge box `b` covers the corner.
        assert_eq!(img[(0, 0)], color(1));
    }
}
