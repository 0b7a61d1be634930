//! A loss-weight curriculum over a class of tokens: the number tokens of an answer (box coordinates, ids, counts)
//! start with a reduced weight in the cross-entropy, which rises to 1 later in training.
//!
//! Why: in a scene graph most answer tokens are coordinate digits, which a model from random weights first learns
//! as a prior (every `y1` is 3xx), and Adam scales each step by the gradient of the whole loss. The tokens that
//! need the image first — the object names — are ~5 % of an answer, so their share of each step is ~5 %, and on
//! the synthetic demo the image path collapsed into a constant before it carried them
//! (`crates/train/results/demo_image_reading.md`). Down-weighting the digits early gives the names the step; the
//! full objective takes over before the end, so the final model is trained on the plain cross-entropy.

//!
//! A second class, [`TokenWeight::box_units`], holds only the units digit of each box coordinate: at the demo's
//! image scale (640×480 answers from a 128×96 image: one pixel is five coordinate units) that digit cannot be read
//! from the image, so its cross-entropy stays near ln 10 and its gradient is noise on every step.

use sgvlm_model::tokenizer::Tokenizer;

/// Which target tokens a [`TokenWeight`] applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenClass {
    /// These token ids (sorted), wherever they occur.
    Ids(Vec<u32>),
    /// The tokens holding the last digit of a box coordinate: in an object row of a paper-layout answer
    /// (`id,name,x1,y1,x2,y2`: a line with five commas that starts with a digit), the last digit of each of the last
    /// four fields. Indexed by token id: the bytes each token stands for.
    BoxUnits(Vec<Vec<u8>>),
    /// The tokens that name what the image shows: the object count (`obj[N]`) and each object row's name field.
    /// Indexed by token id as [`TokenClass::BoxUnits`].
    Names(Vec<Vec<u8>>),
}

/// Weight `weight` on a class of tokens until `hold` of training, rising linearly to 1 at `until` (fractions of the
/// run).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenWeight {
    pub class: TokenClass,
    pub weight: f32,
    pub hold: f64,
    pub until: f64,
}

impl TokenWeight {
    /// The curriculum on every token made only of ASCII digits.
    pub fn digits(tokenizer: &Tokenizer, weight: f32, hold: f64, until: f64) -> Self {
        let tokens = tokenizer
            .token_bytes()
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.special && !t.bytes.is_empty() && t.bytes.iter().all(u8::is_ascii_digit))
            .map(|(i, _)| i as u32)
            .collect();
        Self { class: TokenClass::Ids(tokens), weight, hold, until: until.max(hold) }
    }

    /// The curriculum on the units digits of box coordinates ([`TokenClass::BoxUnits`]).
    pub fn box_units(tokenizer: &Tokenizer, weight: f32, hold: f64, until: f64) -> Self {
        let bytes = plain_token_bytes(tokenizer);
        Self { class: TokenClass::BoxUnits(bytes), weight, hold, until: until.max(hold) }
    }

    /// The curriculum on the object count and names ([`TokenClass::Names`]); a weight above 1 stresses them.
    pub fn names(tokenizer: &Tokenizer, weight: f32, hold: f64, until: f64) -> Self {
        let bytes = plain_token_bytes(tokenizer);
        Self { class: TokenClass::Names(bytes), weight, hold, until: until.max(hold) }
    }

    /// The class weight at `progress` (0 at the start of training, 1 at the end).
    pub fn at(&self, progress: f64) -> f32 {
        if progress <= self.hold {
            self.weight
        } else if progress >= self.until || self.until <= self.hold {
            1.0
        } else {
            let f = ((progress - self.hold) / (self.until - self.hold)) as f32;
            self.weight + (1.0 - self.weight) * f
        }
    }

    /// Which of `targets` are in the class.
    pub fn mask(&self, targets: &[u32]) -> Vec<bool> {
        match &self.class {
            TokenClass::Ids(ids) => targets.iter().map(|t| ids.binary_search(t).is_ok()).collect(),
            TokenClass::BoxUnits(bytes) => row_mask(bytes, targets, Field::BoxUnits),
            TokenClass::Names(bytes) => row_mask(bytes, targets, Field::Names),
        }
    }

    /// Per-token weights of `targets` when the class weight is `w`.
    pub fn weights(&self, targets: &[u32], w: f32) -> Vec<f32> {
        self.mask(targets).into_iter().map(|m| if m { w } else { 1.0 }).collect()
    }

    /// How many of `targets` are in the class.
    pub fn count(&self, targets: &[u32]) -> usize {
        self.mask(targets).into_iter().filter(|&m| m).count()
    }
}

