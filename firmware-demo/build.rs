//! Puts a weights blob into OUT_DIR for `include_bytes!`: the file named by
//! `SPACER_FIRMWARE_BLOB` if set (a trained policy, f32 or int8), else the
//! deterministic initialisation (seed 1, kinematic-grid vocabulary of 200 tokens, f32).
//! Places the memory map of the machine `SPACER_FIRMWARE_MACHINE` names (mps2-an386 by
//! default, or netduinoplus2) where the linker finds it, as `memory.x`.

use std::path::PathBuf;

use spacer_core::policy::{PolicyDims, init_params, param_count};
use spacer_core::tokenizer::Vocabulary;
use spacer_core::weights::{Blob, BlobHeader, blob_len, write_blob};

const MACHINES: [&str; 2] = ["mps2-an386", "netduinoplus2"];

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-env-changed=SPACER_FIRMWARE_BLOB");
    println!("cargo:rerun-if-env-changed=SPACER_FIRMWARE_MACHINE");
    let machine =
        std::env::var("SPACER_FIRMWARE_MACHINE").unwrap_or_else(|_| MACHINES[0].to_string());
    if !MACHINES.contains(&machine.as_str()) {
        panic!("SPACER_FIRMWARE_MACHINE={machine}: one of {MACHINES:?}");
    }
    let map = format!("memory/{machine}.x");
    println!("cargo:rerun-if-changed={map}");
    std::fs::copy(&map, out.join("memory.x")).expect("copy the memory map");
    std::fs::write(out.join("machine.txt"), &machine).expect("write the machine name");
    println!("cargo:rustc-link-search={}", out.display());

    let (bytes, source) = match std::env::var_os("SPACER_FIRMWARE_BLOB") {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // Parsed and its model built here (aligned copy), so a bad blob fails the
            // build rather than the board.
            let mut words = vec![0u32; bytes.len().div_ceil(4)];
            for (w, c) in words.iter_mut().zip(bytes.chunks(4)) {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                *w = u32::from_le_bytes(b);
            }
            let aligned: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            if let Err(e) = Blob::parse(&aligned[..bytes.len()]).and_then(|b| b.model().map(|_| ()))
            {
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
