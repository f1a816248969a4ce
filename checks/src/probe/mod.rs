//! HTTP probe: one check of one site over a connection opened for it, with
//! phase timings, TLS expiry, redirects, body cap, regexes and plugins.

mod connect;
mod evaluate;
mod exchange;
mod prober;
mod resolver;
mod stall;
mod tls;
mod trace;

pub use exchange::USER_AGENT_VALUE;
pub use prober::Prober;
pub use resolver::{Resolve, SystemResolver};
pub use stall::{NoStall, StallClock};
pub use tls::{TlsClient, TlsClients, TlsSetupError};
