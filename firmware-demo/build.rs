//! Puts a weights blob into OUT_DIR for `include_bytes!`: the file named by
//! `SPACER_FIRMWARE_BLOB` if set (a trained policy), else the deterministic
//! initialisation (seed 1, kinematic-grid vocabulary of 200 tokens). Also places
//! memory.x where the linker finds it.

use std::path::PathBuf;

use spacer_core::policy::{PolicyDims, init_params, param_count};
use spacer_core::tokenizer::Vocabulary;
use spacer_core::weights::{Blob, BlobHeader, blob_len, write_blob};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-env-changed=SPACER_FIRMWARE_BLOB");
    println!("cargo:rerun-if-changed=memory.x");
    std::fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());

    let (bytes, source) = match std::env::var_os("SPACER_FIRMWARE_BLOB") {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Err(e) = Blob::parse(&bytes) {
                panic!("{}: not a usable weights blob: {e}", path.display());
            }
            (bytes, path.display().to_string())
        }
        None => (
            initial_blob(),
            "deterministic initialisation (seed 1)".to_string(),
        ),
    };
    std::fs::write(out.join("policy.spw"), &bytes).expect("write blob");
    std::fs::write(out.join("policy_source.txt"), source).expect("write blob source");
}

fn initial_blob() -> Vec<u8> {
    let dims = PolicyDims::default();
    let header = BlobHeader::new(dims, 50.0, 0);
    let mut params = vec![0.0f32; param_count(dims.actions())];
    init_params(&dims, 1, &mut params).expect("default dims");
    let vocab = Vocabulary::kinematic_grid(dims.actions()).expect("vocabulary");
    let mut bytes = vec![0u8; blob_len(&header)];
    write_blob(&header, &vocab, &params, &mut bytes).expect("blob");
    bytes
}
