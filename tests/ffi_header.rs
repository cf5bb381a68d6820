//! The committed C header `spacer-core/include/spacer.h` is what cbindgen makes of
//! `spacer-core/src/ffi.rs` today. Regenerate with
//! `SPACER_UPDATE_HEADER=1 cargo test --test ffi_header`.

use std::path::Path;

#[test]
fn header_is_current() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("spacer-core");
    let config = cbindgen::Config::from_file(core.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(core.join("src/ffi.rs"))
        .generate()
        .expect("cbindgen parses ffi.rs");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let fresh = String::from_utf8(fresh).expect("utf-8 header");
    let path = core.join("include/spacer.h");
    if std::env::var_os("SPACER_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &fresh).expect("write header");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: run `SPACER_UPDATE_HEADER=1 cargo test --test ffi_header` and commit it",
        path.display()
    );
    for f in [
        "spacer_policy_load",
        "spacer_policy_act",
        "spacer_apply_token",
        "SPACER_STATUS_OK",
    ] {
        assert!(fresh.contains(f), "header lacks {f}");
    }
}
