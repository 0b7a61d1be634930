//! Command-line arguments (clap derive); doc comments become `--help`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// sgvlm — scene graphs from images and video with a small vision-language model.
///
/// Start with `sgvlm demo`. Every command prints data on stdout and messages on stderr.
#[derive(Debug, Parser)]
#[command(name = "sgvlm", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The end-to-end proof on synthetic data: render scenes, train a tiny Qwen3.5-architecture model from random
    /// weights with SFT then GRPO, and evaluate random init, SFT and SFT+GRPO on held-out scenes.
    ///
    /// SFT first trains on the answers' heads (object count and first name: 20 % of its time at half the learning
    /// rate, which opens the model's image path), then on the full answers with the object count and names weighted
    /// ×4 in the loss for the first half of that phase; after each phase it reports how much the model uses the
    /// image (validation loss with the scenes' own images against other scenes' images). Writes OUT/results.json,
    /// OUT/results.md (the table),
    /// OUT/report/<stage>/ (evaluation reports with rendered examples, and predictions.jsonl: every test scene's
    /// answer and prediction with the strict gate's verdict, rows `sgvlm eval --input` reads) and the training metrics
    /// (OUT/sft_head/metrics.jsonl, OUT/sft/metrics.jsonl, OUT/grpo/metrics.jsonl). The results JSON also
    /// goes to stdout. `--examples` instead validates and pretty-prints the bundled model outputs (no training).
    Demo(DemoArgs),
    /// Train a model from a run config: `train sft --config FILE.toml`, `train grpo --config FILE.toml`.
    ///
    /// Data are MS-SWIFT JSON lines as `sgvlm data prepare` writes them; the model is a Hugging Face directory.
    /// Shipped configs for the paper's recipes and the synthetic demo are under `configs/`.
    #[command(subcommand)]
    Train(TrainCommand),
    /// Validate, inspect and convert scene-graph texts (TOON and JSON).
    #[command(subcommand)]
    Toon(ToonCommand),
    /// Score a predictions file: strict PSG/PVSG metrics or Action Genome SGDET R@K/P@K/F1@K (summary JSON on
    /// stdout).
    Eval(crate::commands::EvalArgs),
    /// Score completions with the 13 GRPO reward functions (8 weighted rewards, 5 diagnostics).
    ///
    /// Reads JSON lines `{"completion": …, "solution": …}` (a completion may also be a message list, whose first
    /// message's `content` is used) and writes one JSON object per input line, in order, with the 13 values keyed
    /// by their reference names. Settings: `--config FILE.toml` and the reference's environment variables
    /// (`IMG_W`, `EDGE_IOU_THRESH`, …), the environment winning.
    Reward(RewardArgs),
    /// Build datasets: synthetic scenes, and PSG/PVSG/Action Genome → MS-SWIFT training and test files.
    #[command(subcommand)]
    Data(DataCommand),
    /// Create model directories (Qwen3.5 checkpoints with random weights).
    #[command(subcommand)]
    Model(ModelCommand),
    /// Run a model over an MS-SWIFT test file (each row's own prompt) and write reference prediction rows
    /// (`predict`, `gen_time_sec`) that `sgvlm eval` scores. Resumable: rerun to finish an interrupted file.
    Infer(crate::commands::InferArgs),
    /// Run a model over video frames in the reference's GEN-prompt waves: frame k of every video per wave, each
    /// later prompt carrying the previous frame's predicted (or GT, or no) graph.
    Video(crate::commands::VideoArgs),
    /// Serve a model over HTTP: OpenAI-compatible /v1/chat/completions, /v1/scene-graph and /health, batching
    /// concurrent requests.
    Serve(crate::commands::ServeArgs),
    /// Generate the scene graph of one image with the native engine (prints the answer text, or JSON).
    Generate(crate::commands::generate::GenerateArgs),
    /// Measure speed (`bench generate`: the generation engine on random images).
    #[command(subcommand)]
    Bench(crate::commands::bench::BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Render synthetic scenes and write them as PSG rows (OUT/psg), PVSG (OUT/pvsg) and Action Genome (OUT/ag).
    Synth {
        /// Output folder.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Number of still images (PSG).
        #[arg(long, default_value_t = 100)]
        images: usize,
        /// Number of videos (each of PVSG and AG).
        #[arg(long, default_value_t = 10)]
        videos: usize,
        /// Frames per video.
        #[arg(long, default_value_t = 8)]
        frames: usize,
        /// Random seed (the output is a function of the seed and the counts).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Read a dataset, resize its images to 640×480, clean its graphs and write SFT and GRPO JSON lines.
    ///
    /// Resumable: re-running after an interruption reuses finished units. Prints a Table-2-like summary on
    /// stderr and the same as JSON on stdout.
    Prepare {
        /// Which dataset ROOT holds.
        #[arg(long, value_enum)]
        dataset: DatasetArg,
        /// The dataset folder (as downloaded, or as `sgvlm data synth` writes it).
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
        /// Output folder.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Thin PVSG frames (BaseAnnot, MaxInfo or PSFR) and print retention and vocabulary coverage (paper Table 4).
    ///
    /// ROOT holds the dense per-frame files `{train,test}_annotations_toon_sft.json` or is the output folder of
    /// `sgvlm data prepare --dataset pvsg`.
    Thin(crate::commands::data_thin::ThinArgs),
    /// Token lengths of each answer as JSON and as TOON, with the real tokenizer (paper Table 3).
    Tokens(crate::commands::data_tokens::TokensArgs),
}

/// The three datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatasetArg {
    Psg,
    Pvsg,
    Ag,
}

#[derive(Debug, Args)]
pub struct RewardArgs {
    /// Schema of the completions and solutions.
    #[arg(long, value_enum, default_value_t = SchemaArg::Triplet)]
    pub schema: SchemaArg,
    /// JSON-lines input (`-` = stdin).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Where to write the JSON-lines output (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A TOML file of reward settings (keys as the environment variables, lower case: `edge_iou_thresh = 0.5`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write the total training reward (sum of the 8 weighted rewards) as `total`.
    #[arg(long)]
    pub total: bool,
    /// `paper` (default) gives the reference plugin's values; `sound` scores an invalid completion below every
    /// valid one, leaves unmatchable GT relations out of recall, and scores the answer the gate validated. Overrides
    /// `REWARD_PROTOCOL` from the environment or the TOML file.
    #[arg(long, value_enum)]
    pub protocol: Option<crate::commands::ProtocolArg>,
}

/// The two TOON schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaArg {
    /// PSG / PVSG: `obj[N]{…}:` then `rel[M]{subj,pred,obj}:`.
    Triplet,
    /// Action Genome: `obj[N]{…}:` then `rel_pairs[M]{subj,attention,spatial,contacting,obj}:`.
    Ag,
}

