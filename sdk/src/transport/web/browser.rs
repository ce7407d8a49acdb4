//! The few browser globals the backend calls: the monotonic clock and timers, from
//! a page (`Window`) or a worker (`WorkerGlobalScope`).

use std::time::Duration;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Performance, Window, WorkerGlobalScope};

/// Where we run.
#[derive(Debug, Clone)]
enum Scope {
    Page(Window),
    Worker(WorkerGlobalScope),
}

/// The global scope's clock and timers.
#[derive(Debug, Clone)]
pub(super) struct Browser {
    scope: Scope,
    performance: Option<Performance>,
    /// `performance.now()` when the socket was created: our clock's zero.
    epoch_ms: f64,
}

impl Browser {
    /// The current global scope; `None` outside a page or worker.
    pub(super) fn get() -> Option<Browser> {
        let global = js_sys::global();
        let scope = if let Some(window) = global.dyn_ref::<Window>() {
            Scope::Page(window.clone())
        } else if let Some(worker) = global.dyn_ref::<WorkerGlobalScope>() {
            Scope::Worker(worker.clone())
        } else {
            return None;
        };
        let performance = match &scope {
            Scope::Page(window) => window.performance(),
            Scope::Worker(worker) => worker.performance(),
        };
        let mut browser = Browser {
            scope,
            performance,
            epoch_ms: 0.0,
        };
        browser.epoch_ms = browser.now_ms();
        Some(browser)
    }

    fn now_ms(&self) -> f64 {
        match &self.performance {
            Some(performance) => performance.now(),
            // Not monotonic, but every browser with WebRTC has `performance`.
            None => js_sys::Date::now(),
        }
    }

    /// Time since the socket was created: the clock of the sans-IO cores.
    pub(super) fn now(&self) -> Duration {
        Duration::from_secs_f64(((self.now_ms() - self.epoch_ms) / 1000.0).max(0.0))
    }

    /// Call `callback` after `delay` (rounded up to whole milliseconds).
    pub(super) fn set_timeout(
        &self,
        callback: &Closure<dyn FnMut()>,
        delay: Duration,
    ) -> Option<i32> {
        let function = callback.as_ref().unchecked_ref();
        let ms = i32::try_from(delay.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        let id = match &self.scope {
            Scope::Page(window) => {
                window.set_timeout_with_callback_and_timeout_and_arguments_0(function, ms)
            }
            Scope::Worker(worker) => {
                worker.set_timeout_with_callback_and_timeout_and_arguments_0(function, ms)
            }
        };
        id.ok()
    }

    /// Call a one-shot `callback` after `delay`.
    pub(super) fn set_timeout_once(&self, callback: JsValue, delay: Duration) {
        let function = callback.unchecked_ref();
        let ms = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
        let _ = match &self.scope {
            Scope::Page(window) => {
                window.set_timeout_with_callback_and_timeout_and_arguments_0(function, ms)
            }
            Scope::Worker(worker) => {
                worker.set_timeout_with_callback_and_timeout_and_arguments_0(function, ms)
            }
        };
    }

    /// Cancel a timer set with [`set_timeout`](Self::set_timeout).
    pub(super) fn clear_timeout(&self, id: i32) {
        match &self.scope {
            Scope::Page(window) => window.clear_timeout_with_handle(id),
            Scope::Worker(worker) => worker.clear_timeout_with_handle(id),
        }
    }
}
