//! The units of parallel work: one image (PSG) or one frame (PVSG, AG), each read, resized, written and turned
//! into a [`Prepared`] record.

use super::{Dataset, Prepared};
use crate::preprocess::{self, Encoding};
use crate::readers::ag::{self, AgFrame};
use crate::readers::psg::{self, ImageSource, PsgRecord};
use crate::readers::pvsg::{self, PvsgVideo};
use crate::readers::{ReadError, RecordError};
use crate::scale::{self, Scale};
use crate::{prompts, readers};
use sgvlm_graph::toon::{self, Layout};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One unit of work.
pub(crate) enum Unit {
    Psg(PsgRecord),
    Pvsg { video: Arc<PvsgVideo>, frame: usize },
    Ag { frame: AgFrame, image: PathBuf },
}

fn read_file(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

fn scale_err(e: scale::ScaleError) -> String {
    e.to_string()
}

impl Unit {
    /// A stable, unique key (also what errors name).
    pub fn key(&self) -> String {
        match self {
            Unit::Psg(r) => format!("{}/{}", r.split.as_str(), r.image_id),
            Unit::Pvsg { video, frame } => {
                format!("{}/{}", video.video_id, video.frames.get(*frame).map_or("?", |f| f.stem.as_str()))
            }
            Unit::Ag { frame, .. } => frame.key.clone(),
        }
    }

    /// Reads, resizes and writes the image under `out`, and returns the record.
    pub fn process(&self, out: &Path) -> Result<Prepared, String> {
        match self {
            Unit::Psg(r) => {
                let bytes = match &r.image {
                    ImageSource::Bytes(b) => std::borrow::Cow::Borrowed(b.as_slice()),
                    ImageSource::Path(p) => std::borrow::Cow::Owned(read_file(p)?),
                };
                let dest = out.join(format!("frames/{}_images/{}.jpg", r.split.as_str(), sanitize(&r.image_id)));
                let (w, h) = preprocess::process(&bytes, &dest, Encoding::Jpeg95)?;
                let mut g = r.graph.clone();
                scale::scale_triplet(&mut g, Scale::to_canvas(w, h)).map_err(scale_err)?;
                let mut raw = String::new();
                toon::write_triplet(&mut raw, &g, &Layout::RAW);
                Ok(Prepared::new(self.key(), r.split, &dest, None, None, raw, String::new()))
            }
            Unit::Pvsg { video, frame } => {
                let f = video.frames.get(*frame).ok_or("frame index out of range")?;
                let mask_path = f.mask.as_ref().ok_or("no mask for this frame")?;
                let mask = pvsg::decode_mask(&read_file(mask_path)?)?;
                let mut g = pvsg::frame_graph(video, f.index, &mask)?;
                let dest = out.join(format!(
                    "frames/{}_images/{}/frames/{}/{}.png",
                    video.split.as_str(),
                    sanitize(&video.source),
                    sanitize(&video.video_id),
                    sanitize(&f.stem)
                ));
                let (w, h) = preprocess::process(&read_file(&f.image)?, &dest, Encoding::Png)?;
                scale::scale_triplet(&mut g, Scale::to_canvas(w, h)).map_err(scale_err)?;
                let prev = prompts::pvsg_prev_text(&g);
                let vid = Some(video.video_id.clone());
                Ok(Prepared::new(self.key(), video.split, &dest, vid, Some(f.index), prev.clone(), prev))
            }
            Unit::Ag { frame, image } => {
                let (video, file) = ag::split_key(&frame.key).ok_or("key is not VIDEO/FRAME")?;
                let dest = out.join(format!(
                    "frames/{}_images/{}/{}.png",
                    frame.split.as_str(),
                    sanitize(video),
                    sanitize(file.rsplit_once('.').map_or(file, |(s, _)| s))
                ));
                let (w, h) = preprocess::process(&read_file(image)?, &dest, Encoding::Png)?;
                let mut g = frame.graph.clone();
                scale::scale_ag(&mut g, Scale::to_canvas(w, h)).map_err(scale_err)?;
                let mut raw = String::new();
                toon::write_ag(&mut raw, &g, &Layout::RAW);
                let t = sgvlm_graph::pytext::py_int(file.rsplit_once('.').map_or(file, |(s, _)| s));
                Ok(Prepared::new(
                    self.key(),
                    frame.split,
                    &dest,
                    Some(video.to_owned()),
                    t,
                    raw,
                    prompts::ag_prev_text(&g),
                ))
            }
        }
    }
}

/// A path component made safe: anything but `[A-Za-z0-9._-]` becomes `_`, and `..` cannot occur.
pub(crate) fn sanitize(s: &str) -> String {
    let t: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if t.is_empty() || t.chars().all(|c| c == '.') {
        format!("_{t}")
    } else {
        t
    }
}

/// Reads a dataset into units (reader order) and the records the reader already skipped.
pub(crate) fn units(ds: Dataset, root: &Path) -> Result<(Vec<Unit>, Vec<RecordError>), ReadError> {
    match ds {
        Dataset::Psg => {
            let (recs, skipped) = psg::read_dir(root)?;
            Ok((recs.into_iter().map(Unit::Psg).collect(), skipped))
        }
        Dataset::Pvsg => {
            let (videos, skipped) = pvsg::read_dir(root)?;
            let mut out = Vec::new();
            for v in videos {
                let v = Arc::new(v);
                out.extend((0..v.frames.len()).map(|frame| Unit::Pvsg { video: Arc::clone(&v), frame }));
            }
            Ok((out, skipped))
        }
        Dataset::Ag => {
            let (frames, skipped) = readers::ag::read_dir(root, true)?;
            let out = frames
                .into_iter()
                .map(|f| {
                    let image = root.join("frames").join(&f.key);
                    Unit::Ag { frame: f, image }
                })
                .collect();
            Ok((out, skipped))
        }
    }
}
