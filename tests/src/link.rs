//! A network link that tests can cut and restore: a TCP relay on its own thread.
//!
//! The Tansu broker the tests use keeps its data in memory, so stopping it would also
//! lose what it holds; cutting every client's link to it is the same outage from the
//! clients' side (connections drop, new ones fail) with the broker's data intact.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

/// A relay from 127.0.0.1:`port` to a target address.
pub struct Link {
    /// Where clients connect.
    pub port: u16,
    up: watch::Sender<bool>,
    alive: Arc<AtomicBool>,
}

impl Link {
    /// Relays 127.0.0.1:`port` to `target` (a `host:port`), starting up.
    pub fn start(port: u16, target: String) -> Link {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (up, up_rx) = watch::channel(true);
        let alive = Arc::new(AtomicBool::new(true));
        let running = alive.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while running.load(Ordering::Relaxed) {
                    let Ok(Ok((mut inbound, _))) = tokio::time::timeout(
                        std::time::Duration::from_millis(100),
                        listener.accept(),
                    )
                    .await
                    else {
                        continue;
                    };
                    if !*up_rx.borrow() {
                        // Cut: the connection is closed at once, as by a dead host's RST.
                        drop(inbound);
                        continue;
                    }
                    let target = target.clone();
                    let mut cut = up_rx.clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = cut.wait_for(|up| !up) => {}
                        }
                    });
                }
            });
        });
        Link { port, up, alive }
    }

    /// Drops every connection through the link and refuses new ones.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.send_replace(true);
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Relaxed);
        self.cut();
    }
}
