#![forbid(unsafe_code)]
//! `dsys`: parses the command line and hands it to the algorithm it names.
//! The commands themselves come from the registry (`dsys::registry`).

use std::process::ExitCode;

fn main() -> ExitCode {
    dsys::cli::init_logging();
    let algorithms = dsys::registry::ALGORITHMS;
    let matches = dsys::registry::command(algorithms)
        .try_get_matches()
        .unwrap_or_else(|e| dsys::registry::exit_on_parse_error(e));
    match dsys::registry::dispatch(algorithms, &matches) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("dsys: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