/// Per-token weights of `targets` under several curricula at their current weights: the product of the weights of
/// the classes each token is in (1 for a token in none).
pub fn combined_weights(weighting: &[(&TokenWeight, f32)], targets: &[u32]) -> Vec<f32> {
    let mut out = vec![1f32; targets.len()];
    for (c, w) in weighting {
        for (o, m) in out.iter_mut().zip(c.mask(targets)) {
            if m {
                *o *= w;
            }
        }
    }
    out
}

/// The bytes of every token id; special tokens stand for none (they never hold a field's text).
fn plain_token_bytes(tokenizer: &Tokenizer) -> Vec<Vec<u8>> {
    tokenizer.token_bytes().into_iter().map(|t| if t.special { Vec::new() } else { t.bytes }).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Field {
    BoxUnits,
    Names,
}

/// The masks of the row-based classes: the target text is rebuilt byte by byte (each byte remembers its token), cut
/// into lines, and the bytes of the wanted fields mark their tokens.
fn row_mask(bytes: &[Vec<u8>], targets: &[u32], field: Field) -> Vec<bool> {
    let mut text = Vec::new();
    let mut owner = Vec::new();
    for (k, &t) in targets.iter().enumerate() {
        let b = bytes.get(t as usize).map_or(&[][..], Vec::as_slice);
        text.extend_from_slice(b);
        owner.extend(std::iter::repeat_n(k, b.len()));
    }
    let mut mask = vec![false; targets.len()];
    let mut start = 0;
    for line in text.split(|&b| b == b'\n') {
        let mut mark = |i: usize| mask[owner[start + i]] = true;
        let commas: Vec<usize> = line.iter().enumerate().filter(|(_, &b)| b == b',').map(|(i, _)| i).collect();
        let object_row = commas.len() == 5 && line.first().is_some_and(u8::is_ascii_digit);
        match field {
            // The byte before commas 3, 4, 5 and the line's last byte end the four coordinates.
            Field::BoxUnits if object_row => {
                let ends = commas[2..].iter().map(|&c| c.checked_sub(1)).chain([line.len().checked_sub(1)]);
                for e in ends.flatten().filter(|&e| line[e].is_ascii_digit() && e > commas[1]) {
                    mark(e);
                }
            }
            Field::Names if object_row => (commas[0] + 1..commas[1]).for_each(&mut mark),
            Field::Names if line.starts_with(b"obj[") => {
                line.iter().enumerate().skip(4).take_while(|(_, b)| b.is_ascii_digit()).for_each(|(i, _)| mark(i));
            }
            _ => {}
        }
        start += line.len() + 1;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_tokens_are_found_and_weighted_on_a_schedule() {
        let tok = Tokenizer::tiny();
        let c = TokenWeight::digits(&tok, 0.1, 0.4, 0.6);
        let ids = tok.encode("1,cup,291,290").unwrap();
        let text: Vec<String> = ids.iter().map(|&i| tok.decode(&[i], false).unwrap()).collect();
        let w = c.weights(&ids, 0.1);
        for (t, w) in text.iter().zip(&w) {
            let digit = t.bytes().all(|b| b.is_ascii_digit());
            assert_eq!(*w, if digit { 0.1 } else { 1.0 }, "token {t:?}");
        }
        assert!(w.contains(&0.1) && w.contains(&1.0));
        assert_eq!(c.count(&ids), w.iter().filter(|&&x| x == 0.1).count());
        assert_eq!(c.at(0.0), 0.1);
        assert_eq!(c.at(0.4), 0.1);
        assert!((c.at(0.5) - 0.55).abs() < 1e-6);
        assert_eq!(c.at(0.6), 1.0);
        assert_eq!(c.at(1.0), 1.0);
    }

    /// An answer with a two-digit count and id, a one-digit and a two-digit coordinate; its token ids and the
    /// tokens `c` marks, space-separated.
    fn sample_marks(tok: &Tokenizer, c: &TokenWeight) -> (Vec<u32>, String) {
        let text = "<answer>\nobj[12]{id,name,x1,y1,x2,y2}:\n1,cup,291,290,318,5\n12,dining-table,0,30,607,418\n\
                    rel[1]{subj,pred,obj}:\n1,on,12\n</answer><|im_end|>";
        let ids = tok.encode(text).unwrap();
        let marked = ids.iter().zip(c.mask(&ids)).filter(|(_, m)| *m).map(|(&i, _)| tok.decode(&[i], false).unwrap());
        (ids.clone(), marked.collect::<Vec<_>>().join(" "))
    }

    #[test]
    fn box_units_are_the_last_digit_of_each_coordinate() {
        let tok = Tokenizer::tiny();
        let c = TokenWeight::box_units(&tok, 0.2, 1.0, 1.0);
        let (ids, marked) = sample_marks(&tok, &c);
        // Single-digit tokens: the units of 291 290 318 5 and of 0 30 607 418; not the ids, the count, or the
        // relation rows.
        assert_eq!(marked, "1 0 8 5 0 0 7 8");
        let w = c.weights(&ids, 0.2);
        assert_eq!(w.iter().filter(|&&x| x == 0.2).count(), 8);
        assert_eq!(c.count(&ids), 8);
        // A sequence of two answers (a batch's concatenated targets) marks each as alone.
        let two = [ids.clone(), ids.clone()].concat();
        assert_eq!(c.count(&two), 16);
    }

    #[test]
    fn names_are_the_count_and_the_name_fields() {
        let tok = Tokenizer::tiny();
        let c = TokenWeight::names(&tok, 4.0, 1.0, 1.0);
        let (ids, marked) = sample_marks(&tok, &c);
        assert_eq!(marked.replace(' ', ""), "12cupdining-table");
        assert_eq!(c.weights(&ids, 4.0).iter().filter(|&&x| x == 4.0).count(), c.count(&ids));
    }

    #[test]
    fn several_classes_multiply_where_they_overlap() {
        let tok = Tokenizer::tiny();
        let (names, units, digits) = (
            TokenWeight::names(&tok, 4.0, 1.0, 1.0),
            TokenWeight::box_units(&tok, 0.25, 1.0, 1.0),
            TokenWeight::digits(&tok, 0.5, 1.0, 1.0),
        );
        let (ids, _) = sample_marks(&tok, &names);
        let w = combined_weights(&[(&names, 4.0), (&units, 0.25), (&digits, 0.5)], &ids);
        let (n, u, d) = (names.mask(&ids), units.mask(&ids), digits.mask(&ids));
        for k in 0..ids.len() {
            let mut want = 1f32;
            for (m, f) in [(n[k], 4.0), (u[k], 0.25), (d[k], 0.5)] {
                if m {
                    want *= f;
                }
            }
            assert_eq!(w[k], want, "token {k}");
        }
        // A units digit is a digit too (0.25·0.5), a count digit is a name and a digit (4·0.5).
        assert!(w.contains(&0.125) && w.contains(&2.0) && w.contains(&4.0) && w.contains(&1.0));
        assert_eq!(combined_weights(&[], &ids), vec![1.0; ids.len()]);
    }
}
