//! The IdP's signing keys (JWKS): parsed once per fetch into verifier keys,
//! selected by `kid`.
//!
//! Only signature keys vigil can check are kept (RSA → RS256, EC P-256 →
//! ES256, OKP Ed25519 → EdDSA), stripped to their public members so the
//! copy in shared data stays small (no certificate chains).

use jwt_simple::prelude::{ES256PublicKey, Ed25519PublicKey, RS256PublicKey};
use serde_json::{Map, Value};

/// Largest JWKS document accepted.
pub const MAX_JWKS_LEN: usize = 256 * 1024;
/// Most keys kept from one JWKS.
pub const MAX_KEYS: usize = 32;

/// A verification key of the IdP.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum IdpKey {
    Rs256(Box<RS256PublicKey>),
    Es256(ES256PublicKey),
    EdDsa(Ed25519PublicKey),
}

impl IdpKey {
    pub fn alg(&self) -> &'static str {
        match self {
            IdpKey::Rs256(_) => "RS256",
            IdpKey::Es256(_) => "ES256",
            IdpKey::EdDsa(_) => "EdDSA",
        }
    }
}

#[derive(Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    pub key: IdpKey,
}

/// The usable keys of one JWKS.
#[derive(Clone, Default)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

impl std::fmt::Debug for JwkSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self
            .keys
            .iter()
            .map(|k| (k.kid.as_deref(), k.key.alg()))
            .collect();
        f.debug_struct("JwkSet").field("keys", &kids).finish()
    }
}

/// Keeps the usable keys of a fetched JWKS body, stripped to public
/// members. `Err` when the body is not a JWKS or holds no usable key.
pub fn filter_jwks(body: &[u8]) -> Result<Vec<Value>, &'static str> {
    if body.len() > MAX_JWKS_LEN {
        return Err("jwks too large");
    }
    let doc: Value = serde_json::from_slice(body).map_err(|_| "jwks is not JSON")?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("jwks has no keys array")?;
    let kept: Vec<Value> = keys
        .iter()
        .filter_map(strip)
        .filter(|jwk| parse_key(jwk).is_some())
        .take(MAX_KEYS)
        .collect();
    if kept.is_empty() {
        return Err("jwks has no usable signing key");
    }
    Ok(kept)
}

/// Public members of a signature key of a supported type, or `None`.
fn strip(jwk: &Value) -> Option<Value> {
    let obj = jwk.as_object()?;
    if obj.get("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let kty = obj.get("kty")?.as_str()?;
    let alg = obj.get("alg").and_then(Value::as_str);
    let (members, want_alg): (&[&str], &str) = match kty {
        "RSA" => (&["kty", "n", "e"], "RS256"),
        "EC" if obj.get("crv")? == "P-256" => (&["kty", "crv", "x", "y"], "ES256"),
        "OKP" if obj.get("crv")? == "Ed25519" => (&["kty", "crv", "x"], "EdDSA"),
        _ => return None,
    };
    if alg.is_some_and(|a| a != want_alg && !(want_alg == "EdDSA" && a == "Ed25519")) {
        return None;
    }
    let mut out = Map::new();
    for m in members {
        out.insert((*m).to_string(), obj.get(*m)?.clone());
    }
    if let Some(kid) = obj.get("kid").and_then(Value::as_str) {
        out.insert("kid".to_string(), Value::from(kid));
    }
    Some(Value::Object(out))
}

fn parse_key(jwk: &Value) -> Option<Jwk> {
    let text = jwk.to_string();
    let key = match jwk.get("kty")?.as_str()? {
        "RSA" => IdpKey::Rs256(Box::new(RS256PublicKey::from_jwk(&text).ok()?)),
        "EC" => IdpKey::Es256(ES256PublicKey::from_jwk(&text).ok()?),
        "OKP" => IdpKey::EdDsa(Ed25519PublicKey::from_jwk(&text).ok()?),
        _ => return None,
    };
    Some(Jwk {
        kid: jwk.get("kid").and_then(Value::as_str).map(str::to_string),
        key,
    })
}

impl JwkSet {
    /// Keys from the stripped JWKs kept by `filter_jwks` (bad ones skipped).
    pub fn from_values(values: &[Value]) -> JwkSet {
        JwkSet {
            keys: values.iter().filter_map(parse_key).take(MAX_KEYS).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key for a token header: by `kid` when the token has one; a token
    /// without `kid` only when exactly one key of its `alg` exists. The
    /// key's algorithm must be the header's.
    pub fn select(&self, kid: Option<&str>, alg: &str) -> Option<&IdpKey> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .map(|k| &k.key)
                .filter(|k| k.alg() == alg),
            None => {
                let mut same_alg = self.keys.iter().filter(|k| k.key.alg() == alg);
                match (same_alg.next(), same_alg.next()) {
                    (Some(only), None) => Some(&only.key),
                    _ => None,
                }
            }
        }
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_simple::prelude::{ES256KeyPair, Ed25519KeyPair};

    pub(crate) fn jwk_of_es256(key: &ES256KeyPair, kid: &str) -> Value {
        let mut v: Value = serde_json::from_str(&key.public_key().to_jwk()).unwrap();
        v["kid"] = Value::from(kid);
        v["x5c"] = Value::from(vec!["MIIB..."]);
        v
    }

    #[test]
    fn keeps_supported_signature_keys_and_selects_by_kid() {
        let es = ES256KeyPair::generate();
        let ed = Ed25519KeyPair::generate();
        let mut ed_jwk: Value = serde_json::from_str(&ed.public_key().to_jwk()).unwrap();
        ed_jwk["kid"] = Value::from("ed1");
        let doc = serde_json::json!({"keys": [
            jwk_of_es256(&es, "es1"),
            ed_jwk,
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"},
            {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            "junk"
        ]});
        let kept = filter_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(kept.len(), 2);
        assert!(kept[0].get("x5c").is_none());
        let set = JwkSet::from_values(&kept);
        assert_eq!(
            set.select(Some("es1"), "ES256").map(IdpKey::alg),
            Some("ES256")
        );
        assert!(set.select(Some("es1"), "EdDSA").is_none());
        assert!(set.select(Some("nope"), "ES256").is_none());
        assert!(set.select(None, "EdDSA").is_some());
        assert!(set.has_kid("ed1") && !set.has_kid("enc"));
    }

    #[test]
    fn rejects_non_jwks_and_empty_sets() {
        for body in [
            "",
            "[]",
            "{}",
            "{\"keys\": []}",
            "{\"keys\": [{\"kty\": \"oct\"}]}",
        ] {
            assert!(filter_jwks(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn rsa_keys_from_components() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let pem = crate::login::testkeys::RSA_PUBLIC_PEM;
        let key = RS256PublicKey::from_pem(pem).unwrap();
        let c = key.to_components();
        let jwk = serde_json::json!({"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(&c.n), "e": URL_SAFE_NO_PAD.encode(&c.e)});
        let kept = filter_jwks(serde_json::json!({"keys": [jwk]}).to_string().as_bytes()).unwrap();
        let set = JwkSet::from_values(&kept);
        assert_eq!(
            set.select(Some("r1"), "RS256").map(IdpKey::alg),
            Some("RS256")
        );
    }
}
