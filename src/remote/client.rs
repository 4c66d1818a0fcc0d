//! A small meta-protocol client for one memcached connection: a batch of `mg`/`ms`/`md`
//! commands written at once and answered in one round trip, under a deadline.
//!
//! Every command carries an opaque `O<index>` and the batch ends with `mn`, so replies are
//! matched to commands by index and quiet mode (`q`) can drop the uninteresting ones:
//! misses of a `mg`, successes of a `ms`. The read loop stops at `MN`.
//!
//! Values are bounded ([`MAX_VALUE_BYTES`]); any reply this client does not understand is
//! an error for the whole batch, and the caller drops the connection (it may be out of
//! step). Nothing here retries.
//!
//! Why not the `memcache` crate (0.21, its experimental meta-protocol `exp` client)? It
//! has the commands (leases, CAS, add, opaque-matched batches, a `Router` that could carry
//! fms's ketama ring), but not what the tier's failure design rests on: the blocking
//! client works one server after another, each under a fresh fixed timeout, where fms
//! needs one caller-given deadline shared by all servers, sent to in parallel (write to
//! all, then read what arrived); it allocates whatever value length a server states (fms
//! caps it, [`MAX_VALUE_BYTES`]); it redials and re-sends once on a failed pooled
//! connection (fms never retries); it has no quiet mode or `mn` terminator. Worth
//! revisiting if it gains a per-call deadline, a value limit and a no-redial option.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::error::{RemoteError, RemoteResult};

/// The largest value accepted from a server: a longer `VA` is a protocol error (a guard
/// against a misbehaving peer asking for unbounded memory). memcached's own default item
/// limit is 1 MiB.
pub const MAX_VALUE_BYTES: usize = 16 << 20;

/// The longest key memcached accepts.
pub const MAX_KEY_BYTES: usize = 250;

/// One meta command of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// `mg <key> v c` (value and CAS). With `lease: Some(ttl)`, `N<ttl>`: a miss creates
    /// an empty placeholder and exactly one caller gets the win flag ([`Reply::Value::win`]).
    /// `quiet` (`q`) suppresses the miss reply.
    Get {
        /// The key.
        key: &'a str,
        /// Vivify-on-miss TTL (a lease), if any.
        lease: Option<u32>,
        /// Suppress a miss reply.
        quiet: bool,
    },
    /// `mg <key>` without a value: does the key exist? Quiet (misses are not sent).
    Exists {
        /// The key.
        key: &'a str,
    },
    /// `ms <key> <len> T<ttl>` with an optional `C<cas>` (compare and swap) or mode `ME`
    /// (add: only if absent). `quiet` (`q`) suppresses the success reply.
    Set {
        /// The key.
        key: &'a str,
        /// The value.
        value: &'a [u8],
        /// Expiry in seconds (0: none).
        ttl: u32,
        /// Only if the item's CAS is this.
        cas: Option<u64>,
        /// Only if the key is absent (`ME`).
        add: bool,
        /// Suppress the success reply.
        quiet: bool,
    },
    /// `md <key> q`.
    Delete {
        /// The key.
        key: &'a str,
    },
}

impl Op<'_> {
    fn key(&self) -> &str {
        match self {
            Op::Get { key, .. } | Op::Exists { key } | Op::Set { key, .. } | Op::Delete { key } => {
                key
            }
        }
    }

    /// The reply a quiet command stands for when the server sends none.
    fn silent_reply(&self) -> Reply {
        match self {
            Op::Get { .. } | Op::Exists { .. } => Reply::Miss,
            Op::Set { .. } | Op::Delete { .. } => Reply::Done,
        }
    }
}

/// The answer to one [`Op`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `VA`: a value (possibly an empty lease placeholder).
    Value {
        /// The bytes.
        value: Vec<u8>,
        /// The item's CAS, if asked.
        cas: Option<u64>,
        /// `W`: this caller won the lease and should fill the item.
        win: bool,
        /// `Z`: a lease was already handed out to someone else.
        lease_taken: bool,
    },
    /// `HD` to a get or an existence check: the key exists (CAS if returned).
    Hit {
        /// The item's CAS, if asked.
        cas: Option<u64>,
    },
    /// `EN` (or a suppressed miss).
    Miss,
    /// `HD` to a set or delete (or a suppressed success).
    Done,
    /// `NS`: not stored (an add found the key).
    NotStored,
    /// `EX`: the CAS did not match.
    Exists,
    /// `NF`: a CAS set or delete found no item.
    NotFound,
}

/// Connect and I/O deadlines.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Longest wait for a TCP connect.
    pub connect: Duration,
    /// Longest a whole batch (write and read) may take.
    pub batch: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_millis(100),
            batch: Duration::from_millis(200),
        }
    }
}

