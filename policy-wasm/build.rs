//! Link flags of the OPA build: the memory is imported from the host (`env.memory`) and exported back, and the
//! stack is kept small so the module's minimum memory fits the 5 pages OPA hosts give by default.

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch == "wasm32" && std::env::var_os("CARGO_FEATURE_OPA_ABI").is_some() {
        println!("cargo:rustc-cdylib-link-arg=--import-memory");
        println!("cargo:rustc-cdylib-link-arg=--export-memory");
        println!("cargo:rustc-cdylib-link-arg=-zstack-size=196608");
    }
}
