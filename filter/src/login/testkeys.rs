//! Test fixtures: a 2048-bit RSA key (from jwt-simple's own test keys, as
//! RSA key generation is slow in debug builds).

pub(crate) const RSA_PRIVATE_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAr+2Ie7pHyxTqjnpJ/E9VBD0hJ8Q/FWDBl8CULlPcXCxgkOs/
ofggLD1a3k3C72z33mpXYpYz5iNxmZrL6JZ5lj8Vu1O2CwsJPfaSRoylJr6CPS26
1xT6aEFb3RCgM9yIHJlP+S9sJdcxbm+KcSNn/R4TFUu42uQlTuy2o4SzFbxB/fu2
pqgyPeSc7HkPBNb/XiuzT6PHk0ibHXIK/D6reA8TIp7VBor+7addkbAFvVCgMasZ
kvnqUi+mzf3KejOct44MLmevOuUKxY6lHw+rWLeS7VhpYfU42Sv+TKVqm2BuGEqd
SjDe85TzMPaxWUAPjcHdOmMhA7jcLP2uUGiTDwIDAQABAoIBAEh5O/5scOLyTOZA
7nWoYMeMPzpYl/xAjb/sL58eIOs/xNAueVpKE0bmR6bItgNYCoxvlmwgoGSwOT4k
DNhWFOSWPGedRqMp+rax+vRhQC/Dz3dQfWXZWIbWVfetv7FdqhzN86odpRm5mr15
6bhN86rMVuQw+4gA8HWhAmQ+aGANLI1MJqQepCq8ysqbQD7k3N7Vnx65YwnYv9HN
/6r1uSk/df857/ix1xY7KINc1XKaBgukuq1hHQsmlyegf0QDNCcI6y4Vm3xOEY4t
STk/VPv37v487CQuwdvx/0LjTKuDUh2goP+YcwQD7cp4DlfJz0vzx/RMMBsZAHRc
mnkUPOECgYEA4tNei+SqfVQT16lFwTQZl5R1HQICLxVpJjcsAbmgxPXUhpyTrWv7
hqZw1LaZAB1lEHDsNUJligXe96JbRFBoE9e0ZgF8k/LkrY5EEbty7amqtKP3WeVS
Nnb+OS7a8gF+CS3RzPdYkP9hXwoms2cAghzAvyKtV11i65bnVtUmsgcCgYEAxo5D
2G5O3xiSkmfgiQ8G/Ulz2hj7OTjTXEwm4fnWWy/vuQHrYMZ70yedtnDz2razjboU
8vkjCoUPXjp8vRRI9qNORyeLQ8VhC7lIuRD11VbICZmBICo/PMSkpWskKGSh6ztF
pFfWembocZhCPp3CsyUUbJXcF4YzFmhCY1ZTtLkCgYAEv6APFa5sCUKRFT4cmVaf
0b/R56TcD3qwDh+huZ0gAnV8i/KbgtM1Mm7SRTBWzEa9XV/UjZtKlGziikeW2ogT
QkTIjedpwYAAEiZiqKXzS8YDGhuniiF6emtADzcOMfHNh2QJAnScNHx5XOEKiHF+
R9PRLIysc4wKmpIlQzkYKQKBgQCODiqsJf93zfTPmlIivQWbIXoph8X1YpqVZkZL
VpvuEZXJH35vdpIQuD810AonaJ99vqxOScCwPhKIr/+ep2ysSJowfjI9AnI0GRPW
lDPNtpDXjWO8x30G1QmW79imrZjK21UwB0gDuqyC2RRMCELMOLMsHOuiSPk0BtO4
joLEwQKBgQClvhuLsdsD1mtwZZTsOzZzahlAhczUePZ3kkbwHKAQOocw+g2LE7vt
MUBkM2WJrx5P6qouAKD0+g6l9m6wofAL1BnBxmtPJrOIZpeo08M0oIaAOHzs5/mG
mCEkoS9XxaQr4xCj2eb8mwAdPbdMwU19B4ksffVt5f9nSbVGRoGQGA==
-----END RSA PRIVATE KEY-----";
pub(crate) const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr+2Ie7pHyxTqjnpJ/E9V
BD0hJ8Q/FWDBl8CULlPcXCxgkOs/ofggLD1a3k3C72z33mpXYpYz5iNxmZrL6JZ5
lj8Vu1O2CwsJPfaSRoylJr6CPS261xT6aEFb3RCgM9yIHJlP+S9sJdcxbm+KcSNn
/R4TFUu42uQlTuy2o4SzFbxB/fu2pqgyPeSc7HkPBNb/XiuzT6PHk0ibHXIK/D6r
eA8TIp7VBor+7addkbAFvVCgMasZkvnqUi+mzf3KejOct44MLmevOuUKxY6lHw+r
WLeS7VhpYfU42Sv+TKVqm2BuGEqdSjDe85TzMPaxWUAPjcHdOmMhA7jcLP2uUGiT
DwIDAQAB
-----END PUBLIC KEY-----";

