//! The VM's root context: configuration, ticks, queue wake-ups and the IdP
//! callouts of the revalidations this VM leads.

use super::host;
use super::http::Http;
use super::vm::{SharedVm, Vm};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::cell::RefCell;
use std::rc::Rc;

pub struct Root {
    vm: Option<SharedVm>,
}

impl Root {
    pub fn new(_context_id: u32) -> Root {
        Root { vm: None }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _num_trailers: usize) {
        let Some(vm) = &self.vm else { return };
        if let Ok(mut vm) = vm.try_borrow_mut() {
            let response = host::read_call_response(num_headers, body_size);
            vm.on_call_response(token, response);
        }
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = match proxy_wasm::hostcalls::get_buffer(
            proxy_wasm::types::BufferType::PluginConfiguration,
            0,
            usize::MAX,
        ) {
            Ok(Some(bytes)) => bytes,
            _ => {
                log::error!("vigil: rejected configuration: no plugin configuration was given");
                return false;
            }
        };
        match Vm::configure(&bytes) {
            Ok(vm) => {
                let period = vm.poll_interval();
                self.vm = Some(Rc::new(RefCell::new(vm)));
                if proxy_wasm::hostcalls::set_tick_period(period).is_err() {
                    log::error!("vigil: rejected configuration: the host refused a tick period");
                    return false;
                }
                true
            }
            Err(message) => {
                log::error!("vigil: rejected configuration: {message}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if let Some(vm) = &self.vm {
            if let Ok(mut vm) = vm.try_borrow_mut() {
                vm.on_wake(None);
            }
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        if let Some(vm) = &self.vm {
            if let Ok(mut vm) = vm.try_borrow_mut() {
                vm.on_wake(Some(queue_id));
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(context_id, self.vm.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
