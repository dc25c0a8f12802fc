//! A small HTTP proxy on loopback in front of the S3 server: counts requests by method,
//! injects faults (503 SlowDown, 500, connections dropped before or after the server saw
//! the request, answers cut off halfway) on a fixed schedule or on the requests of one
//! kind ([`Rule`]), and can run a hook when a request passes (to change the source between
//! listing and copying).
//!
//! Every forwarded request carries `Connection: close`, so each connection holds exactly
//! one request and the proxy never has to parse HTTP framing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Called with the request head (request line and headers) before it is forwarded.
pub type Hook = Arc<dyn Fn(&str) + Send + Sync>;

/// Called with each request head; `true` refuses the request (see [`Faults::refuse`]).
pub type Refuse = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// One fault done to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 503 SlowDown, without reaching the server.
    SlowDown,
    /// 500 InternalError, without reaching the server.
    ServerError,
    /// The connection is closed before the request reaches the server.
    ResetBefore,
    /// The server acts on the request; the connection is closed before its answer.
    LostAnswer,
    /// The server acts on the request; the client gets the status line, the headers and
    /// half of the body (or half of the head when there is no body), then the connection
    /// closes.
    Truncated,
    /// The request is held for 200-700 ms, then forwarded as usual.
    Delay,
}

/// Seeded random faults: each request, by its number, gets one of every kind of [`Fault`]
/// with probability `percent`/100. Requests come concurrently, so which request gets a
/// number varies between runs; how many are hit, and how, does not.
#[derive(Debug, Clone, Copy)]
pub struct Random {
    pub seed: u64,
    pub percent: u64,
}

impl Random {
    const KINDS: [Fault; 6] = [
        Fault::SlowDown,
        Fault::ServerError,
        Fault::ResetBefore,
        Fault::LostAnswer,
        Fault::Truncated,
        Fault::Delay,
    ];

    /// The fault of request `n`, if any (a SplitMix64 step of the seed and `n`).
    fn fault(&self, n: usize) -> Option<Fault> {
        let mut x = self.seed ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        (x % 100 < self.percent).then(|| Self::KINDS[((x >> 40) % 6) as usize])
    }
}

/// Faults for the requests of one kind: the n-th request `matches` accepts gets
/// `faults[n]` (counted from 0); later ones pass.
#[derive(Clone)]
pub struct Rule {
    /// The kind of request, as the assertions name it.
    pub name: &'static str,
    /// Whether a request (its method and its path with the query) is of this kind.
    pub matches: fn(method: &str, target: &str) -> bool,
    /// What happens to the first matching requests, in order.
    pub faults: Vec<Fault>,
}

/// What the proxy does to requests.
#[derive(Clone, Default)]
pub struct Faults {
    /// Every `every`-th request fails (0: none), cycling through SlowDown, ResetBefore and
    /// LostAnswer.
    pub every: usize,
    /// Faults by kind of request; the first rule that matches a request decides.
    pub rules: Vec<Rule>,
    /// Random faults on requests no rule matches and `every` spares.
    pub random: Option<Random>,
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
    state: Arc<State>,
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
        let state = Arc::new(State {
            faults,
            seen: AtomicUsize::new(0),
            counts: Mutex::default(),
            requests: Mutex::default(),
            injected: AtomicUsize::new(0),
            by_rule: Mutex::default(),
        });
        let proxy = Self {
            endpoint,
            state: Arc::clone(&state),
        };
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = Arc::clone(&state);
                thread::spawn(move || serve(client, upstream, &state));
            }
        });
        proxy
    }

    /// Requests seen, by method (`COPY` counts requests carrying `x-amz-copy-source`).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.state.counts.lock().unwrap().clone()
    }

    /// Every request seen, in order, as its request line and its `Host` header
    /// (`GET /bucket/key?… HTTP/1.1 host:127.0.0.1:5000`): a bucket's name is in one or
    /// the other, whether the client addresses buckets by path or by host.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Requests that got a fault.
    pub fn faults_injected(&self) -> usize {
        self.state.injected.load(Ordering::SeqCst)
    }

    /// Requests each rule matched so far (faulted or passed), by rule name.
    pub fn matched(&self) -> BTreeMap<&'static str, usize> {
        self.state.by_rule.lock().unwrap().clone()
    }
}

