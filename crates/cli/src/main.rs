//! The `sgvlm` command-line tool: one subcommand family per crate (`toon` for the graph layer today).
//!
//! Data goes to stdout (JSON where a program will read it), messages and errors to stderr. Exit status: 0 on
//! success, 1 when the input was read but found invalid, 2 on usage or I/O errors.

mod cli;
mod commands;
mod output;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    sgvlm_model::ops::init_cpu_threads();
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if output::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
