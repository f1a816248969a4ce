//! Rust types and glue generated from `wit/check.wit`, the plugin contract.
//!
//! Exports are async so a call can be interrupted at its deadline (epoch yield)
//! and cancelled while the guest waits in a WASI host call (e.g. a sleep).

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "checker",
    exports: { default: async },
});
