//! PSG R1-SGG rows as Parquet, the form the Hugging Face Hub stores `JosephZ/psg_{train,test}_sg` in: one row per
//! image with `image_id`, `objects`, `relationships` (JSON strings or nested lists) and `image`, a struct
//! `{bytes: binary, path: string}` holding the encoded image bytes (the `datasets` `Image` feature).
//!
//! Files (sorted by name within a split): `ROOT/{split}.parquet`, `ROOT/{split}-*.parquet`, `ROOT/data/{split}-*.parquet`
//! (the Hub's `data/train-00000-of-00003.parquet` shards), and `ROOT/psg_{split}_sg/data/*.parquet` (the two Hub
//! repositories downloaded side by side; each holds its rows under the Hub's default split name, so every shard
//! of `psg_test_sg` is test whatever its name).
//!
//! Rows go through the same rules as the JSON rows ([`super::psg::record`]): each row is turned into a JSON object
//! with the image bytes kept aside as [`ImageSource::Bytes`] (no base64 round trip). A row of the wrong shape is
//! a [`RecordError`] naming the file and `row N` (0-based over the file); an unreadable file is a [`ReadError`].
//!
//! Why the `parquet` crate with default features off: only its row API and the Snappy codec are needed (Snappy is
//! pyarrow's default and what `datasets` writes). The default `arrow` feature would compile the whole Arrow stack,
//! and zstd/brotli/lz4 pull C builds or large codecs; a file using another codec fails with a clear error naming it.
//! The writer ([`write_rows`]) exists for fixtures and the synthetic generator: plain-Snappy, one row group.

use super::psg::{record, ImageSource, PsgRecord};
use super::{ReadError, RecordError, Split};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::{Field, Row};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The Parquet files of a split (see the module doc), sorted by name.
pub fn split_files(root: &Path, split: Split) -> Vec<PathBuf> {
    let s = split.as_str();
    let list = |dir: &Path, keep: &dyn Fn(&str) -> bool| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".parquet") && keep(n))
            })
            .collect();
        v.sort();
        v
    };
    let named = |n: &str| n == format!("{s}.parquet") || n.starts_with(&format!("{s}-"));
    let mut out = list(root, &named);
    out.extend(list(&root.join("data"), &named));
    out.extend(list(&root.join(format!("psg_{s}_sg/data")), &|_| true));
    out
}

/// A Parquet value as JSON (bytes as a list of integers; the row's image is taken out before this).
fn json(f: &Field) -> Value {
    match f {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(v) => (*v).into(),
        Field::Short(v) => (*v).into(),
        Field::Int(v) => (*v).into(),
        Field::Long(v) => (*v).into(),
        Field::UByte(v) => (*v).into(),
        Field::UShort(v) => (*v).into(),
        Field::UInt(v) => (*v).into(),
        Field::ULong(v) => (*v).into(),
        Field::Float(v) => serde_json::Number::from_f64(f64::from(*v)).map_or(Value::Null, Value::Number),
        Field::Double(v) => serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => Value::String(s.to_owned()),
            Err(_) => b.data().iter().map(|&x| Value::from(x)).collect(),
        },
        Field::Group(r) => Value::Object(r.get_column_iter().map(|(k, v)| (k.clone(), json(v))).collect()),
        Field::ListInternal(l) => l.elements().iter().map(json).collect(),
        Field::MapInternal(m) => Value::Object(
            m.entries()
                .iter()
                .map(|(k, v)| (json(k).as_str().map_or_else(|| k.to_string(), str::to_owned), json(v)))
                .collect(),
        ),
        other => Value::String(other.to_string()),
    }
}

/// Splits a row into its JSON fields and, when `image` is a `{bytes, …}` struct or a binary, the image bytes.
fn split_row(row: Row) -> (Map<String, Value>, Option<Vec<u8>>) {
    let mut m = Map::new();
    let mut bytes = None;
    for (k, v) in row.into_columns() {
        match (k.as_str(), &v) {
            ("image", Field::Bytes(b)) => bytes = Some(b.data().to_vec()),
            ("image", Field::Group(g)) => {
                let b = g.get_column_iter().find_map(|(n, f)| match (n.as_str(), f) {
                    ("bytes", Field::Bytes(b)) => Some(b.data().to_vec()),
                    _ => None,
                });
                match b {
                    Some(b) => bytes = Some(b),
                    None => {
                        m.insert(k, json(&v));
                    }
                }
            }
            _ => {
                m.insert(k, json(&v));
            }
        }
    }
    (m, bytes)
}

/// Every record of one Parquet file, and the rows that were skipped. Relative image paths are looked up in `dirs`.
pub fn read_file(path: &Path, split: Split, dirs: &[&Path]) -> Result<Read, ReadError> {
    let shape = |what: String| ReadError::Shape { path: path.to_owned(), what };
    let file = std::fs::File::open(path).map_err(|source| ReadError::Io { path: path.to_owned(), source })?;
    let reader = SerializedFileReader::new(file).map_err(|e| shape(format!("not a Parquet file: {e}")))?;
    let rows = reader.get_row_iter(None).map_err(|e| shape(format!("cannot read rows: {e}")))?;
    let (mut out, mut skipped) = (Vec::new(), Vec::new());
    for (i, row) in rows.enumerate() {
        let name = || format!("{}: row {i}", path.display());
        let row = match row {
            Ok(r) => r,
            // A broken page ends the file: the rows after it cannot be located.
            Err(e) => return Err(shape(format!("row {i}: {e}"))),
        };
        let (m, bytes) = split_row(row);
        let rec = if let Some(b) = bytes {
            let mut m = m;
            // Satisfies the row reader's image lookup; the bytes replace it below.
            m.insert("image_path".into(), Value::String(String::new()));
            record(&Value::Object(m), split, dirs).map(|mut r| {
                r.image = ImageSource::Bytes(b);
                r
            })
        } else {
            record(&Value::Object(m), split, dirs)
        };
        match rec {
            Ok(r) => out.push(r),
            Err(what) => skipped.push(RecordError { record: name(), what }),
        }
    }
    Ok((out, skipped))
}

