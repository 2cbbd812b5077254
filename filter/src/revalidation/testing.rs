//! Fixtures shared by the unit tests of `session` and `revalidation`.

use std::time::Duration;

use crate::config::{
    AuthorizationRules, ClientAuth, Config, DownstreamConfig, Endpoint, FailurePolicy, IdpConfig,
    KeyMaterial, VerificationKey,
};

fn endpoint(path: &str) -> Endpoint {
    Endpoint {
        url: format!("https://idp.example.com{path}"),
        path: path.to_owned(),
        authority: "idp.example.com".to_owned(),
        scheme: "https".to_owned(),
    }
}

/// The documented defaults with a test IdP.
pub(crate) fn test_config() -> Config {
    Config {
        revalidate_interval: Duration::from_secs(60),
        revalidate_timeout: Duration::from_secs(10),
        on_failure: FailurePolicy::Allow,
        max_staleness: None,
        refresh_margin: Duration::from_secs(30),
        idp: IdpConfig {
            upstream: "idp".to_owned(),
            token_endpoint: endpoint("/token"),
            userinfo_endpoint: endpoint("/userinfo"),
            client_id: "vigil client".to_owned(),
            client_secret: "s3cr&t:x".to_owned(),
            client_auth: ClientAuth::SecretBasic,
        },
        downstream: DownstreamConfig {
            issuer: "vigil".to_owned(),
            audience: "app".to_owned(),
            algorithms: vec!["HS256".to_owned()],
            keys: vec![VerificationKey {
                kid: None,
                material: KeyMaterial::Hs256(b"key".to_vec()),
            }],
            leeway: Duration::from_secs(30),
            cookie_name: "vigil_session".to_owned(),
            header: "authorization".to_owned(),
        },
        rules: AuthorizationRules::default(),
        identity_headers: Vec::new(),
        shared_data_prefix: "vigil:".to_owned(),
        max_sessions: 10_000,
        revocation_buckets: 1024,
        max_token_lifetime: Duration::from_secs(12 * 3600),
        poll_interval: Duration::from_millis(50),
    }
}

/// A deterministic `random` source (splitmix64).
pub(crate) fn seq_random(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
