//! The OCI image `make oci` writes (packaging/oci_image.py), checked the way
//! Istio's image fetcher and registries read it: index -> manifest -> config
//! and layer, every digest and size matching its blob, exactly one
//! tar+gzip layer holding `plugin.wasm` byte-identical to the module.
//!
//! The script runs into a temporary directory, so these tests do not depend
//! on `make oci` having run.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A directory under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("vigil-oci-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs packaging/oci_image.py; returns (exit success, stdout, stderr).
fn run_packager(wasm: &Path, out: &Path, tag: &str) -> (bool, String, String) {
    let output = Command::new("python3")
        .arg(repo_root().join("packaging/oci_image.py"))
        .arg("--wasm")
        .arg(wasm)
        .arg("--out")
        .arg(out)
        .arg("--tag")
        .arg(tag)
        .output()
        .expect("python3 runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn package(wasm: &Path, out: &Path, tag: &str) -> String {
    let (ok, stdout, stderr) = run_packager(wasm, out, tag);
    assert!(ok, "oci_image.py failed: {stderr}");
    stdout
}

fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The blob a descriptor points at, after checking its size and digest.
fn blob(layout: &Path, desc: &Value) -> Vec<u8> {
    let digest = desc["digest"].as_str().expect("descriptor digest");
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    assert_eq!(hex.len(), 64, "digest {digest}");
    let data = std::fs::read(layout.join("blobs/sha256").join(hex))
        .unwrap_or_else(|e| panic!("blob {digest}: {e}"));
    assert_eq!(
        desc["size"].as_u64(),
        Some(data.len() as u64),
        "size of {digest}"
    );
    assert_eq!(sha256_digest(&data), digest, "content of blob {digest}");
    data
}

/// Everything a consumer of the layout relies on; returns the manifest digest.
fn check_layout(layout: &Path, wasm: &[u8], tag: &str) -> String {
    assert_eq!(
        read_json(&layout.join("oci-layout")),
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );

    let index = read_json(&layout.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], INDEX_MEDIA_TYPE);
    let manifests = index["manifests"].as_array().expect("index manifests");
    assert_eq!(manifests.len(), 1, "one image in the layout");
    let manifest_desc = &manifests[0];
    assert_eq!(manifest_desc["mediaType"], MANIFEST_MEDIA_TYPE);
    assert_eq!(
        manifest_desc["annotations"]["org.opencontainers.image.ref.name"], tag,
        "the tag oras/skopeo address the image by"
    );

    let manifest: Value = serde_json::from_slice(&blob(layout, manifest_desc)).expect("manifest");
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
    assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);
    let layers = manifest["layers"].as_array().expect("manifest layers");
    assert_eq!(layers.len(), 1, "Istio accepts exactly one layer");
    assert_eq!(layers[0]["mediaType"], LAYER_MEDIA_TYPE);

    let layer = blob(layout, &layers[0]);
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&layer[..])
        .read_to_end(&mut tar_bytes)
        .expect("layer is gzip");

    let config: Value = serde_json::from_slice(&blob(layout, &manifest["config"])).expect("config");
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([sha256_digest(&tar_bytes)]),
        "diff_ids name the uncompressed layer"
    );

    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut files = Vec::new();
    for entry in archive.entries().expect("layer is a tar") {
        let mut entry = entry.expect("tar entry");
        let name = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .into_owned();
        assert!(
            entry.header().entry_type().is_file(),
            "{name} is a regular file"
        );
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("entry content");
        files.push((name, content));
    }
    assert_eq!(files.len(), 1, "the layer holds plugin.wasm only");
    assert_eq!(files[0].0, "plugin.wasm");
    assert!(
        files[0].1 == wasm,
        "plugin.wasm differs from the packaged module"
    );

    let referenced: BTreeSet<String> = [manifest_desc, &manifest["config"], &layers[0]]
        .iter()
        .map(|d| {
            d["digest"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("sha256:")
                .to_owned()
        })
        .collect();
    let stored: BTreeSet<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .expect("blobs dir")
        .map(|e| {
            e.expect("blob entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(stored, referenced, "no stray blobs");

    manifest_desc["digest"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A small valid-looking module: the magic and version, then filler.
fn synthetic_module() -> Vec<u8> {
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend((0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    wasm
}

#[test]
fn packaged_module_forms_a_valid_single_layer_image() {
    let scratch = Scratch::new("synthetic");
    let wasm = synthetic_module();
    let wasm_path = scratch.0.join("vigil.wasm");
    std::fs::write(&wasm_path, &wasm).expect("write module");

    let stdout = package(&wasm_path, &scratch.0.join("oci"), "1.2.3");
    let digest = check_layout(&scratch.0.join("oci"), &wasm, "1.2.3");
    assert!(
        stdout.contains(&digest),
        "the printed digest is the manifest's: {stdout}"
    );
}

#[test]
fn the_manifest_digest_is_reproducible() {
    let scratch = Scratch::new("reproducible");
    let wasm_path = scratch.0.join("vigil.wasm");
    std::fs::write(&wasm_path, synthetic_module()).expect("write module");

    package(&wasm_path, &scratch.0.join("a"), "0.1.0");
    package(&wasm_path, &scratch.0.join("b"), "0.1.0");
    let a = std::fs::read(scratch.0.join("a/index.json")).expect("index a");
    let b = std::fs::read(scratch.0.join("b/index.json")).expect("index b");
    assert_eq!(a, b, "same module, same digest");

    // A rebuild over an existing layout leaves no blobs of the old image.
    std::fs::write(&wasm_path, b"\0asm\x01\0\0\0other").expect("write module");
    package(&wasm_path, &scratch.0.join("a"), "0.1.0");
    check_layout(&scratch.0.join("a"), b"\0asm\x01\0\0\0other", "0.1.0");
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let scratch = Scratch::new("not-wasm");
    let path = scratch.0.join("vigil.wasm");
    std::fs::write(&path, b"<html>not a module</html>").expect("write file");
    let (ok, _, stderr) = run_packager(&path, &scratch.0.join("oci"), "0.1.0");
    assert!(!ok);
    assert!(stderr.contains("not a WebAssembly module"), "{stderr}");
    assert!(!scratch.0.join("oci").exists(), "nothing written");
}

#[test]
fn dist_vigil_wasm_packages_byte_identical() {
    let dist_wasm = repo_root().join("dist/vigil.wasm");
    let wasm = std::fs::read(&dist_wasm)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make wasm` first)", dist_wasm.display()));
    let scratch = Scratch::new("dist");
    package(&dist_wasm, &scratch.0.join("oci"), "0.1.0");
    check_layout(&scratch.0.join("oci"), &wasm, "0.1.0");
}

/// The workspace version: the tag `make oci` gives the image.
fn workspace_version() -> String {
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("Cargo.toml");
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("workspace version")
        .to_owned()
}

/// The Istio example cannot pin the digest of an image the reader has not
/// built yet (every change to the filter changes it), so it carries an
/// all-zero placeholder, marked as such next to it, which Istio would refuse
/// rather than load something unverified. If someone pins a real digest, it
/// must be the one `make oci` gives for the current dist/vigil.wasm. Either
/// way it is quoted: Kubernetes reads manifests as YAML 1.1, where an
/// unquoted all-digit value (the placeholder) is a number, and the CRD
/// refuses a number in `sha256` (tests/istio parses the way Kubernetes does).
#[test]
fn istio_example_sha256_is_the_marked_placeholder_or_this_builds_digest() {
    const PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    let path = repo_root().join("examples/istio/wasmplugin.yaml");
    let text = std::fs::read_to_string(&path).expect("wasmplugin.yaml");
    let plugin: Value = serde_yaml_ng::from_str(&text).expect("wasmplugin.yaml is YAML");
    let spec = &plugin["spec"];
    let version = workspace_version();
    assert_eq!(
        spec["url"].as_str(),
        Some(format!("oci://registry.example.com/platform/vigil:{version}").as_str()),
        "the url's tag is the one `make oci` writes"
    );
    let sha = spec["sha256"].as_str().expect("spec.sha256");
    assert!(
        sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "sha256 must be 64 lower-case hex digits without `sha256:`: {sha}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("sha256:"))
        .expect("sha256 line");
    let written = lines[at].trim_start()["sha256:".len()..].trim();
    assert!(
        [format!("\"{sha}\""), format!("'{sha}'")].contains(&written.to_owned()),
        "sha256 must be quoted, or Kubernetes may read it as a number: {}",
        lines[at]
    );
    if sha == PLACEHOLDER {
        // The comment right above says it is a placeholder and how to fill it.
        let comment: String = lines[..at]
            .iter()
            .rev()
            .take_while(|l| l.trim_start().starts_with('#'))
            .copied()
            .collect::<Vec<_>>()
            .join("\n");
        for needed in ["placeholder", "make oci", "Replace"] {
            assert!(comment.contains(needed), "comment above sha256 lacks {needed:?}: {comment}");
        }
    } else {
        let dist_wasm = repo_root().join("dist/vigil.wasm");
        let scratch = Scratch::new("istio-digest");
        let stdout = package(&dist_wasm, &scratch.0.join("oci"), &version);
        assert!(
            stdout.contains(&format!("sha256:{sha}")),
            "wasmplugin.yaml pins {sha}, but this build's image is: {stdout}"
        );
    }
}