/// Records read and records skipped.
pub type Read = (Vec<PsgRecord>, Vec<RecordError>);

/// Every record of both splits' Parquet files under `root` (train first), or `None` when there are none.
pub fn read_dir(root: &Path) -> Option<Result<Read, ReadError>> {
    let files: Vec<(Split, PathBuf)> = [Split::Train, Split::Test]
        .into_iter()
        .flat_map(|s| split_files(root, s).into_iter().map(move |p| (s, p)))
        .collect();
    if files.is_empty() {
        return None;
    }
    let run = || {
        let (mut out, mut skipped) = (Vec::new(), Vec::new());
        for (split, path) in &files {
            let dir = path.parent().unwrap_or(root);
            let (r, s) = read_file(path, *split, &[root, dir])?;
            out.extend(r);
            skipped.extend(s);
        }
        Ok((out, skipped))
    };
    Some(run())
}

/// One row to write: `objects` and `relationships` are JSON text, `image` encoded image bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetRow {
    pub image_id: String,
    pub image: Vec<u8>,
    pub objects: String,
    pub relationships: String,
}

/// The schema the Hub's `datasets` writes for these rows (every column nullable, `image` the `Image` struct).
const SCHEMA: &str = "message schema {
    optional binary image_id (STRING);
    optional group image {
        optional binary bytes;
        optional binary path (STRING);
    }
    optional binary objects (STRING);
    optional binary relationships (STRING);
}";

/// Writes rows as one Snappy-compressed row group in the Hub's schema (`image.path` null).
pub fn write_rows(path: &Path, rows: &[ParquetRow]) -> Result<(), parquet::errors::ParquetError> {
    let schema = Arc::new(parquet::schema::parser::parse_message_type(SCHEMA)?);
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
    let file = std::fs::File::create(path)?;
    let mut w = SerializedFileWriter::new(file, schema, props)?;
    let mut g = w.next_row_group()?;
    let ba =
        |f: &dyn Fn(&ParquetRow) -> &[u8]| -> Vec<ByteArray> { rows.iter().map(|r| f(r).to_vec().into()).collect() };
    // Column order: image_id, image.bytes, image.path (all null: definition level 1), objects, relationships.
    let columns: [(Vec<ByteArray>, i16); 5] = [
        (ba(&|r| r.image_id.as_bytes()), 1),
        (ba(&|r| &r.image), 2),
        (Vec::new(), 1),
        (ba(&|r| r.objects.as_bytes()), 1),
        (ba(&|r| r.relationships.as_bytes()), 1),
    ];
    for (values, def) in columns {
        let mut c = g.next_column()?.ok_or_else(|| parquet::errors::ParquetError::General("schema mismatch".into()))?;
        c.typed::<ByteArrayType>().write_batch(&values, Some(&vec![def; rows.len()]), None)?;
        c.close()?;
    }
    g.close()?;
    w.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png() -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(4, 3, image::Rgb([9, 8, 7])).write_to(&mut buf, image::ImageFormat::Png).unwrap();
        buf.into_inner()
    }

    #[test]
    fn rows_round_trip_with_embedded_bytes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("data")).unwrap();
        let path = d.path().join("data/test-00000-of-00001.parquet");
        let rows = vec![
            ParquetRow {
                image_id: "17".into(),
                image: png(),
                objects: r#"[{"id": "person.1", "bbox": [0, 0, 2, 2]}, {"id": "cup.2", "bbox": [1, 1, 3, 3]}]"#.into(),
                relationships: r#"[{"subject": "person.1", "predicate": "holding", "object": "cup.2"}]"#.into(),
            },
            ParquetRow { image_id: "18".into(), image: png(), objects: "[{".into(), relationships: "[]".into() },
        ];
        write_rows(&path, &rows).unwrap();
        assert_eq!(split_files(d.path(), Split::Test), vec![path.clone()]);
        assert!(split_files(d.path(), Split::Train).is_empty());
        let (recs, skipped) = read_dir(d.path()).unwrap().unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!((recs[0].image_id.as_str(), recs[0].split), ("17", Split::Test));
        assert_eq!(recs[0].image, ImageSource::Bytes(png()));
        assert_eq!(recs[0].graph.relations[0].pred, "holding");
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0]
            .to_string()
            .contains("test-00000-of-00001.parquet: row 1`: `objects` (a string holding JSON)"));
    }

    #[test]
    fn a_file_that_is_not_parquet_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("train.parquet"), b"not parquet").unwrap();
        let e = read_dir(d.path()).unwrap().unwrap_err().to_string();
        assert!(e.contains("train.parquet: not a Parquet file"), "{e}");
    }
}
