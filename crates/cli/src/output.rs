//! Writing to stdout: buffered, and a closed pipe (`sgvlm … | head`) ends the program quietly.

use std::io::{self, BufWriter, Stdout, Write};

/// Buffered stdout.
pub struct Out {
    w: BufWriter<Stdout>,
}

impl Out {
    pub fn new() -> Self {
        Out { w: BufWriter::new(io::stdout()) }
    }

    pub fn line(&mut self, s: &str) -> io::Result<()> {
        self.w.write_all(s.as_bytes())?;
        self.w.write_all(b"\n")
    }

    pub fn raw(&mut self, s: &str) -> io::Result<()> {
        self.w.write_all(s.as_bytes())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// Prints `value` as one JSON line on stdout (a command's machine-readable summary) and flushes.
pub fn print_json_line(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = Out::new();
    out.line(&serde_json::to_string(value)?)?;
    out.flush()?;
    Ok(())
}

/// Whether an error chain bottoms out in a broken pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}
