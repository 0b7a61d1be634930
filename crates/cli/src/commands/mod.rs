//! One module per subcommand family.

mod data;
mod demo;
mod eval;
mod eval_report;
mod input;
mod model;
mod render;
mod reward;
mod toon;
mod train;

pub(crate) use eval::EvalArgs;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Train(cmd) => train::run(cmd),
        Command::Toon(cmd) => toon::run(cmd),
        Command::Reward(args) => reward::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Model(cmd) => model::run(cmd),
    }
}
