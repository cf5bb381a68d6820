//! Sets `cfg(spacer_dsp)` on ARMv7E-M targets (Cortex-M4/M7: `thumbv7em-*`), whose
//! DSP extension (`SMLAD`, `SXTB16`, `SMMULR`) the int8 kernels use. Stable Rust has no
//! `cfg(target_feature = "dsp")` for ARM, so the target name decides.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(spacer_dsp)");
    println!("cargo::rerun-if-env-changed=TARGET");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") {
        println!("cargo::rustc-cfg=spacer_dsp");
    }
}
