//! Fixed keys, clock, environment and configurations every check uses.
//! Built once per process (the fuzzers call the checks millions of times).

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{ECDSAP256KeyPairLike, ES256KeyPair, RS256PublicKey};
use serde_json::{json, Value};
use vigil::config::Config;
use vigil::login::jwks::{filter_jwks, JwkSet};
use vigil::token::Signer;

pub const SEC: u64 = 1_000_000_000;
/// The proxy clock of every check.
pub const NOW_S: u64 = 1_800_000_000;
pub const NOW_NS: u64 = NOW_S * SEC;

/// HS256 secret of the downstream key `hs` (40 bytes).
pub const HS_SECRET: &str = "fuzz-hs256-secret-0123456789abcdef-XyZ!";
pub const CLIENT_SECRET: &str = "env-client-secret-Zm9vYmFyYmF6";
pub const STATE_SECRET: &str = "env-state-secret-0123456789abcdef-QwErTy";

/// The VM environment the configuration parser sees.
pub fn env(name: &str) -> Option<String> {
    match name {
        "VIGIL_CLIENT_SECRET" => Some(CLIENT_SECRET.to_string()),
        "VIGIL_HS_SECRET" | "VIGIL_TOKEN_KEY" => Some(HS_SECRET.to_string()),
        "VIGIL_STATE_SECRET" => Some(STATE_SECRET.to_string()),
        "VIGIL_ED_KEY" => Some(ED_DOWN_PEM.to_string()),
        "VIGIL_EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// Every non-empty value `env` returns: none may appear in an error text.
pub const ENV_SECRETS: [&str; 4] = [HS_SECRET, CLIENT_SECRET, STATE_SECRET, ED_DOWN_PEM];

/// Downstream EdDSA signing key (`ed`).
pub const ED_DOWN_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIFqPPdEZZ/qK85V3EQTpvR5GHS1VY1NGlu6VRl43zxmF
-----END PRIVATE KEY-----";
/// Downstream ES256 signing key (`es`).
pub const ES_DOWN_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgyageMkr3uNPDlvyr
ry+Qg4tG7Fr3zxxsS9pXnhJ1AxShRANCAAQSKx2pBF2VijDOHZmONErpPFrRdf9n
XYw45VBJ/zx9/8GG+AotF5Sr4nEkitZS2GM2Zfnc7qdeDYEZ3XEIQyoB
-----END PRIVATE KEY-----";
/// The IdP's EdDSA key (`ed-idp`).
pub const ED_IDP_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOi5CUm96slrV2wqox1mROuuR1cWUbc+cbn9UJ3vw9EH
-----END PRIVATE KEY-----";
/// The IdP's ES256 key (`es-idp`).
pub const ES_IDP_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqa99e5gcteo88Mnn
XHG2buZXXTj6bRV/uHi3KcQ0V0OhRANCAATfCXlaj0iPSbSJYob5UfUdGnqvVnsl
bo9HdMfQjJQOpVrsj3Vxjg9zUHAnEoYAlzhSodHWxw22wArYXw7iXA1a
-----END PRIVATE KEY-----";
/// An RSA public key the IdP also publishes (`rs-idp`; jwt-simple's test key).
pub const RSA_IDP_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr+2Ie7pHyxTqjnpJ/E9V
BD0hJ8Q/FWDBl8CULlPcXCxgkOs/ofggLD1a3k3C72z33mpXYpYz5iNxmZrL6JZ5
lj8Vu1O2CwsJPfaSRoylJr6CPS261xT6aEFb3RCgM9yIHJlP+S9sJdcxbm+KcSNn
/R4TFUu42uQlTuy2o4SzFbxB/fu2pqgyPeSc7HkPBNb/XiuzT6PHk0ibHXIK/D6r
eA8TIp7VBor+7addkbAFvVCgMasZkvnqUi+mzf3KejOct44MLmevOuUKxY6lHw+r
WLeS7VhpYfU42Sv+TKVqm2BuGEqdSjDe85TzMPaxWUAPjcHdOmMhA7jcLP2uUGiT
DwIDAQAB
-----END PUBLIC KEY-----";

pub const DOWN_ISSUER: &str = "https://vigil.example.com";
pub const DOWN_AUDIENCE: &str = "app.example.com";
pub const COOKIE: &str = "vigil_session";
pub const IDP_ISSUER: &str = "https://idp.example.com";
pub const CLIENT_ID: &str = "vigil-fuzz";

/// The downstream keys: `(kid, alg)`, in `downstream.keys` order.
pub const DOWN_KEYS: [(&str, &str); 3] = [("hs", "HS256"), ("ed", "EdDSA"), ("es", "ES256")];

/// Signers for `DOWN_KEYS`, same order.
pub fn down_signers() -> &'static [Signer; 3] {
    static SIGNERS: OnceLock<[Signer; 3]> = OnceLock::new();
    SIGNERS.get_or_init(|| {
        [
            Signer::hs256(HS_SECRET.as_bytes(), Some("hs".into())).expect("hs256 signer"),
            Signer::ed25519_pem(ED_DOWN_PEM, Some("ed".into())).expect("ed25519 signer"),
            Signer::es256_pem(ES_DOWN_PEM, Some("es".into())).expect("es256 signer"),
        ]
    })
}

fn public_pem(signer: &Signer) -> String {
    signer.public_key_pem().expect("public key pem")
}

/// A configuration without login whose downstream section accepts HS256
/// (`hs`), EdDSA (`ed`) and ES256 (`es`) tokens; RS256 is not listed.
pub fn base_config_json() -> Value {
    let signers = down_signers();
    json!({
        "revalidate_interval": "60s",
        "idp": {
            "upstream": "idp",
            "token_endpoint": "https://idp.example.com/oauth2/token",
            "userinfo_endpoint": "https://idp.example.com/oauth2/userinfo",
            "client_id": CLIENT_ID,
            "client_secret_env": "VIGIL_CLIENT_SECRET"
        },
        "downstream": {
            "issuer": DOWN_ISSUER,
            "audience": DOWN_AUDIENCE,
            "algorithms": ["HS256", "EdDSA", "ES256"],
            "keys": [
                {"kid": "hs", "alg": "HS256", "secret_env": "VIGIL_HS_SECRET"},
                {"kid": "ed", "alg": "EdDSA", "public_key": public_pem(&signers[1])},
                {"kid": "es", "alg": "ES256", "public_key": public_pem(&signers[2])}
            ],
            "leeway": "30s"
        },
        "identity_headers": {"x-user": "sub", "x-email": "email", "x-groups": "groups"},
        "session_headers": {"validated_at": "x-validated-at", "revalidate_at": "x-revalidate-at"}
    })
}

/// `base_config_json` with vigil's login (HS256 signing key `login`, the
/// IdP at `IDP_ISSUER` with discovery, back-channel logout).
pub fn login_config_json() -> Value {
    let mut cfg = base_config_json();
    cfg["idp"]["issuer"] = Value::from(IDP_ISSUER);
    cfg["login"] = json!({
        "redirect_uri": "https://app.example.com/oauth2/callback",
        "logout_path": "/oauth2/logout",
        "backchannel_logout_path": "/oauth2/backchannel-logout",
        "signing_key": {"kid": "login", "alg": "HS256", "secret_env": "VIGIL_TOKEN_KEY"},
        "state_secret_env": "VIGIL_STATE_SECRET",
        "token_claims": ["email"]
    });
    cfg
}

fn parse(value: &Value) -> Config {
    vigil::config::parse(value.to_string().as_bytes(), &env).expect("fixture configuration")
}

pub fn base_config() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(|| parse(&base_config_json()))
}

