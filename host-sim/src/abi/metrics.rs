//! User metrics with Envoy's id encoding and rules. The stats store is process-wide (all VMs add to the same
//! stat); each VM's contribution is kept too, for `Sim::metric_on`.

use super::memory::{check_allowed, read_string, write_u32, write_u64, Ctx};
use crate::state::{MetricDef, VmState};
use crate::types::status;
use crate::world::MetricType;
use wasmtime::{format_err as anyhow, Result};
use wasmtime::Linker;

fn lookup(c: &Ctx<'_>, id: i32) -> Option<(String, MetricType)> {
    c.data().metric_defs.get(&(id as u32)).map(|(name, def)| (name.clone(), def.kind))
}

pub fn register(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap("env", "proxy_define_metric", |mut c: Ctx<'_>, kind: i32, nptr: i32, nlen: i32, ret: i32| -> Result<i32> {
        check_allowed(&c, "proxy_define_metric")?;
        let kind = match kind {
            0 => MetricType::Counter,
            1 => MetricType::Gauge,
            2 => MetricType::Histogram,
            _ => return Ok(status::BAD_ARGUMENT),
        };
        let name = read_string(&c, nptr, nlen)?;
        let id = {
            let state = c.data_mut();
            state.world.lock().map_err(|_| anyhow!("shared world poisoned"))?.metric_mut(&name, kind);
            let id = state.next_metric_id(kind);
            state.metric_defs.insert(id, (name, MetricDef { kind }));
            id
        };
        write_u32(&mut c, ret, id)?;
        Ok(status::OK)
    })?;
    linker.func_wrap("env", "proxy_get_metric", |mut c: Ctx<'_>, id: i32, ret: i32| -> Result<i32> {
        check_allowed(&c, "proxy_get_metric")?;
        let Some((name, kind)) = lookup(&c, id) else { return Ok(status::NOT_FOUND) };
        if kind == MetricType::Histogram {
            return Ok(status::BAD_ARGUMENT);
        }
        let value = c.data().world.lock().map_err(|_| anyhow!("shared world poisoned"))?.metric_mut(&name, kind).value;
        write_u64(&mut c, ret, value as u64)?;
        Ok(status::OK)
    })?;
    linker.func_wrap("env", "proxy_increment_metric", |c: Ctx<'_>, id: i32, offset: i64| -> Result<i32> {
        check_allowed(&c, "proxy_increment_metric")?;
        let Some((name, kind)) = lookup(&c, id) else { return Ok(status::NOT_FOUND) };
        let vm = c.data().vm;
        let mut world = c.data().world.lock().map_err(|_| anyhow!("shared world poisoned"))?;
        let metric = world.metric_mut(&name, kind);
        match kind {
            MetricType::Counter if offset <= 0 => Ok(status::BAD_ARGUMENT),
            MetricType::Histogram => Ok(status::BAD_ARGUMENT),
            _ => {
                metric.value = metric.value.wrapping_add(offset);
                *metric.per_vm.entry(vm).or_default() += offset;
                Ok(status::OK)
            }
        }
    })?;
    linker.func_wrap("env", "proxy_record_metric", |c: Ctx<'_>, id: i32, value: i64| -> Result<i32> {
        check_allowed(&c, "proxy_record_metric")?;
        let Some((name, kind)) = lookup(&c, id) else { return Ok(status::NOT_FOUND) };
        let vm = c.data().vm;
        let mut world = c.data().world.lock().map_err(|_| anyhow!("shared world poisoned"))?;
        let metric = world.metric_mut(&name, kind);
        match kind {
            MetricType::Counter => {
                metric.value = metric.value.wrapping_add(value);
                *metric.per_vm.entry(vm).or_default() += value;
            }
            MetricType::Gauge => {
                metric.value = value;
                metric.per_vm.insert(vm, value);
            }
            MetricType::Histogram => {
                metric.samples.push(value as u64);
                metric.value = metric.samples.len() as i64;
                *metric.per_vm.entry(vm).or_default() += 1;
            }
        }
        Ok(status::OK)
    })?;
    Ok(())
}
