//! `sitewatch-sink`: parse arguments, start logging, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = sitewatch_sink::cli::Cli::parse();
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
