#![forbid(unsafe_code)]
//! `dsys`: parses the command line and hands it to the algorithm it names.
//! The algorithms it knows are the list below; each is its own folder,
//! implementing `dsys::tool::Algorithm`.

use std::process::ExitCode;

use dsys::tool::Algorithm;

/// Every algorithm, in the order `dsys --help` lists them.
pub static ALGORITHMS: &[&dyn Algorithm] = &[
    &dsys::tokenring::TokenRingAlgorithm,
    &dsys::mutex::MutexAlgorithm,
    &dsys::gossip::GossipAlgorithm,
    &dsys::multicast::MulticastAlgorithm,
    &dsys::clocks::ClocksAlgorithm,
    &dsys::chat::ChatAlgorithm,
    &dsys::share::ShareAlgorithm,
];

fn main() -> ExitCode {
    dsys::cli::init_logging();
    let algorithms = ALGORITHMS;
    let matches = dsys::registry::command(algorithms)
        .try_get_matches()
        .unwrap_or_else(|e| dsys::registry::exit_on_parse_error(e));
    match dsys::registry::dispatch(algorithms, &matches) {
        Ok(ended) => ExitCode::from(ended.exit_code()),
        Err(e) => {
            eprintln!("dsys: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