impl From<SchemaArg> for sgvlm_graph::Schema {
    fn from(s: SchemaArg) -> Self {
        match s {
            SchemaArg::Triplet => sgvlm_graph::Schema::Triplet,
            SchemaArg::Ag => sgvlm_graph::Schema::Ag,
        }
    }
}

/// Canvas and limit settings of the strict gate (defaults: the reference's).
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// Image width boxes must fit in.
    #[arg(long, default_value_t = 640, env = "IMG_W")]
    pub width: u32,
    /// Image height boxes must fit in.
    #[arg(long, default_value_t = 480, env = "IMG_H")]
    pub height: u32,
    /// Maximum number of objects.
    #[arg(long, default_value_t = 200, env = "MAX_OBJS")]
    pub max_objects: usize,
    /// Maximum number of (atomic) relations.
    #[arg(long, default_value_t = 400, env = "MAX_RELS")]
    pub max_relations: usize,
}

impl GateArgs {
    pub fn config(&self) -> sgvlm_graph::StrictConfig {
        sgvlm_graph::StrictConfig {
            canvas: sgvlm_graph::Canvas::new(self.width, self.height),
            max_objects: self.max_objects,
            max_relations: self.max_relations,
            ..Default::default()
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ToonCommand {
    /// Check model outputs against the strict validity gate (the GRPO format reward).
    ///
    /// With a FILE (or `-` for stdin) holding one output: prints `ok` with counts, or the error with its line;
    /// exits 1 when invalid. With `--jsonl`: reads JSON lines and prints one `{"valid", "error"}` object per
    /// input line, in order.
    Validate(ValidateArgs),
    /// Print a scene graph as a readable table (or as JSON with `--json`).
    Show(ShowArgs),
    /// Convert a scene graph between TOON (paper layout or spec-conformant) and R1-SGG JSON.
    Convert(ConvertArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The output to check (`-` = stdin).
    #[arg(value_name = "FILE", default_value = "-", conflicts_with = "jsonl")]
    pub file: PathBuf,
    /// Schema of the outputs.
    #[arg(long, value_enum, default_value_t = SchemaArg::Triplet)]
    pub schema: SchemaArg,
    /// Read JSON lines from this file (`-` = stdin) instead of one raw output.
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// The field of each JSON line that holds the output.
    #[arg(long, default_value = "completion", requires = "jsonl")]
    pub field: String,
    #[command(flatten)]
    pub gate: GateArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The output to show (`-` = stdin).
    #[arg(value_name = "FILE", default_value = "-")]
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = SchemaArg::Triplet)]
    pub schema: SchemaArg,
    /// Print the parsed graph as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub gate: GateArgs,
}

/// Target formats of `toon convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// R1-SGG JSON: `{"objects":[{"id":"name.k","bbox":[…]}],"relationships":[…]}` (triplet schema).
    Json,
    /// TOON in the paper's training layout (`<answer>` tags; AG indented 6/8).
    Toon,
    /// TOON as the prompts embed previous graphs: rows indented 2, no tags.
    ToonRaw,
    /// Spec-conformant TOON v4 (decodes with any conformant TOON decoder).
    ToonSpec,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The input (`-` = stdin): a TOON output (must pass the strict gate) or R1-SGG JSON (starts with `{`).
    #[arg(value_name = "FILE", default_value = "-")]
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    pub to: Format,
    #[arg(long, value_enum, default_value_t = SchemaArg::Triplet)]
    pub schema: SchemaArg,
    #[command(flatten)]
    pub gate: GateArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Wall-clock budget for the whole run in minutes (training gets most of it; evaluation the rest).
    #[arg(long, default_value_t = 3.0)]
    pub minutes: f64,
    /// `cpu`, or `cuda` (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "sgvlm-demo")]
    pub out: PathBuf,
    /// Training scenes.
    #[arg(long, default_value_t = 2000)]
    pub train: usize,
    /// Held-out test scenes.
    #[arg(long, default_value_t = 32)]
    pub test: usize,
    /// Validation scenes, never the test scenes: GRPO tests the checkpoint they choose, once as many fresh scenes
    /// confirm its gain (default: as many as --test; GRPO's large steps choose on at least 512 of each).
    #[arg(long)]
    pub val: Option<usize>,
    /// A larger tiny model (8 layers, hidden 256; for a GPU).
    #[arg(long)]
    pub large: bool,
    /// Share of the time budget for SFT; GRPO gets most of the rest, the evaluation of the stages the remainder.
    #[arg(long, default_value_t = 0.6)]
    pub sft_share: f64,
    /// SFT batch size (default: the recipe's, 16). A GPU step costs about the same at any batch this small.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Model side of the images in pixels, width x height (multiples of 16).
    #[arg(long, default_value = "128x96")]
    pub image_size: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// GRPO rollouts with free decoding instead of the TOON constraint (the evaluation reports both decodings).
    #[arg(long)]
    pub free_rollouts: bool,
    /// SFT threads, each running forward and backward on a shard of every batch (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Skip SFT: start from the `sft` folder an earlier demo wrote (e.g. `sgvlm-demo/sft`), evaluate it and run
    /// GRPO. Use the same --seed, --test and --image-size to evaluate on the same test scenes.
    #[arg(long, value_name = "DIR")]
    pub from_sft: Option<PathBuf>,
    /// GRPO with per-row credit of this weight added to the paper's advantage (ours; default: 1 with large steps,
    /// 0 — the paper's GRPO — with small ones). Each object and relation row's tokens are pushed up when the
    /// rewards count the row right, down when not.
    #[arg(long, value_name = "W")]
    pub grpo_row_credit: Option<f64>,
    /// Caps the log-ratio inside GRPO's KL term (ours; default none, the paper's k3): past it the k3 term grows
    /// linearly, so no single token's KL gradient can outweigh a step.
    #[arg(long, value_name = "D|off")]
    pub grpo_kl_cap: Option<String>,
    /// Leave out of GRPO's loss every constrained rollout token whose step kept less than this share of the
    /// sampling distribution's mass (ours; default 0.01; `off`: every token counts). The grammar, not the model,
    /// chose such a token, and its unconstrained log-probability can fall far below the reference's.
    #[arg(long, value_name = "SHARE|off")]
    pub grpo_forced_below: Option<String>,
    /// Weight of GRPO's grammar term (ours; default 1; 0: none, the paper's loss): at constrained rollout tokens
    /// where the grammar took away a tenth or more of the sampling mass, the loss also raises the log-probability
    /// of the legal token that was drawn, which on average raises the mass the model itself puts on legal tokens
    /// there. Keeps free decoding valid through constrained GRPO.
    #[arg(long, value_name = "W")]
    pub grpo_grammar: Option<String>,
    /// How far fresh confirmation scenes must show a GRPO checkpoint's gain, in paired standard errors, before it
    /// replaces the SFT model (a checkpoint chosen on the validation scenes is partly chosen for its luck); `off`:
    /// the validation margin alone decides.
    #[arg(long, default_value = "1", value_name = "MARGIN|off")]
    pub grpo_confirm: String,
    /// What each GRPO rollout's reward is compared with: `group_mean` (the paper's) or `greedy` (the policy's greedy
    /// answer to the same prompt; ours).
    #[arg(long, default_value = "group_mean", value_name = "BASELINE")]
    pub grpo_baseline: String,
    /// GRPO's steps: `small` (4 prompts × 8 rollouts at lr 2e-6, validated every 20 steps), `large` (256 prompts × 8
    /// rollouts at lr 1e-4, validated every step; ours) or `auto` (large when the GRPO phase has 10 minutes or more).
    #[arg(long, default_value = "auto", value_name = "auto|small|large")]
    pub grpo_steps: String,
    /// Of each prompt's 8 GRPO rollouts, how many are decoded without the TOON constraint (ours; default 0): those
    /// that fail the strict gate (a relation to an unlisted object, a self-loop) score 0 and are pushed down, which
    /// constrained rollouts never show the model. Ignored with --free-rollouts (all free).
    #[arg(long, value_name = "K")]
    pub grpo_free_rollouts: Option<usize>,
    /// Validate and pretty-print the bundled model outputs instead (no training).
    #[arg(long)]
    pub examples: bool,
}

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Supervised fine-tuning (masked answer cross-entropy, AdamW, warmup + cosine, checkpoints, exact resume).
    Sft(TrainArgs),
    /// GRPO with the paper's eight weighted rewards, KL to the initial model, best checkpoint by validation reward.
    Grpo(TrainArgs),
    /// Time SFT steps on random token batches: JSON with seconds per step, tokens per second and peak memory (compare
    /// with shared/bench/hf_train_baseline.py at the same batch and lengths on the same device). SGVLM_PROFILE=1 adds
    /// `profile`: seconds in the forward pass, loss head, backward pass and optimizer, and per layer kind.
    Bench(BenchArgs),
    /// Time GRPO steps on random text prompts: PROMPTS × GROUP rollouts of exactly NEW_TOKENS tokens through the
    /// trainer's generator, rewards, and the clipped + KL update against a frozen reference; JSON with the rollout
    /// and update seconds per step.
    BenchGrpo(BenchGrpoArgs),
}

