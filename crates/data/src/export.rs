//! MS-SWIFT JSON Lines rows, written the way the reference's `json.dumps(row, ensure_ascii=False)` writes them:
//! keys in insertion order, `", "` and `": "` separators, non-ASCII kept as is. Byte-identical rows let the two
//! pipelines' outputs be compared with `cmp`.
//!
//! - SFT: `{"messages": [user, assistant], "images": [path]}`.
//! - GRPO: `{"id", "images", "width", "height", "messages": [user], "solution"}` plus `video_id`/`t` (AG, PVSG) or
//!   `image_id`/`split` (PSG), in that order.

use serde::Serialize;
use std::io;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

impl Message {
    pub fn user(content: String) -> Self {
        Message { role: "user", content }
    }
    pub fn assistant(content: String) -> Self {
        Message { role: "assistant", content }
    }
}

/// An SFT row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SftRow {
    pub messages: Vec<Message>,
    pub images: Vec<String>,
}

/// A GRPO row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrpoRow {
    pub id: usize,
    pub images: Vec<String>,
    pub width: u32,
    pub height: u32,
    pub messages: Vec<Message>,
    pub solution: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<&'static str>,
}

/// serde_json's compact output with Python's default separators.
struct PyFormatter;

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// One JSON line (without the newline) as Python's `json.dumps(v, ensure_ascii=False)` writes it.
pub fn py_json<T: Serialize>(v: &T) -> serde_json::Result<String> {
    let mut buf = Vec::new();
    v.serialize(&mut serde_json::Serializer::with_formatter(&mut buf, PyFormatter))?;
    // serde_json writes valid UTF-8.
    String::from_utf8(buf).map_err(|e| serde_json::Error::io(io::Error::new(io::ErrorKind::InvalidData, e)))
}

/// The `workspace` image-path mode: everything after `/datasets/frames/` re-rooted at `root` (the reference's
/// `/workspace/datasets/frames`); other paths are kept.
pub fn workspace_path(path: &str, root: &str) -> String {
    let raw = path.replace('\\', "/");
    let tail = match raw.split_once("/datasets/frames/") {
        Some((_, t)) => Some(t),
        None => raw.strip_prefix("datasets/frames/"),
    };
    match tail {
        Some(t) => format!("{}/{}", root.trim_end_matches('/'), t.trim_start_matches('/')),
        None => raw,
    }
}

/// The evaluation subset sizes (the first N test rows): AG 148, PSG 100, PVSG 78.
pub const EVAL_SIZE_AG: usize = 148;
pub const EVAL_SIZE_PSG: usize = 100;
pub const EVAL_SIZE_PVSG: usize = 78;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sft_row_matches_python_dumps() {
        let row = SftRow {
            messages: vec![
                Message::user("<image>\nhé \"x\"\n".into()),
                Message::assistant("<answer>\n</answer>\n".into()),
            ],
            images: vec!["/a/b.png".into()],
        };
        assert_eq!(
            py_json(&row).unwrap(),
            r#"{"messages": [{"role": "user", "content": "<image>\nhé \"x\"\n"}, {"role": "assistant", "content": "<answer>\n</answer>\n"}], "images": ["/a/b.png"]}"#
        );
    }

    #[test]
    fn grpo_row_key_order() {
        let row = GrpoRow {
            id: 3,
            images: vec!["p.png".into()],
            width: 640,
            height: 480,
            messages: vec![Message::user("u".into())],
            solution: "s\n".into(),
            video_id: Some("ABCDE.mp4".into()),
            t: Some(12),
            image_id: None,
            split: None,
        };
        assert_eq!(
            py_json(&row).unwrap(),
            r#"{"id": 3, "images": ["p.png"], "width": 640, "height": 480, "messages": [{"role": "user", "content": "u"}], "solution": "s\n", "video_id": "ABCDE.mp4", "t": 12}"#
        );
    }

    #[test]
    fn workspace_paths() {
        let root = "/workspace/datasets/frames";
        assert_eq!(
            workspace_path("/x/datasets/frames/AG_frames/a.png", root),
            "/workspace/datasets/frames/AG_frames/a.png"
        );
        assert_eq!(workspace_path("datasets/frames/b.jpg", root), "/workspace/datasets/frames/b.jpg");
        assert_eq!(workspace_path("/other/c.png", root), "/other/c.png");
    }
}
