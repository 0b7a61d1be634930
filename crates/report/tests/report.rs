//! The report folder over synthetic plain-colour images: files, PNG sizes, worst-first order in the HTML, box
//! pixels in their colours at their coordinates, and missing/corrupt images reported without failing.

use image::{Rgb, RgbImage};
use sgvlm_eval::strict_eval::PredicateStats;
use sgvlm_graph::eval_parse::{self, EvalGraph};
use sgvlm_report::render::PALETTE;
use sgvlm_report::{write_report, ReportInput, Sample};
use std::path::Path;

const GT: &str = "obj[2]{id,name,x1,y1,x2,y2}:\n1,person,100,100,300,400\n2,horse,400,100,600,400\n\
                  rel[1]{subj,pred,obj}:\n1,riding,2\n";

fn graph(text: &str) -> Option<EvalGraph> {
    eval_parse::parse(text)
}

fn plain(path: &Path, w: u32, h: u32, c: [u8; 3]) {
    RgbImage::from_pixel(w, h, Rgb(c)).save(path).unwrap();
}

#[test]
fn writes_markdown_html_and_pictures_worst_first() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    plain(&src.join("a.png"), 640, 480, [40, 40, 40]);
    plain(&src.join("b.png"), 320, 240, [200, 200, 200]);
    std::fs::write(src.join("corrupt.png"), b"not a png").unwrap();
    let pred = GT.replace("horse", "cow");
    let sample = |line, sgg, image: Option<&str>| Sample {
        line,
        gt: graph(GT),
        pred: graph(&pred),
        image: image.map(|n| src.join(n)),
        sgg_score: sgg,
        toon_valid: true,
    };
    let samples = [
        sample(1, 0.9, Some("a.png")),
        sample(2, 0.1, Some("b.png")),
        sample(3, 0.5, Some("missing.png")),
        sample(4, 0.3, Some("corrupt.png")),
        sample(5, 0.7, None),
    ];
    let stats = [PredicateStats { predicate: "riding".into(), gt: 5, gt_matched: 4, pred: 5, pred_matched: 4 }];
    let summary = serde_json::json!({"num_samples": 5});
    let out_dir = dir.path().join("report");
    let input = ReportInput { summary: &summary, per_predicate: Some(&stats), samples: &samples, canvas: (640, 480) };
    let outcome = write_report(&out_dir, &input).unwrap();

    assert_eq!(outcome.pictures, 2);
    let problems: Vec<(usize, String)> = outcome
        .image_problems
        .iter()
        .map(|p| (p.line, p.path.file_name().unwrap().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(problems, [(3, "missing.png".to_string()), (4, "corrupt.png".to_string())]);
    assert_eq!(outcome.files.len(), 2 + 4 + 1);

    let md = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
    assert!(md.contains("| num_samples | 5 |\n"), "{md}");
    let pp = std::fs::read_to_string(out_dir.join("per_predicate.md")).unwrap();
    assert!(pp.contains("| riding | 5 | 4 | 80.0 | 5 | 4 | 80.0 |"), "{pp}");

    // Pictures keep their image's size; the canvas is scaled onto the smaller one.
    let a_gt = image::open(out_dir.join("img/1_gt.png")).unwrap().to_rgb8();
    assert_eq!(a_gt.dimensions(), (640, 480));
    assert_eq!(image::open(out_dir.join("img/2_pred.png")).unwrap().to_rgb8().dimensions(), (320, 240));
    // Object 1's left edge at x = 100 and object 2's right edge at x = 600, in their colours; the background
    // inside the person box is untouched away from the tag and the arrow.
    assert_eq!(a_gt[(100, 300)], PALETTE[0]);
    assert_eq!(a_gt[(101, 300)], PALETTE[0]);
    assert_eq!(a_gt[(600, 300)], PALETTE[1]);
    assert_eq!(a_gt[(150, 350)], Rgb([40, 40, 40]));
    // Half scale: object 2's right edge at x = 300.
    let b_gt = image::open(out_dir.join("img/2_gt.png")).unwrap().to_rgb8();
    assert_eq!(b_gt[(300, 150)], PALETTE[1]);
    // The relation arrow runs between the centres (200, 250) and (500, 250) in the subject's colour, with its
    // predicate on a dark label at the middle.
    assert_eq!(a_gt[(250, 250)], PALETTE[0]);
    assert_eq!(a_gt[(400, 300)], PALETTE[1]);
    assert_eq!(a_gt[(314, 250)], Rgb([30, 30, 30]));

    let html = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
    let pos = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle} missing from the page"));
    // Worst first: lines 2 (0.1), 4 (0.3), 3 (0.5), 5 (0.7), 1 (0.9).
    let order = ["id=\"row-2\"", "id=\"row-4\"", "id=\"row-3\"", "id=\"row-5\"", "id=\"row-1\""].map(pos);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert!(pos("img/2_gt.png") < pos("img/2_pred.png") && pos("img/2_pred.png") < pos("img/1_gt.png"));
    assert!(html.contains("missing.png: "));
    assert!(!html.contains("img/3_gt.png"));
}

#[test]
fn no_images_no_page() {
    let dir = tempfile::tempdir().unwrap();
    let summary = serde_json::json!({"R@20": 0.5});
    let input = ReportInput { summary: &summary, per_predicate: None, samples: &[], canvas: (640, 480) };
    let outcome = write_report(dir.path(), &input).unwrap();
    assert_eq!(outcome.files, [dir.path().join("summary.md")]);
    assert!(!dir.path().join("index.html").exists());
}
