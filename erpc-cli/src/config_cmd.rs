//! `erpc config print` (the configuration a command would run with, and where each value came
//! from) and `erpc config check FILE` (a file on its own: every key known, every value valid).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use erpc::PeerConfig;
use erpc::config::{ConfigError, ConfigLoader, Explained, Network, Origin};

use crate::CliError;
use crate::peer_args::{PeerArgs, network_name, parse_network};

/// Flags of `erpc config`.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print the effective peer configuration (defaults, then --config FILE, then ERPC_*
    /// environment variables, then flags) and where each value came from.
    Print(PrintArgs),
    /// Check a configuration file on its own: every key known, every value valid. Exits
    /// non-zero, naming each bad key and its line, if not.
    Check(CheckArgs),
}

/// The commands whose own defaults `--for` starts from.
const COMMANDS: [&str; 6] = ["serve", "call", "push", "watch", "bench", "demo"];

#[derive(Args, Debug)]
struct PrintArgs {
    /// Start from this command's defaults (serve, call, push, watch, bench or demo) rather
    /// than the library's.
    #[arg(long = "for", value_name = "COMMAND", value_parser = COMMANDS)]
    command: Option<String>,
    /// As the commands' --network.
    #[arg(long, value_parser = parse_network)]
    network: Option<Network>,
    #[command(flatten)]
    peer: PeerArgs,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// The file: .toml, .yaml, .yml, .json or .ini.
    file: PathBuf,
    /// Check this top-level section of the file (Go's files have one per struct, e.g. cfg_srv).
    #[arg(long, visible_alias = "config-section", value_name = "NAME")]
    section: Option<String>,
}

/// Runs `erpc config …`.
pub fn run(args: ConfigArgs) -> Result<(), CliError> {
    match args.command {
        ConfigCommand::Print(args) => print(args),
        ConfigCommand::Check(args) => check(args),
    }
}

fn print(args: PrintArgs) -> Result<(), CliError> {
    let (program, defaults) = match args.command.as_deref() {
        Some("serve") => ("erpc serve", crate::serve::defaults()),
        Some(command @ ("call" | "push" | "watch")) => (
            match command {
                "call" => "erpc call",
                "push" => "erpc push",
                _ => "erpc watch",
            },
            crate::client::defaults(),
        ),
        Some("demo") => ("erpc demo", crate::demo::defaults()),
        Some(_) => ("erpc bench", PeerConfig::default()),
        None => ("erpc", PeerConfig::default()),
    };
    let mut loader = args.peer.loader(program, &defaults)?;
    if let Some(network) = args.network {
        loader = loader.set("network", network_name(network), "--network");
    }
    let explained = loader.explain().map_err(|e| CliError::Usage(e.to_string()))?;
    print!("{}", render(&explained));
    Ok(())
}

/// The configuration as TOML (a file that sets it all), each line ending with its origin.
fn render(explained: &Explained) -> String {
    let values = match toml::Table::try_from(&explained.config) {
        Ok(table) => table,
        Err(e) => return format!("# cannot show the configuration as TOML: {e}\n"),
    };
    let lines: Vec<(String, &Origin)> = explained
        .origins
        .iter()
        .map(|(key, origin)| {
            let assignment = match values.get(*key) {
                Some(value) => format!("{key} = {value}"),
                None => format!("# {key} = (not set)"),
            };
            (assignment, origin)
        })
        .collect();
    let width = lines.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
    let mut out = String::from(
        "# The effective configuration; each value from the last of: default, the command's default, the file, ERPC_* variables, flags.\n",
    );
    for (assignment, origin) in lines {
        out.push_str(&format!("{assignment:<width$}  # {origin}\n"));
    }
    out
}

fn check(args: CheckArgs) -> Result<(), CliError> {
    let name = args.file.display().to_string();
    let loader = match &args.section {
        Some(section) => ConfigLoader::new().file_section(&args.file, section),
        None => ConfigLoader::new().file(&args.file),
    };
    match loader.and_then(|loader| loader.explain()) {
        Ok(explained) => {
            let set = explained
                .origins
                .iter()
                .filter(|(_, origin)| matches!(origin, Origin::File { .. }))
                .count();
            println!("{name}: ok ({set} of {} keys set)", PeerConfig::KEYS.len());
            Ok(())
        }
        Err(ConfigError::Fields(problems)) => {
            for problem in &problems {
                eprintln!("error: {problem}");
            }
            Err(CliError::Failed(format!(
                "{name} is not a valid peer configuration ({} problem{})",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            )))
        }
        Err(e) => Err(CliError::Failed(e.to_string())),
    }
}
