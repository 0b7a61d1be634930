//! A small `multipart/form-data` reader for `/v1/scene-graph` uploads (`curl -F image=@frame.png`), written by
//! hand: the server needs only named fields with their bytes, and a full multipart crate would bring an async
//! stack with it.

/// One form field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub data: Vec<u8>,
}

/// The boundary of a `multipart/form-data; boundary=…` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("boundary")).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// The fields of a form body.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Field>, String> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut pos = find(body, delim, 0).ok_or("multipart body without its boundary")? + delim.len();
    let mut fields = Vec::new();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Ok(fields);
        }
        let head_start = pos + 2; // past the CRLF after the delimiter
        let head_end =
            find(body, b"\r\n\r\n", head_start).ok_or("multipart part without a blank line after its headers")?;
        let headers = String::from_utf8_lossy(&body[head_start.min(head_end)..head_end]);
        let data_start = head_end + 4;
        let next = find(body, delim, data_start).ok_or("multipart body without its closing boundary")?;
        let data_end = next.saturating_sub(2).max(data_start); // the CRLF before the delimiter
        let name = headers
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .find_map(|l| {
                l.split(';').find_map(|p| p.trim().strip_prefix("name=").map(|v| v.trim_matches('"').to_string()))
            })
            .ok_or("multipart part without a name")?;
        fields.push(Field { name, data: body[data_start..data_end].to_vec() });
        pos = next + delim.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_named_fields() {
        assert_eq!(boundary("multipart/form-data; boundary=\"xyz\"").as_deref(), Some("xyz"));
        assert_eq!(boundary("application/json"), None);
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--xyz\r\nContent-Disposition: form-data; name=\"dataset\"\r\n\r\nag\r\n--xyz--\r\n";
        let fields = parse(body, "xyz").unwrap();
        assert_eq!(
            fields,
            vec![
                Field { name: "image".into(), data: b"\x89PNG".to_vec() },
                Field { name: "dataset".into(), data: b"ag".to_vec() }
            ]
        );
        assert!(parse(b"--xyz\r\nno headers end", "xyz").is_err());
    }
}
