//! The per-VM login state the adapter keeps: the parsed metadata and keys,
//! this VM's share of the fetch protocol, and the signer.

use super::callback::LoginContext;
use super::fetch::{FetchStep, Fetcher};
use super::idp_call::IdpRequest;
use super::provider::Provider;
use crate::config::Config;
use crate::revalidation::IdpAnswer;
use crate::store::SharedStore;
use crate::token::{MintError, Signer};

#[derive(Debug)]
pub struct LoginVm {
    pub provider: Provider,
    pub fetcher: Fetcher,
    pub signer: Signer,
}

impl LoginVm {
    /// `None` without a `login` section. Built in `on_configure` (no call
    /// is made there: the first tick starts the fetches).
    pub fn new(cfg: &Config) -> Option<Result<LoginVm, MintError>> {
        let login = cfg.login.as_ref()?;
        Some(login.signing_key.signer().map(|signer| LoginVm {
            provider: Provider::new(),
            fetcher: Fetcher::new(),
            signer,
        }))
    }

    /// On every tick: pick up what other VMs fetched, and return the
    /// discovery or JWKS call when this VM won the fetch lease (dispatch it
    /// from the root context, then call `on_fetch_answer`).
    pub fn tick(
        &mut self,
        cfg: &Config,
        store: &dyn SharedStore,
        vm_uid: &str,
        now_ns: u64,
    ) -> Option<IdpRequest> {
        self.provider.sync(store, cfg);
        self.fetcher.poll(cfg, store, vm_uid, now_ns)
    }

    /// The answer to a call from `tick` (or a previous `FetchStep::Call`).
    pub fn on_fetch_answer(
        &mut self,
        cfg: &Config,
        store: &dyn SharedStore,
        vm_uid: &str,
        now_ns: u64,
        answer: &IdpAnswer,
    ) -> FetchStep {
        let step = self.fetcher.on_answer(cfg, store, vm_uid, now_ns, answer);
        self.provider.sync(store, cfg);
        step
    }

    /// What `Callback` needs; `None` without a `login` section.
    pub fn context<'a>(&'a self, cfg: &'a Config) -> Option<LoginContext<'a>> {
        Some(LoginContext {
            cfg,
            login: cfg.login.as_ref()?,
            signer: &self.signer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login::testkeys::{discovery_json, login_config, ok_json, TestIdpKeys};
    use crate::store::MemoryStore;

    #[test]
    fn ticks_drive_the_fetches_and_other_vms_pick_the_result_up() {
        let cfg = login_config();
        let store = MemoryStore::new();
        let mut a = LoginVm::new(&cfg).unwrap().unwrap();
        let mut b = LoginVm::new(&cfg).unwrap().unwrap();
        let call = a.tick(&cfg, &store, "a", 1).unwrap();
        assert!(b.tick(&cfg, &store, "b", 1).is_none());
        let FetchStep::Call(_) = a.on_fetch_answer(&cfg, &store, "a", 2, &ok_json(&discovery_json())) else {
            panic!("{call:?}")
        };
        let jwks = TestIdpKeys::new().jwks_json();
        assert_eq!(a.on_fetch_answer(&cfg, &store, "a", 3, &ok_json(&jwks)), FetchStep::Done);
        assert!(a.provider.ready().is_some());
        assert!(b.tick(&cfg, &store, "b", 4).is_none());
        assert!(b.provider.ready().is_some());
        assert!(b.context(&cfg).is_some());
        let mut plain = cfg.clone();
        plain.login = None;
        assert!(LoginVm::new(&plain).is_none());
    }
}
