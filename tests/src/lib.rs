//! Helpers shared by the black-box tests: they load the release
//! `dist/vigil.wasm` into host-sim and drive it like Envoy would.

pub mod fixture;
pub mod idp;
pub mod nginx;
pub mod oidc;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// The scripted IdPs' state, even if a test thread panicked holding it (the
/// panic is what the test reports; the state is still worth reading).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Workspace root (the tests crate lives one level below it).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// The filter under test, as `make wasm` builds it. A module older than the
/// filter's sources would test yesterday's filter: refused, with the command
/// that fixes it (a bare `cargo test` after editing the filter otherwise passes
/// or fails for the wrong code).
pub fn vigil_wasm() -> PathBuf {
    let path = workspace_root().join("dist/vigil.wasm");
    assert!(path.exists(), "{} is missing: run `make wasm` first (make test does)", path.display());
    if let Some(newer) = newer_filter_source(&workspace_root(), &path) {
        panic!(
            "{} is older than {}: run `make wasm` (make test does) so the tests run the current filter",
            path.display(),
            newer.display()
        );
    }
    path
}

/// A filter source (or the lock file) modified after `module` was built.
fn newer_filter_source(root: &std::path::Path, module: &std::path::Path) -> Option<PathBuf> {
    let built = std::fs::metadata(module).and_then(|m| m.modified()).ok()?;
    let mut pending = vec![root.join("filter/src")];
    let mut files = vec![root.join("filter/Cargo.toml"), root.join("Cargo.lock")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.into_iter().find(|file| {
        std::fs::metadata(file)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified > built)
    })
}

pub const ISSUER: &str = "https://vigil.test";
pub const AUDIENCE: &str = "app.test";
/// HS256 secret for downstream tokens in tests (32+ bytes).
pub const HS_SECRET: &[u8] = b"an-hs256-test-secret-of-32-bytes-or-more!";
pub const IDP_CLUSTER: &str = "idp";

/// A complete, valid plugin configuration; tests override keys with `merge`.
pub fn base_config() -> Value {
    json!({
        "revalidate_interval": "60s",
        "revalidate_timeout": "10s",
        "on_failure": "allow",
        "idp": {
            "upstream": IDP_CLUSTER,
            "authority": "idp.test",
            "token_endpoint": format!("https://idp.test{}", idp::TOKEN_PATH),
            "userinfo_endpoint": format!("https://idp.test{}", idp::USERINFO_PATH),
            "client_id": idp::CLIENT_ID,
            "client_secret": idp::CLIENT_SECRET
        },
        "downstream": {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "algorithms": ["HS256"],
            "keys": [{
                "kid": "k1",
                "alg": "HS256",
                "secret": String::from_utf8_lossy(HS_SECRET)
            }]
        },
        "identity_headers": { "x-vigil-sub": "sub", "x-vigil-email": "email", "x-vigil-groups": "groups" }
    })
}

/// Deep-merge `patch` into `base` (objects merged key by key, `null` deletes).
pub fn merge(mut base: Value, patch: Value) -> Value {
    merge_into(&mut base, patch);
    base
}

fn merge_into(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    merge_into(b.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p,
    }
}

#[cfg(test)]
mod stale_module_tests {
    use super::newer_filter_source;
    use std::time::{Duration, SystemTime};

    fn touch(path: &std::path::Path, at: SystemTime) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
        std::fs::File::options().write(true).open(path).unwrap().set_modified(at).unwrap();
    }

    #[test]
    fn a_module_older_than_a_filter_source_is_stale() {
        let root = std::env::temp_dir().join(format!("vigil-stale-{}", std::process::id()));
        let now = SystemTime::now();
        let module = root.join("dist/vigil.wasm");
        touch(&root.join("filter/src/lib.rs"), now - Duration::from_secs(60));
        touch(&module, now - Duration::from_secs(30));
        assert_eq!(newer_filter_source(&root, &module), None, "built after every source");
        touch(&root.join("filter/src/adapter/vm.rs"), now);
        assert_eq!(newer_filter_source(&root, &module), Some(root.join("filter/src/adapter/vm.rs")));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
