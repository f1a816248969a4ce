//! `sitewatch-sink`: parse arguments, start logging, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // The config file's `sink:` settings, where neither a flag nor the environment gives them.
    let args = match sitewatch_sink::config_file::args_with_file(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(errors) => {
            eprintln!("{errors}");
            return std::process::ExitCode::from(sitewatch_sink::app::EXIT_CONFIG);
        }
    };
    let cli = sitewatch_sink::cli::Cli::parse_from(args);
    sitewatch_checks::ops::init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sitewatch-sink: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(sitewatch_sink::app::main(cli))
}