use jwt_simple::prelude::{
    ECDSAP256KeyPairLike, ES256KeyPair, Ed25519KeyPair, EdDSAKeyPairLike, HeaderOptions,
    RS256KeyPair, RSAKeyPairLike,
};
use serde_json::{json, Map, Value};

use super::jwks::{filter_jwks, JwkSet};

/// An IdP's signing keys: ES256 `es1`, EdDSA `ed1`, RS256 `rs1`.
pub(crate) struct TestIdpKeys {
    pub es: ES256KeyPair,
    pub ed: Ed25519KeyPair,
    pub rs: RS256KeyPair,
}

impl TestIdpKeys {
    pub fn new() -> TestIdpKeys {
        TestIdpKeys {
            es: ES256KeyPair::generate().with_key_id("es1"),
            ed: Ed25519KeyPair::generate().with_key_id("ed1"),
            rs: RS256KeyPair::from_pem(RSA_PRIVATE_PEM)
                .unwrap()
                .with_key_id("rs1"),
        }
    }

    /// The JWKS document the IdP would publish.
    pub fn jwks_json(&self) -> String {
        let mut keys = Vec::new();
        for (jwk, kid) in [
            (self.es.public_key().to_jwk(), "es1"),
            (self.ed.public_key().to_jwk(), "ed1"),
            (self.rs.public_key().to_jwk(), "rs1"),
        ] {
            let mut v: Value = serde_json::from_str(&jwk).unwrap();
            v["kid"] = Value::from(kid);
            keys.push(v);
        }
        json!({ "keys": keys }).to_string()
    }

    pub fn jwk_set(&self) -> JwkSet {
        JwkSet::from_values(&filter_jwks(self.jwks_json().as_bytes()).unwrap())
    }

    /// Signs `claims` as-is with the key of `alg` ("ES256", "EdDSA", "RS256"),
    /// header `typ` "JWT" (as ID tokens).
    pub fn sign(&self, alg: &str, claims: &Value) -> String {
        self.sign_typed(alg, None, claims)
    }

    /// A logout token: header `typ` "logout+jwt".
    pub fn sign_logout(&self, alg: &str, claims: &Value) -> String {
        self.sign_typed(alg, Some("logout+jwt"), claims)
    }

    /// `typ` `None`: jwt-simple's default, "JWT".
    pub fn sign_typed(&self, alg: &str, typ: Option<&str>, claims: &Value) -> String {
        let jwt = super::test_signing::as_is(claims).unwrap();
        let opts = HeaderOptions {
            signature_type: typ.map(str::to_string),
            ..HeaderOptions::default()
        };
        match alg {
            "ES256" => self.es.sign_with_options(jwt, &opts).unwrap(),
            "EdDSA" => self.ed.sign_with_options(jwt, &opts).unwrap(),
            _ => self.rs.sign_with_options(jwt, &opts).unwrap(),
        }
    }
}

use std::time::Duration;

use crate::config::{
    Config, CookieConfig, Endpoint, KeyMaterial, LoginConfig, ProviderConfig, SigningKeyConfig,
    SigningMaterial, VerificationKey,
};

pub(crate) const ISSUER: &str = "https://idp.example.com";
pub(crate) const SIGNING_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

pub(crate) fn endpoint(path: &str) -> Endpoint {
    Endpoint {
        url: format!("{ISSUER}{path}"),
        path: path.to_string(),
        authority: "idp.example.com".to_string(),
        scheme: "https".to_string(),
    }
}

