//! One module per subcommand family.

mod demo;
mod input;
mod model;
mod render;
mod toon;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo => demo::run(),
        Command::Toon(cmd) => toon::run(cmd),
        Command::Model(cmd) => model::run(cmd),
    }
}
