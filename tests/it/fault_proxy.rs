//! A small HTTP proxy on loopback in front of the S3 server: counts requests by method,
//! injects faults (503 SlowDown, connections dropped before or after the server saw the
//! request) on a fixed schedule, and can run a hook when a request passes (to change the
//! source between listing and copying).
//!
//! Every forwarded request carries `Connection: close`, so each connection holds exactly
//! one request and the proxy never has to parse HTTP framing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// Called with the request head (request line and headers) before it is forwarded.
pub type Hook = Arc<dyn Fn(&str) + Send + Sync>;

/// Called with each request head; `true` refuses the request (see [`Faults::refuse`]).
pub type Refuse = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What the proxy does to requests.
#[derive(Clone, Default)]
pub struct Faults {
    /// Every `every`-th request fails (0: none), cycling through the three kinds of fault.
    pub every: usize,
    /// Run before forwarding each request.
    pub hook: Option<Hook>,
    /// Requests it returns `true` for never reach the server: they get 403 Access Denied.
    /// The closure may also act (kill the client) to stage a crash at that very request.
    pub refuse: Option<Refuse>,
}

/// A running proxy.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
    faults_injected: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`).
    pub fn start(upstream: &str, faults: Faults) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("TEST_S3_ENDPOINT is http://127.0.0.1:<port>");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let injected = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(AtomicUsize::new(0));
        {
            let counts = Arc::clone(&counts);
            let injected = Arc::clone(&injected);
            thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let counts = Arc::clone(&counts);
                    let injected = Arc::clone(&injected);
                    let faults = faults.clone();
                    let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                    thread::spawn(move || serve(client, upstream, &faults, n, &counts, &injected));
                }
            });
        }
        Self {
            endpoint,
            counts,
            faults_injected: injected,
        }
    }

    /// Requests seen, by method (`COPY` counts requests carrying `x-amz-copy-source`).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.counts.lock().unwrap().clone()
    }

    /// Requests that got a fault.
    pub fn faults_injected(&self) -> usize {
        self.faults_injected.load(Ordering::SeqCst)
    }
}

fn read_head(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = client.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Some((head, buf[end + 4..].to_vec()));
        }
    }
}

/// Answers with an S3 error document and closes the connection.
fn s3_error(mut client: TcpStream, status: &str, code: &str, message: &str) {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let _ = write!(
        client,
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.shutdown(Shutdown::Both);
}

fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    faults: &Faults,
    n: usize,
    counts: &Mutex<BTreeMap<String, usize>>,
    injected: &AtomicUsize,
) {
    let Some((head, rest)) = read_head(&mut client) else {
        return;
    };
    let method = head.split(' ').next().unwrap_or_default().to_owned();
    {
        let mut counts = counts.lock().unwrap();
        *counts.entry(method).or_default() += 1;
        if head.to_ascii_lowercase().contains("\r\nx-amz-copy-source:") {
            *counts.entry("COPY".into()).or_default() += 1;
        }
    }
    if faults.refuse.as_ref().is_some_and(|refuse| refuse(&head)) {
        injected.fetch_add(1, Ordering::SeqCst);
        s3_error(
            client,
            "403 Forbidden",
            "AccessDenied",
            "Refused by the test proxy.",
        );
        return;
    }
    let fault = if faults.every > 0 && n.is_multiple_of(faults.every) {
        injected.fetch_add(1, Ordering::SeqCst);
        Some((n / faults.every) % 3)
    } else {
        None
    };
    match fault {
        Some(0) => {
            s3_error(
                client,
                "503 Slow Down",
                "SlowDown",
                "Please reduce your request rate.",
            );
            return;
        }
        Some(1) => {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        _ => {}
    }
    if let Some(hook) = &faults.hook {
        hook(&head);
    }
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let mut forwarded: String = head
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    forwarded.push_str("\r\nConnection: close\r\n\r\n");
    if server.write_all(forwarded.as_bytes()).is_err() || server.write_all(&rest).is_err() {
        return;
    }
    let (Ok(mut client_in), Ok(mut server_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let upload = thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut server_out);
    });
    if fault == Some(2) {
        // The server does the work, the client never hears back.
        let mut sink = Vec::new();
        let _ = server.read_to_end(&mut sink);
        let _ = client.shutdown(Shutdown::Both);
    } else {
        let _ = std::io::copy(&mut server, &mut client);
        let _ = client.shutdown(Shutdown::Both);
    }
    let _ = server.shutdown(Shutdown::Both);
    let _ = upload.join();
}
