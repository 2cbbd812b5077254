//! Signing as an IdP would, for the black-box tests' scripted provider (the
//! tests crate has no JWT library of its own). Not used by the filter: the
//! release build drops it.

use jwt_simple::prelude::{EdDSAKeyPairLike, Ed25519KeyPair, HeaderOptions, JWTClaims};
use serde_json::{Map, Value};

/// `claims` signed as-is (EdDSA, header `kid`); `None` for a bad key.
#[doc(hidden)]
pub fn sign_ed25519(private_pem: &str, kid: &str, claims: &Value) -> Option<String> {
    let key = Ed25519KeyPair::from_pem(private_pem).ok()?.with_key_id(kid);
    key.sign(as_is(claims)?).ok()
}

/// `claims` signed as-is with header `typ` (a logout token: "logout+jwt").
#[doc(hidden)]
pub fn sign_ed25519_typed(private_pem: &str, kid: &str, typ: &str, claims: &Value) -> Option<String> {
    let key = Ed25519KeyPair::from_pem(private_pem).ok()?.with_key_id(kid);
    key.sign_with_options(as_is(claims)?, &logout_header(typ)).ok()
}

/// Header options with `typ`.
#[doc(hidden)]
pub fn logout_header(typ: &str) -> HeaderOptions {
    HeaderOptions {
        signature_type: Some(typ.to_string()),
        ..HeaderOptions::default()
    }
}

/// `claims` as jwt-simple's claim set, every member verbatim (jwt-simple adds
/// nothing of its own), so tests can sign exactly the token they describe.
#[doc(hidden)]
pub fn as_is(claims: &Value) -> Option<JWTClaims<Map<String, Value>>> {
    Some(JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom: claims.as_object()?.clone(),
    })
}

/// The public JWK of the key, as a JWKS publishes it.
#[doc(hidden)]
pub fn ed25519_jwk(private_pem: &str, kid: &str) -> Option<Value> {
    let key = Ed25519KeyPair::from_pem(private_pem).ok()?;
    let mut jwk: Value = serde_json::from_str(&key.public_key().to_jwk()).ok()?;
    jwk["kid"] = Value::from(kid);
    jwk["use"] = Value::from("sig");
    Some(jwk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login::idp_jwt::verify_signature;
    use crate::login::jwks::{filter_jwks, JwkSet};

    #[test]
    fn what_is_signed_verifies_against_the_published_jwk() {
        let pem = Ed25519KeyPair::generate().to_pem();
        let jwks = serde_json::json!({ "keys": [ed25519_jwk(&pem, "k").unwrap()] }).to_string();
        let keys = JwkSet::from_values(&filter_jwks(jwks.as_bytes()).unwrap());
        let token = sign_ed25519(&pem, "k", &serde_json::json!({"nonce": "n", "sub": "s"})).unwrap();
        let claims = verify_signature(&token, &keys).unwrap();
        assert_eq!(claims["nonce"], "n");
        assert!(sign_ed25519("nope", "k", &Value::Null).is_none());
    }
}
