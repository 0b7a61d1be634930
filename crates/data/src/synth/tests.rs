use super::*;

fn it(kind: Kind, x1: i64, y1: i64, x2: i64, y2: i64) -> Item {
    Item { kind, x1, y1, x2, y2, faces_right: true, parent: None, vx: 0 }
}

#[test]
fn relation_rules() {
    // Person 100..160 × 200..380 facing right: hand at (160, 281). A cup centred near it is held.
    let person = it(Kind::Person, 100, 200, 160, 380);
    let cup = it(Kind::Cup, 160, 263, 186, 300);
    let table = it(Kind::Table, 300, 300, 460, 380);
    let book = it(Kind::Book, 320, 284, 370, 300);
    let basket = it(Kind::Basket, 480, 320, 580, 390);
    let ball_in = it(Kind::Ball, 510, 340, 540, 370);
    let ball_air = it(Kind::Ball, 330, 100, 360, 130);
    let items = vec![person, cup, table, book, basket, ball_in, ball_air];
    assert_eq!(
        relations(&items),
        vec![
            (0, Rel::Holding, 1),
            (3, Rel::On, 2),
            (2, Rel::Beside, 4),
            // The ball in the basket is also within reach of the table: gap 50 ≤ 80, 30 of 30 rows shared.
            (2, Rel::Beside, 5),
            (6, Rel::Over, 2),
            (6, Rel::Over, 3),
            (5, Rel::In, 4),
        ]
    );
    assert_eq!(ag_labels(&items[0], &items[1], true), ["looking_at", "on_the_side_of", "holding"]);
    assert_eq!(ag_labels(&items[0], &items[6], false), ["not_looking_at", "above", "not_contacting"]);
}

#[test]
fn generation_is_deterministic_and_moves() {
    let a = generate(&mut Rng::for_item(7, 2, 0), 480, 360, true, true);
    let b = generate(&mut Rng::for_item(7, 2, 0), 480, 360, true, true);
    assert_eq!(a, b);
    assert_eq!(a.items.iter().filter(|i| i.kind == Kind::Person).count(), 1);
    let mut moved = a.clone();
    for _ in 0..5 {
        step(&mut moved);
    }
    assert!(moved.items.iter().all(|i| i.x1 >= -i.w() && i.x2 <= 480 + i.w()));
    // Carried items keep their offset to their host.
    for (k, i) in moved.items.iter().enumerate() {
        if let Some(p) = i.parent {
            assert_eq!(i.x1 - moved.items[p].x1, a.items[k].x1 - a.items[p].x1);
        }
    }
}

#[test]
fn render_masks_cover_boxes() {
    let scene =
        Scene { width: 40, height: 30, items: vec![it(Kind::Cup, 2, 3, 6, 9), it(Kind::Basket, 10, 10, 30, 25)] };
    let c = render::render(&scene);
    let boxes = write::visible_boxes(&c.mask, 40);
    assert_eq!(boxes.get(&1), Some(&[2, 3, 6, 9]));
    assert_eq!(boxes.get(&2), Some(&[10, 10, 30, 25]));
    // The basket is open: the centre of its box is background.
    assert_eq!(c.mask[17 * 40 + 20], 0);
    assert_eq!(c.image.get_pixel(3, 4).0, render::colour(Kind::Cup));
}
