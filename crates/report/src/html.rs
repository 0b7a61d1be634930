//! `index.html`: one section per sample, worst SGG score first, with the GT and predicted pictures side by side
//! (or a note saying why there is no picture).

use crate::Sample;
use std::fmt::Write;

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Sample indices, worst SGG score first; ties keep input order.
pub fn worst_first(samples: &[Sample]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by(|&a, &b| samples[a].sgg_score.total_cmp(&samples[b].sgg_score));
    order
}

/// The page. `pictures[i]` is `Ok(())` when sample `i`'s PNGs were written, or why not.
pub fn page(samples: &[Sample], pictures: &[Result<(), String>]) -> String {
    let mut s = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sgvlm evaluation report</title>\n<style>\
         body{font-family:sans-serif;margin:1em}.pair{display:flex;gap:1em;flex-wrap:wrap}\
         figure{margin:0}img{max-width:48vw;border:1px solid #ccc}.warn{color:#a00}</style></head><body>\n\
         <h1>sgvlm evaluation report</h1>\n<p>Summary: <a href=\"summary.md\">summary.md</a>, per predicate: \
         <a href=\"per_predicate.md\">per_predicate.md</a>. Samples, worst SGG score first.</p>\n",
    );
    for i in worst_first(samples) {
        let x = &samples[i];
        let valid = if x.toon_valid { "" } else { " (prediction invalid)" };
        let _ = writeln!(s, "<section id=\"row-{0}\"><h2>line {0}: SGG {1:.4}{valid}</h2>", x.line, x.sgg_score);
        match pictures.get(i) {
            Some(Ok(())) => {
                let _ = writeln!(
                    s,
                    "<div class=\"pair\"><figure><img src=\"img/{0}_gt.png\" alt=\"ground truth, line {0}\">\
                     <figcaption>ground truth</figcaption></figure><figure><img src=\"img/{0}_pred.png\" \
                     alt=\"prediction, line {0}\"><figcaption>prediction</figcaption></figure></div>",
                    x.line
                );
            }
            Some(Err(why)) => {
                let _ = writeln!(s, "<p class=\"warn\">no picture: {}</p>", escape(why));
            }
            None => s.push_str("<p class=\"warn\">no picture: no image for this row</p>\n"),
        }
        s.push_str("</section>\n");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_orders() {
        assert_eq!(escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
        let sample = |line, sgg| Sample { line, gt: None, pred: None, image: None, sgg_score: sgg, toon_valid: true };
        let samples = [sample(1, 0.5), sample(2, 0.0), sample(3, 0.5), sample(4, 0.25)];
        assert_eq!(worst_first(&samples), [1, 3, 0, 2]);
    }
}
