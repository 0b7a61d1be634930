//! Drawing a scene: an RGB image and an id mask (pixel = item index + 1, 0 = background), painted in item order so
//! that later items cover earlier ones in both.

use super::{Item, Kind, Scene};
use image::{Rgb, RgbImage};

const WALL: [u8; 3] = [236, 234, 224];
const FLOOR: [u8; 3] = [196, 186, 166];
const SKIN: [u8; 3] = [240, 200, 160];
const EYE: [u8; 3] = [20, 20, 20];

/// The body colour of a kind.
pub fn colour(k: Kind) -> [u8; 3] {
    match k {
        Kind::Person => [40, 60, 160],
        Kind::Ball => [220, 40, 40],
        Kind::Cup => [40, 190, 200],
        Kind::Book => [235, 140, 30],
        Kind::Plant => [40, 160, 60],
        Kind::Table => [140, 90, 40],
        Kind::Basket => [150, 60, 170],
    }
}

/// A frame being painted.
pub struct Canvas {
    pub image: RgbImage,
    /// Row-major, `width × height`.
    pub mask: Vec<u8>,
}

impl Canvas {
    fn put(&mut self, x: i64, y: i64, c: [u8; 3], id: u8) {
        let (w, h) = (i64::from(self.image.width()), i64::from(self.image.height()));
        if (0..w).contains(&x) && (0..h).contains(&y) {
            self.image.put_pixel(x as u32, y as u32, Rgb(c));
            self.mask[(y * w + x) as usize] = id;
        }
    }

    /// Fills `[x1, x2) × [y1, y2)`.
    fn rect(&mut self, x1: i64, y1: i64, x2: i64, y2: i64, c: [u8; 3], id: u8) {
        for y in y1..y2 {
            for x in x1..x2 {
                self.put(x, y, c, id);
            }
        }
    }

    /// Fills the pixels whose centres lie inside the ellipse inscribed in `[x1, x2) × [y1, y2)`.
    fn ellipse(&mut self, x1: i64, y1: i64, x2: i64, y2: i64, c: [u8; 3], id: u8) {
        let (cx, cy) = ((x1 + x2) as f64 / 2.0, (y1 + y2) as f64 / 2.0);
        let (rx, ry) = ((x2 - x1) as f64 / 2.0, (y2 - y1) as f64 / 2.0);
        for y in y1..y2 {
            for x in x1..x2 {
                let (dx, dy) = ((x as f64 + 0.5 - cx) / rx, (y as f64 + 0.5 - cy) / ry);
                if dx * dx + dy * dy <= 1.0 {
                    self.put(x, y, c, id);
                }
            }
        }
    }

    fn item(&mut self, it: &Item, id: u8) {
        let (x1, y1, x2, y2, w, h) = (it.x1, it.y1, it.x2, it.y2, it.w(), it.h());
        let c = colour(it.kind);
        match it.kind {
            Kind::Person => {
                let head = w * 56 / 100;
                let hx1 = x1 + (w - head) / 2;
                self.ellipse(hx1, y1, hx1 + head, y1 + head, SKIN, id);
                let eye = (head / 6).max(2);
                let ex = if it.faces_right { hx1 + head - 2 * eye } else { hx1 + eye };
                self.rect(ex, y1 + head / 3, ex + eye, y1 + head / 3 + eye, EYE, id);
                self.rect(x1 + w / 4, y1 + head, x2 - w / 4, y1 + h * 70 / 100, c, id);
                let (_, hy) = it.hand();
                let arm = (h * 3 / 100).max(2);
                self.rect(x1, hy - arm, x2, hy + arm, c, id);
                self.rect(x1 + w * 15 / 100, y1 + h * 70 / 100, x1 + w * 38 / 100, y2, c, id);
                self.rect(x2 - w * 38 / 100, y1 + h * 70 / 100, x2 - w * 15 / 100, y2, c, id);
            }
            Kind::Ball => self.ellipse(x1, y1, x2, y2, c, id),
            Kind::Cup | Kind::Book => self.rect(x1, y1, x2, y2, c, id),
            Kind::Plant => {
                for y in y1..y2 {
                    let t = (y - y1 + 1) as f64 / h as f64;
                    let half = (w as f64 * t / 2.0).max(0.5);
                    let cx = (x1 + x2) as f64 / 2.0;
                    let (a, b) = ((cx - half).floor() as i64, (cx + half).ceil() as i64);
                    self.rect(a.max(x1), y, b.min(x2), y + 1, c, id);
                }
            }
            Kind::Table => {
                self.rect(x1, y1, x2, y1 + h / 4, c, id);
                self.rect(x1 + w * 8 / 100, y1, x1 + w * 16 / 100, y2, c, id);
                self.rect(x2 - w * 16 / 100, y1, x2 - w * 8 / 100, y2, c, id);
            }
            Kind::Basket => {
                let (wall, bottom) = (w * 12 / 100 + 1, h * 15 / 100 + 1);
                self.rect(x1, y1, x1 + wall, y2, c, id);
                self.rect(x2 - wall, y1, x2, y2, c, id);
                self.rect(x1, y2 - bottom, x2, y2, c, id);
            }
        }
    }
}

/// Renders a scene (at most 255 items are given mask ids; later ones are painted with id 255).
pub fn render(scene: &Scene) -> Canvas {
    let (w, h) = (scene.width, scene.height);
    let floor = h * 8 / 10;
    let image = RgbImage::from_fn(w, h, |_, y| Rgb(if y < floor { WALL } else { FLOOR }));
    let mut c = Canvas { image, mask: vec![0; w as usize * h as usize] };
    for (i, it) in scene.items.iter().enumerate() {
        c.item(it, u8::try_from(i + 1).unwrap_or(u8::MAX));
    }
    c
}
