//! Signing downstream tokens (login flow; tests use it to build tokens).

use std::fmt;

use jwt_simple::prelude::{
    Audiences, ECDSAP256KeyPairLike, ES256KeyPair, Ed25519KeyPair, EdDSAKeyPairLike, HS256Key,
    JWTClaims, MACLike, UnixTimeStamp,
};
use serde::Serialize;
use serde_json::{Map, Value};

use super::claims::REGISTERED;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const MIN_HS256_SECRET: usize = 32;

/// What goes into a new downstream token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    /// Issue time on the proxy clock; `iat` is derived from it.
    pub iat_ns: u64,
    /// Expiry, seconds since the epoch.
    pub exp_s: u64,
    /// Identity claims copied into the token; registered names are ignored.
    pub extra: Map<String, Value>,
}

/// Why a signer could not be built or a token not signed (no key material
/// in the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintError {
    WeakSecret,
    InvalidKey,
    Signing,
}

impl MintError {
    pub fn reason(&self) -> &'static str {
        match self {
            MintError::WeakSecret => "HS256 secret shorter than 32 bytes",
            MintError::InvalidKey => "invalid private key (PEM)",
            MintError::Signing => "signing failed",
        }
    }
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for MintError {}

enum SigningKey {
    Hs256(HS256Key),
    EdDsa(Ed25519KeyPair),
    Es256(ES256KeyPair),
}

/// A key that signs downstream tokens.
pub struct Signer {
    key: SigningKey,
}

// Never print key material.
impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("alg", &self.alg()).finish()
    }
}

#[derive(Serialize)]
struct VigilClaims<'a> {
    sid: &'a str,
    iat_ns: u64,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl Signer {
    pub fn hs256(secret: &[u8], kid: Option<String>) -> Result<Signer, MintError> {
        if secret.len() < MIN_HS256_SECRET {
            return Err(MintError::WeakSecret);
        }
        let mut key = HS256Key::from_bytes(secret);
        if let Some(kid) = kid {
            key = key.with_key_id(&kid);
        }
        Ok(Signer {
            key: SigningKey::Hs256(key),
        })
    }

    /// Ed25519 private key, PKCS#8 PEM.
    pub fn ed25519_pem(pem: &str, kid: Option<String>) -> Result<Signer, MintError> {
        let mut key = Ed25519KeyPair::from_pem(pem).map_err(|_| MintError::InvalidKey)?;
        if let Some(kid) = kid {
            key = key.with_key_id(&kid);
        }
        Ok(Signer {
            key: SigningKey::EdDsa(key),
        })
    }

    /// P-256 private key, PKCS#8 (or SEC1) PEM.
    pub fn es256_pem(pem: &str, kid: Option<String>) -> Result<Signer, MintError> {
        let mut key = ES256KeyPair::from_pem(pem).map_err(|_| MintError::InvalidKey)?;
        if let Some(kid) = kid {
            key = key.with_key_id(&kid);
        }
        Ok(Signer {
            key: SigningKey::Es256(key),
        })
    }

    /// The JOSE `alg` of the tokens this signer makes.
    pub fn alg(&self) -> &'static str {
        match self.key {
            SigningKey::Hs256(_) => "HS256",
            SigningKey::EdDsa(_) => "EdDSA",
            SigningKey::Es256(_) => "ES256",
        }
    }

    /// SubjectPublicKeyInfo PEM of an asymmetric signer (for `downstream.keys`).
    pub fn public_key_pem(&self) -> Option<String> {
        match &self.key {
            SigningKey::Hs256(_) => None,
            SigningKey::EdDsa(key) => Some(key.public_key().to_pem()),
            SigningKey::Es256(key) => key.public_key().to_pem().ok(),
        }
    }

    pub fn mint(&self, claims: &MintClaims) -> Result<String, MintError> {
        let mut extra = claims.extra.clone();
        for name in REGISTERED {
            extra.remove(name);
        }
        let jwt = JWTClaims {
            issued_at: Some(UnixTimeStamp::from_secs(claims.iat_ns / NANOS_PER_SEC)),
            expires_at: Some(UnixTimeStamp::from_secs(claims.exp_s)),
            invalid_before: None,
            issuer: Some(claims.iss.clone()),
            subject: Some(claims.sub.clone()),
            audiences: Some(Audiences::AsString(claims.aud.clone())),
            jwt_id: None,
            nonce: None,
            custom: VigilClaims {
                sid: &claims.sid,
                iat_ns: claims.iat_ns,
                extra,
            },
        };
        let token = match &self.key {
            SigningKey::Hs256(key) => key.authenticate(jwt),
            SigningKey::EdDsa(key) => key.sign(jwt),
            SigningKey::Es256(key) => key.sign(jwt),
        };
        token.map_err(|_| MintError::Signing)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets_and_bad_pems_are_refused() {
        assert_eq!(
            Signer::hs256(b"short", None).unwrap_err(),
            MintError::WeakSecret
        );
        assert_eq!(
            Signer::ed25519_pem("nope", None).unwrap_err(),
            MintError::InvalidKey
        );
        assert_eq!(
            Signer::es256_pem("nope", None).unwrap_err(),
            MintError::InvalidKey
        );
    }

    #[test]
    fn header_carries_alg_and_kid() {
        use base64::Engine;
        let signer = Signer::hs256(&[7u8; 32], Some("k1".to_string())).unwrap();
        let claims = MintClaims {
            iss: "i".to_string(),
            aud: "a".to_string(),
            sub: "s".to_string(),
            sid: "0.n".to_string(),
            iat_ns: 1_500_000_000,
            exp_s: 100,
            extra: Map::new(),
        };
        let token = signer.mint(&claims).unwrap();
        let mut parts = token.split('.');
        let decode = |p: &str| -> Value {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        let header = decode(parts.next().unwrap());
        assert_eq!(header["alg"], "HS256");
        assert_eq!(header["kid"], "k1");
        let body = decode(parts.next().unwrap());
        assert_eq!(body["iat"], 1);
        assert_eq!(body["iat_ns"], 1_500_000_000u64);
        assert_eq!(body["exp"], 100);
        assert_eq!(body["aud"], "a");
        assert_eq!(body["sid"], "0.n");
        assert!(format!("{signer:?}").contains("HS256"));
    }
}
