//! Compiles every `proto/*.proto` with protox (pure Rust), so no system
//! `protoc` is needed. Each file is its own package (`dsys.<name>.v1`); a new
//! algorithm adds its file to `proto/` and this script picks it up.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut files: Vec<String> = std::fs::read_dir("proto")?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let fds = protox::compile(&files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // `bytes` fields are `bytes::Bytes`: messages travel through the
        // transport without being copied.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