#[derive(Debug, Args)]
pub struct BenchGrpoArgs {
    /// A Hugging Face model directory (else `--preset`).
    #[arg(long, value_name = "DIR", conflicts_with = "preset")]
    pub model: Option<PathBuf>,
    /// Random weights of a preset shape: tiny or qwen3.5-0.8b.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Prompts per step (the paper's recipe: 24).
    #[arg(long, default_value_t = 24)]
    pub prompts: usize,
    /// Rollouts per prompt (the paper's recipe: 12).
    #[arg(long, default_value_t = 12)]
    pub group: usize,
    /// Tokens per prompt.
    #[arg(long, default_value_t = 1000)]
    pub prompt_len: usize,
    /// Tokens per rollout (no stop tokens).
    #[arg(long, default_value_t = 256)]
    pub new_tokens: usize,
    /// Completions per backward pass.
    #[arg(long, default_value_t = 8)]
    pub micro_batch: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 1)]
    pub steps: usize,
    /// Untimed steps first (kernel loading and the allocator's first growth stay out of the figures).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// `cpu`, or `cuda` (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Compute dtype of the update's passes and the reference model: f32, or bf16 (f32 master weights).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// What generates the rollouts: `engine` (the native engine, continuous batching and CUDA-graph decode on a
    /// GPU, as `sgvlm train grpo` and `sgvlm demo` generate) or `sampler` (the trainer's op-by-op cached sampler).
    /// The engine needs the model's tokenizer: `--model DIR`'s, the tiny one for `--preset tiny`, or the built
    /// Qwen3.5 tokenizer (`scripts/qwen35_tokenizer.sh`) for `--preset qwen3.5-0.8b`.
    #[arg(long, default_value = "engine", value_parser = ["engine", "sampler"])]
    pub rollout: String,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A Hugging Face model directory (else `--preset`).
    #[arg(long, value_name = "DIR", conflicts_with = "preset")]
    pub model: Option<PathBuf>,
    /// Random weights of a preset shape: tiny or qwen3.5-0.8b.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 1300)]
    pub len: usize,
    /// Of which the last ANSWER tokens carry the loss.
    #[arg(long, default_value_t = 256)]
    pub answer: usize,
    /// Timed steps (after one untimed warm-up step).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// `cpu`, or `cuda` (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Also train the vision tower and merger (frozen by default, as in the recipes).
    #[arg(long)]
    pub train_vision: bool,
    /// Compute dtype of the forward and backward pass: f32, or bf16 (f32 master weights and optimizer).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The run config (TOML; see configs/ and the sgvlm-train `config` module docs).
    #[arg(long, value_name = "FILE.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Write a random-weight Qwen3.5 model directory (config.json, model.safetensors, generation and
    /// preprocessor configs, tokenizer files and chat template) that loads like a downloaded checkpoint.
    Init(InitArgs),
}

/// On-disk weight precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    Bf16,
    F32,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// `tiny`, `tiny-realvocab`, `qwen3.5-0.8b`, or the path of a config.json.
    #[arg(long)]
    pub preset: String,
    /// The directory to write (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the random weights (the same seed gives the same files).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Precision of the written weights.
    #[arg(long, value_enum, default_value_t = DtypeArg::Bf16)]
    pub dtype: DtypeArg,
    /// A tokenizer.json to copy (tiny presets get their bundled one without this).
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
}