/// `revalidation::testing::test_config` with login enabled (discovery on,
/// HS256 signing key `vigil` also accepted downstream).
pub(crate) fn login_config() -> Config {
    let mut cfg = crate::revalidation::testing::test_config();
    let signing_key = SigningKeyConfig {
        kid: Some("vigil".to_string()),
        material: SigningMaterial::Hs256(SIGNING_SECRET.to_vec()),
    };
    cfg.downstream.keys = vec![VerificationKey {
        kid: Some("vigil".to_string()),
        material: KeyMaterial::Hs256(SIGNING_SECRET.to_vec()),
    }];
    cfg.login = Some(LoginConfig {
        provider: ProviderConfig {
            issuer: ISSUER.to_string(),
            discovery: true,
            discovery_endpoint: endpoint("/.well-known/openid-configuration"),
            authorization_endpoint: None,
            jwks_uri: None,
            end_session_endpoint: None,
            revocation_endpoint: None,
            authority: None,
            metadata_refresh: Duration::from_secs(3600),
        },
        redirect_uri: "https://app.example.com/callback".to_string(),
        callback_path: "/callback".to_string(),
        scopes: vec!["openid".into(), "email".into(), "offline_access".into()],
        consent_for_offline_access: true,
        logout_path: Some("/logout".to_string()),
        post_logout_redirect_uri: Some("https://app.example.com/bye".to_string()),
        backchannel_logout_path: Some("/backchannel".to_string()),
        session_lifetime: Duration::from_secs(8 * 3600),
        state_lifetime: Duration::from_secs(600),
        state_secret: b"state-secret-state-secret-state-secret".to_vec(),
        signing_key,
        cookie: CookieConfig {
            domain: None,
            path: "/".to_string(),
            secure: true,
        },
        state_cookie_name: "vigil_session_login".to_string(),
        token_claims: vec!["email".to_string()],
    });
    cfg
}

pub(crate) fn discovery_json() -> String {
    json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{ISSUER}/auth"),
        "token_endpoint": format!("{ISSUER}/token"),
        "userinfo_endpoint": format!("{ISSUER}/me"),
        "jwks_uri": format!("{ISSUER}/jwks"),
        "end_session_endpoint": format!("{ISSUER}/session/end"),
        "revocation_endpoint": format!("{ISSUER}/token/revocation"),
    })
    .to_string()
}

pub(crate) fn ok_json(body: &str) -> crate::revalidation::IdpAnswer {
    crate::revalidation::IdpAnswer::Response {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    }
}

pub(crate) fn path_of(call: &super::IdpRequest) -> &str {
    call.headers
        .iter()
        .find(|(k, _)| k == ":path")
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// A provider whose discovery and JWKS (of `idp`) were fetched at `now_ns`.
pub(crate) fn ready_provider(
    cfg: &Config,
    store: &dyn crate::store::SharedStore,
    idp: &TestIdpKeys,
    now_ns: u64,
) -> super::provider::Provider {
    let mut fetcher = super::fetch::Fetcher::new();
    fetcher.poll(cfg, store, "vm", now_ns).unwrap();
    fetcher.on_answer(cfg, store, "vm", now_ns, &ok_json(&discovery_json()));
    fetcher.on_answer(cfg, store, "vm", now_ns, &ok_json(&idp.jwks_json()));
    let mut provider = super::provider::Provider::new();
    provider.sync(store, cfg);
    assert!(provider.ready().is_some());
    provider
}

/// A live session of `sub` with refresh token `rt-<sub>` and its
/// downstream token.
pub(crate) fn logged_in(
    cfg: &Config,
    store: &dyn crate::store::SharedStore,
    sub: &str,
    now_ns: u64,
) -> (String, u32) {
    let mut random = crate::revalidation::testing::seq_random(now_ns ^ sub.len() as u64);
    let created = crate::session::create_session(
        store,
        cfg,
        crate::session::NewSession {
            sub: sub.to_string(),
            access_token: format!("at-{sub}"),
            access_expires_ns: now_ns + 300 * 1_000_000_000,
            refresh_token: Some(format!("rt-{sub}")),
            expires_ns: now_ns + 3600 * 1_000_000_000,
            claims: None,
        },
        &mut random,
        now_ns,
    )
    .unwrap();
    let signer = cfg.login.as_ref().unwrap().signing_key.signer().unwrap();
    let token = signer
        .mint(&crate::token::MintClaims {
            iss: cfg.downstream.issuer.clone(),
            aud: cfg.downstream.audience.clone(),
            sub: sub.to_string(),
            sid: created.sid,
            iat_ns: crate::session::mint_time_ns(store, cfg, sub, now_ns),
            exp_s: now_ns / 1_000_000_000 + 3600,
            extra: Map::new(),
        })
        .unwrap();
    (token, created.slot)
}
