//! One module per subcommand family.

pub(crate) mod bench;
mod data;
pub(crate) mod data_thin;
pub(crate) mod data_tokens;
mod demo;
mod eval;
mod eval_report;
pub(crate) mod generate;
mod input;
mod model;
mod render;
mod reward;
mod toon;
mod train;

pub(crate) use eval::{EvalArgs, ProtocolArg};

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
        Command::Generate(args) => generate::run(args),
        Command::Bench(cmd) => bench::run(cmd),
    }
}
