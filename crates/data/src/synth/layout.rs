//! Scene placement and motion (the rules are in the parent module's doc).

use super::{Item, Kind, Rng, Scene, SMALL};

fn sized(rng: &mut Rng, kind: Kind, sx: f64, sy: f64) -> (i64, i64) {
    let (wl, wh, hl, hh) = kind.size();
    let w = (rng.range(wl, wh) as f64 * sx).round() as i64;
    // A ball is round: its height follows its width on a square-pixel canvas.
    let h = if hh == 0 { (w as f64 * sy / sx).round() as i64 } else { (rng.range(hl, hh) as f64 * sy).round() as i64 };
    (w.max(4), h.max(4))
}

fn item(kind: Kind, x1: i64, y2: i64, (w, h): (i64, i64)) -> Item {
    Item { kind, x1, y1: y2 - h, x2: x1 + w, y2, faces_right: true, parent: None, vx: 0 }
}

fn pick_small(rng: &mut Rng) -> Kind {
    SMALL[rng.range(0, SMALL.len() as i64 - 1) as usize]
}

/// A new scene of `width × height`; `one_person` forces exactly one person (Action Genome); `moving` gives the
/// standing objects speeds (videos).
pub fn generate(rng: &mut Rng, width: u32, height: u32, one_person: bool, moving: bool) -> Scene {
    let (w, h) = (i64::from(width), i64::from(height));
    let (sx, sy) = (w as f64 / 640.0, h as f64 / 480.0);
    let floor = h * 8 / 10;
    let n = rng.range(2, 4);
    let mut standing: Vec<Item> = Vec::new();
    let mut persons = 0;
    for k in 0..n {
        let kind = if one_person {
            if k == 0 {
                Kind::Person
            } else {
                [Kind::Table, Kind::Basket, pick_small(rng)][rng.range(0, 2) as usize]
            }
        } else {
            match rng.range(0, 3) {
                0 if persons < 2 => Kind::Person,
                0 | 1 => Kind::Table,
                2 => Kind::Basket,
                _ => pick_small(rng),
            }
        };
        let size = sized(rng, kind, sx, sy);
        for _ in 0..20 {
            let x1 = rng.range(0, w - size.0);
            let y2 = floor + rng.range(0, h * 8 / 100);
            let mut it = item(kind, x1, y2, size);
            if standing.iter().all(|o| it.x2 + 4 <= o.x1 || o.x2 + 4 <= it.x1) {
                it.faces_right = rng.chance(0.5);
                if moving {
                    let v = (rng.range(-12, 12) as f64 * sx).round() as i64;
                    it.vx = if v.abs() < 3 { 0 } else { v };
                }
                persons += i32::from(kind == Kind::Person);
                standing.push(it);
                break;
            }
        }
    }
    // Farther objects (higher feet) are drawn first.
    standing.sort_by_key(|o| o.y2);
    let mut items = standing;
    let hosts = items.len();
    for host in 0..hosts {
        let o = items[host].clone();
        match o.kind {
            Kind::Table if rng.chance(0.7) => {
                let mut x = o.x1;
                for _ in 0..rng.range(1, 2) {
                    let kind = pick_small(rng);
                    let size = sized(rng, kind, sx, sy);
                    let room = o.x2 - size.0 - x;
                    if room < 0 {
                        break;
                    }
                    let x1 = x + rng.range(0, room.min(o.w() / 2));
                    let mut it = item(kind, x1, o.y1, size);
                    it.parent = Some(host);
                    x = it.x2 + 4;
                    items.push(it);
                }
            }
            Kind::Basket if rng.chance(0.7) => {
                let (wall, bottom) = (o.w() * 12 / 100 + 1, o.h() * 15 / 100 + 1);
                let kind = pick_small(rng);
                let size = sized(rng, kind, sx, sy);
                let (iw, ih) = (o.w() - 2 * wall, o.h() - bottom);
                if size.0 <= iw && size.1 <= ih {
                    let x1 = o.x1 + wall + rng.range(0, iw - size.0);
                    let mut it = item(kind, x1, o.y2 - bottom, size);
                    it.parent = Some(host);
                    items.push(it);
                }
            }
            Kind::Person if rng.chance(0.6) => {
                let kind = pick_small(rng);
                let size = sized(rng, kind, sx, sy);
                let (hx, hy) = o.hand();
                let x1 = if o.faces_right { hx } else { hx - size.0 };
                let mut it = item(kind, x1, hy + size.1 / 2, size);
                it.parent = Some(host);
                items.push(it);
            }
            _ => {}
        }
    }
    if rng.chance(0.5) {
        let size = sized(rng, Kind::Ball, sx, sy);
        let top = items.iter().map(|o| o.y1).min().unwrap_or(floor);
        let lo = h / 10 + size.1;
        if top - 10 > lo {
            let mut it = item(Kind::Ball, rng.range(0, w - size.0), rng.range(lo, top - 10), size);
            if moving {
                it.vx = (rng.range(-10, 10) as f64 * sx).round() as i64;
            }
            items.push(it);
        }
    }
    Scene { width, height, items }
}

/// Moves a scene by one frame: free items by their speed, bouncing off the edges; carried items with their host.
pub fn step(scene: &mut Scene) {
    let w = i64::from(scene.width);
    let mut dx = vec![0i64; scene.items.len()];
    for i in 0..scene.items.len() {
        let d = match scene.items[i].parent {
            Some(p) if p < i => dx[p],
            Some(_) => 0,
            None => {
                let it = &mut scene.items[i];
                let mut nx = it.x1 + it.vx;
                if nx < 0 || nx + it.w() > w {
                    it.vx = -it.vx;
                    nx = (it.x1 + it.vx).clamp(0, (w - it.w()).max(0));
                }
                nx - it.x1
            }
        };
        dx[i] = d;
        let it = &mut scene.items[i];
        it.x1 += d;
        it.x2 += d;
    }
}
