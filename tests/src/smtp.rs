//! A real SMTP server on 127.0.0.1 for tests of email notifications: it speaks enough
//! ESMTP for lettre (EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT), plain,
//! with STARTTLS or TLS from the first byte, records each message and can refuse mail with
//! a chosen reply code.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

/// One message as received.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The `MAIL FROM` address.
    pub from: String,
    /// The `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
    /// User and password of `AUTH PLAIN`, if the client authenticated.
    pub auth: Option<(String, String)>,
    /// Whether the message came over TLS.
    pub tls: bool,
}

/// How the receiver protects connections.
#[derive(Clone)]
pub enum Security {
    /// Plain text only.
    None,
    /// Plain first, `STARTTLS` offered, with this identity.
    StartTls(native_tls::TlsAcceptor),
    /// TLS from the first byte, with this identity.
    Tls(native_tls::TlsAcceptor),
}

/// A TLS acceptor from a PEM certificate (chain) and its PKCS#8 PEM key.
pub fn acceptor(cert_pem: &str, key_pem: &str) -> native_tls::TlsAcceptor {
    let identity =
        native_tls::Identity::from_pkcs8(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
    native_tls::TlsAcceptor::new(identity).unwrap()
}

impl Mail {
    /// The value of header `name` (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(f) = found.as_mut() {
                    f.push_str(line.trim_start_matches(['\t']));
                    continue;
                }
            } else if found.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    found = Some(v.trim().to_string());
                }
            }
        }
        found
    }

    /// The body (after the blank line).
    pub fn body(&self) -> String {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    mails: Vec<Mail>,
    reject: Option<String>,
}

/// A recording SMTP server; stops when dropped.
pub struct SmtpReceiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl SmtpReceiver {
    /// Starts a plain one on a free loopback port.
    pub fn start() -> Self {
        Self::start_with(Security::None)
    }

    /// Starts one with the given connection security on a free loopback port.
    pub fn start_with(security: Security) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, security) = (s.clone(), security.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &s, &security);
                });
            }
        });
        Self { addr, state, stop }
    }

    /// Answers `MAIL FROM` with this reply (e.g. `550 5.7.1 rejected`) from now on.
    pub fn reject_with(&self, reply: &str) {
        self.state.lock().unwrap().reject = Some(reply.to_string());
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Messages received so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.state.lock().unwrap().mails.clone()
    }

    /// Waits up to `timeout` for at least `n` messages and returns all received.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let started = Instant::now();
        loop {
            let got = self.mails();
            if got.len() >= n || started.elapsed() > timeout {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>, security: &Security) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let tls_error = |e| std::io::Error::other(format!("TLS handshake: {e}"));
    match security {
        Security::None => session(conn, state, false, false).map(|_| ()),
        Security::Tls(acceptor) => {
            let tls = acceptor.accept(conn).map_err(tls_error)?;
            session(tls, state, false, true).map(|_| ())
        }
        Security::StartTls(acceptor) => {
            let Some(conn) = session(conn, state, true, false)? else {
                return Ok(());
            };
            let mut tls = acceptor.accept(conn).map_err(tls_error)?;
            // After STARTTLS the client greets again (EHLO) without a new banner.
            session_after_banner(&mut tls, state, true)
        }
    }
}

/// Greets and runs commands; returns the stream when the client asked for STARTTLS.
fn session<S: Read + Write>(
    mut stream: S,
    state: &Mutex<State>,
    offer_starttls: bool,
    tls: bool,
) -> std::io::Result<Option<S>> {
    stream.write_all(b"220 localhost ESMTP sitewatch-test\r\n")?;
    let mut reader = BufReader::new(stream);
    if commands(&mut reader, state, offer_starttls, tls)? {
        return Ok(Some(reader.into_inner()));
    }
    Ok(None)
}

fn session_after_banner<S: Read + Write>(
    stream: &mut S,
    state: &Mutex<State>,
    tls: bool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    commands(&mut reader, state, false, tls).map(|_| ())
}

/// Runs commands until QUIT or EOF (`false`) or STARTTLS (`true`).
fn commands<S: Read + Write>(
    reader: &mut BufReader<S>,
    state: &Mutex<State>,
    offer_starttls: bool,
    tls: bool,
) -> std::io::Result<bool> {
    let (mut from, mut to, mut auth) = (String::new(), Vec::new(), None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(false);
        }
        let line = line.trim_end().to_string();
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            let starttls = if offer_starttls {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            format!("250-localhost\r\n{starttls}250-AUTH PLAIN\r\n250-8BITMIME\r\n250 SMTPUTF8")
        } else if upper == "STARTTLS" && offer_starttls {
            reader
                .get_mut()
                .write_all(b"220 2.0.0 ready to start TLS\r\n")?;
            reader.get_mut().flush()?;
            return Ok(true);
        } else if upper.starts_with("HELO") {
            "250 localhost".into()
        } else if upper.starts_with("AUTH PLAIN ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(line[11..].trim())
                .unwrap_or_default();
            let parts: Vec<String> = decoded
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            if parts.len() == 3 {
                auth = Some((parts[1].clone(), parts[2].clone()));
                "235 2.7.0 authenticated".into()
            } else {
                "501 5.5.2 bad AUTH PLAIN".into()
            }
        } else if upper.starts_with("MAIL FROM:") {
            if let Some(reject) = state.lock().unwrap().reject.clone() {
                reject
            } else {
                from = address(&line[10..]);
                to.clear();
                "250 2.1.0 ok".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&line[8..]));
            "250 2.1.5 ok".into()
        } else if upper == "DATA" {
            reader
                .get_mut()
                .write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l)? == 0 {
                    return Ok(false);
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                let l = l.strip_prefix('.').unwrap_or(&l);
                data.push_str(l);
            }
            state.lock().unwrap().mails.push(Mail {
                from: from.clone(),
                to: to.clone(),
                data,
                auth: auth.clone(),
                tls,
            });
            "250 2.0.0 queued".into()
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 ok".into()
        } else if upper == "QUIT" {
            reader.get_mut().write_all(b"221 2.0.0 bye\r\n")?;
            return Ok(false);
        } else {
            "502 5.5.2 command not implemented".into()
        };
        let out = reader.get_mut();
        out.write_all(reply.as_bytes())?;
        out.write_all(b"\r\n")?;
        out.flush()?;
    }
}

/// `<a@b> SIZE=...` -> `a@b`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if a < b => arg[a + 1..b].to_string(),
        _ => arg.split_whitespace().next().unwrap_or("").to_string(),
    }
}
