//! One module per subcommand family.

mod backend_args;
pub(crate) mod bench;
mod data;
pub(crate) mod data_thin;
pub(crate) mod data_tokens;
mod demo;
mod eval;
mod eval_report;
pub(crate) mod generate;
mod infer;
mod input;
mod model;
mod progress;
mod render;
mod reward;
mod serve;
mod toon;
mod train;
mod video;

pub(crate) use eval::{EvalArgs, ProtocolArg};
pub(crate) use infer::InferArgs;
pub(crate) use serve::ServeArgs;
pub(crate) use video::VideoArgs;

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
        Command::Infer(args) => infer::run(args),
        Command::Video(args) => video::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Bench(cmd) => bench::run(cmd),
    }
}