/// One TCP connection to a memcached server.
#[derive(Debug)]
pub struct Conn {
    addr: String,
    stream: TcpStream,
    buf: Vec<u8>,
    /// Start of unread bytes in `buf`.
    pos: usize,
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("deadline passed {what}"))
}

fn remaining(deadline: Instant, what: &str) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(timed_out(what))
    } else {
        Ok(left)
    }
}

impl Conn {
    /// Connects to `addr` (`host:port`) within `min(connect timeout, deadline)`.
    pub fn connect(addr: &str, connect: Duration, deadline: Instant) -> RemoteResult<Conn> {
        let io_err = |source| RemoteError::Io {
            addr: addr.to_owned(),
            source,
        };
        let sa: SocketAddr = addr
            .to_socket_addrs()
            .map_err(io_err)?
            .next()
            .ok_or_else(|| RemoteError::Config(format!("{addr}: no address")))?;
        let wait = remaining(deadline, "before connecting")
            .map_err(io_err)?
            .min(connect);
        let stream = TcpStream::connect_timeout(&sa, wait).map_err(io_err)?;
        stream.set_nodelay(true).map_err(io_err)?;
        Ok(Conn {
            addr: addr.to_owned(),
            stream,
            buf: Vec::with_capacity(16 << 10),
            pos: 0,
        })
    }

    /// The server's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `ops` as one pipelined request and reads every reply, by `deadline`. One
    /// round trip. On `Err` the connection must be dropped.
    pub fn batch(&mut self, ops: &[Op<'_>], deadline: Instant) -> RemoteResult<Vec<Reply>> {
        self.send(ops, deadline)?;
        self.receive(ops, deadline)
    }

    /// The first half of [`batch`](Self::batch): writes the request. Sending to several
    /// servers before receiving from any lets them work in parallel from one thread.
    pub fn send(&mut self, ops: &[Op<'_>], deadline: Instant) -> RemoteResult<()> {
        let req = encode(ops).map_err(|what| self.protocol(what))?;
        self.write_all(&req, deadline).map_err(|e| self.io(e))
    }

    /// The second half of [`batch`](Self::batch): reads the replies to the `ops` last
    /// [`send`](Self::send)t.
    pub fn receive(&mut self, ops: &[Op<'_>], deadline: Instant) -> RemoteResult<Vec<Reply>> {
        let mut replies: Vec<Option<Reply>> = vec![None; ops.len()];
        loop {
            let line = self.read_line(deadline).map_err(|e| self.io(e))?;
            let line = std::str::from_utf8(&line)
                .map_err(|_| self.protocol("reply line is not UTF-8".into()))?
                .to_owned();
            if line == "MN" {
                break;
            }
            let mut words = line.split(' ');
            let code = words.next().unwrap_or("");
            let (n_value, flags): (Option<usize>, Vec<&str>) = if code == "VA" {
                let n = words
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|&n| n <= MAX_VALUE_BYTES)
                    .ok_or_else(|| self.protocol(format!("bad VA line {line:?}")))?;
                (Some(n), words.collect())
            } else {
                (None, words.collect())
            };
            let mut opaque = None;
            let mut cas = None;
            let (mut win, mut taken) = (false, false);
            for f in &flags {
                match f.as_bytes().first() {
                    Some(b'O') => opaque = f[1..].parse::<usize>().ok(),
                    Some(b'c') => cas = f[1..].parse::<u64>().ok(),
                    Some(b'W') => win = true,
                    Some(b'Z') => taken = true,
                    _ => {}
                }
            }
            let value = match n_value {
                Some(n) => Some(self.read_value(n, deadline).map_err(|e| self.io(e))?),
                None => None,
            };
            let i = opaque
                .filter(|&i| i < ops.len())
                .ok_or_else(|| self.protocol(format!("reply without a known opaque: {line:?}")))?;
            let reply = match (code, &ops[i]) {
                ("VA", _) => Reply::Value {
                    value: value.unwrap_or_default(),
                    cas,
                    win,
                    lease_taken: taken,
                },
                ("HD", Op::Get { .. } | Op::Exists { .. }) => Reply::Hit { cas },
                ("HD", _) => Reply::Done,
                ("EN", _) => Reply::Miss,
                ("NS", _) => Reply::NotStored,
                ("EX", _) => Reply::Exists,
                ("NF", _) => Reply::NotFound,
                _ => return Err(self.protocol(format!("unexpected reply {line:?}"))),
            };
            replies[i] = Some(reply);
        }
        Ok(replies
            .into_iter()
            .zip(ops)
            .map(|(r, op)| r.unwrap_or_else(|| op.silent_reply()))
            .collect())
    }

    fn io(&self, source: io::Error) -> RemoteError {
        RemoteError::Io {
            addr: self.addr.clone(),
            source,
        }
    }

    fn protocol(&self, what: String) -> RemoteError {
        RemoteError::Protocol {
            addr: self.addr.clone(),
            what,
        }
    }

    fn write_all(&mut self, mut data: &[u8], deadline: Instant) -> io::Result<()> {
        while !data.is_empty() {
            self.stream
                .set_write_timeout(Some(remaining(deadline, "writing")?))?;
            match self.stream.write(data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if would_block(&e) => return Err(timed_out("writing")),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads more bytes into `buf`, by `deadline`.
    fn fill(&mut self, deadline: Instant) -> io::Result<()> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut chunk = [0u8; 16 << 10];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Past the deadline, still take what has already arrived: when one thread
                // reads several servers in turn, a slow one must not make the replies
                // already waiting from the others count as timeouts.
                self.stream.set_nonblocking(true)?;
                let r = self.stream.read(&mut chunk);
                self.stream.set_nonblocking(false)?;
                return match r {
                    Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => {
                        self.buf.extend_from_slice(&chunk[..n]);
                        Ok(())
                    }
                    Err(e) if would_block(&e) => Err(timed_out("reading")),
                    Err(e) => Err(e),
                };
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if would_block(&e) => return Err(timed_out("reading")),
                Err(e) => return Err(e),
            }
        }
    }

    fn read_line(&mut self, deadline: Instant) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf[self.pos..].windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[self.pos..self.pos + i].to_vec();
                self.pos += i + 2;
                return Ok(line);
            }
            if self.buf.len() - self.pos > 8192 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "reply line too long",
                ));
            }
            self.fill(deadline)?;
        }
    }

    fn read_value(&mut self, n: usize, deadline: Instant) -> io::Result<Vec<u8>> {
        while self.buf.len() - self.pos < n + 2 {
            self.fill(deadline)?;
        }
        if &self.buf[self.pos + n..self.pos + n + 2] != b"\r\n" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "value not followed by CRLF",
            ));
        }
        let v = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n + 2;
        Ok(v)
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Whether `key` is a key memcached's text/meta protocol accepts as is.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_BYTES && key.bytes().all(|b| b.is_ascii_graphic())
}

