//! One module per subcommand family.

mod data;
mod demo;
mod input;
mod render;
mod reward;
mod toon;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo => demo::run(),
        Command::Toon(cmd) => toon::run(cmd),
        Command::Reward(args) => reward::run(args),
        Command::Data(cmd) => data::run(cmd),
    }
}