pub fn login_config() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(|| parse(&login_config_json()))
}

/// The IdP's JWKS document: EdDSA `ed-idp`, ES256 `es-idp`, RS256 `rs-idp`.
pub fn idp_jwks_json() -> Value {
    let ed = vigil::login::test_signing::ed25519_jwk(ED_IDP_PEM, "ed-idp").expect("ed jwk");
    let es_key = ES256KeyPair::from_pem(ES_IDP_PEM).expect("es256 idp key");
    let mut es: Value = serde_json::from_str(&es_key.public_key().to_jwk()).expect("es jwk");
    es["kid"] = Value::from("es-idp");
    let rsa = RS256PublicKey::from_pem(RSA_IDP_PUBLIC_PEM)
        .expect("rsa key")
        .to_components();
    let rs = json!({
        "kty": "RSA", "kid": "rs-idp", "alg": "RS256", "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(&rsa.n), "e": URL_SAFE_NO_PAD.encode(&rsa.e)
    });
    json!({"keys": [ed, es, rs]})
}

/// The IdP's keys as vigil keeps them.
pub fn idp_keys() -> &'static JwkSet {
    static KEYS: OnceLock<JwkSet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let kept = filter_jwks(idp_jwks_json().to_string().as_bytes()).expect("fixture jwks");
        JwkSet::from_values(&kept)
    })
}

/// The IdP's signing keys, as `(kid, alg)`.
pub const IDP_SIGNERS: [(&str, &str); 2] = [("ed-idp", "EdDSA"), ("es-idp", "ES256")];

/// `claims` signed by the IdP key `IDP_SIGNERS[which]`, every member verbatim.
pub fn idp_sign(which: usize, claims: &Value) -> String {
    match which % IDP_SIGNERS.len() {
        0 => vigil::login::test_signing::sign_ed25519(ED_IDP_PEM, "ed-idp", claims)
            .expect("ed25519 idp signature"),
        _ => {
            let key = ES256KeyPair::from_pem(ES_IDP_PEM)
                .expect("es256 idp key")
                .with_key_id("es-idp");
            let claims = vigil::login::test_signing::as_is(claims).expect("claims object");
            key.sign(claims).expect("es256 idp signature")
        }
    }
}

/// `idp_sign` with header `typ` "logout+jwt", as IdPs type logout tokens.
pub fn idp_sign_logout(which: usize, claims: &Value) -> String {
    match which % IDP_SIGNERS.len() {
        0 => vigil::login::test_signing::sign_ed25519_typed(ED_IDP_PEM, "ed-idp", "logout+jwt", claims)
            .expect("ed25519 idp signature"),
        _ => {
            let key = ES256KeyPair::from_pem(ES_IDP_PEM)
                .expect("es256 idp key")
                .with_key_id("es-idp");
            let claims = vigil::login::test_signing::as_is(claims).expect("claims object");
            let header = vigil::login::test_signing::logout_header("logout+jwt");
            key.sign_with_options(claims, &header).expect("es256 idp signature")
        }
    }
}

/// `header.claims.signature` with the given JSON texts, unsigned parts
/// base64url-encoded as-is (forged tokens).
pub fn raw_jwt(header: &str, claims: &str, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// HMAC-SHA256 JWS signature of `header.claims` (both already encoded).
pub fn hs256_signature(signing_input: &str, secret: &[u8]) -> Vec<u8> {
    hmac_sha256::HMAC::mac(signing_input.as_bytes(), secret).to_vec()
}
