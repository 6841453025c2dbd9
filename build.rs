//! With the `transformer` feature, the binary finds libtorch where it was
//! built from (`LIBTORCH`, set up by models/fetch.sh): an rpath, so no
//! LD_LIBRARY_PATH and no Python at run time.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var_os("CARGO_FEATURE_TRANSFORMER").is_some() {
        if let Some(dir) = std::env::var_os("LIBTORCH") {
            let lib = std::path::Path::new(&dir).join("lib");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        }
    }
}