/// About how many bytes the request of a batch takes (an upper bound for small ops).
pub fn request_len(ops: &[Op<'_>]) -> usize {
    ops.iter()
        .map(|op| match op {
            Op::Set { key, value, .. } => key.len() + value.len() + 48,
            other => other.key().len() + 24,
        })
        .sum::<usize>()
        + 4
}

/// The request bytes of a batch: every command with `O<index>`, then `mn`.
fn encode(ops: &[Op<'_>]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(ops.len() * 64);
    for (i, op) in ops.iter().enumerate() {
        if !valid_key(op.key()) {
            return Err(format!("invalid key {:?}", op.key()));
        }
        match op {
            Op::Get { key, lease, quiet } => {
                out.extend_from_slice(format!("mg {key} v c O{i}").as_bytes());
                if let Some(ttl) = lease {
                    out.extend_from_slice(format!(" N{ttl}").as_bytes());
                }
                if *quiet {
                    out.extend_from_slice(b" q");
                }
            }
            Op::Exists { key } => out.extend_from_slice(format!("mg {key} O{i} q").as_bytes()),
            Op::Set {
                key,
                value,
                ttl,
                cas,
                add,
                quiet,
            } => {
                out.extend_from_slice(format!("ms {key} {} T{ttl} O{i}", value.len()).as_bytes());
                if let Some(c) = cas {
                    out.extend_from_slice(format!(" C{c}").as_bytes());
                }
                if *add {
                    out.extend_from_slice(b" ME");
                }
                if *quiet {
                    out.extend_from_slice(b" q");
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(value);
            }
            Op::Delete { key } => out.extend_from_slice(format!("md {key} O{i} q").as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"mn\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_opaque_quiet_and_terminator() {
        let ops = [
            Op::Get {
                key: "a",
                lease: Some(30),
                quiet: false,
            },
            Op::Set {
                key: "b",
                value: b"xy",
                ttl: 0,
                cas: Some(7),
                add: false,
                quiet: true,
            },
            Op::Exists { key: "c" },
        ];
        assert_eq!(
            String::from_utf8(encode(&ops).unwrap()).unwrap(),
            "mg a v c O0 N30\r\nms b 2 T0 O1 C7 q\r\nxy\r\nmg c O2 q\r\nmn\r\n"
        );
    }

    #[test]
    fn rejects_bad_keys() {
        assert!(encode(&[Op::Exists { key: "a b" }]).is_err());
        assert!(encode(&[Op::Exists { key: "" }]).is_err());
        assert!(!valid_key(&"k".repeat(251)));
    }
}