/// What the connection threads share.
struct State {
    faults: Faults,
    seen: AtomicUsize,
    counts: Mutex<BTreeMap<String, usize>>,
    requests: Mutex<Vec<String>>,
    injected: AtomicUsize,
    by_rule: Mutex<BTreeMap<&'static str, usize>>,
}

impl State {
    /// Counts the request by method, and logs it.
    fn count(&self, head: &str) {
        let mut lines = head.split("\r\n");
        let line = lines.next().unwrap_or_default();
        let host = lines
            .find(|l| l.to_ascii_lowercase().starts_with("host:"))
            .unwrap_or_default();
        self.requests
            .lock()
            .unwrap()
            .push(format!("{line} {}", host.to_ascii_lowercase()));
        let method = head.split(' ').next().unwrap_or_default();
        let mut counts = self.counts.lock().unwrap();
        *counts.entry(method.to_owned()).or_default() += 1;
        if head.to_ascii_lowercase().contains("\r\nx-amz-copy-source:") {
            *counts.entry("COPY".into()).or_default() += 1;
        }
    }

    /// The fault the request gets, if any.
    fn fault_for(&self, head: &str) -> Option<Fault> {
        let mut words = head.split(' ');
        let (method, target) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
        );
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        let fault = if let Some(rule) = self
            .faults
            .rules
            .iter()
            .find(|r| (r.matches)(method, target))
        {
            let mut by_rule = self.by_rule.lock().unwrap();
            let matched = by_rule.entry(rule.name).or_default();
            *matched += 1;
            rule.faults.get(*matched - 1).copied()
        } else if self.faults.every > 0 && n.is_multiple_of(self.faults.every) {
            [Fault::SlowDown, Fault::ResetBefore, Fault::LostAnswer]
                .get((n / self.faults.every) % 3)
                .copied()
        } else {
            self.faults.random.and_then(|random| random.fault(n))
        };
        if fault.is_some() {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        fault
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

/// The first half of an answer: of its body when it has one (the head then says the full
/// length, so the client sees the answer end early), else of its head.
fn truncated(answer: &[u8]) -> Vec<u8> {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer[..answer.len() / 2].to_vec();
    };
    let (head, body) = (&answer[..end], &answer[end + 4..]);
    if body.is_empty() {
        return head[..head.len() / 2].to_vec();
    }
    let head = String::from_utf8_lossy(head);
    let mut out: Vec<String> = head
        .split("\r\n")
        .filter(|line| {
            let line = line.to_ascii_lowercase();
            !line.starts_with("content-length:") && !line.starts_with("transfer-encoding:")
        })
        .map(str::to_owned)
        .collect();
    out.push(format!("Content-Length: {}", body.len()));
    let mut bytes = format!("{}\r\n\r\n", out.join("\r\n")).into_bytes();
    bytes.extend_from_slice(&body[..body.len() / 2]);
    bytes
}

fn serve(mut client: TcpStream, upstream: SocketAddr, state: &State) {
    let Some((head, rest)) = read_head(&mut client) else {
        return;
    };
    state.count(&head);
    if state
        .faults
        .refuse
        .as_ref()
        .is_some_and(|refuse| refuse(&head))
    {
        state.injected.fetch_add(1, Ordering::SeqCst);
        s3_error(
            client,
            "403 Forbidden",
            "AccessDenied",
            "Refused by the test proxy.",
        );
        return;
    }
    let fault = state.fault_for(&head);
    match fault {
        Some(Fault::SlowDown) => {
            return s3_error(
                client,
                "503 Slow Down",
                "SlowDown",
                "Please reduce your request rate.",
            );
        }
        Some(Fault::ServerError) => {
            return s3_error(
                client,
                "500 Internal Server Error",
                "InternalError",
                "We encountered an internal error. Please try again.",
            );
        }
        Some(Fault::ResetBefore) => {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        Some(Fault::Delay) => {
            thread::sleep(Duration::from_millis(200 + (head.len() as u64 * 37) % 500))
        }
        _ => {}
    }
    if let Some(hook) = &state.faults.hook {
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
    match fault {
        Some(Fault::LostAnswer | Fault::Truncated) => {
            // The server does the work; the client hears nothing, or half.
            let mut answer = Vec::new();
            let _ = server.read_to_end(&mut answer);
            if fault == Some(Fault::Truncated) {
                let _ = client.write_all(&truncated(&answer));
            }
        }
        _ => {
            let _ = std::io::copy(&mut server, &mut client);
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = upload.join();
}
